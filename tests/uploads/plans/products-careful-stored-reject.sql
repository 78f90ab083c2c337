-- Plan(kind=<UploadKind.PRODUCTS: 'products'>, on_conflict=<OnConflict.REJECT: 'reject'>, path=<StagingPath.CAREFUL: 'careful'>, order=('id', 'name', 'category', 'price'), header_lines=2, width=4, dialect=Dialect(format=<FileFormat.CSV: 'csv'>, encoding='utf-8', delimiter=',', decimal='.', date_format=None, timezone='America/Sao_Paulo'), stored_in_range=True, unique_ids=False, sum_aside=False, text_ids=False, keys_by_set=False)

-- checks.create_typed
CREATE TEMP TABLE checked_rows (ord bigint, line bigint, problem text[], product_id integer, name text, category text, price numeric(12, 2), effective_from date, product_code text) ON COMMIT DROP;

-- checks.fill_typed
INSERT INTO checked_rows (ord, line, problem, product_id, name, category, price, effective_from, product_code)
SELECT ord, line, problem, CASE WHEN problem IS NULL THEN id::integer END, CASE WHEN problem IS NULL THEN name END, CASE WHEN problem IS NULL THEN category END, CASE WHEN problem IS NULL THEN price::numeric(12, 2) END, CASE WHEN problem IS NULL THEN NULL::date END, CASE WHEN problem IS NULL THEN NULL::text END
FROM (
    SELECT v.*, CASE WHEN bad_count IS NOT NULL THEN ARRAY['wrong_field_count', format('expected %s fields, found %s', $2::integer, bad_count)] WHEN id IS NULL THEN ARRAY['missing_value', 'id is empty'] WHEN id !~ '^[+-]?[0-9]+$' THEN ARRAY['invalid_integer', format('id %s is not a whole number', quote_literal(left(id, 40)))] WHEN CASE WHEN length(id) > 30 THEN true ELSE id::numeric NOT BETWEEN 1 AND 2147483647 END THEN ARRAY['out_of_range', format('id %s is outside 1 to 2147483647', quote_literal(left(id, 40)))] WHEN name IS NULL THEN ARRAY['missing_value', 'name is empty'] WHEN char_length(name) > 200 THEN ARRAY['too_long', format('name has %s characters; at most 200', char_length(name))] WHEN category IS NULL THEN ARRAY['missing_value', 'category is empty'] WHEN char_length(category) > 100 THEN ARRAY['too_long', format('category has %s characters; at most 100', char_length(category))] WHEN price IS NULL THEN ARRAY['missing_value', 'price is empty'] WHEN price !~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' THEN ARRAY['invalid_decimal', format('price %s is not a decimal number like 12.34', quote_literal(left(price, 40)))] WHEN char_length(split_part(price, '.', 2)) > 2 THEN ARRAY['invalid_decimal', format('price %s has more than 2 decimal places', quote_literal(left(price, 40)))] WHEN CASE WHEN char_length(ltrim(split_part(ltrim(price, '+-'), '.', 1), '0')) > 10 THEN true ELSE price::numeric < 0 END THEN ARRAY['out_of_range', format('price %s is outside 0 to 9999999999.99', quote_literal(left(price, 40)))] END AS problem
    FROM (
        SELECT ord, line, bad_count, id AS id, name AS name, category AS category, price AS price
        FROM (SELECT s.ord, COALESCE(s.line, s.ord + $1) AS line, s.bad_count, NULLIF(btrim(s.id, E' \t\r\n'), '') AS id, NULLIF(btrim(s.name, E' \t\r\n'), '') AS name, NULLIF(btrim(s.category, E' \t\r\n'), '') AS category, NULLIF(btrim(s.price, E' \t\r\n'), '') AS price FROM staged_text s OFFSET 0) t OFFSET 0
    ) v OFFSET 0
) j;

-- checks.id_range
SELECT min(product_id), max(product_id), count(product_id) = count(DISTINCT product_id) FROM checked_rows;

-- products.create_checked
CREATE TEMP TABLE checked_products (
    ord bigint, line bigint, product_id integer, name text, category text,
    price numeric(12, 2), valid_from date, product_code text, old_name text, old_category text,
    old_price numeric(12, 2), names boolean, problem text[], action text
) ON COMMIT DROP;

-- products.classify
INSERT INTO checked_products (ord, line, product_id, name, category, price, valid_from,
    product_code, old_name, old_category, old_price, names, problem, action)
WITH dated AS (
    SELECT t.*, coalesce(t.effective_from, CAST($1 AS date)) AS valid_from
    FROM checked_rows t
),
ranked AS (
    SELECT t.*, row_number() OVER w AS occurrence, first_value(t.line) OVER w AS first_line
    FROM dated t
    WINDOW w AS (PARTITION BY t.problem IS NULL, t.product_id, t.valid_from ORDER BY t.line)
),
valid AS MATERIALIZED (
    SELECT r.ord, r.product_id, r.valid_from, r.price,
        row_number() OVER (PARTITION BY r.product_id ORDER BY r.valid_from DESC) = 1 AS names
    FROM ranked r WHERE r.problem IS NULL AND r.occurrence = 1
),
events AS (
    SELECT pp.product_id, pp.valid_from, pp.price, 1 AS stored, NULL::bigint AS ord
    FROM product_prices pp WHERE pp.product_id IN (SELECT product_id FROM valid)
    UNION ALL
    SELECT product_id, valid_from, price, 0, ord FROM valid
),
prior AS (
    SELECT ord, lag(price) OVER (
        PARTITION BY product_id ORDER BY valid_from, stored DESC) AS price
    FROM events
),
met AS (
    SELECT r.ord, r.line, r.product_id, r.name, r.category, r.price, r.valid_from,
        r.product_code, p.name::text AS old_name, p.category::text AS old_category,
        CASE WHEN p.product_id IS NOT NULL THEN coalesce(b.price, (
            SELECT f.price FROM product_prices f WHERE f.product_id = r.product_id
            ORDER BY f.valid_from LIMIT 1
        )) END AS old_price,
        coalesce(v.names, false) AS names, r.problem, r.occurrence, r.first_line,
        p.product_id IS NOT NULL AS stored
    FROM ranked r
    LEFT JOIN valid v ON v.ord = r.ord
    LEFT JOIN prior b ON b.ord = r.ord
    LEFT JOIN products p ON p.product_id = r.product_id AND v.ord IS NOT NULL
),
judged AS (
    SELECT m.*,
        CASE
            WHEN m.problem IS NOT NULL THEN m.problem
            WHEN m.occurrence > 1 THEN ARRAY['duplicate_in_file', format(
                'id %s already appears on line %s', coalesce(m.product_code, m.product_id::text),
                m.first_line)
                || CASE WHEN m.valid_from <> CAST($1 AS date)
                    THEN format(' for effective_from %s', m.valid_from) ELSE '' END]
            WHEN NOT m.stored OR NOT (m.price IS DISTINCT FROM m.old_price OR (m.names AND (m.name, m.category) IS DISTINCT FROM (m.old_name, m.old_category))) THEN NULL
            ELSE ARRAY['conflict', format(
                'product %s is stored as name %s, category %s, price %s on %s;'
                ' upload with on_conflict=update to replace it',
                coalesce(m.product_code, m.product_id::text), quote_literal(m.old_name),
                quote_literal(m.old_category), m.old_price, m.valid_from)]
        END AS verdict
    FROM met m
)
SELECT m.ord, m.line, m.product_id, m.name, m.category, m.price, m.valid_from,
    m.product_code, m.old_name,
    m.old_category, m.old_price, m.names, m.verdict,
    CASE
        WHEN m.verdict IS NOT NULL THEN 'reject'
        WHEN NOT m.stored THEN 'insert'
        WHEN NOT (m.price IS DISTINCT FROM m.old_price OR (m.names AND (m.name, m.category) IS DISTINCT FROM (m.old_name, m.old_category))) THEN 'unchanged'
        ELSE 'update'
    END
FROM judged m;

-- products.count_actions
SELECT action, problem[1] AS code, count(*) AS n FROM checked_products GROUP BY 1, 2;

-- rejects.insert
INSERT INTO rejects (upload_id, row_number, error_code, error_message, fields)
SELECT $1, c.line, c.problem[1], c.problem[2], s.fields
FROM (SELECT ord, line, problem FROM checked_products WHERE action = 'reject') c JOIN (SELECT s.ord,
    CASE WHEN s.raw IS NOT NULL
        THEN ARRAY(SELECT f.v FROM jsonb_array_elements_text(s.raw) WITH ORDINALITY f(v, i)
                   ORDER BY f.i)
        ELSE ARRAY[s.id, s.name, s.category, s.price]
    END AS fields
FROM staged_text s) s ON s.ord = c.ord;

-- products.insert
INSERT INTO products (product_id, code, name, category, price, upload_id)
SELECT product_id, product_code, name, category, price, (SELECT CAST(current_setting('orderlens.upload_id') AS bigint))
FROM checked_products WHERE action = 'insert' AND names;

-- products.update_names
UPDATE products p
SET name = c.name, category = c.category, updated_at = now(),
    upload_id = (SELECT CAST(current_setting('orderlens.upload_id') AS bigint))
FROM checked_products c
WHERE c.action = 'update' AND c.names AND p.product_id = c.product_id
    AND (p.name, p.category) IS DISTINCT FROM (c.name, c.category);

-- products.save_old_prices
CREATE TEMP TABLE old_prices ON COMMIT DROP AS
SELECT pp.* FROM product_prices pp
WHERE pp.product_id IN (SELECT product_id FROM checked_products WHERE action IN ('insert', 'update') AND price IS DISTINCT FROM old_price AND action = 'update');

-- products.set_prices
INSERT INTO product_prices (product_id, valid_from, valid_to, applies_from, price, upload_id)
SELECT product_id, valid_from, 'infinity', valid_from, price, (SELECT CAST(current_setting('orderlens.upload_id') AS bigint))
FROM checked_products WHERE action IN ('insert', 'update') AND price IS DISTINCT FROM old_price
ON CONFLICT (product_id, valid_from) DO UPDATE
SET price = excluded.price, upload_id = excluded.upload_id;

-- products.set_prices
UPDATE product_prices pp SET valid_to = r.valid_to, applies_from = r.applies_from
FROM (
    SELECT product_id, valid_from,
        coalesce(lead(valid_from) OVER w, 'infinity') AS valid_to,
        CASE WHEN row_number() OVER w = 1 THEN '-infinity' ELSE valid_from END AS applies_from
    FROM product_prices
    WHERE product_id IN (SELECT product_id FROM checked_products WHERE action IN ('insert', 'update') AND price IS DISTINCT FROM old_price)
    WINDOW w AS (PARTITION BY product_id ORDER BY valid_from)
) r
WHERE pp.product_id = r.product_id AND pp.valid_from = r.valid_from
    AND (pp.valid_to, pp.applies_from) IS DISTINCT FROM (r.valid_to, r.applies_from);

-- products.set_prices
UPDATE products p SET price = l.price, updated_at = now(),
    upload_id = (SELECT CAST(current_setting('orderlens.upload_id') AS bigint))
FROM (
    SELECT DISTINCT ON (product_id) product_id, price FROM product_prices
    WHERE product_id IN (SELECT product_id FROM checked_products WHERE action IN ('insert', 'update') AND price IS DISTINCT FROM old_price AND action = 'update')
    ORDER BY product_id, valid_from DESC
) l
WHERE p.product_id = l.product_id AND p.price <> l.price;

-- rollups.open_deltas
CREATE TEMP TABLE order_deltas (
    created_date date, product_id integer, orders bigint, quantity bigint,
    list_quantity bigint, revenue_brl numeric
) ON COMMIT DROP;

-- rollups.open_basket_deltas
CREATE TEMP TABLE basket_deltas (basket text COLLATE "C", created_date date, lines bigint)
ON COMMIT DROP;

-- products.price_change_deltas
INSERT INTO order_deltas
    (created_date, product_id, orders, quantity, list_quantity, revenue_brl)
SELECT x.created_date, x.product_id, x.orders, x.quantity, x.list_quantity,
    x.fixed_brl + x.list_quantity * pp.price
FROM (
SELECT s.created_date, s.product_id, 0, 0, 0, s.list_quantity * (pp.price - o.price)
FROM product_daily_sales s
JOIN old_prices o ON o.product_id = s.product_id AND s.created_date >= o.applies_from
    AND s.created_date < o.valid_to
JOIN product_prices pp ON pp.product_id = s.product_id AND s.created_date >= pp.applies_from AND s.created_date < pp.valid_to
WHERE s.list_quantity > 0 AND pp.price <> o.price
) AS x(created_date, product_id, orders, quantity, list_quantity, fixed_brl)
LEFT JOIN product_prices pp ON pp.product_id = x.product_id AND x.created_date >= pp.applies_from AND x.created_date < pp.valid_to;
