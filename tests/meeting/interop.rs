//! Interoperability of the SFU with an independent WebRTC stack (issue 5): aiortc peers
//! (`tests/interop/aiortc_peers.py`) present real VP8 video through the server and two
//! subscribers decode it; the time from each subscriber's join to its first frame is
//! printed.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use mdt_coordinator::domain::Role;

use crate::common::Backend;
use crate::live::{account, Meeting};

/// Frames each subscriber must decode.
const FRAMES: u64 = 10;

/// Whether aiortc can be imported; under CI it must be (`.ci/run` installs it).
fn aiortc_available() -> bool {
    let available = Command::new("python3")
        .args(["-c", "import aiortc, websockets"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        crate::common::skip(
            "no aiortc: python3 -m pip install aiortc websockets (pins in .ci/run)",
        );
    }
    available
}

/// The Python process; killed and reaped when dropped, even if the test fails.
struct Peers(Child);

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiortc_peers_present_and_decode_vp8_through_the_sfu() {
    if !aiortc_available() {
        return;
    }
    let m = Meeting::open(Backend::Sqlite, false).await;
    let (third, _) = account(&m.app, "third@example.org", Role::Consultant, "rheumatology").await;
    let spec = json!({
        "base": m.app.base,
        "session": m.session,
        "chair": m.chair,
        "presenter": { "token": m.physio, "user_id": m.physio_id },
        "subscribers": [
            { "name": "colleague", "token": m.colleague },
            { "name": "third", "token": third },
        ],
        "frames": FRAMES,
        "timeout": 30,
    });

    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/aiortc_peers.py");
    let mut peers = Peers(
        Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python3"),
    );
    let mut stdin = peers.0.stdin.take().unwrap();
    stdin.write_all(spec.to_string().as_bytes()).unwrap();
    drop(stdin);
    let mut stdout = peers.0.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    // The script's progress and SDPs, shown as they come (the harness captures them
    // unless --nocapture) and kept for the failure message.
    let stderr = peers.0.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var_os("INTEROP_VERBOSE").is_some() {
                eprintln!("{line}");
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = peers.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the aiortc peers did not finish in 90 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let out = out.join().unwrap();
    let log = log.join().unwrap();
    let reports: Vec<Value> = out
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n--- their log ---\n{log}"))
        })
        .collect();
    let subscribers: Vec<&Value> = reports.iter().filter(|r| r["subscriber"].is_string()).collect();
    assert!(
        status.success() && subscribers.len() == 2,
        "the aiortc peers failed ({status}):\n{out}\n--- their log ---\n{log}"
    );
    for r in subscribers {
        let name = r["subscriber"].as_str().unwrap();
        assert!(r["frames"].as_u64().unwrap() >= FRAMES, "{name} decoded too few frames: {r}");
        assert_eq!(r["sizes"], json!(["640x360"]), "{name}: {r}");
        // The forwarded screen is labelled with its presenter (`a=msid:<user id> screen-<n>`).
        assert!(
            r["video_msids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v.as_str().unwrap().starts_with(&format!("{} ", m.physio_id))),
            "{name}: the video's msid names the presenter: {r}"
        );
        assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(640), Some(360)));
        println!(
            "{name}: {} frames of {}x{}; from joining: first frame {} ms (video track {} ms, \
             connected {} ms, first video RTP {} ms, first keyframe {} ms); {} keyframes",
            r["frames"],
            r["width"],
            r["height"],
            r["join_to_first_frame_ms"],
            r["join_to_video_track_ms"],
            r["join_to_connected_ms"],
            r["join_to_first_rtp_ms"],
            r["join_to_first_keyframe_ms"],
            r["keyframes_received"],
        );
    }
    if let Some(p) = reports.iter().find(|r| r["presenter"] == true) {
        println!(
            "presenter: {} frames sent, {} keyframe requests from the server",
            p["frames_sent"], p["keyframe_requests"]
        );
    }
}
