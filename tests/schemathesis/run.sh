#!/usr/bin/env bash
# Schemathesis against the running service, from the service's own /api/openapi.json:
# `serve --demo` on a fresh database (SQLite, and PostgreSQL when PG_URL names a server),
# then one run as each demo role with that role's bearer token. Checks: no 5xx, every
# status and every JSON body as documented. The WebSocket upgrade (/api/sessions/{id}/live)
# is left out: it is not a request/response operation (tests/meeting covers it).
#
#   tests/schemathesis/run.sh                    # SQLite
#   PG_URL=postgres://postgres@127.0.0.1:5432/postgres tests/schemathesis/run.sh
#
# Needs Python's `schemathesis` and `openapi-spec-validator` (.ci/run installs them) and
# the debug binary (cargo build). ST_MAX_EXAMPLES bounds the cases per operation.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN="${BIN:-./target/debug/mdt-coordinator}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-25}"
SEED="${ST_SEED:-19}"
ROLES=(trainee:trainee@demo.mdt.test practitioner:physio@demo.mdt.test
  consultant:consultant@demo.mdt.test coordinator:coordinator@demo.mdt.test)
PASSWORD="mdt-demo-password" # src/demo.rs DEMO_PASSWORD
REPORTS="${ST_REPORTS:-target/schemathesis}"
mkdir -p "$REPORTS"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A fresh PostgreSQL database beside PG_URL's, dropped afterwards.
pg_database() {
  local admin="$1" name="$2"
  psql "$admin" -qAtc "DROP DATABASE IF EXISTS $name" </dev/null
  psql "$admin" -qAtc "CREATE DATABASE $name" </dev/null
  printf '%s/%s' "${admin%/*}" "$name"
}

token_of() {
  curl -fsS -X POST "$1/api/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\": \"$2\", \"password\": \"$PASSWORD\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

# run BACKEND DATABASE_URL: one server, one Schemathesis run per role.
run() {
  local backend="$1" url="$2" data port base pid started="$SECONDS"
  data="$(mktemp -d)"
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  MDT__HTTP__PORT="$port" MDT__DATABASE__URL="$url" MDT__DATA__DIR="$data" \
    MDT__LOG__FILTER=warn \
    "$BIN" serve --demo >"$data/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 60); do
    curl -fsS "$base/ready" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "$base/ready" >/dev/null || { cat "$data/serve.log" >&2; kill "$pid"; return 1; }

  echo "--- $backend: validating /api/openapi.json"
  curl -fsS "$base/api/openapi.json" >"$REPORTS/openapi.json"
  python3 -m openapi_spec_validator "$REPORTS/openapi.json"

  # Every token first: the fuzzed sign-ins soon meet the sign-in rate limit.
  local tokens=() entry
  for entry in "${ROLES[@]}"; do
    tokens+=("${entry%%:*}:$(token_of "$base" "${entry#*:}")")
  done
  local status=0 role token
  for entry in "${tokens[@]}"; do
    role="${entry%%:*}"
    token="${entry#*:}"
    echo "--- $backend as $role"
    python3 -m schemathesis.cli run "$base/api/openapi.json" \
      --header "Authorization: Bearer $token" \
      --checks not_a_server_error,status_code_conformance,response_schema_conformance \
      --exclude-path '/api/sessions/{id}/live' \
      --phases examples,coverage,fuzzing,stateful \
      --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 --no-shrink \
      --report junit --report-junit-path "$REPORTS/$backend-$role.xml" \
      --suppress-health-check all --warnings off || status=1
  done
  # A 409 constraint_violation is a 4xx, but means the database refused what no rule
  # foresaw: named here so it is looked at.
  if grep -q "unexpected constraint refusal" "$data/serve.log"; then
    echo "--- $backend: the database refused writes no rule foresaw:" >&2
    grep "unexpected constraint refusal" "$data/serve.log" | head -5 >&2
  fi
  if grep -q "panicked\|internal error" "$data/serve.log"; then
    echo "--- $backend: the server logged internal errors:" >&2
    grep "panicked\|internal error" "$data/serve.log" | head -20 >&2
    status=1
  fi
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
  echo "--- $backend: $((SECONDS - started)) s"
  return "$status"
}

status=0
run sqlite "sqlite://$(mktemp -d)/mdt.db?mode=rwc" || status=1
if [ -n "${PG_URL:-}" ]; then
  name="mdt_schemathesis_$$"
  run postgres "$(pg_database "$PG_URL" "$name")" || status=1
  psql "$PG_URL" -qAtc "DROP DATABASE IF EXISTS $name WITH (FORCE)" </dev/null || true
fi
exit "$status"
