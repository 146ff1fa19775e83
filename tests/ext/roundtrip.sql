-- Every function on its normal path (run_sql.sh scripts; output: roundtrip.expected).
-- MRT_MODEL names a seeded random model, so sizes are checked by range and
-- by consistency (header = input, re-encoding = same bytes), never pinned.
.bail on
.mode list
.headers off

-- NULL in -> NULL out, for every argument of every function
SELECT 'null', quote(mrt_encode(NULL)), quote(mrt_encode(NULL, 'low')),
       quote(mrt_encode(readfile('samples/coffee.jpg'), NULL)), quote(mrt_decode(NULL)),
       quote(mrt_info(NULL)), quote(mrt_psnr(NULL, x'00')), quote(mrt_psnr(x'00', NULL)),
       quote(mrt_msssim(NULL, x'00')), quote(mrt_msssim(x'00', NULL)), quote(mrt_model(NULL));

SELECT 'version', mrt_version() GLOB '[0-9]*.[0-9]*.[0-9]*';

CREATE TABLE photos(name TEXT PRIMARY KEY, img BLOB, bits BLOB, png BLOB);
INSERT INTO photos(name, img)
  SELECT column1, readfile('samples/' || column1)
  FROM (VALUES ('astronaut.jpg'), ('camera.png'), ('chelsea.png'), ('coffee.jpg'), ('gravel.jpg'));
UPDATE photos SET bits = mrt_encode(img);
UPDATE photos SET png = mrt_decode(bits);

-- sizes, types, the header, PNG signature; psnr succeeding proves equal sizes
SELECT name, typeof(bits), length(bits) BETWEEN 100 AND 2000,
       json_extract(mrt_info(bits), '$.width') || 'x' || json_extract(mrt_info(bits), '$.height'),
       json_extract(mrt_info(bits), '$.bytes') = length(bits),
       json_extract(mrt_info(bits), '$.version'),
       json_extract(mrt_info(bits), '$.rate_id'),
       abs(json_extract(mrt_info(bits), '$.bpp') - 8.0 * length(bits)
           / (json_extract(mrt_info(bits), '$.width') * json_extract(mrt_info(bits), '$.height'))) < 1e-6,
       json_array_length(mrt_info(bits), '$.streams'),
       substr(png, 1, 8) = x'89504E470D0A1A0A',
       typeof(mrt_psnr(img, png))
FROM photos ORDER BY name;

-- deterministic: encoding again gives the same bytes, decoding the same PNG;
-- rate 0 (this model's rate id) and its name 'random' pick the same model
SELECT 'again', count(*) FROM photos
 WHERE mrt_encode(img) = bits AND mrt_decode(bits) = png
   AND mrt_encode(img, 0) = bits AND mrt_encode(img, 'random') = bits;

-- the header names the model the connection uses
SELECT 'fingerprint', count(*) FROM photos
 WHERE json_extract(mrt_info(bits), '$.model')
     = substr(json_extract(mrt_debug(), '$.model.fingerprint'), 1, 16);

-- quality: exact on a known pair (2x1 pixels, one off by 10 in R, G, B: MSE 50)
SELECT 'psnr', round(mrt_psnr(
  x'89504E470D0A1A0A0000000D49484452000000020000000108020000007B40E8DD0000000B49444154789C636000030000070001B286ACF40000000049454E44AE426082',
  x'89504E470D0A1A0A0000000D49484452000000020000000108020000007B40E8DD0000000F49444154789C63E0E2E26260600000009D001FDEE670580000000049454E44AE426082'), 6);
-- identical pixels: 100 dB (libmrt's stand-in for infinity) and MS-SSIM 1
SELECT 'identical', mrt_psnr(img, img), abs(mrt_msssim(img, img) - 1.0) < 1e-6
  FROM photos WHERE name = 'coffee.jpg';
SELECT 'ranges', count(*) FROM photos
 WHERE mrt_psnr(img, png) BETWEEN 0 AND 99 AND mrt_msssim(img, png) BETWEEN -1 AND 1
   AND abs(mrt_psnr(img, png) - mrt_psnr(png, img)) < 1e-9
   AND abs(mrt_msssim(img, png) - mrt_msssim(png, img)) < 1e-6;

-- mrt_debug(): a JSON object with what a bug report needs
SELECT 'debug', json_valid(mrt_debug()), json_extract(mrt_debug(), '$.version') = mrt_version(),
       json_type(mrt_debug(), '$.blis.kernels'), json_type(mrt_debug(), '$.blis.variant'),
       json_extract(mrt_debug(), '$.threads'), json_extract(mrt_debug(), '$.model.source'),
       json_extract(mrt_debug(), '$.model.name'), json_extract(mrt_debug(), '$.models_loaded'),
       json_extract(mrt_debug(), '$.sqlite') = sqlite_version();

-- mrt_model(): another model for this connection, then back to the default
SELECT 'model', json_extract(mrt_model('other/seed2.gguf'), '$.source'),
       json_extract(mrt_debug(), '$.model.path'), json_extract(mrt_debug(), '$.models_loaded');
SELECT 'other', count(*) FROM photos WHERE mrt_encode(img) <> bits AND mrt_decode(mrt_encode(img)) IS NOT NULL;
SELECT 'default', json_extract(mrt_model(''), '$.source'), json_extract(mrt_debug(), '$.models_loaded');
SELECT 'back', count(*) FROM photos WHERE mrt_decode(bits) = png;
-- refine: 0 steps is the one-pass encoder; a few steps give a bitstream the
-- decoder reads (quality is tested with trained weights, test_refine)
SELECT 'refine', mrt_encode(img, 0, 0) = bits, length(mrt_encode(img, 0, 3)) BETWEEN 100 AND 2000,
       mrt_psnr(img, mrt_decode(mrt_encode(img, 'random', 2))) > 0
  FROM photos WHERE name = 'coffee.jpg';
-- scaled decoding: 600x400 at 1/4 is 150x100 and at 1/8 75x50 (the PNG's
-- IHDR width and height); '1/4' is 4; scale 1 is the full decode
SELECT 'scale', hex(substr(mrt_decode(bits, 4), 17, 8)), hex(substr(mrt_decode(bits, '1/8'), 17, 8)),
       mrt_decode(bits, '1/4') = mrt_decode(bits, 4), mrt_decode(bits, 1) = mrt_decode(bits)
  FROM photos WHERE name = 'coffee.jpg';

-- INNOCUOUS functions work in views even with trusted_schema off
PRAGMA trusted_schema = OFF;
CREATE VIEW sizes AS SELECT name, mrt_info(bits) AS i, mrt_version() AS v,
       mrt_psnr(img, img) AS p, mrt_msssim(img, img) AS m FROM photos;
SELECT 'view', count(*) FROM sizes
 WHERE json_extract(i, '$.width') > 0 AND v IS NOT NULL AND p = 100 AND m > 0.999999;
