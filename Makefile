# pykvm: `make help` lists the targets.  `make demo` and `make test` install
# what they need (apt packages when missing, pip packages) on a fresh machine.

PYTHON ?= python3
CACHE ?= $(HOME)/.cache/pykvm
export PYKVM_CACHE := $(CACHE)

# System packages: build (gcc, codec headers), fixtures (gdb, qemu, ...).
APT_BUILD = gcc make pkg-config zlib1g-dev liblzo2-dev libsnappy-dev libzstd-dev
APT_FIXTURES = gdb gcc-multilib qemu-system-x86 busybox-static cpio makedumpfile \
	binutils-powerpc64-linux-gnu binutils-powerpc-linux-gnu
PIP_BUILD = cffi setuptools
PIP_TEST = pytest drgn==0.3.0

.PHONY: help deps deps-test build fixtures test test-shim demo bench lib install-lib clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
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

test: build fixtures ## run every test (the CI command)
	$(PYTHON) -m pytest -q -ra tests

demo: build ## read a real kernel crash dump that ships in fixtures/demo
	$(PYTHON) -m pykvm info -N fixtures/demo/kallsyms-demo.txt -M fixtures/demo/vmcore-demo.elf
	$(PYTHON) -m pykvm read --string -N fixtures/demo/kallsyms-demo.txt -M fixtures/demo/vmcore-demo.elf linux_banner
	PYTHONPATH=. $(PYTHON) examples/demo.py fixtures/demo

clean: ## remove build products (not the fixture cache)
	rm -rf build pykvm/_kvm*.so pykvm/_kvm.c *.egg-info
