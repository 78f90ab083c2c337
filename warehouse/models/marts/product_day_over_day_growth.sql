-- GET /insights/top-growth, every candidate: a product's units on a day against the day
-- before. basis `calendar`: consecutive calendar days, a day without sales counting as
-- 0 (a sale day and the day after it, after the first order date). basis
-- `previous_sale`: against the product's previous sale day (the assessment's LAG).
-- The API's top N = the first N rows by growth desc, date, product_id (the key; the API
-- shows product_code where there is one).
with cells as (
    select product_id, created_date, quantity from {{ ref('product_daily_sales') }}
),
bounds as (
    select min(created_date) as first_day, max(created_date) as last_day from cells
),
candidates as (
    select product_id, created_date as day from cells
    union
    select c.product_id, cast({{ dbt.dateadd('day', '1', 'c.created_date') }} as date)
    from cells c cross join bounds b
    where c.created_date < b.last_day
),
calendar_growth as (
    select
        'calendar' as basis,
        k.product_id,
        k.day as {{ adapter.quote('date') }},
        cast({{ dbt.dateadd('day', '-1', 'k.day') }} as date) as previous_date,
        coalesce(cur.quantity, 0) as quantity,
        coalesce(prev.quantity, 0) as previous_quantity
    from candidates k
    cross join bounds b
    left join cells cur on cur.product_id = k.product_id and cur.created_date = k.day
    left join cells prev on prev.product_id = k.product_id
        and prev.created_date = cast({{ dbt.dateadd('day', '-1', 'k.day') }} as date)
    where k.day > b.first_day
),
sale_growth as (
    select * from (
        select
            'previous_sale' as basis,
            product_id,
            created_date as {{ adapter.quote('date') }},
            lag(created_date) over (partition by product_id order by created_date)
                as previous_date,
            quantity,
            lag(quantity) over (partition by product_id order by created_date)
                as previous_quantity
        from cells
    ) lagged
    where previous_date is not null
),
growth as (
    select * from calendar_growth
    union all
    select * from sale_growth
)
select
    g.basis,
    g.product_id,
    p.product_name,
    g.{{ adapter.quote('date') }},
    g.previous_date,
    g.quantity,
    g.previous_quantity,
    g.quantity - g.previous_quantity as growth,
    p.product_code
from growth g
join {{ ref('stg_products') }} p on p.product_id = g.product_id
