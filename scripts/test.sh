#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite: lint, types, unit and
# integration tests (which start their own PostgreSQL, Valkey and S3 server on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
.venv/bin/ruff check konifer_edge tests
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
