#!/usr/bin/env bash
# Times the README's first hour: from a fresh clone to the first token, running exactly the
# README's commands (start the dev broker with `dotnet run`, wait for /healthz, then the first
# `brokerctl issue` through `dotnet run`, which builds brokerctl). The NuGet cache is whatever
# this machine has: run it twice to see the warm-cache figure.
#
#   deploy/local/first-token.sh [REPO [BRANCH]]   default: this repository, its current branch
#
# Environment: BROKER_GRPC_PORT / BROKER_HTTP_PORT (default 5080 / 5081) if those are taken;
# BROKER_START_TIMEOUT seconds to wait for /healthz (default 180, as the README).
# The clone lives in a temporary folder that is removed afterwards, with the broker it started.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
repo=${1:-$here}
branch=${2:-$(git -C "$here" rev-parse --abbrev-ref HEAD)}
grpc=${BROKER_GRPC_PORT:-5080}
http=${BROKER_HTTP_PORT:-5081}
bound=${BROKER_START_TIMEOUT:-180}
work=$(mktemp -d "${TMPDIR:-/tmp}/broker-first-token.XXXXXX")
pid=""

cleanup() {
  # The broker runs in its own process group (setsid): end that group, which is ours alone.
  if [ -n "$pid" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

started=$(date +%s.%N)
git clone -q --branch "$branch" "$repo" "$work/broker"
cd "$work/broker"

mkdir -p .dev
setsid dotnet run --project broker/Broker.Server -- --dev --grpc-port "$grpc" --http-port "$http" > .dev/broker.log 2>&1 &
pid=$!
if ! timeout "$bound" sh -c "until curl -sf http://127.0.0.1:$http/healthz >/dev/null; do sleep 1; done"; then
  echo "the broker did not answer on port $http within $bound s:" >&2
  tail -20 .dev/broker.log >&2
  exit 1
fi
serving=$(date +%s.%N)

token=$(dotnet run --project broker/Broker.Cli -- issue --dev --agent spiffe://dev.local/agents/demo --task demo-1 \
  --phase planning --scope repo:read --audience https://api.dev.local --token-only)
done=$(date +%s.%N)
case "$token" in
  eyJ*) ;;
  *) echo "no token: $token" >&2; exit 1 ;;
esac

# The next call goes through the binary the first one built, as the README does from then on.
before=$(date +%s.%N)
broker/Broker.Cli/bin/Debug/net10.0/brokerctl token decode "$token" >/dev/null 2>&1
after=$(date +%s.%N)

awk -v s="$started" -v b="$serving" -v d="$done" -v x="$before" -v y="$after" 'BEGIN {
  printf "broker serving after %.0f s; first token after %.0f s (clone to token); next brokerctl call %.1f s\n", b - s, d - s, y - x }'
