//! The SFU against real WebRTC peers (the `webrtc` crate, in this process) over
//! 127.0.0.1: a presenter and three subscribers with signalling over the live channel;
//! forwarding of every packet after a subscriber joins, keyframe requests up to the
//! presenter, audio to everyone but its sender, revoking, refused publishing, and no task
//! or socket left behind after 200 media sessions.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

use mdt_coordinator::media::engine;

use crate::common::{eventually, Backend};
use crate::live::{connect, Meeting, Ws};

/// Packets each subscriber received, by publisher (stream id) and kind: the counters
/// the publisher wrote into them.
#[derive(Default)]
struct Received {
    packets: HashMap<(String, String), Vec<u32>>,
    /// The presenter's counter when this subscriber applied the server's offer of the
    /// screen (it has joined the screen share from then on).
    offered_at: Option<u32>,
    /// The presenter's counter when this subscriber's connection came up.
    connected_at: Option<u32>,
    remote_tracks: Vec<Arc<dyn TrackRemote>>,
}

impl Received {
    /// The presenter's counter when the screen could first reach this subscriber: it had
    /// the server's offer of it and its connection was up.
    fn joined(&self) -> u32 {
        self.offered_at.expect("offered the screen").max(self.connected_at.expect("connected"))
    }
}

struct Handler {
    gathered: mpsc::UnboundedSender<()>,
    received: Arc<Mutex<Received>>,
    presenter_counter: Arc<Mutex<Arc<AtomicU32>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            let counter = self.presenter_counter.lock().unwrap().clone();
            self.received
                .lock()
                .unwrap()
                .connected_at
                .get_or_insert(counter.load(Ordering::Acquire));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(());
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        let kind = match track.kind().await {
            RtpCodecKind::Video => "screen",
            _ => "audio",
        };
        let publisher = track.stream_id().await.to_string();
        {
            let mut r = received.lock().unwrap();
            r.remote_tracks.push(track.clone());
        }
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = event {
                    let at = if kind == "screen" { 2 } else { 0 };
                    if let Some(bytes) = p.payload.get(at..at + 4) {
                        let counter = u32::from_be_bytes(bytes.try_into().unwrap());
                        received
                            .lock()
                            .unwrap()
                            .packets
                            .entry((publisher.clone(), kind.to_string()))
                            .or_default()
                            .push(counter);
                    }
                }
            }
        });
    }
}

#[derive(Clone, Copy)]
enum ScreenCodec {
    Vp8,
    H264,
}
use ScreenCodec::{Vp8, H264};

enum Do {
    Json(Value),
    Offer,
}

/// A participant with a live connection and a peer connection to the SFU.
struct Client {
    user_id: String,
    todo: mpsc::UnboundedSender<Do>,
    /// Everything from the live channel but answers to our own signalling.
    inbox: mpsc::UnboundedReceiver<Value>,
    pc: Arc<dyn PeerConnection>,
    received: Arc<Mutex<Received>>,
    /// Keyframe requests that reached this participant as a presenter.
    plis: Arc<AtomicU32>,
    counter: Arc<AtomicU32>,
    presenter_counter: Arc<Mutex<Arc<AtomicU32>>>,
    stop: Arc<AtomicBool>,
    screen_stop: Arc<AtomicBool>,
}

async fn local_track(
    pc: &Arc<dyn PeerConnection>, kind: RtpCodecKind, mime: &str, clock_rate: u32, channels: u16,
    fmtp: &str,
) -> (Arc<TrackLocalStaticRTP>, Arc<dyn RtpSender>, u32) {
    let ssrc = rand::random::<u32>();
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "client".into(),
        format!("{mime}-{ssrc}"),
        "client".into(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.into(),
                clock_rate,
                channels,
                sdp_fmtp_line: fmtp.into(),
                ..Default::default()
            },
            active: true,
            ..Default::default()
        }],
    )));
    let sender = pc.add_track(track.clone() as Arc<dyn TrackLocal>).await.expect("add track");
    (track, sender, ssrc)
}

async fn payload_type(sender: &Arc<dyn RtpSender>, mime: &str) -> u8 {
    for _ in 0..100 {
        if let Ok(p) = sender.get_parameters().await {
            if let Some(c) = p
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
            {
                return c.payload_type;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{mime} not negotiated");
}

impl Client {
    async fn on(ws: Ws, user_id: &str) -> Client {
        let (gathered_tx, mut gathered) = mpsc::unbounded_channel();
        let received = Arc::new(Mutex::new(Received::default()));
        let counter = Arc::new(AtomicU32::new(0));
        let settings = mdt_coordinator::config::Settings::defaults().unwrap().media;
        let presenter_counter = Arc::new(Mutex::new(Arc::new(AtomicU32::new(0))));
        let handler = Arc::new(Handler {
            gathered: gathered_tx,
            received: received.clone(),
            presenter_counter: presenter_counter.clone(),
        });
        let pc = engine::peer_connection(&settings, 0, handler).await.expect("client peer");
        let (todo, mut todo_rx) = mpsc::unbounded_channel();
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let task_pc = pc.clone();
        let task_received = received.clone();
        let task_presenter = presenter_counter.clone();
        tokio::spawn(async move {
            let (mut write, mut read) = ws.split();
            let mut gathered_once = false;
            // Waits for our candidates once, then sends the description with them in.
            macro_rules! describe {
                ($kind:expr) => {{
                    if !gathered_once {
                        let _ = tokio::time::timeout(Duration::from_secs(3), gathered.recv()).await;
                        gathered_once = true;
                    }
                    let local = task_pc.local_description().await.expect("local description");
                    let msg = json!({"type": "rtc", "kind": $kind, "sdp": local.sdp});
                    if write.send(Message::text(msg.to_string())).await.is_err() {
                        break;
                    }
                }};
            }
            loop {
                tokio::select! {
                    msg = read.next() => {
                        let Some(Ok(msg)) = msg else { break };
                        let Message::Text(text) = msg else { continue };
                        let v: Value = serde_json::from_str(text.as_str()).unwrap();
                        if v["type"] == "rtc" && v["kind"] == "offer" {
                            let offer = RTCSessionDescription::offer(v["sdp"].as_str().unwrap().into()).unwrap();
                            task_pc.set_remote_description(offer).await.expect("server offer applies");
                            if v["sdp"].as_str().unwrap().contains(" screen-") {
                                let counter = task_presenter.lock().unwrap().clone();
                                task_received
                                    .lock()
                                    .unwrap()
                                    .offered_at
                                    .get_or_insert(counter.load(Ordering::Acquire));
                            }
                            let answer = task_pc.create_answer(None).await.unwrap();
                            task_pc.set_local_description(answer).await.unwrap();
                            describe!("answer");
                        } else if v["type"] == "rtc" && v["kind"] == "answer" {
                            let answer = RTCSessionDescription::answer(v["sdp"].as_str().unwrap().into()).unwrap();
                            task_pc.set_remote_description(answer).await.expect("server answer applies");
                        } else if inbox_tx.send(v).is_err() {
                            break;
                        }
                    }
                    todo = todo_rx.recv() => match todo {
                        Some(Do::Json(v)) => {
                            if write.send(Message::text(v.to_string())).await.is_err() { break; }
                        }
                        Some(Do::Offer) => {
                            let offer = task_pc.create_offer(None).await.unwrap();
                            task_pc.set_local_description(offer).await.unwrap();
                            describe!("offer");
                        }
                        None => break,
                    },
                }
            }
            let _ = write.close().await;
        });
        Client {
            user_id: user_id.to_string(),
            todo,
            inbox,
            pc,
            received,
            plis: Arc::new(AtomicU32::new(0)),
            counter,
            presenter_counter,
            stop: Arc::new(AtomicBool::new(false)),
            screen_stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Notes the presenter's counter when a screen track arrives here.
    fn watch(&self, presenter: &Client) {
        *self.presenter_counter.lock().unwrap() = presenter.counter.clone();
    }

    fn send(&self, v: Value) {
        self.todo.send(Do::Json(v)).unwrap();
    }

    /// Sends a command and waits for its answer.
    async fn command(&mut self, id: &str, command: Value) -> Value {
        self.send(json!({"type": "command", "id": id, "command": command}));
        self.until(|m| (m["type"] == "ack" || m["type"] == "error") && m["id"] == id).await
    }

    async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let m = tokio::time::timeout_at(deadline, self.inbox.recv())
                .await
                .expect("message in time")
                .expect("channel open");
            if pred(&m) {
                return m;
            }
        }
    }

    /// Starts sending counted Opus-typed packets from a microphone track, and offers.
    async fn microphone(&self) {
        let (track, sender, ssrc) =
            local_track(&self.pc, RtpCodecKind::Audio, "audio/opus", 48000, 2, "").await;
        self.todo.send(Do::Offer).unwrap();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let pt = payload_type(&sender, "audio/opus").await;
            let mut n: u32 = 0;
            while !stop.load(Ordering::Acquire) {
                let mut p = rtp::Packet::default();
                p.header.version = 2;
                p.header.payload_type = pt;
                p.header.sequence_number = n as u16;
                p.header.timestamp = n.wrapping_mul(960);
                p.header.ssrc = ssrc;
                let mut payload = n.to_be_bytes().to_vec();
                payload.extend_from_slice(&[0xfc; 20]);
                p.payload = Bytes::from(payload);
                let _ = track.write_rtp(p).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    /// Starts sharing a screen: counted VP8 packets, each a one-packet frame, a keyframe
    /// first and whenever one is asked for; then offers.
    async fn screen(&self) {
        self.screen_in(Vp8).await
    }

    async fn screen_in(&self, codec: ScreenCodec) {
        let (mime, fmtp) = match codec {
            Vp8 => ("video/VP8", ""),
            H264 => (
                "video/H264",
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            ),
        };
        let (track, sender, ssrc) =
            local_track(&self.pc, RtpCodecKind::Video, mime, 90000, 0, fmtp).await;
        self.todo.send(Do::Offer).unwrap();
        let stop = self.screen_stop.clone();
        let counter = self.counter.clone();
        let plis = self.plis.clone();
        let want_key = Arc::new(AtomicBool::new(true));
        let asked = want_key.clone();
        let feedback = track.clone();
        tokio::spawn(async move {
            while let Some(event) = feedback.poll().await {
                if let TrackLocalEvent::OnRtcpPacket(_) = event {
                    plis.fetch_add(1, Ordering::AcqRel);
                    asked.store(true, Ordering::Release);
                }
            }
        });
        tokio::spawn(async move {
            let pt = payload_type(&sender, mime).await;
            let mut n: u32 = 1;
            while !stop.load(Ordering::Acquire) {
                let key = want_key.swap(false, Ordering::AcqRel);
                let mut p = rtp::Packet::default();
                p.header.version = 2;
                p.header.payload_type = pt;
                p.header.sequence_number = n as u16;
                p.header.timestamp = n.wrapping_mul(3000);
                p.header.marker = true;
                p.header.ssrc = ssrc;
                let mut payload = match codec {
                    // VP8 descriptor (S bit), then the frame's first byte: P = 0 for a key
                    // frame.
                    Vp8 => vec![0x10, if key { 0x00 } else { 0x01 }],
                    // One NAL unit: an IDR slice or a non-IDR slice, then a filler byte.
                    H264 => vec![if key { 0x65 } else { 0x41 }, 0x88],
                };
                payload.extend_from_slice(&n.to_be_bytes());
                payload.extend_from_slice(&[0x55; 400]);
                p.payload = Bytes::from(payload);
                counter.store(n, Ordering::Release);
                let _ = track.write_rtp(p).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }

    fn packets(&self, publisher: &str, kind: &str) -> Vec<u32> {
        self.received
            .lock()
            .unwrap()
            .packets
            .get(&(publisher.to_string(), kind.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    fn publishers(&self, kind: &str) -> BTreeSet<String> {
        self.received
            .lock()
            .unwrap()
            .packets
            .keys()
            .filter(|(_, k)| k == kind)
            .map(|(p, _)| p.clone())
            .collect()
    }

    async fn close(self) {
        self.stop.store(true, Ordering::Release);
        self.screen_stop.store(true, Ordering::Release);
        let _ = self.pc.close().await;
    }
}

/// Joins, reads the snapshot for our id, and unmutes.
async fn participant(m: &Meeting, token: &str) -> Client {
    let ws = m.join(token).await;
    let mut c = Client::on(ws, "").await;
    let snap = c.until(|v| v["type"] == "snapshot").await;
    c.user_id = snap["you"]["user_id"].as_str().unwrap().to_string();
    c
}

async fn unmute(c: &mut Client) {
    let ack = c.command("unmute", json!({"kind": "set_muted", "muted": false})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

fn counters(c: &Client, publisher: &str) -> BTreeSet<u32> {
    c.packets(publisher, "screen").into_iter().collect()
}

async fn a_presenter_reaches_three_subscribers(backend: Backend) {
    let m = Meeting::open(backend, true).await;
    let mut chair = participant(&m, &m.chair).await;
    assert_eq!(chair.command("open", json!({"kind": "open_meeting"})).await["type"], "ack");
    let mut physio = participant(&m, &m.physio).await;
    let mut colleague = participant(&m, &m.colleague).await;
    let mut trainee = participant(&m, &m.trainee).await;
    for c in [&mut chair, &mut physio, &mut colleague, &mut trainee] {
        unmute(c).await;
    }
    for c in [&chair, &colleague, &trainee] {
        c.watch(&physio);
    }
    // Everyone but the trainee is on media before the screen is shared.
    for c in [&chair, &physio, &colleague] {
        c.microphone().await;
    }
    let grant = json!({"kind": "grant_present", "user_id": physio.user_id});
    assert_eq!(chair.command("grant", grant).await["type"], "ack");
    physio.until(|v| v["event"]["kind"] == "presenter_granted").await;
    physio.screen().await;
    let presenter = physio.user_id.clone();
    eventually("the screen reaches the chair", async || {
        (counters(&chair, &presenter).len() > 20).then_some(())
    })
    .await;
    // The trainee joins late: the cached keyframe starts them at once.
    let t0 = std::time::Instant::now();
    trainee.microphone().await;
    eventually("first", async || (!counters(&trainee, &presenter).is_empty()).then_some(())).await;
    eprintln!("the late joiner's first screen packet came {:?} after its offer", t0.elapsed());
    for s in [&chair, &colleague, &trainee] {
        eventually("the screen reaches every subscriber", async || {
            (counters(s, &presenter).len() > 50).then_some(())
        })
        .await;
    }
    // Every packet sent after a subscriber joined arrives there.
    let sent = physio.counter.load(Ordering::Acquire);
    tokio::time::sleep(Duration::from_millis(700)).await;
    for s in [&chair, &colleague, &trainee] {
        let got = counters(s, &presenter);
        let joined = s.received.lock().unwrap().joined();
        let missing: Vec<u32> = (joined + 1..=sent).filter(|n| !got.contains(n)).collect();
        assert!(missing.is_empty(), "lost {} packets: {missing:?}", missing.len());
    }

    // A subscriber's keyframe request reaches the presenter.
    let before = physio.plis.load(Ordering::Acquire);
    let tracks = colleague.received.lock().unwrap().remote_tracks.clone();
    let mut screen_track = None;
    for t in tracks {
        if t.kind().await == RtpCodecKind::Video {
            screen_track = Some(t);
        }
    }
    let screen_track = screen_track.expect("the colleague has the screen track");
    tokio::time::sleep(Duration::from_millis(400)).await; // past the rate limit
    let media_ssrc = screen_track.ssrcs().await[0];
    screen_track
        .write_rtcp(vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc })])
        .await
        .unwrap();
    eventually("the PLI reaches the presenter", async || {
        (physio.plis.load(Ordering::Acquire) > before).then_some(())
    })
    .await;

    // Audio from each participant reaches the other three, never itself.
    let everyone: BTreeSet<String> =
        [&chair, &physio, &colleague, &trainee].iter().map(|c| c.user_id.clone()).collect();
    for c in [&chair, &physio, &colleague, &trainee] {
        let others: BTreeSet<String> =
            everyone.iter().filter(|u| **u != c.user_id).cloned().collect();
        eventually("audio from the other three", async || {
            (c.publishers("audio") == others
                && others.iter().all(|o| c.packets(o, "audio").len() > 10))
            .then_some(())
        })
        .await;
        assert!(c.packets(&c.user_id, "audio").is_empty());
    }

    // Muting stops that microphone for everyone.
    let muted = physio.command("mute", json!({"kind": "set_muted", "muted": true})).await;
    assert_eq!(muted["type"], "ack");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let heard = chair.packets(&presenter, "audio").len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(chair.packets(&presenter, "audio").len(), heard);

    // Revoking stops the screen at every subscriber while the presenter still sends.
    let revoked = chair.command("revoke", json!({"kind": "revoke_present"})).await;
    assert_eq!(revoked["type"], "ack");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts: Vec<usize> =
        [&chair, &colleague, &trainee].iter().map(|s| counters(s, &presenter).len()).collect();
    let sending = physio.counter.load(Ordering::Acquire);
    eventually("the presenter sends on", async || {
        (physio.counter.load(Ordering::Acquire) > sending + 50).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: Vec<usize> =
        [&chair, &colleague, &trainee].iter().map(|s| counters(s, &presenter).len()).collect();
    assert_eq!(counts, after, "nothing forwarded after revoking");

    for c in [chair, physio, colleague, trainee] {
        c.close().await;
    }
}

async fn only_the_presenter_publishes_video(backend: Backend) {
    let m = Meeting::open(backend, true).await;
    let mut chair = participant(&m, &m.chair).await;
    // Before the meeting opens there is no media.
    chair.microphone().await;
    let e = chair.until(|v| v["type"] == "error").await;
    assert_eq!(e["code"], "meeting_not_open");
    assert_eq!(chair.command("open", json!({"kind": "open_meeting"})).await["type"], "ack");
    let chair_ws = participant(&m, &m.chair).await;
    chair.close().await;
    let chair = chair_ws;
    chair.microphone().await;

    // A participant who is not the presenter offers video: refused.
    let mut colleague = participant(&m, &m.colleague).await;
    colleague.screen().await;
    let e = colleague.until(|v| v["type"] == "error").await;
    assert_eq!(e["code"], "not_presenter", "{e}");

    // A trainee offering video: refused.
    let mut trainee = participant(&m, &m.trainee).await;
    trainee.screen().await;
    let e = trainee.until(|v| v["type"] == "error").await;
    assert_eq!(e["code"], "forbidden", "{e}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(chair.publishers("screen").is_empty(), "no video forwarded");

    // A ticket for another session does not open this one.
    let res = m.ticket(&m.chair, &m.next_session).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let ticket: Value = res.json().await.unwrap();
    let url = format!(
        "{}/api/sessions/{}/live?ticket={}",
        m.app.base.replace("http://", "ws://"),
        m.session,
        ticket["ticket"].as_str().unwrap()
    );
    assert_eq!(connect(&url, &m.app.base).await.err(), Some(StatusCode::UNAUTHORIZED));
    // Used on its own session, which is not open, it gets no media.
    let ticket = m.ticket(&m.chair, &m.next_session).await;
    let ticket: Value = ticket.json().await.unwrap();
    let url = format!(
        "{}/api/sessions/{}/live?ticket={}",
        m.app.base.replace("http://", "ws://"),
        m.next_session,
        ticket["ticket"].as_str().unwrap()
    );
    let ws = connect(&url, &m.app.base).await.expect("opens");
    let mut elsewhere = Client::on(ws, "").await;
    elsewhere.screen().await;
    let e = elsewhere.until(|v| v["type"] == "error").await;
    assert_eq!(e["code"], "meeting_not_open");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(chair.publishers("screen").is_empty());
    for c in [chair, colleague, trainee, elsewhere] {
        c.close().await;
    }
}

/// UDP sockets bound to ports in `range`, from the kernel's table.
fn udp_sockets(range: std::ops::RangeInclusive<u16>) -> usize {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter_map(|local| u16::from_str_radix(local.rsplit(':').next()?, 16).ok())
        .filter(|port| range.contains(port))
        .count()
}

async fn two_hundred_media_sessions_leave_nothing_behind(backend: Backend) {
    // Each backend's server gets its own port range, above the ephemeral ports, so its
    // sockets can be counted.
    let range = match backend {
        Backend::Sqlite => 61_000..=61_049,
        Backend::Postgres => 61_100..=61_149,
    };
    let (min, max) = (*range.start(), *range.end());
    let m = Meeting::open_with(backend, false, |s| {
        s.media.udp_port_min = min;
        s.media.udp_port_max = max;
    })
    .await;
    let mut chair = participant(&m, &m.chair).await;
    assert_eq!(chair.command("open", json!({"kind": "open_meeting"})).await["type"], "ack");
    let sfu = m.app.state.live.media().clone();
    let before = sfu.stats();
    assert_eq!((before.peers, before.tasks, before.rooms), (0, 0, 0));
    let one = || async {
        let c = participant(&m, &m.colleague).await;
        c.microphone().await;
        eventually("the server's answer", async || c.pc.remote_description().await.map(|_| ()))
            .await;
        c.close().await;
    };
    let mut most = 0;
    for _ in 0..20 {
        futures_util::future::join_all((0..10).map(|_| one())).await;
        most = most.max(udp_sockets(range.clone()));
    }
    assert!(most > 0, "media sockets were opened in the range");
    // 200 sessions through 50 ports: each port came back.
    let stats = eventually("every media task gone", async || {
        let s = sfu.stats();
        (s.peers == 0 && s.tasks == 0 && s.rooms == 0).then_some(s)
    })
    .await;
    assert_eq!(stats, before);
    eventually("every media socket closed", async || {
        (udp_sockets(range.clone()) == 0).then_some(())
    })
    .await;
    // Closing the meeting closes the peer connections of people still connected.
    let staying = participant(&m, &m.colleague).await;
    staying.microphone().await;
    eventually("a peer in the meeting", async || (sfu.stats().peers == 1).then_some(())).await;
    let closed = chair.command("close", json!({"kind": "close_meeting"})).await;
    assert_eq!(closed["type"], "ack");
    eventually("the meeting's media closed", async || {
        let s = sfu.stats();
        (s.peers == 0 && s.tasks == 0 && s.rooms == 0).then_some(())
    })
    .await;
    staying.close().await;
    // Operators see the same figures.
    let metrics = m.app.http.get(m.app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for what in ["rooms", "peers", "tasks"] {
        assert!(metrics.contains(&format!("mdt_media{{what=\"{what}\"}} 0")), "{metrics}");
    }
}

/// A presenter whose browser negotiates H.264 is forwarded too, and a late joiner starts
/// from the cached IDR frame, sent well before it joined (keyframe requests are held back
/// here, so no fresh keyframe comes first).
async fn an_h264_screen_is_forwarded(backend: Backend) {
    let m = Meeting::open_with(backend, false, |s| s.media.keyframe_request_ms = 60_000).await;
    let mut chair = participant(&m, &m.chair).await;
    assert_eq!(chair.command("open", json!({"kind": "open_meeting"})).await["type"], "ack");
    let mut physio = participant(&m, &m.physio).await;
    let colleague = participant(&m, &m.colleague).await;
    colleague.watch(&physio);
    physio.microphone().await;
    let grant = json!({"kind": "grant_present", "user_id": physio.user_id});
    assert_eq!(chair.command("grant", grant).await["type"], "ack");
    physio.until(|v| v["event"]["kind"] == "presenter_granted").await;
    physio.screen_in(H264).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    colleague.microphone().await;
    let presenter = physio.user_id.clone();
    eventually("H.264 reaches the late joiner", async || {
        (counters(&colleague, &presenter).len() > 30).then_some(())
    })
    .await;
    let sent = physio.counter.load(Ordering::Acquire);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = counters(&colleague, &presenter);
    let first = *got.first().unwrap();
    let joined = colleague.received.lock().unwrap().joined();
    assert!(first <= joined, "starts from the cached IDR frame: {first} > {joined}");
    assert!(first + 20 < joined, "an IDR frame from well before joining, from the cache");
    assert!((first..=sent).all(|n| got.contains(&n)), "every packet from the IDR on");
    for c in [chair, physio, colleague] {
        c.close().await;
    }
}

/// The chair opens the meeting; chair and physio are both on media (microphones on).
async fn chair_and_physio_on_media(
    m: &Meeting,
) -> (Client, Client, Arc<mdt_coordinator::media::Sfu>) {
    let mut chair = participant(m, &m.chair).await;
    assert_eq!(chair.command("open", json!({"kind": "open_meeting"})).await["type"], "ack");
    chair.microphone().await;
    let physio = participant(m, &m.physio).await;
    physio.microphone().await;
    let sfu = m.app.state.live.media().clone();
    eventually("both on media", async || (sfu.stats().peers == 2).then_some(())).await;
    (chair, physio, sfu)
}

/// A practitioner whose last case leaves the agenda is no longer admitted: shown the door
/// at once, and their media hangs up with it.
async fn a_practitioner_without_a_case_is_hung_up(backend: Backend) {
    let m = Meeting::open(backend, false).await;
    let (chair, mut physio, sfu) = chair_and_physio_on_media(&m).await;
    for case in &m.cases {
        let res = m
            .app
            .http
            .delete(m.app.url(&format!("/api/cases/{case}")))
            .bearer_auth(&m.physio)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }
    let door = physio.until(|v| v["type"] == "error").await;
    assert_eq!(door["code"], "not_a_participant");
    eventually("the physio's media hung up", async || (sfu.stats().peers == 1).then_some(())).await;
    for c in [chair, physio] {
        c.close().await;
    }
}

/// A deactivated account's media hangs up with its live connection, within a second of
/// the coordinator's deactivation; the chair's stays.
async fn a_deactivated_account_is_hung_up(backend: Backend) {
    let m = Meeting::open(backend, false).await;
    let (chair, mut physio, sfu) = chair_and_physio_on_media(&m).await;
    let started = std::time::Instant::now();
    let path = format!("/api/users/{}/deactivate", m.physio_id);
    let (status, body) = m.app.post(&m.coordinator, &path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let told = physio.until(|v| v["type"] == "error").await;
    assert_eq!(told["code"], "account_deactivated");
    while sfu.stats().peers != 1 {
        assert!(started.elapsed() < Duration::from_secs(1), "media still up after a second");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for c in [chair, physio] {
        c.close().await;
    }
}

/// Signals that ICE gathering finished.
struct Gathered(mpsc::UnboundedSender<()>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Gathered {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.0.send(());
        }
    }
}

/// A client that offers the instant it reads `meeting_opened` is answered, in every one of
/// 50 meetings. The room used to broadcast the opening, reload the agenda, and only then
/// tell the SFU: an offer in between was refused with `meeting_not_open` in about half of
/// all meetings, and the browser stayed without voice or screen.
async fn an_offer_the_instant_the_meeting_opens_is_answered(backend: Backend) {
    const MEETINGS: usize = 50;
    // The sessions run weekly for a year; each is opened now.
    let m = Meeting::open_with(backend, false, |s| s.live.open_early_minutes = 60 * 24 * 400).await;
    let first_date = (chrono::Utc::now() + chrono::Duration::days(21)).date_naive();
    let (status, series) = m
        .app
        .post(
            &m.coordinator,
            "/api/series",
            json!({
                "specialty": "rheumatology", "first_date": first_date.to_string(),
                "local_time": "09:00", "weeks": MEETINGS, "duration_minutes": 60,
                "case_capacity": 4, "chair_id": m.chair_id, "booking_cutoff_hours": 24,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{series}");
    let sessions: Vec<String> = series["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sessions.len(), MEETINGS);

    // One offer (a microphone), its candidates gathered, ready to send at once.
    let (gathered_tx, mut gathered) = mpsc::unbounded_channel();
    let settings = mdt_coordinator::config::Settings::defaults().unwrap().media;
    let pc = engine::peer_connection(&settings, 0, Arc::new(Gathered(gathered_tx)))
        .await
        .expect("client peer");
    local_track(&pc, RtpCodecKind::Audio, "audio/opus", 48000, 2, "").await;
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), gathered.recv())
        .await
        .expect("candidates gathered");
    let offer =
        json!({"type": "rtc", "kind": "offer", "sdp": pc.local_description().await.unwrap().sdp})
            .to_string();

    let join = async |token: &str, session: &str| {
        let res = m.ticket(token, session).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let ticket: Value = res.json().await.unwrap();
        let url = format!(
            "{}/api/sessions/{session}/live?ticket={}",
            m.app.base.replace("http://", "ws://"),
            ticket["ticket"].as_str().unwrap()
        );
        let mut ws = connect(&url, &m.app.base).await.expect("live channel opens");
        crate::live::until(&mut ws, "snapshot").await;
        ws
    };
    let mut refused = Vec::new();
    for (i, session) in sessions.iter().enumerate() {
        let mut chair = join(&m.chair, session).await;
        let mut colleague = join(&m.colleague, session).await;
        crate::live::send(&mut chair, "open", json!({"kind": "open_meeting"})).await;
        crate::live::until(&mut colleague, "meeting_opened").await;
        colleague.send(Message::text(offer.clone())).await.unwrap();
        let answer = loop {
            let v = crate::live::recv(&mut colleague).await;
            if v["type"] == "rtc" && v["kind"] == "answer" || v["type"] == "error" {
                break v;
            }
        };
        if answer["type"] != "rtc" {
            refused.push(format!("meeting {i}: {answer}"));
        }
        let opened = loop {
            let v = crate::live::recv(&mut chair).await;
            if v["id"] == "open" {
                break v;
            }
        };
        assert_eq!(opened["type"], "ack", "{opened}");
        let _ = chair.close(None).await;
        let _ = colleague.close(None).await;
    }
    let _ = pc.close().await;
    assert!(
        refused.is_empty(),
        "{} of {MEETINGS} offers made on `meeting_opened` were refused:\n{}",
        refused.len(),
        refused.join("\n")
    );
}

crate::on_both_backends!(
    an_offer_the_instant_the_meeting_opens_is_answered,
    a_practitioner_without_a_case_is_hung_up,
    a_deactivated_account_is_hung_up,
    an_h264_screen_is_forwarded,
    a_presenter_reaches_three_subscribers,
    only_the_presenter_publishes_video,
    two_hundred_media_sessions_leave_nothing_behind,
);
