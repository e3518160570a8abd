//! Media benchmark (issue 5): our SFU against the Janus VideoRoom plugin, one publisher's
//! 720p screen-share fanned out to N subscribers, both driven by the same load generator.
//!
//! The generator is this process: `webrtc` crate peers bound to 127.0.0.1, no ICE servers.
//! - **Publisher**: a synthetic VP8 stream (no encoder): frames of a fixed size at a fixed
//!   rate (default 1.5 Mbit/s at 15 fps), cut into RTP packets of at most 1,200 payload
//!   bytes with real VP8 payload descriptors (S bit, 15-bit picture id) and, on the first
//!   packet of each frame, a real VP8 frame header (keyframes: P bit 0, start code
//!   9d 01 2a, 1280×720). A keyframe goes out every few seconds and on the next frame after
//!   a PLI or FIR. Every packet carries `MDTB` and a running packet counter after the VP8
//!   headers, so loss is counted exactly.
//! - **Subscribers**: N peers that count the counters they receive. Once all of them have
//!   media, the server's CPU time (utime + stime from `/proc/<pid>/stat`) and the packets
//!   the subscribers received are read over a steady window; loss is what each subscriber
//!   missed of the counters sent in that window. RSS is the server's `VmRSS` at the end of
//!   the window. Then a late joiner subscribes, and time-to-first-frame runs from its first
//!   signalling request to the marker packet of the first complete keyframe it receives
//!   (every packet from the keyframe's first through the marker, in sequence).
//!
//! Servers, each started fresh for every measurement and stopped after it:
//! - **ours**: the real `mdt-coordinator serve` on a temporary SQLite database; a chair, a
//!   presenter and N + 1 trainees in a teaching session, signalling on the live WebSocket.
//! - **janus**: Debian's `janus` (`apt-get install janus`) with only the HTTP transport and
//!   the VideoRoom plugin, its API and ICE on loopback, driven over its HTTP API.
//!
//! Run: `cargo bench --bench media`. Environment: `MEDIA_NS` (10,50,100,200),
//! `MEDIA_RUNS` (3), `MEDIA_WINDOW_SECS` (10), `MEDIA_BITRATE_KBPS` (1500), `MEDIA_FPS`
//! (15), `MEDIA_KEYFRAME_SECS` (5), `MEDIA_ONLY=ours|janus`, `MEDIA_JOIN_CONCURRENCY` (8),
//! `MEDIA_SERVER_LOG` (our server's log filter, `error`), `MEDIA_DEBUG` (print SDPs and
//! live messages), `MEDIA_SERVER_WRAPPER` (e.g. `heaptrack`, for diagnosis only);
//! `MDT__MEDIA__*` variables pass through to our server.
//! The generator shares the machine's cores with the server it measures.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use support::{
    clock_ticks, cpu_ticks, free_port, median, rss_kib, spawn_server, status_field,
    wait_until_answering, Ours,
};

mod support;

use mdt_coordinator::media::engine::KeyframeRequests;
use rtc::interceptor::Slot;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription, Registry,
};
use webrtc::runtime::default_runtime;

/// Largest RTP payload the publisher sends, in bytes.
const MAX_PAYLOAD: usize = 1200;
/// A keyframe is this many times the size of a delta frame (a screen's full refresh).
const KEYFRAME_FACTOR: usize = 4;
/// Marks the generator's counter in a packet's payload.
const MAGIC: &[u8; 4] = b"MDTB";
const VP8_PAYLOAD_TYPE: u8 = 96;
const OPUS_PAYLOAD_TYPE: u8 = 111;
/// How long the subscribers may take to all have media before the run is abandoned.
const STEADY_TIMEOUT: Duration = Duration::from_secs(60);
/// Quiet after every subscriber has media and before the window opens.
const SETTLE: Duration = Duration::from_secs(2);
/// After the window: time for its last packets to arrive before loss is counted.
const DRAIN: Duration = Duration::from_secs(1);
/// The longest a late joiner may wait for its first frame.
const TTFF_LIMIT: Duration = Duration::from_secs(10);
/// Any one signalling step (HTTP request, event, ICE gathering).
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "media benchmark password 2026";
const COORDINATOR: &str = "coord@media-bench.test";
const CHAIR: &str = "chair@media-bench.test";
const PRESENTER: &str = "presenter@media-bench.test";

fn main() -> std::process::ExitCode {
    match bench() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("media benchmark failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bench() -> Result<()> {
    let config = Config::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(run(&config))
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

struct Config {
    ns: Vec<usize>,
    runs: usize,
    window: Duration,
    bitrate: u64,
    fps: u32,
    keyframe_every: Duration,
    targets: Vec<Target>,
    join_concurrency: usize,
}

impl Config {
    fn from_env() -> Result<Self> {
        let count =
            |name: &str, default: u64| -> Result<u64> {
                match std::env::var(name) {
                    Err(_) => Ok(default),
                    Ok(v) => v.trim().parse::<u64>().ok().filter(|n| *n > 0).with_context(|| {
                        format!("{name} must be a positive whole number, not {v:?}")
                    }),
                }
            };
        let ns = match std::env::var("MEDIA_NS") {
            Err(_) => vec![10, 50, 100, 200],
            Ok(v) => v
                .split(',')
                .map(|n| n.trim().parse::<usize>().ok().filter(|n| *n > 0))
                .collect::<Option<Vec<_>>>()
                .with_context(|| format!("MEDIA_NS must list positive numbers, not {v:?}"))?,
        };
        let targets = match std::env::var("MEDIA_ONLY").ok().as_deref().map(str::trim) {
            None | Some("") => vec![Target::Ours, Target::Janus],
            Some("ours") => vec![Target::Ours],
            Some("janus") => vec![Target::Janus],
            Some(other) => bail!("MEDIA_ONLY must be `ours` or `janus`, not {other:?}"),
        };
        Ok(Self {
            ns,
            runs: count("MEDIA_RUNS", 3)? as usize,
            window: Duration::from_secs(count("MEDIA_WINDOW_SECS", 10)?),
            bitrate: count("MEDIA_BITRATE_KBPS", 1500)? * 1000,
            fps: count("MEDIA_FPS", 15)? as u32,
            keyframe_every: Duration::from_secs(count("MEDIA_KEYFRAME_SECS", 5)?),
            targets,
            join_concurrency: count("MEDIA_JOIN_CONCURRENCY", 8)? as usize,
        })
    }

    /// Bytes in a delta frame.
    fn frame_bytes(&self) -> usize {
        (self.bitrate / 8 / u64::from(self.fps)) as usize
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Target {
    Ours,
    Janus,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Ours => "ours",
            Target::Janus => "janus",
        }
    }
}

// ---------------------------------------------------------------------------------------
// The run: every N, every run, every server; then the table
// ---------------------------------------------------------------------------------------

async fn run(config: &Config) -> Result<()> {
    let ticks = clock_ticks()?;
    println!(
        "media fan-out: 1 publisher, VP8 1280x720 {} kbit/s at {} fps (keyframe every {} s and \
         on request), N = {:?}, window {} s, {} run(s)",
        config.bitrate / 1000,
        config.fps,
        config.keyframe_every.as_secs(),
        config.ns,
        config.window.as_secs(),
        config.runs
    );
    let mut rows: Vec<(usize, Target, Figures)> = Vec::new();
    let mut failures = Vec::new();
    let mut skip: Vec<Target> = Vec::new();
    for &n in &config.ns {
        for run in 1..=config.runs {
            for &target in &config.targets {
                if skip.contains(&target) {
                    continue;
                }
                eprintln!("N = {n}, run {run}/{}: {}", config.runs, target.label());
                match measure(target, config, n, ticks).await {
                    Ok(figures) => {
                        eprintln!("  {}", figures.summary());
                        rows.push((n, target, figures));
                    }
                    Err(e) => {
                        eprintln!("  {} FAILED: {e:#}", target.label());
                        failures.push(format!("N = {n}, run {run}, {}: {e:#}", target.label()));
                    }
                }
            }
        }
        // A server that failed every run at this N is not tried at larger ones.
        for &target in &config.targets {
            if !rows.iter().any(|(m, t, _)| *m == n && *t == target) && !skip.contains(&target) {
                eprintln!("{}: no run succeeded at N = {n}; larger N skipped", target.label());
                skip.push(target);
            }
        }
    }
    print_report(config, &rows);
    if !failures.is_empty() {
        bail!("{} measurement(s) failed:\n  {}", failures.len(), failures.join("\n  "));
    }
    Ok(())
}

/// One server, one N, once.
async fn measure(target: Target, config: &Config, n: usize, ticks: f64) -> Result<Figures> {
    let sfu = Arc::new(match target {
        Target::Janus => Sfu::Janus(JanusSfu::start().await?),
        Target::Ours => Sfu::Ours(OursSfu::start(n + 1).await?),
    });
    let pid = sfu.pid();
    let source = Arc::new(Source::default());
    let (stop_tx, stop) = watch::channel(false);
    let publisher = sfu.publish(Arc::clone(&source), config, stop).await?;

    // Subscribers, a few signalling at once.
    let gate = Arc::new(Semaphore::new(config.join_concurrency));
    let mut joins = Vec::with_capacity(n);
    for i in 0..n {
        let (sfu, gate) = (Arc::clone(&sfu), Arc::clone(&gate));
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let tally = Arc::new(Tally::default());
            let peer = sfu.subscribe(i, Arc::clone(&tally)).await?;
            anyhow::Ok((peer, tally))
        }));
    }
    let mut subscribers = Vec::with_capacity(n);
    let mut join_failures = Vec::new();
    for join in joins {
        match join.await.context("subscriber task")? {
            Ok(s) => subscribers.push(s),
            Err(e) => join_failures.push(format!("{e:#}")),
        }
    }
    if !join_failures.is_empty() {
        bail!(
            "{} of {n} subscribers could not join; first: {}",
            join_failures.len(),
            join_failures[0]
        );
    }

    // Steady: every subscriber has media.
    let deadline = Instant::now() + STEADY_TIMEOUT;
    loop {
        let waiting =
            subscribers.iter().filter(|(_, t)| t.received.load(Ordering::Relaxed) == 0).count();
        if waiting == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{waiting} of {n} subscribers had no media {} s after joining (publisher sent {} \
                 packets, {} keyframe requests)",
                STEADY_TIMEOUT.as_secs(),
                source.sent.load(Ordering::Relaxed),
                source.requests.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(SETTLE).await;

    // The window.
    let received = |subs: &[(Peer, Arc<Tally>)]| -> u64 {
        subs.iter().map(|(_, t)| t.received.load(Ordering::Relaxed)).sum()
    };
    let (cpu0, gen0, sent0, recv0, t0) = (
        cpu_ticks(pid)?,
        cpu_ticks(std::process::id())?,
        source.sent.load(Ordering::SeqCst),
        received(&subscribers),
        Instant::now(),
    );
    tokio::time::sleep(config.window).await;
    let (cpu1, gen1, sent1, recv1, elapsed) = (
        cpu_ticks(pid)?,
        cpu_ticks(std::process::id())?,
        source.sent.load(Ordering::SeqCst),
        received(&subscribers),
        t0.elapsed().as_secs_f64(),
    );
    let rss_kib = rss_kib(pid)?;
    let threads = status_field(pid, "Threads:")?;
    let generator_rss_kib = rss_kib_self()?;
    tokio::time::sleep(DRAIN).await;
    let expected = (sent1 - sent0) * subscribers.len() as u64;
    let got: u64 = subscribers.iter().map(|(_, t)| t.count_between(sent0, sent1)).sum();
    let whole_lost: u64 = subscribers.iter().map(|(_, t)| t.lost_since_first(sent1)).sum();

    // The late joiner.
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let late = sfu.subscribe(n, Arc::clone(&tally)).await;
    let mut late_peer = None;
    let ttff = match late {
        Ok(peer) => {
            late_peer = Some(peer);
            let deadline = started + TTFF_LIMIT;
            loop {
                if let Some(at) = tally.first_frame.get() {
                    break Some(at.duration_since(started));
                }
                if Instant::now() > deadline {
                    eprintln!(
                        "  late joiner: no complete keyframe within {} s ({} packets)",
                        TTFF_LIMIT.as_secs(),
                        tally.received.load(Ordering::Relaxed)
                    );
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        Err(e) => {
            eprintln!("  late joiner could not join: {e:#}");
            None
        }
    };

    let late_plis = tally.plis.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    if let Some(peer) = late_peer {
        peer.close().await;
    }
    for (peer, _) in subscribers {
        peer.close().await;
    }
    publisher.close().await;
    drop(sfu);

    let forwarded = recv1 - recv0;
    let cpu_secs = (cpu1 - cpu0) as f64 / ticks;
    Ok(Figures {
        subscribers: n,
        forwarded_per_sec: forwarded as f64 / elapsed,
        cpu_ms_per_1k: if forwarded == 0 {
            f64::NAN
        } else {
            cpu_secs * 1000.0 / (forwarded as f64 / 1000.0)
        },
        server_cpu_pct: cpu_secs / elapsed * 100.0,
        generator_cpu_pct: (gen1 - gen0) as f64 / ticks / elapsed * 100.0,
        rss_mib: rss_kib as f64 / 1024.0,
        generator_rss_mib: generator_rss_kib as f64 / 1024.0,
        threads,
        expected,
        lost: expected.saturating_sub(got),
        whole_lost,
        ttff_ms: ttff.map(|d| d.as_secs_f64() * 1000.0),
        late_plis,
        keyframe_requests: source.requests.load(Ordering::Relaxed),
    })
}

/// What one measurement found.
struct Figures {
    subscribers: usize,
    forwarded_per_sec: f64,
    /// Server CPU milliseconds per 1,000 packets received by the subscribers.
    cpu_ms_per_1k: f64,
    server_cpu_pct: f64,
    generator_cpu_pct: f64,
    rss_mib: f64,
    /// The generator's own RSS (its N + 1 webrtc peers), for comparison.
    generator_rss_mib: f64,
    /// The server's threads at the end of the window.
    threads: u64,
    /// Packets sent in the window times subscribers, and how many of those never arrived.
    expected: u64,
    lost: u64,
    /// Packets missed from each subscriber's first packet to the end of the window.
    whole_lost: u64,
    ttff_ms: Option<f64>,
    /// PLIs the late joiner sent before its first keyframe (it started on delta frames).
    late_plis: u64,
    keyframe_requests: u64,
}

impl Figures {
    fn loss_pct(&self) -> f64 {
        if self.expected == 0 {
            f64::NAN
        } else {
            self.lost as f64 * 100.0 / self.expected as f64
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} subscribers: {:.0} pkt/s forwarded, {:.3} CPU ms/1k pkts ({:.0}% CPU), RSS {:.1} \
             MiB, {} threads, loss {:.3}% ({}/{}) in window ({} since first packet), TTFF {}, generator {:.0}% CPU, \
             {} keyframe requests (late joiner sent {} PLIs), generator RSS {:.1} MiB",
            self.subscribers,
            self.forwarded_per_sec,
            self.cpu_ms_per_1k,
            self.server_cpu_pct,
            self.rss_mib,
            self.threads,
            self.loss_pct(),
            self.lost,
            self.expected,
            self.whole_lost,
            self.ttff_ms
                .map_or("none".to_string(), |t| format!("{t:.0} ms")),
            self.generator_cpu_pct,
            self.keyframe_requests,
            self.late_plis,
            self.generator_rss_mib
        )
    }
}

fn print_report(config: &Config, rows: &[(usize, Target, Figures)]) {
    println!();
    println!("Medians over {} run(s) per server and N:", config.runs);
    println!(
        "| N | server | runs | fwd pkt/s | CPU ms / 1k pkts | server CPU | RSS MiB | loss | lost since first | TTFF ms | generator CPU | generator RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut medians: HashMap<(usize, Target), (f64, f64, f64)> = HashMap::new();
    for &n in &config.ns {
        for &target in &config.targets {
            let figs: Vec<&Figures> = rows
                .iter()
                .filter(|(m, t, _)| *m == n && *t == target)
                .map(|(_, _, f)| f)
                .collect();
            if figs.is_empty() {
                println!("| {n} | {} | 0 | – | – | – | – | – | – | – | – |", target.label());
                continue;
            }
            let m = |f: fn(&Figures) -> f64| median(figs.iter().map(|x| f(x)).collect());
            let cpu = m(|f| f.cpu_ms_per_1k);
            let rss = m(|f| f.rss_mib);
            let ttff = m(|f| f.ttff_ms.unwrap_or(f64::NAN));
            medians.insert((n, target), (cpu, rss, ttff));
            let lost: u64 = figs.iter().map(|f| f.lost).sum();
            let expected: u64 = figs.iter().map(|f| f.expected).sum();
            let whole: u64 = figs.iter().map(|f| f.whole_lost).sum();
            let no_frame = figs.iter().filter(|f| f.ttff_ms.is_none()).count();
            println!(
                "| {n} | {} | {} | {:.0} | {:.3} | {:.0}% | {:.1} | {:.3}% ({lost}/{expected}) | {whole} | {:.0}{} | {:.0}% | {:.0} |",
                target.label(),
                figs.len(),
                m(|f| f.forwarded_per_sec),
                cpu,
                m(|f| f.server_cpu_pct),
                rss,
                if expected == 0 { f64::NAN } else { lost as f64 * 100.0 / expected as f64 },
                ttff,
                if no_frame > 0 { format!(" ({no_frame} without a frame)") } else { String::new() },
                m(|f| f.generator_cpu_pct),
                m(|f| f.generator_rss_mib),
            );
        }
    }
    if config.targets.len() == 2 {
        println!();
        println!("Ratios ours / janus (medians):");
        println!("| N | CPU per packet | RSS | TTFF |");
        println!("|---|---|---|---|");
        for &n in &config.ns {
            if let (Some(o), Some(j)) =
                (medians.get(&(n, Target::Ours)), medians.get(&(n, Target::Janus)))
            {
                println!("| {n} | {:.2} | {:.2} | {:.2} |", o.0 / j.0, o.1 / j.1, o.2 / j.2);
            }
        }
    }
    let _ = std::io::stdout().flush();
}

// ---------------------------------------------------------------------------------------
// /proc readings
// ---------------------------------------------------------------------------------------

fn rss_kib_self() -> Result<u64> {
    rss_kib(std::process::id())
}

// ---------------------------------------------------------------------------------------
// The synthetic VP8 stream
// ---------------------------------------------------------------------------------------

/// The publisher's state, shared with the measurement.
#[derive(Default)]
struct Source {
    /// Packets sent so far: the counter the next packet carries.
    sent: AtomicU64,
    /// Set by a PLI or FIR: the next frame is a keyframe.
    want_keyframe: AtomicBool,
    /// PLIs and FIRs received.
    requests: AtomicU64,
}

/// Sends frames until `stop` turns true or the track fails.
async fn publish(
    track: Arc<TrackLocalStaticRTP>, ssrc: u32, source: Arc<Source>, frame_bytes: usize, fps: u32,
    keyframe_every: Duration, mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(fps)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u16 = rand::random();
    let mut timestamp: u32 = rand::random();
    let mut picture_id: u16 = rand::random::<u16>() & 0x7fff;
    let mut last_keyframe: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let keyframe = source.want_keyframe.swap(false, Ordering::AcqRel)
            || last_keyframe.is_none_or(|at| at.elapsed() >= keyframe_every);
        if keyframe {
            last_keyframe = Some(Instant::now());
        }
        let size = if keyframe { frame_bytes * KEYFRAME_FACTOR } else { frame_bytes };
        let packets = size.div_ceil(MAX_PAYLOAD).max(1);
        for i in 0..packets {
            let counter = source.sent.fetch_add(1, Ordering::SeqCst);
            let len = size / packets + usize::from(i < size % packets);
            let payload = vp8_payload(i == 0, keyframe, picture_id, counter, len);
            let packet = rtc::rtp::packet::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: i + 1 == packets,
                    payload_type: VP8_PAYLOAD_TYPE,
                    sequence_number: seq,
                    timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload: payload.into(),
            };
            seq = seq.wrapping_add(1);
            if track.write_rtp(packet).await.is_err() {
                return;
            }
        }
        timestamp = timestamp.wrapping_add(90_000 / fps);
        picture_id = (picture_id + 1) & 0x7fff;
    }
}

/// One RTP payload of `len` bytes (at least the headers and counter): the VP8 payload
/// descriptor (X, S on a frame's first packet, partition 0, 15-bit picture id), the VP8
/// frame header on the first packet, then `MDTB`, the counter and filler.
fn vp8_payload(first: bool, keyframe: bool, picture_id: u16, counter: u64, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len.max(32));
    p.push(0x80 | if first { 0x10 } else { 0 });
    p.push(0x80); // I: a picture id follows
    p.extend_from_slice(&(0x8000 | picture_id).to_be_bytes());
    if first {
        // Frame tag (RFC 6386 9.1): bit 0 P (0 = keyframe), version 0, show_frame,
        // 19-bit size of the first partition.
        let first_partition: u32 = 1000;
        let tag = u32::from(!keyframe) | (1 << 4) | (first_partition << 5);
        p.extend_from_slice(&tag.to_le_bytes()[..3]);
        if keyframe {
            p.extend_from_slice(&[0x9d, 0x01, 0x2a]);
            p.extend_from_slice(&1280u16.to_le_bytes());
            p.extend_from_slice(&720u16.to_le_bytes());
        }
    }
    p.extend_from_slice(MAGIC);
    p.extend_from_slice(&counter.to_be_bytes());
    let mut filler = counter as u8;
    while p.len() < len {
        filler = filler.wrapping_mul(31).wrapping_add(7);
        p.push(filler);
    }
    p
}

/// What a subscriber reads from a packet: its counter, and whether it starts a keyframe.
fn read_payload(payload: &[u8]) -> Option<(u64, bool)> {
    let b0 = *payload.first()?;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = *payload.get(1)?;
        i = 2;
        if x & 0x80 != 0 {
            i += if payload.get(i)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    let starts_frame = b0 & 0x10 != 0 && b0 & 0x0f == 0;
    let keyframe = starts_frame && payload.get(i)? & 0x01 == 0;
    if starts_frame {
        i += if keyframe { 10 } else { 3 };
    }
    // The server may rewrite the descriptor: fall back to looking for the marker.
    if payload.get(i..i + 4) != Some(MAGIC.as_slice()) {
        i = payload.windows(4).take(40).position(|w| w == MAGIC.as_slice())?;
    }
    let counter = u64::from_be_bytes(payload.get(i + 4..i + 12)?.try_into().ok()?);
    Some((counter, keyframe))
}

/// One subscriber's record.
#[derive(Default)]
struct Tally {
    /// Generator packets received (retransmissions included).
    received: AtomicU64,
    /// The first counter received, or 0 before any (read with `received`).
    first: AtomicU64,
    /// Counters received, as a bit set.
    seen: Mutex<Vec<u64>>,
    /// When the first complete keyframe arrived.
    first_frame: OnceLock<Instant>,
    /// PLIs sent while waiting for that keyframe.
    plis: AtomicU64,
}

impl Tally {
    fn record(&self, counter: u64) {
        let mut seen = self.seen.lock().unwrap();
        let word = (counter / 64) as usize;
        if seen.len() <= word {
            seen.resize(word + 1, 0);
        }
        seen[word] |= 1 << (counter % 64);
        drop(seen);
        if self.received.fetch_add(1, Ordering::AcqRel) == 0 {
            self.first.store(counter, Ordering::Release);
        }
    }

    fn has(seen: &[u64], counter: u64) -> bool {
        seen.get((counter / 64) as usize).is_some_and(|w| w & (1 << (counter % 64)) != 0)
    }

    /// Distinct counters received in `from..to`.
    fn count_between(&self, from: u64, to: u64) -> u64 {
        let seen = self.seen.lock().unwrap();
        (from..to).filter(|&c| Self::has(&seen, c)).count() as u64
    }

    /// Counters missed from the first received to `to`.
    fn lost_since_first(&self, to: u64) -> u64 {
        if self.received.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let first = self.first.load(Ordering::Acquire);
        let seen = self.seen.lock().unwrap();
        (first..to).filter(|&c| !Self::has(&seen, c)).count() as u64
    }
}

/// How often a subscriber with nothing decodable yet asks again for a keyframe.
const PLI_RETRY: Duration = Duration::from_millis(500);

/// Reads a remote track: counts generator packets and notes the first complete keyframe.
/// Like a browser's decoder, a subscriber whose first frames are delta frames (nothing
/// to decode them from) sends a PLI, again every PLI_RETRY until a keyframe arrives.
async fn read_track(track: Arc<dyn TrackRemote>, tally: Arc<Tally>) {
    // The next sequence number of a keyframe being received, while it is complete so far.
    let mut keyframe_next: Option<u16> = None;
    let mut last_pli: Option<Instant> = None;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            if matches!(event, TrackRemoteEvent::OnEnded) {
                break;
            }
            continue;
        };
        let Some((counter, keyframe_start)) = read_payload(&packet.payload) else {
            continue;
        };
        tally.record(counter);
        if tally.first_frame.get().is_some() {
            continue;
        }
        let seq = packet.header.sequence_number;
        if !keyframe_start
            && keyframe_next.is_none()
            && last_pli.is_none_or(|at| at.elapsed() >= PLI_RETRY)
        {
            last_pli = Some(Instant::now());
            tally.plis.fetch_add(1, Ordering::Relaxed);
            let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: packet.header.ssrc };
            let _ = track.write_rtcp(vec![Box::new(pli)]).await;
        }
        let in_keyframe = keyframe_start || keyframe_next == Some(seq);
        keyframe_next = if in_keyframe && packet.header.marker {
            let _ = tally.first_frame.set(Instant::now());
            None
        } else if in_keyframe {
            Some(seq.wrapping_add(1))
        } else {
            None
        };
    }
}

// ---------------------------------------------------------------------------------------
// Generator peers
// ---------------------------------------------------------------------------------------

/// A peer's event handler: gathering and connection state, and remote tracks.
struct Events {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    tally: Option<Arc<Tally>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathered.send_replace(state == RTCIceGatheringState::Complete);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(tally) = &self.tally {
            tokio::spawn(read_track(track, Arc::clone(tally)));
        }
    }
}

/// A generator peer connection and what its handler reports.
#[derive(Clone)]
struct Rtc {
    pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
}

fn vp8_codec() -> RTCRtpCodec {
    let fb =
        |typ: &str, parameter: &str| RTCPFeedback { typ: typ.into(), parameter: parameter.into() };
    RTCRtpCodec {
        mime_type: "video/VP8".into(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![
            fb("nack", ""),
            fb("nack", "pli"),
            fb("ccm", "fir"),
            fb("goog-remb", ""),
        ],
    }
}

impl Rtc {
    /// A peer on 127.0.0.1 with VP8 (and Opus for receivers) and the default interceptors;
    /// a publisher also gets keyframe requests delivered to its track.
    async fn new(tally: Option<Arc<Tally>>, publisher: bool) -> Result<Self> {
        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters { rtp_codec: vp8_codec(), payload_type: VP8_PAYLOAD_TYPE },
                RtpCodecKind::Video,
            )
            .map_err(|e| anyhow!("register VP8: {e}"))?;
        if !publisher {
            media
                .register_codec(
                    RTCRtpCodecParameters {
                        rtp_codec: RTCRtpCodec {
                            mime_type: "audio/opus".into(),
                            clock_rate: 48_000,
                            channels: 2,
                            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                            rtcp_feedback: vec![],
                        },
                        payload_type: OPUS_PAYLOAD_TYPE,
                    },
                    RtpCodecKind::Audio,
                )
                .map_err(|e| anyhow!("register Opus: {e}"))?;
        }
        let mut registry = register_default_interceptors(Registry::new(), &mut media)
            .map_err(|e| anyhow!("default interceptors: {e}"))?;
        if publisher {
            registry = registry.with(Slot::from(14_000), KeyframeRequests::default());
        }
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let handler = Arc::new(Events { gathered: gathered_tx, state: state_tx, tally });
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_runtime(default_runtime().context("webrtc runtime")?)
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .map_err(|e| anyhow!("build peer connection: {e}"))?;
        Ok(Self { pc: Arc::new(pc), gathered, state })
    }

    /// Adds the publisher's send-only VP8 track and returns it with its SSRC.
    async fn add_screen(&self) -> Result<(Arc<TrackLocalStaticRTP>, u32)> {
        let ssrc: u32 = rand::random();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "bench-publisher".to_owned(),
            "screen-1".to_owned(),
            "screen".to_owned(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: vp8_codec(),
                ..Default::default()
            }],
        )));
        self.pc
            .add_transceiver_from_track(
                Arc::clone(&track) as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| anyhow!("add the screen track: {e}"))?;
        Ok((track, ssrc))
    }

    /// Adds a receive-only transceiver of `kind`.
    async fn add_receiver(&self, kind: RtpCodecKind) -> Result<()> {
        self.pc
            .add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| anyhow!("add a receiver: {e}"))?;
        Ok(())
    }

    /// The local description once gathering is complete (all candidates in it).
    async fn gathered_sdp(&self) -> Result<String> {
        let mut gathered = self.gathered.clone();
        tokio::time::timeout(STEP_TIMEOUT, gathered.wait_for(|g| *g))
            .await
            .context("ICE gathering did not complete")?
            .context("peer gone")?;
        Ok(self.pc.local_description().await.context("no local description")?.sdp)
    }

    async fn offer(&self) -> Result<String> {
        let offer = self.pc.create_offer(None).await.map_err(|e| anyhow!("create offer: {e}"))?;
        self.pc.set_local_description(offer).await.map_err(|e| anyhow!("set local offer: {e}"))?;
        self.gathered_sdp().await
    }

    /// Applies a remote offer and returns the answer.
    async fn answer(&self, offer_sdp: String) -> Result<String> {
        let offer =
            RTCSessionDescription::offer(offer_sdp).map_err(|e| anyhow!("remote offer: {e}"))?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| anyhow!("set remote offer: {e}"))?;
        let answer =
            self.pc.create_answer(None).await.map_err(|e| anyhow!("create answer: {e}"))?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(|e| anyhow!("set local answer: {e}"))?;
        self.gathered_sdp().await
    }

    async fn accept_answer(&self, answer_sdp: String) -> Result<()> {
        let answer =
            RTCSessionDescription::answer(answer_sdp).map_err(|e| anyhow!("remote answer: {e}"))?;
        self.pc.set_remote_description(answer).await.map_err(|e| anyhow!("set remote answer: {e}"))
    }

    /// Waits for the connection to reach Connected.
    async fn connected(&self) -> Result<()> {
        let mut state = self.state.clone();
        let reached = tokio::time::timeout(
            STEP_TIMEOUT,
            state.wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            }),
        )
        .await
        .context("the peer connection did not connect")?
        .context("peer gone")?
        .to_owned();
        match reached {
            RTCPeerConnectionState::Connected => Ok(()),
            other => bail!("the peer connection ended {other}"),
        }
    }
}

/// Starts the publisher's frames and its keyframe-request reader on a connected track.
fn start_publishing(
    track: Arc<TrackLocalStaticRTP>, ssrc: u32, source: Arc<Source>, config: &Config,
    stop: watch::Receiver<bool>,
) {
    let requests = (Arc::clone(&track), Arc::clone(&source));
    tokio::spawn(async move {
        let (track, source) = requests;
        while let Some(event) = track.poll().await {
            // The SFU's own interceptor delivers keyframe requests (PLI, FIR) only.
            if let TrackLocalEvent::OnRtcpPacket(_) = event {
                source.requests.fetch_add(1, Ordering::Relaxed);
                source.want_keyframe.store(true, Ordering::Release);
            }
        }
    });
    tokio::spawn(publish(
        track,
        ssrc,
        source,
        config.frame_bytes(),
        config.fps,
        config.keyframe_every,
        stop,
    ));
}

/// A generator peer and whatever keeps its signalling alive.
struct Peer {
    rtc: Rtc,
    signalling: Option<JoinHandle<()>>,
}

impl Peer {
    async fn close(self) {
        if let Some(task) = self.signalling {
            task.abort();
        }
        let _ = self.rtc.pc.close().await;
    }
}

// ---------------------------------------------------------------------------------------
// The two servers behind one face
// ---------------------------------------------------------------------------------------

enum Sfu {
    Janus(JanusSfu),
    Ours(OursSfu),
}

impl Sfu {
    fn pid(&self) -> u32 {
        match self {
            Sfu::Janus(s) => s.process.child.id(),
            Sfu::Ours(s) => s.process.child.id(),
        }
    }

    /// Connects the publisher and starts its frames.
    async fn publish(
        &self, source: Arc<Source>, config: &Config, stop: watch::Receiver<bool>,
    ) -> Result<Peer> {
        let rtc = Rtc::new(None, true).await?;
        let (track, ssrc) = rtc.add_screen().await?;
        let signalling = match self {
            Sfu::Janus(s) => {
                s.publish(&rtc).await?;
                None
            }
            Sfu::Ours(s) => Some(s.publish(&rtc).await?),
        };
        rtc.connected().await.context("publisher")?;
        start_publishing(track, ssrc, source, config, stop);
        Ok(Peer { rtc, signalling })
    }

    /// Subscriber `index` (0-based; the late joiner is index N) joins.
    async fn subscribe(&self, index: usize, tally: Arc<Tally>) -> Result<Peer> {
        let rtc = Rtc::new(Some(tally), false).await?;
        let signalling = match self {
            Sfu::Janus(s) => {
                s.subscribe(&rtc).await?;
                None
            }
            Sfu::Ours(s) => Some(s.subscribe(index, &rtc).await?),
        };
        Ok(Peer { rtc, signalling })
    }
}

/// A child process, killed when dropped.
struct Process {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A successful answer.
fn ok(status: StatusCode) -> bool {
    status.is_success()
}

// ---------------------------------------------------------------------------------------
// Janus: VideoRoom over the HTTP API
// ---------------------------------------------------------------------------------------

const JANUS_LIB: &str = "/usr/lib/x86_64-linux-gnu/janus";

/// Janus gathers ICE candidates only on interfaces without `IFF_LOOPBACK` (then libnice
/// falls back to every other interface), so on its own it never offers 127.0.0.1. This
/// shim, preloaded into janus only, clears that flag in `getifaddrs` results; with the
/// enforce list set to 127.0.0.1 Janus then offers exactly one host candidate,
/// 127.0.0.1. Nothing else in Janus changes.
const LOOPBACK_SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
int getifaddrs(struct ifaddrs **list) {
    int (*real)(struct ifaddrs **) = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int rc = real(list);
    if (rc == 0)
        for (struct ifaddrs *i = *list; i; i = i->ifa_next)
            i->ifa_flags &= ~IFF_LOOPBACK;
    return rc;
}
"#;

/// Compiles the loopback shim into `dir` with the system C compiler (`CC` or `cc`).
fn build_loopback_shim(dir: &Path) -> Result<PathBuf> {
    let source = dir.join("loopback.c");
    let library = dir.join("loopback.so");
    std::fs::write(&source, LOOPBACK_SHIM)?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .output()
        .with_context(|| format!("run {cc} to build the janus loopback shim"))?;
    if !out.status.success() {
        bail!(
            "{cc} could not build the janus loopback shim: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(library)
}
const JANUS_ROOM: u64 = 4242;

struct JanusSfu {
    process: Process,
    api: Arc<JanusApi>,
    publisher_id: OnceLock<u64>,
}

impl JanusSfu {
    /// `janus` with a configuration of its own in a temporary directory: the HTTP transport
    /// on 127.0.0.1, the VideoRoom plugin only, ICE on the loopback interface only.
    async fn start() -> Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let port = free_port()?;
        let plugins = std::fs::read_dir(format!("{JANUS_LIB}/plugins")).with_context(|| {
            format!("{JANUS_LIB}/plugins: is janus installed (apt-get install janus)?")
        })?;
        let mut disabled: Vec<String> = plugins
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".so") && !n.contains("videoroom"))
            .collect();
        disabled.sort();
        let conf = dir.path();
        std::fs::write(
            conf.join("janus.jcfg"),
            format!(
                "general: {{\n configs_folder = \"{c}\"\n plugins_folder = \"{JANUS_LIB}/plugins\"\n \
                 transports_folder = \"{JANUS_LIB}/transports\"\n events_folder = \"{JANUS_LIB}/events\"\n \
                 loggers_folder = \"{JANUS_LIB}/loggers\"\n debug_level = 3\n session_timeout = 300\n \
                 interface = \"127.0.0.1\"\n}}\nmedia: {{\n}}\nnat: {{\n ice_enforce_list = \"127.0.0.1\"\n}}\n\
                 plugins: {{\n disable = \"{d}\"\n}}\ntransports: {{\n disable = \"libjanus_websockets.so,\
                 libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so\"\n}}\n\
                 events: {{\n broadcast = false\n}}\nloggers: {{\n disable = \"libjanus_jsonlog.so\"\n}}\n",
                c = conf.display(),
                d = disabled.join(","),
            ),
        )?;
        std::fs::write(
            conf.join("janus.transport.http.jcfg"),
            format!(
                "general: {{\n json = \"plain\"\n base_path = \"/janus\"\n http = true\n port = {port}\n \
                 ip = \"127.0.0.1\"\n https = false\n}}\nadmin: {{\n admin_http = false\n}}\n"
            ),
        )?;
        std::fs::write(conf.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")?;
        let shim = build_loopback_shim(conf)?;
        let log = std::fs::File::create(conf.join("janus.log"))?;
        let child = Command::new("janus")
            .env("LD_PRELOAD", &shim)
            .arg("-F")
            .arg(conf)
            .arg("-C")
            .arg(conf.join("janus.jcfg"))
            .arg("--disable-colors")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start janus (apt-get install janus)")?;
        let mut process = Process { child, _dir: dir };
        let base = format!("http://127.0.0.1:{port}/janus");
        let info = json!({"janus": "info", "transaction": "ready"});
        wait_until_answering(&mut process.child, &base, Some(&info), ok).await?;
        let api = JanusApi::connect(base).await?;
        let admin = api.attach().await?;
        let created = api
            .message(
                admin,
                json!({
                    "request": "create", "room": JANUS_ROOM, "publishers": 1,
                    "videocodec": "vp8", "audiocodec": "opus", "fir_freq": 0,
                    "notify_joining": false,
                }),
                None,
            )
            .await?;
        if created.0["videoroom"] != "created" {
            bail!("janus did not create the room: {}", created.0);
        }
        Ok(Self { process, api, publisher_id: OnceLock::new() })
    }

    async fn publish(&self, rtc: &Rtc) -> Result<()> {
        let handle = self.api.attach().await?;
        let offer = rtc.offer().await?;
        let (data, jsep) = self
            .api
            .message(
                handle,
                json!({
                    "request": "joinandconfigure", "room": JANUS_ROOM, "ptype": "publisher",
                    "display": "publisher", "audio": false, "video": true,
                }),
                Some(json!({"type": "offer", "sdp": offer})),
            )
            .await?;
        let id = data["id"].as_u64().with_context(|| format!("janus publisher join: {data}"))?;
        let _ = self.publisher_id.set(id);
        let answer = jsep
            .and_then(|j| j["sdp"].as_str().map(str::to_string))
            .with_context(|| format!("janus sent no answer: {data}"))?;
        debug_sdp("publisher offer", &offer);
        debug_sdp("janus answer", &answer);
        rtc.accept_answer(answer).await?;
        self.api.trickle_done(handle).await
    }

    async fn subscribe(&self, rtc: &Rtc) -> Result<()> {
        let feed = *self.publisher_id.get().context("no publisher yet")?;
        let handle = self.api.attach().await?;
        let (data, jsep) = self
            .api
            .message(
                handle,
                json!({
                    "request": "join", "room": JANUS_ROOM, "ptype": "subscriber",
                    "streams": [{"feed": feed}],
                }),
                None,
            )
            .await?;
        let offer = jsep
            .and_then(|j| j["sdp"].as_str().map(str::to_string))
            .with_context(|| format!("janus sent no offer to the subscriber: {data}"))?;
        let answer = rtc.answer(offer).await?;
        let (data, _) = self
            .api
            .message(
                handle,
                json!({"request": "start", "room": JANUS_ROOM}),
                Some(json!({"type": "answer", "sdp": answer})),
            )
            .await?;
        if data["started"] != "ok" {
            bail!("janus did not start the subscription: {data}");
        }
        self.api.trickle_done(handle).await
    }
}

/// One Janus session shared by the publisher and every subscriber (each its own handle),
/// with one long poll dispatching asynchronous events to their requests by transaction.
struct JanusApi {
    http: reqwest::Client,
    session_url: String,
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    poller: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for JanusApi {
    fn drop(&mut self) {
        if let Some(task) = self.poller.lock().unwrap().take() {
            task.abort();
        }
    }
}

impl JanusApi {
    async fn connect(base: String) -> Result<Arc<Self>> {
        let http = reqwest::Client::builder().build()?;
        let created =
            post_json(&http, &base, &json!({"janus": "create", "transaction": tx()})).await?;
        let session =
            created["data"]["id"].as_u64().with_context(|| format!("janus create: {created}"))?;
        let api = Arc::new(Self {
            http,
            session_url: format!("{base}/{session}"),
            waiting: Mutex::new(HashMap::new()),
            poller: Mutex::new(None),
        });
        let weak = Arc::downgrade(&api);
        let poll_url = format!("{}?maxev=50", api.session_url);
        let http = api.http.clone();
        let task = tokio::spawn(async move {
            loop {
                let events = match http.get(&poll_url).send().await {
                    Ok(res) => res.json::<Value>().await.unwrap_or(Value::Null),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(api) = weak.upgrade() else { return };
                let events = match events {
                    Value::Array(list) => list,
                    Value::Null => continue,
                    one => vec![one],
                };
                for event in events {
                    if event["janus"] == "hangup" && event["reason"] != "DTLS alert" {
                        eprintln!("  janus hung up a handle: {event}");
                    }
                    let Some(t) = event["transaction"].as_str() else {
                        continue;
                    };
                    if let Some(waiter) = api.waiting.lock().unwrap().remove(t) {
                        let _ = waiter.send(event);
                    }
                }
            }
        });
        *api.poller.lock().unwrap() = Some(task);
        Ok(api)
    }

    async fn attach(&self) -> Result<u64> {
        let reply = post_json(
            &self.http,
            &self.session_url,
            &json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": tx()}),
        )
        .await?;
        reply["data"]["id"].as_u64().with_context(|| format!("janus attach: {reply}"))
    }

    /// A plugin message; returns the plugin's data and JSEP, from the synchronous reply or
    /// from the event that answers it.
    async fn message(
        &self, handle: u64, body: Value, jsep: Option<Value>,
    ) -> Result<(Value, Option<Value>)> {
        let t = tx();
        let (sender, event) = oneshot::channel();
        self.waiting.lock().unwrap().insert(t.clone(), sender);
        let mut request = json!({"janus": "message", "transaction": t, "body": body});
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        let url = format!("{}/{handle}", self.session_url);
        let reply = post_json(&self.http, &url, &request).await?;
        let reply = match reply["janus"].as_str() {
            Some("success") => {
                self.waiting.lock().unwrap().remove(&t);
                reply
            }
            Some("ack") => tokio::time::timeout(STEP_TIMEOUT, event)
                .await
                .with_context(|| format!("no janus event answering {}", request["body"]))?
                .context("janus event poller gone")?,
            _ => {
                self.waiting.lock().unwrap().remove(&t);
                bail!("janus refused {}: {reply}", request["body"]);
            }
        };
        let data = reply["plugindata"]["data"].clone();
        if data["error"].is_string() {
            bail!("janus videoroom refused {}: {data}", request["body"]);
        }
        let jsep = reply.get("jsep").cloned();
        Ok((data, jsep))
    }

    /// Says the peer has no more candidates: they are all in its SDP.
    async fn trickle_done(&self, handle: u64) -> Result<()> {
        let url = format!("{}/{handle}", self.session_url);
        let reply = post_json(
            &self.http,
            &url,
            &json!({"janus": "trickle", "candidate": {"completed": true}, "transaction": tx()}),
        )
        .await?;
        if reply["janus"] != "ack" {
            bail!("janus trickle: {reply}");
        }
        Ok(())
    }
}

/// With `MEDIA_DEBUG` set, prints a description (to see candidates and codecs).
fn debug_sdp(what: &str, sdp: &str) {
    if std::env::var_os("MEDIA_DEBUG").is_some() {
        eprintln!("--- {what}\n{sdp}");
    }
}

fn tx() -> String {
    Uuid::new_v4().simple().to_string()
}

async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value> {
    let res = tokio::time::timeout(STEP_TIMEOUT, http.post(url).json(body).send())
        .await
        .with_context(|| format!("POST {url} timed out"))?
        .with_context(|| format!("POST {url}"))?;
    let status = res.status();
    let reply: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {url} answered {status}: {reply}");
    }
    Ok(reply)
}

// ---------------------------------------------------------------------------------------
// Ours: mdt-coordinator, the live WebSocket and its rtc messages
// ---------------------------------------------------------------------------------------

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

struct OursSfu {
    process: Process,
    base: String,
    http: reqwest::Client,
    session_id: String,
    /// The chair's and the presenter's connections, kept open for the run.
    chair: Live,
    presenter: Live,
    presenter_id: String,
    /// Subscriber i's access token; index N is the late joiner.
    trainees: Vec<String>,
    next_command: AtomicUsize,
}

impl OursSfu {
    /// `mdt-coordinator serve` on a fresh database with a coordinator made by `user add`;
    /// then, through the REST API, a chair, a presenter, `trainees` trainees and a teaching
    /// session; the chair joins and opens the meeting.
    async fn start(trainees: usize) -> Result<Self> {
        let mut ours = Ours::new(None)?;
        ours.set(
            "MDT__LOG__FILTER",
            std::env::var("MEDIA_SERVER_LOG").unwrap_or_else(|_| "error".into()),
        )
        .set("MDT__AUTH__LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE", "100000")
        .set("MDT__MEDIA__UDP_HOST", "127.0.0.1")
        // For experiments with the SFU's settings.
        .pass_through("MDT__MEDIA__");
        ours.add_coordinator(COORDINATOR, "Bench Coordinator", PASSWORD)?;
        let serve = || -> Result<Child> {
            let mut serve = ours.command(&["serve"]);
            if let Ok(wrapper) = std::env::var("MEDIA_SERVER_WRAPPER") {
                // e.g. `heaptrack`: runs the server under a profiler (the figures then
                // measure the wrapper's process, so they are for diagnosis only).
                let mut wrapped = Command::new(wrapper);
                wrapped
                    .arg(serve.get_program())
                    .args(serve.get_args())
                    .current_dir(ours.dir.path());
                for (key, value) in serve.get_envs() {
                    match value {
                        Some(value) => wrapped.env(key, value),
                        None => wrapped.env_remove(key),
                    };
                }
                serve = wrapped;
            }
            spawn_server(serve).context("start mdt-coordinator serve")
        };
        let base = ours.base();
        let health = format!("{base}/health");
        let mut setup = serve()?;
        if let Err(e) = wait_until_answering(&mut setup, &health, None, ok).await {
            let _ = setup.kill();
            let _ = setup.wait();
            return Err(e);
        }
        let made = Self::set_up(&base, trainees).await;
        // The accounts are made and signed in by a server process of their own: each
        // Argon2 hash takes ~19 MiB, and glibc keeps what the hashing threads freed, so
        // the measured process would carry hundreds of MiB that have nothing to do with
        // media. Access tokens are signed with the fixed key and outlive the restart.
        let _ = setup.kill();
        let _ = setup.wait();
        let made = made?;
        let child = serve()?;
        let mut process = Process { child, _dir: ours.into_dir() };
        wait_until_answering(&mut process.child, &health, None, ok).await?;
        let http = reqwest::Client::new();
        let mut sfu = Self {
            process,
            base,
            http,
            session_id: made.session_id,
            chair: Live::placeholder(),
            presenter: Live::placeholder(),
            presenter_id: made.presenter_id,
            trainees: made.trainees,
            next_command: AtomicUsize::new(0),
        };
        sfu.chair = sfu.join(&made.chair_token, None).await?;
        sfu.command(&sfu.chair, json!({"kind": "open_meeting"})).await.context("open_meeting")?;
        sfu.presenter = sfu.join(&made.presenter_token, None).await?;
        Ok(sfu)
    }

    /// Through the REST API: a chair, a presenter and `trainees` trainees, signed in, and
    /// a teaching session chaired by the chair.
    async fn set_up(base: &str, trainees: usize) -> Result<Accounts> {
        let http = reqwest::Client::new();
        let coordinator = login(&http, base, COORDINATOR).await?;
        let make_user = |email: String, name: String, role: &'static str| {
            let (http, coordinator) = (http.clone(), coordinator.clone());
            async move {
                let body = json!({
                    "email": email, "name": name, "role": role,
                    "specialties": ["rheumatology"], "password": PASSWORD,
                });
                let user = post_json_auth(&http, &format!("{base}/api/users"), &coordinator, &body)
                    .await?;
                let id = user["id"]
                    .as_str()
                    .with_context(|| format!("no user id in {user}"))?
                    .to_string();
                let token = login(&http, base, &email).await?;
                anyhow::Ok((id, token))
            }
        };
        let (chair_id, chair_token) =
            make_user(CHAIR.into(), "Bench Chair".into(), "consultant").await?;
        let (presenter_id, presenter_token) =
            make_user(PRESENTER.into(), "Bench Presenter".into(), "consultant").await?;
        let made = futures_util::stream::iter((0..trainees).map(|i| {
            make_user(
                format!("trainee{i}@media-bench.test"),
                format!("Bench Trainee {}", i + 1),
                "trainee",
            )
        }))
        .buffered(4)
        .collect::<Vec<_>>()
        .await;
        let trainees =
            made.into_iter().map(|r| r.map(|(_, token)| token)).collect::<Result<Vec<_>>>()?;
        let starts_at = (chrono::Utc::now() + chrono::TimeDelta::days(3)).to_rfc3339();
        let session = post_json_auth(
            &http,
            &format!("{base}/api/sessions"),
            &coordinator,
            &json!({
                "specialty": "rheumatology", "starts_at": starts_at, "duration_minutes": 120,
                "case_capacity": 12, "chair_id": chair_id, "booking_cutoff_hours": 24,
                "teaching": true,
            }),
        )
        .await?;
        let session_id = session["id"]
            .as_str()
            .with_context(|| format!("no session id in {session}"))?
            .to_string();

        Ok(Accounts { session_id, chair_token, presenter_id, presenter_token, trainees })
    }

    /// Opens a live connection for `token`; with `rtc`, its signalling is answered.
    async fn join(&self, token: &str, rtc: Option<Rtc>) -> Result<Live> {
        let ticket = post_json_auth(
            &self.http,
            &format!("{}/api/sessions/{}/live-ticket", self.base, self.session_id),
            token,
            &json!({}),
        )
        .await?;
        let ticket = ticket["ticket"].as_str().with_context(|| format!("no ticket in {ticket}"))?;
        let url = format!(
            "{}/api/sessions/{}/live?ticket={}",
            self.base.replacen("http://", "ws://", 1),
            self.session_id,
            query_escape(ticket)
        );
        Live::open(&url, &self.base, rtc).await
    }

    async fn command(&self, live: &Live, command: Value) -> Result<()> {
        let id = format!("c{}", self.next_command.fetch_add(1, Ordering::Relaxed));
        live.command(id, command).await
    }

    async fn publish(&self, rtc: &Rtc) -> Result<JoinHandle<()>> {
        self.command(&self.chair, json!({"kind": "grant_present", "user_id": self.presenter_id}))
            .await
            .context("grant_present")?;
        self.presenter.attach(rtc.clone());
        let offer = rtc.offer().await?;
        self.presenter.negotiate(offer).await.context("presenter")?;
        self.presenter.take_reader()
    }

    async fn subscribe(&self, index: usize, rtc: &Rtc) -> Result<JoinHandle<()>> {
        let token = self.trainees.get(index).context("more subscribers than trainee accounts")?;
        let live = self.join(token, Some(rtc.clone())).await?;
        // The first offer: receive slots only (everyone joins muted, and a trainee may
        // send no video); the server adds the presenter's screen by offering itself.
        rtc.add_receiver(RtpCodecKind::Audio).await?;
        let offer = rtc.offer().await?;
        live.negotiate(offer).await.context("subscriber")?;
        live.take_reader()
    }
}

/// What the setup made: the session, and the tokens the bench signs in with.
struct Accounts {
    session_id: String,
    chair_token: String,
    presenter_id: String,
    presenter_token: String,
    trainees: Vec<String>,
}

/// One live WebSocket: a writer shared by the harness and a reader task that answers the
/// server's offers on the attached peer, hands answers and acks to whoever waits for them.
struct Live {
    writer: Arc<tokio::sync::Mutex<Option<SplitSink<Socket, Message>>>>,
    shared: Arc<LiveShared>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct LiveShared {
    rtc: Mutex<Option<Rtc>>,
    acks: Mutex<HashMap<String, oneshot::Sender<Result<(), String>>>>,
    /// Told when the server's answer to our offer has been applied (or failed to apply).
    answer: Mutex<Option<oneshot::Sender<Result<(), String>>>>,
}

impl Live {
    fn placeholder() -> Self {
        Self {
            writer: Arc::new(tokio::sync::Mutex::new(None)),
            shared: Arc::default(),
            reader: Mutex::new(None),
        }
    }

    async fn open(url: &str, origin: &str, rtc: Option<Rtc>) -> Result<Self> {
        let mut request = url.into_client_request().context("live URL")?;
        request.headers_mut().insert("Origin", origin.parse().context("origin header")?);
        let (socket, _) = tokio::time::timeout(
            STEP_TIMEOUT,
            tokio_tungstenite::connect_async_with_config(request, None, true),
        )
        .await
        .context("WebSocket handshake timed out")?
        .context("WebSocket handshake")?;
        let (sink, mut stream) = socket.split();
        let first = tokio::time::timeout(STEP_TIMEOUT, next_text(&mut stream))
            .await
            .context("no snapshot")??;
        let snapshot: Value = serde_json::from_str(&first).context("snapshot is not JSON")?;
        if snapshot["type"] != "snapshot" {
            bail!("the first message was not a snapshot: {first}");
        }
        let shared = Arc::new(LiveShared { rtc: Mutex::new(rtc), ..Default::default() });
        let writer = Arc::new(tokio::sync::Mutex::new(Some(sink)));
        let reader = tokio::spawn(read_live(stream, Arc::clone(&writer), Arc::clone(&shared)));
        Ok(Self { writer, shared, reader: Mutex::new(Some(reader)) })
    }

    fn attach(&self, rtc: Rtc) {
        *self.shared.rtc.lock().unwrap() = Some(rtc);
    }

    fn take_reader(&self) -> Result<JoinHandle<()>> {
        self.reader.lock().unwrap().take().context("the live connection has no reader")
    }

    async fn send(&self, message: Value) -> Result<()> {
        send_on(&self.writer, message).await
    }

    async fn command(&self, id: String, command: Value) -> Result<()> {
        let (sender, reply) = oneshot::channel();
        self.shared.acks.lock().unwrap().insert(id.clone(), sender);
        self.send(json!({"type": "command", "id": id, "command": command})).await?;
        tokio::time::timeout(STEP_TIMEOUT, reply)
            .await
            .context("no ack")?
            .context("live connection closed")?
            .map_err(|e| anyhow!("refused: {e}"))
    }

    /// Sends an offer and waits until the reader has applied the server's answer.
    async fn negotiate(&self, offer: String) -> Result<()> {
        let (sender, answer) = oneshot::channel();
        *self.shared.answer.lock().unwrap() = Some(sender);
        self.send(json!({"type": "rtc", "kind": "offer", "sdp": offer})).await?;
        tokio::time::timeout(STEP_TIMEOUT, answer)
            .await
            .context("no answer to the offer")?
            .context("live connection closed before the answer")?
            .map_err(|e| anyhow!("the server's answer: {e}"))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(task) = self.reader.lock().unwrap().take() {
            task.abort();
        }
    }
}

async fn send_on(
    writer: &tokio::sync::Mutex<Option<SplitSink<Socket, Message>>>, message: Value,
) -> Result<()> {
    let mut writer = writer.lock().await;
    writer
        .as_mut()
        .context("not connected")?
        .send(Message::text(message.to_string()))
        .await
        .context("send on the live connection")
}

/// Reads one live connection until it ends: answers server offers, routes answers, acks
/// and errors; reports refusals that answer no command.
async fn read_live(
    mut stream: SplitStream<Socket>,
    writer: Arc<tokio::sync::Mutex<Option<SplitSink<Socket, Message>>>>, shared: Arc<LiveShared>,
) {
    loop {
        let text = match next_text(&mut stream).await {
            Ok(text) => text,
            Err(e) => {
                eprintln!("  live connection ended: {e:#}");
                return;
            }
        };
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if std::env::var_os("MEDIA_DEBUG").is_some() {
            eprintln!("--- live message\n{text}");
        }
        match (message["type"].as_str(), message["kind"].as_str()) {
            (Some("rtc"), Some("offer")) => {
                let rtc = shared.rtc.lock().unwrap().clone();
                let (Some(rtc), Some(sdp)) = (rtc, message["sdp"].as_str()) else {
                    eprintln!("  server offer on a connection without a peer");
                    continue;
                };
                match rtc.answer(sdp.to_string()).await {
                    Ok(answer) => {
                        let reply = json!({"type": "rtc", "kind": "answer", "sdp": answer});
                        if let Err(e) = send_on(&writer, reply).await {
                            eprintln!("  could not answer the server's offer: {e:#}");
                        }
                    }
                    Err(e) => eprintln!("  could not answer the server's offer: {e:#}"),
                }
            }
            (Some("rtc"), Some("answer")) => {
                // Applied here, before the next message is read: the server's own offer
                // may follow at once and needs the stable state this answer makes.
                let rtc = shared.rtc.lock().unwrap().clone();
                let waiter = shared.answer.lock().unwrap().take();
                let applied = match (rtc, message["sdp"].as_str()) {
                    (Some(rtc), Some(sdp)) => {
                        rtc.accept_answer(sdp.to_string()).await.map_err(|e| format!("{e:#}"))
                    }
                    _ => Err("an answer on a connection without a peer".to_string()),
                };
                if let Some(waiter) = waiter {
                    let _ = waiter.send(applied);
                }
            }
            (Some("ack"), _) => {
                if let Some(id) = message["id"].as_str() {
                    if let Some(waiter) = shared.acks.lock().unwrap().remove(id) {
                        let _ = waiter.send(Ok(()));
                    }
                }
            }
            (Some("error"), _) => {
                let waiter =
                    message["id"].as_str().and_then(|id| shared.acks.lock().unwrap().remove(id));
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(Err(text.clone()));
                    }
                    None => eprintln!("  server error: {text}"),
                }
            }
            _ => {}
        }
    }
}

async fn next_text(stream: &mut SplitStream<Socket>) -> Result<String> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_string()),
            Some(Ok(Message::Close(frame))) => bail!("closed by the server: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

async fn login(http: &reqwest::Client, base: &str, email: &str) -> Result<String> {
    let reply = post_json(
        http,
        &format!("{base}/api/auth/login"),
        &json!({"email": email, "password": PASSWORD}),
    )
    .await?;
    reply["access_token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("login as {email}: {reply}"))
}

async fn post_json_auth(
    http: &reqwest::Client, url: &str, token: &str, body: &Value,
) -> Result<Value> {
    let res =
        tokio::time::timeout(STEP_TIMEOUT, http.post(url).bearer_auth(token).json(body).send())
            .await
            .with_context(|| format!("POST {url} timed out"))?
            .with_context(|| format!("POST {url}"))?;
    let status = res.status();
    let reply: Value = res.json().await.unwrap_or(Value::Null);
    if status == StatusCode::NOT_FOUND {
        bail!("POST {url} answered 404 (is this a server with the SFU?): {reply}");
    }
    if !status.is_success() {
        bail!("POST {url} answered {status}: {reply}");
    }
    Ok(reply)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
