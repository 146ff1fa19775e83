/*
 * mrt_sqlite.h -- the mrt SQL functions for programs that link them
 * statically (CMake target `mrt_sqlite_static`, built with -DSQLITE_CORE).
 *
 * The loadable flavour (`mrt.so`) needs no header: sqlite3 finds its entry
 * point sqlite3_mrt_init by name. See ext/README.md for the functions.
 */
#ifndef MRT_SQLITE_H
#define MRT_SQLITE_H

#include <sqlite3.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Registers every mrt_* SQL function on `db`. Returns SQLITE_OK or the
 * code of the first registration that failed. Calling it again on the same
 * connection replaces the functions (and their per-connection state). */
int mrt_sqlite_register(sqlite3 *db);

/* The extension entry point, usable with sqlite3_auto_extension() so that
 * every connection the program opens gets the functions. */
int sqlite3_mrt_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

/* How many model files are loaded in this process right now (shared by all
 * connections; each is freed when the last connection using it closes).
 * A diagnostic, and what tests/ext/test_ext_threads.c checks. */
int mrt_sqlite_models_loaded(void);

#ifdef __cplusplus
}
#endif

#endif /* MRT_SQLITE_H */
