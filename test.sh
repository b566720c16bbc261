#!/usr/bin/env bash
# Runs every test. Installs what the tests need (redis-server, redis-cli, openssl, postgresql, chromium, node, npm, kubectl, promtool)
# when missing, installs the Node interop client's pinned packages (npm ci, from its lockfile), then prints the Sentinel failover report (artifacts/failover-report.txt, when that test ran) and one closing line
# "N passed, N failed, N skipped" taken from the test results (TRX files).
set -uo pipefail
cd "$(dirname "$0")"

# command -> Debian package that provides it
declare -A needed=(
  [redis-server]=redis-server
  [redis-cli]=redis-tools    # deploy/local/cluster.sh sets the revocation epoch with it
  [openssl]=openssl          # deploy/local/cluster.sh makes its keys with it
  [chromium]=chromium        # the web console is tested in a real browser
  [node]=nodejs              # a stock non-.NET OAuth client (tests/interop/node) drives the token endpoint
  [npm]=npm                  # installs that client's pinned packages
  [kubectl]=kubernetes-client # renders deploy/kubernetes/monitoring (kustomize)
  [promtool]=prometheus      # checks and unit-tests the alert rules
)
missing=()
for tool in "${!needed[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${needed[$tool]}")
done
# PostgreSQL's server binaries are not on PATH in Debian; the tests find them under /usr/lib/postgresql.
postgres_bin() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1; }
postgres_bin || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "Installing ${missing[*]} (apt)..."
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  for tool in "${!needed[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "The tests need $tool: install it with 'apt-get install -y ${needed[$tool]}'." >&2; exit 1; }
  done
  postgres_bin || { echo "The tests need a PostgreSQL server: install it with 'apt-get install -y postgresql'." >&2; exit 1; }
fi

# The Node OAuth client's packages, exactly as its lockfile pins them.
(cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error) \
  || { echo "npm ci failed in tests/interop/node: the OAuth interop test needs its pinned packages (Node.js 20+ and npm: apt-get install -y nodejs npm)." >&2; exit 1; }

results=artifacts/test-results
report=artifacts/failover-report.txt   # written by the Sentinel failover test
rm -rf "$results" "$report"
dotnet test Broker.sln --logger "trx" --logger "console;verbosity=minimal" --results-directory "$results" "$@"
status=$?

passed=0; failed=0; skipped=0
shopt -s nullglob
for trx in "$results"/*.trx; do
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  n=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${n:-0}))
done
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # The build or a test host failed before results were written: that is a failure too.
  failed=1
fi
[ -f "$report" ] && cat "$report"
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
