{# The model's grain: no two rows share these columns' values. Rows returned are the
   values that repeat. #}
{% test unique_grain(model, columns) %}
{%- set quoted = [] -%}
{%- for column in columns %}{% do quoted.append(adapter.quote(column)) %}{% endfor -%}
select {{ quoted | join(', ') }}, count(*) as n
from {{ model }}
group by {{ quoted | join(', ') }}
having count(*) > 1
{% endtest %}
