//! Shared image viewer benchmark (issue 18): what a render costs, how fast the
//! presenter's view reaches fifty followers, and what that costs on the wire beside a
//! screen share of the same view.
//!
//! - **Render, in the process**: a 512×512 signed 16-bit MONOCHROME2 CT slice (a made-up
//!   phantom with noise, rescale intercept −1024, a stored window) built with dicom-object
//!   in memory; `viewer::render` from the file's bytes (parse, decode, window, PNG) with a
//!   new window each time (cold), and a hit in `store::renders::Renders` (cached). The
//!   same cold render of the middle frame of a 100-frame study (≈52 MB).
//! - **Render, over HTTP** on the real `mdt-coordinator serve` (SQLite in a temporary
//!   directory; PostgreSQL too when `MDT_BENCH_POSTGRES_URL` names an admin URL): both
//!   files uploaded to a case, then `GET /api/attachments/{id}/render` cold (a new window
//!   each time) and cached (the same parameters), auth and audit write included.
//! - **View sync**: a chair, a presenter (the practitioner who booked the case, granted
//!   presenting) and N followers (consultants of the specialty, five connections per
//!   account) in a live meeting on the case; the presenter sends `view` commands 110 ms
//!   apart (just slower than the room's ten a second, so none is superseded), changing
//!   zoom and pan each time and the window every tenth. Latency is the harness clock from
//!   sending a command to each follower reading its `view_changed` (matched by zoom); a
//!   view a follower never gets counts as lost.
//! - **Bytes**: per follower per second, the `view_changed` frames (payload and WebSocket
//!   header) and the PNGs one follower fetches at each window change; beside it a real
//!   WebRTC VP8 track of the same motion drawn on a canvas in Chromium
//!   (`benches/viewer-screen/measure.mjs`, needs `/usr/bin/chromium` and `npm ci --prefix
//!   tests/e2e`); if it cannot run, the table says why.
//!
//! Every figure is taken in each of several runs (the same server, fresh windows) and
//! reported as the median over the runs of each run's p50 and p99.
//!
//! Run: `cargo bench --bench viewer`.
//! Environment: `VIEWER_RUNS` (3), `VIEWER_FOLLOWERS` (50), `VIEWER_VIEWS` (200 per run),
//! `VIEWER_FRAMES` (100), `VIEWER_SCREEN_SECONDS` (10), `VIEWER_SCREEN_WARMUP` (8, seconds
//! for the video's bandwidth estimate to ramp up), `VIEWER_SCREEN_SIZES`
//! (`1280x720,1920x1080`), `MDT_BENCH_POSTGRES_URL=postgres://user@host/postgres`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use mdt_coordinator::domain::attachment::AttachmentKind;
use mdt_coordinator::domain::viewer::{self, RenderRequest, Window};
use mdt_coordinator::store::renders::{RenderKey, Renders};
use support::{median, percentile_ms, Ours, PgDatabase};

mod support;

const SIDE: u16 = 512;
/// Cold renders of the 512×512 slice per run (in the process, and over HTTP).
const COLD: usize = 30;
/// Cache hits per run in the process; cached requests per run over HTTP.
const CACHED: usize = 2000;
const HTTP_CACHED: usize = 200;
/// Cold renders of the multi-frame study's middle frame per run.
const MULTI: usize = 3;
/// Consultant accounts the followers share.
const CONSULTANTS: usize = 10;
/// Between two `view` commands: just slower than the room's ten a second.
const VIEW_GAP: Duration = Duration::from_millis(110);
/// A view not read this long after the last one was sent counts as lost.
const DRAIN: Duration = Duration::from_secs(2);
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
const PASSWORD: &str = "viewer benchmark password 2026";
const COORDINATOR: &str = "coord@viewer-bench.test";
const CHAIR: &str = "chair@viewer-bench.test";
const PRESENTER: &str = "physio@viewer-bench.test";
const NHS: &str = "9912003888";

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

fn main() -> std::process::ExitCode {
    match tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run()))
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("viewer benchmark failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct Config {
    runs: usize,
    followers: usize,
    views: usize,
    frames: u32,
    screen_seconds: u32,
    screen_warmup: u32,
    screen_sizes: String,
    postgres: Option<String>,
}

impl Config {
    fn from_env() -> Result<Self> {
        fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
            match std::env::var(name) {
                Ok(v) => v.parse().map_err(|_| anyhow!("{name}={v} is not a number")),
                Err(_) => Ok(default),
            }
        }
        Ok(Self {
            runs: number("VIEWER_RUNS", 3)?.max(1),
            followers: number("VIEWER_FOLLOWERS", 50)?.max(1),
            views: number("VIEWER_VIEWS", 200)?.max(2),
            frames: number("VIEWER_FRAMES", 100)?.max(2),
            screen_seconds: number("VIEWER_SCREEN_SECONDS", 10)?.max(1),
            screen_warmup: number("VIEWER_SCREEN_WARMUP", 8)?,
            screen_sizes: std::env::var("VIEWER_SCREEN_SIZES")
                .unwrap_or_else(|_| "1280x720,1920x1080".into()),
            postgres: std::env::var("MDT_BENCH_POSTGRES_URL").ok().filter(|u| !u.is_empty()),
        })
    }
}

async fn run() -> Result<()> {
    let config = Config::from_env()?;
    eprintln!("building the CT files in memory…");
    let slice = ct_dicom(1)?;
    let study = ct_dicom(config.frames)?;
    let middle = config.frames / 2;
    eprintln!(
        "  slice: {} bytes; study: {} frames, {:.1} MB",
        slice.len(),
        config.frames,
        study.len() as f64 / 1e6
    );

    eprintln!("rendering in the process…");
    let mut local = Vec::new();
    for run in 0..config.runs {
        local.push(render_in_process(&slice, &study, middle, run)?);
    }

    let mut backends = vec![("SQLite", None)];
    if let Some(admin) = &config.postgres {
        backends.push(("PostgreSQL", Some(admin.clone())));
    }
    let mut served = Vec::new();
    for (label, admin) in backends {
        eprintln!("{label}: starting mdt-coordinator serve…");
        served.push((label, on_server(&config, admin.as_deref(), &slice, &study, middle).await?));
    }

    eprintln!("screen share of the same view in Chromium…");
    let screen = screen_share(&config, &slice);
    print_report(&config, study.len() as f64 / 1e6, &local, &served, &screen);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The CT files
// ---------------------------------------------------------------------------------------

/// A 512×512 signed 16-bit CT of `frames` slices of a made-up chest phantom (air, body,
/// fat rim, lungs shrinking towards the ends, spine) with ±15 HU of noise, in explicit
/// VR little endian, stored as HU + 1024 with rescale intercept −1024.
fn ct_dicom(frames: u32) -> Result<Vec<u8>> {
    let side = usize::from(SIDE);
    let mut pixels = Vec::with_capacity(side * side * 2 * frames as usize);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for frame in 0..frames {
        let lungs = 1.0 - 0.6 * (f64::from(frame) / f64::from(frames.max(2) - 1) - 0.5).abs();
        for y in 0..side {
            for x in 0..side {
                let (u, v) = (x as f64 / 256.0 - 1.0, y as f64 / 256.0 - 1.0);
                let body = (u / 0.85).powi(2) + (v / 0.65).powi(2);
                let lung =
                    |c: f64| ((u - c) / (0.28 * lungs)).powi(2) + (v / (0.4 * lungs)).powi(2);
                let hu = if body > 1.0 {
                    -1000.0
                } else if (u / 0.08).powi(2) + ((v - 0.45) / 0.08).powi(2) <= 1.0 {
                    700.0 + 100.0 * v
                } else if lung(-0.4) <= 1.0 || lung(0.4) <= 1.0 {
                    -850.0 + 60.0 * v
                } else if body > 0.85 {
                    -100.0
                } else {
                    40.0 + 30.0 * u
                };
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let noise = (seed % 31) as f64 - 15.0;
                pixels.extend_from_slice(&((hu + noise + 1024.0) as i16).to_le_bytes());
            }
        }
    }
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |group: u16, element: u16, vr: VR, value: PrimitiveValue| {
        obj.put(DataElement::new(Tag(group, element), vr, value));
    };
    put(0x0008, 0x0016, VR::UI, "1.2.840.10008.5.1.4.1.1.2".into());
    put(0x0008, 0x0018, VR::UI, format!("2.25.{}", Uuid::new_v4().as_u128()).into());
    put(0x0008, 0x0020, VR::DA, "20261206".into());
    put(0x0008, 0x0060, VR::CS, "CT".into());
    put(0x0008, 0x103E, VR::LO, "Bench chest phantom".into());
    put(0x0010, 0x0010, VR::PN, "Phantom^Bench".into());
    put(0x0010, 0x0020, VR::LO, "BENCH0001".into());
    put(0x0018, 0x0015, VR::CS, "CHEST".into());
    put(0x0028, 0x0002, VR::US, 1u16.into());
    put(0x0028, 0x0004, VR::CS, "MONOCHROME2".into());
    if frames > 1 {
        put(0x0028, 0x0008, VR::IS, frames.to_string().into());
    }
    put(0x0028, 0x0010, VR::US, SIDE.into());
    put(0x0028, 0x0011, VR::US, SIDE.into());
    put(0x0028, 0x0030, VR::DS, "0.7\\0.7".into());
    put(0x0028, 0x0100, VR::US, 16u16.into());
    put(0x0028, 0x0101, VR::US, 16u16.into());
    put(0x0028, 0x0102, VR::US, 15u16.into());
    put(0x0028, 0x0103, VR::US, 1u16.into());
    put(0x0028, 0x1050, VR::DS, "40".into());
    put(0x0028, 0x1051, VR::DS, "400".into());
    put(0x0028, 0x1052, VR::DS, "-1024".into());
    put(0x0028, 0x1053, VR::DS, "1".into());
    put(0x7FE0, 0x0010, VR::OW, pixels.into());
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1"))
        .context("DICOM meta table")?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).context("write the DICOM file")?;
    let info = viewer::info(AttachmentKind::Dicom, &bytes)
        .map_err(|e| anyhow!("the generated CT does not read back: {e:?}"))?;
    let facts = serde_json::to_value(&info)?;
    if facts["frames"] != json!(frames) || facts["rows"] != json!(SIDE) {
        bail!("the generated CT reads back as {facts}");
    }
    Ok(bytes)
}

fn window(n: usize) -> Option<Window> {
    Window::new(40.0 + n as f64, 400.0)
}

// ---------------------------------------------------------------------------------------
// Rendering in the process
// ---------------------------------------------------------------------------------------

/// One run's in-process figures.
struct Local {
    cold: Vec<Duration>,
    cached: Vec<Duration>,
    multi: Vec<Duration>,
    png_bytes: usize,
}

fn render_in_process(slice: &[u8], study: &[u8], middle: u32, run: usize) -> Result<Local> {
    let render = |bytes: &[u8], frame: u32, n: usize| -> Result<(Duration, Vec<u8>)> {
        let request = RenderRequest { frame, window: window(n), size: None };
        let started = Instant::now();
        let png = viewer::render(AttachmentKind::Dicom, bytes, &request)
            .map_err(|e| anyhow!("render: {e:?}"))?;
        Ok((started.elapsed(), std::hint::black_box(png)))
    };
    let mut cold = Vec::with_capacity(COLD);
    let mut png_bytes = 0;
    for i in 0..COLD {
        let (took, png) = render(slice, 0, run * COLD + i)?;
        cold.push(took);
        png_bytes = png.len();
    }
    let mut multi = Vec::with_capacity(MULTI);
    for i in 0..MULTI {
        multi.push(render(study, middle, 10_000 + run * MULTI + i)?.0);
    }

    // A cache as the server holds it (64 MiB), with the meeting's other windows in it.
    let renders = Renders::new(64 * 1024 * 1024);
    let sha = hex::encode(Sha256::digest(slice));
    let request = RenderRequest { frame: 0, window: window(0), size: None };
    let png: std::sync::Arc<[u8]> = render(slice, 0, 0)?.1.into();
    for i in 0..50 {
        let other = RenderRequest { window: window(i + 1), ..request };
        renders.insert(RenderKey::new(&sha, &other), png.clone());
    }
    renders.insert(RenderKey::new(&sha, &request), png);
    let mut cached = Vec::with_capacity(CACHED);
    for _ in 0..CACHED {
        let started = Instant::now();
        let hit = renders.get(&RenderKey::new(&sha, &request));
        cached.push(started.elapsed());
        std::hint::black_box(hit).context("the render cache missed")?;
    }
    Ok(Local { cold, cached, multi, png_bytes })
}

// ---------------------------------------------------------------------------------------
// The server: HTTP renders and view sync
// ---------------------------------------------------------------------------------------

/// One run's figures on one server.
#[derive(Default)]
struct Served {
    http_cold: Vec<Duration>,
    http_cached: Vec<Duration>,
    http_multi: Vec<Duration>,
    sync: Vec<Duration>,
    sent: usize,
    lost: usize,
    superseded: usize,
    /// `view_changed` bytes one follower read, per second of the run (median follower).
    view_bytes_per_s: f64,
    view_frame_bytes: f64,
    views_per_s: f64,
    /// PNGs one follower fetched at window changes: bytes per second, and per PNG.
    png_bytes_per_s: f64,
    png_bytes: f64,
    pngs_per_s: f64,
    /// Uploading the multi-frame study (once per server, the same in each run).
    upload: Duration,
}

struct Running {
    child: Child,
    ours: Option<Ours>,
    _database: Option<PgDatabase>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.ours.take();
    }
}

async fn on_server(
    config: &Config, admin: Option<&str>, slice: &[u8], study: &[u8], middle: u32,
) -> Result<Vec<Served>> {
    let (database, url) = match admin {
        Some(admin) => {
            let (db, url) =
                PgDatabase::create(admin, "mdt_viewer").await.context("MDT_BENCH_POSTGRES_URL")?;
            (Some(db), Some(url))
        }
        None => (None, None),
    };
    let mut ours = Ours::new(url)?;
    let cap = (study.len() + (1 << 20)).max(26_214_400);
    ours.set("MDT__LOG__FILTER", "warn").set("MDT__DATA__ATTACHMENT_MAX_BYTES", cap.to_string());
    ours.add_coordinator(COORDINATOR, "Bench Coordinator", PASSWORD)?;
    let child = ours.serve().await?;
    let base = ours.base();
    let port = ours.port;
    let _running = Running { child, ours: Some(ours), _database: database };

    let api = Api { http: reqwest::Client::new(), base: base.clone() };
    let meeting = Meeting::set_up(&api, port).await?;
    let slice_id = meeting.attach(&api, "slice.dcm", slice.to_vec()).await?;
    let upload = Instant::now();
    let study_id = meeting.attach(&api, "study.dcm", study.to_vec()).await?;
    let upload = upload.elapsed();

    let mut runs: Vec<Served> = Vec::new();
    for run in 0..config.runs {
        let mut served = Served { upload, ..Served::default() };
        let token = &meeting.presenter;
        for i in 0..COLD {
            let n = 1_000 + run * COLD + i;
            served.http_cold.push(api.render(token, &slice_id, 0, n).await?.0);
        }
        api.render(token, &slice_id, 0, 0).await?;
        for _ in 0..HTTP_CACHED {
            served.http_cached.push(api.render(token, &slice_id, 0, 0).await?.0);
        }
        for i in 0..MULTI {
            let n = 20_000 + run * MULTI + i;
            served.http_multi.push(api.render(token, &study_id, middle, n).await?.0);
        }
        runs.push(served);
    }
    eprintln!("  HTTP renders done; view sync with {} followers…", config.followers);
    view_sync(config, &api, &meeting, &slice_id, &mut runs).await?;
    Ok(runs)
}

/// The REST API as the set-up and the renders use it.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, token: Option<&str>, path: &str, body: &Value) -> Result<Value> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = res.status();
        let body = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} answered {status}: {body}");
        }
        Ok(body)
    }

    async fn login(&self, email: &str) -> Result<String> {
        let body = json!({"email": email, "password": PASSWORD});
        field(&self.post(None, "/api/auth/login", &body).await?, "access_token")
    }

    async fn user(&self, token: &str, email: &str, role: &str) -> Result<String> {
        let body = json!({
            "email": email, "name": format!("Bench {role}"), "role": role,
            "specialties": ["rheumatology"], "password": PASSWORD,
        });
        field(&self.post(Some(token), "/api/users", &body).await?, "id")
    }

    /// One render, read to the end: how long it took and its bytes.
    async fn render(
        &self, token: &str, id: &str, frame: u32, n: usize,
    ) -> Result<(Duration, usize)> {
        let w = window(n).context("window")?;
        let url = format!(
            "{}/api/attachments/{id}/render?frame={frame}&wc={}&ww={}",
            self.base, w.center, w.width
        );
        let started = Instant::now();
        let res = self.http.get(&url).bearer_auth(token).send().await.context("GET render")?;
        let status = res.status();
        let body = res.bytes().await.context("read the render")?;
        let took = started.elapsed();
        if status != StatusCode::OK {
            bail!("GET {url} answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok((took, body.len()))
    }
}

fn field(body: &Value, name: &str) -> Result<String> {
    body[name].as_str().map(str::to_string).with_context(|| format!("no string `{name}` in {body}"))
}

/// The accounts, the session and the case under discussion.
struct Meeting {
    port: u16,
    origin: String,
    session: String,
    case: String,
    chair: String,
    presenter: String,
    presenter_id: String,
    consultants: Vec<String>,
}

impl Meeting {
    /// As a coordinator would: a consultant chair, a practitioner who books the case (and
    /// presents it), consultants of the specialty who follow, a session three days ahead
    /// (the bench server lets meetings open early) and the case accepted onto its agenda.
    async fn set_up(api: &Api, port: u16) -> Result<Self> {
        let coordinator = api.login(COORDINATOR).await?;
        let chair_id = api.user(&coordinator, CHAIR, "consultant").await?;
        let presenter_id = api.user(&coordinator, PRESENTER, "practitioner").await?;
        let mut consultants = Vec::new();
        for i in 0..CONSULTANTS {
            let email = format!("consultant{i}@viewer-bench.test");
            api.user(&coordinator, &email, "consultant").await?;
            consultants.push(api.login(&email).await?);
        }
        let starts_at = (chrono::Utc::now() + chrono::TimeDelta::days(3)).to_rfc3339();
        let session = api
            .post(
                Some(&coordinator),
                "/api/sessions",
                &json!({
                    "specialty": "rheumatology", "starts_at": starts_at,
                    "duration_minutes": 120, "case_capacity": 6, "chair_id": chair_id,
                    "booking_cutoff_hours": 24, "teaching": false,
                }),
            )
            .await?;
        let session = field(&session, "id")?;
        let presenter = api.login(PRESENTER).await?;
        let booking = json!({
            "patient": {
                "nhs_number": NHS, "given_name": "Hermione", "family_name": "Quibble",
                "date_of_birth": "1978-05-17", "sex": "female", "gp_practice_code": "A81001",
            },
            "clinical_question": "Erosions on the CT: escalate treatment?",
            "history": "Twelve weeks of hand pain and morning stiffness.",
            "urgency": "routine", "body_site": "hands", "red_flags": [],
            "free_text_identifies_patient": true, "patient_agrees": true,
            "referral_received_on": "2026-11-02", "referral_source": "gp",
        });
        let path = format!("/api/sessions/{session}/cases");
        let case = field(&api.post(Some(&presenter), &path, &booking).await?, "id")?;
        api.post(
            Some(&coordinator),
            &format!("/api/cases/{case}/triage"),
            &json!({"decision": "accept"}),
        )
        .await?;
        Ok(Self {
            port,
            origin: api.base.clone(),
            session,
            case,
            chair: api.login(CHAIR).await?,
            presenter,
            presenter_id,
            consultants,
        })
    }

    /// Uploads a DICOM file to the case as the presenter; its attachment id.
    async fn attach(&self, api: &Api, name: &str, bytes: Vec<u8>) -> Result<String> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str("application/dicom")?;
        let res = api
            .http
            .post(format!("{}/api/cases/{}/attachments", api.base, self.case))
            .bearer_auth(&self.presenter)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .context("upload")?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status != StatusCode::CREATED {
            bail!("upload of {name} answered {status}: {body}");
        }
        field(&body, "id")
    }

    /// A live connection for `token` (a fresh ticket), past its snapshot.
    async fn connect(&self, api: &Api, token: &str) -> Result<Socket> {
        let ticket = api
            .post(Some(token), &format!("/api/sessions/{}/live-ticket", self.session), &json!({}))
            .await?;
        let url = format!(
            "ws://127.0.0.1:{}/api/sessions/{}/live?ticket={}",
            self.port,
            self.session,
            query_escape(&field(&ticket, "ticket")?)
        );
        let mut request = url.into_client_request()?;
        request.headers_mut().insert("Origin", self.origin.parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .context("WebSocket handshake")?;
        let first = tokio::time::timeout(REPLY_TIMEOUT, next_text(&mut socket))
            .await
            .context("no snapshot within 5 s")??;
        if !first.contains("\"snapshot\"") {
            bail!("the first message was not a snapshot: {first}");
        }
        Ok(socket)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn next_text(socket: &mut Socket) -> Result<String> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_string()),
            Some(Ok(Message::Close(frame))) => bail!("closed by the server: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

/// Sends a command and reads until its answer: `Ok(())` for an ack, `Err(code)` else.
async fn command(socket: &mut Socket, id: &str, command: Value) -> Result<Result<(), String>> {
    let text = json!({"type": "command", "id": id, "command": command}).to_string();
    socket.send(Message::text(text)).await.with_context(|| format!("send {id}"))?;
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    loop {
        let text = tokio::time::timeout_at(deadline, next_text(socket))
            .await
            .with_context(|| format!("no answer to {id} within 5 s"))??;
        let reply: Value = serde_json::from_str(&text)?;
        if reply["id"] != json!(id) {
            continue;
        }
        return Ok(match reply["type"].as_str() {
            Some("ack") => Ok(()),
            _ => Err(reply["code"].as_str().unwrap_or("?").to_string()),
        });
    }
}

/// What one follower read: when each view arrived (by index), and the frames' bytes.
#[derive(Default)]
struct FollowerLog {
    seen: HashMap<usize, Instant>,
    view_bytes: Vec<(usize, usize)>,
}

/// The zoom that names view `k` (exact in binary, so it reads back as sent).
fn zoom(k: usize) -> f64 {
    1.0 + k as f64 / 64.0
}

/// The window centre of view `k`: a new one every tenth view.
fn view_wc(k: usize) -> f64 {
    40.0 + 10.0 * ((k / 10) % 8) as f64
}

async fn follow(
    mut socket: Socket, mut stop: watch::Receiver<bool>,
    fetch: Option<mpsc::UnboundedSender<(usize, f64)>>,
) -> Result<FollowerLog> {
    let mut log = FollowerLog::default();
    let mut last_wc = None;
    loop {
        let text = tokio::select! {
            _ = stop.changed() => return Ok(log),
            text = next_text(&mut socket) => text?,
        };
        let at = Instant::now();
        if !text.contains("view_changed") {
            continue;
        }
        let message: Value = serde_json::from_str(&text)?;
        let event = &message["event"];
        if message["type"] != "event" || event["kind"] != "view_changed" {
            continue;
        }
        let Some(z) = event["zoom"].as_f64() else { continue };
        let k = ((z - 1.0) * 64.0).round() as usize;
        log.seen.insert(k, at);
        let header = if text.len() < 126 { 2 } else { 4 };
        log.view_bytes.push((k, text.len() + header));
        let wc = event["wc"].as_f64();
        if let (Some(fetch), Some(wc)) = (&fetch, wc) {
            if last_wc != Some(wc) {
                let _ = fetch.send((k, wc));
            }
        }
        last_wc = wc;
    }
}

async fn view_sync(
    config: &Config, api: &Api, meeting: &Meeting, attachment: &str, runs: &mut [Served],
) -> Result<()> {
    let mut chair = meeting.connect(api, &meeting.chair).await.context("the chair")?;
    let mut presenter = meeting.connect(api, &meeting.presenter).await.context("the presenter")?;
    let (stop, stopped) = watch::channel(false);
    let (fetch_tx, mut fetch_rx) = mpsc::unbounded_channel::<(usize, f64)>();
    let mut followers = Vec::new();
    for i in 0..config.followers {
        let token = &meeting.consultants[i % CONSULTANTS];
        let socket = meeting.connect(api, token).await.with_context(|| format!("follower {i}"))?;
        let fetch = (i == 0).then(|| fetch_tx.clone());
        followers.push(tokio::spawn(follow(socket, stopped.clone(), fetch)));
    }
    drop(fetch_tx);

    // One follower fetches the PNG at each window change, as its viewer would.
    let fetcher = {
        let (api, token, id) = (
            Api { http: api.http.clone(), base: api.base.clone() },
            meeting.consultants[0].clone(),
            attachment.to_string(),
        );
        tokio::spawn(async move {
            let mut fetched = Vec::new();
            while let Some((k, wc)) = fetch_rx.recv().await {
                let n = (wc - 40.0) as usize;
                fetched.push((k, api.render(&token, &id, 0, n).await?.1));
            }
            anyhow::Ok(fetched)
        })
    };

    for (id, cmd) in [
        ("open", json!({"kind": "open_meeting"})),
        ("grant", json!({"kind": "grant_present", "user_id": meeting.presenter_id})),
        ("start", json!({"kind": "start_case", "case_id": meeting.case})),
    ] {
        if let Err(code) = command(&mut chair, id, cmd).await? {
            bail!("the chair's {id} was refused: {code}");
        }
    }
    // The chair reads everything so that its queue never fills.
    let chair_drain = {
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    m = next_text(&mut chair) => if m.is_err() { break },
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The presenter's views: each run a block of indices, 110 ms apart.
    let mut sent: Vec<(usize, Instant, bool)> = Vec::new();
    let mut durations = Vec::new();
    for run in 0..runs.len() {
        let started = Instant::now();
        for k in run * config.views..(run + 1) * config.views {
            let view = json!({
                "kind": "view", "attachment_id": attachment, "frame": 0, "zoom": zoom(k),
                "pan": [0.3 + (k % 40) as f64 / 100.0, 0.5], "wc": view_wc(k), "ww": 400,
            });
            let at = Instant::now();
            let applied = match command(&mut presenter, &format!("v{k}"), view).await? {
                Ok(()) => true,
                Err(code) if code == "view_superseded" => false,
                Err(code) => bail!("view {k} was refused: {code}"),
            };
            sent.push((k, at, applied));
            tokio::time::sleep_until((at + VIEW_GAP).into()).await;
        }
        durations.push(started.elapsed());
    }
    tokio::time::sleep(DRAIN).await;
    stop.send(true)?;
    chair_drain.await?;
    let mut logs = Vec::new();
    for f in followers {
        logs.push(f.await??);
    }
    let fetched = fetcher.await??;

    for (run, served) in runs.iter_mut().enumerate() {
        let range = run * config.views..(run + 1) * config.views;
        let secs = durations[run].as_secs_f64();
        for &(k, at, applied) in sent.iter().filter(|(k, _, _)| range.contains(k)) {
            served.sent += 1;
            if !applied {
                served.superseded += 1;
                continue;
            }
            for log in &logs {
                match log.seen.get(&k) {
                    Some(got) => served.sync.push(got.saturating_duration_since(at)),
                    None => served.lost += 1,
                }
            }
        }
        let per_follower: Vec<f64> = logs
            .iter()
            .map(|log| {
                let bytes: usize =
                    log.view_bytes.iter().filter(|(k, _)| range.contains(k)).map(|(_, b)| b).sum();
                bytes as f64 / secs
            })
            .collect();
        let frames: Vec<usize> =
            logs[0].view_bytes.iter().filter(|(k, _)| range.contains(k)).map(|(_, b)| *b).collect();
        served.view_bytes_per_s = median(per_follower);
        served.view_frame_bytes = frames.iter().sum::<usize>() as f64 / frames.len().max(1) as f64;
        served.views_per_s = frames.len() as f64 / secs;
        let pngs: Vec<usize> =
            fetched.iter().filter(|(k, _)| range.contains(k)).map(|(_, b)| *b).collect();
        served.png_bytes_per_s = pngs.iter().sum::<usize>() as f64 / secs;
        served.png_bytes = pngs.iter().sum::<usize>() as f64 / pngs.len().max(1) as f64;
        served.pngs_per_s = pngs.len() as f64 / secs;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The screen share beside it
// ---------------------------------------------------------------------------------------

/// One resolution's figures from `measure.mjs`, one entry per run.
struct Screen {
    size: String,
    bytes_per_s: Vec<f64>,
    frames_per_s: Vec<f64>,
    note: String,
}

/// Runs `node benches/viewer-screen/measure.mjs` once per run; `Err` says why the
/// screen share could not be measured.
fn screen_share(config: &Config, slice: &[u8]) -> Result<Vec<Screen>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/viewer-screen/measure.mjs");
    let request = RenderRequest { frame: 0, window: None, size: None };
    let png = viewer::render(AttachmentKind::Dicom, slice, &request)
        .map_err(|e| format!("could not render the frame to share: {e:?}"))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("ct.png");
    std::fs::write(&path, png).map_err(|e| e.to_string())?;
    let mut screens: Vec<Screen> = Vec::new();
    for run in 0..config.runs {
        eprintln!("  run {}/{}", run + 1, config.runs);
        let out = Command::new("node")
            .arg(&script)
            .arg(&path)
            .arg(&config.screen_sizes)
            .arg(config.screen_seconds.to_string())
            .arg(config.screen_warmup.to_string())
            .output()
            .map_err(|e| format!("could not run node ({e})"))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(format!("measure.mjs failed ({}): {}", out.status, why.trim()));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let r: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
            let size = format!("{}x{}", r["width"], r["height"]);
            let note = format!(
                "{} sent at {}x{}, quality limited by {}",
                r["codec"].as_str().unwrap_or("?"),
                r["frame_width"],
                r["frame_height"],
                r["quality_limitation"].as_str().unwrap_or("?")
            );
            let i = match screens.iter().position(|s| s.size == size) {
                Some(i) => i,
                None => {
                    screens.push(Screen {
                        size,
                        bytes_per_s: vec![],
                        frames_per_s: vec![],
                        note: String::new(),
                    });
                    screens.len() - 1
                }
            };
            screens[i].bytes_per_s.push(r["bytes_per_s"].as_f64().unwrap_or(f64::NAN));
            screens[i].frames_per_s.push(r["frames_per_s"].as_f64().unwrap_or(f64::NAN));
            screens[i].note = note;
        }
    }
    Ok(screens)
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

/// "p50 / p99 ms": the median over the runs of each run's p50 and p99.
fn latency<T>(runs: &[T], samples: impl Fn(&T) -> &[Duration]) -> String {
    let p = |q: f64| median(runs.iter().map(|r| percentile_ms(samples(r), q)).collect());
    format!("{} / {}", duration(p(0.5)), duration(p(0.99)))
}

/// Each run's p99, for the noise to show.
fn p99s<T>(runs: &[T], samples: impl Fn(&T) -> &[Duration]) -> String {
    let each: Vec<String> =
        runs.iter().map(|r| duration(percentile_ms(samples(r), 0.99))).collect();
    format!("p99 per run: {}", each.join(", "))
}

/// Milliseconds for people: microseconds below 0.1 ms.
fn duration(ms: f64) -> String {
    match ms {
        ms if ms < 0.1 => format!("{:.2} µs", ms * 1e3),
        ms if ms < 10.0 => format!("{ms:.2} ms"),
        ms => format!("{ms:.1} ms"),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn print_report(
    config: &Config, study_mb: f64, local: &[Local], served: &[(&str, Vec<Served>)],
    screen: &Result<Vec<Screen>, String>,
) {
    let p = |runs: &[Local], f: fn(&Local) -> &[Duration], q: f64| {
        median(runs.iter().map(|r| percentile_ms(f(r), q)).collect())
    };
    println!();
    println!(
        "Viewer benchmark: {} runs; 512x512 int16 CT; a {}-frame study; {} followers, {} views per run {} ms apart",
        config.runs,
        config.frames,
        config.followers,
        config.views,
        VIEW_GAP.as_millis()
    );
    println!("Figures are medians over the runs of each run's p50 / p99.");
    println!();
    println!("{:<58} {:>22} {:>12}", "render", "p50 / p99", "target");
    let cold_p99 = p(local, |r| &r.cold, 0.99);
    let cached_p99 = p(local, |r| &r.cached, 0.99);
    println!(
        "{:<58} {:>22} {:>12}",
        format!("512x512 cold, viewer::render (parse+decode+window+PNG)"),
        latency(local, |r| &r.cold),
        format!("<50 {}", verdict(cold_p99 < 50.0))
    );
    println!(
        "{:<58} {:>22} {:>12}",
        "512x512 cached, Renders hit",
        latency(local, |r| &r.cached),
        format!("<5 {}", verdict(cached_p99 < 5.0))
    );
    println!(
        "{:<58} {:>22} {:>12}",
        format!("{}-frame study, middle frame cold, viewer::render", config.frames),
        latency(local, |r| &r.multi),
        "none"
    );
    for (label, runs) in served {
        let http_cold_p99 =
            median(runs.iter().map(|r| percentile_ms(&r.http_cold, 0.99)).collect());
        let http_cached_p99 =
            median(runs.iter().map(|r| percentile_ms(&r.http_cached, 0.99)).collect());
        println!(
            "{:<58} {:>22} {:>12}",
            format!("HTTP GET render, 512x512 cold ({label})"),
            latency(runs, |r| &r.http_cold),
            format!("<50 {}", verdict(http_cold_p99 < 50.0))
        );
        println!(
            "{:<58} {:>22} {:>12}",
            format!("HTTP GET render, 512x512 cached ({label})"),
            latency(runs, |r| &r.http_cached),
            format!("<5 {}", verdict(http_cached_p99 < 5.0))
        );
        println!(
            "{:<58} {:>22} {:>12}",
            format!("HTTP GET render, study middle frame cold ({label})"),
            latency(runs, |r| &r.http_multi),
            "none"
        );
        if let Some(r) = runs.first() {
            println!(
                "{:<58} {:>22} {:>12}",
                format!("HTTP POST the {:.1} MB study, once ({label})", study_mb),
                duration(r.upload.as_secs_f64() * 1e3),
                "none"
            );
        }
    }
    println!("PNG of the 512x512 frame: {} bytes", local.first().map(|l| l.png_bytes).unwrap_or(0));
    println!("  in the process: cold {}", p99s(local, |r| &r.cold));
    println!("  in the process: study {}", p99s(local, |r| &r.multi));
    for (label, runs) in served {
        println!("  {label} HTTP: cold {}", p99s(runs, |r| &r.http_cold));
        println!("  {label} HTTP: cached {}", p99s(runs, |r| &r.http_cached));
        println!("  {label} HTTP: study {}", p99s(runs, |r| &r.http_multi));
    }
    println!();
    println!("{:<58} {:>22} {:>12}", "view sync, presenter to followers", "p50 / p99", "target");
    for (label, runs) in served {
        let p99 = median(runs.iter().map(|r| percentile_ms(&r.sync, 0.99)).collect());
        let lost: usize = runs.iter().map(|r| r.lost).sum();
        let superseded: usize = runs.iter().map(|r| r.superseded).sum();
        let sent: usize = runs.iter().map(|r| r.sent).sum();
        println!(
            "{:<58} {:>22} {:>12}",
            format!("{label}: {} followers", config.followers),
            latency(runs, |r| &r.sync),
            format!("p99<50 {}", verdict(p99 < 50.0 && lost == 0))
        );
        println!(
            "  {sent} views sent, {superseded} superseded, {lost} (follower, view) pairs lost{}; {}",
            if lost == 0 { "" } else { "  <- LOSS" },
            p99s(runs, |r| &r.sync)
        );
    }
    println!();
    println!("bytes per follower per second");
    for (label, runs) in served {
        let m = |f: fn(&Served) -> f64| median(runs.iter().map(f).collect());
        let views = m(|r| r.view_bytes_per_s);
        let pngs = m(|r| r.png_bytes_per_s);
        println!(
            "  shared viewer ({label}): {:.0} B/s = view_changed {:.0} B/s ({:.1}/s x {:.0} B) + PNGs {:.0} B/s ({:.2}/s x {:.0} B)",
            views + pngs,
            views,
            m(|r| r.views_per_s),
            m(|r| r.view_frame_bytes),
            pngs,
            m(|r| r.pngs_per_s),
            m(|r| r.png_bytes)
        );
    }
    match screen {
        Ok(screens) => {
            for s in screens {
                println!(
                    "  screen share, WebRTC {} canvas: {:.0} B/s at {:.1} frames/s ({}; RTP payload, median of {} runs)",
                    s.size,
                    median(s.bytes_per_s.clone()),
                    median(s.frames_per_s.clone()),
                    s.note,
                    s.bytes_per_s.len()
                );
            }
        }
        Err(why) => println!("  screen share: NOT MEASURED: {why}"),
    }
}
