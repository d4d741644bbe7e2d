.PHONY: install fmt lint typecheck test up bench bench-limits ci
install:
	uv sync --locked
fmt:
	uv run ruff format . && uv run ruff check --fix .
lint:
	uv run ruff check . && uv run ruff format --check .
typecheck:
	uv run mypy
test:
	uv run pytest
up:
	uv run turnout up
bench:
	bash bench/run.sh
bench-limits:
	bash bench/run_limits.sh
ci:
	bash .ci/run
