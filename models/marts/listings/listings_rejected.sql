-- Quarantine: every monolith row that is not in `listings`, with the reasons
-- and the source row's migrated fields (images included), so nothing is
-- dropped silently and a fixed row can be replayed.

with

validated as (

    select * from {{ ref('int_listings_service_checked') }}

),

final as (

    select
        -- ids
        source_type::varchar(10) as source_type,
        source_id::integer as source_id,
        listing_id,

        -- strings
        rejection_reason::text as reason,

        -- numerics
        jsonb_array_length(images)::integer as image_count,

        -- nested
        jsonb_build_object(
            'id', source_id,
            'source_type', source_type,
            'user_id', user_id,
            'category_id', category_id,
            'title', title,
            'description', description,
            'price', price,
            'condition', condition,
            'status', source_status,
            'location', location,
            'latitude', latitude,
            'longitude', longitude,
            'address_city', city,
            'address_country', country,
            'views_count', views_count,
            'show_on_map', show_on_map,
            'created_at', created_at,
            'updated_at', updated_at,
            'storefront_id', storefront_id,
            'external_id', external_id,
            'currency', currency,
            'images', images
        ) as source_row

    from validated
    where rejection_reason is not null

)

select * from final
