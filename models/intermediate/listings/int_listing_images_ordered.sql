-- The images that migrate, in the monolith's order within their listing: the
-- main/default image first, then the B2C display_order with NULLs last, then
-- the image id. Numbered 0, 1, 2, ... over the migrated images only, so a
-- rejected image leaves no gap; the first is the listing's primary image.

with

images as (

    select * from {{ ref('int_listing_images_unnested') }}

),

ordered as (

    select
        *,
        row_number() over (
            partition by listing_id
            order by
                is_flagged_primary desc,
                source_display_order asc nulls last,
                source_image_id asc,
                source_position asc
        ) - 1 as display_order
    from images
    where rejection_reason is null

),

final as (

    select
        -- ids
        image_id,
        listing_id,
        source_type,
        source_image_id,

        -- strings
        url,
        thumbnail_url,
        file_path,
        file_name,
        storage_type,

        -- numerics
        display_order::integer as display_order,

        -- booleans
        is_flagged_primary,
        display_order = 0 as is_primary

    from ordered

)

select * from final
