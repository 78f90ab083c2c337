-- depends_on: {{ ref('incomplete_syncs') }}
select
    cast(product_id as {{ dbt.type_bigint() }}) as product_id,
    name as product_name,
    category,
    cast(price as {{ orderlens.money_type() }}) as price,
    upload_id,
    changed_at,
    product_code,
    _loaded_at
from {{ source('orderlens', 'products') }}
