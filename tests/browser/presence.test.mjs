// Who is here, who is typing, who has read what: two people on the page, and what each sees
// of the other.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Proxy, Server, openChat, sharedBrowser } from "./harness.mjs";

const shared = sharedBrowser();
const WAIT = { timeout: 15_000 };

async function aliceAndBob(server, { bobUrl = server.url() } = {}) {
  const roomId = await server.createRoom("general");
  const alice = await openChat(shared.browser, server.url());
  const bob = await openChat(shared.browser, bobUrl);
  await alice.setNickname("alice");
  await alice.enterRoom(roomId);
  await bob.setNickname("bob");
  await bob.enterRoom(roomId);
  await alice.waitForEvent("bob entered the room.");
  return { alice, bob, roomId };
}

/** The senders the member list shows, in its order. */
async function membersShown(person) {
  return person.part("member-list").evaluate((list) => Array.from(list.children, (item) => item.dataset.sender));
}

async function waitForMembers(person, expected) {
  await person.page.waitForFunction(
    (expected) => {
      const list = document.querySelector('[data-testid="member-list"]');
      return JSON.stringify(Array.from(list.children, (item) => item.dataset.sender)) === JSON.stringify(expected);
    },
    expected,
    WAIT,
  );
}

test("each page lists who is in the room, and follows them coming and going", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const { alice, bob, roomId } = await aliceAndBob(server);

  await waitForMembers(alice, ["alice", "bob"]);
  await waitForMembers(bob, ["alice", "bob"]);
  const carol = await openChat(shared.browser, server.url());
  await carol.setNickname("carol");
  await carol.enterRoom(roomId);
  await waitForMembers(alice, ["alice", "bob", "carol"]);
  await waitForMembers(carol, ["alice", "bob", "carol"]);

  await bob.part("leave-button").click();
  await waitForMembers(alice, ["alice", "carol"]);
  await waitForMembers(carol, ["alice", "carol"]);
  assert.deepEqual(await membersShown(bob), [], "bob is out of the room");
  const { body } = await server.api("GET", `/api/rooms/${roomId}/members`);
  assert.deepEqual(body.items.map((m) => m.sender), ["alice", "carol"]);
  for (const person of [alice, bob, carol]) assert.deepEqual(person.problems, []);
});

test("the others see who is typing, until the message arrives", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const { alice, bob } = await aliceAndBob(server);
  const indicator = alice.part("typing-indicator");
  assert.ok(await indicator.isHidden(), "nobody types yet");

  await bob.part("message-input").pressSequentially("hello ali", { delay: 20 });
  await indicator.getByText("bob is typing…").waitFor(WAIT);
  assert.ok(await bob.part("typing-indicator").isHidden(), "bob does not see himself typing");
  await bob.part("message-input").pressSequentially("ce");
  await bob.part("send-button").click();

  await alice.waitForEvent("hello alice");
  await indicator.waitFor({ state: "hidden", ...WAIT });
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
});

test("under your own messages, who has read them", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const { alice, bob, roomId } = await aliceAndBob(server);

  await alice.say("did you read this?");
  await bob.waitForEvent("did you read this?");
  const mine = alice.part("message-log").locator("> .mine", { hasText: "did you read this?" });
  await mine.getByTestId("read-by").getByText("Read by bob").waitFor(WAIT);

  const { body } = await server.api("GET", `/api/rooms/${roomId}/members`);
  const bobs = body.items.find((member) => member.sender === "bob");
  const lastSeq = (await server.history(roomId)).at(-1).seq;
  assert.equal(bobs.readSeq, lastSeq, "bob's page reported what it showed");
  const theirs = bob.part("message-log").locator("> .talk", { hasText: "did you read this?" });
  assert.equal(await theirs.getByTestId("read-by").count(), 0, "only under one's own messages");
  assert.deepEqual(alice.problems, []);
  assert.deepEqual(bob.problems, []);
});

test("a message resent after a lost acknowledgement is stored and shown once", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const proxy = await Proxy.for(t, server);
  const { alice, bob, roomId } = await aliceAndBob(server, { bobUrl: proxy.url() });

  proxy.mute();
  await bob.say("sent into the void?");
  await alice.waitForEvent("sent into the void?");
  proxy.cut();
  await bob.waitForStatus("reconnecting");
  proxy.restore();
  await bob.waitForPhase("joined");
  await bob.waitForEvent("sent into the void?");
  await bob.page.waitForFunction(() => document.querySelector('[data-testid="outbox"]').children.length === 0, null, WAIT);

  const metrics = await (await fetch(server.url("/metrics"))).text();
  assert.match(metrics, /^chat_resends_total 1$/m, "the page resent it, the server kept the first");
  const talks = (await server.history(roomId)).filter((event) => event.type === "TALK");
  assert.deepEqual(talks.map((event) => event.message), ["sent into the void?"]);
  for (const person of [alice, bob]) {
    assert.deepEqual(await person.talks(), ["bob: sent into the void?"]);
    assert.deepEqual(person.problems, []);
  }
});
