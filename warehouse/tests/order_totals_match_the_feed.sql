-- The orders valued here (fct_orders, and its view order_full_information) equal the
-- service's own (the order_full_information feed): same orders, same prices at sale,
-- same totals, same names. Rows returned are failures.
-- Scoped to the orders this build wrote (each earlier build checked its own), with
-- the counts compared whole; a full refresh, or `--vars '{checks: all}'`, compares every
-- order.
{%- set every = orderlens.checks_every_row() %}
{%- set built = 'null' if every else orderlens.loaded_until() %}
with built as (
    select o.order_id, o.unit_price, o.quantity, o.total_price, p.product_name
    from {{ ref('fct_orders') }} o
    join {{ ref('stg_products') }} p on p.product_id = o.product_id
    {%- if built != 'null' %}
    where o._loaded_until = {{ built }}
    {%- endif %}
),
feed as (
    select f.*
    from {{ source('orderlens', 'order_full_information') }} f
    {%- if built != 'null' %}
    where f.order_id in (select order_id from built)
    {%- endif %}
)
select coalesce(m.order_id, f.order_id) as order_id
from built m
full outer join feed f on f.order_id = m.order_id
where f.order_id is null or m.order_id is null or f.total_price <> m.total_price
    or f.unit_price <> m.unit_price or f.quantity <> m.quantity
    or f.product_name <> m.product_name
union all
select -1
from (select count(*) as n from {{ ref('fct_orders') }}) o
cross join (
    select count(*) as n from {{ source('orderlens', 'order_full_information') }}
    where _loaded_at <= (select max(_loaded_until) from {{ ref('fct_orders') }})
) f
where o.n <> f.n
