// The room's log: each event shown once, in seq order, as a line of its own or as a change to
// the TALK it names.

import { element, formatTime, state, ui } from "./page.js";
import { fillReadBy, memberEvent, stopTyping } from "./presence.js";
import { renderOutbox } from "./outbox.js";
import { CHANGES, applyChange, decorateTalk } from "./changes.js";
import { describe } from "./moderation.js";

// Shows each seq once, in order: anything at or below the last seq shown is already on screen.
export function showEvent(event) {
  const room = state.room;
  // The acknowledgement of a message, or of a resend of one (`duplicate`), empties its slot.
  const acknowledged = state.outbox.findIndex((item) => item.id === event.clientMsgId);
  if (acknowledged >= 0) {
    state.outbox.splice(acknowledged, 1);
    renderOutbox();
  }
  if (event.seq <= room.lastSeq) return;
  room.lastSeq = event.seq;
  if (CHANGES.has(event.type)) return applyChange(event, room.sender);
  const stick = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 40;
  ui.log.append(eventItem(event, room.sender));
  if (stick) ui.log.scrollTop = ui.log.scrollHeight;
  if (event.type === "TALK") stopTyping(event.sender);
  else memberEvent(event);
}

function eventItem(event, me) {
  const kind = String(event.type).toLowerCase();
  const item = element("li", `event ${kind}`);
  item.dataset.seq = String(event.seq);
  const time = element("time", "time", formatTime(event.sentAt));
  time.dateTime = event.sentAt;
  time.title = new Date(event.sentAt).toLocaleString();
  if (event.type === "TALK") {
    const meta = element("div", "meta");
    meta.append(element("span", "sender", event.sender), time);
    item.append(meta);
    decorateTalk(item, event, me);
    if (event.sender === me) {
      item.classList.add("mine");
      const readBy = element("p", "read-by");
      readBy.dataset.testid = "read-by";
      item.append(readBy);
      fillReadBy(readBy, event.seq);
    }
  } else {
    const text = event.type === "MODERATION" ? describe(event) : event.message;
    item.append(element("span", "text", text), time);
  }
  return item;
}
