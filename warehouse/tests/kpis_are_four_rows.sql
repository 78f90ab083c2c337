-- kpi_product_orders has its four rows once there are orders.
select 1
from (select count(*) as n from {{ ref('kpi_product_orders') }}) k
where k.n <> 4 and exists (select 1 from {{ ref('stg_orders') }})
