-- Plan(kind=<UploadKind.ORDERS: 'orders'>, on_conflict=<OnConflict.REJECT: 'reject'>, path=<StagingPath.FAST: 'fast'>, order=('id', 'product_id', 'quantity', 'created_date'), header_lines=1, width=4, dialect=Dialect(format=<FileFormat.CSV: 'csv'>, encoding='utf-8', delimiter=',', decimal='.', date_format=None, timezone='America/Sao_Paulo'), stored_in_range=False, unique_ids=True, sum_aside=True, text_ids=False, keys_by_set=True)

-- checks.id_range
SELECT min(id), max(id), count(id) = count(DISTINCT id) FROM staged_orders WHERE id >= 1;

-- orders.lock_referenced_products
WITH referenced AS MATERIALIZED (SELECT DISTINCT product_id FROM staged_orders),
locked AS (
    SELECT 1 FROM products p
    WHERE p.product_id IN (SELECT product_id FROM referenced)
    FOR KEY SHARE OF p
)
SELECT (SELECT count(*) FROM locked), (SELECT count(product_id) FROM referenced);

-- orders.create_checked
CREATE TEMP TABLE checked_orders (
    ord bigint, line bigint, order_id bigint, product_id integer, quantity integer,
    created_date date, unit_price numeric(12, 2), basket text, old_product_id integer,
    old_quantity integer, old_created_date date, old_unit_price numeric(12, 2),
    old_basket text, problem text[], action text
) ON COMMIT DROP;

-- rollups.open_deltas
CREATE TEMP TABLE order_deltas (
    created_date date, product_id integer, orders bigint, quantity bigint,
    list_quantity bigint, revenue_brl numeric
) ON COMMIT DROP;

-- rollups.open_basket_deltas
CREATE TEMP TABLE basket_deltas (basket text COLLATE "C", created_date date, lines bigint)
ON COMMIT DROP;

-- orders.create_whole_dates
CREATE TEMP TABLE whole_dates ON COMMIT DROP AS
    WITH quick_parts AS MATERIALIZED (
        SELECT day_part, time_head, time_tail,
            CASE WHEN day_part IS NOT NULL THEN (CASE WHEN day_part !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' OR substr(day_part, 1, 4) <= '0001' THEN false ELSE substr(day_part, 6, 2) BETWEEN '01' AND '12' AND substr(day_part, 9, 2) BETWEEN '01' AND CASE WHEN substr(day_part, 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(day_part, 6, 2) <> '02' THEN '31' WHEN substr(day_part, 1, 4)::integer % 4 = 0 AND (substr(day_part, 1, 4)::integer % 100 <> 0 OR substr(day_part, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END AND substr(day_part, 1, 4) < '9999')
                WHEN time_head IS NOT NULL THEN (time_head ~ '^[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]$')
                ELSE (time_tail ~ '^(:[0-5][0-9](\.[0-9]{1,9})?)?([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$') END AS ok
        FROM (SELECT left(created_date, 10) AS day_part, substr(created_date, 11, 6) AS time_head, substr(created_date, 17) AS time_tail FROM staged_orders WHERE strpos(created_date, ':') > 0 GROUP BY GROUPING SETS ((1), (2), (3))) p
    ),
    odd AS (SELECT DISTINCT created_date AS raw FROM staged_orders WHERE created_date IS NULL OR strpos(created_date, ':') = 0 OR ((SELECT bool_or(NOT ok) FROM quick_parts) AND (left(created_date, 10) IN (SELECT day_part FROM quick_parts WHERE day_part IS NOT NULL AND NOT ok) OR substr(created_date, 11, 6) IN (SELECT time_head FROM quick_parts WHERE time_head IS NOT NULL AND NOT ok) OR substr(created_date, 17) IN (SELECT time_tail FROM quick_parts WHERE time_tail IS NOT NULL AND NOT ok)))),
    vals AS MATERIALIZED (
        SELECT raw, v, strpos(v, ':') > 0 AS timed, left(v, 10) AS day_part,
            substr(v, 11) AS time_part
        FROM (SELECT raw, CASE WHEN char_length(NULLIF(btrim(raw, E' \t\r\n'), '')) >= 2 AND NULLIF(btrim(raw, E' \t\r\n'), '') LIKE '''%''' THEN NULLIF(btrim(substr(NULLIF(btrim(raw, E' \t\r\n'), ''), 2, char_length(NULLIF(btrim(raw, E' \t\r\n'), '')) - 2), E' \t\r\n'), '') ELSE NULLIF(btrim(raw, E' \t\r\n'), '') END AS v FROM odd OFFSET 0) o
    ),
    times AS MATERIALIZED (
        SELECT part, (part ~ '^[Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$') AS ok,
            (right(part, 1) IN ('Z', 'z') OR strpos(part, '+') > 0 OR strpos(part, '-') > 0) AS zoned
        FROM (SELECT DISTINCT time_part AS part FROM vals WHERE timed) p
    ),
    days AS MATERIALIZED (
        SELECT part, CASE WHEN part !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' OR substr(part, 1, 4) <= '0001' THEN false ELSE substr(part, 6, 2) BETWEEN '01' AND '12' AND substr(part, 9, 2) BETWEEN '01' AND CASE WHEN substr(part, 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(part, 6, 2) <> '02' THEN '31' WHEN substr(part, 1, 4)::integer % 4 = 0 AND (substr(part, 1, 4)::integer % 100 <> 0 OR substr(part, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END AS ok
        FROM (SELECT DISTINCT day_part AS part FROM vals WHERE timed) p
    )
    SELECT raw, problem, CASE WHEN problem IS NULL THEN created_date::date END AS day
    FROM (
        SELECT raw, created_date, CASE  WHEN created_date IS NULL THEN ARRAY['missing_value', 'created_date is empty'] WHEN CASE WHEN created_date !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN true WHEN substr(created_date, 1, 4) = '0000' OR substr(created_date, 6, 2) NOT BETWEEN '01' AND '12' THEN true ELSE substr(created_date, 9, 2) NOT BETWEEN '01' AND CASE WHEN substr(created_date, 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(created_date, 6, 2) <> '02' THEN '31' WHEN substr(created_date, 1, 4)::integer % 4 = 0 AND (substr(created_date, 1, 4)::integer % 100 <> 0 OR substr(created_date, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END THEN ARRAY['invalid_date', format('created_date %s is not a calendar date YYYY-MM-DD', quote_literal(left(created_date, 40)))] END AS problem
        FROM (
            SELECT x.raw, CASE WHEN NOT x.timed THEN x.v
            WHEN NOT coalesce(t.ok AND d.ok, false) THEN x.v
            WHEN t.zoned THEN to_char((x.v)::timestamptz AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD')
            ELSE left(x.v, 10) END AS created_date
            FROM vals x
            LEFT JOIN times t ON t.part = x.time_part AND x.timed
            LEFT JOIN days d ON d.part = x.day_part AND x.timed
            OFFSET 0
        ) u OFFSET 0
    ) v;

-- orders.analyze_whole_dates
ANALYZE whole_dates;

-- orders.select_whole_dates (sent to it)
SELECT raw, problem, day FROM whole_dates;

-- orders.values_pass (its checks taken)
SELECT NOT EXISTS (SELECT 1 FROM whole_dates WHERE problem IS NOT NULL);

-- orders.verdict
SELECT count(*), coalesce(sum(s.quantity), 0), count(*) FILTER (WHERE CASE WHEN s.id IS NULL THEN ARRAY['missing_value', 'id is empty'] WHEN s.id NOT BETWEEN 1 AND 9223372036854775807 THEN ARRAY['out_of_range', format('id %s is outside 1 to 9223372036854775807', quote_literal(s.id::text))] WHEN s.product_id IS NULL THEN ARRAY['missing_value', 'product_id is empty'] WHEN s.product_id NOT BETWEEN 1 AND 2147483647 THEN ARRAY['out_of_range', format('product_id %s is outside 1 to 2147483647', quote_literal(s.product_id::text))] WHEN s.quantity IS NULL THEN ARRAY['missing_value', 'quantity is empty'] WHEN s.quantity NOT BETWEEN 1 AND 2147483647 THEN ARRAY['out_of_range', format('quantity %s is outside 1 to 2147483647', quote_literal(s.quantity::text))] WHEN s.created_date IS NULL THEN ARRAY['missing_value', 'created_date is empty'] ELSE CASE WHEN char_length(NULLIF(btrim(s.order_id, E' \t\r\n'), '')) > 64 THEN ARRAY['too_long', format('order_id has %s characters; at most 64', char_length(NULLIF(btrim(s.order_id, E' \t\r\n'), '')))] END END IS NOT NULL) = 0 AND NOT EXISTS (SELECT 1 FROM whole_dates WHERE problem IS NOT NULL),
    min(s.created_date COLLATE "C"), max(s.created_date COLLATE "C")
FROM (SELECT s.id, s.product_id, s.quantity, s.created_date, NULL::text AS unit_price, NULL::text AS order_id FROM staged_orders s) s;

-- orders.load_whole (if whole)
INSERT INTO orders (order_id, product_id, quantity, created_date, unit_price, basket, upload_id)
SELECT s.id, s.product_id::integer, s.quantity::integer, CASE WHEN d.raw IS NOT NULL THEN d.day WHEN ((SELECT current_setting('orderlens.zone_offset', true)) <> '' AND octet_length(s.created_date) <= 32 AND right(s.created_date, 6) = (SELECT current_setting('orderlens.zone_offset', true))) THEN left(s.created_date, 10)::date WHEN (s.created_date LIKE '%Z' OR s.created_date LIKE '%z' OR s.created_date LIKE '%+%' OR s.created_date LIKE '__________%-%') THEN ((s.created_date)::timestamptz AT TIME ZONE 'America/Sao_Paulo')::date ELSE left(s.created_date, 10)::date END, NULL::numeric(12, 2),
    NULLIF(btrim(s.order_id, E' \t\r\n'), ''), CAST((SELECT CAST(current_setting('orderlens.upload_id') AS bigint)) AS integer)
FROM (SELECT s.id, s.product_id, s.quantity, s.created_date, NULL::text AS unit_price, NULL::text AS order_id FROM staged_orders s) s LEFT JOIN whole_dates d ON d.raw = s.created_date;

-- orders.load (if not whole)
WITH judged AS MATERIALIZED (
WITH known AS (
    SELECT t.*, (t.problem IS NULL AND p.product_id IS NOT NULL) AS ok
    FROM (
WITH dates AS MATERIALIZED (
    WITH quick_parts AS MATERIALIZED (
        SELECT day_part, time_head, time_tail,
            CASE WHEN day_part IS NOT NULL THEN (CASE WHEN day_part !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' OR substr(day_part, 1, 4) <= '0001' THEN false ELSE substr(day_part, 6, 2) BETWEEN '01' AND '12' AND substr(day_part, 9, 2) BETWEEN '01' AND CASE WHEN substr(day_part, 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(day_part, 6, 2) <> '02' THEN '31' WHEN substr(day_part, 1, 4)::integer % 4 = 0 AND (substr(day_part, 1, 4)::integer % 100 <> 0 OR substr(day_part, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END AND substr(day_part, 1, 4) < '9999')
                WHEN time_head IS NOT NULL THEN (time_head ~ '^[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]$')
                ELSE (time_tail ~ '^(:[0-5][0-9](\.[0-9]{1,9})?)?([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$') END AS ok
        FROM (SELECT left(created_date, 10) AS day_part, substr(created_date, 11, 6) AS time_head, substr(created_date, 17) AS time_tail FROM staged_orders WHERE strpos(created_date, ':') > 0 GROUP BY GROUPING SETS ((1), (2), (3))) p
    ),
    odd AS (SELECT DISTINCT created_date AS raw FROM staged_orders WHERE created_date IS NULL OR strpos(created_date, ':') = 0 OR ((SELECT bool_or(NOT ok) FROM quick_parts) AND (left(created_date, 10) IN (SELECT day_part FROM quick_parts WHERE day_part IS NOT NULL AND NOT ok) OR substr(created_date, 11, 6) IN (SELECT time_head FROM quick_parts WHERE time_head IS NOT NULL AND NOT ok) OR substr(created_date, 17) IN (SELECT time_tail FROM quick_parts WHERE time_tail IS NOT NULL AND NOT ok)))),
    vals AS MATERIALIZED (
        SELECT raw, v, strpos(v, ':') > 0 AS timed, left(v, 10) AS day_part,
            substr(v, 11) AS time_part
        FROM (SELECT raw, CASE WHEN char_length(NULLIF(btrim(raw, E' \t\r\n'), '')) >= 2 AND NULLIF(btrim(raw, E' \t\r\n'), '') LIKE '''%''' THEN NULLIF(btrim(substr(NULLIF(btrim(raw, E' \t\r\n'), ''), 2, char_length(NULLIF(btrim(raw, E' \t\r\n'), '')) - 2), E' \t\r\n'), '') ELSE NULLIF(btrim(raw, E' \t\r\n'), '') END AS v FROM odd OFFSET 0) o
    ),
    times AS MATERIALIZED (
        SELECT part, (part ~ '^[Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$') AS ok,
            (right(part, 1) IN ('Z', 'z') OR strpos(part, '+') > 0 OR strpos(part, '-') > 0) AS zoned
        FROM (SELECT DISTINCT time_part AS part FROM vals WHERE timed) p
    ),
    days AS MATERIALIZED (
        SELECT part, CASE WHEN part !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' OR substr(part, 1, 4) <= '0001' THEN false ELSE substr(part, 6, 2) BETWEEN '01' AND '12' AND substr(part, 9, 2) BETWEEN '01' AND CASE WHEN substr(part, 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(part, 6, 2) <> '02' THEN '31' WHEN substr(part, 1, 4)::integer % 4 = 0 AND (substr(part, 1, 4)::integer % 100 <> 0 OR substr(part, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END AS ok
        FROM (SELECT DISTINCT day_part AS part FROM vals WHERE timed) p
    )
    SELECT raw, problem, CASE WHEN problem IS NULL THEN created_date::date END AS day
    FROM (
        SELECT raw, created_date, CASE  WHEN created_date IS NULL THEN ARRAY['missing_value', 'created_date is empty'] WHEN CASE WHEN created_date !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN true WHEN substr(created_date, 1, 4) = '0000' OR substr(created_date, 6, 2) NOT BETWEEN '01' AND '12' THEN true ELSE substr(created_date, 9, 2) NOT BETWEEN '01' AND CASE WHEN substr(created_date, 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(created_date, 6, 2) <> '02' THEN '31' WHEN substr(created_date, 1, 4)::integer % 4 = 0 AND (substr(created_date, 1, 4)::integer % 100 <> 0 OR substr(created_date, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END THEN ARRAY['invalid_date', format('created_date %s is not a calendar date YYYY-MM-DD', quote_literal(left(created_date, 40)))] END AS problem
        FROM (
            SELECT x.raw, CASE WHEN NOT x.timed THEN x.v
            WHEN NOT coalesce(t.ok AND d.ok, false) THEN x.v
            WHEN t.zoned THEN to_char((x.v)::timestamptz AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD')
            ELSE left(x.v, 10) END AS created_date
            FROM vals x
            LEFT JOIN times t ON t.part = x.time_part AND x.timed
            LEFT JOIN days d ON d.part = x.day_part AND x.timed
            OFFSET 0
        ) u OFFSET 0
    ) v
)
SELECT ord, line, problem,
    CASE WHEN problem IS NULL THEN id END AS order_id,
    CASE WHEN problem IS NULL THEN product_id::integer END AS product_id,
    CASE WHEN problem IS NULL THEN quantity::integer END AS quantity,
    CASE WHEN problem IS NULL THEN day END AS created_date,
    CASE WHEN problem IS NULL THEN unit_price END AS unit_price,
    CASE WHEN problem IS NULL THEN basket END AS basket,
    NULL::text AS order_code, NULL::text AS product_code
FROM (
    SELECT s.ord, s.line, s.id, s.product_id, s.quantity,
        CASE WHEN d.raw IS NOT NULL THEN d.day WHEN ((SELECT current_setting('orderlens.zone_offset', true)) <> '' AND octet_length(s.created_date) <= 32 AND right(s.created_date, 6) = (SELECT current_setting('orderlens.zone_offset', true))) THEN left(s.created_date, 10)::date WHEN (s.created_date LIKE '%Z' OR s.created_date LIKE '%z' OR s.created_date LIKE '%+%' OR s.created_date LIKE '__________%-%') THEN ((s.created_date)::timestamptz AT TIME ZONE 'America/Sao_Paulo')::date ELSE left(s.created_date, 10)::date END AS day, NULL::numeric(12, 2) AS unit_price,
        b.basket, CASE WHEN s.id IS NULL THEN ARRAY['missing_value', 'id is empty'] WHEN s.id NOT BETWEEN 1 AND 9223372036854775807 THEN ARRAY['out_of_range', format('id %s is outside 1 to 9223372036854775807', quote_literal(s.id::text))] WHEN s.product_id IS NULL THEN ARRAY['missing_value', 'product_id is empty'] WHEN s.product_id NOT BETWEEN 1 AND 2147483647 THEN ARRAY['out_of_range', format('product_id %s is outside 1 to 2147483647', quote_literal(s.product_id::text))] WHEN s.quantity IS NULL THEN ARRAY['missing_value', 'quantity is empty'] WHEN s.quantity NOT BETWEEN 1 AND 2147483647 THEN ARRAY['out_of_range', format('quantity %s is outside 1 to 2147483647', quote_literal(s.quantity::text))] WHEN s.created_date IS NULL THEN ARRAY['missing_value', 'created_date is empty'] ELSE coalesce(d.problem, CASE WHEN char_length(b.basket) > 64 THEN ARRAY['too_long', format('order_id has %s characters; at most 64', char_length(b.basket))] END) END AS problem
    FROM (SELECT s.ord, s.ord + $1 AS line, s.id, s.product_id, s.quantity, s.created_date, NULL::text AS unit_price, NULL::text AS order_id FROM staged_orders s) s
    LEFT JOIN dates d ON d.raw = s.created_date
    CROSS JOIN LATERAL (SELECT NULLIF(btrim(s.order_id, E' \t\r\n'), '') AS basket) b
    OFFSET 0
) j
) t LEFT JOIN products p ON p.product_id = t.product_id
),
ranked AS (
    SELECT k.*, 1 AS occurrence, NULL::bigint AS first_line FROM known k
),
met AS (
    SELECT r.*, NULL::bigint AS old_order_id, NULL::integer AS old_product_id,
        NULL::integer AS old_quantity, NULL::date AS old_created_date,
        NULL::numeric(12, 2) AS old_unit_price, NULL::text AS old_basket
    FROM ranked r
),
problems AS (
    SELECT m.ord, m.line, m.order_id, m.order_code, m.product_id, m.quantity, m.created_date,
        m.old_unit_price AS unit_price,
        m.old_basket AS basket, m.old_product_id, m.old_quantity,
        m.old_created_date, m.old_unit_price, m.old_basket,
        CASE
            WHEN m.problem IS NOT NULL THEN m.problem
            WHEN NOT m.ok THEN ARRAY['unknown_product',
                format('product_id %s is not a stored product',
                    coalesce(m.product_code, m.product_id::text))]
            WHEN m.occurrence > 1 THEN ARRAY['duplicate_in_file',
                format('id %s already appears on line %s',
                    coalesce(m.order_code, m.order_id::text), m.first_line)]
            WHEN m.old_order_id IS NULL OR (m.old_product_id, m.old_quantity, m.old_created_date, m.old_unit_price, m.old_basket) IS NOT DISTINCT FROM
                (m.product_id, m.quantity, m.created_date, m.old_unit_price, m.old_basket) THEN NULL
            ELSE ARRAY['conflict', format(
                'order %s is stored with product_id %s, quantity %s, created_date %s%s;'
                ' upload with on_conflict=update to replace it',
                m.old_order_id, m.old_product_id, m.old_quantity, m.old_created_date,
                ', unit_price ' || m.old_unit_price)]
        END AS problem
    FROM met m
)
SELECT m.*,
    CASE
        WHEN m.problem IS NOT NULL THEN 'reject'
        WHEN m.old_product_id IS NULL THEN 'insert'
        WHEN (m.old_product_id, m.old_quantity, m.old_created_date, m.old_unit_price, m.old_basket) IS NOT DISTINCT FROM (m.product_id, m.quantity, m.created_date, m.unit_price, m.basket) THEN 'unchanged'
        ELSE 'update'
    END AS action
FROM problems m
),
inserted AS (
    INSERT INTO orders
        (order_id, code, product_id, quantity, created_date, unit_price, basket, upload_id)
    SELECT order_id, order_code, product_id, quantity, created_date, unit_price, basket,
        CAST((SELECT CAST(current_setting('orderlens.upload_id') AS bigint)) AS integer)
    FROM judged WHERE action = 'insert'
),
kept AS (
    INSERT INTO checked_orders (ord, line, order_id, product_id, quantity, created_date, unit_price, basket, old_product_id, old_quantity, old_created_date, old_unit_price, old_basket, problem, action)
    SELECT ord, line, order_id, product_id, quantity, created_date, unit_price, basket, old_product_id, old_quantity, old_created_date, old_unit_price, old_basket, problem, action FROM judged WHERE action IN ('reject', 'update')
)
SELECT action, problem[1] AS code, count(*) AS n, coalesce(sum(quantity), 0) AS units
FROM judged GROUP BY 1, 2;

-- rejects.insert
INSERT INTO rejects (upload_id, row_number, error_code, error_message, fields)
SELECT $1, c.line, c.problem[1], c.problem[2], s.fields
FROM (SELECT ord, line, problem FROM checked_orders WHERE action = 'reject') c JOIN (SELECT s.ord, ARRAY[s.id::text, s.product_id::text, s.quantity::text, s.created_date::text] AS fields FROM staged_orders s) s ON s.ord = c.ord;

-- orders.update_stored
UPDATE orders o
SET product_id = c.product_id, quantity = c.quantity, created_date = c.created_date,
    unit_price = c.unit_price, basket = c.basket, upload_id = CAST((SELECT CAST(current_setting('orderlens.upload_id') AS bigint)) AS integer)
FROM checked_orders c WHERE c.action = 'update' AND o.order_id = c.order_id;

-- orders.sum_new (if the summarizer failed)
INSERT INTO order_deltas
    (created_date, product_id, orders, quantity, list_quantity, revenue_brl)
SELECT x.created_date, x.product_id, x.orders, x.quantity, x.list_quantity,
    x.fixed_brl + x.list_quantity * pp.price
FROM (
SELECT created_date, product_id, count(*), sum(quantity), coalesce(sum(quantity) FILTER (WHERE unit_price IS NULL), 0), coalesce(sum(unit_price * quantity), 0)
FROM (SELECT * FROM (
    SELECT j.created_date, j.product_id, j.quantity, j.unit_price, j.basket, 1 AS occurrence
    FROM (
WITH dates AS MATERIALIZED (
    WITH quick_parts AS MATERIALIZED (
        SELECT day_part, time_head, time_tail,
            CASE WHEN day_part IS NOT NULL THEN (CASE WHEN day_part !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' OR substr(day_part, 1, 4) <= '0001' THEN false ELSE substr(day_part, 6, 2) BETWEEN '01' AND '12' AND substr(day_part, 9, 2) BETWEEN '01' AND CASE WHEN substr(day_part, 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(day_part, 6, 2) <> '02' THEN '31' WHEN substr(day_part, 1, 4)::integer % 4 = 0 AND (substr(day_part, 1, 4)::integer % 100 <> 0 OR substr(day_part, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END AND substr(day_part, 1, 4) < '9999')
                WHEN time_head IS NOT NULL THEN (time_head ~ '^[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]$')
                ELSE (time_tail ~ '^(:[0-5][0-9](\.[0-9]{1,9})?)?([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$') END AS ok
        FROM (SELECT left(created_date, 10) AS day_part, substr(created_date, 11, 6) AS time_head, substr(created_date, 17) AS time_tail FROM staged_orders WHERE strpos(created_date, ':') > 0 GROUP BY GROUPING SETS ((1), (2), (3))) p
    ),
    odd AS (SELECT DISTINCT created_date AS raw FROM staged_orders WHERE created_date IS NULL OR strpos(created_date, ':') = 0 OR ((SELECT bool_or(NOT ok) FROM quick_parts) AND (left(created_date, 10) IN (SELECT day_part FROM quick_parts WHERE day_part IS NOT NULL AND NOT ok) OR substr(created_date, 11, 6) IN (SELECT time_head FROM quick_parts WHERE time_head IS NOT NULL AND NOT ok) OR substr(created_date, 17) IN (SELECT time_tail FROM quick_parts WHERE time_tail IS NOT NULL AND NOT ok)))),
    vals AS MATERIALIZED (
        SELECT raw, v, strpos(v, ':') > 0 AS timed, left(v, 10) AS day_part,
            substr(v, 11) AS time_part
        FROM (SELECT raw, CASE WHEN char_length(NULLIF(btrim(raw, E' \t\r\n'), '')) >= 2 AND NULLIF(btrim(raw, E' \t\r\n'), '') LIKE '''%''' THEN NULLIF(btrim(substr(NULLIF(btrim(raw, E' \t\r\n'), ''), 2, char_length(NULLIF(btrim(raw, E' \t\r\n'), '')) - 2), E' \t\r\n'), '') ELSE NULLIF(btrim(raw, E' \t\r\n'), '') END AS v FROM odd OFFSET 0) o
    ),
    times AS MATERIALIZED (
        SELECT part, (part ~ '^[Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$') AS ok,
            (right(part, 1) IN ('Z', 'z') OR strpos(part, '+') > 0 OR strpos(part, '-') > 0) AS zoned
        FROM (SELECT DISTINCT time_part AS part FROM vals WHERE timed) p
    ),
    days AS MATERIALIZED (
        SELECT part, CASE WHEN part !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' OR substr(part, 1, 4) <= '0001' THEN false ELSE substr(part, 6, 2) BETWEEN '01' AND '12' AND substr(part, 9, 2) BETWEEN '01' AND CASE WHEN substr(part, 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(part, 6, 2) <> '02' THEN '31' WHEN substr(part, 1, 4)::integer % 4 = 0 AND (substr(part, 1, 4)::integer % 100 <> 0 OR substr(part, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END AS ok
        FROM (SELECT DISTINCT day_part AS part FROM vals WHERE timed) p
    )
    SELECT raw, problem, CASE WHEN problem IS NULL THEN created_date::date END AS day
    FROM (
        SELECT raw, created_date, CASE  WHEN created_date IS NULL THEN ARRAY['missing_value', 'created_date is empty'] WHEN CASE WHEN created_date !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN true WHEN substr(created_date, 1, 4) = '0000' OR substr(created_date, 6, 2) NOT BETWEEN '01' AND '12' THEN true ELSE substr(created_date, 9, 2) NOT BETWEEN '01' AND CASE WHEN substr(created_date, 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(created_date, 6, 2) <> '02' THEN '31' WHEN substr(created_date, 1, 4)::integer % 4 = 0 AND (substr(created_date, 1, 4)::integer % 100 <> 0 OR substr(created_date, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END THEN ARRAY['invalid_date', format('created_date %s is not a calendar date YYYY-MM-DD', quote_literal(left(created_date, 40)))] END AS problem
        FROM (
            SELECT x.raw, CASE WHEN NOT x.timed THEN x.v
            WHEN NOT coalesce(t.ok AND d.ok, false) THEN x.v
            WHEN t.zoned THEN to_char((x.v)::timestamptz AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD')
            ELSE left(x.v, 10) END AS created_date
            FROM vals x
            LEFT JOIN times t ON t.part = x.time_part AND x.timed
            LEFT JOIN days d ON d.part = x.day_part AND x.timed
            OFFSET 0
        ) u OFFSET 0
    ) v
)
SELECT ord, line, problem,
    CASE WHEN problem IS NULL THEN id END AS order_id,
    CASE WHEN problem IS NULL THEN product_id::integer END AS product_id,
    CASE WHEN problem IS NULL THEN quantity::integer END AS quantity,
    CASE WHEN problem IS NULL THEN day END AS created_date,
    CASE WHEN problem IS NULL THEN unit_price END AS unit_price,
    CASE WHEN problem IS NULL THEN basket END AS basket,
    NULL::text AS order_code, NULL::text AS product_code
FROM (
    SELECT s.ord, s.line, s.id, s.product_id, s.quantity,
        CASE WHEN d.raw IS NOT NULL THEN d.day WHEN ((SELECT current_setting('orderlens.zone_offset', true)) <> '' AND octet_length(s.created_date) <= 32 AND right(s.created_date, 6) = (SELECT current_setting('orderlens.zone_offset', true))) THEN left(s.created_date, 10)::date WHEN (s.created_date LIKE '%Z' OR s.created_date LIKE '%z' OR s.created_date LIKE '%+%' OR s.created_date LIKE '__________%-%') THEN ((s.created_date)::timestamptz AT TIME ZONE 'America/Sao_Paulo')::date ELSE left(s.created_date, 10)::date END AS day, NULL::numeric(12, 2) AS unit_price,
        b.basket, CASE WHEN s.id IS NULL THEN ARRAY['missing_value', 'id is empty'] WHEN s.id NOT BETWEEN 1 AND 9223372036854775807 THEN ARRAY['out_of_range', format('id %s is outside 1 to 9223372036854775807', quote_literal(s.id::text))] WHEN s.product_id IS NULL THEN ARRAY['missing_value', 'product_id is empty'] WHEN s.product_id NOT BETWEEN 1 AND 2147483647 THEN ARRAY['out_of_range', format('product_id %s is outside 1 to 2147483647', quote_literal(s.product_id::text))] WHEN s.quantity IS NULL THEN ARRAY['missing_value', 'quantity is empty'] WHEN s.quantity NOT BETWEEN 1 AND 2147483647 THEN ARRAY['out_of_range', format('quantity %s is outside 1 to 2147483647', quote_literal(s.quantity::text))] WHEN s.created_date IS NULL THEN ARRAY['missing_value', 'created_date is empty'] ELSE coalesce(d.problem, CASE WHEN char_length(b.basket) > 64 THEN ARRAY['too_long', format('order_id has %s characters; at most 64', char_length(b.basket))] END) END AS problem
    FROM (SELECT s.ord, s.ord + $1 AS line, s.id, s.product_id, s.quantity, s.created_date, NULL::text AS unit_price, NULL::text AS order_id FROM staged_orders s) s
    LEFT JOIN dates d ON d.raw = s.created_date
    CROSS JOIN LATERAL (SELECT NULLIF(btrim(s.order_id, E' \t\r\n'), '') AS basket) b
    OFFSET 0
) j
) j JOIN products p ON p.product_id = j.product_id
    WHERE j.problem IS NULL
) r WHERE occurrence = 1) v
GROUP BY product_id, created_date
ORDER BY product_id, created_date
) AS x(created_date, product_id, orders, quantity, list_quantity, fixed_brl)
LEFT JOIN product_prices pp ON pp.product_id = x.product_id AND x.created_date >= pp.applies_from AND x.created_date < pp.valid_to;
