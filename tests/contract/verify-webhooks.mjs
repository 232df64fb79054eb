// Verifies webhook deliveries with the Standard Webhooks reference library (npm
// `standardwebhooks`), not with the server's own code. Reads {"secret", "deliveries": [{"id",
// "timestamp", "signature", "body"}]} on stdin; prints how many verified, and exits 1 if one did
// not, or if a delivery with its body changed still verified (the check would be empty).
import { Webhook } from "standardwebhooks";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { secret, deliveries } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const webhook = new Webhook(secret);
const headers = (d) => ({
  "webhook-id": d.id,
  "webhook-timestamp": d.timestamp,
  "webhook-signature": d.signature,
});

let verified = 0;
for (const delivery of deliveries) {
  try {
    webhook.verify(delivery.body, headers(delivery));
    verified += 1;
  } catch (error) {
    console.error(`delivery ${delivery.id} did not verify: ${error.message}`);
    process.exit(1);
  }
  let forged = true;
  try {
    webhook.verify(delivery.body + " ", headers(delivery));
  } catch {
    forged = false;
  }
  if (forged) {
    console.error(`delivery ${delivery.id} verified with its body changed`);
    process.exit(1);
  }
}
console.log(`verified ${verified}`);
