# Room Snapshots: every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
# `make run` is a development stack: a built-in JWT secret, local services, ./var/store.
DEV_ENV := SNAPSHOT_API_ENV=development

.PHONY: help install system-deps run test test-big-rooms test-unit test-integration test-e2e lint format \
        migrate broker-users token demo bench soak up down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/snapshot-api: pyproject.toml uv.lock */pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet uv
	$(UV) sync --all-packages --frozen
	@touch $@

install: $(BIN)/snapshot-api system-deps ## install uv, the Python packages and the Debian packages

system-deps: ## install fonts and poppler from Debian's packages if missing
	@scripts/system-deps.sh

migrate: install ## create the database if needed and apply migrations
	$(DEV_ENV) $(BIN)/snapshot-api migrate

broker-users: ## create or update the services' RabbitMQ users on the local broker (development passwords)
	@$(PYTHON) scripts/rabbitmq_users.py

run: install migrate broker-users ## start the API (:8000) and one renderer in the foreground; Ctrl-C stops both
	@$(DEV_ENV) scripts/run-local.sh

token: install ## print a development token: make token USER=alice [ADMIN=1]
	@$(DEV_ENV) $(BIN)/snapshot-api token $(or $(USER),alice) $(if $(ADMIN),--admin,)

test: install ## the whole suite against the real PostgreSQL and RabbitMQ
	$(BIN)/python -m pytest tests -p no:cacheprovider

test-big-rooms: install ## issue 11's two-replica test at its full size, 10,000 messages (minutes; not in make test)
	SNAPSHOT_TEST_REPLICA_ROOM=10000 $(BIN)/python -m pytest tests/integration/test_renderer_pieces.py -p no:cacheprovider -k two_replicas

test-unit: install ## unit tests only (no services)
	$(BIN)/python -m pytest tests/unit -p no:cacheprovider

lint: install ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/src api-service/src renderer-service/src

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: install ## with the `snapshots` CLI: a sample room, a snapshot with a progress bar, ./var/demo.pdf
	@$(DEV_ENV) scripts/demo.sh

bench: install ## benchmarks (not part of make test)
	cd tests && $(CURDIR)/$(BIN)/python -m bench

soak: install ## kill renderers and stop the broker under load; lost and duplicated must be 0
	$(BIN)/python tests/faults/soak.py

up: ## the full stack in containers (needs a Docker engine)
	docker compose up -d --scale renderer=2

down: ## stop the container stack
	docker compose down

clean: ## remove the virtual environment and local state
	rm -rf $(VENV) var
