// One case: the patient (or, for trainees, the de-identified label), the question, the
// referral proforma (identified viewers only), where triage stands (a returned case shows
// the reason and note, and its referrer edits and resubmits it here), its attachments (downloaded through the API client, never with a token in a URL), the
// outcome with its versions, the outcome letter once signed, and the GP and patient letters
// (PDFs fetched through the API client; not for trainees). The referrer or a
// coordinator may add attachments and withdraw the case before it is discussed.
import { blankView, createViewer, IMAGE_TYPES } from "../viewer.js";
import { api, download, upload } from "../api.js";
import { errorBox, explain, field, fill, h, humanise, time } from "../ui.js";
import { formatNhsNumber } from "../nhs.js";
import { patientName, sessionsFor } from "./cases.js";
import { busy, checkedForm, stillHere } from "../forms.js";
import { caseDetails, proformaFacts, returnedPanel } from "../proforma.js";
import { sizeLabel } from "./book.js";
import { dayText } from "../days.js";
import { letterItem, saveBlob } from "../letters.js";

const INVESTIGATIONS = {
  mri: "MRI", xray: "X-ray", ct: "CT", ultrasound: "Ultrasound", bloods: "Blood tests",
  nerve_conduction: "Nerve conduction studies", dexa: "DEXA scan", other: "Other investigation",
};
const DESTINATIONS = {
  orthopaedics: "Orthopaedics", spinal_surgery: "Spinal surgery", rheumatology: "Rheumatology",
  pain_clinic: "Pain clinic", neurology: "Neurology", physiotherapy: "Physiotherapy", psychology: "Psychology",
  pain_management_programme: "Pain management programme", injection_clinic: "Injection clinic",
  gp_discharge: "GP / discharge", other: "Other service",
};
const birthDate = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
const SEX = { female: "Female", male: "Male", other: "Other", unknown: "Not known" };

export async function render(main, ctx) {
  const { user, params } = ctx;
  const [caseId] = params;
  const here = stillHere();
  const c = await api(`/api/cases/${caseId}`);
  const identified = Boolean(c.patient);
  const session = await sessionsFor(identified ? [c] : [])
    .then((m) => m.get(c.session_id))
    .catch(() => null);
  const status = h("p", { id: "case-status", role: "status", class: "success", hidden: true });
  const error = errorBox("case-error");
  // The specialty's triage rules: the required proforma fields, the standard plans.
  const rules = identified && session ? await api(`/api/specialties/${encodeURIComponent(session.specialty)}/triage`).catch(() => null) : null;

  const title = identified ? `${patientName(c)}` : c.label;
  const parts = [
    h("div", { class: "page-head" }, h("h1", {}, title), h("span", { class: `tag state-${c.state}` }, humanise(c.state))),
    status,
    error,
  ];

  // Details.
  const facts = [];
  const fact = (label, ...value) => facts.push(h("dt", {}, label), h("dd", {}, ...value));
  if (identified) {
    const p = c.patient;
    fact("NHS number", h("span", { class: "nhs" }, formatNhsNumber(p.nhs_number)));
    fact("Date of birth", birthDate.format(new Date(`${p.date_of_birth}T00:00:00Z`)));
    fact("Sex", SEX[p.sex] || p.sex);
    fact("GP practice", p.gp_practice_code);
  } else {
    fact("Sex", SEX[c.sex] || c.sex);
    fact("Age", c.age_band);
  }
  fact("Body site", c.body_site);
  fact("Urgency", c.urgency === "urgent" ? h("span", { class: "tag urgent" }, "urgent") : "Routine");
  fact("Session", session ? [session.title, " · ", time(session.starts_at)] : "—");
  if (c.booked_at) fact("Booked", time(c.booked_at));
  if (c.needs_rebooking) fact("Rebooking", h("span", { class: "tag urgent" }, "needs rebooking: its session was cancelled"));
  parts.push(h("section", { class: "card", "aria-labelledby": "details-h" }, h("h2", { id: "details-h" }, "Details"), h("dl", { class: "facts" }, facts)));

  const mayChange = identified && (user.role === "coordinator" || c.referrer_id === user.id);

  // Where triage stands.
  if (c.state === "returned" && identified) {
    const edit = mayChange ? resubmitForm(c, rules, ctx, main) : null;
    parts.splice(3, 0, returnedPanel(c, edit ? edit.open : h("p", {}, "The referrer edits and resubmits it.")), edit?.holder);
  } else if (c.state === "awaiting_triage") {
    parts.splice(3, 0, h("p", { class: "notice", id: "awaiting-triage" }, h("strong", {}, "Awaiting triage. "),
      "It is not on the agenda yet: the session's chair or a coordinator accepts it, lists it with a standard plan, or returns it to the referrer.",
      c.submitted_at ? [" Submitted ", time(c.submitted_at), "."] : null));
  } else if (c.state === "listed") {
    const plan = rules?.standard_plans?.find((p) => p.code === c.standard_plan);
    parts.splice(3, 0, h("p", { class: "notice", id: "listed-note" }, h("strong", {}, "Listed, not discussed. "),
      "It follows a standard plan", plan ? [": ", h("em", {}, plan.title)] : "", ". The chair confirms the listed cases' outcomes together at the meeting."));
  }

  // The referral proforma (identified viewers only: the server sends it to no one else).
  const proforma = proformaFacts(c);
  if (proforma.length) {
    parts.push(h("section", { class: "card", "aria-labelledby": "referral-h" }, h("h2", { id: "referral-h" }, "Referral"), h("dl", { class: "facts proforma", id: "proforma-facts" }, proforma)));
  }

  if (c.clinical_question || c.history) {
    parts.push(
      h(
        "section",
        { class: "card", "aria-labelledby": "question-h" },
        h("h2", { id: "question-h" }, "Question for the MDT"),
        h("p", { class: "prose" }, c.clinical_question),
        c.history ? [h("h3", {}, "History"), h("p", { class: "prose" }, c.history)] : null,
      ),
    );
  }

  // Attachments (identified viewers only: files may carry identifiers).
  if (identified) {
    const list = h("ul", { class: "attachments", id: "attachments" });
    const section = h("section", { class: "card", "aria-labelledby": "attachments-h" }, h("h2", { id: "attachments-h" }, "Attachments"), list);
    const showAttachments = async () => {
      const items = await api(`/api/cases/${c.id}/attachments`).catch((err) => {
        error.show(err);
        return [];
      });
      fill(
        list,
        items.length
          ? items.map((a) =>
              h(
                "li",
                {},
                h("span", { class: "file-name" }, a.filename),
                h("span", { class: "muted" }, ` ${a.content_type} · ${sizeLabel(a.size)} · `, time(a.uploaded_at)),
                h(
                  "button",
                  {
                    type: "button",
                    class: "secondary small",
                    "aria-label": `Download ${a.filename}`,
                    onclick: async (e) => {
                      const b = e.currentTarget;
                      b.disabled = true;
                      try {
                        saveBlob(await download(`/api/attachments/${a.id}`), a.filename);
                      } catch (err) {
                        error.show(err);
                      } finally {
                        b.disabled = false;
                      }
                    },
                  },
                  "Download",
                ),
                IMAGE_TYPES.includes(a.content_type)
                  ? h("button", {
                    type: "button",
                    class: "secondary small",
                    "aria-label": `View ${a.filename}`,
                    "data-attachment-id": a.id,
                    onclick: () => {
                      viewerTitle.textContent = a.filename;
                      viewerBox.hidden = false;
                      viewer.show(blankView(a.id));
                      viewer.canvas.focus();
                    },
                  }, "View")
                  : null,
              ),
            )
          : h("li", { class: "muted" }, "No attachments."),
      );
    };
    // Images open in the viewer here (zoom, pan, window, frames, a ruler in mm).
    const viewer = createViewer({ label: "Image viewer" });
    const viewerTitle = h("h3", { id: "viewer-title" });
    const viewerBox = h("div", { id: "case-viewer", hidden: true }, viewerTitle, viewer.el,
      h("button", { type: "button", class: "secondary small", onclick: () => { viewerBox.hidden = true; viewer.show(null); } }, "Close viewer"));
    section.append(viewerBox);
    await showAttachments();
    if (mayChange && c.state !== "withdrawn" && c.state !== "deferred") {
      const input = h("input", { type: "file", multiple: true, accept: "image/png,image/jpeg,application/pdf,.dcm,application/dicom,text/plain" });
      const f = field("Add attachments", input, "PNG, JPEG, DICOM, PDF or text, up to 25 MB each.");
      const bars = h("ul", { class: "uploads" });
      const go = h("button", { type: "button", class: "secondary" }, "Upload");
      go.addEventListener("click", async () => {
        const files = [...input.files];
        if (!files.length) {
          f.setError("Choose a file first.");
          input.focus();
          return;
        }
        f.setError(null);
        go.disabled = true;
        fill(bars);
        for (const [i, file] of files.entries()) {
          const bar = h("progress", { id: `up-${i}`, max: 1, value: 0 });
          const state = h("span", { class: "upload-state" }, "Uploading…");
          bars.append(h("li", {}, h("label", { for: `up-${i}` }, file.name), bar, state));
          try {
            await upload(`/api/cases/${c.id}/attachments`, file, (x) => (bar.value = x));
            state.textContent = "Uploaded";
            state.className = "upload-state done";
          } catch (err) {
            state.textContent = `Not uploaded: ${explain(err)}`;
            state.className = "upload-state error";
          }
        }
        go.disabled = false;
        input.value = "";
        await showAttachments();
      });
      section.append(f, bars, go);
    }
    parts.push(section);
  }

  // Outcome.
  const outcome = await api(`/api/cases/${c.id}/outcome`).catch(() => null);
  parts.push(outcomeSection(outcome, user));

  // The letter to the referrer, once an outcome is signed.
  if (identified && outcome?.current?.signed_at) {
    try {
      const letter = await api(`/api/cases/${c.id}/outcome/letter`);
      parts.push(
        h(
          "section",
          { class: "card", "aria-labelledby": "letter-h" },
          h("h2", { id: "letter-h" }, "Outcome letter"),
          h("p", {}, h("strong", {}, "Subject: "), letter.subject),
          h("pre", { class: "letter", tabindex: "0", "aria-label": "Outcome letter text" }, letter.body),
        ),
      );
    } catch {
      /* no letter yet (or not available to this viewer) */
    }
  }

  // The GP and patient letters made at signing (and at each amendment), with where each
  // copy went and the PDF. Trainees never see this section (the server refuses them).
  if (identified && user.role !== "trainee") {
    const letters = await api(`/api/cases/${c.id}/letters`).catch(() => null);
    if (letters?.length) {
      parts.push(
        h(
          "section",
          { class: "card", id: "letters", "aria-labelledby": "letters-h" },
          h("h2", { id: "letters-h" }, "Letters"),
          h("p", { class: "hint" }, "Made from the signed outcome: the clinic letter to the GP (copied to the referrer) and the patient's plain-language letter. An amendment makes new letters; the old ones stay readable."),
          h("ul", { class: "letters" }, letters.map((l) => letterItem(l, (err) => error.show(err)))),
        ),
      );
    }
  }

  // Mentorship: the flag that puts the case on its arm's backlog.
  const mentorship = await mentorshipSection(c, user, session, error);
  if (mentorship) parts.push(mentorship);

  // The FHIR export, for those who see the patient (it identifies them).
  if (identified) {
    const exportButton = h("button", { type: "button", class: "secondary", id: "export-fhir" }, "Export FHIR");
    exportButton.addEventListener("click", async () => {
      error.show(null);
      exportButton.disabled = true;
      try {
        saveBlob(await download(`/api/cases/${c.id}/fhir`), `case-${c.id}.fhir.json`);
      } catch (err) {
        error.show(err);
      } finally {
        exportButton.disabled = false;
      }
    });
    parts.push(
      h(
        "section",
        { class: "card", "aria-labelledby": "export-h" },
        h("h2", { id: "export-h" }, "Export"),
        h("p", {}, "Download the case and its latest outcome as a FHIR R4 bundle (JSON) for another clinical system. It identifies the patient: keep it within NHS systems. Exports are audited."),
        exportButton,
      ),
    );
  }

  // Withdrawal, before discussion.
  if (mayChange && ["awaiting_triage", "returned", "booked", "listed"].includes(c.state)) {
    const withdraw = h("button", { type: "button", class: "danger", id: "withdraw" }, "Withdraw case");
    withdraw.addEventListener("click", async () => {
      if (!confirm(`Withdraw the case of ${patientName(c)}${session ? ` from ${session.title}` : ""}? Its place is freed for another patient.`)) return;
      withdraw.disabled = true;
      try {
        await api(`/api/cases/${c.id}`, { method: "DELETE" });
        await render(main, ctx);
        const s = main.querySelector("#case-status");
        s.textContent = "The case has been withdrawn.";
        s.hidden = false;
      } catch (err) {
        error.show(err);
        withdraw.disabled = false;
      }
    });
    parts.push(
      h(
        "section",
        { class: "card", "aria-labelledby": "withdraw-h" },
        h("h2", { id: "withdraw-h" }, "Withdraw"),
        h("p", {}, "Withdraw the case if the patient no longer needs the MDT. You can do this until the meeting discusses it."),
        withdraw,
      ),
    );
  }
  parts.push(h("p", {}, h("a", { href: user.role === "trainee" ? "#/schedule" : "#/cases" }, user.role === "trainee" ? "Back to the schedule" : "Back to my cases")));
  if (here()) fill(main, parts);
}

/**
 * The case's mentorship flag, with a toggle for those who may flag it (the referrer,
 * consultants of the specialty, coordinators). Null when there is nothing to show.
 */
async function mentorshipSection(c, user, session, error) {
  const specialty = session?.specialty;
  const mayFlag =
    user.role === "coordinator" ||
    (c.referrer_id && c.referrer_id === user.id) ||
    (user.role === "consultant" && specialty && (user.specialties || []).includes(specialty));
  // `{flagged: false}` when the case is not on the backlog; on any error, show nothing.
  let flag = await api(`/api/cases/${c.id}/mentorship-flag`).catch(() => null);
  if (!flag) return null;
  if (!mayFlag && !flag.flagged) return null;
  if (c.state === "withdrawn" && !flag.flagged) return null;

  const state = h("p", { id: "mentorship-state" });
  const button = h("button", { type: "button", id: "mentorship-flag", class: "secondary" });
  const note = h("p", { id: "mentorship-note", role: "status", class: "sr-only" });
  const show = () => {
    if (flag?.flagged) {
      fill(state, h("span", { class: "tag flagged" }, "flagged"), ` On the ${humanise(flag.specialty)} mentorship backlog since ${dayText(flag.flagged_on)}, until a consultant logs mentorship that discusses it.`);
    } else if (flag?.cleared_on) {
      fill(state, `Not flagged. It last left the mentorship backlog on ${dayText(flag.cleared_on)}.`);
    } else {
      fill(state, "Not flagged for mentorship.");
    }
    button.textContent = flag?.flagged ? "Remove mentorship flag" : "Flag for mentorship";
  };
  button.addEventListener("click", async () => {
    error.show(null);
    button.disabled = true;
    try {
      const wasFlagged = Boolean(flag?.flagged);
      flag = await api(`/api/cases/${c.id}/mentorship-flag`, { method: wasFlagged ? "DELETE" : "POST" });
      show();
      note.textContent = wasFlagged ? "Mentorship flag removed." : "Flagged for mentorship.";
    } catch (err) {
      error.show(err.code === "not_flagged" ? "The case was no longer flagged." : err);
      if (err.code === "not_flagged") {
        flag = null;
        show();
      }
    } finally {
      button.disabled = false;
    }
  });
  show();
  return h(
    "section",
    { class: "card", id: "mentorship", "aria-labelledby": "mentorship-h" },
    h("h2", { id: "mentorship-h" }, "Mentorship"),
    h("p", { class: "hint" }, "Flag a case you would like a consultant to go through with you (or a colleague) in mentorship."),
    state,
    mayFlag ? button : null,
    note,
  );
}

/**
 * Who signed an outcome version: the server names the signer to everyone who sees the
 * outcome (`signed_by_name`); without that field, only one's own signature is known.
 */
function signerOf(v, user) {
  if (!v.signed_at) return null;
  if (v.signed_by_name !== undefined) return v.signed_by_name || null;
  return v.signed_by && v.signed_by === user.id ? user.name : null;
}

/** The current outcome (full or summary) and its version history. */
function outcomeSection(outcome, user) {
  const section = h("section", { class: "card outcome", "aria-labelledby": "outcome-h" }, h("h2", { id: "outcome-h" }, "Outcome"));
  const v = outcome?.current;
  if (!v) {
    section.append(h("p", { class: "muted" }, "No outcome has been recorded yet."));
    return section;
  }
  const signed = Boolean(v.signed_at);
  const by = signerOf(v, user) ? ` by ${signerOf(v, user)}` : "";
  section.append(
    h(
      "p",
      {},
      h("span", { class: `tag ${signed ? "signed" : "draft"}` }, signed ? "signed" : "draft"),
      " ",
      signed ? ["Signed", by, " ", time(v.signed_at)] : ["Draft, last saved ", time(v.updated_at)],
      v.version > 1 ? ` · version ${v.version}` : "",
    ),
  );
  if (v.amendment_reason || v.amended) {
    section.append(h("p", { class: "notice" }, h("strong", {}, "Amended. "), v.amendment_reason ? `Reason: ${v.amendment_reason}` : "This version corrects an earlier signed outcome."));
  }
  const body = v.body;
  const summary = v.summary;
  const investigations = body ? body.investigations : summary.investigations;
  const referrals = body ? body.referrals : summary.referrals;
  const followUp = body ? body.follow_up : summary.follow_up;

  section.append(h("h3", {}, "Investigations"));
  section.append(
    investigations.length
      ? h(
          "ul",
          {},
          investigations.map((i) =>
            h("li", {}, h("strong", {}, INVESTIGATIONS[i.kind] || humanise(i.kind)), i.site ? ` · ${i.site}` : "", ` · ${humanise(i.urgency)}`, i.notes ? h("div", { class: "muted prose" }, i.notes) : null),
          ),
        )
      : h("p", { class: "muted" }, "None."),
  );
  section.append(h("h3", {}, "Referrals"));
  section.append(
    referrals.length
      ? h(
          "ul",
          {},
          referrals.map((r) => h("li", {}, h("strong", {}, DESTINATIONS[r.destination] || humanise(r.destination)), ` · ${humanise(r.urgency)}`, r.reason ? h("div", { class: "muted prose" }, r.reason) : null)),
        )
      : h("p", { class: "muted" }, "None."),
  );
  section.append(h("h3", {}, "Management plan"));
  if (body) {
    const plan = body.management_plan || {};
    if (plan.text) section.append(h("p", { class: "prose" }, plan.text));
    if (plan.items?.length) section.append(h("ul", {}, plan.items.map((x) => h("li", {}, x))));
  } else {
    section.append(h("p", { class: "muted" }, `${summary.plan_items} structured item${summary.plan_items === 1 ? "" : "s"} (details are not shown to trainees).`));
  }
  section.append(h("h3", {}, "Follow-up"));
  let follow = "None.";
  if (followUp?.kind === "review") follow = `Review in clinic in ${followUp.weeks} week${followUp.weeks === 1 ? "" : "s"}.`;
  if (followUp?.kind === "re_discuss") follow = `Discuss again at a later MDT${followUp.reason ? `: ${followUp.reason}` : "."}`;
  section.append(h("p", {}, follow));

  const versions = outcome.versions || [];
  if (versions.length > 1) {
    section.append(
      h("h3", {}, "Versions"),
      h(
        "ol",
        { class: "versions" },
        versions.map((x) =>
          h("li", {}, `Version ${x.version}: `, x.signed_at ? ["signed ", signerOf(x, user) ? `by ${signerOf(x, user)} ` : "", time(x.signed_at)] : "draft", x.amendment_reason ? ` — amended: ${x.amendment_reason}` : x.amended ? " — amended" : ""),
        ),
      ),
    );
  }
  return section;
}

/**
 * Editing a returned booking: its details prefilled (the referral date kept, so the
 * patient's clock keeps its start), saved with PUT, then sent back to triage.
 */
function resubmitForm(c, rules, ctx, main) {
  const open = h("button", { type: "button", id: "edit-resubmit" }, "Edit and resubmit");
  const holder = h("div", { id: "resubmit-holder" });
  open.addEventListener("click", () => {
    open.hidden = true;
    const form = checkedForm();
    const details = caseDetails(form, { rules, initial: c });
    const alert = errorBox("resubmit-error");
    const submit = h("button", { type: "submit", id: "resubmit-submit" }, "Save and resubmit");
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const heading = h("h2", { id: "resubmit-h", tabindex: "-1" }, "Edit and resubmit");
    const el = h("form", { id: "resubmit-form", class: "card", novalidate: true, "aria-labelledby": "resubmit-h" },
      heading,
      h("p", { class: "hint" }, "Change what triage asked for. The patient's details cannot be changed here; the date the referral was received keeps the patient's waiting-time clock."),
      details.clinical, details.proforma, alert,
      h("div", { class: "actions" }, submit, cancel));
    cancel.addEventListener("click", () => {
      fill(holder);
      open.hidden = false;
      open.focus();
    });
    el.addEventListener("submit", async (event) => {
      event.preventDefault();
      alert.show(null);
      if (submit.disabled) return;
      if (!form.checkAll()) return alert.show("Some answers need correcting: see the highlighted fields.");
      const saved = await busy(submit, "Saving…", async () => {
        try {
          await api(`/api/cases/${c.id}`, { method: "PUT", body: { ...details.body(), red_flags: [] } });
        } catch (err) {
          if (details.showServerError(err)) alert.show("The server refused the changes: see the highlighted field.");
          else alert.show(err);
          return false;
        }
        try {
          await api(`/api/cases/${c.id}/resubmit`, { method: "POST" });
        } catch (err) {
          alert.show(`Your changes were saved, but the case could not be resubmitted: ${explain(err)}`);
          return false;
        }
        return true;
      });
      if (!saved) return;
      await render(main, ctx);
      const s = main.querySelector("#case-status");
      s.textContent = "Resubmitted: the case waits for triage again.";
      s.hidden = false;
      s.setAttribute("tabindex", "-1");
      s.focus();
    });
    fill(holder, el);
    heading.focus();
  });
  return { open, holder };
}
