-- One row per entry of every source row's `images` array, both JSON shapes
-- normalised to one, with the target image id, the reason (if any) the image
-- cannot be migrated, and the display_order of those that migrate. A view:
-- listing_images and listing_images_rejected each read their part of it.

with

listings as (

    select * from {{ ref('int_listings_service_checked') }}

),

unnested as (

    select
        listings.listing_id,
        listings.source_type,
        listings.source_id as source_listing_id,
        listings.rejection_reason as listing_rejection_reason,
        image.position as source_position,
        image.entry
    from listings
    cross join lateral jsonb_array_elements(listings.images) with ordinality as image (entry, position)

),

normalised as (

    -- C2C: {id, file_path, file_name, public_url, is_main, storage_type}
    -- B2C: {id, image_url, thumbnail_url, is_default, display_order}
    select
        listing_id,
        source_type,
        source_listing_id,
        listing_rejection_reason,
        source_position,
        entry,
        case when entry ->> 'id' ~ '^-?[0-9]{1,10}$' then (entry ->> 'id')::numeric end as source_image_number,
        case source_type
            when 'c2c' then entry ->> 'public_url'
            else entry ->> 'image_url'
        end as url,
        entry ->> 'thumbnail_url' as thumbnail_url,
        entry ->> 'file_path' as file_path,
        entry ->> 'file_name' as file_name,
        entry ->> 'storage_type' as storage_type,
        coalesce(
            case source_type
                when 'c2c' then (entry ->> 'is_main')::boolean
                else (entry ->> 'is_default')::boolean
            end,
            false
        ) as is_flagged_primary,
        (entry ->> 'display_order')::integer as source_display_order
    from unnested

),

checked as (

    select
        *,
        case
            when source_image_number between -2147483648 and 2147483647 then source_image_number::bigint
        end as source_image_id
    from normalised

),

identified as (

    select
        checked.*,
        case
            when checked.source_image_id is not null
                then {{ listing_id('checked.source_type', 'checked.source_image_id') }}
        end as image_id
    from checked
    -- a fence: the values the service's constraints read below are computed once
    offset 0  -- noqa: AM09

),

judged as (

    select
        identified.*,
        case
            when identified.listing_rejection_reason is not null then 'listing rejected'
            when identified.source_image_id is null then 'image id is not an integer'
            when {{ is_blank('identified.url') }} then 'missing url'
            else nullif(array_to_string(service_image.violations, '; '), '')
        end as rejection_reason
    from identified
    -- display_order and is_primary are numbered below, over the images that pass.
    cross join lateral (  -- noqa: ST05
        {{ service_constraint_violations('listing_images', {
            'id': 'identified.image_id',
            'listing_id': 'identified.listing_id',
            'url': 'identified.url',
            'thumbnail_url': 'identified.thumbnail_url',
        }) }}
    ) as service_image

),

ordered as (

    -- The monolith's order within a listing: the main/default image first, then
    -- the B2C display_order with NULLs last, then the image id. Numbered 0, 1,
    -- 2, ... over the images that migrate, so a rejected one leaves no gap.
    -- Partitioned by rejection_reason as well, so that a filter on it (as both
    -- consumers have) is applied before the sort rather than after it.
    select
        *,
        case
            when rejection_reason is null
                then row_number() over (
                    partition by listing_id, rejection_reason
                    order by
                        is_flagged_primary desc,
                        source_display_order asc nulls last,
                        source_image_id asc,
                        source_position asc
                ) - 1
        end as display_order
    from judged

),

final as (

    select
        -- ids
        image_id,
        listing_id,
        source_type,
        source_listing_id,
        source_image_id,

        -- strings
        url,
        thumbnail_url,
        file_path,
        file_name,
        storage_type,

        -- numerics
        source_position,
        source_display_order,
        display_order::integer as display_order,

        -- booleans
        is_flagged_primary,
        coalesce(display_order = 0, false) as is_primary,

        -- quarantine
        rejection_reason,
        entry as source_entry

    from ordered

)

select * from final
