-- The demand features hold every unit sold, and only those.
select 1
from (select sum(quantity) as units from {{ ref('product_demand_features') }}) f
cross join (select sum(quantity) as units from {{ ref('stg_orders') }}) o
where f.units <> o.units
