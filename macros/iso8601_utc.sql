{% macro iso8601_utc(column) -%}
    {#- A `timestamp` (UTC, without time zone) as an ISO 8601 string with its zone:
        2025-10-31T15:00:00.123456Z. Microseconds are kept, so the document holds the
        same instant as the database to the microsecond. -#}
    to_char({{ column }}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
{%- endmacro %}
