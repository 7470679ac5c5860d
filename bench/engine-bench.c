/* engine-bench - what the libclamav engine costs with a given database.
 *
 * engine-bench [-t THREADS]... [--tmpdir DIR] DBDIR FILE|DIR...
 *
 * For each thread count (-t, repeatable; 1 and 2 if none is given) a fresh
 * engine is built from DBDIR exactly as mqscand builds it (mqscan/scanner.h,
 * the daemon's default limits), and then:
 *
 *   - the time cl_load() and cl_engine_compile() took, and the resident
 *     memory (VmRSS) once the engine is compiled; for the first engine also
 *     the peak (VmHWM) of the load;
 *   - every message (each FILE, and each regular file directly in each DIR,
 *     read into memory beforehand) is scanned whole, as mqscand scans a
 *     message, by THREADS threads sharing the one engine: once with its
 *     clean-file cache empty (the cost of new mail) and once more (content
 *     seen before); messages per second and MB/s of message;
 *   - VmRSS after the scans (threads share the engine: it should not grow
 *     with the thread count), and how long dropping the engine took and
 *     VmRSS after it.
 *
 * libclamav's temporary files go to --tmpdir (default: its own default);
 * give it a tmpfs directory, as the daemon's scan_tmp_dir should be.
 *
 * Exit status: 0, 1 if any scan failed, 2 on usage or load errors.
 */
#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "mqscan/log.h"
#include "mqscan/scanner.h"

/* The defaults of mqscan.conf(5), so that the engine is the daemon's. */
static const struct mq_scanner_limits bench_limits = {
    .max_scan_size = 128u << 20,
    .max_file_size = 64u << 20,
    .max_recursion = 16,
    .max_files = 10000,
    .max_scan_time_ms = 120000,
};

struct bench_set {
    GPtrArray *names;           /* char *, owned */
    GPtrArray *data;            /* GBytes *, owned */
    guint64 bytes;
};

struct bench_run {
    struct mq_scanner *scanner; /* borrowed */
    const struct bench_set *set;
    gint next;                  /* next message to scan (atomic) */
    gint verdicts[4];           /* by enum mq_scan_verdict (atomic) */
    gint errors;                /* atomic */
};

/* VmRSS or VmHWM of this process in MB, from /proc/self/status. */
static double
bench_vm_mb(const char *field)
{
    char *status = NULL, *line;
    double mb = -1;

    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL))
        return -1;
    line = strstr(status, field);
    if (line != NULL)
        mb = (double)g_ascii_strtoull(line + strlen(field) + 1, NULL, 10) / 1024.0;
    g_free(status);
    return mb;
}

static void
bench_add_file(struct bench_set *set, const char *path)
{
    GError *err = NULL;
    char *buf = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &buf, &len, &err)) {
        fprintf(stderr, "engine-bench: %s\n", err->message);
        exit(2);
    }
    g_ptr_array_add(set->names, g_strdup(path));
    g_ptr_array_add(set->data, g_bytes_new_take(buf, len));
    set->bytes += len;
}

static gint
bench_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every FILE, and every regular file directly in each DIR, in name order. */
static void
bench_read_set(struct bench_set *set, char **paths)
{
    for (int i = 0; paths[i] != NULL; i++) {
        GPtrArray *names;
        GDir *dir;
        const char *n;

        if (!g_file_test(paths[i], G_FILE_TEST_IS_DIR)) {
            bench_add_file(set, paths[i]);
            continue;
        }
        dir = g_dir_open(paths[i], 0, NULL);
        if (dir == NULL) {
            fprintf(stderr, "engine-bench: cannot read %s\n", paths[i]);
            exit(2);
        }
        names = g_ptr_array_new_with_free_func(g_free);
        while ((n = g_dir_read_name(dir)) != NULL) {
            char *p = g_build_filename(paths[i], n, NULL);
            if (g_file_test(p, G_FILE_TEST_IS_REGULAR))
                g_ptr_array_add(names, p);
            else
                g_free(p);
        }
        g_dir_close(dir);
        g_ptr_array_sort(names, bench_cmp);
        for (guint k = 0; k < names->len; k++)
            bench_add_file(set, g_ptr_array_index(names, k));
        g_ptr_array_unref(names);
    }
}

static gpointer
bench_worker(gpointer data)
{
    struct bench_run *run = data;
    gint i;

    while ((i = g_atomic_int_add(&run->next, 1)) < (gint)run->set->data->len) {
        GBytes *b = g_ptr_array_index(run->set->data, i);
        GError *err = NULL;
        char *name = NULL;
        int v = mq_scanner_scan(run->scanner, g_bytes_get_data(b, NULL), g_bytes_get_size(b),
                                g_ptr_array_index(run->set->names, i), &name, &err);

        if (v < 0) {
            if (g_atomic_int_add(&run->errors, 1) == 0)
                fprintf(stderr, "engine-bench: %s: %s\n",
                        (const char *)g_ptr_array_index(run->set->names, i), err->message);
            g_clear_error(&err);
        } else if (v < (int)G_N_ELEMENTS(run->verdicts)) {
            g_atomic_int_inc(&run->verdicts[v]);
        }
        g_free(name);
    }
    return NULL;
}

/* One pass over the set with n threads; prints one line, returns the
 * number of failed scans. */
static int
bench_scan(struct mq_scanner *scanner, const struct bench_set *set, unsigned n,
           const char *what)
{
    struct bench_run run = { .scanner = scanner, .set = set };
    GThread **threads = g_new0(GThread *, n);
    gint64 t0 = g_get_monotonic_time();
    double s;

    for (unsigned i = 0; i < n; i++)
        threads[i] = g_thread_new("scan", bench_worker, &run);
    for (unsigned i = 0; i < n; i++)
        g_thread_join(threads[i]);
    s = (double)(g_get_monotonic_time() - t0) / 1e6;
    g_free(threads);
    printf("  scan, %u thread%s, %s: %u messages, %.1f MB in %.2f s: %.0f msg/s, %.1f MB/s"
           " (clean %d, infected %d, unscannable %d, encrypted %d, errors %d)\n",
           n, n == 1 ? "" : "s", what, set->data->len, (double)set->bytes / 1e6, s,
           (double)set->data->len / s, (double)set->bytes / 1e6 / s,
           run.verdicts[MQ_SCAN_CLEAN], run.verdicts[MQ_SCAN_INFECTED],
           run.verdicts[MQ_SCAN_UNSCANNABLE], run.verdicts[MQ_SCAN_ENCRYPTED], run.errors);
    return run.errors;
}

static void
usage(void)
{
    fprintf(stderr, "usage: engine-bench [-t THREADS]... [--tmpdir DIR] DBDIR FILE|DIR...\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "threads", required_argument, NULL, 't' },
        { "tmpdir", required_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 },
    };
    GArray *counts = g_array_new(FALSE, FALSE, sizeof(unsigned));
    struct bench_set set = { g_ptr_array_new_with_free_func(g_free),
                             g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref), 0 };
    const char *tmpdir = NULL;
    int opt, failed = 0;

    while ((opt = getopt_long(argc, argv, "t:", longopts, NULL)) != -1) {
        unsigned n;
        switch (opt) {
        case 't':
            n = (unsigned)strtoul(optarg, NULL, 10);
            if (n < 1 || n > 64)
                usage();
            g_array_append_val(counts, n);
            break;
        case 'T': tmpdir = optarg; break;
        default: usage();
        }
    }
    if (argc - optind < 2)
        usage();
    argv += optind;
    if (counts->len == 0) {
        unsigned def[] = { 1, 2 };
        g_array_append_vals(counts, def, G_N_ELEMENTS(def));
    }
    mq_log_open("engine-bench", MQ_LOG_SINK_STDERR);
    mq_log_set_level(MQ_LOG_ERROR);   /* not the warnings about each odd message */

    bench_read_set(&set, &argv[1]);
    printf("message set: %u messages, %.1f MB (read into memory)\n", set.data->len,
           (double)set.bytes / 1e6);
    printf("before any engine: VmRSS %.0f MB\n", bench_vm_mb("VmRSS:"));
    for (guint c = 0; c < counts->len; c++) {
        unsigned n = g_array_index(counts, unsigned, c);
        GError *err = NULL;
        gint64 t0 = g_get_monotonic_time();
        struct mq_scanner *scanner = mq_scanner_new(argv[0], tmpdir, &bench_limits, &err);
        double load, compile, s;

        if (scanner == NULL) {
            fprintf(stderr, "engine-bench: %s\n", err->message);
            return 2;
        }
        s = (double)(g_get_monotonic_time() - t0) / 1e6;
        mq_scanner_build_times(scanner, &load, &compile);
        printf("engine %u (for %u thread%s): %s\n", c + 1, n, n == 1 ? "" : "s",
               mq_scanner_describe(scanner));
        printf("  load %.2f s, compile %.2f s, engine ready in %.2f s\n", load, compile, s);
        printf("  VmRSS %.0f MB after compile", bench_vm_mb("VmRSS:"));
        if (c == 0)
            printf(" (peak while loading, VmHWM: %.0f MB)", bench_vm_mb("VmHWM:"));
        printf("\n");
        failed += bench_scan(scanner, &set, n, "cold cache");
        failed += bench_scan(scanner, &set, n, "warm cache");
        printf("  VmRSS %.0f MB after scanning with %u thread%s\n", bench_vm_mb("VmRSS:"), n,
               n == 1 ? "" : "s");
        t0 = g_get_monotonic_time();
        mq_scanner_unref(&scanner);
        printf("  engine freed in %.2f s; VmRSS %.0f MB after\n",
               (double)(g_get_monotonic_time() - t0) / 1e6, bench_vm_mb("VmRSS:"));
    }
    g_array_unref(counts);
    g_ptr_array_unref(set.names);
    g_ptr_array_unref(set.data);
    return failed > 0 ? 1 : 0;
}
