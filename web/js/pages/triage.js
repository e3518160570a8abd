// The triage queue (issue 15): bookings waiting for the session's chair or a coordinator,
// oldest first, each with how long it has waited (the target is 24 hours), its proforma,
// and the decision: accept onto the agenda, return as not ready (a reason and a note; the
// referrer is emailed without identifiers), or list it, not discussed, with one of the
// specialty's standard plans. Coordinators see every session's; a chair their own.
import { api } from "../api.js";
import { errorBox, fill, h, sentenceCase, time } from "../ui.js";
import { busy, select, stillHere } from "../forms.js";
import { formatNhsNumber } from "../nhs.js";
import { RETURN_REASONS, proformaFacts, waitingText } from "../proforma.js";
import { patientName } from "./cases.js";

/** The triage target: a booking waiting longer is shown as overdue. */
const TARGET_MINUTES = 24 * 60;

export async function render(main, { user }) {
  const here = stillHere();
  const specialties = await api("/api/specialties").catch(() => []);
  const status = document.getElementById("status");
  const filter = select(
    { id: "triage-specialty", name: "specialty" },
    [["", "All specialties"], ...specialties.map((s) => [s, sentenceCase(s)])],
  );
  const list = h("div", { id: "triage-list", "aria-live": "off" });
  const count = h("p", { id: "triage-count", class: "muted" });
  const done = h("p", { id: "triage-done", role: "status", class: "success", hidden: true });
  const error = errorBox("triage-error");
  const rulesBySpecialty = new Map();

  const rulesFor = async (slug) => {
    if (!rulesBySpecialty.has(slug)) {
      rulesBySpecialty.set(slug, await api(`/api/specialties/${encodeURIComponent(slug)}/triage`).catch(() => ({ standard_plans: [] })));
    }
    return rulesBySpecialty.get(slug);
  };

  // Only the latest load renders: an earlier one answering late (the first page load
  // racing a change of specialty) must not replace the newer list, or a decision being
  // made in it.
  let loads = 0;
  async function load() {
    const mine = ++loads;
    error.show(null);
    const q = filter.value ? `?specialty=${encodeURIComponent(filter.value)}` : "";
    const items = await api(`/api/triage${q}`);
    for (const slug of new Set(items.map((i) => i.session.specialty))) await rulesFor(slug);
    if (!here() || mine !== loads) return;
    count.textContent = items.length
      ? `${items.length} booking${items.length === 1 ? "" : "s"} waiting, oldest first.`
      : "";
    fill(list, items.length
      ? items.map((item) => card(item))
      : h("p", { class: "notice", id: "triage-empty" }, user.role === "coordinator"
        ? "No bookings are waiting for triage."
        : "No bookings are waiting for triage in the sessions you chair."));
  }

  function card({ case: c, session: s, waiting_since: since, waiting_minutes: minutes }) {
    const name = patientName(c);
    const plans = rulesBySpecialty.get(s.specialty)?.standard_plans || [];
    const id = `t-${c.id}`;
    const cardError = errorBox(`${id}-error`);
    const overdue = minutes >= TARGET_MINUTES;

    // The decision: one of three, with what each needs.
    const radio = (value, label) => h("label", { class: "check", for: `${id}-${value}` },
      h("input", { type: "radio", id: `${id}-${value}`, name: `${id}-decision`, value }), label);
    const reason = select({ id: `${id}-reason`, name: "reason" }, [["", "Choose…"], ...RETURN_REASONS]);
    const note = h("textarea", { id: `${id}-note`, name: "note", rows: 2, maxlength: 4000 });
    const plan = select({ id: `${id}-plan`, name: "standard_plan" }, [["", "Choose…"], ...plans.map((p) => [p.code, p.title])]);
    const planText = h("p", { class: "hint", id: `${id}-plan-text` });
    const returnFields = h("div", { class: "decision-fields", hidden: true },
      h("label", { for: reason.id }, "Reason for returning"), reason,
      h("label", { for: note.id }, "Note to the referrer ", h("span", { class: "muted" }, "(optional)")),
      h("p", { class: "hint", id: `${id}-note-hint` }, "What to add or change before resubmitting. It is shown in their My cases, not emailed."),
      note);
    note.setAttribute("aria-describedby", `${id}-note-hint`);
    const listFields = h("div", { class: "decision-fields", hidden: true },
      h("label", { for: plan.id }, "Standard plan"), plan, planText);
    plan.setAttribute("aria-describedby", planText.id);
    plan.addEventListener("change", () => {
      planText.textContent = plans.find((p) => p.code === plan.value)?.plan || "";
    });
    const submit = h("button", { type: "submit", id: `${id}-submit` }, "Record decision");
    const decision = h("fieldset", { class: "decision" },
      h("legend", {}, "Decision"),
      h("div", { class: "checks" },
        radio("accept", "Accept onto the agenda"),
        radio("return", "Return as not ready"),
        plans.length ? radio("list", "List, not discussed (standard plan)") : null),
      returnFields, listFields);
    const form = h("form", { class: "triage-form", novalidate: true, "aria-label": `Triage ${name}` }, decision, cardError, h("div", { class: "actions" }, submit));
    const chosen = () => form.querySelector(`input[name="${id}-decision"]:checked`)?.value;
    decision.addEventListener("change", () => {
      returnFields.hidden = chosen() !== "return";
      listFields.hidden = chosen() !== "list";
      submit.textContent = { accept: "Accept", return: "Return to the referrer", list: "List, not discussed" }[chosen()] || "Record decision";
    });

    const article = h(
      "article",
      { class: `card triage-item${overdue ? " overdue" : ""}`, dataset: { case: c.id }, "aria-labelledby": `${id}-h` },
      h("div", { class: "page-head" },
        h("h2", { id: `${id}-h` }, name, " ", h("span", { class: "nhs muted" }, `NHS ${formatNhsNumber(c.patient?.nhs_number)}`)),
        h("span", { class: `tag waiting${overdue ? " urgent" : ""}`, title: "Since it was submitted for triage" }, waitingText(minutes))),
      h("p", { class: "muted" },
        `${s.title} · `, time(s.starts_at), " · submitted ", time(since),
        c.urgency === "urgent" ? [" · ", h("span", { class: "tag urgent" }, "urgent")] : null,
        overdue ? [" · ", h("strong", { class: "error" }, "over the 24-hour triage target")] : null),
      h("div", { class: "two" },
        h("div", {},
          h("h3", {}, "Question for the MDT"),
          h("p", { class: "prose" }, c.clinical_question),
          h("h3", {}, "History"),
          h("p", { class: "prose" }, c.history),
          h("p", {}, h("strong", {}, "Body site: "), c.body_site)),
        h("div", {},
          h("h3", {}, "Proforma"),
          h("dl", { class: "facts proforma" }, proformaFacts(c)))),
      form,
    );

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      cardError.show(null);
      const what = chosen();
      const body = { decision: what };
      if (!what) return cardError.show("Choose accept, return or list first.");
      if (what === "return") {
        if (!reason.value) {
          reason.focus();
          return cardError.show("Choose the reason for returning it.");
        }
        body.reason = reason.value;
        if (note.value.trim()) body.note = note.value.trim();
      }
      if (what === "list") {
        if (!plan.value) {
          plan.focus();
          return cardError.show("Choose the standard plan it follows.");
        }
        body.standard_plan = plan.value;
      }
      try {
        await busy(submit, "Saving…", () => api(`/api/cases/${c.id}/triage`, { method: "POST", body }));
      } catch (err) {
        cardError.show(err);
        if (err.code === "not_awaiting_triage") await load().catch(() => {});
        return;
      }
      const said = {
        accept: `${name} was accepted onto the agenda of ${s.title}.`,
        return: `${name} was returned to the referrer, who has been emailed.`,
        list: `${name} was listed, not discussed, with a standard plan: the chair confirms it at the meeting.`,
      }[what];
      done.textContent = said;
      done.hidden = false;
      status.textContent = said;
      await load().catch((err) => error.show(err));
      done.focus?.();
    });
    return article;
  }

  filter.addEventListener("change", () => {
    done.hidden = true;
    load().catch((err) => error.show(err));
  });

  if (!here()) return;
  fill(
    main,
    h("h1", {}, "Triage"),
    h("p", {}, "Bookings wait here until the session's chair or a coordinator decides: accept onto the agenda, return as not ready, or list as following a standard plan. Aim to triage within 24 hours."),
    h("div", { class: "row filters" }, h("div", { class: "field" }, h("label", { for: filter.id }, "Specialty"), filter)),
    done,
    error,
    count,
    list,
  );
  done.setAttribute("tabindex", "-1");
  await load();
}
