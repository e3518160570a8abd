// "GP practices" (coordinators): the practices letters go to, by ODS code, with their
// email address (a letter naming the patient is emailed only to an address on the secure
// domains; otherwise the practice is told a letter is waiting and it goes by post). Added
// and edited with `PUT /api/practices/{ods_code}`.
import { api } from "../api.js";
import { errorBox, field, fill, h, time } from "../ui.js";
import { stillHere } from "../forms.js";

const FIELD = { ods_code: "ods", gp_practice_code: "ods", name: "name", email: "email" };
const SAID = {
  invalid_ods_code: "This is not a GP practice ODS code: six characters, such as A81001.",
  invalid_email: "This is not a valid email address.",
  required: "Give the practice's name.",
};

export async function render(main) {
  const here = stillHere();
  const status = h("p", { id: "practice-status", role: "status", class: "success", hidden: true });
  const error = errorBox("practice-error");
  const body = h("tbody");
  const table = h(
    "table",
    { class: "practices", id: "practices" },
    h("caption", { class: "sr-only" }, "GP practices"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "ODS code"), h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Email"), h("th", { scope: "col" }, "Updated"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Edit")))),
    body,
  );

  const ods = field("ODS code", h("input", { id: "practice-ods", type: "text", autocomplete: "off", class: "short", maxlength: 10 }), "The practice's organisation code, for example A81001.");
  const name = field("Name", h("input", { id: "practice-name", type: "text", maxlength: 200 }));
  const email = field("Email (optional)", h("input", { id: "practice-email", type: "email", maxlength: 254 }), "Letters naming the patient are emailed only to a secure address (for example nhs.net); otherwise they go by post.");
  const fields = { ods, name, email };
  const heading = h("h2", { id: "practice-form-h", tabindex: "-1" }, "Add a practice");
  const submit = h("button", { type: "submit", id: "practice-save" }, "Save practice");
  const cancel = h("button", { type: "button", class: "secondary", hidden: true }, "Cancel edit");
  const form = h("form", { id: "practice-form", class: "card", novalidate: true, "aria-labelledby": "practice-form-h" }, heading, ods, name, email, h("div", { class: "actions" }, submit, cancel));

  const reset = () => {
    ods.control.value = "";
    name.control.value = "";
    email.control.value = "";
    ods.control.readOnly = false;
    heading.textContent = "Add a practice";
    cancel.hidden = true;
    for (const f of Object.values(fields)) f.setError(null);
  };
  cancel.addEventListener("click", () => {
    reset();
    ods.control.focus();
  });

  const show = async () => {
    const practices = await api("/api/practices");
    fill(
      body,
      practices.length
        ? practices.map((p) =>
            h(
              "tr",
              { dataset: { ods: p.ods_code } },
              h("td", {}, p.ods_code),
              h("td", {}, p.name),
              h("td", { class: "email" }, p.email || h("span", { class: "muted" }, "none: letters go by post")),
              h("td", {}, time(p.updated_at)),
              h("td", {}, h("button", {
                type: "button",
                class: "small secondary",
                "aria-label": `Edit ${p.name}`,
                onclick: () => {
                  reset();
                  ods.control.value = p.ods_code;
                  ods.control.readOnly = true;
                  name.control.value = p.name;
                  email.control.value = p.email || "";
                  heading.textContent = `Edit ${p.ods_code}`;
                  cancel.hidden = false;
                  name.control.focus();
                },
              }, "Edit")),
            ),
          )
        : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No practices yet.")),
    );
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.show(null);
    status.hidden = true;
    for (const f of Object.values(fields)) f.setError(null);
    const code = ods.control.value.trim().toUpperCase();
    if (!code) {
      ods.setError("Give the practice's ODS code.");
      return ods.control.focus();
    }
    if (!name.control.value.trim()) {
      name.setError("Give the practice's name.");
      return name.control.focus();
    }
    submit.disabled = true;
    try {
      const saved = await api(`/api/practices/${encodeURIComponent(code)}`, {
        method: "PUT",
        body: { name: name.control.value.trim(), email: email.control.value.trim() || null },
      });
      status.textContent = `Saved ${saved?.name || code}.`;
      status.hidden = false;
      reset();
      await show();
    } catch (err) {
      const target = { invalid_ods_code: ods, invalid_email: email, required: name }[err.code] || fields[FIELD[err.field]] || null;
      if (target) {
        target.setError(SAID[err.code] || err.message || "Check this value.");
        target.control.focus();
      } else {
        error.show(err);
      }
    } finally {
      submit.disabled = false;
    }
  });

  await show();
  if (!here()) return;
  fill(
    main,
    h("h1", {}, "GP practices"),
    h("p", { class: "hint" }, "The practices the clinic letters go to, by ODS code. A patient's practice is the code given at booking."),
    status,
    error,
    h("section", { class: "card", "aria-labelledby": "practices-h" }, h("h2", { id: "practices-h" }, "Practices"), table),
    form,
  );
}
