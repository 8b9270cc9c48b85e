#!/usr/bin/env bash
# The same full reindex on the single local node and on the 3-node loopback cluster,
# one after the other, in one run: `listings-indexer reindex` (load, replicas, refresh,
# validation of every document, alias move), timed with its peak RSS.
#
# Usage: scripts/bench_cluster.sh
#   Reads the documents of the PG* database (PGDATABASE, default bench_cluster), which
#   must already hold a published migration, e.g.
#     PGDATABASE=bench_cluster listings-standin --c2c 700000 --b2c 300000 --service
#     PGDATABASE=bench_cluster dbt build && PGDATABASE=bench_cluster listings-migration publish
#   The single node is `scripts/opensearch.sh start` (heap OPENSEARCH_HEAP, 1g); the
#   cluster is `scripts/opensearch.sh cluster-start` with the same heap per node
#   (OPENSEARCH_CLUSTER_HEAP defaults to it here); the cluster is stopped at the end.
#   Replicas and shards are the indexer's defaults: 0 replicas on one node, 1 on three.
set -euo pipefail
source "$(dirname "$0")/common.sh"
case "${1:-}" in -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

ensure_venv
ensure_profile
ensure_services
export PGDATABASE="${PGDATABASE:-bench_cluster}"
export OPENSEARCH_CLUSTER_HEAP="${OPENSEARCH_CLUSTER_HEAP:-${OPENSEARCH_HEAP:-1g}}"
ALIAS=bench_cluster_listings
listings=$(psql -XAtqc "select count(*) from ${LISTINGS_SCHEMA:-public}.listings")
say "$listings listings in $PGDATABASE"

reindex() { # label url
    local log
    log="$(mktemp)"
    /usr/bin/time -f '%e %M' -o "$log.time" \
        env OPENSEARCH_URL="$2" listings-indexer reindex --alias "$ALIAS" --quiet >"$log" 2>&1 ||
        { cat "$log" >&2; die "reindex on $1 failed"; }
    read -r seconds rss_kib <"$log.time"
    printf '%-28s %8.1f s  %9.0f docs/s  peak RSS %4d MiB\n' "$1" "$seconds" \
        "$(echo "$listings / $seconds" | bc -l)" "$((rss_kib / 1024))"
    env OPENSEARCH_URL="$2" python - "$ALIAS" <<'PY'
import os, sys
from opensearchpy import OpenSearch
client = OpenSearch(hosts=[os.environ["OPENSEARCH_URL"]], timeout=120)
alias = sys.argv[1]
[index] = client.indices.get_alias(name=alias)
shards = client.cat.shards(index=index, format="json")
print(f"  {index}: {len({s['node'] for s in shards})} node(s), "
      f"{sum(s['prirep'] == 'p' for s in shards)} primary + {sum(s['prirep'] == 'r' for s in shards)} replica shard(s)")
client.indices.delete(index=f"{alias}_*")
client.delete(index="listings-indexer-locks", id=alias, ignore=[404])
PY
    rm -f "$log" "$log.time"
}

single_url="$OPENSEARCH_URL"
reindex "single node" "$single_url"
"$REPO/scripts/opensearch.sh" cluster-start >&2
trap '"$REPO/scripts/opensearch.sh" cluster-stop >&2' EXIT
reindex "3-node cluster" "$("$REPO/scripts/opensearch.sh" cluster-url)"
