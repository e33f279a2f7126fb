#!/usr/bin/env bash
# The whole test suite: lint, types, import contracts (.importlinter), then pytest on PostgreSQL
# (everything) and on the embedded SQLite default (the tests marked both_backends). Under CI=true
# PostgreSQL and Redis must be reachable; tests/conftest.py fails the run otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy"
mypy medloop annotations active_learning frontend
echo "== import contracts (.importlinter)"
lint-imports
echo "== frontend unit tests (vitest)"
(cd frontend && npm test --silent)

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/medloop}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/15}"

if ! python - <<'PY' 2>/dev/null
import os, psycopg
url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
PY
then
  if [ "${CI:-}" = "true" ]; then
    echo "ERROR: PostgreSQL is not reachable at $DATABASE_URL (required under CI=true)." >&2
    exit 1
  fi
  echo "WARNING: PostgreSQL is not reachable; running the whole suite on SQLite only." >&2
  TEST_DATABASE=sqlite exec python -m pytest "$@"
fi

echo "== pytest on PostgreSQL"
python -m pytest "$@"
echo "== pytest on SQLite (queue and concurrency tests)"
TEST_DATABASE=sqlite python -m pytest -m both_backends "$@"
