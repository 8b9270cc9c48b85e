-- The microservice's `listings` table: the seed's 19 fields, one row per
-- migrated monolith row. Rows that cannot satisfy this contract are in
-- `listings_rejected` instead.

with

validated as (

    select * from {{ ref('int_listings_stored') }}

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
        external_id::varchar(255) as external_id,

        -- strings
        title::varchar(255) as title,
        description,
        currency::varchar(3) as currency,
        condition::varchar(50) as condition,
        status::varchar(50) as status,
        visibility::varchar(20) as visibility,
        city::varchar(100) as city,
        country::varchar(100) as country,

        -- numerics
        price::numeric(10, 2) as price,
        views_count,

        -- timestamps (UTC)
        created_at,
        updated_at

    from validated
    where rejection_reason is null

)

select * from final
