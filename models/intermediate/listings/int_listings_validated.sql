-- Every monolith row once, with its target id, UUID, mapped status and currency,
-- its times as instants, its checked coordinates, and every reason (if any) the
-- migration's own rules refuse it. A view: the rules live here.
-- int_listings_service_checked_even_ids and _odd_ids read it in two halves built in
-- parallel (one read of the source view, split by id parity, because a read of the
-- view runs on one core) and add what the microservice's tables would refuse (read
-- from their catalog) to `rejection_reason`; int_listings_service_checked unions them.

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
        ], null) as rejection_reasons
    from located

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

        -- quarantine (the migration's own rules; the service's constraints are
        -- checked in the two halves, see macros/service_checked_half.sql)
        nullif(array_to_string(rejection_reasons, '; '), '') as rule_rejection_reason,

        -- nested
        images

    from checked

)

select * from final
