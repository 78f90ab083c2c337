{{ config(
    materialized='incremental',
    unique_key=['product_id', 'created_date'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook="delete from {{ this }} where orders = 0",
) }}
-- Units, orders and revenue per product and day (the service's product_daily_sales), each
-- order at the price it was sold at: the cells every other mart sums, so that none of
-- them reads the orders again. Typed as the marts' amounts (bigint counts, decimal(18, 2)
-- money: a cell over 10^16 BRL fails the build, it is not rounded): DuckDB sums these six
-- to thirty times faster than the 38-digit types a sum would give.
--
-- Incremental: a build sums again the cells the last fct_orders build touched, where
-- each changed order is now and where it was before; a cell left with no order is
-- deleted (post-hook).
{%- set built = orderlens.newest(this, '_loaded_until') if is_incremental() else 'null' -%}
{% if built != 'null' %}
with moved as (
    select f.product_id, f.created_date, f.previous_product_id, f.previous_created_date
    from {{ ref('fct_orders') }} f
    where f._loaded_until > {{ built }}
),
touched as (
    select product_id, created_date from moved
    union
    select previous_product_id, previous_created_date from moved
    where previous_product_id is not null
)
select
    t.product_id,
    t.created_date,
    cast(count(f.order_id) as {{ dbt.type_bigint() }}) as orders,
    cast(coalesce(sum(f.quantity), 0) as {{ dbt.type_bigint() }}) as quantity,
    cast(coalesce(sum(f.total_price), 0) as {{ orderlens.money_type() }}) as revenue_brl,
    max(f._loaded_until) as _loaded_until
from touched t
left join {{ ref('fct_orders') }} f
    on f.product_id = t.product_id and f.created_date = t.created_date
group by t.product_id, t.created_date
{% else %}
select
    product_id,
    created_date,
    cast(count(*) as {{ dbt.type_bigint() }}) as orders,
    cast(sum(quantity) as {{ dbt.type_bigint() }}) as quantity,
    cast(sum(total_price) as {{ orderlens.money_type() }}) as revenue_brl,
    max(_loaded_until) as _loaded_until
from {{ ref('fct_orders') }}
group by product_id, created_date
{% endif %}
