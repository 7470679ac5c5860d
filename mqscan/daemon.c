#include <config.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/attempts.h"
#include "mqscan/batch.h"
#include "mqscan/daemon.h"
#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/notify.h"
#include "mqscan/process.h"
#include "mqscan/quarantine.h"
#include "mqscan/queue.h"
#include "mqscan/rules.h"
#include "mqscan/spam.h"
#include "mqscan/scanner.h"
#include "mqscan/stats.h"
#include "mqscan/template.h"
#include "mqscan/watch.h"

/* How long --once keeps retrying messages that sendmail still has locked. */
#define DAEMON_ONCE_LOCK_WAIT_MS 30000
#define DAEMON_LOCKED_RETRY_MS 500
/* How often the main thread looks for a message past message_time_limit. */
#define DAEMON_WATCHDOG_TICK_US (250 * 1000)
#define DAEMON_COMMIT_GROUP 16
#define DAEMON_COMMIT_DELAY_US (20 * 1000)
/* The records of messages being processed, under state_dir. */
#define DAEMON_ATTEMPTS_DIR "processing"

/* Everything built from one configuration; replaced whole on reload. */
struct daemon_runtime {
    struct mq_config *config;
    struct mq_scanner *scanner;
    struct mq_queue *incoming;
    struct mq_queue *outgoing;
    struct mq_quarantine *quarantine;
    struct mq_rules *rules;
    struct mq_templates *templates;
    struct mq_spam *spam;
    struct mq_watch *watch;
    struct mq_attempts *attempts;
    struct mq_process_ctx ctx;
    int statefd;
};

struct daemon_stats {
    unsigned long counts[MQ_OUTCOME_COUNT];
    uint64_t bytes;
    uint64_t stage_us[MQ_STAGE_COUNT];  /* summed over every message, all workers */
    uint64_t after_batch_us;            /* statistics, notices, heartbeat (main thread) */
};

/* A batch: its tasks, and which of them run on their own. */
struct daemon_batch {
    GPtrArray *tasks;           /* struct daemon_task *, every one, owned */
    GPtrArray *common;          /* handed to the workers together */
    GPtrArray *alone;           /* suspects: one at a time, after the others */
};

struct mq_daemon {
    struct daemon_runtime *rt;
    struct mq_batcher *batcher;
    GThreadPool *pool;
    unsigned pool_size;
    GAsyncQueue *done;
    bool watching;
    /* reload */
    int reload_fd;                  /* eventfd: the reload thread is finished */
    GThread *reload_thread;
    struct daemon_runtime *reload_result;
    GError *reload_error;
    GThread *retire_thread;         /* frees the runtime the last reload replaced */
    struct daemon_stats stats;
    struct mq_stats *stats_db;      /* NULL if it cannot be opened: counted nowhere */
    long heartbeat_pid;             /* the pid the pid file names */
    /* The next batch, already with the workers while the last one is
     * committed and recorded; see daemon_prefetch(). */
    struct daemon_batch *next;
    int signal_fd;
    bool stopping;
};

struct daemon_task {
    const struct mq_process_ctx *ctx;
    struct mq_attempts *attempts;
    char *id;
    gint64 started_us;          /* set by the worker (atomic); 0: not started */
    bool finished;              /* set by the main thread once popped */
    struct mq_process_result result;
};

void
mq_daemon_block_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* A closed socket to spamd or clamd later must not kill us. */
    signal(SIGPIPE, SIG_IGN);
}

static void
daemon_runtime_free(struct daemon_runtime **rtp)
{
    struct daemon_runtime *rt = *rtp;

    if (rt == NULL)
        return;
    mq_watch_free(&rt->watch);
    mq_attempts_free(&rt->attempts);
    mq_rules_free(&rt->rules);
    mq_templates_free(&rt->templates);
    mq_spam_free(&rt->spam);
    mq_quarantine_free(&rt->quarantine);
    mq_queue_free(&rt->incoming);
    mq_queue_free(&rt->outgoing);
    mq_scanner_unref(&rt->scanner);
    mq_config_free(&rt->config);
    if (rt->statefd >= 0)
        close(rt->statefd);
    g_free(rt);
    *rtp = NULL;
}

/* The attempt records under config's state_dir; see daemon_runtime_new(). */
static struct mq_attempts *
daemon_attempts_open(const struct mq_config *config, GError **err)
{
    char *path = g_build_filename(config->state_dir, DAEMON_ATTEMPTS_DIR, NULL);
    struct mq_attempts *attempts = mq_attempts_open(path, err);

    g_free(path);
    return attempts;
}

/* A runtime for config. The attempt records are opened here only at start
 * (with_attempts): opening them counts the attempts left in their slots as
 * crashed, so a reload, built while the old runtime's batches still run,
 * leaves them to daemon_reload_finish(). */
static struct daemon_runtime *
daemon_runtime_new(struct mq_config *config, bool watch, bool with_attempts, GError **err)
{
    struct daemon_runtime *rt = g_new0(struct daemon_runtime, 1);
    const char *own_dirs[] = { config->hold_dir, config->state_dir, config->scan_tmp_dir };

    rt->config = config;
    rt->statefd = -1;
    for (size_t i = 0; i < G_N_ELEMENTS(own_dirs); i++) {
        if (mq_fs_mkdir_p(own_dirs[i], 0700, err) < 0)
            goto fail_config;
    }
    if ((rt->incoming = mq_queue_open(config->incoming_queue_dir, err)) == NULL ||
        (rt->outgoing = mq_queue_open(config->outgoing_queue_dir, err)) == NULL ||
        (rt->quarantine = mq_quarantine_open(config->quarantine_dir, err)) == NULL ||
        (rt->statefd = mq_fs_open_dir(config->state_dir, err)) < 0)
        goto fail_config;
    if (with_attempts && (rt->attempts = daemon_attempts_open(config, err)) == NULL)
        goto fail_config;
    if (watch) {
        GError *error = NULL;
        rt->watch = mq_watch_new(config->incoming_queue_dir, &error);
        if (rt->watch == NULL) {
            mq_log_warn("%s; relying on rescans every %u s", error->message,
                        config->rescan_interval);
            g_error_free(error);
        }
    }
    if ((rt->rules = mq_rules_load(config->filename_rules, config->filetype_rules, err)) == NULL ||
        (rt->templates = mq_templates_load(config->template_dir, config->language, err)) == NULL)
        goto fail_config;
    if (config->spam_checks && (rt->spam = mq_spam_new(config, err)) == NULL)
        goto fail_config;
    rt->scanner = mq_scanner_from_config(config, config->scan_tmp_dir, err);
    if (rt->scanner == NULL)
        goto fail;
    rt->ctx.config = rt->config;
    rt->ctx.scanner = rt->scanner;
    mq_queue_set_outgoing(rt->incoming, rt->outgoing);
    rt->ctx.incoming = rt->incoming;
    rt->ctx.outgoing = rt->outgoing;
    rt->ctx.quarantine = rt->quarantine;
    rt->ctx.quarantine_on_outgoing_fs = mq_fs_same_fs(config->quarantine_dir,
                                                      config->outgoing_queue_dir);
    rt->ctx.rules = rt->rules;
    rt->ctx.templates = rt->templates;
    rt->ctx.spam = rt->spam;
    return rt;

fail_config:
    if (err != NULL && *err != NULL)
        (*err)->code = MQ_ERROR_CONFIG;
fail:
    daemon_runtime_free(&rt);
    return NULL;
}

static void
daemon_worker(gpointer data, gpointer user_data)
{
    struct daemon_task *task = data;
    GAsyncQueue *done = user_data;
    unsigned earlier = mq_attempts_begin(task->attempts, task->id);

    __atomic_store_n(&task->started_us, g_get_monotonic_time(), __ATOMIC_RELEASE);
    if (earlier >= task->ctx->config->max_attempts)
        mq_process_poison(task->ctx, task->id, earlier, &task->result);
    else
        mq_process_message(task->ctx, task->id, &task->result);
    mq_attempts_end(task->attempts, task->id);
    g_async_queue_push(done, task);
}

static struct mq_batch_limits
daemon_batch_limits(const struct mq_config *c)
{
    struct mq_batch_limits lim = { c->batch_max_messages, c->batch_max_bytes,
                                   c->batch_max_wait_ms };
    return lim;
}

static void
daemon_set_pool(struct mq_daemon *d)
{
    unsigned want = d->rt->config->workers;

    if (d->pool != NULL && d->pool_size == want)
        return;
    if (d->pool != NULL)
        g_thread_pool_free(d->pool, FALSE, TRUE);
    d->pool = g_thread_pool_new(daemon_worker, d->done, (gint)want, TRUE, NULL);
    d->pool_size = want;
}

struct mq_daemon *
mq_daemon_new(struct mq_config *config, bool watch, GError **err)
{
    struct mq_daemon *d;
    struct daemon_runtime *rt;
    struct mq_batch_limits lim = daemon_batch_limits(config);

    rt = daemon_runtime_new(config, watch, true, err);
    if (rt == NULL)
        return NULL;
    d = g_new0(struct mq_daemon, 1);
    d->rt = rt;
    d->watching = watch;
    d->batcher = mq_batcher_new(&lim);
    d->done = g_async_queue_new();
    d->heartbeat_pid = (long)getpid();
    d->reload_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->signal_fd = -1;
    if (d->reload_fd < 0)
        mq_log_fatal(EX_OSERR, "eventfd: %s", g_strerror(errno));
    /* No thread may exist yet: the program may still fork to detach, and
     * threads do not survive a fork. The pool is made in mq_daemon_run(). */
    return d;
}

void
mq_daemon_free(struct mq_daemon **daemon)
{
    struct mq_daemon *d = *daemon;

    if (d == NULL)
        return;
    if (d->reload_thread != NULL)
        g_thread_join(d->reload_thread);
    if (d->retire_thread != NULL)
        g_thread_join(d->retire_thread);
    daemon_runtime_free(&d->reload_result);
    g_clear_error(&d->reload_error);
    if (d->pool != NULL)
        g_thread_pool_free(d->pool, FALSE, TRUE);
    g_async_queue_unref(d->done);
    mq_batcher_free(&d->batcher);
    mq_stats_close(&d->stats_db);
    daemon_runtime_free(&d->rt);
    close(d->reload_fd);
    g_free(d);
    *daemon = NULL;
}

char *
mq_daemon_lint(const struct mq_config *c, GError **err)
{
    const struct { const char *what, *path; bool must_exist; } dirs[] = {
        { "incoming_queue_dir", c->incoming_queue_dir, true },
        { "outgoing_queue_dir", c->outgoing_queue_dir, true },
        { "clamav_database_dir", c->clamav_database_dir, true },
        { "quarantine_dir", c->quarantine_dir, false },
        { "hold_dir", c->hold_dir, false },
        { "state_dir", c->state_dir, false },
        { "scan_tmp_dir", c->scan_tmp_dir, false },
    };
    GString *report = g_string_new(NULL);
    struct mq_scanner *scanner;
    struct mq_rules *rules;
    struct mq_templates *templates;
    struct stat st;

    for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
        errno = 0;
        if (stat(dirs[i].path, &st) == 0 && S_ISDIR(st.st_mode))
            continue;
        if (dirs[i].must_exist) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s: %s %s: %s", c->file, dirs[i].what,
                        dirs[i].path, errno == 0 || errno == EEXIST ? "not a directory"
                                                                     : g_strerror(errno));
            g_string_free(report, TRUE);
            return NULL;
        }
        g_string_append_printf(report, "note: %s %s does not exist yet; mqscand creates it\n",
                               dirs[i].what, dirs[i].path);
    }
    rules = mq_rules_load(c->filename_rules, c->filetype_rules, err);
    if (rules == NULL)
        goto fail_config;
    g_string_append_printf(report, "rules: %zu from %s and %s\n", mq_rules_count(rules),
                           c->filename_rules, c->filetype_rules);
    mq_rules_free(&rules);
    templates = mq_templates_load(c->template_dir, c->language, err);
    if (templates == NULL)
        goto fail_config;
    g_string_append_printf(report, "templates: %s/%s\n", c->template_dir, c->language);
    mq_templates_free(&templates);
    if (c->spam_checks) {
        struct mq_spam *spam = mq_spam_new(c, err);
        char *what;
        if (spam == NULL)
            goto fail_config;
        what = mq_spam_describe(spam);
        g_string_append_printf(report, "spam: %s\n", what);
        g_free(what);
        mq_spam_free(&spam);
    } else {
        g_string_append(report, "spam: checks off (spam_checks = false)\n");
    }
    scanner = mq_scanner_from_config(c, stat(c->scan_tmp_dir, &st) == 0 ? c->scan_tmp_dir : NULL,
                                 err);
    if (scanner == NULL) {
        g_string_free(report, TRUE);
        return NULL;
    }
    {
        char *line = mq_scanner_check(scanner, err);
        mq_scanner_unref(&scanner);
        if (line == NULL) {
            g_string_free(report, TRUE);
            return NULL;
        }
        g_string_append_printf(report, "engine: %s\n", line);
        g_free(line);
    }
    return g_string_free(report, FALSE);

fail_config:
    if (err != NULL && *err != NULL)
        (*err)->code = MQ_ERROR_CONFIG;
    g_string_free(report, TRUE);
    return NULL;
}

void
mq_daemon_set_heartbeat_pid(struct mq_daemon *daemon, long pid)
{
    daemon->heartbeat_pid = pid;
}

const char *
mq_daemon_describe(const struct mq_daemon *daemon)
{
    return mq_scanner_describe(daemon->rt->scanner);
}

static int64_t
daemon_now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

static void
daemon_offer(struct mq_daemon *d, const char *id, int64_t now)
{
    uint64_t size;
    time_t mtime;

    if (mq_queue_stat(d->rt->incoming, id, &size, &mtime) == 0)
        mq_batcher_offer(d->batcher, id, size, now);
}

static void
daemon_rescan(struct mq_daemon *d, int64_t now)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    GHashTable *present = g_hash_table_new(g_str_hash, g_str_equal);
    GError *error = NULL;

    if (mq_queue_list(d->rt->incoming, ids, &error) < 0) {
        mq_log_error("rescan: %s", error->message);
        g_error_free(error);
    } else {
        for (guint i = 0; i < ids->len; i++) {
            g_hash_table_add(present, g_ptr_array_index(ids, i));
            daemon_offer(d, g_ptr_array_index(ids, i), now);
        }
        mq_batcher_sync(d->batcher, present);
        mq_attempts_sync(d->rt->attempts, present);
    }
    g_hash_table_destroy(present);
    g_ptr_array_unref(ids);
}

static void
daemon_heartbeat(struct mq_daemon *d)
{
    char line[128];
    GError *error = NULL;
    int n = g_snprintf(line, sizeof(line), "%ld %lld %lu\n", d->heartbeat_pid, (long long)time(NULL),
                       d->stats.counts[MQ_OUTCOME_DELIVERED] + d->stats.counts[MQ_OUTCOME_PASSED] +
                       d->stats.counts[MQ_OUTCOME_CLEANED] +
                       d->stats.counts[MQ_OUTCOME_QUARANTINED] +
                       d->stats.counts[MQ_OUTCOME_DELETED] + d->stats.counts[MQ_OUTCOME_HELD]);

    if (mq_fs_write_atomic(d->rt->statefd, "heartbeat.tmp", "heartbeat", line, (size_t)n,
                           &error) < 0) {
        mq_log_warn("heartbeat: %s", error->message);
        g_error_free(error);
    }
}

/* Renders a mail template whose first line is "Subject: ..." and queues it. */
static void
daemon_send(struct mq_daemon *d, enum mq_template_kind kind, const char *const *vars,
            const char *to, const char *what)
{
    const char *const rcpts[] = { to, NULL };
    char *text = mq_templates_render(d->rt->templates, kind, vars), *id;
    GError *error = NULL;

    id = mq_notify_send_rendered(d->rt->config, d->rt->outgoing, rcpts, text, &error);
    if (id == NULL) {
        mq_log_error("%s to <%s> not sent: %s", what, to, error->message);
        g_error_free(error);
    } else {
        mq_log_info("%s: %s queued for <%s>", id, what, to);
    }
    g_free(id);
    g_free(text);
}

/* One report per batch to the postmaster (a worm flood must not become a
 * mail flood), and a notice to each internal sender. Never to an outside
 * sender unless configured: that address is usually forged. */
static void
daemon_notify(struct mq_daemon *d, GPtrArray *reports)
{
    const struct mq_config *c = d->rt->config;
    GDateTime *now = g_date_time_new_now_local();
    char *date = g_date_time_format(now, "%a, %d %b %Y %H:%M:%S %z");

    if (c->notify_postmaster && reports->len > 0) {
        GString *entries = g_string_new(NULL);
        char count[16];
        for (guint i = 0; i < reports->len; i++) {
            const struct mq_process_report *r = g_ptr_array_index(reports, i);
            char **lines = g_strsplit(r->findings, "\n", -1);
            char *found = g_strjoinv("\n  ", lines);
            g_string_append_printf(entries,
                                   "Queue ID:   %s\nFrom:       <%s>\nTo:         %s\n"
                                   "Subject:    %s\nDirection:  %s\nAction:     %s\n"
                                   "Quarantine: %s\nFound:\n  %s\n\n",
                                   r->queue_id, r->sender, r->recipients, r->subject,
                                   r->direction, r->action, r->quarantine_id, found);
            g_free(found);
            g_strfreev(lines);
        }
        g_snprintf(count, sizeof(count), "%u", reports->len);
        {
            const char *vars[] = { "count", count, "entries", entries->str, "date", date,
                                   "hostname", c->hostname, "postmaster", c->postmaster, NULL };
            daemon_send(d, MQ_TEMPLATE_REPORT, vars, c->postmaster, "postmaster report");
        }
        g_string_free(entries, TRUE);
    }
    for (guint i = 0; i < reports->len; i++) {
        const struct mq_process_report *r = g_ptr_array_index(reports, i);
        bool tell = r->sender_internal ? c->notify_internal_senders : c->notify_external_senders;
        if (!tell || r->postmaster_only || r->sender[0] == '\0' || strchr(r->sender, '@') == NULL)
            continue;
        {
            const char *vars[] = { "subject", r->subject, "recipients", r->recipients,
                                   "findings", r->findings, "queue_id", r->queue_id,
                                   "date", date, "hostname", c->hostname,
                                   "postmaster", c->postmaster, "sender", r->sender, NULL };
            daemon_send(d, MQ_TEMPLATE_SENDER, vars, r->sender, "sender notice");
        }
    }
    g_free(date);
    g_date_time_unref(now);
}

/* (Re)opens the statistics database in state_dir. Only ever after any
 * fork: an SQLite handle must not cross one. */
static void
daemon_open_stats(struct mq_daemon *d)
{
    char *path = g_build_filename(d->rt->config->state_dir, MQ_STATS_FILE, NULL);
    GError *error = NULL;

    mq_stats_close(&d->stats_db);
    d->stats_db = mq_stats_open(path, true, &error);
    if (d->stats_db == NULL) {
        mq_log_warn("statistics disabled: %s", error->message);
        g_error_free(error);
    }
    g_free(path);
}

/* Counts the batch in the statistics database; a failure costs only the
 * counts, never mail. */
static void
daemon_record(struct mq_daemon *d, GPtrArray *tasks)
{
    struct mq_stats_sample *samples;
    GError *error = NULL;
    time_t now = time(NULL);
    size_t n = 0;

    if (d->stats_db == NULL)
        return;
    samples = g_new0(struct mq_stats_sample, tasks->len);
    for (guint i = 0; i < tasks->len; i++) {
        const struct daemon_task *t = g_ptr_array_index(tasks, i);
        const struct mq_process_result *r = &t->result;
        if (r->outcome == MQ_OUTCOME_SKIPPED)
            continue;
        samples[n++] = (struct mq_stats_sample){
            .when = now, .outcome = r->outcome, .bytes = r->size,
            .finding_kinds = r->finding_kinds,
            .virus_names = r->report ? (const char *const *)r->report->virus_names : NULL,
            .sender = r->report ? r->report->sender : NULL,
        };
    }
    if (n > 0 && mq_stats_add(d->stats_db, samples, n, &error) < 0) {
        mq_log_warn("statistics not recorded: %s", error->message);
        g_error_free(error);
    }
    g_free(samples);
}

/* A message past message_time_limit: a worker thread cannot be stopped,
 * so the process stops, leaving the message's attempt recorded; the
 * supervisor starts a new process, which retries the message on its own
 * and holds it after max_attempts. Nothing in flight is lost: no message
 * leaves the incoming queue before its result is durable. */
static void
daemon_watchdog(struct mq_daemon *d, GPtrArray *tasks)
{
    const struct mq_config *c = d->rt->config;
    gint64 now = g_get_monotonic_time();

    for (guint i = 0; i < tasks->len; i++) {
        struct daemon_task *t = g_ptr_array_index(tasks, i);
        gint64 started = __atomic_load_n(&t->started_us, __ATOMIC_ACQUIRE);
        if (t->finished || started == 0 ||
            now - started < (gint64)c->message_time_limit * G_USEC_PER_SEC)
            continue;
        mq_log_error("%s: still being processed after %u s (message_time_limit); stopping the "
                     "scanner process (attempt %u of %u)", t->id, c->message_time_limit,
                     mq_attempts_count(t->attempts, t->id), c->max_attempts);
        _exit(EX_SOFTWARE);
    }
}

/* The results of tasks from index from on, made durable together; see
 * mq_process_commit(). */
static void
daemon_commit(struct mq_daemon *d, GPtrArray *tasks, guint from)
{
    struct mq_process_result **results = g_new(struct mq_process_result *, tasks->len + 1);

    for (guint i = from; i < tasks->len; i++)
        results[i - from] = &((struct daemon_task *)g_ptr_array_index(tasks, i))->result;
    mq_process_commit(&d->rt->ctx, results, tasks->len - from);
    g_free(results);
}

static void daemon_prefetch(struct mq_daemon *d, bool once);

/* Waits until the workers are done with tasks (already handed to them),
 * watching the time each one takes. Group commit while the workers go on:
 * results are committed together once DAEMON_COMMIT_GROUP of them wait, or
 * the oldest has waited DAEMON_COMMIT_DELAY_US, or the last is in, and
 * never while another result is ready to join them. Each commit costs a
 * file system sync and two directory fsyncs whatever its size, so the
 * groups amortise it; a slow disk makes them larger still. If last, the
 * next batch goes to the workers before the final commit. */
static void
daemon_run_tasks(struct mq_daemon *d, GPtrArray *tasks, bool last, bool once)
{
    GPtrArray *done = g_ptr_array_new();
    guint committed = 0;
    gint64 oldest = 0;          /* when the oldest uncommitted result came */

    while (done->len < tasks->len) {
        guint64 wait = DAEMON_WATCHDOG_TICK_US;
        gint64 now = g_get_monotonic_time();
        struct daemon_task *t;

        if (done->len > committed)
            wait = (guint64)MAX(0, MIN((gint64)wait, oldest + DAEMON_COMMIT_DELAY_US - now));
        t = g_async_queue_timeout_pop(d->done, wait);
        now = g_get_monotonic_time();
        if (t == NULL) {
            daemon_watchdog(d, tasks);
        } else {
            t->finished = true;
            if (done->len == committed)
                oldest = now;
            g_ptr_array_add(done, t);
        }
        if (done->len == tasks->len && last)
            daemon_prefetch(d, once);
        /* The last group always: what waits in the queue now belongs to
         * the next batch. */
        if (done->len > committed
            && (done->len == tasks->len
                || (g_async_queue_length(d->done) <= 0
                    && (done->len - committed >= DAEMON_COMMIT_GROUP
                        || now - oldest >= DAEMON_COMMIT_DELAY_US)))) {
            daemon_commit(d, done, committed);
            committed = done->len;
        }
    }
    g_ptr_array_unref(done);
}

/* Makes the tasks of a batch of ids and hands the common ones to the
 * workers. Messages with unfinished earlier attempts (the process died
 * while they were in hand) are kept apart, to run one at a time after the
 * others, so that the next crash is blamed on the message that caused it
 * and not on whatever ran beside it. */
static struct daemon_batch *
daemon_batch_start(struct mq_daemon *d, GPtrArray *ids)
{
    struct daemon_batch *b = g_new0(struct daemon_batch, 1);

    b->tasks = g_ptr_array_new();
    b->common = g_ptr_array_new();
    b->alone = g_ptr_array_new();
    for (guint i = 0; i < ids->len; i++) {
        struct daemon_task *task = g_new0(struct daemon_task, 1);
        task->ctx = &d->rt->ctx;
        task->attempts = d->rt->attempts;
        task->id = g_strdup(g_ptr_array_index(ids, i));
        g_ptr_array_add(b->tasks, task);
        g_ptr_array_add(mq_attempts_count(task->attempts, task->id) > 0 ? b->alone : b->common,
                        task);
    }
    for (guint i = 0; i < b->common->len; i++)
        g_thread_pool_push(d->pool, g_ptr_array_index(b->common, i), NULL);
    return b;
}

/* True if fd has something to read. */
static bool
daemon_readable(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
}

/* Starts the next batch, if one is due, while the main thread finishes the
 * last one (its final commit, statistics, notices): the workers need not
 * wait for the disk between batches. Not when a signal or a finished
 * reload waits: those are acted on between batches, with none in hand
 * (a reload replaces the runtime the tasks point to). */
static void
daemon_prefetch(struct mq_daemon *d, bool once)
{
    int64_t wake;
    GPtrArray *ids;

    if (d->next != NULL || d->stopping || daemon_readable(d->signal_fd)
        || daemon_readable(d->reload_fd))
        return;
    ids = mq_batcher_take(d->batcher, daemon_now_ms(), once, &wake);
    if (ids == NULL)
        return;
    d->next = daemon_batch_start(d, ids);
    g_ptr_array_unref(ids);
}

/* Runs a started batch to completion, and frees it. In once mode,
 * messages that cannot be finished are forgotten and counted in *left. */
static void
daemon_run_batch(struct mq_daemon *d, struct daemon_batch *batch, bool once,
                 int64_t once_deadline, unsigned *left)
{
    GPtrArray *tasks = batch->tasks, *reports = g_ptr_array_new();
    int64_t now;
    gint64 after_start;

    daemon_run_tasks(d, batch->common, batch->alone->len == 0, once);
    for (guint i = 0; i < batch->alone->len; i++) {
        struct daemon_task *task = g_ptr_array_index(batch->alone, i);
        GPtrArray *one = g_ptr_array_new();
        g_ptr_array_add(one, task);
        mq_log_info("%s: %u earlier attempt(s) did not finish; processing it on its own",
                    task->id, mq_attempts_count(task->attempts, task->id));
        g_thread_pool_push(d->pool, task, NULL);
        daemon_run_tasks(d, one, i + 1 == batch->alone->len, once);
        g_ptr_array_unref(one);
    }
    g_ptr_array_unref(batch->common);
    g_ptr_array_unref(batch->alone);
    for (guint i = 0; i < tasks->len; i++) {
        struct daemon_task *task = g_ptr_array_index(tasks, i);
        enum mq_outcome o = task->result.outcome;

        now = daemon_now_ms();
        d->stats.counts[o]++;
        if (o == MQ_OUTCOME_SKIPPED && !(once && now > once_deadline)) {
            mq_batcher_defer(d->batcher, task->id, now + DAEMON_LOCKED_RETRY_MS);
        } else if ((o == MQ_OUTCOME_DEFERRED || o == MQ_OUTCOME_SKIPPED) && once) {
            mq_batcher_done(d->batcher, task->id);
            (*left)++;
        } else if (o == MQ_OUTCOME_DEFERRED) {
            mq_batcher_defer(d->batcher, task->id,
                             now + (int64_t)d->rt->config->retry_interval * 1000);
        } else {
            d->stats.bytes += task->result.size;
            mq_batcher_done(d->batcher, task->id);
        }
        if (task->result.report != NULL)
            g_ptr_array_add(reports, task->result.report);
        for (int s = 0; s < MQ_STAGE_COUNT; s++)
            d->stats.stage_us[s] += task->result.stage_us[s];
    }
    after_start = g_get_monotonic_time();
    daemon_record(d, tasks);
    daemon_notify(d, reports);
    for (guint i = 0; i < tasks->len; i++) {
        struct daemon_task *task = g_ptr_array_index(tasks, i);
        mq_process_result_clear(&task->result);
        g_free(task->id);
        g_free(task);
    }
    g_ptr_array_unref(reports);
    g_ptr_array_unref(tasks);
    g_free(batch);
    daemon_heartbeat(d);
    d->stats.after_batch_us += (uint64_t)(g_get_monotonic_time() - after_start);
}

static gpointer
daemon_reload_thread(gpointer data)
{
    struct mq_daemon *d = data;
    struct mq_config *config;
    GError *error = NULL;
    uint64_t one = 1;

    config = mq_config_load(d->rt->config->file, &error);
    if (config != NULL)
        d->reload_result = daemon_runtime_new(config, d->watching, false, &error);
    if (d->reload_result == NULL)
        d->reload_error = error;
    if (write(d->reload_fd, &one, sizeof(one)) < 0)
        mq_log_error("reload: cannot wake the main loop: %s", g_strerror(errno));
    return NULL;
}

/* Frees the runtime a reload replaced. With a production database the
 * engine in it takes most of a second to free (cl_engine_free() over
 * millions of signatures); on this thread the new engine scans meanwhile,
 * instead of every worker waiting for the main loop. */
static gpointer
daemon_retire_thread(gpointer data)
{
    struct daemon_runtime *rt = data;

    daemon_runtime_free(&rt);
    return NULL;
}

/* Gives the new runtime the attempt records, with no batch in hand: the
 * open ones if state_dir is the same, else those of the new state_dir. If
 * those cannot be opened, the old ones go on being used (logged). */
static void
daemon_reload_attempts(struct daemon_runtime *old, struct daemon_runtime *new)
{
    GError *error = NULL;

    if (strcmp(old->config->state_dir, new->config->state_dir) != 0) {
        new->attempts = daemon_attempts_open(new->config, &error);
        if (new->attempts != NULL)
            return;
        mq_log_error("reload: %s; attempts are still recorded under %s", error->message,
                     old->config->state_dir);
        g_error_free(error);
    }
    new->attempts = old->attempts;
    old->attempts = NULL;
}

/* Called between batches once the reload thread is done. */
static void
daemon_reload_finish(struct mq_daemon *d)
{
    uint64_t v;
    struct mq_batch_limits lim;
    bool same_queue;

    if (read(d->reload_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        mq_log_warn("reload: %s", g_strerror(errno));
    g_thread_join(d->reload_thread);
    d->reload_thread = NULL;
    if (d->reload_result == NULL) {
        mq_log_error("reload failed, keeping the running configuration and signatures: %s",
                     d->reload_error ? d->reload_error->message : "unknown error");
        g_clear_error(&d->reload_error);
        return;
    }
    same_queue = strcmp(d->reload_result->config->incoming_queue_dir,
                        d->rt->config->incoming_queue_dir) == 0;
    daemon_reload_attempts(d->rt, d->reload_result);
    /* The previous reload's retirement is long finished: a reload takes
     * far longer than freeing. No batch uses the old runtime any more. */
    if (d->retire_thread != NULL)
        g_thread_join(d->retire_thread);
    d->retire_thread = g_thread_new("retire", daemon_retire_thread, d->rt);
    d->rt = d->reload_result;
    d->reload_result = NULL;
    mq_log_set_level(d->rt->config->log_level);
    lim = daemon_batch_limits(d->rt->config);
    if (same_queue) {
        mq_batcher_set_limits(d->batcher, &lim);
    } else {
        mq_batcher_free(&d->batcher);
        d->batcher = mq_batcher_new(&lim);
        daemon_rescan(d, daemon_now_ms());
    }
    daemon_set_pool(d);
    daemon_open_stats(d);     /* state_dir may have changed */
    mq_log_info("reloaded %s: %s", d->rt->config->file, mq_scanner_describe(d->rt->scanner));
}

/* Where the workers' time went, stage by stage, and how long they waited
 * while the main loop finished each batch. */
static void
daemon_summary_stages(struct mq_daemon *d)
{
    GString *line = g_string_new(NULL);
    uint64_t busy = 0;

    for (int s = 0; s < MQ_STAGE_COUNT; s++)
        busy += d->stats.stage_us[s];
    for (int s = 0; s < MQ_STAGE_COUNT; s++)
        g_string_append_printf(line, "%s%s %.3f s %.1f%%", s ? ", " : "",
                               mq_process_stage_name((enum mq_process_stage)s),
                               (double)d->stats.stage_us[s] / 1e6,
                               busy > 0 ? 100.0 * (double)d->stats.stage_us[s] / (double)busy : 0.0);
    mq_log_info("stages (total %.3f s, %u workers): %s; after batches %.3f s", (double)busy / 1e6,
                d->pool_size, line->str, (double)d->stats.after_batch_us / 1e6);
    g_string_free(line, TRUE);
}

static void
daemon_summary(struct mq_daemon *d, double seconds)
{
    const unsigned long *c = d->stats.counts;
    unsigned long total = c[MQ_OUTCOME_DELIVERED] + c[MQ_OUTCOME_PASSED] + c[MQ_OUTCOME_CLEANED] +
                          c[MQ_OUTCOME_QUARANTINED] + c[MQ_OUTCOME_DELETED] + c[MQ_OUTCOME_HELD];

    mq_log_info("processed %lu messages (%lu clean, %lu passed, %lu cleaned, %lu quarantined, "
                "%lu deleted, %lu held), %lu deferred, %.1f MB in %.2f s (%.1f msg/s)",
                total, c[MQ_OUTCOME_DELIVERED], c[MQ_OUTCOME_PASSED], c[MQ_OUTCOME_CLEANED],
                c[MQ_OUTCOME_QUARANTINED],
                c[MQ_OUTCOME_DELETED], c[MQ_OUTCOME_HELD], c[MQ_OUTCOME_DEFERRED],
                (double)d->stats.bytes / 1e6, seconds, seconds > 0 ? (double)total / seconds : 0.0);
    daemon_summary_stages(d);
}

int
mq_daemon_run(struct mq_daemon *d, bool once)
{
    sigset_t set;
    int sfd;
    unsigned left = 0;
    int64_t start = daemon_now_ms(), next_rescan = 0, next_heartbeat = 0;
    int64_t once_deadline = start + DAEMON_ONCE_LOCK_WAIT_MS;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        mq_log_fatal(EX_OSERR, "signalfd: %s", g_strerror(errno));
    d->signal_fd = sfd;
    d->stopping = false;
    daemon_set_pool(d);
    daemon_open_stats(d);

    daemon_rescan(d, start);
    if (once)
        mq_log_info("%zu messages in %s", mq_batcher_count(d->batcher),
                    d->rt->config->incoming_queue_dir);
    next_rescan = start + (int64_t)d->rt->config->rescan_interval * 1000;

    while (!d->stopping) {
        int64_t now = daemon_now_ms(), wake = INT64_MAX, timeout;
        struct daemon_batch *batch = g_steal_pointer(&d->next);
        GPtrArray *taken;
        struct pollfd pfd[3];
        int nfds = 0;

        if (once && mq_batcher_count(d->batcher) == 0)
            break;
        if (!once && now >= next_rescan) {
            daemon_rescan(d, now);
            next_rescan = now + (int64_t)d->rt->config->rescan_interval * 1000;
        }
        if (!once && now >= next_heartbeat) {
            /* Alive even when idle, so a health check can tell idle from hung. */
            daemon_heartbeat(d);
            next_heartbeat = now + (int64_t)d->rt->config->rescan_interval * 1000;
        }
        if (batch == NULL && (taken = mq_batcher_take(d->batcher, now, once, &wake)) != NULL) {
            batch = daemon_batch_start(d, taken);
            g_ptr_array_unref(taken);
        }
        if (batch != NULL) {
            daemon_run_batch(d, batch, once, once_deadline, &left);
            timeout = 0;    /* check signals and wake-ups, then go on */
        } else {
            int64_t until = once ? wake : MIN(wake, MIN(next_rescan, next_heartbeat));
            timeout = until == INT64_MAX ? -1 : MAX(0, until - now);
            if (timeout > 60000)
                timeout = 60000;
        }

        pfd[nfds++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        pfd[nfds++] = (struct pollfd){ .fd = d->reload_fd, .events = POLLIN };
        if (d->rt->watch != NULL && !once)
            pfd[nfds++] = (struct pollfd){ .fd = mq_watch_fd(d->rt->watch), .events = POLLIN };
        if (poll(pfd, (nfds_t)nfds, (int)timeout) < 0 && errno != EINTR)
            mq_log_fatal(EX_OSERR, "poll: %s", g_strerror(errno));

        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                    if (d->reload_thread != NULL) {
                        mq_log_info("SIGHUP: a reload is already under way");
                    } else {
                        mq_log_info("SIGHUP: reloading %s", d->rt->config->file);
                        d->reload_thread = g_thread_new("reload", daemon_reload_thread, d);
                    }
                } else {
                    mq_log_info("signal %u: stopping", si.ssi_signo);
                    d->stopping = true;
                }
            }
        }
        if ((pfd[1].revents & POLLIN) && d->next == NULL)
            daemon_reload_finish(d);
        if (nfds > 2 && (pfd[2].revents & POLLIN)) {
            GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
            now = daemon_now_ms();
            if (mq_watch_read(d->rt->watch, ids)) {
                mq_log_warn("inotify queue overflow; rescanning %s", d->rt->config->incoming_queue_dir);
                next_rescan = now;
            }
            for (guint i = 0; i < ids->len; i++)
                daemon_offer(d, g_ptr_array_index(ids, i), now);
            g_ptr_array_unref(ids);
        }
    }

    /* The batch started before the signal came is finished, not dropped. */
    if (d->next != NULL)
        daemon_run_batch(d, g_steal_pointer(&d->next), once, once_deadline, &left);
    close(sfd);
    d->signal_fd = -1;
    daemon_summary(d, (double)(daemon_now_ms() - start) / 1000.0);
    if (once && left > 0) {
        mq_log_error("%u messages left in %s (could not be scanned or claimed)", left,
                     d->rt->config->incoming_queue_dir);
        return EX_TEMPFAIL;
    }
    return 0;
}
