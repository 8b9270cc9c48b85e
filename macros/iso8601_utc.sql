{% macro iso8601_utc(column) -%}
    {#- A `timestamptz` as an ISO 8601 string in UTC: 2025-10-31T15:00:00.123456Z.
        Microseconds are kept, so the document holds the same instant as the
        database to the microsecond. -#}
    to_char({{ column }} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
{%- endmacro %}
