-- One row per monolith listing (C2C) or product (B2C), renamed and cast.
-- `needs_reindex`, `address_multilingual` and `original_language` stop here:
-- the microservice does not carry them.

with

source as (

    select * from {{ source('monolith', 'unified_listings') }}

),

renamed as (

    select
        -- ids
        id as source_id,
        source_type::varchar(10) as source_type,
        user_id,
        category_id,
        storefront_id,
        external_id,

        -- strings
        title,
        description,
        condition,
        status as source_status,
        metadata ->> 'currency' as source_currency,
        address_city as city,
        address_country as country,
        location,

        -- numerics
        price,
        latitude,
        longitude,
        views_count,

        -- booleans
        show_on_map,

        -- timestamps (UTC)
        created_at,
        updated_at,

        -- nested
        images

    from source

)

select * from renamed
