{% macro listing_id(source_type, source_id) -%}
    {#- Target id of a monolith row: C2C ids are kept, B2C ids are shifted by the
        `b2c_id_offset` var so that the two sides can never collide. -#}
    case
        when {{ source_type }} = 'c2c' then {{ source_id }}::bigint
        else {{ source_id }}::bigint + {{ var('b2c_id_offset') }}
    end
{%- endmacro %}


{% macro id_fits_policy(source_type, source_id) -%}
    {#- True when the id policy maps this row to a unique 32-bit target id. -#}
    (
        {{ source_id }} > 0
        and case
            when {{ source_type }} = 'c2c' then {{ source_id }} < {{ var('b2c_id_offset') }}
            else {{ source_id }}::bigint + {{ var('b2c_id_offset') }} <= 2147483647
        end
    )
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
