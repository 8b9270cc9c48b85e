-- Every row read from the source and every image entry in it is accounted for:
--   source rows           = listings + listings_rejected
--   source image entries  = listing_images + listing_images_rejected
--   listings              = listing_id_map = listing_locations
-- and the source's natural key (source_type, id) is unique. "Read from the
-- source": the two service-checked halves, the build's only reads of the view
-- (their parity filters, = 0 and <> 0, split any id, negative ones included).
-- Not the view again: the monolith stays live during a migration, and a row it
-- adds or deletes after the halves were read is the next run's catch-up, not a
-- failure of this build. Returns one row per failed check.

with

source_totals as (

    -- Distinct ids per side are counted by sorting plain integers: cheaper than
    -- grouping (source_type, id) pairs with their images alongside (see
    -- docs/benchmarks.md).
    select
        count(*) as source_rows,
        count(distinct source_id) filter (where source_type = 'c2c')
        + count(distinct source_id) filter (where source_type = 'b2c') as source_keys,
        coalesce(sum(jsonb_array_length(images)), 0) as source_images
    from {{ ref('int_listings_service_checked') }}

),

target_totals as (

    select
        (select count(*) from {{ ref('listings') }}) as listings,
        (select count(*) from {{ ref('listings_rejected') }}) as listings_rejected,
        (select count(*) from {{ ref('listing_images') }}) as listing_images,
        (select count(*) from {{ ref('listing_images_rejected') }}) as listing_images_rejected,
        (select count(*) from {{ ref('listing_id_map') }}) as listing_id_map,
        (select count(*) from {{ ref('listing_locations') }}) as listing_locations

),

checks as (

    select
        'source rows = listings + listings_rejected' as failed_check,
        source_totals.source_rows as expected,
        target_totals.listings + target_totals.listings_rejected as actual
    from source_totals cross join target_totals

    union all

    select
        'source images = listing_images + listing_images_rejected' as failed_check,
        source_totals.source_images as expected,
        target_totals.listing_images + target_totals.listing_images_rejected as actual
    from source_totals cross join target_totals

    union all

    select
        'source natural key (source_type, id) is unique' as failed_check,
        source_totals.source_rows as expected,
        source_totals.source_keys as actual
    from source_totals

    union all

    select
        'listing_id_map rows = listings' as failed_check,
        target_totals.listings as expected,
        target_totals.listing_id_map as actual
    from target_totals

    union all

    select
        'listing_locations rows = listings' as failed_check,
        target_totals.listings as expected,
        target_totals.listing_locations as actual
    from target_totals

)

select * from checks
where expected <> actual
