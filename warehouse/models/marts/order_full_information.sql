-- The assessment's merged file, column for column (GET /exports/order_full_information.csv):
-- totals are quantity × the price each order was sold at, in BRL.
select
    o.created_date as order_created_date,
    o.order_id,
    p.product_name,
    o.quantity,
    o.total_price
from {{ ref('fct_orders') }} o
join {{ ref('stg_products') }} p on p.product_id = o.product_id
