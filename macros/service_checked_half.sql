{% macro service_checked_half(parity) -%}
    {#- One half of int_listings_validated (rows whose source id is even or odd),
        checked against the microservice's own tables: what they would refuse is
        added to the migration's own reasons. The parity filter reaches the source view's base tables; the
        `offset 0` keeps the half's rows from being flattened into this query, so
        each value the constraints read is computed once, not once per reference. -#}
with

validated as (

    select * from {{ ref('int_listings_validated') }}
    where mod(source_id, 2) {{ '=' if parity == 'even' else '<>' }} 0
    offset 0

),

checked as (

    select
        validated.*,
        nullif(array_to_string(
            array_remove(array[validated.rule_rejection_reason], null)
            || service_listing.violations
            || service_location.violations,
            '; '
        ), '') as rejection_reason
    from validated
    -- The microservice's own constraints, read from its catalog (macros/service_tables.sql).
    cross join lateral (  -- noqa: ST05
        {{ service_constraint_violations('listings', {
            'id': 'validated.listing_id',
            'uuid': 'validated.listing_uuid',
            'source_type': 'validated.source_type',
            'user_id': 'validated.user_id',
            'category_id': 'validated.category_id',
            'title': 'validated.title',
            'description': 'validated.description',
            'price': "case when validated.price not in ('NaN', 'Infinity', '-Infinity') then validated.price end",
            'currency': 'validated.currency',
            'condition': 'validated.condition',
            'status': 'validated.status',
            'visibility': 'validated.visibility',
            'city': 'validated.city',
            'country': 'validated.country',
            'views_count': 'validated.views_count',
            'storefront_id': 'validated.storefront_id',
            'external_id': 'validated.external_id',
            'created_at': 'validated.created_at',
            'updated_at': 'validated.updated_at',
        }, reported_nulls=['title', 'user_id', 'price', 'created_at', 'updated_at']) }}
    ) as service_listing
    cross join lateral (  -- noqa: ST05
        {{ service_constraint_violations('listing_locations', {
            'listing_id': 'validated.listing_id',
            'location': 'validated.location',
            'latitude': 'validated.checked_latitude',
            'longitude': 'validated.checked_longitude',
            'show_on_map': 'validated.checked_show_on_map',
        }) }}
    ) as service_location

)

select * from checked
{%- endmacro %}
