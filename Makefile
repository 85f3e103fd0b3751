# Two commands for a fresh clone: `make book` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: book test unit notebooks build-check list clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch and torchvision come from PyPI together (a matching pair); see README.
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

## book: execute chapters without a current executed copy (quick profile), then build HTML
book: $(INSTALLED)
	$(BIN)/rvae book

## test: unit tests, nbval over notebooks/ (quick profile), and the strict book build
test: unit notebooks build-check

unit: $(INSTALLED)
	$(BIN)/python -m pytest tests

notebooks: $(INSTALLED)
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

build-check: $(INSTALLED)
	$(BIN)/rvae book --no-progress

list: $(INSTALLED)
	$(BIN)/rvae list

clean:
	rm -rf _build
