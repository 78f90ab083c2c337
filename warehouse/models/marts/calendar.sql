{{ config(materialized='ephemeral') }}
-- Every calendar day from the first to the last order date.
with bounds as (
    select min(created_date) as first_day, max(created_date) as last_day
    from {{ ref('product_daily_sales') }}
)
select cast({{ dbt.dateadd('day', 'numbers.n', 'bounds.first_day') }} as date) as day
from bounds
cross join ({{ orderlens.numbers() }}) numbers
where numbers.n <= {{ dbt.datediff('bounds.first_day', 'bounds.last_day', 'day') }}
