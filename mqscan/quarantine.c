#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/quarantine.h"

#define QUARANTINE_META_VERSION 1
#define QUARANTINE_RANDOM_LEN 6
#define QUARANTINE_VALUE_MAX 1000

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

static int
quarantine_write_in(int parentfd, const char *dirname, const char *name,
                    const void *buf, size_t len, GError **err)
{
    int fd = openat(parentfd, dirname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc;

    if (fd < 0) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "open %s: %s", dirname,
                    g_strerror(errno));
        return -1;
    }
    rc = mq_fs_write_new(fd, name, buf, len, MQ_FS_SYNC, err);
    if (rc == 0)
        rc = mq_fs_fsync_dir(fd, err);
    close(fd);
    return rc;
}

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
mq_quarantine_store(struct mq_quarantine *q, const struct mq_quarantine_record *rec,
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
    int dayfd = -1;

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

    if (quarantine_write_in(q->tmpfd, entry, "qf", qf, qf_len, err) < 0 ||
        quarantine_write_in(q->tmpfd, entry, "df", df, df_len, err) < 0)
        goto done;
    for (size_t i = 0; i < rec->n_parts; i++) {
        char name[32];
        g_snprintf(name, sizeof(name), "part-%u", rec->parts[i].number);
        if (quarantine_write_in(q->tmpfd, entry, name, rec->parts[i].data, rec->parts[i].len,
                                err) < 0)
            goto done;
    }
    /* meta last: an entry whose meta ends in "end" is complete. */
    if (quarantine_write_in(q->tmpfd, entry, "meta", meta->str, meta->len, err) < 0)
        goto done;

    if (quarantine_mkdirat(q->dirfd, day, err) < 0)
        goto done;
    dayfd = openat(q->dirfd, day, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dayfd < 0) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "quarantine: open %s: %s", day,
                    g_strerror(errno));
        goto done;
    }
    if (renameat(q->tmpfd, entry, dayfd, entry) < 0) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "quarantine: rename %s: %s",
                    entry, g_strerror(errno));
        goto done;
    }
    if (mq_fs_fsync_dir(dayfd, err) < 0 || mq_fs_fsync_dir(q->tmpfd, err) < 0 ||
        mq_fs_fsync_dir(q->dirfd, err) < 0)
        goto done;
    id = g_strdup_printf("%s-%s", day, entry);

done:
    if (id == NULL && made)
        quarantine_remove_tmp(q, entry);
    if (dayfd >= 0)
        close(dayfd);
    if (meta != NULL)
        g_string_free(meta, TRUE);
    g_date_time_unref(now);
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
