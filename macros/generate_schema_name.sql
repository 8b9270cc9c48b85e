{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- dbt's own schema naming (`<target schema>_<custom>`, e.g. public_staged), after
        check_settings: dbt resolves every node's schema while it parses, and creates the
        schemas before any on-run-start hook runs, so this is where a target schema or
        var that could break out of its quotes is first refused. (record_build_start
        checks again, for what a partial parse does not re-render.) -#}
    {%- do check_settings() -%}
    {{- default__generate_schema_name(custom_schema_name, node) -}}
{%- endmacro %}
