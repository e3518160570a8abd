// The live channel to one session (docs/live-protocol.md): fetches a single-use ticket,
// holds the WebSocket, reconnects with back-off and resumes from the last seen `seq`,
// and sends commands with ids, re-sending any whose answer went missing.
import { api } from "./api.js";

const BACKOFF_MS = [500, 1000, 2000, 3000, 5000];

export class LiveChannel {
  /**
   * handlers: onMessage(msg) for snapshots, events and rtc messages; onStatus("connecting"
   * | "open" | "down"); onFatal(err) when the server says we may not join.
   */
  constructor(sessionId, handlers) {
    this.sessionId = sessionId;
    this.handlers = handlers;
    this.ws = null;
    this.seq = null;
    this.iceServers = [];
    this.pending = new Map();
    this.resuming = false;
    this.closed = false;
    this.attempt = 0;
    this.timer = null;
    this.offline = () => this.drop();
    this.online = () => this.reconnectNow();
    window.addEventListener("offline", this.offline);
    window.addEventListener("online", this.online);
  }

  start() {
    this.connect();
  }

  async connect() {
    if (this.closed || this.ws) return;
    this.handlers.onStatus("connecting");
    let ticket;
    try {
      ticket = await api(`/api/sessions/${this.sessionId}/live-ticket`, { method: "POST" });
    } catch (err) {
      // A refusal (not a participant, no such session, a cancelled or closed session) is
      // final; a busy or unreachable server is tried again.
      if (err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) {
        this.closed = true;
        return this.handlers.onFatal(err);
      }
      return this.retry();
    }
    if (this.closed || this.ws) return;
    this.iceServers = ticket.ice_servers || [];
    const url = new URL(`/api/sessions/${this.sessionId}/live`, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("ticket", ticket.ticket);
    if (this.seq !== null) url.searchParams.set("last_seq", String(this.seq));
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.resuming = false;
      this.handlers.onStatus("open");
      for (const [id, p] of this.pending) this.sendRaw({ type: "command", id, command: p.command });
    };
    ws.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      this.receive(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.handlers.onStatus("down");
      this.retry();
    };
  }

  receive(msg) {
    if (msg.type === "snapshot") {
      this.seq = msg.seq;
      this.resuming = false;
    } else if (msg.type === "event") {
      if (this.seq !== null && msg.seq <= this.seq) return;
      if (this.seq !== null && msg.seq > this.seq + 1) {
        // A gap: ask once for what we missed; the events come again in order.
        if (!this.resuming) this.sendRaw({ type: "resume", last_seq: this.seq });
        this.resuming = true;
        return;
      }
      this.seq = msg.seq;
      this.resuming = false;
    } else if ((msg.type === "ack" || msg.type === "error") && msg.id && this.pending.has(msg.id)) {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.type === "ack") p.resolve(msg);
      else p.reject(Object.assign(new Error(msg.message), { code: msg.code }));
      return;
    }
    this.handlers.onMessage(msg);
  }

  retry() {
    if (this.closed) return;
    clearTimeout(this.timer);
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), navigator.onLine === false ? 60000 : delay);
  }

  /** Drops the connection now (e.g. the browser went offline); reconnects later. */
  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.close();
    this.handlers.onStatus("down");
    this.retry();
  }

  reconnectNow() {
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  get open() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  sendRaw(message) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /**
   * Sends a command; resolves on its ack, rejects with the server's code on refusal. While
   * disconnected it is refused at once (`offline`): a click the user cannot see land must
   * not be replayed later. A command sent whose answer is lost with the connection is sent
   * again, with the same id, on reconnecting (the server answers it once).
   */
  command(command) {
    if (!this.open) return Promise.reject(Object.assign(new Error("offline"), { code: "offline" }));
    const id = crypto.randomUUID();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { command, resolve, reject });
      this.sendRaw({ type: "command", id, command });
    });
  }

  /** Ends the channel for good (the page is left, or the server showed us the door). */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    window.removeEventListener("offline", this.offline);
    window.removeEventListener("online", this.online);
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    for (const p of this.pending.values()) p.reject(Object.assign(new Error("left the meeting"), { code: "closed" }));
    this.pending.clear();
    this.handlers.onStatus("closed");
  }
}
