// What every part of the page shares: its elements, its state, the sign-in token and small
// helpers.

import { authorize } from "./api.js";
import { Identity } from "./identity.js";

const $ = (id) => document.getElementById(id);

export const ui = {
  status: $("connection-status"),
  reconnect: $("reconnect-button"),
  identityPanel: $("identity-panel"),
  identityStatus: $("identity-status"),
  changeToken: $("change-token-button"),
  tokenForm: $("token-form"),
  tokenInput: $("token-input"),
  nickname: $("nickname-input"),
  createForm: $("create-room-form"),
  roomName: $("room-name-input"),
  visibilityInput: $("room-visibility-input"),
  createButton: $("create-room-button"),
  roomList: $("room-list"),
  roomsEmpty: $("rooms-empty"),
  moreRooms: $("more-rooms-button"),
  chat: $("chat"),
  roomTitle: $("room-title"),
  roomSubtitle: $("room-subtitle"),
  roomAccess: $("room-access"),
  roomVisibility: $("room-visibility"),
  myRole: $("my-role"),
  mutedNotice: $("muted-notice"),
  grantForm: $("grant-form"),
  grantName: $("grant-name-input"),
  grantRole: $("grant-role-select"),
  enter: $("enter-button"),
  leave: $("leave-button"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  noticeClose: $("notice-close"),
  log: $("message-log"),
  members: $("member-list"),
  typing: $("typing-indicator"),
  outbox: $("outbox"),
  composer: $("composer"),
  composeContext: $("compose-context"),
  composeText: $("compose-context-text"),
  composeCancel: $("compose-cancel"),
  message: $("message-input"),
  send: $("send-button"),
};

export const HISTORY_LIMIT = 50;
export const ROOM_PAGE = 100;
export const ROOM_POLL_MS = 5000;
export const NICKNAME_KEY = "chat.nickname";
// A typing notice is shown this long unless renewed; while typing, one goes out this often.
export const TYPING_SHOWN_MS = 5000;
export const TYPING_EVERY_MS = 3000;
// What has been shown is reported read this long after it was shown (batching a burst).
export const READ_AFTER_MS = 400;
// Member events kept while the members list is on its way, to apply those it does not reflect.
export const MEMBER_EVENTS_KEPT = 500;

export const state = {
  rooms: new Map(),
  roomPages: 1,
  selectedRoomId: null,
  // The room this page is in: `phase` is "loading" (reading history), "entering" (ENTER sent,
  // replay arriving) or "joined" (our ENTER event came back, so the replay is complete).
  room: null,
  // Messages typed but not yet acknowledged, in the order they were typed.
  outbox: [],
  // What the composer's next message does besides talking: {kind: "reply" | "edit", seq}.
  compose: null,
  // Whether the server lets this page in: "unknown" (not asked yet, or not reachable), "open"
  // (no sign-in), "signed" (it accepts our token) or "needed" (it wants a token: `problem` says
  // whether ours is missing, refused or expired).
  access: "unknown",
  problem: null,
  problemDetail: "",
  changingToken: false,
};

export const identity = new Identity();

// What the parts low down (the rooms list, the sign-in state) ask the page's header to do once
// they change something it shows; app.js points it at the header, which sits above them.
export const view = { render() {} };
authorize(identity.headers);

export function newId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function showNotice(text) {
  ui.noticeText.textContent = text;
  ui.notice.hidden = false;
}

export function hideNotice() {
  ui.notice.hidden = true;
  ui.noticeText.textContent = "";
}

export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ""
    : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** The message box grows with what is typed in it, up to a few lines. */
export function resizeComposer() {
  ui.message.style.height = "auto";
  ui.message.style.height = `${Math.min(ui.message.scrollHeight, 160)}px`;
}

export function nickname() {
  return ui.nickname.value.trim();
}
