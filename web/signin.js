// Signing in: asking the server whether it wants a token, and the form that takes one.

import { authorize } from "./api.js";
import { identity, state, ui } from "./page.js";
import { connection } from "./link.js";
import { refreshRooms } from "./rooms.js";

// Lists the rooms, and connects unless the server wants a token (a server out of reach: the
// connection then reports that, and the page asks again when it drops).
export async function admit() {
  state.access = "unknown";
  await refreshRooms();
  if (state.access === "needed") return;
  connection.open();
}

export function signIn(event) {
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
