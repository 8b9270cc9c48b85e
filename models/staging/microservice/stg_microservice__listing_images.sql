-- The microservice's listing images, as search serves them.

with

source as (

    select * from {{ source('microservice', 'listing_images') }}

),

final as (

    select
        -- ids
        id as image_id,
        listing_id,

        -- strings
        url,
        thumbnail_url,

        -- numerics
        display_order,

        -- booleans
        is_primary

    from source

)

select * from final
