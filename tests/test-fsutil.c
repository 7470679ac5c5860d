/* test-fsutil - bounded parsing, ID checks, durable writes, checked reads,
 * moves. File tests run in a fresh temporary directory each.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"

#include "testutil.h"

/* ---- helpers --------------------------------------------------------------- */

struct fixture {
    char *dir;
    int dirfd;
};

static void
fixture_setup(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;

    f->dir = g_dir_make_tmp("test-fsutil-XXXXXX", &err);
    g_assert_no_error(err);
    f->dirfd = mq_fs_open_dir(f->dir, &err);
    g_assert_no_error(err);
    g_assert_cmpint(f->dirfd, >=, 0);
}

static void
fixture_teardown(struct fixture *f, gconstpointer data)
{
    close(f->dirfd);
    test_remove_tree(f->dir);
    g_free(f->dir);
}

static char *
path_in(const struct fixture *f, const char *name)
{
    return g_build_filename(f->dir, name, NULL);
}

static void
put_file(const struct fixture *f, const char *name, const char *text)
{
    char *p = path_in(f, name);
    GError *err = NULL;

    g_file_set_contents(p, text, -1, &err);
    g_assert_no_error(err);
    g_free(p);
}

/* Contents of dir/name, or NULL if it does not exist. */
static char *
get_file(const struct fixture *f, const char *name)
{
    char *p = path_in(f, name), *text = NULL;

    if (!g_file_get_contents(p, &text, NULL, NULL))
        text = NULL;
    g_free(p);
    return text;
}

static bool
exists(const struct fixture *f, const char *name)
{
    struct stat st;
    return fstatat(f->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static unsigned
count_entries(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    unsigned n = 0;

    g_assert_nonnull(d);
    while (g_dir_read_name(d) != NULL)
        n++;
    g_dir_close(d);
    return n;
}

static mode_t
mode_of(const struct fixture *f, const char *name)
{
    struct stat st;
    g_assert_cmpint(fstatat(f->dirfd, name, &st, AT_SYMLINK_NOFOLLOW), ==, 0);
    return st.st_mode & 07777;
}

/* ---- mq_fs_parse_uint ------------------------------------------------------ */

static void
test_parse_uint(void)
{
    static const struct {
        const char *s;
        uint64_t min, max;
        bool ok;
        uint64_t value;
    } cases[] = {
        { "", 0, UINT64_MAX, false, 0 },
        { "0", 0, UINT64_MAX, true, 0 },
        { "1", 0, UINT64_MAX, true, 1 },
        { "007", 0, UINT64_MAX, true, 7 },
        { "42", 42, 42, true, 42 },
        { "41", 42, 100, false, 0 },
        { "101", 42, 100, false, 0 },
        { "100", 42, 100, true, 100 },
        { "0", 1, 10, false, 0 },
        { "+1", 0, UINT64_MAX, false, 0 },
        { "-1", 0, UINT64_MAX, false, 0 },
        { "-0", 0, UINT64_MAX, false, 0 },
        { " 1", 0, UINT64_MAX, false, 0 },
        { "1 ", 0, UINT64_MAX, false, 0 },
        { "1\n", 0, UINT64_MAX, false, 0 },
        { "\t1", 0, UINT64_MAX, false, 0 },
        { "1a", 0, UINT64_MAX, false, 0 },
        { "a1", 0, UINT64_MAX, false, 0 },
        { "0x10", 0, UINT64_MAX, false, 0 },
        { "1e3", 0, UINT64_MAX, false, 0 },
        { "1.5", 0, UINT64_MAX, false, 0 },
        { "1,000", 0, UINT64_MAX, false, 0 },
        { "\xd9\xa1", 0, UINT64_MAX, false, 0 },            /* ARABIC-INDIC DIGIT ONE */
        { "4294967295", 0, UINT32_MAX, true, UINT32_MAX },
        { "4294967296", 0, UINT32_MAX, false, 0 },
        { "9223372036854775807", 0, INT64_MAX, true, INT64_MAX },
        { "9223372036854775808", 0, INT64_MAX, false, 0 },
        { "18446744073709551615", 0, UINT64_MAX, true, UINT64_MAX },
        { "18446744073709551616", 0, UINT64_MAX, false, 0 },
        { "18446744073709551620", 0, UINT64_MAX, false, 0 },
        { "99999999999999999999", 0, UINT64_MAX, false, 0 },
        { "184467440737095516150", 0, UINT64_MAX, false, 0 },
        { "000000000000000000000000018446744073709551615", 0, UINT64_MAX, true, UINT64_MAX },
        { "1844674407370955161", 0, UINT64_MAX, true, UINT64_C(1844674407370955161) },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        uint64_t v = 12345;
        bool ok = mq_fs_parse_uint(cases[i].s, cases[i].min, cases[i].max, &v);

        g_test_message("\"%s\" in [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]",
                       cases[i].s, cases[i].min, cases[i].max);
        g_assert_cmpint(ok, ==, cases[i].ok);
        if (ok)
            g_assert_cmpuint(v, ==, cases[i].value);
    }
    {
        uint64_t v = 0;
        g_assert_false(mq_fs_parse_uint(NULL, 0, 10, &v));
    }
}

/* ---- mq_fs_id_ok ----------------------------------------------------------- */

static void
test_id_ok(void)
{
    char max[MQ_ID_MAX + 2];
    static const struct {
        const char *id;
        bool ok;
    } cases[] = {
        { "", false },
        { "A", true },
        { "6AO3fFCt012659", true },
        { "6AO3fFCt012659A", true },
        { "abcXYZ0123456789", true },
        { ".", false },
        { "..", false },
        { "a.b", false },
        { "a/b", false },
        { "/etc", false },
        { "../x", false },
        { "a-b", false },
        { "a_b", false },
        { "a b", false },
        { " a", false },
        { "a\n", false },
        { "a\t", false },
        { "caf\xc3\xa9", false },
        { "\xff", false },
        { "a*", false },
        { "a~", false },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("\"%s\"", cases[i].id);
        g_assert_cmpint(mq_fs_id_ok(cases[i].id), ==, cases[i].ok);
    }
    g_assert_false(mq_fs_id_ok(NULL));

    memset(max, 'a', sizeof(max));
    max[MQ_ID_MAX] = '\0';
    g_assert_cmpuint(strlen(max), ==, 64);
    g_assert_true(mq_fs_id_ok(max));
    max[MQ_ID_MAX] = 'b';
    max[MQ_ID_MAX + 1] = '\0';
    g_assert_cmpuint(strlen(max), ==, 65);
    g_assert_false(mq_fs_id_ok(max));
}

/* ---- mq_fs_write_new -------------------------------------------------------- */

static void
test_write_new(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;
    char *text;
    mode_t old = umask(0);      /* the mode must not depend on the umask */

    g_assert_cmpint(mq_fs_write_new(f->dirfd, "dfA", "hello\n", 6, MQ_FS_SYNC, &err), ==, 0);
    g_assert_no_error(err);
    text = get_file(f, "dfA");
    g_assert_cmpstr(text, ==, "hello\n");
    g_free(text);
    g_assert_cmpuint(mode_of(f, "dfA"), ==, 0600);

    /* without MQ_FS_SYNC, and empty */
    g_assert_cmpint(mq_fs_write_new(f->dirfd, "empty", "", 0, 0, &err), ==, 0);
    g_assert_no_error(err);
    text = get_file(f, "empty");
    g_assert_cmpstr(text, ==, "");
    g_free(text);
    g_assert_cmpuint(mode_of(f, "empty"), ==, 0600);
    umask(old);
}

static void
test_write_new_large(struct fixture *f, gconstpointer data)
{
    size_t len = 3 * 1024 * 1024 + 7;
    char *buf = g_malloc(len), *back = NULL;
    gsize back_len = 0;
    char *p = path_in(f, "big");
    GError *err = NULL;

    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(i * 7 + i / 251);
    g_assert_cmpint(mq_fs_write_new(f->dirfd, "big", buf, len, MQ_FS_SYNC, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(g_file_get_contents(p, &back, &back_len, NULL));
    g_assert_cmpmem(back, back_len, buf, len);
    g_free(back);
    g_free(buf);
    g_free(p);
}

static void
test_write_new_exists(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;
    char *text;

    put_file(f, "qfA", "original");
    g_assert_cmpint(mq_fs_write_new(f->dirfd, "qfA", "new", 3, MQ_FS_SYNC, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_assert_nonnull(strstr(err->message, "qfA"));
    g_clear_error(&err);
    text = get_file(f, "qfA");
    g_assert_cmpstr(text, ==, "original");          /* untouched, not removed */
    g_free(text);

    /* err may be NULL */
    g_assert_cmpint(mq_fs_write_new(f->dirfd, "qfA", "new", 3, 0, NULL), ==, -1);
}

static void
test_write_new_symlink(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;
    char *text;

    /* a symlink to an existing file: the target is not written */
    put_file(f, "target", "target text");
    g_assert_cmpint(symlinkat("target", f->dirfd, "link"), ==, 0);
    g_assert_cmpint(mq_fs_write_new(f->dirfd, "link", "evil", 4, MQ_FS_SYNC, &err), ==, -1);
    g_assert_nonnull(err);
    g_clear_error(&err);
    text = get_file(f, "target");
    g_assert_cmpstr(text, ==, "target text");
    g_free(text);

    /* a dangling symlink: the target is not created */
    g_assert_cmpint(symlinkat("created-through-link", f->dirfd, "dangling"), ==, 0);
    g_assert_cmpint(mq_fs_write_new(f->dirfd, "dangling", "evil", 4, MQ_FS_SYNC, &err), ==, -1);
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_false(exists(f, "created-through-link"));
    g_assert_true(exists(f, "dangling"));           /* the link itself left alone */
}

static void
test_write_new_no_dir(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;

    g_assert_cmpint(mq_fs_write_new(f->dirfd, "missing/file", "x", 1, 0, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_clear_error(&err);
}

/* ---- mq_fs_write_atomic ------------------------------------------------------ */

static void
test_write_atomic(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;
    char *text;
    mode_t old = umask(0);

    /* new */
    g_assert_cmpint(mq_fs_write_atomic(f->dirfd, "tfA", "qfA", "one\n", 4, &err), ==, 0);
    g_assert_no_error(err);
    text = get_file(f, "qfA");
    g_assert_cmpstr(text, ==, "one\n");
    g_free(text);
    g_assert_false(exists(f, "tfA"));
    g_assert_cmpuint(mode_of(f, "qfA"), ==, 0600);

    /* replaces */
    g_assert_cmpint(mq_fs_write_atomic(f->dirfd, "tfA", "qfA", "two\n", 4, &err), ==, 0);
    g_assert_no_error(err);
    text = get_file(f, "qfA");
    g_assert_cmpstr(text, ==, "two\n");
    g_free(text);

    /* a stale temp file from a crash is replaced */
    put_file(f, "tfA", "stale temp");
    g_assert_cmpint(mq_fs_write_atomic(f->dirfd, "tfA", "qfA", "three\n", 6, &err), ==, 0);
    g_assert_no_error(err);
    text = get_file(f, "qfA");
    g_assert_cmpstr(text, ==, "three\n");
    g_free(text);
    g_assert_false(exists(f, "tfA"));

    /* a symlink under the temp name is removed, its target untouched */
    put_file(f, "victim", "victim");
    g_assert_cmpint(symlinkat("victim", f->dirfd, "tfA"), ==, 0);
    g_assert_cmpint(mq_fs_write_atomic(f->dirfd, "tfA", "qfA", "four\n", 5, &err), ==, 0);
    g_assert_no_error(err);
    text = get_file(f, "victim");
    g_assert_cmpstr(text, ==, "victim");
    g_free(text);
    text = get_file(f, "qfA");
    g_assert_cmpstr(text, ==, "four\n");
    g_free(text);

    g_assert_cmpuint(count_entries(f->dir), ==, 2);     /* qfA, victim */
    umask(old);
}

static void
test_write_atomic_fail(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;
    char *text;

    /* the destination is a non-empty directory: rename fails, nothing left */
    g_assert_cmpint(mkdirat(f->dirfd, "qfD", 0700), ==, 0);
    put_file(f, "qfD/inside", "x");
    g_assert_cmpint(mq_fs_write_atomic(f->dirfd, "tfD", "qfD", "data", 4, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_clear_error(&err);
    g_assert_false(exists(f, "tfD"));
    text = get_file(f, "qfD/inside");
    g_assert_cmpstr(text, ==, "x");
    g_free(text);
}

/* ---- mq_fs_read_fd -------------------------------------------------------- */

static void
test_read_fd(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;
    char *buf = NULL;
    size_t len = 0;
    int fd;

    put_file(f, "ten", "0123456789");
    fd = openat(f->dirfd, "ten", O_RDONLY);
    g_assert_cmpint(fd, >=, 0);

    g_assert_cmpint(mq_fs_read_fd(fd, 10, &buf, &len, &err), ==, 0);     /* at the limit */
    g_assert_no_error(err);
    g_assert_cmpuint(len, ==, 10);
    g_assert_cmpmem(buf, len, "0123456789", 10);
    g_assert_cmpint(buf[len], ==, '\0');
    g_free(buf);

    /* from offset 0 whatever the file offset */
    g_assert_cmpint(lseek(fd, 7, SEEK_SET), ==, 7);
    g_assert_cmpint(mq_fs_read_fd(fd, 100, &buf, &len, &err), ==, 0);
    g_assert_cmpstr(buf, ==, "0123456789");
    g_free(buf);

    buf = NULL;
    g_assert_cmpint(mq_fs_read_fd(fd, 9, &buf, &len, &err), ==, -1);     /* one over */
    g_assert_error(err, MQ_ERROR, MQ_ERROR_LIMIT);
    g_assert_null(buf);
    g_clear_error(&err);
    close(fd);

    /* empty */
    put_file(f, "empty", "");
    fd = openat(f->dirfd, "empty", O_RDONLY);
    g_assert_cmpint(mq_fs_read_fd(fd, 0, &buf, &len, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(len, ==, 0);
    g_assert_cmpstr(buf, ==, "");
    g_free(buf);
    close(fd);
}

static void
test_read_fd_refuses(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;
    char *buf = NULL, *p;
    size_t len = 0;
    int fd;

    /* a FIFO: refused without blocking */
    p = path_in(f, "fifo");
    g_assert_cmpint(mkfifo(p, 0600), ==, 0);
    fd = open(p, O_RDONLY | O_NONBLOCK);
    g_assert_cmpint(fd, >=, 0);
    alarm(10);
    g_assert_cmpint(mq_fs_read_fd(fd, 100, &buf, &len, &err), ==, -1);
    alarm(0);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CORRUPT);
    g_assert_null(buf);
    g_clear_error(&err);
    close(fd);
    g_free(p);

    /* a file with two links (someone could change it under another name) */
    put_file(f, "linked", "text");
    g_assert_cmpint(linkat(f->dirfd, "linked", f->dirfd, "second-link", 0), ==, 0);
    fd = openat(f->dirfd, "linked", O_RDONLY);
    g_assert_cmpint(mq_fs_read_fd(fd, 100, &buf, &len, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CORRUPT);
    g_assert_nonnull(strstr(err->message, "2 links"));
    g_clear_error(&err);
    /* one link again: fine */
    g_assert_cmpint(unlinkat(f->dirfd, "second-link", 0), ==, 0);
    g_assert_cmpint(mq_fs_read_fd(fd, 100, &buf, &len, &err), ==, 0);
    g_assert_no_error(err);
    g_free(buf);
    buf = NULL;
    /* no links at all (unlinked while open) */
    g_assert_cmpint(unlinkat(f->dirfd, "linked", 0), ==, 0);
    g_assert_cmpint(mq_fs_read_fd(fd, 100, &buf, &len, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CORRUPT);
    g_clear_error(&err);
    close(fd);

    /* a directory */
    g_assert_cmpint(mq_fs_read_fd(f->dirfd, 1 << 20, &buf, &len, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CORRUPT);
    g_clear_error(&err);

    /* a closed fd */
    g_assert_cmpint(mq_fs_read_fd(fd, 100, &buf, &len, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_clear_error(&err);
    g_assert_null(buf);
}

/* ---- mq_fs_move ------------------------------------------------------------ */

static void
test_move(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;
    bool exists_r = true;
    char *text;
    int sub;

    put_file(f, "a", "AAA");
    g_assert_cmpint(mq_fs_move(f->dirfd, "a", f->dirfd, "b", &exists_r, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(exists_r);
    g_assert_false(exists(f, "a"));
    text = get_file(f, "b");
    g_assert_cmpstr(text, ==, "AAA");
    g_free(text);

    /* never replaces */
    put_file(f, "c", "CCC");
    g_assert_cmpint(mq_fs_move(f->dirfd, "c", f->dirfd, "b", &exists_r, &err), ==, -1);
    g_assert_true(exists_r);
    g_assert_nonnull(err);
    g_clear_error(&err);
    text = get_file(f, "b");
    g_assert_cmpstr(text, ==, "AAA");
    g_free(text);
    text = get_file(f, "c");
    g_assert_cmpstr(text, ==, "CCC");
    g_free(text);

    /* a missing source is not "exists" */
    g_assert_cmpint(mq_fs_move(f->dirfd, "nope", f->dirfd, "d", &exists_r, &err), ==, -1);
    g_assert_false(exists_r);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_clear_error(&err);

    /* into another directory */
    g_assert_cmpint(mkdirat(f->dirfd, "sub", 0700), ==, 0);
    sub = openat(f->dirfd, "sub", O_RDONLY | O_DIRECTORY);
    g_assert_cmpint(sub, >=, 0);
    g_assert_cmpint(mq_fs_move(f->dirfd, "c", sub, "c2", &exists_r, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(exists_r);
    g_assert_false(exists(f, "c"));
    text = get_file(f, "sub/c2");
    g_assert_cmpstr(text, ==, "CCC");
    g_free(text);

    /* a symlink is moved as a link, not followed */
    put_file(f, "target", "T");
    g_assert_cmpint(symlinkat("../target", f->dirfd, "ln"), ==, 0);
    g_assert_cmpint(mq_fs_move(f->dirfd, "ln", sub, "ln", &exists_r, &err), ==, 0);
    g_assert_no_error(err);
    {
        struct stat st;
        g_assert_cmpint(fstatat(sub, "ln", &st, AT_SYMLINK_NOFOLLOW), ==, 0);
        g_assert_true(S_ISLNK(st.st_mode));
    }
    close(sub);
}

/* Across filesystems the file is copied durably, the source unlinked. Needs
 * a second filesystem (/dev/shm, a tmpfs on most Linux systems). */
static void
test_move_cross_fs(struct fixture *f, gconstpointer data)
{
    struct stat st_tmp, st_shm;
    GError *err = NULL;
    bool exists_r = true;
    char *other, *text;
    int ofd;

    if (stat("/dev/shm", &st_shm) < 0 || fstat(f->dirfd, &st_tmp) < 0 ||
        st_shm.st_dev == st_tmp.st_dev || access("/dev/shm", W_OK) < 0) {
        g_test_skip("no second writable filesystem at /dev/shm");
        return;
    }
    other = g_build_filename("/dev/shm", "test-fsutil-xdev-XXXXXX", NULL);
    g_assert_nonnull(g_mkdtemp(other));
    ofd = open(other, O_RDONLY | O_DIRECTORY);
    g_assert_cmpint(ofd, >=, 0);

    put_file(f, "x", "cross");
    g_assert_cmpint(mq_fs_move(f->dirfd, "x", ofd, "y", &exists_r, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(exists_r);
    g_assert_false(exists(f, "x"));
    {
        char *p = g_build_filename(other, "y", NULL);
        g_assert_true(g_file_get_contents(p, &text, NULL, NULL));
        g_assert_cmpstr(text, ==, "cross");
        g_free(text);
        g_assert_cmpint(stat(p, &st_shm), ==, 0);
        g_assert_cmpuint(st_shm.st_mode & 0777, ==, 0600);
        g_free(p);
    }

    /* never replaces across filesystems either */
    put_file(f, "x", "second");
    g_assert_cmpint(mq_fs_move(f->dirfd, "x", ofd, "y", &exists_r, &err), ==, -1);
    g_assert_true(exists_r);
    g_clear_error(&err);
    text = get_file(f, "x");
    g_assert_cmpstr(text, ==, "second");
    g_free(text);

    close(ofd);
    test_remove_tree(other);
    g_free(other);
}

/* ---- small ones ------------------------------------------------------------- */

static void
test_open_dir(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;
    char *p;

    put_file(f, "file", "x");
    p = path_in(f, "file");
    g_assert_cmpint(mq_fs_open_dir(p, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_assert_nonnull(strstr(err->message, p));
    g_clear_error(&err);
    g_free(p);

    p = path_in(f, "none");
    g_assert_cmpint(mq_fs_open_dir(p, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_clear_error(&err);
    g_free(p);

    g_assert_cmpint(mq_fs_fsync_dir(f->dirfd, &err), ==, 0);
    g_assert_no_error(err);
}

static void
test_mkdir_p(struct fixture *f, gconstpointer data)
{
    GError *err = NULL;
    char *p = path_in(f, "a/b/c");
    struct stat st;

    g_assert_cmpint(mq_fs_mkdir_p(p, 0700, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(stat(p, &st), ==, 0);
    g_assert_true(S_ISDIR(st.st_mode));
    g_assert_cmpint(mq_fs_mkdir_p(p, 0700, &err), ==, 0);      /* exists: fine */
    g_assert_no_error(err);
    g_free(p);

    put_file(f, "plain", "x");
    p = path_in(f, "plain/sub");
    g_assert_cmpint(mq_fs_mkdir_p(p, 0700, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_clear_error(&err);
    g_free(p);
}

static void
test_error_from_errno(void)
{
    static const struct {
        int errnum;
        enum mq_error_code code;
    } cases[] = {
        { ENOSPC, MQ_ERROR_TEMP }, { EDQUOT, MQ_ERROR_TEMP }, { EAGAIN, MQ_ERROR_TEMP },
        { EINTR, MQ_ERROR_TEMP }, { ENOMEM, MQ_ERROR_TEMP }, { EMFILE, MQ_ERROR_TEMP },
        { ENFILE, MQ_ERROR_TEMP }, { EIO, MQ_ERROR_IO }, { EACCES, MQ_ERROR_IO },
        { ENOENT, MQ_ERROR_IO }, { EEXIST, MQ_ERROR_IO }, { 0, MQ_ERROR_IO },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmpint(mq_error_from_errno(cases[i].errnum), ==, cases[i].code);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/fsutil/parse-uint", test_parse_uint);
    g_test_add_func("/fsutil/id-ok", test_id_ok);
    g_test_add_func("/fsutil/error-from-errno", test_error_from_errno);
#define ADD(path, fn) \
    g_test_add(path, struct fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/fsutil/write-new/ok", test_write_new);
    ADD("/fsutil/write-new/large", test_write_new_large);
    ADD("/fsutil/write-new/exists", test_write_new_exists);
    ADD("/fsutil/write-new/symlink", test_write_new_symlink);
    ADD("/fsutil/write-new/no-dir", test_write_new_no_dir);
    ADD("/fsutil/write-atomic/ok", test_write_atomic);
    ADD("/fsutil/write-atomic/fail", test_write_atomic_fail);
    ADD("/fsutil/read-fd/ok", test_read_fd);
    ADD("/fsutil/read-fd/refuses", test_read_fd_refuses);
    ADD("/fsutil/move/same-fs", test_move);
    ADD("/fsutil/move/cross-fs", test_move_cross_fs);
    ADD("/fsutil/open-dir", test_open_dir);
    ADD("/fsutil/mkdir-p", test_mkdir_p);
#undef ADD
    return g_test_run();
}
