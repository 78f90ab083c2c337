-- The dataset these marts are built from (macros/loads.sql, require_one_dataset).
select
    '{{ env_var('ORDERLENS_DATASET') }}' as dataset,
    {{ dbt.current_timestamp() }} as built_at
