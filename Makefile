# fastrr: `make serve` runs the demo app, `make test` runs every test.
# Both install what is missing first (Debian 12 packages, a venv, the C build).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
DEB_PACKAGES := php8.2-cli php-nyholm-psr7 php-psr-http-message php-psr-http-factory \
                python3-venv python3-dev gcc make curl wrk
CSRC := $(wildcard csrc/*.c csrc/*.h)

.PHONY: setup serve test test-fast lint build clean bench

setup: .stamp-debian $(VENV)/.stamp-deps build

.stamp-debian:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@touch $@

$(VENV)/.stamp-deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

build: $(VENV)/.stamp-deps fastrr/_core.stamp

fastrr/_core.stamp: $(CSRC) setup.py
	$(PY) setup.py -q build_ext --inplace
	@touch $@

serve: setup
	$(VENV)/bin/fastrr serve -c php/demo/.rr.yaml

test: setup
	$(PY) -m ruff check fastrr tests bench
	php php/tests/run.php
	$(PY) -m pytest tests -q -p no:cacheprovider

test-fast: build
	$(PY) -m pytest tests -q -x -p no:cacheprovider

bench: setup
	$(PY) bench/quick.py

clean:
	rm -rf build $(VENV) fastrr/*.so fastrr/_core.stamp .stamp-debian *.egg-info
