// Private rooms, roles and moderation (identity mode): the room's visibility and your role in
// its header, each member's role and mute in the member list with the controls an owner or a
// moderator may use there, MODERATION events in the log in plain words, and what it means for
// you when you are removed or muted.

import { api } from "./api.js";
import { element, formatTime, identity, showNotice, state, ui } from "./page.js";

const ROLE_WORDS = { owner: "owner", moderator: "moderator", member: "member" };

/** The rules as this page knows them for the room it is in; reloaded after each MODERATION.
 * Resolves true when they changed (the member list is then the caller's to show again). */
export async function loadRules(room) {
  if (state.access !== "signed") return false;
  try {
    const [roles, mutes] = await Promise.all([
      api(`/api/rooms/${room.id}/roles`),
      api(`/api/rooms/${room.id}/mutes`),
    ]);
    if (state.room !== room) return false;
    room.roles = new Map(roles.items.map((item) => [item.name, item.role]));
    room.mutes = new Map(mutes.items.map((item) => [item.name, item.until]));
  } catch {
    // Shown again on the next MODERATION event or visit; the chat works meanwhile.
    return false;
  }
  renderRules();
  return true;
}

/** My role in the room, as the room list or the roles list says. */
export function myRole(room) {
  return room?.roles?.get(room.sender) ?? state.rooms.get(room?.id)?.role ?? null;
}

/** Whether I may remove, ban and mute, and delete anyone's message, in the room I am in. */
export function mayModerate(room = state.room) {
  if (!room || state.access !== "signed") return false;
  const role = myRole(room);
  return identity.isAdmin || role === "owner" || role === "moderator";
}

/** Until when I am muted in the room: a time, "" for until lifted, null when not muted. */
export function myMute(room = state.room) {
  if (!room?.mutes?.has(room.sender)) return null;
  const until = room.mutes.get(room.sender);
  if (until && new Date(until).getTime() <= Date.now()) return null;
  return until ?? "";
}

/** A MODERATION event in words, for the log. */
export function describe(event) {
  const { by, target, role, until, reason } = event;
  const later = until ? ` until ${new Date(until).toLocaleString()}` : "";
  const words = {
    grant: `${by} made ${target} ${role === "owner" ? "an" : "a"} ${ROLE_WORDS[role] ?? role}`,
    revoke: `${by} took ${target}'s role${role ? ` (${role})` : ""}`,
    kick: `${by} removed ${target} from the room`,
    ban: `${by} banned ${target}${later}${reason ? `: ${reason}` : ""}`,
    unban: `${by} lifted ${target}'s ban`,
    mute: `${by} muted ${target}${later}`,
    unmute: `${by} unmuted ${target}`,
  }[event.action];
  return words ?? `${by} moderated ${target}`;
}

/** The server took this session out of the room: say so plainly. */
export function removedText(reason, name) {
  return {
    kicked: `You were removed from “${name}” by its moderators. You may enter it again.`,
    banned: `You are banned from “${name}”.`,
    revoked: `You no longer have a role in the private room “${name}”, so you cannot be in it.`,
  }[reason] ?? `You were removed from “${name}”.`;
}

/** The room header's line on visibility and role, and the muted notice. */
export function renderRules() {
  const room = state.room;
  const listed = state.rooms.get(room?.id ?? state.selectedRoomId);
  const signed = state.access === "signed";
  ui.visibilityInput.hidden = !signed;
  ui.roomAccess.hidden = !listed || !signed;
  if (listed && signed) {
    const visibility = listed.visibility ?? "public";
    const role = room ? myRole(room) : listed.role;
    ui.roomVisibility.textContent = visibility === "private" ? "🔒 Private room" : "Public room";
    ui.roomVisibility.dataset.visibility = visibility;
    ui.myRole.textContent = role ? `you are its ${role}` : identity.isAdmin ? "you are an admin" : "you have no role here";
    ui.myRole.dataset.role = role ?? "";
  }
  const mute = myMute(room);
  ui.mutedNotice.hidden = mute === null;
  ui.mutedNotice.textContent =
    mute === null ? "" : `You are muted in this room${mute ? ` until ${formatTime(mute)}` : ""}: you can read, but not talk.`;
  renderGrantForm();
}

/** An owner or a moderator may give someone a role: for a private room, how people get in. */
function renderGrantForm() {
  const room = state.room;
  const may = mayModerate(room);
  ui.grantForm.hidden = !may;
  if (!may) return;
  const owner = identity.isAdmin || myRole(room) === "owner";
  for (const option of ui.grantRole.options) option.disabled = !owner && option.value !== "member";
  if (!owner) ui.grantRole.value = "member";
}

/** The controls beside a member (not yourself) for an owner or a moderator. */
export function memberControls(name) {
  const room = state.room;
  const box = element("span", "member-controls");
  const role = room?.roles?.get(name) ?? null;
  if (role) {
    const badge = element("span", "role", role);
    badge.dataset.testid = "member-role";
    badge.dataset.role = role;
    box.append(badge);
  }
  if (room?.mutes?.has(name)) {
    const mark = element("span", "muted-mark", "muted");
    mark.dataset.testid = "muted-mark";
    box.append(mark);
  }
  if (name === room?.sender || !mayModerate(room)) return box;
  const muted = room.mutes?.has(name);
  const encoded = encodeURIComponent(name);
  box.append(
    control("Kick", "kick-button", () => act("DELETE", `members/${encoded}`, `${name} was removed.`)),
    control("Ban", "ban-button", () => ban(name)),
    muted
      ? control("Unmute", "unmute-button", () => act("DELETE", `mutes/${encoded}`))
      : control("Mute", "mute-button", () => act("PUT", `mutes/${encoded}`)),
    roleSelect(name, role),
  );
  return box;
}

function control(label, testid, run) {
  const button = element("button", "link member-action", label);
  button.type = "button";
  button.dataset.testid = testid;
  button.addEventListener("click", run);
  return button;
}

function roleSelect(name, role) {
  const select = element("select", "role-select");
  select.dataset.testid = "role-select";
  select.setAttribute("aria-label", `Role of ${name}`);
  const owner = identity.isAdmin || myRole(state.room) === "owner";
  for (const [value, label] of [["", "no role"], ["member", "member"], ["moderator", "moderator"], ["owner", "owner"]]) {
    const option = element("option", "", label);
    option.value = value;
    option.disabled = !owner && value !== "" && value !== "member";
    select.append(option);
  }
  select.value = role ?? "";
  select.addEventListener("change", () => {
    const path = `roles/${encodeURIComponent(name)}`;
    if (select.value) act("PUT", path, undefined, { role: select.value });
    else act("DELETE", path);
  });
  return select;
}

/** Bans until lifted; a reason or an end can be given through the API. */
function ban(name) {
  act("PUT", `bans/${encodeURIComponent(name)}`, `${name} is banned from this room.`);
}

/** One moderation request about the room I am in; what follows shows up as its event. */
async function act(method, path, done, body) {
  const room = state.room;
  if (!room) return;
  try {
    await api(`/api/rooms/${room.id}/${path}`, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (done) showNotice(done);
  } catch (error) {
    showNotice(error.message);
  }
}

/** The "give someone a role" form. */
export function grantFromForm(event) {
  event.preventDefault();
  const name = ui.grantName.value.trim();
  if (!name) return;
  ui.grantName.value = "";
  act("PUT", `roles/${encodeURIComponent(name)}`, `${name} is now a ${ui.grantRole.value}.`, { role: ui.grantRole.value });
}
