/* mq-scanfile - scan whole files with mqscan's scanner module.
 *
 * Usage: mq-scanfile DBDIR FILE...
 *        mq-scanfile [--clamd SERVER]... [--timeout MS] [--tmpdir DIR] [--bench]
 *                    DBDIR|-- FILE...
 *        mq-scanfile --clamd SERVER... [--timeout MS] --version
 *
 * With DBDIR only (the first form), the libclamav engine scans each file and
 * one line per file is printed: "FILE: CLEAN", "FILE: INFECTED NAME",
 * "FILE: UNSCANNABLE NAME" or "FILE: ENCRYPTED NAME". With --clamd (repeat
 * it for failover; SERVER as in mqscan/clamd.h) and "--" in place of DBDIR,
 * the clamd engine does the same. With both, every file goes through both
 * engines and the line is "FILE: libclamav=VERDICT[:NAME] clamd=VERDICT[:NAME]"
 * (VERDICT one of the words above, or ERROR).
 *
 * Exit status: 0 if every file is clean, 1 if any is infected, unscannable
 * or encrypted, 2 on any error (an unreadable file, an engine that does not
 * load, a failed scan). The end-to-end test uses the first form to prove
 * that delivered messages are clean and quarantined originals are not.
 *
 * --version prints the VERSION of the first clamd server that answers (exit
 * 0), or the error (exit 2): the shell tests wait for clamd with it.
 *
 * --bench reads every file into memory first, then scans all of them whole,
 * one at a time, with each engine in turn, twice, and prints one line per
 * engine and pass: "ENGINE pass N (cold|warm cache): N messages, BYTES
 * bytes, SECONDS s, RATE msgs/s, MB/s; verdict counts"; exit status 2 if
 * any scan failed, else 0. The clean-file caches of libclamav and clamd
 * stay on, as in the daemon: pass 1 is the cost of new mail, pass 2 that of
 * content seen before. clamd's cache outlives this program, so pass 1 is
 * cold for clamd only on a clamd that has not seen the files.
 *
 * Limits are generous (scanning a test message must not stop on a limit)
 * but present, as in the daemon.
 */
#include <config.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "mqscan/clamd.h"
#include "mqscan/log.h"
#include "mqscan/scanner.h"

static const char *const verdict_words[] = {
    [MQ_SCAN_CLEAN] = "CLEAN",
    [MQ_SCAN_INFECTED] = "INFECTED",
    [MQ_SCAN_UNSCANNABLE] = "UNSCANNABLE",
    [MQ_SCAN_ENCRYPTED] = "ENCRYPTED",
};

static void
usage(void)
{
    fprintf(stderr, "usage: mq-scanfile DBDIR FILE...\n"
                    "       mq-scanfile [--clamd SERVER]... [--timeout MS] [--tmpdir DIR]"
                    " [--bench] DBDIR|-- FILE...\n"
                    "       mq-scanfile --clamd SERVER... [--timeout MS] --version\n");
    exit(2);
}

/* One scan; the verdict word and name go to *word_r and *name_r (name owned by
 * the caller, NULL if none). Returns the verdict or -1 (*word_r "ERROR",
 * *name_r the error message). */
static int
scan_one(struct mq_scanner *scanner, const void *data, size_t len, const char *path,
         const char **word_r, char **name_r)
{
    GError *err = NULL;
    int verdict = mq_scanner_scan(scanner, data, len, path, name_r, &err);

    if (verdict < 0 || verdict >= (int)G_N_ELEMENTS(verdict_words)) {
        *word_r = "ERROR";
        g_free(*name_r);
        *name_r = g_strdup(err != NULL ? err->message : "unknown verdict");
        g_clear_error(&err);
        return -1;
    }
    *word_r = verdict_words[verdict];
    return verdict;
}

static int
run_scan(struct mq_scanner *local, struct mq_scanner *clamd, char **files)
{
    int status = 0;

    for (int i = 0; files[i] != NULL; i++) {
        struct mq_scanner *engines[2] = { local, clamd };
        const char *labels[2] = { "libclamav", "clamd" };
        char *data = NULL;
        gsize len = 0;
        GError *err = NULL;

        if (!g_file_get_contents(files[i], &data, &len, &err)) {
            fprintf(stderr, "mq-scanfile: %s\n", err->message);
            g_clear_error(&err);
            status = 2;
            continue;
        }
        printf("%s:", files[i]);
        for (int e = 0; e < 2; e++) {
            const char *word;
            char *name = NULL;
            int verdict;

            if (engines[e] == NULL)
                continue;
            verdict = scan_one(engines[e], data, len, files[i], &word, &name);
            if (local != NULL && clamd != NULL) {
                printf(" %s=%s%s%s", labels[e], word, name != NULL ? ":" : "",
                       name != NULL && verdict >= 0 ? name : "");
            } else {
                printf(" %s%s%s", word, name != NULL && verdict >= 0 ? " " : "",
                       name != NULL && verdict >= 0 ? name : "");
            }
            if (verdict < 0) {
                fprintf(stderr, "mq-scanfile: %s: %s: %s\n", files[i], labels[e], name);
                status = 2;
            } else if (verdict != MQ_SCAN_CLEAN && status == 0) {
                status = 1;
            }
            g_free(name);
        }
        printf("\n");
        g_free(data);
    }
    return status;
}

/* One pass of every blob through one engine; prints one line. Returns the
 * number of failed scans. */
static unsigned
bench_pass(struct mq_scanner *engine, const char *label, int pass, GPtrArray *blobs,
           guint64 total)
{
    unsigned counts[G_N_ELEMENTS(verdict_words)] = { 0 }, errors = 0;
    gint64 t0 = g_get_monotonic_time();
    double secs;

    for (guint i = 0; i < blobs->len; i++) {
        GBytes *b = g_ptr_array_index(blobs, i);
        const char *word;
        char *name = NULL;
        int verdict = scan_one(engine, g_bytes_get_data(b, NULL), g_bytes_get_size(b), NULL,
                               &word, &name);

        if (verdict < 0) {
            if (errors++ == 0)
                fprintf(stderr, "mq-scanfile: %s: %s\n", label, name);
        } else {
            counts[verdict]++;
        }
        g_free(name);
    }
    secs = (double)(g_get_monotonic_time() - t0) / 1e6;
    printf("%s pass %d (%s cache): %u messages, %" G_GUINT64_FORMAT " bytes, %.3f s,"
           " %.0f msgs/s, %.1f MB/s; clean %u, infected %u, unscannable %u, encrypted %u,"
           " errors %u\n",
           label, pass, pass == 1 ? "cold" : "warm", blobs->len, total, secs,
           secs > 0 ? blobs->len / secs : 0.0, secs > 0 ? (double)total / 1e6 / secs : 0.0,
           counts[MQ_SCAN_CLEAN], counts[MQ_SCAN_INFECTED], counts[MQ_SCAN_UNSCANNABLE],
           counts[MQ_SCAN_ENCRYPTED], errors);
    return errors;
}

static int
run_bench(struct mq_scanner *local, struct mq_scanner *clamd, char **files)
{
    struct mq_scanner *engines[2] = { local, clamd };
    const char *labels[2] = { "libclamav", "clamd" };
    GPtrArray *blobs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    guint64 total = 0;
    int status = 0;

    for (int i = 0; files[i] != NULL; i++) {
        char *data = NULL;
        gsize len = 0;
        GError *err = NULL;

        if (!g_file_get_contents(files[i], &data, &len, &err)) {
            fprintf(stderr, "mq-scanfile: %s\n", err->message);
            g_clear_error(&err);
            status = 2;
            continue;
        }
        total += len;
        g_ptr_array_add(blobs, g_bytes_new_take(data, len));
    }
    /* Pass 1 sees each engine's clean-file cache empty (for clamd, only if
     * it has not seen these files before); pass 2 shows what the cache
     * does for content seen again. */
    for (int pass = 1; pass <= 2; pass++)
        for (int e = 0; e < 2; e++)
            if (engines[e] != NULL && bench_pass(engines[e], labels[e], pass, blobs, total) > 0)
                status = 2;
    g_ptr_array_unref(blobs);
    return status;
}

int
main(int argc, char **argv)
{
    const struct mq_scanner_limits limits = {
        .max_scan_size = 400u << 20,
        .max_file_size = 100u << 20,
        .max_recursion = 17,
        .max_files = 10000,
        .max_scan_time_ms = 120000,
    };
    GPtrArray *servers = g_ptr_array_new();
    struct mq_scanner *local = NULL, *clamd = NULL;
    const char *tmpdir = NULL, *dbdir;
    guint64 timeout_ms = 60000;
    bool bench = false, version = false;
    GError *err = NULL;
    int i, status = 2;

    mq_log_open("mq-scanfile", MQ_LOG_SINK_STDERR);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--clamd") == 0 && i + 1 < argc) {
            g_ptr_array_add(servers, argv[++i]);
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            if (!g_ascii_string_to_unsigned(argv[++i], 10, 1, 3600000, &timeout_ms, NULL))
                usage();
        } else if (strcmp(argv[i], "--tmpdir") == 0 && i + 1 < argc) {
            tmpdir = argv[++i];
        } else if (strcmp(argv[i], "--bench") == 0) {
            bench = true;
        } else if (strcmp(argv[i], "--version") == 0) {
            version = true;
        } else {
            break;
        }
    }
    if (version) {
        struct mq_clamd *client = NULL;
        char *v = NULL;

        if (argc != i || servers->len == 0)
            usage();
        g_ptr_array_add(servers, NULL);
        client = mq_clamd_new((const char *const *)servers->pdata, (unsigned)timeout_ms, &err);
        if (client != NULL)
            v = mq_clamd_version(client, &err);
        if (v != NULL) {
            printf("%s\n", v);
            status = 0;
        }
        g_free(v);
        mq_clamd_free(&client);
        goto out;
    }
    /* DBDIR (or "--") and at least one file. */
    if (argc - i < 2)
        usage();
    dbdir = argv[i++];
    if (strcmp(dbdir, "--") == 0 && servers->len == 0)
        usage();
    g_ptr_array_add(servers, NULL);

    if (strcmp(dbdir, "--") != 0) {
        local = mq_scanner_new(dbdir, tmpdir, &limits, &err);
        if (local == NULL)
            goto out;
    }
    if (servers->len > 1) {
        clamd = mq_scanner_new_clamd((const char *const *)servers->pdata, (unsigned)timeout_ms,
                                     &err);
        if (clamd == NULL)
            goto out;
    }
    status = bench ? run_bench(local, clamd, argv + i) : run_scan(local, clamd, argv + i);

out:
    if (err != NULL) {
        fprintf(stderr, "mq-scanfile: %s\n", err->message);
        g_clear_error(&err);
    }
    fflush(stdout);
    mq_scanner_unref(&clamd);
    mq_scanner_unref(&local);
    g_ptr_array_unref(servers);
    return status;
}
