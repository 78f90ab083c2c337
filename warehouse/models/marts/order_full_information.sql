-- The assessment's merged file, column for column (GET /exports/order_full_information.csv):
-- totals are quantity × the product's current price, in BRL.
select
    o.created_date as order_created_date,
    o.order_id,
    p.product_name,
    o.quantity,
    cast(o.quantity * p.price as decimal(22, 2)) as total_price
from {{ ref('stg_orders') }} o
join {{ ref('stg_products') }} p on p.product_id = o.product_id
