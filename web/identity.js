// Sign-in, when the server runs in identity mode: the page's token comes from `#access_token=`
// in its address (which is then taken out of the address bar), else from this tab's storage,
// else from what the person pastes. The page reads the token only to say who you are and when
// it expires; the server is what checks it.

const STORAGE_KEY = "chat.token";

function tokenFromAddress() {
  const token = new URLSearchParams(location.hash.slice(1)).get("access_token");
  if (token) history.replaceState(null, "", location.pathname + location.search);
  return token;
}

/** The claims of a JWT, or null when it cannot be read. */
function readClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "="));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

export class Identity {
  constructor() {
    this.use(tokenFromAddress() ?? sessionStorage.getItem(STORAGE_KEY));
  }

  /** Takes a token (or null to forget it), keeping it for this tab only. */
  use(token) {
    this.token = token?.trim() || null;
    this.claims = this.token ? readClaims(this.token) : null;
    if (this.token) sessionStorage.setItem(STORAGE_KEY, this.token);
    else sessionStorage.removeItem(STORAGE_KEY);
  }

  /** The name the server binds to this token: its `name`, else its `sub`. */
  get name() {
    const { name, sub } = this.claims ?? {};
    if (typeof name === "string" && name.trim()) return name.trim();
    return typeof sub === "string" ? sub.trim() : "";
  }

  get isAdmin() {
    return Array.isArray(this.claims?.roles) && this.claims.roles.includes("admin");
  }

  get expiresAt() {
    return typeof this.claims?.exp === "number" ? new Date(this.claims.exp * 1000) : null;
  }

  get expired() {
    const expiresAt = this.expiresAt;
    return expiresAt !== null && expiresAt.getTime() <= Date.now();
  }

  /** What REST requests carry. */
  get headers() {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  /** What the WebSocket address carries: browsers cannot set its headers. */
  get socketQuery() {
    return this.token ? `?access_token=${encodeURIComponent(this.token)}` : "";
  }
}
