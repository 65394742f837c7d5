# opdbus.infra — one entry point for setup, the lab and every test.
#
#   make test     deps, venv, collection link, then unit, sanity, lint, integration, molecule
#   make demo     bring the lab up and run playbooks/site.yml against it
#   make help     list the targets
#
# Every setup step is idempotent (stamp files under .venv/ and .lab/): a second run skips it.
# Run as root (the lab needs network namespaces); `sudo` is used for apt when not root.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

# Debian's interpreter, never a pyenv shim: later modules respawn into /usr/bin/python3 for
# python3-lxc / python3-dbus, and the venv must be built on the same Python.
SYS_PYTHON := /usr/bin/python3

APT_PACKAGES := openvswitch-switch openvswitch-common iproute2 iputils-ping ethtool \
                python3-venv python3-dev git make rsync tcpdump shellcheck \
                btrfs-progs lxc lxc-templates python3-lxc debootstrap busybox-static \
                dbus python3-dbus libdbus-1-dev libglib2.0-dev pkg-config \
                packagekit packagekit-tools polkitd python3-gi gpg \
                wireguard-go wireguard-tools v2ray iperf3 nftables

VENV       := .venv
PY         := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
LAB        := lab/lab.sh
LAB_DIR    := $(or $(OPDBUS_LAB_DIR),$(CURDIR)/.lab)
LAB_ENV    := $(LAB_DIR)/env
DEPS_STAMP := $(LAB_DIR)/.deps-installed
COLL_LINK  := .collections/ansible_collections/opdbus/infra
BUILD_ROOT := .build
BUILD_COLL := $(BUILD_ROOT)/ansible_collections/opdbus/infra
SANITY_PYTHON ?= 3.11
# ansible-test downloads get-pip.py from a host we cannot reach; this stands in for it.
GET_PIP_SHIM := tools/ansible_test_get_pip.py

PYTEST_ARGS ?=
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# Prefix for every recipe line that runs Ansible (or tools that run it): the lab's variables,
# our ansible.cfg, and the venv's bin first on PATH (molecule and ansible-lint call
# ansible-config/ansible-galaxy by name).
ANSIBLE_ENV := . $(LAB_ENV); export ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg \
  ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.collections PATH=$(CURDIR)/$(VENV)/bin:$$PATH;

# pytest-ansible would otherwise build its own collections/ansible_collections/opdbus/infra tree
# of symlinks in the checkout whenever pytest starts where galaxy.yml is; use .collections.
PYTEST := $(PY) -m pytest --ansible-unit-inject-only

# Commands that act on the lab's network (integration tests, molecule, demo, bench) run inside
# the lab's host namespace when it has one (OPDBUS_LAB_NETNS, see lab/lab.sh; empty = root).
# nsenter changes only the network namespace, so /run/netns and the files stay shared.
IN_LAB := $${OPDBUS_LAB_NETNS:+nsenter --net=/run/netns/$$OPDBUS_LAB_NETNS --}

.PHONY: help deps venv collection lab-up lab-down lab-status test test-unit test-sanity lint \
        test-integration test-molecule demo bench clean docs-site ee-context

help:
	@echo 'targets:'
	@echo '  test              deps venv collection, then test-unit test-sanity lint test-integration test-molecule'
	@echo '  deps              Debian packages (apt), skipped when installed'
	@echo '  venv              .venv on $(SYS_PYTHON) with requirements-test.txt'
	@echo '  collection        link .collections/ansible_collections/opdbus/infra -> this checkout'
	@echo '  lab-up / lab-down / lab-status   the lab (lab/lab.sh)'
	@echo '  test-unit test-sanity lint test-integration test-molecule   one suite each'
	@echo '  demo              lab-up, playbooks/site.yml, show the result'
	@echo '  bench             lab-up, bench/run.py'
	@echo '  docs-site         the docs site (antsibull-docs + the guides) in .build/docsite/html'
	@echo '  ee-context        the execution environment build context (ansible-builder) in .build/ee'
	@echo '  clean             lab-down, remove .venv .collections .build .bench (and pytest-ansible'"'"'s collections/)'

# ---------------------------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------------------------

# The stamp holds the package list: changing APT_PACKAGES re-runs the check.
deps:
	@if [[ -f $(DEPS_STAMP) && "$$(cat $(DEPS_STAMP))" == "$(strip $(APT_PACKAGES))" ]]; then exit 0; fi; \
	missing=; \
	for p in $(APT_PACKAGES); do \
	  [[ "$$(dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null)" == installed ]] || missing+=" $$p"; \
	done; \
	if [[ -n $$missing ]]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) apt-get -q update; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends $(APT_PACKAGES); \
	fi; \
	mkdir -p $(dir $(DEPS_STAMP)); \
	echo "$(strip $(APT_PACKAGES))" > $(DEPS_STAMP)

venv: $(VENV_STAMP)

# Rebuilt when a requirements file changes. A venv made by another interpreter is replaced.
$(VENV_STAMP): requirements.txt requirements-test.txt | deps
	@if ! grep -qx 'home = $(patsubst %/,%,$(dir $(SYS_PYTHON)))' $(VENV)/pyvenv.cfg 2>/dev/null; then \
	  echo "venv: creating $(VENV) with $(SYS_PYTHON)"; \
	  rm -rf $(VENV); \
	  $(SYS_PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	@touch $@

# ansible.cfg's collections_path points at .collections; the link makes this checkout the
# installed opdbus.infra (relative, so the checkout can move).
collection: $(VENV)/bin/opdbus-ledger
	@if [[ "$$(readlink $(COLL_LINK) 2>/dev/null)" != ../../.. ]]; then \
	  mkdir -p $(dir $(COLL_LINK)); \
	  ln -sfn ../../.. $(COLL_LINK); \
	  echo "collection: $(COLL_LINK) -> $$(readlink -f $(COLL_LINK))"; \
	fi

# The ledger's command line: python -m on the linked collection, with the venv's Python.
$(VENV)/bin/opdbus-ledger: $(VENV_STAMP) Makefile
	@printf '%s\n' '#!/bin/sh' \
	  '# opdbus-ledger: the audit ledger command line of opdbus.infra (made by make)' \
	  'PYTHONPATH="$(CURDIR)/.collections$${PYTHONPATH:+:$$PYTHONPATH}" exec "$(CURDIR)/$(PY)" -m ansible_collections.opdbus.infra.plugins.plugin_utils.ledger "$$@"' \
	  > $@.tmp
	@chmod 755 $@.tmp && mv $@.tmp $@

# Static settings of the lab (paths, names): sourceable without the lab running.
$(LAB_ENV): $(LAB)
	@$(LAB) env >/dev/null

# ---------------------------------------------------------------------------------------------
# lab
# ---------------------------------------------------------------------------------------------
lab-up: deps
	$(LAB) up

lab-down:
	$(LAB) down

lab-status:
	@$(LAB) status

# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------

# Suites run in this order; make stops at the first failing one.
test: deps venv collection
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-sanity
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory test-molecule

# The docs site and the EE build context (both also built and checked by tests/unit/test_packaging.py).
TOOLS_ENV := export ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.collections PATH=$(CURDIR)/$(VENV)/bin:$$PATH;
docs-site: venv collection
	$(TOOLS_ENV) $(PY) tools/docsite.py

ee-context: venv collection
	$(TOOLS_ENV) $(PY) tools/ee_context.py

# pytest's exit code 5 (no tests collected) fails the target like any other failure.
test-unit: venv collection $(LAB_ENV)
	$(ANSIBLE_ENV) $(PYTEST) $(PYTEST_ARGS) tests/unit

# ansible-test wants the collection at .../ansible_collections/<ns>/<name>: copy what git
# would ship (tracked + untracked-not-ignored) there. rsync keeps tests/output (ansible-test's
# cached --venv environments) and deletes everything else that is stale. The copy gets its own
# (empty) git repo: otherwise ansible-test walks up to this checkout's .git, where .build/ is
# ignored, and finds no files at all. --venv --requirements: ansible-test makes its own venvs
# (under tests/output/.tmp and ~/.ansible/test/venv), so .venv stays as requirements say.
test-sanity: venv collection $(LAB_ENV)
	@mkdir -p $(BUILD_COLL)
	@git ls-files -co --exclude-standard | sort -u \
	  | awk '{ n = split($$0, a, "/"); p = ""; for (i = 1; i < n; i++) { p = p a[i] "/"; print "+ /" p } print "+ /" $$0 }' \
	  | sort -u > $(BUILD_ROOT)/files.filter
	@rsync -a --delete --delete-excluded --filter='P /tests/output/' --filter='P /.git/' \
	  --filter='merge $(BUILD_ROOT)/files.filter' --filter='- *' ./ $(BUILD_COLL)/
	@[[ -d $(BUILD_COLL)/.git ]] || git init -q $(BUILD_COLL)
	@v=$$(sed -n "s/^ *pip='\([0-9.]*\)',\{0,1\}$$/\1/p" $(VENV)/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -n1); \
	[[ -n $$v ]] || { echo "test-sanity: cannot tell which pip ansible-test bootstraps" >&2; exit 1; }; \
	f=$$HOME/.ansible/test/cache/get_pip_$${v//./_}.py; \
	if [[ ! -e $$f ]] || { grep -q opdbus-offline-get-pip "$$f" && ! cmp -s $(GET_PIP_SHIM) "$$f"; }; then \
	  mkdir -p "$$(dirname "$$f")"; cp $(GET_PIP_SHIM) "$$f"; echo "test-sanity: installed $(GET_PIP_SHIM) as $$f"; \
	fi
	cd $(BUILD_COLL) && $(ANSIBLE_ENV) $(CURDIR)/$(VENV)/bin/ansible-test sanity \
	  --python $(SANITY_PYTHON) --venv --requirements --color no

lint: venv collection $(LAB_ENV)
	$(ANSIBLE_ENV) $(VENV)/bin/ansible-lint $(if $(CI),--nocolor)

# The lab goes down afterwards whatever happened; the suite's exit code is kept.
test-integration: deps venv collection
	@set +e; \
	$(LAB) up; rc=$$?; \
	if (( rc == 0 )); then ( $(ANSIBLE_ENV) $(IN_LAB) $(PYTEST) $(PYTEST_ARGS) tests/integration ); rc=$$?; fi; \
	$(LAB) down || (( rc )) || rc=1; \
	exit $$rc

# A scenario is a directory under extensions/molecule with a molecule.yml. None yet = failure.
test-molecule: deps venv collection
	@if ! compgen -G 'extensions/molecule/*/molecule.yml' >/dev/null; then \
	  echo 'test-molecule: no molecule scenarios under extensions/molecule (expected at least one)' >&2; \
	  exit 1; \
	fi
	@set +e; \
	$(LAB) up; rc=$$?; \
	if (( rc == 0 )); then ( cd extensions && $(ANSIBLE_ENV) $(IN_LAB) molecule test --all ); rc=$$?; fi; \
	$(LAB) down || (( rc )) || rc=1; \
	exit $$rc

# ---------------------------------------------------------------------------------------------
# demo, bench, clean
# ---------------------------------------------------------------------------------------------
# The demo runs with the audit ledger on, kept on the lab's btrfs (snapshots per run), and ends
# by verifying it.
LEDGER_ENV := export ANSIBLE_CALLBACKS_ENABLED=opdbus.infra.ledger \
  OPDBUS_LEDGER_DIR=$${OPDBUS_LEDGER_DIR:-$$OPDBUS_BTRFS_MNT/ledger} OPDBUS_LEDGER_RETENTION=last=5;

demo: deps venv collection lab-up
	$(ANSIBLE_ENV) $(LEDGER_ENV) $(IN_LAB) $(VENV)/bin/ansible-playbook playbooks/site.yml
	@if [[ -f playbooks/show.yml ]]; then \
	  $(ANSIBLE_ENV) $(LEDGER_ENV) $(IN_LAB) $(VENV)/bin/ansible-playbook playbooks/show.yml; \
	else \
	  . $(LAB_ENV); echo "--- ovs-vsctl show ($$OPDBUS_OVSDB)"; ovs-vsctl --db="$$OPDBUS_OVSDB" --timeout=5 show; \
	fi
	@$(ANSIBLE_ENV) $(LEDGER_ENV) echo "--- audit ledger ($$OPDBUS_LEDGER_DIR)"; \
	$(VENV)/bin/opdbus-ledger verify --snapshots; \
	$(VENV)/bin/opdbus-ledger stats | sed -n '2,4p'; \
	echo "on disk: $$(du -sh "$$OPDBUS_LEDGER_DIR" | cut -f1) (ledger), $$(du -sh "$$OPDBUS_LEDGER_DIR.snapshots" 2>/dev/null | cut -f1) (snapshots)"

bench: deps venv collection lab-up
	$(ANSIBLE_ENV) $(IN_LAB) $(PY) bench/run.py

clean:
	$(LAB) down
	rm -rf $(VENV) .collections $(BUILD_ROOT) .bench collections
