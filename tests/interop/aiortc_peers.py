# Owns the aiortc side of the SFU interop test (issue 5): presenter and subscribers on aiortc.
"""Drives real aiortc peers through the live channel of a running MDT Coordinator.

Reads one JSON object on stdin:

    {"base": "http://127.0.0.1:PORT", "session": "<session id>",
     "chair": "<access token>",
     "presenter": {"token": "<access token>", "user_id": "<id>"},
     "subscribers": [{"name": "colleague", "token": "<access token>"}, ...],
     "frames": 10, "timeout": 30}

The chair joins without media and opens the meeting (media starts then). The presenter
joins with a silent microphone (its first offer), is granted the screen by the chair,
then adds a VP8 video track of 640x360 synthetic frames and offers again. Once the
server has answered that, each subscriber joins with a silent microphone, answers the
server's offers, and decodes the forwarded video until it has `frames` frames. Times are
measured from the subscriber's WebSocket handshake: to the video track, to the peer
connection being connected, to the first video RTP packet, to the first keyframe's first
packet, and to the first decoded frame.

Prints one JSON line for the presenter, `{"presenter": true, "frames_sent": N,
"keyframe_requests": N}`, then one per subscriber on stdout:

    {"subscriber": "colleague", "frames": 12, "width": 640, "height": 360,
     "sizes": ["640x360"], "join_to_first_frame_ms": 180.4, ...}

and exits 0 when every subscriber decoded enough frames within `timeout` seconds, 1 when
one did not (the lines still say what each got), 2 on bad input. Progress and every SDP
exchanged go to stderr. Media stays on 127.0.0.1: no STUN servers, loopback candidates.
"""

import asyncio
import fractions
import json
import sys
import time
import urllib.parse
import urllib.request
import uuid

import aioice.ice
import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from websockets.asyncio.client import connect

WIDTH, HEIGHT, FPS = 640, 360, 30

# aioice gathers host candidates on every interface except loopback; the server under test
# listens on 127.0.0.1 only, and this test must send nothing anywhere else.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

STARTED = time.monotonic()


def log(who, *parts):
    print(f"[{time.monotonic() - STARTED:7.3f}] {who}:", *parts, file=sys.stderr, flush=True)


class Failure(Exception):
    """What went wrong, said plainly."""


class MovingPattern(MediaStreamTrack):
    """640x360 frames at 30 fps: a gradient with a vertical and a horizontal bar moving."""

    kind = "video"

    def __init__(self):
        super().__init__()
        self.n = 0
        self.start = None
        self.chroma = None
        self.gradient = bytes(40 + (x * 150) // WIDTH for x in range(WIDTH))

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.n / FPS
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma, cb, cr = frame.planes
        row = bytearray(luma.line_size)
        row[:WIDTH] = self.gradient
        bar = (self.n * 8) % (WIDTH - 40)
        row[bar : bar + 40] = b"\xeb" * 40
        pixels = bytearray(bytes(row) * HEIGHT)
        top = (self.n * 4) % (HEIGHT - 20)
        for y in range(top, top + 20):
            pixels[y * luma.line_size : y * luma.line_size + WIDTH] = b"\x10" * WIDTH
        luma.update(bytes(pixels))
        if self.chroma is None:
            self.chroma = (bytes([90]) * cb.buffer_size, bytes([160]) * cr.buffer_size)
        cb.update(self.chroma[0])
        cr.update(self.chroma[1])
        frame.pts = self.n * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self.n += 1
        return frame


def post_ticket(base, session, token):
    """POST /api/sessions/{id}/live-ticket (blocking; run in a thread)."""
    request = urllib.request.Request(
        f"{base}/api/sessions/{session}/live-ticket",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        if response.status != 201:
            raise Failure(f"live-ticket answered {response.status}")
        return json.load(response)["ticket"]


def video_msids(sdp):
    """The `a=msid:` values of the video m-lines of an SDP."""
    found, video = [], False
    for line in sdp.splitlines():
        if line.startswith("m="):
            video = line.startswith("m=video")
        elif video and line.startswith("a=msid:"):
            found.append(line[len("a=msid:") :])
    return found


def starts_vp8_keyframe(payload):
    """Whether an RTP payload (RFC 7741) begins a VP8 keyframe."""
    if not payload or not payload[0] & 0x10 or payload[0] & 0x07:
        return False  # not the start of partition 0
    i = 1
    if payload[0] & 0x80:  # extended control bits
        if len(payload) < 3:
            return False
        flags, i = payload[1], 2
        if flags & 0x80:  # picture id, 7 or 15 bits
            i += 2 if payload[2] & 0x80 else 1
        if flags & 0x40:  # TL0PICIDX
            i += 1
        if flags & 0x30:  # TID / KEYIDX
            i += 1
    return len(payload) > i and payload[i] & 0x01 == 0


class LiveClient:
    """One participant on the live channel, with an aiortc peer connection if it has media."""

    def __init__(self, name, base, session, token, media):
        self.name = name
        self.base = base
        self.session = session
        self.token = token
        self.media = media
        self.ws = None
        self.joined_at = None
        self.snapshot = None
        self.pending = {}
        self.answers = asyncio.Queue()
        self.offers = asyncio.Queue()
        self.events = []
        self.event_arrived = asyncio.Event()
        self.refusals = []
        self.negotiating = asyncio.Lock()
        self.offering = False
        self.glare = False
        self.tasks = []
        self.video_msids = []
        self.pc = None
        if media:
            self.pc = RTCPeerConnection(
                RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            )

            @self.pc.on("connectionstatechange")
            def state_changed():
                log(self.name, "peer connection", self.pc.connectionState)

    async def join(self):
        ticket = await asyncio.to_thread(post_ticket, self.base, self.session, self.token)
        host = self.base.replace("http://", "ws://", 1)
        url = f"{host}/api/sessions/{self.session}/live?ticket={urllib.parse.quote(ticket)}"
        self.ws = await connect(url, origin=self.base, proxy=None, max_size=None)
        self.joined_at = time.monotonic()
        log(self.name, "joined the live channel")
        self.tasks.append(asyncio.create_task(self.read()))
        if self.media:
            self.tasks.append(asyncio.create_task(self.answer_server_offers()))
        await self.wait_for(lambda: self.snapshot is not None, "the snapshot")

    async def read(self):
        try:
            async for text in self.ws:
                self.dispatch(json.loads(text))
        except Exception as e:  # the socket closing ends the reader
            log(self.name, "live channel closed:", repr(e))

    def dispatch(self, msg):
        kind = msg.get("type")
        if kind == "snapshot":
            self.snapshot = msg
        elif kind in ("ack", "error") and msg.get("id") in self.pending:
            self.pending.pop(msg["id"]).set_result(msg)
        elif kind == "error":
            log(self.name, "REFUSED:", json.dumps(msg))
            self.refusals.append(msg)
        elif kind == "event":
            self.events.append(msg["event"])
        elif kind == "rtc" and msg.get("kind") == "answer":
            self.answers.put_nowait(msg["sdp"])
        elif kind == "rtc" and msg.get("kind") == "offer":
            self.glare = self.glare or self.offering
            self.offers.put_nowait(msg["sdp"])
        elif kind == "rtc" and msg.get("kind") == "candidate":
            pass  # the server's SDPs carry all its candidates
        else:
            log(self.name, "unexpected message:", json.dumps(msg)[:300])
        self.event_arrived.set()

    async def wait_for(self, check, what, seconds=15):
        deadline = time.monotonic() + seconds
        while not check():
            if self.refusals:
                raise Failure(f"{self.name}: refused while waiting for {what}: {self.refusals}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"{self.name}: no {what} within {seconds} s")
            self.event_arrived.clear()
            try:
                await asyncio.wait_for(self.event_arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def command(self, kind, **fields):
        id_ = f"{self.name}-{uuid.uuid4().hex[:8]}"
        done = asyncio.get_running_loop().create_future()
        self.pending[id_] = done
        command = {"kind": kind, **fields}
        await self.ws.send(json.dumps({"type": "command", "id": id_, "command": command}))
        reply = await asyncio.wait_for(done, 10)
        log(self.name, kind, "->", reply["type"], reply.get("code", ""))
        return reply

    async def offer(self, why):
        """Our offer (all candidates in the SDP) and the server's answer."""
        async with self.negotiating:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            sdp = self.pc.localDescription.sdp
            log(self.name, f"offer ({why}):\n{sdp}")
            self.offering = True
            await self.ws.send(json.dumps({"type": "rtc", "kind": "offer", "sdp": sdp}))
            answer = await self.next_answer(why)
            self.offering = False
            log(self.name, f"answer from the server ({why}):\n{answer}")
            await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def next_answer(self, why):
        deadline = time.monotonic() + 10
        while True:
            if self.glare:
                # The server ignores an offer made while its own is outstanding and expects
                # the client to roll back; aiortc cannot roll back.
                raise Failure(f"{self.name}: glare: the server offered during our offer ({why})")
            if self.refusals:
                raise Failure(f"{self.name}: refused after our offer ({why}): {self.refusals}")
            try:
                left = deadline - time.monotonic()
                return await asyncio.wait_for(self.answers.get(), max(0.0, min(0.1, left)))
            except asyncio.TimeoutError:
                if time.monotonic() >= deadline:
                    raise Failure(f"{self.name}: no answer to our offer ({why}) in 10 s") from None

    async def answer_server_offers(self):
        """Answers every server offer, in order, whenever one comes."""
        count = 0
        while True:
            sdp = await self.offers.get()
            count += 1
            async with self.negotiating:
                log(self.name, f"server offer #{count}:\n{sdp}")
                self.video_msids += [m for m in video_msids(sdp) if m not in self.video_msids]
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                answer = self.pc.localDescription.sdp
                log(self.name, f"our answer #{count}:\n{answer}")
                await self.ws.send(json.dumps({"type": "rtc", "kind": "answer", "sdp": answer}))

    def check_tasks(self):
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception():
                raise Failure(f"{self.name}: {task.exception()!r}") from task.exception()

    async def close(self):
        for task in self.tasks:
            task.cancel()
        if self.pc:
            await self.pc.close()
        if self.ws:
            await self.ws.close()


class Subscriber(LiveClient):
    def __init__(self, name, base, session, token):
        super().__init__(name, base, session, token, media=True)
        self.frames = 0
        self.sizes = []
        self.first_frame_at = None
        self.video_track_at = None
        self.connected_at = None
        self.first_rtp_at = None
        self.first_keyframe_at = None
        self.keyframes = 0
        self.rtp_seen = 0
        self.pc.addTrack(AudioStreamTrack())

        @self.pc.on("track")
        def on_track(track):
            log(self.name, "track", track.kind, track.id)
            if track.kind == "video":
                self.video_track_at = self.video_track_at or time.monotonic()
                self.tasks.append(asyncio.create_task(self.decode(track)))
                for receiver in self.pc.getReceivers():
                    if receiver.track is track:
                        self.watch_rtp(receiver)
            else:
                self.tasks.append(asyncio.create_task(self.drain(track)))

        @self.pc.on("connectionstatechange")
        def connected():
            if self.pc.connectionState == "connected" and self.connected_at is None:
                self.connected_at = time.monotonic()

    def watch_rtp(self, receiver):
        """Notes when video RTP, and the start of each keyframe, arrives (diagnostics)."""
        handle = receiver._handle_rtp_packet

        async def watched(packet, arrival_time_ms):
            now = time.monotonic()
            self.first_rtp_at = self.first_rtp_at or now
            self.rtp_seen += 1
            if self.rtp_seen <= 3:
                log(self.name, f"video RTP #{self.rtp_seen}: seq {packet.sequence_number}, "
                    f"ts {packet.timestamp}, pt {packet.payload_type}, marker {packet.marker}, "
                    f"{len(packet.payload)} bytes, payload starts {packet.payload[:6].hex()}")
            if starts_vp8_keyframe(packet.payload):
                self.keyframes += 1
                self.first_keyframe_at = self.first_keyframe_at or now
                log(self.name, f"keyframe arriving (seq {packet.sequence_number})")
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = watched

    async def decode(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                log(self.name, "video track ended")
                return
            if self.first_frame_at is None:
                self.first_frame_at = time.monotonic()
                log(self.name, f"first frame {frame.width}x{frame.height}")
            self.frames += 1
            size = f"{frame.width}x{frame.height}"
            if size not in self.sizes:
                self.sizes.append(size)
            self.event_arrived.set()

    async def drain(self, track):
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return

    def report(self):
        def since_join(t):
            if t is None or self.joined_at is None:
                return None
            return round((t - self.joined_at) * 1000, 1)

        width, height = (int(v) for v in self.sizes[0].split("x")) if self.sizes else (None, None)
        return {
            "subscriber": self.name,
            "frames": self.frames,
            "width": width,
            "height": height,
            "sizes": self.sizes,
            "join_to_first_frame_ms": since_join(self.first_frame_at),
            "join_to_video_track_ms": since_join(self.video_track_at),
            "join_to_connected_ms": since_join(self.connected_at),
            "join_to_first_rtp_ms": since_join(self.first_rtp_at),
            "join_to_first_keyframe_ms": since_join(self.first_keyframe_at),
            "keyframes_received": self.keyframes,
            "video_msids": self.video_msids,
            "refusals": self.refusals,
        }


def is_grant_to(event, user_id):
    return event.get("kind") == "presenter_granted" and event.get("user_id") == user_id


def count_keyframe_requests(sender, report):
    """Counts the PLI/FIR that reach the presenter. aiortc's VP8 encoder makes a keyframe
    only every 3000 frames unless asked, so a late joiner depends on the SFU asking."""
    report["keyframe_requests"] = 0
    send_keyframe = sender._send_keyframe

    def counted():
        report["keyframe_requests"] += 1
        log("presenter", "keyframe requested by the server")
        send_keyframe()

    sender._send_keyframe = counted


async def run(spec, subscribers, presenter_report):
    base, session = spec["base"], spec["session"]
    wanted = int(spec.get("frames", 10))
    chair = LiveClient("chair", base, session, spec["chair"], media=False)
    presenter = LiveClient("presenter", base, session, spec["presenter"]["token"], media=True)
    presenter_id = spec["presenter"]["user_id"]
    everyone = [chair, presenter, *subscribers]
    try:
        await chair.join()
        # Media starts when the meeting is open.
        opened = await chair.command("open_meeting")
        if opened["type"] != "ack":
            log("chair", "open_meeting refused (already open?):", json.dumps(opened))
        await presenter.join()
        presenter.pc.addTrack(AudioStreamTrack())
        await presenter.offer("microphone")
        granted = await chair.command("grant_present", user_id=presenter_id)
        if granted["type"] != "ack":
            raise Failure(f"grant_present refused: {granted}")
        await presenter.wait_for(
            lambda: any(is_grant_to(e, presenter_id) for e in presenter.events),
            "presenter_granted event",
        )
        pattern = MovingPattern()
        video = presenter.pc.addTransceiver(pattern, direction="sendonly")
        presenter_report["pattern"] = pattern
        count_keyframe_requests(video.sender, presenter_report)
        codecs = video.sender.getCapabilities("video").codecs
        video.setCodecPreferences([c for c in codecs if c.mimeType in ("video/VP8", "video/rtx")])
        await presenter.offer("screen")
        for sub in subscribers:
            await sub.join()
            await sub.offer("microphone")
        for sub in subscribers:
            await sub.wait_for(
                lambda s=sub: s.check_tasks() or s.frames >= wanted,
                f"{wanted} decoded frames",
                float(spec.get("timeout", 30)),
            )
        for client in everyone:
            client.check_tasks()
    finally:
        for client in everyone:
            await client.close()


async def main():
    try:
        spec = json.load(sys.stdin)
        names = [(s["name"], s["token"]) for s in spec["subscribers"]]
        host = urllib.parse.urlsplit(spec["base"]).hostname
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"media stays on loopback; {host} is not")
    except (ValueError, KeyError, TypeError) as e:
        print(f"bad input: {e!r}", file=sys.stderr)
        return 2
    subscribers = [Subscriber(name, spec["base"], spec["session"], token) for name, token in names]
    presenter_report = {}
    ok = True
    try:
        overall = float(spec.get("timeout", 30)) + 15
        await asyncio.wait_for(run(spec, subscribers, presenter_report), overall)
    except (Failure, asyncio.TimeoutError) as e:
        log("test", "FAILED:", str(e) or "overall timeout")
        ok = False
    pattern = presenter_report.get("pattern")
    print(
        json.dumps(
            {
                "presenter": True,
                "frames_sent": pattern.n if pattern else 0,
                "keyframe_requests": presenter_report.get("keyframe_requests", 0),
            }
        ),
        flush=True,
    )
    for sub in subscribers:
        print(json.dumps(sub.report()), flush=True)
        ok = ok and sub.frames >= int(spec.get("frames", 10))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
