-- The rows of int_listings_validated with an even source id, checked against the
-- microservice's own tables: what they would refuse is added to the rows' rejection
-- reasons (macro service_checked_half). This and its twin are the only reads of the
-- source view; dbt builds them in parallel (each read of the view is single-threaded
-- in PostgreSQL), and every mart reads them through int_listings_service_checked. The filter
-- reaches the view's base tables, so each half evaluates only its own rows' image
-- subqueries. Unlogged: rebuilt from the source on every run.
{{ config(materialized='table', unlogged=true) }}

{{ service_checked_half('even') }}
