/* scanner - the libclamav engine: load, compile, share, scan from memory.
 *
 * Public functions: mq_scanner_new(), mq_scanner_new_clamd(), mq_scanner_ref(),
 * mq_scanner_unref(),
 * mq_scanner_signatures(), mq_scanner_describe(), mq_scanner_build_times(),
 * mq_scanner_check(), mq_scanner_scan().
 *
 * One compiled engine is shared, read-only, by every worker thread; it is
 * reference counted so that a reload can build a new engine while batches
 * still run on the old one, and the old one is freed when its last user is
 * done. Only scanner.c includes <clamav.h>.
 *
 * The same interface fronts a farm of clamd daemons (mq_scanner_new_clamd(),
 * see clamd.h): the verdicts, and the rule that no answer is no verdict, are
 * the same for both engines.
 *
 * A scan verdict is not an error: mq_scanner_scan() returns a verdict, and
 * returns -1 only when the engine could not give one (MQ_ERROR_ENGINE). A
 * scan that hits a configured limit is the verdict MQ_SCAN_UNSCANNABLE, never
 * "clean"; so is one that libclamav would finish without reading all of an
 * object (zip64 members, zip methods it does not know, zip members it would
 * cut at MaxFileSize: names "Unsupported.*" and "Heuristics.Limits.*"; with
 * clamd, only for a zip handed in, not one inside another archive).
 *
 * DIAGNOSTICS
 * mq_scanner_new() returns NULL with MQ_ERROR_ENGINE when the database
 * directory has no signatures or they fail to load or compile. Misuse
 * (unref of a freed engine) panics.
 */
#ifndef MQSCAN_SCANNER_H
#define MQSCAN_SCANNER_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

struct mq_scanner;

struct mq_scanner_limits {
    uint64_t max_scan_size;     /* CL_ENGINE_MAX_SCANSIZE */
    uint64_t max_file_size;     /* CL_ENGINE_MAX_FILESIZE */
    unsigned max_recursion;     /* CL_ENGINE_MAX_RECURSION */
    unsigned max_files;         /* CL_ENGINE_MAX_FILES */
    unsigned max_scan_time_ms;  /* CL_ENGINE_MAX_SCANTIME */
};

enum mq_scan_verdict {
    MQ_SCAN_CLEAN,
    MQ_SCAN_INFECTED,           /* *name_r is the signature name */
    MQ_SCAN_UNSCANNABLE,        /* a limit was hit, or content could not be
                                   read; *name_r says which */
    MQ_SCAN_ENCRYPTED,          /* an encrypted archive ("Heuristics.Encrypted.*") */
};

/* Loads every database in db_dir, applies limits, compiles. tmp_dir (may be
 * NULL for libclamav's default) receives libclamav's temporary files.
 * Returns a new engine with one reference, or NULL with err set.
 * Thread-safe; cl_init() is called once per process. */
struct mq_scanner *mq_scanner_new(const char *db_dir, const char *tmp_dir,
                                  const struct mq_scanner_limits *limits,
                                  GError **err);

/* An engine that scans through clamd (servers as in clamd.h). Nothing is
 * loaded locally; the servers are not contacted here (see --lint).
 * Returns a new engine with one reference, or NULL with err set. */
struct mq_scanner *mq_scanner_new_clamd(const char *const *servers, unsigned timeout_ms,
                                        GError **err);

/* The engine config asks for: clamd, or libclamav with config's database
 * and limits (temporary files in tmp_dir, NULL for libclamav's default). */
struct mq_config;
struct mq_scanner *mq_scanner_from_config(const struct mq_config *config, const char *tmp_dir,
                                          GError **err);

/* Adds a reference; returns scanner. */
struct mq_scanner *mq_scanner_ref(struct mq_scanner *scanner);
/* Drops a reference and sets *scanner to NULL; frees on the last one. */
void mq_scanner_unref(struct mq_scanner **scanner);

/* Number of signatures loaded. */
unsigned mq_scanner_signatures(const struct mq_scanner *scanner);
/* "libclamav 1.4.6, 4 signatures, database version N" - borrowed, valid
 * while the caller holds a reference. */
const char *mq_scanner_describe(const struct mq_scanner *scanner);

/* What building the engine cost, in seconds of wall time: loading the
 * databases (cl_load) into *load_r and compiling them into *compile_r.
 * Both are 0 for clamd, where nothing is built here. */
void mq_scanner_build_times(const struct mq_scanner *scanner, double *load_r,
                            double *compile_r);

/* For --lint: the description, and for clamd the VERSION of the first
 * server that answers (so an unreachable farm is found before mail is).
 * Caller frees; NULL with MQ_ERROR_ENGINE if no clamd answers. */
char *mq_scanner_check(struct mq_scanner *scanner, GError **err);

/* Scans len bytes of buf (which need not be NUL-terminated). name_hint is
 * used only in libclamav's own messages and may be NULL. Returns a verdict
 * (>= 0); for INFECTED, UNSCANNABLE and ENCRYPTED *name_r is set (caller frees with
 * g_free()), otherwise it is set to NULL. Returns -1 with err
 * (MQ_ERROR_ENGINE) when no verdict could be reached. */
int mq_scanner_scan(struct mq_scanner *scanner, const void *buf, size_t len,
                    const char *name_hint, char **name_r, GError **err);

#endif
