-- GET /insights/average-ticket: revenue over orders, in BRL and in USD at the latest
-- rate, each rounded once to cents. The count is widened before it is scaled by 10^12
-- (a bigint overflowed past 9.2M orders).
with totals as (
    select
        cast(coalesce(sum(orders), 0) as {{ orderlens.big_int() }}) as orders,
        coalesce(sum(revenue_brl), 0) as revenue_brl
    from {{ ref('product_daily_sales') }}
),
rate as (
    select rate, cast(rate * 1000000000000 as {{ orderlens.big_int() }}) as rate_e12
    from {{ ref('fx_latest_rate') }}
)
select
    t.orders,
    cast(t.revenue_brl as {{ orderlens.money_type() }}) as revenue_brl,
    case when t.orders > 0 then {{ orderlens.from_cents(orderlens.rounded_ratio(
        orderlens.to_cents('t.revenue_brl'), 't.orders')) }} end as average_ticket_brl,
    case when t.orders > 0 then {{ orderlens.from_cents(orderlens.rounded_ratio(
        orderlens.to_cents('t.revenue_brl') ~ ' * r.rate_e12',
        't.orders * 1000000000000')) }} end as average_ticket_usd
from totals t
cross join rate r
