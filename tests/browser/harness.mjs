// What the browser tests stand on: the real chat binary on a free port over a fresh SQLite file,
// Debian's Chromium driven by playwright-core, a TCP proxy that can cut one page's connection,
// and a page object that finds the page's parts by their data-testid.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

const HERE = import.meta.dirname;
const CHAT_BIN = process.env.CHAT_BIN ?? path.resolve(HERE, "../../target/debug/chat");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = path.resolve(HERE, "../../artifacts/browser");

/** The flags this machine needs: no sandbox as root, and no calls to Google's services. */
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

// ---------------------------------------------------------------- the server

/** The chat binary, restartable on the same port and database. */
export class Server {
  constructor(dir, env) {
    this.dir = dir;
    this.env = env;
    this.port = 0;
    this.child = null;
    // In identity mode, the token its own REST calls carry.
    this.token = null;
  }

  /** A server for one test, disposed of when the test ends. */
  static async for(t, env = {}) {
    const server = await Server.start(env);
    t.after(() => server.dispose());
    return server;
  }

  static async start(env = {}) {
    const dir = mkdtempSync(path.join(tmpdir(), "chat-browser-"));
    const server = new Server(dir, env);
    await server.boot();
    return server;
  }

  url(pathname = "/") {
    return `http://127.0.0.1:${this.port}${pathname}`;
  }

  async boot() {
    assert.ok(existsSync(CHAT_BIN), `no chat binary at ${CHAT_BIN}: run cargo build first`);
    const child = spawn(CHAT_BIN, [], {
      env: {
        PATH: process.env.PATH,
        CHAT_ADDR: `127.0.0.1:${this.port}`,
        DATABASE_URL: `sqlite://${path.join(this.dir, "chat.db")}`,
        CHAT_LOG_FORMAT: "json",
        RUST_LOG: "info",
        ...this.env,
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    this.port = await listeningPort(child, this.exited);
  }

  /** SIGTERM drains (sessions get 1001); SIGKILL is a crash. */
  async stop(signal = "SIGTERM") {
    if (!this.child) return;
    this.child.kill(signal);
    const exit = await this.exited;
    this.child = null;
    return exit;
  }

  async dispose() {
    await this.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }

  async api(method, pathname, body) {
    const headers = body ? { "content-type": "application/json" } : {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const response = await fetch(this.url(pathname), {
      method,
      headers,
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  async createRoom(name) {
    const { status, body } = await this.api("POST", "/api/rooms", { name });
    assert.equal(status, 201);
    return body.roomId;
  }

  async history(roomId) {
    const { body } = await this.api("GET", `/api/rooms/${roomId}/messages?limit=500`);
    return body.items;
  }
}

async function listeningPort(child, exited) {
  const lines = createInterface({ input: child.stdout });
  const found = new Promise((resolve) => {
    lines.on("line", (line) => {
      let log;
      try {
        log = JSON.parse(line);
      } catch {
        return;
      }
      if (log.fields?.message === "listening") resolve(Number(log.fields.addr.split(":").pop()));
    });
  });
  const died = exited.then(({ code, signal }) => {
    throw new Error(`the chat binary exited before listening (code ${code}, signal ${signal})`);
  });
  return Promise.race([found, died]);
}

/** An HS256 JSON Web Token with these claims, as an identity provider would issue it. */
export function mintToken(secret, claims) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const signed = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  return `${signed}.${createHmac("sha256", secret).update(signed).digest("base64url")}`;
}

// ---------------------------------------------------------------- a proxy that can cut one page off

/** Forwards a local port to the server; `cut()` drops every connection and refuses new ones. */
export class Proxy {
  /** A proxy for one test, closed when the test ends. */
  static async for(t, server) {
    const proxy = await Proxy.start(server);
    t.after(() => proxy.close());
    return proxy;
  }

  static async start(server) {
    const proxy = new Proxy(server);
    await new Promise((resolve) => proxy.listener.listen(0, "127.0.0.1", resolve));
    proxy.port = proxy.listener.address().port;
    return proxy;
  }

  constructor(server) {
    this.server = server;
    this.sockets = new Set();
    this.mode = "pass";
    this.listener = net.createServer((client) => this.accept(client));
  }

  url(pathname = "/") {
    return `http://127.0.0.1:${this.port}${pathname}`;
  }

  accept(client) {
    if (this.mode === "cut") return client.destroy();
    const upstream = net.connect(this.server.port, "127.0.0.1");
    for (const [from, to] of [[client, upstream], [upstream, client]]) {
      this.sockets.add(from);
      from.on("data", (chunk) => {
        // While muted, what the server sends is lost on the way, as on a dying network.
        if (this.mode === "mute" && from === upstream) return;
        to.write(chunk);
      });
      from.on("close", () => {
        this.sockets.delete(from);
        to.destroy();
      });
      from.on("error", () => to.destroy());
    }
  }

  /** Lets requests through but drops every byte coming back. */
  mute() {
    this.mode = "mute";
  }

  cut() {
    this.mode = "cut";
    for (const socket of this.sockets) socket.destroy();
  }

  restore() {
    this.mode = "pass";
  }

  async close() {
    this.cut();
    await new Promise((resolve) => this.listener.close(resolve));
  }
}

// ---------------------------------------------------------------- the browser

/** One Chromium for a test file, launched before its tests and closed after them. */
export function sharedBrowser() {
  const shared = { browser: null };
  before(async () => {
    shared.browser = await launchBrowser();
  });
  after(async () => {
    await shared.browser?.close();
  });
  return shared;
}

async function launchBrowser() {
  assert.ok(
    existsSync(CHROMIUM),
    `no Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium) or run scripts/test`,
  );
  // Playwright gives each launch a new, empty --user-data-dir of its own.
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
}

/**
 * One person's browser window: a fresh context, so nothing is shared with other people.
 * `look` takes Playwright's context options: `viewport`, `colorScheme`.
 */
export async function openChat(browser, baseUrl, look = {}) {
  const chat = await openPage(browser, baseUrl, look);
  await chat.waitForStatus("open");
  return chat;
}

/** Like openChat, without waiting for the page to connect (it may need a token first). */
export async function openPage(browser, baseUrl, look = {}) {
  const context = await browser.newContext({ viewport: DESKTOP, ...look });
  const page = await context.newPage();
  const chat = new ChatPage(page);
  await page.goto(baseUrl);
  return chat;
}

export function screenshotPath(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, `${name}.png`);
}

// ---------------------------------------------------------------- the page object

const WAIT = { timeout: 15_000 };

/** What Chromium logs by itself for a failed request: expected in outage and 404 tests. */
const NETWORK_NOISE = /^(Failed to load resource: |WebSocket connection to .* failed)/;

export class ChatPage {
  constructor(page) {
    this.page = page;
    this.problems = [];
    page.on("pageerror", (error) => this.problems.push(`page error: ${error.message}`));
    page.on("dialog", (dialog) => {
      this.problems.push(`dialog opened: ${dialog.message()}`);
      dialog.dismiss().catch(() => {});
    });
    page.on("console", (message) => {
      if (message.type() === "error" && !NETWORK_NOISE.test(message.text())) {
        this.problems.push(`console error: ${message.text()}`);
      }
    });
  }

  part(testId) {
    return this.page.getByTestId(testId);
  }

  async waitForStatus(state) {
    await this.page.waitForSelector(`[data-testid="connection-status"][data-state="${state}"]`, WAIT);
  }

  async setNickname(name) {
    await this.part("nickname-input").fill(name);
  }

  /** Creates a room through the form; returns its id, read from the new list entry. */
  async createRoom(name) {
    await this.part("room-name-input").fill(name);
    await this.part("create-room-button").click();
    const item = this.roomItem({ name });
    await item.waitFor(WAIT);
    return item.getAttribute("data-room-id");
  }

  roomItem({ roomId, name }) {
    const list = this.part("room-list");
    return roomId ? list.locator(`> [data-room-id="${roomId}"]`) : list.locator("> *", { hasText: name }).first();
  }

  async enterRoom(roomId) {
    await this.roomItem({ roomId }).click();
    await this.part("enter-button").click();
    await this.waitForPhase("joined");
  }

  async waitForPhase(phase) {
    await this.page.waitForSelector(`#chat[data-phase="${phase}"]`, WAIT);
  }

  async say(text, { key = false } = {}) {
    await this.part("message-input").fill(text);
    if (key) await this.part("message-input").press("Enter");
    else await this.part("send-button").click();
  }

  /** Waits until the log shows an event whose text contains `text`. */
  async waitForEvent(text) {
    await this.part("message-log").locator("> *", { hasText: text }).first().waitFor(WAIT);
  }

  /** The log as data: one entry per child, with its seq, kind and visible parts. */
  async log() {
    return this.part("message-log").evaluate((log) =>
      Array.from(log.children, (item) => ({
        seq: Number(item.dataset.seq),
        kind: ["talk", "enter", "leave"].find((k) => item.classList.contains(k)),
        sender: item.querySelector(".sender")?.textContent ?? null,
        text: item.querySelector(".text")?.textContent ?? "",
      })),
    );
  }

  async talks() {
    return (await this.log()).filter((e) => e.kind === "talk").map((e) => `${e.sender}: ${e.text}`);
  }

  async outbox() {
    return this.part("outbox").evaluate((list) =>
      Array.from(list.children, (item) => ({
        text: item.querySelector(".text")?.textContent,
        status: item.className,
        note: item.querySelector(".pending-status")?.textContent,
      })),
    );
  }
}

/** Every seq from the first shown to the last, each once, in order. */
export function assertGapFreeOnce(log) {
  const seqs = log.map((event) => event.seq);
  assert.ok(seqs.length > 0, "the log shows events");
  const expected = seqs.map((_, i) => seqs[0] + i);
  assert.deepEqual(seqs, expected, "the log's seqs are consecutive, with no gap and no repeat");
}

/**
 * Runs in the page: every visible text that is not disabled, with its contrast ratio against
 * the nearest opaque background, when below WCAG AA (4.5:1, or 3:1 for large text).
 */
export function lowContrastTexts() {
  const rgb = (css) => {
    const [r, g, b, a = 1] = css.match(/[\d.]+/g).map(Number);
    return { r, g, b, a };
  };
  const luminance = ({ r, g, b }) => {
    const channel = (c) => (c / 255 <= 0.03928 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4);
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const color = rgb(getComputedStyle(node).backgroundColor);
      if (color.a > 0) return color;
    }
    return rgb(getComputedStyle(document.documentElement).backgroundColor);
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    const element = text.parentElement;
    if (!text.textContent.trim() || !element.checkVisibility() || element.closest(":disabled")) continue;
    const style = getComputedStyle(element);
    const [fg, bg] = [luminance(rgb(style.color)), luminance(background(element))];
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`"${text.textContent.trim().slice(0, 40)}": ${ratio.toFixed(2)}`);
  }
  return low;
}
