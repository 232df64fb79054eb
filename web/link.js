// The page's one WebSocket, reconnecting by itself; what it hears goes to the parts that
// care.

import { Connection } from "./connection.js";
import { identity } from "./page.js";
import { connectionLost, resumeRoom } from "./visit.js";
import { receiveFrame } from "./log.js";
import { renderStatus } from "./header.js";

export const connection = new Connection({
  query: () => identity.socketQuery,
  onStatus: renderStatus,
  onOpen: resumeRoom,
  onClose: connectionLost,
  onFrame: receiveFrame,
});
