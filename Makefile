.PHONY: install test lint bench
install:
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'
test:
	.venv/bin/pytest
lint:
	.venv/bin/ruff check monitor tests benchmarks && .venv/bin/ruff format --check monitor tests benchmarks && .venv/bin/mypy
bench:
	for b in benchmarks/bench_*.py; do .venv/bin/python $$b || exit 1; done
