#!/usr/bin/env bash
# Writes the secrets deploy/compose/compose.yaml mounts, for a local or test deployment:
#   secrets/signing.pem                 token-signing key (EC P-256), shared by every node
#   secrets/audit-checkpoint.key.pem    audit checkpoint key (never the signing key); .pub.pem for verify
#   secrets/tls.crt, tls.key, ca.crt    TLS for the brokers (SANs broker, broker-1..3, localhost)
#   secrets/resource-server.crt, .key   TLS for the sample resource server (SANs resource-server, localhost)
#   secrets/trust.key.pem               stand-in for SPIRE: signs JWT-SVIDs of compose.local.test
#   secrets/resource-servers.key.pem    stand-in for an IdP: signs resource-server tokens (.pub.pem: the brokers pin it)
#   secrets/resource-server.token       the sample resource server's token for the revocation stream (a week; rerun to renew)
#   policy/bundles/compose.local.test.jwks   that trust domain's JWT bundle, read by the policy
# Existing files are kept (delete secrets/ to start over). In production these come from your
# secret store and PKI, never from this script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
command -v openssl >/dev/null || { echo "make-secrets.sh needs openssl" >&2; exit 1; }
mkdir -p secrets policy/bundles
chmod 700 secrets

ec_key() { [ -f "$1" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec_key secrets/signing.pem
ec_key secrets/audit-checkpoint.key.pem
openssl pkey -in secrets/audit-checkpoint.key.pem -pubout -out secrets/audit-checkpoint.pub.pem
ec_key secrets/trust.key.pem

if [ ! -f secrets/tls.crt ]; then
  ec_key secrets/ca.key
  openssl req -x509 -new -key secrets/ca.key -subj "/CN=broker compose CA" -days 365 -out secrets/ca.crt 2>/dev/null
  ec_key secrets/tls.key
  openssl req -new -key secrets/tls.key -subj "/CN=broker" -out secrets/tls.csr 2>/dev/null
  printf 'subjectAltName=DNS:broker,DNS:broker-1,DNS:broker-2,DNS:broker-3,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >secrets/tls.ext
  openssl x509 -req -in secrets/tls.csr -CA secrets/ca.crt -CAkey secrets/ca.key -CAcreateserial \
    -days 365 -extfile secrets/tls.ext -out secrets/tls.crt 2>/dev/null
  rm -f secrets/tls.csr secrets/tls.ext secrets/ca.srl
fi

if [ ! -f secrets/resource-server.crt ]; then
  ec_key secrets/resource-server.key
  openssl req -new -key secrets/resource-server.key -subj "/CN=resource-server" -out secrets/resource-server.csr 2>/dev/null
  printf 'subjectAltName=DNS:resource-server,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >secrets/resource-server.ext
  openssl x509 -req -in secrets/resource-server.csr -CA secrets/ca.crt -CAkey secrets/ca.key -CAcreateserial \
    -days 365 -extfile secrets/resource-server.ext -out secrets/resource-server.crt 2>/dev/null
  rm -f secrets/resource-server.csr secrets/resource-server.ext secrets/ca.srl
fi

# JWT bundle of the trust domain: the public point of trust.key.pem as a JWK.
# shellcheck source=../lib/jws.sh
. ../lib/jws.sh
point=$(openssl pkey -in secrets/trust.key.pem -pubout -outform DER | tail -c 65 | od -An -v -tx1 | tr -d ' \n')
printf '{"keys":[{"kty":"EC","crv":"P-256","x":"%s","y":"%s","kid":"compose-trust-1","use":"jwt-svid","alg":"ES256"}]}\n' \
  "$(hex_b64url "${point:2:64}")" "$(hex_b64url "${point:66:64}")" >policy/bundles/compose.local.test.jwks

# Resource servers authenticate to the revocation stream; without an IdP here, the brokers pin
# this key (Broker__ResourceServers__KeyFile) and the sample's token is signed with it.
ec_key secrets/resource-servers.key.pem
openssl pkey -in secrets/resource-servers.key.pem -pubout -out secrets/resource-servers.pub.pem
resource_server_token compose-resource-servers secrets/resource-servers.key.pem sample-resource-server >secrets/resource-server.token

# The broker and the resource server run as UID 1654 and reads these through bind mounts: demo keys are world-readable
# inside a folder only you can enter. Use real secret storage (Kubernetes Secrets, Vault) beyond a laptop.
chmod 644 secrets/*.pem secrets/*.crt secrets/tls.key secrets/resource-server.key secrets/resource-server.token
chmod 600 secrets/ca.key
echo "secrets written to $(pwd)/secrets; trust bundle in $(pwd)/policy/bundles"
