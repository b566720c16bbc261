// A Shared Signals receiver written without any Broker code: Node.js and the stock `jose`
// library. It validates a Broker access token offline, registers a stream at the broker (poll,
// RFC 8936, or push, RFC 8935, to its own HTTP server), has a responder revoke the token, then
// verifies every SET against the broker's JWKS and refuses the token once a session-revoked
// event names it. Prints one JSON object; exits non-zero on any failure.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { createRemoteJWKSet, jwtVerify } from "jose";

const env = (name) => process.env[name] ?? fail(`${name} is not set`);
const issuer = env("BROKER_ISSUER");
const audience = env("BROKER_RESOURCE");
const accessToken = env("ACCESS_TOKEN");
const rsToken = env("RESOURCE_SERVER_TOKEN");
const operatorToken = env("OPERATOR_TOKEN");
const mode = env("SSF_DELIVERY");
const boundMs = Number(process.env.REVOCATION_BOUND_MS ?? "10000");
const SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

function fail(message) {
  console.error(message);
  process.exit(1);
}

const rs = { authorization: `Bearer ${rsToken}`, "content-type": "application/json" };
const config = await (await fetch(`${issuer}/.well-known/ssf-configuration`)).json();
const jwks = createRemoteJWKSet(new URL(config.jwks_uri));

// The resource server's own validator: stock JWT checks, then the revocations it has learned.
const revocations = [];
async function accepts(token) {
  try {
    const { payload } = await jwtVerify(token, jwks, { issuer: config.issuer, audience, typ: "at+jwt" });
    return !revocations.some((r) => matches(r, payload));
  } catch {
    return false;
  }
}

function matches(r, t) {
  const before = (limit, inclusive) => limit === undefined || (inclusive ? t.iat <= limit : t.iat < limit);
  switch (r.kind) {
    case "token": return t.jti === r.jti;
    case "task": return t.task === r.task_id;
    case "task_phase": return t.task === r.task_id && t.phase === r.phase && before(r.issued_before, true);
    case "agent": return t.sub === r.sub && before(r.issued_before, true);
    case "agent_issued_before": return t.sub === r.sub && before(r.issued_before, false);
    case "trust_domain": return t.sub.startsWith(`spiffe://${r.trust_domain}/`) && before(r.issued_before, true);
    case "issued_before": return before(r.issued_before, false);
    default: return true; // an unknown kind: fail closed
  }
}

const verified = [];
let audienceOfStream;
async function receive(set) {
  const { payload, protectedHeader } = await jwtVerify(set, jwks, { issuer: config.issuer, audience: audienceOfStream, typ: "secevent+jwt" });
  const event = payload.events?.[SESSION_REVOKED];
  verified.push({ jti: payload.jti, txn: payload.txn, kid: protectedHeader.kid, kind: event?.broker_revocation?.kind ?? null, sub_id: payload.sub_id });
  if (event) revocations.push(event.broker_revocation);
}

const acceptedBefore = await accepts(accessToken);

let server;
let pushSecret;
const pushErrors = [];
let delivery = { method: "urn:ietf:rfc:8936" };
if (mode === "push") {
  pushSecret = `Bearer ${randomBytes(16).toString("hex")}`;
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", async () => {
      if (req.headers.authorization !== pushSecret || req.headers["content-type"] !== "application/secevent+jwt") {
        res.writeHead(401).end();
        return;
      }
      try {
        await receive(body);
        res.writeHead(202).end();
      } catch (e) {
        pushErrors.push(String(e));
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ err: "invalid_request", description: String(e) }));
      }
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  delivery = { method: "urn:ietf:rfc:8935", endpoint_url: `http://127.0.0.1:${server.address().port}/ssf/events`, authorization_header: pushSecret };
}

const created = await fetch(config.configuration_endpoint, { method: "POST", headers: rs, body: JSON.stringify({ delivery, events_requested: [SESSION_REVOKED] }) });
if (created.status !== 201) fail(`stream not created: ${created.status} ${await created.text()}`);
const stream = await created.json();
audienceOfStream = stream.aud;

// A responder revokes the token at the broker's revocation endpoint (RFC 7009).
const revokedAt = Date.now();
const revoke = await fetch(`${issuer}/oauth2/revoke`, {
  method: "POST",
  headers: { authorization: `Bearer ${operatorToken}`, "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({ token: accessToken, reason: "ssf interop check" }),
});
if (revoke.status !== 200) fail(`revocation failed: ${revoke.status} ${await revoke.text()}`);

let refusedAfterMs = null;
let ack = [];
while (Date.now() - revokedAt < boundMs) {
  if (mode === "push") {
    await new Promise((resolve) => setTimeout(resolve, 20));
  } else {
    const answer = await fetch(stream.delivery.endpoint_url, { method: "POST", headers: rs, body: JSON.stringify({ ack, returnImmediately: false, maxEvents: 50 }) });
    if (answer.status !== 200) fail(`poll failed: ${answer.status} ${await answer.text()}`);
    const { sets } = await answer.json();
    ack = [];
    for (const [jti, set] of Object.entries(sets)) {
      await receive(set);
      ack.push(jti);
    }
  }
  if (!(await accepts(accessToken))) {
    refusedAfterMs = Date.now() - revokedAt;
    break;
  }
}

if (mode !== "push" && ack.length > 0) {
  await fetch(stream.delivery.endpoint_url, { method: "POST", headers: rs, body: JSON.stringify({ ack, maxEvents: 0 }) });
}
const deleted = await fetch(`${config.configuration_endpoint}?stream_id=${encodeURIComponent(stream.stream_id)}`, { method: "DELETE", headers: rs });
server?.close();

console.log(JSON.stringify({
  stream_id: stream.stream_id,
  stream_aud: stream.aud,
  delivery: stream.delivery.method,
  accepted_before: acceptedBefore,
  refused_after_ms: refusedAfterMs,
  verified,
  push_errors: pushErrors,
  deleted: deleted.status,
}));
