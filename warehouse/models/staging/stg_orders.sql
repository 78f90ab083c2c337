-- depends_on: {{ ref('incomplete_syncs') }}
select
    cast(order_id as {{ dbt.type_bigint() }}) as order_id,
    cast(product_id as {{ dbt.type_bigint() }}) as product_id,
    cast(quantity as {{ dbt.type_bigint() }}) as quantity,
    cast(order_created_date as date) as created_date,
    cast(unit_price as {{ orderlens.money_type() }}) as unit_price,
    upload_id,
    changed_at,
    order_code,
    product_code,
    _loaded_at
from {{ source('orderlens', 'orders') }}
