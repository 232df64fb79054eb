// Sending: messages wait in the outbox until the server acknowledges them, and are resent
// under the same clientMsgId after a reconnect.

import { element, newId, resizeComposer, state, ui } from "./page.js";
import { connection } from "./link.js";
import { reportRead } from "./presence.js";
import { cancelCompose } from "./changes.js";

export function sendMessage(event) {
  event.preventDefault();
  const text = ui.message.value;
  const room = state.room;
  if (!room || !text.trim()) return;
  const item = { id: newId("m-"), roomId: room.id, sender: room.sender, text, status: "queued" };
  if (state.compose?.kind === "edit") item.editOf = state.compose.seq;
  if (state.compose?.kind === "reply") item.replyTo = state.compose.seq;
  state.outbox.push(item);
  cancelCompose();
  ui.message.value = "";
  ui.message.focus();
  resizeComposer();
  flushOutbox();
}

// Sends queued messages once the ENTER is on its way. After a reconnect a message whose
// acknowledgement was lost goes again under its clientMsgId, and the server answers with the
// first copy instead of storing it twice.
export function flushOutbox() {
  const room = state.room;
  if (room && room.phase !== "loading") {
    for (const item of state.outbox) {
      if (item.status !== "queued" || item.roomId !== room.id) continue;
      if (connection.send(frame(room, item))) item.status = "sending";
    }
  }
  renderOutbox();
}

/** A TALK (maybe a reply), or the EDIT an edited message sends. */
function frame(room, item) {
  const common = { roomId: room.id, sender: room.sender, message: item.text, clientMsgId: item.id };
  if (item.editOf) return { type: "EDIT", targetSeq: item.editOf, ...common };
  return item.replyTo ? { type: "TALK", replyTo: item.replyTo, ...common } : { type: "TALK", ...common };
}

export function renderOutbox() {
  ui.outbox.replaceChildren(...state.outbox.map(outboxItem));
}

function outboxItem(item) {
  const node = element("li", `pending ${item.status}`);
  node.dataset.clientMsgId = item.id;
  node.append(element("p", "text", item.editOf ? `Edit: ${item.text}` : item.text));
  const status = {
    queued: "Not sent yet: it goes out when the connection is back.",
    sending: "Sending…",
    failed: item.reason,
  }[item.status];
  const line = element("div", "pending-status");
  line.append(element("span", "", status));
  if (item.status === "failed") {
    if (item.roomId === state.room?.id) line.append(outboxButton("Retry", () => retry(item)));
    line.append(outboxButton("Discard", () => discard(item)));
  }
  node.append(line);
  return node;
}

function outboxButton(label, action) {
  const button = element("button", "link", label);
  button.type = "button";
  button.addEventListener("click", action);
  return button;
}

function retry(item) {
  item.status = "queued";
  item.reason = undefined;
  flushOutbox();
}

function discard(item) {
  state.outbox = state.outbox.filter((entry) => entry !== item);
  renderOutbox();
  reportRead();
}
