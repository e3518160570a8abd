// The outcome letters (issue 16), shared by the case page and the coordinator's print-and-
// post list: what each letter is, where its copies went, and its PDF, fetched through the
// API client with the bearer token (the address names only the letter's id, never the
// patient) and shown inline from a blob URL or saved as a file. Trainees never get here:
// the server refuses them letters, and the pages do not ask.
import { download } from "./api.js";
import { h, time } from "./ui.js";

export const LETTER_KIND = { gp: "Clinic letter to the GP and referrer", patient: "Letter to the patient" };
const RECIPIENT = { practice: "GP practice", referrer: "Referrer", patient: "Patient" };
const CHANNEL = { email: "email", post: "post" };
const STATUS = { queued: "waiting", sent: "sent", printed: "printed" };

/** One delivery as a line: "GP practice · post · printed Tue 8 Dec, 10:00". */
export function deliveryItem(d) {
  return h(
    "li",
    { class: "delivery", dataset: { recipient: d.recipient || "", channel: d.channel, status: d.status } },
    h("strong", {}, RECIPIENT[d.recipient] || d.recipient || "Copy"),
    ` · by ${CHANNEL[d.channel] || d.channel} · `,
    h("span", { class: `tag delivery-${d.status}` }, STATUS[d.status] || d.status),
    d.at ? [" ", time(d.at)] : null,
  );
}

/** A letter's file name: its kind and version, nothing identifying. */
export const letterFile = (l) => `${l.kind === "gp" ? "gp-letter" : "patient-letter"}-v${l.version}.pdf`;

/** Saves a Blob as a file through a short-lived object URL. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename || "download", class: "sr-only" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}

/**
 * "View PDF" (toggles an inline viewer under the buttons) and "Download PDF" for one
 * letter; `onError` shows a refusal. Returns the element holding both and the viewer.
 */
export function pdfControls(letter, onError) {
  const label = `${LETTER_KIND[letter.kind] || letter.kind}, version ${letter.version}`;
  const viewer = h("div", { class: "pdf-viewer", hidden: true });
  let url = null;
  const fetchPdf = async () => {
    const blob = await download(`/api/letters/${letter.id}/pdf`);
    return blob.type === "application/pdf" ? blob : new Blob([blob], { type: "application/pdf" });
  };
  const view = h("button", { type: "button", class: "secondary small view-pdf", "aria-expanded": "false", "aria-label": `View PDF: ${label}` }, "View PDF");
  view.addEventListener("click", async () => {
    onError?.(null);
    if (!viewer.hidden) {
      viewer.hidden = true;
      view.setAttribute("aria-expanded", "false");
      view.textContent = "View PDF";
      return;
    }
    view.disabled = true;
    try {
      if (!url) url = URL.createObjectURL(await fetchPdf());
      viewer.replaceChildren(h("iframe", { src: url, title: `PDF: ${label}`, class: "pdf-frame" }));
      viewer.hidden = false;
      view.setAttribute("aria-expanded", "true");
      view.textContent = "Hide PDF";
    } catch (err) {
      onError?.(err);
    } finally {
      view.disabled = false;
    }
  });
  const save = h("button", { type: "button", class: "secondary small download-pdf", "aria-label": `Download PDF: ${label}` }, "Download PDF");
  save.addEventListener("click", async () => {
    onError?.(null);
    save.disabled = true;
    try {
      saveBlob(await fetchPdf(), letterFile(letter));
    } catch (err) {
      onError?.(err);
    } finally {
      save.disabled = false;
    }
  });
  return { buttons: h("div", { class: "letter-tools" }, view, save), viewer };
}

/** One letter as a list item: kind, version, made when, superseded, deliveries, PDF. */
export function letterItem(letter, onError) {
  const { buttons, viewer } = pdfControls(letter, onError);
  return h(
    "li",
    { class: letter.superseded_by ? "letter-item superseded" : "letter-item", dataset: { letterId: letter.id, kind: letter.kind } },
    h(
      "div",
      { class: "letter-head" },
      h("h3", { class: "letter-title" }, LETTER_KIND[letter.kind] || letter.kind),
      ` · version ${letter.version} · made `,
      time(letter.created_at),
      letter.superseded_by ? [" ", h("span", { class: "tag superseded" }, "superseded by an amendment")] : [" ", h("span", { class: "tag signed" }, "current")],
    ),
    letter.deliveries?.length ? h("ul", { class: "deliveries", "aria-label": "Copies sent" }, letter.deliveries.map(deliveryItem)) : h("p", { class: "muted" }, "No copies recorded."),
    buttons,
    viewer,
  );
}
