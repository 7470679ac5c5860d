#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mqscan/attempts.h"
#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"

/* A record file is one fixed-width line, so rewriting it in place never
 * needs a truncate that a crash could split from the write. */
#define ATTEMPTS_RECORD_LEN 11          /* "%10u\n" */
#define ATTEMPTS_MAX 1000000u

/* A slot line: the ID left-aligned in MQ_ID_MAX columns, a blank, the
 * count as in a record, so every line has the same length and one pwrite
 * replaces the last. An idle slot is blanks and a newline. */
#define ATTEMPTS_SLOT_LEN (MQ_ID_MAX + 1 + ATTEMPTS_RECORD_LEN)
#define ATTEMPTS_SLOT_PREFIX ".slot-"

/* What is known of one ID: its record file's count (plus one while an
 * attempt is in progress), and the slot of that attempt. */
struct attempts_entry {
    unsigned count;
    bool on_disk;               /* a record file exists */
    int slot;                   /* the slot's fd while in progress, else -1 */
};

struct mq_attempts {
    int dirfd;
    char *path;
    GMutex lock;                /* guards what follows */
    GHashTable *entries;        /* ID -> struct attempts_entry *, owned */
    GArray *idle_slots;         /* of int: slot fds free for the next attempt */
    GArray *all_slots;          /* of int: every slot fd, for closing */
};

/* Reads the count from an open record; 0 if it is empty or not ours. */
static unsigned
attempts_read(int fd)
{
    char buf[ATTEMPTS_RECORD_LEN + 1];
    ssize_t n = pread(fd, buf, ATTEMPTS_RECORD_LEN, 0);
    uint64_t v;

    if (n != ATTEMPTS_RECORD_LEN || buf[ATTEMPTS_RECORD_LEN - 1] != '\n')
        return 0;
    buf[ATTEMPTS_RECORD_LEN - 1] = '\0';
    g_strchug(buf);
    return mq_fs_parse_uint(buf, 0, ATTEMPTS_MAX, &v) ? (unsigned)v : 0;
}

/* Writes count into the record file of id, creating it. */
static void
attempts_write_record(struct mq_attempts *a, const char *id, unsigned count)
{
    char buf[ATTEMPTS_RECORD_LEN + 1];
    int fd = openat(a->dirfd, id, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

    g_snprintf(buf, sizeof(buf), "%10u\n", MIN(count, ATTEMPTS_MAX));
    if (fd < 0 || pwrite(fd, buf, ATTEMPTS_RECORD_LEN, 0) != ATTEMPTS_RECORD_LEN)
        mq_log_warn("%s: cannot record its unfinished attempts in %s: %s", id, a->path,
                    g_strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* Parses a slot line into id_r (MQ_ID_MAX + 1 bytes) and its count.
 * False for an idle slot or anything that is not a slot line. */
static bool
attempts_parse_slot(const char *line, size_t len, char *id_r, unsigned *count_r)
{
    char buf[ATTEMPTS_SLOT_LEN + 1];
    char *blank;
    uint64_t v;

    if (len != ATTEMPTS_SLOT_LEN || line[len - 1] != '\n')
        return false;
    memcpy(buf, line, len - 1);
    buf[len - 1] = '\0';
    blank = strchr(buf, ' ');
    if (blank == NULL || blank == buf)
        return false;
    *blank = '\0';
    g_strchug(blank + 1);
    if (!mq_fs_id_ok(buf) || !mq_fs_parse_uint(blank + 1, 1, ATTEMPTS_MAX, &v))
        return false;
    memcpy(id_r, buf, (size_t)(blank - buf) + 1);
    *count_r = (unsigned)v;
    return true;
}

/*
 * The slots left by the last process: a line in one is an attempt that
 * never ended, and its count (already one more than the record file said)
 * goes into the record file. The slot files are removed; this process makes
 * its own. Called before anything else uses the directory.
 */
static void
attempts_recover_slots(struct mq_attempts *a, DIR *dir)
{
    GHashTable *left = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    struct dirent *de;
    GHashTableIter it;
    gpointer key, value;

    rewinddir(dir);
    while ((de = readdir(dir)) != NULL) {
        char line[ATTEMPTS_SLOT_LEN], id[MQ_ID_MAX + 1];
        unsigned count;
        ssize_t n;
        int fd;

        if (!g_str_has_prefix(de->d_name, ATTEMPTS_SLOT_PREFIX))
            continue;
        fd = openat(a->dirfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            n = pread(fd, line, sizeof(line), 0);
            close(fd);
            if (n > 0 && attempts_parse_slot(line, (size_t)n, id, &count)
                && count > GPOINTER_TO_UINT(g_hash_table_lookup(left, id)))
                g_hash_table_insert(left, g_strdup(id), GUINT_TO_POINTER(count));
        }
        if (unlinkat(a->dirfd, de->d_name, 0) < 0 && errno != ENOENT)
            mq_log_warn("%s/%s: %s", a->path, de->d_name, g_strerror(errno));
    }
    g_hash_table_iter_init(&it, left);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        unsigned count = GPOINTER_TO_UINT(value);
        int fd = openat(a->dirfd, key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

        if (fd >= 0) {
            count = MAX(count, attempts_read(fd));
            close(fd);
        }
        attempts_write_record(a, key, count);
    }
    g_hash_table_destroy(left);
}

/* Reads every record file into a->entries. */
static void
attempts_load_records(struct mq_attempts *a, DIR *dir)
{
    struct dirent *de;

    rewinddir(dir);
    while ((de = readdir(dir)) != NULL) {
        struct attempts_entry *e;
        unsigned count;
        int fd;

        if (!mq_fs_id_ok(de->d_name))
            continue;
        fd = openat(a->dirfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        count = attempts_read(fd);
        close(fd);
        e = g_new(struct attempts_entry, 1);
        e->count = count;
        e->on_disk = true;
        e->slot = -1;
        g_hash_table_replace(a->entries, g_strdup(de->d_name), e);
    }
}

struct mq_attempts *
mq_attempts_open(const char *path, GError **err)
{
    struct mq_attempts *a;
    DIR *dir;
    int fd;

    if (mq_fs_mkdir_p(path, 0700, err) < 0 || (fd = mq_fs_open_dir(path, err)) < 0)
        return NULL;
    a = g_new0(struct mq_attempts, 1);
    a->dirfd = fd;
    a->path = g_strdup(path);
    g_mutex_init(&a->lock);
    a->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    a->idle_slots = g_array_new(FALSE, FALSE, sizeof(int));
    a->all_slots = g_array_new(FALSE, FALSE, sizeof(int));
    if ((fd = dup(a->dirfd)) < 0 || (dir = fdopendir(fd)) == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_IO, "%s: %s", path, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        mq_attempts_free(&a);
        return NULL;
    }
    attempts_recover_slots(a, dir);
    attempts_load_records(a, dir);
    closedir(dir);
    return a;
}

void
mq_attempts_free(struct mq_attempts **attempts)
{
    struct mq_attempts *a = *attempts;

    if (a == NULL)
        return;
    for (guint i = 0; i < a->all_slots->len; i++)
        close(g_array_index(a->all_slots, int, i));
    g_array_free(a->all_slots, TRUE);
    g_array_free(a->idle_slots, TRUE);
    g_hash_table_destroy(a->entries);
    g_mutex_clear(&a->lock);
    close(a->dirfd);
    g_free(a->path);
    g_free(a);
    *attempts = NULL;
}

/* An idle slot, or a new one. Called with the lock held. -1 if none can be
 * made (logged). */
static int
attempts_take_slot(struct mq_attempts *a)
{
    char name[sizeof(ATTEMPTS_SLOT_PREFIX) + 16];
    int fd;

    if (a->idle_slots->len > 0) {
        fd = g_array_index(a->idle_slots, int, a->idle_slots->len - 1);
        g_array_set_size(a->idle_slots, a->idle_slots->len - 1);
        return fd;
    }
    g_snprintf(name, sizeof(name), ATTEMPTS_SLOT_PREFIX "%u", a->all_slots->len);
    fd = openat(a->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        mq_log_warn("cannot make the attempt slot %s/%s: %s", a->path, name, g_strerror(errno));
        return -1;
    }
    g_array_append_val(a->all_slots, fd);
    return fd;
}

static void
attempts_write_slot(struct mq_attempts *a, int fd, const char *id, unsigned count)
{
    char line[ATTEMPTS_SLOT_LEN + 1];

    if (id != NULL)
        g_snprintf(line, sizeof(line), "%-*s %10u\n", MQ_ID_MAX, id, MIN(count, ATTEMPTS_MAX));
    else
        g_snprintf(line, sizeof(line), "%*s\n", ATTEMPTS_SLOT_LEN - 1, "");
    if (pwrite(fd, line, ATTEMPTS_SLOT_LEN, 0) != ATTEMPTS_SLOT_LEN)
        mq_log_warn("%s: cannot record the attempt in %s: %s", id != NULL ? id : "-", a->path,
                    g_strerror(errno));
}

unsigned
mq_attempts_begin(struct mq_attempts *a, const char *id)
{
    struct attempts_entry *e;
    unsigned before;
    int fd;

    if (!mq_fs_id_ok(id))
        return 0;
    g_mutex_lock(&a->lock);
    e = g_hash_table_lookup(a->entries, id);
    if (e == NULL) {
        e = g_new(struct attempts_entry, 1);
        e->count = 0;
        e->on_disk = false;
        e->slot = -1;
        g_hash_table_insert(a->entries, g_strdup(id), e);
    }
    before = e->count;
    e->count = MIN(before + 1, ATTEMPTS_MAX);
    if (e->slot < 0)
        e->slot = attempts_take_slot(a);
    fd = e->slot;
    g_mutex_unlock(&a->lock);
    /* Outside the lock: the slot is this attempt's alone. */
    if (fd >= 0)
        attempts_write_slot(a, fd, id, before + 1);
    return before;
}

void
mq_attempts_end(struct mq_attempts *a, const char *id)
{
    struct attempts_entry *e;
    bool on_disk;
    int fd;

    if (!mq_fs_id_ok(id))
        return;
    g_mutex_lock(&a->lock);
    e = g_hash_table_lookup(a->entries, id);
    if (e == NULL) {
        g_mutex_unlock(&a->lock);
        return;
    }
    fd = e->slot;
    on_disk = e->on_disk;
    g_hash_table_remove(a->entries, id);
    g_mutex_unlock(&a->lock);
    /* The slot first: a crash between the two then leaves the old record,
     * not this finished attempt counted as one more. */
    if (fd >= 0) {
        attempts_write_slot(a, fd, NULL, 0);
        g_mutex_lock(&a->lock);
        g_array_append_val(a->idle_slots, fd);
        g_mutex_unlock(&a->lock);
    }
    if (on_disk && unlinkat(a->dirfd, id, 0) < 0 && errno != ENOENT)
        mq_log_warn("%s: cannot remove its record from %s: %s", id, a->path, g_strerror(errno));
}

unsigned
mq_attempts_count(struct mq_attempts *a, const char *id)
{
    const struct attempts_entry *e;
    unsigned n;

    if (!mq_fs_id_ok(id))
        return 0;
    g_mutex_lock(&a->lock);
    e = g_hash_table_lookup(a->entries, id);
    n = e != NULL ? e->count : 0;
    g_mutex_unlock(&a->lock);
    return n;
}

void
mq_attempts_sync(struct mq_attempts *a, GHashTable *present)
{
    GPtrArray *gone = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer key, value;
    int fd = dup(a->dirfd);
    DIR *dir;
    struct dirent *de;

    /* What is known in memory ... */
    g_mutex_lock(&a->lock);
    g_hash_table_iter_init(&it, a->entries);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        const struct attempts_entry *e = value;
        if (e->slot < 0 && !g_hash_table_contains(present, key)) {
            g_ptr_array_add(gone, g_strdup(key));
            g_hash_table_iter_remove(&it);
        }
    }
    g_mutex_unlock(&a->lock);
    for (guint i = 0; i < gone->len; i++) {
        const char *id = g_ptr_array_index(gone, i);
        if (unlinkat(a->dirfd, id, 0) < 0 && errno != ENOENT)
            mq_log_warn("%s/%s: %s", a->path, id, g_strerror(errno));
    }
    g_ptr_array_unref(gone);

    /* ... and record files not known, such as ones an admin wrote. */
    if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
        mq_log_warn("%s: %s", a->path, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    rewinddir(dir);
    while ((de = readdir(dir)) != NULL) {
        bool known;

        if (de->d_name[0] == '.' || g_hash_table_contains(present, de->d_name))
            continue;
        g_mutex_lock(&a->lock);
        known = g_hash_table_contains(a->entries, de->d_name);
        g_mutex_unlock(&a->lock);
        if (!known && unlinkat(a->dirfd, de->d_name, 0) < 0 && errno != ENOENT)
            mq_log_warn("%s/%s: %s", a->path, de->d_name, g_strerror(errno));
    }
    closedir(dir);
}
