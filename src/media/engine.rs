//! Builds the SFU's peer connections: the codecs it forwards (Opus, VP8, H.264), the
//! interceptors (NACK, reports, and one that passes keyframe requests to the
//! application), the socket from the configured port range, and the 1:1 NAT address.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceCandidateType, Registry,
    SettingEngineBuilder,
};

use crate::config::MediaSettings;

/// The UDP ports handed to peer connections; a port returns when its lease drops.
pub struct Ports {
    range: Option<(u16, u16)>,
    taken: Mutex<BTreeSet<u16>>,
}

pub struct PortLease {
    ports: Arc<Ports>,
    pub port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if self.port != 0 {
            self.ports.taken.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.port);
        }
    }
}

impl Ports {
    pub fn new(settings: &MediaSettings) -> Arc<Self> {
        let range =
            (settings.udp_port_min != 0).then_some((settings.udp_port_min, settings.udp_port_max));
        Arc::new(Ports { range, taken: Mutex::new(BTreeSet::new()) })
    }

    /// A free port from the range (`0`, ephemeral, without one); `None` when all are
    /// taken.
    pub fn lease(self: &Arc<Self>) -> Option<PortLease> {
        let port = match self.range {
            None => 0,
            Some((min, max)) => {
                let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
                let port = (min..=max).find(|p| !taken.contains(p))?;
                taken.insert(port);
                port
            }
        };
        Some(PortLease { ports: self.clone(), port })
    }
}

fn video_feedback() -> Vec<RTCPFeedback> {
    [("ccm", "fir"), ("nack", ""), ("nack", "pli")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback { typ: typ.into(), parameter: parameter.into() })
        .collect()
}

/// The codecs the SFU negotiates. No RTX: retransmissions go on the original stream.
fn media_engine() -> Result<MediaEngine, webrtc::error::Error> {
    let mut engine = MediaEngine::default();
    let codecs = [
        (MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1", 111),
        (MIME_TYPE_VP8, 90_000, 0, "", 96),
        (
            MIME_TYPE_H264,
            90_000,
            0,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            102,
        ),
    ];
    for (mime, clock_rate, channels, fmtp, payload_type) in codecs {
        let kind = if mime == MIME_TYPE_OPUS { RtpCodecKind::Audio } else { RtpCodecKind::Video };
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: mime.into(),
                    clock_rate,
                    channels,
                    sdp_fmtp_line: fmtp.into(),
                    rtcp_feedback: if kind == RtpCodecKind::Video {
                        video_feedback()
                    } else {
                        Vec::new()
                    },
                },
                payload_type,
            },
            kind,
        )?;
    }
    Ok(engine)
}

/// Builds one peer connection bound to `host:port`.
pub async fn peer_connection(
    settings: &MediaSettings, port: u16, handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<Arc<dyn PeerConnection>, webrtc::error::Error> {
    let mut engine = media_engine()?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)?;
    // Last on the chain, so the interceptors have seen all inbound RTCP first.
    let registry = registry.with(Slot::from(14_000), KeyframeRequests::default());
    // Connectivity checks every 50 ms rather than 200: a participant's media starts that
    // much sooner, and on a server the extra checks are a few small packets.
    let mut setting = SettingEngineBuilder::new()
        .with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(25));
    if !settings.public_ip.is_empty() {
        setting =
            setting.with_nat_1to1_ips(vec![settings.public_ip.clone()], RTCIceCandidateType::Host);
    }
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(engine)
        .with_setting_engine(setting.build())
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![format!("{}:{port}", settings.udp_host)])
        .build()
        .await?;
    Ok(Arc::new(pc))
}

/// Passes inbound keyframe requests (PLI, FIR) to the application, which relays them to
/// the presenter; the rest of inbound RTCP ends in the interceptors before it. Public for
/// the media benchmark's publisher, which answers keyframe requests the same way.
#[derive(Default)]
pub struct KeyframeRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = webrtc::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<_> = packets
                .iter()
                .filter(|p| {
                    let any = p.as_any();
                    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
                })
                .cloned()
                .collect();
            if requests.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_range_and_return() {
        let mut settings = crate::config::Settings::defaults().expect("defaults").media;
        settings.udp_port_min = 40000;
        settings.udp_port_max = 40001;
        let ports = Ports::new(&settings);
        let a = ports.lease().expect("first");
        let b = ports.lease().expect("second");
        assert_eq!((a.port, b.port), (40000, 40001));
        assert!(ports.lease().is_none());
        drop(a);
        assert_eq!(ports.lease().expect("returned").port, 40000);
    }
}
