// Messages that change, in the page: people edit and delete their own messages, react and
// reply; everyone in the room sees each change in place, and a page that was cut off while
// messages changed shows them as they are once it has resumed.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Proxy, Server, openChat, sharedBrowser } from "./harness.mjs";

const shared = sharedBrowser();
const WAIT = { timeout: 15_000 };

/** Alice and Bob in one room, Bob perhaps through a proxy. */
async function aliceAndBob(server, bobUrl = server.url()) {
  const roomId = await server.createRoom("general");
  const alice = await openChat(shared.browser, server.url());
  const bob = await openChat(shared.browser, bobUrl);
  await alice.setNickname("alice");
  await alice.enterRoom(roomId);
  await bob.setNickname("bob");
  await bob.enterRoom(roomId);
  return { alice, bob, roomId };
}

/** The message in a person's log whose text (or quote) holds `text`. */
function message(person, text) {
  return person.part("message-log").locator("> li.talk", { hasText: text }).first();
}

async function say(person, text, everyone) {
  await person.say(text);
  for (const someone of everyone) await someone.waitForEvent(text);
}

async function edit(person, from, to) {
  await message(person, from).getByTestId("edit-button").click();
  assert.equal(await person.part("message-input").inputValue(), from, "the composer holds the text");
  await person.part("compose-context").waitFor(WAIT);
  await person.say(to);
}

async function reaction(person, text, emoji) {
  const chip = message(person, text).getByTestId("reactions").locator(`[data-emoji="${emoji}"]`);
  return (await chip.count()) ? Number(await chip.getAttribute("data-count")) : 0;
}

async function waitForReaction(person, text, emoji, count) {
  const chips = message(person, text).getByTestId("reactions");
  await chips.locator(`[data-emoji="${emoji}"][data-count="${count}"]`).waitFor(WAIT);
}

test("edits, reactions, replies and deletes show for everyone in place", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const { alice, bob, roomId } = await aliceAndBob(server);
  await say(alice, "first draft", [alice, bob]);

  assert.equal(await message(bob, "first draft").getByTestId("edit-button").count(), 0, "only the author edits");
  assert.equal(await message(bob, "first draft").getByTestId("delete-button").count(), 0);
  await edit(alice, "first draft", "the final text");
  for (const person of [alice, bob]) {
    await message(person, "the final text").getByTestId("edited-mark").waitFor(WAIT);
  }
  assert.equal(await message(bob, "first draft").count(), 0, "the old text is gone from the page");

  await message(bob, "the final text").getByTestId("react-button").click();
  await bob.part("react-palette").locator('[data-emoji="👍"]').click();
  await waitForReaction(alice, "the final text", "👍", 1);
  await message(alice, "the final text").getByTestId("reactions").locator('[data-emoji="👍"]').click();
  await waitForReaction(bob, "the final text", "👍", 2);
  await message(alice, "the final text").getByTestId("react-button").click();
  await alice.part("react-input").fill(":tada:");
  await alice.part("react-input").press("Enter");
  await waitForReaction(bob, "the final text", ":tada:", 1);

  await message(bob, "the final text").getByTestId("reply-button").click();
  await bob.say("agreed");
  await say(bob, "unrelated", [alice, bob]);
  const target = await message(alice, "the final text").getAttribute("data-seq");
  for (const person of [alice, bob]) {
    const quote = message(person, "agreed").getByTestId("reply-to");
    assert.equal(await quote.getAttribute("data-seq"), target);
    assert.match(await quote.textContent(), /alice: the final text/);
    assert.equal(await message(person, "unrelated").getByTestId("reply-to").count(), 0);
  }

  await message(alice, "the final text").getByTestId("delete-button").click();
  for (const person of [alice, bob]) {
    const deleted = person.part("message-log").locator(`> li.talk[data-seq="${target}"]`);
    await deleted.getByTestId("deleted-mark").waitFor(WAIT);
    assert.equal(await deleted.getByTestId("edit-button").count(), 0);
    assert.equal(await reaction(person, "message deleted", "👍"), 0, "its reactions went with it");
  }
  const stored = (await server.history(roomId)).find((event) => event.seq === Number(target));
  assert.equal(stored.deleted, true);
  assert.equal(stored.message, undefined);
  for (const person of [alice, bob]) assert.deepEqual(person.problems, []);
});

test("a page cut off while messages changed shows them as they are after it resumes", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const proxy = await Proxy.for(t, server);
  const { alice, bob } = await aliceAndBob(server, proxy.url());
  await say(alice, "keep me", [alice, bob]);
  await say(alice, "drop me", [alice, bob]);

  proxy.cut();
  await bob.waitForStatus("reconnecting");
  await edit(alice, "keep me", "keep me, edited");
  await message(alice, "keep me, edited").getByTestId("edited-mark").waitFor(WAIT);
  await message(alice, "drop me").getByTestId("delete-button").click();
  await alice.part("message-log").locator("> li.talk.deleted").waitFor(WAIT);
  await say(alice, "after the changes", [alice]);
  proxy.restore();

  await bob.waitForPhase("joined");
  await bob.waitForEvent("after the changes");
  await message(bob, "keep me, edited").getByTestId("edited-mark").waitFor(WAIT);
  assert.equal(await message(bob, "drop me").count(), 0);
  assert.equal(await bob.part("message-log").locator("> li.talk.deleted").count(), 1);
  assert.deepEqual(await bob.talks(), await alice.talks(), "bob sees what alice sees");
  for (const person of [alice, bob]) assert.deepEqual(person.problems, []);
});

test("a new page shows history as it is now", { timeout: 60_000 }, async (t) => {
  const server = await Server.for(t);
  const { alice, roomId } = await aliceAndBob(server);
  await say(alice, "to be edited", [alice]);
  await edit(alice, "to be edited", "edited before you came");
  await message(alice, "edited before you came").getByTestId("react-button").click();
  await alice.part("react-palette").locator('[data-emoji="🎉"]').click();
  await waitForReaction(alice, "edited before you came", "🎉", 1);

  const carol = await openChat(shared.browser, server.url());
  await carol.setNickname("carol");
  await carol.enterRoom(roomId);
  await message(carol, "edited before you came").getByTestId("edited-mark").waitFor(WAIT);
  await waitForReaction(carol, "edited before you came", "🎉", 1);
  const chip = message(carol, "edited before you came").getByTestId("reactions").locator('[data-emoji="🎉"]');
  assert.match(await chip.getAttribute("title"), /alice/, "who reacted shows on hover and focus");
  assert.deepEqual(carol.problems, []);
});
