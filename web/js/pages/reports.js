// The activity report (DESIGN §4 flow 8): for a window of UK days and one specialty or
// all, KPI cards per specialty, cases booked vs discussed per month and the outcome mix
// as SVG charts (each with a data table), the waiting times from the referral against
// the specialty's targets (waits.js), the GP practices compared (practice-report.js),
// and the per-case CSV export.
//
// Coordinators report on any specialty and their CSV carries patient identifiers;
// consultants report on their own specialties and their CSV has none. The JSON holds no
// patient data; every CSV download is audited by the server.
import { api, download } from "../api.js";
import { explain, field, fill, h, humanise } from "../ui.js";
import { axis, monthShort, monthText, num, plural, share, svg, tableRegion, td, th } from "../charts.js";
import { busy, select, stillHere } from "../forms.js";
import { addDays, dayText, quarterOf, ukToday, windowForm } from "../days.js";
import { waitingSection } from "../waits.js";
import { practicesSection } from "../practice-report.js";

/** The service's KPI: 90% discussed within 6 weeks of booking (DESIGN §9). */
const TARGET = 90;

const CODES = {
  window_too_long: "A report covers at most two years (731 days). Choose a shorter period.",
  invalid_window: "The last day must be on or after the first day.",
  invalid_date: "Choose both days of the period.",
  required: "Choose both days of the period.",
  forbidden_specialty: "You can report only on your own specialties.",
  unknown_specialty: "There is no such specialty.",
  forbidden: "Only coordinators and consultants can run the activity report.",
};
const why = (err) => CODES[err?.code] || explain(err);

const title = (slug) => humanise(slug).replace(/^./, (c) => c.toUpperCase());
const DESTINATIONS = {
  orthopaedics: "Orthopaedics",
  spinal_surgery: "Spinal surgery",
  rheumatology: "Rheumatology",
  pain_clinic: "Pain clinic",
  neurology: "Neurology",
  physiotherapy: "Physiotherapy",
  psychology: "Psychology",
  pain_management_programme: "Pain management programme",
  injection_clinic: "Injection clinic",
  other: "Other",
};
const INVESTIGATIONS = {
  mri: "MRI",
  xray: "X-ray",
  ct: "CT",
  ultrasound: "Ultrasound",
  bloods: "Bloods",
  nerve_conduction: "Nerve conduction",
  dexa: "DEXA",
  other: "Other",
};

/** A share beside the 90% KPI (see charts.share). */
const percent = (x) => share(x, TARGET);

// ---- Windows --------------------------------------------------------------------------
/** The last `n` whole months before the one holding `today`. */
function lastMonths(today, n) {
  const [y, m] = today.split("-").map(Number);
  const start = new Date(Date.UTC(y, m - 1 - n, 1));
  const end = new Date(Date.UTC(y, m - 1, 0));
  return { from: start.toISOString().slice(0, 10), to: end.toISOString().slice(0, 10) };
}
function presets(today) {
  const q = quarterOf(today);
  return [
    ["This quarter", q],
    ["Last quarter", quarterOf(addDays(q.from, -1))],
    ["Last 3 whole months", lastMonths(today, 3)],
    ["Last 12 whole months", lastMonths(today, 12)],
  ];
}

// ---- SVG ------------------------------------------------------------------------------
/** Grouped bars: booked and discussed per month. */
function monthlyChart(rows, label) {
  const W = 500;
  const H = 250;
  const m = { left: 44, right: 8, top: 16, bottom: 50 };
  const plotW = W - m.left - m.right;
  const plotH = H - m.top - m.bottom;
  const max = Math.max(0, ...rows.flatMap((r) => [r.cases.booked, r.cases.discussed]));
  const { top, step } = axis(max);
  const y = (v) => m.top + plotH - (v / top) * plotH;
  const group = plotW / rows.length;
  const barW = Math.min(28, (group * 0.7) / 2);
  const every = Math.ceil(rows.length / 12);
  const grid = [];
  for (let v = 0; v <= top; v += step) {
    grid.push(
      svg("line", { class: v ? "grid" : "axis", x1: m.left, x2: W - m.right, y1: y(v), y2: y(v) }),
      svg("text", { class: "tick", x: m.left - 8, y: y(v) + 4, "text-anchor": "end" }, String(v)),
    );
  }
  const bars = rows.map((r, i) => {
    const cx = m.left + group * i + group / 2;
    const one = (value, kind, dx) => {
      const x = cx + dx;
      return svg(
        "g",
        { class: `series ${kind}` },
        svg("rect", { x, y: y(value), width: barW, height: Math.max(0, y(0) - y(value)) }),
        rows.length <= 12 ? svg("text", { class: "value", x: x + barW / 2, y: y(value) - 4, "text-anchor": "middle" }, String(value)) : null,
      );
    };
    return svg(
      "g",
      { class: "month" },
      one(r.cases.booked, "booked", -barW - 1),
      one(r.cases.discussed, "discussed", 1),
      i % every === 0 ? svg("text", { class: "tick", x: cx, y: y(0) + 18, "text-anchor": "middle" }, rows.length > 6 ? monthShort(r.month) : monthText(r.month)) : null,
    );
  });
  return svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, focusable: "false" },
    svg("title", {}, label),
    grid,
    bars,
    svg("text", { class: "axis-label", x: 14, y: m.top + plotH / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${m.top + plotH / 2})` }, "Cases"),
    svg("text", { class: "axis-label", x: m.left + plotW / 2, y: H - 8, "text-anchor": "middle" }, "Month of the session (UK)"),
  );
}

/** The outcome mix as rows: [group, label, count]. */
function outcomeRows(o) {
  const rows = [["discharge", "Discharged to GP", o.discharged_to_gp]];
  for (const [d, n] of Object.entries(o.referrals)) rows.push(["referral", `Referred: ${DESTINATIONS[d] || title(d)}`, n]);
  for (const [k, n] of Object.entries(o.investigations)) rows.push(["investigation", `Investigation: ${INVESTIGATIONS[k] || title(k)}`, n]);
  rows.push(["rediscuss", "Re-discuss at a later MDT", o.re_discuss]);
  return rows;
}

/** Horizontal bars for the outcome mix. */
function outcomeChart(rows, label) {
  const W = 520;
  const rowH = 30;
  const m = { left: 200, right: 36, top: 8, bottom: 8 };
  const H = m.top + m.bottom + rows.length * rowH;
  const max = Math.max(1, ...rows.map((r) => r[2]));
  const plotW = W - m.left - m.right;
  return svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, focusable: "false" },
    svg("title", {}, label),
    rows.map(([group, text, n], i) => {
      const y0 = m.top + i * rowH;
      const w = (n / max) * plotW;
      return svg(
        "g",
        { class: `series ${group}` },
        svg("text", { class: "tick", x: m.left - 10, y: y0 + rowH / 2 + 4, "text-anchor": "end" }, text),
        svg("rect", { class: "track", x: m.left, y: y0 + 5, width: plotW, height: rowH - 10 }),
        svg("rect", { x: m.left, y: y0 + 5, width: w, height: rowH - 10 }),
        svg("text", { class: "value", x: m.left + w + 6, y: y0 + rowH / 2 + 4 }, String(n)),
      );
    }),
    svg("line", { class: "axis", x1: m.left, x2: m.left, y1: m.top, y2: H - m.bottom }),
  );
}

// ---- Tables and cards -----------------------------------------------------------------

function monthlyTable(rows, total, caption) {
  const line = (r, head) =>
    h(
      "tr",
      { dataset: r.month ? { month: r.month } : { total: "" } },
      h("th", { scope: "row" }, head),
      td(String(r.cases.booked)),
      td(String(r.cases.discussed)),
      td(String(r.cases.deferred)),
      td(String(r.cases.withdrawn)),
      td(String(r.cases.pending)),
      td(num(r.days_to_discussion.median)),
      td(percent(r.days_to_discussion.within_6_weeks_percent)),
    );
  return tableRegion(
    caption,
    "monthly",
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        th("Month"),
        th("Booked", { class: "num" }),
        th("Discussed", { class: "num" }),
        th("Deferred", { class: "num" }),
        th("Withdrawn", { class: "num" }),
        th("Pending", { class: "num" }),
        th(h("abbr", { title: "Median days from booking to discussion" }, "Median days"), { class: "num" }),
        th(h("abbr", { title: "Discussed within 6 weeks of booking" }, "≤ 6 weeks"), { class: "num" }),
      ),
    ),
    h("tbody", {}, rows.map((r) => line(r, monthText(r.month)))),
    h("tfoot", {}, line(total, "Total")),
  );
}

function outcomeTable(rows, caption) {
  return tableRegion(
    caption,
    "outcomes",
    h("thead", {}, h("tr", {}, th("Outcome"), th("Count", { class: "num" }))),
    h("tbody", {}, rows.map(([group, text, n]) => h("tr", { dataset: { group } }, h("th", { scope: "row" }, text), td(String(n))))),
  );
}

function card(key, label, value, sub, cls = "") {
  return h("div", { class: `kpi ${cls}`.trim(), dataset: { kpi: key } }, h("dt", {}, label), h("dd", { class: "value" }, value), sub ? h("dd", { class: "sub" }, sub) : null);
}

function kpis(t) {
  const c = t.cases;
  const d = t.days_to_discussion;
  const tp = t.time_per_case;
  const s = t.sessions;
  const pct = d.within_6_weeks_percent;
  const met = pct !== null && pct >= TARGET;
  return h(
    "dl",
    { class: "kpis" },
    card("booked", "Cases booked", String(c.booked), `${c.urgent} urgent · ${c.follow_up} follow-up`),
    card("discussed", "Discussed", String(c.discussed), `${c.pending} still to be discussed`),
    card("deferred", "Deferred", String(c.deferred), "Moved on or deferred in the meeting"),
    card("withdrawn", "Withdrawn", String(c.withdrawn)),
    card(
      "days",
      "Median days from booking to discussion",
      d.measured ? plural(d.median, "day") : "—",
      d.measured ? `90th percentile ${plural(d.p90, "day")} · ${plural(d.measured, "case")} measured` : "No cases discussed yet",
    ),
    card(
      "six-weeks",
      "Discussed within 6 weeks",
      percent(pct),
      pct === null
        ? `Target ${TARGET}% · no cases discussed yet`
        : h("span", {}, `${d.within_6_weeks} of ${d.measured} · `, h("strong", {}, met ? `meets the ${TARGET}% target` : `below the ${TARGET}% target`)),
      pct === null ? "" : met ? "met" : "below",
    ),
    card(
      "minutes",
      "Minutes per case, actual vs allotted",
      tp.timed ? `${num(tp.median_actual_minutes)} / ${num(tp.median_allotted_minutes)}` : "—",
      tp.timed ? `Medians over ${plural(tp.timed, "case")} timed in the meeting` : "No cases timed in a live meeting",
    ),
    card(
      "sessions",
      "Sessions run / quorate",
      `${s.run} / ${s.quorate}`,
      `of ${plural(s.total, "session")} in the period${s.cancelled ? ` · ${s.cancelled} cancelled` : ""}${s.median_attendees !== null ? ` · median ${num(s.median_attendees)} attending` : ""}`,
    ),
  );
}

function specialtySection(report, t) {
  const name = title(t.specialty);
  const rows = report.months.filter((m) => m.specialty === t.specialty);
  const period = `${dayText(report.from)} to ${dayText(report.to)}`;
  const id = `report-${t.specialty}`;
  const empty = !t.cases.booked && !t.sessions.total;
  const o = t.outcomes;
  const mix = outcomeRows(o);
  const bookedLabel = `Cases booked and discussed per month, ${name}, ${period}: ${rows.map((r) => `${monthText(r.month)} ${r.cases.booked} booked, ${r.cases.discussed} discussed`).join("; ")}.`;
  const mixLabel = `Outcome mix of ${plural(o.signed, "signed outcome")}, ${name}: ${mix.map(([, text, n]) => `${text} ${n}`).join("; ")}.`;
  return h(
    "section",
    { class: "report-specialty", id, "aria-labelledby": `${id}-h`, dataset: { specialty: t.specialty } },
    h("h2", { id: `${id}-h` }, name),
    empty
      ? h("p", { class: "muted" }, `No ${name.toLowerCase()} sessions in this period.`)
      : [
          kpis(t),
          h(
            "div",
            { class: "charts" },
            h(
              "figure",
              { class: "chart-card monthly-chart" },
              h("h3", {}, "Cases booked and discussed per month"),
              h(
                "div",
                { class: "chart-pair" },
                h(
                  "div",
                  { class: "chart-col" },
                  monthlyChart(rows, bookedLabel),
                  h(
                    "p",
                    { class: "legend hint", "aria-hidden": "true" },
                    h("span", { class: "key" }, h("span", { class: "swatch booked" }), " Booked"),
                    h("span", { class: "key" }, h("span", { class: "swatch discussed" }), " Discussed"),
                  ),
                ),
                monthlyTable(rows, t, `Cases per month, ${name}, ${period}`),
              ),
            ),
            h(
              "figure",
              { class: "chart-card outcome-chart" },
              h("h3", {}, "Outcome mix"),
              o.signed
                ? h(
                    "div",
                    { class: "chart-pair" },
                    h(
                      "div",
                      { class: "chart-col" },
                      outcomeChart(mix, mixLabel),
                      h(
                        "p",
                        { class: "hint" },
                        `From ${plural(o.signed, "signed outcome")}: ${o.onward_referral} referred onward, ${o.with_investigations} with investigations. A case referred to two services counts under each; investigations count each one ordered.`,
                      ),
                    ),
                    outcomeTable(mix, `Outcome mix, ${name}, ${period}`),
                  )
                : h("p", { class: "muted" }, "No outcomes signed for cases of this period yet."),
            ),
          ),
          waitingSection(rows, t, { id, name, period }),
        ],
  );
}

// ---- The page -------------------------------------------------------------------------
export async function render(main, { user }) {
  const here = stillHere();
  const coordinator = user.role === "coordinator";
  const today = ukToday();
  const initial = quarterOf(today);
  const known = coordinator ? await api("/api/specialties").catch(() => user.specialties || []) : user.specialties || [];

  const status = document.getElementById("status");
  const reportBox = h("div", { id: "report" });
  const heading = h("p", { id: "report-period", class: "report-period" });
  let shown = null; // {from, to, specialty} of the report on screen

  const specialty = field(
    "Specialty",
    select({ name: "specialty", id: "report-specialty" }, [["", coordinator ? "All specialties" : "All my specialties"], ...known.map((s) => [s, title(s)])], ""),
  );

  // `current` (from the period form) is false once a later request has started: then this
  // one's report, or its error, is dropped rather than drawn over the newer one.
  async function show({ from, to }, current = () => true) {
    // The specialty as asked for: the dropdown may change while the report loads.
    const which = specialty.control.value;
    const q = new URLSearchParams({ from, to });
    if (which) q.set("specialty", which);
    let report;
    try {
      report = await api(`/api/reports/activity?${q}`);
    } catch (err) {
      throw { message: why(err) };
    }
    if (!current()) return;
    // The practices for the same period and specialties (asked for once the report is
    // given: a refused period is refused once); a refusal is shown in their section.
    const compared = await api(`/api/reports/practices?${q}`).then(
      (practices) => ({ report: practices }),
      (err) => ({ failure: why(err) }),
    );
    if (!current()) return;
    shown = { from, to, specialty: which };
    const named = which ? title(which) : coordinator ? "All specialties" : "Your specialties";
    fill(heading, `${named} · sessions from ${dayText(report.from)} to ${dayText(report.to)} · months are UK months`);
    const rows = report.totals.reduce((n, t) => n + t.cases.booked, 0);
    fill(
      reportBox,
      report.totals.length
        ? [
            report.totals.map((t) => specialtySection(report, t)),
            practicesSection({ ...compared, query: q.toString(), named, period: `${dayText(report.from)} to ${dayText(report.to)}` }),
          ]
        : h("p", { class: "notice" }, "You have no specialties to report on."),
    );
    csvButton.disabled = false;
    fill(csvRows, rows ? `${plural(rows, "case")} in this period.` : "No cases in this period: the file will hold only its header.");
    status.textContent = `Activity report shown for ${dayText(report.from)} to ${dayText(report.to)}.`;
  }

  const form = windowForm("report-form", initial, show);
  form.setAttribute("aria-label", "Report period and specialty");
  const submit = form.querySelector("button[type=submit]");
  submit.textContent = "Show report";
  submit.before(specialty);
  const quick = h(
    "div",
    { class: "quick-periods", role: "group", "aria-labelledby": "quick-h" },
    h("span", { id: "quick-h", class: "quick-label" }, "Quick periods:"),
    presets(today).map(([label, range]) =>
      h(
        "button",
        {
          type: "button",
          class: "secondary small",
          onclick: () => {
            form.querySelector("#report-form-from").value = range.from;
            form.querySelector("#report-form-to").value = range.to;
            form.requestSubmit();
          },
        },
        label,
      ),
    ),
  );
  form.prepend(quick);

  // ---- CSV export ---------------------------------------------------------------------
  const csvStatus = h("p", { id: "csv-status", role: "status", class: "success", hidden: true });
  const csvError = h("p", { id: "csv-error", role: "alert", class: "error", hidden: true });
  const csvRows = h("span", { id: "csv-rows" });
  const csvButton = h("button", { type: "button", id: "download-csv", disabled: true }, "Download CSV");
  csvButton.addEventListener("click", async () => {
    if (!shown) return;
    csvStatus.hidden = true;
    csvError.hidden = true;
    const q = new URLSearchParams({ from: shown.from, to: shown.to, format: "csv" });
    if (shown.specialty) q.set("specialty", shown.specialty);
    const filename = `mdt-activity-${shown.from}-${shown.to}.csv`;
    try {
      const blob = await busy(csvButton, "Preparing…", () => download(`/api/reports/activity?${q}`));
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: filename, class: "sr-only" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30000);
      csvStatus.textContent = `Downloaded ${filename}. The export has been recorded in the audit trail.`;
      csvStatus.hidden = false;
    } catch (err) {
      csvError.textContent = why(err);
      csvError.hidden = false;
    }
  });
  const csvCard = h(
    "section",
    { class: "card csv-card", "aria-labelledby": "csv-h" },
    h("h2", { id: "csv-h" }, "Per-case CSV"),
    h("p", {}, "One row per case booked into a session of the period shown, with its dates, state and outcome (no free text). ", csvRows),
    coordinator
      ? h(
          "p",
          { class: "warning", id: "csv-identified" },
          h("strong", {}, "This file contains patient identifiers"),
          " (NHS number, name, date of birth, GP practice). Each download is recorded in the audit trail as a read of every case in it. Store it only where patient records may be kept.",
        )
      : h("p", { class: "notice", id: "csv-identified" }, "Your file has no patient identifiers (no NHS number, name or date of birth). Each download is recorded in the audit trail."),
    h("div", { class: "actions" }, csvButton),
    csvStatus,
    csvError,
  );

  try {
    await show(initial);
  } catch (err) {
    fill(reportBox, h("p", { class: "error", role: "alert" }, err.message || explain(err)));
  }
  if (!here()) return;
  fill(
    main,
    h("h1", {}, "Activity report"),
    h(
      "p",
      { class: "hint" },
      coordinator
        ? "Cases booked into MDT sessions, days from booking to discussion, the outcome mix and time per case, by specialty and month; waiting times from the referral against each specialty's targets; and the GP practices compared."
        : "Cases booked into your specialties' MDT sessions, days from booking to discussion, the outcome mix and time per case, by month; waiting times from the referral against the targets; and the GP practices compared.",
    ),
    h("section", { class: "card report-controls", "aria-label": "Choose the report" }, form),
    heading,
    reportBox,
    csvCard,
  );
}
