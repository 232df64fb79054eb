// The page's one WebSocket, reconnecting by itself. What it hears goes to the handlers that
// app.js gives it (`listen`), so the parts that send through it need not import the parts that
// handle what comes back.

import { Connection } from "./connection.js";
import { identity } from "./page.js";

export const connection = new Connection({
  query: () => identity.socketQuery,
  onStatus() {},
  onOpen() {},
  onClose() {},
  onFrame() {},
});

/** Who takes the connection's news: `onStatus`, `onOpen`, `onClose` and `onFrame`. */
export function listen(handlers) {
  Object.assign(connection.handlers, handlers);
}
