#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/queue.h"

/* An empty qf is sendmail's placeholder while it writes tfID; if sendmail
 * died at that moment the placeholder stays unlocked. Give it this long
 * before calling it corrupt. */
#define QUEUE_PLACEHOLDER_GRACE 300

struct mq_queue {
    char *path;
    int dirfd;
    struct mq_queue *outgoing;  /* where dfs claimed here may be linked; borrowed */
};

struct mq_queue_entry {
    char id[MQ_ID_MAX + 1];
    int qf_fd;                  /* holds the flock */
    time_t mtime;
    char *qf_raw;
    size_t qf_len;
    char *df;
    size_t df_len;
    struct mq_qf *qf;
    GError *problem;
    bool have_df;               /* the df file exists (hold must move it) */
    bool df_linkable;           /* df is a file mq_queue_stage_same_df() may link */
    dev_t df_dev;               /* ... and which one */
    ino_t df_ino;
};

static void
queue_name(char *buf, size_t size, char kind, const char *id)
{
    if (!mq_fs_id_ok(id))
        mq_log_panic("queue: invalid queue id used as a file name");
    g_snprintf(buf, size, "%cf%s", kind, id);
}

struct mq_queue *
mq_queue_open(const char *path, GError **err)
{
    struct mq_queue *q;
    int fd = mq_fs_open_dir(path, err);

    if (fd < 0)
        return NULL;
    q = g_new0(struct mq_queue, 1);
    q->path = g_strdup(path);
    q->dirfd = fd;
    return q;
}

void
mq_queue_free(struct mq_queue **queue)
{
    struct mq_queue *q = *queue;

    if (q == NULL)
        return;
    close(q->dirfd);
    g_free(q->path);
    g_free(q);
    *queue = NULL;
}

const char *
mq_queue_path(const struct mq_queue *queue)
{
    return queue->path;
}

int
mq_queue_list(struct mq_queue *queue, GPtrArray *ids, GError **err)
{
    DIR *dir;
    struct dirent *de;
    int fd = openat(queue->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        g_set_error(err, MQ_ERROR, mq_error_from_errno(saved), "list %s: %s",
                    queue->path, g_strerror(saved));
        return -1;
    }
    while ((errno = 0, de = readdir(dir)) != NULL) {
        if (de->d_name[0] == 'q' && de->d_name[1] == 'f' && mq_fs_id_ok(de->d_name + 2))
            g_ptr_array_add(ids, g_strdup(de->d_name + 2));
    }
    closedir(dir);
    return 0;
}

int
mq_queue_stat(struct mq_queue *queue, const char *id, uint64_t *size_r, time_t *mtime_r)
{
    char name[MQ_ID_MAX + 3];
    struct stat st;
    uint64_t size;

    queue_name(name, sizeof(name), 'q', id);
    if (fstatat(queue->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -1;
    size = (uint64_t)st.st_size;
    *mtime_r = st.st_mtime;
    queue_name(name, sizeof(name), 'd', id);
    if (fstatat(queue->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        size += (uint64_t)st.st_size;
    *size_r = size;
    return 0;
}

static void
queue_entry_set_problem(struct mq_queue_entry *e, GError *problem)
{
    mq_qf_free(&e->qf);
    g_clear_pointer(&e->qf_raw, g_free);
    g_clear_pointer(&e->df, g_free);
    e->problem = problem;
}

void
mq_queue_set_outgoing(struct mq_queue *in, struct mq_queue *out)
{
    in->outgoing = out;
}

/*
 * How many links the df of id (st: its fstat) may have: one, plus those in
 * the outgoing queue made by mq_queue_stage_same_df(): dfX there, X being
 * id or id and a letter, the same file. One with its qfX is a result already
 * committed, which the write finds again as such. One without was staged by
 * a run that died before its commit, and goes here (with its tfX). A link
 * found nowhere else makes the df refused, as any df with two links was.
 */
static unsigned
queue_df_links(struct mq_queue *in, const char *id, const struct stat *st)
{
    struct mq_queue *out = in->outgoing;
    struct stat o;
    unsigned links = 1;

    if (out == NULL || !S_ISREG(st->st_mode) || st->st_nlink <= 1)
        return 1;
    for (int letter = -1; letter < 26; letter++) {
        char oid[MQ_ID_MAX + 2], name[MQ_ID_MAX + 3];

        if (letter >= 0 && strlen(id) + 1 > MQ_ID_MAX)
            break;
        g_strlcpy(oid, id, sizeof(oid));
        if (letter >= 0) {
            size_t n = strlen(oid);
            oid[n] = (char)('A' + letter);
            oid[n + 1] = '\0';
        }
        queue_name(name, sizeof(name), 'd', oid);
        if (fstatat(out->dirfd, name, &o, AT_SYMLINK_NOFOLLOW) < 0 || o.st_dev != st->st_dev
            || o.st_ino != st->st_ino)
            continue;
        queue_name(name, sizeof(name), 'q', oid);
        if (faccessat(out->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
            links++;
            continue;
        }
        queue_name(name, sizeof(name), 't', oid);
        unlinkat(out->dirfd, name, 0);
        queue_name(name, sizeof(name), 'd', oid);
        if (unlinkat(out->dirfd, name, 0) < 0) {
            links++;
            continue;
        }
        mq_log_info("%s: removed %s/%s, staged by a run that did not finish", id, out->path,
                    name);
    }
    return links;
}

static struct mq_queue_entry *
queue_claim(struct mq_queue *queue, const char *id, size_t max_size, bool parse, GError **err)
{
    struct mq_queue_entry *e;
    char name[MQ_ID_MAX + 3];
    struct stat st_fd, st_path;
    GError *problem = NULL;
    int df_fd = -1;
    bool df_stat_ok;

    e = g_new0(struct mq_queue_entry, 1);
    g_strlcpy(e->id, id, sizeof(e->id));
    queue_name(name, sizeof(name), 'q', id);
    /* O_NONBLOCK: a FIFO planted under a qf name must not hang us. */
    e->qf_fd = openat(queue->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (e->qf_fd < 0 && errno == ELOOP) {
        /* sendmail never makes one: somebody planted it. Hold the link
         * itself (rename never follows it); retrying would not help. */
        g_set_error(&problem, MQ_ERROR, MQ_ERROR_CORRUPT, "%s is a symbolic link", name);
        goto problem;
    }
    if (e->qf_fd < 0) {
        int saved = errno;
        g_set_error(err, MQ_ERROR, saved == ENOENT ? MQ_ERROR_TEMP : mq_error_from_errno(saved),
                    "%s: open %s: %s", id, name, g_strerror(saved));
        goto fail;
    }
    if (flock(e->qf_fd, LOCK_EX | LOCK_NB) < 0) {
        int saved = errno;
        g_set_error(err, MQ_ERROR, saved == EWOULDBLOCK ? MQ_ERROR_TEMP : MQ_ERROR_IO,
                    "%s: %s", id, saved == EWOULDBLOCK ? "locked by another process"
                                                       : g_strerror(saved));
        goto fail;
    }
    /* sendmail renames tfID over the placeholder qfID; if that happened
     * between our open and our flock we locked a file nobody sees any more. */
    if (fstat(e->qf_fd, &st_fd) < 0 ||
        fstatat(queue->dirfd, name, &st_path, AT_SYMLINK_NOFOLLOW) < 0 ||
        st_fd.st_ino != st_path.st_ino || st_fd.st_dev != st_path.st_dev) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP, "%s: qf file replaced while claiming", id);
        goto fail;
    }
    e->mtime = st_fd.st_mtime;
    if (S_ISREG(st_fd.st_mode) && st_fd.st_size == 0 &&
        time(NULL) - st_fd.st_mtime < QUEUE_PLACEHOLDER_GRACE) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP, "%s: qf file still empty", id);
        goto fail;
    }

    if (!parse) {
        g_set_error(&problem, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: claimed without reading it", id);
        goto problem;
    }
    if (mq_fs_read_fd(e->qf_fd, MQ_QF_MAX_SIZE, &e->qf_raw, &e->qf_len, &problem) < 0)
        goto problem;
    e->qf = mq_qf_parse(e->qf_raw, e->qf_len, &problem);
    if (e->qf == NULL)
        goto problem;

    queue_name(name, sizeof(name), 'd', id);
    df_fd = openat(queue->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (df_fd < 0) {
        int saved = errno;
        if (saved == ENOENT || saved == ELOOP) {
            g_set_error(&problem, MQ_ERROR, MQ_ERROR_CORRUPT, "data file %s: %s",
                        name, saved == ENOENT ? "missing" : "is a symbolic link");
            goto problem;
        }
        g_set_error(err, MQ_ERROR, mq_error_from_errno(saved), "%s: open %s: %s",
                    id, name, g_strerror(saved));
        goto fail;
    }
    e->have_df = true;
    /* One look at the file for both: its extra links, and whether it may
     * become our result (only one that looks as we would write it). */
    df_stat_ok = fstat(df_fd, &st_fd) == 0;
    if (mq_fs_read_fd_links(df_fd, max_size > e->qf_len ? max_size - e->qf_len : 0,
                            df_stat_ok ? queue_df_links(queue, id, &st_fd) : 1, &e->df,
                            &e->df_len, &problem) < 0)
        goto problem;
    if (df_stat_ok && S_ISREG(st_fd.st_mode) && st_fd.st_uid == geteuid()
        && (st_fd.st_mode & 07777) == 0600 && (uint64_t)st_fd.st_size == e->df_len) {
        e->df_linkable = true;
        e->df_dev = st_fd.st_dev;
        e->df_ino = st_fd.st_ino;
    }
    close(df_fd);
    return e;

problem:
    if (df_fd >= 0)
        close(df_fd);
    if (!e->have_df) {
        queue_name(name, sizeof(name), 'd', id);
        e->have_df = faccessat(queue->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
    }
    queue_entry_set_problem(e, problem);
    return e;

fail:
    if (df_fd >= 0)
        close(df_fd);
    mq_queue_entry_free(&e);
    return NULL;
}

struct mq_queue_entry *
mq_queue_claim(struct mq_queue *queue, const char *id, size_t max_size, GError **err)
{
    return queue_claim(queue, id, max_size, true, err);
}

struct mq_queue_entry *
mq_queue_claim_unread(struct mq_queue *queue, const char *id, GError **err)
{
    return queue_claim(queue, id, 0, false, err);
}

void
mq_queue_entry_free(struct mq_queue_entry **entry)
{
    struct mq_queue_entry *e = *entry;

    if (e == NULL)
        return;
    if (e->qf_fd >= 0)
        close(e->qf_fd);        /* drops the flock */
    mq_qf_free(&e->qf);
    g_free(e->qf_raw);
    g_free(e->df);
    g_clear_error(&e->problem);
    g_free(e);
    *entry = NULL;
}

const char *
mq_queue_entry_id(const struct mq_queue_entry *entry)
{
    return entry->id;
}

const GError *
mq_queue_entry_problem(const struct mq_queue_entry *entry)
{
    return entry->problem;
}

struct mq_qf *
mq_queue_entry_qf(struct mq_queue_entry *entry)
{
    return entry->qf;
}

const char *
mq_queue_entry_qf_raw(const struct mq_queue_entry *entry, size_t *len_r)
{
    *len_r = entry->qf_len;
    return entry->qf_raw;
}

const char *
mq_queue_entry_df(const struct mq_queue_entry *entry, size_t *len_r)
{
    *len_r = entry->df_len;
    return entry->df;
}

time_t
mq_queue_entry_mtime(const struct mq_queue_entry *entry)
{
    return entry->mtime;
}

/* Is outgoing qfID our own earlier result for this message? Same creation
 * time and sender: queue IDs embed time and process ID, so a different
 * message with the same ID, creation second and sender does not happen. */
static bool
queue_is_own_result(struct mq_queue *out, const char *qfname, const struct mq_qf *qf)
{
    char *buf = NULL;
    size_t len = 0;
    struct mq_qf *old = NULL;
    bool same = false;
    int fd = openat(out->dirfd, qfname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0)
        return false;
    if (mq_fs_read_fd(fd, MQ_QF_MAX_SIZE, &buf, &len, NULL) == 0 &&
        (old = mq_qf_parse(buf, len, NULL)) != NULL)
        same = mq_qf_ctime(old) == mq_qf_ctime(qf) &&
               strcmp(mq_qf_sender(old), mq_qf_sender(qf)) == 0;
    mq_qf_free(&old);
    g_free(buf);
    close(fd);
    return same;
}

/* Links the df of src (claimed from in) as dfname in out. True if done;
 * false if it cannot be (another file system, a df we would not have
 * written, a name replaced since the claim), and nothing is left. */
static bool
queue_link_df(struct mq_queue *out, const char *dfname, struct mq_queue *in,
              const struct mq_queue_entry *src)
{
    char name[MQ_ID_MAX + 3];
    struct stat st;

    /* The link delivers what the file holds then, not a copy of what was
     * scanned: that is the same only because the incoming queue is the
     * incoming sendmail's and ours, and sendmail never writes a queued df
     * again (the claim checked its size against what was read). */
    if (in == NULL || src == NULL || !src->df_linkable)
        return false;
    queue_name(name, sizeof(name), 'd', src->id);
    if (linkat(in->dirfd, name, out->dirfd, dfname, 0) < 0)
        return false;       /* EXDEV above all; the bytes are written instead */
    if (fstatat(out->dirfd, dfname, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != src->df_dev
        || st.st_ino != src->df_ino) {
        unlinkat(out->dirfd, dfname, 0);
        return false;
    }
    return true;
}

/* mq_queue_write(), or with stage mq_queue_stage(): the same ID choice and
 * files, without the fsyncs and the rename. With src (staging only), its
 * df is linked if it can be; see mq_queue_stage_same_df(). */
static int
queue_write(struct mq_queue *out, const char *id, const struct mq_qf *qf, const void *df,
            size_t df_len, bool stage, struct mq_queue *in, const struct mq_queue_entry *src,
            char **id_r, gboolean *dup_r, GError **err)
{
    char newid[MQ_ID_MAX + 1], qfname[MQ_ID_MAX + 3], dfname[MQ_ID_MAX + 3],
         tfname[MQ_ID_MAX + 3];
    GString *text = NULL;
    int rc = -1;

    *dup_r = FALSE;
    *id_r = NULL;
    g_strlcpy(newid, id, sizeof(newid));
    for (unsigned attempt = 0;; attempt++) {
        queue_name(qfname, sizeof(qfname), 'q', newid);
        if (faccessat(out->dirfd, qfname, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
            break;
        if (queue_is_own_result(out, qfname, qf)) {
            *dup_r = TRUE;
            *id_r = g_strdup(newid);
            return 0;
        }
        if (attempt >= 26 || strlen(id) + 1 > MQ_ID_MAX) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_IO, "%s: no free queue ID in %s", id, out->path);
            return -1;
        }
        g_snprintf(newid, sizeof(newid), "%s%c", id, 'A' + attempt);
    }
    queue_name(dfname, sizeof(dfname), 'd', newid);
    queue_name(tfname, sizeof(tfname), 't', newid);

    /* A df without its qf can only be ours, from a run that died between
     * the two writes (sendmail removes a df before its qf). */
    if (unlinkat(out->dirfd, dfname, 0) < 0 && errno != ENOENT) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "%s: unlink stale %s: %s",
                    id, dfname, g_strerror(errno));
        return -1;
    }
    if (!queue_link_df(out, dfname, in, src)
        && mq_fs_write_new(out->dirfd, dfname, df, df_len,
                           stage ? MQ_FS_WRITEBACK : MQ_FS_SYNC, err) < 0)
        return -1;
    text = g_string_sized_new(4096);
    mq_qf_format(qf, MQ_QF_FORMAT_NEW_ENTRY, text);
    /* A tf is a few KB: starting its writeback alone costs more than the
     * commit's syncfs takes to write it with the others. */
    if ((stage ? mq_fs_write_temp(out->dirfd, tfname, text->str, text->len, 0, err)
               : mq_fs_write_atomic(out->dirfd, tfname, qfname, text->str, text->len, err)) < 0) {
        unlinkat(out->dirfd, dfname, 0);
        goto done;
    }
    *id_r = g_strdup(newid);
    rc = 0;
done:
    g_string_free(text, TRUE);
    return rc;
}

int
mq_queue_write(struct mq_queue *out, const char *id, const struct mq_qf *qf,
               const void *df, size_t df_len, char **id_r, gboolean *dup_r,
               GError **err)
{
    return queue_write(out, id, qf, df, df_len, false, NULL, NULL, id_r, dup_r, err);
}

int
mq_queue_stage(struct mq_queue *out, const char *id, const struct mq_qf *qf,
               const void *df, size_t df_len, char **id_r, gboolean *dup_r,
               GError **err)
{
    return queue_write(out, id, qf, df, df_len, true, NULL, NULL, id_r, dup_r, err);
}

int
mq_queue_stage_same_df(struct mq_queue *out, const char *id, const struct mq_qf *qf,
                       struct mq_queue *in, const struct mq_queue_entry *entry, char **id_r,
                       gboolean *dup_r, GError **err)
{
    if (entry == NULL || entry->df == NULL)
        mq_log_panic("mq_queue_stage_same_df: an entry without its df");
    return queue_write(out, id, qf, entry->df, entry->df_len, true, in, entry, id_r, dup_r,
                       err);
}

void
mq_queue_unstage(struct mq_queue *out, const char *id)
{
    char name[MQ_ID_MAX + 3];

    queue_name(name, sizeof(name), 't', id);
    unlinkat(out->dirfd, name, 0);
    queue_name(name, sizeof(name), 'd', id);
    unlinkat(out->dirfd, name, 0);
}

/* Fails staged entry id: unstages it, keeps the first error. */
static void
queue_commit_fail(struct mq_queue *out, const char *id, bool *failed, GError **first,
                  GError *error)
{
    mq_queue_unstage(out, id);
    *failed = true;
    if (*first == NULL)
        *first = error;
    else
        g_error_free(error);
}

int
mq_queue_commit(struct mq_queue *out, const char *const *ids, size_t n, unsigned flags,
                bool *failed_r, GError **err)
{
    char name[MQ_ID_MAX + 3], qfname[MQ_ID_MAX + 3];
    GError *first = NULL, *error = NULL;

    /* The data first: every df and tf on disk before any qf exists. */
    for (size_t i = 0; i < n; i++)
        failed_r[i] = false;
    if ((flags & (MQ_QUEUE_SYNCFS | MQ_QUEUE_SYNCED)) == MQ_QUEUE_SYNCFS
        && mq_fs_syncfs(out->dirfd, &error) < 0) {
        g_prefix_error(&error, "%s: ", out->path);
        for (size_t i = 0; i < n; i++)
            queue_commit_fail(out, ids[i], &failed_r[i], &first, g_error_copy(error));
        g_clear_error(&error);
    }
    for (size_t i = 0; i < n && !(flags & (MQ_QUEUE_SYNCFS | MQ_QUEUE_SYNCED)); i++) {
        queue_name(name, sizeof(name), 'd', ids[i]);
        if (mq_fs_fsync_at(out->dirfd, name, &error) == 0) {
            queue_name(name, sizeof(name), 't', ids[i]);
            mq_fs_fsync_at(out->dirfd, name, &error);
        }
        if (error != NULL) {
            g_prefix_error(&error, "%s: ", ids[i]);
            queue_commit_fail(out, ids[i], &failed_r[i], &first, error);
            error = NULL;
        }
    }
    /* Then the names, as sendmail renames tfID to qfID; never a qf without
     * its df (syncfs() opened neither). */
    for (size_t i = 0; i < n; i++) {
        if (failed_r[i])
            continue;
        queue_name(name, sizeof(name), 'd', ids[i]);
        if (faccessat(out->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
            int saved = errno;
            queue_commit_fail(out, ids[i], &failed_r[i], &first,
                              g_error_new(MQ_ERROR, mq_error_from_errno(saved), "%s: %s: %s",
                                          ids[i], name, g_strerror(saved)));
            continue;
        }
        queue_name(name, sizeof(name), 't', ids[i]);
        queue_name(qfname, sizeof(qfname), 'q', ids[i]);
        if (renameat2(out->dirfd, name, out->dirfd, qfname, RENAME_NOREPLACE) < 0) {
            int saved = errno;
            queue_commit_fail(out, ids[i], &failed_r[i], &first,
                              g_error_new(MQ_ERROR, mq_error_from_errno(saved),
                                          "%s: rename %s to %s: %s", ids[i], name, qfname,
                                          g_strerror(saved)));
        }
    }
    /* One directory fsync makes every new name durable. Without it none is
     * known to be: take them all back, so that no original is removed. */
    if (mq_fs_fsync_dir(out->dirfd, &error) < 0) {
        for (size_t i = 0; i < n; i++) {
            if (failed_r[i])
                continue;
            queue_name(qfname, sizeof(qfname), 'q', ids[i]);
            unlinkat(out->dirfd, qfname, 0);
            queue_name(name, sizeof(name), 'd', ids[i]);
            unlinkat(out->dirfd, name, 0);
            failed_r[i] = true;
        }
        g_prefix_error(&error, "%s: ", out->path);
        if (first == NULL)
            first = error;
        else
            g_error_free(error);
    }
    if (first != NULL) {
        g_propagate_error(err, first);
        return -1;
    }
    return 0;
}

int
mq_queue_remove(struct mq_queue *queue, struct mq_queue_entry *entry, GError **err)
{
    return mq_queue_remove_many(queue, &entry, 1, err);
}

int
mq_queue_remove_many(struct mq_queue *queue, struct mq_queue_entry *const *entries, size_t n,
                     GError **err)
{
    char name[MQ_ID_MAX + 3];
    GError *first = NULL;

    for (size_t i = 0; i < n; i++) {
        const char *id = entries[i]->id;

        queue_name(name, sizeof(name), 'q', id);
        if (unlinkat(queue->dirfd, name, 0) < 0 && errno != ENOENT) {
            if (first == NULL)
                g_set_error(&first, MQ_ERROR, mq_error_from_errno(errno), "%s: unlink %s: %s",
                            id, name, g_strerror(errno));
            continue;
        }
        queue_name(name, sizeof(name), 'd', id);
        if (unlinkat(queue->dirfd, name, 0) < 0 && errno != ENOENT)
            mq_log_warn("%s: unlink %s: %s (the message itself is done)", id, name,
                        g_strerror(errno));
    }
    if (mq_fs_fsync_dir(queue->dirfd, first == NULL ? err : NULL) < 0 || first != NULL) {
        if (first != NULL)
            g_propagate_error(err, first);
        return -1;
    }
    return 0;
}

int
mq_queue_hold(struct mq_queue *queue, struct mq_queue_entry *entry,
              const char *hold_path, const char *reason, GError **err)
{
    char src[MQ_ID_MAX + 3], base[MQ_ID_MAX + 8], dst[MQ_ID_MAX + 16];
    char tmp[MQ_ID_MAX + 24];
    GString *why = NULL;
    char *clean = NULL;
    bool exists = false;
    int holdfd, rc = -1;

    holdfd = mq_fs_open_dir(hold_path, err);
    if (holdfd < 0)
        return -1;

    /* Pick a base name free for all three files. */
    for (unsigned n = 0;; n++) {
        if (n == 0)
            g_strlcpy(base, entry->id, sizeof(base));
        else
            g_snprintf(base, sizeof(base), "%s-%u", entry->id, n);
        g_snprintf(dst, sizeof(dst), "qf%s", base);
        if (faccessat(holdfd, dst, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
            break;
        if (n >= 999) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_IO, "%s: no free name in %s", entry->id, hold_path);
            goto done;
        }
    }

    clean = mq_log_sanitize(reason, 1024);
    why = g_string_new(NULL);
    g_string_append_printf(why, "id: %s\nreason: %s\ntime: %lld\nend\n", entry->id, clean,
                           (long long)time(NULL));
    g_snprintf(dst, sizeof(dst), "%s.reason", base);
    g_snprintf(tmp, sizeof(tmp), ".%s.reason.tmp", base);
    if (mq_fs_write_atomic(holdfd, tmp, dst, why->str, why->len, err) < 0)
        goto done;

    /* df first: a qf left behind without its df is held on the next pass. */
    if (entry->have_df) {
        queue_name(src, sizeof(src), 'd', entry->id);
        g_snprintf(dst, sizeof(dst), "df%s", base);
        if (mq_fs_move(queue->dirfd, src, holdfd, dst, &exists, err) < 0)
            goto done;
    }
    queue_name(src, sizeof(src), 'q', entry->id);
    g_snprintf(dst, sizeof(dst), "qf%s", base);
    if (mq_fs_move(queue->dirfd, src, holdfd, dst, &exists, err) < 0)
        goto done;
    rc = 0;
done:
    if (why != NULL)
        g_string_free(why, TRUE);
    g_free(clean);
    close(holdfd);
    return rc;
}
