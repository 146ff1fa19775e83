-- The mrt archive schema, version 2: shared by mrtarchive and by hand-written SQL.
-- Idempotent: running it on an existing archive changes nothing, and running it on a
-- version-1 archive migrates it (version 2 only adds `aliases` and `names`).
--
--   sqlite3 photos.db < sql/schema.sql
--
-- The bitstreams are a few hundred bytes, so `images` stays small and fast to
-- scan; originals, when kept, live in their own table so that scans of
-- `images` never page through megabytes of JPEG.

PRAGMA application_id = 1297240129;  -- 0x4D525441, 'MRTA': `file` and tools can recognise an archive
PRAGMA foreign_keys = ON;            -- per connection: writers should set it too

CREATE TABLE IF NOT EXISTS images (
  id      INTEGER PRIMARY KEY,
  -- The photo's relative path in the collection it came from: '/'-separated,
  -- not empty, no leading or trailing '/', no '.' or '..' component, no '//'
  -- (DESIGN.md §6), and no '\' (a Windows separator, which would make one
  -- name mean two paths).
  name    TEXT NOT NULL UNIQUE CONSTRAINT name_is_relative CHECK (
            name <> '' AND substr(name, 1, 1) <> '/' AND substr(name, -1, 1) <> '/'
            AND instr(name, '//') = 0 AND instr(name, '\') = 0
            AND instr('/' || name || '/', '/./') = 0 AND instr('/' || name || '/', '/../') = 0),
  mtime   INTEGER,                     -- the original's modification time, Unix seconds (NULL: unknown)
  sz      INTEGER NOT NULL CHECK (sz >= 0),                -- the original file's size in bytes
  format  TEXT NOT NULL CHECK (format IN ('png', 'jpeg')), -- the original's format
  -- Copied from the bitstream header at insert time (mrt_info), so that the
  -- archive can be queried without the extension:
  width   INTEGER NOT NULL CHECK (width BETWEEN 1 AND 65535),
  height  INTEGER NOT NULL CHECK (height BETWEEN 1 AND 65535),
  model   TEXT NOT NULL CHECK (length(model) = 16),        -- first 8 bytes of the model's SHA-256, hex
  rate_id INTEGER NOT NULL CHECK (rate_id BETWEEN 0 AND 255),
  data    BLOB NOT NULL                -- the mrt bitstream (codec/BITSTREAM.md); mrt_decode(data) is the photo
);

-- Optional: the original bytes, for archives made with "keep originals".
CREATE TABLE IF NOT EXISTS originals (
  id   INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
  data BLOB NOT NULL
);

-- Further names of a stored photo: the same bytes added under a second name
-- are stored once, and every name is kept (version 2). A name is either an
-- image's own (images.name) or an alias, never both.
CREATE TABLE IF NOT EXISTS aliases (
  name     TEXT PRIMARY KEY CONSTRAINT alias_is_relative CHECK (
             name <> '' AND substr(name, 1, 1) <> '/' AND substr(name, -1, 1) <> '/'
             AND instr(name, '//') = 0 AND instr(name, '\') = 0
             AND instr('/' || name || '/', '/./') = 0 AND instr('/' || name || '/', '/../') = 0),
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  mtime    INTEGER                     -- this copy's modification time, Unix seconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aliases_image ON aliases(image_id);
CREATE TRIGGER IF NOT EXISTS alias_name_is_free BEFORE INSERT ON aliases
  WHEN EXISTS (SELECT 1 FROM images WHERE name = NEW.name)
  BEGIN SELECT RAISE(ABORT, 'an image has that name already'); END;
CREATE TRIGGER IF NOT EXISTS image_name_is_free BEFORE INSERT ON images
  WHEN EXISTS (SELECT 1 FROM aliases WHERE name = NEW.name)
  BEGIN SELECT RAISE(ABORT, 'an alias has that name already'); END;
CREATE TRIGGER IF NOT EXISTS image_rename_is_free BEFORE UPDATE OF name ON images
  WHEN EXISTS (SELECT 1 FROM aliases WHERE name = NEW.name)
  BEGIN SELECT RAISE(ABORT, 'an alias has that name already'); END;

-- Every name and the image it shows: what a listing or an extraction walks.
--   SELECT mrt_decode(i.data) FROM names n JOIN images i USING (id) WHERE n.name = ?
CREATE VIEW IF NOT EXISTS names(name, id, mtime) AS
  SELECT name, id, mtime FROM images UNION ALL SELECT name, image_id, mtime FROM aliases;

-- Which photos a given model can decode (one model per rate point).
CREATE INDEX IF NOT EXISTS images_model ON images(model);

-- The gallery's orders (mrtarchive serve), each walked in an index so that a
-- page starts after the last photo of the one before without scanning:
-- newest first (unknown dates last) and largest first, ties by id.
CREATE INDEX IF NOT EXISTS images_date ON images(ifnull(mtime, -1), id);
CREATE INDEX IF NOT EXISTS images_size ON images(sz, id);

-- mrtarchive serve's thumbnail cache: each photo decoded once at 1/2, 1/4 or
-- 1/8 of its size, by the model whose fingerprint it names (a photo whose
-- model changes gets a new one). Only a cache: deleting rows is always safe.
CREATE TABLE IF NOT EXISTS thumbnails (
  id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  model TEXT NOT NULL CHECK (length(model) = 16),
  scale INTEGER NOT NULL CHECK (scale IN (1, 2, 4, 8)),
  png   BLOB NOT NULL,
  PRIMARY KEY (id, model)
) WITHOUT ROWID;

-- mrtarchive's bookkeeping (idempotent, optional for hand-written SQL):
-- the SHA-256 of each photo's original bytes, for de-duplication on ingest,
CREATE TABLE IF NOT EXISTS image_sha256 (
  id     INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
  sha256 TEXT NOT NULL CHECK (length(sha256) = 64)  -- lower-case hex
);
CREATE INDEX IF NOT EXISTS image_sha256_sha256 ON image_sha256(sha256);

-- and the files an ingest could not store, with why (cleared when a later
-- run stores the name).
CREATE TABLE IF NOT EXISTS ingest_errors (
  id      INTEGER PRIMARY KEY,
  name    TEXT NOT NULL,     -- the name it would have had in `images`
  source  TEXT,              -- where it was read from (a path, or archive:entry)
  time    INTEGER NOT NULL,  -- Unix seconds
  message TEXT NOT NULL
);

PRAGMA user_version = 2;             -- the schema version; mrtarchive refuses versions it does not know
