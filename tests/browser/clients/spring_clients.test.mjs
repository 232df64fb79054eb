// The client libraries Spring STOMP front ends are written with, unchanged but for the URL,
// against the real binary: @stomp/stompjs 7 (brokerURL), the legacy stompjs 2.3.3
// (Stomp.over(new WebSocket(url))), and sockjs-client 1.6 carrying both /ws/chat's JSON frames
// and STOMP (Stomp.over(new SockJS(url))). Each does the tutorial flow (connect, subscribe,
// ENTER, TALK, both received in order, disconnect) and a resume.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";

import { Client } from "@stomp/stompjs";
import WebSocket from "ws";

import { Server, mintToken } from "../harness.mjs";

const require = createRequire(import.meta.url);
const Stomp = require("stompjs");
const SockJS = require("sockjs-client");

// Node 20 has no WebSocket of its own: @stomp/stompjs finds this one, as a browser's.
globalThis.WebSocket ??= WebSocket;

const WAIT_MS = 10_000;

/** Events as they arrive, and a way to wait until a predicate holds over them. */
class Inbox {
  constructor() {
    this.events = [];
    this.waiters = [];
  }

  push(event) {
    this.events.push(event);
    this.waiters = this.waiters.filter(({ done, resolve }) => !(done(this.events) && (resolve(), true)));
  }

  until(done, what) {
    if (done(this.events)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.events)}`)),
        WAIT_MS,
      );
      this.waiters.push({ done, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  /** Waits for a TALK with this text. */
  talk(text) {
    return this.until((events) => events.some((e) => e.type === "TALK" && e.message === text), `TALK "${text}"`);
  }
}

function tutorialBody(type, roomId, sender, message = "") {
  return JSON.stringify({ type, roomId, sender, message });
}

/** The stored events of the room once its last one is of this type and sender. */
async function historyEndingWith(server, roomId, type, sender) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const events = await server.history(roomId);
    const last = events.at(-1);
    if (last?.type === type && last?.sender === sender) return events;
    assert.ok(Date.now() < deadline, `the room never ended with ${type} by ${sender}: ${JSON.stringify(events)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Talks into the room over a plain /ws/chat connection, and waits for the acknowledgement. */
async function talkOverWsChat(server, roomId, sender, texts) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws/chat`);
  const inbox = new Inbox();
  ws.on("message", (data) => inbox.push(JSON.parse(data.toString())));
  await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
  ws.send(JSON.stringify({ type: "ENTER", roomId, sender }));
  for (const text of texts) ws.send(JSON.stringify({ type: "TALK", roomId, sender, message: text }));
  await inbox.talk(texts.at(-1));
  ws.close();
  await historyEndingWith(server, roomId, "LEAVE", sender);
}

/** Waits until the event with this seq arrived. */
function throughSeq(inbox, seq) {
  return inbox.until((events) => events.some((e) => e.seq === seq), `seq ${seq}`);
}

// ---------------------------------------------------------------- @stomp/stompjs 7

/** An @stomp/stompjs client, connected, as its README shows it. */
async function modernClient(server, onStompError = () => {}) {
  const client = new Client({
    brokerURL: `ws://127.0.0.1:${server.port}/ws/stomp`,
    reconnectDelay: 0,
    onStompError,
  });
  const connected = new Promise((resolve) => (client.onConnect = resolve));
  client.activate();
  const frame = await connected;
  return { client, frame };
}

test("@stomp/stompjs 7: the tutorial flow, receipts, and a resume with last-seq", { timeout: 30_000 }, async (t) => {
  const server = await Server.for(t);
  const roomId = await server.createRoom("general");
  const { client, frame } = await modernClient(server);
  assert.equal(frame.headers.version, "1.2");
  assert.equal(client.webSocket.protocol, "v12.stomp");

  const inbox = new Inbox();
  client.subscribe(`/sub/chat/room/${roomId}`, (message) => {
    assert.equal(message.headers["content-type"], "application/json");
    inbox.push(JSON.parse(message.body));
  });
  client.publish({ destination: "/pub/chat/message", body: tutorialBody("ENTER", roomId, "alice") });
  const stored = new Promise((resolve) => client.watchForReceipt("talk-1", resolve));
  client.publish({
    destination: "/pub/chat/message",
    body: tutorialBody("TALK", roomId, "alice", "안녕하세요 👋"),
    headers: { receipt: "talk-1" },
  });
  await stored;
  await inbox.talk("안녕하세요 👋");
  assert.deepEqual(inbox.events.map((e) => [e.type, e.sender, e.seq]), [
    ["ENTER", "alice", 1],
    ["TALK", "alice", 2],
  ]);
  const lastSeen = inbox.events.at(-1).seq;
  await client.deactivate();
  await historyEndingWith(server, roomId, "LEAVE", "alice");

  await talkOverWsChat(server, roomId, "bob", ["while away 1", "while away 2"]);
  const { client: back } = await modernClient(server);
  const resumed = new Inbox();
  back.subscribe(`/topic/rooms/${roomId}`, (message) => resumed.push(JSON.parse(message.body)), {
    "last-seq": String(lastSeen),
  });
  await throughSeq(resumed, 7);
  assert.deepEqual(
    resumed.events.map((e) => [e.seq, e.type, e.sender]),
    (await server.history(roomId)).filter((e) => e.seq > lastSeen).map((e) => [e.seq, e.type, e.sender]),
  );
  assert.deepEqual(resumed.events.map((e) => e.seq), [3, 4, 5, 6, 7], "alice's LEAVE, then bob's visit");
  await back.deactivate();
});

test("@stomp/stompjs 7: a refusal reaches /user/queue/errors and the connection stays", { timeout: 30_000 }, async (t) => {
  const server = await Server.for(t);
  const roomId = await server.createRoom("general");
  const { client } = await modernClient(server);
  const errors = new Inbox();
  client.subscribe("/user/queue/errors", (message) => errors.push(JSON.parse(message.body)));
  client.publish({ destination: "/pub/chat/message", body: tutorialBody("TALK", roomId, "alice", "too early") });
  await errors.until((events) => events.length === 1, "a refusal");
  assert.equal(errors.events[0].code, "NOT_IN_ROOM");
  assert.ok(client.connected);
  await client.deactivate();
});

test("@stomp/stompjs 7 in identity mode: a bearer token in connectHeaders names the sender", { timeout: 30_000 }, async (t) => {
  const secret = "a-client-test-secret-of-32-bytes!";
  const server = await Server.for(t, { CHAT_JWT_SECRET: secret });
  const token = (name) => mintToken(secret, { sub: `user-${name}`, name, exp: Math.floor(Date.now() / 1000) + 300 });
  server.token = token("alice");
  const roomId = await server.createRoom("general");

  const refused = new Promise((resolve) => {
    const client = new Client({
      brokerURL: `ws://127.0.0.1:${server.port}/ws/stomp`,
      reconnectDelay: 0,
      onStompError: (frame) => (client.deactivate(), resolve(frame)),
    });
    client.activate();
  });
  assert.equal((await refused).headers.message, "UNAUTHORIZED");

  const client = new Client({
    brokerURL: `ws://127.0.0.1:${server.port}/ws/stomp`,
    connectHeaders: { Authorization: `Bearer ${token("alice")}` },
    reconnectDelay: 0,
  });
  const connected = new Promise((resolve) => (client.onConnect = resolve));
  client.activate();
  await connected;
  const inbox = new Inbox();
  client.subscribe(`/sub/chat/room/${roomId}`, (message) => inbox.push(JSON.parse(message.body)));
  client.publish({ destination: `/app/rooms/${roomId}`, body: JSON.stringify({ type: "ENTER" }) });
  client.publish({ destination: `/app/rooms/${roomId}`, body: JSON.stringify({ type: "TALK", message: "signed" }) });
  await inbox.talk("signed");
  assert.deepEqual(inbox.events.map((e) => [e.type, e.sender]), [["ENTER", "alice"], ["TALK", "alice"]]);
  await client.deactivate();
});

// ---------------------------------------------------------------- legacy stompjs 2.3.3

/**
 * A legacy stompjs client over a WebSocket, or anything that acts like one, not yet open: it
 * sends CONNECT from the socket's onopen.
 */
function legacyConnect(socket, headers = {}) {
  const client = Stomp.over(socket);
  client.debug = null;
  return new Promise((resolve, reject) => {
    client.connect(headers, (frame) => resolve({ client, frame }), (error) => reject(new Error(String(error))));
  });
}

/**
 * The tutorial flow with legacy stompjs over sockets `open` makes (it speaks 1.1 at most), then
 * a resume with last-seq after bob visited.
 */
async function legacyTutorialFlow(server, open) {
  const roomId = await server.createRoom("general");
  const { client, frame } = await legacyConnect(open());
  assert.equal(frame.headers.version, "1.1");
  assert.equal(frame.headers["heart-beat"], "10000,10000");

  const inbox = new Inbox();
  client.subscribe(`/sub/chat/room/${roomId}`, (message) => inbox.push(JSON.parse(message.body)));
  client.send("/pub/chat/message", {}, tutorialBody("ENTER", roomId, "alice"));
  client.send("/pub/chat/message", {}, tutorialBody("TALK", roomId, "alice", "hello from 2013"));
  await inbox.talk("hello from 2013");
  assert.deepEqual(inbox.events.map((e) => [e.type, e.seq]), [["ENTER", 1], ["TALK", 2]]);
  await new Promise((resolve) => client.disconnect(resolve));
  await historyEndingWith(server, roomId, "LEAVE", "alice");

  await talkOverWsChat(server, roomId, "bob", ["missed"]);
  const { client: back } = await legacyConnect(open());
  const resumed = new Inbox();
  back.subscribe(`/sub/chat/room/${roomId}`, (message) => resumed.push(JSON.parse(message.body)), {
    "last-seq": "2",
  });
  await throughSeq(resumed, 6);
  assert.deepEqual(resumed.events.map((e) => [e.seq, e.type, e.sender]), [
    [3, "LEAVE", "alice"],
    [4, "ENTER", "bob"],
    [5, "TALK", "bob"],
    [6, "LEAVE", "bob"],
  ]);
  await new Promise((resolve) => back.disconnect(resolve));
}

test("legacy stompjs 2.3.3: the tutorial flow on 1.1, and a resume with last-seq", { timeout: 30_000 }, async (t) => {
  const server = await Server.for(t);
  const url = `ws://127.0.0.1:${server.port}/ws/stomp`;
  await legacyTutorialFlow(server, () => new WebSocket(url, ["v10.stomp", "v11.stomp"]));
});

// ---------------------------------------------------------------- sockjs-client 1.6

// sockjs-client gives each transport a timeout from the round trip of its `/info` request
// (about 600 ms for a quick one): on this 2-core machine, with Chromium starting beside this
// suite, the WebSocket handshake once took longer and the client gave up on every transport.
// Its documented `timeout` option sets that minimum; what is checked stays the same (the
// WebSocket transport, then the frames).
const SOCKJS_OPTIONS = { timeout: 10_000 };

function openSockJs(url) {
  const sock = new SockJS(url, null, SOCKJS_OPTIONS);
  return new Promise((resolve, reject) => {
    sock.onopen = () => resolve(sock);
    sock.onclose = (event) => reject(new Error(`SockJS closed before opening: ${event.code} ${event.reason}`));
  });
}

test("sockjs-client 1.6 carries /ws/chat's JSON frames, and resumes with lastSeq", { timeout: 30_000 }, async (t) => {
  const server = await Server.for(t);
  const roomId = await server.createRoom("general");
  const url = `http://127.0.0.1:${server.port}/ws/chat`;
  const sock = await openSockJs(url);
  assert.equal(sock.transport, "websocket");
  const inbox = new Inbox();
  sock.onmessage = (message) => inbox.push(JSON.parse(message.data));

  sock.send(JSON.stringify({ type: "ENTER", roomId, sender: "alice" }));
  sock.send(JSON.stringify({ type: "TALK", roomId, sender: "alice", message: "over sockjs", clientMsgId: "c-1" }));
  await inbox.talk("over sockjs");
  assert.deepEqual(inbox.events.map((e) => [e.type, e.seq]), [["ENTER", 1], ["TALK", 2]]);
  assert.equal(inbox.events[1].clientMsgId, "c-1");
  const closed = new Promise((resolve) => (sock.onclose = resolve));
  sock.close();
  await closed;
  await historyEndingWith(server, roomId, "LEAVE", "alice");

  await talkOverWsChat(server, roomId, "bob", ["while away"]);
  const back = await openSockJs(url);
  const resumed = new Inbox();
  back.onmessage = (message) => resumed.push(JSON.parse(message.data));
  back.send(JSON.stringify({ type: "ENTER", roomId, sender: "alice", lastSeq: 2 }));
  await resumed.until((events) => events.some((e) => e.type === "ENTER" && e.sender === "alice"), "alice back");
  assert.deepEqual(
    resumed.events.map((e) => [e.type, e.sender]),
    [["LEAVE", "alice"], ["ENTER", "bob"], ["TALK", "bob"], ["LEAVE", "bob"], ["ENTER", "alice"]],
  );
  back.close();
});

test("sockjs-client 1.6 with legacy stompjs: Stomp.over(new SockJS(url)), as the tutorials", { timeout: 30_000 }, async (t) => {
  const server = await Server.for(t);
  const url = `http://127.0.0.1:${server.port}/ws/stomp`;
  await legacyTutorialFlow(server, () => new SockJS(url, null, SOCKJS_OPTIONS));
});
