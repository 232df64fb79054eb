// Dropped connections: the page reconnects by itself, resumes with lastSeq, and shows every
// event exactly once; what was typed while offline is sent once the room is rejoined.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Proxy, Server, assertGapFreeOnce, openChat, sharedBrowser } from "./harness.mjs";

const shared = sharedBrowser();

/** Alice and Bob in one room; each may come through its own address (a proxy, say). */
async function aliceAndBob(server, { aliceUrl = server.url(), bobUrl = server.url() } = {}) {
  const roomId = await server.createRoom("general");
  const alice = await openChat(shared.browser, aliceUrl);
  const bob = await openChat(shared.browser, bobUrl);
  await alice.setNickname("alice");
  await alice.enterRoom(roomId);
  await bob.setNickname("bob");
  await bob.enterRoom(roomId);
  await alice.say("before the drop");
  await bob.waitForEvent("before the drop");
  return { alice, bob, roomId };
}

/** Each person's log is gap-free, matches what was stored, and holds these talks once each. */
async function assertEveryoneSawEverythingOnce(server, roomId, people, talks) {
  const stored = await server.history(roomId);
  for (const person of people) {
    const log = await person.log();
    assertGapFreeOnce(log);
    const first = stored.findIndex((event) => event.seq === log[0].seq);
    assert.deepEqual(log.map((e) => e.seq), stored.slice(first).map((e) => e.seq));
    assert.deepEqual(await person.talks(), talks);
    assert.deepEqual(await person.outbox(), [], "nothing is left unsent");
    assert.deepEqual(person.problems, []);
  }
}

for (const signal of ["SIGTERM", "SIGKILL"]) {
  test(`after a server restart (${signal}) both pages resume with nothing lost or repeated`, { timeout: 90_000 }, async (t) => {
    const server = await Server.for(t);
    const { alice, bob, roomId } = await aliceAndBob(server);

    await server.stop(signal);
    await alice.waitForStatus("reconnecting");
    await bob.waitForStatus("reconnecting");
    await alice.say("typed while the server was down");
    const [pending] = await alice.outbox();
    assert.equal(pending.text, "typed while the server was down");
    assert.match(pending.note, /not sent yet/i, "an offline message is marked as not sent");
    await server.boot();

    for (const person of [alice, bob]) {
      await person.waitForStatus("open");
      await person.waitForPhase("joined");
      await person.waitForEvent("typed while the server was down");
    }
    await bob.say("after the restart");
    await alice.waitForEvent("after the restart");
    await assertEveryoneSawEverythingOnce(server, roomId, [alice, bob], [
      "alice: before the drop",
      "alice: typed while the server was down",
      "bob: after the restart",
    ]);
  });
}

test("a page cut off while others talk catches up on what it missed, once", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const proxy = await Proxy.for(t, server);
  const { alice, bob, roomId } = await aliceAndBob(server, { aliceUrl: proxy.url() });

  proxy.cut();
  await alice.waitForStatus("reconnecting");
  await bob.waitForEvent("alice left the room.");
  for (const text of ["missed one", "missed two", "missed three"]) await bob.say(text);
  await bob.waitForEvent("missed three");
  await alice.say("alice, offline");
  proxy.restore();

  await alice.waitForPhase("joined");
  await alice.waitForEvent("missed three");
  await bob.waitForEvent("alice, offline");
  await alice.waitForEvent("alice, offline");
  await assertEveryoneSawEverythingOnce(server, roomId, [alice, bob], [
    "alice: before the drop",
    "bob: missed one",
    "bob: missed two",
    "bob: missed three",
    "alice: alice, offline",
  ]);
});

test("a message whose acknowledgement was lost is not sent twice", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const proxy = await Proxy.for(t, server);
  const { alice, bob, roomId } = await aliceAndBob(server, { aliceUrl: proxy.url() });

  proxy.mute();
  await alice.say("did this arrive?");
  await bob.waitForEvent("did this arrive?");
  const [pending] = await alice.outbox();
  assert.match(pending.note, /sending/i, "without its echo, the message is still on its way");
  proxy.cut();
  await alice.waitForStatus("reconnecting");
  proxy.restore();

  await alice.waitForPhase("joined");
  await alice.waitForEvent("did this arrive?");
  await bob.say("one copy only");
  await alice.waitForEvent("one copy only");
  await assertEveryoneSawEverythingOnce(server, roomId, [alice, bob], [
    "alice: before the drop",
    "alice: did this arrive?",
    "bob: one copy only",
  ]);
});
