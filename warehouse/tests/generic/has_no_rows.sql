{# The model holds no row: each row it holds is a failure. #}
{% test has_no_rows(model) %}
select * from {{ model }}
{% endtest %}
