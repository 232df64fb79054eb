// Frames from the server: events for the log, notices, refusals, and the ends of a visit.

import { plainError } from "./api.js";
import { showNotice, state, ui } from "./page.js";
import { scheduleRoomRefresh } from "./rooms.js";
import { endVisit } from "./visit.js";
import { loadMembers, renderPresence, reportRead, someoneRead, someoneTyping } from "./presence.js";
import { flushOutbox, renderOutbox } from "./outbox.js";
import { renderRoom } from "./header.js";
import { loadRules, removedText } from "./moderation.js";
import { showEvent } from "./events.js";

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
    showRules(room);
  }
  if (event.type === "MODERATION" && room.phase === "joined") showRules(room);
  if (event.type === "ENTER" || event.type === "LEAVE") scheduleRoomRefresh();
  reportRead();
}

/** The room's rules, and the member list that shows them. */
async function showRules(room) {
  if (await loadRules(room)) renderPresence();
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
