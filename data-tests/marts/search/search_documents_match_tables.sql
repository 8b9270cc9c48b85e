-- The documents the indexer ships agree with the microservice's tables: one per
-- listing the service serves (all of them), and, on a fixed sample of every `document_test_sample_modulus`-th id
-- (var, default 10; 1 checks every document), every required key present, as
-- many nested images as listing_images has for the listing, timestamps in UTC
-- ISO 8601, and no line break in the text (the indexer sends one line each).
-- The sample keeps the test cheap at millions of rows (each document is built
-- on read); the indexer's `validate` compares every image count and a random
-- sample field by field after loading. One row per failed check.

{% set modulus = var('document_test_sample_modulus', 10) %}

with

sampled as (

    -- The filter reaches the view's scan of listings: only sampled documents are built.
    select
        id,
        document::jsonb as document,
        strpos(document::text, chr(10)) > 0 as has_line_break
    from {{ ref('listing_search_documents') }}
    where mod(id, {{ modulus }}) = 0

),

sample_totals as (

    select
        coalesce(sum(jsonb_array_length(document -> 'images')), 0) as images,
        count(*) filter (
            where not document ?& array[
                'id', 'uuid', 'source_type', 'user_id', 'category_id', 'title', 'description',
                'price', 'currency', 'condition', 'status', 'visibility', 'city', 'country',
                'views_count', 'storefront_id', 'external_id', 'created_at', 'updated_at',
                'location', 'show_on_map', 'images'
            ]
        ) as documents_missing_keys,
        count(*) filter (
            where (document ->> 'created_at') !~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$'
        ) + count(*) filter (
            where (document ->> 'updated_at') !~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$'
        ) as documents_with_bad_timestamps,
        count(*) filter (where has_line_break) as documents_with_line_breaks
    from sampled

),

checks as (

    select
        'documents = listings the service serves' as failed_check,
        (select count(*) from {{ ref('stg_microservice__listings') }}) as expected,
        (select count(*) from {{ ref('listing_search_documents') }}) as actual

    union all

    select
        'nested images = listing_images (sample)' as failed_check,
        (
            select count(*) from {{ ref('stg_microservice__listing_images') }} as sampled_images
            inner join {{ ref('stg_microservice__listings') }} as served
                on sampled_images.listing_id = served.listing_id
            where mod(sampled_images.listing_id, {{ modulus }}) = 0
        ) as expected,
        sample_totals.images as actual
    from sample_totals

    union all

    select
        'documents missing a key (sample)' as failed_check,
        0 as expected,
        documents_missing_keys as actual
    from sample_totals

    union all

    select
        'documents with a non-UTC-ISO-8601 timestamp (sample)' as failed_check,
        0 as expected,
        documents_with_bad_timestamps as actual
    from sample_totals

    union all

    -- each document must be one NDJSON line
    select
        'documents with a line break (sample)' as failed_check,
        0 as expected,
        documents_with_line_breaks as actual
    from sample_totals

)

select * from checks
where expected <> actual
