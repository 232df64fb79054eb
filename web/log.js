// Frames from the server, and the log of the room's events.

import { plainError } from "./api.js";
import { element, formatTime, showNotice, state, ui } from "./page.js";
import { scheduleRoomRefresh } from "./rooms.js";
import { endVisit } from "./visit.js";
import {
  fillReadBy,
  loadMembers,
  memberEvent,
  reportRead,
  someoneRead,
  someoneTyping,
  stopTyping,
} from "./presence.js";
import { flushOutbox, renderOutbox } from "./outbox.js";
import { renderRoom } from "./header.js";
import { CHANGES, applyChange, decorateTalk } from "./changes.js";
import { describe, loadRules, removedText } from "./moderation.js";

export function receiveFrame(frame) {
  if (frame.type === "ERROR") return receiveError(frame);
  if (frame.type === "CLOSED") return roomClosed(frame.roomId);
  if (frame.type === "REMOVED") return removed(frame);
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
    loadRules(room);
  }
  if (event.type === "MODERATION" && room.phase === "joined") loadRules(room);
  if (event.type === "ENTER" || event.type === "LEAVE") scheduleRoomRefresh();
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

function removed(frame) {
  const room = state.room;
  if (!room || room.id !== frame.roomId) return;
  ui.log.replaceChildren();
  showNotice(removedText(frame.reason, room.name));
  endVisit("you were removed from the room.");
  scheduleRoomRefresh();
}

function roomClosed(roomId) {
  const room = state.room;
  if (!room || room.id !== roomId) return;
  showNotice(`The room “${room.name}” was deleted.`);
  if (state.selectedRoomId === roomId) state.selectedRoomId = null;
  endVisit("the room was deleted.");
}

// Shows each seq once, in order: anything at or below the last seq shown is already on screen.
export function showEvent(event) {
  const room = state.room;
  // The acknowledgement of a message, or of a resend of one (`duplicate`), empties its slot.
  const acknowledged = state.outbox.findIndex((item) => item.id === event.clientMsgId);
  if (acknowledged >= 0) {
    state.outbox.splice(acknowledged, 1);
    renderOutbox();
  }
  if (event.seq <= room.lastSeq) return;
  room.lastSeq = event.seq;
  if (CHANGES.has(event.type)) return applyChange(event, room.sender);
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
    item.append(meta);
    decorateTalk(item, event, me);
    if (event.sender === me) {
      item.classList.add("mine");
      const readBy = element("p", "read-by");
      readBy.dataset.testid = "read-by";
      item.append(readBy);
      fillReadBy(readBy, event.seq);
    }
  } else {
    const text = event.type === "MODERATION" ? describe(event) : event.message;
    item.append(element("span", "text", text), time);
  }
  return item;
}
