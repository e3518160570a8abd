// Mentorship cases from the practitioner's own caseload (issue 21), in the style of the
// mentorship page. Practitioners add a patient to an arm's mentorship list (the booking's
// patient fields and proforma: book.js and proforma.js, not copies) and see their cases
// with each advice; the consultants mentoring the arm see the cases and record advice,
// "book into the MDT" booking the case into a chosen session of the arm; coordinators see
// every case. Every list read is audited by the server.
import { api } from "../api.js";
import { errorBox, explain, field, fill, h, humanise } from "../ui.js";
import { busy, checkedForm, select, stillHere } from "../forms.js";
import { dayText, dayTime } from "../days.js";
import { formatNhsNumber } from "../nhs.js";
import { caseDetails } from "../proforma.js";
import { patientFields } from "./book.js";
import { patientName } from "./cases.js";

const DECISIONS = [
  ["advice_given", "Advice given"],
  ["phone_follow_up", "Phone follow-up by the practitioner"],
  ["joint_assessment", "Joint assessment needed"],
  ["book_mdt", "Book into the MDT"],
];
const DECISION = Object.fromEntries(DECISIONS);
const STATE = { awaiting_advice: "Waiting for advice", advised: "Advised", booked: "Booked into the MDT" };
const title = (slug) => humanise(slug).replace(/^./, (c) => c.toUpperCase());

const CODES = {
  forbidden_specialty: "You do not work in that arm.",
  unknown_specialty: "Choose one of your arms.",
  already_booked: "This case has been booked into the MDT: the meeting decides on it now.",
  wrong_specialty: "Choose a session of the case's own arm.",
  unexpected_session: "Only “Book into the MDT” takes a session.",
  session_full: "That session is full. Choose another.",
};
const why = (err) => CODES[err?.code] || explain(err);

const cell = (label, ...children) => h("td", { "data-label": label }, h("div", {}, ...children));
const headRow = (labels) => h("thead", {}, h("tr", {}, labels.map((t) => h("th", { scope: "col" }, t))));

export async function render(main, { user }) {
  const here = stillHere();
  const practitioner = user.role === "practitioner";
  const consultant = user.role === "consultant";
  const status = h("p", { id: "caseload-status", class: "success", role: "status", hidden: true });
  const say = (text) => {
    status.textContent = text || "";
    status.hidden = !text;
  };

  const listBox = h("div", { id: "caseload-cases" });
  // Sessions open for booking, by arm, fetched once per arm a consultant advises on.
  const sessionsOf = new Map();
  const openSessions = async (arm) => {
    if (!sessionsOf.has(arm)) {
      const from = new Date().toISOString();
      const all = await api(`/api/sessions?specialty=${encodeURIComponent(arm)}&from=${encodeURIComponent(from)}`);
      sessionsOf.set(
        arm,
        all.filter((s) => ["scheduled", "published"].includes(s.state) && s.booked < s.capacity && Date.now() < Date.parse(s.booking_closes_at || s.starts_at)),
      );
    }
    return sessionsOf.get(arm);
  };

  async function refresh() {
    const cases = await api(practitioner ? "/api/mentorship/cases?mine=true" : "/api/mentorship/cases");
    if (!cases.length) {
      fill(
        listBox,
        h("p", { class: "muted" }, practitioner ? "You have not added any cases yet." : consultant ? "No caseload cases wait in the arms you mentor." : "No caseload cases yet."),
      );
      return;
    }
    const rows = await Promise.all(cases.map(async (c) => row(c, consultant && c.state !== "booked" ? await adviceForm(c) : null)));
    fill(
      listBox,
      h(
        "div",
        { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Caseload cases table" },
        h(
          "table",
          { class: "caseload stack" },
          h("caption", { class: "sr-only" }, "Mentorship cases from the caseload, newest first"),
          headRow(["Patient", "Arm", "Question", "Added", "State", "Advice", consultant ? "Your advice" : null].filter(Boolean)),
          h("tbody", {}, rows),
        ),
      ),
    );
  }

  const row = (c, form) =>
    h(
      "tr",
      { class: "caseload-row", dataset: { case: c.id, state: c.state } },
      cell("Patient", patientName(c), h("br"), h("span", { class: "muted" }, `NHS ${formatNhsNumber(c.patient.nhs_number)} · ${c.body_site}`)),
      cell("Arm", title(c.specialty)),
      cell("Question", h("span", { class: "prose" }, c.clinical_question)),
      cell("Added", dayTime(c.created_on)),
      cell(
        "State",
        h("span", { class: `tag state-${c.state}` }, STATE[c.state] || humanise(c.state)),
        c.booked_case_id ? [" ", h("a", { href: `#/cases/${c.booked_case_id}` }, "the MDT case")] : null,
      ),
      cell(
        "Advice",
        c.advice.length
          ? h(
              "ul",
              { class: "plain advice" },
              c.advice.map((a) => h("li", { dataset: { decision: a.decision } }, h("strong", {}, DECISION[a.decision] || humanise(a.decision)), ` · ${dayText(a.given_on)}`, a.note ? h("span", { class: "prose" }, ` · ${a.note}`) : null)),
            )
          : h("span", { class: "muted" }, "None yet"),
      ),
      consultant ? cell("Your advice", form || h("span", { class: "muted" }, "—")) : null,
    );

  // ---- A consultant's advice on one case --------------------------------------------------
  async function adviceForm(c) {
    const box = errorBox(`advice-error-${c.id}`);
    const decision = field("Decision", select({ name: "decision", id: `advice-decision-${c.id}` }, [["", "Choose…"], ...DECISIONS]));
    const sessions = await openSessions(c.specialty);
    const session = field(
      "MDT session",
      select(
        { name: "session_id", id: `advice-session-${c.id}` },
        [["", sessions.length ? "Choose…" : "No session takes bookings"], ...sessions.map((s) => [s.id, `${s.title} · ${dayText(s.starts_at.slice(0, 10))}`])],
      ),
    );
    session.hidden = true;
    decision.control.addEventListener("change", () => {
      session.hidden = decision.control.value !== "book_mdt";
    });
    const note = field("Note (optional)", h("textarea", { name: "note", id: `advice-note-${c.id}`, rows: 2 }));
    const submit = h("button", { type: "submit", id: `advice-submit-${c.id}` }, "Record advice");
    const form = h("form", { class: "advice-form", novalidate: true, dataset: { case: c.id } }, decision, session, note, box, submit);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      box.show(null);
      decision.setError(null);
      session.setError(null);
      if (!decision.control.value) {
        decision.setError("Choose the decision.");
        decision.control.focus();
        return;
      }
      const booking = decision.control.value === "book_mdt";
      if (booking && !session.control.value) {
        session.setError("Choose the session to book the case into.");
        session.control.focus();
        return;
      }
      try {
        const done = await busy(submit, "Saving…", () =>
          api(`/api/mentorship/cases/${c.id}/advice`, {
            method: "POST",
            body: { decision: decision.control.value, note: note.control.value.trim() || undefined, session_id: booking ? session.control.value : undefined },
          }),
        );
        sessionsOf.clear();
        say(
          done.booked_case
            ? `${patientName(c)} is booked into the MDT and on the session's agenda.`
            : `Advice recorded for ${patientName(c)}: ${DECISION[done.advice.decision].toLowerCase()}.`,
        );
        await refresh();
      } catch (err) {
        const wrap = err.field === "session_id" ? session : err.field === "decision" ? decision : err.field === "note" ? note : null;
        if (wrap) {
          wrap.setError(why(err));
          wrap.control.focus();
        } else {
          box.show(why(err));
        }
      }
    });
    return form;
  }

  // ---- A practitioner adds a case from their caseload ---------------------------------------
  async function addForm() {
    const arms = user.specialties || [];
    const arm = arms[0];
    const rules = arm ? await api(`/api/specialties/${encodeURIComponent(arm)}/triage`) : null;
    const form = checkedForm();
    const box = errorBox("caseload-error");
    const specialty = form.add(
      "specialty",
      field("Arm (specialty)", select({ name: "specialty", id: "caseload-specialty" }, arms.map((s) => [s, title(s)]), arm), "Whose mentorship list the case goes on."),
      (v) => (v ? null : "choose the arm"),
    );
    const { nhs, given, family, dob, sex, gp, patient } = patientFields(form);
    const details = caseDetails(form, { rules });
    const submit = h("button", { type: "submit", id: "caseload-submit" }, "Add to the mentorship list");
    const el = h(
      "form",
      { id: "caseload-form", class: "card", novalidate: true, "aria-labelledby": "caseload-form-h" },
      h("h2", { id: "caseload-form-h" }, "Add a case from your caseload"),
      h("p", { class: "hint" }, "For mentoring without an MDT slot. Only you, the consultants mentoring the arm and the coordinators see it. Cases with red flags go on the urgent pathway today, not here."),
      specialty,
      h("fieldset", { id: "caseload-patient" }, h("legend", {}, "Patient"), h("div", { class: "row" }, nhs, given, family), h("div", { class: "row" }, dob, sex, gp)),
      details.clinical,
      details.proforma,
      box,
      submit,
    );
    el.addEventListener("submit", async (e) => {
      e.preventDefault();
      box.show(null);
      if (!form.checkAll()) {
        box.show("Some answers need correcting: see the highlighted fields.");
        return;
      }
      try {
        const c = await busy(submit, "Adding…", () =>
          api("/api/mentorship/cases", { method: "POST", body: { patient: patient(), specialty: specialty.control.value, ...details.body(), red_flags: [] } }),
        );
        el.reset();
        form.clear();
        say(`${patientName(c)} is on the ${title(c.specialty)} mentorship list, waiting for advice.`);
        await refresh();
      } catch (err) {
        const wrap = err.field && form.get(err.field.replace(/^patient\./, ""));
        if (wrap) {
          wrap.setError(why(err));
          wrap.control.focus();
        } else if (!details.showServerError(err)) {
          box.show(why(err));
        }
      }
    });
    return el;
  }

  await refresh();
  const add = practitioner ? await addForm() : null;
  if (!here()) return;
  fill(
    main,
    h("h1", {}, "Mentorship cases"),
    h("p", { class: "hint" }, "Cases from practitioners' own caseloads, discussed with the mentoring consultant without an MDT slot."),
    status,
    add,
    h(
      "section",
      { id: "caseload-section", "aria-labelledby": "caseload-h" },
      h("h2", { id: "caseload-h" }, practitioner ? "Your cases" : consultant ? "Cases in the arms you mentor" : "All caseload cases"),
      listBox,
    ),
  );
}
