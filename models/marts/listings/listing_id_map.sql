-- Crosswalk from every migrated listing to the monolith row it came from.

with

validated as (

    select * from {{ ref('int_listings_service_checked') }}

),

final as (

    select
        -- ids
        listing_id,
        listing_uuid,
        source_type::varchar(10) as source_type,
        source_id::integer as source_id,

        -- strings
        source_status::varchar(20) as source_status

    from validated
    where rejection_reason is null

)

select * from final
