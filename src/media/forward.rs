//! Forwarding one published track: a [`Source`] takes the publisher's RTP, keeps the
//! latest keyframe for late joiners and fans packets out; each subscriber [`Leg`]
//! rewrites them for its own stream (SSRC, payload type, sequence numbers, timestamps,
//! no header extensions) and passes its keyframe requests up, rate-limited.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use tokio::sync::{broadcast, mpsc};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::shared::Shared;
use crate::domain::UserId;

/// Packets a subscriber may fall behind its source before it skips ahead.
const FANOUT_BUFFER: usize = 1024;

pub type SourceId = u64;

/// What a published track is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A microphone.
    Audio,
    /// The presenter's screen.
    Screen,
}

impl Kind {
    pub fn codec_kind(self) -> RtpCodecKind {
        match self {
            Kind::Audio => RtpCodecKind::Audio,
            Kind::Screen => RtpCodecKind::Video,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Screen => "screen",
        }
    }
}

/// The packets from the start of the latest keyframe on, while they fit.
struct KeyframeCache {
    packets: Vec<rtp::Packet>,
    /// False until a keyframe starts, and after the cache overflowed.
    valid: bool,
    capacity: usize,
}

impl KeyframeCache {
    fn push(&mut self, packet: &rtp::Packet, keyframe_start: bool) {
        // A keyframe can "start" more than once in one frame (H.264 parameter sets, then
        // the IDR slice): only a new frame (timestamp) restarts the cache.
        let same_frame = self.valid
            && self.packets.first().is_some_and(|p| p.header.timestamp == packet.header.timestamp);
        if keyframe_start && self.capacity > 0 && !same_frame {
            self.packets.clear();
            self.valid = true;
        }
        if !self.valid {
            return;
        }
        if self.packets.len() < self.capacity {
            self.packets.push(packet.clone());
        } else {
            self.valid = false;
            self.packets = Vec::new();
        }
    }
}

/// One published track and everyone it is forwarded to.
pub struct Source {
    pub id: SourceId,
    pub kind: Kind,
    pub publisher: UserId,
    pub codec: RTCRtpCodec,
    /// Whether packets go on to subscribers (a muted microphone, or a screen whose
    /// presenter was revoked, forwards nothing).
    open: AtomicBool,
    fanout: broadcast::Sender<rtp::Packet>,
    cache: Mutex<KeyframeCache>,
    keyframe_requests: mpsc::Sender<()>,
}

impl Source {
    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::Release);
    }

    /// Asks the publisher for a keyframe (sent at most once per `keyframe_request_ms`).
    pub fn request_keyframe(&self) {
        let _ = self.keyframe_requests.try_send(());
    }

    /// The cached keyframe onwards, and every packet after it.
    fn subscribe(&self) -> (Vec<rtp::Packet>, broadcast::Receiver<rtp::Packet>) {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = self.fanout.subscribe();
        let replay = if cache.valid { cache.packets.clone() } else { Vec::new() };
        (replay, receiver)
    }

    fn take(&self, mut packet: rtp::Packet) {
        if !self.open.load(Ordering::Acquire) {
            return;
        }
        // Header extension ids are negotiated per leg: forward none.
        packet.header.extension = false;
        packet.header.extensions.clear();
        packet.header.extensions_padding = 0;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if self.kind == Kind::Screen {
            cache.push(&packet, starts_keyframe(&self.codec.mime_type, &packet.payload));
        }
        // No receivers is not an error: nobody is watching yet.
        let _ = self.fanout.send(packet);
    }
}

/// A track a participant publishes, as the peer found it.
pub struct Published {
    pub id: SourceId,
    pub kind: Kind,
    pub publisher: UserId,
    pub codec: RTCRtpCodec,
    pub media_ssrc: u32,
}

/// Starts reading a publisher's track. The returned source is fed until the track ends;
/// `ended` is told then.
pub fn publish(
    published: Published, track: Arc<dyn TrackRemote>, shared: &Shared,
    ended: impl FnOnce(SourceId) + Send + 'static,
) -> Arc<Source> {
    let settings = &shared.settings;
    let Published { id, kind, publisher, codec, media_ssrc } = published;
    let (keyframe_requests, requests) = mpsc::channel(1);
    let source = Arc::new(Source {
        id,
        kind,
        publisher,
        codec,
        open: AtomicBool::new(false),
        fanout: broadcast::channel(FANOUT_BUFFER).0,
        cache: Mutex::new(KeyframeCache {
            packets: Vec::new(),
            valid: false,
            capacity: settings.keyframe_cache_packets,
        }),
        keyframe_requests,
    });
    if kind == Kind::Screen {
        let gap = Duration::from_millis(settings.keyframe_request_ms);
        shared.spawn(ask_for_keyframes(track.clone(), media_ssrc, requests, gap));
    }
    let reading = source.clone();
    shared.spawn(async move {
        while let Some(event) = track.poll().await {
            if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                reading.take(packet);
            }
        }
        ended(reading.id);
    });
    source
}

/// Sends the publisher a PLI per request, no more often than `gap`; requests arriving
/// within the gap are answered by one PLI at its end.
async fn ask_for_keyframes(
    track: Arc<dyn TrackRemote>, media_ssrc: u32, mut requests: mpsc::Receiver<()>, gap: Duration,
) {
    let mut last: Option<Instant> = None;
    while requests.recv().await.is_some() {
        if let Some(wait) = last.and_then(|at| gap.checked_sub(at.elapsed())) {
            tokio::time::sleep(wait).await;
            // Whatever arrived meanwhile is answered by this one.
            while requests.try_recv().is_ok() {}
        }
        let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc };
        if track.write_rtcp(vec![Box::new(pli)]).await.is_err() {
            break;
        }
        last = Some(Instant::now());
    }
}

/// One subscriber's copy of a source.
pub struct Leg {
    pub source: Arc<Source>,
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
}

/// How a leg numbers what it sends: its own SSRC, payload type, and sequence and
/// timestamp bases; a replayed keyframe and the live packets after it run on as one
/// stream.
#[derive(Debug)]
pub struct Rewriter {
    ssrc: u32,
    payload_type: u8,
    seq_base: u16,
    seq_delta: Option<u16>,
    ts_delta: u32,
    /// The last replayed packet's source sequence number: live packets up to it were
    /// already sent.
    replayed_to: Option<u16>,
    /// A video leg without a cached keyframe sends nothing until one starts.
    awaiting_keyframe: bool,
}

impl Rewriter {
    pub fn new(
        ssrc: u32, payload_type: u8, seq_base: u16, ts_delta: u32, awaiting_keyframe: bool,
    ) -> Self {
        Rewriter {
            ssrc,
            payload_type,
            seq_base,
            seq_delta: None,
            ts_delta,
            replayed_to: None,
            awaiting_keyframe,
        }
    }

    /// Rewrites `packet` for this leg, or `None` when it must not be sent.
    pub fn rewrite(
        &mut self, mut packet: rtp::Packet, replay: bool, keyframe_start: bool,
    ) -> Option<rtp::Packet> {
        let seq = packet.header.sequence_number;
        if replay {
            self.replayed_to = Some(seq);
        } else if let Some(last) = self.replayed_to {
            if !is_newer(seq, last) {
                return None;
            }
            self.replayed_to = None;
        }
        if self.awaiting_keyframe {
            if !keyframe_start {
                return None;
            }
            self.awaiting_keyframe = false;
        }
        let delta = *self.seq_delta.get_or_insert(self.seq_base.wrapping_sub(seq));
        packet.header.ssrc = self.ssrc;
        packet.header.payload_type = self.payload_type;
        packet.header.sequence_number = seq.wrapping_add(delta);
        packet.header.timestamp = packet.header.timestamp.wrapping_add(self.ts_delta);
        Some(packet)
    }
}

/// Whether sequence number `a` comes after `b` (RFC 3550 wrap-around).
fn is_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Runs one leg once its track is bound: the cached keyframe first, then the live
/// packets, each rewritten; the subscriber's keyframe requests go up to the source.
/// Runs until its peer aborts it: the source was withdrawn or the subscriber left.
pub async fn run_leg(leg: Arc<Leg>, payload_type: u8) {
    let source = &leg.source;
    let (replay, mut live) = source.subscribe();
    let video = source.kind == Kind::Screen;
    if video {
        // A fresh keyframe helps even after a replay: the replayed one is older.
        source.request_keyframe();
    }
    let mut rewriter = Rewriter::new(
        leg.ssrc,
        payload_type,
        rand::random(),
        rand::random(),
        video && replay.is_empty(),
    );
    let mime = source.codec.mime_type.clone();
    for packet in replay {
        if let Some(out) = rewriter.rewrite(packet, true, false) {
            if leg.track.write_rtp(out).await.is_err() {
                return;
            }
        }
    }
    // Feedback stops when the track is unbound; forwarding goes on until the source ends
    // or the leg is removed.
    let mut feedback = true;
    loop {
        tokio::select! {
            packet = live.recv() => match packet {
                Ok(packet) => {
                    let key = video && starts_keyframe(&mime, &packet.payload);
                    if let Some(out) = rewriter.rewrite(packet, false, key) {
                        // Not yet bound or briefly renegotiating: the packet is lost,
                        // as on the network; the leg goes on.
                        let _ = leg.track.write_rtp(out).await;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if video {
                        source.request_keyframe();
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            event = leg.track.poll(), if feedback => match event {
                Some(TrackLocalEvent::OnRtcpPacket(_)) => source.request_keyframe(),
                Some(_) => {}
                None => feedback = false,
            },
        }
    }
}

/// Whether an RTP payload starts a keyframe (VP8 or H.264).
pub fn starts_keyframe(mime_type: &str, payload: &[u8]) -> bool {
    if mime_type.eq_ignore_ascii_case("video/VP8") {
        vp8_keyframe_start(payload)
    } else if mime_type.eq_ignore_ascii_case("video/H264") {
        h264_keyframe_start(payload)
    } else {
        false
    }
}

/// RFC 7741: the first packet of a frame (S bit, partition 0) whose VP8 payload header
/// has the P bit clear.
fn vp8_keyframe_start(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    if first & 0x10 == 0 || first & 0x0f != 0 {
        return false;
    }
    let mut at = 1;
    if first & 0x80 != 0 {
        let Some(&ext) = payload.get(1) else {
            return false;
        };
        at = 2;
        if ext & 0x80 != 0 {
            // Picture id: one byte, or two when its M bit is set.
            let wide = payload.get(at).is_some_and(|b| b & 0x80 != 0);
            at += if wide { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1;
        }
        if ext & 0x30 != 0 {
            at += 1;
        }
    }
    payload.get(at).is_some_and(|header| header & 0x01 == 0)
}

/// RFC 6184: an IDR slice or a sequence parameter set, alone, first in a STAP-A, or
/// starting an FU-A.
fn h264_keyframe_start(payload: &[u8]) -> bool {
    let key = |nal: u8| matches!(nal & 0x1f, 5 | 7);
    match payload.first().map(|b| b & 0x1f) {
        Some(24) => payload.get(3).is_some_and(|&b| key(b)),
        Some(28) => payload.get(1).is_some_and(|&fu| fu & 0x80 != 0 && key(fu)),
        Some(_) => key(payload[0]),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32) -> rtp::Packet {
        let mut p = rtp::Packet::default();
        p.header.sequence_number = seq;
        p.header.timestamp = ts;
        p.header.ssrc = 42;
        p.header.payload_type = 96;
        p
    }

    #[test]
    fn vp8_keyframes_are_recognised() {
        // S bit, no extension, key frame (P = 0).
        assert!(vp8_keyframe_start(&[0x10, 0x00, 0x9d, 0x01, 0x2a]));
        // Inter frame.
        assert!(!vp8_keyframe_start(&[0x10, 0x01]));
        // Not the start of a frame.
        assert!(!vp8_keyframe_start(&[0x00, 0x00]));
        // Extended: 15-bit picture id, TL0PICIDX, TID/KEYIDX, then a key frame.
        assert!(vp8_keyframe_start(&[0x90, 0xe0, 0x81, 0x02, 0x05, 0x20, 0x00]));
        assert!(!vp8_keyframe_start(&[0x90, 0xe0, 0x81, 0x02, 0x05, 0x20, 0x01]));
        assert!(!vp8_keyframe_start(&[]));
        assert!(!vp8_keyframe_start(&[0x90]));
    }

    #[test]
    fn h264_keyframes_are_recognised() {
        assert!(h264_keyframe_start(&[0x65]));
        assert!(h264_keyframe_start(&[0x67]));
        assert!(!h264_keyframe_start(&[0x41]));
        assert!(h264_keyframe_start(&[0x78, 0x00, 0x10, 0x67]));
        assert!(h264_keyframe_start(&[0x7c, 0x85]));
        assert!(!h264_keyframe_start(&[0x7c, 0x05]));
        assert!(!h264_keyframe_start(&[]));
    }

    #[test]
    fn a_leg_numbers_replay_and_live_packets_as_one_stream() {
        let mut r = Rewriter::new(7, 100, 1000, 5, false);
        let a = r.rewrite(packet(65534, 10), true, true).unwrap();
        let b = r.rewrite(packet(65535, 10), true, false).unwrap();
        // Already replayed, then new.
        assert!(r.rewrite(packet(65535, 10), false, false).is_none());
        let c = r.rewrite(packet(0, 20), false, false).unwrap();
        assert_eq!(
            [a.header.sequence_number, b.header.sequence_number, c.header.sequence_number],
            [1000, 1001, 1002]
        );
        assert_eq!(c.header.timestamp, 25);
        assert_eq!((c.header.ssrc, c.header.payload_type), (7, 100));
    }

    #[test]
    fn a_leg_without_a_cached_keyframe_waits_for_one() {
        let mut r = Rewriter::new(7, 100, 0, 0, true);
        assert!(r.rewrite(packet(5, 0), false, false).is_none());
        assert_eq!(r.rewrite(packet(6, 0), false, true).unwrap().header.sequence_number, 0);
        assert_eq!(r.rewrite(packet(7, 0), false, false).unwrap().header.sequence_number, 1);
    }

    #[test]
    fn parameter_sets_and_the_idr_of_one_frame_stay_together_in_the_cache() {
        let mut cache = KeyframeCache { packets: Vec::new(), valid: false, capacity: 10 };
        // STAP-A with SPS/PPS, then the IDR's FU-A start, same timestamp.
        cache.push(&packet(1, 900), true);
        cache.push(&packet(2, 900), true);
        cache.push(&packet(3, 900), false);
        assert_eq!(cache.packets.len(), 3);
        // The next keyframe, a new frame, restarts it.
        cache.push(&packet(4, 1800), true);
        assert_eq!(cache.packets.len(), 1);
    }

    #[test]
    fn the_cache_keeps_from_the_latest_keyframe_until_it_overflows() {
        let mut cache = KeyframeCache { packets: Vec::new(), valid: false, capacity: 3 };
        cache.push(&packet(1, 10), false);
        assert!(!cache.valid);
        cache.push(&packet(2, 20), true);
        cache.push(&packet(3, 30), false);
        assert_eq!(cache.packets.len(), 2);
        cache.push(&packet(4, 40), true);
        assert_eq!(cache.packets.len(), 1);
        cache.push(&packet(5, 50), false);
        cache.push(&packet(6, 60), false);
        cache.push(&packet(7, 70), false);
        assert!(!cache.valid && cache.packets.is_empty());
    }
}
