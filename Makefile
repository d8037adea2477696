# The two commands of the README: `make run` and `make test`.
# Both create the virtual environment when it is missing and install the pinned project into it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The default export: the simulated community of `social-reward simulate` at its defaults.
DATA_MANIFEST := data/manifest.json
TRUTH := truth/appeal.parquet

# Tools run with the environment's executables first on PATH (dvc stages call `social-reward`).
export PATH := $(abspath $(VENV))/bin:$(PATH)
# No telemetry from any tool of the stack.
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false

# The browser tests drive Debian's Chromium (never a browser a test tool downloads).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The DVC remote `make run` sets up when the project has none: a folder outside the clone,
# shared by every clone of this machine's user (`dvc push` here, `dvc pull` in another).
# In .dvc/config.local, so each machine chooses its own; object storage: README "At scale".
DVC_REMOTE ?= $(HOME)/.cache/social-reward/dvc-remote

.PHONY: install browser run test lint data remote ci-pipeline clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	@touch $@

browser: $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get install -y --no-install-recommends chromium || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; }

data: $(DATA_MANIFEST)

# Generation is deterministic: the export written here is the one data.dvc names. Committing
# it puts it in the DVC cache (so `dvc status` is clean and `dvc push` works). Were it
# different, data.dvc is put back and the run stops, rather than versioning another export.
$(DATA_MANIFEST): | $(STAMP)
	$(PY) -m social_reward.cli simulate --out data --truth $(TRUTH) --seed 0 --overwrite
	@cp data.dvc $(VENV)/data.dvc.expected
	$(PY) -m dvc commit --force --quiet data.dvc
	@cmp -s data.dvc $(VENV)/data.dvc.expected || { \
	  cp data.dvc $(VENV)/data.dvc.regenerated; cp $(VENV)/data.dvc.expected data.dvc; \
	  rm -f $(DATA_MANIFEST); \
	  echo "error: the regenerated export differs from the one data.dvc names"; \
	  echo "  (compare data.dvc with $(VENV)/data.dvc.regenerated; were pinned packages changed?)"; \
	  exit 1; }

remote: | $(STAMP)
	@$(PY) -m dvc remote default >/dev/null 2>&1 || { \
	  mkdir -p "$(DVC_REMOTE)" && \
	  $(PY) -m dvc remote add --local --default local "$(DVC_REMOTE)" && \
	  echo "DVC remote 'local': $(DVC_REMOTE) (dvc push / dvc pull)"; }

run: $(STAMP) $(DATA_MANIFEST) remote
	$(PY) -m dvc repro

# The pipeline flow on the small CI export (configs/ci.yaml), as GitHub CI runs it. It
# replaces data/ with the small export and params.yaml with the CI-sized one, so data.dvc,
# params.yaml and dvc.lock change: for CI runners only.
ci-pipeline: $(STAMP)
	$(PY) -m social_reward.cli simulate --config configs/ci.yaml --out data --truth $(TRUTH) --overwrite
	$(PY) -m social_reward.cli overrides configs/ci.yaml --write params.yaml
	$(PY) -m flows.pipeline
	$(PY) -m dvc metrics show

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest -n 2 --dist loadfile --timeout 1800 --durations=25

lint: $(STAMP)
	$(PY) -m ruff check src tests flows bench
	$(PY) -m ruff format --check src tests flows bench

clean:
	rm -rf data truth/*.parquet metrics plots artifacts reports
