-- Every monolith row once, with the migration's decisions (int_listings_validated)
-- and what the microservice's own tables would refuse: the union of the two
-- parallel reads of the source, int_listings_service_checked_even_ids and _odd_ids.
-- What every mart reads.

with

even_ids as (

    select * from {{ ref('int_listings_service_checked_even_ids') }}

),

odd_ids as (

    select * from {{ ref('int_listings_service_checked_odd_ids') }}

),

final as (

    select * from even_ids
    union all
    select * from odd_ids

)

select * from final
