-- GET /exports/kpi_product_orders.csv, row for row: kpi_name, value (text as the file
-- writes it). The busiest day by orders (ties: earliest); the product with the most
-- units (ties: lowest id) and its sales (each order at the price it was sold at) in USD at
-- the latest rate; the three categories with the most units (ties: name ascending).
with busiest as (
    select created_date, row_number() over (order by sum(orders) desc, created_date) as rank_
    from {{ ref('product_daily_sales') }}
    group by created_date
),
units as (
    select product_id, sum(quantity) as quantity, sum(revenue_brl) as sales_brl
    from {{ ref('product_daily_sales') }}
    group by product_id
),
demanded as (
    select
        p.product_name,
        u.sales_brl,
        row_number() over (order by u.quantity desc, u.product_id) as rank_
    from units u
    join {{ ref('stg_products') }} p on p.product_id = u.product_id
),
categories as (
    select
        p.category,
        row_number() over (order by sum(u.quantity) desc, p.category) as rank_
    from units u
    join {{ ref('stg_products') }} p on p.product_id = u.product_id
    group by p.category
),
top_categories as (
    select {{ dbt.listagg('category', "' > '", 'order by rank_') }} as value
    from categories
    where rank_ <= 3
)
select 1 as position, 'max_order_date' as kpi_name,
    {{ dbt.cast('created_date', dbt.type_string()) }} as value
from busiest where rank_ = 1
union all
select 2, 'most_demanded_product', {{ orderlens.csv_safe('product_name') }}
from demanded where rank_ = 1
union all
select 3, 'most_demanded_product_sales',
    {{ orderlens.money_text(orderlens.to_usd('d.sales_brl', 'r.rate')) }}
from demanded d cross join {{ ref('fx_latest_rate') }} r where d.rank_ = 1
union all
select 4, 'top_categories', {{ orderlens.csv_safe('value') }}
from top_categories
