// Messages that change: each TALK on the page carries its reply, edit and delete marks, its
// reactions and the buttons that change it; EDIT, DELETE, REACT and UNREACT events update the
// TALK they name in place (history and replays already show each TALK as it is now).

import { element, newId, resizeComposer, showNotice, state, ui } from "./page.js";
import { connection } from "./link.js";
import { mayModerate } from "./moderation.js";

export const CHANGES = new Set(["EDIT", "DELETE", "REACT", "UNREACT"]);
// A small fixed palette; the field beside it takes whatever the keyboard types.
const PALETTE = ["👍", "❤️", "😂", "🎉", "😮", "😢"];
const QUOTE_CHARS = 80;

/** The TALK at `seq` on the page, if it is shown. */
function talkItem(seq) {
  return ui.log.querySelector(`:scope > li.talk[data-seq="${seq}"]`);
}

/** Fills a TALK's item: what it answers, its text or deletion, marks, reactions and actions. */
export function decorateTalk(item, event, me) {
  if (event.replyTo) item.append(replyQuote(event.replyTo));
  const text = element("p", "text", event.message ?? "");
  item.append(text);
  const reactions = element("div", "reactions");
  reactions.dataset.testid = "reactions";
  item.reactions = new Map();
  for (const reaction of event.reactions ?? []) {
    item.reactions.set(reaction.emoji, { count: reaction.count, senders: new Set(reaction.senders) });
  }
  item.append(reactions);
  if (event.deleted) markDeleted(item);
  else {
    if (event.editedAt) markEdited(item, event.editedAt);
    item.append(actions(item, event, me));
    renderReactions(item, me);
  }
}

function replyQuote(seq) {
  const target = talkItem(seq);
  const sender = target?.querySelector(".sender")?.textContent;
  const text = target?.querySelector(".text")?.textContent ?? "";
  const summary = sender ? `${sender}: ${text.slice(0, QUOTE_CHARS)}` : `message #${seq}`;
  const quote = element("button", "reply-to link", `↪ ${summary}`);
  quote.type = "button";
  quote.dataset.testid = "reply-to";
  quote.dataset.seq = String(seq);
  quote.title = "Show the message this answers";
  quote.addEventListener("click", () => talkItem(seq)?.scrollIntoView({ block: "center" }));
  return quote;
}

function actions(item, event, me) {
  const bar = element("div", "actions");
  bar.append(action("Reply", "reply-button", () => compose("reply", event)));
  bar.append(action("React", "react-button", () => togglePalette(item)));
  if (event.sender === me) bar.append(action("Edit", "edit-button", () => compose("edit", event, item)));
  if (event.sender === me || mayModerate()) {
    bar.append(action("Delete", "delete-button", () => change({ type: "DELETE", targetSeq: event.seq })));
  }
  return bar;
}

function action(label, testId, onClick) {
  const button = element("button", "link", label);
  button.type = "button";
  button.dataset.testid = testId;
  button.addEventListener("click", onClick);
  return button;
}

/** Sends an EDIT, DELETE, REACT or UNREACT for the room the page is in. */
function change(fields) {
  const room = state.room;
  if (!room || room.phase !== "joined") return;
  const frame = { ...fields, roomId: room.id, sender: room.sender, clientMsgId: newId("c-") };
  if (!connection.send(frame)) showNotice("Not connected: try again once the connection is back.");
}

/** Puts the composer in reply or edit mode for a TALK. */
function compose(kind, event, item) {
  const text = item?.querySelector(".text")?.textContent ?? event.message;
  state.compose = { kind, seq: event.seq, sender: event.sender };
  ui.composeText.textContent =
    kind === "edit" ? "Editing your message" : `Replying to ${event.sender}: ${String(text).slice(0, QUOTE_CHARS)}`;
  ui.composeContext.hidden = false;
  if (kind === "edit") {
    ui.message.value = text;
    resizeComposer();
  }
  ui.message.focus();
}

export function cancelCompose() {
  if (state.compose?.kind === "edit") ui.message.value = "";
  state.compose = null;
  ui.composeContext.hidden = true;
  resizeComposer();
}

function togglePalette(item) {
  const open = item.querySelector(".palette");
  if (open) return open.remove();
  const palette = element("div", "palette");
  palette.dataset.testid = "react-palette";
  for (const emoji of PALETTE) {
    const button = action(emoji, "react-option", () => react(item, emoji));
    button.dataset.emoji = emoji;
    button.setAttribute("aria-label", `React with ${emoji}`);
    palette.append(button);
  }
  const typed = element("input", "react-input");
  typed.dataset.testid = "react-input";
  typed.maxLength = 32;
  typed.placeholder = "or type one";
  typed.setAttribute("aria-label", "Emoji to react with");
  typed.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && typed.value.trim()) react(item, typed.value.trim());
  });
  palette.append(typed);
  item.querySelector(".actions").after(palette);
  palette.querySelector("button").focus();
}

/** Adds the sender's reaction, or takes it back when it has it already. */
function react(item, emoji) {
  item.querySelector(".palette")?.remove();
  const mine = item.reactions.get(emoji)?.senders.has(state.room?.sender);
  change({ type: mine ? "UNREACT" : "REACT", targetSeq: Number(item.dataset.seq), emoji });
}

/** Applies an EDIT, DELETE, REACT or UNREACT to the TALK it names, when it is shown. */
export function applyChange(event, me) {
  const item = talkItem(event.targetSeq);
  if (!item || item.classList.contains("deleted")) return;
  if (event.type === "EDIT") {
    item.querySelector(".text").textContent = event.message;
    markEdited(item, event.sentAt);
  } else if (event.type === "DELETE") {
    markDeleted(item);
  } else {
    const reaction = item.reactions.get(event.emoji) ?? { count: 0, senders: new Set() };
    const had = reaction.senders.has(event.sender);
    if (event.type === "REACT" && !had) reaction.count += 1;
    if (event.type === "UNREACT") reaction.count = Math.max(0, reaction.count - 1);
    if (event.type === "REACT") reaction.senders.add(event.sender);
    else reaction.senders.delete(event.sender);
    if (reaction.count > 0) item.reactions.set(event.emoji, reaction);
    else item.reactions.delete(event.emoji);
    renderReactions(item, me);
  }
}

function markEdited(item, at) {
  let mark = item.querySelector(".edited");
  if (!mark) {
    mark = element("span", "edited", "(edited)");
    mark.dataset.testid = "edited-mark";
    item.querySelector(".meta").append(mark);
  }
  mark.title = `Edited ${new Date(at).toLocaleString()}`;
}

function markDeleted(item) {
  item.classList.add("deleted");
  const text = item.querySelector(".text");
  text.textContent = "message deleted";
  text.dataset.testid = "deleted-mark";
  item.querySelector(".edited")?.remove();
  item.querySelector(".actions")?.remove();
  item.querySelector(".palette")?.remove();
  item.reactions.clear();
  renderReactions(item, null);
}

function renderReactions(item, me) {
  const chips = Array.from(item.reactions, ([emoji, { count, senders }]) => {
    const chip = element("button", "reaction", `${emoji} ${count}`);
    chip.type = "button";
    chip.dataset.emoji = emoji;
    chip.dataset.count = String(count);
    chip.title = `${Array.from(senders).join(", ")}${count > senders.size ? ` and ${count - senders.size} more` : ""}`;
    chip.setAttribute("aria-pressed", String(senders.has(me)));
    chip.setAttribute("aria-label", `${emoji} ${count}: ${chip.title}`);
    if (!item.classList.contains("deleted")) chip.addEventListener("click", () => react(item, emoji));
    return chip;
  });
  item.querySelector(".reactions").replaceChildren(...chips);
}
