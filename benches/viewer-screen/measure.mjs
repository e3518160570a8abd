// What a screen share of the shared viewer would cost: a real WebRTC video track of the
// same view, in Debian's Chromium (the one the browser tests use), for `cargo bench
// --bench viewer` to print beside the viewer's own bytes.
//
// A page draws the rendered CT frame (a PNG the bench wrote) onto a canvas of the given
// size and changes it like the presenter does: zoom and pan ten times a second, the
// window (as a contrast/brightness change) every tenth change. `canvas.captureStream(30)`
// feeds an RTCPeerConnection that sends VP8 (screen-share content hint, resolution kept)
// to a second one in the same page over loopback. After a warm-up (so the bandwidth
// estimate has ramped up), the sender's outbound-rtp `bytesSent` (RTP payload, without
// RTP/UDP/IP headers) is read over the measuring time.
//
// Usage: node measure.mjs PNG WIDTHxHEIGHT[,WIDTHxHEIGHT…] [SECONDS] [WARMUP_SECONDS]
// Prints one JSON line per resolution on standard output; exits 2 with a reason on
// standard error when Chromium or playwright-core is missing.

import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

const [png, sizesArg, secondsArg = "10", warmupArg = "5"] = process.argv.slice(2);
if (!png || !sizesArg) {
  console.error("usage: node measure.mjs PNG WIDTHxHEIGHT[,…] [SECONDS] [WARMUP_SECONDS]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`no Chromium at ${executablePath} (apt-get install chromium, or set CHROMIUM_PATH)`);
  process.exit(2);
}
// playwright-core as the browser tests install it (npm ci --prefix tests/e2e).
const require = createRequire(new URL("../../tests/e2e/package.json", import.meta.url));
let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch {
  console.error("playwright-core is not installed: run npm ci --prefix tests/e2e");
  process.exit(2);
}

const sizes = sizesArg.split(",").map((s) => s.split("x").map(Number));
const seconds = Number(secondsArg);
const warmup = Number(warmupArg);
const image = `data:image/png;base64,${readFileSync(png).toString("base64")}`;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding", "--disable-features=WebRtcHideLocalIpsWithMdns"],
});
try {
  for (const [width, height] of sizes) {
    const page = await browser.newPage();
    const result = await page.evaluate(measure, { image, width, height, seconds, warmup });
    await page.close();
    console.log(JSON.stringify(result));
  }
} finally {
  await browser.close();
}

// Runs in the page.
async function measure({ image, width, height, seconds, warmup }) {
  const img = new Image();
  img.src = image;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  document.body.append(canvas);
  const ctx = canvas.getContext("2d");
  let tick = 0;
  const draw = () => {
    // The presenter's motion: zoom and pan every 100 ms, the window every tenth change.
    const zoom = 1 + (tick % 64) / 64;
    const panX = 0.3 + (tick % 40) / 100;
    const level = Math.floor(tick / 10) % 8;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, width, height);
    ctx.filter = `contrast(${1 + level / 8}) brightness(${1 - level / 32})`;
    const fit = Math.min(width / img.width, height / img.height) * zoom;
    const w = img.width * fit;
    const h = img.height * fit;
    ctx.drawImage(img, width / 2 - panX * w, height / 2 - 0.5 * h, w, h);
    ctx.filter = "none";
    tick += 1;
  };
  draw();
  const timer = setInterval(draw, 100);

  const stream = canvas.captureStream(30);
  const [track] = stream.getVideoTracks();
  track.contentHint = "detail";
  const sender = new RTCPeerConnection();
  const receiver = new RTCPeerConnection();
  sender.onicecandidate = (e) => e.candidate && receiver.addIceCandidate(e.candidate);
  receiver.onicecandidate = (e) => e.candidate && sender.addIceCandidate(e.candidate);
  const transceiver = sender.addTransceiver(track, { direction: "sendonly", streams: [stream] });
  const vp8 = RTCRtpSender.getCapabilities("video").codecs.filter((c) => /vp8/i.test(c.mimeType));
  transceiver.setCodecPreferences(vp8);
  const params = transceiver.sender.getParameters();
  params.degradationPreference = "maintain-resolution";
  await transceiver.sender.setParameters(params).catch(() => {});
  const playing = new Promise((resolve) => {
    receiver.ontrack = (e) => {
      const video = document.createElement("video");
      video.muted = true;
      video.srcObject = new MediaStream([e.track]);
      video.play().then(resolve, resolve);
    };
  });
  await sender.setLocalDescription(await sender.createOffer());
  await receiver.setRemoteDescription(sender.localDescription);
  await receiver.setLocalDescription(await receiver.createAnswer());
  await sender.setRemoteDescription(receiver.localDescription);
  await playing;

  const outbound = async () => {
    const stats = await sender.getStats();
    let found = null;
    let codec = null;
    stats.forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video") found = s;
    });
    if (found?.codecId) codec = stats.get(found.codecId)?.mimeType ?? null;
    return { ...found, codec };
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await sleep(warmup * 1000);
  const before = await outbound();
  const started = performance.now();
  await sleep(seconds * 1000);
  const after = await outbound();
  const elapsed = (performance.now() - started) / 1000;
  clearInterval(timer);
  sender.close();
  receiver.close();
  return {
    width,
    height,
    seconds: elapsed,
    codec: after.codec,
    bytes_sent: after.bytesSent - before.bytesSent,
    bytes_per_s: (after.bytesSent - before.bytesSent) / elapsed,
    header_bytes_per_s: ((after.headerBytesSent ?? 0) - (before.headerBytesSent ?? 0)) / elapsed,
    frames_per_s: ((after.framesEncoded ?? 0) - (before.framesEncoded ?? 0)) / elapsed,
    frame_width: after.frameWidth ?? null,
    frame_height: after.frameHeight ?? null,
    quality_limitation: after.qualityLimitationReason ?? null,
  };
}
