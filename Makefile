# trueframe: `make run` starts the service, `make test` runs lint, types and the test suite.
# Both create .venv when missing and install everything into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install browser postgres run test lint typecheck pytest bench eval audit clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

# torch first and pinned so pip takes the local CPU wheel, never the CUDA build.
# NODEPS go in alone with --no-deps: facenet-pytorch pins torch<2.3, numpy<2, Pillow<10.3, and
# invisible-watermark asks for the GUI build of OpenCV (opencv-python-headless gives the same cv2).
# This is the one place that names them; their real dependencies are declared in pyproject.toml.
NODEPS := facenet-pytorch==2.6.0 invisible-watermark==0.2.0

$(STAMP): $(PY) pyproject.toml Makefile
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,train]'
	$(PIP) install -q --no-deps $(NODEPS)
	touch $(STAMP)

install: $(STAMP)

# The browser tests drive Debian's chromium headless; install it when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }

# The store and API tests run on SQLite and on PostgreSQL: the test session starts a throwaway server
# (initdb into a temporary folder, a free loopback port, stopped afterwards) from Debian's binaries in
# /usr/lib/postgresql/<major>/bin; install the package when they are missing. To test against a
# managed server instead, set TRUEFRAME_TEST_DATABASE_URL (see the README).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; }

run: $(STAMP)
	$(VENV)/bin/trueframe serve

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) browser postgres
	$(PY) -m pytest

test: lint typecheck pytest

# The development evaluation suite end to end (tables in runs/dev-eval/report.md), and the bias audit.
eval: $(STAMP)
	$(VENV)/bin/trueframe evaluate --suite dev

audit: $(STAMP)
	$(VENV)/bin/trueframe audit

bench: $(STAMP)
	$(PY) -m scripts.bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
