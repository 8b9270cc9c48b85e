-- Location of every migrated listing, with its coordinates checked (in
-- int_listings_validated): a pair is kept only when both are present and inside
-- [-90, 90] x [-180, 180].
{{ config(materialized='view') }}

with

validated as (

    select * from {{ ref('int_listings_service_checked') }}

),

checked as (

    select
        listing_id,
        source_type,
        source_id,
        location,
        latitude,
        longitude,
        checked_latitude,
        checked_longitude,
        checked_show_on_map,
        coordinates_rejection_reason
    from validated
    where rejection_reason is null

)

select * from checked
