# The two commands: `make test` and `make run`. Everything else is a helper of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the stack's own servers: with these set, `stack down` would take them for external ones
LOCAL := env -u KAFKA_BOOTSTRAP_SERVERS -u REDIS_URL

.PHONY: install browser test test-unit lint run stack-up stack-down schemas bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

## install: Python deps into .venv; Kafka jars (Maven Central) and redis-server come with stack up
install: $(STAMP)

## browser: Debian's chromium for tests/browser (Playwright drives /usr/bin/chromium), with apt
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  { echo "chromium not found: apt-get install chromium (as root)" >&2; exit 1; }

## lint: ruff and mypy
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

## test: lint, start the local stack (unless one runs), run every test, stop what it started
test: lint browser
	@was_up=$$($(BIN)/altseason stack status >/dev/null 2>&1 && echo yes); \
	$(BIN)/altseason stack up >/dev/null || exit 1; \
	set -a; eval "$$($(BIN)/altseason stack status --env)"; set +a; \
	$(BIN)/pytest -q -p no:cacheprovider; rc=$$?; \
	[ -n "$$was_up" ] || $(LOCAL) $(BIN)/altseason stack down; \
	exit $$rc

## test-unit: the pure tests, no broker needed
test-unit: install
	$(BIN)/pytest -q -p no:cacheprovider tests/unit

## run: a fresh local stack, the bundled real data through the whole pipeline, then stop
run: install
	$(BIN)/altseason stack down --purge
	$(BIN)/altseason stack up >/dev/null
	@set -a; eval "$$($(BIN)/altseason stack status --env)"; set +a; \
	$(BIN)/altseason run --replay data/replay $(RUN_ARGS); rc=$$?; \
	$(LOCAL) $(BIN)/altseason stack down; exit $$rc

stack-up: install
	$(BIN)/altseason stack up

stack-down: install
	$(BIN)/altseason stack down

## schemas: regenerate schemas/json from the records
schemas: install
	$(BIN)/altseason schemas generate

## bench: every bench/*.py (BENCH_ARGS=--quick: shorter), ratios measured side by side in one run
bench: install
	@was_up=$$($(BIN)/altseason stack status >/dev/null 2>&1 && echo yes); \
	$(BIN)/altseason stack up >/dev/null || exit 1; \
	set -a; eval "$$($(BIN)/altseason stack status --env)"; set +a; \
	trap ':' INT TERM; rc=0; \
	for script in bench/[a-z]*.py; do \
	  case $$script in bench/rolling_correlation.py) args="";; *) args="$(BENCH_ARGS)";; esac; \
	  echo; echo "== $$script $$args"; \
	  $(BIN)/python $$script $$args; r=$$?; \
	  [ $$r -eq 0 ] || rc=$$r; \
	  [ $$r -lt 128 ] || break; \
	done; \
	[ -n "$$was_up" ] || $(LOCAL) $(BIN)/altseason stack down; \
	exit $$rc

clean:
	-$(BIN)/altseason stack down --purge
	rm -rf $(VENV) .stack .mypy_cache .ruff_cache
