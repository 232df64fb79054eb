// The page at desktop and phone widths, light and dark: every part is on screen, nothing scrolls
// sideways, all text has readable contrast, and screenshots of a real conversation are kept
// under artifacts/browser for a person to look at.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DESKTOP,
  PHONE,
  Proxy,
  Server,
  lowContrastTexts,
  openChat,
  screenshotPath,
  sharedBrowser,
} from "./harness.mjs";

const PARTS = [
  "connection-status",
  "nickname-input",
  "room-name-input",
  "create-room-button",
  "room-list",
  "enter-button",
  "leave-button",
  "message-log",
  "member-list",
  "message-input",
  "send-button",
];

const shared = sharedBrowser();

/** A room with a few messages, one of them long, seen by alice; bob is offline with one unsent. */
async function conversation(t, server, look) {
  for (const name of ["random", "design reviews", "support"]) await server.createRoom(name);
  const alice = await openChat(shared.browser, server.url(), look);
  await alice.setNickname("alice");
  const roomId = await alice.createRoom("general");
  await alice.enterRoom(roomId);
  const proxy = await Proxy.for(t, server);
  const bob = await openChat(shared.browser, proxy.url(), look);
  await bob.setNickname("bob");
  await bob.enterRoom(roomId);
  await alice.say("Morning! Is the release still planned for today?");
  await bob.say("Yes, after the last review. I will post the notes here.", { key: true });
  await alice.say(
    "Great. A long line to check wrapping: " +
      "the quick brown fox jumps over the lazy dog, ".repeat(4) +
      "and a long unbroken token https://example.invalid/a/very/long/path/that/should/wrap/inside/the/bubble",
  );
  await alice.say("안녕하세요 — 한국어도 잘 보여요 👋");
  await bob.waitForEvent("안녕하세요");
  proxy.cut();
  await bob.waitForStatus("reconnecting");
  await bob.say("This one was typed while offline");
  return { alice, bob };
}

const LOOKS = [
  ["desktop", { viewport: DESKTOP }],
  ["phone", { viewport: PHONE }],
  ["desktop-dark", { viewport: DESKTOP, colorScheme: "dark" }],
];

for (const [name, look] of LOOKS) {
  test(`${name}: every part is visible, nothing scrolls sideways, all text is readable`, { timeout: 90_000 }, async (t) => {
    const server = await Server.for(t);
    const { alice, bob } = await conversation(t, server, look);
    await bob.part("notice").evaluate((notice) => {
      notice.hidden = false;
      notice.querySelector("#notice-text").textContent = "An example notice, to check its contrast.";
    });

    await alice.page.screenshot({ path: screenshotPath(`${name}-alice`), fullPage: true });
    await bob.page.screenshot({ path: screenshotPath(`${name}-bob-offline`), fullPage: true });

    for (const person of [alice, bob]) {
      for (const part of PARTS) {
        assert.ok(await person.part(part).isVisible(), `${part} is visible at ${name}`);
      }
      const overflow = await person.page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at ${name}`);
      assert.deepEqual(await person.page.evaluate(lowContrastTexts), [], `text below WCAG AA at ${name}`);
    }
    assert.deepEqual(alice.problems, []);
  });
}
