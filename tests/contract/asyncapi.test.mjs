// The AsyncAPI document (asyncapi/asyncapi.json) cannot drift from the server: it is valid for
// the AsyncAPI parser, the server serves it as committed, every message the server can send is
// captured from a real server (on /ws/chat and as STOMP MESSAGE frames) and validates against
// its message's schema, and every message the document says the server sends was captured.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";

import { Parser } from "@asyncapi/parser";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import WebSocket from "ws";

const HERE = import.meta.dirname;
const DOCUMENT = path.resolve(HERE, "../../asyncapi/asyncapi.json");
const CHAT_BIN = process.env.CHAT_BIN ?? path.resolve(HERE, "../../target/debug/chat");

/** The identity server's HS256 secret. */
const SECRET = "the-contract-tests-secret-of-32-bytes+";

let server;
let signed;
let parsed;

before(async () => {
  server = await start();
  signed = await start({ CHAT_JWT_SECRET: SECRET });
  const { document, diagnostics } = await new Parser().parse(readFileSync(DOCUMENT, "utf8"));
  const errors = diagnostics.filter((diagnostic) => diagnostic.severity === 0);
  assert.deepEqual(errors, [], "the AsyncAPI parser finds no error");
  parsed = document;
});

after(async () => {
  for (const each of [server, signed]) {
    each?.child.kill("SIGKILL");
    if (each) rmSync(each.dir, { recursive: true, force: true });
  }
});

/** A token the identity server accepts, for `name` (a bot's when its name ends in "-bot"). */
function token(name) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const head = encode({ alg: "HS256", typ: "JWT" });
  const roles = name.endsWith("-bot") ? ["bot"] : [];
  const claims = encode({ sub: name, roles, exp: Math.floor(Date.now() / 1000) + 600 });
  const signature = createHmac("sha256", SECRET).update(`${head}.${claims}`).digest("base64url");
  return `${head}.${claims}.${signature}`;
}

/** The chat binary on a free port over a fresh SQLite file, with these variables too. */
async function start(extra = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "chat-contract-"));
  const child = spawn(CHAT_BIN, [], {
    env: {
      PATH: process.env.PATH,
      CHAT_ADDR: "127.0.0.1:0",
      DATABASE_URL: `sqlite://${path.join(dir, "chat.db")}`,
      CHAT_LOG_FORMAT: "json",
      CHAT_RATE_LIMIT: "off",
      CHAT_RETENTION_CHECK_MS: "50",
      RUST_LOG: "info",
      ...extra,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`the chat binary exited (${code})`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        const log = JSON.parse(line);
        if (log.fields?.message === "listening") resolve(Number(log.fields.addr.split(":").pop()));
      } catch {
        // not a log line
      }
    });
  });
  return { child, dir, base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}` };
}

async function api(method, pathname, body, as) {
  const headers = body ? { "content-type": "application/json" } : {};
  if (as) headers.authorization = `Bearer ${token(as)}`;
  const response = await fetch((as ? signed : server).base + pathname, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** A WebSocket whose incoming messages can be awaited one at a time (signed in as `as`, on the identity server). */
async function socket(pathname, protocols, as) {
  const address = as ? `${signed.ws}${pathname}?access_token=${token(as)}` : server.ws + pathname;
  const ws = new WebSocket(address, protocols);
  const inbox = [];
  const waiting = [];
  ws.on("message", (data) => {
    const text = data.toString();
    const next = waiting.shift();
    if (next) next(text);
    else inbox.push(text);
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  return {
    send: (text) => ws.send(text),
    next: () =>
      inbox.length > 0
        ? Promise.resolve(inbox.shift())
        : new Promise((resolve, reject) => {
            waiting.push(resolve);
            setTimeout(() => reject(new Error("no message in 10 s")), 10_000).unref();
          }),
    close: () => ws.close(),
  };
}

/** Reads JSON frames until one matches. */
async function until(client, matches) {
  for (;;) {
    const frame = JSON.parse(await client.next());
    if (matches(frame)) return frame;
  }
}

/** A STOMP frame as text. */
function stomp(command, headers, body = "") {
  const lines = Object.entries(headers).map(([name, value]) => `${name}:${value}`);
  return `${command}\n${lines.join("\n")}${lines.length ? "\n" : ""}\n${body}\0`;
}

/** Reads STOMP frames until a MESSAGE whose body matches; returns its headers and body. */
async function untilMessage(client, matches) {
  for (;;) {
    const text = await client.next();
    if (text === "\n") continue;
    const [head, ...rest] = text.replace(/\0$/, "").split("\n\n");
    const [command, ...lines] = head.split("\n");
    if (command !== "MESSAGE") continue;
    const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1)]));
    const body = JSON.parse(rest.join("\n\n"));
    if (matches(body)) return { headers, body };
  }
}

/** Drives a real server to send every kind of message once; each capture is [message id, payload, STOMP headers]. */
async function capture() {
  const captured = [];
  const roomId = (await api("POST", "/api/rooms", { name: "contract" })).body.roomId;
  const alice = await socket("/ws/chat");
  const bob = await socket("/ws/chat");
  const keep = (id, frame, headers) => captured.push([id, frame, headers]);

  alice.send(JSON.stringify({ type: "ENTER", roomId, sender: "alice", echo: false }));
  keep("event", await until(alice, (f) => f.type === "ENTER"));
  bob.send(JSON.stringify({ type: "ENTER", roomId, sender: "bob" }));
  await until(bob, (f) => f.type === "ENTER");
  alice.send(JSON.stringify({ type: "TALK", roomId, sender: "alice", message: "hi", clientMsgId: "c-1" }));
  keep("ack", await until(alice, (f) => f.type === "ACK"));
  const hi = await until(bob, (f) => f.type === "TALK");
  keep("event", hi);
  alice.send(JSON.stringify({ type: "TALK", roomId, sender: "alice", message: "hi", clientMsgId: "c-1" }));
  keep("ack", await until(alice, (f) => f.type === "ACK" && f.duplicate));
  bob.send(JSON.stringify({ type: "TALK", roomId, sender: "bob", message: "again", clientMsgId: "b-1" }));
  await until(bob, (f) => f.clientMsgId === "b-1");
  bob.send(JSON.stringify({ type: "TALK", roomId, sender: "bob", message: "again", clientMsgId: "b-1" }));
  keep("event", await until(bob, (f) => f.duplicate === true));
  bob.send(JSON.stringify({ type: "TYPING", roomId, sender: "bob" }));
  keep("typingNotice", await until(alice, (f) => f.type === "TYPING"));
  bob.send(JSON.stringify({ type: "READ", roomId, sender: "bob", seq: 2 }));
  keep("readNotice", await until(alice, (f) => f.type === "READ"));
  for (const text of ["not json", "[]", JSON.stringify({ type: "TALK", roomId, sender: "bob", message: "x".repeat(4001), clientMsgId: "long" })]) {
    alice.send(text);
    keep("error", await until(alice, (f) => f.type === "ERROR"));
  }
  await captureChanges(alice, bob, roomId, hi.seq, keep);
  bob.send(JSON.stringify({ type: "LEAVE", roomId, sender: "bob" }));
  keep("event", await until(alice, (f) => f.type === "LEAVE"));

  const stompClient = await socket("/ws/stomp", ["v12.stomp"]);
  stompClient.send(stomp("CONNECT", { "accept-version": "1.2" }));
  stompClient.send(stomp("SUBSCRIBE", { id: "errors", destination: "/user/queue/errors" }));
  stompClient.send(stomp("SUBSCRIBE", { id: "room", destination: `/topic/rooms/${roomId}` }));
  const send = (body) => stompClient.send(stomp("SEND", { destination: `/app/rooms/${roomId}` }, JSON.stringify(body)));
  send({ type: "ENTER", sender: "carol" });
  const entered = await untilMessage(stompClient, (b) => b.type === "ENTER" && b.sender === "carol");
  keep("stompEvent", entered.body, entered.headers);
  send({ type: "TALK", sender: "carol", message: "once", clientMsgId: "s-1" });
  await untilMessage(stompClient, (b) => b.clientMsgId === "s-1");
  send({ type: "TALK", sender: "carol", message: "once", clientMsgId: "s-1" });
  const resent = await untilMessage(stompClient, (b) => b.duplicate === true);
  keep("stompDuplicate", resent.body, resent.headers);
  alice.send(JSON.stringify({ type: "TYPING", roomId, sender: "alice" }));
  const typing = await untilMessage(stompClient, (b) => b.type === "TYPING");
  keep("stompTypingNotice", typing.body, typing.headers);
  alice.send(JSON.stringify({ type: "READ", roomId, sender: "alice", seq: 3 }));
  const read = await untilMessage(stompClient, (b) => b.type === "READ");
  keep("stompReadNotice", read.body, read.headers);
  send({ type: "TALK", sender: "carol" });
  const refused = await untilMessage(stompClient, (b) => b.type === "ERROR");
  keep("stompRefusal", refused.body, refused.headers);

  await captureTruncated(keep);
  await captureModeration(keep);
  assert.equal((await api("DELETE", `/api/rooms/${roomId}`)).status, 204);
  keep("closed", await until(alice, (f) => f.type === "CLOSED"));
  const closed = await untilMessage(stompClient, (b) => b.type === "CLOSED");
  keep("stompClosed", closed.body, closed.headers);
  for (const client of [alice, bob, stompClient]) client.close();
  return captured;
}

/** Messages that change: each kind of change, its refusals, and the TALKs as storage answers them (replayed). */
async function captureChanges(alice, bob, roomId, hiSeq, keep) {
  const frame = (client, fields) => client.send(JSON.stringify({ roomId, ...fields }));
  frame(bob, { type: "TALK", sender: "bob", message: "re", replyTo: hiSeq });
  keep("event", await until(alice, (f) => f.type === "TALK" && f.replyTo === hiSeq));
  frame(alice, { type: "EDIT", sender: "alice", targetSeq: hiSeq, message: "hi!" });
  keep("event", await until(bob, (f) => f.type === "EDIT"));
  for (const [type, emoji] of [["REACT", "👍"], ["UNREACT", "👍"], ["REACT", ":tada:"]]) {
    frame(bob, { type, sender: "bob", targetSeq: hiSeq, emoji });
    keep("event", await until(alice, (f) => f.type === type));
  }
  frame(alice, { type: "TALK", sender: "alice", message: "oops", clientMsgId: "oops" });
  const oops = await until(alice, (f) => f.type === "ACK" && f.clientMsgId === "oops");
  frame(alice, { type: "DELETE", sender: "alice", targetSeq: oops.seq });
  keep("event", await until(bob, (f) => f.type === "DELETE"));
  for (const refused of [
    { type: "EDIT", sender: "bob", targetSeq: hiSeq, message: "mine" },
    { type: "EDIT", sender: "bob", targetSeq: 999, message: "x" },
    { type: "REACT", sender: "bob", targetSeq: hiSeq, emoji: ":tada:" },
  ]) {
    frame(bob, refused);
    keep("error", await until(bob, (f) => f.type === "ERROR"));
  }
  const replay = await socket("/ws/chat");
  frame(replay, { type: "ENTER", sender: "dave", lastSeq: 0 });
  for (;;) {
    const event = await until(replay, (f) => f.seq !== undefined);
    keep("event", event);
    if (event.type === "ENTER" && event.sender === "dave") break;
  }
  replay.close();
}

/** A resume below what a room's retention kept, on /ws/chat and STOMP. */
async function captureTruncated(keep) {
  const roomId = (await api("POST", "/api/rooms", { name: "retained" })).body.roomId;
  const writer = await socket("/ws/chat");
  writer.send(JSON.stringify({ type: "ENTER", roomId, sender: "erin" }));
  for (const message of ["one", "two", "three"]) {
    writer.send(JSON.stringify({ type: "TALK", roomId, sender: "erin", message }));
  }
  await until(writer, (f) => f.message === "three");
  writer.close();
  assert.equal((await api("PATCH", `/api/rooms/${roomId}`, { retention: { maxEvents: 2 } })).status, 200);
  while ((await api("GET", `/api/rooms/${roomId}`)).body.firstSeq === 1) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const reader = await socket("/ws/chat");
  reader.send(JSON.stringify({ type: "ENTER", roomId, sender: "frank", lastSeq: 0 }));
  keep("truncated", await until(reader, (f) => f.type === "TRUNCATED"));
  reader.close();
  const stompReader = await socket("/ws/stomp", ["v12.stomp"]);
  stompReader.send(stomp("CONNECT", { "accept-version": "1.2" }));
  stompReader.send(stomp("SUBSCRIBE", { id: "r", destination: `/topic/rooms/${roomId}`, "last-seq": "0" }));
  const truncated = await untilMessage(stompReader, (b) => b.type === "TRUNCATED");
  keep("stompTruncated", truncated.body, truncated.headers);
  stompReader.close();
}

/** Identity mode: a mute, a kick and a ban, seen by their target on /ws/chat and STOMP. */
async function captureModeration(keep) {
  const roomId = (await api("POST", "/api/rooms", { name: "team", visibility: "private" }, "alice")).body.roomId;
  for (const name of ["bob", "carol"]) {
    assert.equal((await api("PUT", `/api/rooms/${roomId}/roles/${name}`, { role: "member" }, "alice")).status, 200);
  }
  const bob = await socket("/ws/chat", undefined, "bob");
  bob.send(JSON.stringify({ type: "ENTER", roomId, sender: "bob" }));
  await until(bob, (f) => f.type === "ENTER");
  const carol = await socket("/ws/stomp", ["v12.stomp"], "carol");
  carol.send(stomp("CONNECT", { "accept-version": "1.2" }));
  carol.send(stomp("SUBSCRIBE", { id: "room", destination: `/topic/rooms/${roomId}` }));
  carol.send(stomp("SEND", { destination: `/app/rooms/${roomId}` }, JSON.stringify({ type: "ENTER" })));
  await untilMessage(carol, (b) => b.type === "ENTER" && b.sender === "carol");

  assert.equal((await api("POST", `/api/rooms/${roomId}/messages`, { message: "deployed" }, "deploy-bot")).status, 404, "a bot with no role is an outsider");
  assert.equal((await api("PUT", `/api/rooms/${roomId}/roles/deploy-bot`, { role: "member" }, "alice")).status, 200);
  assert.equal((await api("POST", `/api/rooms/${roomId}/messages`, { message: "deployed" }, "deploy-bot")).status, 201);
  keep("event", await until(bob, (f) => f.type === "TALK" && f.bot === true));
  assert.equal((await api("PUT", `/api/rooms/${roomId}/mutes/bob`, { until: new Date(Date.now() + 60_000).toISOString() }, "alice")).status, 200);
  keep("event", await until(bob, (f) => f.type === "MODERATION"));
  bob.send(JSON.stringify({ type: "TALK", roomId, sender: "bob", message: "hush" }));
  keep("error", await until(bob, (f) => f.type === "ERROR"));
  assert.equal((await api("DELETE", `/api/rooms/${roomId}/members/carol`, undefined, "alice")).status, 204);
  const kicked = await untilMessage(carol, (b) => b.type === "REMOVED");
  keep("stompRemoved", kicked.body, kicked.headers);
  assert.equal((await api("PUT", `/api/rooms/${roomId}/bans/bob`, { reason: "spam" }, "alice")).status, 200);
  keep("event", await until(bob, (f) => f.type === "MODERATION" && f.action === "ban"));
  keep("removed", await until(bob, (f) => f.type === "REMOVED"));
  bob.send(JSON.stringify({ type: "ENTER", roomId, sender: "bob" }));
  keep("error", await until(bob, (f) => f.type === "ERROR"));
  for (const client of [bob, carol]) client.close();
}

test("the server serves the committed document at /asyncapi.json", async () => {
  const response = await fetch(`${server.base}/asyncapi.json`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type"), /^application\/json/);
  assert.equal(await response.text(), readFileSync(DOCUMENT, "utf8"));
});

test("every message the server sends validates against its schema, and the document lists no other", async () => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const document = JSON.parse(readFileSync(DOCUMENT, "utf8"));
  ajv.addSchema(document, "asyncapi");
  const validator = (pointer) => ajv.getSchema(`asyncapi#${pointer}`);

  const sent = new Set();
  for (const operation of parsed.operations().all().filter((op) => op.action() === "send")) {
    for (const message of operation.messages().all()) sent.add(message.id());
  }
  const captured = await capture();
  for (const [id, payload, headers] of captured) {
    assert.ok(sent.has(id), `${id} is a message the document says the server sends`);
    const message = document.components.messages[id];
    const valid = validator(message.payload.$ref.slice(1));
    assert.ok(valid(payload), `${id}: ${JSON.stringify(payload)}: ${ajv.errorsText(valid.errors)}`);
    if (message.headers) {
      const validHeaders = validator(message.headers.$ref.slice(1));
      assert.ok(validHeaders(headers), `${id} headers: ${JSON.stringify(headers)}: ${ajv.errorsText(validHeaders.errors)}`);
    }
  }
  const kinds = new Set(captured.filter(([id]) => id === "event").map(([, payload]) => payload.type));
  const listed = document.components.schemas.Event.properties.type.enum;
  assert.deepEqual(listed.filter((kind) => !kinds.has(kind)), [], "every event type the document lists was sent");
  const replayed = captured.filter(([id, payload]) => id === "event" && payload.type === "TALK");
  for (const field of ["editedAt", "deleted", "reactions", "replyTo"]) {
    assert.ok(replayed.some(([, payload]) => payload[field] !== undefined), `a TALK with ${field} was sent`);
  }
  const seen = new Set(captured.map(([id]) => id));
  assert.deepEqual([...sent].filter((id) => !seen.has(id)), [], "every message the server sends was seen");
});
