-- Plan(kind=<UploadKind.ORDERS: 'orders'>, on_conflict=<OnConflict.UPDATE: 'update'>, path=<StagingPath.CAREFUL: 'careful'>, order=('created_date', 'quantity', 'product_id', 'id'), header_lines=1, width=5, dialect=Dialect(format=<FileFormat.CSV: 'csv'>, encoding='utf-8', delimiter=',', decimal='.', date_format=None, timezone='America/Sao_Paulo'), stored_in_range=True, unique_ids=False, sum_aside=False, text_ids=False, keys_by_set=False)

-- checks.create_typed
CREATE TEMP TABLE checked_rows (ord bigint, line bigint, problem text[], order_id bigint, product_id integer, quantity integer, created_date date, unit_price numeric(12, 2), basket text, order_code text, product_code text) ON COMMIT DROP;

-- checks.fill_typed
INSERT INTO checked_rows (ord, line, problem, order_id, product_id, quantity, created_date, unit_price, basket, order_code, product_code)
SELECT ord, line, problem, CASE WHEN problem IS NULL THEN id::bigint END, CASE WHEN problem IS NULL THEN product_id::integer END, CASE WHEN problem IS NULL THEN quantity::integer END, CASE WHEN problem IS NULL THEN created_date::date END, CASE WHEN problem IS NULL THEN NULL::numeric(12, 2) END, CASE WHEN problem IS NULL THEN NULL::text END, CASE WHEN problem IS NULL THEN NULL::text END, CASE WHEN problem IS NULL THEN NULL::text END
FROM (
    SELECT v.*, CASE WHEN bad_count IS NOT NULL THEN ARRAY['wrong_field_count', format('expected %s fields, found %s', $2::integer, bad_count)] WHEN id IS NULL THEN ARRAY['missing_value', 'id is empty'] WHEN id !~ '^[+-]?[0-9]+$' THEN ARRAY['invalid_integer', format('id %s is not a whole number', quote_literal(left(id, 40)))] WHEN CASE WHEN length(id) > 30 THEN true ELSE id::numeric NOT BETWEEN 1 AND 9223372036854775807 END THEN ARRAY['out_of_range', format('id %s is outside 1 to 9223372036854775807', quote_literal(left(id, 40)))] WHEN product_id IS NULL THEN ARRAY['missing_value', 'product_id is empty'] WHEN product_id !~ '^[+-]?[0-9]+$' THEN ARRAY['invalid_integer', format('product_id %s is not a whole number', quote_literal(left(product_id, 40)))] WHEN CASE WHEN length(product_id) > 30 THEN true ELSE product_id::numeric NOT BETWEEN 1 AND 2147483647 END THEN ARRAY['out_of_range', format('product_id %s is outside 1 to 2147483647', quote_literal(left(product_id, 40)))] WHEN quantity IS NULL THEN ARRAY['missing_value', 'quantity is empty'] WHEN quantity !~ '^[+-]?[0-9]+$' THEN ARRAY['invalid_integer', format('quantity %s is not a whole number', quote_literal(left(quantity, 40)))] WHEN CASE WHEN length(quantity) > 30 THEN true ELSE quantity::numeric NOT BETWEEN 1 AND 2147483647 END THEN ARRAY['out_of_range', format('quantity %s is outside 1 to 2147483647', quote_literal(left(quantity, 40)))] WHEN created_date IS NULL THEN ARRAY['missing_value', 'created_date is empty'] WHEN CASE WHEN created_date !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN true WHEN substr(created_date, 1, 4) = '0000' OR substr(created_date, 6, 2) NOT BETWEEN '01' AND '12' THEN true ELSE substr(created_date, 9, 2) NOT BETWEEN '01' AND CASE WHEN substr(created_date, 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(created_date, 6, 2) <> '02' THEN '31' WHEN substr(created_date, 1, 4)::integer % 4 = 0 AND (substr(created_date, 1, 4)::integer % 100 <> 0 OR substr(created_date, 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END THEN ARRAY['invalid_date', format('created_date %s is not a calendar date YYYY-MM-DD', quote_literal(left(created_date, 40)))] END AS problem
    FROM (
        SELECT ord, line, bad_count, id AS id, product_id AS product_id, quantity AS quantity, CASE WHEN strpos((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), ':') = 0 THEN (CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END) WHEN NOT (length((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END)) > 10 AND (substr((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 11) ~ '^[Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$') AND CASE WHEN left((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 10) !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' OR substr(left((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 10), 1, 4) <= '0001' THEN false ELSE substr(left((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 10), 6, 2) BETWEEN '01' AND '12' AND substr(left((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 10), 9, 2) BETWEEN '01' AND CASE WHEN substr(left((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 10), 6, 2) IN ('04', '06', '09', '11') THEN '30' WHEN substr(left((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 10), 6, 2) <> '02' THEN '31' WHEN substr(left((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 10), 1, 4)::integer % 4 = 0 AND (substr(left((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 10), 1, 4)::integer % 100 <> 0 OR substr(left((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 10), 1, 4)::integer % 400 = 0) THEN '29' ELSE '28' END END) THEN (CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END) WHEN (right(substr((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 11), 1) IN ('Z', 'z') OR strpos(substr((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 11), '+') > 0 OR strpos(substr((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 11), '-') > 0) THEN to_char(((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END))::timestamptz AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD') ELSE left((CASE WHEN char_length(created_date) >= 2 AND created_date LIKE '''%''' THEN NULLIF(btrim(substr(created_date, 2, char_length(created_date) - 2), E' \t\r\n'), '') ELSE created_date END), 10) END AS created_date
        FROM (SELECT s.ord, COALESCE(s.line, s.ord + $1) AS line, s.bad_count, NULLIF(btrim(s.id, E' \t\r\n'), '') AS id, NULLIF(btrim(s.product_id, E' \t\r\n'), '') AS product_id, NULLIF(btrim(s.quantity, E' \t\r\n'), '') AS quantity, NULLIF(btrim(s.created_date, E' \t\r\n'), '') AS created_date FROM staged_text s OFFSET 0) t OFFSET 0
    ) v OFFSET 0
) j;

-- checks.id_range
SELECT min(order_id), max(order_id), count(order_id) = count(DISTINCT order_id) FROM checked_rows;

-- orders.lock_referenced_products
WITH referenced AS MATERIALIZED (SELECT DISTINCT product_id FROM checked_rows WHERE problem IS NULL),
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

-- orders.load (if not whole)
WITH judged AS MATERIALIZED (
WITH known AS (
    SELECT t.*, (t.problem IS NULL AND p.product_id IS NOT NULL) AS ok
    FROM checked_rows t LEFT JOIN products p ON p.product_id = t.product_id
),
ranked AS (
    SELECT k.*, row_number() OVER w AS occurrence,
        first_value(k.line) OVER w AS first_line
    FROM known k
    WINDOW w AS (PARTITION BY k.ok, k.order_id ORDER BY k.line)
),
met AS (
    SELECT r.*, o.order_id AS old_order_id, o.product_id AS old_product_id,
        o.quantity AS old_quantity, o.created_date AS old_created_date,
        o.unit_price AS old_unit_price, o.basket AS old_basket
    FROM ranked r
    LEFT JOIN orders o ON o.order_id = r.order_id AND r.ok AND r.occurrence = 1
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
            ELSE NULL
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
),
deltas AS (
    INSERT INTO order_deltas
    (created_date, product_id, orders, quantity, list_quantity, revenue_brl)
SELECT x.created_date, x.product_id, x.orders, x.quantity, x.list_quantity,
    x.fixed_brl + x.list_quantity * pp.price
FROM (
SELECT created_date, product_id, sum(n), sum(q), sum(lq), sum(fixed)
    FROM (SELECT created_date, product_id, 1 AS n, quantity AS q, CASE WHEN unit_price IS NULL THEN quantity ELSE 0 END AS lq, coalesce(unit_price * quantity, 0) AS fixed
        FROM judged WHERE action IN ('insert', 'update')
        UNION ALL
        SELECT old_created_date, old_product_id, -1, -old_quantity, -CASE WHEN old_unit_price IS NULL THEN old_quantity ELSE 0 END AS lq, -coalesce(old_unit_price * old_quantity, 0) AS fixed
        FROM judged WHERE action = 'update') d
    GROUP BY created_date, product_id
    HAVING sum(n) <> 0 OR sum(q) <> 0 OR sum(lq) <> 0 OR sum(fixed) <> 0
) AS x(created_date, product_id, orders, quantity, list_quantity, fixed_brl)
LEFT JOIN product_prices pp ON pp.product_id = x.product_id AND x.created_date >= pp.applies_from AND x.created_date < pp.valid_to
),
baskets AS (
    INSERT INTO basket_deltas (basket, created_date, lines)
SELECT basket, created_date, sum(n)
    FROM (
        SELECT basket, created_date, 1 AS n FROM judged
        WHERE action IN ('insert', 'update') AND basket IS NOT NULL
        UNION ALL
        SELECT old_basket, old_created_date, -1 FROM judged
        WHERE action = 'update' AND old_basket IS NOT NULL
    ) b
    GROUP BY basket, created_date
    HAVING sum(n) <> 0
)
SELECT action, problem[1] AS code, count(*) AS n, coalesce(sum(quantity), 0) AS units
FROM judged GROUP BY 1, 2;

-- rejects.insert
INSERT INTO rejects (upload_id, row_number, error_code, error_message, fields)
SELECT $1, c.line, c.problem[1], c.problem[2], s.fields
FROM (SELECT ord, line, problem FROM checked_orders WHERE action = 'reject') c JOIN (SELECT s.ord,
    CASE WHEN s.raw IS NOT NULL
        THEN ARRAY(SELECT f.v FROM jsonb_array_elements_text(s.raw) WITH ORDINALITY f(v, i)
                   ORDER BY f.i)
        ELSE ARRAY[s.created_date, s.quantity, s.product_id, s.id]
    END AS fields
FROM staged_text s) s ON s.ord = c.ord;

-- orders.update_stored
UPDATE orders o
SET product_id = c.product_id, quantity = c.quantity, created_date = c.created_date,
    unit_price = c.unit_price, basket = c.basket, upload_id = CAST((SELECT CAST(current_setting('orderlens.upload_id') AS bigint)) AS integer)
FROM checked_orders c WHERE c.action = 'update' AND o.order_id = c.order_id;
