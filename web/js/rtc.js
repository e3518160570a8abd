// Voice and screen share: one RTCPeerConnection to the server's SFU, negotiated over the
// live channel as the polite peer (docs/live-protocol.md, "Media"). Owns the microphone,
// the outgoing screen, and the remote tracks, which it reports by publisher user id.

const RESEND_OFFER_MS = 10000;
// An offer refused because the server's media was not open yet (the meeting opening at
// that moment) is sent again after 300 ms, then 600 ms, … at most 5 s apart, 8 times.
const RETRY_FIRST_MS = 300;
const RETRY_MAX_MS = 5000;
const RETRY_TRIES = 8;

export class Media {
  /**
   * send(message): sends an rtc message on the live channel.
   * onTrack(kind, userId, stream | null): a remote microphone or screen appeared or went.
   * onChange(): the local state (microphone, sharing) changed.
   * onGiveUp(): the server kept refusing our offer (its media never opened); nothing is
   * pending any more.
   */
  constructor({ send, iceServers, onTrack, onChange, onGiveUp }) {
    this.send = send;
    this.onTrack = onTrack;
    this.onChange = onChange;
    this.onGiveUp = onGiveUp || (() => {});
    this.pc = new RTCPeerConnection({ iceServers });
    this.mic = null;
    this.micError = null;
    this.screen = null;
    this.makingOffer = false;
    this.queue = Promise.resolve();
    this.resendTimer = null;
    this.retryTimer = null;
    this.retries = 0;
    this.gaveUp = false;
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
    // After giving up, no new offer either (the rollback asks for one): a fresh Media,
    // made when the page reconnects, starts again.
    if (this.closed || this.gaveUp || this.pc.signalingState !== "stable") return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.send({ type: "rtc", kind: "offer", sdp: this.pc.localDescription.sdp });
      this.armResend();
    } finally {
      this.makingOffer = false;
    }
  }

  /**
   * While our offer is unanswered it is sent again every 10 s (it may have been lost on a
   * reconnect). What is sent is the current local description, whatever the browser has
   * added to it since (it adds each gathered candidate within milliseconds), so the
   * connection never waits in `have-local-offer` for an answer that is not coming.
   */
  armResend() {
    clearTimeout(this.resendTimer);
    this.resendTimer = setTimeout(() => {
      this.serially(async () => {
        if (this.closed || this.pc.signalingState !== "have-local-offer") return;
        this.resendOffer();
      });
    }, RESEND_OFFER_MS);
  }

  /** Sends the pending offer again, as it stands now (with every candidate gathered). */
  resendOffer() {
    this.send({ type: "rtc", kind: "offer", sdp: this.pc.localDescription.sdp });
    this.armResend();
  }

  /**
   * The server refused our offer with `meeting_not_open` while the meeting is live: its
   * media was not open yet when the offer came (the meeting opening at that moment). The
   * same offer is sent again after a back-off, until answered or 8 tries have failed;
   * then it is rolled back and `onGiveUp` is told. The same offer, not a new one: an answer
   * on its way to an earlier copy then still fits it. Its candidates, refused with it,
   * are all in the description by then. One retry waits at a time: a refused offer is
   * followed by the refusals of the candidates trickled after it, and a refusal that
   * arrives with no offer pending (a late one) asks for nothing.
   */
  notOpen() {
    if (this.closed || this.gaveUp || this.retryTimer || this.pc.signalingState !== "have-local-offer") return;
    if (this.retries >= RETRY_TRIES) {
      this.gaveUp = true;
      this.refused(false).then(() => this.onGiveUp());
      return;
    }
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.retries);
    this.retries += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.serially(async () => {
        if (this.closed || this.pc.signalingState !== "have-local-offer") return;
        this.resendOffer();
      });
    }, delay);
  }

  /** An rtc message from the server. */
  signal(msg) {
    return this.serially(async () => {
      if (this.closed) return;
      if (msg.kind === "offer") {
        // Polite: our own pending offer, if any, is rolled back by applying theirs.
        this.stopRetrying();
        await this.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
        await this.pc.setLocalDescription();
        this.send({ type: "rtc", kind: "answer", sdp: this.pc.localDescription.sdp });
      } else if (msg.kind === "answer") {
        if (this.pc.signalingState !== "have-local-offer") return;
        this.stopRetrying();
        await this.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
        this.retries = 0;
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
        this.stopRetrying();
        await this.pc.setLocalDescription({ type: "rollback" });
      }
      if (withdrawScreen) this.dropScreen();
    });
  }

  /** Nothing of ours is pending any more: no re-send, no retry. */
  stopRetrying() {
    clearTimeout(this.resendTimer);
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
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
    this.stopRetrying();
    this.screen?.track.stop();
    this.screen = null;
    this.mic?.stop();
    this.pc.close();
  }
}
