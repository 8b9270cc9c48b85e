-- The microservice's listings as search serves them: every listing the service
-- holds (published by the migration or written by the service itself), without
-- those the service marked deleted (the `soft_delete_column` var, if set).

with

source as (

    select * from {{ source('microservice', 'listings') }}

),

final as (

    select
        -- ids
        id as listing_id,
        uuid as listing_uuid,
        source_type,
        user_id,
        category_id,
        storefront_id,
        external_id,

        -- strings
        title,
        description,
        currency,
        condition,
        status,
        visibility,
        city,
        country,

        -- numerics
        price,
        views_count,

        -- timestamps
        created_at,
        updated_at

    from source
    {%- if var('soft_delete_column', none) %}
    where not coalesce({{ adapter.quote(var('soft_delete_column')) }}, false)
    {%- endif %}

)

select * from final
