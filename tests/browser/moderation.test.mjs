// Private rooms and moderation in the page (identity mode): an owner makes a private room that
// others cannot see, gives someone a role from the page, mutes, unmutes and removes them from
// the member list, and the other person is told plainly what happened.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Server, mintToken, openChat, sharedBrowser } from "./harness.mjs";

const SECRET = "a-browser-test-secret-of-32-bytes";
const WAIT = { timeout: 15_000 };

const shared = sharedBrowser();

function token(name) {
  return mintToken(SECRET, { sub: `user-${name}`, name, exp: Math.floor(Date.now() / 1000) + 300 });
}

/** A member's entry in a person's member list. */
function memberItem(person, name) {
  return person.part("member-list").locator(`> [data-sender="${name}"]`);
}

test("an owner keeps a private room, lets someone in, mutes and removes them, and they are told", { timeout: 120_000 }, async (t) => {
  const server = await Server.for(t, { CHAT_JWT_SECRET: SECRET });
  const alice = await openChat(shared.browser, server.url(`/#access_token=${token("alice")}`));
  const lobby = await alice.createRoom("lobby");
  assert.equal(await alice.roomItem({ roomId: lobby }).getAttribute("data-visibility"), "public");
  await alice.part("room-visibility-input").selectOption("private");
  const roomId = await alice.createRoom("hideout");
  assert.equal(await alice.roomItem({ roomId }).getAttribute("data-visibility"), "private");
  await alice.enterRoom(roomId);
  await alice.part("room-visibility").getByText("Private room").waitFor(WAIT);
  assert.equal(await alice.part("my-role").getAttribute("data-role"), "owner");

  const bob = await openChat(shared.browser, server.url(`/#access_token=${token("bob")}`));
  await bob.roomItem({ roomId: lobby }).waitFor(WAIT);
  assert.equal(await bob.roomItem({ roomId }).count(), 0, "bob cannot see it");

  await alice.part("grant-name-input").fill("bob");
  await alice.part("grant-role-select").selectOption("member");
  await alice.part("grant-button").click();
  await alice.waitForEvent("alice made bob a member");
  await bob.page.reload();
  await bob.roomItem({ roomId }).waitFor(WAIT);
  await bob.enterRoom(roomId);
  assert.equal(await bob.part("my-role").getAttribute("data-role"), "member");
  await memberItem(alice, "bob").waitFor(WAIT);
  await memberItem(alice, "bob").getByTestId("member-role").getByText("member").waitFor(WAIT);
  assert.equal(await memberItem(bob, "alice").getByTestId("kick-button").count(), 0, "members get no controls");

  await memberItem(alice, "bob").getByTestId("mute-button").click();
  await bob.part("muted-notice").getByText(/You are muted in this room/).waitFor(WAIT);
  await bob.say("can I speak?");
  await bob.part("outbox").getByText(/muted/).waitFor(WAIT);
  await memberItem(alice, "bob").getByTestId("muted-mark").waitFor(WAIT);
  await memberItem(alice, "bob").getByTestId("unmute-button").click();
  await bob.part("muted-notice").waitFor({ state: "hidden", ...WAIT });
  await bob.say("thank you");
  await alice.waitForEvent("thank you");

  await memberItem(alice, "bob").getByTestId("kick-button").click();
  await bob.part("notice").getByText(/You were removed from “hideout”/).waitFor(WAIT);
  await bob.waitForPhase("none");
  await alice.waitForEvent("alice removed bob from the room");
  await memberItem(alice, "bob").waitFor({ state: "detached", ...WAIT });
  for (const person of [alice, bob]) assert.deepEqual(person.problems, []);
});
