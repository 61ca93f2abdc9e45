# robomr: the two commands are `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Keep CPU thread pools to the machine's cores; tests are deterministic either way.
export OMP_NUM_THREADS ?= 2
export MPLBACKEND ?= Agg

.PHONY: venv demo test bench lint format clean

$(STAMP): requirements.txt constraints.txt setup.py
	./scripts/setup-venv.sh
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/robomr demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/robomr bench all

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
