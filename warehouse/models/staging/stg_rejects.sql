-- depends_on: {{ ref('incomplete_syncs') }}
select upload_id, row_number, kind, error_code, error_message, fields, changed_at
from {{ source('orderlens', 'rejects') }}
