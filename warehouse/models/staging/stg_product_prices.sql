-- depends_on: {{ ref('incomplete_syncs') }}
select
    cast(product_id as {{ dbt.type_bigint() }}) as product_id,
    cast(price as {{ orderlens.money_type() }}) as price,
    cast(valid_from as date) as valid_from,
    cast(valid_to as date) as valid_to,
    upload_id,
    changed_at,
    product_code,
    _loaded_at
from {{ source('orderlens', 'product_prices') }}
