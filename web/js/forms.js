// Form plumbing shared by the booking and admin pages: checked fields (a check runs on
// blur and on submit, its message shown under the field with aria-invalid), focusing the
// first bad field, and putting a server refusal against the field it names.
import { explain, field, h } from "./ui.js";

/** "must not be empty" → "Must not be empty". */
const sentence = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

/**
 * A set of checked fields. `add(name, wrap, check)` registers a field wrapper from
 * ui.field() under the server's field name; `check(value, control)` returns an error
 * message or null and runs when the control loses focus (once it has been touched) and
 * on submit.
 */
export function checkedForm() {
  const fields = new Map();
  const form = {
    add(name, wrap, check) {
      fields.set(name, { wrap, check });
      const control = wrap.control;
      let touched = false;
      const run = () => form.checkOne(name);
      control.addEventListener("blur", (event) => {
        touched = true;
        // Leaving for the submit button: the submit checks everything, and a message
        // appearing now would move the button out from under the pointer.
        if (event.relatedTarget?.type === "submit" && event.relatedTarget.form === control.form) return;
        run();
      });
      // Once an error shows, clear it as soon as the value is right.
      // (Before blur: a message vanishing on blur would move the button being clicked.)
      control.addEventListener("input", () => wrap.classList.contains("invalid") && run());
      control.addEventListener("change", () => touched && run());
      return wrap;
    },
    get(name) {
      return fields.get(name)?.wrap;
    },
    /** Forgets a field (a removed row of a repeatable group). */
    remove(name) {
      fields.delete(name);
    },
    checkOne(name) {
      const f = fields.get(name);
      if (!f || !f.check) return true;
      const message = f.check(f.wrap.control.value, f.wrap.control);
      f.wrap.setError(message ? sentence(message) : null);
      return !message;
    },
    /** Checks every field; focuses the first bad one. Returns true when all pass. */
    checkAll() {
      const bad = [];
      for (const [name, f] of fields) {
        if (!form.checkOne(name)) bad.push(f.wrap.control);
      }
      // The first in the page, whatever order the fields were registered in.
      bad.sort((a, b) => (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
      if (bad.length) bad[0].focus();
      return !bad.length;
    },
    clear() {
      for (const f of fields.values()) f.wrap.setError(null);
    },
    /**
     * Shows an ApiError against the field it names (matching the last part of a path
     * such as `patient.nhs_number`), focusing it; returns false when no field matched.
     */
    showServerError(err) {
      if (!err?.field) return false;
      const name = [...fields.keys()].find((k) => k === err.field || err.field.endsWith(`.${k}`) || k.endsWith(`.${err.field}`));
      if (!name) return false;
      const wrap = fields.get(name).wrap;
      const known = explain({ code: err.code });
      wrap.setError(known !== "Something went wrong." ? known : sentence(err.message));
      wrap.control.focus();
      return true;
    },
  };
  return form;
}

/** A <select> of [value, label] pairs (or plain strings). */
export function select(attrs, options, selected) {
  return h(
    "select",
    attrs,
    options.map((o) => {
      const [value, label] = Array.isArray(o) ? o : [o, o];
      return h("option", { value, selected: value === selected }, label);
    }),
  );
}

/** A checked text field: required text of at most `max` characters. */
export function textField(form, name, label, { max = 100, multiline = false, hint, attrs = {} } = {}, check) {
  const control = multiline
    ? h("textarea", { name, rows: 4, ...attrs })
    : h("input", { name, type: "text", ...attrs });
  const wrap = field(label, control, hint);
  return form.add(name, wrap, check);
}

/** Disables a button while `work` runs (no double submits); returns work's result. */
export async function busy(button, label, work) {
  const was = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  if (label) button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = was;
  }
}

/**
 * A guard against a slow page finishing after the user has moved on: true while the
 * address is still the one the page was rendered for.
 */
export function stillHere() {
  const here = location.hash;
  return () => location.hash === here;
}

/** A one-line summary of a user's specialties for tables. */
export const list = (xs) => (xs && xs.length ? xs.join(", ") : "—");
