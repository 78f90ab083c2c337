-- Plan(kind=<UploadKind.PRODUCTS: 'products'>, on_conflict=<OnConflict.REJECT: 'reject'>, path=<Path.FAST: 'fast'>, order=('id', 'name', 'category', 'price'), header_lines=1, width=4, dialect=Dialect(format=<FileFormat.CSV: 'csv'>, encoding='cp1252', delimiter=';', decimal=',', date_format=None, timezone='America/Sao_Paulo'), stored_in_range=False, unique_ids=False, sum_aside=False, keys_by_set=False)

-- checks.create_typed
CREATE TEMP TABLE checked_rows (ord bigint, line bigint, problem text[], product_id integer, name text, category text, price numeric(12, 2)) ON COMMIT DROP;

-- checks.fill_typed
INSERT INTO checked_rows (ord, line, problem, product_id, name, category, price)
SELECT ord, line, problem, CASE WHEN problem IS NULL THEN id::integer END, CASE WHEN problem IS NULL THEN name END, CASE WHEN problem IS NULL THEN category END, CASE WHEN problem IS NULL THEN price::numeric(12, 2) END
FROM (
    SELECT v.*, CASE WHEN bad_count IS NOT NULL THEN ARRAY['wrong_field_count', format('expected %s fields, found %s', $2::integer, bad_count)] WHEN id IS NULL THEN ARRAY['missing_value', 'id is empty'] WHEN id !~ '^[+-]?[0-9]+$' THEN ARRAY['invalid_integer', format('id %s is not a whole number', quote_literal(left(id, 40)))] WHEN CASE WHEN length(id) > 30 THEN true ELSE id::numeric NOT BETWEEN 1 AND 2147483647 END THEN ARRAY['out_of_range', format('id %s is outside 1 to 2147483647', quote_literal(left(id, 40)))] WHEN name IS NULL THEN ARRAY['missing_value', 'name is empty'] WHEN char_length(name) > 200 THEN ARRAY['too_long', format('name has %s characters; at most 200', char_length(name))] WHEN category IS NULL THEN ARRAY['missing_value', 'category is empty'] WHEN char_length(category) > 100 THEN ARRAY['too_long', format('category has %s characters; at most 100', char_length(category))] WHEN price IS NULL THEN ARRAY['missing_value', 'price is empty'] WHEN price !~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' THEN ARRAY['invalid_decimal', format('price %s is not a decimal number like 12.34', quote_literal(left(price, 40)))] WHEN char_length(split_part(price, '.', 2)) > 2 THEN ARRAY['invalid_decimal', format('price %s has more than 2 decimal places', quote_literal(left(price, 40)))] WHEN CASE WHEN char_length(ltrim(split_part(ltrim(price, '+-'), '.', 1), '0')) > 10 THEN true ELSE price::numeric < 0 END THEN ARRAY['out_of_range', format('price %s is outside 0 to 9999999999.99', quote_literal(left(price, 40)))] END AS problem
    FROM (
        SELECT ord, line, bad_count, id AS id, name AS name, category AS category, replace((price), ',', '.') AS price
        FROM (SELECT s.ord, COALESCE(s.line, s.ord + $1) AS line, s.bad_count, NULLIF(btrim(s.id, E' \t\r\n'), '') AS id, NULLIF(btrim(s.name, E' \t\r\n'), '') AS name, NULLIF(btrim(s.category, E' \t\r\n'), '') AS category, NULLIF(btrim(s.price, E' \t\r\n'), '') AS price FROM staged_text s OFFSET 0) t OFFSET 0
    ) v OFFSET 0
) j;

-- checks.id_range
SELECT min(product_id), max(product_id), count(product_id) = count(DISTINCT product_id) FROM checked_rows;

-- products.create_checked
CREATE TEMP TABLE checked_products (
    ord bigint, line bigint, product_id integer, name text, category text,
    price numeric(12, 2), old_name text, old_category text, old_price numeric(12, 2),
    problem text[], action text
) ON COMMIT DROP;

-- products.classify
INSERT INTO checked_products (ord, line, product_id, name, category, price,
    old_name, old_category, old_price, problem, action)
WITH ranked AS (
    SELECT t.*, row_number() OVER w AS occurrence, first_value(t.line) OVER w AS first_line
    FROM checked_rows t
    WINDOW w AS (PARTITION BY t.problem IS NULL, t.product_id ORDER BY t.line)
),
met AS (
    SELECT r.ord, r.line, r.product_id, r.name, r.category, r.price,
        p.name::text AS old_name, p.category::text AS old_category, p.price AS old_price,
        CASE
            WHEN r.problem IS NOT NULL THEN r.problem
            WHEN r.occurrence > 1 THEN ARRAY['duplicate_in_file',
                format('id %s already appears on line %s', r.product_id, r.first_line)]
            WHEN p.product_id IS NULL
                OR (p.name, p.category, p.price) = (r.name, r.category, r.price) THEN NULL
            ELSE ARRAY['conflict', format(
                'product %s is stored as name %s, category %s, price %s;'
                ' upload with on_conflict=update to replace it',
                p.product_id, quote_literal(p.name), quote_literal(p.category), p.price)]
        END AS problem
    FROM ranked r
    LEFT JOIN (SELECT NULL::integer AS product_id, NULL::text AS name, NULL::text AS category, NULL::numeric(12, 2) AS price WHERE false) p ON p.product_id = r.product_id
        AND r.problem IS NULL AND r.occurrence = 1
)
SELECT m.*,
    CASE
        WHEN m.problem IS NOT NULL THEN 'reject'
        WHEN m.old_price IS NULL THEN 'insert'
        WHEN (m.old_name, m.old_category, m.old_price) = (m.name, m.category, m.price)
            THEN 'unchanged'
        ELSE 'update'
    END AS action
FROM met m;

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
INSERT INTO products (product_id, name, category, price, upload_id)
SELECT product_id, name, category, price, (SELECT CAST(current_setting('orderlens.upload_id') AS bigint))
FROM checked_products WHERE action = 'insert';

-- products.update_stored
UPDATE products p
SET name = c.name, category = c.category, price = c.price, updated_at = now(),
    upload_id = (SELECT CAST(current_setting('orderlens.upload_id') AS bigint))
FROM checked_products c WHERE c.action = 'update' AND p.product_id = c.product_id;

-- products.price_change_table
CREATE TEMP TABLE price_changes ON COMMIT DROP AS
SELECT product_id, price - old_price AS delta FROM checked_products WHERE action = 'update' AND price <> old_price;
