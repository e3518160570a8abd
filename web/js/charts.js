// What the report pages' charts and tables share: SVG elements built without markup, a
// round axis for counts, figures written for people (a dash for none, one decimal
// place, a share that never rounds up to its target), UK months, and the table cells.
// Charts are drawn by hand here; each page pairs every chart with its data table.
import { h } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";

/** Creates an SVG element: svg("rect", {x, y, width, height}). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** A round axis maximum and tick step for counts up to `max`. */
export function axis(max) {
  if (max <= 5) return { top: Math.max(max, 1), step: 1 };
  const rough = max / 5;
  const pow = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((k) => k * pow).find((s) => s >= rough);
  return { top: Math.ceil(max / step) * step, step };
}

const monthName = new Intl.DateTimeFormat(undefined, { month: "short", year: "numeric", timeZone: "UTC" });
const monthShortName = new Intl.DateTimeFormat(undefined, { month: "short", timeZone: "UTC" });
/** "2026-12" → "Dec 2026". */
export const monthText = (m) => monthName.format(new Date(`${m}-01T00:00:00Z`));
/** "2026-12" → "Dec". */
export const monthShort = (m) => monthShortName.format(new Date(`${m}-01T00:00:00Z`));

/** A figure with its unit, one decimal place unless whole; a dash for none. */
export const num = (x, unit = "") => (x === null || x === undefined ? "—" : `${Number.isInteger(x) ? x : x.toFixed(1)}${unit}`);
export const plural = (n, one, many = `${one}s`) => `${num(n)} ${n === 1 ? one : many}`;

/**
 * A percentage as num() writes it, but with more decimals where one would round up to
 * `target` (89.96 is "89.96%", not "90.0%" beside "below the 90% target").
 */
export function share(x, target) {
  if (x === null || x === undefined) return "—";
  if (Number.isInteger(x) || x >= target) return num(x, "%");
  let places = 1;
  while (places < 6 && Number(x.toFixed(places)) >= target) places += 1;
  const text = x.toFixed(places);
  return `${Number(text) >= target ? (Math.floor(x * 1e6) / 1e6).toFixed(6) : text}%`;
}

/** A column heading. */
export const th = (text, attrs = {}) => h("th", { scope: "col", ...attrs }, text);
/** A data cell, right-aligned figures by default. */
export const td = (text, cls = "num", attrs = {}) => h("td", { class: cls, ...attrs }, text);

/**
 * A table in a scrollable, labelled region (keyboard users can scroll it). `attrs` is the
 * table's class, or its attributes with a `class`.
 */
export function tableRegion(caption, attrs, ...parts) {
  const { class: cls = "", ...rest } = typeof attrs === "string" ? { class: attrs } : attrs;
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", { class: `report-table ${cls}`.trim(), ...rest }, h("caption", {}, caption), ...parts),
  );
}
