# Set-up and everyday targets. `make demo` and `make test` do all the set-up on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of PyTorch, pinned. GPU users: see README ("Using a GPU").
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint bench mutation clean test-browser

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

# the served web page in headless chromium (skips, saying why, without chromium + chromium-driver);
# the page's screenshot goes under runs/ (untracked); `make test-browser SCREENSHOT=docs/img/serve.png`
# refreshes the README's picture
SCREENSHOT ?= runs/serve.png
test-browser: install
	GRUTEXT_SCREENSHOT=$(SCREENSHOT) $(BIN)/python -m pytest tests/serve/test_browser.py -rs

# ruff (lint + format check) and mypy; settings in pyproject.toml
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# about 2 hours on 2 cores; each writes benchmarks/results/*.json|md, then the README tables
bench: install
	$(BIN)/python benchmarks/classify.py
	$(BIN)/python benchmarks/lm.py ptb --minutes 30
	$(BIN)/python benchmarks/lm.py shakespeare --minutes 20
	$(BIN)/python benchmarks/recurrent_speed.py --results
	$(BIN)/python benchmarks/update_readme.py

# mutation testing with mutmut 3 over nn/, data/, the metrics, the artifact and the LM scoring
# ([tool.mutmut] in pyproject.toml); CPU-heavy (an hour or more on 2 cores), not in CI.
# Results stay in mutants/ (`mutmut results` lists the survivors, `mutmut show NAME` one diff).
MUTATION_SUMMARY = import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); k = s["killed"] + s["timeout"]; n = k + s["survived"] + s["suspicious"] + s["no_tests"]; print("mutation score: {}/{} killed ({:.1%}); {} survived, {} without tests, {} mutants in all".format(k, n, k / max(n, 1), s["survived"], s["no_tests"], s["total"]))
mutation: install
	$(BIN)/mutmut run --max-children $${MUTATION_JOBS:-2} || true
	$(BIN)/mutmut export-cicd-stats
	@$(BIN)/python -c '$(MUTATION_SUMMARY)'
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) runs build *.egg-info mutants
