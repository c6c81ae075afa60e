# One Makefile for people and CI. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench lighthouse demo clean soak images image-base image-tools image-test synth deploy destroy translations

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench,aws,deploy]'
	touch $(STAMP)

# Languages (README, "Languages"): extract every marked string into the template catalogue,
# merge it into each language's messages.po (translate the new and fuzzy entries there), and
# compile the .mo files the site reads. The .mo files are committed, so a fresh clone, the
# wheel and the images need no compile step; tests/web/test_translations.py fails when one is
# stale or a German translation is missing. A new language: pybabel init -l xx -i POT -d DIR.
TRANSLATIONS := loopmark/translations
POT          := $(TRANSLATIONS)/messages.pot
PYBABEL      := $(VENV)/bin/pybabel

translations: $(STAMP)
	$(PYBABEL) extract -F babel.cfg -k N_ -k _l -k _plural:1,2 --add-location=file \
	  --sort-by-file --no-wrap --project=Loopmark --copyright-holder="Loopmark contributors" \
	  -o $(POT) loopmark
	$(PYBABEL) update -i $(POT) -d $(TRANSLATIONS) --ignore-obsolete --no-wrap
	$(PYBABEL) compile --statistics -d $(TRANSLATIONS)

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

# axe-core (MPL-2.0) checks every page for accessibility in the browser tests
# (tests/browser/test_accessibility.py); from npm into a cache, like gifski.
AXE_VERSION := 4.11.1
AXE := tests/browser/.cache/node_modules/axe-core/axe.min.js

$(AXE):
	npm install --prefix tests/browser/.cache --no-save --no-audit --no-fund axe-core@$(AXE_VERSION)

# Lighthouse (Apache-2.0) scores the public pages on a simulated phone (bench/lighthouse.py,
# README "Lighthouse"); from npm into bench/.cache like gifski. 12.x: 13 needs Node 22.
LIGHTHOUSE_VERSION := 12.8.2
LIGHTHOUSE := bench/.cache/node_modules/.bin/lighthouse

$(LIGHTHOUSE):
	npm install --prefix bench/.cache --no-save --no-audit --no-fund lighthouse@$(LIGHTHOUSE_VERSION)

lighthouse: $(STAMP) $(CHROMIUM) $(LIGHTHOUSE)
	$(PY) -m bench.lighthouse $(LIGHTHOUSE_ARGS)

test: $(STAMP) $(CHROMIUM) $(GIFSKI) $(AXE)
	$(PY) -m pytest

# ruff (lint and format), mypy --strict over the package, bench/, deploy/ and tests/, and
# the import contracts (layers point one way; the renderer imports nothing of HTTP, AWS or the
# backends): see pyproject.toml. mypy keeps a cache in .mypy_cache/: with it, a second run takes
# about a second; without it, the AWS CDK's types make deploy/ cost about two minutes.
lint: $(STAMP)
	$(VENV)/bin/ruff check loopmark tests bench deploy
	$(VENV)/bin/ruff format --check loopmark tests bench deploy
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP) $(GIFSKI)
	$(PY) -m bench

# A trade-show morning against the real server, about ten minutes on loopback: 5,000 idle
# connections, a spike of renders from one address and behind a proxy, a SIGKILL and restart,
# a frozen records backend; figures into bench/soak.md (SOAK_ARGS=--quick: about a minute).
soak: $(STAMP)
	$(PY) -m bench.soak $(SOAK_ARGS)

# Images (Containerfile: targets `site` and `renderer`), built here with no registry: a Debian
# base made with debootstrap from the mirror apt uses, imported as a local image, then
# `podman build --isolation=chroot` over it. Layers and pip's downloads are cached, so a second
# run only rebuilds what changed. The official bases are the Containerfile's defaults elsewhere.
IMAGES_DIR    := .images
DEBIAN_SUITE  ?= bookworm
DEBIAN_MIRROR ?= $(or $(shell sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources \
                   2>/dev/null | head -1),http://deb.debian.org/debian)
BASE_IMAGE    ?= localhost/loopmark-base:$(DEBIAN_SUITE)
BASE_ROOTFS   := $(IMAGES_DIR)/rootfs-$(DEBIAN_SUITE)
IMAGE_PREFIX  ?= localhost/loopmark
# Pip in the build reaches PyPI as this machine does: its CA bundle (a TLS-intercepting proxy's CA
# is in it) goes in as a build secret, and PIP_INDEX_URL as a build argument when set.
PIP_CERT      ?= /etc/ssl/certs/ca-certificates.crt
, := ,
PODMAN_BUILD  := podman build --isolation=chroot --format docker --layers \
                 --build-arg BASE_IMAGE=$(BASE_IMAGE) \
                 $(if $(PIP_INDEX_URL),--build-arg PIP_INDEX_URL=$(PIP_INDEX_URL)) \
                 $(if $(wildcard $(PIP_CERT)),--secret id=pip-cert$(,)src=$(PIP_CERT))

image-tools:
	@command -v podman >/dev/null && command -v debootstrap >/dev/null || \
	  { apt-get update && apt-get install -y podman debootstrap; }

image-base: image-tools
	@if podman image exists $(BASE_IMAGE); then echo "base image $(BASE_IMAGE): present"; else \
	  set -e; \
	  if [ ! -x $(BASE_ROOTFS)/usr/bin/python3 ]; then \
	    rm -rf $(BASE_ROOTFS).tmp; \
	    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
	      $(DEBIAN_SUITE) $(BASE_ROOTFS).tmp $(DEBIAN_MIRROR); \
	    rm -rf $(BASE_ROOTFS).tmp/var/cache/apt/archives/*.deb $(BASE_ROOTFS).tmp/var/lib/apt/lists/*; \
	    mv $(BASE_ROOTFS).tmp $(BASE_ROOTFS); \
	  fi; \
	  tar --numeric-owner -C $(BASE_ROOTFS) -c . | podman import \
	    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - $(BASE_IMAGE); \
	fi

images: image-base
	$(PODMAN_BUILD) --target renderer -t $(IMAGE_PREFIX)-renderer .
	$(PODMAN_BUILD) --target site -t $(IMAGE_PREFIX)-site .
	@podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^$(IMAGE_PREFIX)-'

# Smoke tests of both images, run from their file systems under chroot (no `podman run`):
# tests/images/, deselected from `make test`.
image-test: $(STAMP) images
	IMAGE_PREFIX=$(IMAGE_PREFIX) $(PY) -m pytest tests/images -m images -p no:cacheprovider -v -s

clean:
	rm -rf var .pytest_cache bench/.cache tests/browser/.cache

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
