#!/usr/bin/env bash
# A local multi-node Broker cluster on loopback, without containers: one redis-server (AOF,
# appendfsync always), N broker nodes in production mode that share the issuer, the signing
# key, the audit checkpoint key, the policy and Redis, and the sample resource server
# (samples/Broker.SampleResourceServer) accepting their tokens. Same shape as
# deploy/compose/compose.yaml minus the Redis replica and the sentinels (see docs/operations.md).
#
#   deploy/local/cluster.sh start [N]   start Redis, N nodes (default 3) and the resource server
#   deploy/local/cluster.sh status      show what runs and each process's /healthz
#   deploy/local/cluster.sh stop        end exactly the processes start wrote to the PID file
#
# Environment:
#   BROKER_CLUSTER_DIR  state folder (keys, policy, Redis data, audit, logs, PIDs);
#                       default ${TMPDIR:-/tmp}/broker-cluster. start refuses if a cluster
#                       from this folder is still running.
#   BROKER_DLL          a built Broker.Server.dll; default: build broker/Broker.Server (Release).
#   BROKER_SAMPLE_DLL   a built Broker.SampleResourceServer.dll; default: build
#                       samples/Broker.SampleResourceServer (Release).
#   BROKERCTL           a brokerctl executable (generates the operator key, and the commands
#                       printed at the end use it); default: build broker/Broker.Cli (Release).
#   BROKER_OPERATOR_AUTHORITY  an OIDC IdP for operators instead of the generated operator key.
#   BROKER_BASE_PORT    first port; Redis gets it, node i gets BASE+2i-1 (gRPC) and BASE+2i (HTTP),
#                       the resource server BASE+2N+1. Default: a free range chosen at random
#                       below the kernel's ephemeral range, so no outgoing connection holds it.
#   BROKER_START_TIMEOUT  seconds to wait for every process's /healthz (default 60).
#
# The resource server takes tokens for audience https://api.local.test from the cluster's issuer
# and follows revocations on node-1's WatchRevocations stream; revoking at any node reaches it.
# GET /repo needs scope repo:read; POST /deployments/staging needs phase execution and
# deploy:staging. Its /healthz is 200 only while its revocation state is current.
#
# Operators: the nodes trust an operator key the script generates (`brokerctl operator-key
# generate`; Broker:Operators:KeyFile names its public JWKS, Broker:Operators:Issuer is
# 'local-cluster-operators'); `brokerctl operator-token` mints tokens with its private half for
# revoke, approvals and the other admin calls. start prints working commands. With
# BROKER_OPERATOR_AUTHORITY the nodes trust that OIDC IdP instead.
# Approvals: deploy:prod in phase execution waits for a person with the role 'approver'.
# Issuance works: agents attest with JWT-SVIDs of the local trust domain 'cluster.local.test'
# (`brokerctl dev svid --dev-dir "$BROKER_CLUSTER_DIR"` mints them).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${BROKER_CLUSTER_DIR:-${TMPDIR:-/tmp}/broker-cluster}"
pids="$dir/pids"
key_prefix="broker:"
trust_domain="cluster.local.test"

die() { echo "cluster.sh: $*" >&2; exit 1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Is the process with this PID still the one we started? (guards against PID reuse)
is_ours() {
  local pid=$1 name=$2
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$name"
}

running() {
  [ -f "$pids" ] || return 1
  local pid name
  while read -r pid name _; do
    is_ours "$pid" "$name" && return 0
  done <"$pids"
  return 1
}

# shellcheck source=../lib/jws.sh
. "$repo/deploy/lib/jws.sh"

operator_issuer="local-cluster-operators"

# The sample resource server's token for the revocation stream (start again for a fresh one).
mint_resource_server_token() {
  (umask 077; resource_server_token "$resource_server_issuer" "$dir/keys/resource-servers.key.pem" sample-resource-server >"$dir/keys/resource-server.token")
}

healthz() { # port -> HTTP status code of /healthz, or 000
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/healthz" || true
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 \
      && head -n 1 <&3 | awk '{print $2}') 2>/dev/null || echo 000
  fi
}

make_keys() {
  mkdir -p "$dir/keys" "$dir/trust"
  chmod 700 "$dir/keys" "$dir/trust"
  (
    umask 077
    # Token-signing key (shared by every node), audit checkpoint key (never the signing key).
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/keys/signing.pem" 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/keys/audit-checkpoint.key.pem" 2>/dev/null
    openssl pkey -in "$dir/keys/audit-checkpoint.key.pem" -pubout -out "$dir/keys/audit-checkpoint.pub.pem"
    # Signs resource-server tokens (the nodes trust its public half for the revocation channel).
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/keys/resource-servers.key.pem" 2>/dev/null
    openssl pkey -in "$dir/keys/resource-servers.key.pem" -pubout -out "$dir/keys/resource-servers.pub.pem"
    # A local SPIFFE trust domain standing in for SPIRE: its private key and JWT bundle.
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/trust/trust.key.pem" 2>/dev/null
  )
  # Operators without an IdP: the nodes get the public JWKS, operator-token uses the private key.
  "$ctl" operator-key generate --out "$dir/keys/operators" >/dev/null
  # The SPKI of a P-256 key ends with the 65-byte point 0x04 || X || Y.
  local point x y
  point=$(openssl pkey -in "$dir/trust/trust.key.pem" -pubout -outform DER | tail -c 65 | od -An -v -tx1 | tr -d ' \n')
  x=$(printf '%s' "${point:2:64}" | xxd -r -p 2>/dev/null | b64url || true)
  if [ -z "$x" ]; then # no xxd: decode hex with printf
    x=$(printf "$(sed 's/../\\x&/g' <<<"${point:2:64}")" | b64url)
    y=$(printf "$(sed 's/../\\x&/g' <<<"${point:66:64}")" | b64url)
  else
    y=$(printf '%s' "${point:66:64}" | xxd -r -p | b64url)
  fi
  cat >"$dir/trust/$trust_domain.jwks" <<EOF
{"keys":[{"kty":"EC","crv":"P-256","x":"$x","y":"$y","kid":"cluster-trust-1","use":"jwt-svid","alg":"ES256"}]}
EOF
}

write_policy() {
  cat >"$dir/policy.yaml" <<EOF
# yaml-language-server: \$schema=$repo/deploy/policy/policy.schema.json
# Policy of the local cluster (deploy/local/cluster.sh); every node reads this file and
# reloads it on save. Reference: docs/policy.md and deploy/policy/sample-policy.yaml.
version: 1
trust:
  spiffe:
    - trust_domain: $trust_domain
      jwt_bundle_file: trust/$trust_domain.jwks
      refresh: 30s
agents:
  - name: local-agents
    match: spiffe://$trust_domain/agents/*
    phases:
      planning:
        scopes: [repo:read, tickets:read]
        audiences: [https://api.local.test]
        max_ttl: 10m
      execution:
        scopes: [repo:read, deploy:staging, deploy:prod]
        audiences: [https://api.local.test]
        max_ttl: 5m
        on_unknown_risk: allow
        gated_scopes:
          - scopes: [deploy:prod]
            approvers: [approver]
            validity: 10m
      recovery:
        scopes: [repo:read, deploy:rollback]
        audiences: [https://api.local.test]
        max_ttl: 5m
EOF
}

start() {
  local nodes=${1:-3}
  [[ "$nodes" =~ ^[1-9][0-9]?$ ]] || die "N must be a number of nodes (1-99), got '$nodes'"
  if running; then die "a cluster from $dir is running; run '$0 stop' first"; fi
  command -v redis-server >/dev/null || die "redis-server is not on PATH (apt-get install -y redis-server)"
  command -v redis-cli >/dev/null || die "redis-cli is not on PATH (apt-get install -y redis-tools)"
  command -v openssl >/dev/null || die "openssl is not on PATH"

  local dll=${BROKER_DLL:-}
  if [ -z "$dll" ]; then
    echo "Building broker/Broker.Server (Release)..."
    dotnet build "$repo/broker/Broker.Server" -c Release -v quiet -nologo >/dev/null
    dll="$repo/broker/Broker.Server/bin/Release/net10.0/Broker.Server.dll"
  fi
  [ -f "$dll" ] || die "BROKER_DLL '$dll' does not exist"
  dll=$(cd "$(dirname "$dll")" && pwd)/$(basename "$dll")

  local sample_dll=${BROKER_SAMPLE_DLL:-}
  if [ -z "$sample_dll" ]; then
    echo "Building samples/Broker.SampleResourceServer (Release)..."
    dotnet build "$repo/samples/Broker.SampleResourceServer" -c Release -v quiet -nologo >/dev/null
    sample_dll="$repo/samples/Broker.SampleResourceServer/bin/Release/net10.0/Broker.SampleResourceServer.dll"
  fi
  [ -f "$sample_dll" ] || die "BROKER_SAMPLE_DLL '$sample_dll' does not exist"
  sample_dll=$(cd "$(dirname "$sample_dll")" && pwd)/$(basename "$sample_dll")

  ctl=${BROKERCTL:-}
  if [ -z "$ctl" ]; then
    echo "Building broker/Broker.Cli (Release)..."
    dotnet build "$repo/broker/Broker.Cli" -c Release -v quiet -nologo >/dev/null
    ctl="$repo/broker/Broker.Cli/bin/Release/net10.0/brokerctl"
  fi
  [ -x "$ctl" ] || die "BROKERCTL '$ctl' is not an executable"
  ctl=$(cd "$(dirname "$ctl")" && pwd)/$(basename "$ctl")

  # A fresh cluster: old keys, data and audit of a stopped cluster in this folder are replaced.
  rm -rf "$dir"
  mkdir -p "$dir/redis" "$dir/logs"
  chmod 700 "$dir"
  : >"$pids"

  local base=${BROKER_BASE_PORT:-}
  if [ -z "$base" ]; then
    local try p free
    for try in $(seq 1 50); do
      base=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
      free=1
      for p in $(seq "$base" $((base + 2 * nodes + 1))); do
        if port_in_use "$p"; then free=0; break; fi
      done
      [ "$free" -eq 1 ] && break
    done
    [ "$free" -eq 1 ] || die "found no free port range; set BROKER_BASE_PORT"
  fi
  local redis_port=$base resource_port=$((base + 2 * nodes + 1))

  make_keys
  write_policy

  # Redis with the durability settings docs/revocation.md requires.
  setsid redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" \
    --appendonly yes --appendfsync always --maxmemory-policy noeviction --save '' \
    --daemonize no --logfile "$dir/logs/redis.log" </dev/null >/dev/null 2>&1 &
  echo "$! redis-server port=$redis_port" >>"$pids"
  local i
  for i in $(seq 1 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 || die "redis-server did not answer on port $redis_port (see $dir/logs/redis.log)"

  # Day one of a cluster: a fresh Redis has no revocation epoch, and every node refuses
  # everything (REVOCATION_STATE_LOST) until one exists. In production a responder runs
  # `brokerctl revocations restore-epoch`; on an empty Redis there is nothing to revoke, so
  # creating the key is the same thing. NX: never replace an existing epoch.
  redis-cli -p "$redis_port" SET "${key_prefix}revocations:epoch" "local-$(date +%s)-$RANDOM" NX >/dev/null

  local issuer="http://127.0.0.1:$((base + 2))"
  local authority=${BROKER_OPERATOR_AUTHORITY:-}
  resource_server_issuer="local-cluster-resource-servers"
  for i in $(seq 1 "$nodes"); do
    local grpc=$((base + 2 * i - 1)) http=$((base + 2 * i)) node="node-$i"
    mkdir -p "$dir/$node"
    (
      cd "$dir/$node"
      export ASPNETCORE_ENVIRONMENT=Production DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
      export Broker__Issuer="$issuer"
      export Broker__Audience="spiffe://$trust_domain/broker"
      export Broker__PolicyPath="$dir/policy.yaml"
      export Broker__AuditPath="$dir/$node/audit"
      export Broker__NodeId="$node"
      export Broker__Audit__CheckpointKeyPath="$dir/keys/audit-checkpoint.key.pem"
      export Broker__TelemetryPath="$dir/$node/telemetry.log"
      export Broker__Redis__Configuration="127.0.0.1:$redis_port,abortConnect=false,allowAdmin=true"
      export Broker__Redis__KeyPrefix="$key_prefix"
      export Broker__Signing__Keys__0__Path="$dir/keys/signing.pem"
      if [ -n "$authority" ]; then
        export Broker__Operators__Authority="$authority"
      else
        export Broker__Operators__KeyFile="$dir/keys/operators/operators.jwks.json"
        export Broker__Operators__Issuer="$operator_issuer"
      fi
      export Broker__ResourceServers__KeyFile="$dir/keys/resource-servers.pub.pem"
      export Broker__ResourceServers__Issuer="$resource_server_issuer"
      export Kestrel__Endpoints__Grpc__Url="http://127.0.0.1:$grpc"
      export Kestrel__Endpoints__Grpc__Protocols=Http2
      export Kestrel__Endpoints__Http__Url="http://127.0.0.1:$http"
      export Kestrel__Endpoints__Http__Protocols=Http1
      exec setsid dotnet "$dll" --Broker:ClusterNode="$node" </dev/null >"$dir/logs/$node.log" 2>&1
    ) &
    echo "$! Broker.Server $node grpc=$grpc http=$http" >>"$pids"
  done

  # Written for `brokerctl dev svid --dev-dir $dir`: which key signs the trust domain's SVIDs.
  cat >"$dir/dev.json" <<EOF
{
  "trust_domain": "$trust_domain",
  "audience": "spiffe://$trust_domain/broker",
  "grpc_address": "http://127.0.0.1:$((base + 1))",
  "issuer": "$issuer",
  "trust_key_file": "trust/trust.key.pem",
  "trust_key_id": "cluster-trust-1",
  "policy_file": "policy.yaml",
  "audit_file": "node-1/audit"
}
EOF

  local timeout=${BROKER_START_TIMEOUT:-60} deadline
  deadline=$((SECONDS + timeout))
  for i in $(seq 1 "$nodes"); do
    wait_healthy "node-$i" Broker.Server $((base + 2 * i)) "$deadline" "$timeout"
  done

  # The sample resource server, once the nodes serve discovery, JWKS and the revocation stream.
  mint_resource_server_token
  (
    cd "$dir"
    export ASPNETCORE_ENVIRONMENT=Production DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
    export Sample__Issuer="$issuer"
    export Sample__Audience="https://api.local.test"
    export Sample__RevocationAddress="http://127.0.0.1:$((base + 1))"
    export Sample__RevocationTokenFile="$dir/keys/resource-server.token"
    export Kestrel__Endpoints__Http__Url="http://127.0.0.1:$resource_port"
    exec setsid dotnet "$sample_dll" </dev/null >"$dir/logs/resource-server.log" 2>&1
  ) &
  echo "$! Broker.SampleResourceServer resource-server http=$resource_port" >>"$pids"
  wait_healthy resource-server Broker.SampleResourceServer "$resource_port" "$deadline" "$timeout"

  echo "Broker cluster up: $nodes node(s), state in $dir"
  echo "  redis     127.0.0.1:$redis_port (AOF, appendfsync always; epoch key ${key_prefix}revocations:epoch set)"
  for i in $(seq 1 "$nodes"); do
    echo "  node-$i    gRPC http://127.0.0.1:$((base + 2 * i - 1))   HTTP http://127.0.0.1:$((base + 2 * i))/healthz"
  done
  echo "  issuer    $issuer (discovery and JWKS on every node's HTTP port)"
  echo "  resource-server  http://127.0.0.1:$resource_port   GET /repo (repo:read), POST /deployments/staging (execution, deploy:staging); audience https://api.local.test, revocations from node-1"
  if [ -n "$authority" ]; then
    echo "  operators $authority (OIDC IdP)"
  else
    echo "  operators key trust: $dir/keys/operators/operators.jwks.json, issuer $operator_issuer (private key $dir/keys/operators/operator.key.pem)"
  fi
  echo "  PIDs      $pids"
  local node1="http://127.0.0.1:$((base + 1))" node2="http://127.0.0.1:$((base + 3))"
  [ "$nodes" -ge 2 ] || node2=$node1
  echo "Try:  SVID=\$($ctl dev svid --dev-dir $dir --agent spiffe://$trust_domain/agents/demo)"
  echo "      TOKEN=\$($ctl issue --svid \"\$SVID\" --broker $node1 --task t-1 --phase planning --scope repo:read --audience https://api.local.test --token-only)"
  echo "      curl -H \"Authorization: Bearer \$TOKEN\" http://127.0.0.1:$resource_port/repo"
  if [ -z "$authority" ]; then
    echo "Operators (a 10-minute token from the generated operator key):"
    echo "      export BROKER_OPERATOR_TOKEN=\$($ctl operator-token --key $dir/keys/operators/operator.key.pem --issuer $operator_issuer --name alice --role responder --role approver --ttl 10m)"
    echo "      $ctl revoke task t-1 --reason \"local cluster: revoke task t-1\" --broker $node2"
    echo "      APPROVAL=\$($ctl issue --svid \"\$SVID\" --broker $node1 --task t-2 --phase execution --scope deploy:prod --audience https://api.local.test | awk '\$1 == \"approval_id\" {print \$2}')"
    echo "      $ctl approvals approve \"\$APPROVAL\" --broker $node2"
  fi
  echo "Stop: $0 stop"
}

# Wait until a process we started answers /healthz 200; on exit or timeout show its log, stop
# everything and fail.
wait_healthy() { # label pid-file-name port deadline timeout
  local label=$1 name=$2 port=$3 deadline=$4 timeout=$5 code
  while :; do
    code=$(healthz "$port")
    [ "$code" = 200 ] && return 0
    if ! is_ours "$(awk -v n="$label" '$3 == n {print $1}' "$pids")" "$name"; then
      echo "$label exited; its log ($dir/logs/$label.log):" >&2
      tail -n 20 "$dir/logs/$label.log" >&2 || true
      stop >/dev/null
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$label did not become healthy within ${timeout}s (last /healthz: $code); see $dir/logs/$label.log" >&2
      stop >/dev/null
      exit 1
    fi
    sleep 0.25
  done
}

stop() {
  [ -f "$pids" ] || { echo "no cluster PID file at $pids"; return 0; }
  local pid name rest ended=0
  # The resource server first, then brokers, Redis last, so nothing logs an outage of what it
  # depends on on the way down.
  for pass in Broker.SampleResourceServer Broker.Server redis-server; do
    while read -r pid name rest; do
      [ "$name" = "$pass" ] || continue
      if is_ours "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        local t
        for t in $(seq 1 100); do
          is_ours "$pid" "$name" || break
          sleep 0.1
        done
        if is_ours "$pid" "$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
        echo "stopped $name $rest (pid $pid)"
        ended=$((ended + 1))
      fi
    done <"$pids"
  done
  rm -f "$pids"
  echo "$ended process(es) ended"
}

status() {
  [ -f "$pids" ] || { echo "no cluster at $dir"; return 1; }
  local pid name rest http
  while read -r pid name rest; do
    if is_ours "$pid" "$name"; then
      http=$(sed -n 's/.*http=\([0-9]*\).*/\1/p' <<<"$rest")
      echo "running  pid $pid  $name $rest${http:+  /healthz $(healthz "$http")}"
    else
      echo "gone     pid $pid  $name $rest"
    fi
  done <"$pids"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2 ;;
esac
