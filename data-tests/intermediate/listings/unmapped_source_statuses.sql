-- Source statuses that listing_status_map does not know: they were given the
-- fallback status. Warns (the rows still migrate); add them to the seed.
{{ config(severity='warn') }}

select
    source_status,
    count(*) as listings
from {{ ref('int_listings_service_checked') }}
where is_status_unmapped
group by source_status
