# One Makefile for people and CI. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench demo clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

# Until the site lands, `make run` prepares the demo templates and renders one GIF per template.
run: demo

demo: $(STAMP)
	$(VENV)/bin/loopmark templates list
	@for t in $$($(VENV)/bin/loopmark templates list --ids); do \
	  $(VENV)/bin/loopmark render $$t "$$($(VENV)/bin/loopmark templates list --json | \
	    $(PY) -c 'import json,sys; t=[x for x in json.load(sys.stdin) if x["id"]==sys.argv[1]][0]; print((t["captions"] or ["Hello from Loopmark"])[0])' $$t)" \
	    -o var/demo-$$t.gif || exit $$?; \
	done

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check loopmark tests bench
	$(VENV)/bin/ruff format --check loopmark tests bench

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf var .pytest_cache bench/.cache
