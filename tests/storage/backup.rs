//! Backups (issue 19): a backup taken while bookings, attachments and audit events are
//! being written restores with every write acknowledged before it started, the file of
//! every attachment it holds, and an intact audit chain that is a prefix of the live one.
//! SQLite through the binary's `backup` and `restore` commands; PostgreSQL through
//! README.md's procedure (`pg_dump -Fc`, the attachment folder copied after the dump,
//! `pg_restore` into a fresh database).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor};
use uuid::Uuid;

use mdt_coordinator::domain::{Attachment, NewAuditEvent};
use mdt_coordinator::store::blobs::Blobs;
use mdt_coordinator::store::DynStore;

use crate::common::clinic::nhs_numbers;
use crate::common::{eventually, skip, Backend, TestDb};
use crate::{a_case, booked, fresh, physio, seeded_series, signed_in};

/// The writes the store acknowledged, in the order it did.
#[derive(Clone, Default)]
struct Acked {
    cases: Vec<Uuid>,
    attachments: Vec<(Uuid, String)>,
    /// Audit events appended alone: `(seq, hash)`.
    audits: Vec<(i64, String)>,
}

impl Acked {
    fn total(&self) -> usize {
        self.cases.len() + self.attachments.len() + self.audits.len()
    }
}

/// Runs the built `mdt-coordinator` against the test's database and data folder.
fn cli(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdt-coordinator"))
        .args(args)
        .env("MDT__DATABASE__URL", &db.url)
        .env("MDT__DATA__DIR", db.dir.path())
        .env("MDT__LOG__FILTER", "warn")
        .output()
        .expect("run mdt-coordinator")
}

fn succeeded(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect(program);
    succeeded(program, &out);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Writers that book cases, attach files and append audit events until stopped.
fn start_writers(
    store: &DynStore, blobs: &Arc<Blobs>, stop: &Arc<AtomicBool>, acked: &Arc<Mutex<Acked>>,
    session: &mdt_coordinator::domain::Session, holder: Uuid,
    referrer: mdt_coordinator::domain::UserId,
) -> Vec<tokio::task::JoinHandle<()>> {
    let bookings = {
        let (store, stop, acked) = (store.clone(), stop.clone(), acked.clone());
        let cases: Vec<_> =
            nhs_numbers(2000).iter().map(|nhs| a_case(session, referrer, nhs)).collect();
        tokio::spawn(async move {
            for case in cases {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let id = case.id;
                store.book_case(case, booked(), Vec::new(), Utc::now()).await.unwrap();
                acked.lock().unwrap().cases.push(id);
            }
        })
    };
    let attachments = {
        let (store, blobs, stop, acked) =
            (store.clone(), blobs.clone(), stop.clone(), acked.clone());
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let bytes = format!("scan {n} {}\n", Uuid::new_v4()).repeat(500).into_bytes();
                let sha256 = blobs.put(&bytes).await.unwrap();
                let a = Attachment {
                    id: Uuid::new_v4(),
                    case_id: holder,
                    sha256: sha256.clone(),
                    size: bytes.len() as u64,
                    content_type: "text/plain".into(),
                    filename: format!("scan-{n}.txt"),
                    uploaded_by: referrer,
                    uploaded_at: Utc::now(),
                };
                let audit = NewAuditEvent::new("attachment_added", "attachment");
                store.add_attachment(&a, audit).await.unwrap();
                acked.lock().unwrap().attachments.push((a.id, sha256));
            }
        })
    };
    let audits = {
        let (store, stop, acked) = (store.clone(), stop.clone(), acked.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let event = store.append_audit(signed_in()).await.unwrap();
                acked.lock().unwrap().audits.push((event.seq, event.hash));
            }
        })
    };
    vec![bookings, attachments, audits]
}

/// Backs `db` up (while the writers run) and restores it into the fresh `restored`.
fn back_up(db: &TestDb, restored: &TestDb, folder: &Path) {
    match db.backend {
        Backend::Sqlite => {
            let file = folder.join("mdt.backup");
            let file = file.to_str().unwrap();
            succeeded("backup", &cli(db, &["backup", "--to", file]));
            // A backup never overwrites one.
            let again = cli(db, &["backup", "--to", file]);
            assert!(!again.status.success());
            assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
            succeeded("restore", &cli(restored, &["restore", "--from", file]));
        }
        Backend::Postgres => {
            // The command refuses PostgreSQL and names the procedure instead.
            let refused = cli(db, &["backup", "--to", folder.join("x").to_str().unwrap()]);
            assert!(!refused.status.success());
            assert!(String::from_utf8_lossy(&refused.stderr).contains("pg_dump"));
            let dump = folder.join("mdt.dump");
            run("pg_dump", &["-Fc", "-f", dump.to_str().unwrap(), &db.url]);
            copy_dir(&db.dir.path().join("attachments"), &folder.join("attachments"));
            run(
                "pg_restore",
                &["--no-owner", "--exit-on-error", "-d", &restored.url, dump.to_str().unwrap()],
            );
            copy_dir(&folder.join("attachments"), &restored.dir.path().join("attachments"));
        }
    }
}

/// Whether `pg_dump` and `pg_restore` run here; if not, the test is [`skip`]ped.
fn pg_tools_available() -> bool {
    let runs =
        |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    let available = runs("pg_dump") && runs("pg_restore");
    if !available {
        skip("no pg_dump and pg_restore: apt-get install postgresql-client");
    }
    available
}

pub(crate) async fn backup_under_write_load_restores_every_acknowledged_write(backend: Backend) {
    if backend == Backend::Postgres && !pg_tools_available() {
        return;
    }
    let (db, store) = fresh(backend).await;
    let sessions = seeded_series(&store, 2000).await;
    let physio = physio(&store).await;
    let holder = a_case(&sessions[1], physio.id, "9434765919");
    let holder_id = holder.id;
    store.book_case(holder, booked(), Vec::new(), Utc::now()).await.unwrap();
    let blobs = Arc::new(Blobs::new(db.dir.path()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let writers = start_writers(&store, &blobs, &stop, &acked, &sessions[0], holder_id, physio.id);

    let under_way = |a: &Acked| a.cases.len().min(a.attachments.len()).min(a.audits.len()) >= 5;
    eventually("writes under way", async || under_way(&acked.lock().unwrap()).then_some(())).await;
    let before = acked.lock().unwrap().clone();
    let folder = tempfile::tempdir().unwrap();
    let restored = TestDb::new(backend).await.unwrap();
    let (db, restored) = tokio::task::spawn_blocking(move || {
        back_up(&db, &restored, folder.path());
        (db, restored)
    })
    .await
    .unwrap();
    let during = acked.lock().unwrap().total() - before.total();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    assert!(during > 0, "the store took no writes while the backup ran");
    let live_events = store.audit_events().await.unwrap();

    let copy = restored.store().await;
    let copy_blobs = Blobs::new(restored.dir.path()).unwrap();
    for id in &before.cases {
        assert!(copy.case(*id).await.unwrap().is_some(), "acknowledged booking {id} lost");
    }
    for (id, sha) in &before.attachments {
        let a = copy.attachment(*id).await.unwrap().expect("acknowledged attachment lost");
        assert_eq!(&a.sha256, sha);
    }
    // Every attachment the copy holds (those acknowledged during the backup too) has
    // its file, with the right bytes.
    let held = copy.case_attachments(holder_id).await.unwrap();
    assert!(held.len() >= before.attachments.len());
    for a in &held {
        let bytes = copy_blobs.get(&a.sha256).await.expect("attachment file restored");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), a.sha256);
    }
    let verified = copy.verify_audit().await.unwrap();
    assert!(verified.is_intact(), "restored chain broken at {:?}", verified.first_broken_seq);
    let restored_events = copy.audit_events().await.unwrap();
    let chain = |events: &[mdt_coordinator::domain::AuditEvent]| {
        events.iter().map(|e| (e.seq, e.hash.clone())).collect::<Vec<_>>()
    };
    // The copy is the live chain as of one instant: a prefix, holding every event
    // acknowledged before the backup started.
    assert!(restored_events.len() <= live_events.len());
    assert_eq!(chain(&restored_events), chain(&live_events[..restored_events.len()]));
    let restored_chain = chain(&restored_events);
    for event in &before.audits {
        assert!(restored_chain.contains(event), "acknowledged audit event {} lost", event.0);
    }
    drop(copy);

    if backend == Backend::Sqlite {
        // Restoring over a database is refused unless forced.
        let file = db.dir.path().join("again.backup");
        succeeded("backup", &cli(&db, &["backup", "--to", file.to_str().unwrap()]));
        let refused = cli(&restored, &["restore", "--from", file.to_str().unwrap()]);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
        let forced = cli(&restored, &["restore", "--force", "--from", file.to_str().unwrap()]);
        succeeded("restore --force", &forced);
        let copy = restored.store().await;
        assert_eq!(copy.audit_events().await.unwrap().len(), live_events.len());
        assert!(copy.verify_audit().await.unwrap().is_intact());
        drop(copy);

        // A backup whose chain or whose files were changed replaces nothing.
        let backup = db.dir.path().join("again.backup");
        let tampered = async |file: &str, sql: &str| {
            let from = db.dir.path().join(file);
            std::fs::copy(&backup, &from).unwrap();
            let url = format!("sqlite://{}", from.display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            c.execute(sqlx::AssertSqlSafe(sql.to_string())).await.unwrap();
            c.close().await.unwrap();
            cli(&restored, &["restore", "--force", "--from", from.to_str().unwrap()])
        };
        let link = "INSERT INTO audit_event_records (record_id, seq) VALUES ('case-9999', 4)";
        let broken = tampered("broken-chain.backup", link).await;
        assert!(!broken.status.success());
        assert!(String::from_utf8_lossy(&broken.stderr).contains("broken at event 4"));
        let altered = "UPDATE sqlar SET data = zeroblob(sz) WHERE rowid = 1";
        let damaged = tampered("damaged-file.backup", altered).await;
        assert!(!damaged.status.success());
        assert!(String::from_utf8_lossy(&damaged.stderr).contains("does not match its digest"));
        let copy = restored.store().await;
        assert_eq!(copy.audit_events().await.unwrap().len(), live_events.len());
        assert!(copy.verify_audit().await.unwrap().is_intact());
        // Nothing is left of the staged copies.
        let staged: Vec<_> = std::fs::read_dir(restored.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with('.'))
            .collect();
        assert!(staged.is_empty(), "left behind: {staged:?}");
    }
}

crate::on_both_backends!(backup_under_write_load_restores_every_acknowledged_write);
