#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mqscan/attempts.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"

/* A record is one fixed-width line, so rewriting it in place never needs a
 * truncate that a crash could split from the write. */
#define ATTEMPTS_RECORD_LEN 11          /* "%10u\n" */
#define ATTEMPTS_MAX 1000000u

struct mq_attempts {
    int dirfd;
    char *path;
};

struct mq_attempts *
mq_attempts_open(const char *path, GError **err)
{
    struct mq_attempts *a;
    int fd;

    if (mq_fs_mkdir_p(path, 0700, err) < 0 || (fd = mq_fs_open_dir(path, err)) < 0)
        return NULL;
    a = g_new0(struct mq_attempts, 1);
    a->dirfd = fd;
    a->path = g_strdup(path);
    return a;
}

void
mq_attempts_free(struct mq_attempts **attempts)
{
    struct mq_attempts *a = *attempts;

    if (a == NULL)
        return;
    close(a->dirfd);
    g_free(a->path);
    g_free(a);
    *attempts = NULL;
}

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

unsigned
mq_attempts_begin(struct mq_attempts *a, const char *id)
{
    char buf[ATTEMPTS_RECORD_LEN + 1];
    unsigned before;
    int fd;

    if (!mq_fs_id_ok(id))
        return 0;
    fd = openat(a->dirfd, id, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        mq_log_warn("%s: cannot record the attempt in %s: %s", id, a->path, g_strerror(errno));
        return 0;
    }
    before = attempts_read(fd);
    g_snprintf(buf, sizeof(buf), "%10u\n", MIN(before + 1, ATTEMPTS_MAX));
    if (pwrite(fd, buf, ATTEMPTS_RECORD_LEN, 0) != ATTEMPTS_RECORD_LEN)
        mq_log_warn("%s: cannot record the attempt in %s: %s", id, a->path, g_strerror(errno));
    close(fd);
    return before;
}

void
mq_attempts_end(struct mq_attempts *a, const char *id)
{
    if (mq_fs_id_ok(id) && unlinkat(a->dirfd, id, 0) < 0 && errno != ENOENT)
        mq_log_warn("%s: cannot remove its record from %s: %s", id, a->path, g_strerror(errno));
}

unsigned
mq_attempts_count(struct mq_attempts *a, const char *id)
{
    unsigned n;
    int fd;

    if (!mq_fs_id_ok(id))
        return 0;
    fd = openat(a->dirfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = attempts_read(fd);
    close(fd);
    return n;
}

void
mq_attempts_sync(struct mq_attempts *a, GHashTable *present)
{
    int fd = dup(a->dirfd);
    DIR *dir;
    struct dirent *de;

    if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
        mq_log_warn("%s: %s", a->path, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    rewinddir(dir);
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.' || g_hash_table_contains(present, de->d_name))
            continue;
        if (unlinkat(a->dirfd, de->d_name, 0) < 0 && errno != ENOENT)
            mq_log_warn("%s/%s: %s", a->path, de->d_name, g_strerror(errno));
    }
    closedir(dir);
}
