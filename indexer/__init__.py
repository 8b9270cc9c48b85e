"""Index listing documents built by dbt (`<schema>_search.listing_search_documents`) into OpenSearch.

Modules: config (settings), source (PostgreSQL), opensearch (client, mapping, indices and
alias), bulk (NDJSON loading), validate (index vs database), commands, cli.
"""
