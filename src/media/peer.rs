//! One participant's peer connection to the SFU, owned by one task: it answers the
//! client's offers, offers the tracks the room forwards to this participant (one
//! exchange at a time), publishes what the client sends, and closes the connection when
//! the live WebSocket goes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCIceGatheringState,
    RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

use super::forward::{self, Kind, Leg, Source, SourceId};
use super::messages::{MediaRoomMsg, PeerId, PeerMsg};
use super::shared::Shared;
use crate::domain::live::MediaPolicy as Policy;
use crate::domain::{Role, UserId};
use crate::signal::{self, MediaRefusal, Outbound, RtcIn};

/// How long the server waits for its own ICE candidates before sending a description.
const GATHER_WAIT: Duration = Duration::from_secs(3);
/// How long the server's offer waits for its answer before it is sent again (the
/// client may have missed it, e.g. dropped with a slow connection's backlog).
const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// Remote candidates kept while no remote description is set.
const MAX_EARLY_CANDIDATES: usize = 64;

/// What the peer connection reports, from its driver.
enum Event {
    Track(Arc<dyn TrackRemote>),
    TrackEnded(SourceId),
    Gathered,
    Down,
}

struct Handler {
    events: mpsc::UnboundedSender<Event>,
    /// Whether media can flow (ICE and DTLS are up).
    connected: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.events.send(Event::Track(track));
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.events.send(Event::Gathered);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.connected.send_replace(state == RTCPeerConnectionState::Connected);
        if matches!(state, RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed) {
            let _ = self.events.send(Event::Down);
        }
    }
}

/// A forwarded track on this connection.
struct Forwarded {
    leg: Arc<Leg>,
    sender: Option<Arc<dyn RtpSender>>,
    task: Option<JoinHandle<()>>,
}

/// Who the peer belongs to and where its signalling goes.
pub struct PeerSpec {
    pub id: PeerId,
    pub user: UserId,
    pub role: Role,
    pub signal: mpsc::Sender<Outbound>,
}

struct Peer {
    spec: PeerSpec,
    shared: Arc<Shared>,
    pc: Arc<dyn PeerConnection>,
    room: mpsc::Sender<MediaRoomMsg>,
    policy: watch::Receiver<Policy>,
    events: mpsc::UnboundedReceiver<Event>,
    events_tx: mpsc::UnboundedSender<Event>,
    connected: watch::Receiver<bool>,
    gathered: bool,
    /// Whether a remote description has been applied (candidates wait until then).
    described: bool,
    early_candidates: Vec<RTCIceCandidateInit>,
    /// When the server's offer went out, while its answer is not yet in.
    awaiting_answer: Option<Instant>,
    forwarded: HashMap<SourceId, Forwarded>,
    /// Tracks added or removed since the last offer.
    changed: bool,
    /// The connection is stuck half-way through an exchange.
    broken: bool,
    published: HashMap<Kind, SourceId>,
}

/// Builds the peer connection and runs it until `signals` closes (the WebSocket went),
/// the room closes it, or the connection fails.
pub async fn run(
    spec: PeerSpec, shared: Arc<Shared>, room: mpsc::Sender<MediaRoomMsg>,
    policy: watch::Receiver<Policy>, mut signals: mpsc::Receiver<RtcIn>,
    mut control: mpsc::UnboundedReceiver<PeerMsg>,
) {
    let peer_id = spec.id;
    let Some(lease) = shared.ports.lease() else {
        tracing::warn!("no media port free");
        refuse(&spec.signal, MediaRefusal::Unavailable).await;
        let _ = room.send(MediaRoomMsg::Leave { peer: peer_id }).await;
        return;
    };
    let (events_tx, events) = mpsc::unbounded_channel();
    let (connected_tx, connected) = watch::channel(false);
    let handler = Arc::new(Handler { events: events_tx.clone(), connected: connected_tx });
    let pc = match super::engine::peer_connection(&shared.settings, lease.port, handler).await {
        Ok(pc) => pc,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build a peer connection");
            refuse(&spec.signal, MediaRefusal::Unavailable).await;
            let _ = room.send(MediaRoomMsg::Leave { peer: peer_id }).await;
            return;
        }
    };
    let mut peer = Peer {
        spec,
        shared,
        pc,
        room,
        policy,
        events,
        events_tx,
        connected,
        gathered: false,
        described: false,
        early_candidates: Vec::new(),
        awaiting_answer: None,
        forwarded: HashMap::new(),
        changed: false,
        broken: false,
        published: HashMap::new(),
    };
    let mut stalled = tokio::time::interval(ANSWER_WAIT / 4);
    loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Some(signal) => peer.signal(signal).await,
                None => break,
            },
            msg = control.recv() => match msg {
                Some(PeerMsg::Close) | None => break,
                Some(msg) => peer.handle(msg).await,
            },
            _ = stalled.tick() => {
                if peer.awaiting_answer.is_some_and(|at| at.elapsed() >= ANSWER_WAIT) {
                    peer.awaiting_answer = None;
                    peer.changed = true;
                }
            }
            event = peer.events.recv() => match event {
                Some(Event::Down) | None => break,
                Some(event) => peer.on_event(event).await,
            },
        }
        if peer.broken {
            // A description failed half-way: the next signal builds a fresh connection.
            break;
        }
        peer.renegotiate().await;
    }
    for (_, f) in peer.forwarded.drain() {
        if let Some(task) = f.task {
            task.abort();
        }
    }
    let _ = peer.pc.close().await;
    let _ = peer.room.send(MediaRoomMsg::Leave { peer: peer_id }).await;
    // The socket goes with the connection; only then is its port free for another.
    drop(peer);
    drop(lease);
}

/// Sends an error to the client (`{"type":"error","id":null,…}`).
async fn say(signal: &mpsc::Sender<Outbound>, code: &str, message: &str) {
    send(signal, signal::error(None, code, message)).await;
}

async fn refuse(signal: &mpsc::Sender<Outbound>, refusal: MediaRefusal) {
    send(signal, refusal.frame()).await;
}

async fn send(signal: &mpsc::Sender<Outbound>, text: bytestring::ByteString) {
    // The connection's writer drains this queue; a client too slow to take signalling
    // for this long is going anyway.
    let _ = signal.send_timeout(Outbound::Signal(text), Duration::from_secs(5)).await;
}

impl Peer {
    async fn signal(&mut self, signal: RtcIn) {
        match signal {
            RtcIn::Offer { sdp } => self.on_offer(sdp).await,
            RtcIn::Answer { sdp } => self.on_answer(sdp).await,
            RtcIn::Candidate { candidate } => {
                if candidate.candidate.is_empty() {
                    return; // end of candidates
                }
                let init = RTCIceCandidateInit {
                    candidate: candidate.candidate,
                    sdp_mid: candidate.sdp_mid,
                    sdp_mline_index: candidate.sdp_mline_index,
                    username_fragment: candidate.username_fragment,
                    ..Default::default()
                };
                if !self.described {
                    if self.early_candidates.len() < MAX_EARLY_CANDIDATES {
                        self.early_candidates.push(init);
                    }
                } else if let Err(e) = self.pc.add_ice_candidate(init).await {
                    tracing::debug!(error = %e, "remote candidate not added");
                }
            }
        }
    }

    async fn handle(&mut self, msg: PeerMsg) {
        match msg {
            PeerMsg::Forward(source) => self.forward(source).await,
            PeerMsg::Unforward(id) => {
                if let Some(f) = self.forwarded.remove(&id) {
                    if let Some(task) = f.task {
                        task.abort();
                    }
                    if let Some(sender) = f.sender {
                        let _ = self.pc.remove_track(&sender).await;
                        self.changed = true;
                    }
                }
            }
            PeerMsg::Refused { source, code } => self.refused(source, code).await,
            PeerMsg::Close => {}
        }
    }

    async fn refused(&mut self, source: SourceId, code: Option<MediaRefusal>) {
        self.published.retain(|_, id| *id != source);
        if let Some(refusal) = code {
            refuse(&self.spec.signal, refusal).await;
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Gathered => self.gathered = true,
            Event::Track(track) => self.on_track(track).await,
            Event::TrackEnded(id) => {
                if self.published.values().any(|p| *p == id) {
                    self.published.retain(|_, p| *p != id);
                    let _ = self
                        .room
                        .send(MediaRoomMsg::Unpublish { peer: self.spec.id, source: id })
                        .await;
                }
            }
            Event::Down => {}
        }
    }

    /// Why this participant may not send video now, if they may not.
    fn video_refusal(&self) -> Option<MediaRefusal> {
        if self.spec.role == Role::Trainee {
            Some(MediaRefusal::Forbidden)
        } else if self.policy.borrow().presenter != Some(self.spec.user) {
            Some(MediaRefusal::NotPresenter)
        } else {
            None
        }
    }

    async fn on_offer(&mut self, sdp: String) {
        if self.awaiting_answer.is_some() {
            // Offers crossed: the client is the polite peer and answers ours.
            return;
        }
        if !self.policy.borrow().open {
            refuse(&self.spec.signal, MediaRefusal::MeetingNotOpen).await;
            return;
        }
        if sends_video(&sdp) {
            if let Some(code) = self.video_refusal() {
                self.refused(0, Some(code)).await;
                return;
            }
        }
        let offer = match RTCSessionDescription::offer(sdp) {
            Ok(offer) => offer,
            Err(e) => return self.invalid_sdp(e).await,
        };
        if let Err(e) = self.pc.set_remote_description(offer).await {
            return self.invalid_sdp(e).await;
        }
        self.described = true;
        for candidate in std::mem::take(&mut self.early_candidates) {
            let _ = self.pc.add_ice_candidate(candidate).await;
        }
        let answered = match self.pc.create_answer(None).await {
            Ok(answer) => self.pc.set_local_description(answer).await,
            Err(e) => Err(e),
        };
        if let Err(e) = answered {
            // The offer is applied but cannot be answered: start again from scratch.
            self.broken = true;
            return self.invalid_sdp(e).await;
        }
        self.describe("answer").await;
        self.start_legs();
    }

    async fn on_answer(&mut self, sdp: String) {
        if self.awaiting_answer.is_none() {
            say(&self.spec.signal, "invalid_sdp", "no offer is waiting for an answer").await;
            return;
        }
        let answer = match RTCSessionDescription::answer(sdp) {
            Ok(answer) => answer,
            Err(e) => return self.invalid_sdp(e).await,
        };
        if let Err(e) = self.pc.set_remote_description(answer).await {
            return self.invalid_sdp(e).await;
        }
        self.awaiting_answer = None;
        self.start_legs();
    }

    async fn invalid_sdp(&mut self, e: webrtc::error::Error) {
        tracing::debug!(error = %e, "session description refused");
        say(&self.spec.signal, "invalid_sdp", &e.to_string()).await;
    }

    /// Sends the local description once the server's candidates are in it.
    async fn describe(&mut self, kind: &str) {
        // Other events wait until the description is out.
        let mut later = Vec::new();
        if !self.gathered {
            let wait = tokio::time::sleep(GATHER_WAIT);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    event = self.events.recv() => match event {
                        Some(Event::Gathered) => { self.gathered = true; break; }
                        Some(other) => later.push(other),
                        None => break,
                    },
                    _ = &mut wait => break,
                }
            }
        }
        if let Some(local) = self.pc.local_description().await {
            send(&self.spec.signal, signal::rtc_description(kind, &local.sdp)).await;
        }
        for event in later {
            let _ = self.events_tx.send(event);
        }
    }

    async fn forward(&mut self, source: Arc<Source>) {
        if self.forwarded.contains_key(&source.id) {
            return;
        }
        let ssrc = rand::random::<u32>();
        let track = MediaStreamTrack::new(
            source.publisher.to_string(),
            format!("{}-{}", source.kind.as_str(), source.id),
            source.kind.as_str().to_string(),
            source.kind.codec_kind(),
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: source.codec.clone(),
                active: true,
                ..Default::default()
            }],
        );
        let leg = Arc::new(Leg {
            source: source.clone(),
            track: Arc::new(TrackLocalStaticRTP::new(track)),
            ssrc,
        });
        self.forwarded.insert(source.id, Forwarded { leg, sender: None, task: None });
        self.changed = true;
    }

    /// Offers the forwarded tracks when they changed and no exchange is under way.
    async fn renegotiate(&mut self) {
        if !self.changed || !self.described || self.awaiting_answer.is_some() {
            return;
        }
        for f in self.forwarded.values_mut() {
            if f.sender.is_none() {
                match self.pc.add_track(f.leg.track.clone() as Arc<dyn TrackLocal>).await {
                    Ok(sender) => f.sender = Some(sender),
                    Err(e) => tracing::warn!(error = %e, "cannot add a forwarded track"),
                }
            }
        }
        // On failure `changed` stays set, and the next turn of the loop tries again.
        let offer = match self.pc.create_offer(None).await {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot make an offer");
                return;
            }
        };
        if let Err(e) = self.pc.set_local_description(offer).await {
            tracing::warn!(error = %e, "cannot apply our offer");
            return;
        }
        self.changed = false;
        self.awaiting_answer = Some(Instant::now());
        self.describe("offer").await;
    }

    /// Starts forwarding on every negotiated leg not yet running.
    fn start_legs(&mut self) {
        for f in self.forwarded.values_mut() {
            let (Some(sender), None) = (&f.sender, &f.task) else {
                continue;
            };
            let sender = sender.clone();
            let leg = f.leg.clone();
            let mut connected = self.connected.clone();
            f.task = Some(self.shared.spawn(async move {
                // Packets written before the connection is up are lost, and with them the
                // replayed keyframe a late joiner starts from.
                if connected.wait_for(|up| *up).await.is_err() {
                    return;
                }
                let Some(payload_type) = payload_type(&sender, &leg).await else {
                    tracing::warn!("forwarded codec not negotiated");
                    return;
                };
                forward::run_leg(leg, payload_type).await;
            }));
        }
    }

    async fn on_track(&mut self, track: Arc<dyn TrackRemote>) {
        let kind = match track.kind().await {
            RtpCodecKind::Audio => Kind::Audio,
            RtpCodecKind::Video => Kind::Screen,
            _ => return,
        };
        if kind == Kind::Screen {
            if let Some(code) = self.video_refusal() {
                // Read and dropped, never forwarded.
                self.shared.spawn(async move { while track.poll().await.is_some() {} });
                return self.refused(0, Some(code)).await;
            }
        }
        let Some(&ssrc) = track.ssrcs().await.first() else {
            return;
        };
        let Some(codec) = track.codec(ssrc).await else {
            return;
        };
        let id = self.shared.next_source_id();
        let events = self.events_tx.clone();
        let published =
            forward::Published { id, kind, publisher: self.spec.user, codec, media_ssrc: ssrc };
        let source = forward::publish(published, track, &self.shared, move |id| {
            let _ = events.send(Event::TrackEnded(id));
        });
        if let Some(old) = self.published.insert(kind, id) {
            let _ =
                self.room.send(MediaRoomMsg::Unpublish { peer: self.spec.id, source: old }).await;
        }
        let _ = self.room.send(MediaRoomMsg::Publish { peer: self.spec.id, source }).await;
    }
}

/// The payload type the subscriber negotiated for the leg's codec.
async fn payload_type(sender: &Arc<dyn RtpSender>, leg: &Leg) -> Option<u8> {
    let parameters = sender.get_parameters().await.ok()?;
    let mime = &leg.source.codec.mime_type;
    parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        .map(|c| c.payload_type)
}

/// Whether an SDP offers to send video: a video section that is not rejected and whose
/// direction is `sendrecv` (also the default) or `sendonly`.
pub fn sends_video(sdp: &str) -> bool {
    let mut sections = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if line.starts_with("m=") {
            sections.push(vec![line]);
        } else if let Some(section) = sections.last_mut() {
            section.push(line);
        }
    }
    sections.iter().any(|lines| {
        let mut m = lines[0].split_whitespace();
        let video = m.next() == Some("m=video");
        let rejected = m.next() == Some("0");
        let direction = lines
            .iter()
            .find_map(|l| {
                ["a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"]
                    .into_iter()
                    .find(|d| l == d)
            })
            .unwrap_or("a=sendrecv");
        video && !rejected && matches!(direction, "a=sendrecv" | "a=sendonly")
    })
}

#[cfg(test)]
mod tests {
    use super::sends_video;

    #[test]
    fn video_offers_are_told_from_receive_slots() {
        let recv = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n";
        assert!(!sends_video(recv));
        let send = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n";
        assert!(sends_video(send));
        let default = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n";
        assert!(sends_video(default));
        let rejected = "v=0\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n";
        assert!(!sends_video(rejected));
        assert!(!sends_video("v=0\r\nm=audio 9 RTP/SAVPF 111\r\na=sendonly\r\n"));
    }
}
