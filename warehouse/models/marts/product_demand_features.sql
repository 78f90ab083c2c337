{{ config(materialized='view') }}
-- The assessment's demand features: per product and calendar day (first to last order
-- date of all orders), the units sold (0 on days without sales), lags, trailing moving
-- averages (of the days before, so a model trained on them never sees its own day),
-- and calendar flags.
-- A view of the cells (product_daily_sales): nothing to write at each build, half a
-- second to read at 10M orders.
with grid as (
    select p.product_id, p.product_code, c.day
    from {{ ref('stg_products') }} p
    cross join {{ ref('calendar') }} c
    where p.product_id in (select product_id from {{ ref('product_daily_sales') }})
),
daily as (
    select g.product_id, g.product_code, g.day, coalesce(s.quantity, 0) as quantity
    from grid g
    left join {{ ref('product_daily_sales') }} s
        on s.product_id = g.product_id and s.created_date = g.day
)
select
    product_id,
    day as {{ adapter.quote('date') }},
    quantity,
    lag(quantity, 1) over w as quantity_lag_1,
    lag(quantity, 7) over w as quantity_lag_7,
    lag(quantity, 14) over w as quantity_lag_14,
    avg(cast(quantity as {{ dbt.type_numeric() }})) over (w rows between 7 preceding and 1 preceding)
        as quantity_ma_7,
    avg(cast(quantity as {{ dbt.type_numeric() }})) over (w rows between 28 preceding and 1 preceding)
        as quantity_ma_28,
    {{ dbt.date_trunc('month', 'day') }} as month_start,
    extract(month from day) as month,
    extract(day from day) as day_of_month,
    case when {{ orderlens.weekday('day') }} in (0, 6) then true else false end as is_weekend,
    {{ orderlens.weekday('day') }} as day_of_week,
    product_code
from daily
window w as (partition by product_id order by day)
