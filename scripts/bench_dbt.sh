#!/usr/bin/env bash
# Benchmark dbt run/test at production scale; see scripts/bench_dbt.py.
set -euo pipefail
source "$(dirname "$0")/common.sh"
ensure_venv
ensure_profile
ensure_services --no-opensearch
python scripts/bench_dbt.py "$@"
