-- One OpenSearch document per listing, built in SQL so that lineage, tests and
-- the index agree: the listing's fields, its location as a geo_point and its
-- images nested in display_order. Timestamps are UTC ISO 8601 strings with a
-- `Z`. The indexer streams `document` as it is.

with

listings as (

    select * from {{ ref('listings') }}

),

locations as (

    select * from {{ ref('listing_locations') }}

),

images as (

    select * from {{ ref('listing_images') }}

),

images_by_listing as (

    -- One ordered aggregate over listing_images (its (listing_id, display_order)
    -- index gives the order), not one subquery per listing.
    select
        listing_id,
        jsonb_agg(
            jsonb_build_object(
                'id', id,
                'url', url,
                'thumbnail_url', thumbnail_url,
                'is_primary', is_primary,
                'display_order', display_order
            )
            order by display_order
        ) as images
    from images
    group by listing_id

),

final as (

    select
        listings.id,
        jsonb_build_object(
            'id', listings.id,
            'uuid', listings.uuid,
            'source_type', listings.source_type,
            'user_id', listings.user_id,
            'category_id', listings.category_id,
            'title', listings.title,
            'description', listings.description,
            'price', listings.price,
            'currency', listings.currency,
            'condition', listings.condition,
            'status', listings.status,
            'visibility', listings.visibility,
            'city', listings.city,
            'country', listings.country,
            'views_count', listings.views_count,
            'storefront_id', listings.storefront_id,
            'external_id', listings.external_id,
            'created_at', {{ iso8601_utc('listings.created_at') }},
            'updated_at', {{ iso8601_utc('listings.updated_at') }},
            'location', case
                when locations.latitude is not null
                    then jsonb_build_object('lat', locations.latitude, 'lon', locations.longitude)
            end,
            'show_on_map', coalesce(locations.show_on_map, false),
            'images', coalesce(images_by_listing.images, '[]'::jsonb)
        ) as document
    from listings
    left join locations
        on listings.id = locations.listing_id
    left join images_by_listing
        on listings.id = images_by_listing.listing_id

)

select * from final
