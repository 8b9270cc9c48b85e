-- The microservice's `listing_locations`: one row per listing, with the fields
-- the hand-run scripts moved out of `listings`. Coordinates that fail validation are not
-- written (latitude/longitude NULL, show_on_map false); they are kept with the
-- reason in `listing_coordinates_rejected`.

with

locations as (

    select * from {{ ref('int_listing_locations_checked') }}

),

final as (

    select
        -- ids
        listing_id,

        -- strings
        location::text as location,

        -- numerics
        checked_latitude as latitude,
        checked_longitude as longitude,

        -- booleans
        checked_show_on_map as show_on_map

    from locations

)

select * from final
