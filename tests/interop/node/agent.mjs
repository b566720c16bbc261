// An agent written outside .NET: a stock OAuth client (oauth4webapi) gets a Broker token with
// its JWT-SVID, has a resource server introspect it, revokes it, and sees it inactive.
// No Broker SDK is involved. Broker.Server.Tests runs it against a real broker.
//
// Environment:
//   BROKER_ISSUER          the broker's issuer URL (discovery is read from it)
//   JWT_SVID               the agent's JWT-SVID (audience = the broker)
//   BROKER_RESOURCE        the resource server the token is for (RFC 8707 resource)
//   RESOURCE_SERVER_TOKEN  the resource server's bearer token for introspection
//   BROKER_GRANT           "token-exchange" (default) or "jwt-bearer"
//   BROKER_DPOP            "1": bind the token to a fresh ES256 key with DPoP (RFC 9449)
//
// Prints one JSON object describing what happened on stdout; exits 1 on any failure.
import * as oauth from 'oauth4webapi';

const need = (name) => {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
};

const issuer = new URL(need('BROKER_ISSUER'));
const svid = need('JWT_SVID');
const resource = need('BROKER_RESOURCE');
const resourceServerToken = need('RESOURCE_SERVER_TOKEN');
const grant = process.env.BROKER_GRANT ?? 'token-exchange';
const dpop = process.env.BROKER_DPOP === '1';

// --dev brokers listen on loopback HTTP; production ones only on HTTPS.
const insecure = issuer.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {};

// No client registration: the workload credential in the grant is the proof.
const client = { client_id: 'agent' };

// The resource server authenticates to introspection with its bearer token.
const resourceServer = (_as, _client, _body, headers) => {
  headers.set('authorization', `Bearer ${resourceServerToken}`);
};

// The agent authenticates to revocation with its own proof (RFC 7523 client assertion).
const agentAssertion = (_as, _client, body) => {
  body.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
  body.set('client_assertion', svid);
};

const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));

const task = [{ type: 'agent_task', phase: 'planning', justification: 'interop check' }];
const [grantType, parameters] = grant === 'jwt-bearer'
  ? ['urn:ietf:params:oauth:grant-type:jwt-bearer', { assertion: svid }]
  : ['urn:ietf:params:oauth:grant-type:token-exchange', {
      subject_token: svid,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    }];

const dpopHandle = dpop ? oauth.DPoP(client, await oauth.generateKeyPair('ES256')) : undefined;
const requestToken = async () => oauth.processGenericTokenEndpointResponse(as, client, await oauth.genericTokenEndpointRequest(
  as, client, oauth.None(), grantType, new URLSearchParams({
    ...parameters,
    resource,
    scope: 'repo:read',
    authorization_details: JSON.stringify(task),
  }), { ...insecure, DPoP: dpopHandle }));

// A broker that requires DPoP nonces answers use_dpop_nonce once; the handle has cached the nonce.
let nonceChallenges = 0;
let token;
try {
  token = await requestToken();
} catch (err) {
  if (!oauth.isDPoPNonceError(err)) {
    throw err;
  }
  nonceChallenges++;
  token = await requestToken();
}

const introspect = async () => oauth.processIntrospectionResponse(
  as, client, await oauth.introspectionRequest(as, client, resourceServer, token.access_token, insecure));

const before = await introspect();
await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, agentAssertion, token.access_token, {
  ...insecure,
  additionalParameters: { reason: 'interop check finished' },
}));
const after = await introspect();

process.stdout.write(JSON.stringify({
  dpop: dpop ? { jkt: await dpopHandle.calculateThumbprint(), nonce_challenges: nonceChallenges } : null,
  token: {
    token_type: token.token_type,
    issued_token_type: token.issued_token_type,
    scope: token.scope,
    expires_in: token.expires_in,
    token_id: token.token_id,
    task_id: token.task_id,
    phase: token.phase,
  },
  introspection: { active: before.active, sub: before.sub, jti: before.jti, scope: before.scope, token_type: before.token_type, cnf: before.cnf },
  after_revocation: { active: after.active, reason: after.broker_inactive_reason },
}) + '\n');
