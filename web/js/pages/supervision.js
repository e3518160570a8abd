// The supervision record (issue 21), in the style of the mentorship page. Coordinators
// name a practitioner's supervisor; supervisors record workplace-based assessments; the
// month's count per supervisee against the target; supervisees write their reflection on
// each assessment and open their printable portfolio (fetched through the API client, no
// token in a URL, shown in a sandboxed srcdoc frame like the CPD certificate).
import { api, download } from "../api.js";
import { errorBox, explain, field, fill, h, humanise } from "../ui.js";
import { busy, select, stillHere } from "../forms.js";
import { dayText, dayTime, isDay, ukToday } from "../days.js";

const KINDS = [
  ["case_based_discussion", "Case-based discussion"],
  ["direct_observation", "Direct observation"],
  ["joint_clinic", "Joint clinic"],
  ["record_review", "Record review"],
  ["multi_source_feedback", "Multi-source feedback"],
];
const OUTCOMES = [
  ["meets_expectations", "Meets expectations"],
  ["development_needed", "Development needed"],
  ["below_expectations", "Below expectations"],
];
const KIND = Object.fromEntries(KINDS);
const OUTCOME = Object.fromEntries(OUTCOMES);

const CODES = {
  supervisor_full: "That supervisor already has as many supervisees as allowed. Choose another supervisor, or move one of theirs first.",
  invalid_supervisee: "A supervisee is an active practitioner.",
  invalid_supervisor: "A supervisor is an active consultant or practitioner, and not the supervisee.",
  not_supervisor: "Only the supervisee's supervisor records their assessments.",
  patient_identifier: "A reflection names no patient: remove the NHS number.",
  date_in_future: "Record an assessment once it has happened: the date is in the future.",
  invalid_month: "Choose a month.",
};
const why = (err) => CODES[err?.code] || explain(err);

const cell = (label, ...children) => h("td", { "data-label": label }, h("div", {}, ...children));
const headRow = (labels) => h("thead", {}, h("tr", {}, labels.map((t) => h("th", { scope: "col" }, t))));
const table = (label, cls, labels, rows) =>
  h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label }, h("table", { class: `${cls} stack` }, h("caption", { class: "sr-only" }, label), headRow(labels), h("tbody", {}, rows)));

export async function render(main, { user }) {
  const here = stillHere();
  const coordinator = user.role === "coordinator";
  const status = h("p", { id: "supervision-status", class: "success", role: "status", hidden: true });
  const say = (text) => {
    status.textContent = text || "";
    status.hidden = !text;
  };

  // Names: coordinators list every account; consultants read the names-only directory.
  const [users, people] = await Promise.all([
    coordinator ? api("/api/users") : [],
    user.role === "consultant" ? api("/api/people?role=practitioner") : [],
  ]);
  const names = new Map([...users, ...people].map((u) => [u.id, u.name]));
  const person = (id, fallback = "A colleague") => (id === user.id ? `${user.name} (you)` : names.get(id) || fallback);

  let assignments = [];
  const current = () => assignments.filter((a) => !a.ended_at);
  const mySupervisees = () => current().filter((a) => a.supervisor_id === user.id).map((a) => a.supervisee_id);

  // ---- Assignments --------------------------------------------------------------------
  const assignmentsBox = h("div", { id: "assignments" });
  const showAssignments = () =>
    fill(
      assignmentsBox,
      current().length
        ? table(
            "Current supervisors",
            "assignments",
            ["Supervisee", "Supervisor", "Since"],
            current().map((a) =>
              h("tr", { dataset: { supervisee: a.supervisee_id } }, cell("Supervisee", person(a.supervisee_id)), cell("Supervisor", person(a.supervisor_id)), cell("Since", dayTime(a.assigned_at.slice(0, 10)))),
            ),
          )
        : h("p", { class: "muted" }, coordinator ? "No supervisors named yet." : "No supervision involves you yet."),
    );

  // ---- The month --------------------------------------------------------------------------
  const monthBox = h("div", { id: "month-summary" });
  const month = h("input", { type: "month", id: "month", name: "month", value: ukToday().slice(0, 7) });
  async function showMonth() {
    const rows = await api(`/api/supervision/summary?month=${encodeURIComponent(month.value)}`);
    fill(
      monthBox,
      rows.length
        ? table(
            "Assessments this month",
            "month",
            ["Supervisee", "Supervisor", "Assessments", "Against target"],
            rows.map((r) =>
              h(
                "tr",
                { dataset: { supervisee: r.supervisee_id }, class: r.below_target ? "below" : "" },
                cell("Supervisee", person(r.supervisee_id)),
                cell("Supervisor", person(r.supervisor_id)),
                h("td", { "data-label": "Assessments", class: "num" }, h("div", {}, `${r.assessments} of ${r.target}`)),
                cell("Against target", r.below_target ? h("span", { class: "tag short below-target" }, "below target") : h("span", { class: "tag met" }, "on target")),
              ),
            ),
          )
        : h("p", { class: "muted" }, "Nobody had a supervisor in this month."),
    );
  }
  const monthForm = h("form", { id: "month-form", class: "row", novalidate: true }, field("Month", month), h("button", { type: "submit" }, "Show"));
  monthForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await showMonth();
    } catch (err) {
      fill(monthBox, h("p", { class: "error", role: "alert" }, why(err)));
    }
  });

  // ---- Assessments (the supervisee's own, or those of the people supervised) ---------------
  const assessmentsBox = h("div", { id: "assessments" });
  async function showAssessments() {
    const list = (await api("/api/supervision/assessments")).reverse();
    fill(
      assessmentsBox,
      list.length
        ? table(
            "Workplace-based assessments",
            "assessments",
            ["Date", "Supervisee", "Kind", "Outcome", "Reflection"],
            list.map((a) =>
              h(
                "tr",
                { class: "assessment-row", dataset: { assessment: a.id } },
                cell("Date", dayTime(a.occurred_on)),
                cell("Supervisee", person(a.supervisee_id)),
                cell("Kind", KIND[a.kind] || humanise(a.kind)),
                cell("Outcome", OUTCOME[a.outcome] || humanise(a.outcome)),
                cell("Reflection", a.supervisee_id === user.id ? reflectionForm(a) : a.reflection ? h("span", { class: "prose" }, a.reflection) : h("span", { class: "muted" }, "Not written yet")),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No assessments recorded."),
    );
  }

  function reflectionForm(a) {
    const box = errorBox(`reflection-error-${a.id}`);
    const text = field("Your reflection", h("textarea", { name: "reflection", id: `reflection-${a.id}`, rows: 3 }), "About your own practice; name no patient.");
    text.control.value = a.reflection || "";
    const submit = h("button", { type: "submit", id: `reflection-submit-${a.id}` }, "Save reflection");
    const form = h("form", { class: "reflection-form", novalidate: true }, text, box, submit);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      text.setError(null);
      box.show(null);
      try {
        await busy(submit, "Saving…", () => api(`/api/supervision/assessments/${a.id}/reflection`, { method: "PUT", body: { reflection: text.control.value } }));
        say(`Reflection saved for the assessment of ${dayText(a.occurred_on)}.`);
      } catch (err) {
        text.setError(why(err));
        text.control.focus();
      }
    });
    return form;
  }

  // ---- The coordinator names a supervisor --------------------------------------------------
  function assignForm() {
    const box = errorBox("assign-error");
    const practitioners = users.filter((u) => u.active && u.role === "practitioner");
    const supervisors = users.filter((u) => u.active && (u.role === "consultant" || u.role === "practitioner"));
    const supervisee = field("Supervisee", select({ name: "supervisee_id", id: "assign-supervisee" }, [["", "Choose…"], ...practitioners.map((u) => [u.id, u.name])]));
    const supervisor = field("Supervisor", select({ name: "supervisor_id", id: "assign-supervisor" }, [["", "Choose…"], ...supervisors.map((u) => [u.id, `${u.name} (${u.role})`])]));
    const submit = h("button", { type: "submit", id: "assign-submit" }, "Name supervisor");
    const form = h("form", { id: "assign-form", class: "card", novalidate: true, "aria-labelledby": "assign-h" }, h("h3", { id: "assign-h" }, "Name a supervisor"), h("div", { class: "row" }, supervisee, supervisor), box, submit);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      box.show(null);
      if (!supervisee.control.value || !supervisor.control.value) {
        box.show("Choose the supervisee and the supervisor.");
        return;
      }
      try {
        const a = await busy(submit, "Saving…", () => api("/api/supervision/assignments", { method: "POST", body: { supervisee_id: supervisee.control.value, supervisor_id: supervisor.control.value } }));
        say(`${person(a.supervisor_id)} supervises ${person(a.supervisee_id)}.`);
        assignments = await api("/api/supervision/assignments");
        showAssignments();
        await showMonth();
      } catch (err) {
        box.show(why(err));
      }
    });
    return form;
  }

  // ---- A supervisor records an assessment -----------------------------------------------------
  function assessForm() {
    const box = errorBox("assess-error");
    const supervisee = field("Supervisee", select({ name: "supervisee_id", id: "assess-supervisee" }, [["", "Choose…"], ...mySupervisees().map((id) => [id, person(id)])]));
    const kind = field("Kind", select({ name: "kind", id: "assess-kind" }, KINDS, "case_based_discussion"));
    const date = field("Date", h("input", { type: "date", name: "occurred_on", id: "assess-date", value: ukToday(), max: ukToday() }));
    const outcome = field("Outcome", select({ name: "outcome", id: "assess-outcome" }, OUTCOMES, "meets_expectations"));
    const submit = h("button", { type: "submit", id: "assess-submit" }, "Record assessment");
    const form = h(
      "form",
      { id: "assess-form", class: "card", novalidate: true, "aria-labelledby": "assess-h" },
      h("h2", { id: "assess-h" }, "Record a workplace-based assessment"),
      h("div", { class: "row" }, supervisee, kind, date, outcome),
      box,
      submit,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      box.show(null);
      if (!supervisee.control.value) return box.show("Choose the supervisee.");
      if (!isDay(date.control.value)) return box.show("Choose the date.");
      try {
        const a = await busy(submit, "Saving…", () =>
          api("/api/supervision/assessments", {
            method: "POST",
            body: { supervisee_id: supervisee.control.value, kind: kind.control.value, occurred_on: date.control.value, outcome: outcome.control.value },
          }),
        );
        say(`Assessment recorded: ${KIND[a.kind].toLowerCase()} with ${person(a.supervisee_id)} on ${dayText(a.occurred_on)}.`);
        await Promise.all([showAssessments(), showMonth()]);
      } catch (err) {
        box.show(why(err));
      }
    });
    return form;
  }

  // ---- The supervisee's printable portfolio ---------------------------------------------------
  const portfolio = h("section", { id: "portfolio-section", class: "card", hidden: true, "aria-label": "Portfolio" });
  const portfolioButton = h("button", { type: "button", id: "portfolio-button" }, "Open my portfolio");
  const portfolioError = errorBox("portfolio-error");
  portfolioButton.addEventListener("click", async () => {
    portfolioError.show(null);
    try {
      const blob = await busy(portfolioButton, "Preparing…", () => download("/api/me/portfolio"));
      const frame = h("iframe", { id: "portfolio-frame", title: "Supervision portfolio", sandbox: "allow-same-origin allow-modals", srcdoc: await blob.text(), height: "600" });
      const print = h("button", { type: "button", id: "portfolio-print" }, "Print");
      print.addEventListener("click", () => frame.contentWindow?.print());
      fill(portfolio, h("div", { class: "actions" }, print), frame);
      portfolio.hidden = false;
    } catch (err) {
      portfolioError.show(why(err));
    }
  });

  assignments = await api("/api/supervision/assignments");
  showAssignments();
  await Promise.all([showMonth(), showAssessments()]);
  const supervising = mySupervisees().length > 0;
  const supervised = current().some((a) => a.supervisee_id === user.id);
  if (!here()) return;
  fill(
    main,
    h("h1", {}, "Supervision"),
    status,
    supervising ? assessForm() : null,
    h("section", { id: "month-section", "aria-labelledby": "month-h" }, h("h2", { id: "month-h" }, "Assessments by month"), monthForm, monthBox),
    h("section", { id: "assessments-section", "aria-labelledby": "assessments-h" }, h("h2", { id: "assessments-h" }, supervised ? "Your assessments" : "Assessments"), assessmentsBox),
    user.role === "practitioner"
      ? h("section", { id: "portfolio-open", "aria-labelledby": "portfolio-h" }, h("h2", { id: "portfolio-h" }, "Portfolio"), h("p", { class: "hint" }, "Your supervision portfolio, to print: it names no patient."), portfolioButton, portfolioError, portfolio)
      : null,
    h("section", { id: "assignments-section", "aria-labelledby": "assignments-h" }, h("h2", { id: "assignments-h" }, "Supervisors"), assignmentsBox, coordinator ? assignForm() : null),
  );
}
