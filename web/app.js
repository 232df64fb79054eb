// The chat page: plain JavaScript, no build step. Everything a user or another member wrote is
// put on the page with textContent, never as HTML.

import { Unauthorized, api, authorize, plainError } from "./api.js";
import { Connection } from "./connection.js";
import { Identity } from "./identity.js";

const $ = (id) => document.getElementById(id);

const ui = {
  status: $("connection-status"),
  reconnect: $("reconnect-button"),
  identityPanel: $("identity-panel"),
  identityStatus: $("identity-status"),
  changeToken: $("change-token-button"),
  tokenForm: $("token-form"),
  tokenInput: $("token-input"),
  nickname: $("nickname-input"),
  createForm: $("create-room-form"),
  roomName: $("room-name-input"),
  createButton: $("create-room-button"),
  roomList: $("room-list"),
  roomsEmpty: $("rooms-empty"),
  moreRooms: $("more-rooms-button"),
  chat: $("chat"),
  roomTitle: $("room-title"),
  roomSubtitle: $("room-subtitle"),
  enter: $("enter-button"),
  leave: $("leave-button"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  noticeClose: $("notice-close"),
  log: $("message-log"),
  members: $("member-list"),
  typing: $("typing-indicator"),
  outbox: $("outbox"),
  composer: $("composer"),
  message: $("message-input"),
  send: $("send-button"),
};

const HISTORY_LIMIT = 50;
const ROOM_PAGE = 100;
const ROOM_POLL_MS = 5000;
const NICKNAME_KEY = "chat.nickname";
// A typing notice is shown this long unless renewed; while typing, one goes out this often.
const TYPING_SHOWN_MS = 5000;
const TYPING_EVERY_MS = 3000;
// What has been shown is reported read this long after it was shown (batching a burst).
const READ_AFTER_MS = 400;
// Member events kept while the members list is on its way, to apply those it does not reflect.
const MEMBER_EVENTS_KEPT = 500;

const state = {
  rooms: new Map(),
  roomPages: 1,
  selectedRoomId: null,
  // The room this page is in: `phase` is "loading" (reading history), "entering" (ENTER sent,
  // replay arriving) or "joined" (our ENTER event came back, so the replay is complete).
  room: null,
  // Messages typed but not yet acknowledged, in the order they were typed.
  outbox: [],
  // Whether the server lets this page in: "unknown" (not asked yet, or not reachable), "open"
  // (no sign-in), "signed" (it accepts our token) or "needed" (it wants a token: `problem` says
  // whether ours is missing, refused or expired).
  access: "unknown",
  problem: null,
  problemDetail: "",
  changingToken: false,
};

const identity = new Identity();
authorize(identity.headers);

// ---------------------------------------------------------------- small helpers

function newId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showNotice(text) {
  ui.noticeText.textContent = text;
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  ui.noticeText.textContent = "";
}

function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ""
    : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function nickname() {
  return ui.nickname.value.trim();
}

const connection = new Connection({
  query: () => identity.socketQuery,
  onStatus: renderStatus,
  onOpen: resumeRoom,
  onClose: connectionLost,
  onFrame: receiveFrame,
});

function renderStatus(kind, seconds) {
  const text = {
    connecting: "Connecting…",
    open: "Connected",
    waiting: `Disconnected. Reconnecting in ${seconds} s…`,
    stopped: "Not connected: sign in first.",
  }[kind];
  ui.status.textContent = text;
  ui.status.dataset.state = kind === "waiting" ? "reconnecting" : kind;
  ui.reconnect.hidden = kind !== "waiting";
  renderRoom();
}

// ---------------------------------------------------------------- rooms list

// Each refresh takes a ticket; only the newest may apply its answer, so a slow poll that left
// before a room was created cannot remove that room from the list.
let roomsTicket = 0;

async function refreshRooms() {
  if (state.access === "needed") return;
  const ticket = ++roomsTicket;
  let cursor = null;
  const rooms = [];
  try {
    for (let page = 0; page < state.roomPages; page += 1) {
      const query = new URLSearchParams({ limit: String(ROOM_PAGE) });
      if (cursor) query.set("cursor", cursor);
      const body = await api(`/api/rooms?${query}`);
      rooms.push(...body.items);
      cursor = body.nextCursor;
      if (!cursor) break;
    }
  } catch (error) {
    // The connection status already says when the server is away.
    if (error instanceof Unauthorized) needToken(error);
    return;
  }
  admitted();
  if (ticket !== roomsTicket) return;
  state.rooms = new Map(rooms.map((room) => [room.roomId, room]));
  if (!state.rooms.has(state.selectedRoomId)) state.selectedRoomId = null;
  ui.moreRooms.hidden = !cursor;
  renderRoom();
}

let refreshSoon = null;
function scheduleRoomRefresh() {
  clearTimeout(refreshSoon);
  refreshSoon = setTimeout(refreshRooms, 300);
}

// Updates the list in place, so a room that has keyboard focus keeps it across refreshes.
function renderRooms() {
  const existing = new Map(
    Array.from(ui.roomList.children, (item) => [item.dataset.roomId, item]),
  );
  let position = 0;
  for (const room of state.rooms.values()) {
    const item = existing.get(room.roomId) ?? roomItem(room.roomId);
    existing.delete(room.roomId);
    fillRoomItem(item, room);
    const current = ui.roomList.children[position];
    if (current !== item) ui.roomList.insertBefore(item, current ?? null);
    position += 1;
  }
  for (const stale of existing.values()) stale.remove();
  // Behind the sign-in, the rooms are not empty, only out of sight.
  ui.roomsEmpty.hidden = state.rooms.size > 0 || state.access === "needed";
}

function roomItem(roomId) {
  const item = element("li", "room");
  item.dataset.roomId = roomId;
  const button = element("button", "room-button");
  button.type = "button";
  button.append(element("span", "room-name"), element("span", "room-count"));
  button.addEventListener("click", () => selectRoom(roomId));
  item.append(button);
  return item;
}

function fillRoomItem(item, room) {
  const button = item.firstElementChild;
  const selected = room.roomId === state.selectedRoomId;
  const inside = room.roomId === state.room?.id;
  item.classList.toggle("selected", selected);
  item.classList.toggle("inside", inside);
  button.setAttribute("aria-pressed", String(selected));
  button.querySelector(".room-name").textContent = room.name;
  const count = room.memberCount === 1 ? "1 online" : `${room.memberCount} online`;
  button.querySelector(".room-count").textContent = count;
  button.title = inside ? `${room.name} (you are here)` : room.name;
}

function selectRoom(roomId) {
  state.selectedRoomId = roomId;
  renderRoom();
}

async function createRoom(event) {
  event.preventDefault();
  const name = ui.roomName.value.trim();
  if (!name) {
    showNotice("Give the new room a name.");
    ui.roomName.focus();
    return;
  }
  ui.createButton.disabled = true;
  try {
    const room = await api("/api/rooms", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name }),
    });
    ui.roomName.value = "";
    hideNotice();
    roomsTicket += 1;
    state.rooms = new Map([[room.roomId, room], ...state.rooms]);
    selectRoom(room.roomId);
  } catch (error) {
    if (error instanceof Unauthorized) needToken(error);
    showNotice(error.message);
  } finally {
    ui.createButton.disabled = false;
  }
}

// ---------------------------------------------------------------- entering and leaving

async function enterSelectedRoom() {
  const roomId = state.selectedRoomId;
  const sender = nickname();
  if (!roomId) return;
  if (!sender) {
    showNotice("Pick a nickname first.");
    ui.nickname.focus();
    return;
  }
  if (state.room) leaveRoom();
  hideNotice();
  const name = state.rooms.get(roomId)?.name ?? "room";
  const room = {
    id: roomId,
    name,
    sender,
    lastSeq: 0,
    phase: "loading",
    enterId: null,
    // Who is here: sender -> { sessions, since }, as of the seq `membersAsOf`; null until listed.
    members: null,
    membersAsOf: 0,
    memberEvents: [],
    // The highest seq each sender has read (READ notices, and the members list).
    readSeqs: new Map(),
    readSent: 0,
    readTimer: null,
    // Who is typing: sender -> the timer that hides their notice.
    typing: new Map(),
    typingSent: 0,
  };
  state.room = room;
  ui.log.replaceChildren();
  renderRoom();
  try {
    const history = await api(`/api/rooms/${roomId}/messages?limit=${HISTORY_LIMIT}`);
    if (state.room !== room) return;
    history.items.forEach(showEvent);
  } catch (error) {
    if (state.room !== room) return;
    if (error instanceof Unauthorized) needToken(error);
    showNotice(error.message);
    endVisit("the room could not be entered.");
    return;
  }
  sendEnter();
  ui.message.focus();
}

// ENTER with the last seq on screen: the server replays whatever came after it, then our own
// ENTER event comes back, which tells us the replay is complete.
function sendEnter() {
  const room = state.room;
  if (!room) return;
  room.enterId = newId("enter-");
  room.phase = "entering";
  connection.send({
    type: "ENTER",
    roomId: room.id,
    sender: room.sender,
    lastSeq: room.lastSeq,
    clientMsgId: room.enterId,
  });
  // Whatever waits goes out right behind the ENTER, which the server takes first: one that was
  // stored before (its acknowledgement lost with the connection) is not stored again.
  flushOutbox();
  renderRoom();
}

function resumeRoom() {
  if (state.room && state.room.phase !== "loading") sendEnter();
}

// `event` is the socket's close event; none when the page closed it itself.
function connectionLost(event) {
  if (state.room && state.room.phase !== "loading") state.room.phase = "entering";
  for (const item of state.outbox) {
    if (item.status === "sending") item.status = "queued";
  }
  renderOutbox();
  renderRoom();
  // A refused upgrade looks like any drop to a page; a token that expired closes with 1008.
  if (event && state.access !== "open" && state.access !== "needed") refreshRooms();
}

function leaveRoom() {
  const room = state.room;
  if (!room) return;
  // While history loads, the server has not been asked to let us in yet.
  if (room.phase !== "loading") {
    connection.send({ type: "LEAVE", roomId: room.id, sender: room.sender, clientMsgId: newId("leave-") });
  }
  ui.log.replaceChildren();
  endVisit("you left the room.");
}

// The page is no longer in the room: whatever waited to be sent there is marked with why.
function endVisit(reason) {
  const room = state.room;
  state.room = null;
  for (const timer of room.typing.values()) clearTimeout(timer);
  clearTimeout(room.readTimer);
  renderPresence();
  for (const item of state.outbox) {
    if (item.roomId === room.id && item.status !== "failed") {
      item.status = "failed";
      item.reason = `Not sent: ${reason}`;
    }
  }
  renderOutbox();
  renderRoom();
  scheduleRoomRefresh();
}

// ---------------------------------------------------------------- signing in

const PROBLEM_TEXT = {
  missing: "This chat needs a sign-in token. Paste the one you were given, or open the link that carries it.",
  refused: "That sign-in token was refused",
  expired: "Your sign-in token has expired. Paste a fresh one to carry on: no message will be lost.",
};

// The server listed the rooms: it lets this page in, with or without a token. (When it
// wants a token, refreshRooms stops connecting and asks for one; a server out of reach leaves
// the question open.)
function admitted() {
  if (state.access !== "unknown") return;
  state.access = identity.token ? "signed" : "open";
  renderIdentity();
}

// Lists the rooms, and connects unless the server wants a token (a server out of reach: the
// connection then reports that, and the page asks again when it drops).
async function admit() {
  state.access = "unknown";
  await refreshRooms();
  if (state.access === "needed") return;
  connection.open();
}

function needToken(error) {
  state.access = "needed";
  if (!identity.token) state.problem = "missing";
  else if (identity.expired || /expired/i.test(error.detail)) state.problem = "expired";
  else state.problem = "refused";
  state.problemDetail = error.detail;
  connection.stop();
  renderIdentity();
}

function signIn(event) {
  event.preventDefault();
  const token = ui.tokenInput.value.trim();
  if (!token) {
    ui.tokenInput.focus();
    return;
  }
  ui.tokenInput.value = "";
  identity.use(token);
  authorize(identity.headers);
  // The room carries on under the new token's name: its replay starts where the log ends.
  if (state.room && identity.name) state.room.sender = identity.name;
  state.changingToken = false;
  connection.stop();
  admit();
}

function renderIdentity() {
  const { access } = state;
  ui.identityPanel.hidden = access !== "signed" && access !== "needed";
  ui.identityPanel.dataset.state = access === "needed" ? state.problem : access;
  ui.tokenForm.hidden = access !== "needed" && !state.changingToken;
  ui.changeToken.hidden = access !== "signed" || state.changingToken;
  if (access === "signed") ui.identityStatus.textContent = signedInText();
  if (access === "needed") ui.identityStatus.textContent = problemText();
  renderRoom();
}

function signedInText() {
  const admin = identity.isAdmin ? " (admin)" : "";
  const until = identity.expiresAt ? `, until ${formatTime(identity.expiresAt.toISOString())}` : "";
  return `Signed in as ${identity.name}${admin}${until}.`;
}

function problemText() {
  const text = PROBLEM_TEXT[state.problem];
  return state.problem === "refused" ? `${text}: ${state.problemDetail}. Paste a valid one.` : text;
}

// In identity mode the name comes from the token; the server refuses any other.
function nameFromToken() {
  return identity.token && identity.name ? identity.name : null;
}

// ---------------------------------------------------------------- frames from the server

function receiveFrame(frame) {
  if (frame.type === "ERROR") return receiveError(frame);
  if (frame.type === "CLOSED") return roomClosed(frame.roomId);
  if (frame.type === "TYPING") return someoneTyping(frame);
  if (frame.type === "READ" && frame.roomId === state.room?.id) return someoneRead(frame.sender, frame.seq);
  if (typeof frame.seq === "number") receiveEvent(frame);
}

function receiveEvent(event) {
  const room = state.room;
  // While history loads, a late event from an earlier visit to this room would jump ahead of it.
  if (!room || event.roomId !== room.id || room.phase === "loading") return;
  showEvent(event);
  if (event.type === "ENTER" && event.clientMsgId === room.enterId) {
    room.phase = "joined";
    flushOutbox();
    renderRoom();
    loadMembers(room);
  }
  if (event.type !== "TALK") scheduleRoomRefresh();
  reportRead();
}

function receiveError(frame) {
  // Typing and read notices are best effort: a refused one is not worth a word.
  if (/^(typing|read)-/.test(frame.clientMsgId ?? "")) return;
  const text = plainError(frame.code, frame.message);
  const room = state.room;
  if (room && frame.clientMsgId && frame.clientMsgId === room.enterId) {
    ui.log.replaceChildren();
    showNotice(`Could not enter “${room.name}”: ${text}`);
    endVisit("the room could not be entered.");
    return;
  }
  const item = state.outbox.find((entry) => entry.id === frame.clientMsgId);
  if (item) {
    item.status = "failed";
    item.reason = `Not sent: ${text}`;
    renderOutbox();
    return;
  }
  showNotice(text);
}

function roomClosed(roomId) {
  const room = state.room;
  if (!room || room.id !== roomId) return;
  showNotice(`The room “${room.name}” was deleted.`);
  if (state.selectedRoomId === roomId) state.selectedRoomId = null;
  endVisit("the room was deleted.");
}

// ---------------------------------------------------------------- the log

// Shows each seq once, in order: anything at or below the last seq shown is already on screen.
function showEvent(event) {
  const room = state.room;
  // The acknowledgement of a message, or of a resend of one (`duplicate`), empties its slot.
  const acknowledged = state.outbox.findIndex((item) => item.id === event.clientMsgId);
  if (acknowledged >= 0) {
    state.outbox.splice(acknowledged, 1);
    renderOutbox();
  }
  if (event.seq <= room.lastSeq) return;
  room.lastSeq = event.seq;
  const stick = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 40;
  ui.log.append(eventItem(event, room.sender));
  if (stick) ui.log.scrollTop = ui.log.scrollHeight;
  if (event.type === "TALK") stopTyping(event.sender);
  else memberEvent(event);
}

function eventItem(event, me) {
  const kind = String(event.type).toLowerCase();
  const item = element("li", `event ${kind}`);
  item.dataset.seq = String(event.seq);
  const time = element("time", "time", formatTime(event.sentAt));
  time.dateTime = event.sentAt;
  time.title = new Date(event.sentAt).toLocaleString();
  if (event.type === "TALK") {
    const meta = element("div", "meta");
    meta.append(element("span", "sender", event.sender), time);
    item.append(meta, element("p", "text", event.message));
    if (event.sender === me) {
      item.classList.add("mine");
      const readBy = element("p", "read-by");
      readBy.dataset.testid = "read-by";
      item.append(readBy);
      fillReadBy(readBy, event.seq);
    }
  } else {
    item.append(element("span", "text", event.message), time);
  }
  return item;
}

// ---------------------------------------------------------------- who is here, typing, has read

// Lists the room's members (every page), then applies the ENTER and LEAVE events shown
// meanwhile that the list does not reflect yet (those after its asOfSeq).
async function loadMembers(room) {
  room.memberEvents = [];
  const members = new Map();
  let asOf = 0;
  let cursor = "";
  try {
    do {
      const query = new URLSearchParams({ limit: "1000", cursor });
      const page = await api(`/api/rooms/${room.id}/members?${query}`);
      for (const item of page.items) {
        members.set(item.sender, { sessions: item.sessions, since: item.since });
        raiseRead(room, item.sender, item.readSeq);
      }
      asOf = Math.max(asOf, page.asOfSeq);
      cursor = page.nextCursor ?? "";
    } while (cursor);
  } catch {
    // Listed again on the next visit or reconnect; the log still works meanwhile.
    return;
  }
  if (state.room !== room) return;
  room.members = members;
  room.membersAsOf = asOf;
  for (const event of room.memberEvents) applyMemberEvent(room, event);
  room.memberEvents = [];
  renderPresence();
}

// Applied to the list on screen, and kept for a list on its way (which may not reflect it).
function memberEvent(event) {
  const room = state.room;
  room.memberEvents.push(event);
  if (room.memberEvents.length > MEMBER_EVENTS_KEPT) room.memberEvents.shift();
  if (!room.members) return;
  applyMemberEvent(room, event);
  renderMembers();
}

function applyMemberEvent(room, event) {
  if (event.seq <= room.membersAsOf) return;
  room.membersAsOf = event.seq;
  const member = room.members.get(event.sender);
  if (event.type === "ENTER") {
    if (member) member.sessions += 1;
    else room.members.set(event.sender, { sessions: 1, since: event.sentAt });
  } else if (event.type === "LEAVE" && member) {
    member.sessions -= 1;
    if (member.sessions <= 0) room.members.delete(event.sender);
  }
}

function someoneTyping(notice) {
  const room = state.room;
  if (!room || notice.roomId !== room.id || notice.sender === room.sender) return;
  clearTimeout(room.typing.get(notice.sender));
  room.typing.set(notice.sender, setTimeout(() => stopTyping(notice.sender), TYPING_SHOWN_MS));
  renderTyping();
}

function stopTyping(sender) {
  const room = state.room;
  if (!room?.typing.has(sender)) return;
  clearTimeout(room.typing.get(sender));
  room.typing.delete(sender);
  renderTyping();
}

function raiseRead(room, sender, seq) {
  if (seq > (room.readSeqs.get(sender) ?? 0)) room.readSeqs.set(sender, seq);
}

function someoneRead(sender, seq) {
  raiseRead(state.room, sender, seq);
  renderReadBy();
}

// Typing and read notices count against the server's frame rate limit like messages do, so
// they wait while a message of yours in this room is unacknowledged or refused: they must never
// use up the allowance a message (or its retry) needs.
function outboxBusy() {
  return state.outbox.some((item) => item.roomId === state.room?.id);
}

// While the page is in view, what it shows has been read: tell the room, a little later so a
// burst of events makes one READ. Called again when the outbox empties.
function reportRead() {
  const room = state.room;
  if (!room || room.phase !== "joined" || document.hidden || room.lastSeq <= room.readSent) return;
  if (room.readTimer || outboxBusy()) return;
  room.readTimer = setTimeout(() => {
    room.readTimer = null;
    if (state.room !== room || room.phase !== "joined" || document.hidden || outboxBusy()) return;
    if (room.lastSeq <= room.readSent) return;
    const frame = { type: "READ", roomId: room.id, sender: room.sender, seq: room.lastSeq, clientMsgId: newId("read-") };
    if (connection.send(frame)) room.readSent = room.lastSeq;
  }, READ_AFTER_MS);
}

// While you type, the others see it: one TYPING every few seconds at most.
function typed() {
  const room = state.room;
  if (!room || room.phase !== "joined" || !ui.message.value.trim() || outboxBusy()) return;
  const now = Date.now();
  if (now - room.typingSent < TYPING_EVERY_MS) return;
  const frame = { type: "TYPING", roomId: room.id, sender: room.sender, clientMsgId: newId("typing-") };
  if (connection.send(frame)) room.typingSent = now;
}

function renderPresence() {
  renderMembers();
  renderTyping();
  renderReadBy();
}

function renderMembers() {
  const room = state.room;
  const members = room?.members
    ? [...room.members].sort(([a, x], [b, y]) => (x.since === y.since ? (a < b ? -1 : 1) : x.since < y.since ? -1 : 1))
    : [];
  ui.members.replaceChildren(
    ...members.map(([sender, member]) => {
      const item = element("li", sender === room.sender ? "member me" : "member");
      item.dataset.sender = sender;
      item.append(element("span", "name", sender === room.sender ? `${sender} (you)` : sender));
      if (member.sessions > 1) item.append(element("span", "sessions", `×${member.sessions}`));
      item.title = `In the room since ${new Date(member.since).toLocaleString()}`;
      return item;
    }),
  );
}

function renderTyping() {
  const names = [...(state.room?.typing.keys() ?? [])].sort();
  const text =
    names.length === 0
      ? ""
      : names.length === 1
        ? `${names[0]} is typing…`
        : names.length === 2
          ? `${names[0]} and ${names[1]} are typing…`
          : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
  ui.typing.textContent = text;
  ui.typing.hidden = !text;
}

function renderReadBy() {
  for (const readBy of ui.log.querySelectorAll(".read-by")) {
    fillReadBy(readBy, Number(readBy.parentElement.dataset.seq));
  }
}

// Under one of your messages: who else has read it (their marker reached its seq).
function fillReadBy(readBy, seq) {
  const room = state.room;
  const readers = [...(room?.readSeqs ?? [])]
    .filter(([sender, read]) => sender !== room.sender && read >= seq)
    .map(([sender]) => sender)
    .sort();
  readBy.textContent = readers.length ? `Read by ${readers.join(", ")}` : "";
  readBy.hidden = readers.length === 0;
}

// ---------------------------------------------------------------- sending

function sendMessage(event) {
  event.preventDefault();
  const text = ui.message.value;
  const room = state.room;
  if (!room || !text.trim()) return;
  state.outbox.push({ id: newId("m-"), roomId: room.id, sender: room.sender, text, status: "queued" });
  ui.message.value = "";
  ui.message.focus();
  resizeComposer();
  flushOutbox();
}

// Sends queued messages once the ENTER is on its way. After a reconnect a message whose
// acknowledgement was lost goes again under its clientMsgId, and the server answers with the
// first copy instead of storing it twice.
function flushOutbox() {
  const room = state.room;
  if (room && room.phase !== "loading") {
    for (const item of state.outbox) {
      if (item.status !== "queued" || item.roomId !== room.id) continue;
      const frame = { type: "TALK", roomId: room.id, sender: room.sender, message: item.text, clientMsgId: item.id };
      if (connection.send(frame)) item.status = "sending";
    }
  }
  renderOutbox();
}

function renderOutbox() {
  ui.outbox.replaceChildren(...state.outbox.map(outboxItem));
}

function outboxItem(item) {
  const node = element("li", `pending ${item.status}`);
  node.dataset.clientMsgId = item.id;
  node.append(element("p", "text", item.text));
  const status = {
    queued: "Not sent yet: it goes out when the connection is back.",
    sending: "Sending…",
    failed: item.reason,
  }[item.status];
  const line = element("div", "pending-status");
  line.append(element("span", "", status));
  if (item.status === "failed") {
    if (item.roomId === state.room?.id) line.append(outboxButton("Retry", () => retry(item)));
    line.append(outboxButton("Discard", () => discard(item)));
  }
  node.append(line);
  return node;
}

function outboxButton(label, action) {
  const button = element("button", "link", label);
  button.type = "button";
  button.addEventListener("click", action);
  return button;
}

function retry(item) {
  item.status = "queued";
  item.reason = undefined;
  flushOutbox();
}

function discard(item) {
  state.outbox = state.outbox.filter((entry) => entry !== item);
  renderOutbox();
  reportRead();
}

// ---------------------------------------------------------------- the room header, buttons and list

function renderRoom() {
  const room = state.room;
  const selected = state.rooms.get(state.selectedRoomId);
  const inSelected = room && room.id === state.selectedRoomId;
  ui.chat.dataset.phase = room ? room.phase : "none";
  document.body.classList.toggle("in-room", Boolean(room));
  if (room) {
    ui.roomTitle.textContent = room.name;
    ui.roomSubtitle.textContent = roomSubtitle(room);
  } else if (selected) {
    ui.roomTitle.textContent = selected.name;
    ui.roomSubtitle.textContent = "Choose a nickname and enter this room.";
  } else {
    ui.roomTitle.textContent = "No room selected";
    ui.roomSubtitle.textContent = "Pick a room from the list, then enter it.";
  }
  ui.enter.disabled = !selected || Boolean(inSelected);
  ui.enter.textContent = room && !inSelected ? "Switch to this room" : "Enter room";
  ui.leave.disabled = !room;
  const bound = nameFromToken();
  if (bound) ui.nickname.value = bound;
  ui.nickname.readOnly = Boolean(bound);
  ui.nickname.disabled = Boolean(room);
  ui.nickname.title = bound
    ? "Your name comes from your sign-in token."
    : room
      ? "Leave the room to change your nickname."
      : "";
  ui.message.disabled = !room;
  ui.send.disabled = !room;
  ui.message.placeholder = room ? `Message ${room.name}` : "Enter a room to talk";
  renderRooms();
}

function roomSubtitle(room) {
  const members = state.rooms.get(room.id)?.memberCount;
  const who = `You are ${room.sender}`;
  if (room.phase === "loading") return `${who}. Loading recent messages…`;
  if (!connection.isOpen) return `${who}. Offline: messages you send wait until the connection is back.`;
  if (room.phase === "entering") return `${who}. Catching up…`;
  return members === undefined ? `${who}.` : `${who}. ${members} online.`;
}

// ---------------------------------------------------------------- wiring

function resizeComposer() {
  ui.message.style.height = "auto";
  ui.message.style.height = `${Math.min(ui.message.scrollHeight, 160)}px`;
}

function wire() {
  ui.nickname.value = localStorage.getItem(NICKNAME_KEY) ?? "";
  ui.nickname.addEventListener("input", () => localStorage.setItem(NICKNAME_KEY, nickname()));
  ui.nickname.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !ui.enter.disabled) enterSelectedRoom();
  });
  ui.createForm.addEventListener("submit", createRoom);
  ui.moreRooms.addEventListener("click", () => {
    state.roomPages += 1;
    refreshRooms();
  });
  ui.enter.addEventListener("click", enterSelectedRoom);
  ui.leave.addEventListener("click", leaveRoom);
  ui.noticeClose.addEventListener("click", hideNotice);
  ui.reconnect.addEventListener("click", () => connection.reconnectNow());
  ui.tokenForm.addEventListener("submit", signIn);
  ui.changeToken.addEventListener("click", () => {
    state.changingToken = true;
    renderIdentity();
    ui.tokenInput.focus();
  });
  ui.composer.addEventListener("submit", sendMessage);
  ui.message.addEventListener("input", () => {
    resizeComposer();
    typed();
  });
  ui.message.addEventListener("keydown", (event) => {
    // isComposing: Enter that confirms an IME composition (Korean, Japanese…) must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) sendMessage(event);
  });
  window.addEventListener("online", () => connection.reconnectNow());
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    refreshRooms();
    reportRead();
  });
  setInterval(() => {
    if (!document.hidden) refreshRooms();
  }, ROOM_POLL_MS);
}

wire();
renderRoom();
admit();
