-- Location of every migrated listing, with its coordinates checked: a pair is
-- kept only when both are present and inside [-90, 90] x [-180, 180].
{{ config(materialized='view') }}

with

validated as (

    select * from {{ ref('int_listings_stored') }}

),

checked as (

    select
        listing_id,
        source_type,
        source_id,
        location,
        latitude,
        longitude,
        show_on_map,
        case
            when latitude is null and longitude is null then null
            when latitude is null or longitude is null then 'incomplete coordinates'
            when latitude not between -90 and 90 and longitude not between -180 and 180
                then 'latitude and longitude out of range'
            when latitude not between -90 and 90 then 'latitude out of range'
            when longitude not between -180 and 180 then 'longitude out of range'
        end as coordinates_rejection_reason
    from validated
    where rejection_reason is null

)

select * from checked
