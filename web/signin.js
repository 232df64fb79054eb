// Signing in: whether the server wants a token, and the form that takes one.

import { authorize } from "./api.js";
import { formatTime, identity, state, ui } from "./page.js";
import { connection } from "./link.js";
import { refreshRooms } from "./rooms.js";
import { renderRoom } from "./header.js";

const PROBLEM_TEXT = {
  missing: "This chat needs a sign-in token. Paste the one you were given, or open the link that carries it.",
  refused: "That sign-in token was refused",
  expired: "Your sign-in token has expired. Paste a fresh one to carry on: no message will be lost.",
};

// The server listed the rooms: it lets this page in, with or without a token. (When it
// wants a token, refreshRooms stops connecting and asks for one; a server out of reach leaves
// the question open.)
export function admitted() {
  if (state.access !== "unknown") return;
  state.access = identity.token ? "signed" : "open";
  renderIdentity();
}

// Lists the rooms, and connects unless the server wants a token (a server out of reach: the
// connection then reports that, and the page asks again when it drops).
export async function admit() {
  state.access = "unknown";
  await refreshRooms();
  if (state.access === "needed") return;
  connection.open();
}

export function needToken(error) {
  state.access = "needed";
  if (!identity.token) state.problem = "missing";
  else if (identity.expired || /expired/i.test(error.detail)) state.problem = "expired";
  else state.problem = "refused";
  state.problemDetail = error.detail;
  connection.stop();
  renderIdentity();
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

export function renderIdentity() {
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
export function nameFromToken() {
  return identity.token && identity.name ? identity.name : null;
}
