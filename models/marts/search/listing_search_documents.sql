-- One OpenSearch document per listing the microservice holds (its own tables,
-- as `publish` left them and the service keeps them; soft-deleted listings left
-- out), built in SQL so that lineage, tests and the index agree: the listing's
-- fields, its location as a geo_point and its images nested in display_order.
-- Timestamps are UTC ISO 8601 strings with a `Z`. `json`, not `jsonb`: the
-- indexer ships the text as it is, and json costs less to build (figures in
-- docs/benchmarks.md, "Choices made for speed"). Each listing's images come from
-- one index range scan of listing_images (listing_id, display_order), so a single
-- document, a sample or the whole stream in id order is cheap to read.

{#- Every build re-creates this view: the roles that read it (the indexer's) get their SELECT
    back each time, from the search_readers var. -#}
{{ config(grants={'select': var('search_readers', [])}) }}

with

listings as (

    select * from {{ ref('stg_microservice__listings') }}

),

locations as (

    select * from {{ ref('stg_microservice__listing_locations') }}

),

images as (

    select * from {{ ref('stg_microservice__listing_images') }}

),

fields as (

    -- One column per document key, in the document's order; row_to_json below
    -- turns the row into the document (cheaper than json_build_object: see
    -- docs/benchmarks.md).
    select
        listings.listing_id as id,
        listings.listing_uuid as uuid,
        listings.source_type,
        listings.user_id,
        listings.category_id,
        listings.title,
        listings.description,
        listings.price,
        listings.currency,
        listings.condition,
        listings.status,
        listings.visibility,
        listings.city,
        listings.country,
        listings.views_count,
        listings.storefront_id,
        listings.external_id,
        {{ iso8601_utc('listings.created_at') }} as created_at,
        {{ iso8601_utc('listings.updated_at') }} as updated_at,
        case
            when locations.latitude is not null
                then json_build_object('lat', locations.latitude, 'lon', locations.longitude)
        end as location,
        coalesce(locations.show_on_map, false) as show_on_map,
        coalesce(
            (
                -- array_to_json, not json_agg: json_agg puts line breaks between
                -- elements, and the indexer ships each document as one NDJSON line
                select array_to_json(array_agg(listing_image order by listing_image.display_order))
                from (
                    select
                        images.image_id as id,
                        images.url,
                        images.thumbnail_url,
                        images.is_primary,
                        images.display_order
                    from images
                    where images.listing_id = listings.listing_id
                ) as listing_image
            ),
            '[]'::json
        ) as images
    from listings
    left join locations
        on listings.listing_id = locations.listing_id
    -- ordered here, not only below: row_to_json(fields) keeps this query a subquery,
    -- and an order by inside it lets PostgreSQL stream documents from the primary
    -- keys (a merge join) instead of building and sorting them all first
    order by listings.listing_id

),

final as (

    select
        fields.id,
        row_to_json(fields) as document
    from fields
    -- the order the indexer streams in (a merge join over the primary keys)
    order by fields.id

)

select * from final
