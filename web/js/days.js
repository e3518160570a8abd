// Calendar days as the mentorship and CPD APIs take them: UK (clinic) days written
// YYYY-MM-DD, both ends of a range inclusive. A day is not an instant, so it is shown
// without any time-zone shift.
import { errorBox, field, h } from "./ui.js";

const ymd = new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/London", year: "numeric", month: "2-digit", day: "2-digit" });
const longDay = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });

/** Today in the UK, as YYYY-MM-DD (the server refuses logs dated after this). */
export const ukToday = () => ymd.format(new Date());

const utc = (s) => new Date(`${s}T00:00:00Z`);
const iso = (d) => d.toISOString().slice(0, 10);

/** A day `n` days after (or before) another. */
export const addDays = (s, n) => {
  const d = utc(s);
  d.setUTCDate(d.getUTCDate() + n);
  return iso(d);
};

/** The calendar quarter holding a day: {from, to}. */
export function quarterOf(s) {
  const d = utc(s);
  const first = Math.floor(d.getUTCMonth() / 3) * 3;
  const from = new Date(Date.UTC(d.getUTCFullYear(), first, 1));
  const to = new Date(Date.UTC(d.getUTCFullYear(), first + 3, 0));
  return { from: iso(from), to: iso(to) };
}

/**
 * The twelve months up to a day: {from, to}, e.g. 2025-03-15 → 2024-03-16 .. 2025-03-15.
 * The same day a year back is clamped to its month's end (29 February → 28 February), so
 * 2024-02-29 gives 2023-03-01 .. 2024-02-29.
 */
export function yearTo(s) {
  const [y, m, d] = s.split("-").map(Number);
  const monthEnd = new Date(Date.UTC(y - 1, m, 0)).getUTCDate();
  const back = iso(new Date(Date.UTC(y - 1, m - 1, Math.min(d, monthEnd))));
  return { from: addDays(back, 1), to: s };
}

/** Whether a string is a real YYYY-MM-DD date. */
export const isDay = (s) => /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(s) && iso(utc(s)) === s;

/** A day for people, e.g. "Tue 1 Apr 2025". */
export const dayText = (s) => (s && isDay(s) ? longDay.format(utc(s)) : s || "");

/** A <time> element for a day. */
export const dayTime = (s) => h("time", { datetime: s }, dayText(s));

/** Minutes as people read them: "45 min", "2 h", "13 h 30 min". */
export function minutesText(m) {
  const n = Math.round(Number(m) || 0);
  if (n < 60) return `${n} min`;
  const hours = Math.floor(n / 60);
  const rest = n % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

/**
 * A from–to pair of date fields with a Show button, checked before it calls
 * `onShow({from, to}, current)`; a refusal shows under the fields. Submits may overlap
 * (a page's own buttons can call requestSubmit() while one is loading): each is
 * numbered, and `current()` is true only while it is the latest, so `onShow` must check
 * it after each await and draw nothing once it is false. Only the latest submit's error
 * is shown and only its end re-enables Show.
 */
export function windowForm(id, { from, to }, onShow) {
  const fromF = field("From", h("input", { type: "date", name: "from", id: `${id}-from`, value: from, required: true }));
  const toF = field("To (inclusive)", h("input", { type: "date", name: "to", id: `${id}-to`, value: to, required: true }));
  const box = errorBox(`${id}-error`);
  const submit = h("button", { type: "submit", class: "secondary" }, "Show");
  const form = h("form", { id, class: "window-form", novalidate: true, "aria-label": "Period" }, h("div", { class: "row" }, fromF, toF, submit), box);
  let latest = 0; // the number of the latest submit
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fromF.setError(null);
    toF.setError(null);
    box.show(null);
    const f = fromF.control.value;
    const t = toF.control.value;
    const bad = (wrap, message) => {
      wrap.setError(message);
      wrap.control.focus();
    };
    if (!isDay(f)) return bad(fromF, "Choose the first day.");
    if (!isDay(t)) return bad(toF, "Choose the last day.");
    if (f > t) return bad(toF, "Must be on or after the first day.");
    const seq = ++latest;
    const current = () => seq === latest;
    submit.disabled = true;
    try {
      await onShow({ from: f, to: t }, current);
    } catch (err) {
      if (current()) box.show(err);
    } finally {
      if (current()) submit.disabled = false;
    }
  });
  form.range = () => ({ from: fromF.control.value, to: toF.control.value });
  return form;
}

// Instants on the UK clock. The clinics are in the UK, so a time typed into a form is UK
// local time (GMT or BST), whatever zone the browser is in.
const ukParts = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/London", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});
const ukDateTime = new Intl.DateTimeFormat(undefined, {
  timeZone: "Europe/London", weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
});
const ukZone = new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/London", timeZoneName: "short" });

/** An instant's UK wall-clock date and time: {date: "YYYY-MM-DD", time: "HH:MM"}. */
export function ukWallClock(instant) {
  const p = Object.fromEntries(ukParts.formatToParts(new Date(instant)).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}` };
}

/**
 * The instant a UK date ("YYYY-MM-DD") and time ("HH:MM") name, or null when they are not
 * a real date and time or name an hour the clocks skip (going forward in March). An hour
 * the clocks repeat (going back in October) means its first pass, in BST.
 */
export function fromUkWallClock(date, time) {
  if (!isDay(date) || !/^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(time)) return null;
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const asUtc = Date.UTC(y, m - 1, d, hh, mm);
  // The UK is one hour ahead of UTC (BST) or on it (GMT).
  for (const offset of [60, 0]) {
    const t = asUtc - offset * 60000;
    const back = ukWallClock(t);
    if (back.date === date && back.time === time) return new Date(t);
  }
  return null;
}

/** An instant on the UK clock for people, e.g. "Thu 10 Dec 2026, 12:30". */
export const ukWhen = (iso) => (iso ? ukDateTime.format(new Date(iso)) : "");

/** The UK clock's name at an instant: "GMT" or "BST". */
export const ukZoneName = (instant) => ukZone.formatToParts(new Date(instant)).find((p) => p.type === "timeZoneName")?.value || "UK time";

/** An RFC 3339 UTC time for the API, without fractions: "2026-12-10T12:30:00Z". */
export const rfc3339 = (date) => date.toISOString().replace(/\.[0-9]{3}Z$/, "Z");
