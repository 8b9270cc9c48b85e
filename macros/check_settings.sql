{% macro check_settings() -%}
    {#- on-run-start (from record_build_start): the vars and schema names that reach SQL
        text, checked before anything runs. dbt quotes identifiers without escaping a
        double quote, and the text vars are written into the SQL as literals, so a value
        that could break out of its quotes is refused, as is a schema name that
        PostgreSQL would truncate (63 bytes) once the migration's suffixes are added. -#}
    {%- set re = modules.re -%}
    {%- set problems = [] -%}
    {%- set schemas = {
        'target schema': target.schema,
        'service_schema': service_schema(),
        'monolith_schema': var('monolith_schema', env_var('MONOLITH_SCHEMA', 'monolith')),
    } -%}
    {%- for label, name in schemas.items() -%}
        {%- set name = name | string -%}
        {%- if name | length == 0 or name | length > 63 or '"' in name or "'" in name or '\\' in name or re.search('[\\x00-\\x1f]', name) -%}
            {%- do problems.append(label ~ ' ' ~ name[:70] ~ ' (1 to 63 characters, no quote, backslash or control character)') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if (target.schema ~ '_migration') | length > 63 -%}
        {%- do problems.append('target schema ' ~ target.schema ~ ' is too long for its _migration, _staged and _search schemas (at most 53 characters)') -%}
    {%- endif -%}
    {%- for name in ('soft_delete_column', 'soft_delete_time_column') if var(name, none) is not none -%}
        {%- if not re.fullmatch('[a-z_][a-z0-9_]{0,62}', var(name) | string) -%}
            {%- do problems.append(name ~ ' ' ~ (var(name) | string)[:70] ~ ' (a lower-case column name)') -%}
        {%- endif -%}
    {%- endfor -%}
    {#- dbt writes grantees into its GRANT statements unquoted -#}
    {%- set readers = var('search_readers', []) -%}
    {%- if readers is string or readers is not iterable -%}
        {%- do problems.append('search_readers ' ~ (readers | string)[:70] ~ ' (a list of role names)') -%}
    {%- else -%}
        {%- for role in readers if not re.fullmatch('[a-z_][a-z0-9_]{0,62}', role | string) -%}
            {%- do problems.append('search_readers role ' ~ (role | string)[:70] ~ ' (a lower-case role name)') -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set literals = {
        'default_currency': '[A-Z]{3}',
        'default_visibility': '[a-z][a-z_]{0,30}',
        'fallback_status': '[a-z][a-z_]{0,30}',
        'listing_uuid_namespace': '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}',
        'document_test_sample_modulus': '[1-9][0-9]{0,8}',
    } -%}
    {%- for name, pattern in literals.items() -%}
        {%- set value = var(name, 10 if name == 'document_test_sample_modulus' else none) | string -%}
        {%- if not re.fullmatch(pattern, value) -%}
            {%- do problems.append(name ~ ' ' ~ value[:70] ~ ' (must match ' ~ pattern ~ ')') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if problems -%}
        {{ exceptions.raise_compiler_error('invalid settings: ' ~ problems | join('; ')) }}
    {%- endif -%}
{%- endmacro %}
