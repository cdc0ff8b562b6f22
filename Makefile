# mmdiff: the two commands a newcomer types are `make demo` and `make test`.
# Both build the project environment (.venv) on first use through tools/install.sh and reuse it afterwards.
VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: install demo test

install:
	MMDIFF_VENV=$(VENV) bash tools/install.sh

demo: install
	$(PYTHON) tools/backbone_demo.py

test: install
	$(PYTHON) -m pytest --doctest-modules mmdiff tests
