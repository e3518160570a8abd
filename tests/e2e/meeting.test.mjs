// A whole meeting in three browser contexts (chair, presenting practitioner, trainee) on
// the demo's pain teaching session: the agenda moves for everyone, the practitioner's
// screen and everyone's voice go through the SFU, the trainee never sees an identifier,
// the chair signs the outcome, and the practitioner survives 5 s offline.
import { test } from "node:test";
import assert from "node:assert/strict";
import { acceptWaiting, apiAs, assertClean, bookAccepted, demo, inbound, launch, nhsNumber, open, screenshotBoth, signIn, startSoon, until, watchPeerConnections } from "./lib.mjs";

/** A signed-in page per role, each recording its peer connections; `page.role` names it. */
async function signedInPages(browser, roles) {
  const pages = {};
  for (const role of roles) {
    const page = await open(browser);
    page.role = role;
    await watchPeerConnections(page);
    await signIn(page, demo[role]);
    pages[role] = page;
  }
  return pages;
}

const identifiers = (c) => [
  c.patient.nhs_number,
  c.patient.nhs_number.replace(/^(\d{3})(\d{3})(\d{4})$/, "$1 $2 $3"),
  c.patient.given_name,
  c.patient.family_name,
];

/**
 * Presses `selector` on `page` with the mouse, runs `meanwhile` (which makes the page
 * re-render), then lets go: the click must land as if nothing had happened.
 */
async function holdThrough(page, selector, meanwhile) {
  const box = await page.locator(selector).boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await meanwhile();
  await page.mouse.up();
}

test("chair, presenter and trainee hold a meeting", async () => {
  // Setup through the API: the demo's pain teaching session, with a second case booked.
  const coordinator = await apiAs("coordinator");
  const sessions = await coordinator("/api/sessions?specialty=pain");
  const session = sessions.find((s) => s.teaching);
  assert.ok(session, "the demo has a pain teaching session");
  const physioApi = await apiAs("practitioner");
  // Bookings wait for triage: the demo's and this one are accepted onto the agenda.
  await acceptWaiting(session.id);
  await bookAccepted(physioApi, session.id, {
    patient: { nhs_number: nhsNumber(401023456), given_name: "Robin", family_name: "Testcase",
      date_of_birth: "1969-04-02", sex: "male", gp_practice_code: "A81001" },
    clinical_question: "Widespread pain with fatigue: pain management programme or rheumatology review?",
    history: "Seen twice in first-contact clinic; bloods normal.",
    urgency: "routine", red_flags: [], body_site: "widespread",
  });
  const agenda = (await coordinator(`/api/sessions/${session.id}`)).agenda;
  assert.equal(agenda.length, 2);
  // The meeting may be opened from 30 minutes before its start: it is moved to now.
  await startSoon(session.id);
  const secret = agenda.flatMap(identifiers);
  // A name is found as a word ("Jo" must not match inside a random ICE password).
  const shows = (text, s) => new RegExp(`(^|[^A-Za-z0-9])${s}([^A-Za-z0-9]|$)`).test(text);

  const browser = await launch();
  try {
    const pages = await signedInPages(browser, ["consultant", "practitioner", "trainee"]);
    const { consultant: chair, practitioner: physio, trainee } = pages;
    const frames = [];
    trainee.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => frames.push(String(payload))));
    chair.on("dialog", (d) => d.accept());
    // The trainee's hand going up (or down), seen on the chair's page: an event that
    // re-renders it.
    const hand = (state) => async () => {
      await trainee.click("#hand-toggle");
      await chair.waitForSelector(`#participants button[data-key^="lower-"]`, { state });
    };
    const [handUp, handDown] = [hand("attached"), hand("detached")];

    for (const page of Object.values(pages)) {
      await page.goto(`/#/meeting/${session.id}`);
      await page.waitForSelector("#agenda li[data-case-id]");
    }
    const traineeClean = async (when) => {
      const text = await trainee.evaluate(() => document.body.innerText + document.body.innerHTML);
      for (const s of secret) assert.ok(!shows(text, s), `trainee page shows ${s} ${when}`);
    };
    await traineeClean("before the meeting");
    // The header names the specialty as everywhere else ("Pain", not "pain").
    for (const page of Object.values(pages)) assert.match(await page.textContent("#meeting-facts"), /^Pain · /);
    // Each agenda entry is numbered once: by its position for clinicians, by its label
    // ("Case 1 · F · …") for the trainee, never "1. Case 1 · …".
    const titles = (page) => page.$$eval("#agenda .case-title", (els) => els.map((e) => e.textContent));
    for (const t of await titles(trainee)) assert.match(t, /^Case \d+ · /, "the trainee's agenda line");
    assert.deepEqual((await titles(chair)).map((t) => t.slice(0, 3)), ["1. ", "2. "], "the chair's agenda lines");

    // The chair opens the meeting and starts the first case; everyone's agenda follows.
    await chair.click("#open-meeting");
    for (const page of Object.values(pages)) await page.waitForSelector("#meeting-state:text('live')");
    assert.equal(await chair.textContent("#next-case"), "Start first case");
    // The chair is never offered to let themselves present; they may present their own screen.
    await chair.waitForSelector(`button[aria-label="Let Pat Physiotherapist present"]`);
    assert.equal(await chair.locator(`button[aria-label="Let Dr Morgan Consultant present"]`).count(), 0);
    assert.equal(await chair.locator(`#participants button:text("Let present")`).count(), 1, "one 'Let present', for the practitioner");
    assert.ok(await chair.isVisible("#present-self"));
    // The chair's click lands although an event re-renders the page between pressing the
    // button and letting go (here the trainee's hand going up): the page updates the
    // button in place rather than putting a new one where it was.
    await holdThrough(chair, "#next-case", handUp);
    const first = agenda[0].id;
    for (const page of Object.values(pages)) {
      await page.waitForSelector(`#agenda li.current[data-case-id="${first}"]`);
    }
    assert.match(await physio.textContent("#current-case"), new RegExp(agenda[0].patient.family_name));
    await until("the timer to run", async () => /allotted/.test(await physio.textContent("#timer")));
    await handDown();
    await until("the trainee warning", () => chair.isVisible("#trainee-warning"));
    assert.ok(await physio.isVisible("#trainee-warning"), "the presenter is warned trainees are here");

    // The chair lets the practitioner present; they share their screen (the fake display
    // capture) and both others decode frames.
    // A button in a participant's row lands through a re-render too: the rows are kept.
    await holdThrough(chair, `button[aria-label="Let Pat Physiotherapist present"]`, handUp);
    await physio.waitForSelector("#share-toggle");
    await handDown();
    await physio.click("#share-toggle");
    await physio.waitForSelector("#share-toggle:text('Stop sharing')");
    for (const [name, page] of [["chair", chair], ["trainee", trainee]]) {
      const seen = await until(`${name} to decode the screen`, async () => {
        const video = (await inbound(page, "video")).find((v) => v.framesDecoded > 0 && v.frameWidth > 0);
        return video;
      });
      await until(`${name}'s decoded frames to rise`, async () =>
        (await inbound(page, "video")).some((v) => v.framesDecoded > seen.framesDecoded + 5));
      await page.waitForSelector("#screen-video");
    }

    // Everyone unmutes; audio flows from each to the other two.
    for (const page of Object.values(pages)) {
      await page.click("#mic-toggle");
      await page.waitForSelector("#mic-toggle:text('Mute microphone')");
    }
    for (const [name, page] of Object.entries(pages)) {
      await until(`${name} to receive audio from both others`, async () => {
        const flowing = (await inbound(page, "audio")).filter((a) => a.packets > 20);
        return flowing.length >= 2;
      });
    }
    for (const page of Object.values(pages)) await screenshotBoth(page, `meeting-${page === chair ? "chair" : page === physio ? "presenter" : "trainee"}`);
    await traineeClean("during the discussion");

    // The chair records and signs the outcome of the case under discussion.
    await chair.waitForSelector("#outcome-panel:not([hidden])");
    await chair.click("#add-investigation");
    const investigation = chair.locator("#outcome-panel .investigation");
    await investigation.getByLabel("Kind").selectOption("mri");
    await investigation.getByLabel("Body site").selectOption("lower back");
    await investigation.getByLabel("Notes (optional)").fill("Compare with the 2024 films");
    const panel = chair.locator("#outcome-panel");
    await panel.getByLabel("Plan", { exact: true }).fill("MRI lumbar spine, then review in the spinal MDT with the result.");
    await panel.getByLabel("Plan items (optional, one per line)").fill("Continue home exercises\nReview analgesia");
    await chair.click("#outcome-panel button:text('Sign outcome')");
    await chair.waitForSelector("#outcome-signed");
    assert.match(await chair.textContent("#outcome-signed"), /^Signed by Dr Morgan Consultant \(version 1\)/);
    // The signed case is no longer under discussion; one case waits.
    await chair.waitForSelector("#next-case:text('Start next case')");
    // What was signed is what was typed: notes and plan items included.
    const signed = (await coordinator(`/api/cases/${first}/outcome`)).current;
    assert.ok(signed.signed_at, "signed");
    assert.deepEqual(signed.body.investigations, [{ kind: "mri", site: "lower back", urgency: "routine", notes: "Compare with the 2024 films" }]);
    assert.deepEqual(signed.body.management_plan.items, ["Continue home exercises", "Review analgesia"]);
    await screenshotBoth(chair, "meeting-outcome-signed");

    // The practitioner loses the network for 5 s while the chair moves on; on return the
    // page resumes and the agenda is right.
    const second = agenda[1].id;
    await physio.expectConsole(/net::ERR_INTERNET_DISCONNECTED/, "the practitioner is taken offline for 5 s: the reconnection attempts fail meanwhile", async () => {
      await physio.context().setOffline(true);
      await physio.waitForSelector("#offline-banner:not([hidden])");
      await screenshotBoth(physio, "meeting-offline");
      await chair.click("#next-case");
      await chair.waitForSelector(`#agenda li.current[data-case-id="${second}"]`);
      await new Promise((r) => setTimeout(r, 5000));
      assert.ok(await physio.isVisible("#offline-banner"), "still offline after 5 s");
      await physio.context().setOffline(false);
      await physio.waitForSelector("#offline-banner", { state: "hidden" });
    });
    await physio.waitForSelector(`#agenda li.current[data-case-id="${second}"]`);
    assert.match(await physio.textContent(`#agenda li[data-case-id="${first}"]`), /outcome signed/i);
    await trainee.waitForSelector(`#agenda li.current[data-case-id="${second}"]`);
    await traineeClean("after the second case started");

    // The chair reorders by keyboard; everyone's agenda follows.
    await chair.focus(`#agenda li[data-case-id="${second}"]`);
    await chair.keyboard.press("Alt+ArrowUp");
    await until("the trainee's agenda to follow the reorder", async () =>
      (await trainee.$$eval("#agenda li[data-case-id]", (lis) => lis.map((li) => li.dataset.caseId))).join() === [second, first].join());
    assert.equal(await chair.evaluate(() => document.activeElement?.dataset.caseId), second, "focus stays on the moved case");

    // The last case is finished: the agenda is done, and closing is what the chair is
    // offered (no case button that would answer "There are no more cases waiting.").
    assert.equal(await chair.textContent("#next-case"), "Finish this case");
    await chair.click("#next-case");
    await chair.waitForSelector("#agenda-done");
    assert.equal(await chair.locator("#next-case").count(), 0, "no case button once the agenda is done");
    assert.equal(await chair.getAttribute("#close-meeting", "class"), null, "closing is the primary action");
    assert.equal(await chair.evaluate(() => document.activeElement?.id), "close-meeting", "focus goes from the case button to closing");
    await trainee.waitForSelector("#current-case:text('Agenda done')");
    await screenshotBoth(chair, "meeting-agenda-done");
    // Closing lands too when the page re-renders mid-click: the notice before the button
    // is rebuilt each time, and the button must stay where it is.
    await holdThrough(chair, "#close-meeting", handUp);
    for (const page of Object.values(pages)) await page.waitForSelector("#meeting-state:text('closed')");

    // The practitioner sees the signed outcome under "my cases", with its letter.
    await physio.goto("/#/cases");
    await physio.waitForSelector(`text=${agenda[0].patient.nhs_number.replace(/^(\d{3})(\d{3})(\d{4})$/, "$1 $2 $3")}`);
    await physio.goto(`/#/cases/${first}`);
    await physio.waitForSelector("text=Outcome letter");
    assert.match(await physio.textContent("main"), /MRI/);

    // Nothing identifying ever reached the trainee, on screen or on the wire.
    assert.ok(frames.length > 5, "the trainee's WebSocket carried the meeting");
    for (const frame of frames) {
      // SDP is the server's media description: random ICE credentials and fingerprints,
      // never patient data; names are looked for in everything else.
      let sdp = false;
      try {
        sdp = JSON.parse(frame).type === "rtc";
      } catch {
        /* not JSON: checked in full */
      }
      for (const s of secret) {
        if (sdp && !/^\d+( \d+)*$/.test(s)) continue;
        assert.ok(!shows(frame, s), `a WebSocket frame to the trainee carries ${s}`);
      }
    }
    for (const [name, page] of Object.entries(pages)) assert.deepEqual(page.problems, [], `${name} page errors`);
    assertClean(browser);
  } finally {
    await browser.close();
  }
});

/** The page's newest open peer connection: its signalling and connection states. */
const peerState = (page) =>
  page.evaluate(() => {
    const pc = (window.__pcs || []).filter((p) => p.connectionState !== "closed").at(-1);
    return pc ? { signaling: pc.signalingState, connection: pc.connectionState } : null;
  });

/** Waits until the page's peer connection is negotiated (stable) and connected. */
async function connected(page, name, timeoutMs = 15000) {
  await until(`${name}'s media to connect`, async () => {
    const s = await peerState(page);
    return s && s.signaling === "stable" && s.connection === "connected" && s;
  }, timeoutMs);
}

// Issue 13: voice was lost for the whole meeting when offers made at the moment the
// chair opened it were refused. Every participant's media must connect right after the
// opening, every time: five meetings in a row.
test("everyone's media connects right after the chair opens the meeting, five times over", async () => {
  const coordinator = await apiAs("coordinator");
  const physioApi = await apiAs("practitioner");
  // Later pain (teaching) sessions: the trainee may join them; the practitioner books a
  // case into each, which makes them a participant.
  const sessions = (await coordinator("/api/sessions?specialty=pain"))
    .filter((s) => s.teaching)
    .sort((a, b) => a.starts_at.localeCompare(b.starts_at))
    .slice(1, 6);
  assert.equal(sessions.length, 5);
  for (const [i, s] of sessions.entries()) {
    await bookAccepted(physioApi, s.id, {
      patient: { nhs_number: nhsNumber(402000100 + i * 100), given_name: "Round", family_name: `Patient${i + 1}`,
        date_of_birth: "1975-06-0" + (i + 1), sex: "female", gp_practice_code: "A81001" },
      clinical_question: "Persistent knee pain after physiotherapy: imaging or injection?",
      history: "Twelve weeks of exercise therapy.",
      urgency: "routine", red_flags: [], body_site: "knee",
    });
  }

  const browser = await launch();
  try {
    const pages = await signedInPages(browser, ["consultant", "practitioner", "trainee"]);
    const chair = pages.consultant;
    chair.on("dialog", (d) => d.accept());
    for (const [round, session] of sessions.entries()) {
      await startSoon(session.id);
      for (const page of Object.values(pages)) {
        await page.goto(`/#/meeting/${session.id}`);
        await page.waitForSelector("#agenda li[data-case-id]");
        await page.waitForSelector("#meeting-state:text('published'), #meeting-state:text('scheduled')");
      }
      await chair.click("#open-meeting");
      for (const [name, page] of Object.entries(pages)) {
        await page.waitForSelector("#meeting-state:text('live')");
        await connected(page, `round ${round + 1}: ${name}`);
      }
      for (const page of Object.values(pages)) {
        await page.click("#mic-toggle");
        await page.waitForSelector("#mic-toggle:text('Mute microphone')");
      }
      for (const [name, page] of Object.entries(pages)) {
        await until(`round ${round + 1}: ${name} to hear both others`, async () =>
          (await inbound(page, "audio")).filter((a) => a.packets > 20).length >= 2);
        assert.ok(await page.isHidden("#meeting-error"), `round ${round + 1}: ${name} shows no error`);
      }
      await chair.click("#close-meeting");
      for (const page of Object.values(pages)) await page.waitForSelector("#meeting-state:text('closed')");
    }
    assertClean(browser);
  } finally {
    await browser.close();
  }
});

/**
 * Puts the live channel of `page` through `decide(rtcMessage)`: "forward" it to the
 * server, "refuse" it as the server does when its media is not open yet (an error with
 * no id), or "drop" it (lost). Everything else passes both ways untouched.
 */
async function interceptRtc(page, decide) {
  const log = [];
  await page.routeWebSocket(/\/api\/sessions\/[^/]+\/live/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      let msg = null;
      try {
        msg = JSON.parse(message);
      } catch {
        /* not JSON: forwarded */
      }
      const verdict = msg?.type === "rtc" ? decide(msg) : "forward";
      if (msg?.type === "rtc") log.push(`${msg.kind}:${verdict}`);
      if (verdict === "forward") server.send(message);
      else if (verdict === "refuse") {
        ws.send(JSON.stringify({ type: "error", code: "meeting_not_open", message: "media starts when the meeting is open" }));
      }
    });
    server.onMessage((message) => ws.send(message));
  });
  return log;
}

// The page recovers from a refused or an unanswered offer: it never stays in
// `have-local-offer`, and a refusal while the meeting is live is not shown as "The
// meeting has not been opened yet.".
test("a refused or unanswered offer is sent again until the media connects", async () => {
  const coordinator = await apiAs("coordinator");
  // The demo's first spinal session: the practitioner booked a case into it.
  const session = (await coordinator("/api/sessions?specialty=spinal"))
    .sort((a, b) => a.starts_at.localeCompare(b.starts_at))[0];
  await acceptWaiting(session.id);
  await startSoon(session.id);

  const browser = await launch();
  try {
    const pages = await signedInPages(browser, ["consultant", "practitioner"]);
    const { consultant: chair, practitioner: physio } = pages;
    chair.on("dialog", (d) => d.accept());
    // The practitioner's first offer, and the candidates that follow it, are refused as
    // the server refused them while its media was still opening.
    let physioOffers = 0;
    const physioLog = await interceptRtc(physio, (m) => {
      if (m.kind === "offer") physioOffers += 1;
      return physioOffers <= 1 && (m.kind === "offer" || m.kind === "candidate") ? "refuse" : "forward";
    });
    // The chair's first offer and its candidates are lost on the way: no answer comes.
    let chairOffers = 0;
    const chairLog = await interceptRtc(chair, (m) => {
      if (m.kind === "offer") chairOffers += 1;
      return chairOffers <= 1 && (m.kind === "offer" || m.kind === "candidate") ? "drop" : "forward";
    });
    for (const page of Object.values(pages)) {
      await page.goto(`/#/meeting/${session.id}`);
      await page.waitForSelector("#agenda li[data-case-id]");
    }
    await chair.click("#open-meeting");
    await physio.waitForSelector("#meeting-state:text('live')");
    // Refused: sent again within a second or so, and nothing shown meanwhile.
    await until("the practitioner's media to connect after the refusal", async () => {
      assert.ok(await physio.isHidden("#meeting-error"), `no error while live: ${await physio.textContent("#meeting-error")}`);
      const s = await peerState(physio);
      return s?.signaling === "stable" && s.connection === "connected";
    }, 8000);
    assert.ok(physioLog.includes("offer:refuse") && physioLog.includes("offer:forward"), physioLog.join());
    // Unanswered: the offer as it now stands is sent again after 10 s.
    await connected(chair, "the chair (after the lost offer)", 20000);
    assert.ok(chairLog.includes("offer:drop") && chairLog.includes("offer:forward"), chairLog.join());
    // And the two hear each other.
    for (const page of Object.values(pages)) {
      await page.click("#mic-toggle");
      await page.waitForSelector("#mic-toggle:text('Mute microphone')");
    }
    for (const [name, page] of Object.entries(pages)) {
      await until(`${name} to hear the other`, async () => (await inbound(page, "audio")).some((a) => a.packets > 20));
    }
    assert.ok(await physio.isHidden("#meeting-error"));
    await chair.click("#close-meeting");
    assertClean(browser);
  } finally {
    await browser.close();
  }
});
