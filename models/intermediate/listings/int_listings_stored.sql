-- int_listings_validated as stored by its two halves: what every mart reads.

with

even_ids as (

    select * from {{ ref('int_listings_validated_even') }}

),

odd_ids as (

    select * from {{ ref('int_listings_validated_odd') }}

),

final as (

    select * from even_ids
    union all
    select * from odd_ids

)

select * from final
