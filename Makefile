# usock: build, demo, test, install, bench. `make demo` and `make test` are the README's two
# commands; both install what a bare Debian machine with Rust lacks (as root), or say how.

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
CARGO      ?= cargo
CC         ?= cc
CXX        ?= c++

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR   := $(firstword $(subst ., ,$(VERSION)))

# The shared library's names: libusock.so.0 on Linux and the BSDs (use gmake there),
# libusock.0.dylib on macOS, where build.rs gives it the install name @rpath/libusock.0.dylib.
ifeq ($(shell uname -s),Darwin)
  SOEXT     := dylib
  SONAME    := libusock.$(MAJOR).dylib
  VERSIONED := libusock.$(VERSION).dylib
else
  SOEXT     := so
  SONAME    := libusock.so.$(MAJOR)
  VERSIONED := libusock.so.$(VERSION)
endif

# PORTABLE=1 builds and tests, on Linux, the path macOS and the BSDs take (--cfg usock_portable;
# see the README's "Platforms"), in a target directory of its own.
ifeq ($(PORTABLE),1)
  TARGET_DIR := target/portable
  export RUSTFLAGS := --cfg usock_portable
else
  TARGET_DIR := target
endif
REL     := $(TARGET_DIR)/release
LIB     := $(REL)/libusock.$(SOEXT)
OUT     := $(TARGET_DIR)/c
RPATH   := -Wl,-rpath,$(abspath $(REL))
STRICT  := -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all build build-debug lib cli prolog prolog-pack sdist wheel test-python-dist header crate-manifest demo check test test-begin test-rust test-c test-python test-python-asan test-prolog test-cli test-fuzz test-portable check-ports fuzz security-report install uninstall bench deps-c deps-prolog venv clean

comma := ,
space := $() $()

# The suites share target/ and the figures file: run targets one at a time (cargo and the
# compilers parallelise inside).
.NOTPARALLEL:

# `make`: the library, the C examples, and the Prolog pack's foreign part when SWI-Prolog is
# installed (so the pack loads straight from the repository afterwards).
all: build
	@if command -v swipl >/dev/null 2>&1; then $(MAKE) --no-print-directory -s -C bindings/prolog; \
	 else echo "usock: SWI-Prolog not installed, Prolog pack not built (make prolog installs it)"; fi

build: lib $(OUT)/usock-server $(OUT)/usock-client

# cargo decides what is up to date; programs linked with -lusock look for the soname.
lib:
	@$(CARGO) build --release --quiet --target-dir $(TARGET_DIR)
	@ln -sf libusock.$(SOEXT) $(REL)/$(SONAME)

# The release library with its debug information (the default release build is stripped).
build-debug:
	$(CARGO) build --profile release-debug --target-dir $(TARGET_DIR)
	@ln -sf libusock.$(SOEXT) $(TARGET_DIR)/release-debug/$(SONAME)
	@echo "usock: $(TARGET_DIR)/release-debug/libusock.$(SOEXT), with debug information"

$(OUT):
	@mkdir -p $(OUT)

$(OUT)/usock-server: bindings/c/examples/server.c include/usock.h lib | $(OUT)
	$(CC) $(STRICT) -O2 -o $@ $< -L$(REL) -lusock $(RPATH)

$(OUT)/usock-client: bindings/c/examples/client.c | $(OUT)
	$(CC) $(STRICT) -O2 -o $@ $<

# Regenerate include/usock.h from the sources (tests/header.rs fails while it is stale).
header:
	USOCK_BLESS=1 $(CARGO) test --quiet --test header

# Regenerate bindings/crate/Cargo.toml and Cargo.lock, the library's manifest and lock without
# the workspace, as the Python sdist and the Prolog pack carry them (tests/crate_manifest.rs
# fails while they are stale).
crate-manifest:
	USOCK_BLESS=1 $(CARGO) test --quiet --test crate_manifest

deps-c:
	@tools/ensure-deps.sh c

# The security battery changes owners, drops privileges to other users and mounts file systems
# in private namespaces: those suites need root (in a container or VM is fine). As an ordinary
# user, `make test` runs everything else and lists what it skipped, and why, at the end.
IS_ROOT := $(filter 0,$(shell id -u))
SKIPPED := target/skipped-suites.txt
# tools/run-snippets.py adds the docs' examples that need root there.
export USOCK_SKIPPED := $(abspath $(SKIPPED))
ROOT_ONLY_RUST := attacks cleanup dir faults ffi hardening socket
# Every other test program runs as an ordinary user too, new ones without editing a list.
NON_ROOT_RUST  := $(filter-out $(ROOT_ONLY_RUST),$(basename $(notdir $(wildcard tests/*.rs))))

test-begin:
	@mkdir -p target && rm -f $(SKIPPED)

deps-prolog:
	@tools/ensure-deps.sh prolog

# The SWI-Prolog pack's foreign part, bindings/prolog/lib/<arch>/usock4pl.so.
prolog: deps-prolog lib
	@$(MAKE) --no-print-directory -s -C bindings/prolog

# The SWI-Prolog pack as an archive for pack_install/1: the pack's files with the crate it
# builds libusock from (bindings/prolog/crate links to bindings/crate, which holds links to the
# repository's sources, a manifest and lock of its own (make crate-manifest), and is the Python
# package's crate too; the
# archive holds the files), nothing built.
PACK_TGZ := target/usock-$(VERSION).tgz
prolog-pack:
	@rm -rf target/pack-stage && mkdir -p target/pack-stage/usock-$(VERSION)
	cp -RL bindings/prolog/. target/pack-stage/usock-$(VERSION)/
	cd target/pack-stage/usock-$(VERSION) && rm -rf lib crate-target c/usock.h test/__pycache__
	tar -czf $(PACK_TGZ) -C target/pack-stage usock-$(VERSION)
	@rm -rf target/pack-stage
	@echo "usock: $(PACK_TGZ); install with: swipl -g \"pack_install('$(abspath $(PACK_TGZ))')\" -t halt"

# The main job: a SWI-Prolog server gets its socket from usock at the automatic location, a
# Python client and a C client (each in its own process) connect and exchange a message, and
# cleanup leaves nothing. Then the same with the C example server.
demo: deps-c build prolog
	@echo "== usock demo: SWI-Prolog server, Python and C clients"
	swipl bindings/prolog/examples/demo_server.pl -- 'python3 bindings/python/examples/client.py' ./$(OUT)/usock-client
	@echo "== usock demo: C server, C client"
	./$(OUT)/usock-server ./$(OUT)/usock-client

test: test-begin deps-c deps-prolog test-rust test-c test-python test-python-asan test-python-dist test-prolog test-cli test-fuzz test-portable check-ports
	@if [ -s $(SKIPPED) ]; then \
	  echo "== all suites run here passed; $$(wc -l < $(SKIPPED)) skipped, each for the reason given:"; \
	  sed 's/^/   - /' $(SKIPPED); \
	else echo "== all suites passed"; fi

# The contributor's loop (under three minutes here once built): clippy with warnings denied,
# the Rust battery, the C suite and the Python suite, on the native build. `make test` stays the
# full contract that CI runs (the portable path, the other systems, the sanitizer build, the
# distributions, Prolog, the command, the fuzz pass).
check: test-begin deps-c
	@echo "== clippy (library, tests, the command), warnings denied"
	$(CARGO) clippy --quiet --all-targets -- -D warnings
	$(CARGO) clippy --quiet --manifest-path bindings/cli/Cargo.toml -- -D warnings
	@$(MAKE) --no-print-directory test-rust test-c test-python
	@echo "== make check passed (make test runs the rest)"

# The Rust battery, the C suite and the Python suite again, on the portable path.
test-portable:
	@echo "== The portable path (macOS and the BSDs), built on Linux with --cfg usock_portable"
	@$(MAKE) --no-print-directory PORTABLE=1 test-rust test-c test-python

# The usock command (bindings/cli, a crate of the workspace over the library's Rust API), built
# next to the library: $(REL)/usock.
CLI := $(REL)/usock
cli:
	$(CARGO) build --release --quiet --manifest-path bindings/cli/Cargo.toml --target-dir $(TARGET_DIR)

# Its tests run real programs: shell scripts, gunicorn (installed into the virtual environment)
# queried with curl, servers killed and signalled; usock connect against Python servers, other
# users' servers, gunicorn, uvicorn and python3-systemd's listen_fds() (skipped, and listed,
# where python3-systemd cannot be installed).
test-cli: cli venv
	@echo "== The usock command: shell scripts, socket activation of gunicorn, signals, clean, check, usock run against systemd-socket-activate"
	@tools/ensure-deps.sh cli
	@tools/ensure-deps.sh python-systemd || echo "usock: python3-systemd is missing; the listen_fds() test of usock connect skips"
	@$(VENV)/bin/python -c 'import gunicorn, uvicorn' 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check gunicorn uvicorn
	USOCK_FIGURES=$(abspath $(FIGURES)) USOCK_SKIPPED=$(abspath $(SKIPPED)) bindings/cli/tests/test_cli.sh $(abspath $(CLI)) $(abspath $(VENV))
	USOCK_FIGURES=$(abspath $(FIGURES)) USOCK_SKIPPED=$(abspath $(SKIPPED)) bindings/cli/tests/test_connect.sh $(abspath $(CLI)) $(abspath $(VENV))
	USOCK_CLI=$(abspath $(CLI)) tools/run-snippets.py sh
	@tools/ensure-deps.sh oracle || echo "CLI: the oracle tests of usock run against systemd-socket-activate (not installed)" >> $(abspath $(SKIPPED))
	USOCK_FIGURES=$(abspath $(FIGURES)) USOCK_CLI=$(abspath $(CLI)) $(VENV)/bin/python -m pytest -q -rs -p no:cacheprovider bindings/cli/tests/test_run_oracle.py
	$(if $(IS_ROOT),,@echo "CLI: the --allow tests of usock run, which switch to another uid (pytest lists them above as skipped)" >> $(abspath $(SKIPPED)))

# Figures for SECURITY.md: each battery test that held appends a row here (the portable run
# keeps its own).
FIGURES := $(TARGET_DIR)/security-figures.tsv

test-rust: lib
	@echo "== Rust: unit, integration and doc tests (with the attack and fault battery)$(if $(RUSTFLAGS), [$(RUSTFLAGS)])"
	@mkdir -p $(TARGET_DIR) && rm -f $(FIGURES)
ifneq ($(IS_ROOT),)
	USOCK_FIGURES=$(abspath $(FIGURES)) $(CARGO) test --target-dir $(TARGET_DIR)
else
	$(CARGO) test --target-dir $(TARGET_DIR) --lib $(addprefix --test ,$(NON_ROOT_RUST))
	$(CARGO) test --target-dir $(TARGET_DIR) --doc
	@echo "Rust$(if $(RUSTFLAGS), [$(RUSTFLAGS)]): the battery tests/{$(subst $(space),$(comma),$(ROOT_ONLY_RUST))}.rs, $(words $(ROOT_ONLY_RUST)) test programs: they change owners, drop privileges to other users and mount file systems" >> $(abspath $(SKIPPED))
endif
	USOCK_LIBDIR=$(abspath $(REL)) tools/run-snippets.py rust

test-c: deps-c build
	@echo "== C: tests under AddressSanitizer and UBSan, C++ header check, library checks"
	$(CC) $(STRICT) -g $(SAN) -pthread $(if $(filter 1,$(PORTABLE)),-DUSOCK_TEST_PORTABLE) -o $(OUT)/test_usock bindings/c/tests/test_usock.c -L$(REL) -lusock $(RPATH)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ./$(OUT)/test_usock
	$(CC) $(STRICT) -g $(SAN) -pthread -o $(OUT)/test_lifetimes bindings/c/tests/test_lifetimes.c -L$(REL) -lusock $(RPATH)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ./$(OUT)/test_lifetimes
	@printf 'fault\tC: usock_cleanup while another thread is inside usock_bind on the handle: waits for it, refuses calls that begin meanwhile, frees once (AddressSanitizer)\t1\t1\tbindings/c/tests/test_usock.c::test_cleanup_waits_for_calls_in_flight\n' >> $(FIGURES)
	@printf 'fault\tC: usock calls from an atexit handler and a pthread_key destructor, after thread-local destructors ran: real statuses, errno and messages, earlier message pointer still valid (AddressSanitizer)\t2\t2\tbindings/c/tests/test_lifetimes.c\n' >> $(FIGURES)
	@n=$$(( $$(grep -c '^    RUN(' bindings/c/tests/test_usock.c) + $$(grep -c '^    test_.*();' bindings/c/tests/test_lifetimes.c) )); \
	  printf 'sanitizer\tC test suites under AddressSanitizer, LeakSanitizer and UBSan: clean\t%s\t%s\tbindings/c/tests/\n' $$n $$n >> $(FIGURES)
	$(CXX) -std=c++11 -Wall -Wextra -Wpedantic -Werror -Iinclude -o $(OUT)/header_cxx bindings/c/tests/header_cxx.cpp -L$(REL) -lusock $(RPATH)
	./$(OUT)/header_cxx
	bindings/c/tests/check-library.sh $(LIB) $(VERSION)
	USOCK_LIBDIR=$(abspath $(REL)) tools/run-snippets.py c

# Python test tools live in a local virtual environment (.venv), never in the system's Python.
VENV := .venv
venv: $(VENV)/.ready
$(VENV)/.ready: bindings/python/pyproject.toml
	@tools/ensure-deps.sh python
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "pytest>=7" swiplserver
	@touch $@

# The web servers the README's recipes are tested with (their tests skip when these could not
# be installed, offline say).
WEB_SERVERS := uvicorn aiohttp gunicorn
test-python: lib venv
	@echo "== Python: pytest suite of the ctypes binding (installed into $(VENV), against $(LIB))"
	@$(VENV)/bin/python -c 'import $(subst $(space),$(comma),$(WEB_SERVERS))' 2>/dev/null || \
	  $(VENV)/bin/pip install --quiet --disable-pip-version-check $(WEB_SERVERS) || \
	  echo "usock: could not install $(WEB_SERVERS); the tests of the README's web-server recipes skip"
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./bindings/python
	USOCK_LIBRARY=$(abspath $(LIB)) USOCK_FIGURES=$(abspath $(FIGURES)) $(if $(filter 1,$(PORTABLE)),USOCK_TEST_PORTABLE=1) $(VENV)/bin/python -m pytest -q -rs -p no:cacheprovider bindings/python/tests
	$(if $(IS_ROOT),,@echo "Python$(if $(RUSTFLAGS), [$(RUSTFLAGS)]): the tests that switch users or make mount namespaces (pytest lists them above as skipped)" >> $(abspath $(SKIPPED)))

# The Python suite again, against a libusock instrumented with AddressSanitizer (nightly
# rustc's -Zsanitizer=address; GCC's runtime preloaded into the interpreter). Python's own
# allocations are not leak-checked.
# The host's target triple (an explicit --target keeps the sanitizer flags off the build
# scripts), asked of rustc, so that this runs on aarch64 as on x86_64.
HOST_TRIPLE = $(shell rustc -vV | sed -n 's/^host: //p')
ASAN_LIB = target/asan/$(HOST_TRIPLE)/release-debug/libusock.so
test-python-asan: venv
	@if ! $(CARGO) +nightly --version >/dev/null 2>&1; then \
	  echo "== Python under AddressSanitizer: skipped, no nightly Rust (rustup toolchain install nightly)"; \
	else \
	  echo "== Python: pytest suite against libusock built with AddressSanitizer"; \
	  RUSTFLAGS="-Zsanitizer=address" $(CARGO) +nightly build --quiet --profile release-debug --lib \
	    --target $(HOST_TRIPLE) --target-dir target/asan && \
	  LD_PRELOAD=$$($(CC) -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	    USOCK_LIBRARY=$(abspath $(ASAN_LIB)) $(VENV)/bin/python -m pytest -q -p no:cacheprovider bindings/python/tests && \
	  n=$$(grep -c '^def test_' bindings/python/tests/test_usock.py) && \
	  printf 'sanitizer\tPython suite against libusock built with AddressSanitizer: clean\t%s\t%s\tbindings/python/tests/test_usock.py\n' $$n $$n >> $(FIGURES); \
	fi

test-prolog: prolog venv
	@echo "== Prolog: plunit suite of the pack (clients in Prolog and Python, MQI, pack_install)"
	USOCK_FIGURES=$(abspath $(FIGURES)) USOCK_PYTHON=$(abspath $(VENV))/bin/python swipl bindings/prolog/test/run.pl
	tools/run-snippets.py prolog
	$(if $(IS_ROOT),,@echo "Prolog: test no_dir: it mounts read-only file systems in a mount namespace" >> $(abspath $(SKIPPED)))

# Python distributions in target/dist: an sdist that carries the crate, and a manylinux_2_17
# wheel (libusock linked against glibc 2.17 with cargo-zigbuild), checked with auditwheel.
DIST := target/dist
PYDEV := $(VENV)/.dist-tools
$(PYDEV): | venv
	$(VENV)/bin/pip install --quiet --disable-pip-version-check build auditwheel cargo-zigbuild "ziglang>=0.13"
	@# cargo-zigbuild looks for `zig` on PATH (the build runs in an isolated environment whose
	@# python has no ziglang): link the one ziglang ships.
	ln -sf "$$($(VENV)/bin/python -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')" $(VENV)/bin/zig
	@touch $@

sdist: venv $(PYDEV)
	@mkdir -p $(DIST)
	$(VENV)/bin/python -m build --sdist --outdir $(DIST) bindings/python

wheel: venv $(PYDEV)
	@mkdir -p $(DIST)
	PATH="$(abspath $(VENV))/bin:$$PATH" USOCK_MANYLINUX=2_17 $(VENV)/bin/python -m build --wheel --outdir $(DIST) bindings/python
	$(VENV)/bin/auditwheel show $(DIST)/usock-$(VERSION)-py3-none-manylinux_2_17_*.whl

# The Python suite against the sdist and the wheel as a user installs them: each into a fresh
# virtual environment outside the repository, run from /, with no USOCK_LIBRARY: the package
# must load the library it carries.
test-python-dist: sdist wheel
	@echo "== Python: the sdist and the manylinux wheel, each installed into a fresh virtual environment"
	@set -e; for what in $(DIST)/usock-$(VERSION).tar.gz $(DIST)/usock-$(VERSION)-py3-none-manylinux_2_17_*.whl; do \
	  env=$$(mktemp -d /tmp/usock-dist-venv.XXXXXX); \
	  echo "-- $$what"; \
	  python3 -m venv $$env; \
	  $$env/bin/pip install --quiet --disable-pip-version-check "pytest>=7" swiplserver; \
	  $$env/bin/pip install --quiet --disable-pip-version-check $(abspath .)/$$what; \
	  (cd / && env -u USOCK_LIBRARY $$env/bin/python -c 'import usock, sys; lib = usock._lib.lib._name; \
	    print("usock", usock.__version__, "loads", lib); sys.exit(not lib.startswith(sys.prefix))'); \
	  (cd / && env -u USOCK_LIBRARY $$env/bin/python -m pytest -q -p no:cacheprovider $(abspath bindings/python/tests)); \
	  rm -rf $$env; \
	done
	@echo "-- without cargo, installing the sdist fails and says why"
	@env=$$(mktemp -d /tmp/usock-dist-venv.XXXXXX); python3 -m venv $$env; \
	  if CARGO=/nonexistent/cargo $$env/bin/pip install --disable-pip-version-check $(abspath $(DIST))/usock-$(VERSION).tar.gz >$$env/log 2>&1; then \
	    echo "FAIL: the sdist installed without cargo" >&2; rm -rf $$env; exit 1; fi; \
	  grep -q "compiles libusock with Rust's cargo" $$env/log || { cat $$env/log >&2; rm -rf $$env; exit 1; }; \
	  echo "ok   pip said: $$(grep -o "usock: building this package[^.]*" $$env/log | head -1)"; rm -rf $$env

# Type-checks macOS (x86_64, aarch64), FreeBSD, OpenBSD and NetBSD with clippy, warnings denied
# (library and tests; std built from Debian's rust-web-src), then compiles the C examples, C
# tests, the C++ header check and the Prolog glue for them with zig cc. Nothing runs there.
check-ports: venv deps-prolog
	@tools/ensure-deps.sh ports
	@$(VENV)/bin/python -c 'import ziglang' 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check "ziglang>=0.13"
	ZIG="$(abspath $(VENV))/bin/python -m ziglang" tools/check-ports.sh

# A short fuzz pass, so that the target cannot go stale: with nightly Rust and cargo-fuzz both
# installed, FUZZ_TEST_RUNS executions of the libFuzzer target (under a minute here, once
# built); otherwise the same sequences on stable Rust (fuzz/src/bin/replay.rs): the seed corpus
# and a fixed set of FUZZ_TEST_RUNS / 2 variations of it (the same each run, about 15 s here).
# make test does not install cargo-fuzz: building it took 11 minutes here (make fuzz does).
# FUZZ_ENGINE=replay takes the stable path anyway. Without /proc/self/fd (which the sequences
# count descriptors with) the pass is skipped.
FUZZ_TEST_RUNS ?= 5000
# A fixed seed: the same code and corpus give the same pass (make fuzz explores at random).
FUZZ_TEST_SEED ?= 1
FUZZ_ENGINE ?= auto
FUZZ_ARGS := -max_len=1024 -print_final_stats=1
FUZZ_TEST_CORPUS := target/fuzz-test-corpus
test-fuzz:
	@echo "== Fuzz: random sequences of every C export on one handle, a short pass"
	@mkdir -p target
	@if [ ! -d /proc/self/fd ]; then \
	  echo "fuzz: skipped, no /proc/self/fd"; \
	  echo "Fuzz: the short pass of fuzz/ (it counts open descriptors in /proc/self/fd, which this system lacks)" >> $(abspath $(SKIPPED)); \
	elif [ "$(FUZZ_ENGINE)" != replay ] && $(CARGO) +nightly --version >/dev/null 2>&1 && command -v cargo-fuzz >/dev/null 2>&1; then \
	  rm -rf $(FUZZ_TEST_CORPUS) && mkdir -p $(FUZZ_TEST_CORPUS); \
	  if (cd fuzz && $(CARGO) +nightly fuzz run c_abi $(abspath $(FUZZ_TEST_CORPUS)) corpus-seed -- -runs=$(FUZZ_TEST_RUNS) -seed=$(FUZZ_TEST_SEED) $(FUZZ_ARGS)) > target/fuzz-test.log 2>&1; then \
	    echo "libFuzzer under AddressSanitizer: $$(grep '^Done' target/fuzz-test.log)"; \
	    echo "fuzz: $$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' target/fuzz-test.log) passed, 0 failed"; \
	  else tail -n 40 target/fuzz-test.log; echo "fuzz: 0 passed, 1 failed (input saved in fuzz/artifacts/c_abi/, log target/fuzz-test.log)"; exit 1; fi; \
	else \
	  echo "stable replay (FUZZ_ENGINE=replay, or no nightly Rust or cargo-fuzz): seed corpus and $$(( $(FUZZ_TEST_RUNS) / 2 )) fixed variations"; \
	  $(CARGO) run --release --quiet --no-default-features --manifest-path fuzz/Cargo.toml --bin replay -- \
	    fuzz/corpus-seed --generated $$(( $(FUZZ_TEST_RUNS) / 2 )); \
	fi

# Fuzzing the C ABI: random sequences of every export on one handle (fuzz/src/, run by the
# libFuzzer target fuzz/fuzz_targets/c_abi.rs under AddressSanitizer; nightly Rust and
# cargo-fuzz, installed here if missing). tools/fuzz-campaign.sh builds it, then runs a fixed
# number of executions in FUZZ_JOBS processes (libFuzzer's -fork; 1: a single process), timed,
# and records the figure for SECURITY.md in target/fuzz-figures.tsv. The log is target/fuzz.log.
# Ten million executions take hours (the rate is in the log's "exec/s").
FUZZ_RUNS ?= 10000000
FUZZ_JOBS ?= 2
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	CARGO=$(CARGO) tools/fuzz-campaign.sh $(FUZZ_RUNS) $(FUZZ_JOBS) target/fuzz.log target/fuzz-figures.tsv

# Benchmarks (not part of make test): usock against the bare system calls and today's recipes
# in C, Rust, Python and Prolog, written to BENCHMARKS.md.
bench: deps-c lib prolog venv | $(OUT)
	@tools/ensure-deps.sh bench
	$(CC) -O2 -Iinclude -o $(OUT)/cycles bench/c/cycles.c -L$(REL) -lusock $(RPATH)
	@$(MAKE) --no-print-directory PORTABLE=1 lib
	@mkdir -p target/portable/c
	$(CC) -O2 -Iinclude -o target/portable/c/cycles bench/c/cycles.c -Ltarget/portable/release -lusock -Wl,-rpath,$(abspath target/portable/release)
	$(CC) -O2 -o $(OUT)/calibrate bench/c/calibrate.c
	$(CARGO) build --profile bench-release --quiet --manifest-path bench/Cargo.toml
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./bindings/python
	python3 bench/run.py BENCHMARKS.md

# Runs the battery and the fuzzer, then rewrites the figures table of SECURITY.md.
security-report: test fuzz
	python3 tools/security-report.py $(FIGURES) target/fuzz-figures.tsv SECURITY.md

# usock.pc names its directories relative to ${prefix} when they lie under it, so a packager
# can move the tree (pkg-config --define-prefix).
PC_LIBDIR     = $(if $(filter $(PREFIX)/%,$(LIBDIR)),$${prefix}$(patsubst $(PREFIX)%,%,$(LIBDIR)),$(LIBDIR))
PC_INCLUDEDIR = $(if $(filter $(PREFIX)/%,$(INCLUDEDIR)),$${prefix}$(patsubst $(PREFIX)%,%,$(INCLUDEDIR)),$(INCLUDEDIR))

install: lib cli
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(CLI) $(DESTDIR)$(BINDIR)/usock
	install -m 0644 bindings/cli/usock.1 $(DESTDIR)$(MANDIR)/man1/usock.1
	install -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/$(VERSIONED)
	ln -sf $(VERSIONED) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libusock.$(SOEXT)
	install -m 0644 $(REL)/libusock.a $(DESTDIR)$(LIBDIR)/libusock.a
	install -m 0644 include/usock.h $(DESTDIR)$(INCLUDEDIR)/usock.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(PC_LIBDIR)|' -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' bindings/c/usock.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/usock.pc
	-@strip -S $(DESTDIR)$(LIBDIR)/libusock.a 2>/dev/null
	@# Not into a staging DESTDIR: refresh the loader's cache, or print the lines to follow
	@# (PKG_CONFIG_PATH=..., LD_LIBRARY_PATH=... or -Wl,-rpath,...) where the loader or
	@# pkg-config does not search. Programs otherwise fail with "libusock.so.0: cannot open
	@# shared object file".
	@$(if $(DESTDIR),true,tools/install-notes.sh "$(LIBDIR)" "$(SONAME)")

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libusock.so* $(DESTDIR)$(LIBDIR)/libusock*.dylib $(DESTDIR)$(LIBDIR)/libusock.a \
	      $(DESTDIR)$(INCLUDEDIR)/usock.h $(DESTDIR)$(LIBDIR)/pkgconfig/usock.pc \
	      $(DESTDIR)$(BINDIR)/usock $(DESTDIR)$(MANDIR)/man1/usock.1

clean:
	$(CARGO) clean
	rm -rf $(VENV) bindings/python/build bindings/python/*.egg-info
	$(MAKE) -C bindings/prolog distclean
