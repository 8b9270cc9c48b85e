{% test sequential_from_zero(model, column_name, group_by) %}
{#- Fails for every group whose values are not exactly 0, 1, ..., n-1 (no gap, no
    repeat, no NULL, starting at 0). -#}

select
    {{ group_by }},
    count(*) as row_count,
    count(distinct {{ column_name }}) as distinct_values,
    min({{ column_name }}) as min_value,
    max({{ column_name }}) as max_value
from {{ model }}
group by {{ group_by }}
having
    count({{ column_name }}) <> count(*)
    or count(distinct {{ column_name }}) <> count(*)
    or min({{ column_name }}) <> 0
    or max({{ column_name }}) <> count(*) - 1

{% endtest %}
