// The chat page: plain JavaScript modules, no build step. Everything a user or another member
// wrote is put on the page with textContent, never as HTML. This module wires the page's
// controls to the parts in the other modules and starts it.

import {
  hideNotice,
  nickname,
  NICKNAME_KEY,
  resizeComposer,
  ROOM_POLL_MS,
  state,
  ui,
  view,
} from "./page.js";
import { connection, listen } from "./link.js";
import { createRoom, refreshRooms } from "./rooms.js";
import { connectionLost, enterSelectedRoom, leaveRoom, resumeRoom } from "./visit.js";
import { admit, signIn } from "./signin.js";
import { renderIdentity } from "./access.js";
import { reportRead, typed } from "./presence.js";
import { sendMessage } from "./outbox.js";
import { renderRoom, renderStatus } from "./header.js";
import { receiveFrame } from "./log.js";
import { cancelCompose } from "./changes.js";
import { grantFromForm } from "./moderation.js";

function wire() {
  view.render = renderRoom;
  listen({ onStatus: renderStatus, onOpen: resumeRoom, onClose: connectionLost, onFrame: receiveFrame });
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
  ui.grantForm.addEventListener("submit", grantFromForm);
  ui.composeCancel.addEventListener("click", cancelCompose);
  ui.message.addEventListener("input", () => {
    resizeComposer();
    typed();
  });
  ui.message.addEventListener("keydown", (event) => {
    // isComposing: Enter that confirms an IME composition (Korean, Japanese…) must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) sendMessage(event);
    if (event.key === "Escape" && state.compose) cancelCompose();
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
