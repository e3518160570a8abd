// Small DOM helpers shared by every page: building elements without innerHTML (so no
// server text is ever parsed as markup), local-time formatting, and plain-English
// messages for the API's error codes.

/** Creates an element: h("button", {type: "button", onclick}, "Save"). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : value);
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/**
 * Sets an element's children. A child already in its place is left there, untouched: a
 * control that is kept across renders (see the meeting page's buttons) stays under the
 * pointer and keeps its focus while what is around it changes.
 */
export function fill(el, ...children) {
  const nodes = [];
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    nodes.push(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  // Children that go are removed first, so none that stays is moved out and back in
  // (which would drop a click in progress on it, and its focus).
  const keep = new Set(nodes);
  for (const child of [...el.childNodes]) if (!keep.has(child)) child.remove();
  nodes.forEach((node, i) => {
    if (el.childNodes[i] !== node) el.insertBefore(node, el.childNodes[i] || null);
  });
  return el;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
});
const dateOnly = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric" });
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** An RFC 3339 instant in the user's own zone, e.g. "Tue 1 Dec, 12:30". */
export const when = (iso) => (iso ? dateTime.format(new Date(iso)) : "");
export const day = (iso) => (iso ? dateOnly.format(new Date(iso)) : "");
export const clock = (iso) => (iso ? timeOnly.format(new Date(iso)) : "");

/** A <time> element showing an instant in local time. */
export const time = (iso, format = when) => h("time", { datetime: iso }, format(iso));

const MESSAGES = {
  network_error: "The server could not be reached. Check your connection and try again.",
  invalid_credentials: "Email or password is incorrect.",
  invalid_nhs_number: "This is not a valid NHS number: check the 10 digits.",
  red_flags_present:
    "Red flags need the urgent pathway, not an MDT booking. Refer today via the urgent (2-week-wait or same-day) pathway.",
  session_full: "This session is full. Choose another session.",
  booking_closed: "Booking for this session has closed. Choose a later session.",
  outcome_signed: "This outcome has been signed and can no longer be edited; add an amendment instead.",
  forbidden: "You do not have permission to do that.",
  not_a_participant: "You are not a participant in this meeting.",
  meeting_not_open: "The meeting has not been opened yet.",
  rate_limited: "Too many attempts. Wait a minute and try again.",
  patient_agreement_required: "The patient must agree to their case being discussed before it is booked.",
  agenda_published:
    "The agenda has been published: only an urgent case the chair approves can still be added. Return the booking or ask the chair.",
  not_awaiting_triage: "This booking is no longer waiting for triage: someone else has decided it. The list has been refreshed.",
  not_returned: "This booking is not returned, so it cannot be edited or resubmitted.",
  cannot_change_own_account: "You cannot deactivate or reset your own account: ask another coordinator.",
  already_inactive: "This account is already deactivated. The list has been refreshed.",
  already_active: "This account is already active. The list has been refreshed.",
  account_inactive: "This account is deactivated: reactivate it before resetting its password.",
  wrong_password: "The current password is not right.",
  password_unchanged: "Choose a password other than the current one.",
  account_deactivated: "This account has been deactivated. Ask a coordinator if you think this is wrong.",
};

/** A message for an ApiError: ours for codes we know, else the server's own words. */
export function explain(err) {
  return MESSAGES[err?.code] || err?.message || "Something went wrong.";
}

/** An alert paragraph that shows an error (or hides when given nothing). */
export function errorBox(id) {
  const el = h("p", { id, class: "error", role: "alert", hidden: true });
  el.show = (err) => {
    if (!err) {
      el.hidden = true;
      el.textContent = "";
      return;
    }
    el.textContent = typeof err === "string" ? err : explain(err);
    el.hidden = false;
  };
  return el;
}

/** A labelled field: returns the wrapper; the control is wrapper.control. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  const err = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const described = [hintEl && hintEl.id, err.id].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), hintEl, control, err);
  wrap.control = control;
  wrap.setError = (message) => {
    err.textContent = message || "";
    err.hidden = !message;
    control.setAttribute("aria-invalid", message ? "true" : "false");
    wrap.classList.toggle("invalid", Boolean(message));
  };
  return wrap;
}

export const humanise = (s) => String(s || "").replaceAll("_", " ");

/** A code as words with a capital, as headings show it: "pain" → "Pain", "spinal_surgery" → "Spinal surgery". */
export const sentenceCase = (s) => humanise(s).replace(/^./, (c) => c.toUpperCase());
