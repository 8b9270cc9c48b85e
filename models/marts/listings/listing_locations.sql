-- The microservice's `listing_locations`: one row per listing, with the fields
-- the seed moved out of `listings`. Coordinates that fail validation are not
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
        location::varchar(255) as location,

        -- numerics
        case when coordinates_rejection_reason is null then latitude end::numeric(10, 8) as latitude,
        case when coordinates_rejection_reason is null then longitude end::numeric(11, 8) as longitude,

        -- booleans
        coalesce(show_on_map, true)
        and coordinates_rejection_reason is null
        and latitude is not null as show_on_map

    from locations

)

select * from final
