# Two entry points for a fresh machine: `make demo` and `make test`; `make lint` and `make docs` beside them.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# pytest workers: the suite runs in two processes (pytest-xdist, one test file per worker at a time)
TEST_WORKERS ?= 2
# Real servers the tests start: PostgreSQL (the distributed coefficient search and experiment workers) and
# headless Chromium (the experiment report). Installed with apt when missing and we may; tests that need
# them skip with the reason where they cannot be installed.
SYSTEM_TOOLS = /usr/lib/postgresql /usr/bin/chromium
SOURCES = timm_compound tests benchmarks docs/hooks timm_compound_cli.py

.PHONY: demo test lint format docs install system-deps clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,docs]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@missing=0; for tool in $(SYSTEM_TOOLS); do [ -e $$tool ] || missing=1; done; \
	if [ $$missing = 1 ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing postgresql and chromium (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			postgresql chromium fonts-dejavu-core >/dev/null; \
	fi

demo: $(STAMP)
	$(VENV)/bin/timm-compound demo

test: $(STAMP) system-deps
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

lint: $(STAMP)
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/ruff format --check $(SOURCES)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(SOURCES)
	$(VENV)/bin/ruff format $(SOURCES)

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) build dist *.egg-info
