// The image viewer (issue 18): shows a frame of an image attachment (PNG, JPEG or DICOM,
// rendered to PNG by the server at the frame and window asked for) on a canvas at a zoom
// and pan, with a distance ruler in millimetres from the pixel spacing. Used alone on the
// case page and, in the meeting room, following the presenter's shared view (the view is
// the live protocol's: {attachment_id, frame, zoom, pan: [x, y], wc, ww, ruler}).
import { api, download } from "./api.js";
import { h, fill } from "./ui.js";

/** The canvas is a fixed size, so every participant's pixels are the same. */
const SIZE = 512;
const IMAGES = new Map(); // render path -> Promise<ImageBitmap>, shared across viewers
const INFOS = new Map(); // attachment id -> Promise<info>

export const IMAGE_TYPES = ["image/png", "image/jpeg", "application/dicom"];

export function blankView(attachmentId) {
  return { attachment_id: attachmentId, frame: 0, zoom: 1, pan: [0.5, 0.5], wc: null, ww: null, ruler: null };
}

/** Whether two views show the same thing. */
export function sameView(a, b) {
  return JSON.stringify(normal(a)) === JSON.stringify(normal(b));
}

function normal(v) {
  if (!v || !v.attachment_id) return null;
  return {
    attachment_id: v.attachment_id, frame: v.frame || 0, zoom: Number(v.zoom ?? 1),
    pan: (v.pan || [0.5, 0.5]).map(Number), wc: v.wc ?? null, ww: v.ww ?? null, ruler: v.ruler || null,
  };
}

function info(id) {
  if (!INFOS.has(id)) {
    const p = api(`/api/attachments/${id}/info`);
    p.catch(() => INFOS.delete(id));
    INFOS.set(id, p);
  }
  return INFOS.get(id);
}

function frameImage(view) {
  const q = new URLSearchParams({ frame: String(view.frame || 0) });
  if (view.wc != null && view.ww != null) {
    q.set("wc", String(view.wc));
    q.set("ww", String(view.ww));
  }
  const path = `/api/attachments/${view.attachment_id}/render?${q}`;
  if (!IMAGES.has(path)) {
    const p = download(path).then((blob) => createImageBitmap(blob));
    p.catch(() => IMAGES.delete(path));
    IMAGES.set(path, p);
  }
  return { path, image: IMAGES.get(path) };
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const round = (v, places = 3) => Math.round(v * 10 ** places) / 10 ** places;

/**
 * A viewer. `onChange(view)` is called when the person using it changes the view (zoom,
 * pan, window, frame, ruler); `canDrive()` says whether they may change it at all.
 */
export function createViewer({ onChange = () => {}, canDrive = () => true, label = "Image viewer" } = {}) {
  let view = null;
  let facts = null;
  let drawn = null; // the view last drawn
  let measuring = null; // first ruler point while measuring
  let token = 0;

  const canvas = h("canvas", { width: SIZE, height: SIZE, class: "viewer-canvas", tabindex: "0", "aria-label": label, role: "img" });
  const factsLine = h("p", { class: "muted viewer-facts" });
  const rulerLine = h("p", { class: "viewer-ruler", "aria-live": "polite" });
  const tools = h("div", { class: "actions viewer-tools" });
  const el = h("div", { class: "viewer" }, canvas, factsLine, rulerLine, tools);

  const ctx = canvas.getContext("2d");

  function set(next, fromUser) {
    view = next;
    draw();
    renderTools();
    if (fromUser) onChange({ ...view });
  }

  async function draw() {
    const mine = ++token;
    if (!view?.attachment_id) {
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, SIZE, SIZE);
      drawn = null;
      canvas.dataset.view = "";
      return;
    }
    const shown = { ...view };
    let bitmap;
    try {
      facts = await info(shown.attachment_id);
      bitmap = await frameImage(shown).image;
    } catch (err) {
      if (mine !== token) return;
      facts = null;
      fill(factsLine, err.body?.message || "This image cannot be shown.");
      canvas.dataset.view = "error";
      return;
    }
    if (mine !== token) return;
    const fit = Math.min(SIZE / bitmap.width, SIZE / bitmap.height) * shown.zoom;
    const [px, py] = shown.pan;
    const dx = SIZE / 2 - px * bitmap.width * fit;
    const dy = SIZE / 2 - py * bitmap.height * fit;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, SIZE, SIZE);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(bitmap, dx, dy, bitmap.width * fit, bitmap.height * fit);
    // The ruler, in image pixels of the full-size frame (the render is never shrunk here).
    const r = shown.ruler;
    if (r) {
      const at = ([x, y]) => [dx + x * fit, dy + y * fit];
      const [a, b] = [at(r[0]), at(r[1])];
      ctx.strokeStyle = "#ffd400";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(...a);
      ctx.lineTo(...b);
      ctx.stroke();
      ctx.fillStyle = "#ffd400";
      ctx.font = "14px sans-serif";
      ctx.fillText(rulerText(r), b[0] + 6, b[1] - 6);
    }
    drawn = shown;
    canvas.dataset.view = JSON.stringify(normal(shown));
    canvas.dataset.size = `${bitmap.width}x${bitmap.height}`;
    describe();
    // The tools depend on the facts (frames, DICOM window), known once drawn.
    renderTools();
  }

  function rulerText(r) {
    const dx = r[1][0] - r[0][0];
    const dy = r[1][1] - r[0][1];
    const spacing = facts?.pixel_spacing; // [row, column] in mm
    if (!spacing) return `${round(Math.hypot(dx, dy), 1)} px`;
    return `${round(Math.hypot(dx * spacing[1], dy * spacing[0]), 1)} mm`;
  }

  function describe() {
    if (!facts) return fill(factsLine);
    const bits = [facts.modality, facts.body_part, facts.series_description, facts.study_date].filter(Boolean);
    const frames = facts.frames > 1 ? `frame ${(view?.frame || 0) + 1} of ${facts.frames}` : null;
    const windowed = view?.wc != null ? `window ${view.wc}/${view.ww}` : facts.window_center != null ? `window ${facts.window_center}/${facts.window_width} (stored)` : null;
    fill(factsLine, [...bits, `${facts.columns}×${facts.rows}`, frames, windowed, `zoom ${round(view?.zoom ?? 1, 2)}×`].filter(Boolean).join(" · "));
    fill(rulerLine, view?.ruler ? `Ruler: ${rulerText(view.ruler)}` : "");
  }

  // ---- the person's own changes ----
  const change = (patch) => view && canDrive() && set({ ...view, ...patch }, true);
  const zoomBy = (f) => change({ zoom: round(clamp((view?.zoom ?? 1) * f, 0.1, 32)) });
  const frameBy = (d) => facts && change({ frame: clamp((view?.frame || 0) + d, 0, facts.frames - 1) });
  const windowTo = (wc, ww) => change({ wc: round(wc, 1), ww: round(Math.max(1, ww), 1) });

  // Drag to pan; with "Measure", two clicks draw the ruler.
  let dragging = null;
  const imagePoint = (e) => {
    const rect = canvas.getBoundingClientRect();
    const cx = ((e.clientX - rect.left) / rect.width) * SIZE;
    const cy = ((e.clientY - rect.top) / rect.height) * SIZE;
    const size = (canvas.dataset.size || "1x1").split("x").map(Number);
    const fit = Math.min(SIZE / size[0], SIZE / size[1]) * view.zoom;
    return [round(view.pan[0] * size[0] + (cx - SIZE / 2) / fit, 1), round(view.pan[1] * size[1] + (cy - SIZE / 2) / fit, 1)];
  };
  canvas.addEventListener("pointerdown", (e) => {
    if (!view || !canDrive()) return;
    if (measuring !== null) {
      const p = imagePoint(e);
      if (measuring === true) {
        measuring = p;
      } else {
        const first = measuring;
        measuring = null;
        change({ ruler: [first, p] });
      }
      return;
    }
    dragging = { x: e.clientX, y: e.clientY, pan: [...view.pan] };
    canvas.setPointerCapture?.(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!dragging || !view) return;
    const rect = canvas.getBoundingClientRect();
    const size = (canvas.dataset.size || "1x1").split("x").map(Number);
    const fit = Math.min(SIZE / size[0], SIZE / size[1]) * view.zoom * (rect.width / SIZE);
    change({
      pan: [
        round(clamp(dragging.pan[0] - (e.clientX - dragging.x) / fit / size[0], -1, 2)),
        round(clamp(dragging.pan[1] - (e.clientY - dragging.y) / fit / size[1], -1, 2)),
      ],
    });
  });
  const stopDrag = () => (dragging = null);
  canvas.addEventListener("pointerup", stopDrag);
  canvas.addEventListener("pointercancel", stopDrag);
  canvas.addEventListener("wheel", (e) => {
    if (!view || !canDrive()) return;
    e.preventDefault();
    zoomBy(e.deltaY < 0 ? 1.25 : 0.8);
  }, { passive: false });
  canvas.addEventListener("keydown", (e) => {
    if (!view || !canDrive()) return;
    const keys = { "+": () => zoomBy(1.25), "=": () => zoomBy(1.25), "-": () => zoomBy(0.8), PageDown: () => frameBy(1), PageUp: () => frameBy(-1) };
    const pan = { ArrowLeft: [-0.05, 0], ArrowRight: [0.05, 0], ArrowUp: [0, -0.05], ArrowDown: [0, 0.05] }[e.key];
    if (keys[e.key]) keys[e.key]();
    else if (pan) change({ pan: [round(clamp(view.pan[0] + pan[0], -1, 2)), round(clamp(view.pan[1] + pan[1], -1, 2))] });
    else return;
    e.preventDefault();
  });

  const wcInput = h("input", { type: "number", id: "viewer-wc", step: "any", "aria-label": "Window centre", class: "viewer-number" });
  const wwInput = h("input", { type: "number", id: "viewer-ww", step: "any", min: "1", "aria-label": "Window width", class: "viewer-number" });
  const applyWindow = () => {
    const c = Number(wcInput.value);
    const w = Number(wwInput.value);
    if (wcInput.value !== "" && wwInput.value !== "" && Number.isFinite(c) && Number.isFinite(w)) windowTo(c, w);
  };
  wcInput.addEventListener("change", applyWindow);
  wwInput.addEventListener("change", applyWindow);

  // The tools are built once and updated in place (never rebuilt or moved), so focus,
  // typing and quick repeated clicks are never lost.
  const b = (id, text, onclick) => h("button", { type: "button", class: "secondary small", id, onclick }, text);
  const prev = b("viewer-prev", "Previous frame", () => frameBy(-1));
  const next = b("viewer-next", "Next frame", () => frameBy(1));
  const windowBox = h("span", { class: "viewer-window", hidden: true }, "Window ", wcInput, " / ", wwInput,
    b("viewer-window-default", "Stored window", () => change({ wc: null, ww: null })));
  const measure = b("viewer-measure", "Measure", () => {
    measuring = measuring === null ? true : null;
    renderTools();
  });
  const clearRuler = b("viewer-clear-ruler", "Clear ruler", () => change({ ruler: null }));
  tools.append(
    b("viewer-zoom-in", "Zoom in", () => zoomBy(1.25)),
    b("viewer-zoom-out", "Zoom out", () => zoomBy(0.8)),
    b("viewer-fit", "Fit", () => change({ zoom: 1, pan: [0.5, 0.5] })),
    prev, next, windowBox, measure, clearRuler,
  );

  function renderTools() {
    const driving = Boolean(view?.attachment_id) && canDrive();
    tools.hidden = !driving;
    if (!driving) return;
    for (const [input, value] of [[wcInput, view.wc ?? facts?.window_center], [wwInput, view.ww ?? facts?.window_width]]) {
      if (document.activeElement !== input) input.value = value ?? "";
    }
    windowBox.hidden = facts?.media_type !== "application/dicom";
    const multi = Boolean(facts && facts.frames > 1);
    prev.hidden = next.hidden = !multi;
    prev.disabled = (view.frame || 0) <= 0;
    next.disabled = !multi || (view.frame || 0) >= facts.frames - 1;
    measure.textContent = measuring !== null ? "Click two points…" : "Measure";
    measure.setAttribute("aria-pressed", String(measuring !== null));
    clearRuler.hidden = !view.ruler;
  }

  return {
    el,
    canvas,
    /** Shows `next` (not the person's own change: no `onChange`). */
    show(next) {
      if (sameView(next, view)) return;
      set(next ? { ...blankView(next.attachment_id), ...next } : null, false);
    },
    view: () => (view ? { ...view } : null),
    drawn: () => drawn,
    refreshTools: renderTools,
  };
}
