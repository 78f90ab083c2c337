-- depends_on: {{ ref('incomplete_syncs') }}
select source, base, quote, kind, rate_date, as_of, rate, fetched_at
from {{ source('orderlens', 'fx_rates') }}
where base = 'BRL' and quote = 'USD'
