-- One row per order at the price it was sold at: the unit price it was charged, else its
-- product's price in effect on its date (dim_product_prices); total = quantity × that,
-- exact, as the service values orders. The codes: the ids as the files wrote them, when
-- they were text (null for integer ids).
with priced as (
    select
        o.order_id,
        o.product_id,
        o.order_code,
        o.product_code,
        o.created_date,
        o.quantity,
        coalesce(o.unit_price, d.price) as unit_price,
        case when o.unit_price is null then true else false end as at_list_price
    from {{ ref('stg_orders') }} o
    left join {{ ref('dim_product_prices') }} d
        on d.product_id = o.product_id
        and (d.applies_from is null or o.created_date >= d.applies_from)
        and (d.valid_to is null or o.created_date < d.valid_to)
)
select
    order_id,
    product_id,
    created_date,
    quantity,
    unit_price,
    at_list_price,
    cast(quantity * unit_price as decimal(22, 2)) as total_price,
    order_code,
    product_code
from priced
