{{ config(materialized='ephemeral') }}
-- Units, orders and revenue per product and day (the service's product_daily_sales).
select
    o.product_id,
    o.created_date,
    count(*) as orders,
    sum(o.quantity) as quantity,
    sum(o.quantity * p.price) as revenue_brl
from {{ ref('stg_orders') }} o
join {{ ref('stg_products') }} p on p.product_id = o.product_id
group by o.product_id, o.created_date
