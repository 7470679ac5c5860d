/* test-stats - the statistics database: what is counted where, the top
 * lists, hostile names, files that are not ours, and readers next to writers.
 *
 * Each test gets a fresh temporary directory DIR with the database
 * DIR/stats.db. Time is injected through the samples: DAY0 is
 * 2023-11-14T00:00:00Z. The tests look into the file with SQLite itself to
 * check what the API cannot show (journal mode, the tables after hostile
 * names) and to damage it on purpose.
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "mqscan/error.h"
#include "mqscan/policy.h"
#include "mqscan/process.h"
#include "mqscan/stats.h"

#include "testutil.h"

#define DAY0 ((time_t)1699920000)       /* 2023-11-14T00:00:00Z */
#define H ((time_t)3600)
#define D ((time_t)86400)
#define INFECTED MQ_STATS_FINDING(MQ_FINDING_INFECTED)
#define BANNED MQ_STATS_FINDING(MQ_FINDING_BANNED)
#define LIMITS MQ_STATS_FINDING(MQ_FINDING_LIMITS)
#define ENCRYPTED MQ_STATS_FINDING(MQ_FINDING_ENCRYPTED)
#define UNSCANNABLE MQ_STATS_FINDING(MQ_FINDING_UNSCANNABLE)

struct fixture {
    char *dir;
    char *path;                 /* DIR/stats.db */
    struct mq_stats *w;         /* writable handle on path */
};

/* ---- helpers --------------------------------------------------------------- */

static void
fixture_setup(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;

    f->dir = g_dir_make_tmp("test-stats-XXXXXX", &err);
    g_assert_no_error(err);
    f->path = g_build_filename(f->dir, MQ_STATS_FILE, NULL);
    f->w = mq_stats_open(f->path, true, &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->w);
}

static void
fixture_teardown(struct fixture *f, gconstpointer data)
{
    mq_stats_close(&f->w);
    g_assert_null(f->w);
    test_remove_tree(f->dir);
    g_free(f->dir);
    g_free(f->path);
}

static struct mq_stats_sample
sample(time_t when, enum mq_outcome outcome, uint64_t bytes, unsigned kinds,
       const char *const *names, const char *sender)
{
    struct mq_stats_sample s = { when, outcome, bytes, kinds, names, sender, false, 0 };
    return s;
}

static void
add(struct mq_stats *stats, const struct mq_stats_sample *s, size_t n)
{
    GError *err = NULL;

    g_assert_cmpint(mq_stats_add(stats, s, n, &err), ==, 0);
    g_assert_no_error(err);
}

static void
totals(struct mq_stats *stats, time_t from, time_t to, unsigned step,
       struct mq_stats_period **p_r, size_t *n_r)
{
    GError *err = NULL;

    g_assert_cmpint(mq_stats_totals(stats, from, to, step, p_r, n_r, &err), ==, 0);
    g_assert_no_error(err);
}

static void
top(struct mq_stats *stats, enum mq_stats_list list, time_t from, time_t to, size_t max,
    struct mq_stats_top **t_r, size_t *n_r)
{
    GError *err = NULL;

    g_assert_cmpint(mq_stats_top(stats, list, from, to, max, t_r, n_r, &err), ==, 0);
    g_assert_no_error(err);
}

/* Runs sql on path with a connection of its own. */
static void
sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;

    g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                    ==, SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        g_error("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* The first column of the first row of a query, as text (caller frees). */
static char *
sql_value(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *v = NULL;

    g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &st, NULL), ==, SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = g_strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void
assert_sql(const char *path, const char *sql, const char *expected)
{
    char *v = sql_value(path, sql);

    g_assert_cmpstr(v, ==, expected);
    g_free(v);
}

/* All four tables are there, whatever names went in. */
static void
assert_schema_intact(const char *path)
{
    assert_sql(path, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master "
                     "WHERE type = 'table' ORDER BY name)",
               "hours,schema_version,senders,viruses");
    assert_sql(path, "SELECT version FROM schema_version", "1");
}

static void
open_fails(const char *path, bool writable, int code, const char *pattern)
{
    GError *err = NULL;
    struct mq_stats *s = mq_stats_open(path, writable, &err);

    g_assert_null(s);
    g_assert_error(err, MQ_ERROR, code);
    if (!g_pattern_match_simple(pattern, err->message))
        g_error("error \"%s\" does not match \"%s\"", err->message, pattern);
    g_assert_nonnull(strstr(err->message, path));
    g_error_free(err);
}

/* ---- opening --------------------------------------------------------------- */

static void
test_open_create(struct fixture *f, gconstpointer data)
{
    struct mq_stats *r, *w2;
    GError *err = NULL;
    struct stat st;

    g_assert_cmpint(lstat(f->path, &st), ==, 0);
    g_assert_true(S_ISREG(st.st_mode));
    g_assert_cmpint(st.st_mode & 0137, ==, 0);     /* at most 0640 */
    assert_sql(f->path, "PRAGMA journal_mode", "wal");
    assert_schema_intact(f->path);
    assert_sql(f->path, "SELECT count(*) FROM hours", "0");

    /* A second writer (a reload) and a reader use the same file. */
    w2 = mq_stats_open(f->path, true, &err);
    g_assert_no_error(err);
    r = mq_stats_open(f->path, false, &err);
    g_assert_no_error(err);
    g_assert_nonnull(r);
    mq_stats_close(&w2);
    mq_stats_close(&r);
    g_assert_null(r);
    mq_stats_close(&r);         /* NULL is fine */
    assert_schema_intact(f->path);
}

static void
test_open_missing(struct fixture *f, gconstpointer data)
{
    char *missing = g_build_filename(f->dir, "nothing.db", NULL);
    char *nodir = g_build_filename(f->dir, "no", "such", "dir.db", NULL);

    open_fails(missing, false, MQ_ERROR_IO, "*No such file*");
    g_assert_false(g_file_test(missing, G_FILE_TEST_EXISTS));
    open_fails(nodir, true, MQ_ERROR_IO, "*No such file*");
    g_free(missing);
    g_free(nodir);
}

/* Files that are not our database are refused, never changed. */
static void
test_open_not_ours(struct fixture *f, gconstpointer data)
{
    static const struct {
        const char *name;
        const char *content;    /* NULL: a foreign SQLite database */
        int code;
        const char *pattern;
        bool writer_refused;    /* an empty file is a new database for a writer */
    } cases[] = {
        { "text.db", "this is not a database, just some text that is long enough to matter\n"
                     "0123456789012345678901234567890123456789012345678901234567890123456789\n",
          MQ_ERROR_CORRUPT, "*not a database*", true },
        { "empty.db", "", MQ_ERROR_CORRUPT, "*not an mqscan statistics database*", false },
        { "foreign.db", NULL, MQ_ERROR_CORRUPT, "*not an mqscan statistics database*", true },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *p = g_build_filename(f->dir, cases[i].name, NULL);
        char *before;
        gsize len;

        if (cases[i].content != NULL)
            g_assert_true(g_file_set_contents(p, cases[i].content, -1, NULL));
        else
            sql_exec(p, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)");
        g_assert_true(g_file_get_contents(p, &before, &len, NULL));
        open_fails(p, false, cases[i].code, cases[i].pattern);
        if (cases[i].writer_refused) {
            char *after;
            gsize len2;
            open_fails(p, true, cases[i].code, cases[i].pattern);
            g_assert_true(g_file_get_contents(p, &after, &len2, NULL));
            g_assert_cmpmem(before, len, after, len2);
            g_free(after);
        }
        g_free(before);
        g_free(p);
    }
}

static void
test_open_version(struct fixture *f, gconstpointer data)
{
    mq_stats_close(&f->w);
    sql_exec(f->path, "UPDATE schema_version SET version = 2");
    open_fails(f->path, false, MQ_ERROR_CORRUPT, "*schema version 2*");
    open_fails(f->path, true, MQ_ERROR_CORRUPT, "*schema version 2*");
    assert_sql(f->path, "SELECT version FROM schema_version", "2");
    sql_exec(f->path, "UPDATE schema_version SET version = 'one'");
    open_fails(f->path, false, MQ_ERROR_CORRUPT, "*not one version number*");
    sql_exec(f->path, "UPDATE schema_version SET version = 1; "
                      "INSERT INTO schema_version VALUES (1)");
    open_fails(f->path, false, MQ_ERROR_CORRUPT, "*not one version number*");
}

/* Only a regular file with one link: no symbolic link, directory, FIFO (which
 * would hang an open without O_NONBLOCK) or hard link. */
static void
test_open_file_type(struct fixture *f, gconstpointer data)
{
    char *slink = g_build_filename(f->dir, "link.db", NULL);
    char *dir = g_build_filename(f->dir, "dir.db", NULL);
    char *fifo = g_build_filename(f->dir, "fifo.db", NULL);
    char *hard = g_build_filename(f->dir, "hard.db", NULL);

    g_assert_cmpint(symlink(f->path, slink), ==, 0);
    open_fails(slink, false, MQ_ERROR_CORRUPT, "*symbolic link*");
    open_fails(slink, true, MQ_ERROR_CORRUPT, "*symbolic link*");
    g_assert_cmpint(mkdir(dir, 0700), ==, 0);
    open_fails(dir, false, MQ_ERROR_CORRUPT, "*not a regular file*");
    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    open_fails(fifo, false, MQ_ERROR_CORRUPT, "*not a regular file*");
    g_assert_cmpint(link(f->path, hard), ==, 0);
    open_fails(f->path, false, MQ_ERROR_CORRUPT, "*one link*");
    open_fails(hard, true, MQ_ERROR_CORRUPT, "*one link*");
    g_free(slink);
    g_free(dir);
    g_free(fifo);
    g_free(hard);
}

/* ---- counting ---------------------------------------------------------------- */

/* One expected value per period: which counter, in which period (hours from
 * the query's start, or days with step 24), how many. */
struct expect {
    enum mq_stats_counter counter;
    size_t period;
    uint64_t value;
};

static void
check_periods(const struct mq_stats_period *p, size_t n, time_t from, unsigned step,
              const struct expect *e, size_t n_e)
{
    for (size_t i = 0; i < n; i++) {
        g_assert_cmpint((int64_t)p[i].start, ==, (int64_t)(from + (time_t)(i * step) * H));
        for (size_t c = 0; c < MQ_STATS_COUNTER_COUNT; c++) {
            uint64_t want = 0;
            for (size_t k = 0; k < n_e; k++) {
                if (e[k].period == i && e[k].counter == c)
                    want = e[k].value;
            }
            if (p[i].counts[c] != want)
                g_error("period %zu, %s: %" G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT, i,
                        mq_stats_counter_name((enum mq_stats_counter)c), p[i].counts[c], want);
        }
    }
}

static void
test_add_counts(struct fixture *f, gconstpointer data)
{
    static const char *const eicar[] = { "Eicar", NULL };
    const struct mq_stats_sample batch1[] = {
        sample(DAY0 + 0, MQ_OUTCOME_DELIVERED, 100, 0, NULL, NULL),
        sample(DAY0 + H - 1, MQ_OUTCOME_DELIVERED, 200, 0, NULL, NULL),
        sample(DAY0 + H, MQ_OUTCOME_PASSED, 300, LIMITS, NULL, NULL),
        sample(DAY0 + H + 5, MQ_OUTCOME_CLEANED, 400, INFECTED | BANNED, eicar, "a@x"),
        sample(DAY0 + 2 * H, MQ_OUTCOME_QUARANTINED, 500, ENCRYPTED, NULL, "b@x"),
        sample(DAY0 + 2 * H, MQ_OUTCOME_DELETED, 600, INFECTED, eicar, "c@x"),
        sample(DAY0 + 5 * H, MQ_OUTCOME_HELD, 700, UNSCANNABLE, NULL, NULL),
        /* An attempt only: no message, no bytes, no finding, no name. */
        sample(DAY0 + 5 * H, MQ_OUTCOME_DEFERRED, 800, INFECTED, eicar, "d@x"),
        /* Not claimed: nothing at all. */
        sample(DAY0 + 5 * H, MQ_OUTCOME_SKIPPED, 900, INFECTED, eicar, "e@x"),
    };
    const struct mq_stats_sample batch2[] = {
        sample(DAY0 + D + 3 * H, MQ_OUTCOME_DELIVERED, 1000, 0, NULL, NULL),
        sample(DAY0 + 2 * D + 23 * H, MQ_OUTCOME_DELIVERED, 1, 0, NULL, NULL),
        sample(DAY0 - 1, MQ_OUTCOME_DELIVERED, 7, 0, NULL, NULL),
        /* Every kind at once counts once in each. */
        sample(DAY0 + D, MQ_OUTCOME_DELETED, 10, (1u << MQ_FINDING_COUNT) - 1, NULL, NULL),
    };
    static const struct expect hours[] = {
        { MQ_STATS_MESSAGES, 0, 2 }, { MQ_STATS_BYTES, 0, 300 }, { MQ_STATS_CLEAN, 0, 2 },
        { MQ_STATS_MESSAGES, 1, 2 }, { MQ_STATS_BYTES, 1, 700 }, { MQ_STATS_PASSED, 1, 1 },
        { MQ_STATS_CLEANED, 1, 1 }, { MQ_STATS_LIMITS, 1, 1 }, { MQ_STATS_INFECTED, 1, 1 },
        { MQ_STATS_BANNED, 1, 1 },
        { MQ_STATS_MESSAGES, 2, 2 }, { MQ_STATS_BYTES, 2, 1100 },
        { MQ_STATS_QUARANTINED, 2, 1 }, { MQ_STATS_DELETED, 2, 1 },
        { MQ_STATS_ENCRYPTED, 2, 1 }, { MQ_STATS_INFECTED, 2, 1 },
        { MQ_STATS_MESSAGES, 5, 1 }, { MQ_STATS_BYTES, 5, 700 }, { MQ_STATS_HELD, 5, 1 },
        { MQ_STATS_UNSCANNABLE, 5, 1 }, { MQ_STATS_DEFERRED, 5, 1 },
    };
    static const struct expect days[] = {
        { MQ_STATS_MESSAGES, 0, 7 }, { MQ_STATS_BYTES, 0, 2800 }, { MQ_STATS_CLEAN, 0, 2 },
        { MQ_STATS_PASSED, 0, 1 }, { MQ_STATS_CLEANED, 0, 1 }, { MQ_STATS_QUARANTINED, 0, 1 },
        { MQ_STATS_DELETED, 0, 1 }, { MQ_STATS_HELD, 0, 1 }, { MQ_STATS_DEFERRED, 0, 1 },
        { MQ_STATS_INFECTED, 0, 2 }, { MQ_STATS_BANNED, 0, 1 }, { MQ_STATS_LIMITS, 0, 1 },
        { MQ_STATS_ENCRYPTED, 0, 1 }, { MQ_STATS_UNSCANNABLE, 0, 1 },
        { MQ_STATS_MESSAGES, 1, 2 }, { MQ_STATS_BYTES, 1, 1010 }, { MQ_STATS_CLEAN, 1, 1 },
        { MQ_STATS_DELETED, 1, 1 }, { MQ_STATS_INFECTED, 1, 1 }, { MQ_STATS_BANNED, 1, 1 },
        { MQ_STATS_LIMITS, 1, 1 }, { MQ_STATS_ENCRYPTED, 1, 1 }, { MQ_STATS_UNSCANNABLE, 1, 1 },
        { MQ_STATS_MESSAGES, 2, 1 }, { MQ_STATS_BYTES, 2, 1 }, { MQ_STATS_CLEAN, 2, 1 },
    };
    struct mq_stats_period *p = NULL;
    struct mq_stats_top *t = NULL;
    size_t n = 0, nt = 0;

    add(f->w, batch1, G_N_ELEMENTS(batch1));
    add(f->w, batch2, G_N_ELEMENTS(batch2));
    add(f->w, NULL, 0);

    /* Per hour over the first day: 24 periods, empty ones as zeros. */
    totals(f->w, DAY0, DAY0 + D, 1, &p, &n);
    g_assert_cmpuint(n, ==, 24);
    check_periods(p, n, DAY0, 1, hours, G_N_ELEMENTS(hours));
    g_free(p);

    /* Per day over three days, from a reader: the same numbers. */
    {
        GError *err = NULL;
        struct mq_stats *r = mq_stats_open(f->path, false, &err);
        g_assert_no_error(err);
        totals(r, DAY0, DAY0 + 3 * D, 24, &p, &n);
        g_assert_cmpuint(n, ==, 3);
        check_periods(p, n, DAY0, 24, days, G_N_ELEMENTS(days));
        g_free(p);
        mq_stats_close(&r);
    }

    /* Uneven periods: 5 hours in steps of 2 are 3 periods, the last one short. */
    totals(f->w, DAY0, DAY0 + 5 * H, 2, &p, &n);
    g_assert_cmpuint(n, ==, 3);
    g_assert_cmpuint(p[0].counts[MQ_STATS_MESSAGES], ==, 4);
    g_assert_cmpuint(p[1].counts[MQ_STATS_MESSAGES], ==, 2);
    g_assert_cmpuint(p[2].counts[MQ_STATS_MESSAGES], ==, 0);    /* hour 5 is outside */
    g_free(p);

    /* A start inside an hour begins with the next hour. */
    totals(f->w, DAY0 + 1, DAY0 + 2 * H, 1, &p, &n);
    g_assert_cmpuint(n, ==, 1);
    g_assert_cmpint((int64_t)p[0].start, ==, (int64_t)(DAY0 + H));
    g_assert_cmpuint(p[0].counts[MQ_STATS_MESSAGES], ==, 2);
    g_free(p);

    /* The hour before DAY0 holds the message at DAY0 - 1. */
    totals(f->w, DAY0 - H, DAY0, 1, &p, &n);
    g_assert_cmpuint(n, ==, 1);
    g_assert_cmpuint(p[0].counts[MQ_STATS_BYTES], ==, 7);
    g_free(p);

    /* The deferred and skipped names were not counted; blocked senders were. */
    top(f->w, MQ_STATS_LIST_VIRUSES, DAY0, DAY0 + 3 * D, 10, &t, &nt);
    g_assert_cmpuint(nt, ==, 1);
    g_assert_cmpstr(t[0].name, ==, "Eicar");
    g_assert_cmpuint(t[0].count, ==, 2);
    mq_stats_top_free(&t, nt);
    g_assert_null(t);
    top(f->w, MQ_STATS_LIST_SENDERS, DAY0, DAY0 + 3 * D, 10, &t, &nt);
    g_assert_cmpuint(nt, ==, 3);
    g_assert_cmpstr(t[0].name, ==, "a@x");
    g_assert_cmpstr(t[1].name, ==, "b@x");
    g_assert_cmpstr(t[2].name, ==, "c@x");
    mq_stats_top_free(&t, nt);
}

static void
test_add_spam(struct fixture *f, gconstpointer data)
{
    struct mq_stats_sample s[] = {
        sample(DAY0, MQ_OUTCOME_DELIVERED, 1, 0, NULL, NULL),
        sample(DAY0, MQ_OUTCOME_DELIVERED, 1, 0, NULL, NULL),
        sample(DAY0, MQ_OUTCOME_DELIVERED, 1, 0, NULL, NULL),
        sample(DAY0, MQ_OUTCOME_DELIVERED, 1, 0, NULL, NULL),
        sample(DAY0, MQ_OUTCOME_DEFERRED, 1, 0, NULL, NULL),
    };
    struct mq_stats_period *p = NULL;
    size_t n = 0;

    s[1].spam_scored = true;                /* level 0 */
    s[2].spam_scored = true;
    s[2].spam_level = 7;
    s[3].spam_scored = true;
    s[3].spam_level = 1000;                 /* counts as 9 */
    s[4].spam_scored = true;                /* deferred: not counted */
    s[4].spam_level = 7;
    add(f->w, s, G_N_ELEMENTS(s));
    totals(f->w, DAY0, DAY0 + H, 1, &p, &n);
    g_assert_cmpuint(n, ==, 1);
    for (unsigned l = 0; l < MQ_STATS_SPAM_LEVELS; l++)
        g_assert_cmpuint(p[0].counts[MQ_STATS_SPAM0 + l], ==, l == 0 || l == 7 || l == 9);
    g_assert_cmpuint(p[0].counts[MQ_STATS_MESSAGES], ==, 4);
    g_assert_cmpstr(mq_stats_counter_name(MQ_STATS_SPAM0 + 3), ==, "spam3");
    g_free(p);
}

/* A batch that fails half-way leaves nothing behind. The failure is forced
 * with a trigger on the senders table, planted from outside. */
static void
test_add_atomic(struct fixture *f, gconstpointer data)
{
    static const char *const v[] = { "Virus.A", NULL };
    const struct mq_stats_sample s[] = {
        sample(DAY0, MQ_OUTCOME_DELIVERED, 1, 0, NULL, NULL),
        sample(DAY0, MQ_OUTCOME_CLEANED, 1, INFECTED, v, NULL),
        sample(DAY0, MQ_OUTCOME_QUARANTINED, 1, INFECTED, v, "boom@x"),
    };
    GError *err = NULL;

    add(f->w, s, 1);
    sql_exec(f->path, "CREATE TRIGGER no_senders BEFORE INSERT ON senders "
                      "BEGIN SELECT RAISE(ABORT, 'planted failure'); END");
    g_assert_cmpint(mq_stats_add(f->w, s, G_N_ELEMENTS(s), &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_assert_nonnull(strstr(err->message, "planted failure"));
    g_clear_error(&err);
    assert_sql(f->path, "SELECT messages FROM hours", "1");
    assert_sql(f->path, "SELECT count(*) FROM viruses", "0");
    /* The handle is usable again once the cause is gone. */
    sql_exec(f->path, "DROP TRIGGER no_senders");
    add(f->w, s, G_N_ELEMENTS(s));
    assert_sql(f->path, "SELECT messages FROM hours", "4");
    assert_sql(f->path, "SELECT count FROM viruses", "2");
}

static void
test_top(struct fixture *f, gconstpointer data)
{
    static const char *const ab[] = { "B.Virus", "A.Virus", "B.Virus", "", NULL };
    static const char *const a[] = { "A.Virus", NULL };
    static const char *const c[] = { "C.Virus", NULL };
    const struct mq_stats_sample s[] = {
        sample(DAY0, MQ_OUTCOME_DELETED, 1, INFECTED, ab, "x@example.org"),
        sample(DAY0 + H, MQ_OUTCOME_CLEANED, 1, INFECTED, a, "x@example.org"),
        sample(DAY0 + H, MQ_OUTCOME_CLEANED, 1, INFECTED, c, "y@example.org"),
        sample(DAY0 + D, MQ_OUTCOME_QUARANTINED, 1, INFECTED, c, ""),
        sample(DAY0 + D, MQ_OUTCOME_QUARANTINED, 1, INFECTED, c, "y@example.org"),
        /* Delivered, passed or held: not blocked, the sender is not counted. */
        sample(DAY0, MQ_OUTCOME_DELIVERED, 1, 0, NULL, "z@example.org"),
        sample(DAY0, MQ_OUTCOME_PASSED, 1, INFECTED, c, "z@example.org"),
        sample(DAY0, MQ_OUTCOME_HELD, 1, 0, NULL, "z@example.org"),
    };
    static const struct {
        enum mq_stats_list list;
        time_t from, to;
        size_t max;
        const char *expected;   /* "name=count ..." */
    } cases[] = {
        /* Ties by name; "B.Virus" twice in one message counts once; "" is not a name. */
        { MQ_STATS_LIST_VIRUSES, DAY0, DAY0 + 2 * D, 10, "C.Virus=4 A.Virus=2 B.Virus=1" },
        { MQ_STATS_LIST_VIRUSES, DAY0, DAY0 + 2 * D, 2, "C.Virus=4 A.Virus=2" },
        { MQ_STATS_LIST_VIRUSES, DAY0, DAY0 + H, 10, "A.Virus=1 B.Virus=1 C.Virus=1" },
        { MQ_STATS_LIST_VIRUSES, DAY0 + D, DAY0 + 2 * D, 10, "C.Virus=2" },
        { MQ_STATS_LIST_VIRUSES, DAY0 + 2 * D, DAY0 + 3 * D, 10, "" },
        { MQ_STATS_LIST_VIRUSES, DAY0, DAY0 + D, 0, "" },
        { MQ_STATS_LIST_SENDERS, DAY0, DAY0 + 2 * D, 10,
          "x@example.org=2 y@example.org=2 <>=1" },
        { MQ_STATS_LIST_SENDERS, DAY0, DAY0 + D, 10, "x@example.org=2 y@example.org=1" },
    };

    add(f->w, s, G_N_ELEMENTS(s));
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        struct mq_stats_top *t = NULL;
        size_t n = 0;
        GString *got = g_string_new(NULL);

        top(f->w, cases[i].list, cases[i].from, cases[i].to, cases[i].max, &t, &n);
        for (size_t k = 0; k < n; k++)
            g_string_append_printf(got, "%s%s=%" G_GUINT64_FORMAT, k ? " " : "", t[k].name,
                                   t[k].count);
        g_assert_cmpstr(got->str, ==, cases[i].expected);
        if (n == 0)
            g_assert_null(t);
        mq_stats_top_free(&t, n);
        g_string_free(got, TRUE);
    }
}

/* Virus names and senders are attacker data: bound, never pasted into SQL;
 * sanitized and capped when stored; the schema survives them all. */
static void
test_hostile_names(struct fixture *f, gconstpointer data)
{
    char *big = g_strnfill(10 * 1024, 'A');
    char *capped;
    const struct {
        const char *name;
        const char *expected;
    } cases[] = {
        { "x'); DROP TABLE hours;--", "x'); DROP TABLE hours;--" },
        { "\"; DELETE FROM viruses; SELECT \"", "\"; DELETE FROM viruses; SELECT \"" },
        { "Robert'); DROP TABLE senders; --", "Robert'); DROP TABLE senders; --" },
        { "' OR '1'='1", "' OR '1'='1" },
        { "a\tb\r\nc\x01\x1b[31m\x7f", "a?b??c??[31m?" },
        { "bad\xff\xfeutf8", "bad??utf8" },
        { "invoice\xe2\x80\xae" "fdp.exe", "invoice?fdp.exe" },
        { "<script>alert(1)</script>", "<script>alert(1)</script>" },
        { "%s%n%x", "%s%n%x" },
        { big, NULL },          /* capped: checked below */
    };
    const char *names[G_N_ELEMENTS(cases) + 1];
    struct mq_stats_sample *s = g_new0(struct mq_stats_sample, G_N_ELEMENTS(cases));
    struct mq_stats_top *t = NULL;
    size_t n = 0;

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        names[i] = cases[i].name;
        s[i] = sample(DAY0 + (time_t)i, MQ_OUTCOME_DELETED, 1, INFECTED, NULL, cases[i].name);
    }
    names[G_N_ELEMENTS(cases)] = NULL;
    s[0].virus_names = names;   /* all names in one message too */
    add(f->w, s, G_N_ELEMENTS(cases));
    assert_schema_intact(f->path);
    assert_sql(f->path, "SELECT messages FROM hours", "10");

    capped = g_strnfill(MQ_STATS_NAME_MAX - 3, 'A');     /* then "..." */
    for (int l = 0; l < 2; l++) {
        top(f->w, l == 0 ? MQ_STATS_LIST_VIRUSES : MQ_STATS_LIST_SENDERS, DAY0, DAY0 + H, 100,
            &t, &n);
        g_assert_cmpuint(n, ==, G_N_ELEMENTS(cases));
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
            bool found = false;
            g_assert_cmpuint(strlen(t[i].name), <=, MQ_STATS_NAME_MAX);
            g_assert_true(g_utf8_validate(t[i].name, -1, NULL));
            for (const char *p = t[i].name; *p != '\0'; p++)
                g_assert_cmpint((unsigned char)*p, >=, 0x20);
            for (size_t k = 0; k < n && !found; k++) {
                if (cases[i].expected != NULL)
                    found = strcmp(t[k].name, cases[i].expected) == 0;
                else
                    found = g_str_has_prefix(t[k].name, capped) &&
                            strcmp(t[k].name + strlen(capped), "...") == 0;
            }
            if (!found)
                g_error("%s list: \"%s\" missing", l == 0 ? "virus" : "sender",
                        cases[i].expected ? cases[i].expected : "(capped)");
        }
        mq_stats_top_free(&t, n);
    }
    /* What is stored is what top returns: the cap holds in the file too. */
    assert_sql(f->path, "SELECT max(length(CAST(name AS BLOB))) FROM viruses", "200");
    assert_sql(f->path, "SELECT max(length(CAST(sender AS BLOB))) FROM senders", "200");
    g_free(capped);
    g_free(big);
    g_free(s);
}

/* A flood of new names in one hour ends up in "(other)"; known names still count. */
static void
test_names_per_hour(struct fixture *f, gconstpointer data)
{
    const size_t extra = 25, total = MQ_STATS_NAMES_PER_HOUR + extra;
    struct mq_stats_sample *s = g_new0(struct mq_stats_sample, total + 1);
    char **senders = g_new0(char *, total);
    struct mq_stats_top *t = NULL;
    size_t n = 0;
    char *count;

    for (size_t i = 0; i < total; i++) {
        senders[i] = g_strdup_printf("spammer%05zu@example.net", i);
        s[i] = sample(DAY0 + 60, MQ_OUTCOME_DELETED, 1, BANNED, NULL, senders[i]);
    }
    s[total] = sample(DAY0 + 120, MQ_OUTCOME_DELETED, 1, BANNED, NULL, senders[0]);
    add(f->w, s, total + 1);
    count = sql_value(f->path, "SELECT count(*) FROM senders");
    g_assert_cmpint(g_ascii_strtoll(count, NULL, 10), ==, MQ_STATS_NAMES_PER_HOUR + 1);
    g_free(count);
    top(f->w, MQ_STATS_LIST_SENDERS, DAY0, DAY0 + H, 2, &t, &n);
    g_assert_cmpuint(n, ==, 2);
    g_assert_cmpstr(t[0].name, ==, MQ_STATS_OTHER);
    g_assert_cmpuint(t[0].count, ==, extra);
    g_assert_cmpstr(t[1].name, ==, senders[0]);
    g_assert_cmpuint(t[1].count, ==, 2);
    mq_stats_top_free(&t, n);
    /* The next hour starts afresh. */
    s[0].when = DAY0 + H;
    s[0].sender = "new@example.net";
    add(f->w, s, 1);
    top(f->w, MQ_STATS_LIST_SENDERS, DAY0 + H, DAY0 + 2 * H, 10, &t, &n);
    g_assert_cmpuint(n, ==, 1);
    g_assert_cmpstr(t[0].name, ==, "new@example.net");
    mq_stats_top_free(&t, n);
    for (size_t i = 0; i < total; i++)
        g_free(senders[i]);
    g_free(senders);
    g_free(s);
}

static void
test_expire(struct fixture *f, gconstpointer data)
{
    static const char *const v[] = { "V", NULL };
    const struct mq_stats_sample s[] = {
        sample(DAY0, MQ_OUTCOME_DELETED, 1, INFECTED, v, "a@x"),
        sample(DAY0 + H, MQ_OUTCOME_DELETED, 1, INFECTED, v, "a@x"),
        sample(DAY0 + D, MQ_OUTCOME_DELETED, 1, INFECTED, v, "a@x"),
    };
    GError *err = NULL;

    add(f->w, s, G_N_ELEMENTS(s));
    /* Hours that start before DAY0 + H + 1: DAY0 and DAY0 + H. */
    g_assert_cmpint(mq_stats_expire(f->w, DAY0 + H + 1, &err), ==, 2);
    g_assert_no_error(err);
    assert_sql(f->path, "SELECT group_concat(hour) FROM hours", "472224");
    assert_sql(f->path, "SELECT count(*) FROM viruses", "1");
    assert_sql(f->path, "SELECT count(*) FROM senders", "1");
    g_assert_cmpint(mq_stats_expire(f->w, DAY0, &err), ==, 0);
    g_assert_no_error(err);
}

static void
test_limits(struct fixture *f, gconstpointer data)
{
    struct mq_stats_period *p = NULL;
    size_t n = 7;
    GError *err = NULL;

    g_assert_cmpint(mq_stats_totals(f->w, DAY0, DAY0 + D, 0, &p, &n, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_LIMIT);
    g_clear_error(&err);
    g_assert_cmpint(mq_stats_totals(f->w, 0, (time_t)(MQ_STATS_PERIODS_MAX + 1) * H, 1, &p, &n,
                                    &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_LIMIT);
    g_clear_error(&err);
    g_assert_null(p);
    g_assert_cmpuint(n, ==, 0);
    totals(f->w, 0, (time_t)MQ_STATS_PERIODS_MAX * H, 1, &p, &n);
    g_assert_cmpuint(n, ==, MQ_STATS_PERIODS_MAX);
    g_free(p);
    totals(f->w, DAY0, DAY0, 1, &p, &n);
    g_assert_cmpuint(n, ==, 0);
    g_assert_null(p);
    totals(f->w, DAY0 + D, DAY0, 1, &p, &n);
    g_assert_cmpuint(n, ==, 0);
}

/* Someone edited the file: negative counts count as 0, names are sanitized
 * again on the way out. */
static void
test_tampered(struct fixture *f, gconstpointer data)
{
    struct mq_stats_period *p = NULL;
    struct mq_stats_top *t = NULL;
    size_t n = 0;

    sql_exec(f->path, "INSERT INTO hours (hour, messages, clean) VALUES (472200, -5, 3);"
                      "INSERT INTO viruses VALUES (472200, 'evil' || char(27) || '[2J' || "
                      "char(10) || 'x', 4);"
                      "INSERT INTO viruses VALUES (472200, 'neg', -3);");
    totals(f->w, DAY0, DAY0 + H, 1, &p, &n);
    g_assert_cmpuint(p[0].counts[MQ_STATS_MESSAGES], ==, 0);
    g_assert_cmpuint(p[0].counts[MQ_STATS_CLEAN], ==, 3);
    g_free(p);
    top(f->w, MQ_STATS_LIST_VIRUSES, DAY0, DAY0 + H, 10, &t, &n);
    g_assert_cmpuint(n, ==, 2);
    g_assert_cmpstr(t[0].name, ==, "evil?[2J?x");
    g_assert_cmpuint(t[1].count, ==, 0);
    mq_stats_top_free(&t, n);
}

/* ---- reports ----------------------------------------------------------------- */

static void
test_report(struct fixture *f, gconstpointer data)
{
    static const char *const v[] = { "<script>alert(1)</script>", "Tom & \"Jerry\"", NULL };
    const struct mq_stats_sample s[] = {
        sample(DAY0 + 3 * H, MQ_OUTCOME_DELETED, 2000000, INFECTED, v,
               "<img src=x onerror=alert(2)>"),
        sample(DAY0 + 3 * H, MQ_OUTCOME_DELIVERED, 500000, 0, NULL, NULL),
    };
    GError *err = NULL;
    char *html, *text;
    const char *p;
    unsigned rects = 0;

    add(f->w, s, G_N_ELEMENTS(s));
    html = mq_stats_report(f->w, MQ_STATS_FORMAT_HTML, DAY0, DAY0 + D, 1, 10, &err);
    g_assert_no_error(err);
    g_assert_true(g_str_has_prefix(html, "<!DOCTYPE html>"));
    g_assert_null(strstr(html, "<script"));
    g_assert_null(strstr(html, "<img"));
    g_assert_null(strstr(html, " src=\""));
    g_assert_null(strstr(html, "@import"));
    g_assert_null(strstr(html, "href"));
    g_assert_null(strstr(html, "url("));
    g_assert_nonnull(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    g_assert_nonnull(strstr(html, "Tom &amp; &quot;Jerry&quot;"));
    g_assert_nonnull(strstr(html, "&lt;img src=x onerror=alert(2)&gt;"));
    g_assert_nonnull(strstr(html, "<title>mqscan statistics: 2023-11-14 (UTC)</title>"));
    p = strstr(html, "<svg id=\"chart-hourly\"");
    g_assert_nonnull(p);
    for (const char *end = strstr(p, "</svg>"); (p = strstr(p, "<rect ")) != NULL && p < end; p++)
        rects++;
    g_assert_cmpuint(rects, ==, 48);
    g_assert_nonnull(strstr(html, "<svg id=\"chart-viruses\""));
    g_free(html);

    text = mq_stats_report(f->w, MQ_STATS_FORMAT_TEXT, DAY0, DAY0 + D, 1, 10, &err);
    g_assert_no_error(err);
    g_assert_true(g_str_has_prefix(text, "mqscan statistics: 2023-11-14 (UTC)\n"));
    g_assert_nonnull(strstr(text, "\n03:00 "));
    g_assert_true(g_regex_match_simple("\\ntotal +2 +2\\.50 +1 ", text, 0, 0));
    g_assert_nonnull(strstr(text, "         1  <script>alert(1)</script>\n"));
    g_free(text);

    /* Per day over a week: a daily chart with 7 + 7 bars. */
    html = mq_stats_report(f->w, MQ_STATS_FORMAT_HTML, DAY0 - 3 * D, DAY0 + 4 * D, 24, 10, &err);
    g_assert_no_error(err);
    g_assert_nonnull(strstr(html, "2023-11-11 to 2023-11-17"));
    p = strstr(html, "<svg id=\"chart-daily\"");
    g_assert_nonnull(p);
    rects = 0;
    for (const char *end = strstr(p, "</svg>"); (p = strstr(p, "<rect ")) != NULL && p < end; p++)
        rects++;
    g_assert_cmpuint(rects, ==, 14);
    g_free(html);
}

/* ---- concurrency ------------------------------------------------------------- */

#define CONC_BATCHES 150
#define CONC_BATCH 5

struct writer {
    const char *path;
    unsigned id;
    GError *error;
};

static gpointer
writer_thread(gpointer data)
{
    struct writer *w = data;
    struct mq_stats *s = mq_stats_open(w->path, true, &w->error);
    struct mq_stats_sample batch[CONC_BATCH];

    if (s == NULL)
        return NULL;
    for (unsigned b = 0; b < CONC_BATCHES && w->error == NULL; b++) {
        for (unsigned i = 0; i < CONC_BATCH; i++)
            batch[i] = sample(DAY0 + (time_t)((b + i) % 24) * H, MQ_OUTCOME_DELIVERED, 100, 0,
                              NULL, NULL);
        mq_stats_add(s, batch, CONC_BATCH, &w->error);
    }
    mq_stats_close(&s);
    return NULL;
}

/* Sums one day; checks that what a reader sees is always whole batches. */
static uint64_t
reader_check(struct mq_stats *r)
{
    struct mq_stats_period *p = NULL;
    size_t n = 0;
    uint64_t messages;

    totals(r, DAY0, DAY0 + D, 24, &p, &n);
    g_assert_cmpuint(n, ==, 1);
    messages = p[0].counts[MQ_STATS_MESSAGES];
    g_assert_cmpuint(messages % CONC_BATCH, ==, 0);
    g_assert_cmpuint(p[0].counts[MQ_STATS_CLEAN], ==, messages);
    g_assert_cmpuint(p[0].counts[MQ_STATS_BYTES], ==, messages * 100);
    g_free(p);
    return messages;
}

/* mqscan-stats reading while mqscand writes: two connections, and the
 * reader never sees half a batch, never goes back, never waits too long. */
static void
test_concurrent_reader(struct fixture *f, gconstpointer data)
{
    struct writer w = { f->path, 0, NULL };
    struct mq_stats *r;
    GError *err = NULL;
    GThread *t;
    uint64_t last = 0, now;
    unsigned reads = 0;

    mq_stats_close(&f->w);
    r = mq_stats_open(f->path, false, &err);
    g_assert_no_error(err);
    t = g_thread_new("writer", writer_thread, &w);
    do {
        now = reader_check(r);
        g_assert_cmpuint(now, >=, last);
        last = now;
        reads++;
    } while (now < CONC_BATCHES * CONC_BATCH);
    g_thread_join(t);
    g_assert_no_error(w.error);
    g_assert_cmpuint(reader_check(r), ==, CONC_BATCHES * CONC_BATCH);
    g_test_message("%u consistent reads during %u batches", reads, CONC_BATCHES);
    mq_stats_close(&r);
}

/* Two writers at once (a reload overlapping the old handle): every batch
 * counted, none lost to a busy database. */
static void
test_concurrent_writers(struct fixture *f, gconstpointer data)
{
    struct writer w[2] = { { f->path, 0, NULL }, { f->path, 1, NULL } };
    GThread *t[2];

    for (int i = 0; i < 2; i++)
        t[i] = g_thread_new("writer", writer_thread, &w[i]);
    /* This handle writes too, meanwhile. */
    for (unsigned b = 0; b < CONC_BATCHES / 3; b++) {
        struct mq_stats_sample s[CONC_BATCH];
        for (unsigned i = 0; i < CONC_BATCH; i++)
            s[i] = sample(DAY0, MQ_OUTCOME_DELIVERED, 100, 0, NULL, NULL);
        add(f->w, s, CONC_BATCH);
    }
    for (int i = 0; i < 2; i++) {
        g_thread_join(t[i]);
        g_assert_no_error(w[i].error);
    }
    g_assert_cmpuint(reader_check(f->w), ==, (2 * CONC_BATCHES + CONC_BATCHES / 3) * CONC_BATCH);
}

/* ---- panics ------------------------------------------------------------------ */

static void
test_panic_readonly(struct fixture *f, gconstpointer data)
{
    if (g_test_subprocess()) {
        const struct mq_stats_sample s = sample(DAY0, MQ_OUTCOME_DELIVERED, 1, 0, NULL, NULL);
        struct mq_stats *r = mq_stats_open(f->path, false, NULL);
        if (GPOINTER_TO_INT(data) == 0)
            mq_stats_add(r, &s, 1, NULL);
        else
            mq_stats_expire(r, DAY0, NULL);
        return;     /* not reached */
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*panic*read-only*");
}

static void
test_panic_outcome(struct fixture *f, gconstpointer data)
{
    if (g_test_subprocess()) {
        const struct mq_stats_sample s = sample(DAY0, MQ_OUTCOME_COUNT, 1, 0, NULL, NULL);
        mq_stats_add(f->w, &s, 1, NULL);
        return;     /* not reached */
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*panic*outcome*out of range*");
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *path;
        void (*func)(struct fixture *, gconstpointer);
        int data;
    } tests[] = {
        { "/stats/open/create", test_open_create, 0 },
        { "/stats/open/missing", test_open_missing, 0 },
        { "/stats/open/not-ours", test_open_not_ours, 0 },
        { "/stats/open/version", test_open_version, 0 },
        { "/stats/open/file-type", test_open_file_type, 0 },
        { "/stats/add/counts", test_add_counts, 0 },
        { "/stats/add/spam", test_add_spam, 0 },
        { "/stats/add/atomic", test_add_atomic, 0 },
        { "/stats/top", test_top, 0 },
        { "/stats/hostile-names", test_hostile_names, 0 },
        { "/stats/names-per-hour", test_names_per_hour, 0 },
        { "/stats/expire", test_expire, 0 },
        { "/stats/limits", test_limits, 0 },
        { "/stats/tampered", test_tampered, 0 },
        { "/stats/report", test_report, 0 },
        { "/stats/concurrent/reader", test_concurrent_reader, 0 },
        { "/stats/concurrent/writers", test_concurrent_writers, 0 },
        { "/stats/panic/readonly-add", test_panic_readonly, 0 },
        { "/stats/panic/readonly-expire", test_panic_readonly, 1 },
        { "/stats/panic/outcome", test_panic_outcome, 0 },
    };

    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(tests); i++)
        g_test_add(tests[i].path, struct fixture, GINT_TO_POINTER(tests[i].data), fixture_setup,
                   tests[i].func, fixture_teardown);
    return g_test_run();
}
