{{ config(
    materialized='incremental',
    unique_key='order_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['product_id', 'created_date']}] if target.type == 'postgres' else [],
) }}
-- depends_on: {{ ref('stg_product_prices') }}
-- One row per order at the price it was sold at: the unit price it was charged, else its
-- product's price in effect on its date (dim_product_prices); total = quantity × that,
-- exact, as the service values orders. The codes: the ids as the files wrote them, when
-- they were text (null for integer ids).
--
-- The index (PostgreSQL only: DuckDB scans, and an index there only slows the writes) is
-- what product_daily_sales finds a cell's orders by.
--
-- Incremental: a build takes the orders that syncs loaded since the last one, and every
-- order of a product whose prices changed since (a new price ends the one before it, so
-- orders already built may now fall in another range). `_loaded_until` is the newest
-- completed sync a row reflects; `previous_product_id` and `previous_created_date` are
-- where the row was before this build, so product_daily_sales can take it out of that
-- cell.
{%- set until = orderlens.loaded_until() -%}
{%- set built = orderlens.newest(this, '_loaded_until') if is_incremental() else 'null' -%}
{%- set repriced = false -%}
{%- if built != 'null' and execute -%}
    {%- set query -%}
    select count(*) from {{ ref('stg_product_prices') }}
    where _loaded_at > {{ built }} and _loaded_at <= {{ until }}
    {%- endset -%}
    {%- set repriced = run_query(query).columns[0].values()[0] > 0 -%}
{%- endif %}
with changed as (
    select o.*
    from {{ ref('stg_orders') }} o
    where o._loaded_at <= {{ until }}
    {%- if built != 'null' %}
        and (
            o._loaded_at > {{ built }}
            {%- if repriced %}
            or o.product_id in (
                select product_id from {{ ref('stg_product_prices') }}
                where _loaded_at > {{ built }} and _loaded_at <= {{ until }}
            )
            {%- endif %}
        )
    {%- endif %}
),
priced as (
    select
        o.order_id,
        o.product_id,
        o.order_code,
        o.product_code,
        o.created_date,
        o.quantity,
        coalesce(o.unit_price, d.price) as unit_price,
        case when o.unit_price is null then true else false end as at_list_price
    from changed o
    left join {{ ref('dim_product_prices') }} d
        on d.product_id = o.product_id
        and (d.applies_from is null or o.created_date >= d.applies_from)
        and (d.valid_to is null or o.created_date < d.valid_to)
)
select
    p.order_id,
    p.product_id,
    p.created_date,
    p.quantity,
    p.unit_price,
    p.at_list_price,
    cast(p.quantity * p.unit_price as decimal(22, 2)) as total_price,
    p.order_code,
    p.product_code,
    cast({{ until }} as {{ orderlens.timestamptz() }}) as _loaded_until,
{% if is_incremental() %}
    before.product_id as previous_product_id,
    before.created_date as previous_created_date
from priced p
left join {{ this }} before on before.order_id = p.order_id
{% else %}
    cast(null as {{ dbt.type_bigint() }}) as previous_product_id,
    cast(null as date) as previous_created_date
from priced p
{% endif %}
