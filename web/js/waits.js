// The waiting times from the referral on the reports page (issue 17), one section per
// specialty: a card per wait (referral to discussion, referral to triage decision) with
// its median, 90th percentile, the cases counted from their first booking (no referral
// date) and each target's share, met or not; the waits to discussion over the period as
// bars per week waited, with a line at each calendar-day target for all cases; and per
// month the cases booked beside the median days from referral to discussion. Every
// chart has its data table. The figures are the server's (`referral_waits` of the
// activity report); nothing is recomputed here but the running share in a table.
import { h } from "./ui.js";
import { axis, monthShort, monthText, num, plural, share, svg, tableRegion, td, th } from "./charts.js";

const WAITS = [
  ["referral_to_discussion", "Referral to discussion"],
  ["referral_to_triage", "Referral to triage decision"],
];
const sentence = (s) => s.replace(/^./, (c) => c.toUpperCase());

/** A target's days: "6 weeks (42 days)", "5 days", "1 working day". */
export function targetDays(t) {
  if (t.day_kind === "working") return plural(t.within_days, "working day");
  if (t.within_days >= 14 && t.within_days % 7 === 0) return `${t.within_days / 7} weeks (${t.within_days} days)`;
  return plural(t.within_days, "day");
}

/** A target in words: "Discussed within 6 weeks (42 days)", "Urgent cases triaged within 1 working day". */
export function targetText(t) {
  const verb = t.measure === "referral_to_triage" ? "triaged" : "discussed";
  return `${t.urgency === "any" ? sentence(verb) : `${sentence(t.urgency)} cases ${verb}`} within ${targetDays(t)}`;
}

/** A target line's short label: "6 wk · 90%", "10 d · 100%". */
const lineLabel = (t) => `${t.within_days % 7 === 0 && t.within_days >= 14 ? `${t.within_days / 7} wk` : `${t.within_days} d`} · ${num(t.target_percent)}%`;

/** The verdict of a target: "met", "below", or "none" (no cases it covers). */
const verdict = (t) => (t.met === null || t.met === undefined ? "none" : t.met ? "met" : "below");

function targetItem(t) {
  return h(
    "li",
    { class: `target ${verdict(t)}`, dataset: { measure: t.measure, urgency: t.urgency, withinDays: String(t.within_days), dayKind: t.day_kind } },
    h("span", { class: "target-name" }, targetText(t)),
    ": ",
    t.cases
      ? [
          h("strong", { class: "target-share" }, share(t.percent, t.target_percent)),
          ` (${t.within} of ${t.cases}) · `,
          h("span", { class: "target-verdict" }, t.met ? `meets the ${num(t.target_percent)}% target` : `below the ${num(t.target_percent)}% target`),
        ]
      : h("span", { class: "muted" }, `no cases yet · target ${num(t.target_percent)}%`),
  );
}

function figure(key, label, value) {
  return h("div", { dataset: { figure: key } }, h("dt", {}, label), h("dd", {}, value));
}

/** One wait's card: median, 90th percentile, cases measured and from booking, targets. */
function waitCard(id, key, heading, w) {
  const hid = `${id}-${key}-h`;
  const from = w.counted_from_booking;
  return h(
    "section",
    { class: "wait-card", dataset: { wait: key }, "aria-labelledby": hid },
    h("h4", { id: hid }, heading),
    h(
      "dl",
      { class: "wait-figures" },
      figure("median", "Median", w.measured ? plural(w.median_days, "day") : "—"),
      figure("p90", "90th percentile", w.measured ? plural(w.p90_days, "day") : "—"),
      figure("measured", "Cases measured", String(w.measured)),
      figure("from-booking", "Counted from first booking", String(from)),
    ),
    w.measured
      ? from
        ? h("p", { class: "hint" }, `${plural(from, "case")} had no referral date and ${from === 1 ? "is" : "are"} counted from ${from === 1 ? "its" : "their"} first booking instead.`)
        : null
      : h("p", { class: "hint" }, "No cases measured in this period yet."),
    w.targets.length
      ? h("ul", { class: "targets", "aria-label": `Targets: ${heading.toLowerCase()}` }, w.targets.map(targetItem))
      : h("p", { class: "muted" }, "No targets are set for this wait."),
  );
}

// ---- The distribution by week ------------------------------------------------------------
/** "Under 1 week (0–6 days)", "3 weeks (21–27 days)", "26 weeks or more (182+ days)". */
function weekLabel(k, last) {
  if (k === last) return `${k} weeks or more (${7 * k}+ days)`;
  return `${k === 0 ? "Under 1 week" : k === 1 ? "1 week" : `${k} weeks`} (${7 * k}–${7 * k + 6} days)`;
}

/**
 * Bars of cases per week waited (index k: 7k to 7k+6 days; the last, that many weeks or
 * more), and a dashed line at each target, just after its last day: a case left of the
 * line waited within the target.
 */
function distributionChart(weeks, lines, label) {
  const W = 560;
  const H = 280;
  const m = { left: 44, right: 16, top: 52, bottom: 52 };
  const plotW = W - m.left - m.right;
  const plotH = H - m.top - m.bottom;
  const last = weeks.length - 1;
  const band = plotW / weeks.length;
  const x = (week) => m.left + week * band;
  const { top, step } = axis(Math.max(0, ...weeks));
  const y = (v) => m.top + plotH - (v / top) * plotH;
  const grid = [];
  for (let v = 0; v <= top; v += step) {
    grid.push(
      svg("line", { class: v ? "grid" : "axis", x1: m.left, x2: W - m.right, y1: y(v), y2: y(v) }),
      svg("text", { class: "tick", x: m.left - 8, y: y(v) + 4, "text-anchor": "end" }, String(v)),
    );
  }
  const bars = weeks.map((n, k) =>
    svg(
      "g",
      { class: "week" },
      svg("rect", { x: x(k) + band * 0.12, y: y(n), width: band * 0.76, height: Math.max(0, y(0) - y(n)), "data-week": k, "data-cases": n }),
      n ? svg("text", { class: "value", x: x(k) + band / 2, y: y(n) - 4, "text-anchor": "middle" }, String(n)) : null,
      k % 2 === 0 ? svg("text", { class: "tick", x: x(k) + band / 2, y: y(0) + 18, "text-anchor": "middle" }, k === last ? `${k}+` : String(k)) : null,
    ),
  );
  // Each label above its line, in the first of three rows where it clears the labels
  // already placed (by position, left to right); the line runs down from its label.
  const rowEnds = [-Infinity, -Infinity, -Infinity];
  const placed = new Map();
  const byPosition = lines.map((t) => ({ t, at: x(Math.min((t.within_days + 1) / 7, last)) })).sort((a, b) => a.at - b.at);
  for (const one of byPosition) {
    // After the target's last day (day d ends at d + 1), at most the start of the last bar.
    const width = lineLabel(one.t).length * 7;
    const anchor = one.at > W - m.right - width / 2 ? "end" : one.at < m.left + width / 2 ? "start" : "middle";
    const left = anchor === "end" ? one.at - width : anchor === "start" ? one.at : one.at - width / 2;
    const row = Math.max(0, rowEnds.findIndex((end) => left > end + 6));
    rowEnds[row] = left + width;
    placed.set(one.t, { ...one, anchor, row });
  }
  const labelY = (t) => 13 + placed.get(t).row * 13;
  // The lines first, the labels over them (outlined, so a line crossing one is behind it).
  const targetLines = svg(
    "g",
    { class: "target-lines" },
    lines.map((t) => {
      const { at } = placed.get(t);
      return svg("line", { "data-testid": "waiting-target-line", "data-within-days": t.within_days, x1: at, x2: at, y1: labelY(t) + 4, y2: y(0) });
    }),
    lines.map((t) => {
      const { at, anchor } = placed.get(t);
      return svg("text", { class: "target-label", "data-testid": "waiting-target-label", x: at, y: labelY(t), "text-anchor": anchor }, lineLabel(t));
    }),
  );
  return svg(
    "svg",
    { class: "chart waiting", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, focusable: "false", "data-testid": "waiting-chart" },
    svg("title", {}, label),
    grid,
    bars,
    targetLines,
    svg("text", { class: "axis-label", x: 14, y: m.top + plotH / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${m.top + plotH / 2})` }, "Cases"),
    svg("text", { class: "axis-label", x: m.left + plotW / 2, y: H - 8, "text-anchor": "middle" }, "Whole weeks from referral to discussion"),
  );
}

function distributionTable(w, caption) {
  const last = w.weeks.length - 1;
  let running = 0;
  return tableRegion(
    caption,
    { class: "weeks", "data-testid": "waiting-table" },
    h("thead", {}, h("tr", {}, th("Waited"), th("Cases", { class: "num" }), th(h("abbr", { title: "Share of the cases measured that waited at most this long" }, "Cumulative"), { class: "num" }))),
    h(
      "tbody",
      {},
      w.weeks.map((n, k) => {
        running += n;
        return h("tr", { dataset: { week: String(k) } }, h("th", { scope: "row" }, weekLabel(k, last)), td(String(n)), td(w.measured ? num(Math.round((running * 1000) / w.measured) / 10, "%") : "—"));
      }),
    ),
    h("tfoot", {}, h("tr", {}, h("th", { scope: "row" }, "Cases measured"), td(String(w.measured)), td(""))),
  );
}

// ---- Per month ---------------------------------------------------------------------------
/** Bars of cases booked per month (left axis), a line of median days to discussion (right). */
function trendChart(rows, label) {
  const W = 500;
  const H = 250;
  const m = { left: 44, right: 48, top: 16, bottom: 50 };
  const plotW = W - m.left - m.right;
  const plotH = H - m.top - m.bottom;
  const count = axis(Math.max(0, ...rows.map((r) => r.cases.booked)));
  const medians = rows.map((r) => r.referral_waits.referral_to_discussion.median_days);
  const days = axis(Math.max(0, ...medians.filter((d) => d !== null)));
  const yCount = (v) => m.top + plotH - (v / count.top) * plotH;
  const yDays = (v) => m.top + plotH - (v / days.top) * plotH;
  const group = plotW / rows.length;
  const barW = Math.min(34, group * 0.55);
  const every = Math.ceil(rows.length / 12);
  const cx = (i) => m.left + group * i + group / 2;
  const grid = [];
  for (let v = 0; v <= count.top; v += count.step) {
    grid.push(
      svg("line", { class: v ? "grid" : "axis", x1: m.left, x2: W - m.right, y1: yCount(v), y2: yCount(v) }),
      svg("text", { class: "tick", x: m.left - 8, y: yCount(v) + 4, "text-anchor": "end" }, String(v)),
    );
  }
  for (let v = 0; v <= days.top; v += days.step) {
    grid.push(svg("text", { class: "tick days", x: W - m.right + 8, y: yDays(v) + 4, "text-anchor": "start" }, String(v)));
  }
  const bars = rows.map((r, i) =>
    svg(
      "g",
      { class: "series booked" },
      svg("rect", { x: cx(i) - barW / 2, y: yCount(r.cases.booked), width: barW, height: Math.max(0, yCount(0) - yCount(r.cases.booked)), "data-month": r.month, "data-booked": r.cases.booked }),
      i % every === 0 ? svg("text", { class: "tick", x: cx(i), y: yCount(0) + 18, "text-anchor": "middle" }, rows.length > 6 ? monthShort(r.month) : monthText(r.month)) : null,
    ),
  );
  // The line joins neighbouring months with a median; a month without one leaves a gap.
  let path = "";
  medians.forEach((d, i) => {
    if (d === null) return;
    path += `${i > 0 && medians[i - 1] !== null ? "L" : "M"}${cx(i).toFixed(1)} ${yDays(d).toFixed(1)} `;
  });
  const points = medians.map((d, i) =>
    d === null ? null : svg("circle", { class: "median-point", cx: cx(i), cy: yDays(d), r: 4, "data-month": rows[i].month, "data-median": d }),
  );
  return svg(
    "svg",
    { class: "chart trend", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, focusable: "false", "data-testid": "waiting-trend-chart" },
    svg("title", {}, label),
    grid,
    bars,
    path ? svg("path", { class: "median-line", d: path.trim() }) : null,
    points,
    svg("text", { class: "axis-label", x: 14, y: m.top + plotH / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${m.top + plotH / 2})` }, "Cases booked"),
    svg("text", { class: "axis-label", x: W - 10, y: m.top + plotH / 2, "text-anchor": "middle", transform: `rotate(90 ${W - 10} ${m.top + plotH / 2})` }, "Median days"),
    svg("text", { class: "axis-label", x: m.left + plotW / 2, y: H - 8, "text-anchor": "middle" }, "Month of the session (UK)"),
  );
}

function trendTable(rows, total, caption) {
  const line = (r, head) => {
    const d = r.referral_waits.referral_to_discussion;
    return h(
      "tr",
      { dataset: r.month ? { month: r.month } : { total: "" } },
      h("th", { scope: "row" }, head),
      td(String(r.cases.booked)),
      td(String(d.measured)),
      td(num(d.median_days), "num", { dataset: { figure: "median" } }),
      td(num(d.p90_days)),
      td(String(d.counted_from_booking)),
    );
  };
  return tableRegion(
    caption,
    { class: "trend", "data-testid": "waiting-trend-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        th("Month"),
        th("Booked", { class: "num" }),
        th(h("abbr", { title: "Cases discussed (or decided outside the meeting) whose wait from the referral was measured" }, "Measured"), { class: "num" }),
        th(h("abbr", { title: "Median days from referral to discussion" }, "Median days"), { class: "num" }),
        th(h("abbr", { title: "90th percentile of the days from referral to discussion" }, "90th percentile"), { class: "num" }),
        th(h("abbr", { title: "Cases without a referral date, counted from their first booking" }, "From booking"), { class: "num" }),
      ),
    ),
    h("tbody", {}, rows.map((r) => line(r, monthText(r.month)))),
    h("tfoot", {}, line(total, "Total")),
  );
}

/**
 * The section for one specialty: `rows` its months, `total` its window figures, `id` a
 * prefix for element ids, `name` and `period` for labels.
 */
export function waitingSection(rows, total, { id, name, period }) {
  const waits = total.referral_waits;
  const d = waits.referral_to_discussion;
  const lines = d.targets.filter((t) => t.urgency === "any" && t.day_kind === "calendar");
  const hid = `${id}-waits-h`;
  const chartLabel =
    `Cases by whole weeks from referral to discussion, ${name}, ${period}: ` +
    (d.measured ? d.weeks.map((n, k) => (n ? `${weekLabel(k, d.weeks.length - 1)} ${n}` : null)).filter(Boolean).join("; ") : "none measured") +
    `. Median ${num(d.median_days)} days.` +
    (lines.length ? ` Target lines: ${lines.map((t) => `${targetText(t).toLowerCase()}, ${num(t.target_percent)}%`).join("; ")}.` : "");
  const trendLabel = `Cases booked and median days from referral to discussion per month, ${name}, ${period}: ${rows
    .map((r) => `${monthText(r.month)} ${r.cases.booked} booked, median ${r.referral_waits.referral_to_discussion.median_days === null ? "none" : `${num(r.referral_waits.referral_to_discussion.median_days)} days`}`)
    .join("; ")}.`;
  return h(
    "section",
    { class: "waits-section", "aria-labelledby": hid, dataset: { testid: "waiting-times" } },
    h("h3", { id: hid }, "Waiting times from referral"),
    h(
      "p",
      { class: "hint" },
      "Calendar days from the date the referral was received (from the booking's proforma) to the first triage decision, and to the discussion (or the session's day, for a case decided outside the meeting). First referrals only, not re-discussions.",
    ),
    h("div", { class: "waits" }, WAITS.map(([key, heading]) => waitCard(id, key, heading, waits[key]))),
    h(
      "div",
      { class: "charts" },
      h(
        "figure",
        { class: "chart-card waiting-chart" },
        h("h4", {}, "How long cases waited for discussion"),
        d.measured
          ? h(
              "div",
              { class: "chart-pair" },
              h(
                "div",
                { class: "chart-col" },
                distributionChart(d.weeks, lines, chartLabel),
                h(
                  "p",
                  { class: "hint" },
                  `Bars: the ${plural(d.measured, "case")} measured, by whole weeks waited (0 is under a week; ${d.weeks.length - 1}+ is ${d.weeks.length - 1} weeks or more).`,
                  lines.length ? ` Dashed lines: the targets for all cases (a case left of a line was discussed within it): ${lines.map((t) => `${targetText(t).toLowerCase()}, ${num(t.target_percent)}%`).join("; ")}.` : " No calendar-day target for all cases is set, so no line is drawn.",
                ),
              ),
              distributionTable(d, `Waits from referral to discussion by week, ${name}, ${period}`),
            )
          : h("p", { class: "muted" }, "No cases discussed in this period yet."),
      ),
      h(
        "figure",
        { class: "chart-card trend-chart" },
        h("h4", {}, "Cases booked and median days from referral to discussion, per month"),
        h(
          "div",
          { class: "chart-pair" },
          h(
            "div",
            { class: "chart-col" },
            trendChart(rows, trendLabel),
            h(
              "p",
              { class: "legend hint", "aria-hidden": "true" },
              h("span", { class: "key" }, h("span", { class: "swatch booked" }), " Cases booked (left axis)"),
              h("span", { class: "key" }, h("span", { class: "swatch median" }), " Median days, referral to discussion (right axis)"),
            ),
          ),
          trendTable(rows, total, `Waits from referral to discussion per month, ${name}, ${period}`),
        ),
      ),
    ),
  );
}
