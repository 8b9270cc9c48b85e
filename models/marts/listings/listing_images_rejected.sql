-- Quarantine for images: every source image entry that is not in
-- `listing_images` (its listing was rejected, it has no URL, ...), with the
-- reason and the raw JSON entry.

with

images as (

    select * from {{ ref('int_listing_images_unnested') }}

),

final as (

    select
        -- ids
        source_type::varchar(10) as source_type,
        source_listing_id::integer as source_listing_id,
        source_image_id,
        listing_id,

        -- strings
        rejection_reason as reason,

        -- numerics
        source_position::integer as source_position,

        -- nested
        source_entry

    from images
    where rejection_reason is not null

)

select * from final
