-- Every monolith row once, with its target id, UUID, mapped status and currency,
-- and the reasons (if any) it cannot be migrated. A view: the rules live here;
-- int_listings_validated_even / _odd store it in two halves built in parallel
-- (one read of the source view, split by id, because a read of the view runs on
-- one core), and int_listings_stored puts the halves back together.

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
        nullif(upper(btrim(listings.source_currency)), '') as normalised_currency
    from listings

),

mapped as (

    select
        normalised.*,
        case
            when {{ id_fits_policy('normalised.source_type', 'normalised.source_id') }}
                then {{ listing_id('normalised.source_type', 'normalised.source_id') }}
        end as listing_id,
        status_map.status as mapped_status,
        uuid_hash.digest as uuid_digest
    from normalised
    left join status_map
        on normalised.normalised_status = status_map.source_status
    -- The `limit` keeps this one-row subquery from being pulled up, so the digest
    -- is computed once per row: inlined, PostgreSQL would compute the MD5 again
    -- for each of its four uses below.
    cross join lateral (  -- noqa: ST05
        select {{ uuid_v3_digest("normalised.source_type || ':' || normalised.source_id") }} as digest
        limit 1  -- noqa: AM09
    ) as uuid_hash

),

checked as (

    select
        mapped.*,
        array_remove(array[
            case when mapped.listing_id is null then 'id outside the id policy range' end,
            case when coalesce(mapped.title, '') !~ '[^[:space:]]' then 'missing title' end,
            case when mapped.user_id is null then 'missing user_id' end,
            case when mapped.price is null then 'missing price' end,
            case when mapped.price < 0 then 'negative price' end,
            case when mapped.price >= 100000000 then 'price exceeds numeric(10,2)' end,
            case when mapped.normalised_currency !~ '^[A-Z]{3}$' then 'invalid currency' end,
            case when mapped.created_at is null then 'missing created_at' end
        ], null) as rejection_reasons
    from mapped

),

final as (

    select
        -- ids
        listing_id::integer as listing_id,
        source_type,
        source_id,
        {{ uuid_v3_from_digest('uuid_digest') }} as listing_uuid,
        user_id,
        category_id,
        storefront_id,
        external_id,

        -- strings
        title,
        description,
        coalesce(normalised_currency, '{{ var("default_currency") }}') as currency,
        condition,
        source_status,
        coalesce(mapped_status, '{{ var("fallback_status") }}') as status,
        mapped_status is null as is_status_unmapped,
        '{{ var("default_visibility") }}' as visibility,
        city,
        country,
        location,

        -- numerics
        price,
        coalesce(views_count, 0) as views_count,
        latitude,
        longitude,

        -- booleans
        show_on_map,

        -- timestamps (UTC)
        created_at,
        coalesce(updated_at, created_at) as updated_at,

        -- quarantine
        nullif(array_to_string(rejection_reasons, '; '), '') as rejection_reason,

        -- nested
        images

    from checked

)

select * from final
