{% macro build_log_relation() -%}
    {{- return(adapter.quote(migration_schema()) ~ '.dbt_builds') -}}
{%- endmacro %}


{% macro record_build_start() -%}
    {#- on-run-start: a row in <schema>_migration.dbt_builds for every dbt command that
        can change the staged tables, written before any of them is touched. A build
        killed midway leaves its row `running`, and `listings-migration publish`
        refuses to publish a staged result that no finished, passing, complete
        `dbt build` made. -#}
    {%- if execute -%}{%- do check_settings() -%}{%- endif -%}
    {%- if not execute or flags.WHICH not in ('build', 'run', 'seed', 'snapshot') -%}{{ return('') }}{%- endif -%}
    create schema if not exists {{ adapter.quote(migration_schema()) }};
    create table if not exists {{ build_log_relation() }} (
        invocation_id uuid primary key,
        command text not null,
        started_at timestamptz not null default clock_timestamp(),
        finished_at timestamptz,
        status text not null,
        is_complete_selection boolean,
        nodes_run integer,
        nodes_failed integer,
        failures text,
        target_schema text not null,
        service_schema text not null,
        staged_schema text not null,
        settings jsonb not null
    );
    insert into {{ build_log_relation() }}
        (invocation_id, command, status, target_schema, service_schema, staged_schema, settings)
    values (
        '{{ invocation_id }}',
        '{{ flags.WHICH }}',
        'running',
        '{{ target.schema }}',
        '{{ service_schema() }}',
        '{{ staged_schema() }}',
        '{{ tojson(build_settings()) }}'::jsonb
    );
    commit;
{%- endmacro %}


{% macro record_build_end(results) -%}
    {#- on-run-end: the build's outcome. `is_complete_selection`: every model, seed
        and data test of the project ran (no --select / --exclude). -#}
    {%- if not execute or flags.WHICH not in ('build', 'run', 'seed', 'snapshot') -%}{{ return('') }}{%- endif -%}
    {%- set failed = [] -%}
    {%- set ran = [] -%}
    {%- for result in results -%}
        {%- do ran.append(result.node.unique_id) -%}
        {%- if result.status not in ('success', 'pass', 'warn', 'no-op') -%}
            {%- do failed.append(result.node.name ~ ' (' ~ result.status ~ ')') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set missing = [] -%}
    {%- for node in graph.nodes.values()
        if node.resource_type in ('model', 'seed', 'test') and node.config.enabled and node.unique_id not in ran -%}
        {%- do missing.append(node.unique_id) -%}
    {%- endfor -%}
    update {{ build_log_relation() }}
    set finished_at = clock_timestamp(),
        status = '{{ "passed" if failed | length == 0 else "failed" }}',
        is_complete_selection = {{ "true" if missing | length == 0 else "false" }},
        nodes_run = {{ ran | length }},
        nodes_failed = {{ failed | length }},
        failures = nullif('{{ failed[:20] | join("; ") | replace("'", "''") }}', '')
    where invocation_id = '{{ invocation_id }}';
    commit;
{%- endmacro %}


{% macro staged_schema() -%}
    {#- Where `dbt build` leaves the tested result for `listings-migration publish`. -#}
    {{- return(target.schema ~ '_staged') -}}
{%- endmacro %}


{% macro build_settings() -%}
    {#- The settings a publish must agree with, recorded with each build. -#}
    {{- return({
        'b2c_id_offset': var('b2c_id_offset') | int,
        'listing_uuid_namespace': var('listing_uuid_namespace'),
        'monolith_time_zone': monolith_time_zone(),
        'soft_delete_column': var('soft_delete_column', none),
        'soft_delete_time_column': var('soft_delete_time_column', none),
        'search_schema': target.schema ~ '_search',
    }) -}}
{%- endmacro %}
