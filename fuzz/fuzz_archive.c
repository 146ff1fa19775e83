/*
 * fuzz_archive.c -- libFuzzer harness for `mrtarchive add`'s archive
 * import: the input is a tarball or zip (gzip, xz, ... around it: any
 * format and filter libarchive reads), handed to add_archive() exactly as
 * `mrtarchive add photos.tar` does, into an in-memory archive with the
 * fuzz model (fuzz_model.h). The harness links mrtarchive's own library
 * (archive-tool/mrtarchive.h), so the code under test is the command's.
 *
 * Besides "no crash, leak or UB" it checks: every name stored obeys the
 * name rule (name_is_safe: relative, no '..', UTF-8 without control
 * characters) and the schema's CHECK; every stored bitstream's header
 * reads back; the names agree with the counts of stored and duplicate
 * members; an in-memory archive never stops taking images.
 *
 * Run (see fuzz/README.md):
 *     ./fuzz_archive -max_total_time=600 -timeout=10 -close_fd_mask=2 work/archive seeds/archive
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mrtarchive.h"

#include "fuzz_expect.h"
#include "fuzz_model.h"

static char model_path[512], input_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = getenv("TMPDIR");
    snprintf(model_path, sizeof model_path, "%s/mrt-fuzz-archive-model-XXXXXX",
             dir && *dir ? dir : "/tmp");
    snprintf(input_path, sizeof input_path, "%s/mrt-fuzz-archive-input-XXXXXX",
             dir && *dir ? dir : "/tmp");
    int fd = mkstemp(model_path), in = mkstemp(input_path);
    mrt_error err;
    if (fd < 0 || in < 0 || mrt_fuzz_model_write(model_path, &err) != MRT_OK) {
        fprintf(stderr, "fuzz_archive: cannot write the model or the input file\n");
        exit(1);
    }
    close(fd), close(in);
    opt.model = model_path;
    opt.quiet = 1;
    /* what `add` resolves before its first file: the model set and the
     * model every input is encoded with */
    if (resolve_encoder() != 0) {
        fprintf(stderr, "fuzz_archive: cannot load the fuzz model\n");
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(input_path, "wb");
    EXPECT(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "writing %s", input_path);
    memset(&ing, 0, sizeof ing);
    opt.archive = ":memory:";
    EXPECT(open_archive(ARCHIVE_CREATE) == 0, "cannot open the in-memory archive");
    add_archive(input_path);
    tx_commit();
    deferred_add_all();
    tx_commit();
    /* every name stored is a safe one, every bitstream readable */
    sqlite3_stmt *st = prep("SELECT n.name, i.data FROM names n JOIN images i USING (id)");
    long names = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        EXPECT(name && name_is_safe(name), "stored an unsafe name");
        mrt_info info;
        mrt_error err;
        EXPECT(mrt_info_read(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                             &info, &err) == MRT_OK,
               "stored bitstream of %s: %s", name, err.message);
        names++;
    }
    sqlite3_finalize(st);
    /* (a name stored twice, with other bytes the second time, is one name) */
    EXPECT(names <= ing.stored + ing.duplicates && (names > 0 || ing.stored == 0),
           "%ld names for %ld stored and %ld duplicates", names, ing.stored, ing.duplicates);
    EXPECT(!ing.stopped, "an in-memory archive stopped taking images: %s", ing.stopped_why);
    sqlite3_close(db);
    db = NULL;
    return 0;
}
