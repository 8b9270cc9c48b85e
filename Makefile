# Run `make help` for the targets. Everything sets itself up: a venv from
# requirements.lock, and a local PostgreSQL and OpenSearch unless PG* /
# OPENSEARCH_URL point at yours.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ARGS ?=

.PHONY: help demo test lint docs docs-check services-up services-down bench-dbt bench-indexer bench-cluster clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

demo: ## Run the migration end to end on a local default (ARGS="--c2c 1000 --b2c 500 --dirty" for more)
	@scripts/demo.sh $(ARGS)

test: ## Run every test: lint, dbt build on fixtures, pytest (ARGS= passes to pytest)
	@scripts/test.sh $(ARGS)

lint: ## ruff + SQLFluff only
	@source scripts/common.sh && ensure_venv && ensure_profile && ensure_services --no-opensearch \
		&& ruff check . && ruff format --check . && sqlfluff lint models data-tests macros

docs: ## Generate and serve the lineage docs on http://127.0.0.1:8080
	@source scripts/common.sh && ensure_venv && ensure_profile && ensure_services --no-opensearch \
		&& dbt docs generate && dbt docs serve --host 127.0.0.1 --port 8080 --no-browser

docs-check: ## Load the docs site in headless Chromium and check the lineage graph
	@scripts/docs_check.sh

services-up: ## Start the local PostgreSQL and OpenSearch (no-op for configured ones)
	@scripts/postgres.sh start && scripts/opensearch.sh start

services-down: ## Stop the local PostgreSQL and OpenSearch
	@scripts/opensearch.sh stop; scripts/postgres.sh stop

bench-dbt: ## Benchmark dbt run/test on 1M C2C + 500k B2C listings (figures for docs/benchmarks.md)
	@scripts/bench_dbt.sh $(ARGS)

bench-indexer: ## Benchmark the indexer against its NDJSON ceiling (figures for docs/benchmarks.md)
	@source scripts/common.sh && ensure_venv && ensure_profile && ensure_services && python scripts/bench_indexer.py $(ARGS)

bench-cluster: ## The same reindex on the single node and on the 3-node loopback cluster (PGDATABASE with a published migration)
	@scripts/bench_cluster.sh $(ARGS)

clean: ## Remove dbt's target/ and logs/
	@rm -rf target logs
