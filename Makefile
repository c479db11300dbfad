# Set-up and everyday targets. `make demo` and `make test` do all the set-up on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of PyTorch, pinned. GPU users: see README ("Using a GPU").
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test bench clean

$(BIN)/grutext: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

install: $(BIN)/grutext

demo: install
	$(BIN)/grutext demo

test: install
	$(BIN)/python -m pytest tests

bench: install
	$(BIN)/python benchmarks/classify.py
	$(BIN)/python benchmarks/recurrent_speed.py

clean:
	rm -rf $(VENV) runs build *.egg-info
