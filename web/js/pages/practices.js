// "GP practices" (coordinators): the practices letters go to, by ODS code, with their
// email address (a letter naming the patient is emailed only to an address on the secure
// domains; otherwise the practice is told a letter is waiting and it goes by post). Added
// and edited with `PUT /api/practices/{ods_code}`. Also the practices' list sizes
// (registered patients, for referrals per 1,000 on the reports page): imported from a CSV
// of `ods_code,list_size` lines (`POST /api/practices/list-sizes` as text/csv; a bad line
// refuses the whole file) and listed as they stand.
import { api } from "../api.js";
import { errorBox, field, fill, h, time } from "../ui.js";
import { busy, stillHere } from "../forms.js";

const FIELD = { ods_code: "ods", gp_practice_code: "ods", name: "name", email: "email" };
const SAID = {
  invalid_ods_code: "This is not a GP practice ODS code: six characters, such as A81001.",
  invalid_email: "This is not a valid email address.",
  required: "Give the practice's name.",
};

/** A refused list-size file in words: the line the server names, and that nothing was kept. */
function listSizesRefusal(err) {
  if (err.status === 413) return "The file is too large to send in one go. Split it into smaller files and import each.";
  if (err.code !== "invalid_list_sizes") return null;
  const where = /^line \d+$/.test(err.field || "") ? `${err.field.replace(/^l/, "L")}: ` : "";
  const why = String(err.message || "").replace(/^line \d+:\s*/, "");
  return `${where}${why.replace(/^./, (c) => c.toUpperCase())}. Nothing was imported: correct the file and import it again.`;
}

/**
 * The list sizes: the import form (a file read into the text box, or the text pasted)
 * and the table of current sizes, named from `names` (ODS code → practice name).
 */
function listSizesSection(names) {
  const status = h("p", { id: "list-sizes-status", role: "status", class: "success", hidden: true });
  const error = errorBox("list-sizes-error");
  const body = h("tbody");
  const table = h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Current list sizes" },
    h(
      "table",
      { class: "list-sizes", id: "list-sizes" },
      h("caption", { class: "sr-only" }, "Current list sizes"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "ODS code"), h("th", { scope: "col" }, "Practice"), h("th", { scope: "col", class: "num" }, "List size"), h("th", { scope: "col" }, "Imported"))),
      body,
    ),
  );
  const file = field("CSV file", h("input", { id: "list-sizes-file", type: "file", accept: ".csv,text/csv,text/plain" }), "Choosing a file puts its text in the box below, to check before importing.");
  const text = field(
    "List sizes (CSV)",
    h("textarea", { id: "list-sizes-text", rows: 6, spellcheck: "false", autocomplete: "off", placeholder: "ods_code,list_size\nA81001,8200" }),
    "One practice a line: its ODS code and registered patients, e.g. A81001,8200. A header line ods_code,list_size is optional. A practice already listed takes the new size.",
  );
  const submit = h("button", { type: "submit", id: "list-sizes-import" }, "Import list sizes");
  const form = h("form", { id: "list-sizes-form", novalidate: true, "aria-labelledby": "list-sizes-form-h" }, h("h3", { id: "list-sizes-form-h" }, "Import list sizes"), file, text, error, h("div", { class: "actions" }, submit));

  file.control.addEventListener("change", async () => {
    const chosen = file.control.files?.[0];
    if (!chosen) return;
    text.control.value = await chosen.text();
    text.setError(null);
  });

  const show = async () => {
    const { list_sizes: sizes } = await api("/api/practices/list-sizes");
    fill(
      body,
      sizes.length
        ? sizes.map((s) =>
            h(
              "tr",
              { dataset: { ods: s.ods_code } },
              h("td", {}, s.ods_code),
              h("td", {}, names.get(s.ods_code) || h("span", { class: "muted" }, "not in the practices above")),
              h("td", { class: "num" }, s.list_size.toLocaleString("en-GB")),
              h("td", {}, time(s.imported_at)),
            ),
          )
        : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No list sizes imported yet.")),
    );
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.show(null);
    status.hidden = true;
    text.setError(null);
    const csv = text.control.value;
    if (!csv.trim()) {
      text.setError("Choose a CSV file or paste the list sizes.");
      return text.control.focus();
    }
    try {
      const { imported } = await busy(submit, "Importing…", () =>
        api("/api/practices/list-sizes", { method: "POST", body: new Blob([csv], { type: "text/csv" }) }),
      );
      status.textContent = `Imported the list sizes of ${imported} practice${imported === 1 ? "" : "s"}.`;
      status.hidden = false;
      text.control.value = "";
      file.control.value = "";
      await show();
    } catch (err) {
      const said = listSizesRefusal(err);
      if (said) {
        text.setError(said);
        text.control.focus();
      } else {
        error.show(err);
      }
    }
  });

  const section = h(
    "section",
    { class: "card", id: "list-sizes-section", "aria-labelledby": "list-sizes-h" },
    h("h2", { id: "list-sizes-h" }, "List sizes"),
    h("p", { class: "hint" }, "Registered patients per practice, for referrals per 1,000 patients on the reports page. The whole file is checked first: a bad line refuses it and nothing is kept."),
    status,
    table,
    form,
  );
  section.show = show;
  return section;
}

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

  // The practices' names by ODS code, for the list sizes' table too.
  const names = new Map();
  const sizes = listSizesSection(names);
  const show = async () => {
    const practices = await api("/api/practices");
    names.clear();
    for (const p of practices) names.set(p.ods_code, p.name);
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
      await sizes.show();
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
  await sizes.show();
  if (!here()) return;
  fill(
    main,
    h("h1", {}, "GP practices"),
    h("p", { class: "hint" }, "The practices the clinic letters go to, by ODS code. A patient's practice is the code given at booking."),
    status,
    error,
    h("section", { class: "card", "aria-labelledby": "practices-h" }, h("h2", { id: "practices-h" }, "Practices"), table),
    form,
    sizes,
  );
}
