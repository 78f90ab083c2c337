-- The rate the service's USD answers use in `latest` mode: the newest latest rate it
-- fetched (the rates travel with the data, so the warehouse converts as the API did).
select rate, as_of, source, fetched_at
from (
    select rate, as_of, source, fetched_at,
        row_number() over (order by fetched_at desc, source) as newest
    from {{ ref('stg_fx_rates') }}
    where kind = 'latest'
) ranked
where newest = 1
