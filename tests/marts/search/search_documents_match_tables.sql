-- The documents the indexer ships agree with the tables: one per listing, as
-- many nested images as listing_images, every required key present and every
-- timestamp in UTC ISO 8601. Returns one row per failed check.

with

documents as (

    select * from {{ ref('listing_search_documents') }}

),

document_totals as (

    select
        count(*) as documents,
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
        ) as documents_with_bad_timestamps
    from documents

),

checks as (

    select
        'documents = listings' as failed_check,
        (select count(*) from {{ ref('listings') }}) as expected,
        documents as actual
    from document_totals

    union all

    select
        'nested images = listing_images' as failed_check,
        (select count(*) from {{ ref('listing_images') }}) as expected,
        images as actual
    from document_totals

    union all

    select
        'documents missing a key' as failed_check,
        0 as expected,
        documents_missing_keys as actual
    from document_totals

    union all

    select
        'documents with a non-UTC-ISO-8601 timestamp' as failed_check,
        0 as expected,
        documents_with_bad_timestamps as actual
    from document_totals

)

select * from checks
where expected <> actual
