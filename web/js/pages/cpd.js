// "My CPD" (DESIGN §4 flow 6): the sessions the signed-in person attended in a period,
// minutes present, the cases discussed (always de-identified), the mentoring received and
// assessments (issue 21), and a printable certificate. The certificate is fetched through the API client (no token in a URL) and
// shown in a sandboxed frame built from its text: a srcdoc frame keeps the page's own
// Content-Security-Policy, and may load /certificate.css but run no script.
import { api, download } from "../api.js";
import { errorBox, fill, h, time } from "../ui.js";
import { busy, stillHere } from "../forms.js";
import { dayText, minutesText, ukToday, windowForm, yearTo } from "../days.js";

const cell = (label, ...children) => h("td", { "data-label": label }, h("div", {}, ...children));

export async function render(main) {
  const here = stillHere();
  const error = errorBox("cpd-error");
  const totals = h("div", { id: "cpd-totals", class: "totals" });
  const record = h("div", { id: "cpd-record" });
  const certificate = h("section", { id: "certificate-section", class: "card", "aria-labelledby": "certificate-h", hidden: true });

  let range = yearTo(ukToday());
  let fitFrame = null;
  const onResize = () => fitFrame?.();
  window.addEventListener("resize", onResize);
  const cleanup = () => window.removeEventListener("resize", onResize);

  // `current` (from the period form) is false once a later period has been asked for.
  async function show(next, current = () => true) {
    const r = await api(`/api/me/attendance?from=${next.from}&to=${next.to}`);
    if (!current()) return;
    range = next;
    certificate.hidden = true;
    fill(certificate);
    fitFrame = null;
    fill(
      totals,
      h(
        "dl",
        { class: "stats" },
        h("div", {}, h("dt", {}, "Sessions attended"), h("dd", { id: "cpd-sessions" }, String(r.sessions.length))),
        h("div", {}, h("dt", {}, "Minutes present"), h("dd", { id: "cpd-minutes" }, String(r.total_minutes))),
        h("div", {}, h("dt", {}, "Mentoring received"), h("dd", { id: "cpd-mentoring" }, minutesText(r.mentoring_minutes || 0))),
        h("div", {}, h("dt", {}, "Assessments"), h("dd", { id: "cpd-assessments" }, String(r.assessments?.length || 0))),
        h("div", {}, h("dt", {}, "CPD hours"), h("dd", { id: "cpd-hours" }, String(r.cpd_hours))),
      ),
    );
    if (!r.sessions.length) {
      fill(
        record,
        h("p", { class: "notice" }, `No sessions attended between ${dayText(next.from)} and ${dayText(next.to)}. Attendance is recorded when you join a meeting from the schedule.`),
      );
      return;
    }
    fill(
      record,
      h(
        "div",
        { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Sessions attended table" },
        h(
          "table",
          { class: "attendance stack" },
          h("caption", { class: "sr-only" }, `Sessions attended, ${dayText(next.from)} to ${dayText(next.to)}`),
          h("thead", {}, h("tr", {}, ["Date", "Meeting", "Kind", "Your role", "Minutes present", "Cases discussed"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            r.sessions.map((s) =>
              h(
                "tr",
                { class: "attended", dataset: { session: s.session_id } },
                cell("Date", time(s.starts_at)),
                cell("Meeting", s.title),
                cell("Kind", s.teaching ? h("span", { class: "tag teaching" }, "teaching") : "MDT"),
                cell("Your role", s.role),
                h("td", { "data-label": "Minutes present", class: "num" }, h("div", {}, `${s.minutes_present}`, h("span", { class: "muted" }, ` of ${s.duration_minutes}`))),
                cell("Cases discussed", s.cases.length ? h("ul", { class: "plain" }, s.cases.map((c) => h("li", {}, c.label))) : h("span", { class: "muted" }, "None")),
              ),
            ),
          ),
        ),
      ),
    );
  }

  const period = windowForm("cpd-period", range, show);
  try {
    await show(range);
  } catch (err) {
    cleanup();
    throw err;
  }

  const printButton = h("button", { type: "button", id: "certificate-button" }, "Print certificate");
  printButton.addEventListener("click", async () => {
    error.show(null);
    // The period shown now: a certificate that arrives after another period is shown is
    // for the old one, and is dropped.
    const asked = { ...range };
    const stale = () => range.from !== asked.from || range.to !== asked.to;
    try {
      const blob = await busy(printButton, "Preparing…", () => download(`/api/me/attendance/certificate?from=${asked.from}&to=${asked.to}`));
      const html = await blob.text();
      if (stale()) return;
      const frame = h("iframe", {
        id: "certificate-frame",
        title: "Certificate of attendance",
        // Same origin (for the stylesheet and for printing from here), but no scripts,
        // forms, pop-ups or navigation of this page.
        sandbox: "allow-same-origin allow-modals",
        srcdoc: html,
      });
      // As tall as the certificate (the height attribute, not a style: the CSP forbids those).
      fitFrame = () => {
        const sheet = frame.contentDocument?.querySelector("main");
        if (!sheet) return;
        const view = frame.contentWindow;
        const bottom = sheet.getBoundingClientRect().bottom + view.scrollY + parseFloat(view.getComputedStyle(sheet).marginBottom || "0");
        frame.height = String(Math.ceil(bottom) + 2);
      };
      frame.addEventListener("load", fitFrame);
      const print = h("button", { type: "button", id: "certificate-print" }, "Print");
      print.addEventListener("click", () => frame.contentWindow?.print());
      const close = h("button", { type: "button", class: "secondary", id: "certificate-close" }, "Close");
      close.addEventListener("click", () => {
        certificate.hidden = true;
        fill(certificate);
        fitFrame = null;
        printButton.focus();
      });
      fill(
        certificate,
        h("h2", { id: "certificate-h" }, "Certificate of attendance"),
        h("p", { class: "hint" }, `${dayText(asked.from)} to ${dayText(asked.to)}. Print it, or save it as a PDF from the print dialogue.`),
        frame,
        h("div", { class: "actions" }, print, close),
      );
      certificate.hidden = false;
      certificate.scrollIntoView({ block: "start" });
      print.focus({ preventScroll: true });
    } catch (err) {
      if (!stale()) error.show(err);
    }
  });

  if (!here()) return cleanup();
  fill(
    main,
    h("h1", {}, "My CPD"),
    h("p", {}, "Your attendance at MDT and teaching meetings, for continuing professional development. Cases are always shown without patient details."),
    period,
    totals,
    record,
    h("div", { class: "actions" }, printButton),
    error,
    certificate,
  );
  return cleanup;
}
