# Shell helpers shared by deploy/local/cluster.sh and deploy/compose/make-secrets.sh: an ES256
# JWS from openssl, for the resource-server token a local deployment (no IdP) gives its sample
# resource server. Needs openssl and od; xxd when present.

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

hex_b64url() { # hex digits -> base64url of those bytes
  if command -v xxd >/dev/null 2>&1; then
    printf '%s' "$1" | xxd -r -p | b64url
  else
    printf "$(sed 's/../\\x&/g' <<<"$1")" | b64url
  fi
}

# ES256 over stdin with a PEM key: openssl's DER (r, s) becomes JOSE's 32-byte r || s.
es256_sign() {
  local h rlen r slen s
  h=$(openssl dgst -sha256 -sign "$1" | od -An -v -tx1 | tr -d ' \n')
  rlen=$((16#${h:6:2}))
  r=${h:8:$((2 * rlen))}
  slen=$((16#${h:$((10 + 2 * rlen)):2}))
  s=${h:$((12 + 2 * rlen)):$((2 * slen))}
  [ ${#r} -gt 64 ] && r=${r: -64}
  [ ${#s} -gt 64 ] && s=${s: -64}
  while [ ${#r} -lt 64 ]; do r=0$r; done
  while [ ${#s} -lt 64 ]; do s=0$s; done
  hex_b64url "$r$s"
}

# A resource-server token: what a production resource server gets from the IdP (client
# credentials). A local deployment has no IdP, so its nodes pin a key
# (Broker:ResourceServers:KeyFile) and this signs with it, with the audience and role the
# broker expects and a week's lifetime.
# Usage: resource_server_token ISSUER PRIVATE_KEY_PEM SUBJECT > token
resource_server_token() {
  local now header payload input
  now=$(date +%s)
  header=$(printf '{"alg":"ES256","typ":"JWT"}' | b64url)
  payload=$(printf '{"iss":"%s","aud":"broker-resource-servers","sub":"%s","iat":%s,"exp":%s,"roles":["resource-server"]}' \
    "$1" "$3" "$now" "$((now + 7 * 24 * 3600))" | b64url)
  input="$header.$payload"
  printf '%s.%s\n' "$input" "$(printf '%s' "$input" | es256_sign "$2")"
}

