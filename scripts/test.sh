#!/usr/bin/env bash
# The whole test suite: lint, type-check, then every test against real PostgreSQL and Kafka.
set -euo pipefail
cd "$(dirname "$0")/.."
uv run ruff check .
uv run ruff format --check .
uv run mypy
uv run python scripts/import_cycles.py
uv run pytest "$@"
