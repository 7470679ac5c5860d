/* scan-floor - the least work a scanner of these messages must do, for
 * "make bench": GMime parse and libclamav scan, nothing else.
 *
 * Usage: scan-floor -c CONFIG [-j WORKERS] QUEUEDIR
 *        scan-floor -c CONFIG --verify QUEUEDIR [ID...]
 *
 * Reads every qf/df pair of QUEUEDIR (a sendmail queue) into memory first
 * and builds each message as mqscand does (the qf's header block, a blank
 * line, the df). Then WORKERS threads (default: the configuration's
 * "workers") take the messages in turn and, for each, parse it with GMime,
 * scan it whole and scan every decoded leaf, through mqscan's own message
 * and scanner modules with the engine, signatures and limits the
 * configuration gives mqscand. No queue I/O, no rules, no spam checks, no
 * rebuild: what is left is the floor mqscand's throughput is measured
 * against. Prints one line of key=value pairs:
 *
 *   floor: messages=N bytes=B workers=W seconds=S user=U sys=Y clean=N
 *          infected=N unscannable=N errors=N
 *
 * (seconds: wall time of the scanning alone; user and sys: CPU seconds of
 * the process over the same time). Exit status 0, or 2 on any error.
 *
 * --verify scans every message of QUEUEDIR whole (the outgoing queue after
 * a run), or only the queue IDs given, prints "verify: messages=N clean=N
 * notclean=N" and one line per message that is not clean, and exits 1 if
 * any is not clean (2 if a given ID is not there).
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/config.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/message.h"
#include "mqscan/qf.h"
#include "mqscan/scanner.h"

struct floor_msg {
    char id[MQ_ID_MAX + 1];
    GString *text;          /* header block, blank line, body */
    size_t headers_len;     /* header block, without the blank line */
};

struct floor_run {
    const struct mq_config *config;
    struct mq_scanner *scanner;
    GPtrArray *msgs;        /* struct floor_msg * */
    gint next;              /* next message to take */
    gint counts[4];         /* clean, infected, unscannable, errors */
};

static void
floor_msg_free(gpointer p)
{
    struct floor_msg *m = p;

    g_string_free(m->text, TRUE);
    g_free(m);
}

static gint
floor_cmp_id(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads path/<kind>f<id> whole. */
static char *
floor_read(int dirfd, char kind, const char *id, size_t *len_r)
{
    char name[MQ_ID_MAX + 3], *buf = NULL;
    GError *error = NULL;
    int fd;

    g_snprintf(name, sizeof(name), "%cf%s", kind, id);
    fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || mq_fs_read_fd(fd, G_MAXSIZE / 2, &buf, len_r, &error) < 0) {
        fprintf(stderr, "scan-floor: %s: %s\n", name,
                error != NULL ? error->message : g_strerror(errno));
        exit(2);
    }
    close(fd);
    return buf;
}

/* Every message of the queue in dir, in queue ID order; or with only
 * (NULL-terminated, may be empty), those. */
static GPtrArray *
floor_load(const char *dir, char **only)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *msgs = g_ptr_array_new_with_free_func(floor_msg_free);
    GError *error = NULL;
    DIR *d = opendir(dir);
    struct dirent *de;
    int dfd;

    if (d == NULL) {
        fprintf(stderr, "scan-floor: %s: %s\n", dir, g_strerror(errno));
        exit(2);
    }
    dfd = dirfd(d);
    while (only[0] == NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == 'q' && de->d_name[1] == 'f' && mq_fs_id_ok(de->d_name + 2))
            g_ptr_array_add(ids, g_strdup(de->d_name + 2));
    }
    for (; *only != NULL; only++) {
        if (!mq_fs_id_ok(*only)) {
            fprintf(stderr, "scan-floor: not a queue ID: %s\n", *only);
            exit(2);
        }
        g_ptr_array_add(ids, g_strdup(*only));
    }
    g_ptr_array_sort(ids, floor_cmp_id);
    for (guint i = 0; i < ids->len; i++) {
        const char *id = g_ptr_array_index(ids, i);
        struct floor_msg *m = g_new0(struct floor_msg, 1);
        size_t qf_len, df_len;
        char *qf_raw = floor_read(dfd, 'q', id, &qf_len);
        char *df = floor_read(dfd, 'd', id, &df_len);
        struct mq_qf *qf = mq_qf_parse(qf_raw, qf_len, &error);

        if (qf == NULL) {
            fprintf(stderr, "scan-floor: qf%s: %s\n", id, error->message);
            exit(2);
        }
        g_strlcpy(m->id, id, sizeof(m->id));
        m->text = g_string_sized_new(qf_len + df_len + 1);
        mq_qf_headers_text(qf, m->text);
        m->headers_len = m->text->len;
        g_string_append_c(m->text, '\n');
        g_string_append_len(m->text, df, (gssize)df_len);
        g_ptr_array_add(msgs, m);
        mq_qf_free(&qf);
        g_free(qf_raw);
        g_free(df);
    }
    closedir(d);
    g_ptr_array_unref(ids);
    return msgs;
}

static void
floor_count(struct floor_run *run, int verdict)
{
    g_atomic_int_inc(&run->counts[verdict < 0 ? 3 : MIN(verdict, 2)]);
}

static int
floor_scan(struct floor_run *run, const void *data, size_t len, const char *hint)
{
    GError *error = NULL;
    char *name = NULL;
    int verdict = mq_scanner_scan(run->scanner, data, len, hint, &name, &error);

    if (verdict < 0) {
        fprintf(stderr, "scan-floor: %s: %s\n", hint ? hint : "?", error->message);
        g_error_free(error);
    }
    g_free(name);
    return verdict;
}

static int
floor_leaf(const struct mq_message_leaf *leaf, const void *data, size_t len, void *ctx,
           GError **err)
{
    floor_count(ctx, floor_scan(ctx, data, len, leaf->filename));
    return 0;
}

/* What every worker does: take the next message until none is left. */
static gpointer
floor_worker(gpointer data)
{
    struct floor_run *run = data;
    struct mq_message_limits limits = { run->config->max_mime_depth,
                                        run->config->max_mime_parts };
    guint i;

    while ((i = (guint)g_atomic_int_add(&run->next, 1)) < run->msgs->len) {
        const struct floor_msg *m = g_ptr_array_index(run->msgs, i);
        const char *body = m->text->str + m->headers_len + 1;
        struct mq_message *msg = mq_message_parse(m->text->str, m->headers_len, body,
                                                  m->text->len - m->headers_len - 1, &limits, NULL);

        floor_count(run, floor_scan(run, m->text->str, m->text->len, m->id));
        if (msg != NULL)
            mq_message_foreach_leaf(msg, &limits, floor_leaf, run, NULL);
        mq_message_free(&msg);
    }
    return NULL;
}

static double
floor_tv(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static int
floor_measure(struct floor_run *run, unsigned workers)
{
    GThread **threads = g_new0(GThread *, workers);
    struct rusage ru0, ru1;
    uint64_t bytes = 0;
    gint64 start;
    double seconds;

    for (guint i = 0; i < run->msgs->len; i++)
        bytes += ((struct floor_msg *)g_ptr_array_index(run->msgs, i))->text->len;
    getrusage(RUSAGE_SELF, &ru0);
    start = g_get_monotonic_time();
    for (unsigned i = 0; i < workers; i++)
        threads[i] = g_thread_new("floor", floor_worker, run);
    for (unsigned i = 0; i < workers; i++)
        g_thread_join(threads[i]);
    seconds = (double)(g_get_monotonic_time() - start) / 1e6;
    getrusage(RUSAGE_SELF, &ru1);
    printf("floor: messages=%u bytes=%" G_GUINT64_FORMAT " workers=%u seconds=%.3f user=%.3f "
           "sys=%.3f clean=%d infected=%d unscannable=%d errors=%d\n",
           run->msgs->len, bytes, workers, seconds,
           floor_tv(&ru1.ru_utime) - floor_tv(&ru0.ru_utime),
           floor_tv(&ru1.ru_stime) - floor_tv(&ru0.ru_stime), run->counts[0], run->counts[1],
           run->counts[2], run->counts[3]);
    g_free(threads);
    return run->counts[3] > 0 ? 2 : 0;
}

static int
floor_verify(struct floor_run *run)
{
    unsigned bad = 0;

    for (guint i = 0; i < run->msgs->len; i++) {
        const struct floor_msg *m = g_ptr_array_index(run->msgs, i);
        GError *error = NULL;
        char *name = NULL;
        int verdict = mq_scanner_scan(run->scanner, m->text->str, m->text->len, m->id, &name,
                                      &error);

        if (verdict != MQ_SCAN_CLEAN) {
            printf("verify: %s: %s\n", m->id,
                   verdict < 0 ? error->message : name != NULL ? name : "?");
            bad++;
        }
        g_clear_error(&error);
        g_free(name);
    }
    printf("verify: messages=%u clean=%u notclean=%u\n", run->msgs->len,
           run->msgs->len - bad, bad);
    return bad > 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "workers", required_argument, NULL, 'j' },
        { "verify", no_argument, NULL, 'v' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL;
    struct floor_run run = { 0 };
    struct mq_config *config;
    GError *error = NULL;
    unsigned workers = 0;
    bool verify = false;
    int opt, status;

    while ((opt = getopt_long(argc, argv, "c:j:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'j': workers = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'v': verify = true; break;
        default: goto usage;
        }
    }
    if (config_path == NULL || optind >= argc || (!verify && optind + 1 != argc))
        goto usage;

    mq_log_open("scan-floor", MQ_LOG_SINK_STDERR);
    config = mq_config_load(config_path, &error);
    if (config == NULL) {
        fprintf(stderr, "scan-floor: %s\n", error->message);
        return 2;
    }
    mq_log_set_level(config->log_level);
    if (workers == 0)
        workers = config->workers;
    if (mq_fs_mkdir_p(config->scan_tmp_dir, 0700, &error) < 0 ||
        (run.scanner = mq_scanner_from_config(config, config->scan_tmp_dir, &error)) == NULL) {
        fprintf(stderr, "scan-floor: %s\n", error->message);
        return 2;
    }
    run.config = config;
    run.msgs = floor_load(argv[optind], argv + optind + 1);
    status = verify ? floor_verify(&run) : floor_measure(&run, workers);
    g_ptr_array_unref(run.msgs);
    mq_scanner_unref(&run.scanner);
    mq_config_free(&config);
    return status;

usage:
    fprintf(stderr, "usage: scan-floor -c CONFIG [-j WORKERS] QUEUEDIR\n"
                    "       scan-floor -c CONFIG --verify QUEUEDIR [ID...]\n");
    return 2;
}
