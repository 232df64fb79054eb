// The comparison peer for scripts/bench: the contract's core (rooms over REST, ENTER, TALK and
// LEAVE on /ws/chat with a per-room seq, fan-out to the room only, the sender included) as a
// Node.js developer would write it with the `ws` package, in memory: no storage, no history, no
// resume. It stands for "what a plain Node server costs", so it does nothing more than that.
//
//   node bench/peer/server.mjs [port]      (127.0.0.1; default 8091)

import { randomUUID } from "node:crypto";
import { createServer } from "node:http";

import { WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? 8091);
/** A member this many bytes behind is closed, as the service closes a slow one (1013). */
const MOST_BUFFERED = 4 * 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class Room {
  constructor(name, position) {
    this.roomId = randomUUID();
    this.name = name;
    this.createdAt = new Date().toISOString();
    this.position = position;
    this.lastSeq = 0;
    /** socket -> the sender it entered with */
    this.members = new Map();
  }

  json() {
    const { roomId, name, createdAt, lastSeq } = this;
    return { roomId, name, createdAt, memberCount: this.members.size, lastSeq };
  }

  /** Stamps an event and sends one serialization of it to every member. */
  publish(type, sender, message, clientMsgId) {
    this.lastSeq += 1;
    const event = { type, roomId: this.roomId, seq: this.lastSeq, messageId: randomUUID(), sender, message, sentAt: new Date().toISOString() };
    if (typeof clientMsgId === "string") event.clientMsgId = clientMsgId;
    const text = JSON.stringify(event);
    for (const socket of this.members.keys()) {
      if (socket.bufferedAmount > MOST_BUFFERED) {
        this.members.delete(socket);
        socket.close(1013, "too slow to read events");
      } else {
        socket.send(text);
      }
    }
  }
}

const rooms = new Map();
const created = [];

/** Whether text has more than `most` characters (code points), counting only when it may. */
function longer(text, most) {
  return text.length > most && [...text].length > most;
}

function reply(response, status, body, headers = {}) {
  const text = JSON.stringify(body);
  const type = status >= 400 ? "application/problem+json" : "application/json";
  response.writeHead(status, { "content-type": type, ...headers }).end(text);
}

function refuse(response, status, code, detail) {
  reply(response, status, { type: "about:blank", title: code, status, detail, code });
}

function readJson(request) {
  return new Promise((resolve) => {
    let text = "";
    request.setEncoding("utf8");
    request.on("data", (chunk) => (text += chunk));
    request.on("end", () => {
      try {
        resolve(JSON.parse(text));
      } catch {
        resolve(undefined);
      }
    });
  });
}

async function createRoom(request, response) {
  const name = (await readJson(request))?.name;
  const trimmed = typeof name === "string" ? name.trim() : "";
  if (trimmed.length === 0 || longer(trimmed, 100)) return refuse(response, 400, "INVALID_REQUEST", "name: 1 to 100 characters");
  const room = new Room(trimmed, created.length);
  rooms.set(room.roomId, room);
  created.push(room);
  reply(response, 201, room.json(), { location: `/api/rooms/${room.roomId}` });
}

function listRooms(url, response) {
  const limit = Number(url.searchParams.get("limit") ?? 100);
  const before = Number(url.searchParams.get("cursor") || created.length);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000 || !Number.isInteger(before)) return refuse(response, 400, "INVALID_REQUEST", "bad limit or cursor");
  const from = Math.max(0, Math.min(before, created.length) - limit);
  const items = created.slice(from, before).reverse().map((room) => room.json());
  reply(response, 200, { items, nextCursor: from > 0 ? String(from) : null });
}

const http = createServer((request, response) => {
  const url = new URL(request.url, "http://peer");
  const route = `${request.method} ${url.pathname}`;
  if (route === "GET /healthz" || route === "GET /readyz") return response.end("ok");
  if (route === "POST /api/rooms") return void createRoom(request, response);
  if (route === "GET /api/rooms") return listRooms(url, response);
  const room = url.pathname.startsWith("/api/rooms/") && rooms.get(url.pathname.slice(11).toLowerCase());
  if (request.method === "GET" && room) return reply(response, 200, room.json());
  refuse(response, 404, "NOT_FOUND", "no such room or route");
});

const sockets = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
http.on("upgrade", (request, socket, head) => {
  if (new URL(request.url, "http://peer").pathname !== "/ws/chat") return socket.destroy();
  sockets.handleUpgrade(request, socket, head, (ws) => serve(ws));
});

function serve(ws) {
  /** The rooms this socket is in. */
  const joined = new Set();
  const error = (code, message, frame = {}) => {
    const body = { type: "ERROR", code, message };
    if (typeof frame.roomId === "string") body.roomId = frame.roomId;
    if (typeof frame.clientMsgId === "string") body.clientMsgId = frame.clientMsgId;
    ws.send(JSON.stringify(body));
  };
  const leave = (room) => {
    const sender = room.members.get(ws);
    room.members.delete(ws);
    joined.delete(room);
    room.publish("LEAVE", sender, `${sender} left the room.`);
  };

  ws.on("message", (data, binary) => {
    if (binary) return ws.close(1003, "binary frames are not accepted");
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return error("INVALID_JSON", "not JSON");
    }
    if (typeof frame !== "object" || frame === null || Array.isArray(frame)) return error("INVALID_MESSAGE", "a frame is a JSON object");
    const sender = typeof frame.sender === "string" ? frame.sender.trim() : "";
    if (!["ENTER", "TALK", "LEAVE"].includes(frame.type) || !UUID.test(frame.roomId ?? "") || sender.length === 0 || longer(sender, 64)) {
      return error("INVALID_MESSAGE", "a type, a roomId and a sender of 1 to 64 characters", frame);
    }
    const room = rooms.get(frame.roomId.toLowerCase());
    if (frame.type === "ENTER") {
      if (!room) return error("ROOM_NOT_FOUND", `room ${frame.roomId} does not exist`, frame);
      if (joined.has(room)) return;
      room.members.set(ws, sender);
      joined.add(room);
      return room.publish("ENTER", sender, `${sender} entered the room.`);
    }
    if (!room || !joined.has(room)) return error("NOT_IN_ROOM", "ENTER first", frame);
    if (room.members.get(ws) !== sender) return error("SENDER_MISMATCH", "not the sender that entered", frame);
    if (frame.type === "LEAVE") return leave(room);
    const message = frame.message;
    if (typeof message !== "string" || message.length === 0) return error("INVALID_MESSAGE", "a message is 1 to 4,000 characters", frame);
    if (longer(message, 4000)) return error("MESSAGE_TOO_LONG", "a message is 1 to 4,000 characters", frame);
    room.publish("TALK", sender, message, frame.clientMsgId);
  });
  ws.on("close", () => [...joined].forEach(leave));
  ws.on("error", () => {});
}

http.listen(port, "127.0.0.1", () => console.error(`bench peer on 127.0.0.1:${port}`));
