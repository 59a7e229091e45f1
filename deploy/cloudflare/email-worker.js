// Threadline inbound mail through Cloudflare Email Routing: an Email Worker that posts each
// message, byte for byte, to Threadline's relay ingress (the Action Mailbox relay endpoint).
//
// Setup
//   1. In Threadline's environment: INBOUND_EMAIL_SERVICE=relay (or add relay to the list) and
//      INBOUND_EMAIL_PASSWORD=<a long random password>.
//   2. Next to this file, a wrangler.toml:
//
//        name = "threadline-email"
//        main = "email-worker.js"
//        compatibility_date = "2024-09-23"
//
//        [vars]
//        THREADLINE_URL = "https://help.example.com"   # Threadline's public base URL
//
//      then `npx wrangler secret put INBOUND_EMAIL_PASSWORD` (paste the same password) and
//      `npx wrangler deploy`.
//   3. In the Cloudflare dashboard: your domain > Email > Email Routing > Routing rules: send
//      the support address (or the catch-all) to the Worker "threadline-email".
//
// What happens to a message
//   - Threadline answers 2xx: stored; the Worker returns and Cloudflare accepts the mail.
//   - Threadline answers a permanent 4xx (401 wrong password, 404 relay not enabled, 413 too
//     large for INBOUND_EMAIL_MAX_BYTES, 415, 422): setReject() with Threadline's reason, so the
//     sender gets a bounce saying why instead of the mail vanishing.
//   - Threadline answers 5xx, 408 or 429, or cannot be reached: the Worker throws; Cloudflare
//     answers the sending server with a temporary SMTP failure and the sender retries later.
//
// The envelope recipient (message.to) is prepended as an "X-Original-To: <to>" line, the same
// line Threadline itself prepends for providers that report the envelope, so a Bcc'd or
// forwarded message routes to the inbox it was sent to.

const RELAY_PATH = "/rails/action_mailbox/relay/inbound_emails";
const USER = "actionmailbox";
const TIMEOUT_MS = 60_000;

export default {
  async email(message, env, ctx) {
    const base = String(env.THREADLINE_URL || "").replace(/\/+$/, "");
    if (!base || !env.INBOUND_EMAIL_PASSWORD) {
      // A Worker set up halfway: keep the mail queued at the sender until it is finished.
      throw new Error("THREADLINE_URL and INBOUND_EMAIL_PASSWORD must both be set");
    }
    const body = withOriginalRecipient(message.to, await readAll(message.raw));
    let response;
    try {
      response = await fetch(base + RELAY_PATH, {
        method: "POST",
        headers: {
          "Content-Type": "message/rfc822",
          Authorization: "Basic " + base64(encoder.encode(`${USER}:${env.INBOUND_EMAIL_PASSWORD}`)),
        },
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new Error(`Threadline is unreachable (${base}): ${error.message}`, { cause: error });
    }
    if (response.ok) return;
    const reason = await reasonOf(response);
    if (isPermanent(response.status)) {
      message.setReject(`Threadline refused the message: ${reason}`);
      return;
    }
    throw new Error(`Threadline is unavailable, retry later: ${reason}`);
  },
};

const encoder = new TextEncoder();

function isPermanent(status) {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

async function readAll(stream) {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function withOriginalRecipient(to, raw) {
  // A line break in the recipient would write a header of its own: leave the message as it is.
  if (!to || /[\r\n\0]/.test(to)) return raw;
  const line = encoder.encode(`X-Original-To: ${to}\n`);
  const out = new Uint8Array(line.length + raw.length);
  out.set(line, 0);
  out.set(raw, line.length);
  return out;
}

async function reasonOf(response) {
  let text = "";
  try {
    text = (await response.text()).trim().split("\n")[0];
  } catch {
    // the status alone will do
  }
  return `${response.status}${text ? " " + text : ""}`.slice(0, 300);
}

function base64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
