-- Text ids: a row whose id was text has its code beside a negative key; an integer id is
-- its own positive key and has no code. Every table that names a product carries that
-- product's code. A feed that lost a code would leave a negative key bare here. Rows
-- returned are failures.
select 'product' as kind, product_id as id
from {{ ref('stg_products') }}
where (product_code is null) <> (product_id > 0)
union all
select 'order', order_id
from {{ ref('stg_orders') }}
where (order_code is null) <> (order_id > 0)
union all
select 'product of an order', o.order_id
from {{ ref('stg_orders') }} o
join {{ ref('stg_products') }} p on p.product_id = o.product_id
where coalesce(o.product_code, '') <> coalesce(p.product_code, '')
union all
select 'product of a price', pp.product_id
from {{ ref('stg_product_prices') }} pp
join {{ ref('stg_products') }} p on p.product_id = pp.product_id
where coalesce(pp.product_code, '') <> coalesce(p.product_code, '')
union all
select 'order of the merged feed', f.order_id
from {{ source('orderlens', 'order_full_information') }} f
join {{ ref('stg_orders') }} o on o.order_id = f.order_id
where coalesce(f.order_code, '') <> coalesce(o.order_code, '')
    or coalesce(f.product_code, '') <> coalesce(o.product_code, '')
