/* test-quarantine - the quarantine store: hostile message data stays data.
 *
 * Each test gets a fresh temporary ROOT that holds only the quarantine
 * DIR = ROOT/quarantine, so "nothing was created outside DIR" is checked by
 * walking ROOT. Time is injected through the record: WHEN is
 * 2023-11-14T22:13:20Z, so every entry lands in DIR/DAY.
 *
 * Senders, recipients, subjects and findings come from the message, so the
 * tests fill them with path tricks, fake meta lines, invalid UTF-8, C0/C1
 * controls and a 200 KB name, and then check the whole tree on disk, the
 * modes, the bytes of every file and every line of meta.
 *
 * Tests whose path contains "/bug/" document a bug found while writing them;
 * they fail until the fix proposed next to them is applied.
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/quarantine.h"

#include "testutil.h"

#define QID "6AO3fFCt012659"
#define WHEN ((time_t)1700000000)       /* 2023-11-14T22:13:20Z */
#define DAY "20231114"
#define VALUE_MAX 1000                  /* longest meta value, as documented */
#define BIG_NAME (200u * 1024)
#define A10 "AAAAAAAAAA"
#define A64 A10 A10 A10 A10 A10 A10 "AAAA"
#define A65 A64 "A"

struct qdir {
    char *root;                 /* ROOT */
    char *dir;                  /* ROOT/quarantine */
    char *tmp;                  /* DIR/tmp */
    char *day;                  /* DIR/DAY */
    struct mq_quarantine *q;
};

/* ---- helpers --------------------------------------------------------------- */

static void
qdir_setup(struct qdir *qd, gconstpointer data)
{
    GError *err = NULL;

    qd->root = g_dir_make_tmp("test-quarantine-XXXXXX", &err);
    g_assert_no_error(err);
    qd->dir = g_build_filename(qd->root, "quarantine", NULL);
    qd->tmp = g_build_filename(qd->dir, "tmp", NULL);
    qd->day = g_build_filename(qd->dir, DAY, NULL);
    qd->q = mq_quarantine_open(qd->dir, &err);
    g_assert_no_error(err);
    g_assert_nonnull(qd->q);
}

static void
qdir_teardown(struct qdir *qd, gconstpointer data)
{
    mq_quarantine_free(&qd->q);
    g_assert_null(qd->q);
    test_remove_tree(qd->root);
    g_free(qd->root);
    g_free(qd->dir);
    g_free(qd->tmp);
    g_free(qd->day);
}

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
    GError *err = NULL;

    g_file_get_contents(p, &text, &len, &err);
    g_assert_no_error(err);
    *len_r = len;
    g_free(p);
    return text;
}

static gint
cmp_str_ptr(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *
join_sorted(GPtrArray *names)
{
    char *joined;

    g_ptr_array_sort(names, cmp_str_ptr);
    g_ptr_array_add(names, NULL);
    joined = g_strjoinv(",", (char **)names->pdata);
    g_ptr_array_remove_index(names, names->len - 1);
    return joined;
}

/* Sorted, comma separated names in dir. */
static char *
listing(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    char *joined;

    g_assert_nonnull(d);
    while ((n = g_dir_read_name(d)) != NULL)
        g_ptr_array_add(names, g_strdup(n));
    g_dir_close(d);
    joined = join_sorted(names);
    g_ptr_array_unref(names);
    return joined;
}

/* Every path under top, relative to it, without following symlinks:
 * directories end in "/", symlinks in "@", anything not a regular file in
 * "?". */
static void
walk(const char *top, const char *rel, GPtrArray *out)
{
    char *path = rel != NULL ? g_build_filename(top, rel, NULL) : g_strdup(top);
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;

    g_assert_nonnull(d);
    while ((name = g_dir_read_name(d)) != NULL) {
        char *crel = rel != NULL ? g_build_filename(rel, name, NULL) : g_strdup(name);
        char *cpath = g_build_filename(top, crel, NULL);
        struct stat st;

        g_assert_cmpint(lstat(cpath, &st), ==, 0);
        if (S_ISDIR(st.st_mode)) {
            g_ptr_array_add(out, g_strconcat(crel, "/", NULL));
            walk(top, crel, out);
        } else if (S_ISLNK(st.st_mode)) {
            g_ptr_array_add(out, g_strconcat(crel, "@", NULL));
        } else if (S_ISREG(st.st_mode)) {
            g_ptr_array_add(out, g_strdup(crel));
        } else {
            g_ptr_array_add(out, g_strconcat(crel, "?", NULL));
        }
        g_free(cpath);
        g_free(crel);
    }
    g_dir_close(d);
    g_free(path);
}

static char *
tree(const char *top)
{
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
    char *joined;

    walk(top, NULL, paths);
    joined = join_sorted(paths);
    g_ptr_array_unref(paths);
    return joined;
}

static void
assert_dir_empty(const char *dir)
{
    char *names = listing(dir);

    g_assert_cmpstr(names, ==, "");
    g_free(names);
}

/* dir/name (name may be NULL) is of type (S_IFDIR, S_IFREG), with exactly
 * mode, owned by us, and a regular file has one link. */
static void
assert_node(const char *dir, const char *name, mode_t type, mode_t mode)
{
    char *p = name != NULL ? g_build_filename(dir, name, NULL) : g_strdup(dir);
    struct stat st;

    g_assert_cmpint(lstat(p, &st), ==, 0);
    g_assert_cmpuint(st.st_mode & S_IFMT, ==, type);
    g_assert_cmpuint(st.st_mode & 07777, ==, mode);
    g_assert_cmpuint(st.st_uid, ==, geteuid());
    if (type == S_IFREG)
        g_assert_cmpuint(st.st_nlink, ==, 1);
    g_free(p);
}

/* ---- meta ------------------------------------------------------------------- */

static const char *const meta_keys[] = {
    "id", "queue-id", "time", "reason", "action", "direction", "sender",
    "recipient", "subject", "finding", "part",
};

struct meta {
    GPtrArray *keys;            /* owned strings, one per line */
    GPtrArray *values;
};

static void
meta_free(struct meta *m)
{
    g_ptr_array_unref(m->keys);
    g_ptr_array_unref(m->values);
    g_free(m);
}

static void
meta_line_fail(guint lineno, const char *line, const char *why)
{
    char *shown = mq_log_sanitize(line, 200);

    g_error("meta line %u %s: \"%s\"", lineno, why, shown);
}

/* Parses a meta file, checking the invariants every one must keep whatever
 * the message held: no NUL; "mqscan-quarantine 1" first, "end" last, a
 * final newline; every other line "key: value" ([a-z-]+, then ": ") with a
 * known key and a value of at most VALUE_MAX bytes of valid UTF-8 without
 * a control character (C0, DEL, C1). */
static struct meta *
meta_parse(const char *text, size_t len)
{
    struct meta *m = g_new0(struct meta, 1);
    char **lines;
    guint n;

    m->keys = g_ptr_array_new_with_free_func(g_free);
    m->values = g_ptr_array_new_with_free_func(g_free);
    g_assert_null(memchr(text, '\0', len));
    g_assert_cmpuint(len, >, 0);
    g_assert_cmpint(text[len - 1], ==, '\n');
    lines = g_strsplit(text, "\n", -1);
    n = g_strv_length(lines);
    g_assert_cmpuint(n, >=, 3);
    g_assert_cmpstr(lines[0], ==, "mqscan-quarantine 1");
    g_assert_cmpstr(lines[n - 2], ==, "end");
    g_assert_cmpstr(lines[n - 1], ==, "");
    for (guint i = 1; i < n - 2; i++) {
        const char *line = lines[i], *value, *p;
        size_t klen = strspn(line, "abcdefghijklmnopqrstuvwxyz-");
        char *key;
        bool known = false;

        if (klen == 0 || strncmp(line + klen, ": ", 2) != 0)
            meta_line_fail(i, line, "is not \"key: value\"");
        key = g_strndup(line, klen);
        for (size_t k = 0; k < G_N_ELEMENTS(meta_keys); k++)
            known = known || strcmp(key, meta_keys[k]) == 0;
        if (!known)
            meta_line_fail(i, line, "has an unknown key");
        value = line + klen + 2;
        if (strlen(value) > VALUE_MAX)
            meta_line_fail(i, line, "has a value over 1000 bytes");
        if (!g_utf8_validate(value, -1, NULL))
            meta_line_fail(i, line, "is not UTF-8");
        for (p = value; *p != '\0'; p = g_utf8_next_char(p)) {
            if (g_unichar_iscntrl(g_utf8_get_char(p)))
                meta_line_fail(i, line, "holds a control character");
        }
        g_ptr_array_add(m->keys, key);
        g_ptr_array_add(m->values, g_strdup(value));
    }
    g_strfreev(lines);
    return m;
}

/* The values of key, in file order (borrowed). Caller unrefs the array. */
static GPtrArray *
meta_all(const struct meta *m, const char *key)
{
    GPtrArray *r = g_ptr_array_new();

    for (guint i = 0; i < m->keys->len; i++) {
        if (strcmp(g_ptr_array_index(m->keys, i), key) == 0)
            g_ptr_array_add(r, g_ptr_array_index(m->values, i));
    }
    return r;
}

/* The one value of key. */
static const char *
meta_one(const struct meta *m, const char *key)
{
    GPtrArray *all = meta_all(m, key);
    const char *v;

    g_assert_cmpuint(all->len, ==, 1);
    v = g_ptr_array_index(all, 0);
    g_ptr_array_unref(all);
    return v;
}

/* ---- entries ---------------------------------------------------------------- */

struct expect {
    const char *qid;
    const char *qf, *df;
    size_t qf_len, df_len;
    const struct mq_quarantine_part *parts;
    size_t n_parts;
};

/* Checks one stored entry completely and returns its parsed meta (caller
 * frees with meta_free()): the ID's form, DIR/DAY/ENTRY with exactly qf, df,
 * meta and part-N, all 0600 regular files with one link, the directories
 * 0700, byte-identical contents, and the id, queue-id, time and part lines. */
static struct meta *
check_entry(const struct qdir *qd, const char *id, const struct expect *want)
{
    char *prefix = g_strdup_printf("%s-%s-", DAY, want->qid);
    const char *random = id + strlen(prefix);
    char *entry, *names, *want_names, *text;
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free), *lines;
    struct meta *m;
    size_t len;

    g_assert_true(mq_quarantine_id_ok(id));
    g_assert_true(g_str_has_prefix(id, prefix));
    g_assert_cmpuint(strlen(random), ==, 6);
    g_assert_cmpuint(strspn(random, "abcdefghijklmnopqrstuvwxyz0123456789"), ==, 6);
    entry = g_build_filename(qd->day, id + strlen(DAY "-"), NULL);

    assert_node(qd->dir, NULL, S_IFDIR, 0700);
    assert_node(qd->tmp, NULL, S_IFDIR, 0700);
    assert_node(qd->day, NULL, S_IFDIR, 0700);
    assert_node(entry, NULL, S_IFDIR, 0700);

    g_ptr_array_add(files, g_strdup("qf"));
    g_ptr_array_add(files, g_strdup("df"));
    g_ptr_array_add(files, g_strdup("meta"));
    for (size_t i = 0; i < want->n_parts; i++)
        g_ptr_array_add(files, g_strdup_printf("part-%u", want->parts[i].number));
    want_names = join_sorted(files);
    names = listing(entry);
    g_assert_cmpstr(names, ==, want_names);
    for (guint i = 0; i < files->len; i++)
        assert_node(entry, g_ptr_array_index(files, i), S_IFREG, 0600);

    text = get(entry, "qf", &len);
    g_assert_cmpmem(text, len, want->qf, want->qf_len);
    g_free(text);
    text = get(entry, "df", &len);
    g_assert_cmpmem(text, len, want->df, want->df_len);
    g_free(text);
    for (size_t i = 0; i < want->n_parts; i++) {
        char *name = g_strdup_printf("part-%u", want->parts[i].number);
        text = get(entry, name, &len);
        g_assert_cmpmem(text, len, want->parts[i].data, want->parts[i].len);
        g_free(text);
        g_free(name);
    }

    text = get(entry, "meta", &len);
    m = meta_parse(text, len);
    g_free(text);
    g_assert_cmpstr(meta_one(m, "id"), ==, id);
    g_assert_cmpstr(meta_one(m, "queue-id"), ==, want->qid);
    g_assert_cmpstr(meta_one(m, "time"), ==, "1700000000");
    lines = meta_all(m, "part");
    g_assert_cmpuint(lines->len, ==, want->n_parts);
    for (size_t i = 0; i < want->n_parts; i++) {
        char *line = g_strdup_printf("part-%u %zu", want->parts[i].number, want->parts[i].len);
        g_assert_cmpstr(g_ptr_array_index(lines, i), ==, line);
        g_free(line);
    }
    g_ptr_array_unref(lines);

    g_ptr_array_unref(files);
    g_free(names);
    g_free(want_names);
    g_free(entry);
    g_free(prefix);
    return m;
}

static const char *const plain_rcpts[] = { "bob@example.org", NULL };
static const char *const plain_findings[] = { "part 2 (eicar.com): Eicar-Test-Signature", NULL };

/* An ordinary record for queue ID qid. */
static void
record_init(struct mq_quarantine_record *rec, const char *qid,
            const struct mq_quarantine_part *parts, size_t n_parts)
{
    memset(rec, 0, sizeof(*rec));
    rec->queue_id = qid;
    rec->reason = "infected";
    rec->action = "replace";
    rec->direction = "inbound";
    rec->parts = parts;
    rec->n_parts = n_parts;
    rec->sender = "alice@example.com";
    rec->recipients = plain_rcpts;
    rec->subject = "test";
    rec->findings = plain_findings;
    rec->when = WHEN;
}

/* Stores and expects success. Caller frees the ID. */
static char *
store_ok(struct mq_quarantine *q, const struct mq_quarantine_record *rec,
         const char *qf, const char *df)
{
    GError *err = NULL;
    char *id = mq_quarantine_store(q, rec, qf, strlen(qf), df, strlen(df), &err);

    g_assert_no_error(err);
    g_assert_nonnull(id);
    return id;
}

/* ---- mq_quarantine_id_ok ----------------------------------------------------- */

static const struct {
    const char *id;
    bool ok;
} id_cases[] = {
    { DAY "-" QID "-abc123", true },
    { DAY "-A-000000", true },
    { DAY "-" A64 "-abc123", true },            /* the longest there is */
    { DAY "-" A65 "-abc123", false },           /* too long */
    { NULL, false },
    { "", false },
    { "-", false },
    { "--", false },
    { ".", false },
    { "..", false },
    { "../..", false },
    { DAY "-..-abc123", false },
    { DAY "-" QID "-abc123/", false },
    { DAY "-" QID "/..-abc123", false },
    { "../" DAY "-" QID "-abc123", false },
    { "/" DAY "-" QID "-abc123", false },
    { DAY "-" QID "-../abc", false },           /* six characters, not [A-Za-z0-9] */
    { DAY "-" QID, false },                     /* no random part */
    { DAY, false },
    { "2023111-" QID "-abc123", false },        /* 7-digit date */
    { "202311140-" QID "-abc123", false },      /* 9-digit date */
    { "2023111a-" QID "-abc123", false },
    { DAY "-" QID "-abc12", false },            /* random part too short */
    { DAY "-" QID "-abc1234", false },          /* ... too long */
    { DAY "-" QID "-abc123-x", false },         /* extra dash */
    { DAY "-" QID "-abc123-", false },
    { "-" DAY "-" QID "-abc123", false },
    { DAY "--" QID "-abc123", false },
    { DAY "-" QID "--abc123", false },
    { DAY "-" QID "-abc12\n", false },
    { DAY "-" QID "-abc 12", false },
    { DAY "-" QID "-abc.12", false },
    { DAY "-\xc3\xa9t\xc3\xa9-abc123", false },
    { " " DAY "-" QID "-abc123", false },
};

static void
test_id_ok(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(id_cases); i++) {
        if (mq_quarantine_id_ok(id_cases[i].id) != id_cases[i].ok) {
            char *shown = mq_log_sanitize(id_cases[i].id, 200);
            g_error("id_cases[%zu] \"%s\": want %s", i, shown, id_cases[i].ok ? "ok" : "refused");
        }
    }
}

/* ---- open ------------------------------------------------------------------- */

static void
test_open(struct qdir *qd, gconstpointer data)
{
    char *nested = g_build_filename(qd->root, "a", "b", "quarantine", NULL);
    char *nested_tmp = g_build_filename(nested, "tmp", NULL);
    char *file = g_build_filename(qd->root, "file", NULL);
    char *tmpfile_dir = g_build_filename(qd->root, "tmpfile", NULL);
    char *tmplink_dir = g_build_filename(qd->root, "tmplink", NULL);
    char *elsewhere = g_build_filename(qd->root, "elsewhere", NULL);
    char *link = g_build_filename(tmplink_dir, "tmp", NULL);
    GError *err = NULL;
    struct mq_quarantine *q;

    /* missing parents are made; DIR and DIR/tmp are 0700 */
    q = mq_quarantine_open(nested, &err);
    g_assert_no_error(err);
    g_assert_nonnull(q);
    mq_quarantine_free(&q);
    g_assert_null(q);
    mq_quarantine_free(&q);                     /* NULL allowed */
    assert_node(nested, NULL, S_IFDIR, 0700);
    assert_node(nested, "tmp", S_IFDIR, 0700);
    assert_dir_empty(nested_tmp);

    /* DIR is a file */
    put(qd->root, "file", "x", 1);
    g_assert_null(mq_quarantine_open(file, &err));
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_clear_error(&err);

    /* DIR/tmp is a file */
    g_assert_cmpint(g_mkdir(tmpfile_dir, 0700), ==, 0);
    put(tmpfile_dir, "tmp", "x", 1);
    g_assert_null(mq_quarantine_open(tmpfile_dir, &err));
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_clear_error(&err);

    /* DIR/tmp is a symlink to a directory elsewhere: not followed */
    g_assert_cmpint(g_mkdir(tmplink_dir, 0700), ==, 0);
    g_assert_cmpint(g_mkdir(elsewhere, 0700), ==, 0);
    g_assert_cmpint(symlink(elsewhere, link), ==, 0);
    g_assert_null(mq_quarantine_open(tmplink_dir, &err));
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_clear_error(&err);
    assert_dir_empty(elsewhere);

    g_free(nested);
    g_free(nested_tmp);
    g_free(file);
    g_free(tmpfile_dir);
    g_free(tmplink_dir);
    g_free(elsewhere);
    g_free(link);
}

/* ---- hostile data ----------------------------------------------------------- */

/* NUL bytes cannot be in a C string: the MIME decoder cuts a name at its
 * first NUL before it gets here, so a record only ever holds what came
 * before it. What would have followed a NUL is tested on its own, as if an
 * attacker had sent it as the whole name. */
static const char nul_name[] = "invoice.pdf\0../../etc/passwd\r\nend";

static const struct {
    const char *in;
    const char *want;           /* the meta value; NULL: as mq_log_sanitize() has it */
} hostile[] = {
    { "../../etc/passwd", "../../etc/passwd" },
    { "..\\\\x", "..\\\\x" },
    { "..\\x", "..\\x" },
    { "/etc/shadow", "/etc/shadow" },
    { "x\nreason: clean\nend\n", "x?reason: clean?end?" },
    { "\nreason: clean\nend\n", "?reason: clean?end?" },
    { "x\r\nreason: clean\r\nend\r\n", "x??reason: clean??end??" },
    { "\nfinding: part 1 (a.txt): clean", "?finding: part 1 (a.txt): clean" },
    { "\nmqscan-quarantine 1\nend", "?mqscan-quarantine 1?end" },
    { "end", "end" },
    { "\xff\xfe../x", "??../x" },                           /* invalid UTF-8 */
    { "\xc0\xae\xc0\xae/x", "????" "/x" },                  /* overlong "." */
    { "\xed\xa0\x80", "???" },                              /* surrogate */
    { "ab\xe2\x80", "ab??" },                               /* cut sequence */
    { "\x85" "reason: clean", "?reason: clean" },           /* C1 NEL as a raw byte */
    { "\xc2\x85" "reason: clean", "?reason: clean" },       /* U+0085 NEL */
    { "\xc2\x9b" "2J\x1b[2J", "?2J?[2J" },                  /* U+009B CSI, ESC */
    { "tab\there\x7f\x01\x0b\x0c", "tab?here????" },
    { "\xe2\x80\xae" "fdp.exe", NULL },                     /* U+202E RIGHT-TO-LEFT OVERRIDE */
    { "a\xe2\x80\xa8" "reason: clean", NULL },              /* U+2028 LINE SEPARATOR */
    { "", "" },
    { nul_name, "invoice.pdf" },
    { nul_name + sizeof("invoice.pdf"), "../../etc/passwd??end" },
};

/* 200 KB of "../", with a fake meta line every 50 steps. */
static char *
big_name(void)
{
    GString *s = g_string_sized_new(BIG_NAME + 64);

    for (unsigned i = 0; s->len < BIG_NAME; i++)
        g_string_append(s, i % 50 == 49 ? "\nfinding: clean\r\n" : "../");
    g_string_append(s, "etc/passwd");
    return g_string_free(s, FALSE);
}

static char *
hostile_want(size_t i)
{
    if (hostile[i].want != NULL)
        return g_strdup(hostile[i].want);
    return mq_log_sanitize(hostile[i].in, VALUE_MAX);
}

struct file_id {
    bool exists;
    struct stat st;
};

static void
file_id_get(const char *path, struct file_id *f)
{
    f->exists = lstat(path, &f->st) == 0;
}

static void
file_id_assert_same(const char *path, const struct file_id *before)
{
    struct file_id now;

    file_id_get(path, &now);
    g_assert_cmpint(now.exists, ==, before->exists);
    if (!now.exists)
        return;
    g_assert_cmpuint(now.st.st_ino, ==, before->st.st_ino);
    g_assert_cmpint(now.st.st_size, ==, before->st.st_size);
    g_assert_cmpint(now.st.st_mtim.tv_sec, ==, before->st.st_mtim.tv_sec);
    g_assert_cmpint(now.st.st_mtim.tv_nsec, ==, before->st.st_mtim.tv_nsec);
    g_assert_cmpint(now.st.st_ctim.tv_sec, ==, before->st.st_ctim.tv_sec);
    g_assert_cmpint(now.st.st_ctim.tv_nsec, ==, before->st.st_ctim.tv_nsec);
}

static void
test_store_hostile(struct qdir *qd, gconstpointer data)
{
    static const char *const etc_files[] = { "/etc/passwd", "/etc/shadow" };
    static const char part2[] = "\0\nend\n\0../../etc/passwd\r\n";
    static const char *const forbidden[] = { "passwd", "shadow", "x", "etc" };
    const size_t n = G_N_ELEMENTS(hostile);
    const char **rcpts = g_new0(const char *, n + 2);
    const char **findings = g_new0(const char *, n + 2);
    char *big = big_name(), *big_want = mq_log_sanitize(big, VALUE_MAX);
    unsigned char part1[256];
    GByteArray *part3 = g_byte_array_new(), *qf = g_byte_array_new(), *df = g_byte_array_new();
    GRand *rand = g_rand_new_with_seed(7);
    struct mq_quarantine_part parts[3];
    struct mq_quarantine_record rec;
    struct expect want;
    struct file_id etc_before[G_N_ELEMENTS(etc_files)];
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free), *values;
    char *cwd = g_get_current_dir(), *id, *fixture, *want_tree, *got_tree, *s, *entry;
    GError *err = NULL;
    struct meta *m;
    size_t len;

    for (size_t i = 0; i < n; i++)
        rcpts[i] = findings[i] = hostile[i].in;
    rcpts[n] = findings[n] = big;

    /* parts: binary, given out of order; files are named by number */
    for (size_t i = 0; i < sizeof(part1); i++)
        part1[i] = (unsigned char)i;
    for (size_t i = 0; i < 64 * 1024; i++) {
        guint8 b = (guint8)g_rand_int(rand);
        g_byte_array_append(part3, &b, 1);
    }
    parts[0] = (struct mq_quarantine_part){ 3, part3->data, part3->len };
    parts[1] = (struct mq_quarantine_part){ 1, part1, sizeof(part1) };
    parts[2] = (struct mq_quarantine_part){ 2, part2, sizeof(part2) - 1 };

    /* qf and df: a real sendmail pair, with binary tails */
    fixture = test_load("qf/multi-rcpt.qf", &len);
    g_byte_array_append(qf, (const guint8 *)fixture, (guint)len);
    g_byte_array_append(qf, (const guint8 *)"\0\xff\n", 3);
    g_free(fixture);
    fixture = test_load("qf/multi-rcpt.df", &len);
    g_byte_array_append(df, (const guint8 *)fixture, (guint)len);
    g_byte_array_append(df, (const guint8 *)"\0\x85\r\n.\r\n", 7);
    g_free(fixture);

    memset(&rec, 0, sizeof(rec));
    rec.queue_id = QID;
    rec.reason = "infected\nreason: clean";
    rec.action = "replace";
    rec.direction = "inbound";
    rec.parts = parts;
    rec.n_parts = G_N_ELEMENTS(parts);
    rec.sender = "<../../etc/passwd>\r\nreason: clean\r\nend\r\n";
    rec.recipients = rcpts;
    rec.subject = "Invoice \xe2\x80\xae" "fdp.exe\r\nsubject: hello\nend";
    rec.findings = findings;
    rec.when = WHEN;

    for (size_t i = 0; i < G_N_ELEMENTS(etc_files); i++)
        file_id_get(etc_files[i], &etc_before[i]);
    /* relative names, were any used as paths, would land under ROOT */
    g_assert_cmpint(g_chdir(qd->root), ==, 0);
    id = mq_quarantine_store(qd->q, &rec, (const char *)qf->data, qf->len,
                             (const char *)df->data, df->len, &err);
    g_assert_cmpint(g_chdir(cwd), ==, 0);
    g_assert_no_error(err);
    g_assert_nonnull(id);

    want = (struct expect){ QID, (const char *)qf->data, (const char *)df->data, qf->len, df->len,
                            parts, G_N_ELEMENTS(parts) };
    m = check_entry(qd, id, &want);

    /* every value is the sanitized input, one line each */
    g_assert_cmpstr(meta_one(m, "reason"), ==, "infected?reason: clean");
    g_assert_cmpstr(meta_one(m, "action"), ==, "replace");
    g_assert_cmpstr(meta_one(m, "direction"), ==, "inbound");
    g_assert_cmpstr(meta_one(m, "sender"), ==, "<../../etc/passwd>??reason: clean??end??");
    s = mq_log_sanitize(rec.subject, VALUE_MAX);
    g_assert_cmpstr(meta_one(m, "subject"), ==, s);
    g_assert_true(g_str_has_suffix(s, "fdp.exe??subject: hello?end"));
    g_free(s);
    for (int pass = 0; pass < 2; pass++) {
        values = meta_all(m, pass == 0 ? "recipient" : "finding");
        g_assert_cmpuint(values->len, ==, n + 1);
        for (size_t i = 0; i < n; i++) {
            char *w = hostile_want(i);
            g_assert_cmpstr(g_ptr_array_index(values, i), ==, w);
            g_free(w);
        }
        s = g_ptr_array_index(values, n);
        g_assert_cmpstr(s, ==, big_want);
        g_assert_cmpuint(strlen(s), <=, VALUE_MAX);
        g_assert_cmpuint(strlen(s), >, VALUE_MAX - 10);
        g_assert_true(g_str_has_prefix(s, "../../"));
        g_assert_true(g_str_has_suffix(s, "..."));
        g_ptr_array_unref(values);
    }
    meta_free(m);

    /* nothing anywhere but the one entry: ROOT holds DIR, DIR holds tmp/
     * (empty) and DAY/ with the entry alone */
    entry = g_strdup_printf("quarantine/" DAY "/%s/", id + strlen(DAY "-"));
    g_ptr_array_add(paths, g_strdup("quarantine/"));
    g_ptr_array_add(paths, g_strdup("quarantine/tmp/"));
    g_ptr_array_add(paths, g_strdup("quarantine/" DAY "/"));
    g_ptr_array_add(paths, g_strdup(entry));
    for (size_t i = 0; i < 6; i++) {
        static const char *const names[] = { "qf", "df", "meta", "part-1", "part-2", "part-3" };
        g_ptr_array_add(paths, g_strconcat(entry, names[i], NULL));
    }
    want_tree = join_sorted(paths);
    got_tree = tree(qd->root);
    g_assert_cmpstr(got_tree, ==, want_tree);
    g_ptr_array_set_size(paths, 0);
    walk(qd->root, NULL, paths);
    for (guint i = 0; i < paths->len; i++) {
        char *base = g_path_get_basename(g_ptr_array_index(paths, i));
        for (size_t k = 0; k < G_N_ELEMENTS(forbidden); k++)
            g_assert_cmpstr(base, !=, forbidden[k]);
        g_free(base);
    }
    assert_dir_empty(qd->tmp);
    for (size_t i = 0; i < G_N_ELEMENTS(etc_files); i++)
        file_id_assert_same(etc_files[i], &etc_before[i]);

    g_free(entry);
    g_free(want_tree);
    g_free(got_tree);
    g_ptr_array_unref(paths);
    g_free(id);
    g_free(cwd);
    g_rand_free(rand);
    g_byte_array_unref(part3);
    g_byte_array_unref(qf);
    g_byte_array_unref(df);
    g_free(big);
    g_free(big_want);
    g_free(rcpts);
    g_free(findings);
}

/* No subject, recipients, findings or parts, empty qf and df: the meta is
 * still complete, with an empty subject line. */
static void
test_store_minimal(struct qdir *qd, gconstpointer data)
{
    struct mq_quarantine_record rec;
    struct expect want = { QID, "", "", 0, 0, NULL, 0 };
    struct meta *m;
    GPtrArray *v;
    char *id;

    record_init(&rec, QID, NULL, 0);
    rec.recipients = NULL;
    rec.findings = NULL;
    rec.subject = NULL;
    id = store_ok(qd->q, &rec, "", "");
    m = check_entry(qd, id, &want);
    g_assert_cmpstr(meta_one(m, "subject"), ==, "");
    g_assert_cmpstr(meta_one(m, "sender"), ==, "alice@example.com");
    v = meta_all(m, "recipient");
    g_assert_cmpuint(v->len, ==, 0);
    g_ptr_array_unref(v);
    v = meta_all(m, "finding");
    g_assert_cmpuint(v->len, ==, 0);
    g_ptr_array_unref(v);
    meta_free(m);
    assert_dir_empty(qd->tmp);
    g_free(id);
}

/* ---- several stores ---------------------------------------------------------- */

static void
test_store_same_queue_id(struct qdir *qd, gconstpointer data)
{
    static const struct mq_quarantine_part part = { 1, "virus", 5 };
    struct mq_quarantine_record rec;
    struct expect want1 = { QID, "qf\n", "first\n", 3, 6, &part, 1 };
    struct expect want2 = { QID, "qf\n", "second\n", 3, 7, &part, 1 };
    char *id1, *id2, *names, *expect_names;

    record_init(&rec, QID, &part, 1);
    id1 = store_ok(qd->q, &rec, "qf\n", "first\n");
    id2 = store_ok(qd->q, &rec, "qf\n", "second\n");
    g_assert_cmpstr(id1, !=, id2);
    meta_free(check_entry(qd, id1, &want1));
    meta_free(check_entry(qd, id2, &want2));
    names = listing(qd->day);
    expect_names = strcmp(id1, id2) < 0
        ? g_strdup_printf("%s,%s", id1 + 9, id2 + 9) : g_strdup_printf("%s,%s", id2 + 9, id1 + 9);
    g_assert_cmpstr(names, ==, expect_names);
    assert_dir_empty(qd->tmp);
    g_free(names);
    g_free(expect_names);
    g_free(id1);
    g_free(id2);
}

/* Two stores that draw the same random letters (the global GRand reseeded):
 * the second must not touch the first, and either gets another name or
 * fails cleanly. Today it fails (renameat: the entry exists); with the fix
 * proposed at test_bug_collision_removes_other_tmp() it gets another name. */
static void
test_store_random_collision(struct qdir *qd, gconstpointer data)
{
    struct mq_quarantine_record rec;
    struct expect want1 = { QID, "qf\n", "first\n", 3, 6, NULL, 0 };
    struct expect want2 = { QID, "qf\n", "second\n", 3, 7, NULL, 0 };
    GError *err = NULL;
    char *id1, *id2, *names;

    record_init(&rec, QID, NULL, 0);
    g_random_set_seed(4242);
    id1 = store_ok(qd->q, &rec, "qf\n", "first\n");
    g_random_set_seed(4242);
    id2 = mq_quarantine_store(qd->q, &rec, "qf\n", 3, "second\n", 7, &err);
    meta_free(check_entry(qd, id1, &want1));
    if (id2 == NULL) {
        g_assert_nonnull(err);
        g_assert_true(err->domain == MQ_ERROR);
        g_test_message("second store: %s", err->message);
        g_clear_error(&err);
        names = listing(qd->day);
        g_assert_cmpstr(names, ==, id1 + 9);
        g_free(names);
    } else {
        g_assert_no_error(err);
        g_assert_cmpstr(id1, !=, id2);
        meta_free(check_entry(qd, id2, &want2));
    }
    assert_dir_empty(qd->tmp);
    g_free(id1);
    g_free(id2);
}

/* ---- failures ------------------------------------------------------------- */

enum blocker { BLOCK_FILE, BLOCK_SYMLINK };

/* DIR/DAY is taken by something that is not our directory: the store fails
 * with an error, leaves no half entry in DIR/tmp, and puts nothing where the
 * blocker points. */
static void
test_store_day_blocked(struct qdir *qd, gconstpointer data)
{
    enum blocker kind = (enum blocker)GPOINTER_TO_INT(data);
    static const struct mq_quarantine_part part = { 1, "virus", 5 };
    char *elsewhere = g_build_filename(qd->root, "elsewhere", NULL);
    struct mq_quarantine_record rec;
    GError *err = NULL;
    char *id, *t, *text;
    const char *want_tree;
    size_t len;

    if (kind == BLOCK_FILE) {
        put(qd->dir, DAY, "not a directory\n", 16);
        want_tree = "quarantine/,quarantine/" DAY ",quarantine/tmp/";
    } else {
        g_assert_cmpint(g_mkdir(elsewhere, 0700), ==, 0);
        g_assert_cmpint(symlink(elsewhere, qd->day), ==, 0);
        want_tree = "elsewhere/,quarantine/,quarantine/" DAY "@,quarantine/tmp/";
    }
    record_init(&rec, QID, &part, 1);
    id = mq_quarantine_store(qd->q, &rec, "qf\n", 3, "df\n", 3, &err);
    g_assert_null(id);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_IO);
    g_test_message("%s", err->message);
    g_clear_error(&err);
    assert_dir_empty(qd->tmp);
    t = tree(qd->root);
    g_assert_cmpstr(t, ==, want_tree);
    g_free(t);
    if (kind == BLOCK_FILE) {
        text = get(qd->dir, DAY, &len);
        g_assert_cmpmem(text, len, "not a directory\n", 16);
        g_free(text);
    }
    g_free(elsewhere);
}

/* Two parts with the same number cannot both be stored: a clean failure. */
static void
test_store_duplicate_part(struct qdir *qd, gconstpointer data)
{
    static const struct mq_quarantine_part parts[] = { { 1, "a", 1 }, { 1, "b", 1 } };
    struct mq_quarantine_record rec;
    GError *err = NULL;
    struct stat st;

    record_init(&rec, QID, parts, G_N_ELEMENTS(parts));
    g_assert_null(mq_quarantine_store(qd->q, &rec, "qf\n", 3, "df\n", 3, &err));
    g_assert_nonnull(err);
    g_assert_true(err->domain == MQ_ERROR);
    g_clear_error(&err);
    assert_dir_empty(qd->tmp);
    if (lstat(qd->day, &st) == 0)               /* no entry, at most an empty day */
        assert_dir_empty(qd->day);
}

/* Queue IDs are checked by the caller (mq_fs_id_ok); anything else is a
 * programmer error and panics before anything is created. */
static const char *const bad_qids[] = {
    NULL, "", "../../etc/passwd", "..", "/etc/shadow", QID "/..", "6AO3-fFCt",
    "a b", "x\n", "\xc3\xa9t\xc3\xa9", A65,
};

static void
test_store_panic_bad_id(gconstpointer data)
{
    size_t i = (size_t)GPOINTER_TO_SIZE(data);
    struct mq_quarantine_record rec;
    GError *err = NULL;
    char *root, *dir, *t;
    struct mq_quarantine *q;

    if (g_test_subprocess()) {
        dir = g_build_filename(g_getenv("MQ_TEST_QUARANTINE"), "quarantine", NULL);
        q = mq_quarantine_open(dir, &err);
        g_assert_no_error(err);
        record_init(&rec, bad_qids[i], NULL, 0);
        g_free(mq_quarantine_store(q, &rec, "qf\n", 3, "df\n", 3, &err));
        g_clear_error(&err);
        mq_quarantine_free(&q);
        g_free(dir);
        return;
    }
    root = g_dir_make_tmp("test-quarantine-XXXXXX", &err);
    g_assert_no_error(err);
    g_setenv("MQ_TEST_QUARANTINE", root, TRUE);
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_unsetenv("MQ_TEST_QUARANTINE");
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*panic*invalid queue id*");
    t = tree(root);
    g_assert_cmpstr(t, ==, "quarantine/,quarantine/tmp/");
    g_free(t);
    test_remove_tree(root);
    g_free(root);
}

/* ---- threads --------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 50

struct worker {
    struct mq_quarantine *q;
    int n;
    char *qids[PER_THREAD];
    char *dfs[PER_THREAD];
    char *ids[PER_THREAD];      /* NULL where a store failed */
};

static const struct mq_quarantine_part worker_part = { 2, "\0virus\0", 7 };

/* Half the stores share one queue ID, so names differ only by the random
 * letters; the other half have their own. Every df is unique. */
static gpointer
worker_run(gpointer data)
{
    struct worker *w = data;

    for (int i = 0; i < PER_THREAD; i++) {
        struct mq_quarantine_record rec;
        GError *err = NULL;

        w->qids[i] = i % 2 == 0 ? g_strdup(QID) : g_strdup_printf("T%dN%02d", w->n, i);
        w->dfs[i] = g_strdup_printf("df of worker %d, store %d\n", w->n, i);
        record_init(&rec, w->qids[i], &worker_part, 1);
        w->ids[i] = mq_quarantine_store(w->q, &rec, "qf\n", 3, w->dfs[i], strlen(w->dfs[i]),
                                        &err);
        if (err != NULL)
            g_printerr("worker %d store %d: %s\n", w->n, i, err->message);
        g_clear_error(&err);
    }
    return NULL;
}

static void
test_store_threads(struct qdir *qd, gconstpointer data)
{
    struct worker workers[THREADS];
    GThread *threads[THREADS];
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    char *names;
    char **entries;

    memset(workers, 0, sizeof(workers));
    for (int t = 0; t < THREADS; t++) {
        workers[t].q = qd->q;
        workers[t].n = t;
        threads[t] = g_thread_new("store", worker_run, &workers[t]);
    }
    for (int t = 0; t < THREADS; t++)
        g_thread_join(threads[t]);

    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            struct worker *w = &workers[t];
            struct expect want = { w->qids[i], "qf\n", w->dfs[i], 3, strlen(w->dfs[i]),
                                   &worker_part, 1 };
            g_assert_nonnull(w->ids[i]);
            g_assert_true(g_hash_table_add(seen, w->ids[i]));   /* distinct */
            meta_free(check_entry(qd, w->ids[i], &want));
        }
    }
    g_assert_cmpuint(g_hash_table_size(seen), ==, THREADS * PER_THREAD);
    names = listing(qd->day);
    entries = g_strsplit(names, ",", -1);
    g_assert_cmpuint(g_strv_length(entries), ==, THREADS * PER_THREAD);
    for (char **e = entries; *e != NULL; e++) {
        char *id = g_strconcat(DAY "-", *e, NULL);
        g_assert_true(g_hash_table_contains(seen, id));
        g_free(id);
    }
    assert_dir_empty(qd->tmp);

    g_strfreev(entries);
    g_free(names);
    g_hash_table_destroy(seen);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            g_free(workers[t].qids[i]);
            g_free(workers[t].dfs[i]);
            g_free(workers[t].ids[i]);
        }
    }
}

/* ---- known bugs ------------------------------------------------------------- */

/* A store whose tmp/QUEUEID-RANDOM already exists - another store of the
 * same queue ID that drew the same six letters and is still writing - gives
 * up, and its cleanup (quarantine_remove_tmp) then empties and removes that
 * directory, which is not its own. Depending on timing the other store then
 * fails, or - when the files vanish between its write of meta and its
 * renameat() - moves an emptied directory into DAY/ and reports success: an
 * entry without qf/df, after which the caller deletes the original from the
 * incoming queue. Unlikely (36^-6 per pair of concurrent stores of one queue
 * ID), but a cleanup must only remove what this call created. The reseeded GRand replays the letters, and the
 * directory planted in tmp/ plays the other store.
 *
 * Proposed fix, in mq_quarantine_store() (checked: every test here passes
 * with it): draw new letters while the name is taken in tmp/ (mkdirat says
 * EEXIST) or in DAY/ (which today fails the store at renameat, see
 * test_store_random_collision()), and clean up only what this call made:
 *
 *     +    bool made = false;
 *     ...
 *     -    (draw the letters once; mkdirat(q->tmpfd, entry) or fail)
 *     +    for (int attempt = 0;; attempt++) {
 *     +        char taken[sizeof(day) + sizeof(entry)];
 *     +        struct stat st;
 *     +
 *     +        (draw the letters, build entry)
 *     +        g_snprintf(taken, sizeof(taken), "%s/%s", day, entry);
 *     +        if (fstatat(q->dirfd, taken, &st, AT_SYMLINK_NOFOLLOW) == 0)
 *     +            errno = EEXIST;
 *     +        else if (mkdirat(q->tmpfd, entry, 0700) == 0)
 *     +            break;
 *     +        if (errno != EEXIST || attempt == 9) {
 *     +            g_set_error(...);
 *     +            goto done;
 *     +        }
 *     +    }
 *     +    made = true;
 *     ...
 *     -    if (id == NULL)
 *     +    if (id == NULL && made)
 *              quarantine_remove_tmp(q, entry);
 */
static void
test_bug_collision_removes_other_tmp(struct qdir *qd, gconstpointer data)
{
    char *scratch = g_build_filename(qd->root, "scratch", NULL);
    struct mq_quarantine_record rec;
    struct mq_quarantine *sq;
    GError *err = NULL;
    char *first, *other, *id, *text, *names;
    const char *entry;
    size_t len;

    record_init(&rec, QID, NULL, 0);
    /* learn the letters that seed 77 draws */
    sq = mq_quarantine_open(scratch, &err);
    g_assert_no_error(err);
    g_random_set_seed(77);
    first = store_ok(sq, &rec, "qf\n", "df\n");
    mq_quarantine_free(&sq);
    entry = first + strlen(DAY "-");

    /* the other store, half way */
    other = g_build_filename(qd->tmp, entry, NULL);
    g_assert_cmpint(g_mkdir(other, 0700), ==, 0);
    put(other, "qf", "other qf\n", 9);

    g_random_set_seed(77);
    id = mq_quarantine_store(qd->q, &rec, "qf\n", 3, "df\n", 3, &err);
    if (id != NULL) {
        struct expect want = { QID, "qf\n", "df\n", 3, 3, NULL, 0 };
        g_assert_no_error(err);
        g_assert_cmpstr(id + strlen(DAY "-"), !=, entry);
        meta_free(check_entry(qd, id, &want));
    } else {
        g_assert_nonnull(err);
        g_test_message("store: %s", err->message);
        g_clear_error(&err);
    }
    /* the other store's files are untouched */
    names = listing(qd->tmp);
    g_assert_cmpstr(names, ==, entry);
    g_free(names);
    names = listing(other);
    g_assert_cmpstr(names, ==, "qf");
    g_free(names);
    text = get(other, "qf", &len);
    g_assert_cmpmem(text, len, "other qf\n", 9);
    g_free(text);

    g_free(id);
    g_free(other);
    g_free(first);
    g_free(scratch);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define ADD(path, fn) g_test_add(path, struct qdir, NULL, qdir_setup, fn, qdir_teardown)
#define ADD_DATA(path, data, fn) \
    g_test_add(path, struct qdir, GINT_TO_POINTER(data), qdir_setup, fn, qdir_teardown)
    g_test_add_func("/quarantine/id-ok", test_id_ok);
    ADD("/quarantine/open", test_open);
    /* Before any thread exists (these set an environment variable for the
     * child): GTest runs suites in the order they are first named. */
    for (size_t i = 0; i < G_N_ELEMENTS(bad_qids); i++) {
        char *path = g_strdup_printf("/quarantine/panic-bad-queue-id/%zu", i);
        g_test_add_data_func(path, GSIZE_TO_POINTER(i), test_store_panic_bad_id);
        g_free(path);
    }
    ADD("/quarantine/store/hostile", test_store_hostile);
    ADD("/quarantine/store/minimal", test_store_minimal);
    ADD("/quarantine/store/same-queue-id", test_store_same_queue_id);
    ADD("/quarantine/store/random-collision", test_store_random_collision);
    ADD_DATA("/quarantine/store/day-is-file", BLOCK_FILE, test_store_day_blocked);
    ADD_DATA("/quarantine/store/day-is-symlink", BLOCK_SYMLINK, test_store_day_blocked);
    ADD("/quarantine/store/duplicate-part", test_store_duplicate_part);
    ADD("/quarantine/store/threads", test_store_threads);
    /* Known bugs last, so that a failure does not hide the other results. */
    ADD("/quarantine/bug/collision-removes-other-tmp", test_bug_collision_removes_other_tmp);
#undef ADD
#undef ADD_DATA
    return g_test_run();
}
