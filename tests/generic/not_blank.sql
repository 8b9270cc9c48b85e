{% test not_blank(model, column_name) %}
{#- Fails for every row whose text column is NULL, empty or only whitespace. -#}

select {{ column_name }}
from {{ model }}
where coalesce({{ column_name }}, '') !~ '[^[:space:]]'

{% endtest %}
