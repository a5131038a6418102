# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow bench clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: install
	OMP_NUM_THREADS=1 $(BIN)/sqnn demo --out demo-out

# pytest exits with 5 when it collected nothing: that is a broken suite, not a pass
test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "not slow" -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

test-slow: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m slow -q

clean:
	rm -rf $(VENV) demo-out .pytest_cache .hypothesis
