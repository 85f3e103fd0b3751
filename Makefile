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

# Two pytest workers, one torch thread each (two 2-thread processes on two cores slow each other
# many times over). JOBS=1 runs everything in one process.
JOBS ?= 2
THREADS := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

unit: $(INSTALLED)
	$(THREADS) $(BIN)/python -m pytest -n $(JOBS) tests

# One notebook per worker (--dist loadfile keeps a notebook's cells together, in order), longest
# first (notebooks/conftest.py orders them; --no-loadscope-reorder keeps that order); the kernels
# run on one thread, as the quick profile's pinned outputs were made (notebooks/conftest.py);
# the checked cells are compared by their words, not their digits (notebooks/nbval_sanitize.cfg).
notebooks: $(INSTALLED)
	$(THREADS) $(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder --nbval-lax --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider notebooks

build-check: $(INSTALLED)
	$(BIN)/rvae book --no-progress

list: $(INSTALLED)
	$(BIN)/rvae list

clean:
	rm -rf _build
