// "Print and post" (coordinators): the current letters with a copy to go by post and not
// yet printed, oldest first. Each opens as a PDF (fetched with the token; it names the
// patient, the list does not) and is marked printed once it is in the post.
import { api } from "../api.js";
import { errorBox, fill, h, time } from "../ui.js";
import { stillHere } from "../forms.js";
import { LETTER_KIND, deliveryItem, pdfControls } from "../letters.js";

export async function render(main) {
  const here = stillHere();
  const status = h("p", { id: "print-status", role: "status", class: "success", hidden: true });
  const error = errorBox("print-error");
  const list = h("ul", { class: "letters print-list", id: "print-list" });

  const show = async () => {
    const letters = await api("/api/letters/print");
    fill(
      list,
      letters.length
        ? letters.map((l) => {
            const waiting = (l.deliveries || []).filter((d) => d.channel === "post" && d.status !== "printed");
            const { buttons, viewer } = pdfControls(l, (err) => error.show(err));
            const mark = h("button", { type: "button", class: "small mark-printed", "aria-label": `Mark printed: ${LETTER_KIND[l.kind] || l.kind}, made ${new Date(l.created_at).toLocaleString()}` }, "Mark printed");
            mark.addEventListener("click", async () => {
              error.show(null);
              status.hidden = true;
              mark.disabled = true;
              try {
                await api(`/api/letters/${l.id}/printed`, { method: "POST" });
                await show();
                status.textContent = `${LETTER_KIND[l.kind] || "Letter"} marked printed.`;
                status.hidden = false;
              } catch (err) {
                error.show(err.code === "already_printed" ? "Someone has already marked this letter printed. The list has been refreshed." : err);
                mark.disabled = false;
                if (err.code === "already_printed") await show().catch(() => {});
              }
            });
            buttons.prepend(mark);
            return h(
              "li",
              { class: "letter-item", dataset: { letterId: l.id, kind: l.kind } },
              h("div", { class: "letter-head" }, h("h3", { class: "letter-title" }, LETTER_KIND[l.kind] || l.kind), ` · version ${l.version} · made `, time(l.created_at), " · ", h("a", { href: `#/cases/${l.case_id}` }, "Open case")),
              h("p", { class: "muted" }, `${waiting.length} cop${waiting.length === 1 ? "y" : "ies"} to print and post:`),
              h("ul", { class: "deliveries", "aria-label": "Copies to post" }, waiting.map(deliveryItem)),
              buttons,
              viewer,
            );
          })
        : h("li", { class: "muted", id: "print-empty" }, "Nothing waits to be printed."),
    );
  };
  await show();
  if (!here()) return;
  fill(
    main,
    h("h1", {}, "Print and post"),
    h("p", { class: "hint" }, "Letters with a copy that goes by post: the patient's letter, and copies for practices or referrers without a secure email address. Open the PDF to print it (it names the patient), post it, then mark it printed."),
    status,
    error,
    h("section", { class: "card", "aria-labelledby": "print-h" }, h("h2", { id: "print-h" }, "Waiting to be printed"), list),
  );
}
