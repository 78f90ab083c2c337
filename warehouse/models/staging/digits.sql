{{ config(materialized='ephemeral') }}
-- 0 … 9, for the portable day series (macros/portable.sql, numbers()).
select 0 as n union all select 1 union all select 2 union all select 3 union all select 4
union all select 5 union all select 6 union all select 7 union all select 8 union all select 9
