// The room header, the connection status and the buttons that depend on them.

import { state, ui } from "./page.js";
import { connection } from "./link.js";
import { renderRooms } from "./rooms.js";
import { nameFromToken } from "./access.js";
import { renderRules } from "./moderation.js";

export function renderStatus(kind, seconds) {
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

export function renderRoom() {
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
  renderRules();
}

export function roomSubtitle(room) {
  const members = state.rooms.get(room.id)?.memberCount;
  const who = `You are ${room.sender}`;
  if (room.phase === "loading") return `${who}. Loading recent messages…`;
  if (!connection.isOpen) return `${who}. Offline: messages you send wait until the connection is back.`;
  if (room.phase === "entering") return `${who}. Catching up…`;
  return members === undefined ? `${who}.` : `${who}. ${members} online.`;
}
