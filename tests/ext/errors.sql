-- Every error case of every function (run_sql.sh errors). .bail off: each
-- statement that is not setup fails, and its stderr line must match the
-- regex on the same line of errors.expected. Setup prints nothing.
.bail off
CREATE TEMP TABLE t AS SELECT readfile('samples/coffee.jpg') AS img, mrt_encode(readfile('samples/coffee.jpg')) AS bits;
-- wrong argument types: SQLITE_MISMATCH (20), naming the function and argument
SELECT mrt_encode('samples/coffee.jpg');
SELECT mrt_encode(42);
SELECT mrt_encode(img, x'01') FROM t;
SELECT mrt_decode('MRT');
SELECT mrt_info(3.5);
SELECT mrt_psnr(img, 1) FROM t;
SELECT mrt_msssim('a', img) FROM t;
SELECT mrt_model(12);
SELECT mrt_model(x'2f746d70');
-- wrong argument counts: SQLite's own message
SELECT mrt_encode();
SELECT mrt_decode(bits, 1, 2) FROM t;
SELECT mrt_version(1);
-- bad images
SELECT mrt_encode(x'00010203');
SELECT mrt_encode(x'');
SELECT mrt_encode(substr(img, 1, 5000)) FROM t;
SELECT mrt_psnr(img, x'89504E47') FROM t;
SELECT mrt_msssim(x'FFD8FF', img) FROM t;
-- images of different sizes
SELECT mrt_psnr(img, readfile('samples/camera.png')) FROM t;
SELECT mrt_msssim(readfile('samples/gravel.jpg'), img) FROM t;
-- too big: a PNG header of 9000 x 9000 pixels, refused before any pixel memory (SQLITE_TOOBIG, 18)
SELECT mrt_encode(x'89504E470D0A1A0A0000000D4948445200002328000023280802000000E2B7E5ED0000000049454E44AE426082');
SELECT mrt_psnr(x'89504E470D0A1A0A0000000D4948445200002328000023280802000000E2B7E5ED0000000049454E44AE426082', img) FROM t;
-- damaged or foreign bitstreams: a reason, never a crash or wrong bytes
SELECT mrt_decode(img) FROM t;
SELECT mrt_info(img) FROM t;
SELECT mrt_decode(x'');
SELECT mrt_decode(substr(bits, 1, length(bits) - 1)) FROM t;
SELECT mrt_info(substr(bits, 1, 20)) FROM t;
SELECT mrt_decode(CAST(bits || x'00' AS BLOB)) FROM t;
SELECT mrt_decode(CAST(substr(bits, 1, 60) || (CASE WHEN substr(bits, 61, 1) = x'00' THEN x'01' ELSE x'00' END) || substr(bits, 62) AS BLOB)) FROM t;
SELECT mrt_decode(CAST(x'4D525407' || substr(bits, 5) AS BLOB)) FROM t;
-- the connection switches model: the old bitstream is foreign now
CREATE TEMP TABLE m AS SELECT mrt_model('other/seed2.gguf') AS j;
SELECT mrt_decode(bits) FROM t;
-- model files that are not there or not models
SELECT mrt_model('no/such/model.gguf');
SELECT mrt_model('samples/coffee.jpg');
-- mrt_model reads files: DIRECTONLY, so never from a view or trigger
CREATE VIEW v AS SELECT mrt_model('other/seed2.gguf') AS j;
SELECT * FROM v;
CREATE TABLE log(x);
CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT mrt_model('other/seed2.gguf'); END;
INSERT INTO log VALUES (1);
-- not INNOCUOUS: no encode/decode/debug in a view once the schema is untrusted
PRAGMA trusted_schema = OFF;
CREATE VIEW ve AS SELECT mrt_encode(x'00') AS x;
CREATE VIEW vd AS SELECT mrt_decode(x'00') AS x;
CREATE VIEW vg AS SELECT mrt_debug() AS x;
SELECT x FROM ve;
SELECT x FROM vd;
SELECT x FROM vg;
-- refinement steps: an INTEGER in 0..10000
SELECT mrt_encode(img, 0, 'many') FROM t;
SELECT mrt_encode(img, 0, -1) FROM t;
SELECT mrt_encode(img, 0, 10001) FROM t;
-- a byte budget below every rate point's smallest bitstream
SELECT mrt_encode(img, '10B') FROM t;
-- a scale that is not 1, 2, 4 or 8 (or '1/2', '1/4', '1/8')
SELECT mrt_decode(bits, 3) FROM t;
SELECT mrt_decode(bits, '1/3') FROM t;
SELECT mrt_decode(bits, 0.25) FROM t;
