-- The microservice's listing locations, as search serves them.

with

source as (

    select * from {{ source('microservice', 'listing_locations') }}

),

final as (

    select
        -- ids
        listing_id,

        -- strings
        location,

        -- numerics
        latitude,
        longitude,

        -- booleans
        show_on_map

    from source

)

select * from final
