# Two commands do all set-up on a fresh Debian machine with Python 3.10+:
#   make run    - create .venv, install what is missing, open the window
#   make test   - the same set-up, then the whole test suite (offscreen Qt)
# Which build of torch (README "GPU"), reinstalled when the choice changes (a stamp per choice):
#   make run                - TORCH=pypi (default): torch==2.13.0 as pip's configured indexes give
#                             it (on Linux x86-64 PyPI's wheel, a CUDA build that also runs on
#                             CPUs; where a CPU wheel is configured locally, that one)
#   make run TORCH=cpu      - the CPU-only build, from PyTorch's CPU wheel index
#   make run TORCH=cu126    - the build for one CUDA version (cu118, cu121, cu124, cu126, cu128,
#                             ...), from PyTorch's index for it: pick one <= the CUDA version
#                             `nvidia-smi` prints for the driver
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= pypi
TORCH_VERSION := 2.13.0
TORCH_STAMP := $(VENV)/.torch-$(TORCH)
ifeq ($(TORCH),pypi)
TORCH_INDEX :=
TORCH_WANT := (any build)
else ifeq ($(TORCH),cpu)
TORCH_INDEX := --index-url https://download.pytorch.org/whl/cpu
TORCH_WANT := without CUDA (CPU only)
else ifneq ($(filter cu%,$(TORCH)),)
TORCH_INDEX := --index-url https://download.pytorch.org/whl/$(TORCH)
TORCH_WANT := built for CUDA ($(TORCH))
else
$(error TORCH=$(TORCH): choose pypi, cpu or a CUDA variant such as cu126 (README, GPU))
endif
ifdef TORCH_SPEC
$(error TORCH_SPEC is gone: use TORCH=pypi, TORCH=cpu or TORCH=cu126 (README, GPU))
endif
# Exit 0 when the installed torch already is $(TORCH_VERSION) of the chosen kind (no reinstall).
TORCH_MATCHES := import sys, torch; c = torch.version.cuda; w = "$(TORCH)"; \
	sys.exit(torch.__version__.split("+")[0] != "$(TORCH_VERSION)" or not ( \
	w == "pypi" or (c is None if w == "cpu" else \
	c is not None and "cu" + c.replace(".", "") == w)))
# After an install: what pip put there is not the build asked for (e.g. a locally configured
# CPU wheel for TORCH=cu999): say so and stop, leaving no stamp, so the venv is not labelled
# with a build it does not have.
TORCH_WRONG_BUILD := import sys, torch; c = torch.version.cuda; sys.exit( \
	"TORCH=$(TORCH) asked for torch $(TORCH_VERSION) $(TORCH_WANT), but pip installed torch " \
	+ torch.__version__ + (" built for CUDA " + c if c else " without CUDA (CPU only)") \
	+ "; is $(TORCH) a build PyTorch publishes for $(TORCH_VERSION) (see its index, README GPU), " \
	+ "and does pip.conf or PIP_* point pip at other wheels? $(VENV) is left unlabelled")
# The window's system libraries (Qt's xcb platform plugin, OpenGL, fonts) and python3-venv:
# what `make run` needs. Chromium only for `make test` (the HTML report's browser test).
# Fonts: DejaVu for Latin, Greek and Cyrillic; WenQuanYi Micro Hei for Chinese, Japanese and
# Korean (5 MB on disk, where Noto CJK takes 91 MB); Noto Color Emoji for emoji. Qt finds
# them through fontconfig's fallback (tests/app/test_scripts_render.py).
APT_PACKAGES := libegl1 libgl1 libglib2.0-0 libdbus-1-3 libfontconfig1 libxkbcommon0 \
	libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 \
	fonts-dejavu-core fonts-wqy-microhei fonts-noto-color-emoji python3-venv
TEST_APT_PACKAGES := chromium
STAMP := $(VENV)/.installed

# $(call apt_install,PACKAGES,MESSAGE): install those of PACKAGES dpkg does not know, saying
# MESSAGE first; nothing when all are there.
apt_install = missing=""; for p in $(1); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "$(2):$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get -o DPkg::Lock::Timeout=120 update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends $$missing; \
	fi

.PHONY: run test lint bench setup apt apt-test

run: $(STAMP)
	$(BIN)/python main.py

test: $(STAMP) apt-test
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider
	$(BIN)/ruff check .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_forward.py

setup: $(STAMP)

apt:
	@$(call apt_install,$(APT_PACKAGES),installing the window's system libraries (Qt's xcb plugin and OpenGL and fonts) and python3-venv)

apt-test:
	@$(call apt_install,$(TEST_APT_PACKAGES),installing Chromium (for the HTML report test in tests/app/test_compare_exports.py))

$(TORCH_STAMP):
	$(MAKE) apt  # python3-venv first: Debian's python3 cannot make a venv without it
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.torch-*
	$(BIN)/python -c '$(TORCH_MATCHES)' 2>/dev/null || { \
		$(BIN)/python -m pip uninstall -q -y torch; \
		$(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)" $(TORCH_INDEX); }
	$(BIN)/python -c '$(TORCH_MATCHES)' || $(BIN)/python -c '$(TORCH_WRONG_BUILD)'
	touch $@

$(STAMP): pyproject.toml Makefile $(TORCH_STAMP)
	$(MAKE) apt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -c 'from core.device import resolve_device as r, startup_summary as s; print(s(r()))'
	touch $(STAMP)
