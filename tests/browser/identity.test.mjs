// The page when the server runs in identity mode: the token from the address or pasted in, the
// identity's name as the nickname, plain words when the token is missing, refused or expired,
// a resume with nothing lost after a fresh token, and Swagger UI's "Authorize" button.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Server,
  assertGapFreeOnce,
  lowContrastTexts,
  mintToken,
  openChat,
  openPage,
  screenshotPath,
  sharedBrowser,
} from "./harness.mjs";

const SECRET = "a-browser-test-secret-of-32-bytes";
const IDENTITY_MODE = { CHAT_JWT_SECRET: SECRET };
const WAIT = { timeout: 15_000 };

const shared = sharedBrowser();

function token(name, { ttl = 300, roles, secret = SECRET } = {}) {
  const claims = { sub: `user-${name}`, name, exp: Math.floor(Date.now() / 1000) + ttl };
  if (roles) claims.roles = roles;
  return mintToken(secret, claims);
}

async function identityServer(t) {
  const server = await Server.for(t, IDENTITY_MODE);
  server.token = token("operator", { roles: ["admin"] });
  return server;
}

async function signInWith(chat, pasted) {
  await chat.part("token-input").fill(pasted);
  await chat.part("token-button").click();
}

async function statusText(chat) {
  return chat.part("identity-status").textContent();
}

test("signed in through the address, two people chat under the names their tokens carry", { timeout: 90_000 }, async (t) => {
  const server = await identityServer(t);
  const alice = await openChat(shared.browser, server.url(`/#access_token=${token("alice")}`));

  assert.match(await statusText(alice), /Signed in as alice/);
  assert.equal(await alice.part("nickname-input").inputValue(), "alice");
  assert.ok(await alice.part("nickname-input").evaluate((input) => input.readOnly), "the name is the token's");
  assert.ok(!alice.page.url().includes("access_token"), "the token is taken out of the address bar");
  const roomId = await alice.createRoom("signed in");
  await alice.enterRoom(roomId);

  const bob = await openPage(shared.browser, server.url());
  await bob.part("identity-status").getByText(/needs a sign-in token/).waitFor(WAIT);
  await signInWith(bob, token("bob"));
  await bob.waitForStatus("open");
  assert.match(await statusText(bob), /Signed in as bob/);
  await bob.enterRoom(roomId);
  await alice.say("hello bob");
  await bob.say("hi alice", { key: true });
  for (const person of [alice, bob]) {
    await person.waitForEvent("hi alice");
    await person.waitForEvent("hello bob");
  }

  assert.deepEqual(await alice.talks(), ["alice: hello bob", "bob: hi alice"]);
  const stored = await server.history(roomId);
  assert.deepEqual(stored.map((e) => e.sender), ["alice", "bob", "alice", "bob"]);
  await bob.page.screenshot({ path: screenshotPath("identity-signed-in"), fullPage: true });
  await alice.page.reload();
  await alice.waitForStatus("open");
  assert.match(await statusText(alice), /Signed in as alice/, "a reload keeps the sign-in");
  assert.deepEqual([...alice.problems, ...bob.problems], []);
});

test("a missing, refused or expired token is said plainly, and nothing connects meanwhile", { timeout: 60_000 }, async (t) => {
  const server = await identityServer(t);
  await server.createRoom("behind the sign-in");
  const visitor = await openPage(shared.browser, server.url());

  await visitor.part("identity-status").getByText(/needs a sign-in token/).waitFor(WAIT);
  assert.equal(await visitor.part("connection-status").getAttribute("data-state"), "stopped");
  assert.equal(await visitor.part("room-list").locator("> *").count(), 0, "no room is shown");
  assert.ok(await visitor.page.locator("#rooms-empty").isHidden(), "the rooms are hidden, not missing");
  await visitor.page.screenshot({ path: screenshotPath("identity-token-needed"), fullPage: true });
  for (const colorScheme of ["light", "dark"]) {
    await visitor.page.emulateMedia({ colorScheme });
    assert.deepEqual(await visitor.page.evaluate(lowContrastTexts), [], `text below WCAG AA (${colorScheme})`);
  }

  await signInWith(visitor, token("mallory", { secret: "x".repeat(32) }));
  await visitor.part("identity-status").getByText(/was refused: .*signature/).waitFor(WAIT);
  await signInWith(visitor, token("late", { ttl: -60 }));
  await visitor.part("identity-status").getByText(/has expired/).waitFor(WAIT);
  assert.equal(await visitor.part("connection-status").getAttribute("data-state"), "stopped");

  await signInWith(visitor, token("carol"));
  await visitor.waitForStatus("open");
  await visitor.roomItem({ name: "behind the sign-in" }).waitFor(WAIT);
  assert.equal(await visitor.part("nickname-input").inputValue(), "carol");
  assert.deepEqual(visitor.problems, []);
});

test("when the token expires the page says so, and a fresh token resumes with nothing lost", { timeout: 90_000 }, async (t) => {
  const server = await identityServer(t);
  const roomId = await server.createRoom("general");
  // Long enough for both pages to open and talk once on a busy machine (4 s was not always);
  // the wait for the expiry below is counted from the token's own `exp`.
  const ttl = 12;
  const expiresAt = (Math.floor(Date.now() / 1000) + ttl) * 1000;
  const alice = await openChat(shared.browser, server.url(`/#access_token=${token("alice", { ttl })}`));
  const bob = await openChat(shared.browser, server.url(`/#access_token=${token("bob")}`));
  await alice.enterRoom(roomId);
  await bob.enterRoom(roomId);
  await alice.say("before it expires");
  await bob.waitForEvent("before it expires");

  const untilExpired = Math.max(0, expiresAt - Date.now());
  await alice.part("identity-status").getByText(/has expired/).waitFor({ timeout: untilExpired + WAIT.timeout });
  await alice.waitForStatus("stopped");
  await bob.waitForEvent("alice left the room.");
  await bob.say("while alice was signed out");
  await alice.say("typed while signed out");
  const [pending] = await alice.outbox();
  assert.match(pending.note, /not sent yet/i);
  await signInWith(alice, token("alice"));

  await alice.waitForStatus("open");
  await alice.waitForPhase("joined");
  await alice.waitForEvent("while alice was signed out");
  await bob.waitForEvent("typed while signed out");
  const log = await alice.log();
  assertGapFreeOnce(log);
  const stored = await server.history(roomId);
  const first = stored.findIndex((event) => event.seq === log[0].seq);
  assert.deepEqual(log.map((e) => e.seq), stored.slice(first).map((e) => e.seq), "alice saw every stored event");
  assert.deepEqual(await alice.outbox(), [], "the message typed meanwhile was sent, once");
  assert.equal((await alice.talks()).filter((talk) => talk.endsWith("typed while signed out")).length, 1);
  assert.deepEqual([...alice.problems, ...bob.problems], []);
});

test("Swagger UI's Authorize button sends the token with every request", { timeout: 60_000 }, async (t) => {
  const server = await identityServer(t);
  const context = await shared.browser.newContext();
  const page = await context.newPage();
  await page.goto(server.url("/swagger-ui/"));
  const listRooms = page.locator("#operations-rooms-list_rooms");
  await listRooms.locator(".opblock-summary").click();
  await listRooms.locator("button.try-out__btn").click();
  // The status Swagger UI shows for this click's request: the table may still show the last
  // one's until it has rendered the new answer, so it is read once it shows that answer's code.
  const statusOfExecute = async () => {
    const answered = page.waitForResponse((response) => new URL(response.url()).pathname === "/api/rooms");
    await listRooms.locator("button.execute").click();
    const code = String((await answered).status());
    const status = listRooms.locator(".live-responses-table tr.response .response-col_status").first();
    await status.filter({ hasText: code }).waitFor(WAIT);
    return (await status.textContent()).trim();
  };
  assert.match(await statusOfExecute(), /^401/, "without a token the API refuses");

  await page.locator("button.btn.authorize").first().click();
  const bearer = page.locator(".auth-container").filter({ hasText: "bearer" }).first();
  await bearer.locator("input").fill(token("swagger"));
  await bearer.locator("button.authorize").click();
  await page.locator("button.btn-done").first().click();

  assert.match(await statusOfExecute(), /^200/, "with the token it answers");
  await context.close();
});
