// "My actions" (practitioners and consultants): the investigations and referrals of
// signed outcomes that the caller owns, overdue first, each moved along
// requested → booked → done → result received → closed, or cancelled with a reason.
// Recording a result can book the case into a later session of its specialty for
// re-discussion in the same step; the follow-up case is linked. The list names no patient
// (`what` comes from the vocabularies): each links to its case.
import { api } from "../api.js";
import { errorBox, field, fill, h, humanise, when } from "../ui.js";
import { stillHere } from "../forms.js";
import { dayText } from "../days.js";

const FLOW = ["requested", "booked", "done", "result_received", "closed"];
const STATUS = { requested: "Requested", booked: "Booked", done: "Done", result_received: "Result received", closed: "Closed", cancelled: "Cancelled" };
const STEP = { booked: "Mark booked", done: "Mark done", closed: "Close" };
const open = (a) => a.status !== "closed" && a.status !== "cancelled";

export async function render(main) {
  const here = stillHere();
  const status = h("p", { id: "actions-status", role: "status", class: "success", hidden: true });
  const followUp = h("p", { id: "follow-up", class: "notice", hidden: true });
  const error = errorBox("actions-error");
  const openList = h("ul", { class: "action-list", id: "actions-open" });
  const doneList = h("ul", { class: "action-list", id: "actions-done" });
  let actions = await api("/api/actions?mine=true");

  const announce = (text, followCase) => {
    status.textContent = text;
    status.hidden = false;
    if (followCase) {
      fill(followUp, h("strong", {}, "Re-discussion booked. "), h("a", { href: `#/cases/${followCase}`, id: "follow-up-link" }, "Open the follow-up case"));
      followUp.hidden = false;
    } else {
      followUp.hidden = true;
    }
  };

  /** Sends one change; on success replaces the action in the list and redraws. */
  async function change(a, body, button) {
    error.show(null);
    if (button) button.disabled = true;
    try {
      const updated = await api(`/api/actions/${a.id}`, { method: "PATCH", body });
      actions = actions.map((x) => (x.id === a.id ? { ...x, ...updated } : x));
      draw();
      announce(`${a.what}: ${STATUS[updated.status] || humanise(updated.status)}.`, updated.follow_up_case_id);
      return true;
    } catch (err) {
      error.show(err.code === "invalid_transition" ? "That step is no longer possible: someone else has changed this action. Reload the page to see it." : err);
      if (button) button.disabled = false;
      return false;
    }
  }

  /** The form to record a result, with an optional attachment and re-discussion. */
  async function resultForm(a, holder, opener) {
    const summary = field("Result summary", h("textarea", { id: `result-${a.id}`, rows: 3, maxlength: 500 }), "A short summary of the result (up to 500 characters). Do not include the patient's name or NHS number.");
    const attach = h("select", { id: `result-attachment-${a.id}` }, h("option", { value: "" }, "No attachment"));
    const rediscuss = h("input", { type: "checkbox", id: `rediscuss-${a.id}` });
    const session = h("select", { id: `rediscuss-session-${a.id}`, disabled: true });
    const sessionField = h("div", { class: "field", hidden: true }, h("label", { for: session.id }, "Session for the re-discussion"), session);
    const submit = h("button", { type: "submit", class: "record-result" }, "Record result");
    const cancel = h("button", { type: "button", class: "secondary" }, "Not now");
    summary.control.addEventListener("input", () => summary.control.value.trim() && summary.setError(null));
    const form = h(
      "form",
      { class: "result-form", novalidate: true, "aria-label": `Result: ${a.what}` },
      summary,
      h("div", { class: "field" }, h("label", { for: attach.id }, "Attachment of the case (optional)"), attach),
      h("label", { class: "check", for: rediscuss.id }, rediscuss, "Book a re-discussion at a later MDT of the specialty"),
      sessionField,
      h("div", { class: "actions" }, submit, cancel),
    );
    cancel.addEventListener("click", () => {
      fill(holder);
      opener.focus();
    });
    fill(holder, form);
    summary.control.focus();
    // The case's attachments, and (when asked) its specialty's later sessions.
    api(`/api/cases/${a.case_id}/attachments`)
      .then((files) => attach.append(...files.map((f) => h("option", { value: f.id }, f.filename))))
      .catch(() => {});
    let loaded = false;
    rediscuss.addEventListener("change", async () => {
      sessionField.hidden = !rediscuss.checked;
      if (!rediscuss.checked || loaded) return;
      loaded = true;
      fill(session, h("option", { value: "" }, "Loading sessions…"));
      try {
        const c = await api(`/api/cases/${a.case_id}`);
        const own = await api(`/api/sessions/${c.session_id}`);
        const specialty = own.session?.specialty || own.specialty;
        const ownStart = Date.parse(own.session?.starts_at || own.starts_at);
        const from = new Date(Math.max(Date.now(), ownStart + 60000)).toISOString();
        const list = await api(`/api/sessions?specialty=${encodeURIComponent(specialty)}&from=${encodeURIComponent(from)}`);
        const later = list.filter((s) => s.id !== c.session_id && ["scheduled", "published"].includes(s.state) && Date.parse(s.booking_closes_at || s.starts_at) > Date.now() && s.booked < s.capacity);
        fill(session, later.length ? later.slice(0, 12).map((s) => h("option", { value: s.id }, `${s.title} · ${when(s.starts_at)} · ${s.capacity - s.booked} places`)) : h("option", { value: "" }, "No later session is open for booking"));
        session.disabled = !later.length;
      } catch (err) {
        fill(session, h("option", { value: "" }, "Sessions could not be loaded"));
        error.show(err);
      }
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      summary.setError(null);
      const text = summary.control.value.trim();
      if (!text) {
        summary.setError("Give a short summary of the result.");
        return summary.control.focus();
      }
      const body = { status: "result_received", result: { summary: text, ...(attach.value ? { attachment_id: attach.value } : {}) } };
      if (rediscuss.checked) {
        if (!session.value) {
          error.show("Choose a session for the re-discussion, or untick it.");
          return session.focus();
        }
        body.rediscuss_session_id = session.value;
      }
      await change(a, body, submit);
    });
  }

  /** The form to cancel an action, with its reason. */
  function cancelForm(a, holder, opener) {
    const reason = field("Reason for cancelling", h("textarea", { id: `cancel-reason-${a.id}`, rows: 2, maxlength: 500 }));
    const submit = h("button", { type: "submit", class: "danger" }, "Cancel action");
    const back = h("button", { type: "button", class: "secondary" }, "Keep it");
    const form = h("form", { class: "cancel-form", novalidate: true, "aria-label": `Cancel: ${a.what}` }, reason, h("div", { class: "actions" }, submit, back));
    back.addEventListener("click", () => {
      fill(holder);
      opener.focus();
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      reason.setError(null);
      const text = reason.control.value.trim();
      if (!text) {
        reason.setError("Say why the action is cancelled.");
        return reason.control.focus();
      }
      await change(a, { status: "cancelled", reason: text }, submit);
    });
    fill(holder, form);
    reason.control.addEventListener("input", () => reason.control.value.trim() && reason.setError(null));
    reason.control.focus();
  }

  function item(a) {
    const holder = h("div", { class: "action-form" });
    const at = FLOW.indexOf(a.status);
    const tools = [];
    if (open(a)) {
      for (const next of FLOW.slice(at + 1)) {
        if (next === "result_received") {
          if (a.kind !== "investigation") continue;
          const b = h("button", { type: "button", class: "small", "aria-label": `Record result: ${a.what}` }, "Record result");
          b.addEventListener("click", () => resultForm(a, holder, b));
          tools.push(b);
        } else {
          const b = h("button", { type: "button", class: "small secondary", "aria-label": `${STEP[next]}: ${a.what}` }, STEP[next]);
          b.addEventListener("click", () => change(a, { status: next }, b));
          tools.push(b);
        }
      }
      const c = h("button", { type: "button", class: "small secondary", "aria-label": `Cancel action: ${a.what}` }, "Cancel action…");
      c.addEventListener("click", () => cancelForm(a, holder, c));
      tools.push(c);
    }
    return h(
      "li",
      { class: `action-item card${a.overdue ? " overdue" : ""}`, dataset: { actionId: a.id, status: a.status } },
      h(
        "h3",
        {},
        a.what,
        a.overdue ? [" ", h("span", { class: "tag urgent" }, "overdue")] : null,
      ),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Status"), h("dd", {}, h("span", { class: `tag action-${a.status}` }, STATUS[a.status] || humanise(a.status))),
        h("dt", {}, "Kind"), h("dd", {}, a.kind === "referral" ? "Referral" : "Investigation"),
        h("dt", {}, "Urgency"), h("dd", {}, a.urgency === "urgent" ? h("span", { class: "tag urgent" }, "urgent") : "Routine"),
        h("dt", {}, "Due"), h("dd", { class: a.overdue ? "error" : "" }, dayText(a.due_on), a.overdue ? " (overdue)" : ""),
        a.result ? [h("dt", {}, "Result"), h("dd", { class: "prose result-summary" }, a.result.summary, a.result.attachment_id ? " (with an attachment on the case)" : "")] : null,
        a.cancel_reason ? [h("dt", {}, "Cancelled because"), h("dd", { class: "prose" }, a.cancel_reason)] : null,
        h("dt", {}, "Case"), h("dd", {}, h("a", { href: `#/cases/${a.case_id}`, class: "case-link" }, "Open the case"),
          a.rediscuss_case_id ? [" · ", h("a", { href: `#/cases/${a.rediscuss_case_id}`, class: "rediscuss-link" }, "Re-discussion case")] : null),
      ),
      tools.length ? h("div", { class: "actions" }, tools) : null,
      holder,
    );
  }

  function draw() {
    const current = actions.filter(open);
    const finished = actions.filter((a) => !open(a));
    fill(openList, current.length ? current.map(item) : h("li", { class: "muted", id: "no-actions" }, "No open actions."));
    fill(doneList, finished.length ? finished.map(item) : h("li", { class: "muted" }, "None yet."));
  }
  draw();
  if (!here()) return;
  const overdue = actions.filter((a) => a.overdue && open(a)).length;
  fill(
    main,
    h("h1", {}, "My actions"),
    h("p", { class: "hint" }, "Investigations and referrals from signed outcomes that you own, overdue first. Move each along as it happens; recording a result can book the case for re-discussion."),
    overdue ? h("p", { class: "warning", id: "overdue-count" }, h("strong", {}, `${overdue} overdue. `), "They are at the top of the list.") : null,
    status,
    followUp,
    error,
    h("section", { "aria-labelledby": "open-h" }, h("h2", { id: "open-h" }, "Open"), openList),
    h("section", { "aria-labelledby": "done-h" }, h("h2", { id: "done-h" }, "Closed and cancelled"), doneList),
  );
}
