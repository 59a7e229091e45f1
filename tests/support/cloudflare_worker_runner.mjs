// Runs deploy/cloudflare/email-worker.js under Node the way Cloudflare Email Routing calls it:
// `email(message, env, ctx)` with a stand-in ForwardableEmailMessage whose `raw` is a
// ReadableStream of the given file's bytes (in small chunks, as a stream arrives).
//
// Usage: node cloudflare_worker_runner.mjs '<json>' where json holds
//   {"worker": path, "raw": path, "from": envelope sender, "to": envelope recipient, "env": {...}}
// Prints one JSON line: {"outcome": "ok" | "rejected" | "threw", "rejections": [...],
// "error": message or null, "forwarded": [...]}.

import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";

const spec = JSON.parse(process.argv[2]);
const worker = (await import(pathToFileURL(spec.worker).href)).default;
const bytes = new Uint8Array(await readFile(spec.raw));
const CHUNK = 1000;

const rejections = [];
const forwarded = [];
let offset = 0;
const message = {
  from: spec.from,
  to: spec.to,
  headers: new Headers({ "message-id": "<stand-in@cloudflare.test>" }),
  rawSize: bytes.length,
  raw: new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + CHUNK));
      offset += CHUNK;
    },
  }),
  setReject(reason) {
    rejections.push(String(reason));
  },
  async forward(rcptTo) {
    forwarded.push(String(rcptTo));
  },
};
const ctx = { waitUntil() {}, passThroughOnException() {} };

let outcome = "ok";
let error = null;
try {
  await worker.email(message, spec.env, ctx);
  if (rejections.length) outcome = "rejected";
} catch (thrown) {
  outcome = "threw";
  error = String(thrown && thrown.message ? thrown.message : thrown);
}
process.stdout.write(JSON.stringify({ outcome, rejections, error, forwarded }) + "\n");
