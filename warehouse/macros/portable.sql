{# Exact arithmetic that builds the same on DuckDB, PostgreSQL and BigQuery. Money is
   decimal everywhere; a ratio of money is taken in whole cents with integer division
   (DuckDB divides decimals as doubles), rounded half away from zero like the API. #}

{% macro big_int() %}{{ return(adapter.dispatch('big_int', 'orderlens')()) }}{% endmacro %}
{% macro default__big_int() %}numeric(38, 0){% endmacro %}
{% macro duckdb__big_int() %}hugeint{% endmacro %}
{% macro bigquery__big_int() %}bignumeric{% endmacro %}

{% macro money_type() %}{{ return(adapter.dispatch('money_type', 'orderlens')()) }}{% endmacro %}
{% macro default__money_type() %}decimal(18, 2){% endmacro %}
{% macro bigquery__money_type() %}numeric(18, 2){% endmacro %}

{% macro int_div(a, b) %}{{ return(adapter.dispatch('int_div', 'orderlens')(a, b)) }}{% endmacro %}
{% macro default__int_div(a, b) %}div({{ a }}, {{ b }}){% endmacro %}
{% macro duckdb__int_div(a, b) %}(({{ a }}) // ({{ b }})){% endmacro %}

{# round(numerator / denominator) for numerator >= 0, denominator > 0, half away from zero #}
{% macro rounded_ratio(numerator, denominator) -%}
{{ orderlens.int_div('2 * (' ~ numerator ~ ') + (' ~ denominator ~ ')', '2 * (' ~ denominator ~ ')') }}
{%- endmacro %}

{# An amount with 2 decimals as whole cents, exactly. #}
{% macro to_cents(amount) %}cast(({{ amount }}) * 100 as {{ orderlens.big_int() }}){% endmacro %}

{# Whole cents back to a 2-decimal amount, exactly. #}
{% macro from_cents(cents) -%}
cast(cast({{ cents }} as decimal(38, 0)) * 0.01 as {{ orderlens.money_type() }})
{%- endmacro %}

{# An amount times the FX rate, rounded once to cents (the API's USD figures). #}
{% macro to_usd(amount_brl, rate) -%}
cast(round(cast({{ amount_brl }} as {{ orderlens.money_type() }}) * {{ rate }}, 2) as {{ orderlens.money_type() }})
{%- endmacro %}

{# A 2-decimal amount as the CSV exports write it: "164.90". #}
{% macro money_text(amount) %}{{ return(adapter.dispatch('money_text', 'orderlens')(amount)) }}{% endmacro %}
{% macro default__money_text(amount) %}cast(cast({{ amount }} as {{ orderlens.money_type() }}) as {{ dbt.type_string() }}){% endmacro %}
{% macro bigquery__money_text(amount) %}format('%.2f', cast({{ amount }} as numeric)){% endmacro %}

{# Text as the CSV exports write it: a cell a spreadsheet would run as a formula gets a
   leading quote (OWASP), as app/kit/csv.py does. #}
{% macro csv_safe(text) -%}
case when substr({{ text }}, 1, 1) in ('=', '+', '-', '@', {{ orderlens.tab() }}, {{ orderlens.cr() }})
    then {{ dbt.concat(["''''", text]) }} else {{ text }} end
{%- endmacro %}
{% macro tab() %}{{ return(adapter.dispatch('tab', 'orderlens')()) }}{% endmacro %}
{% macro default__tab() %}chr(9){% endmacro %}
{% macro bigquery__tab() %}'\t'{% endmacro %}
{% macro cr() %}{{ return(adapter.dispatch('cr', 'orderlens')()) }}{% endmacro %}
{% macro default__cr() %}chr(13){% endmacro %}
{% macro bigquery__cr() %}'\r'{% endmacro %}

{# 0 … 99 999 (273 years of days), from cross-joined digits: a portable series. #}
{% macro numbers() %}
    select d0.n + 10 * d1.n + 100 * d2.n + 1000 * d3.n + 10000 * d4.n as n
    from {{ ref('digits') }} d0
    cross join {{ ref('digits') }} d1
    cross join {{ ref('digits') }} d2
    cross join {{ ref('digits') }} d3
    cross join {{ ref('digits') }} d4
{% endmacro %}

{# Day of the week, 0 = Sunday … 6 = Saturday. #}
{% macro weekday(day) %}{{ return(adapter.dispatch('weekday', 'orderlens')(day)) }}{% endmacro %}
{% macro default__weekday(day) %}cast(extract(dow from {{ day }}) as integer){% endmacro %}
{% macro bigquery__weekday(day) %}(extract(dayofweek from {{ day }}) - 1){% endmacro %}
