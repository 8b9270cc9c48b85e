{% test not_blank(model, column_name) %}
{#- Fails for every row whose text column is NULL, empty or only whitespace (Unicode spaces included). -#}

select {{ column_name }}
from {{ model }}
where {{ is_blank(column_name) }}

{% endtest %}
