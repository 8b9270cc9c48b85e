-- Quarantine for coordinates: the source latitude/longitude of every migrated
-- listing whose coordinates were not written to `listing_locations`.

with

locations as (

    select * from {{ ref('int_listing_locations_checked') }}

),

final as (

    select
        -- ids
        listing_id,
        source_type::varchar(10) as source_type,
        source_id::integer as source_id,

        -- strings
        coordinates_rejection_reason as reason,

        -- numerics
        latitude,
        longitude

    from locations
    where coordinates_rejection_reason is not null

)

select * from final
