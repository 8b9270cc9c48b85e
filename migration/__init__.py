"""Tooling around the dbt migration: preflight, the monolith FDW attach, publish, the report (cli)."""
