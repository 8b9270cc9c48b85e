-- The rows of int_listings_validated with an odd source id, stored, with what the
-- microservice's tables would refuse added to their rejection reasons (macro
-- stored_half). This and its twin are the only reads of the source view; dbt
-- builds them in parallel (each read of the view is single-threaded in
-- PostgreSQL), and every mart reads them through int_listings_stored. The filter
-- reaches the view's base tables, so each half evaluates only its own rows' image
-- subqueries. Unlogged: rebuilt from the source on every run.
{{ config(materialized='table', unlogged=true) }}

{{ stored_half('odd') }}
