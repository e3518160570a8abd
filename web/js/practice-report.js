// GP practices compared, on the reports page (issue 17): for the period and specialty
// shown, a table of each practice's referrals (per 1,000 registered patients where its
// list size is known), triage returns, waits from the referral and outcome mix, with a
// last row for the locality's median (over the practices in the table); the funnel from
// referrals to signed outcomes per practice as a chart with its table; and each
// practice's one-page summary, fetched with the bearer token (the address carries the
// practice's code and the period, never a token or a patient) and opened in a new tab
// from a blob URL to print. The figures are the server's (`GET /api/reports/practices`).
import { download } from "./api.js";
import { errorBox, h } from "./ui.js";
import { busy } from "./forms.js";
import { num, svg, tableRegion, td, th } from "./charts.js";

const pct = (x) => num(x, "%");
/** [key, heading, its meaning, the practice's cell, the locality median's cell]. */
const COLUMNS = [
  ["list_size", "List size", "Registered patients, from the imported list sizes", (p) => (p.list_size === null ? "—" : p.list_size.toLocaleString("en-GB")), () => "—"],
  ["referrals", "Referrals", "Referrals received: new episodes, not re-discussions", (p) => String(p.referrals), (l) => num(l.referrals)],
  ["referrals_per_1000", "Per 1,000", "Referrals per 1,000 registered patients", (p) => num(p.referrals_per_1000), (l) => num(l.referrals_per_1000)],
  ["returned_percent", "Returned", "Returned as not ready, of the triage decisions", (p) => pct(p.returned_percent), (l) => pct(l.returned_percent)],
  ["median_days_to_triage", "Days to triage", "Median days from referral to the first triage decision", (p) => num(p.median_days_to_triage), (l) => num(l.median_days_to_triage)],
  ["median_days_to_discussion", "Days to discussion", "Median days from referral to discussion", (p) => num(p.median_days_to_discussion), (l) => num(l.median_days_to_discussion)],
  ["within_6_weeks_percent", "≤ 6 weeks", "Discussed within 6 weeks (42 days) of the referral", (p) => pct(p.within_6_weeks_percent), (l) => pct(l.within_6_weeks_percent)],
  ["mri_requested_percent", "MRI", "MRI requested, of the signed outcomes", (p) => pct(p.outcomes.mri_requested_percent), (l) => pct(l.mri_requested_percent)],
  ["discharged_to_gp_percent", "Discharged", "Discharged to the GP, of the signed outcomes", (p) => pct(p.outcomes.discharged_to_gp_percent), (l) => pct(l.discharged_to_gp_percent)],
  ["onward_referral_percent", "Onward", "Referred onward to another service, of the signed outcomes", (p) => pct(p.outcomes.onward_referral_percent), (l) => pct(l.onward_referral_percent)],
];
/** The funnel's stages: [key, label, the practice's count]. */
const STAGES = [
  ["referrals", "Referrals", (p) => p.referrals],
  ["accepted", "Accepted at triage", (p) => p.accepted],
  ["decided", "Decided", (p) => p.decided],
  ["signed", "Outcome signed", (p) => p.outcomes.signed],
];

const practiceName = (p) => (p.name ? `${p.name} (${p.ods_code})` : p.ods_code);

/**
 * Opens the practice's summary in a new tab. The tab is opened at the click (a window
 * opened only after the fetch may be blocked as a pop-up) and shown the summary when it
 * arrives, from a blob URL: the summary's address, its code and period, stays in the
 * fetch with the token.
 */
async function openSummary(button, p, query, error, fallback) {
  error.show(null);
  fallback.hidden = true;
  const tab = window.open("", "_blank");
  if (tab) tab.opener = null;
  try {
    const blob = await busy(button, "Opening…", () => download(`/api/reports/practices/${encodeURIComponent(p.ods_code)}/summary?${query}`));
    // A blob document has no base to resolve "/summary.css" against (and the policy
    // allows no <base>): its stylesheet is named with this origin.
    const text = (await blob.text()).replace('href="/summary.css"', `href="${location.origin}/summary.css"`);
    const html = new Blob([text], { type: "text/html" });
    const url = URL.createObjectURL(html);
    // Long enough to load and print; the tab keeps what it has loaded.
    setTimeout(() => URL.revokeObjectURL(url), 120000);
    if (tab && !tab.closed) {
      tab.location.replace(url);
    } else {
      // The browser blocked the new tab: a link the user can follow instead.
      fallback.replaceChildren(
        "Your browser did not open a new tab. ",
        h("a", { href: url, target: "_blank", rel: "noopener" }, `Open the summary for ${practiceName(p)}`),
        ".",
      );
      fallback.hidden = false;
    }
  } catch (err) {
    tab?.close();
    error.show(err.code === "not_found" ? `${practiceName(p)} referred no case in this period: there is no summary.` : err);
  }
}

function practiceTable(report, caption, summary) {
  const l = report.locality;
  return tableRegion(
    caption,
    { class: "practice-table", "data-testid": "practice-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        th("Practice"),
        COLUMNS.map(([key, head, title]) => th(h("abbr", { title }, head), { class: "num", dataset: { col: key } })),
        th(h("span", { class: "sr-only" }, "One-page summary")),
      ),
    ),
    h(
      "tbody",
      {},
      report.practices.map((p) =>
        h(
          "tr",
          { dataset: { ods: p.ods_code } },
          h("th", { scope: "row" }, h("span", { class: "ods" }, p.ods_code), p.name ? h("span", { class: "practice-name" }, p.name) : null),
          COLUMNS.map(([key, , , own]) => td(own(p), "num", { dataset: { col: key } })),
          h("td", {}, summary(p)),
        ),
      ),
    ),
    h(
      "tfoot",
      {},
      h(
        "tr",
        { dataset: { locality: "" } },
        h("th", { scope: "row" }, "Locality median", h("span", { class: "practice-name" }, `of ${l.practices} practice${l.practices === 1 ? "" : "s"}`)),
        COLUMNS.map(([key, , , , median]) => td(median(l.median), "num", { dataset: { col: key } })),
        h("td", {}),
      ),
    ),
  );
}

/** Per practice, four bars: referrals, accepted at triage, decided, outcome signed. */
function funnelChart(practices, label) {
  const W = 560;
  const barH = 11;
  const gap = 2;
  const pad = 14;
  const m = { left: 78, right: 40, top: 8, bottom: 8 };
  const groupH = STAGES.length * (barH + gap) + pad;
  const H = m.top + m.bottom + practices.length * groupH - pad;
  const plotW = W - m.left - m.right;
  const max = Math.max(1, ...practices.flatMap((p) => STAGES.map(([, , count]) => count(p))));
  return svg(
    "svg",
    { class: "chart funnel", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, focusable: "false", "data-testid": "practice-funnel-chart" },
    svg("title", {}, label),
    practices.map((p, i) => {
      const y0 = m.top + i * groupH;
      return svg(
        "g",
        { class: "practice", "data-ods": p.ods_code },
        svg("text", { class: "tick", x: m.left - 10, y: y0 + (groupH - pad) / 2 + 4, "text-anchor": "end" }, p.ods_code),
        STAGES.map(([key, , count], j) => {
          const n = count(p);
          const w = (n / max) * plotW;
          const y = y0 + j * (barH + gap);
          return svg(
            "g",
            { class: `stage ${key}` },
            svg("rect", { x: m.left, y, width: w, height: barH, "data-stage": key, "data-count": n }),
            svg("text", { class: "value small", x: m.left + w + 5, y: y + barH - 1 }, String(n)),
          );
        }),
      );
    }),
    svg("line", { class: "axis", x1: m.left, x2: m.left, y1: m.top, y2: H - m.bottom }),
  );
}

function funnelTable(practices, caption) {
  return tableRegion(
    caption,
    { class: "funnel", "data-testid": "practice-funnel-table" },
    h("thead", {}, h("tr", {}, th("Practice"), STAGES.map(([key, head]) => th(head, { class: "num", dataset: { stage: key } })))),
    h(
      "tbody",
      {},
      practices.map((p) => h("tr", { dataset: { ods: p.ods_code } }, h("th", { scope: "row" }, practiceName(p)), STAGES.map(([key, , count]) => td(String(count(p)), "num", { dataset: { stage: key } })))),
    ),
  );
}

/**
 * The practices section: `report` from /api/reports/practices (or `failure`, an error
 * to show instead), `query` the report's from, to and specialty as a query string,
 * `named` the specialties in words and `period` the period.
 */
export function practicesSection({ report, failure, query, named, period }) {
  const id = "report-practices";
  const error = errorBox("practice-summary-error");
  const fallback = h("p", { id: "practice-summary-link", class: "notice", hidden: true });
  const summary = (p) => {
    const button = h("button", { type: "button", class: "small secondary summary", "aria-label": `Summary for ${practiceName(p)}, opens in a new tab` }, "Summary");
    button.addEventListener("click", () => openSummary(button, p, query, error, fallback));
    return button;
  };
  const head = [h("h2", { id: `${id}-h` }, "GP practices")];
  if (failure) {
    return h("section", { class: "report-practices", id, "aria-labelledby": `${id}-h` }, head, h("p", { class: "error", role: "alert" }, failure));
  }
  const practices = report.practices;
  const funnelLabel = `Referrals, accepted at triage, decided and outcome signed per GP practice, ${named}, ${period}: ${practices
    .map((p) => `${p.ods_code} ${STAGES.map(([, text, count]) => `${text.toLowerCase()} ${count(p)}`).join(", ")}`)
    .join("; ")}.`;
  return h(
    "section",
    { class: "report-practices", id, "aria-labelledby": `${id}-h` },
    head,
    h(
      "p",
      { class: "hint" },
      `Each GP practice that referred a case into a session of the period (${named}), beside the locality's median: the median over the ${report.locality.practices} practice${report.locality.practices === 1 ? "" : "s"} in the table. Shares of outcomes are of the signed outcomes; per 1,000 needs the practice's list size (imported on the GP practices page). "Summary" opens the practice's one-page summary to print; it names no patient.`,
    ),
    error,
    fallback,
    practices.length
      ? [
          practiceTable(report, `GP practices compared, ${named}, ${period}`, summary),
          h(
            "figure",
            { class: "chart-card funnel-chart" },
            h("h3", {}, "From referral to signed outcome, per practice"),
            h(
              "div",
              { class: "chart-pair" },
              h(
                "div",
                { class: "chart-col" },
                funnelChart(practices, funnelLabel),
                h(
                  "p",
                  { class: "legend hint", "aria-hidden": "true" },
                  STAGES.map(([key, text]) => h("span", { class: "key" }, h("span", { class: `swatch stage-${key}` }), ` ${text}`)),
                ),
                h("p", { class: "hint" }, "Referrals are new episodes; accepted counts the triage decisions to accept or list; decided and signed count all the practice's cases in the period's sessions, re-discussions among them, so a stage can be larger than the one before it."),
              ),
              funnelTable(practices, `Referral funnel per GP practice, ${named}, ${period}`),
            ),
          ),
        ]
      : h("p", { class: "muted" }, "No GP practice referred a case into a session of this period."),
  );
}
