-- The staged `listings`: the hand-run scripts' 19 fields, one row per monolith row that
-- passed the migration's rules and the microservice's own constraints (rows that
-- did not are in `listings_rejected`). `listings-migration publish` moves it
-- into the microservice's `listings`. No casts to the target's lengths here: a
-- value that does not fit is quarantined, never truncated.

with

validated as (

    select * from {{ ref('int_listings_service_checked') }}

),

final as (

    select
        -- ids
        listing_id as id,
        listing_uuid as uuid,
        source_type,
        user_id,
        category_id,
        storefront_id,
        external_id::text as external_id,

        -- strings
        title::text as title,
        description::text as description,
        currency::text as currency,
        condition::text as condition,
        status::text as status,
        visibility::text as visibility,
        city::text as city,
        country::text as country,

        -- numerics
        price::numeric as price,
        views_count,

        -- timestamps (instants)
        created_at,
        updated_at

    from validated
    where rejection_reason is null

)

select * from final
