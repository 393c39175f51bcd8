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
	.venv/bin/herd tiny --out $(WORKDIR)/tiny
	.venv/bin/herd generate --model $(WORKDIR)/tiny/policy --prompt "What is 2 + 2?" --prompt "Tell me about llamas." --max-new-tokens 24

test: $(VENV)
	.venv/bin/python -m pytest -q -ra

test-fast: $(VENV)
	.venv/bin/python -m pytest -q -ra -m "not slow"
