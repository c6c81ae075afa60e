# One Makefile for people and CI. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench demo clean synth deploy destroy

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench,deploy]'
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
	$(VENV)/bin/ruff check loopmark tests bench deploy
	$(VENV)/bin/ruff format --check loopmark tests bench deploy
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP) $(GIFSKI)
	$(PY) -m bench

clean:
	rm -rf var .pytest_cache bench/.cache

# --- AWS (deploy/: the CDK app; deploy/README.md) ------------------------------------------------
# The CDK CLI comes from npm into deploy/node_modules, never globally. `make synth` needs no AWS
# account and no network; deploy and destroy act on the account and region of the environment's
# credentials (bootstrap it once: deploy/README.md). STAGE names the stack (Loopmark-$(STAGE)) and
# its SSM parameters (/loopmark/$(STAGE)/...); CDK_ARGS adds context, e.g. -c domainName=...
STAGE    ?= prod
CDK_ARGS ?=
CDK_CLI_VERSION := 2.1148.1
CDK      := deploy/node_modules/.bin/cdk
CDK_RUN  := cd deploy && PATH=$(abspath $(VENV))/bin:$$PATH JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 \
	CDK_DISABLE_CLI_TELEMETRY=true node_modules/.bin/cdk --no-notices --context stage=$(STAGE) $(CDK_ARGS)

$(CDK):
	npm install --prefix deploy --no-save --no-audit --no-fund aws-cdk@$(CDK_CLI_VERSION)

# CloudFormation into deploy/cdk.out/ (images are staged there, not built).
synth: $(STAMP) $(CDK)
	$(CDK_RUN) synth --quiet

# Parameters first (the session key as a SecureString), then the stack (--require-approval never:
# the IAM changes are reviewed as code, in deploy/ and its tests), then the app's own setup,
# the templates, and an admin user when ADMIN is set (its password from standard input).
deploy: $(STAMP) $(CDK)
	$(PY) deploy/tasks.py ensure-secrets --stage $(STAGE)
	$(CDK_RUN) deploy --require-approval never
	$(PY) deploy/tasks.py after-deploy --stage $(STAGE) $(if $(ADMIN),--admin "$(ADMIN)")

# Everything but the retained media bucket and table (and the SSM parameters made before the
# stack); with -c retainData=false in CDK_ARGS at deploy and destroy, the bucket is emptied and
# both go too.
destroy: $(STAMP) $(CDK)
	$(PY) deploy/tasks.py before-destroy --stage $(STAGE)
	$(CDK_RUN) destroy --force
