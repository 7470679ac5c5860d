/* test-queue - sendmail queue directories: list, claim (flock), write to
 * the outgoing queue (at once, or staged and committed by batch), remove,
 * hold.
 *
 * Each test gets a fresh temporary spool with in/, out/ and hold/, and a real
 * qf/df pair captured from sendmail (tests/data/qf/multi-rcpt.*) in in/.
 * flock() locks belong to an open file description, so one process can play
 * both sendmail and mqscand: a second open() of the same qf conflicts.
 *
 * Tests whose path contains "/bug/" document a bug found while writing them;
 * they fail until the fix proposed next to them is applied.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/error.h"
#include "mqscan/qf.h"
#include "mqscan/queue.h"

#include "testutil.h"

#define ID "6AO3fFCt012659"
#define BIG (64u * 1024 * 1024)

struct spool {
    char *root, *in_path, *out_path, *hold_path;
    struct mq_queue *in, *out;
    char *qf, *df;              /* fixture bytes */
    size_t qf_len, df_len;
};

/* Writes dir/name with mode 0600. */
static void
put(const char *dir, const char *name, const char *buf, size_t len)
{
    char *p = g_build_filename(dir, name, NULL);
    GError *err = NULL;

    g_file_set_contents(p, buf, (gssize)len, &err);
    g_assert_no_error(err);
    g_assert_cmpint(g_chmod(p, 0600), ==, 0);
    g_free(p);
}

static char *
get(const char *dir, const char *name, size_t *len_r)
{
    char *p = g_build_filename(dir, name, NULL), *text = NULL;
    gsize len = 0;

    if (!g_file_get_contents(p, &text, &len, NULL))
        text = NULL;
    if (len_r != NULL)
        *len_r = len;
    g_free(p);
    return text;
}

static bool
exists(const char *dir, const char *name)
{
    char *p = g_build_filename(dir, name, NULL);
    struct stat st;
    bool r = lstat(p, &st) == 0;

    g_free(p);
    return r;
}

static mode_t
mode_of(const char *dir, const char *name)
{
    char *p = g_build_filename(dir, name, NULL);
    struct stat st;

    g_assert_cmpint(lstat(p, &st), ==, 0);
    g_free(p);
    return st.st_mode & 07777;
}

static gint
cmp_str_ptr(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
unlink_in(const char *dir, const char *name)
{
    char *p = g_build_filename(dir, name, NULL);

    g_assert_cmpint(g_unlink(p), ==, 0);
    g_free(p);
}

static void
spool_setup(struct spool *s, gconstpointer data)
{
    GError *err = NULL;

    s->root = g_dir_make_tmp("test-queue-XXXXXX", &err);
    g_assert_no_error(err);
    s->in_path = g_build_filename(s->root, "in", NULL);
    s->out_path = g_build_filename(s->root, "out", NULL);
    s->hold_path = g_build_filename(s->root, "hold", NULL);
    g_assert_cmpint(g_mkdir(s->in_path, 0700), ==, 0);
    g_assert_cmpint(g_mkdir(s->out_path, 0700), ==, 0);
    g_assert_cmpint(g_mkdir(s->hold_path, 0700), ==, 0);
    s->qf = test_load("qf/multi-rcpt.qf", &s->qf_len);
    s->df = test_load("qf/multi-rcpt.df", &s->df_len);
    put(s->in_path, "qf" ID, s->qf, s->qf_len);
    put(s->in_path, "df" ID, s->df, s->df_len);
    s->in = mq_queue_open(s->in_path, &err);
    g_assert_no_error(err);
    s->out = mq_queue_open(s->out_path, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(mq_queue_path(s->in), ==, s->in_path);
}

static void
spool_teardown(struct spool *s, gconstpointer data)
{
    mq_queue_free(&s->in);
    mq_queue_free(&s->out);
    g_assert_null(s->in);
    test_remove_tree(s->root);
    g_free(s->root);
    g_free(s->in_path);
    g_free(s->out_path);
    g_free(s->hold_path);
    g_free(s->qf);
    g_free(s->df);
}

/* Sets the mtime of dir/name to age seconds ago. */
static void
age_file(const char *dir, const char *name, time_t age)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    struct timespec ts[2];

    g_assert_cmpint(fd, >=, 0);
    ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    g_assert_cmpint(utimensat(fd, name, ts, AT_SYMLINK_NOFOLLOW), ==, 0);
    close(fd);
}

/* Claims id, expecting a failure with code. */
static void
claim_fails(struct mq_queue *q, const char *id, enum mq_error_code code)
{
    GError *err = NULL;
    struct mq_queue_entry *e = mq_queue_claim(q, id, BIG, &err);

    if (e != NULL)
        g_test_message("claim of %s succeeded (problem: %s)", id,
                       mq_queue_entry_problem(e) ? mq_queue_entry_problem(e)->message : "none");
    g_assert_null(e);
    g_assert_error(err, MQ_ERROR, (int)code);
    g_assert_nonnull(strstr(err->message, id));
    g_clear_error(&err);
}

/* Claims id, expecting an entry that is fit only for hold, with code. */
static struct mq_queue_entry *
claim_problem(struct mq_queue *q, const char *id, size_t max, enum mq_error_code code)
{
    GError *err = NULL;
    struct mq_queue_entry *e = mq_queue_claim(q, id, max, &err);
    size_t len = 99;

    g_assert_no_error(err);
    g_assert_nonnull(e);
    g_assert_nonnull(mq_queue_entry_problem(e));
    g_assert_error((GError *)mq_queue_entry_problem(e), MQ_ERROR, (int)code);
    g_assert_null(mq_queue_entry_qf(e));
    g_assert_null(mq_queue_entry_df(e, &len));
    g_assert_null(mq_queue_entry_qf_raw(e, &len));
    g_assert_cmpstr(mq_queue_entry_id(e), ==, id);
    return e;
}

/* ---- list ------------------------------------------------------------------ */

static void
test_list(struct spool *s, gconstpointer data)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    GError *err = NULL;
    char long_name[80];
    char *dotdot = g_build_filename(s->in_path, "qf..", NULL);

    put(s->in_path, "qfOTHER1", "x", 1);
    put(s->in_path, "tfTEMP1", "x", 1);         /* sendmail's temp file */
    put(s->in_path, "xfXSCRIPT1", "x", 1);      /* transcript */
    put(s->in_path, "QfQUAR1", "x", 1);         /* lost qf */
    put(s->in_path, "dfNOQF1", "x", 1);         /* df without qf */
    put(s->in_path, "qfbad-id", "x", 1);
    put(s->in_path, "qf", "x", 1);              /* empty ID */
    put(s->in_path, "qf.hidden", "x", 1);
    put(s->in_path, "qf" ID ".bak", "x", 1);
    put(s->in_path, "Qf" ID, "x", 1);
    g_assert_cmpint(g_mkdir(dotdot, 0700), ==, 0);
    put(dotdot, "x", "x", 1);                   /* "qf../x" */
    memset(long_name, 'A', sizeof(long_name));
    memcpy(long_name, "qf", 2);
    long_name[2 + 65] = '\0';                   /* a 65-character ID */
    put(s->in_path, long_name, "x", 1);

    g_assert_cmpint(mq_queue_list(s->in, ids, &err), ==, 0);
    g_assert_no_error(err);
    g_ptr_array_sort(ids, cmp_str_ptr);
    g_assert_cmpuint(ids->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(ids, 0), ==, ID);
    g_assert_cmpstr(g_ptr_array_index(ids, 1), ==, "OTHER1");
    /* appends */
    g_assert_cmpint(mq_queue_list(s->in, ids, &err), ==, 0);
    g_assert_cmpuint(ids->len, ==, 4);
    g_ptr_array_unref(ids);
    g_free(dotdot);
}

static void
test_open_missing(void)
{
    GError *err = NULL;

    g_assert_null(mq_queue_open("/nonexistent/mqscan/queue", &err));
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_clear_error(&err);
}

static void
test_stat(struct spool *s, gconstpointer data)
{
    uint64_t size = 0;
    time_t mtime = 0;

    age_file(s->in_path, "qf" ID, 100);
    g_assert_cmpint(mq_queue_stat(s->in, ID, &size, &mtime), ==, 0);
    g_assert_cmpuint(size, ==, s->qf_len + s->df_len);
    g_assert_cmpint(time(NULL) - mtime, >=, 100);
    g_assert_cmpint(time(NULL) - mtime, <, 110);

    g_assert_cmpint(mq_queue_stat(s->in, "NOSUCH1", &size, &mtime), ==, -1);
    unlink_in(s->in_path, "df" ID);
    g_assert_cmpint(mq_queue_stat(s->in, ID, &size, &mtime), ==, 0);
    g_assert_cmpuint(size, ==, s->qf_len);
}

/* ---- claim ------------------------------------------------------------------ */

static void
test_claim(struct spool *s, gconstpointer data)
{
    GError *err = NULL;
    struct mq_queue_entry *e;
    const char *raw, *df, *flags;
    size_t len;
    struct mq_qf *qf;

    age_file(s->in_path, "qf" ID, 30);
    e = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_no_error(err);
    g_assert_nonnull(e);
    g_assert_null(mq_queue_entry_problem(e));
    g_assert_cmpstr(mq_queue_entry_id(e), ==, ID);
    qf = mq_queue_entry_qf(e);
    g_assert_nonnull(qf);
    g_assert_cmpstr(mq_qf_sender(qf), ==, "alice@example.com");
    g_assert_cmpuint(mq_qf_rcpt_count(qf), ==, 3);
    g_assert_cmpstr(mq_qf_rcpt(qf, 2, &flags), ==, "carol@example.org");
    raw = mq_queue_entry_qf_raw(e, &len);
    g_assert_cmpmem(raw, len, s->qf, s->qf_len);
    df = mq_queue_entry_df(e, &len);
    g_assert_cmpmem(df, len, s->df, s->df_len);
    g_assert_cmpint(time(NULL) - mq_queue_entry_mtime(e), >=, 30);
    mq_queue_entry_free(&e);
    g_assert_null(e);
    mq_queue_entry_free(&e);        /* NULL allowed */
}

/* The size limit covers qf + df: exactly at it is fine, one byte less is
 * MQ_ERROR_LIMIT. */
static void
test_claim_limit(struct spool *s, gconstpointer data)
{
    GError *err = NULL;
    struct mq_queue_entry *e;

    e = mq_queue_claim(s->in, ID, s->qf_len + s->df_len, &err);
    g_assert_no_error(err);
    g_assert_null(mq_queue_entry_problem(e));
    mq_queue_entry_free(&e);

    e = claim_problem(s->in, ID, s->qf_len + s->df_len - 1, MQ_ERROR_LIMIT);
    mq_queue_entry_free(&e);
    e = claim_problem(s->in, ID, s->qf_len, MQ_ERROR_LIMIT);
    mq_queue_entry_free(&e);
    e = claim_problem(s->in, ID, 10, MQ_ERROR_LIMIT);     /* even below the qf */
    mq_queue_entry_free(&e);
}

/* While claimed, nobody else gets it - not even this process through
 * another open file description - and the lock goes with the entry. */
static void
test_claim_twice(struct spool *s, gconstpointer data)
{
    GError *err = NULL;
    struct mq_queue_entry *e = mq_queue_claim(s->in, ID, BIG, &err), *e2;
    char *p = g_build_filename(s->in_path, "qf" ID, NULL);
    int fd;

    g_assert_no_error(err);
    claim_fails(s->in, ID, MQ_ERROR_TEMP);

    /* sendmail's queue runner cannot lock it either */
    fd = open(p, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(flock(fd, LOCK_SH | LOCK_NB), ==, -1);
    g_assert_cmpint(errno, ==, EWOULDBLOCK);

    mq_queue_entry_free(&e);
    g_assert_cmpint(flock(fd, LOCK_EX | LOCK_NB), ==, 0);   /* released */
    close(fd);

    e2 = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_no_error(err);
    g_assert_nonnull(e2);
    mq_queue_entry_free(&e2);
    g_free(p);
}

/* A qf that sendmail holds (exclusively while receiving, shared while
 * sorting a queue run) is not claimed. */
static void
test_claim_locked(struct spool *s, gconstpointer data)
{
    char *p = g_build_filename(s->in_path, "qf" ID, NULL);
    int fd = open(p, O_RDONLY);
    GError *err = NULL;
    struct mq_queue_entry *e;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(flock(fd, LOCK_EX | LOCK_NB), ==, 0);
    claim_fails(s->in, ID, MQ_ERROR_TEMP);
    g_assert_cmpint(flock(fd, LOCK_UN), ==, 0);

    g_assert_cmpint(flock(fd, LOCK_SH | LOCK_NB), ==, 0);
    claim_fails(s->in, ID, MQ_ERROR_TEMP);
    g_assert_cmpint(flock(fd, LOCK_UN), ==, 0);

    e = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_no_error(err);
    g_assert_null(mq_queue_entry_problem(e));
    mq_queue_entry_free(&e);
    close(fd);
    g_free(p);
}

static void
test_claim_vanished(struct spool *s, gconstpointer data)
{
    claim_fails(s->in, "NOSUCH1", MQ_ERROR_TEMP);
}

/* sendmail's empty placeholder: not yet (TEMP) while recent, corrupt once
 * it has been empty for long (sendmail died before renaming tf to qf). */
static void
test_claim_empty(struct spool *s, gconstpointer data)
{
    struct mq_queue_entry *e;

    put(s->in_path, "qf" ID, "", 0);
    claim_fails(s->in, ID, MQ_ERROR_TEMP);
    age_file(s->in_path, "qf" ID, 60);
    claim_fails(s->in, ID, MQ_ERROR_TEMP);

    age_file(s->in_path, "qf" ID, 3600);
    e = claim_problem(s->in, ID, BIG, MQ_ERROR_CORRUPT);
    /* still locked while the entry lives */
    claim_fails(s->in, ID, MQ_ERROR_TEMP);
    mq_queue_entry_free(&e);
}

static void
test_claim_missing_df(struct spool *s, gconstpointer data)
{
    struct mq_queue_entry *e;

    unlink_in(s->in_path, "df" ID);
    e = claim_problem(s->in, ID, BIG, MQ_ERROR_CORRUPT);
    g_assert_nonnull(strstr(mq_queue_entry_problem(e)->message, "df" ID));
    mq_queue_entry_free(&e);
}

static void
test_claim_corrupt_qf(struct spool *s, gconstpointer data)
{
    static const char *const bad[] = {
        "garbage\n",
        "V8\nT1\nS<a@example.com>\nRPFD:<b@example.com>\n",       /* no end */
        "V7\nT1\nS<a@example.com>\nRPFD:<b@example.com>\n.\n",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        struct mq_queue_entry *e;
        put(s->in_path, "qf" ID, bad[i], strlen(bad[i]));
        e = claim_problem(s->in, ID, BIG, MQ_ERROR_CORRUPT);
        claim_fails(s->in, ID, MQ_ERROR_TEMP);              /* locked */
        mq_queue_entry_free(&e);
    }
}

/* Files read back are untrusted: a qf or df with a second hard link is
 * refused (someone could change it through the other name). */
static void
test_claim_hardlink(struct spool *s, gconstpointer data)
{
    char *qf = g_build_filename(s->in_path, "qf" ID, NULL);
    char *df = g_build_filename(s->in_path, "df" ID, NULL);
    char *other = g_build_filename(s->root, "other-name", NULL);
    struct mq_queue_entry *e;

    g_assert_cmpint(link(qf, other), ==, 0);
    e = claim_problem(s->in, ID, BIG, MQ_ERROR_CORRUPT);
    mq_queue_entry_free(&e);
    g_assert_cmpint(g_unlink(other), ==, 0);

    g_assert_cmpint(link(df, other), ==, 0);
    e = claim_problem(s->in, ID, BIG, MQ_ERROR_CORRUPT);
    mq_queue_entry_free(&e);
    g_free(qf);
    g_free(df);
    g_free(other);
}

/* A symlink planted as qf is not followed: claiming must not read the file
 * it points to. */
static void
test_claim_symlink(struct spool *s, gconstpointer data)
{
    char *target = g_build_filename(s->root, "elsewhere", NULL);
    char *qf = g_build_filename(s->in_path, "qf" ID, NULL);
    GError *err = NULL;
    struct mq_queue_entry *e;

    put(s->root, "elsewhere", s->qf, s->qf_len);            /* a valid qf */
    g_assert_cmpint(g_unlink(qf), ==, 0);
    g_assert_cmpint(symlink(target, qf), ==, 0);
    e = mq_queue_claim(s->in, ID, BIG, &err);
    if (e != NULL) {
        /* an entry is acceptable only as one to hold */
        g_assert_no_error(err);
        g_assert_nonnull(mq_queue_entry_problem(e));
        g_assert_null(mq_queue_entry_qf(e));
        mq_queue_entry_free(&e);
    } else {
        g_assert_nonnull(err);
        g_assert_true(err->domain == MQ_ERROR);
        g_test_message("%s", err->message);
        g_clear_error(&err);
    }

    /* a symlinked df is not followed either */
    g_assert_cmpint(g_unlink(qf), ==, 0);
    put(s->in_path, "qf" ID, s->qf, s->qf_len);
    unlink_in(s->in_path, "df" ID);
    {
        char *df = g_build_filename(s->in_path, "df" ID, NULL);
        g_assert_cmpint(symlink(target, df), ==, 0);
        g_free(df);
    }
    e = claim_problem(s->in, ID, BIG, MQ_ERROR_CORRUPT);
    mq_queue_entry_free(&e);
    g_free(target);
    g_free(qf);
}

/* A FIFO planted as qf or df must not hang the claim. */
static void
test_claim_fifo(struct spool *s, gconstpointer data)
{
    char *qf = g_build_filename(s->in_path, "qf" ID, NULL);
    char *df = g_build_filename(s->in_path, "df" ID, NULL);
    GError *err = NULL;
    struct mq_queue_entry *e;

    g_assert_cmpint(g_unlink(qf), ==, 0);
    g_assert_cmpint(mkfifo(qf, 0600), ==, 0);
    alarm(20);                  /* a hang kills the test */
    e = mq_queue_claim(s->in, ID, BIG, &err);
    alarm(0);
    if (e != NULL) {
        g_assert_no_error(err);
        g_assert_nonnull(mq_queue_entry_problem(e));
        g_assert_null(mq_queue_entry_qf(e));
        mq_queue_entry_free(&e);
    } else {
        g_assert_nonnull(err);
        g_clear_error(&err);
    }

    g_assert_cmpint(g_unlink(qf), ==, 0);
    put(s->in_path, "qf" ID, s->qf, s->qf_len);
    g_assert_cmpint(g_unlink(df), ==, 0);
    g_assert_cmpint(mkfifo(df, 0600), ==, 0);
    alarm(20);
    e = claim_problem(s->in, ID, BIG, MQ_ERROR_CORRUPT);
    alarm(0);
    mq_queue_entry_free(&e);
    g_free(qf);
    g_free(df);
}

/* ---- write ------------------------------------------------------------------ */

static struct mq_qf *
parse_fixture(const char *name)
{
    char *rel = g_strdup_printf("qf/%s.qf", name);
    size_t len;
    char *buf = test_load(rel, &len);
    GError *err = NULL;
    struct mq_qf *qf = mq_qf_parse(buf, len, &err);

    g_assert_no_error(err);
    g_free(buf);
    g_free(rel);
    return qf;
}

static char *
format_new(const struct mq_qf *qf)
{
    GString *s = g_string_new(NULL);
    mq_qf_format(qf, MQ_QF_FORMAT_NEW_ENTRY, s);
    return g_string_free(s, FALSE);
}

typedef int write_fn(struct mq_queue *out, const char *id, const struct mq_qf *qf,
                     const void *df, size_t df_len, char **id_r, gboolean *dup_r, GError **err);

/* Writes (mq_queue_write) or stages (mq_queue_stage) qf + df as id; returns
 * the ID used. */
static char *
write_with(write_fn *fn, struct spool *s, const char *id, const struct mq_qf *qf,
           const char *df, gboolean want_dup)
{
    GError *err = NULL;
    char *id_r = NULL;
    gboolean dup = !want_dup;

    g_assert_cmpint(fn(s->out, id, qf, df, strlen(df), &id_r, &dup, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_nonnull(id_r);
    g_assert_cmpint(dup, ==, want_dup);
    return id_r;
}

static char *
write_ok(struct spool *s, const char *id, const struct mq_qf *qf, const char *df,
         gboolean want_dup)
{
    return write_with(mq_queue_write, s, id, qf, df, want_dup);
}

static void
test_write(struct spool *s, gconstpointer data)
{
    struct mq_qf *qf = parse_fixture("bounce"), *back;
    char *id, *text, *want, *names;
    size_t len;
    GError *err = NULL;
    mode_t old = umask(0);

    id = write_ok(s, ID, qf, "the body\n", FALSE);
    umask(old);
    g_assert_cmpstr(id, ==, ID);
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "df" ID ",qf" ID);           /* no tf left */
    g_free(names);
    g_assert_cmpuint(mode_of(s->out_path, "qf" ID), ==, 0600);
    g_assert_cmpuint(mode_of(s->out_path, "df" ID), ==, 0600);

    text = get(s->out_path, "df" ID, NULL);
    g_assert_cmpstr(text, ==, "the body\n");
    g_free(text);

    /* the qf is the new-entry form: parses, K0/N0, no I record */
    text = get(s->out_path, "qf" ID, &len);
    want = format_new(qf);
    g_assert_cmpstr(text, ==, want);
    g_assert_nonnull(strstr(text, "\nK0\nN0\n"));
    g_assert_null(strstr(text, "\nI"));
    back = mq_qf_parse(text, len, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(mq_qf_sender(back), ==, "MAILER-DAEMON");
    g_assert_cmpint(mq_qf_ctime(back), ==, mq_qf_ctime(qf));
    mq_qf_free(&back);
    g_free(want);
    g_free(text);
    g_free(id);
    mq_qf_free(&qf);
}

/* The same message again (a run that died before removing the original):
 * recognised, nothing written. */
static void
test_write_dup(struct spool *s, gconstpointer data)
{
    struct mq_qf *qf = parse_fixture("multi-rcpt");
    char *id, *names;
    struct stat before, after;
    char *p = g_build_filename(s->out_path, "qf" ID, NULL);

    id = write_ok(s, ID, qf, "body one\n", FALSE);
    g_free(id);
    g_assert_cmpint(stat(p, &before), ==, 0);

    mq_qf_add_header(qf, "X-mqscan", "clean");      /* edits do not matter */
    id = write_ok(s, ID, qf, "body two\n", TRUE);
    g_assert_cmpstr(id, ==, ID);
    g_free(id);
    g_assert_cmpint(stat(p, &after), ==, 0);
    g_assert_cmpuint(before.st_ino, ==, after.st_ino);
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "df" ID ",qf" ID);
    g_free(names);
    {
        char *text = get(s->out_path, "df" ID, NULL);
        g_assert_cmpstr(text, ==, "body one\n");
        g_free(text);
    }
    g_free(p);
    mq_qf_free(&qf);
}

/* A different message under the same ID (sendmail reuses IDs across
 * queues): a suffixed ID is used and the other message is left alone. */
static void
test_write_other(struct spool *s, gconstpointer data)
{
    struct mq_qf *a = parse_fixture("multi-rcpt");
    struct mq_qf *b = parse_fixture("null-sender");     /* same ctime, other sender */
    struct mq_qf *c = parse_fixture("bounce");          /* other ctime and sender */
    char *id, *names, *text;

    g_assert_cmpint(mq_qf_ctime(a), ==, mq_qf_ctime(b));
    id = write_ok(s, ID, a, "A\n", FALSE);
    g_assert_cmpstr(id, ==, ID);
    g_free(id);
    id = write_ok(s, ID, b, "B\n", FALSE);
    g_assert_cmpstr(id, ==, ID "A");
    g_free(id);
    id = write_ok(s, ID, c, "C\n", FALSE);
    g_assert_cmpstr(id, ==, ID "B");
    g_free(id);
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "df" ID ",df" ID "A,df" ID "B,qf" ID ",qf" ID "A,qf" ID "B");
    g_free(names);
    text = get(s->out_path, "df" ID, NULL);
    g_assert_cmpstr(text, ==, "A\n");
    g_free(text);
    text = get(s->out_path, "df" ID "A", NULL);
    g_assert_cmpstr(text, ==, "B\n");
    g_free(text);
    mq_qf_free(&a);
    mq_qf_free(&b);
    mq_qf_free(&c);
}

/* BUG: the duplicate check only looks at the first candidate ID. When a
 * message had to take a suffixed ID (IDA) because another message held
 * qfID, and mqscand died before removing the original from the incoming
 * queue, the retry writes a second copy as IDB: the message is delivered
 * twice. Proposed fix in mq_queue_write(), mqscan/queue.c - check every
 * candidate, not only the first:
 *
 *     -        if (attempt == 0 && queue_is_own_result(out, qfname, qf)) {
 *     +        if (queue_is_own_result(out, qfname, qf)) {
 */
static void
test_bug_write_dup_after_suffix(struct spool *s, gconstpointer data)
{
    struct mq_qf *other = parse_fixture("null-sender");
    struct mq_qf *ours = parse_fixture("multi-rcpt");
    char *id, *names;

    id = write_ok(s, ID, other, "other\n", FALSE);
    g_free(id);
    id = write_ok(s, ID, ours, "ours\n", FALSE);
    g_assert_cmpstr(id, ==, ID "A");
    g_free(id);
    /* the retry after a crash */
    id = write_ok(s, ID, ours, "ours\n", TRUE);
    g_assert_cmpstr(id, ==, ID "A");
    g_free(id);
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "df" ID ",df" ID "A,qf" ID ",qf" ID "A");
    g_free(names);
    mq_qf_free(&other);
    mq_qf_free(&ours);
}

/* Leftovers of a run that died between the df and the qf: a df without qf
 * and a tf are replaced. */
static void
test_write_stale(struct spool *s, gconstpointer data)
{
    struct mq_qf *qf = parse_fixture("multi-rcpt");
    char *id, *text, *names;

    put(s->out_path, "df" ID, "stale df\n", 9);
    put(s->out_path, "tf" ID, "stale tf\n", 9);
    id = write_ok(s, ID, qf, "fresh\n", FALSE);
    g_assert_cmpstr(id, ==, ID);
    text = get(s->out_path, "df" ID, NULL);
    g_assert_cmpstr(text, ==, "fresh\n");
    g_free(text);
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "df" ID ",qf" ID);
    g_free(names);
    g_free(id);
    mq_qf_free(&qf);
}

/* A qf in the way that cannot be read (not ours) is never replaced. */
static void
test_write_unreadable_existing(struct spool *s, gconstpointer data)
{
    struct mq_qf *qf = parse_fixture("multi-rcpt");
    char *id, *text;

    put(s->out_path, "qf" ID, "not a qf\n", 9);
    id = write_ok(s, ID, qf, "x\n", FALSE);
    g_assert_cmpstr(id, ==, ID "A");
    text = get(s->out_path, "qf" ID, NULL);
    g_assert_cmpstr(text, ==, "not a qf\n");
    g_free(text);
    g_free(id);
    mq_qf_free(&qf);
}

static void
test_write_no_free_id(struct spool *s, gconstpointer data)
{
    struct mq_qf *qf = parse_fixture("multi-rcpt");
    GError *err = NULL;
    char *id = NULL, *names_before, *names_after;
    gboolean dup = TRUE;

    put(s->out_path, "qf" ID, "x", 1);
    for (char c = 'A'; c <= 'Z'; c++) {
        char name[32];
        g_snprintf(name, sizeof(name), "qf" ID "%c", c);
        put(s->out_path, name, "x", 1);
    }
    names_before = test_listing(s->out_path);
    g_assert_cmpint(mq_queue_write(s->out, ID, qf, "x", 1, &id, &dup, &err), ==, -1);
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_null(id);
    g_assert_false(dup);
    names_after = test_listing(s->out_path);
    g_assert_cmpstr(names_after, ==, names_before);     /* nothing left behind */
    g_free(names_before);
    g_free(names_after);
    mq_qf_free(&qf);
}

static void
test_write_panic_bad_id(void)
{
    if (g_test_subprocess()) {
        GError *err = NULL;
        char *root = g_dir_make_tmp("test-queue-XXXXXX", &err);
        struct mq_queue *out = mq_queue_open(root, &err);
        struct mq_qf *qf = parse_fixture("multi-rcpt");
        char *id = NULL;
        gboolean dup;
        g_rmdir(root);
        mq_queue_write(out, "../../etc/x", qf, "x", 1, &id, &dup, &err);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*panic*invalid queue id*");
}

static void
test_claim_panic_bad_id(void)
{
    if (g_test_subprocess()) {
        GError *err = NULL;
        struct mq_queue *q = mq_queue_open("/", &err);
        mq_queue_claim(q, "../etc/passwd", BIG, &err);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*panic*invalid queue id*");
}

/* ---- group commit: stage, commit, unstage --------------------------------- */

static char *
stage_ok(struct spool *s, const char *id, const struct mq_qf *qf, const char *df,
         gboolean want_dup)
{
    return write_with(mq_queue_stage, s, id, qf, df, want_dup);
}

/* A staged entry is invisible to sendmail (no qf) until its batch is
 * committed; then it is exactly what mq_queue_write() makes. */
static void
test_stage_commit(struct spool *s, gconstpointer data)
{
    static const char *const ids[] = { ID, "6AO3fFCt012660", "6AO3fFCt012661" };
    struct mq_qf *qf = parse_fixture("bounce");
    bool failed[G_N_ELEMENTS(ids)];
    GError *err = NULL;
    char *names, *text, *want;

    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        char *id = stage_ok(s, ids[i], qf, ids[i], FALSE);
        g_assert_cmpstr(id, ==, ids[i]);
        g_free(id);
    }
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "df" ID ",df6AO3fFCt012660,df6AO3fFCt012661,"
                               "tf" ID ",tf6AO3fFCt012660,tf6AO3fFCt012661");
    g_free(names);

    g_assert_cmpint(mq_queue_commit(s->out, ids, G_N_ELEMENTS(ids), GPOINTER_TO_UINT(data),
                                    failed, &err), ==, 0);
    g_assert_no_error(err);
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "df" ID ",df6AO3fFCt012660,df6AO3fFCt012661,"
                               "qf" ID ",qf6AO3fFCt012660,qf6AO3fFCt012661");
    g_free(names);
    want = format_new(qf);
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        char name[32];
        g_assert_false(failed[i]);
        g_snprintf(name, sizeof(name), "df%s", ids[i]);
        text = get(s->out_path, name, NULL);
        g_assert_cmpstr(text, ==, ids[i]);
        g_free(text);
        g_assert_cmpuint(mode_of(s->out_path, name), ==, 0600);
        g_snprintf(name, sizeof(name), "qf%s", ids[i]);
        text = get(s->out_path, name, NULL);
        g_assert_cmpstr(text, ==, want);
        g_free(text);
    }
    g_free(want);
    mq_qf_free(&qf);
}

/* Unstaged, or recognised as an earlier result: nothing of it is left. */
static void
test_stage_unstage_dup(struct spool *s, gconstpointer data)
{
    struct mq_qf *qf = parse_fixture("multi-rcpt");
    char *id, *names;

    id = stage_ok(s, ID, qf, "x\n", FALSE);
    mq_queue_unstage(s->out, id);
    g_free(id);
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "");
    g_free(names);

    id = write_ok(s, ID, qf, "first\n", FALSE);
    g_free(id);
    id = stage_ok(s, ID, qf, "again\n", TRUE);
    g_assert_cmpstr(id, ==, ID);
    g_free(id);
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "df" ID ",qf" ID);
    g_free(names);
    mq_qf_free(&qf);
}

/* An entry that cannot be committed (its df gone; a qf that appeared under
 * its name meanwhile) fails alone and leaves nothing; the others go on. */
static ino_t
inode_of(const char *dir, const char *name, nlink_t *nlink_r)
{
    char *p = g_build_filename(dir, name, NULL);
    struct stat st;

    g_assert_cmpint(lstat(p, &st), ==, 0);
    g_free(p);
    if (nlink_r != NULL)
        *nlink_r = st.st_nlink;
    return st.st_ino;
}

/* Stages the claimed ID with its own df, commits it, removes the original;
 * returns whether the outgoing df was the incoming file (a link). */
static bool
stage_same_df_round(struct spool *s)
{
    GError *err = NULL;
    struct mq_queue_entry *e = mq_queue_claim(s->in, ID, BIG, &err);
    const char *ids[1] = { ID };
    bool failed[1], linked;
    char *id = NULL, *text;
    gboolean dup = TRUE;
    ino_t in_ino = inode_of(s->in_path, "df" ID, NULL);
    nlink_t nlink;
    size_t len;

    g_assert_no_error(err);
    g_assert_cmpint(mq_queue_stage_same_df(s->out, ID, mq_queue_entry_qf(e), s->in, e, &id,
                                           &dup, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpstr(id, ==, ID);
    g_assert_false(dup);
    linked = inode_of(s->out_path, "df" ID, &nlink) == in_ino;
    g_assert_cmpuint(nlink, ==, linked ? 2 : 1);
    g_assert_cmpint(mq_queue_commit(s->out, ids, 1, 0, failed, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(mq_queue_remove(s->in, e, &err), ==, 0);
    g_assert_no_error(err);
    mq_queue_entry_free(&e);
    g_assert_false(exists(s->in_path, "df" ID));
    text = get(s->out_path, "df" ID, &len);
    g_assert_cmpmem(text, len, s->df, s->df_len);
    g_free(text);
    g_assert_cmpuint(mode_of(s->out_path, "df" ID), ==, 0600);
    inode_of(s->out_path, "df" ID, &nlink);
    g_assert_cmpuint(nlink, ==, 1);
    g_free(id);
    return linked;
}

/* An unchanged df is linked, not copied, when it is a file we would have
 * written; anything else is written as mq_queue_stage() does. */
static void
test_stage_same_df(struct spool *s, gconstpointer data)
{
    char *p = g_build_filename(s->in_path, "df" ID, NULL), *names;

    (void)data;
    g_assert_true(stage_same_df_round(s));
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "df" ID ",qf" ID);
    g_free(names);

    /* mode 0644: not what we write, so written */
    test_remove_tree(s->out_path);
    g_assert_cmpint(g_mkdir(s->out_path, 0700), ==, 0);
    mq_queue_free(&s->out);
    s->out = mq_queue_open(s->out_path, NULL);
    put(s->in_path, "qf" ID, s->qf, s->qf_len);
    put(s->in_path, "df" ID, s->df, s->df_len);
    g_assert_cmpint(g_chmod(p, 0644), ==, 0);
    g_assert_false(stage_same_df_round(s));
    g_free(p);
}

/* A run that dies after mq_queue_stage_same_df() leaves the incoming df
 * with two links: the next claim takes it, and removes the staged copy if
 * it was never committed; a committed one is found again as the result. A
 * link from anywhere else still makes the df refused. */
static void
test_stage_same_df_crash(struct spool *s, gconstpointer data)
{
    GError *err = NULL;
    struct mq_queue_entry *e;
    const char *ids[1] = { ID };
    bool failed[1];
    char *id = NULL, *names, *stray, *in_df;
    gboolean dup = TRUE;
    nlink_t nlink;

    (void)data;
    mq_queue_set_outgoing(s->in, s->out);
    /* staged, then the run dies */
    e = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_no_error(err);
    g_assert_cmpint(mq_queue_stage_same_df(s->out, ID, mq_queue_entry_qf(e), s->in, e, &id,
                                           &dup, &err), ==, 0);
    g_free(id);
    mq_queue_entry_free(&e);
    inode_of(s->in_path, "df" ID, &nlink);
    g_assert_cmpuint(nlink, ==, 2);
    e = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_no_error(err);
    g_assert_null(mq_queue_entry_problem(e));
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "");                 /* the staged copy is gone */
    g_free(names);
    inode_of(s->in_path, "df" ID, &nlink);
    g_assert_cmpuint(nlink, ==, 1);

    /* committed, then the run dies before removing the original */
    g_assert_cmpint(mq_queue_stage_same_df(s->out, ID, mq_queue_entry_qf(e), s->in, e, &id,
                                           &dup, &err), ==, 0);
    g_free(id);
    g_assert_cmpint(mq_queue_commit(s->out, ids, 1, 0, failed, &err), ==, 0);
    mq_queue_entry_free(&e);
    e = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_no_error(err);
    g_assert_null(mq_queue_entry_problem(e));
    g_assert_cmpint(mq_queue_stage_same_df(s->out, ID, mq_queue_entry_qf(e), s->in, e, &id,
                                           &dup, &err), ==, 0);
    g_assert_true(dup);                             /* found as the result */
    g_free(id);
    g_assert_cmpint(mq_queue_remove(s->in, e, &err), ==, 0);
    mq_queue_entry_free(&e);
    inode_of(s->out_path, "df" ID, &nlink);
    g_assert_cmpuint(nlink, ==, 1);

    /* a link from elsewhere */
    put(s->in_path, "qf" ID, s->qf, s->qf_len);
    put(s->in_path, "df" ID, s->df, s->df_len);
    in_df = g_build_filename(s->in_path, "df" ID, NULL);
    stray = g_build_filename(s->root, "stray", NULL);
    g_assert_cmpint(link(in_df, stray), ==, 0);
    e = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_no_error(err);
    g_assert_nonnull(mq_queue_entry_problem(e));
    g_assert_true(strstr(mq_queue_entry_problem(e)->message, "links") != NULL);
    mq_queue_entry_free(&e);
    g_free(stray);
    g_free(in_df);
}

/* Queues on two file systems: the df is written. */
static void
test_stage_same_df_exdev(void)
{
    struct spool s = { 0 };
    char *shm = g_build_filename("/dev/shm", "test-queue-XXXXXX", NULL);
    struct stat a, b;

    spool_setup(&s, NULL);
    if (g_mkdtemp(shm) == NULL || stat(shm, &a) < 0 || stat(s.out_path, &b) < 0
        || a.st_dev == b.st_dev) {
        g_test_skip("no second file system (/dev/shm) here");
    } else {
        mq_queue_free(&s.out);
        test_remove_tree(s.out_path);
        g_free(s.out_path);
        s.out_path = g_strdup(shm);
        s.out = mq_queue_open(s.out_path, NULL);
        g_assert_false(stage_same_df_round(&s));
    }
    g_free(s.out_path);
    s.out_path = g_build_filename(s.root, "out", NULL);
    test_remove_tree(shm);
    g_free(shm);
    spool_teardown(&s, NULL);
}

static void
test_stage_commit_failures(struct spool *s, gconstpointer data)
{
    static const char *const ids[] = { ID, "6AO3fFCt012660", "6AO3fFCt012661" };
    struct mq_qf *qf = parse_fixture("multi-rcpt");
    bool failed[G_N_ELEMENTS(ids)];
    GError *err = NULL;
    char *names, *text;

    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++)
        g_free(stage_ok(s, ids[i], qf, "body\n", FALSE));
    unlink_in(s->out_path, "df6AO3fFCt012660");
    put(s->out_path, "qf6AO3fFCt012661", "someone else's\n", 15);

    g_assert_cmpint(mq_queue_commit(s->out, ids, G_N_ELEMENTS(ids), GPOINTER_TO_UINT(data),
                                    failed, &err), ==, -1);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "6AO3fFCt012660"));
    g_clear_error(&err);
    g_assert_false(failed[0]);
    g_assert_true(failed[1]);
    g_assert_true(failed[2]);
    names = test_listing(s->out_path);
    g_assert_cmpstr(names, ==, "df" ID ",qf" ID ",qf6AO3fFCt012661");
    g_free(names);
    text = get(s->out_path, "qf6AO3fFCt012661", NULL);
    g_assert_cmpstr(text, ==, "someone else's\n");
    g_free(text);
    mq_qf_free(&qf);
}

/* ---- remove, hold ---------------------------------------------------------- */

static void
test_remove(struct spool *s, gconstpointer data)
{
    GError *err = NULL;
    struct mq_queue_entry *e = mq_queue_claim(s->in, ID, BIG, &err);
    char *names;

    put(s->in_path, "qfOTHER1", "x", 1);
    g_assert_no_error(err);
    g_assert_cmpint(mq_queue_remove(s->in, e, &err), ==, 0);
    g_assert_no_error(err);
    mq_queue_entry_free(&e);
    names = test_listing(s->in_path);
    g_assert_cmpstr(names, ==, "qfOTHER1");
    g_free(names);

    /* a problem entry without df is removed too */
    put(s->in_path, "qf" ID, s->qf, s->qf_len);
    e = claim_problem(s->in, ID, BIG, MQ_ERROR_CORRUPT);
    g_assert_cmpint(mq_queue_remove(s->in, e, &err), ==, 0);
    g_assert_no_error(err);
    mq_queue_entry_free(&e);
    g_assert_false(exists(s->in_path, "qf" ID));
}

/* Several entries, one directory fsync; a vanished file is no error. */
static void
test_remove_many(struct spool *s, gconstpointer data)
{
    struct mq_queue_entry *e[2];
    GError *err = NULL;
    char *names;

    put(s->in_path, "qf6AO3fFCt012660", s->qf, s->qf_len);
    put(s->in_path, "df6AO3fFCt012660", s->df, s->df_len);
    put(s->in_path, "qfOTHER1", "x", 1);
    e[0] = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_no_error(err);
    e[1] = mq_queue_claim(s->in, "6AO3fFCt012660", BIG, &err);
    g_assert_no_error(err);
    unlink_in(s->in_path, "df6AO3fFCt012660");
    g_assert_cmpint(mq_queue_remove_many(s->in, e, 2, &err), ==, 0);
    g_assert_no_error(err);
    mq_queue_entry_free(&e[0]);
    mq_queue_entry_free(&e[1]);
    names = test_listing(s->in_path);
    g_assert_cmpstr(names, ==, "qfOTHER1");
    g_free(names);
}

/* Checks hold/NAME.reason: "id: ID", "reason: WANT", "time: N", "end". */
static void
check_reason(const struct spool *s, const char *name, const char *want_reason)
{
    char *file = g_strdup_printf("%s.reason", name);
    char *text = get(s->hold_path, file, NULL);
    char **lines;
    uint64_t t;
    char *want;

    g_assert_nonnull(text);
    g_assert_cmpuint(mode_of(s->hold_path, file), ==, 0600);
    lines = g_strsplit(text, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 5);
    g_assert_cmpstr(lines[0], ==, "id: " ID);
    want = g_strdup_printf("reason: %s", want_reason);
    g_assert_cmpstr(lines[1], ==, want);
    g_assert_true(g_str_has_prefix(lines[2], "time: "));
    t = g_ascii_strtoull(lines[2] + 6, NULL, 10);
    g_assert_cmpint(llabs((long long)t - (long long)time(NULL)), <, 60);
    g_assert_cmpstr(lines[3], ==, "end");
    g_assert_cmpstr(lines[4], ==, "");
    g_free(want);
    g_strfreev(lines);
    g_free(text);
    g_free(file);
}

static void
test_hold(struct spool *s, gconstpointer data)
{
    GError *err = NULL;
    struct mq_queue_entry *e;
    char *names, *text;
    size_t len;

    /* first hold */
    e = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_no_error(err);
    g_assert_cmpint(mq_queue_hold(s->in, e, s->hold_path,
                                  "infected: Eicar-Test-Signature\r\nX-Fake: yes\tnow\x01\x1b", &err), ==, 0);
    g_assert_no_error(err);
    mq_queue_entry_free(&e);
    names = test_listing(s->in_path);
    g_assert_cmpstr(names, ==, "");
    g_free(names);
    names = test_listing(s->hold_path);
    g_assert_cmpstr(names, ==, ID ".reason,df" ID ",qf" ID);
    g_free(names);
    text = get(s->hold_path, "qf" ID, &len);
    g_assert_cmpmem(text, len, s->qf, s->qf_len);           /* moved as is */
    g_free(text);
    text = get(s->hold_path, "df" ID, &len);
    g_assert_cmpmem(text, len, s->df, s->df_len);
    g_free(text);
    check_reason(s, ID, "infected: Eicar-Test-Signature??X-Fake: yes?now??");

    /* the same ID again: a suffixed name, the first hold untouched */
    put(s->in_path, "qf" ID, s->qf, s->qf_len);
    put(s->in_path, "df" ID, "second\n", 7);
    e = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_no_error(err);
    g_assert_cmpint(mq_queue_hold(s->in, e, s->hold_path, "second", &err), ==, 0);
    g_assert_no_error(err);
    mq_queue_entry_free(&e);
    names = test_listing(s->hold_path);
    g_assert_cmpstr(names, ==, ID "-1.reason," ID ".reason,df" ID ",df" ID "-1,qf" ID ",qf" ID "-1");
    g_free(names);
    text = get(s->hold_path, "df" ID "-1", NULL);
    g_assert_cmpstr(text, ==, "second\n");
    g_free(text);
    text = get(s->hold_path, "df" ID, &len);
    g_assert_cmpmem(text, len, s->df, s->df_len);
    g_free(text);
    check_reason(s, ID "-1", "second");
    check_reason(s, ID, "infected: Eicar-Test-Signature??X-Fake: yes?now??");

    /* and a third */
    put(s->in_path, "qf" ID, s->qf, s->qf_len);
    put(s->in_path, "df" ID, "third\n", 6);
    e = mq_queue_claim(s->in, ID, BIG, &err);
    g_assert_cmpint(mq_queue_hold(s->in, e, s->hold_path, "third", &err), ==, 0);
    mq_queue_entry_free(&e);
    g_assert_true(exists(s->hold_path, "qf" ID "-2"));
    check_reason(s, ID "-2", "third");
}

/* Entries with a problem are what hold is for: a corrupt qf, a missing df
 * (only the qf moves), an oversize message. */
static void
test_hold_problems(struct spool *s, gconstpointer data)
{
    GError *err = NULL;
    struct mq_queue_entry *e;
    char *names;

    /* missing df */
    unlink_in(s->in_path, "df" ID);
    e = claim_problem(s->in, ID, BIG, MQ_ERROR_CORRUPT);
    g_assert_cmpint(mq_queue_hold(s->in, e, s->hold_path, mq_queue_entry_problem(e)->message, &err), ==, 0);
    g_assert_no_error(err);
    mq_queue_entry_free(&e);
    names = test_listing(s->hold_path);
    g_assert_cmpstr(names, ==, ID ".reason,qf" ID);
    g_free(names);

    /* corrupt qf, with its df */
    put(s->in_path, "qf" ID, "junk\n", 5);
    put(s->in_path, "df" ID, "body\n", 5);
    e = claim_problem(s->in, ID, BIG, MQ_ERROR_CORRUPT);
    g_assert_cmpint(mq_queue_hold(s->in, e, s->hold_path, "corrupt", &err), ==, 0);
    g_assert_no_error(err);
    mq_queue_entry_free(&e);
    g_assert_true(exists(s->hold_path, "qf" ID "-1"));
    g_assert_true(exists(s->hold_path, "df" ID "-1"));

    /* over the limit */
    put(s->in_path, "qf" ID, s->qf, s->qf_len);
    put(s->in_path, "df" ID, s->df, s->df_len);
    e = claim_problem(s->in, ID, 100, MQ_ERROR_LIMIT);
    g_assert_cmpint(mq_queue_hold(s->in, e, s->hold_path, "too big", &err), ==, 0);
    g_assert_no_error(err);
    mq_queue_entry_free(&e);
    g_assert_true(exists(s->hold_path, "qf" ID "-2"));
    g_assert_true(exists(s->hold_path, "df" ID "-2"));

    names = test_listing(s->in_path);
    g_assert_cmpstr(names, ==, "");
    g_free(names);
}

static void
test_hold_no_dir(struct spool *s, gconstpointer data)
{
    GError *err = NULL;
    struct mq_queue_entry *e = mq_queue_claim(s->in, ID, BIG, &err);
    char *missing = g_build_filename(s->root, "no-hold", NULL);

    g_assert_no_error(err);
    g_assert_cmpint(mq_queue_hold(s->in, e, missing, "x", &err), ==, -1);
    g_assert_nonnull(err);
    g_clear_error(&err);
    mq_queue_entry_free(&e);
    g_assert_true(exists(s->in_path, "qf" ID));            /* nothing lost */
    g_assert_true(exists(s->in_path, "df" ID));
    g_free(missing);
}

/* Hand-off: claim from in, write to out, remove from in. */
static void
test_handoff(struct spool *s, gconstpointer data)
{
    GError *err = NULL;
    struct mq_queue_entry *e = mq_queue_claim(s->in, ID, BIG, &err);
    struct mq_qf *qf;
    const char *df;
    size_t df_len;
    char *id = NULL, *names, *text;
    gboolean dup = TRUE;

    g_assert_no_error(err);
    qf = mq_queue_entry_qf(e);
    mq_qf_remove_headers(qf, "X-mqscan");
    mq_qf_add_header(qf, "X-mqscan", "clean");
    df = mq_queue_entry_df(e, &df_len);
    g_assert_cmpint(mq_queue_write(s->out, ID, qf, df, df_len, &id, &dup, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(dup);
    g_assert_cmpint(mq_queue_remove(s->in, e, &err), ==, 0);
    mq_queue_entry_free(&e);
    names = test_listing(s->in_path);
    g_assert_cmpstr(names, ==, "");
    g_free(names);
    text = get(s->out_path, "qf" ID, NULL);
    g_assert_nonnull(strstr(text, "\nH??X-mqscan: clean\n.\n"));
    g_assert_null(strstr(text, "forged-by-sender"));
    g_assert_null(strstr(text, "X-MQSCAN-Status"));
    g_free(text);
    g_free(id);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define ADD(path, fn) g_test_add(path, struct spool, NULL, spool_setup, fn, spool_teardown)
#define ADDP(path, fn, flags) \
    g_test_add(path, struct spool, GUINT_TO_POINTER(flags), spool_setup, fn, spool_teardown)
    ADD("/queue/list", test_list);
    g_test_add_func("/queue/open-missing", test_open_missing);
    ADD("/queue/stat", test_stat);
    ADD("/queue/claim/ok", test_claim);
    ADD("/queue/claim/limit", test_claim_limit);
    ADD("/queue/claim/twice", test_claim_twice);
    ADD("/queue/claim/locked", test_claim_locked);
    ADD("/queue/claim/vanished", test_claim_vanished);
    ADD("/queue/claim/empty", test_claim_empty);
    ADD("/queue/claim/missing-df", test_claim_missing_df);
    ADD("/queue/claim/corrupt-qf", test_claim_corrupt_qf);
    ADD("/queue/claim/hardlink", test_claim_hardlink);
    ADD("/queue/claim/symlink", test_claim_symlink);
    ADD("/queue/claim/fifo", test_claim_fifo);
    g_test_add_func("/queue/claim/panic-bad-id", test_claim_panic_bad_id);
    ADD("/queue/write/ok", test_write);
    ADD("/queue/write/dup", test_write_dup);
    ADD("/queue/write/other", test_write_other);
    ADD("/queue/write/stale", test_write_stale);
    ADD("/queue/write/unreadable-existing", test_write_unreadable_existing);
    ADD("/queue/write/no-free-id", test_write_no_free_id);
    g_test_add_func("/queue/write/panic-bad-id", test_write_panic_bad_id);
    ADD("/queue/stage/commit", test_stage_commit);
    ADDP("/queue/stage/commit-syncfs", test_stage_commit, MQ_QUEUE_SYNCFS);
    ADDP("/queue/stage/commit-synced", test_stage_commit, MQ_QUEUE_SYNCFS | MQ_QUEUE_SYNCED);
    ADD("/queue/stage/unstage-dup", test_stage_unstage_dup);
    ADD("/queue/stage/same-df", test_stage_same_df);
    ADD("/queue/stage/same-df-crash", test_stage_same_df_crash);
    g_test_add_func("/queue/stage/same-df-exdev", test_stage_same_df_exdev);
    ADD("/queue/stage/commit-failures", test_stage_commit_failures);
    ADDP("/queue/stage/commit-failures-syncfs", test_stage_commit_failures, MQ_QUEUE_SYNCFS);
    ADD("/queue/remove", test_remove);
    ADD("/queue/remove/many", test_remove_many);
    ADD("/queue/hold/ok", test_hold);
    ADD("/queue/hold/problems", test_hold_problems);
    ADD("/queue/hold/no-dir", test_hold_no_dir);
    ADD("/queue/handoff", test_handoff);
    /* Known bugs last, so that a failure does not hide the other results. */
    ADD("/queue/bug/write-dup-after-suffix", test_bug_write_dup_after_suffix);
#undef ADDP
#undef ADD
    return g_test_run();
}
