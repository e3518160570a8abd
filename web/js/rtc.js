// Voice and screen share: one RTCPeerConnection to the server's SFU, negotiated over the
// live channel as the polite peer (docs/live-protocol.md, "Media"). Owns the microphone,
// the outgoing screen, and the remote tracks, which it reports by publisher user id.

const RESEND_OFFER_MS = 10000;

export class Media {
  /**
   * send(message): sends an rtc message on the live channel.
   * onTrack(kind, userId, stream | null): a remote microphone or screen appeared or went.
   * onChange(): the local state (microphone, sharing) changed.
   */
  constructor({ send, iceServers, onTrack, onChange }) {
    this.send = send;
    this.onTrack = onTrack;
    this.onChange = onChange;
    this.pc = new RTCPeerConnection({ iceServers });
    this.mic = null;
    this.micError = null;
    this.screen = null;
    this.makingOffer = false;
    this.queue = Promise.resolve();
    this.resendTimer = null;
    this.closed = false;

    this.pc.onicecandidate = ({ candidate }) => {
      if (candidate && candidate.candidate) {
        this.send({ type: "rtc", kind: "candidate", candidate: candidate.toJSON() });
      }
    };
    this.pc.onnegotiationneeded = () => this.serially(() => this.offer());
    this.pc.ontrack = (event) => this.track(event);
  }

  /** Opens the microphone (muted if `muted`) and makes the first offer. */
  async start(muted) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      if (this.closed) {
        // Left (or reconnected) while the browser asked for the microphone.
        for (const t of stream.getTracks()) t.stop();
        return;
      }
      this.mic = stream.getAudioTracks()[0];
      this.mic.enabled = !muted;
      this.pc.addTrack(this.mic, stream);
    } catch (err) {
      if (this.closed) return;
      this.micError = err.name === "NotAllowedError" ? "Microphone blocked" : "No microphone";
      this.pc.addTransceiver("audio", { direction: "recvonly" });
    }
    if (this.closed) return this.close();
    // A receive slot for the presenter's screen; it must be recvonly (only the granted
    // presenter may send video).
    this.pc.addTransceiver("video", { direction: "recvonly" });
    this.onChange();
  }

  serially(step) {
    this.queue = this.queue.then(step).catch((err) => console.warn("media:", err.message));
    return this.queue;
  }

  async offer() {
    if (this.closed || this.pc.signalingState !== "stable") return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.send({ type: "rtc", kind: "offer", sdp: this.pc.localDescription.sdp });
      this.armResend();
    } finally {
      this.makingOffer = false;
    }
  }

  /** An offer unanswered for 10 s is sent again (it may have been lost on a reconnect). */
  armResend() {
    clearTimeout(this.resendTimer);
    const sdp = this.pc.localDescription?.sdp;
    this.resendTimer = setTimeout(() => {
      if (!this.closed && this.pc.signalingState === "have-local-offer" && this.pc.localDescription?.sdp === sdp) {
        this.send({ type: "rtc", kind: "offer", sdp });
        this.armResend();
      }
    }, RESEND_OFFER_MS);
  }

  /** An rtc message from the server. */
  signal(msg) {
    return this.serially(async () => {
      if (this.closed) return;
      if (msg.kind === "offer") {
        // Polite: our own pending offer, if any, is rolled back by applying theirs.
        clearTimeout(this.resendTimer);
        await this.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
        await this.pc.setLocalDescription();
        this.send({ type: "rtc", kind: "answer", sdp: this.pc.localDescription.sdp });
      } else if (msg.kind === "answer") {
        if (this.pc.signalingState !== "have-local-offer") return;
        clearTimeout(this.resendTimer);
        await this.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
      } else if (msg.kind === "candidate" && msg.candidate?.candidate) {
        await this.pc.addIceCandidate(msg.candidate).catch(() => {});
      }
    });
  }

  /**
   * The server refused our description: roll back an offer still waiting, and when the
   * refusal was of our screen (`withdrawScreen`, e.g. not_presenter) stop sharing it.
   */
  refused(withdrawScreen) {
    return this.serially(async () => {
      if (this.pc.signalingState === "have-local-offer") {
        clearTimeout(this.resendTimer);
        await this.pc.setLocalDescription({ type: "rollback" });
      }
      if (withdrawScreen) this.dropScreen();
    });
  }

  track(event) {
    const { track } = event;
    const owner = event.streams[0]?.id || "";
    const kind = track.kind === "video" ? "screen" : "audio";
    const stream = new MediaStream([track]);
    this.onTrack(kind, owner, stream);
    const gone = () => this.onTrack(kind, owner, null, stream);
    for (const s of event.streams) {
      s.addEventListener("removetrack", (e) => e.track === track && gone());
    }
    track.addEventListener("ended", gone);
  }

  get muted() {
    return !this.mic || !this.mic.enabled;
  }

  setMicEnabled(enabled) {
    if (this.mic) this.mic.enabled = enabled;
    this.onChange();
  }

  get sharing() {
    return Boolean(this.screen);
  }

  /** The outgoing screen, for the presenter's own preview. */
  get screenPreview() {
    return this.screen?.stream || null;
  }

  /** Shares a screen (the browser asks which); renegotiates to send it. */
  async share() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
    const track = stream.getVideoTracks()[0];
    track.addEventListener("ended", () => this.stopSharing());
    this.screen = { track, stream, sender: this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] }).sender };
    this.onChange();
    return track;
  }

  dropScreen() {
    if (!this.screen) return;
    const { track, sender } = this.screen;
    this.screen = null;
    track.stop();
    try {
      this.pc.removeTrack(sender);
    } catch {
      /* already closed */
    }
    this.onChange();
  }

  stopSharing() {
    this.dropScreen();
  }

  close() {
    this.closed = true;
    clearTimeout(this.resendTimer);
    this.screen?.track.stop();
    this.screen = null;
    this.mic?.stop();
    this.pc.close();
  }
}
