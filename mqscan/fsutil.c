#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"

/* Per thread, so that a worker can tell its own fsync time from the
 * others'. */
static _Thread_local uint64_t fs_sync_us;

/* fsync(), or with whole_fs syncfs(), timed. */
static int
fs_sync(int fd, bool whole_fs)
{
    gint64 start = g_get_monotonic_time();
    int rc = whole_fs ? syncfs(fd) : fsync(fd);
    int saved = errno;

    fs_sync_us += (uint64_t)(g_get_monotonic_time() - start);
    errno = saved;
    return rc;
}

static int
fs_fsync(int fd)
{
    return fs_sync(fd, false);
}

uint64_t
mq_fs_sync_us(void)
{
    return fs_sync_us;
}

static int
fs_fail(GError **err, int errnum, const char *what, const char *name)
{
    g_set_error(err, MQ_ERROR, mq_error_from_errno(errnum), "%s %s: %s",
                what, name, g_strerror(errnum));
    return -1;
}

int
mq_fs_open_dir(const char *path, GError **err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fs_fail(err, errno, "open directory", path);
    return fd;
}

static int
fs_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int
mq_fs_write_new(int dirfd, const char *name, const void *buf, size_t len,
                unsigned flags, GError **err)
{
    int fd, saved;

    fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fs_fail(err, errno, "create", name);
    if (fs_write_all(fd, buf, len) < 0 || ((flags & MQ_FS_SYNC) && fs_fsync(fd) < 0)) {
        saved = errno;
        close(fd);
        goto fail;
    }
    /* Only a hint: a failure here shows again at the fsync that matters. */
    if (flags & MQ_FS_WRITEBACK)
        sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (close(fd) < 0) {
        saved = errno;
        goto fail;
    }
    return 0;

fail:
    unlinkat(dirfd, name, 0);
    return fs_fail(err, saved, "write", name);
}

int
mq_fs_fsync_at(int dirfd, const char *name, GError **err)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return fs_fail(err, errno, "open", name);
    if (fs_fsync(fd) < 0)
        rc = fs_fail(err, errno, "fsync", name);
    close(fd);
    return rc;
}

int
mq_fs_fsync_dir(int dirfd, GError **err)
{
    if (fs_fsync(dirfd) < 0)
        return fs_fail(err, errno, "fsync", "directory");
    return 0;
}

int
mq_fs_syncfs(int fd, GError **err)
{
    if (fs_sync(fd, true) < 0)
        return fs_fail(err, errno, "syncfs", "file system");
    return 0;
}

bool
mq_fs_same_fs(const char *a, const char *b)
{
    struct stat sa, sb;

    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev;
}

int
mq_fs_write_temp(int dirfd, const char *tmpname, const void *buf, size_t len,
                 unsigned flags, GError **err)
{
    /* A stale temp from a crash is ours to replace: nobody reads temp names. */
    if (unlinkat(dirfd, tmpname, 0) < 0 && errno != ENOENT)
        return fs_fail(err, errno, "unlink stale", tmpname);
    return mq_fs_write_new(dirfd, tmpname, buf, len, flags, err);
}

int
mq_fs_write_atomic(int dirfd, const char *tmpname, const char *name,
                   const void *buf, size_t len, GError **err)
{
    if (mq_fs_write_temp(dirfd, tmpname, buf, len, MQ_FS_SYNC, err) < 0)
        return -1;
    if (renameat(dirfd, tmpname, dirfd, name) < 0) {
        int saved = errno;
        unlinkat(dirfd, tmpname, 0);
        return fs_fail(err, saved, "rename to", name);
    }
    return mq_fs_fsync_dir(dirfd, err);
}

int
mq_fs_read_fd(int fd, size_t max_len, char **buf_r, size_t *len_r, GError **err)
{
    return mq_fs_read_fd_links(fd, max_len, 1, buf_r, len_r, err);
}

int
mq_fs_read_fd_links(int fd, size_t max_len, unsigned links, char **buf_r, size_t *len_r,
                    GError **err)
{
    struct stat st;
    char *buf;
    size_t len, done = 0;

    if (fstat(fd, &st) < 0)
        return fs_fail(err, errno, "fstat", "file");
    if (!S_ISREG(st.st_mode) || st.st_nlink != links) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                    "not a regular file with %s (mode %o, %lu links)",
                    links == 1 ? "one link" : "the links expected",
                    (unsigned)st.st_mode, (unsigned long)st.st_nlink);
        return -1;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > max_len) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT, "file size %lld over the limit of %zu bytes",
                    (long long)st.st_size, max_len);
        return -1;
    }
    len = (size_t)st.st_size;
    buf = g_malloc(len + 1);
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            g_free(buf);
            return fs_fail(err, saved, "read", "file");
        }
        if (n == 0)
            break;   /* truncated under us: use what is there, the parser checks it */
        done += (size_t)n;
    }
    buf[done] = '\0';
    *buf_r = buf;
    *len_r = done;
    return 0;
}

static int
fs_copy_durable(int srcdir, const char *src, int dstdir, const char *dst, GError **err)
{
    char *buf = NULL;
    size_t len = 0;
    int fd, rc = -1;

    fd = openat(srcdir, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fs_fail(err, errno, "open", src);
    if (mq_fs_read_fd(fd, G_MAXSIZE / 2, &buf, &len, err) < 0)
        goto done;
    if (mq_fs_write_new(dstdir, dst, buf, len, MQ_FS_SYNC, err) < 0)
        goto done;
    rc = 0;
done:
    g_free(buf);
    close(fd);
    return rc;
}

int
mq_fs_move(int srcdir, const char *src, int dstdir, const char *dst,
           bool *exists_r, GError **err)
{
    *exists_r = false;
    if (renameat2(srcdir, src, dstdir, dst, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST) {
            *exists_r = true;
            return fs_fail(err, errno, "move to", dst);
        }
        if (errno != EXDEV)
            return fs_fail(err, errno, "move", src);
        if (faccessat(dstdir, dst, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
            *exists_r = true;
            return fs_fail(err, EEXIST, "move to", dst);
        }
        if (fs_copy_durable(srcdir, src, dstdir, dst, err) < 0)
            return -1;
        if (mq_fs_fsync_dir(dstdir, err) < 0)
            return -1;
        if (unlinkat(srcdir, src, 0) < 0)
            return fs_fail(err, errno, "unlink", src);
        return mq_fs_fsync_dir(srcdir, err);
    }
    if (mq_fs_fsync_dir(dstdir, err) < 0)
        return -1;
    return srcdir == dstdir ? 0 : mq_fs_fsync_dir(srcdir, err);
}

int
mq_fs_mkdir_p(const char *path, mode_t mode, GError **err)
{
    if (g_mkdir_with_parents(path, (int)mode) < 0)
        return fs_fail(err, errno, "mkdir", path);
    return 0;
}

bool
mq_fs_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *value_r)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned d;
        if (*s < '0' || *s > '9')
            return false;
        d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return false;
    *value_r = v;
    return true;
}

bool
mq_fs_id_ok(const char *id)
{
    size_t n = 0;

    if (id == NULL)
        return false;
    for (; id[n] != '\0'; n++) {
        if (n >= MQ_ID_MAX || !g_ascii_isalnum(id[n]))
            return false;
    }
    return n > 0;
}
