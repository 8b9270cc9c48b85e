{% macro listing_id(source_type, source_id) -%}
    {#- Target id (bigint) of a monolith row or image: C2C ids are kept, B2C ids are
        shifted by the `b2c_id_offset` var. The monolith's ids are `integer`, so with
        an offset of at least 2^32 the two sides can never meet, whatever their sign
        or size: no real monolith id is ever refused for its value. -#}
    {%- if var('b2c_id_offset') | int < 4294967296 -%}
        {{ exceptions.raise_compiler_error(
            "b2c_id_offset must be at least 4294967296 (2^32) so that B2C ids (integer + offset) never meet "
            ~ "C2C ids (any integer); got " ~ var('b2c_id_offset')) }}
    {%- endif -%}
    case
        when {{ source_type }} = 'c2c' then {{ source_id }}::bigint
        else {{ source_id }}::bigint + {{ var('b2c_id_offset') | int }}
    end
{%- endmacro %}


{% macro is_blank(text) -%}
    {#- True when `text` is NULL or holds only whitespace, Unicode spaces included
        (no-break, em, ideographic, zero-width, BOM, ...): PostgreSQL's [:space:]
        class misses those in UTF-8 databases. -#}
    (coalesce({{ text }}, '') !~ '[^[:space:]\u00a0\u1680\u180e\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]')
{%- endmacro %}


{% macro uuid_v3_digest(name) -%}
    {#- MD5 of the `listing_uuid_namespace` var's bytes followed by `name` in UTF-8:
        the hash an RFC 4122 version 3 UUID is made of. Pair with uuid_v3_from_digest. -#}
    md5(
        decode('{{ var("listing_uuid_namespace") | replace("-", "") }}', 'hex')
        || convert_to({{ name }}, 'UTF8')
    )
{%- endmacro %}


{% macro uuid_v3_from_digest(digest) -%}
    {#- Stamps the version (3) and RFC 4122 variant bits onto an MD5 hex digest. The
        result equals Python's uuid.uuid3(namespace, name): the same source row gets
        the same UUID on every run. -#}
    (
        substr({{ digest }}, 1, 12)
        || '3'
        || substr({{ digest }}, 14, 3)
        || substr('89ab89ab89ab89ab', ('x' || substr({{ digest }}, 17, 1))::bit(4)::integer + 1, 1)
        || substr({{ digest }}, 18)
    )::uuid
{%- endmacro %}


{% macro to_instant(column, source_type) -%}
    {#- A monolith `timestamp` as the instant it names (timestamptz). C2C columns are
        wall-clock times in the monolith's zone (the `monolith_time_zone` var); B2C
        columns are timestamptz that the view casts to timestamp in the reading
        session's zone, which every model pins to UTC. -#}
    case
        when {{ source_type }} = 'c2c' then {{ column }} at time zone '{{ monolith_time_zone() | replace("'", "''") }}'
        else {{ column }} at time zone 'UTC'
    end
{%- endmacro %}


{% macro is_publishable_instant(column) -%}
    {#- Finite and within years 1-9999 (UTC), so that every consumer (the service,
        ISO 8601 documents, OpenSearch dates) reads the same instant. -#}
    ({{ column }} >= '0001-01-01 00:00:00+00' and {{ column }} < '10000-01-01 00:00:00+00')
{%- endmacro %}


{% macro monolith_time_zone() -%}
    {#- The zone of the monolith's C2C wall-clock times: the `monolith_time_zone` var,
        else $MONOLITH_TIME_ZONE, else UTC. -#}
    {{- return(var('monolith_time_zone', env_var('MONOLITH_TIME_ZONE', 'UTC'))) -}}
{%- endmacro %}
