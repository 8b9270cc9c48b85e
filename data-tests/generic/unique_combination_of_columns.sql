{% test unique_combination_of_columns(model, combination) %}
{#- Fails for every combination of the given columns that occurs more than once. -#}

select
    {{ combination | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ combination | join(', ') }}
having count(*) > 1

{% endtest %}
