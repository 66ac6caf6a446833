# Two entry points for a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# Real servers the tests start: PostgreSQL (the distributed coefficient search) and headless
# Chromium (the experiment report). Installed with apt when missing and we may; tests that need
# them skip with the reason where they cannot be installed.
SYSTEM_TOOLS = /usr/lib/postgresql /usr/bin/chromium

.PHONY: demo test install system-deps clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
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
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build dist *.egg-info
