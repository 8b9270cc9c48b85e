{% macro service_schema() -%}
    {#- The schema holding the microservice's own tables (listings, listing_images,
        listing_locations): the `service_schema` var, else the target's schema. The
        migration never creates, drops or alters anything in it; only
        `listings-migration publish` writes its rows. -#}
    {{- return(var('service_schema', none) or target.schema) -}}
{%- endmacro %}


{% macro migration_schema() -%}
    {#- The migration's own schema: staging and intermediate models, the build log
        and the publish ledger. -#}
    {{- return(target.schema ~ '_migration') -}}
{%- endmacro %}


{% macro service_columns(table_name) -%}
    {#- The columns of a service table, read from the target's catalog at run time:
        a list of dicts (name, type, not_null, max_length, precision, scale). -#}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set query -%}
        select
            attribute.attname as name,
            format_type(attribute.atttypid, attribute.atttypmod) as type,
            attribute.attnotnull as not_null,
            information.character_maximum_length as max_length,
            information.numeric_precision as numeric_precision,
            information.numeric_scale as numeric_scale,
            information.data_type as data_type
        from pg_catalog.pg_attribute as attribute
        inner join pg_catalog.pg_class as relation on attribute.attrelid = relation.oid
        inner join pg_catalog.pg_namespace as namespace on relation.relnamespace = namespace.oid
        inner join information_schema.columns as information
            on information.table_schema = namespace.nspname
            and information.table_name = relation.relname
            and information.column_name = attribute.attname
        where namespace.nspname = '{{ service_schema() }}'
            and relation.relname = '{{ table_name }}'
            and attribute.attnum > 0
            and not attribute.attisdropped
        order by attribute.attnum
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- if rows | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            "the microservice's table " ~ service_schema() ~ "." ~ table_name ~ " does not exist: its own "
            ~ "migrations create it before this project runs (for a local try, `listings-standin "
            ~ "--service` applies the stand-in); set the `service_schema` var if it lives elsewhere"
        ) }}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for row in rows -%}
        {%- do columns.append({
            'name': row['name'], 'type': row['type'], 'not_null': row['not_null'],
            'max_length': row['max_length'], 'precision': row['numeric_precision'],
            'scale': row['numeric_scale'], 'data_type': row['data_type']
        }) -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}


{% macro service_constraint_violations(table_name, values, reported_nulls=[]) -%}
    {#- An SQL expression (text[]) of every reason the microservice's table
        `table_name` would refuse a row whose carried columns have the SQL
        expressions in `values` (a dict: target column -> expression). The rules are
        read from the target's catalog when the model runs, not copied here:
        NOT NULL, varchar lengths, numeric precision, integer ranges, every CHECK
        constraint whose columns are all carried (others see the column's default),
        and foreign keys to tables other than the three the migration fills. Use as
        `cross join lateral ( ... ) as alias` and read `alias.violations`.
        `reported_nulls`: columns whose NULL the model already reports in its own
        words (no second reason for the same fact). -#}
    {%- set columns = service_columns(table_name) -%}
    {%- set carried = [] -%}
    {%- set reasons = [] -%}
    {%- for column in columns if column.name in values -%}
        {%- do carried.append(column.name) -%}
        {%- set label = table_name ~ '.' ~ column.name -%}
        {%- if column.not_null and column.name not in reported_nulls -%}
            {%- do reasons.append("case when " ~ adapter.quote(column.name) ~ " is null then '" ~ label ~ ": NOT NULL' end") -%}
        {%- endif -%}
        {%- if column.max_length -%}
            {%- do reasons.append("case when char_length(" ~ adapter.quote(column.name) ~ "::text) > " ~ column.max_length
                ~ " then '" ~ label ~ ": longer than " ~ column.type ~ "' end") -%}
        {%- endif -%}
        {%- if column.data_type == 'numeric' and column.precision is not none -%}
            {%- set limit = 10 ** (column.precision - column.scale) -%}
            {%- do reasons.append("case when " ~ adapter.quote(column.name) ~ "::numeric <> 'NaN' and abs(round("
                ~ adapter.quote(column.name) ~ "::numeric, " ~ column.scale ~ ")) >= "
                ~ limit ~ " then '" ~ label ~ ": does not fit " ~ column.type ~ "' end") -%}
        {%- endif -%}
        {%- if column.data_type in ('integer', 'smallint') -%}
            {%- set bound = 2147483647 if column.data_type == 'integer' else 32767 -%}
            {%- do reasons.append("case when " ~ adapter.quote(column.name) ~ "::numeric not between " ~ (-bound - 1) ~ " and " ~ bound
                ~ " then '" ~ label ~ ": does not fit " ~ column.type ~ "' end") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if execute -%}
        {%- set query -%}
            select
                constraint_.conname as name,
                constraint_.contype as kind,
                pg_get_constraintdef(constraint_.oid) as definition,
                (
                    select string_agg(attribute.attname::text, ',' order by key.position)
                    from unnest(constraint_.conkey) with ordinality as key (attnum, position)
                    inner join pg_catalog.pg_attribute as attribute
                        on attribute.attrelid = constraint_.conrelid and attribute.attnum = key.attnum
                ) as columns,
                (
                    select string_agg(attribute.attname::text, ',' order by key.position)
                    from unnest(constraint_.confkey) with ordinality as key (attnum, position)
                    inner join pg_catalog.pg_attribute as attribute
                        on attribute.attrelid = constraint_.confrelid and attribute.attnum = key.attnum
                ) as referenced_columns,
                coalesce(constraint_.confrelid::regclass::text, '') as referenced_table,
                coalesce(referenced.relname::text, '') as referenced_name
            from pg_catalog.pg_constraint as constraint_
            left join pg_catalog.pg_class as referenced on constraint_.confrelid = referenced.oid
            where constraint_.conrelid = '{{ adapter.quote(service_schema()) }}.{{ adapter.quote(table_name) }}'::regclass
                and constraint_.contype in ('c', 'f')
            order by constraint_.conname
        {%- endset -%}
        {%- for row in run_query(query).rows -%}
            {%- set names = (row['columns'] or '').split(',') -%}
            {%- set referenced_columns = (row['referenced_columns'] or '').split(',') -%}
            {%- set all_carried = names | reject('in', carried) | list | length == 0 -%}
            {%- if row['kind'] == 'c' and all_carried -%}
                {%- set expression = row['definition'] | replace(' NOT VALID', '') -%}
                {%- set expression = expression[6:] if expression.startswith('CHECK ') else expression -%}
                {%- do reasons.append("case when not coalesce(" ~ expression ~ ", true) then '"
                    ~ table_name ~ ": constraint " ~ row['name'] ~ "' end") -%}
            {%- elif row['kind'] == 'f' and all_carried
                and row['referenced_name'] not in ('listings', 'listing_images', 'listing_locations') -%}
                {%- set pairs = [] -%}
                {%- for i in range(names | length) -%}
                    {%- do pairs.append('referenced.' ~ adapter.quote(referenced_columns[i]) ~ ' = ' ~ adapter.quote(names[i])) -%}
                {%- endfor -%}
                {%- do reasons.append("case when " ~ adapter.quote(names[0]) ~ " is not null and not exists (select from "
                    ~ row['referenced_table'] ~ " as referenced where " ~ pairs | join(' and ') ~ ") then '"
                    ~ table_name ~ ": constraint " ~ row['name'] ~ "' end") -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select array_remove(array[
        null::text{% for reason in reasons %},
        {{ reason }}{% endfor %}
    ], null) as violations
    from (
        select
            {%- for name, expression in values.items() %}
            {{ expression }} as {{ adapter.quote(name) }}{{ "," if not loop.last }}
            {%- endfor %}
    ) as service_row
{%- endmacro %}
