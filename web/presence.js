// Who is here, who is typing and who has read what.

import { api } from "./api.js";
import {
  element,
  MEMBER_EVENTS_KEPT,
  newId,
  READ_AFTER_MS,
  state,
  TYPING_EVERY_MS,
  TYPING_SHOWN_MS,
  ui,
} from "./page.js";
import { connection } from "./link.js";
import { memberControls } from "./moderation.js";

// Lists the room's members (every page), then applies the ENTER and LEAVE events shown
// meanwhile that the list does not reflect yet (those after its asOfSeq).
export async function loadMembers(room) {
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
export function memberEvent(event) {
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

export function someoneTyping(notice) {
  const room = state.room;
  if (!room || notice.roomId !== room.id || notice.sender === room.sender) return;
  clearTimeout(room.typing.get(notice.sender));
  room.typing.set(notice.sender, setTimeout(() => stopTyping(notice.sender), TYPING_SHOWN_MS));
  renderTyping();
}

export function stopTyping(sender) {
  const room = state.room;
  if (!room?.typing.has(sender)) return;
  clearTimeout(room.typing.get(sender));
  room.typing.delete(sender);
  renderTyping();
}

function raiseRead(room, sender, seq) {
  if (seq > (room.readSeqs.get(sender) ?? 0)) room.readSeqs.set(sender, seq);
}

export function someoneRead(sender, seq) {
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
export function reportRead() {
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
export function typed() {
  const room = state.room;
  if (!room || room.phase !== "joined" || !ui.message.value.trim() || outboxBusy()) return;
  const now = Date.now();
  if (now - room.typingSent < TYPING_EVERY_MS) return;
  const frame = { type: "TYPING", roomId: room.id, sender: room.sender, clientMsgId: newId("typing-") };
  if (connection.send(frame)) room.typingSent = now;
}

export function renderPresence() {
  renderMembers();
  renderTyping();
  renderReadBy();
}

export function renderMembers() {
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
      item.append(memberControls(sender));
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
export function fillReadBy(readBy, seq) {
  const room = state.room;
  const readers = [...(room?.readSeqs ?? [])]
    .filter(([sender, read]) => sender !== room.sender && read >= seq)
    .map(([sender]) => sender)
    .sort();
  readBy.textContent = readers.length ? `Read by ${readers.join(", ")}` : "";
  readBy.hidden = readers.length === 0;
}
