# The two commands of the README: `make demo` and `make test`. Both set up .venv/ first when it
# is missing (or when pyproject.toml changed since).
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
VENV := .venv/.herd-installed
WORKDIR ?= runs/demo

.PHONY: demo test test-fast setup

$(VENV): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: $(VENV)

demo: $(VENV)
	.venv/bin/herd run recipes/demo.yaml --workdir $(WORKDIR)

test: $(VENV)
	.venv/bin/python -m pytest -q -ra

test-fast: $(VENV)
	.venv/bin/python -m pytest -q -ra -m "not slow"
