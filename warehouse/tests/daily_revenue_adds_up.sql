-- Daily revenue adds up to the orders' totals, and its days to the orders.
select 1
from (select sum(revenue_brl) as revenue, sum(orders) as orders from {{ ref('daily_revenue') }}) d
cross join (
    select sum(total_price) as revenue, count(*) as orders from {{ ref('order_full_information') }}
) o
where d.revenue <> o.revenue or d.orders <> o.orders
