// Talking to the server over HTTP, and its error codes in plain words for the person at the
// keyboard (the server's own text follows where it helps).

const ERROR_TEXT = {
  INVALID_JSON: "The server could not read a message from this page.",
  INVALID_MESSAGE: "The server refused a message from this page as malformed.",
  ROOM_NOT_FOUND: "This room does not exist any more.",
  NOT_IN_ROOM: "You are not in this room any more; enter it again.",
  SENDER_MISMATCH: "You entered this room under another nickname.",
  MESSAGE_TOO_LONG: "That message is too long: at most 4,000 characters.",
  RATE_LIMITED: "You are sending too fast. Wait a moment, then retry.",
  UNAVAILABLE: "The server could not store that just now. Retry in a moment.",
  UNAUTHORIZED: "The server needs a valid sign-in token.",
  FORBIDDEN: "You may not do that here.",
  BANNED: "You are banned from this room.",
  MUTED: "You are muted in this room: you can read, but not talk.",
  LAST_OWNER: "A room must keep at least one owner: make someone else an owner first.",
};

export function plainError(code, detail) {
  const text = ERROR_TEXT[code];
  if (!text) return detail || "Something went wrong.";
  return detail && code.startsWith("INVALID") ? `${text} (${detail})` : text;
}

/** The server refused the page's token, or wanted one (401); `detail` says why. */
export class Unauthorized extends Error {
  constructor(detail) {
    super(plainError("UNAUTHORIZED"));
    this.detail = detail;
  }
}

// What every request carries to say who is asking (a bearer token in identity mode).
let credentials = {};

export function authorize(headers) {
  credentials = headers;
}

/** Fetches JSON; a failure throws an Error whose message can be shown as it is. */
export async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, {
      ...options,
      headers: { accept: "application/json", ...credentials, ...options.headers },
    });
  } catch {
    throw new Error("The server cannot be reached right now.");
  }
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : `status ${response.status}`;
    if (response.status === 401) throw new Unauthorized(detail);
    throw new Error(plainError(body?.code, detail));
  }
  return body;
}
