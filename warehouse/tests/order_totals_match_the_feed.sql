-- The merged view built here equals the service's own (the order_full_information feed):
-- same orders, same prices at sale, same totals. Rows returned are failures.
select coalesce(m.order_id, f.order_id) as order_id
from {{ ref('order_full_information') }} m
join {{ ref('fct_orders') }} o on o.order_id = m.order_id
full outer join {{ source('orderlens', 'order_full_information') }} f
    on f.order_id = m.order_id
where f.order_id is null or m.order_id is null or f.total_price <> m.total_price
    or f.unit_price <> o.unit_price or f.quantity <> m.quantity
    or f.product_name <> m.product_name
