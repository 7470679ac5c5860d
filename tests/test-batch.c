/* test-batch - the batch former, with injected time.
 *
 * Most cases are scenarios: a list of steps (offer, take, done, defer, sync)
 * with the time of each step and what must come out, run against one
 * batcher. Time never comes from a clock.
 */
#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "mqscan/batch.h"

enum step_kind {
    END,
    OFFER,      /* ids (comma separated), each of size, at t */
    TAKE,       /* at t: want = "A,B" taken, or NULL and wake */
    FLUSH,      /* the same with flush */
    DONE,       /* ids */
    DEFER,      /* ids, not before t */
    SYNC,       /* ids = the IDs present ("" for none) */
    COUNT,      /* size = expected mq_batcher_count() */
    LIMITS,     /* size = max_messages, t = max_wait_ms (bytes unchanged) */
};

struct step {
    enum step_kind kind;
    const char *ids;
    uint64_t size;
    int64_t t;
    const char *want;
    int64_t wake;
};

#define NEVER INT64_MAX

struct scenario {
    const char *name;
    struct mq_batch_limits limits;
    struct step steps[24];
};

static const struct scenario scenarios[] = {
    { "count limit: due at once with the oldest max_messages",
      { 3, 1000000, 1000 },
      { { OFFER, "C", 10, 0, NULL, 0 },
        { OFFER, "A", 10, 1, NULL, 0 },
        { TAKE, NULL, 0, 1, NULL, 1000 },              /* 2 < 3: wait for C */
        { OFFER, "E,B,D", 10, 2, NULL, 0 },
        { TAKE, NULL, 0, 2, "C,A,E", 0 },              /* arrival order, not names */
        { TAKE, NULL, 0, 2, NULL, 1002 },              /* B,D arrived at 2 */
        { COUNT, NULL, 5, 0, NULL, 0 },                /* in flight still counted */
        { TAKE, NULL, 0, 1001, NULL, 1002 },
        { TAKE, NULL, 0, 1002, "B,D", 0 },
        { TAKE, NULL, 0, 1002, NULL, NEVER },
        { DONE, "A,B,C,D,E", 0, 0, NULL, 0 },
        { COUNT, NULL, 0, 0, NULL, 0 },
        { TAKE, NULL, 0, 5000, NULL, NEVER },
        { END } } },
    { "count limit exactly reached",
      { 2, 1000000, 1000 },
      { { OFFER, "A,B", 1, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, "A,B", 0 },
        { END } } },
    { "bytes limit",
      { 100, 1000, 1000 },
      { { OFFER, "A,B", 400, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, NULL, 1000 },              /* 800 < 1000 */
        { OFFER, "C", 400, 10, NULL, 0 },
        { TAKE, NULL, 0, 10, "A,B", 0 },               /* C would pass 1000 */
        { TAKE, NULL, 0, 10, NULL, 1010 },
        { TAKE, NULL, 0, 1009, NULL, 1010 },
        { TAKE, NULL, 0, 1010, "C", 0 },
        { END } } },
    { "bytes limit exactly reached",
      { 100, 1000, 1000 },
      { { OFFER, "A,B", 500, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, "A,B", 0 },
        { END } } },
    { "one oversize message is taken alone",
      { 100, 1000, 1000 },
      { { OFFER, "BIG", 5000, 0, NULL, 0 },
        { OFFER, "small", 10, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, "BIG", 0 },
        { TAKE, NULL, 0, 0, NULL, 1000 },
        { TAKE, NULL, 0, 1000, "small", 0 },
        { OFFER, "small2", 10, 2000, NULL, 0 },
        { OFFER, "BIG2", 5000, 2001, NULL, 0 },
        { TAKE, NULL, 0, 2001, "small2", 0 },          /* BIG2 does not fit beside it */
        { TAKE, NULL, 0, 2001, "BIG2", 0 },
        { END } } },
    { "wait limit",
      { 10, 1000000, 500 },
      { { OFFER, "A", 10, 100, NULL, 0 },
        { TAKE, NULL, 0, 100, NULL, 600 },
        { TAKE, NULL, 0, 599, NULL, 600 },
        { TAKE, NULL, 0, 600, "A", 0 },
        { OFFER, "B", 10, 700, NULL, 0 },
        { OFFER, "C", 10, 800, NULL, 0 },
        { TAKE, NULL, 0, 1199, NULL, 1200 },           /* the oldest decides */
        { TAKE, NULL, 0, 1200, "B,C", 0 },
        { OFFER, "D", 10, 2000, NULL, 0 },
        { TAKE, NULL, 0, 90000, "D", 0 },              /* long overdue */
        { END } } },
    { "no wait",
      { 10, 1000000, 0 },
      { { OFFER, "A", 10, 5, NULL, 0 },
        { TAKE, NULL, 0, 5, "A", 0 },
        { TAKE, NULL, 0, 5, NULL, NEVER },
        { END } } },
    { "negative and large times",
      { 10, 1000000, 100 },
      { { OFFER, "A", 10, -1000, NULL, 0 },
        { TAKE, NULL, 0, -1000, NULL, -900 },
        { TAKE, NULL, 0, -900, "A", 0 },
        { OFFER, "B", 10, INT64_C(1) << 50, NULL, 0 },
        { TAKE, NULL, 0, INT64_C(1) << 50, NULL, (INT64_C(1) << 50) + 100 },
        { END } } },
    { "flush takes what is eligible, within the batch limits",
      { 2, 1000000, 10000 },
      { { OFFER, "A", 10, 0, NULL, 0 },
        { TAKE, NULL, 0, 1, NULL, 10000 },
        { FLUSH, NULL, 0, 1, "A", 0 },
        { FLUSH, NULL, 0, 1, NULL, NEVER },            /* nothing eligible */
        { OFFER, "B,C,D", 10, 2, NULL, 0 },
        { FLUSH, NULL, 0, 3, "B,C", 0 },
        { FLUSH, NULL, 0, 3, "D", 0 },
        { DONE, "A,B,C,D", 0, 0, NULL, 0 },
        { COUNT, NULL, 0, 0, NULL, 0 },
        { END } } },
    { "flush does not take a deferred message early",
      { 5, 1000000, 100 },
      { { OFFER, "X", 10, 0, NULL, 0 },
        { FLUSH, NULL, 0, 0, "X", 0 },
        { DEFER, "X", 0, 5000, NULL, 0 },
        { FLUSH, NULL, 0, 100, NULL, 5000 },
        { FLUSH, NULL, 0, 4999, NULL, 5000 },
        { FLUSH, NULL, 0, 5000, "X", 0 },
        { END } } },
    { "defer: at the back, not before not_before",
      { 2, 1000000, 100 },
      { { OFFER, "A,B,C,D", 10, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, "A,B", 0 },
        { DEFER, "A", 0, 0, NULL, 0 },                 /* eligible now, but last */
        { DONE, "B", 0, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, "C,D", 0 },
        { TAKE, NULL, 0, 0, NULL, 100 },
        { TAKE, NULL, 0, 100, "A", 0 },
        { DEFER, "A", 0, 1000, NULL, 0 },
        { DEFER, "C", 0, 700, NULL, 0 },
        { DONE, "D", 0, 0, NULL, 0 },
        { COUNT, NULL, 2, 0, NULL, 0 },
        { TAKE, NULL, 0, 100, NULL, 700 },             /* the earliest not_before */
        { TAKE, NULL, 0, 699, NULL, 700 },
        { TAKE, NULL, 0, 700, NULL, 800 },             /* C waits since 700 */
        { TAKE, NULL, 0, 800, "C", 0 },
        { TAKE, NULL, 0, 800, NULL, 1000 },
        { TAKE, NULL, 0, 1000, NULL, 1100 },
        { OFFER, "E", 10, 1050, NULL, 0 },
        { TAKE, NULL, 0, 1050, "A,E", 0 },             /* count limit, A first */
        { END } } },
    { "deferred messages do not block younger ones",
      { 3, 1000000, 100 },
      { { OFFER, "A,B,C", 10, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, "A,B,C", 0 },
        { DEFER, "A,B,C", 0, 60000, NULL, 0 },
        { OFFER, "D,E,F", 10, 10, NULL, 0 },
        { TAKE, NULL, 0, 10, "D,E,F", 0 },
        { TAKE, NULL, 0, 10, NULL, 60000 },
        { END } } },
    { "done forgets: the same ID comes back as new",
      { 5, 1000000, 100 },
      { { OFFER, "A", 10, 0, NULL, 0 },
        { FLUSH, NULL, 0, 0, "A", 0 },
        { DONE, "A", 0, 0, NULL, 0 },
        { COUNT, NULL, 0, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, NULL, NEVER },
        { OFFER, "A", 10, 5000, NULL, 0 },
        { COUNT, NULL, 1, 0, NULL, 0 },
        { TAKE, NULL, 0, 5000, NULL, 5100 },
        { END } } },
    { "offer of a known ID keeps its place and arrival",
      { 5, 1000000, 1000 },
      { { OFFER, "A", 10, 0, NULL, 0 },
        { OFFER, "B", 10, 100, NULL, 0 },
        { OFFER, "A", 999999999, 900, NULL, 0 },       /* size ignored too */
        { COUNT, NULL, 2, 0, NULL, 0 },
        { TAKE, NULL, 0, 999, NULL, 1000 },
        { TAKE, NULL, 0, 1000, "A,B", 0 },
        { OFFER, "A", 10, 2000, NULL, 0 },             /* in flight: not again */
        { COUNT, NULL, 2, 0, NULL, 0 },
        { FLUSH, NULL, 0, 5000, NULL, NEVER },
        { DONE, "A,B", 0, 0, NULL, 0 },
        { END } } },
    { "offer of a deferred ID keeps its not_before",
      { 5, 1000000, 0 },
      { { OFFER, "A", 10, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, "A", 0 },
        { DEFER, "A", 0, 3000, NULL, 0 },
        { OFFER, "A", 10, 100, NULL, 0 },              /* the rescan finds it again */
        { TAKE, NULL, 0, 100, NULL, 3000 },
        { TAKE, NULL, 0, 3000, "A", 0 },
        { END } } },
    { "sync drops vanished waiting IDs, keeps in-flight ones",
      { 2, 1000000, 100 },
      { { OFFER, "A,B,C,D,E", 10, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, "A,B", 0 },
        { SYNC, "C,E", 0, 0, NULL, 0 },                /* A,B in flight, D gone */
        { COUNT, NULL, 4, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, "C,E", 0 },
        { DONE, "A", 0, 0, NULL, 0 },
        { DEFER, "B", 0, 0, NULL, 0 },
        { SYNC, "", 0, 0, NULL, 0 },                   /* B waits again: dropped */
        { COUNT, NULL, 2, 0, NULL, 0 },                /* C,E in flight */
        { TAKE, NULL, 0, 1000, NULL, NEVER },
        { DONE, "C,E", 0, 0, NULL, 0 },
        { COUNT, NULL, 0, 0, NULL, 0 },
        { OFFER, "D", 10, 2000, NULL, 0 },             /* a new arrival after sync */
        { TAKE, NULL, 0, 2000, NULL, 2100 },
        { END } } },
    { "new limits apply to the next take",
      { 10, 1000000, 1000 },
      { { OFFER, "A,B,C", 10, 0, NULL, 0 },
        { TAKE, NULL, 0, 0, NULL, 1000 },
        { LIMITS, NULL, 2, 50, NULL, 0 },
        { TAKE, NULL, 0, 0, "A,B", 0 },
        { TAKE, NULL, 0, 0, NULL, 50 },
        { END } } },
};

static char *
join_ids(GPtrArray *ids)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < ids->len; i++)
        g_string_append_printf(s, "%s%s", i ? "," : "", (const char *)g_ptr_array_index(ids, i));
    return g_string_free(s, FALSE);
}

static void
run_scenario(gconstpointer data)
{
    const struct scenario *sc = data;
    struct mq_batcher *b = mq_batcher_new(&sc->limits);

    g_test_message("scenario: %s", sc->name);
    for (const struct step *st = sc->steps; st->kind != END; st++) {
        char **ids = st->ids ? g_strsplit(st->ids, ",", -1) : NULL;

        g_test_message("step %td", st - sc->steps);
        switch (st->kind) {
        case OFFER:
            for (char **id = ids; *id; id++)
                mq_batcher_offer(b, *id, st->size, st->t);
            break;
        case TAKE:
        case FLUSH: {
            int64_t wake = 12345;
            GPtrArray *got = mq_batcher_take(b, st->t, st->kind == FLUSH, &wake);
            if (st->want == NULL) {
                if (got != NULL) {
                    char *s = join_ids(got);
                    g_test_message("took %s unexpectedly", s);
                    g_free(s);
                }
                g_assert_null(got);
                g_assert_cmpint(wake, ==, st->wake);
            } else {
                char *s;
                g_assert_nonnull(got);
                s = join_ids(got);
                g_assert_cmpstr(s, ==, st->want);
                g_free(s);
                g_ptr_array_unref(got);
            }
            break;
        }
        case DONE:
            for (char **id = ids; *id; id++)
                mq_batcher_done(b, *id);
            break;
        case DEFER:
            for (char **id = ids; *id; id++)
                mq_batcher_defer(b, *id, st->t);
            break;
        case SYNC: {
            GHashTable *present = g_hash_table_new(g_str_hash, g_str_equal);
            for (char **id = ids; *id; id++) {
                if (**id != '\0')
                    g_hash_table_add(present, *id);
            }
            mq_batcher_sync(b, present);
            g_hash_table_unref(present);
            break;
        }
        case COUNT:
            g_assert_cmpuint(mq_batcher_count(b), ==, st->size);
            break;
        case LIMITS: {
            struct mq_batch_limits lim = sc->limits;
            lim.max_messages = (unsigned)st->size;
            lim.max_wait_ms = (unsigned)st->t;
            mq_batcher_set_limits(b, &lim);
            break;
        }
        case END:
            break;
        }
        g_strfreev(ids);
    }
    mq_batcher_free(&b);
    g_assert_null(b);
}

/* The taken IDs are copies: they stay valid after the batcher forgets the
 * messages and after it is freed. */
static void
test_ids_are_copies(void)
{
    struct mq_batch_limits lim = { 5, 1000, 0 };
    struct mq_batcher *b = mq_batcher_new(&lim);
    char id[] = "QUEUEID1";
    GPtrArray *got;
    int64_t wake;

    mq_batcher_offer(b, id, 1, 0);
    id[0] = 'X';                /* the batcher copied it */
    got = mq_batcher_take(b, 0, false, &wake);
    g_assert_nonnull(got);
    g_assert_cmpuint(got->len, ==, 1);
    mq_batcher_done(b, "QUEUEID1");
    mq_batcher_free(&b);
    g_assert_cmpstr(g_ptr_array_index(got, 0), ==, "QUEUEID1");
    g_ptr_array_unref(got);

    b = NULL;
    mq_batcher_free(&b);        /* NULL is allowed */
}

/* Tearing down with messages waiting, in flight and deferred leaks nothing
 * (checked under valgrind/ASan). */
static void
test_free_busy(void)
{
    struct mq_batch_limits lim = { 2, 1000, 0 };
    struct mq_batcher *b = mq_batcher_new(&lim);
    GPtrArray *got;
    int64_t wake;

    mq_batcher_offer(b, "A", 1, 0);
    mq_batcher_offer(b, "B", 1, 0);
    mq_batcher_offer(b, "C", 1, 0);
    mq_batcher_offer(b, "D", 1, 0);
    got = mq_batcher_take(b, 0, false, &wake);
    g_assert_nonnull(got);
    mq_batcher_defer(b, "A", 100);
    g_assert_cmpuint(mq_batcher_count(b), ==, 4);
    g_ptr_array_unref(got);
    mq_batcher_free(&b);
}

/* 50,000 messages drained 30 at a time: every ID exactly once, in arrival
 * order, every batch full but the last. */
static void
test_scale(void)
{
    enum { N = 50000, MAX = 30 };
    struct mq_batch_limits lim = { MAX, UINT64_C(1) << 40, 500 };
    struct mq_batcher *b = mq_batcher_new(&lim);
    GHashTable *present = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    unsigned next = 0, batches = 0;
    int64_t wake;
    GPtrArray *got;

    for (unsigned i = 0; i < N; i++) {
        char *id = g_strdup_printf("Q%08u", i);
        mq_batcher_offer(b, id, 1000, i / 100);
        g_hash_table_add(present, id);
    }
    g_assert_cmpuint(mq_batcher_count(b), ==, N);
    mq_batcher_sync(b, present);             /* everything still there */
    g_assert_cmpuint(mq_batcher_count(b), ==, N);

    /* at t = 500 the youngest (arrived at 499) are not due by age */
    while ((got = mq_batcher_take(b, 500, false, &wake)) != NULL) {
        g_assert_cmpuint(got->len, ==, MAX);
        for (guint i = 0; i < got->len; i++) {
            char want[16];
            g_snprintf(want, sizeof(want), "Q%08u", next++);
            g_assert_cmpstr(g_ptr_array_index(got, i), ==, want);
            mq_batcher_done(b, want);
        }
        batches++;
        g_ptr_array_unref(got);
    }
    g_assert_cmpuint(batches, ==, N / MAX);
    g_assert_cmpuint(mq_batcher_count(b), ==, N % MAX);
    /* the rest arrived at t = 499 */
    g_assert_cmpint(wake, ==, (N - 1) / 100 + 500);
    got = mq_batcher_take(b, 500, true, &wake);
    g_assert_nonnull(got);
    g_assert_cmpuint(got->len, ==, N % MAX);
    for (guint i = 0; i < got->len; i++)
        mq_batcher_done(b, g_ptr_array_index(got, i));
    g_ptr_array_unref(got);
    g_assert_cmpuint(mq_batcher_count(b), ==, 0);

    /* Half of a fresh queue vanishes in a rescan. */
    for (unsigned i = 0; i < N; i++) {
        char id[16];
        g_snprintf(id, sizeof(id), "Q%08u", i);
        mq_batcher_offer(b, id, 1, 2000);
        if (i % 2)
            g_hash_table_remove(present, id);
    }
    mq_batcher_sync(b, present);
    g_assert_cmpuint(mq_batcher_count(b), ==, N / 2);
    got = mq_batcher_take(b, 2000, true, &wake);
    g_assert_cmpstr(g_ptr_array_index(got, 0), ==, "Q00000000");
    g_assert_cmpstr(g_ptr_array_index(got, 1), ==, "Q00000002");
    g_ptr_array_unref(got);

    g_hash_table_unref(present);
    mq_batcher_free(&b);
}

/* ---- must panic ------------------------------------------------------------ */

enum panic_case {
    PANIC_DONE_UNKNOWN,
    PANIC_DONE_WAITING,
    PANIC_DONE_TWICE,
    PANIC_DEFER_UNKNOWN,
    PANIC_DEFER_WAITING,
    PANIC_DEFER_AFTER_DONE,
};

static void
test_panic(gconstpointer data)
{
    enum panic_case which = (enum panic_case)GPOINTER_TO_INT(data);

    if (g_test_subprocess()) {
        struct mq_batch_limits lim = { 1, 1000, 0 };
        struct mq_batcher *b = mq_batcher_new(&lim);
        int64_t wake;
        GPtrArray *got;

        mq_batcher_offer(b, "FLIGHT", 1, 0);
        got = mq_batcher_take(b, 0, false, &wake);
        g_assert_nonnull(got);
        mq_batcher_offer(b, "WAITING", 1, 0);
        switch (which) {
        case PANIC_DONE_UNKNOWN:
            mq_batcher_done(b, "NOSUCH");
            break;
        case PANIC_DONE_WAITING:
            mq_batcher_done(b, "WAITING");
            break;
        case PANIC_DONE_TWICE:
            mq_batcher_done(b, "FLIGHT");
            mq_batcher_done(b, "FLIGHT");
            break;
        case PANIC_DEFER_UNKNOWN:
            mq_batcher_defer(b, "NOSUCH", 0);
            break;
        case PANIC_DEFER_WAITING:
            mq_batcher_defer(b, "WAITING", 0);
            break;
        case PANIC_DEFER_AFTER_DONE:
            mq_batcher_done(b, "FLIGHT");
            mq_batcher_defer(b, "FLIGHT", 0);
            break;
        }
        return;     /* not reached */
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*panic*not in flight*");
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *path;
        enum panic_case which;
    } panics[] = {
        { "/batch/panic/done-unknown", PANIC_DONE_UNKNOWN },
        { "/batch/panic/done-waiting", PANIC_DONE_WAITING },
        { "/batch/panic/done-twice", PANIC_DONE_TWICE },
        { "/batch/panic/defer-unknown", PANIC_DEFER_UNKNOWN },
        { "/batch/panic/defer-waiting", PANIC_DEFER_WAITING },
        { "/batch/panic/defer-after-done", PANIC_DEFER_AFTER_DONE },
    };

    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(scenarios); i++) {
        char *path = g_strdup_printf("/batch/scenario/%zu", i);
        g_test_add_data_func(path, &scenarios[i], run_scenario);
        g_free(path);
    }
    g_test_add_func("/batch/ids-are-copies", test_ids_are_copies);
    g_test_add_func("/batch/free-busy", test_free_busy);
    g_test_add_func("/batch/scale", test_scale);
    for (size_t i = 0; i < G_N_ELEMENTS(panics); i++)
        g_test_add_data_func(panics[i].path, GINT_TO_POINTER(panics[i].which), test_panic);
    return g_test_run();
}
