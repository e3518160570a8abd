// What the services measure (issue 17) in the browser, against a fresh demo server
// (MDT_E2E_URL). Setup through the API: two GP practices named, six spinal referrals from
// three practices with proforma referral dates days to months ago; three accepted into
// the first spinal session, which is moved to now and run by the chair in the meeting
// room (each case started and finished), two accepted into a later session and decided
// outside the meeting, one returned at triage; outcomes signed (MRI, GP discharge,
// onward referrals). In the browser the coordinator adds a waiting-time target for spinal
// on the admin page (a duplicate refused at its row first) and imports list sizes on the
// GP practices page (a bad line refused by its number first, nothing kept), then opens
// the reports page for spinal: the waits from the referral (cards, the distribution by
// week with a line per target, the monthly trend), the practice table with its locality
// median row, the funnel, and a practice's printable summary in a new tab must show what
// the API returns for the same window.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PROFORMA, apiAs, as, assertClean, bookAccepted, launch, nhsNumber, screenshotBoth, startSoon, until } from "./lib.mjs";

const ukDay = (d = new Date()) =>
  new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/London", year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
const plusDays = (s, n) => {
  const d = new Date(`${s}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
};
/** A figure as the page writes it (charts.js num): a dash for none, one decimal unless whole. */
const num = (x, unit = "") => (x === null || x === undefined ? "—" : `${Number.isInteger(x) ? x : x.toFixed(1)}${unit}`);
const days = (x) => `${num(x)} ${x === 1 ? "day" : "days"}`;

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

test("waits from the referral, targets, list sizes and the practices compared", async () => {
  // ---- Setup through the API -------------------------------------------------------------
  const coordinatorApi = await apiAs("coordinator");
  const physioApi = await apiAs("practitioner");
  const consultantApi = await apiAs("consultant");
  const spinal = (await coordinatorApi("/api/sessions")).filter((s) => s.specialty === "spinal").sort((a, b) => a.starts_at.localeCompare(b.starts_at));
  const [meetingSession, laterSession] = spinal;
  assert.ok(meetingSession && laterSession, "the demo has two spinal sessions");
  await coordinatorApi("/api/practices/A81001", { method: "PUT", body: { name: "Riverside Surgery", email: null } });
  await coordinatorApi("/api/practices/B82002", { method: "PUT", body: { name: "Hillview Medical Centre", email: null } });

  const today = ukDay();
  const patients = [];
  const referral = (stem, practice, ago, urgency = "routine") => {
    const nhs = nhsNumber(stem);
    const family = `Waiter${stem % 1000}`;
    patients.push({ nhs, family });
    return {
      patient: { nhs_number: nhs, given_name: "Measure", family_name: family, date_of_birth: "1966-03-14", sex: "male", gp_practice_code: practice },
      clinical_question: "Radicular leg pain: injection, surgery or conservative care?",
      history: "Twelve weeks of leg pain despite physiotherapy.",
      urgency,
      red_flags: [],
      body_site: "lower back",
      referral_received_on: plusDays(today, -ago),
    };
  };
  // Discussed in the meeting today: 12, 3 and 45 days after their referrals.
  const met = [
    await bookAccepted(physioApi, meetingSession.id, referral(601200100, "A81001", 12)),
    await bookAccepted(physioApi, meetingSession.id, referral(601200200, "B82002", 3, "urgent")),
    await bookAccepted(physioApi, meetingSession.id, referral(601200300, "C83003", 45)),
  ];
  // Decided outside the later session: 20 days and 140 days (beyond 18 weeks) before it.
  const outside = [
    await bookAccepted(physioApi, laterSession.id, referral(601200400, "A81001", 20)),
    await bookAccepted(physioApi, laterSession.id, referral(601200500, "B82002", 140)),
  ];
  // Returned at triage as not ready.
  const returned = await physioApi(`/api/sessions/${laterSession.id}/cases`, {
    method: "POST",
    body: { ...PROFORMA, ...referral(601200600, "C83003", 5) },
  });
  await coordinatorApi(`/api/cases/${returned.id}/triage`, { method: "POST", body: { decision: "return", reason: "incomplete_proforma" } });
  const agenda = (await coordinatorApi(`/api/sessions/${meetingSession.id}`)).agenda.map((c) => c.id);
  assert.deepEqual([...agenda].sort(), met.map((c) => c.id).sort(), "the three accepted cases are the meeting's agenda");
  await startSoon(meetingSession.id);

  const outcome = (investigations, destinations) => ({
    investigations: investigations.map((kind) => ({ kind, site: "lumbar spine", urgency: "routine" })),
    referrals: destinations.map((destination) => ({ destination, urgency: "routine", reason: "Next step after the MDT." })),
    management_plan: { text: "As discussed.", items: [] },
    follow_up: { kind: "none" },
  });
  const sign = async (kase, body, reason) => {
    await consultantApi(`/api/cases/${kase.id}/outcome`, { method: "PUT", body });
    return consultantApi(`/api/cases/${kase.id}/outcome/sign`, { method: "POST", body: reason ? { outside_meeting_reason: reason } : {} });
  };

  const browser = await launch();
  try {
    // ---- The chair runs the meeting: each case started and finished. -----------------------
    const chair = await as(browser, "consultant");
    chair.on("dialog", (d) => d.accept());
    await chair.goto(`/#/meeting/${meetingSession.id}`);
    await chair.waitForSelector("#agenda li[data-case-id]");
    await chair.click("#open-meeting");
    await chair.waitForSelector("#meeting-state:text('live')");
    const order = await chair.$$eval("#agenda li[data-case-id]", (lis) => lis.map((li) => li.dataset.caseId));
    for (const id of order) {
      await chair.click("#next-case");
      await chair.waitForSelector(`#agenda li.current[data-case-id="${id}"]`);
    }
    await chair.click("#next-case");
    await chair.waitForSelector("#agenda-done");
    await chair.click("#close-meeting");
    await chair.waitForSelector("#meeting-state:text('closed')");
    await chair.close();

    await sign(met[0], outcome(["mri"], ["orthopaedics"]));
    await sign(met[1], outcome([], ["gp_discharge"]));
    await sign(met[2], outcome(["mri"], ["pain_clinic"]));
    const reason = "Decided from the referral and imaging outside the meeting";
    await sign(outside[0], outcome([], ["physiotherapy"]), reason);
    await sign(outside[1], outcome(["mri"], ["gp_discharge"]), reason);

    const coordinator = await as(browser, "coordinator");

    // ---- Admin: a waiting-time target for spinal (a duplicate is refused at its row). ----
    await coordinator.goto("/#/admin");
    await coordinator.waitForSelector("#targets-form");
    await coordinator.selectOption("#targets-specialty", "spinal");
    await coordinator.waitForSelector("#targets-body:not([hidden]) .target-row");
    const defaults = (await coordinatorApi("/api/specialties/spinal/targets")).targets;
    assert.equal(await coordinator.locator(".target-row").count(), defaults.length, "the editor shows the specialty's targets");
    await coordinator.click("#target-add");
    const added = coordinator.locator(".target-row").last();
    // The new row starts as the 6-week target, which is already there: refused at its row.
    await coordinator.expectConsole(/status of 422/, "a duplicate target is refused with 422, which Chromium logs", async () => {
      await coordinator.click("#targets-submit");
      await added.locator(".target-error:not([hidden])").waitFor();
    });
    assert.match(await added.locator(".target-error").textContent(), new RegExp(`^Target ${defaults.length + 1}: .*same as another target`));
    await added.locator("input[name=within_days]").fill("28");
    await added.locator("input[name=target_percent]").fill("80");
    assert.equal((await added.locator(".target-words").textContent()).trim(), "Discussed within 4 weeks (28 days): 80% of the cases.");
    await coordinator.click("#targets-submit");
    await coordinator.waitForSelector("#admin-status:not([hidden])");
    assert.match(await coordinator.textContent("#admin-status"), new RegExp(`targets saved for Spinal: ${defaults.length + 1} targets`));
    const targets = (await coordinatorApi("/api/specialties/spinal/targets")).targets;
    assert.deepEqual(targets.at(-1), { measure: "referral_to_discussion", urgency: "any", within_days: 28, day_kind: "calendar", target_percent: 80 });
    await basics(coordinator, "admin");

    // ---- GP practices: list sizes from a CSV (a bad line refuses the whole file). ------------
    await coordinator.goto("/#/practices");
    await coordinator.waitForSelector("#list-sizes-form");
    assert.match(await coordinator.textContent("#list-sizes"), /No list sizes imported yet/);
    await coordinator.fill("#list-sizes-text", "ods_code,list_size\nA81001,8200\nB82002,lots\n");
    await coordinator.expectConsole(/status of 422/, "a bad list-size line is refused with 422, which Chromium logs", async () => {
      await coordinator.click("#list-sizes-import");
      await coordinator.waitForSelector("#list-sizes-text-error:not([hidden])");
    });
    assert.match(await coordinator.textContent("#list-sizes-text-error"), /^Line 3: .*Nothing was imported/);
    assert.deepEqual((await coordinatorApi("/api/practices/list-sizes")).list_sizes, [], "nothing was kept");
    await coordinator.fill("#list-sizes-text", "ods_code,list_size\nA81001,8200\nB82002,12000\n");
    await coordinator.click("#list-sizes-import");
    await coordinator.waitForSelector("#list-sizes-status:not([hidden])");
    assert.equal(await coordinator.textContent("#list-sizes-status"), "Imported the list sizes of 2 practices.");
    await coordinator.waitForSelector('#list-sizes tr[data-ods="B82002"]');
    const sizeRows = await coordinator.locator("#list-sizes tbody tr").allInnerTexts();
    assert.deepEqual(sizeRows.map((r) => r.split("\t").slice(0, 3)), [["A81001", "Riverside Surgery", "8,200"], ["B82002", "Hillview Medical Centre", "12,000"]]);
    await basics(coordinator, "GP practices");
    await screenshotBoth(coordinator, "practices-list-sizes");

    // ---- Reports: what the API says for the same window. -----------------------------------
    const from = today;
    const to = plusDays(today, 92);
    const q = `from=${from}&to=${to}&specialty=spinal`;
    await coordinator.goto("/#/reports");
    await coordinator.waitForSelector("#report-form");
    await coordinator.fill("#report-form-from", from);
    await coordinator.fill("#report-form-to", to);
    await coordinator.selectOption("#report-specialty", "spinal");
    const summaryRequests = [];
    coordinator.on("request", (r) => r.url().includes("/summary") && summaryRequests.push({ url: r.url(), auth: r.headers().authorization || "" }));
    const answered = coordinator.waitForResponse((r) => r.url().includes(`/api/reports/practices?${q}`) && r.ok());
    await coordinator.click("#report-form button[type=submit]");
    await answered;
    // Shown once Show is enabled again (the period's report has replaced the quarter's).
    await coordinator.waitForFunction(() => !document.querySelector("#report-form button[type=submit]").disabled);
    const report = await coordinatorApi(`/api/reports/activity?${q}`);
    const practices = await coordinatorApi(`/api/reports/practices?${q}`);
    const total = report.totals.find((t) => t.specialty === "spinal");
    const waits = total.referral_waits;
    const d = waits.referral_to_discussion;
    // What was seeded: five decided waits, 3, 12, 45 days (today) and two before the later session.
    assert.equal(d.measured, 5, "five waits to discussion");
    assert.equal(waits.referral_to_triage.measured, 6, "six triage decisions from the referral");
    assert.equal(d.targets.length, 5, "the spinal targets judge the waits");
    await basics(coordinator, "reports");

    const sec = 'section[data-specialty="spinal"] [data-testid="waiting-times"]';
    // The cards: median, 90th percentile, measured and from booking, each target's verdict.
    for (const [key, w] of Object.entries(waits)) {
      const card = `${sec} .wait-card[data-wait="${key}"]`;
      const figure = async (name) => (await coordinator.textContent(`${card} [data-figure="${name}"] dd`)).trim();
      assert.equal(await figure("median"), days(w.median_days), `${key}: median`);
      assert.equal(await figure("p90"), days(w.p90_days), `${key}: 90th percentile`);
      assert.equal(await figure("measured"), String(w.measured), `${key}: measured`);
      assert.equal(await figure("from-booking"), String(w.counted_from_booking), `${key}: counted from booking`);
      const items = coordinator.locator(`${card} ul.targets li`);
      assert.equal(await items.count(), w.targets.length, `${key}: one line per target`);
      for (const [i, t] of w.targets.entries()) {
        const verdict = t.met === null ? "none" : t.met ? "met" : "below";
        assert.equal(await items.nth(i).getAttribute("class"), `target ${verdict}`, `${key} target ${i}: ${verdict}`);
        if (t.cases) assert.match(await items.nth(i).textContent(), new RegExp(`\\(${t.within} of ${t.cases}\\) · ${t.met ? "meets" : "below"} the ${t.target_percent}% target`));
      }
    }

    // The distribution: one bar per week with the API's counts, a bar drawn where there are cases.
    const chart = coordinator.locator(`${sec} svg[data-testid="waiting-chart"]`);
    assert.ok(await chart.isVisible(), "the waiting-time chart is shown");
    const bars = await chart.locator("g.week rect").evaluateAll((rects) => rects.map((r) => ({ cases: Number(r.dataset.cases), x: Number(r.getAttribute("x")), height: Number(r.getAttribute("height")) })));
    assert.deepEqual(bars.map((b) => b.cases), d.weeks, "the bars are the weeks the API counts");
    for (const [k, b] of bars.entries()) assert.equal(b.height > 0, d.weeks[k] > 0, `week ${k}: a bar only where there are cases`);
    const tallest = Math.max(...d.weeks);
    assert.equal(Math.max(...bars.map((b) => b.height)), bars[d.weeks.indexOf(tallest)].height, "the tallest bar is the week with most cases");
    // A line per calendar-day target for all cases, just after its last day.
    const lines = d.targets.filter((t) => t.urgency === "any" && t.day_kind === "calendar");
    assert.equal(lines.length, 3, "6 weeks, 18 weeks and the coordinator's 4 weeks");
    const drawn = await chart.locator('[data-testid="waiting-target-line"]').evaluateAll((ls) => ls.map((l) => ({ within: Number(l.dataset.withinDays), x: Number(l.getAttribute("x1")) })));
    assert.deepEqual(drawn.map((l) => l.within), lines.map((t) => t.within_days), "one line per target");
    for (const line of drawn) {
      const week = Math.floor((line.within + 1) / 7);
      assert.ok(line.x > bars[week].x - 1 && line.x < bars[week + 1].x, `the ${line.within}-day line is in week ${week}`);
    }
    assert.deepEqual(await chart.locator('[data-testid="waiting-target-label"]').allTextContents(), ["6 wk · 90%", "18 wk · 100%", "4 wk · 80%"]);
    // Its table: the same counts.
    const weekCells = await coordinator.locator(`${sec} [data-testid="waiting-table"] tbody tr td:first-of-type`).allTextContents();
    assert.deepEqual(weekCells.map(Number), d.weeks, "the table has the chart's counts");

    // The monthly trend: cases booked and the median per month, with its table.
    const trend = coordinator.locator(`${sec} svg[data-testid="waiting-trend-chart"]`);
    assert.ok(await trend.isVisible(), "the trend chart is shown");
    const months = report.months.filter((m) => m.specialty === "spinal");
    assert.deepEqual(await trend.locator("rect[data-month]").evaluateAll((rs) => rs.map((r) => Number(r.dataset.booked))), months.map((m) => m.cases.booked));
    assert.deepEqual(
      await trend.locator("circle.median-point").evaluateAll((cs) => cs.map((c) => [c.dataset.month, Number(c.dataset.median)])),
      months.filter((m) => m.referral_waits.referral_to_discussion.median_days !== null).map((m) => [m.month, m.referral_waits.referral_to_discussion.median_days]),
    );
    for (const m of months) {
      const cell = await coordinator.textContent(`${sec} [data-testid="waiting-trend-table"] tr[data-month="${m.month}"] [data-figure="median"]`);
      assert.equal(cell, num(m.referral_waits.referral_to_discussion.median_days), `${m.month}: median days in the table`);
    }
    assert.equal(await coordinator.textContent(`${sec} [data-testid="waiting-trend-table"] tr[data-total] [data-figure="median"]`), num(d.median_days));

    // ---- The practices: each row and the locality median as the API gives them. ------------
    const table = coordinator.locator('[data-testid="practice-table"]');
    assert.ok(await table.isVisible(), "the practice table is shown");
    assert.deepEqual(await table.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.ods)), practices.practices.map((p) => p.ods_code));
    for (const code of ["A81001", "B82002", "C83003"]) assert.ok(practices.practices.some((p) => p.ods_code === code), `${code} is compared`);
    const cells = (row) => row.locator("td[data-col]").evaluateAll((tds) => Object.fromEntries(tds.map((td) => [td.dataset.col, td.textContent])));
    const pct = (x) => num(x, "%");
    for (const p of practices.practices) {
      const shown = await cells(table.locator(`tbody tr[data-ods="${p.ods_code}"]`));
      assert.deepEqual(
        shown,
        {
          list_size: p.list_size === null ? "—" : p.list_size.toLocaleString("en-GB"),
          referrals: String(p.referrals),
          referrals_per_1000: num(p.referrals_per_1000),
          returned_percent: pct(p.returned_percent),
          median_days_to_triage: num(p.median_days_to_triage),
          median_days_to_discussion: num(p.median_days_to_discussion),
          within_6_weeks_percent: pct(p.within_6_weeks_percent),
          mri_requested_percent: pct(p.outcomes.mri_requested_percent),
          discharged_to_gp_percent: pct(p.outcomes.discharged_to_gp_percent),
          onward_referral_percent: pct(p.outcomes.onward_referral_percent),
        },
        `${p.ods_code}: its row`,
      );
    }
    const riverside = practices.practices.find((p) => p.ods_code === "A81001");
    assert.equal(riverside.list_size, 8200, "the imported list size is used");
    assert.ok(riverside.referrals_per_1000 > 0, "referrals per 1,000 for a practice with a list size");
    assert.match(await table.locator('tbody tr[data-ods="A81001"] th').textContent(), /A81001Riverside Surgery/);
    const l = practices.locality.median;
    assert.deepEqual(
      await cells(table.locator("tfoot tr[data-locality]")),
      {
        list_size: "—",
        referrals: num(l.referrals),
        referrals_per_1000: num(l.referrals_per_1000),
        returned_percent: pct(l.returned_percent),
        median_days_to_triage: num(l.median_days_to_triage),
        median_days_to_discussion: num(l.median_days_to_discussion),
        within_6_weeks_percent: pct(l.within_6_weeks_percent),
        mri_requested_percent: pct(l.mri_requested_percent),
        discharged_to_gp_percent: pct(l.discharged_to_gp_percent),
        onward_referral_percent: pct(l.onward_referral_percent),
      },
      "the locality median row",
    );
    assert.match(await table.locator("tfoot tr[data-locality] th").textContent(), new RegExp(`^Locality median\\s*of ${practices.locality.practices} practices$`));

    // The funnel: four bars per practice, its table the same.
    const funnel = coordinator.locator('svg[data-testid="practice-funnel-chart"]');
    assert.ok(await funnel.isVisible(), "the funnel chart is shown");
    for (const p of practices.practices) {
      const expected = [p.referrals, p.accepted, p.decided, p.outcomes.signed];
      const counts = await funnel.locator(`g.practice[data-ods="${p.ods_code}"] rect`).evaluateAll((rs) => rs.map((r) => Number(r.dataset.count)));
      assert.deepEqual(counts, expected, `${p.ods_code}: funnel bars`);
      const row = await coordinator.locator(`[data-testid="practice-funnel-table"] tr[data-ods="${p.ods_code}"] td`).allTextContents();
      assert.deepEqual(row.map(Number), expected, `${p.ods_code}: funnel table`);
    }
    await screenshotBoth(coordinator, "reports-measures");

    // ---- A practice's summary: fetched with the token, opened from a blob in a new tab. -----
    const [tab] = await Promise.all([
      coordinator.context().waitForEvent("page"),
      coordinator.click('tr[data-ods="A81001"] button.summary'),
    ]);
    // The summary is styled by /summary.css (the site's Content-Security-Policy forbids
    // inline styles); anything logged in the tab fails the test.
    const tabProblems = [];
    tab.on("console", (m) => m.type() === "error" && tabProblems.push(m.text()));
    tab.on("pageerror", (e) => tabProblems.push(String(e)));
    await tab.waitForURL(/^blob:/);
    await tab.waitForLoadState();
    assert.match(await tab.title(), /Practice summary: Riverside Surgery/);
    await until("the summary's stylesheet", async () => /Arial/.test(await tab.evaluate(() => getComputedStyle(document.body).fontFamily)));
    const text = await tab.textContent("body");
    assert.match(text, /A81001/);
    assert.match(text, /Locality median/);
    for (const { nhs, family } of patients) {
      assert.ok(!text.includes(nhs) && !text.includes(family), "the summary names no patient");
    }
    assert.ok(!tab.url().includes("A81001") && !/token/i.test(tab.url()), "the tab's address holds no identifier or token");
    await until("the summary request", () => summaryRequests.length === 1);
    assert.match(summaryRequests[0].url, new RegExp(`/api/reports/practices/A81001/summary\\?${q}$`));
    assert.ok(!/token/i.test(summaryRequests[0].url) && /^Bearer /.test(summaryRequests[0].auth), "the token goes in the header, not the address");
    assert.deepEqual(tabProblems, [], "nothing else logged in the summary's tab");
    await tab.close();

    assert.deepEqual(coordinator.problems, [], "coordinator: no page errors");
    assertClean(browser);
  } finally {
    await browser.close();
  }
});
