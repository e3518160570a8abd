// The outcome form: investigations, onward referrals, the management plan and the
// follow-up for one case; saves the draft (PUT) and signs it. A signed outcome is shown
// read-only: it is never overwritten (corrections are amendments).
import { api } from "./api.js";
import { BODY_REGIONS, BODY_SIDES } from "./nhs.js";
import { errorBox, explain, fill, h, humanise, when } from "./ui.js";

export const INVESTIGATIONS = ["mri", "xray", "ct", "ultrasound", "bloods", "nerve_conduction", "dexa", "other"];
export const DESTINATIONS = [
  "orthopaedics", "spinal_surgery", "rheumatology", "pain_clinic", "neurology", "physiotherapy",
  "psychology", "pain_management_programme", "injection_clinic", "gp_discharge", "other",
];
const LABELS = { mri: "MRI", xray: "X-ray", ct: "CT", dexa: "DEXA", gp_discharge: "Discharge to GP" };
const label = (v) => LABELS[v] || humanise(v).replace(/^./, (c) => c.toUpperCase());

let counter = 0;

/** "left knee" → ["left", "knee"]; "lower back" → ["", "lower back"]. */
function splitSite(site) {
  if (!site) return ["", ""];
  const side = BODY_SIDES.find((s) => site.startsWith(`${s} `));
  return side ? [side, site.slice(side.length + 1)] : ["", site];
}
const uid = (name) => `${name}-${++counter}`;

function select(id, values, value, text = label) {
  return h("select", { id }, values.map((v) => h("option", { value: v, selected: v === value }, text(v))));
}

function labelled(text, control) {
  return h("div", { class: "field" }, h("label", { for: control.id }, text), control);
}

/**
 * Builds the form for one case; `element` to mount, `refresh(outcomeState)` on live events.
 * `user` is who is signed in (the signer of what they sign).
 */
export function outcomeForm({ caseId, title, session, user }) {
  const error = errorBox(uid("outcome-error"));
  const saved = h("p", { class: "success", role: "status", hidden: true });
  const investigations = h("div", { class: "rows" });
  const referrals = h("div", { class: "rows" });
  const planText = h("textarea", { id: uid("plan"), rows: 4 });
  const planItems = h("textarea", { id: uid("plan-items"), rows: 3 });
  const followKind = select(uid("follow-kind"), ["none", "review", "re_discuss"], "none",
    (v) => ({ none: "None", review: "Review in clinic", re_discuss: "Discuss again at a later MDT" })[v]);
  const weeks = h("input", { id: uid("weeks"), type: "number", min: 1, max: 52, value: 6 });
  const laterSession = h("select", { id: uid("later-session") });
  const followReason = h("input", { id: uid("follow-reason"), type: "text" });
  const weeksField = labelled("Review after (weeks)", weeks);
  const sessionField = labelled("Later session", laterSession);
  const reasonField = labelled("Reason to discuss again", followReason);
  const saveButton = h("button", { type: "submit", class: "secondary" }, "Save draft");
  const signButton = h("button", { type: "button", id: uid("sign") }, "Sign outcome");
  // Shown when the meeting did not discuss the case: signing then needs the reason.
  const outsideReason = h("textarea", { id: uid("outside-reason"), rows: 2 });
  const outsideField = h("div", { class: "field", hidden: true },
    h("label", { for: outsideReason.id }, "Reason for deciding outside the meeting"),
    h("p", { class: "hint" }, "This case was not discussed in its meeting. Say why it is decided without a discussion; the reason is kept with the signed outcome and audited."),
    outsideReason);
  const signedBox = h("div", { hidden: true });
  let signed = false;

  function investigationRow(v = {}) {
    const kind = select(uid("inv-kind"), INVESTIGATIONS, v.kind || "mri");
    // The site is from the body-site vocabulary (as the server requires): a side and a
    // region, so nothing identifying can be typed there.
    const [givenSide, givenRegion] = splitSite(v.site);
    const side = select(uid("inv-side"), ["", ...BODY_SIDES], givenSide, (x) => (x ? label(x) : "No side"));
    const region = select(uid("inv-region"), ["", ...BODY_REGIONS], givenRegion, (x) => (x ? label(x) : "No site"));
    const urgency = select(uid("inv-urgency"), ["routine", "urgent"], v.urgency || "routine");
    const notes = h("input", { id: uid("inv-notes"), type: "text", value: v.notes || "" });
    const row = h("fieldset", { class: "row investigation" }, h("legend", {}, "Investigation"),
      labelled("Kind", kind), labelled("Side", side), labelled("Body site", region), labelled("Urgency", urgency),
      labelled("Notes (optional)", notes),
      h("button", { type: "button", class: "small secondary", onclick: () => row.remove() }, "Remove investigation"));
    row.value = () => ({
      kind: kind.value,
      site: region.value ? [side.value, region.value].filter(Boolean).join(" ") : null,
      urgency: urgency.value,
      notes: notes.value.trim() || null,
    });
    return row;
  }

  function referralRow(v = {}) {
    const destination = select(uid("ref-dest"), DESTINATIONS, v.destination || "orthopaedics");
    const urgency = select(uid("ref-urgency"), ["routine", "urgent"], v.urgency || "routine");
    const reason = h("input", { id: uid("ref-reason"), type: "text", value: v.reason || "", required: true });
    const row = h("fieldset", { class: "row referral" }, h("legend", {}, "Referral"),
      labelled("Destination", destination), labelled("Urgency", urgency), labelled("Reason", reason),
      h("button", { type: "button", class: "small secondary", onclick: () => row.remove() }, "Remove referral"));
    row.value = () => ({ destination: destination.value, urgency: urgency.value, reason: reason.value.trim() });
    return row;
  }

  function showFollow() {
    weeksField.hidden = followKind.value !== "review";
    sessionField.hidden = followKind.value !== "re_discuss";
    reasonField.hidden = followKind.value !== "re_discuss";
  }
  followKind.addEventListener("change", showFollow);
  showFollow();

  function body() {
    const kind = followKind.value;
    return {
      investigations: [...investigations.children].map((r) => r.value()),
      referrals: [...referrals.children].map((r) => r.value()),
      management_plan: {
        text: planText.value,
        items: planItems.value.split("\n").map((x) => x.trim()).filter(Boolean),
      },
      follow_up: kind === "review" ? { kind, weeks: Number(weeks.value) }
        : kind === "re_discuss" ? { kind, session_id: laterSession.value, reason: followReason.value }
          : { kind: "none" },
    };
  }

  function load(current) {
    if (!current || !current.body) return;
    const b = current.body;
    fill(investigations, b.investigations.map(investigationRow));
    fill(referrals, b.referrals.map(referralRow));
    planText.value = b.management_plan.text;
    planItems.value = b.management_plan.items.join("\n");
    followKind.value = b.follow_up.kind;
    if (b.follow_up.weeks) weeks.value = b.follow_up.weeks;
    if (b.follow_up.reason) followReason.value = b.follow_up.reason;
    if (b.follow_up.session_id) laterSession.value = b.follow_up.session_id;
    showFollow();
    if (current.signed_at) showSigned(current);
  }

  function showSigned(current) {
    signed = true;
    for (const el of form.querySelectorAll("input, select, textarea, button")) el.disabled = true;
    // The server names the signer; a version just signed here was signed by this user.
    const signer = current.signed_by_name || (current.signed_by && current.signed_by === user?.id ? user.name : null);
    fill(signedBox, h("p", { class: "success", id: "outcome-signed" },
      `Signed${signer ? ` by ${signer}` : ""} (version ${current.version}) at ${when(current.signed_at)}. A signed outcome cannot be changed; corrections are made as amendments.`));
    signedBox.hidden = false;
  }

  async function save() {
    error.show(null);
    saved.hidden = true;
    if (followKind.value === "review" && !/^\d+$/.test(weeks.value.trim())) {
      weeks.focus();
      throw Object.assign(new Error("Give the review interval as a whole number of weeks (1 to 52)."), { field: null });
    }
    const version = await api(`/api/cases/${caseId}/outcome`, { method: "PUT", body: body() });
    saved.textContent = `Draft saved (version ${version.version}).`;
    saved.hidden = false;
    return version;
  }

  const form = h("form", { class: "outcome", novalidate: true },
    h("h2", { id: "outcome-title", tabindex: "-1" }, `Outcome: ${title}`),
    h("h3", {}, "Investigations"), investigations,
    h("button", { type: "button", class: "small secondary", id: "add-investigation", onclick: () => investigations.append(investigationRow()) }, "Add investigation"),
    h("h3", {}, "Onward referrals"), referrals,
    h("button", { type: "button", class: "small secondary", id: "add-referral", onclick: () => referrals.append(referralRow()) }, "Add referral"),
    h("h3", {}, "Management plan"), labelled("Plan", planText),
    labelled("Plan items (optional, one per line)", planItems),
    h("h3", {}, "Follow-up"), labelled("Follow-up", followKind), weeksField, sessionField, reasonField,
    outsideField,
    h("div", { class: "actions" }, saveButton, signButton),
    saved, error);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await save();
    } catch (err) {
      error.show(err.field ? `${explain(err)} (${humanise(err.field)})` : err);
    }
  });
  signButton.addEventListener("click", async () => {
    if (!confirm("Sign this outcome? It is sent to the referrer and cannot be changed afterwards.")) return;
    try {
      await save();
      const reason = outsideReason.value.trim();
      const body = reason ? { outside_meeting_reason: reason } : {};
      const version = await api(`/api/cases/${caseId}/outcome/sign`, { method: "POST", body });
      showSigned(version);
      saved.hidden = true;
      outsideField.hidden = true;
    } catch (err) {
      if (err.code === "not_discussed") {
        outsideField.hidden = false;
        outsideReason.focus();
        error.show("This case was not discussed in its meeting: give the reason for deciding outside it, then sign again.");
        return;
      }
      error.show(err.field ? `${explain(err)} (${humanise(err.field)})` : err);
    }
  });

  const element = h("div", {}, form, signedBox);

  // Later sessions of the same specialty, for a re-discussion; and any saved outcome.
  api(`/api/sessions?specialty=${encodeURIComponent(session.specialty)}&from=${encodeURIComponent(new Date(Date.parse(session.starts_at) + 60000).toISOString())}`)
    .then((list) => {
      const sessions = Array.isArray(list) ? list : list.sessions || [];
      fill(laterSession, sessions.filter((s) => s.id !== session.id).slice(0, 12)
        .map((s) => h("option", { value: s.id }, `${s.title} · ${when(s.starts_at)}`)));
    })
    .catch(() => {});
  api(`/api/cases/${caseId}/outcome`).then((o) => load(o.current)).catch(() => {});

  return {
    caseId,
    element,
    refresh(outcome) {
      if (outcome?.signed && !signed) api(`/api/cases/${caseId}/outcome`).then((o) => load(o.current)).catch(() => {});
    },
  };
}
