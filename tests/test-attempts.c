/* test-attempts - the record of messages being processed: counts survive
 * until the attempt ends, an attempt that ends costs no file, records are
 * fixed-width, hostile IDs never become file names, sync forgets messages
 * that left the queue.
 */
#include <config.h>

#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/attempts.h"

#include "testutil.h"

struct fixture {
    char *dir;                  /* the temporary parent */
    char *path;                 /* the record directory, created by open */
    struct mq_attempts *a;
};

static void
fixture_setup(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;

    (void)data;
    f->dir = g_dir_make_tmp("test-attempts-XXXXXX", &err);
    g_assert_no_error(err);
    f->path = g_build_filename(f->dir, "processing", NULL);
    f->a = mq_attempts_open(f->path, &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->a);
}

static void
fixture_teardown(struct fixture *f, gconstpointer data)
{
    (void)data;
    mq_attempts_free(&f->a);
    test_remove_tree(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

static gboolean
record_exists(const struct fixture *f, const char *name)
{
    char *p = g_build_filename(f->path, name, NULL);
    gboolean yes = g_file_test(p, G_FILE_TEST_EXISTS);

    g_free(p);
    return yes;
}

/* A crash: the record goes away without its attempts ending. */
static void
reopen(struct fixture *f)
{
    GError *err = NULL;

    mq_attempts_free(&f->a);
    f->a = mq_attempts_open(f->path, &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->a);
}

/* Attempts that never end add up, across a reopen (a new process). */
static void
test_unfinished_attempts_count(struct fixture *f, gconstpointer data)
{
    (void)data;
    g_assert_cmpuint(mq_attempts_count(f->a, "ABC123"), ==, 0);
    g_assert_cmpuint(mq_attempts_begin(f->a, "ABC123"), ==, 0);
    g_assert_cmpuint(mq_attempts_begin(f->a, "ABC123"), ==, 1);
    reopen(f);
    g_assert_cmpuint(mq_attempts_count(f->a, "ABC123"), ==, 2);
    g_assert_true(record_exists(f, "ABC123"));
    g_assert_cmpuint(mq_attempts_begin(f->a, "ABC123"), ==, 2);
    g_assert_cmpuint(mq_attempts_count(f->a, "ABC123"), ==, 3);
    mq_attempts_end(f->a, "ABC123");
    g_assert_false(record_exists(f, "ABC123"));
    g_assert_cmpuint(mq_attempts_count(f->a, "ABC123"), ==, 0);
    mq_attempts_end(f->a, "ABC123");      /* ending twice is harmless */
    /* and a crash after the end counts nothing */
    reopen(f);
    g_assert_cmpuint(mq_attempts_count(f->a, "ABC123"), ==, 0);
}

/* Attempts that end leave no file behind, and a crash is told apart from
 * them: of three messages in progress at once, the two not ended count. */
static void
test_slots(struct fixture *f, gconstpointer data)
{
    char *names;

    (void)data;
    for (int round = 0; round < 50; round++) {
        mq_attempts_begin(f->a, "OK1");
        mq_attempts_begin(f->a, "OK2");
        mq_attempts_end(f->a, "OK1");
        mq_attempts_end(f->a, "OK2");
    }
    g_assert_false(record_exists(f, "OK1"));
    g_assert_false(record_exists(f, "OK2"));
    names = test_listing(f->path);
    g_assert_cmpstr(names, ==, ".slot-0,.slot-1");     /* reused, not one per message */
    g_free(names);

    g_assert_cmpuint(mq_attempts_begin(f->a, "DONE"), ==, 0);
    g_assert_cmpuint(mq_attempts_begin(f->a, "CRASH1"), ==, 0);
    g_assert_cmpuint(mq_attempts_begin(f->a, "CRASH2"), ==, 0);
    mq_attempts_end(f->a, "DONE");
    reopen(f);
    names = test_listing(f->path);
    g_assert_cmpstr(names, ==, "CRASH1,CRASH2");       /* the slots are turned into records */
    g_free(names);
    g_assert_cmpuint(mq_attempts_count(f->a, "DONE"), ==, 0);
    g_assert_cmpuint(mq_attempts_count(f->a, "CRASH1"), ==, 1);
    /* a second crash on CRASH1 adds to its record */
    g_assert_cmpuint(mq_attempts_begin(f->a, "CRASH1"), ==, 1);
    mq_attempts_end(f->a, "CRASH2");
    reopen(f);
    g_assert_cmpuint(mq_attempts_count(f->a, "CRASH1"), ==, 2);
    g_assert_cmpuint(mq_attempts_count(f->a, "CRASH2"), ==, 0);
    g_assert_false(record_exists(f, "CRASH2"));
}

/* A record is one 11-byte line; anything else reads as zero. */
static void
test_record_format(struct fixture *f, gconstpointer data)
{
    char *p = g_build_filename(f->path, "R1", NULL), *text = NULL;
    gsize len;

    (void)data;
    mq_attempts_begin(f->a, "R1");
    mq_attempts_begin(f->a, "R1");
    reopen(f);
    g_assert_true(g_file_get_contents(p, &text, &len, NULL));
    g_assert_cmpstr(text, ==, "         2\n");
    g_free(text);
    /* one written by hand counts */
    g_assert_true(g_file_set_contents(p, "         7\n", -1, NULL));
    reopen(f);
    g_assert_cmpuint(mq_attempts_count(f->a, "R1"), ==, 7);
    g_assert_true(g_file_set_contents(p, "garbage", -1, NULL));
    reopen(f);
    g_assert_cmpuint(mq_attempts_count(f->a, "R1"), ==, 0);
    g_assert_true(g_file_set_contents(p, "99999999999\n", -1, NULL));   /* over the cap */
    reopen(f);
    g_assert_cmpuint(mq_attempts_count(f->a, "R1"), ==, 0);
    g_free(p);
}

/* Names that are not queue IDs never reach the file system. */
static void
test_hostile_ids(struct fixture *f, gconstpointer data)
{
    const char *bad[] = { "../escape", "a/b", "", ".hidden", "x y" };
    char *outside = g_build_filename(f->dir, "escape", NULL);

    (void)data;
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_cmpuint(mq_attempts_begin(f->a, bad[i]), ==, 0);
        g_assert_cmpuint(mq_attempts_count(f->a, bad[i]), ==, 0);
        mq_attempts_end(f->a, bad[i]);
    }
    g_assert_false(g_file_test(outside, G_FILE_TEST_EXISTS));
    g_free(outside);
}

/* A record whose message left the queue is forgotten; the others stay. */
static void
test_sync(struct fixture *f, gconstpointer data)
{
    GHashTable *present = g_hash_table_new(g_str_hash, g_str_equal);
    char *stray = g_build_filename(f->path, "STRAY1", NULL);

    (void)data;
    mq_attempts_begin(f->a, "KEEP1");
    mq_attempts_begin(f->a, "GONE1");
    reopen(f);
    g_assert_true(g_file_set_contents(stray, "         1\n", -1, NULL));     /* by hand */
    mq_attempts_begin(f->a, "BUSY1");   /* in progress: left alone */
    g_hash_table_add(present, (gpointer) "KEEP1");
    mq_attempts_sync(f->a, present);
    g_assert_true(record_exists(f, "KEEP1"));
    g_assert_false(record_exists(f, "GONE1"));
    g_assert_false(record_exists(f, "STRAY1"));
    g_assert_cmpuint(mq_attempts_count(f->a, "KEEP1"), ==, 1);
    g_assert_cmpuint(mq_attempts_count(f->a, "GONE1"), ==, 0);
    g_assert_cmpuint(mq_attempts_count(f->a, "BUSY1"), ==, 1);
    reopen(f);
    g_assert_cmpuint(mq_attempts_count(f->a, "BUSY1"), ==, 1);
    g_hash_table_destroy(present);
    g_free(stray);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, struct fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/attempts/unfinished-count", test_unfinished_attempts_count);
    ADD("/attempts/slots", test_slots);
    ADD("/attempts/record-format", test_record_format);
    ADD("/attempts/hostile-ids", test_hostile_ids);
    ADD("/attempts/sync", test_sync);
    return g_test_run();
}
