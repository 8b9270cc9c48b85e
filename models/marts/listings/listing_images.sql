-- The microservice's `listing_images`: both monolith image shapes in one,
-- display_order 0, 1, 2, ... per listing in the monolith's order, and exactly
-- one primary image (the first) per listing that has images.

with

images as (

    select * from {{ ref('int_listing_images_unnested') }}

),

final as (

    select
        -- ids
        image_id as id,
        listing_id,

        -- strings
        url,
        thumbnail_url,
        file_path,
        file_name,
        storage_type,

        -- numerics
        display_order,

        -- booleans
        is_primary

    from images
    where rejection_reason is null

)

select * from final
