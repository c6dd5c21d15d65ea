# Two commands do all set-up on a fresh machine:
#   make serve   create .venv, install, index corpora/demo into var/index, serve on :8000
#   make test    install and run the whole test suite
# and one for the inner loop:
#   make test-fast   the suite without the tests marked slow (servers, browsers, kills, big
#                    real-world file sets): about two minutes
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORPUS ?= corpora/demo
INDEX  ?= var/index
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install ocr-engine index serve test test-fast lint bench clean chromium promtool postgresql

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,postgres]'
	@touch $(STAMP)

install: ocr-engine $(STAMP)

# The tests also build and serve shards on a real Ray cluster: the `cluster` extra (Ray),
# which `make serve`, a local build and a single-index server never need.
CLUSTER := $(VENV)/.installed-cluster
$(CLUSTER): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,cluster,postgres]'
	@touch $(CLUSTER)

# OCR of scanned PDFs uses Debian's tesseract-ocr (English data included); without it scanned
# pages are reported as skipped, nothing else changes.
ocr-engine:
	@command -v tesseract >/dev/null || { command -v apt-get >/dev/null && \
	  { apt-get install -y -qq tesseract-ocr >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq tesseract-ocr; }; } ; } || \
	  echo "warning: could not install tesseract-ocr; scanned PDFs will be skipped"

# Exit code 3 means "published, but some files were skipped": the index is usable.
index: install
	$(BIN)/python -m indexer build --corpus $(CORPUS) --index $(INDEX); \
	  rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]

serve: index
	@echo "Create a key with: $(BIN)/python -m search_api keys create --index $(INDEX) --partner acme"
	$(BIN)/python -m search_api serve --index $(INDEX) --host $(HOST) --port $(PORT)

# Two test processes (pytest-xdist): a module's tests run together, and the modules that share
# the session's Ray cluster or PostgreSQL run in one process (tests/conftest.py).
TEST_WORKERS ?= 2
PYTEST := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test: install $(CLUSTER) lint chromium promtool postgresql
	$(PYTEST) --durations=15

test-fast: install $(CLUSTER)
	$(PYTEST) -m "not slow" --durations=10

# The browser tests drive Debian's chromium, never a browser build downloaded by Playwright.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo -n)
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "Installing Debian's chromium for the browser tests (apt-get install chromium)"; \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium; } \
	  || echo "WARNING: could not install chromium (it needs root and Debian's apt);" \
	          "the browser tests will be skipped (a failure under CI=true)." \
	          "Install it with: apt-get install chromium"; }

# The replica tests start their own PostgreSQL from Debian's server binaries (tests/postgres.py);
# serving never needs it (keys and audit stay in files unless PKS_DATABASE_URL is set).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "Installing Debian's PostgreSQL for the replica tests (apt-get install postgresql)"; \
	  { $(SUDO) apt-get install -y -q --no-install-recommends postgresql || \
	    { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends postgresql; }; } \
	  || echo "WARNING: could not install postgresql (it needs root and Debian's apt);" \
	          "the PostgreSQL tests will be skipped (a failure under CI=true)." \
	          "Install it with: apt-get install postgresql"; }

# The alerting rules in docs/monitoring are checked with promtool, from Debian's prometheus
# package. The tests run only promtool; on a host with systemd the package also enables its
# Prometheus server (`systemctl disable --now prometheus` if that host should not run one).
promtool:
	@command -v promtool >/dev/null || { \
	  echo "Installing Debian's prometheus for promtool (apt-get install prometheus)"; \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends prometheus; } \
	  || echo "WARNING: could not install prometheus (it needs root and Debian's apt);" \
	          "the alerting rules' tests will be skipped (a failure under CI=true)." \
	          "Install it with: apt-get install prometheus"; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy indexer search_api

# Scale runs live here, not in the tests: they print JSON and write benchmarks/results/.
bench: install
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/build_speed.py --index-root var/bench
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/search_speed.py --index var/bench/scifact-index
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/api_throughput.py --index var/bench/scifact100-index --build
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/reindex_speed.py --index-root var/bench
	$(BIN)/python benchmarks/filtered_search.py --n 1000000 --json benchmarks/results/filtered_search.json

clean:
	rm -rf $(VENV) var .pytest_cache
