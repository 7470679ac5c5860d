/* fsutil - durable file writes, checked opens, bounded number parsing.
 *
 * Public functions: mq_fs_open_dir(), mq_fs_write_new(), mq_fs_write_temp(),
 * mq_fs_write_atomic(), mq_fs_fsync_at(), mq_fs_fsync_dir(), mq_fs_syncfs(),
 * mq_fs_same_fs(), mq_fs_read_fd(), mq_fs_move(), mq_fs_mkdir_p(),
 * mq_fs_parse_uint(), mq_fs_id_ok(), mq_fs_sync_us().
 *
 * Every file mqscan writes goes through mq_fs_write_new() (a file that is not
 * visible to anyone until renamed, or whose name is meaningless until another
 * file appears) or mq_fs_write_atomic() (temp, fsync, rename, fsync dir).
 * A caller that makes many files durable together (a batch of queue
 * entries) takes the same steps itself: mq_fs_write_temp() with
 * MQ_FS_WRITEBACK for each file, mq_fs_fsync_at() for each (or one
 * mq_fs_syncfs() for them all), the renames, and one mq_fs_fsync_dir().
 * Files are created 0600 with O_EXCL|O_NOFOLLOW; names are never taken from
 * message data, only from validated queue IDs and generated names.
 *
 * DIAGNOSTICS
 * Failures are returned with a GError in the MQ_ERROR domain; ENOSPC and the
 * like are MQ_ERROR_TEMP. A failed write leaves no file behind.
 */
#ifndef MQSCAN_FSUTIL_H
#define MQSCAN_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>

/* Longest queue ID or generated name component accepted anywhere. */
#define MQ_ID_MAX 64

enum mq_fs_flags {
    MQ_FS_SYNC = 1 << 0,        /* fsync the file before closing it */
    MQ_FS_WRITEBACK = 1 << 1,   /* start writing it back, do not wait: an
                                   fsync later (mq_fs_fsync_at()) is quick */
};

/* Opens a directory (O_DIRECTORY|O_CLOEXEC). Returns the fd or -1. */
int mq_fs_open_dir(const char *path, GError **err);

/* Creates dirfd/name exclusively (mode 0600, O_NOFOLLOW), writes len bytes
 * of buf, fsyncs when flags has MQ_FS_SYNC, closes and checks the close.
 * On failure the file is unlinked. Returns 0 or -1. */
int mq_fs_write_new(int dirfd, const char *name, const void *buf, size_t len,
                    unsigned flags, GError **err);

/* The first half of the recipe: writes tmpname (replacing a stale one) with
 * mq_fs_write_new(flags), for a caller that renames it itself later.
 * Returns 0 or -1. */
int mq_fs_write_temp(int dirfd, const char *tmpname, const void *buf, size_t len,
                     unsigned flags, GError **err);

/* The full recipe: write tmpname (replacing a stale one), fsync, rename to
 * name (replacing it), fsync the directory. Returns 0 or -1. */
int mq_fs_write_atomic(int dirfd, const char *tmpname, const char *name,
                       const void *buf, size_t len, GError **err);

/* fsync() dirfd/name, a file written earlier (opened read-only, never
 * following a link). Returns 0 or -1. */
int mq_fs_fsync_at(int dirfd, const char *name, GError **err);

/* fsync() a directory fd. Returns 0 or -1. */
int mq_fs_fsync_dir(int dirfd, GError **err);

/* syncfs() the file system of fd: every file written there so far is on
 * disk (Linux >= 5.8 reports a write-back error of any file since fd was
 * opened). Counted as fsync time. Returns 0 or -1. */
int mq_fs_syncfs(int fd, GError **err);

/* True if paths a and b are on one file system (false if either cannot be
 * looked at): one syncfs() then covers both. */
bool mq_fs_same_fs(const char *a, const char *b);

/* Reads a whole open file after checking it: a regular file with exactly one
 * link and at most max_len bytes (MQ_ERROR_LIMIT otherwise). Reads from the
 * current offset 0 with pread. On success *buf_r is NUL-terminated (the NUL is
 * not counted in *len_r); caller frees with g_free(). Returns 0 or -1. */
int mq_fs_read_fd(int fd, size_t max_len, char **buf_r, size_t *len_r, GError **err);
/* The same with exactly links links (the caller accounts for the others). */
int mq_fs_read_fd_links(int fd, size_t max_len, unsigned links, char **buf_r, size_t *len_r,
                        GError **err);

/* Moves srcdir/src to dstdir/dst, never replacing an existing dst: then it
 * returns -1 with *exists_r set to true, so the caller can pick another name.
 * Across filesystems the file is copied durably and the source unlinked.
 * Both directories are fsynced. Returns 0 or -1. */
int mq_fs_move(int srcdir, const char *src, int dstdir, const char *dst,
               bool *exists_r, GError **err);

/* Creates path and its missing parents with the given mode. Returns 0 or -1. */
int mq_fs_mkdir_p(const char *path, mode_t mode, GError **err);

/* Parses a decimal unsigned number with no sign, no spaces and no trailing
 * text, within [min, max]. Returns true and sets *value_r, or false. */
bool mq_fs_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *value_r);

/* Microseconds the calling thread has spent in fsync() and syncfs() here so
 * far (every fsync of a file or directory that mqscan makes goes through
 * this module):
 * take it before and after a piece of work to see what durability cost. */
uint64_t mq_fs_sync_us(void);

/* True if id is 1..MQ_ID_MAX characters of [A-Za-z0-9]: the only strings
 * ever used to build queue, hold or quarantine paths. */
bool mq_fs_id_ok(const char *id);

#endif
