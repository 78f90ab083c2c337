{{ config(materialized='view') }}
-- GET /insights/top-growth, every candidate: a product's units on a day against the day
-- before. basis `calendar`: consecutive calendar days, a day without sales counting as
-- 0 (a sale day and the day after it, after the first order date). basis
-- `previous_sale`: against the product's previous sale day (the assessment's LAG).
-- The API's top N = the first N rows by growth desc, date, product_id (the key; the API
-- shows product_code where there is one).
-- A view of the cells (product_daily_sales): nothing to write at each build, a third of a
-- second to read at 10M orders.
with cells as (
    select product_id, created_date, quantity from {{ ref('product_daily_sales') }}
),
bounds as (
    select min(created_date) as first_day, max(created_date) as last_day from cells
),
-- Each sale day with the product's sale days before and after it: one pass, no joins.
lagged as (
    select
        product_id,
        created_date,
        quantity,
        lag(created_date) over w as previous_sale_date,
        lag(quantity) over w as previous_sale_quantity,
        lead(created_date) over w as next_sale_date
    from cells
    window w as (partition by product_id order by created_date)
),
calendar_growth as (
    -- A sale day against the day before it (0 units when that day had no sale).
    select
        'calendar' as basis,
        l.product_id,
        l.created_date as {{ adapter.quote('date') }},
        cast({{ dbt.dateadd('day', '-1', 'l.created_date') }} as date) as previous_date,
        l.quantity,
        case when l.previous_sale_date = cast({{ dbt.dateadd('day', '-1', 'l.created_date') }} as date)
            then l.previous_sale_quantity else 0 end as previous_quantity
    from lagged l
    cross join bounds b
    where l.created_date > b.first_day
    union all
    -- The day after a sale day, when it had no sale of its own: 0 against that sale.
    select
        'calendar',
        l.product_id,
        cast({{ dbt.dateadd('day', '1', 'l.created_date') }} as date),
        l.created_date,
        0,
        l.quantity
    from lagged l
    cross join bounds b
    where l.created_date < b.last_day
        and (l.next_sale_date is null
            or l.next_sale_date <> cast({{ dbt.dateadd('day', '1', 'l.created_date') }} as date))
),
sale_growth as (
    select
        'previous_sale' as basis,
        product_id,
        created_date as {{ adapter.quote('date') }},
        previous_sale_date as previous_date,
        quantity,
        previous_sale_quantity as previous_quantity
    from lagged
    where previous_sale_date is not null
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
