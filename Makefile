# pykvm: `make help` lists the targets.  `make demo` and `make test` install
# what they need (apt packages when missing, pip packages) on a fresh machine.

PYTHON ?= python3
CACHE ?= $(or $(PYKVM_CACHE),$(HOME)/.cache/pykvm)
export PYKVM_CACHE := $(CACHE)

# System packages: build (gcc, codec headers), fixtures (gdb, qemu, ...).
APT_BUILD = gcc make pkg-config zlib1g-dev liblzo2-dev libsnappy-dev libzstd-dev
APT_FIXTURES = gdb gcc-multilib qemu-system-x86 busybox-static cpio makedumpfile \
	binutils-powerpc64-linux-gnu binutils-powerpc-linux-gnu
PIP_BUILD = cffi setuptools
PIP_TEST = pytest drgn==0.3.0 python-snappy volatility3

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

UNAME := $(shell uname -s)
HOST_PLATFORM := $(if $(filter FreeBSD,$(UNAME)),freebsd,$(if $(filter SunOS,$(UNAME)),illumos,))

.PHONY: help deps deps-test build fixtures test test-shim test-native test-platform demo bench \
	lib install-lib clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# apt only where there is apt (FreeBSD and illumos VMs install with pkg).
define apt_install
	@command -v apt-get >/dev/null 2>&1 || exit 0; \
	missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps: ## install what building needs (apt when missing, pip)
	$(call apt_install,$(APT_BUILD))
	@$(PYTHON) -m pip install -q $(PIP_BUILD)

deps-test: deps ## install what the tests and fixtures need
	$(call apt_install,$(APT_FIXTURES))
	@$(PYTHON) -m pip install -q $(PIP_TEST)

build: deps ## build the extension in place (PYKVM_BACKEND=auto|native|shim)
	$(PYTHON) pykvm/_build.py --build-dir build/ext --into pykvm

fixtures: deps-test ## make process cores and real kernel crash dumps (cached in $(CACHE))
	$(PYTHON) fixtures/proc/make_cores.py
	$(PYTHON) fixtures/kernel/make_dumps.py
	$(PYTHON) fixtures/kernel/recompress.py
	$(PYTHON) fixtures/kernel/reversion.py
	$(PYTHON) fixtures/kernel/make_images.py
	$(PYTHON) fixtures/kernel/reencode_images.py

ifeq ($(UNAME),Linux)
test: build fixtures ## run every test (the CI command): the shim, then test-native; on FreeBSD/illumos: test-platform
	@status=0; \
	echo "== shim (pykvm/ built in place)"; \
	$(PYTHON) -m pytest -q -ra $(PYTEST_ARGS) $(TESTS) || status=1; \
	$(MAKE) --no-print-directory test-native || status=1; \
	exit $$status
else
test: test-platform
endif

test-shim: build fixtures ## run every test against the shim build only
	$(PYTHON) -m pytest -q -ra $(PYTEST_ARGS) $(TESTS)

test-native: deps fixtures ## build the native glue in FreeBSD mode and in illumos mode against the shim installed as a libkvm; run every test on each
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
			$(PYTHON) pykvm/_build.py --build-dir $$dir/ext --into $$dir/pykvm || exit 1; \
		(cd $$dir && PYTHONPATH=$(CURDIR)/$$dir PYKVM_EXPECT_PLATFORM=$$mode \
			$(PYTHON) -m pytest -q -ra -p no:cacheprovider $(PYTEST_ARGS) $(addprefix $(CURDIR)/,$(TESTS))) || status=1; \
	done; exit $$status

test-platform: build ## on FreeBSD/illumos (the VM CI): build against the platform libkvm, run the tests that need no Linux fixtures
	@test -n "$(HOST_PLATFORM)" || { echo "test-platform is for FreeBSD and illumos; on Linux use make test"; exit 1; }
	PYKVM_EXPECT_PLATFORM=$(HOST_PLATFORM) $(PYTHON) -m pytest -q -ra $(PYTEST_ARGS) tests/test_native_and_lib.py tests/platform

lib: $(LIB_SO) $(LIB_A) ## build build/lib/libkvm.so.1 and libkvm.a from csrc/ (only the public kvm_* symbols exported)

$(LIB_CODECS): pykvm/_build.py
	@mkdir -p $(@D)
	@$(MAKE) --no-print-directory deps
	$(PYTHON) pykvm/_build.py --codec-flags > $@.tmp && mv $@.tmp $@

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

install-lib: lib ## install libkvm.so/.a, kvm.h (in include/libkvm) and libkvm.pc under PREFIX (default /usr/local)
	@p='$(abspath $(PREFIX))'; d='$(DESTDIR)'"$$p"; \
	set -e; \
	install -d "$$d/include/libkvm" "$$d/lib/pkgconfig"; \
	install -m 644 $(LIB_HEADERS) "$$d/include/libkvm/"; \
	install -m 755 $(LIB_SO) "$$d/lib/"; \
	ln -sf libkvm.so.$(LIB_VERSION) "$$d/lib/$(LIB_SONAME)"; \
	ln -sf $(LIB_SONAME) "$$d/lib/libkvm.so"; \
	install -m 644 $(LIB_A) "$$d/lib/"; \
	private="$$(tr ' ' '\n' < $(LIB_CODECS) | grep '^-l' | tr '\n' ' ')-lpthread"; \
	sed -e "s|@PREFIX@|$$p|" -e "s|@VERSION@|$(LIB_VERSION)|" -e "s|@LIBS_PRIVATE@|$$private|" \
		csrc/libkvm.pc.in > "$$d/lib/pkgconfig/libkvm.pc"; \
	echo "installed libkvm $(LIB_VERSION) under $$d (pkg-config: PKG_CONFIG_PATH=$$d/lib/pkgconfig)"

demo: build ## read a real kernel crash dump that ships in fixtures/demo
	$(PYTHON) -m pykvm info -N fixtures/demo/kallsyms-demo.txt -M fixtures/demo/vmcore-demo.elf
	$(PYTHON) -m pykvm read --string -N fixtures/demo/kallsyms-demo.txt -M fixtures/demo/vmcore-demo.elf linux_banner
	PYTHONPATH=. $(PYTHON) examples/demo.py fixtures/demo

clean: ## remove build products (not the fixture cache)
	rm -rf build pykvm/_kvm*.so pykvm/_kvm.c *.egg-info

bench: build fixtures ## benchmarks: pykvm vs drgn, libkdumpfile and the floors; writes bench/RESULTS.md
	@$(PYTHON) -c "import kdumpfile" 2>/dev/null || dpkg -s python3-libkdumpfile >/dev/null 2>&1 || \
		{ echo "installing: python3-libkdumpfile"; apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-libkdumpfile >/dev/null; } || \
		echo "python3-libkdumpfile could not be installed: libkdumpfile shows as n/a"
	$(PYTHON) bench/run.py $(or $(BENCH_ARGS),--wait-idle 15)

.PHONY: bench-images
bench-images: build fixtures ## memory images (LiME, AVML, raw): pykvm vs Volatility 3 and drgn; writes bench/IMAGES.md
	$(PYTHON) bench/images.py --write
