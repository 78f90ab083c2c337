-- GET /insights/daily-revenue: one row per calendar day from the first to the last order
-- date, zero-filled; USD at the latest rate; the mean revenue of the day and the six
-- before it (fewer at the start), rounded once.
with days as (
    select
        c.day,
        coalesce(sum(s.orders), 0) as orders,
        coalesce(sum(s.quantity), 0) as quantity,
        coalesce(sum(s.revenue_brl), 0) as revenue_brl
    from {{ ref('calendar') }} c
    left join {{ ref('product_daily_sales') }} s on s.created_date = c.day
    group by c.day
),
windowed as (
    select
        day, orders, quantity, revenue_brl,
        sum({{ orderlens.to_cents('revenue_brl') }})
            over (order by day rows between 6 preceding and current row) as week_cents,
        count(*) over (order by day rows between 6 preceding and current row) as week_days
    from days
)
select
    w.day as {{ adapter.quote('date') }},
    w.orders,
    w.quantity,
    cast(w.revenue_brl as {{ orderlens.money_type() }}) as revenue_brl,
    {{ orderlens.to_usd('w.revenue_brl', 'r.rate') }} as revenue_usd,
    {{ orderlens.from_cents(orderlens.rounded_ratio('w.week_cents', 'w.week_days')) }}
        as revenue_brl_7d_avg
from windowed w
cross join {{ ref('fx_latest_rate') }} r
