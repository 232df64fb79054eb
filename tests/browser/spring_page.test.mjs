// A page written like the Spring STOMP tutorials (spring/room.html: Stomp.over(new SockJS(...))),
// served by this test from an origin of its own, talks in Chromium with a user of our page; the
// same page opened from a file (Origin null) connects too.

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

import { Server, openChat, sharedBrowser } from "./harness.mjs";

const HERE = import.meta.dirname;
const shared = sharedBrowser();

/** What the tutorial page's own server would serve: the page and its two scripts. */
const FILES = {
  "/room.html": ["spring/room.html", "text/html; charset=utf-8"],
  "/js/sockjs.min.js": ["node_modules/sockjs-client/dist/sockjs.min.js", "text/javascript"],
  "/js/stomp.min.js": ["node_modules/stompjs/lib/stomp.min.js", "text/javascript"],
};

async function tutorialSite(t) {
  const site = http.createServer((request, response) => {
    const file = FILES[new URL(request.url, "http://site").pathname];
    if (!file) return response.writeHead(404).end();
    response.writeHead(200, { "content-type": file[1] });
    response.end(readFileSync(path.join(HERE, file[0])));
  });
  await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => site.close(resolve)));
  return `http://127.0.0.1:${site.address().port}`;
}

test("a Spring tutorial page over SockJS and STOMP chats with a user of our page", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const site = await tutorialSite(t);
  const roomId = await server.createRoom("general");
  const context = await shared.browser.newContext();
  const spring = await context.newPage();
  const problems = [];
  spring.on("pageerror", (error) => problems.push(error.message));
  const query = new URLSearchParams({ roomId, sender: "철수", server: server.url("").replace(/\/$/, "") });

  await spring.goto(`${site}/room.html?${query}`);
  await spring.waitForSelector('body[data-connected="true"]', { timeout: 15_000 });
  const shown = spring.locator("#messages > li");
  await shown.filter({ hasText: "[알림] 철수 entered the room." }).waitFor({ timeout: 15_000 });

  const bob = await openChat(shared.browser, server.url());
  await bob.setNickname("bob");
  await bob.enterRoom(roomId);
  await shown.filter({ hasText: "[알림] bob entered the room." }).waitFor({ timeout: 15_000 });

  await spring.fill("#message", "안녕하세요, Spring 페이지입니다");
  await spring.click("#send");
  await bob.waitForEvent("안녕하세요, Spring 페이지입니다");
  await bob.say("hello from our page");
  await shown.filter({ hasText: "bob - hello from our page" }).waitFor({ timeout: 15_000 });

  const log = await shown.evaluateAll((items) => items.map((item) => [Number(item.dataset.seq), item.textContent]));
  assert.deepEqual(log, [
    [1, "[알림] 철수 entered the room."],
    [2, "[알림] bob entered the room."],
    [3, "철수 - 안녕하세요, Spring 페이지입니다"],
    [4, "bob - hello from our page"],
  ]);
  assert.deepEqual(await bob.talks(), ["철수: 안녕하세요, Spring 페이지입니다", "bob: hello from our page"]);
  assert.equal(await spring.evaluate(() => sock.transport), "websocket");
  assert.deepEqual(problems, []);
  assert.deepEqual(bob.problems, []);
  await context.close();
});

test("the tutorial page opened as a file (Origin null) connects over SockJS", { timeout: 90_000 }, async (t) => {
  const server = await Server.for(t);
  const roomId = await server.createRoom("from a file");
  const folder = mkdtempSync(path.join(tmpdir(), "chat-file-page-"));
  t.after(() => rmSync(folder, { recursive: true, force: true }));
  mkdirSync(path.join(folder, "js"));
  const page = readFileSync(path.join(HERE, FILES["/room.html"][0]), "utf8").replaceAll('src="/js/', 'src="js/');
  writeFileSync(path.join(folder, "room.html"), page);
  for (const script of ["/js/sockjs.min.js", "/js/stomp.min.js"]) {
    copyFileSync(path.join(HERE, FILES[script][0]), path.join(folder, script));
  }

  const context = await shared.browser.newContext();
  t.after(() => context.close());
  const spring = await context.newPage();
  const problems = [];
  spring.on("pageerror", (error) => problems.push(error.message));
  const query = new URLSearchParams({ roomId, sender: "영희", server: server.url("").replace(/\/$/, "") });
  await spring.goto(`${pathToFileURL(path.join(folder, "room.html"))}?${query}`);

  await spring.waitForSelector('body[data-connected="true"]', { timeout: 15_000 });
  await spring.locator("#messages > li").filter({ hasText: "[알림] 영희 entered the room." }).waitFor({ timeout: 15_000 });
  assert.equal(await spring.evaluate(() => location.protocol), "file:");
  assert.equal(await spring.evaluate(() => sock.transport), "websocket");
  assert.deepEqual(problems, []);
});
