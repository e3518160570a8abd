// The activity report page end to end against a fresh demo server (MDT_E2E_URL). Setup
// through the API: the physio books cases into the demo's first rheumatology and spinal
// sessions; the consultant signs outcomes (discharge with an X-ray; an orthopaedic
// referral with an MRI and a re-discussion, which books a follow-up case; a pain-clinic
// referral), one case is withdrawn and one moved to January. Then the coordinator runs
// the report over the next three months (KPI cards, charts and tables match the API) and
// downloads the identified CSV; the consultant's CSV carries no NHS number; a
// practitioner has no Reports page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { apiAs, as, assertClean, bookAccepted, launch, nhsNumber, screenshotBoth } from "./lib.mjs";

const DEMO_NHS = ["9912003888", "9449305552", "9434765919"];
const spaced = (n) => `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`;
const ukDay = (d = new Date()) =>
  new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/London", year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
const plusDays = (s, n) => {
  const d = new Date(`${s}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
};

function unlabelled(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("main input, main select, main textarea, main button")]
      .filter((el) => el.type !== "hidden")
      .filter((el) => (el.tagName === "BUTTON" ? !el.textContent.trim() : !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby")))
      .map((el) => el.outerHTML.slice(0, 160)),
  );
}

async function basics(page, name) {
  assert.deepEqual(await unlabelled(page), [], `${name}: every control has a label`);
  assert.equal(await page.locator("h1").count(), 1, `${name}: one h1`);
  assert.equal(await page.locator("main [style]").count(), 0, `${name}: no style attributes`);
  for (const chart of await page.locator("main svg.chart").all()) {
    assert.equal(await chart.getAttribute("role"), "img", `${name}: a chart is an image`);
    assert.ok((await chart.getAttribute("aria-label"))?.length > 20, `${name}: a chart has a text alternative`);
  }
}

/** Opens Reports and shows the window through the form. */
async function showWindow(page, from, to, specialty = "") {
  await page.goto("/#/reports");
  await page.waitForSelector("#report-form");
  await page.fill("#report-form-from", from);
  await page.fill("#report-form-to", to);
  await page.selectOption("#report-specialty", specialty);
  const answered = page.waitForResponse((r) => r.url().includes(`/api/reports/activity?from=${from}&to=${to}`) && r.ok());
  await page.click("#report-form button[type=submit]");
  await answered;
  await page.waitForFunction(() => !document.querySelector("#report-form button[type=submit]").disabled);
}

async function downloadCsv(page, viaKeyboard = false) {
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    viaKeyboard ? page.focus("#download-csv").then(() => page.keyboard.press("Enter")) : page.click("#download-csv"),
  ]);
  const text = await readFile(await download.path(), "utf8");
  await page.waitForSelector("#csv-status:not([hidden])");
  return { name: download.suggestedFilename(), text };
}

test("the activity report: KPIs, charts, tables and the CSV by role", async () => {
  // ---- Setup through the API -------------------------------------------------------------
  const coordinatorApi = await apiAs("coordinator");
  const physioApi = await apiAs("practitioner");
  const consultantApi = await apiAs("consultant");
  const sessions = (await coordinatorApi("/api/sessions")).sort((a, b) => a.starts_at.localeCompare(b.starts_at));
  const rheum = sessions.filter((s) => s.specialty === "rheumatology");
  const spinal = sessions.find((s) => s.specialty === "spinal");
  const [first, second] = rheum;
  // More than six weeks from today, so a case moved there and discussed misses the KPI.
  const later = rheum.find((s) => Date.parse(s.starts_at) > Date.now() + 45 * 86400000);
  assert.ok(first && second && later && spinal, "the demo has rheumatology and spinal sessions");

  const booked = [];
  const book = async (session, stem, site) => {
    // Accepted from triage onto the agenda, as a chair or coordinator would.
    const c = await bookAccepted(physioApi, session.id, {
      patient: { nhs_number: nhsNumber(stem), given_name: "Report", family_name: `Patient${stem % 1000}`, date_of_birth: "1971-05-09", sex: "female", gp_practice_code: "A81001" },
      clinical_question: "Inflammatory arthritis or mechanical pain: what next?",
      history: "Morning stiffness for six weeks.",
      urgency: "routine",
      red_flags: [],
      body_site: site,
    });
    booked.push(c.patient.nhs_number);
    return c;
  };
  const a = await book(first, 501100200, "knee");
  const b = await book(first, 501100300, "hand");
  const c = await book(first, 501100400, "shoulder");
  const d = await book(first, 501100500, "hip");
  const e = await book(spinal, 501100600, "lower back");
  const sign = async (kase, body) => {
    await consultantApi(`/api/cases/${kase.id}/outcome`, { method: "PUT", body: { investigations: [], referrals: [], management_plan: { text: "As discussed.", items: [] }, ...body } });
    const reason = "Decided from the referral outside the meeting";
    return consultantApi(`/api/cases/${kase.id}/outcome/sign`, { method: "POST", body: { outside_meeting_reason: reason } });
  };
  await sign(a, {
    investigations: [{ kind: "xray", site: "left knee", urgency: "routine" }],
    referrals: [{ destination: "gp_discharge", urgency: "routine", reason: "Manage in primary care." }],
    follow_up: { kind: "none" },
  });
  const signedB = await sign(b, {
    investigations: [{ kind: "mri", site: "right hand", urgency: "routine" }],
    referrals: [{ destination: "orthopaedics", urgency: "routine", reason: "Surgical opinion." }],
    follow_up: { kind: "re_discuss", session_id: second.id, reason: "Review the MRI." },
  });
  assert.ok(signedB.follow_up_case, "a re-discussion books a follow-up case");
  await sign(e, { investigations: [{ kind: "mri", site: "lower back", urgency: "routine" }], referrals: [{ destination: "pain_clinic", urgency: "routine", reason: "Injection." }], follow_up: { kind: "none" } });
  await physioApi(`/api/cases/${c.id}`, { method: "DELETE" });
  const moved = await physioApi(`/api/cases/${d.id}/move`, { method: "POST", body: { session_id: later.id } });
  await sign(moved, { referrals: [{ destination: "rheumatology", urgency: "routine", reason: "Clinic review." }], follow_up: { kind: "none" } });

  // The window: the next three months, which holds the demo's sessions.
  const from = ukDay();
  const to = plusDays(from, 92);
  const report = await coordinatorApi(`/api/reports/activity?from=${from}&to=${to}`);
  const total = (s) => report.totals.find((t) => t.specialty === s);
  assert.equal(total("rheumatology").cases.withdrawn, 1);
  assert.equal(total("rheumatology").cases.deferred, 1);
  assert.equal(total("rheumatology").outcomes.signed, 3);
  assert.ok(total("rheumatology").days_to_discussion.within_6_weeks_percent < 90, "the moved case misses the 6-week KPI");
  const allBooked = report.totals.reduce((n, t) => n + t.cases.booked, 0);

  const browser = await launch();
  try {
    // ---- The coordinator ---------------------------------------------------------------------
    const coordinator = await as(browser, "coordinator");
    assert.equal(await coordinator.locator('#nav a[href="#/reports"]').count(), 1, "coordinators have Reports in the nav");
    // Too long a window: the server's refusal in words.
    await coordinator.goto("/#/reports");
    await coordinator.waitForSelector("#report-form");
    await coordinator.fill("#report-form-from", "2023-01-01");
    await coordinator.fill("#report-form-to", to);
    await coordinator.expectConsole(/status of 422/, "a window over two years is refused with 422, which Chromium logs", async () => {
      await coordinator.click("#report-form button[type=submit]");
      await coordinator.waitForSelector("#report-form-error:not([hidden])");
      assert.match(await coordinator.textContent("#report-form-error"), /at most two years/);
    });
    assert.deepEqual(coordinator.problems, [], "nothing else was logged");
    assert.equal(coordinator.excused.length, 1, "the refusal was logged once");

    await showWindow(coordinator, from, to);
    await coordinator.waitForSelector('section[data-specialty="rheumatology"] dl.kpis');
    await basics(coordinator, "coordinator reports");
    for (const t of report.totals) {
      const sec = `section[data-specialty="${t.specialty}"]`;
      if (!t.cases.booked && !t.sessions.total) continue;
      assert.equal((await coordinator.textContent(`${sec} [data-kpi=booked] dd.value`)).trim(), String(t.cases.booked), `${t.specialty}: booked card`);
      assert.equal((await coordinator.textContent(`${sec} [data-kpi=discussed] dd.value`)).trim(), String(t.cases.discussed), `${t.specialty}: discussed card`);
      for (const m of report.months.filter((x) => x.specialty === t.specialty)) {
        const cells = await coordinator.locator(`${sec} table.monthly tr[data-month="${m.month}"] td`).allTextContents();
        assert.deepEqual(cells.slice(0, 5).map(Number), [m.cases.booked, m.cases.discussed, m.cases.deferred, m.cases.withdrawn, m.cases.pending], `${t.specialty} ${m.month}: table row`);
      }
      const foot = await coordinator.locator(`${sec} table.monthly tfoot td`).allTextContents();
      assert.equal(Number(foot[0]), t.cases.booked, `${t.specialty}: total row`);
      const label = await coordinator.locator(`${sec} .monthly-chart svg.chart`).getAttribute("aria-label");
      assert.match(label, new RegExp(`${t.cases.booked === 0 ? "0" : "\\d+"} booked`));
    }
    const rheumSec = 'section[data-specialty="rheumatology"]';
    const rt = total("rheumatology");
    // The chart's bars: one booked and one discussed per month.
    const months = report.months.filter((m) => m.specialty === "rheumatology").length;
    assert.equal(await coordinator.locator(`${rheumSec} .monthly-chart .booked rect`).count(), months);
    // The outcome mix: discharge, orthopaedics, X-ray and MRI, one re-discussion.
    const mix = Object.fromEntries(
      (await coordinator.locator(`${rheumSec} table.outcomes tbody tr`).allInnerTexts()).map((r) => {
        const [k, v] = r.split("\t");
        return [k.trim(), Number(v)];
      }),
    );
    assert.equal(mix["Discharged to GP"], rt.outcomes.discharged_to_gp);
    assert.equal(mix["Referred: Orthopaedics"], rt.outcomes.referrals.orthopaedics);
    assert.equal(mix["Investigation: MRI"], rt.outcomes.investigations.mri);
    assert.equal(mix["Investigation: X-ray"], rt.outcomes.investigations.xray);
    assert.equal(mix["Re-discuss at a later MDT"], rt.outcomes.re_discuss);
    assert.equal(rt.outcomes.re_discuss, 1);
    // The 6-week KPI: rheumatology below the 90% target (highlighted), spinal meets it.
    const six = `${rheumSec} [data-kpi=six-weeks]`;
    assert.equal(await coordinator.getAttribute(six, "class"), "kpi below");
    assert.equal((await coordinator.textContent(`${six} dd.value`)).trim(), `${rt.days_to_discussion.within_6_weeks_percent.toFixed(1)}%`);
    assert.match(await coordinator.textContent(six), /below the 90% target/);
    assert.equal(await coordinator.getAttribute('section[data-specialty="spinal"] [data-kpi=six-weeks]', "class"), "kpi met");
    assert.equal((await coordinator.textContent(`${rheumSec} [data-kpi=days] dd.value`)).trim(), `${rt.days_to_discussion.median} days`);
    assert.match(await coordinator.textContent("#csv-identified"), /patient identifiers/);
    await screenshotBoth(coordinator, "reports");

    const csv = await downloadCsv(coordinator);
    assert.equal(csv.name, `mdt-activity-${from}-${to}.csv`);
    const lines = csv.text.split(/\r\n/).filter(Boolean);
    assert.equal(lines.length - 1, allBooked, "one row per case");
    assert.ok(lines[0].split(",").includes("nhs_number"), "the coordinator's CSV has the NHS number column");
    for (const n of booked) assert.ok(csv.text.includes(n), `the coordinator's CSV has ${n}`);
    assert.match(await coordinator.textContent("#csv-status"), /audit trail/);
    assert.deepEqual(coordinator.problems, [], "coordinator: no page errors");

    // ---- The consultant: the same window, a CSV without identifiers (by keyboard). --------
    const consultant = await as(browser, "consultant");
    assert.equal(await consultant.locator('#nav a[href="#/reports"]').count(), 1, "consultants have Reports in the nav");
    await showWindow(consultant, from, to);
    await consultant.waitForSelector('section[data-specialty="rheumatology"] dl.kpis');
    await basics(consultant, "consultant reports");
    assert.match(await consultant.textContent("#csv-identified"), /no patient identifiers/);
    const own = await consultant.locator(`${rheumSec} [data-kpi=booked] dd.value`).textContent();
    assert.equal(own.trim(), String(rt.cases.booked));
    await screenshotBoth(consultant, "reports-consultant");
    const plain = await downloadCsv(consultant, true);
    assert.equal(plain.name, `mdt-activity-${from}-${to}.csv`);
    assert.equal(plain.text.split(/\r\n/).filter(Boolean).length - 1, allBooked, "one row per case");
    assert.ok(!plain.text.split(/\r\n/)[0].includes("nhs_number"), "no NHS number column");
    for (const n of [...booked, ...DEMO_NHS]) {
      assert.ok(!plain.text.includes(n) && !plain.text.includes(spaced(n)), `the consultant's CSV has no ${n}`);
    }
    assert.ok(!/Report|Patient\d/.test(plain.text), "no patient names");
    // One specialty only.
    await showWindow(consultant, from, to, "spinal");
    await consultant.waitForSelector('section[data-specialty="spinal"] dl.kpis');
    assert.equal(await consultant.locator("section.report-specialty").count(), 1);
    assert.deepEqual(consultant.problems, [], "consultant: no page errors");

    // ---- A practitioner has no Reports page. ------------------------------------------------
    const physio = await as(browser, "practitioner");
    assert.equal(await physio.locator('#nav a[href="#/reports"]').count(), 0, "no Reports in a practitioner's nav");
    await physio.goto("/#/reports");
    await physio.waitForSelector("main .error");
    assert.match(await physio.textContent("main"), /do not have access/);
    assert.deepEqual(physio.problems, [], "practitioner: no page errors");
    assertClean(browser);
  } finally {
    await browser.close();
  }
});
