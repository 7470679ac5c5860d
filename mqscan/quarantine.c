#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/qf.h"
#include "mqscan/quarantine.h"

#define QUARANTINE_META_VERSION 1
#define QUARANTINE_RANDOM_LEN 6
#define QUARANTINE_VALUE_MAX 1000

/* Temp name of a meta being rewritten, in the entry's own directory. */
#define QUARANTINE_META_TMP "meta.tmp"
/* Suffix of an entry being deleted, renamed into tmp/. */
#define QUARANTINE_DELETE_SUFFIX ".delete"
#define QUARANTINE_USER_MAX 64
#define QUARANTINE_ADDR_MAX 254
/* sendmail skips queue files whose name is longer than 20 bytes (MAXQFNAME
 * is 21 with the NUL): "qf" and at most 18 bytes of ID. */
#define QUARANTINE_SENDMAIL_ID_MAX 18

G_DEFINE_QUARK(mq-quarantine-error-quark, mq_quarantine_error)

struct mq_quarantine {
    char *path;
    int dirfd;
    int tmpfd;
};

static int
quarantine_mkdirat(int dirfd, const char *name, GError **err)
{
    if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "mkdir %s: %s", name,
                    g_strerror(errno));
        return -1;
    }
    return 0;
}

struct mq_quarantine *
mq_quarantine_open(const char *dir, GError **err)
{
    struct mq_quarantine *q;
    int dirfd, tmpfd;

    if (mq_fs_mkdir_p(dir, 0700, err) < 0)
        return NULL;
    dirfd = mq_fs_open_dir(dir, err);
    if (dirfd < 0)
        return NULL;
    if (quarantine_mkdirat(dirfd, "tmp", err) < 0 ||
        (tmpfd = openat(dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        if (err != NULL && *err == NULL)
            g_set_error(err, MQ_ERROR, MQ_ERROR_IO, "open %s/tmp: %s", dir, g_strerror(errno));
        close(dirfd);
        return NULL;
    }
    q = g_new0(struct mq_quarantine, 1);
    q->path = g_strdup(dir);
    q->dirfd = dirfd;
    q->tmpfd = tmpfd;
    return q;
}

/* A directory a tool may trust: neither group nor others may write it. */
static int
quarantine_check_dir(int fd, const char *what, GError **err)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "fstat %s: %s", what, g_strerror(errno));
        return -1;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "%s is writable by group or others (mode %04o): refusing to use it", what,
                    (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return 0;
}

struct mq_quarantine *
mq_quarantine_open_existing(const char *dir, GError **err)
{
    struct mq_quarantine *q;
    char *what = NULL;
    int dirfd = -1, tmpfd = -1;

    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "quarantine directory %s: %s", dir,
                    g_strerror(errno));
        goto fail;
    }
    if (quarantine_check_dir(dirfd, dir, err) < 0)
        goto fail;
    what = g_strdup_printf("%s/tmp", dir);
    tmpfd = openat(dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (tmpfd < 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s: %s", what,
                    errno == ELOOP ? "a symlink" : g_strerror(errno));
        goto fail;
    }
    if (quarantine_check_dir(tmpfd, what, err) < 0)
        goto fail;
    g_free(what);
    q = g_new0(struct mq_quarantine, 1);
    q->path = g_strdup(dir);
    q->dirfd = dirfd;
    q->tmpfd = tmpfd;
    return q;

fail:
    g_free(what);
    if (tmpfd >= 0)
        close(tmpfd);
    if (dirfd >= 0)
        close(dirfd);
    return NULL;
}

const char *
mq_quarantine_path(const struct mq_quarantine *quarantine)
{
    return quarantine->path;
}

void
mq_quarantine_free(struct mq_quarantine **quarantine)
{
    struct mq_quarantine *q = *quarantine;

    if (q == NULL)
        return;
    close(q->tmpfd);
    close(q->dirfd);
    g_free(q->path);
    g_free(q);
    *quarantine = NULL;
}

static void
quarantine_meta_add(GString *meta, const char *key, const char *value)
{
    char *clean = mq_log_sanitize(value ? value : "", QUARANTINE_VALUE_MAX);
    g_string_append_printf(meta, "%s: %s\n", key, clean);
    g_free(clean);
}

/* Writes name in the entry directory entryfd, its writeback started; made
 * durable by quarantine_sync_entry() or a syncfs(). */
static int
quarantine_write_in(int entryfd, const char *name, const void *buf, size_t len, GError **err)
{
    return mq_fs_write_new(entryfd, name, buf, len, MQ_FS_WRITEBACK, err);
}

/* Every file of the entry tmp/entry (its names are only ours), then the
 * entry directory itself, fsynced. */
static int
quarantine_sync_entry(struct mq_quarantine *q, const char *entry, GError **err)
{
    int fd = openat(q->tmpfd, entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = 0;
    DIR *dir;
    struct dirent *de;

    if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "quarantine: open tmp/%s: %s",
                    entry, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while (rc == 0 && (de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = mq_fs_fsync_at(dirfd(dir), de->d_name, err);
    }
    if (rc == 0)
        rc = mq_fs_fsync_dir(dirfd(dir), err);
    closedir(dir);
    return rc;
}

static void quarantine_split_id(const char *id, char day[9], char entry[MQ_ID_MAX * 2 + 2]);

/* Best effort after a failed store: leave no half entry in tmp/. The names
 * in it are only ours (qf, df, meta, part-N). */
static void
quarantine_remove_tmp(struct mq_quarantine *q, const char *entry)
{
    int fd = openat(q->tmpfd, entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *dir;
    struct dirent *de;

    if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            unlinkat(dirfd(dir), de->d_name, 0);
    }
    closedir(dir);
    unlinkat(q->tmpfd, entry, AT_REMOVEDIR);
}

char *
mq_quarantine_stage(struct mq_quarantine *q, const struct mq_quarantine_record *rec,
                    const char *qf, size_t qf_len, const char *df, size_t df_len,
                    GError **err)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char day[16], entry[MQ_ID_MAX + QUARANTINE_RANDOM_LEN + 2];
    char random[QUARANTINE_RANDOM_LEN + 1];
    GString *meta = NULL;
    GDateTime *now = NULL;
    char *id = NULL, *daystr;
    bool made = false;
    int entryfd = -1;

    if (!mq_fs_id_ok(rec->queue_id))
        mq_log_panic("quarantine: invalid queue id");
    now = g_date_time_new_from_unix_utc(rec->when);
    daystr = g_date_time_format(now, "%Y%m%d");
    g_strlcpy(day, daystr, sizeof(day));
    g_free(daystr);
    /* A fresh name, free both under tmp/ and in the day directory. Only a
     * directory this call made is ever cleaned up: a name that exists may
     * belong to a store running at the same time. */
    for (int attempt = 0;; attempt++) {
        char inday[sizeof(day) + sizeof(entry) + 1];
        struct stat st;
        for (int i = 0; i < QUARANTINE_RANDOM_LEN; i++)
            random[i] = letters[g_random_int_range(0, (gint32)sizeof(letters) - 1)];
        random[QUARANTINE_RANDOM_LEN] = '\0';
        g_snprintf(entry, sizeof(entry), "%s-%s", rec->queue_id, random);
        g_snprintf(inday, sizeof(inday), "%s/%s", day, entry);
        if (fstatat(q->dirfd, inday, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (mkdirat(q->tmpfd, entry, 0700) == 0) {
                made = true;
                break;
            }
            if (errno != EEXIST) {
                g_set_error(err, MQ_ERROR, mq_error_from_errno(errno),
                            "quarantine: mkdir tmp/%s: %s", entry, g_strerror(errno));
                goto done;
            }
        }
        if (attempt >= 10) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_IO, "quarantine: no free name for %s",
                        rec->queue_id);
            goto done;
        }
    }
    meta = g_string_new(NULL);
    g_string_append_printf(meta, "mqscan-quarantine %d\n", QUARANTINE_META_VERSION);
    g_string_append_printf(meta, "id: %s-%s\n", day, entry);
    quarantine_meta_add(meta, "queue-id", rec->queue_id);
    g_string_append_printf(meta, "time: %lld\n", (long long)rec->when);
    quarantine_meta_add(meta, "reason", rec->reason);
    quarantine_meta_add(meta, "action", rec->action);
    quarantine_meta_add(meta, "direction", rec->direction);
    quarantine_meta_add(meta, "sender", rec->sender);
    for (const char *const *r = rec->recipients; r != NULL && *r != NULL; r++)
        quarantine_meta_add(meta, "recipient", *r);
    quarantine_meta_add(meta, "subject", rec->subject);
    for (const char *const *f = rec->findings; f != NULL && *f != NULL; f++)
        quarantine_meta_add(meta, "finding", *f);
    for (size_t i = 0; i < rec->n_parts; i++)
        g_string_append_printf(meta, "part: part-%u %zu\n", rec->parts[i].number,
                               rec->parts[i].len);
    g_string_append(meta, "end\n");

    entryfd = openat(q->tmpfd, entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (entryfd < 0) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "quarantine: open tmp/%s: %s",
                    entry, g_strerror(errno));
        goto done;
    }
    if (quarantine_write_in(entryfd, "qf", qf, qf_len, err) < 0 ||
        quarantine_write_in(entryfd, "df", df, df_len, err) < 0)
        goto done;
    for (size_t i = 0; i < rec->n_parts; i++) {
        char name[32];
        g_snprintf(name, sizeof(name), "part-%u", rec->parts[i].number);
        if (quarantine_write_in(entryfd, name, rec->parts[i].data, rec->parts[i].len, err) < 0)
            goto done;
    }
    /* meta last: an entry whose meta ends in "end" is complete. */
    if (quarantine_write_in(entryfd, "meta", meta->str, meta->len, err) < 0)
        goto done;
    id = g_strdup_printf("%s-%s", day, entry);

done:
    if (id == NULL && made)
        quarantine_remove_tmp(q, entry);
    if (entryfd >= 0)
        close(entryfd);
    if (meta != NULL)
        g_string_free(meta, TRUE);
    g_date_time_unref(now);
    return id;
}

void
mq_quarantine_unstage(struct mq_quarantine *q, const char *id)
{
    char day[9], entry[MQ_ID_MAX * 2 + 2];

    quarantine_split_id(id, day, entry);
    quarantine_remove_tmp(q, entry);
}

int
mq_quarantine_commit(struct mq_quarantine *q, const char *const *ids, size_t n, unsigned flags,
                     bool *failed, GError **err)
{
    GHashTable *dayfds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer key, value;
    size_t ok = 0;
    bool made_day = false;
    GError *first = NULL;

    /* The files, durable where they are (tmp/ is never read as entries). */
    if ((flags & MQ_QUARANTINE_SYNCFS) && mq_fs_syncfs(q->tmpfd, &first) < 0) {
        for (size_t i = 0; i < n; i++)
            failed[i] = true;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char day[9], entry[MQ_ID_MAX * 2 + 2];
        GError *e = NULL;
        int dayfd;

        failed[i] = true;
        if (!mq_quarantine_id_ok(ids[i]))
            mq_log_panic("quarantine: committing an invalid ID");
        quarantine_split_id(ids[i], day, entry);
        if (!(flags & MQ_QUARANTINE_SYNCFS) && quarantine_sync_entry(q, entry, &e) < 0)
            goto next;
        dayfd = GPOINTER_TO_INT(g_hash_table_lookup(dayfds, day)) - 1;
        if (dayfd < 0) {
            struct stat st;
            if (fstatat(q->dirfd, day, &st, AT_SYMLINK_NOFOLLOW) < 0)
                made_day = true;
            if (quarantine_mkdirat(q->dirfd, day, &e) < 0)
                goto next;
            dayfd = openat(q->dirfd, day, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (dayfd < 0) {
                g_set_error(&e, MQ_ERROR, mq_error_from_errno(errno), "quarantine: open %s: %s",
                            day, g_strerror(errno));
                goto next;
            }
            g_hash_table_insert(dayfds, g_strdup(day), GINT_TO_POINTER(dayfd + 1));
        }
        if (renameat(q->tmpfd, entry, dayfd, entry) < 0) {
            g_set_error(&e, MQ_ERROR, mq_error_from_errno(errno), "quarantine: rename %s: %s",
                        entry, g_strerror(errno));
            goto next;
        }
        failed[i] = false;
        ok++;
next:
        if (e != NULL) {
            mq_log_error("quarantine: %s not committed: %s", ids[i], e->message);
            if (first == NULL)
                first = e;
            else
                g_error_free(e);
        }
    }
    /* The renames, durable: the day directories, tmp/, and the top when a
     * day was made. A failure here leaves every entry unsure: all failed. */
    if (ok > 0) {
        GError *e = NULL;
        int rc = 0;
        g_hash_table_iter_init(&it, dayfds);
        while (rc == 0 && g_hash_table_iter_next(&it, &key, &value))
            rc = mq_fs_fsync_dir(GPOINTER_TO_INT(value) - 1, &e);
        if (rc == 0)
            rc = mq_fs_fsync_dir(q->tmpfd, &e);
        if (rc == 0 && made_day)
            rc = mq_fs_fsync_dir(q->dirfd, &e);
        if (rc < 0) {
            for (size_t i = 0; i < n; i++)
                failed[i] = true;
            ok = 0;
            if (first == NULL)
                first = e;
            else
                g_error_free(e);
        }
    }
out:
    g_hash_table_iter_init(&it, dayfds);
    while (g_hash_table_iter_next(&it, &key, &value))
        close(GPOINTER_TO_INT(value) - 1);
    g_hash_table_unref(dayfds);
    if (first != NULL) {
        g_propagate_error(err, first);
        return -1;
    }
    return 0;
}

char *
mq_quarantine_store(struct mq_quarantine *q, const struct mq_quarantine_record *rec,
                    const char *qf, size_t qf_len, const char *df, size_t df_len,
                    GError **err)
{
    char *id = mq_quarantine_stage(q, rec, qf, qf_len, df, df_len, err);
    bool failed = false;

    if (id == NULL)
        return NULL;
    if (mq_quarantine_commit(q, (const char *const *)&id, 1, 0, &failed, err) < 0 || failed) {
        mq_quarantine_unstage(q, id);
        g_free(id);
        return NULL;
    }
    return id;
}

bool
mq_quarantine_id_ok(const char *id)
{
    char **parts;
    bool ok;

    if (id == NULL || strlen(id) > 8 + 1 + MQ_ID_MAX + 1 + QUARANTINE_RANDOM_LEN)
        return false;
    parts = g_strsplit(id, "-", 0);
    ok = g_strv_length(parts) == 3 && strlen(parts[0]) == 8 &&
         strspn(parts[0], "0123456789") == 8 && mq_fs_id_ok(parts[1]) &&
         strlen(parts[2]) == QUARANTINE_RANDOM_LEN && mq_fs_id_ok(parts[2]);
    g_strfreev(parts);
    return ok;
}

/* ---- addresses --------------------------------------------------------------- */

static bool
quarantine_local_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(s[i]) && strchr("._+=-", s[i]) == NULL)
            return false;
        if (s[i] == '.' && s[i + 1] == '.')
            return false;
    }
    return true;
}

static bool
quarantine_domain_ok(const char *s)
{
    unsigned labels = 0;

    for (;;) {
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
            return false;
        labels++;
        if (s[n] == '\0')
            break;
        if (s[n] != '.')
            return false;
        s += n + 1;
    }
    return labels >= 2;
}

bool
mq_quarantine_addr_ok(const char *addr)
{
    const char *at;

    if (addr == NULL || strlen(addr) > QUARANTINE_ADDR_MAX)
        return false;
    at = strchr(addr, '@');
    if (at == NULL || strchr(at + 1, '@') != NULL)
        return false;
    return quarantine_local_ok(addr, (size_t)(at - addr)) && quarantine_domain_ok(at + 1);
}

/* ---- meta ---------------------------------------------------------------------- */

void
mq_quarantine_info_free(struct mq_quarantine_info **info)
{
    struct mq_quarantine_info *i = *info;

    if (i == NULL)
        return;
    g_free(i->id);
    g_free(i->queue_id);
    g_free(i->reason);
    g_free(i->action);
    g_free(i->direction);
    g_free(i->sender);
    g_free(i->subject);
    g_strfreev(i->recipients);
    g_strfreev(i->findings);
    g_free(i->parts);
    for (size_t n = 0; n < i->n_releases; n++) {
        g_free(i->releases[n].user);
        g_free(i->releases[n].queue_id);
        g_free(i->releases[n].to);
    }
    g_free(i->releases);
    g_free(i);
    *info = NULL;
}

static void
quarantine_info_unref(gpointer p)
{
    struct mq_quarantine_info *info = p;
    mq_quarantine_info_free(&info);
}

static bool
quarantine_user_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= QUARANTINE_USER_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-?") == n;
}

/* "part-N SIZE", as the store writes it (N without leading zeros). */
static bool
quarantine_parse_part(const char *value, struct mq_quarantine_meta_part *part)
{
    const char *sp = strchr(value, ' ');
    char *num, canon[32];
    uint64_t n, size;
    bool ok;

    if (!g_str_has_prefix(value, "part-") || sp == NULL)
        return false;
    num = g_strndup(value + 5, (size_t)(sp - value - 5));
    ok = mq_fs_parse_uint(num, 1, G_MAXUINT, &n) &&
         mq_fs_parse_uint(sp + 1, 0, G_MAXINT64, &size);
    if (ok) {
        g_snprintf(canon, sizeof(canon), "%" G_GUINT64_FORMAT, n);
        ok = strcmp(canon, num) == 0;
    }
    g_free(num);
    if (ok) {
        part->number = (unsigned)n;
        part->size = size;
    }
    return ok;
}

/* "SECONDS USER QUEUEID TO" */
static bool
quarantine_parse_release(const char *value, struct mq_quarantine_release_record *rel)
{
    char **f = g_strsplit(value, " ", 0);
    uint64_t when;
    bool ok;

    ok = g_strv_length(f) == 4 && mq_fs_parse_uint(f[0], 0, G_MAXINT64, &when) &&
         quarantine_user_ok(f[1]) && mq_fs_id_ok(f[2]) &&
         (strcmp(f[3], "-") == 0 || mq_quarantine_addr_ok(f[3]));
    if (ok) {
        rel->when = (time_t)when;
        rel->user = g_strdup(f[1]);
        rel->queue_id = g_strdup(f[2]);
        rel->to = strcmp(f[3], "-") == 0 ? NULL : g_strdup(f[3]);
    }
    g_strfreev(f);
    return ok;
}

static struct mq_quarantine_info *
meta_fail(struct mq_quarantine_info *info, GArray *parts, GArray *rels, GPtrArray *rcpts,
          GPtrArray *finds, GError **err, unsigned lineno, const char *why)
{
    if (lineno > 0)
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "bad meta file, line %u: %s", lineno, why);
    else
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "bad meta file: %s", why);
    for (guint i = 0; i < rels->len; i++) {
        struct mq_quarantine_release_record *r =
            &g_array_index(rels, struct mq_quarantine_release_record, i);
        g_free(r->user);
        g_free(r->queue_id);
        g_free(r->to);
    }
    g_array_unref(rels);
    g_array_unref(parts);
    g_ptr_array_unref(rcpts);
    g_ptr_array_unref(finds);
    mq_quarantine_info_free(&info);
    return NULL;
}

struct mq_quarantine_info *
mq_quarantine_meta_parse(const char *buf, size_t len, GError **err)
{
    static const char magic[] = "mqscan-quarantine ";
    struct mq_quarantine_info *info = g_new0(struct mq_quarantine_info, 1);
    GArray *parts = g_array_new(FALSE, TRUE, sizeof(struct mq_quarantine_meta_part));
    GArray *rels = g_array_new(FALSE, TRUE, sizeof(struct mq_quarantine_release_record));
    GPtrArray *rcpts = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *finds = g_ptr_array_new_with_free_func(g_free);
    const char *p = buf, *end = buf + len;
    bool ended = false, have_time = false;
    unsigned lineno = 0;
    char *tmp;

#define FAIL(why) return meta_fail(info, parts, rels, rcpts, finds, err, lineno, (why))
    if (len > MQ_QUARANTINE_META_MAX)
        FAIL("larger than the limit");
    if (memchr(buf, '\0', len) != NULL)
        FAIL("contains NUL bytes");
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n, klen;
        char *line, *value;

        lineno++;
        if (lineno > MQ_QUARANTINE_META_LINES_MAX)
            FAIL("too many lines");
        if (nl == NULL)
            FAIL("last line without a newline (incomplete file)");
        n = (size_t)(nl - p);
        if (n > MQ_QUARANTINE_META_LINE_MAX)
            FAIL("line too long");
        if (ended)
            FAIL("data after the end line");
        line = g_strndup(p, n);
        p = nl + 1;
        if (lineno == 1) {
            bool ours = g_str_has_prefix(line, magic);
            bool v1 = strcmp(line, "mqscan-quarantine 1") == 0;
            g_free(line);
            if (!ours)
                FAIL("not an mqscan quarantine meta file");
            if (!v1)
                FAIL("unsupported version (only version 1 is read)");
            continue;
        }
        if (strcmp(line, "end") == 0) {
            ended = true;
            g_free(line);
            continue;
        }
        klen = strspn(line, "abcdefghijklmnopqrstuvwxyz0123456789-");
        if (klen == 0 || strncmp(line + klen, ": ", 2) != 0) {
            g_free(line);
            FAIL("not \"key: value\"");
        }
        line[klen] = '\0';
        /* Sanitized again: the file may have been edited by hand or by worse. */
        value = mq_log_sanitize(line + klen + 2, MQ_QUARANTINE_META_LINE_MAX);
        {
            static const char *const singles[] = {
                "id", "queue-id", "time", "reason", "action", "direction", "sender", "subject",
            };
            char **slots[] = {
                &info->id, &info->queue_id, &tmp, &info->reason, &info->action,
                &info->direction, &info->sender, &info->subject,
            };
            const char *why = NULL;
            bool known = false;

            tmp = NULL;
            for (size_t k = 0; k < G_N_ELEMENTS(singles); k++) {
                if (strcmp(line, singles[k]) != 0)
                    continue;
                known = true;
                if (k == 2) {
                    uint64_t t;
                    if (have_time)
                        why = "two time lines";
                    else if (!mq_fs_parse_uint(value, 0, G_MAXINT64, &t))
                        why = "bad time";
                    else
                        info->when = (time_t)t;
                    have_time = true;
                } else if (*slots[k] != NULL) {
                    why = "a key given twice";
                } else {
                    *slots[k] = value;
                    value = NULL;
                }
            }
            if (!known && strcmp(line, "recipient") == 0) {
                g_ptr_array_add(rcpts, value);
                value = NULL;
            } else if (!known && strcmp(line, "finding") == 0) {
                g_ptr_array_add(finds, value);
                value = NULL;
            } else if (!known && strcmp(line, "part") == 0) {
                struct mq_quarantine_meta_part part;
                if (quarantine_parse_part(value, &part))
                    g_array_append_val(parts, part);
                else
                    why = "bad part line";
            } else if (!known && strcmp(line, "released") == 0) {
                struct mq_quarantine_release_record rel;
                if (quarantine_parse_release(value, &rel))
                    g_array_append_val(rels, rel);
                else
                    why = "bad released line";
            }
            /* any other key: from a later version, skipped */
            g_free(value);
            g_free(line);
            if (why != NULL)
                FAIL(why);
        }
    }
    lineno = 0;
    if (len == 0)
        FAIL("empty");
    if (!ended)
        FAIL("no end line (incomplete file)");
    if (info->id == NULL || info->queue_id == NULL || !have_time)
        FAIL("id, queue-id or time missing");
    if (!mq_quarantine_id_ok(info->id) || !mq_fs_id_ok(info->queue_id))
        FAIL("id or queue-id of the wrong form");
    tmp = g_strdup_printf("-%s-", info->queue_id);
    if (strncmp(info->id + 8, tmp, strlen(tmp)) != 0) {
        g_free(tmp);
        FAIL("id does not hold queue-id");
    }
    g_free(tmp);
#undef FAIL
    for (char **s[] = { &info->reason, &info->action, &info->direction, &info->sender,
                        &info->subject }, ***e = s; e < s + G_N_ELEMENTS(s); e++) {
        if (**e == NULL)
            **e = g_strdup("");
    }
    /* The store keeps the header's blank after the colon; nobody wants it. */
    g_strchug(info->subject);
    g_ptr_array_add(rcpts, NULL);
    info->recipients = (char **)g_ptr_array_free(rcpts, FALSE);
    g_ptr_array_add(finds, NULL);
    info->findings = (char **)g_ptr_array_free(finds, FALSE);
    info->n_parts = parts->len;
    info->parts = (struct mq_quarantine_meta_part *)(void *)g_array_free(parts, FALSE);
    info->n_releases = rels->len;
    info->releases = (struct mq_quarantine_release_record *)(void *)g_array_free(rels, FALSE);
    return info;
}

/* ---- entries ---------------------------------------------------------------------- */

/* Splits a valid ID into its day and entry directory names. */
static void
quarantine_split_id(const char *id, char day[9], char entry[MQ_ID_MAX * 2 + 2])
{
    memcpy(day, id, 8);
    day[8] = '\0';
    g_strlcpy(entry, id + 9, MQ_ID_MAX * 2 + 2);
}

/* Opens directory name in parentfd without following a symlink. Returns the
 * fd, or -1 with err set (MQ_QUARANTINE_ERROR_NO_ENTRY when it does not
 * exist, MQ_ERROR_CORRUPT when it is not a directory). */
static int
quarantine_open_subdir(int parentfd, const char *name, const char *id, GError **err)
{
    int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd >= 0)
        return fd;
    if (errno == ENOENT)
        g_set_error(err, MQ_QUARANTINE_ERROR, MQ_QUARANTINE_ERROR_NO_ENTRY, "%s: no such entry",
                    id);
    else if ((errno == ELOOP || errno == ENOTDIR) && strcmp(id, name) == 0)
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: a symlink or not a directory", id);
    else if (errno == ELOOP || errno == ENOTDIR)
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: %s is a symlink or not a directory",
                    id, name);
    else
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "%s: open %s: %s", id, name,
                    g_strerror(errno));
    return -1;
}

/* Validates id, then opens its day directory (*dayfd_r, if not NULL) and
 * its entry directory. Returns the entry fd or -1 with err set. */
static int
quarantine_open_entry(struct mq_quarantine *q, const char *id, int *dayfd_r, GError **err)
{
    char day[9], entry[MQ_ID_MAX * 2 + 2];
    int dayfd, fd;

    if (!mq_quarantine_id_ok(id)) {
        char *shown = mq_log_sanitize(id, 100);
        g_set_error(err, MQ_QUARANTINE_ERROR, MQ_QUARANTINE_ERROR_BAD_ID,
                    "invalid entry ID \"%s\" (expected YYYYMMDD-QUEUEID-RANDOM)", shown);
        g_free(shown);
        return -1;
    }
    quarantine_split_id(id, day, entry);
    dayfd = quarantine_open_subdir(q->dirfd, day, id, err);
    if (dayfd < 0)
        return -1;
    fd = quarantine_open_subdir(dayfd, entry, id, err);
    if (fd < 0 || dayfd_r == NULL)
        close(dayfd);
    else
        *dayfd_r = dayfd;
    return fd;
}

/* Reads entryfd/name: no symlink, a regular file with one link, at most
 * max bytes. Returns 0 or -1 with err set (prefixed with id). */
static int
quarantine_read_file(int entryfd, const char *id, const char *name, size_t max, char **buf_r,
                     size_t *len_r, GError **err)
{
    GError *e = NULL;
    int fd = openat(entryfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) {
        int saved = errno;
        g_set_error(err, MQ_ERROR, saved == ELOOP || saved == ENOENT ? MQ_ERROR_CORRUPT :
                    mq_error_from_errno(saved), "%s: %s: %s", id, name,
                    saved == ELOOP ? "a symlink" : g_strerror(saved));
        return -1;
    }
    if (mq_fs_read_fd(fd, max, buf_r, len_r, &e) < 0) {
        g_set_error(err, MQ_ERROR, e->code, "%s: %s: %s", id, name, e->message);
        g_error_free(e);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Reads and parses the meta in entryfd; its id must be id. raw_r, if not
 * NULL, gets the file's bytes (caller frees). */
static struct mq_quarantine_info *
quarantine_read_meta(int entryfd, const char *id, char **raw_r, GError **err)
{
    struct mq_quarantine_info *info;
    GError *e = NULL;
    char *buf = NULL;
    size_t len = 0;

    if (quarantine_read_file(entryfd, id, "meta", MQ_QUARANTINE_META_MAX, &buf, &len, err) < 0)
        return NULL;
    info = mq_quarantine_meta_parse(buf, len, &e);
    if (info == NULL) {
        g_set_error(err, MQ_ERROR, e->code, "%s: %s", id, e->message);
        g_error_free(e);
    } else if (strcmp(info->id, id) != 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                    "%s: meta names another entry (%s): moved or copied by hand?", id, info->id);
        mq_quarantine_info_free(&info);
    }
    if (info != NULL && raw_r != NULL)
        *raw_r = buf;
    else
        g_free(buf);
    return info;
}

struct mq_quarantine_info *
mq_quarantine_read(struct mq_quarantine *q, const char *id, GError **err)
{
    struct mq_quarantine_info *info;
    int fd = quarantine_open_entry(q, id, NULL, err);

    if (fd < 0)
        return NULL;
    info = quarantine_read_meta(fd, id, NULL, err);
    close(fd);
    return info;
}

/* ---- listing ------------------------------------------------------------------------ */

/* An fd-based directory stream over dirfd (which stays open). */
static DIR *
quarantine_opendir(int dirfd, GError **err)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "read directory: %s",
                    g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    return d;
}

static bool
quarantine_is_day(const char *name)
{
    return strlen(name) == 8 && strspn(name, "0123456789") == 8;
}

/* Midnight UTC of day "YYYYMMDD", or -1 if it is not a date. */
static time_t
quarantine_day_time(const char *day)
{
    int y, m, d;
    GDateTime *dt;
    time_t t;

    if (!quarantine_is_day(day))
        return -1;
    y = (day[0] - '0') * 1000 + (day[1] - '0') * 100 + (day[2] - '0') * 10 + (day[3] - '0');
    m = (day[4] - '0') * 10 + (day[5] - '0');
    d = (day[6] - '0') * 10 + (day[7] - '0');
    dt = g_date_time_new_utc(y, m, d, 0, 0, 0);
    if (dt == NULL)
        return -1;
    t = (time_t)g_date_time_to_unix(dt);
    g_date_time_unref(dt);
    return t;
}

static void
quarantine_day_of(time_t t, char day[9])
{
    GDateTime *dt = g_date_time_new_from_unix_utc(t);
    char *s = dt != NULL ? g_date_time_format(dt, "%Y%m%d") : g_strdup("00000000");

    g_strlcpy(day, s, 9);
    g_free(s);
    if (dt != NULL)
        g_date_time_unref(dt);
}

static void
quarantine_problem(GPtrArray *problems, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
quarantine_problem(GPtrArray *problems, const char *fmt, ...)
{
    va_list ap;

    if (problems == NULL)
        return;
    va_start(ap, fmt);
    g_ptr_array_add(problems, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

/* Names from readdir are untrusted: shown only sanitized. */
static char *
quarantine_shown_name(const char *name)
{
    return mq_log_sanitize(name, 100);
}

struct quarantine_match {
    time_t since;
    char since_day[9];
    char *sender;               /* lower case */
    char *reason;               /* lower case */
};

static bool
quarantine_matches(const struct quarantine_match *m, const struct mq_quarantine_info *info)
{
    bool ok = true;

    if (m->since > 0 && info->when < m->since)
        return false;
    if (m->sender != NULL) {
        char *s = g_ascii_strdown(info->sender, -1);
        ok = fnmatch(m->sender, s, 0) == 0;
        g_free(s);
    }
    if (ok && m->reason != NULL) {
        char *s = g_ascii_strdown(info->reason, -1);
        ok = strstr(s, m->reason) != NULL;
        g_free(s);
    }
    return ok;
}

static gint
quarantine_cmp_oldest(gconstpointer a, gconstpointer b)
{
    const struct mq_quarantine_info *x = *(const struct mq_quarantine_info *const *)a;
    const struct mq_quarantine_info *y = *(const struct mq_quarantine_info *const *)b;

    if (x->when != y->when)
        return x->when < y->when ? -1 : 1;
    return strcmp(x->id, y->id);
}

static gint
quarantine_cmp_newest(gconstpointer a, gconstpointer b)
{
    return quarantine_cmp_oldest(b, a);
}

/* Lists one day directory into out. */
static void
quarantine_list_day(struct mq_quarantine *q, const char *day, const struct quarantine_match *m,
                    GPtrArray *out, GPtrArray *problems)
{
    GError *e = NULL;
    struct dirent *de;
    DIR *d = NULL;
    int dayfd;

    dayfd = quarantine_open_subdir(q->dirfd, day, day, &e);
    if (dayfd < 0 || (d = quarantine_opendir(dayfd, &e)) == NULL) {
        /* quarantine_open_subdir() names the day already */
        if (dayfd < 0)
            quarantine_problem(problems, "%s", e->message);
        else
            quarantine_problem(problems, "%s: %s", day, e->message);
        g_error_free(e);
        if (dayfd >= 0)
            close(dayfd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        struct mq_quarantine_info *info;
        char *id;
        int fd;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        id = g_strdup_printf("%s-%s", day, de->d_name);
        if (!mq_quarantine_id_ok(id)) {
            char *shown = quarantine_shown_name(de->d_name);
            quarantine_problem(problems, "%s/%s: not an entry name", day, shown);
            g_free(shown);
            g_free(id);
            continue;
        }
        fd = quarantine_open_subdir(dayfd, de->d_name, id, &e);
        info = fd >= 0 ? quarantine_read_meta(fd, id, NULL, &e) : NULL;
        if (fd >= 0)
            close(fd);
        if (info == NULL) {
            /* gone meanwhile (deleted): not a problem */
            if (!g_error_matches(e, MQ_QUARANTINE_ERROR, MQ_QUARANTINE_ERROR_NO_ENTRY))
                quarantine_problem(problems, "%s", e->message);
            g_clear_error(&e);
        } else if (quarantine_matches(m, info)) {
            g_ptr_array_add(out, info);
        } else {
            mq_quarantine_info_free(&info);
        }
        g_free(id);
    }
    closedir(d);
    close(dayfd);
}

GPtrArray *
mq_quarantine_list(struct mq_quarantine *q, const struct mq_quarantine_filter *filter,
                   enum mq_quarantine_order order, GPtrArray *problems, GError **err)
{
    struct quarantine_match m = { 0 };
    GPtrArray *days = g_ptr_array_new_with_free_func(g_free), *out;
    struct dirent *de;
    DIR *d;

    if (filter != NULL) {
        m.since = filter->since;
        if (filter->sender != NULL)
            m.sender = g_ascii_strdown(filter->sender, -1);
        if (filter->reason != NULL)
            m.reason = g_ascii_strdown(filter->reason, -1);
    }
    if (m.since > 0)
        quarantine_day_of(m.since, m.since_day);
    d = quarantine_opendir(q->dirfd, err);
    if (d == NULL) {
        g_free(m.sender);
        g_free(m.reason);
        g_ptr_array_unref(days);
        return NULL;
    }
    /* Day names first: the directory is not read while entries are. */
    while ((de = readdir(d)) != NULL) {
        if (!quarantine_is_day(de->d_name))
            continue;       /* tmp/, and nothing of ours */
        if (m.since > 0 && strcmp(de->d_name, m.since_day) < 0)
            continue;       /* a whole day before since */
        g_ptr_array_add(days, g_strdup(de->d_name));
    }
    closedir(d);
    out = g_ptr_array_new_with_free_func(quarantine_info_unref);
    for (guint i = 0; i < days->len; i++)
        quarantine_list_day(q, g_ptr_array_index(days, i), &m, out, problems);
    g_ptr_array_sort(out, order == MQ_QUARANTINE_OLDEST_FIRST ? quarantine_cmp_oldest :
                                                                quarantine_cmp_newest);
    g_ptr_array_unref(days);
    g_free(m.sender);
    g_free(m.reason);
    return out;
}

/* For g_ptr_array_sort() over strings: oldest day, then entry, first. */
static gint
quarantine_cmp_name(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
quarantine_file_unref(gpointer p)
{
    struct mq_quarantine_file *f = p;
    g_free(f->name);
    g_free(f);
}

static gint
quarantine_cmp_file(gconstpointer a, gconstpointer b)
{
    const struct mq_quarantine_file *x = *(const struct mq_quarantine_file *const *)a;
    const struct mq_quarantine_file *y = *(const struct mq_quarantine_file *const *)b;
    return strcmp(x->name, y->name);
}

GPtrArray *
mq_quarantine_files(struct mq_quarantine *q, const char *id, GError **err)
{
    GPtrArray *out = NULL;
    struct dirent *de;
    DIR *d = NULL;
    int fd;

    fd = quarantine_open_entry(q, id, NULL, err);
    if (fd < 0 || (d = quarantine_opendir(fd, err)) == NULL)
        goto done;
    out = g_ptr_array_new_with_free_func(quarantine_file_unref);
    while ((de = readdir(d)) != NULL) {
        struct mq_quarantine_file *f;
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;       /* gone meanwhile */
        f = g_new0(struct mq_quarantine_file, 1);
        f->name = quarantine_shown_name(de->d_name);
        f->size = (uint64_t)st.st_size;
        f->kind = S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l' :
                  S_ISDIR(st.st_mode) ? 'd' : '?';
        g_ptr_array_add(out, f);
    }
    g_ptr_array_sort(out, quarantine_cmp_file);
done:
    if (d != NULL)
        closedir(d);
    if (fd >= 0)
        close(fd);
    return out;
}

GPtrArray *
mq_quarantine_headers(struct mq_quarantine *q, const char *id, const char *const *names,
                      GError **err)
{
    GPtrArray *out = NULL;
    struct mq_qf *qf = NULL;
    GError *e = NULL;
    char *buf = NULL;
    size_t len = 0;
    int fd;

    fd = quarantine_open_entry(q, id, NULL, err);
    if (fd < 0)
        return NULL;
    if (quarantine_read_file(fd, id, "qf", MQ_QF_MAX_SIZE, &buf, &len, err) < 0)
        goto done;
    qf = mq_qf_parse(buf, len, &e);
    if (qf == NULL) {
        g_set_error(err, MQ_ERROR, e->code, "%s: qf: %s", id, e->message);
        g_error_free(e);
        goto done;
    }
    out = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < mq_qf_header_count(qf); i++) {
        const char *name, *value;
        bool wanted = false;
        char *joined;

        mq_qf_header(qf, i, &name, &value);
        for (const char *const *n = names; *n != NULL; n++)
            wanted = wanted || g_ascii_strcasecmp(name, *n) == 0;
        if (!wanted)
            continue;
        /* Unfold ("\n\t", "\n ") and drop the blanks after the colon. */
        joined = g_strdup_printf("%s: %s", name, value + strspn(value, " \t"));
        for (char *s = joined; *s != '\0'; s++) {
            if (*s == '\n' && (s[1] == ' ' || s[1] == '\t')) {
                *s = ' ';
                s[1] = ' ';
            }
        }
        g_ptr_array_add(out, mq_log_sanitize(joined, QUARANTINE_VALUE_MAX));
        g_free(joined);
    }
done:
    mq_qf_free(&qf);
    g_free(buf);
    close(fd);
    return out;
}

/* Reads and parses entryfd's qf, and reads its df (at most max_df bytes)
 * into *df_r (caller frees). Returns the qf (caller frees with mq_qf_free())
 * or NULL with err set. */
static struct mq_qf *
quarantine_read_message(int entryfd, const char *id, size_t max_df, char **df_r,
                        size_t *df_len_r, GError **err)
{
    struct mq_qf *qf = NULL;
    GError *e = NULL;
    char *raw = NULL;
    size_t len = 0;

    if (quarantine_read_file(entryfd, id, "qf", MQ_QF_MAX_SIZE, &raw, &len, err) < 0)
        return NULL;
    qf = mq_qf_parse(raw, len, &e);
    g_free(raw);
    if (qf == NULL) {
        g_set_error(err, MQ_ERROR, e->code, "%s: qf: %s", id, e->message);
        g_error_free(e);
        return NULL;
    }
    if (quarantine_read_file(entryfd, id, "df", max_df, df_r, df_len_r, err) < 0)
        mq_qf_free(&qf);
    return qf;
}

int
mq_quarantine_original(struct mq_quarantine *q, const char *id, size_t max_df, char **msg_r,
                       size_t *len_r, GError **err)
{
    struct mq_qf *qf = NULL;
    GString *out = NULL;
    char *df = NULL;
    size_t df_len = 0;
    int fd, ret = -1;

    *msg_r = NULL;
    *len_r = 0;
    fd = quarantine_open_entry(q, id, NULL, err);
    if (fd < 0)
        return -1;
    qf = quarantine_read_message(fd, id, max_df, &df, &df_len, err);
    if (qf == NULL)
        goto done;
    out = g_string_sized_new(df_len + 4096);
    mq_qf_headers_text(qf, out);         /* every line ends in LF */
    g_string_append_c(out, '\n');
    g_string_append_len(out, df, (gssize)df_len);
    *len_r = out->len;
    *msg_r = g_string_free(out, FALSE);
    ret = 0;
done:
    mq_qf_free(&qf);
    g_free(df);
    close(fd);
    return ret;
}

/* ---- release ------------------------------------------------------------------------ */

/* Takes the entry's lock: a release and a delete of one entry never run at
 * once. The lock goes with the fd. */
static int
quarantine_lock(int entryfd, const char *id, GError **err)
{
    if (flock(entryfd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno == EWOULDBLOCK)
        g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP,
                    "%s: busy (another release or delete is running)", id);
    else
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "%s: flock: %s", id,
                    g_strerror(errno));
    return -1;
}

/* user as recorded: [A-Za-z0-9._-], anything else '?', at most 64 bytes. */
static char *
quarantine_clean_user(const char *user)
{
    GString *s = g_string_new(NULL);

    for (const char *p = user != NULL ? user : ""; *p != '\0' && s->len < QUARANTINE_USER_MAX;
         p++)
        g_string_append_c(s, g_ascii_isalnum(*p) || strchr("._-", *p) != NULL ? *p : '?');
    if (s->len == 0)
        g_string_append_c(s, '?');
    return g_string_free(s, FALSE);
}

bool
mq_quarantine_info_not_virus_scanned(const struct mq_quarantine_info *info)
{
    for (char **f = info->findings; f != NULL && *f != NULL; f++)
        if (strcmp(*f, MQ_QUARANTINE_NOT_VIRUS_SCANNED) == 0)
            return true;
    return false;
}

int
mq_quarantine_release(struct mq_quarantine *q, struct mq_queue *out, const char *id,
                      const char *to, const char *user, time_t now, size_t max_df,
                      char **queue_id_r, GError **err)
{
    return mq_quarantine_release_checked(q, out, id, to, user, now, max_df, NULL, NULL,
                                         queue_id_r, err);
}

int
mq_quarantine_release_checked(struct mq_quarantine *q, struct mq_queue *out, const char *id,
                              const char *to, const char *user, time_t now, size_t max_df,
                              mq_quarantine_check_fn *check, void *check_ctx,
                              char **queue_id_r, GError **err)
{
    struct mq_quarantine_info *info = NULL;
    char *meta = NULL, *df = NULL, *newid = NULL, *who = NULL;
    char cand[MQ_ID_MAX + 1];
    size_t meta_len, df_len = 0, base_len;
    struct mq_qf *qf = NULL;
    GString *text = NULL;
    gboolean dup = FALSE;
    GError *e = NULL;
    int fd = -1, rc = -1;
    bool found = false;

    *queue_id_r = NULL;
    if (to != NULL && !mq_quarantine_addr_ok(to)) {
        char *shown = mq_log_sanitize(to, 100);
        g_set_error(err, MQ_QUARANTINE_ERROR, MQ_QUARANTINE_ERROR_BAD_ADDRESS,
                    "refusing recipient \"%s\": not a plain local@domain address", shown);
        g_free(shown);
        return -1;
    }
    fd = quarantine_open_entry(q, id, NULL, err);
    if (fd < 0 || quarantine_lock(fd, id, err) < 0)
        goto done;
    info = quarantine_read_meta(fd, id, &meta, err);
    if (info == NULL)
        goto done;
    meta_len = strlen(meta);
    if (!g_str_has_suffix(meta, "\nend\n")) {
        /* the parser allows nothing else; keep the rewrite below honest */
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: meta does not end in \"end\"", id);
        goto done;
    }
    qf = quarantine_read_message(fd, id, max_df, &df, &df_len, err);
    if (qf == NULL)
        goto done;
    if (check != NULL && mq_quarantine_info_not_virus_scanned(info)) {
        GString *whole = g_string_sized_new(df_len + 4096);
        int verdict;
        mq_qf_headers_text(qf, whole);
        g_string_append_c(whole, '\n');
        g_string_append_len(whole, df, (gssize)df_len);
        verdict = check(whole->str, whole->len, check_ctx, err);
        g_string_free(whole, TRUE);
        if (verdict < 0)
            goto done;
    }
    if (to != NULL)
        mq_qf_set_recipient(qf, to);

    /* A free outgoing ID: the original one, else it followed by a letter.
     * mq_queue_write() would take a queued copy with the same creation time
     * and sender (the cleaned message, or an earlier release) for its own
     * earlier result and write nothing: this release is a new message. */
    base_len = strlen(info->queue_id);
    for (int i = -1; i < 26 && !found; i++) {
        uint64_t size;
        time_t mtime;

        if (i < 0) {
            g_strlcpy(cand, info->queue_id, sizeof(cand));
        } else {
            if (base_len + 1 > QUARANTINE_SENDMAIL_ID_MAX)
                break;
            g_snprintf(cand, sizeof(cand), "%s%c", info->queue_id, 'A' + i);
        }
        found = mq_queue_stat(out, cand, &size, &mtime) < 0;
    }
    if (!found) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP,
                    "%s: no free queue ID for %s in %s (earlier copies still queued)", id,
                    info->queue_id, mq_queue_path(out));
        goto done;
    }
    if (mq_queue_write(out, cand, qf, df, df_len, &newid, &dup, &e) < 0) {
        g_set_error(err, MQ_ERROR, e->code, "%s: writing to %s: %s", id, mq_queue_path(out),
                    e->message);
        g_error_free(e);
        goto done;
    }
    if (dup) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP,
                    "%s: qf%s appeared in %s meanwhile; nothing written, try again", id, newid,
                    mq_queue_path(out));
        goto done;
    }

    /* The release happened: record it. meta ends in "end\n"; the new line
     * goes before it. */
    who = quarantine_clean_user(user);
    text = g_string_new_len(meta, (gssize)(meta_len - 4));
    g_string_append_printf(text, "released: %lld %s %s %s\nend\n", (long long)now, who, newid,
                           to != NULL ? to : "-");
    *queue_id_r = g_strdup(newid);
    if (mq_fs_write_atomic(fd, QUARANTINE_META_TMP, "meta", text->str, text->len, &e) < 0) {
        g_set_error(err, MQ_ERROR, e->code,
                    "%s: released as %s, but the release could not be recorded in meta: %s",
                    id, newid, e->message);
        g_error_free(e);
        goto done;
    }
    rc = 0;
done:
    if (text != NULL)
        g_string_free(text, TRUE);
    g_free(who);
    g_free(newid);
    mq_qf_free(&qf);
    g_free(df);
    g_free(meta);
    mq_quarantine_info_free(&info);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- removal ------------------------------------------------------------------------ */

/* A name an entry may hold: qf, df, meta, meta.tmp, part-N (N as the store
 * writes it). */
static bool
quarantine_known_name(const char *name)
{
    uint64_t n;
    char canon[32];

    if (strcmp(name, "qf") == 0 || strcmp(name, "df") == 0 || strcmp(name, "meta") == 0 ||
        strcmp(name, QUARANTINE_META_TMP) == 0)
        return true;
    if (!g_str_has_prefix(name, "part-") || !mq_fs_parse_uint(name + 5, 1, G_MAXUINT, &n))
        return false;
    g_snprintf(canon, sizeof(canon), "part-%" G_GUINT64_FORMAT, n);
    return strcmp(canon, name) == 0;
}

/* Removes day directory day if it is empty and older than today (a store
 * may be about to put an entry into today's). */
static void
quarantine_remove_day(struct mq_quarantine *q, const char *day, time_t now)
{
    char today[9];

    quarantine_day_of(now, today);
    if (strcmp(day, today) >= 0)
        return;
    if (unlinkat(q->dirfd, day, AT_REMOVEDIR) == 0)
        fsync(q->dirfd);
}

/* Removes the entry entry (in dayfd) whose ID is id: checks every name in
 * it, renames it into tmp/, unlinks the names, removes the directory. */
static int
quarantine_remove_entry(struct mq_quarantine *q, int dayfd, const char *entry, const char *id,
                        GError **err)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    char gone[MQ_ID_MAX * 2 + sizeof(QUARANTINE_DELETE_SUFFIX) + 2];
    struct dirent *de;
    DIR *d = NULL;
    int fd, rc = -1;

    fd = quarantine_open_subdir(dayfd, entry, id, err);
    if (fd < 0 || quarantine_lock(fd, id, err) < 0 || (d = quarantine_opendir(fd, err)) == NULL)
        goto done;
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (!quarantine_known_name(de->d_name) || S_ISDIR(st.st_mode)) {
            char *shown = quarantine_shown_name(de->d_name);
            g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                        "%s: holds \"%s\", which is not an entry file: left alone", id, shown);
            g_free(shown);
            goto done;
        }
        g_ptr_array_add(names, g_strdup(de->d_name));
    }
    /* Out of sight first, so that nobody reads a half-removed entry. */
    g_snprintf(gone, sizeof(gone), "%s%s", entry, QUARANTINE_DELETE_SUFFIX);
    if (renameat2(dayfd, entry, q->tmpfd, gone, RENAME_NOREPLACE) < 0) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "%s: rename to tmp/%s: %s", id,
                    gone, g_strerror(errno));
        goto done;
    }
    fsync(dayfd);
    /* unlinkat() without AT_REMOVEDIR removes a symlink itself, never what
     * it points to. */
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        if (unlinkat(fd, name, 0) < 0 && errno != ENOENT) {
            g_set_error(err, MQ_ERROR, mq_error_from_errno(errno),
                        "%s: unlink %s: %s (the rest is in tmp/%s)", id, name,
                        g_strerror(errno), gone);
            goto done;
        }
    }
    if (unlinkat(q->tmpfd, gone, AT_REMOVEDIR) < 0) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "%s: rmdir tmp/%s: %s", id, gone,
                    g_strerror(errno));
        goto done;
    }
    rc = mq_fs_fsync_dir(q->tmpfd, err);
done:
    if (d != NULL)
        closedir(d);
    if (fd >= 0)
        close(fd);
    g_ptr_array_unref(names);
    return rc;
}

int
mq_quarantine_delete(struct mq_quarantine *q, const char *id, GError **err)
{
    char day[9], entry[MQ_ID_MAX * 2 + 2];
    int dayfd = -1, fd, rc;

    /* Validates id and says "no such entry" the usual way. */
    fd = quarantine_open_entry(q, id, &dayfd, err);
    if (fd < 0)
        return -1;
    close(fd);
    quarantine_split_id(id, day, entry);
    rc = quarantine_remove_entry(q, dayfd, entry, id, err);
    close(dayfd);
    if (rc == 0)
        quarantine_remove_day(q, day, time(NULL));
    return rc;
}

/* Purges one day directory. */
static void
quarantine_purge_day(struct mq_quarantine *q, const char *day, time_t day_time, time_t cutoff,
                     GPtrArray *removed, GPtrArray *problems)
{
    GPtrArray *entries = g_ptr_array_new_with_free_func(g_free);
    GError *e = NULL;
    struct dirent *de;
    DIR *d = NULL;
    int dayfd;

    dayfd = quarantine_open_subdir(q->dirfd, day, day, &e);
    if (dayfd < 0 || (d = quarantine_opendir(dayfd, &e)) == NULL) {
        if (dayfd >= 0)
            quarantine_problem(problems, "%s: %s: left alone", day, e->message);
        else if (!g_error_matches(e, MQ_QUARANTINE_ERROR, MQ_QUARANTINE_ERROR_NO_ENTRY))
            quarantine_problem(problems, "%s: left alone", e->message);
        g_clear_error(&e);
        goto done;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            g_ptr_array_add(entries, g_strdup(de->d_name));
    }
    g_ptr_array_sort(entries, quarantine_cmp_name);
    for (guint i = 0; i < entries->len; i++) {
        const char *entry = g_ptr_array_index(entries, i);
        struct mq_quarantine_info *info = NULL;
        char *id = g_strdup_printf("%s-%s", day, entry);
        bool old;
        int fd;

        if (!mq_quarantine_id_ok(id)) {
            char *shown = quarantine_shown_name(entry);
            quarantine_problem(problems, "%s/%s: not an entry name: left alone", day, shown);
            g_free(shown);
            g_free(id);
            continue;
        }
        fd = quarantine_open_subdir(dayfd, entry, id, &e);
        if (fd >= 0)
            info = quarantine_read_meta(fd, id, NULL, &e);
        if (fd >= 0)
            close(fd);
        if (info != NULL) {
            old = info->when <= cutoff;
        } else if (g_error_matches(e, MQ_QUARANTINE_ERROR, MQ_QUARANTINE_ERROR_NO_ENTRY)) {
            old = false;        /* deleted meanwhile */
        } else {
            /* Unreadable: its whole day must be before the cutoff. */
            old = day_time + 86400 <= cutoff;
            if (!old)
                quarantine_problem(problems, "%s (kept until its day is over)", e->message);
        }
        g_clear_error(&e);
        mq_quarantine_info_free(&info);
        if (old) {
            if (quarantine_remove_entry(q, dayfd, entry, id, &e) == 0) {
                g_ptr_array_add(removed, id);
                id = NULL;
            } else {
                quarantine_problem(problems, "%s", e->message);
                g_clear_error(&e);
            }
        }
        g_free(id);
    }
done:
    if (d != NULL)
        closedir(d);
    if (dayfd >= 0)
        close(dayfd);
    g_ptr_array_unref(entries);
}

int
mq_quarantine_purge(struct mq_quarantine *q, time_t cutoff, time_t now, GPtrArray *removed,
                    GPtrArray *problems, GError **err)
{
    GPtrArray *days = g_ptr_array_new_with_free_func(g_free);
    struct dirent *de;
    DIR *d;

    d = quarantine_opendir(q->dirfd, err);
    if (d == NULL) {
        g_ptr_array_unref(days);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (quarantine_is_day(de->d_name))
            g_ptr_array_add(days, g_strdup(de->d_name));
    }
    closedir(d);
    g_ptr_array_sort(days, quarantine_cmp_name);
    for (guint i = 0; i < days->len; i++) {
        const char *day = g_ptr_array_index(days, i);
        time_t day_time = quarantine_day_time(day);

        if (day_time < 0) {
            quarantine_problem(problems, "%s: not a date: left alone", day);
            continue;
        }
        if (day_time > cutoff)
            continue;
        quarantine_purge_day(q, day, day_time, cutoff, removed, problems);
        quarantine_remove_day(q, day, now);
    }
    g_ptr_array_unref(days);
    return 0;
}
