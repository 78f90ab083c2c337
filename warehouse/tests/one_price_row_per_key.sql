-- dim_product_prices has one row per (product_id, valid_from), its key. Rows returned
-- are failures.
select product_id, valid_from
from {{ ref('dim_product_prices') }}
group by product_id, valid_from
having count(*) > 1
