-- Each product's prices follow one another without overlap or gap: every range ends
-- where the next begins, only the last is open, and none is empty. A change the sync
-- missed (a range ended by a later price) would leave two open prices here. Rows
-- returned are failures.
select product_id, valid_from
from (
    select
        product_id,
        valid_from,
        valid_to,
        lead(valid_from) over (partition by product_id order by valid_from) as next_from
    from {{ ref('dim_product_prices') }}
) ranges
where (next_from is null and valid_to is not null)
    or (next_from is not null and (valid_to is null or valid_to <> next_from))
    or valid_to <= valid_from
