-- One OpenSearch document per listing, built in SQL so that lineage, tests and
-- the index agree: the listing's fields, its location as a geo_point and its
-- images nested in display_order. Timestamps are UTC ISO 8601 strings with a
-- `Z`. `json`, not `jsonb`: the indexer ships the text as it is, and building
-- json is about twice as fast. Each listing's images come from one index range
-- scan of listing_images (listing_id, display_order), so a single document, a
-- sample or the whole stream in id order is cheap to read.

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

final as (

    select
        listings.id,
        json_build_object(
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
                    then json_build_object('lat', locations.latitude, 'lon', locations.longitude)
            end,
            'show_on_map', coalesce(locations.show_on_map, false),
            'images', coalesce(
                (
                    select
                        json_agg(
                            json_build_object(
                                'id', images.id,
                                'url', images.url,
                                'thumbnail_url', images.thumbnail_url,
                                'is_primary', images.is_primary,
                                'display_order', images.display_order
                            )
                            order by images.display_order
                        )
                    from images
                    where images.listing_id = listings.id
                ),
                '[]'::json
            )
        ) as document
    from listings
    left join locations
        on listings.id = locations.listing_id
    -- the order the indexer streams in, so reading it needs no sort
    order by listings.id

)

select * from final
