{{ config(materialized='ephemeral') }}
-- Units, orders and revenue per product and day (the service's product_daily_sales), each
-- order at the price it was sold at.
select
    product_id,
    created_date,
    count(*) as orders,
    sum(quantity) as quantity,
    sum(total_price) as revenue_brl
from {{ ref('fct_orders') }}
group by product_id, created_date
