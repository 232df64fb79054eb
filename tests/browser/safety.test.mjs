// What people write is shown as text and never runs; errors from the server are shown in plain
// words, and a refused message can be retried.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Server, openChat, sharedBrowser } from "./harness.mjs";

const shared = sharedBrowser();

const ATTACKS = [
  "<img src=x onerror=alert(1)>",
  '<img src=x onerror="window.__xss = 1">',
  "<script>window.__xss = 2</script>",
  '"><svg onload="window.__xss = 3">',
];

test("messages, nicknames and room names are shown as text and run nothing", { timeout: 60_000 }, async (t) => {
  const server = await Server.for(t);
  const mallory = await openChat(shared.browser, server.url());
  const victim = await openChat(shared.browser, server.url());
  const roomName = '<b onmouseover="window.__xss = 4">trap</b>';
  const nickname = '<i onclick="window.__xss = 5">mallory</i>';

  const roomId = await mallory.createRoom(roomName);
  await mallory.setNickname(nickname);
  await mallory.enterRoom(roomId);
  await victim.setNickname("victim");
  await victim.roomItem({ roomId }).waitFor();
  await victim.enterRoom(roomId);
  for (const attack of ATTACKS) await mallory.say(attack);
  await victim.waitForEvent(ATTACKS.at(-1));

  for (const person of [victim, mallory]) {
    const { page } = person;
    assert.deepEqual(await person.talks(), ATTACKS.map((attack) => `${nickname}: ${attack}`));
    assert.equal(await person.roomItem({ roomId }).locator(".room-name").textContent(), roomName);
    await person.roomItem({ roomId }).hover();
    const injected = await page.locator("main img, main script, main svg, main b, main i").count();
    assert.equal(injected, 0, "no element was made from what people wrote");
    assert.equal(await page.evaluate(() => window.__xss), undefined, "no injected script ran");
    assert.deepEqual(person.problems, [], "no dialog opened and no error was thrown");
  }
});

test("a message the server refuses is marked not sent, in plain words, and can be retried", { timeout: 60_000 }, async (t) => {
  const server = await Server.for(t, { CHAT_WS_RATE_PER_SEC: "1", CHAT_WS_BURST: "2" });
  const roomId = await server.createRoom("slow");
  const alice = await openChat(shared.browser, server.url());
  await alice.setNickname("alice");
  await alice.enterRoom(roomId);
  const sent = ["one", "two", "three", "four"];

  for (const text of sent) await alice.say(text);
  const refused = alice.part("outbox").locator("> *", { hasText: "You are sending too fast" });
  await refused.first().waitFor();
  assert.match(await refused.first().textContent(), /^.*Not sent: You are sending too fast/);

  while ((await refused.count()) > 0) {
    await alice.page.waitForTimeout(1_100);
    await refused.first().getByRole("button", { name: "Retry" }).click();
  }
  for (const text of sent) await alice.waitForEvent(text);
  assert.deepEqual(await alice.outbox(), []);
  assert.deepEqual((await alice.talks()).sort(), sent.map((text) => `alice: ${text}`).sort());
  assert.deepEqual(alice.problems, []);
});

test("a room deleted while people are in it is announced, and cannot be entered", { timeout: 60_000 }, async (t) => {
  const server = await Server.for(t);
  const doomed = await server.createRoom("doomed");
  const alice = await openChat(shared.browser, server.url());
  const bob = await openChat(shared.browser, server.url());
  await alice.setNickname("alice");
  await alice.enterRoom(doomed);
  await bob.setNickname("bob");
  await bob.roomItem({ roomId: doomed }).click();

  assert.equal((await server.api("DELETE", `/api/rooms/${doomed}`)).status, 204);

  await alice.part("notice").getByText("The room “doomed” was deleted.").waitFor();
  await alice.waitForPhase("none");
  assert.ok(await alice.part("send-button").isDisabled());
  await bob.part("enter-button").click();
  await bob.part("notice").getByText("This room does not exist any more.").waitFor();
  await bob.waitForPhase("none");
  await bob.roomItem({ roomId: doomed }).waitFor({ state: "detached" });
  assert.deepEqual([...alice.problems, ...bob.problems], []);
});
