{% test exactly_one_true(model, column_name, group_by) %}
{#- Fails for every group that has no row, or more than one row, where the
    boolean column is true. -#}

select
    {{ group_by }},
    count(*) filter (where {{ column_name }}) as true_rows
from {{ model }}
group by {{ group_by }}
having count(*) filter (where {{ column_name }}) <> 1

{% endtest %}
