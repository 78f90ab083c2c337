-- Every price each product has had (type 2: one row per version), in effect from
-- `valid_from` until `valid_to` (exclusive; null: still in effect). The product's first
-- price also holds for every day before its `valid_from`, as in the service: an order's
-- list price is the one row whose [applies_from, valid_to) holds its date (a null bound
-- is open).
select
    product_id,
    price,
    valid_from,
    valid_to,
    case when row_number() over (partition by product_id order by valid_from) > 1
        then valid_from end as applies_from,
    case when valid_to is null then true else false end as is_current,
    upload_id,
    changed_at,
    product_code
from {{ ref('stg_product_prices') }}
