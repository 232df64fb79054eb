// The rooms list: refreshed by polling and on demand, updated in place, and room creation.

import { api, Unauthorized } from "./api.js";
import { element, hideNotice, ROOM_PAGE, showNotice, state, ui, view } from "./page.js";
import { admitted, needToken } from "./access.js";

// Each refresh takes a ticket; only the newest may apply its answer, so a slow poll that left
// before a room was created cannot remove that room from the list.
let roomsTicket = 0;

export async function refreshRooms() {
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
  view.render();
}

let refreshSoon = null;
export function scheduleRoomRefresh() {
  clearTimeout(refreshSoon);
  refreshSoon = setTimeout(refreshRooms, 300);
}

// Updates the list in place, so a room that has keyboard focus keeps it across refreshes.
export function renderRooms() {
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
  const locked = room.visibility === "private";
  button.querySelector(".room-name").textContent = locked ? `🔒 ${room.name}` : room.name;
  item.dataset.visibility = room.visibility ?? "public";
  const count = room.memberCount === 1 ? "1 online" : `${room.memberCount} online`;
  button.querySelector(".room-count").textContent = count;
  button.title = inside ? `${room.name} (you are here)` : room.name;
}

function selectRoom(roomId) {
  state.selectedRoomId = roomId;
  view.render();
}

export async function createRoom(event) {
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
      body: JSON.stringify(ui.visibilityInput.hidden ? { name } : { name, visibility: ui.visibilityInput.value }),
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
