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

# The site at http://127.0.0.1:8000 with the embedded defaults (SQLite, local media, local pool).
run: $(STAMP)
	LOOPMARK_DEBUG=$${LOOPMARK_DEBUG-1} $(VENV)/bin/loopmark serve --host 127.0.0.1 --port 8000

# One GIF per demo template from the command line, into var/.

demo: $(STAMP)
	$(VENV)/bin/loopmark templates list
	@for t in $$($(VENV)/bin/loopmark templates list --ids); do \
	  $(VENV)/bin/loopmark render $$t "$$($(VENV)/bin/loopmark templates list --json | \
	    $(PY) -c 'import json,sys; t=[x for x in json.load(sys.stdin) if x["id"]==sys.argv[1]][0]; print((t["captions"] or ["Hello from Loopmark"])[0])' $$t)" \
	    -o var/demo-$$t.gif || exit $$?; \
	done

# gifski (AGPL-3, run as a separate program) is a competitor in the benchmark (and its test) only.
GIFSKI := bench/.cache/node_modules/gifski/bin/debian/gifski

$(GIFSKI):
	npm install --prefix bench/.cache gifski@1.7.1

# Browser tests drive Debian's Chromium; Playwright never downloads a browser of its own.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update && apt-get install -y chromium

test: $(STAMP) $(CHROMIUM) $(GIFSKI)
	$(PY) -m pytest

# ruff (lint and format), mypy --strict over the package, and the import contracts (layers point
# one way; the renderer imports nothing of HTTP, AWS or the backends): see pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check loopmark tests bench
	$(VENV)/bin/ruff format --check loopmark tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP) $(GIFSKI)
	$(PY) -m bench

clean:
	rm -rf var .pytest_cache bench/.cache
