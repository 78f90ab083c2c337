{{ config(materialized='view') }}
-- The assessment's merged file, column for column (GET /exports/order_full_information.csv):
-- totals are quantity × the price each order was sold at, in BRL. `order_id` stays the
-- integer key (the file's rows are in its order; the other models join on it);
-- `order_code` is the line's id as its file wrote it when that was text: the file's
-- order_id cell is coalesce(order_code, order_id). A view: a product renamed shows its
-- new name on every order, as in the service, with nothing to rebuild.
select
    o.created_date as order_created_date,
    o.order_id,
    p.product_name,
    o.quantity,
    o.total_price,
    o.order_code
from {{ ref('fct_orders') }} o
join {{ ref('stg_products') }} p on p.product_id = o.product_id
