// Two people chatting through the page, history on entering, and a keyboard-only visit.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Server, assertGapFreeOnce, openChat, sharedBrowser } from "./harness.mjs";

const shared = sharedBrowser();

test("two people in two browser windows chat with each other", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const alice = await openChat(shared.browser, server.url());
  const bob = await openChat(shared.browser, server.url());

  await alice.setNickname("alice");
  const roomId = await alice.createRoom("general");
  await alice.enterRoom(roomId);
  await bob.setNickname("bob");
  await bob.roomItem({ roomId }).waitFor();
  await bob.enterRoom(roomId);
  await alice.waitForEvent("bob entered the room.");

  await alice.say("hello bob");
  await bob.say("hi alice, sent with the Enter key", { key: true });
  for (const person of [alice, bob]) {
    await person.waitForEvent("sent with the Enter key");
    await person.waitForEvent("hello bob");
  }
  assert.deepEqual(await alice.talks(), ["alice: hello bob", "bob: hi alice, sent with the Enter key"]);
  assert.deepEqual(await bob.log(), await alice.log(), "bob sees what alice sees, history included");
  await alice.roomItem({ roomId }).getByText("2 online").waitFor();

  await bob.part("leave-button").click();
  await alice.waitForEvent("bob left the room.");
  await alice.roomItem({ roomId }).getByText("1 online").waitFor();
  assert.equal(await bob.part("message-log").locator("> *").count(), 0, "bob's log is cleared");
  assert.ok(await bob.part("leave-button").isDisabled());
  assert.ok(await bob.part("send-button").isDisabled());

  const log = await alice.log();
  assertGapFreeOnce(log);
  const stored = await server.history(roomId);
  assert.deepEqual(log.map((e) => e.seq), stored.map((e) => e.seq), "alice saw every stored event");
  assert.deepEqual([...alice.problems, ...bob.problems], []);
});

test("entering a room shows its recent history first, then live events", { timeout: 60_000 }, async (t) => {
  const server = await Server.for(t);
  const alice = await openChat(shared.browser, server.url());
  await alice.setNickname("alice");
  const roomId = await alice.createRoom("history");
  await alice.enterRoom(roomId);
  for (const text of ["one", "two", "three"]) await alice.say(text);
  await alice.waitForEvent("three");

  const bob = await openChat(shared.browser, server.url());
  await bob.setNickname("bob");
  await bob.enterRoom(roomId);

  const log = await bob.log();
  assert.deepEqual(
    log.map((e) => [e.seq, e.kind, e.text]),
    [
      [1, "enter", "alice entered the room."],
      [2, "talk", "one"],
      [3, "talk", "two"],
      [4, "talk", "three"],
      [5, "enter", "bob entered the room."],
    ],
  );
  assert.deepEqual([...alice.problems, ...bob.problems], []);
});

test("a room's history shows its latest 50 events, and nothing older", { timeout: 60_000 }, async (t) => {
  const server = await Server.for(t, { CHAT_RATE_LIMIT: "off" });
  const writer = await openChat(shared.browser, server.url());
  await writer.setNickname("writer");
  const roomId = await writer.createRoom("busy");
  await writer.enterRoom(roomId);
  for (let i = 1; i <= 59; i += 1) await writer.say(`note ${i}`);
  await writer.waitForEvent("note 59");

  const reader = await openChat(shared.browser, server.url());
  await reader.setNickname("reader");
  await reader.enterRoom(roomId);

  const log = await reader.log();
  assertGapFreeOnce(log);
  assert.equal(log[0].seq, 11, "the first 10 of 60 stored events are not shown");
  assert.equal(log.at(-1).text, "reader entered the room.");
});

test("the page can be used with the keyboard alone", { timeout: 60_000 }, async (t) => {
  const server = await Server.for(t);
  const chat = await openChat(shared.browser, server.url());
  const { page } = chat;

  await tabTo(page, "nickname-input");
  await page.keyboard.type("kim");
  await tabTo(page, "room-name-input");
  await page.keyboard.type("keyboard");
  await page.keyboard.press("Enter");
  const roomId = await chat.roomItem({ name: "keyboard" }).getAttribute("data-room-id");
  await tabTo(page, "room-list", `[data-room-id="${roomId}"] button`);
  await page.keyboard.press("Enter");
  await tabTo(page, "enter-button");
  await page.keyboard.press("Enter");
  await chat.waitForPhase("joined");
  await tabTo(page, "message-input");
  await page.keyboard.type("typed without a mouse");
  await page.keyboard.press("Enter");

  await chat.waitForEvent("typed without a mouse");
  assert.deepEqual(chat.problems, []);
});

/** Presses Tab until the part has focus; fails if forty presses never reach it. */
async function tabTo(page, testId, inner) {
  const selector = inner ? `[data-testid="${testId}"] ${inner}` : `[data-testid="${testId}"]`;
  for (let i = 0; i < 40; i += 1) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    await page.keyboard.press("Tab");
  }
  assert.fail(`Tab never reaches ${selector}`);
}
