"""Tooling around the dbt migration: fixtures, the monolith FDW attach, the report."""
