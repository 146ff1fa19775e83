-- Typical queries on an mrt archive (sql/schema.sql), for the sqlite3 shell,
-- from the repository root (they read samples/ and write coffee.png, decoded/):
--
--   sqlite3 -cmd '.load build/ext/mrt' photos.db < sql/schema.sql
--   sqlite3 -cmd '.load build/ext/mrt' photos.db < sql/examples.sql
--
-- readfile(), writefile() and fsdir() are the shell's own functions; the mrt_*
-- functions are ext/README.md's; the model is the shipped models/default.gguf
-- unless MRT_MODEL or mrt_model() names another.
.bail on
.headers on
.mode column

-- 1. Add every PNG/JPEG under samples/ (what `mrtarchive add samples/` does),
--    keeping the originals too. MATERIALIZED: each photo is read and encoded
--    exactly once, however often the outer query names its columns.
WITH files AS MATERIALIZED (
       SELECT name, mtime, data AS img FROM fsdir('samples')
        WHERE name GLOB '*.[jJ][pP][gG]' OR name GLOB '*.[jJ][pP][eE][gG]' OR name GLOB '*.[pP][nN][gG]'),
     coded AS MATERIALIZED (SELECT name, mtime, img, mrt_encode(img) AS bits FROM files)
INSERT OR REPLACE INTO images(name, mtime, sz, format, width, height, model, rate_id, data)
SELECT name, mtime, length(img),
       CASE WHEN substr(img, 1, 4) = x'89504E47' THEN 'png' ELSE 'jpeg' END,
       mrt_info(bits) ->> '$.width', mrt_info(bits) ->> '$.height',
       mrt_info(bits) ->> '$.model', mrt_info(bits) ->> '$.rate_id', bits
  FROM coded;
INSERT OR REPLACE INTO originals(id, data) SELECT id, readfile(name) FROM images;

-- 2. Decode one photo to a file (prints the bytes written).
SELECT writefile('coffee.png', mrt_decode(data)) AS png_bytes FROM images WHERE name = 'samples/coffee.jpg';

-- 3. Compression ratios, best first.
SELECT name, width || 'x' || height AS size, sz AS original, length(data) AS mrt,
       round(1.0 * sz / length(data), 1) AS ratio, round(8.0 * length(data) / (width * height), 4) AS bpp
  FROM images ORDER BY ratio DESC;

-- 4. The largest bitstreams.
SELECT name, length(data) AS bytes FROM images ORDER BY length(data) DESC LIMIT 3;

-- 5. The whole archive at a glance.
SELECT count(*) AS photos, sum(sz) AS original_bytes, sum(length(data)) AS mrt_bytes,
       round(1.0 * sum(sz) / sum(length(data)), 1) AS ratio FROM images;

-- 6. Quality against the kept originals (each photo decoded once).
WITH d AS MATERIALIZED (SELECT i.name, o.data AS orig, mrt_decode(i.data) AS png
                          FROM images i JOIN originals o USING (id))
SELECT name, round(mrt_psnr(orig, png), 2) AS psnr_db, round(mrt_msssim(orig, png), 4) AS ms_ssim
  FROM d ORDER BY psnr_db;

-- 7. One header, and which models the archive needs; photos this
--    connection's model cannot decode (made with another model) come last.
SELECT name, mrt_info(data) AS header FROM images WHERE name = 'samples/coffee.jpg';
SELECT model, rate_id, count(*) AS photos,
       model = substr(mrt_debug() ->> '$.model.fingerprint', 1, 16) AS current_model
  FROM images GROUP BY model, rate_id;

-- 8. Export every photo, decoded, under decoded/ (writefile makes the directories).
SELECT count(writefile('decoded/' || name || '.png', mrt_decode(data))) AS exported FROM images;

-- 9. Every name, with the photo it shows: the same bytes added under a second
--    name are stored once and the name kept in `aliases` (schema version 2).
SELECT n.name, i.width || 'x' || i.height AS size, length(i.data) AS bytes
  FROM names n JOIN images i USING (id) ORDER BY n.name;
