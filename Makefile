# Fengqiao: `make run` starts the whole stack locally, `make test` runs every test.
# Both create .venv and install everything on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
NODE_STAMP := node_modules/.install-stamp
PACKAGES := libs/fengqiao services/intake services/triage services/mediation services/notify
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))

.PHONY: run test unit bench bench-console bench-notify bench-triage bench-urgent fuzz install system-deps lock clean-data \
	compose-config lint fix screenshots

run: install
	$(BIN)/fengqiao dev

test: install system-deps lint
	$(BIN)/pytest

# Ruff (lint and formatting) and mypy (strict on the platform and the domain modules): pyproject.toml.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fix: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: install
	$(BIN)/pytest libs/fengqiao/tests services

bench: install
	$(BIN)/python bench/e2e_bench.py

# Console page times (issue 16) on a large synthetic history: its own embedded PostgreSQL in
# .fengqiao/bench-console (kept: a second run skips the seeding done), `fengqiao seed`, mediation
# alone; p50/p95/max per page. CASES= and STATIONS= change the size (default 1,000,000 / 200).
CASES ?= 1000000
STATIONS ?= 200
bench-console: install
	$(BIN)/python bench/console_bench.py --cases $(CASES) --stations $(STATIONS)

# Notify's delivery queue: drain rate through a real SMS gateway, steady latency, channel isolation.
bench-notify: install
	$(BIN)/python bench/notify_bench.py

# Triage's classification benchmark on the public labelled data (read in place, never copied).
BENCH_DATA ?= ../shared/data
bench-triage: install
	$(BIN)/fengqiao triage bench --data $(BENCH_DATA)

# Urgent recall and false alarms of triage's urgent-signal layer on its contrast pairs (seconds).
bench-urgent: install
	$(BIN)/fengqiao triage bench-urgent

# The schemathesis walk of tests/hostile with a larger budget (make test runs it with 6 examples per
# operation); prints a summary. CI does not run it.
FUZZ_EXAMPLES ?= 60
FUZZ_REPORT := .fengqiao/fuzz-report.jsonl
fuzz: install
	@mkdir -p .fengqiao && rm -f $(FUZZ_REPORT)
	@start=$$(date +%s); FENGQIAO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FENGQIAO_FUZZ_REPORT=$(FUZZ_REPORT) \
		$(BIN)/pytest tests/hostile/test_schemathesis.py -q -k generated_input; status=$$?; \
		$(BIN)/python tests/hostile/fuzz_summary.py $(FUZZ_REPORT) $$(( $$(date +%s) - start )); exit $$status

# The console's and the citizen's main pages into docs/screenshots/ after a short day on the test
# stack (Chromium; Chinese needs Debian's fonts-noto-cjk, installed here when run as root). CI does not run it.
screenshots: install system-deps
	@fc-list :lang=zh | grep -q . || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends fonts-noto-cjk >/dev/null; } || { echo "install fonts-noto-cjk: Chinese renders as boxes" >&2; exit 1; }
	$(BIN)/pytest -q tests/e2e/screenshots.py

install: $(STAMP) $(NODE_STAMP)

# The console's browser assets (htmx.org) and the accessibility checker (axe-core), from npm with
# the lockfile; mediation serves them itself (no CDN on a closed network).
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Debian's nodejs and npm" >&2; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $(NODE_STAMP)

$(STAMP): requirements/runtime.lock requirements/dev.lock $(PYPROJECTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(addprefix -e ,$(PACKAGES))
	@touch $(STAMP)

# Debian tools the tests use (docker-compose to validate the compose file, promtool for the
# Prometheus rules, chromium for the web pages). Installed when running as root; under CI=true a
# missing one fails.
system-deps:
	@scripts/system-deps.sh

compose-config:
	docker-compose -f docker-compose.yml config --quiet

lock:
	scripts/lock.sh

clean-data:
	rm -rf .fengqiao
