# fastrr: `make serve` runs the demo app, `make test` runs every test.
# Both install what is missing first (Debian 12 packages, a venv, the C build).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
DEB_PACKAGES := php8.2-cli php8.2-cgi php-nyholm-psr7 php-psr-http-message php-psr-http-factory \
                python3-venv python3-dev gcc make curl wrk php-google-protobuf nghttp2-client openssl \
                memcached php-redis php-psr-log nginx php8.2-fpm \
                beanstalkd php-amqplib protobuf-compiler php-laravel-framework php8.2-sqlite3 \
                php-symfony-runtime php-symfony-framework-bundle php-slim php8.2-opcache
CSRC := $(wildcard csrc/*.c csrc/*.h)

.PHONY: setup serve test test-fast lint build clean bench

setup: .stamp-debian $(VENV)/.stamp-deps build

.stamp-debian: Makefile
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
	$(PY) setup.py -q build_ext --inplace --force
	@touch $@

serve: setup
	$(VENV)/bin/fastrr serve -c php/demo/.rr.yaml

# tests/services.py: the services the tests use (Redis, RabbitMQ, NATS) answer,
# or are started, or the run stops with one line saying which does not.
# The tests run in TEST_PROCS processes (pytest-xdist), a test file per process at a time:
# most of their time is spent waiting on servers, brokers and PHP workers, not on a CPU.
TEST_PROCS ?= 2
test: setup
	$(PY) -m ruff check fastrr tests bench
	$(PY) tests/services.py
	php php/tests/run.php
	$(PY) -m pytest tests -q -p no:cacheprovider --engine both -n $(TEST_PROCS) --dist loadfile

test-fast: build
	$(PY) tests/services.py
	$(PY) -m pytest tests -q -x -p no:cacheprovider

# fastrr against nginx + php-fpm (see README, Benchmark): `make bench BENCH_ARGS=--quick`.
# fastrr bench itself installs the Debian packages it needs (nginx, php8.2-fpm, php-slim, ...).
bench: setup $(VENV)/.stamp-bench
	$(VENV)/bin/fastrr bench $(BENCH_ARGS)

$(VENV)/.stamp-bench: pyproject.toml
	$(PY) -m pip install -q -e '.[bench]'
	@touch $@

clean:
	rm -rf build $(VENV) fastrr/*.so fastrr/_core.stamp .stamp-debian *.egg-info

# ---------------------------------------------------------------------------
# Fuzzing, sanitizers, micro-benchmarks (issue 3). Each target installs what
# it needs first, like setup does.

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := http_parser chunked frame response
FUZZ_DIR     := build/fuzz
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -Wall -Wextra -std=c11 -Icsrc
FUZZ_PYCFG    = $(shell $(PY) -c 'import sys, sysconfig as s; \
                  print("-I" + s.get_paths()["include"], "-DFZ_PYTHON_HOME=\\\"" + sys.base_prefix + "\\\"", \
                        "-L" + s.get_config_var("LIBDIR"), "-Wl,-rpath," + s.get_config_var("LIBDIR"), \
                        "-lpython" + s.get_config_var("LDVERSION"))')
# libFuzzer options for `make fuzz`; the corpus grows in $(FUZZ_DIR)/corpus.
FUZZ_RUN_OPTS ?= -max_len=8192 -print_final_stats=1 -timeout=10 -rss_limit_mb=4096
# libstdc++ goes in with it: C++ extensions loaded later (matplotlib's) need
# ASan's __cxa_throw interceptor to find the real one at start-up.
ASAN_LIB = $(shell gcc -print-file-name=libasan.so) $(shell gcc -print-file-name=libstdc++.so)

.PHONY: fuzz fuzz-build fuzz-cov test-asan microbench

$(FUZZ_DIR)/.stamp-deps:
	@command -v $(FUZZ_CC) >/dev/null && [ -n "$$(find /usr/lib -name 'libclang_rt.fuzzer*.a' 2>/dev/null | head -1)" ] || { \
	  echo "Installing clang + sanitizer runtimes"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq clang libclang-rt-14-dev; }
	@mkdir -p $(@D) && touch $@

$(FUZZ_DIR)/fuzz_%: csrc/fuzz/fuzz_%.c csrc/fuzz/fuzz.h $(CSRC) | $(FUZZ_DIR)/.stamp-deps $(VENV)/.stamp-deps
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(wildcard csrc/*.c) $(FUZZ_PYCFG) -lm -lpthread -ldl

fuzz-build: $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_TARGETS))

# Every target for FUZZ_SECONDS; a crash, leak or violated property fails
# the run and leaves the input in $(FUZZ_DIR)/artifacts/.
fuzz: fuzz-build
	@rm -rf $(FUZZ_DIR)/seeds && $(PY) csrc/fuzz/seeds.py $(FUZZ_DIR)/seeds
	@mkdir -p $(FUZZ_DIR)/artifacts
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	  dict=csrc/fuzz/http.dict; case $$t in response) dict=csrc/fuzz/json.dict;; frame) dict=;; esac; \
	  echo "== fuzz_$$t ($(FUZZ_SECONDS)s)"; \
	  $(FUZZ_DIR)/fuzz_$$t $(FUZZ_RUN_OPTS) -max_total_time=$(FUZZ_SECONDS) $${dict:+-dict=$$dict} \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/seeds/$$t \
	    > $(FUZZ_DIR)/$$t.log 2>&1 || { tail -60 $(FUZZ_DIR)/$$t.log; echo "fuzz_$$t FAILED (log: $(FUZZ_DIR)/$$t.log)"; exit 1; }; \
	  grep -E '^(#[0-9]+.*DONE|stat::)' $(FUZZ_DIR)/$$t.log | sed 's/^/   /'; \
	done

# The whole suite against an ASan+UBSan build of fastrr._core (separate
# build-temp), the sanitizer runtime preloaded into every process the tests
# start; any report (collected from ASAN/UBSAN log files) fails the run. The
# normal build is put back afterwards, pass or fail.
ASAN_LOG_DIR := build/asan-logs
test-asan: $(VENV)/.stamp-deps
	rm -f fastrr/_core.stamp
	FASTRR_SANITIZE=asan $(PY) setup.py -q build_ext --inplace --force --build-temp build/temp-asan
	@rm -rf $(ASAN_LOG_DIR) && mkdir -p $(ASAN_LOG_DIR) build/asan-bin
	@# PHP dlopens its extensions with RTLD_DEEPBIND, which the ASan runtime
	@# refuses, and curl hangs with it preloaded: the non-Python programs the
	@# tests start run through shims that drop LD_PRELOAD (the C under test
	@# runs in the Python processes). A small quarantine keeps the RSS checks
	@# of the upload tests meaningful.
	@for b in php php8.2 php-cgi php-cgi8.2 php-fpm8.2 nginx curl wrk h2load openssl; do real=$$(command -v $$b) || continue; \
	  printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$$@"\n' "$$real" > build/asan-bin/$$b; chmod +x build/asan-bin/$$b; done
	@status=0; \
	PATH=$(CURDIR)/build/asan-bin:$$PATH LD_PRELOAD="$(ASAN_LIB)" PYTHONMALLOC=malloc \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:quarantine_size_mb=16:log_path=$(CURDIR)/$(ASAN_LOG_DIR)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/$(ASAN_LOG_DIR)/ubsan \
	  $(PY) -m pytest tests -q -p no:cacheprovider $(PYTEST_ARGS) || status=$$?; \
	$(PY) setup.py -q build_ext --inplace --force && touch fastrr/_core.stamp; \
	if [ -n "$$(ls -A $(ASAN_LOG_DIR))" ]; then \
	  echo "sanitizer reports:"; head -c 20000 $(ASAN_LOG_DIR)/*; status=1; \
	else echo "test-asan: no sanitizer report"; fi; \
	exit $$status

# pytest-benchmark micro-benchmarks of the C hot path against the pure-Python
# reference and httptools, plus the shm ring round trip (bench/micro/).
microbench: build
	$(PY) -m pytest bench/micro -q -p no:cacheprovider --benchmark-only \
	  --benchmark-columns=median,ops,rounds --benchmark-sort=name $(PYTEST_ARGS)

# Line coverage of csrc/ by the fuzz corpus (build/fuzz/corpus, grown by `make fuzz`).
fuzz-cov: fuzz-build
	@set -e; rm -rf $(FUZZ_DIR)/cov && mkdir -p $(FUZZ_DIR)/cov; for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_CC) -g -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -std=c11 -Icsrc \
	    -o $(FUZZ_DIR)/cov/cov_$$t csrc/fuzz/fuzz_$$t.c $(wildcard csrc/*.c) $(FUZZ_PYCFG) -lm -lpthread -ldl; \
	  LLVM_PROFILE_FILE=$(FUZZ_DIR)/cov/$$t.profraw $(FUZZ_DIR)/cov/cov_$$t -runs=0 $(FUZZ_DIR)/corpus/$$t >/dev/null 2>&1; \
	done; \
	llvm-profdata merge -o $(FUZZ_DIR)/cov/all.profdata $(FUZZ_DIR)/cov/*.profraw; \
	objs=""; for t in $(FUZZ_TARGETS); do objs="$$objs -object $(FUZZ_DIR)/cov/cov_$$t"; done; \
	llvm-cov report $(FUZZ_DIR)/cov/cov_http_parser $$objs -instr-profile=$(FUZZ_DIR)/cov/all.profdata \
	  csrc/http_parser.c csrc/chunked.c csrc/frame.c csrc/json.c csrc/response.c csrc/context.c csrc/request.c
