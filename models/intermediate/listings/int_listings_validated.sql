-- Every monolith row once, with its target id, UUID, mapped status and currency,
-- its times as instants, its checked coordinates, and every reason (if any) it
-- cannot be migrated: the migration's own rules first, then whatever the
-- microservice's tables would refuse, read from their catalog when the model
-- runs. A view: the rules live here; int_listings_validated_even / _odd store it
-- in two halves built in parallel (one read of the source view, split by id,
-- because a read of the view runs on one core), and int_listings_stored puts the
-- halves back together.

with

listings as (

    select * from {{ ref('stg_monolith__unified_listings') }}

),

status_map as (

    select * from {{ ref('listing_status_map') }}

),

normalised as (

    select
        listings.*,
        coalesce(nullif(lower(btrim(listings.source_status)), ''), '(blank)') as normalised_status,
        nullif(upper(btrim(listings.source_currency)), '') as normalised_currency,
        {{ to_instant('listings.created_at', 'listings.source_type') }} as created_instant,
        {{ to_instant('listings.updated_at', 'listings.source_type') }} as updated_instant
    from listings

),

mapped as (

    select
        normalised.*,
        {{ listing_id('normalised.source_type', 'normalised.source_id') }} as listing_id,
        status_map.status as mapped_status,
        uuid_hash.digest as uuid_digest
    from normalised
    left join status_map
        on normalised.normalised_status = status_map.source_status
    -- The `limit` keeps this one-row subquery from being pulled up, so the digest
    -- is computed once per row: inlined, PostgreSQL would compute the MD5 again
    -- for each of its uses below.
    cross join lateral (  -- noqa: ST05
        select {{ uuid_v3_digest("normalised.source_type || ':' || normalised.source_id") }} as digest
        limit 1  -- noqa: AM09
    ) as uuid_hash

),

shaped as (

    -- The values as they will be published.
    select
        mapped.*,
        {{ uuid_v3_from_digest('mapped.uuid_digest') }} as listing_uuid,
        coalesce(mapped.normalised_currency, '{{ var("default_currency") }}') as currency,
        coalesce(mapped.mapped_status, '{{ var("fallback_status") }}') as status,
        '{{ var("default_visibility") }}' as visibility,
        coalesce(mapped.views_count, 0) as published_views_count,
        coalesce(mapped.updated_instant, mapped.created_instant) as published_updated_at,
        case
            when mapped.latitude is null and mapped.longitude is null then null
            when mapped.latitude is null or mapped.longitude is null then 'incomplete coordinates'
            when mapped.latitude not between -90 and 90 and mapped.longitude not between -180 and 180
                then 'latitude and longitude out of range'
            when mapped.latitude not between -90 and 90 then 'latitude out of range'
            when mapped.longitude not between -180 and 180 then 'longitude out of range'
        end as coordinates_rejection_reason
    from mapped

),

located as (

    select
        shaped.*,
        case when shaped.coordinates_rejection_reason is null then shaped.latitude end as checked_latitude,
        case when shaped.coordinates_rejection_reason is null then shaped.longitude end as checked_longitude,
        coalesce(shaped.show_on_map, true)
        and shaped.coordinates_rejection_reason is null
        and shaped.latitude is not null as checked_show_on_map
    from shaped

),

checked as (

    select
        located.*,
        array_remove(array[
            case when {{ is_blank('located.title') }} then 'missing title' end,
            case when located.user_id is null then 'missing user_id' end,
            case when located.price is null then 'missing price' end,
            case
                when located.price in ('NaN', 'Infinity', '-Infinity') then 'price is not a finite number'
            end,
            case when located.price < 0 then 'negative price' end,
            case when located.normalised_currency !~ '^[A-Z]{3}$' then 'invalid currency' end,
            case when located.created_at is null then 'missing created_at' end,
            case
                when not {{ is_publishable_instant('located.created_instant') }}
                    then 'created_at is not a time in years 1-9999'
            end,
            case
                when not {{ is_publishable_instant('located.updated_instant') }}
                    then 'updated_at is not a time in years 1-9999'
            end
        ], null)
        || service_listing.violations
        || service_location.violations as rejection_reasons
    from located
    -- The microservice's own constraints, read from its catalog (macros/service_tables.sql).
    cross join lateral (  -- noqa: ST05, LT02
        {{ service_constraint_violations('listings', {
            'id': 'located.listing_id',
            'uuid': 'located.listing_uuid',
            'source_type': 'located.source_type',
            'user_id': 'located.user_id',
            'category_id': 'located.category_id',
            'title': 'located.title',
            'description': 'located.description',
            'price': "case when located.price not in ('NaN', 'Infinity', '-Infinity') then located.price end",
            'currency': 'located.currency',
            'condition': 'located.condition',
            'status': 'located.status',
            'visibility': 'located.visibility',
            'city': 'located.city',
            'country': 'located.country',
            'views_count': 'located.published_views_count',
            'storefront_id': 'located.storefront_id',
            'external_id': 'located.external_id',
            'created_at': 'located.created_instant',
            'updated_at': 'located.published_updated_at',
        }, reported_nulls=['title', 'user_id', 'price', 'created_at', 'updated_at']) }}
    ) as service_listing  -- noqa: LT02
    cross join lateral (  -- noqa: ST05
        {{ service_constraint_violations('listing_locations', {
            'listing_id': 'located.listing_id',
            'location': 'located.location',
            'latitude': 'located.checked_latitude',
            'longitude': 'located.checked_longitude',
            'show_on_map': 'located.checked_show_on_map',
        }) }}
    ) as service_location

),

final as (

    select
        -- ids
        listing_id,
        source_type,
        source_id,
        listing_uuid,
        user_id,
        category_id,
        storefront_id,
        external_id,

        -- strings
        title,
        description,
        currency,
        condition,
        source_status,
        status,
        mapped_status is null as is_status_unmapped,
        visibility,
        city,
        country,
        location,
        coordinates_rejection_reason,

        -- numerics
        price,
        published_views_count as views_count,
        latitude,
        longitude,
        checked_latitude,
        checked_longitude,

        -- booleans
        show_on_map,
        checked_show_on_map,

        -- timestamps (instants)
        created_instant as created_at,
        published_updated_at as updated_at,

        -- quarantine
        nullif(array_to_string(rejection_reasons, '; '), '') as rejection_reason,

        -- nested
        images

    from checked

)

select * from final
