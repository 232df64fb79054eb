// Entering and leaving the selected room: history first, then ENTER with the last seq shown,
// and a resume after every reconnect.

import { api, Unauthorized } from "./api.js";
import { hideNotice, HISTORY_LIMIT, newId, nickname, showNotice, state, ui } from "./page.js";
import { connection } from "./link.js";
import { refreshRooms, scheduleRoomRefresh } from "./rooms.js";
import { needToken } from "./access.js";
import { showEvent } from "./events.js";
import { renderPresence } from "./presence.js";
import { flushOutbox, renderOutbox } from "./outbox.js";
import { renderRoom } from "./header.js";

export async function enterSelectedRoom() {
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
    // Identity mode: who holds which role, and who is muted until when ("" or null: until
    // lifted); null until listed.
    roles: null,
    mutes: null,
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

export function resumeRoom() {
  if (state.room && state.room.phase !== "loading") sendEnter();
}

// `event` is the socket's close event; none when the page closed it itself.
export function connectionLost(event) {
  if (state.room && state.room.phase !== "loading") state.room.phase = "entering";
  for (const item of state.outbox) {
    if (item.status === "sending") item.status = "queued";
  }
  renderOutbox();
  renderRoom();
  // A refused upgrade looks like any drop to a page; a token that expired closes with 1008.
  if (event && state.access !== "open" && state.access !== "needed") refreshRooms();
}

export function leaveRoom() {
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
export function endVisit(reason) {
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
