-- Rate points (run_sql.sh rates): MRT_MODEL is rates/default.gguf, a link to
-- rates/mrt-0.01.gguf (rate id 2); beside it mrt-0.005.gguf (rate id 1) and
-- mrt-0.02.gguf (rate id 3). Output: rates.expected.
.bail on
.mode list
CREATE TABLE t AS SELECT readfile('samples/coffee.jpg') AS img;
SELECT 'default', json_extract(mrt_info(mrt_encode(img)), '$.rate_id') FROM t;

-- every way to name a rate point, and the rate id it gives
CREATE TABLE rates(arg);
INSERT INTO rates VALUES (1), (2), (3), ('low'), ('medium'), ('high'),
  ('0.005'), ('0.01'), ('0.02'), (0.005), (0.02), ('default');
SELECT quote(arg), json_extract(mrt_info(mrt_encode(img, arg)), '$.rate_id') FROM rates, t ORDER BY rates.rowid;
-- three models, the link sharing its target's copy
SELECT 'loaded', json_extract(mrt_debug(), '$.models_loaded');

-- every bitstream decodes: mrt_decode picks the rate point its fingerprint names
SELECT 'decoded', count(*) FROM rates, t WHERE typeof(mrt_decode(mrt_encode(img, arg))) = 'blob';

-- the same as choosing that model explicitly
CREATE TABLE hi AS SELECT mrt_encode(img, 'high') AS bits, mrt_decode(mrt_encode(img, 'high')) AS png FROM t;
SELECT 'chosen', json_extract(mrt_model('rates/mrt-0.02.gguf'), '$.name'), json_extract(mrt_debug(), '$.models_loaded'),
       json_extract(mrt_model('rates/mrt-0.02.gguf'), '$.working_scale');
SELECT 'explicit', mrt_encode(img) = bits, mrt_decode(bits) = png FROM t, hi;
-- names resolve beside the chosen model too
SELECT 'low', json_extract(mrt_info(mrt_encode(img, 'low')), '$.rate_id'), json_extract(mrt_debug(), '$.models_loaded') FROM t;
-- a byte budget: the encoder picks the rate point and the working size, and
-- the bitstream is never over the budget; it decodes at the image's size
CREATE TABLE budgets(arg, lim);
INSERT INTO budgets VALUES ('300B', 300), ('0.25KiB', 256), ('2KB', 2000);
SELECT arg, length(b) <= lim, json_extract(mrt_info(b), '$.width') || 'x' ||
       json_extract(mrt_info(b), '$.height'), typeof(mrt_decode(b))
  FROM (SELECT budgets.rowid AS r, arg, lim, mrt_encode(img, arg) AS b FROM budgets, t) ORDER BY r;
-- a rate point derived at half size (mrt derive-rate-point) reports its working scale
SELECT 'derived', json_extract(mrt_model('derived/mrt-half.gguf'), '$.working_scale'),
       json_extract(mrt_info(mrt_encode(img)), '$.working_width') FROM t;
