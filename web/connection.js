// The page's one WebSocket: reopened with exponential backoff and jitter for as long as the page
// is open (or until it is stopped, for want of a valid token), reporting what it does to the
// handlers it is given.

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10000;

export class Connection {
  constructor(handlers) {
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.countdown = null;
    this.stopped = true;
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  open() {
    this.clearTimers();
    this.stopped = false;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws/chat${this.handlers.query()}`);
    this.socket = socket;
    this.handlers.onStatus("connecting");
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.handlers.onStatus("open");
      this.handlers.onOpen();
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.handlers.onClose(event);
      if (!this.stopped) this.scheduleReconnect();
    });
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame && typeof frame.type === "string") this.handlers.onFrame(frame);
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  scheduleReconnect() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt += 1;
    const due = Date.now() + delay;
    const tick = () => {
      const seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      this.handlers.onStatus("waiting", seconds);
    };
    tick();
    this.countdown = setInterval(tick, 1000);
    this.timer = setTimeout(() => this.open(), delay);
  }

  // Skips the wait, e.g. when the browser says it is back online.
  reconnectNow() {
    if (this.socket || this.stopped) return;
    this.open();
  }

  // Closes the socket and tries no more, until the next open().
  stop() {
    this.stopped = true;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.close();
      this.handlers.onClose(null);
    }
    this.handlers.onStatus("stopped");
  }

  clearTimers() {
    clearTimeout(this.timer);
    clearInterval(this.countdown);
    this.timer = null;
    this.countdown = null;
  }
}
