-- The raw tables holding rows of a sync that did not complete: a row's `_loaded_at` (its
-- sync's start) after the newest completed sync's end (macros/loads.sql). Its test
-- (has_no_rows) gates every staging model.
{%- set until = orderlens.loaded_until() %}
{%- set tables = ['orders', 'products', 'product_prices', 'order_full_information',
                  'rejects', 'fx_rates'] %}
{%- for table in tables %}
select '{{ table }}' as raw_table, count(*) as rows_beyond
from {{ source('orderlens', table) }}
where {{ until }} is null or _loaded_at > {{ until }}
having count(*) > 0
{%- if not loop.last %}
union all
{%- endif %}
{%- endfor %}
