// Whether the server lets this page in (with a token or without one), and what the page says
// about it: the parts below the sign-in form that learn it (the rooms list) tell it here.

import { formatTime, identity, state, ui, view } from "./page.js";
import { connection } from "./link.js";

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

export function needToken(error) {
  state.access = "needed";
  if (!identity.token) state.problem = "missing";
  else if (identity.expired || /expired/i.test(error.detail)) state.problem = "expired";
  else state.problem = "refused";
  state.problemDetail = error.detail;
  connection.stop();
  renderIdentity();
}

export function renderIdentity() {
  const { access } = state;
  ui.identityPanel.hidden = access !== "signed" && access !== "needed";
  ui.identityPanel.dataset.state = access === "needed" ? state.problem : access;
  ui.tokenForm.hidden = access !== "needed" && !state.changingToken;
  ui.changeToken.hidden = access !== "signed" || state.changingToken;
  if (access === "signed") ui.identityStatus.textContent = signedInText();
  if (access === "needed") ui.identityStatus.textContent = problemText();
  view.render();
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
