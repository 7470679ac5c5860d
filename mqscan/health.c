#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/health.h"
#include "mqscan/log.h"
#include "mqscan/notify.h"
#include "mqscan/queue.h"

/* Linux's largest possible pid (PID_MAX_LIMIT on 64-bit). */
#define HEALTH_PID_MAX 4194304
/* Caps on what is read back: a pid file, a heartbeat line, the alert state,
 * a ClamAV database header (that one is fixed by the format). */
#define HEALTH_PIDFILE_MAX 32
#define HEALTH_HEARTBEAT_MAX 128
#define HEALTH_ALERTS_MAX 4096
#define HEALTH_CVD_HEADER 512
/* How far ahead of our clock a heartbeat may be before we say so. */
#define HEALTH_CLOCK_SLACK 60
/* Longest text of a single check in the summary line. */
#define HEALTH_TEXT_MAX 300

#define HEALTH_ALERTS_FILE "check-alerts"
#define HEALTH_ALERTS_TMP "check-alerts.tmp"
#define HEALTH_ALERTS_MAGIC "mqscan-check-alerts 1"

enum health_check {
    HEALTH_DAEMON,
    HEALTH_HEARTBEAT,
    HEALTH_QUEUE,
    HEALTH_SIGNATURES,
    HEALTH_HOLD,
    HEALTH_COUNT,
};

/* The problem keys of the alert state; also the order of the checks. */
static const char *const health_keys[HEALTH_COUNT] = {
    "daemon", "heartbeat", "queue", "signatures", "hold",
};

struct health_result {
    enum mq_health_state state;
    char *text;
};

struct mq_health {
    const struct mq_config *config;
    time_t now;
    struct health_result r[HEALTH_COUNT];
    bool daemon_down;           /* nobody holds the pid file lock */
    long daemon_pid;            /* the running daemon's pid, or 0 */
};

/* What the pid file says about the daemon. */
enum health_pid_status {
    HEALTH_PID_RUNNING,         /* locked, valid pid, live mqscand process */
    HEALTH_PID_MISSING,         /* no pid file */
    HEALTH_PID_UNREADABLE,      /* cannot open, stat or test the lock */
    HEALTH_PID_STALE,           /* nobody holds the lock */
    HEALTH_PID_STARTING,        /* locked but still empty (loading signatures) */
    HEALTH_PID_BAD,             /* locked, but not a number */
    HEALTH_PID_GONE,            /* locked, but no such process */
    HEALTH_PID_OTHER,           /* locked, but the process is not mqscand */
};

struct health_pid {
    enum health_pid_status status;
    long pid;                   /* 0 when the file holds none */
    char *detail;               /* errno text or the other process's name */
};

static const char *const health_state_names[] = {
    [MQ_HEALTH_OK] = "OK",
    [MQ_HEALTH_WARNING] = "WARNING",
    [MQ_HEALTH_CRITICAL] = "CRITICAL",
    [MQ_HEALTH_UNKNOWN] = "UNKNOWN",
};

const char *
mq_health_state_name(enum mq_health_state state)
{
    if ((unsigned)state >= G_N_ELEMENTS(health_state_names))
        mq_log_panic("health: state %d out of range", (int)state);
    return health_state_names[state];
}

static void
health_set(struct mq_health *h, enum health_check which, enum mq_health_state state,
           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
health_set(struct mq_health *h, enum health_check which, enum mq_health_state state,
           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_free(h->r[which].text);
    h->r[which].text = g_strdup_vprintf(fmt, ap);
    h->r[which].state = state;
    va_end(ap);
}

/* A duration for people: "45 s", "12 min", "5 h", "10 days". Rounded
 * down, so "max 30 min" and "oldest 30 min" can appear together only when
 * the age is within the minute of the limit. Writes into buf, returns it. */
static const char *
health_age(char *buf, size_t size, uint64_t secs)
{
    if (secs < 120)
        g_snprintf(buf, size, "%llu s", (unsigned long long)secs);
    else if (secs < 120 * 60)
        g_snprintf(buf, size, "%llu min", (unsigned long long)(secs / 60));
    else if (secs < 48 * 3600)
        g_snprintf(buf, size, "%llu h", (unsigned long long)(secs / 3600));
    else
        g_snprintf(buf, size, "%llu days", (unsigned long long)(secs / 86400));
    return buf;
}

/* now - then, never negative. */
static uint64_t
health_since(time_t now, time_t then)
{
    return then >= now ? 0 : (uint64_t)(now - then);
}

/* The state for an age against a limit: CRITICAL over it, WARNING over
 * half of it. */
static enum mq_health_state
health_age_state(uint64_t age, unsigned max)
{
    if (age > max)
        return MQ_HEALTH_CRITICAL;
    if (age > max / 2)
        return MQ_HEALTH_WARNING;
    return MQ_HEALTH_OK;
}

/* Reads a small untrusted file: not a symlink, a regular file with one
 * link, at most max bytes. Returns 0, 1 if it does not exist, or -1 with
 * err set. */
static int
health_read_small(int dirfd, const char *path, size_t max, char **buf_r, size_t *len_r,
                  GError **err)
{
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    int ret;

    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        return -1;
    }
    ret = mq_fs_read_fd(fd, max, buf_r, len_r, err);
    if (ret < 0)
        g_prefix_error(err, "%s: ", path);
    close(fd);
    return ret;
}

/* One line of a file read back: exactly one "\n", at the end, no NUL. */
static bool
health_one_line(const char *buf, size_t len)
{
    return len > 1 && buf[len - 1] == '\n' && memchr(buf, '\n', len) == buf + len - 1 &&
           memchr(buf, '\0', len) == NULL;
}

/* --- daemon ------------------------------------------------------------- */

/* The name of process pid: /proc/PID/comm, or failing that the last
 * component of /proc/PID/exe (" (deleted)" after an upgrade cut off).
 * Returns NULL if neither can be read (no /proc, hidepid). */
static char *
health_proc_name(long pid)
{
    char path[64], buf[256];
    ssize_t n;
    int fd;

    g_snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            buf[strcspn(buf, "\n")] = '\0';
            return g_strdup(buf);
        }
    }
    g_snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
    n = readlink(path, buf, sizeof(buf) - 1);
    if (n > 0) {
        const char *base;
        char *deleted;
        buf[n] = '\0';
        if ((deleted = g_strrstr(buf, " (deleted)")) != NULL && deleted[10] == '\0')
            *deleted = '\0';
        base = strrchr(buf, '/');
        return g_strdup(base != NULL ? base + 1 : buf);
    }
    return NULL;
}

/* Reads the pid file and tests its lock. A shared lock that we can take
 * means nobody holds mqscand's exclusive one.
 * XXX If mqscand starts within the microseconds our shared lock is held, it
 * refuses to start ("already running"); a start-up script retries, and the
 * window is far smaller than the one between two cron runs. */
static void
health_pid_probe(const char *pid_file, struct health_pid *p)
{
    char buf[HEALTH_PIDFILE_MAX + 1];
    struct stat st;
    uint64_t pid;
    ssize_t n;
    int fd = -1;
    char *name = NULL;

    p->pid = 0;
    p->detail = NULL;
    fd = open(pid_file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        p->status = errno == ENOENT ? HEALTH_PID_MISSING : HEALTH_PID_UNREADABLE;
        p->detail = g_strdup(g_strerror(errno));
        goto done;
    }
    if (fstat(fd, &st) < 0) {
        p->status = HEALTH_PID_UNREADABLE;
        p->detail = g_strdup(g_strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        p->status = HEALTH_PID_UNREADABLE;
        p->detail = g_strdup("not a regular file");
        goto done;
    }
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
        p->status = HEALTH_PID_STALE;
    } else if (errno == EWOULDBLOCK) {
        p->status = HEALTH_PID_RUNNING;     /* so far: someone holds it */
    } else {
        p->status = HEALTH_PID_UNREADABLE;
        p->detail = g_strdup_printf("flock: %s", g_strerror(errno));
        goto done;
    }

    n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n == 0) {
        if (p->status == HEALTH_PID_RUNNING)
            p->status = HEALTH_PID_STARTING;
        goto done;
    }
    if (!mq_fs_parse_uint(buf, 2, HEALTH_PID_MAX, &pid)) {
        if (p->status == HEALTH_PID_RUNNING)
            p->status = HEALTH_PID_BAD;
        goto done;
    }
    p->pid = (long)pid;
    if (p->status != HEALTH_PID_RUNNING)
        goto done;
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
        p->status = HEALTH_PID_GONE;
        goto done;
    }
    name = health_proc_name(p->pid);
    if (name != NULL && strcmp(name, "mqscand") != 0) {
        p->status = HEALTH_PID_OTHER;
        p->detail = mq_log_sanitize(name, 32);
    }

done:
    g_free(name);
    if (fd >= 0)
        close(fd);
}

static void
health_check_daemon(struct mq_health *h)
{
    const char *path = h->config->pid_file;
    struct health_pid p;

    health_pid_probe(path, &p);
    h->daemon_down = p.status == HEALTH_PID_MISSING || p.status == HEALTH_PID_STALE;
    switch (p.status) {
    case HEALTH_PID_RUNNING:
        h->daemon_pid = p.pid;
        health_set(h, HEALTH_DAEMON, MQ_HEALTH_OK, "daemon running (pid %ld)", p.pid);
        break;
    case HEALTH_PID_MISSING:
        health_set(h, HEALTH_DAEMON, MQ_HEALTH_CRITICAL, "daemon not running (no pid file)");
        break;
    case HEALTH_PID_STALE:
        if (p.pid != 0)
            health_set(h, HEALTH_DAEMON, MQ_HEALTH_CRITICAL,
                       "daemon not running (stale pid file, pid %ld)", p.pid);
        else
            health_set(h, HEALTH_DAEMON, MQ_HEALTH_CRITICAL,
                       "daemon not running (stale pid file)");
        break;
    case HEALTH_PID_UNREADABLE:
        health_set(h, HEALTH_DAEMON, MQ_HEALTH_CRITICAL, "daemon unknown: pid file %s: %s",
                   path, p.detail);
        break;
    case HEALTH_PID_STARTING:
        health_set(h, HEALTH_DAEMON, MQ_HEALTH_WARNING,
                   "daemon starting (pid file locked, no pid yet)");
        break;
    case HEALTH_PID_BAD:
        health_set(h, HEALTH_DAEMON, MQ_HEALTH_CRITICAL,
                   "daemon unknown: pid file %s is locked but holds no valid pid", path);
        break;
    case HEALTH_PID_GONE:
        health_set(h, HEALTH_DAEMON, MQ_HEALTH_CRITICAL,
                   "daemon not running (pid %ld gone, yet the pid file is locked)", p.pid);
        break;
    case HEALTH_PID_OTHER:
        health_set(h, HEALTH_DAEMON, MQ_HEALTH_CRITICAL,
                   "daemon unknown: pid %ld from the pid file is %s, not mqscand", p.pid,
                   p.detail);
        break;
    }
    g_free(p.detail);
}

/* --- heartbeat ---------------------------------------------------------- */

/* Reads state_dir/heartbeat, "PID UNIXTIME COUNT\n" and nothing else.
 * Returns 0, 1 if there is none, or -1 with err set. */
static int
health_read_heartbeat(const char *state_dir, uint64_t *pid_r, uint64_t *time_r,
                      uint64_t *count_r, GError **err)
{
    char *path = g_build_filename(state_dir, "heartbeat", NULL);
    char *buf = NULL, **fields = NULL;
    size_t len;
    int ret;

    ret = health_read_small(AT_FDCWD, path, HEALTH_HEARTBEAT_MAX, &buf, &len, err);
    if (ret != 0)
        goto done;
    if (health_one_line(buf, len)) {
        buf[len - 1] = '\0';
        fields = g_strsplit(buf, " ", 4);
    }
    if (fields == NULL || g_strv_length(fields) != 3 ||
        !mq_fs_parse_uint(fields[0], 1, HEALTH_PID_MAX, pid_r) ||
        !mq_fs_parse_uint(fields[1], 1, G_MAXINT64, time_r) ||
        !mq_fs_parse_uint(fields[2], 0, G_MAXUINT64, count_r)) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: not \"PID TIME COUNT\"", path);
        ret = -1;
    }

done:
    g_strfreev(fields);
    g_free(buf);
    g_free(path);
    return ret;
}

static void
health_check_heartbeat(struct mq_health *h)
{
    unsigned max = h->config->check_heartbeat_max_age;
    uint64_t pid, when, count, age;
    enum mq_health_state state;
    GError *error = NULL;
    char a1[32], a2[32];
    int ret;

    ret = health_read_heartbeat(h->config->state_dir, &pid, &when, &count, &error);
    if (ret == 1) {
        health_set(h, HEALTH_HEARTBEAT, MQ_HEALTH_CRITICAL, "no heartbeat in %s",
                   h->config->state_dir);
        return;
    }
    if (ret < 0) {
        health_set(h, HEALTH_HEARTBEAT, MQ_HEALTH_CRITICAL, "heartbeat unreadable: %s",
                   error->message);
        g_error_free(error);
        return;
    }
    if (when > (uint64_t)h->now + HEALTH_CLOCK_SLACK) {
        health_set(h, HEALTH_HEARTBEAT, MQ_HEALTH_WARNING,
                   "heartbeat %s in the future (clock changed?)",
                   health_age(a1, sizeof(a1), when - (uint64_t)h->now));
        return;
    }
    age = health_since(h->now, (time_t)when);
    state = health_age_state(age, max);
    if (state == MQ_HEALTH_OK)
        health_set(h, HEALTH_HEARTBEAT, state, "heartbeat %s old",
                   health_age(a1, sizeof(a1), age));
    else
        health_set(h, HEALTH_HEARTBEAT, state, "heartbeat %s old (max %s)",
                   health_age(a1, sizeof(a1), age), health_age(a2, sizeof(a2), max));
    /* A heartbeat from another process than the one running: written by an
     * earlier mqscand, and the running one has not beaten yet (it is
     * loading signatures, or hung before its first loop). */
    if (h->daemon_pid != 0 && (long)pid != h->daemon_pid) {
        char *text = h->r[HEALTH_HEARTBEAT].text;
        h->r[HEALTH_HEARTBEAT].text = g_strdup_printf("%s, from pid %llu, not the running %ld",
                                                      text, (unsigned long long)pid,
                                                      h->daemon_pid);
        g_free(text);
        h->r[HEALTH_HEARTBEAT].state = MAX(state, MQ_HEALTH_WARNING);
    }
}

/* --- incoming queue ----------------------------------------------------- */

static void
health_check_queue(struct mq_health *h)
{
    unsigned max = h->config->check_queue_max_age;
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    struct mq_queue *queue;
    GError *error = NULL;
    time_t oldest = 0;
    unsigned count = 0;
    uint64_t age;
    enum mq_health_state state;
    char a1[32], a2[32];

    queue = mq_queue_open(h->config->incoming_queue_dir, &error);
    if (queue == NULL || mq_queue_list(queue, ids, &error) < 0) {
        health_set(h, HEALTH_QUEUE, MQ_HEALTH_CRITICAL, "queue unreadable: %s", error->message);
        g_error_free(error);
        goto done;
    }
    for (guint i = 0; i < ids->len; i++) {
        uint64_t size;
        time_t mtime;
        /* Only stat, no lock: a message being scanned is still waiting
         * from the sender's point of view. */
        if (mq_queue_stat(queue, g_ptr_array_index(ids, i), &size, &mtime) < 0)
            continue;
        if (count == 0 || mtime < oldest)
            oldest = mtime;
        count++;
    }
    if (count == 0) {
        health_set(h, HEALTH_QUEUE, MQ_HEALTH_OK, "queue: 0 messages");
        goto done;
    }
    age = health_since(h->now, oldest);
    state = health_age_state(age, max);
    health_set(h, HEALTH_QUEUE, state, "%s: %u message%s, oldest %s (max %s)",
               state == MQ_HEALTH_CRITICAL ? "queue stuck"
               : state == MQ_HEALTH_WARNING ? "queue slow" : "queue",
               count, count == 1 ? "" : "s", health_age(a1, sizeof(a1), age),
               health_age(a2, sizeof(a2), max));

done:
    mq_queue_free(&queue);
    g_ptr_array_unref(ids);
}

/* --- signatures --------------------------------------------------------- */

/* The extensions of ClamAV signature databases (libclamav's CLI_DBEXT,
 * without the ones that only hold settings, certificates or allow-lists:
 * an edited .ign2 or .fp says nothing about fresh signatures). */
static const char *const health_db_ext[] = {
    "cvd", "cld", "cud", "db", "hdb", "hdu", "hsb", "hsu", "mdb", "mdu", "msb", "msu",
    "ndb", "ndu", "ldb", "ldu", "cdb", "sdb", "idb", "gdb", "pdb", "wdb", "ftm", "zmd",
    "rmd", "yar", "yara", "pwdb", "imp",
};

/* A name from the database directory worth looking at: printable, short,
 * no leading dot; returns its extension or NULL. */
static const char *
health_db_name(const char *name)
{
    const char *dot;
    size_t n = strlen(name);

    if (n == 0 || n > 255 || name[0] == '.')
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(name[i]) && strchr("._-", name[i]) == NULL)
            return NULL;
    }
    dot = strrchr(name, '.');
    if (dot == NULL)
        return NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(health_db_ext); i++) {
        if (g_ascii_strcasecmp(dot + 1, health_db_ext[i]) == 0)
            return dot + 1;
    }
    return NULL;
}

/* The version in a .cvd/.cld header, "ClamAV-VDB:time:version:sigs:...",
 * padded to 512 bytes. Returns 0 if it cannot be read. */
static uint64_t
health_cvd_version(int dirfd, const char *name)
{
    char buf[HEALTH_CVD_HEADER + 1];
    char **fields = NULL;
    uint64_t version = 0;
    struct stat st;
    ssize_t n;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        goto done;
    n = pread(fd, buf, HEALTH_CVD_HEADER, 0);
    if (n < (ssize_t)sizeof("ClamAV-VDB:") - 1)
        goto done;
    buf[n] = '\0';      /* and strsplit stops at the first NUL of the padding */
    if (strncmp(buf, "ClamAV-VDB:", sizeof("ClamAV-VDB:") - 1) != 0)
        goto done;
    fields = g_strsplit(buf, ":", 5);
    if (g_strv_length(fields) >= 4 && !mq_fs_parse_uint(fields[2], 1, 1000000000, &version))
        version = 0;

done:
    g_strfreev(fields);
    close(fd);
    return version;
}

static void
health_check_signatures(struct mq_health *h)
{
    const char *dir_path = h->config->clamav_database_dir;
    unsigned max = h->config->check_signatures_max_age;
    uint64_t daily = 0, main_v = 0, age;
    enum mq_health_state state;
    GString *versions = NULL;
    GError *error = NULL;
    DIR *dir = NULL;
    struct dirent *de;
    time_t newest = 0;
    unsigned files = 0;
    char a1[32], a2[32];
    int dirfd;

    if (h->config->engine == MQ_ENGINE_CLAMD) {
        health_set(h, HEALTH_SIGNATURES, MQ_HEALTH_OK, "signatures: clamd, not checked here");
        return;
    }
    dirfd = mq_fs_open_dir(dir_path, &error);
    if (dirfd < 0) {
        health_set(h, HEALTH_SIGNATURES, MQ_HEALTH_CRITICAL, "signatures: %s", error->message);
        g_error_free(error);
        return;
    }
    dir = fdopendir(dirfd);
    if (dir == NULL) {
        health_set(h, HEALTH_SIGNATURES, MQ_HEALTH_CRITICAL, "signatures: %s: %s", dir_path,
                   g_strerror(errno));
        close(dirfd);
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        const char *ext = health_db_name(de->d_name);
        struct stat st;

        /* stat follows a symlink here: an administrator's link to a
         * third-party database counts with its target's age. The header
         * below is only read from a plain file. */
        if (ext == NULL || fstatat(dirfd, de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (files == 0 || st.st_mtime > newest)
            newest = st.st_mtime;
        files++;
        if (g_ascii_strcasecmp(ext, "cvd") == 0 || g_ascii_strcasecmp(ext, "cld") == 0) {
            size_t base = (size_t)(ext - 1 - de->d_name);
            uint64_t v;
            /* daily.cvd and daily.cld may both be there: libclamav uses the
             * newer, so report the higher version. */
            if (base == 5 && strncmp(de->d_name, "daily", 5) == 0) {
                v = health_cvd_version(dirfd, de->d_name);
                daily = MAX(daily, v);
            } else if (base == 4 && strncmp(de->d_name, "main", 4) == 0) {
                v = health_cvd_version(dirfd, de->d_name);
                main_v = MAX(main_v, v);
            }
        }
    }
    closedir(dir);

    if (files == 0) {
        health_set(h, HEALTH_SIGNATURES, MQ_HEALTH_CRITICAL,
                   "signatures: no database files in %s", dir_path);
        return;
    }
    versions = g_string_new(NULL);
    if (daily != 0)
        g_string_append_printf(versions, "daily %llu", (unsigned long long)daily);
    if (main_v != 0)
        g_string_append_printf(versions, "%smain %llu", versions->len ? ", " : "",
                               (unsigned long long)main_v);
    age = health_since(h->now, newest);
    state = health_age_state(age, max);
    health_set(h, HEALTH_SIGNATURES, state, "%s %s old (max %s)%s%s",
               state == MQ_HEALTH_CRITICAL ? "signatures too old: newest"
               : state == MQ_HEALTH_WARNING ? "signatures aging: newest" : "signatures: newest",
               health_age(a1, sizeof(a1), age), health_age(a2, sizeof(a2), max),
               versions->len ? ", " : "", versions->str);
    g_string_free(versions, TRUE);
}

/* --- hold area ---------------------------------------------------------- */

static void
health_check_hold(struct mq_health *h)
{
    const char *dir_path = h->config->hold_dir;
    unsigned count = 0;
    DIR *dir;
    struct dirent *de;

    dir = opendir(dir_path);
    if (dir == NULL) {
        if (errno == ENOENT)    /* mqscand creates it when it first starts */
            health_set(h, HEALTH_HOLD, MQ_HEALTH_OK, "hold: 0 messages");
        else
            health_set(h, HEALTH_HOLD, MQ_HEALTH_WARNING, "hold unreadable: %s: %s", dir_path,
                       g_strerror(errno));
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > sizeof(".reason") - 1 && de->d_name[0] != '.' &&
            strcmp(de->d_name + n - (sizeof(".reason") - 1), ".reason") == 0 && count < G_MAXUINT)
            count++;
    }
    closedir(dir);
    if (count > h->config->check_hold_max)
        health_set(h, HEALTH_HOLD, MQ_HEALTH_WARNING, "hold: %u message%s (max %u)", count,
                   count == 1 ? "" : "s", h->config->check_hold_max);
    else
        health_set(h, HEALTH_HOLD, MQ_HEALTH_OK, "hold: %u message%s", count,
                   count == 1 ? "" : "s");
}

/* --- results ------------------------------------------------------------ */

struct mq_health *
mq_health_run(const struct mq_config *config, time_t now)
{
    struct mq_health *h;

    if (config == NULL)
        mq_log_panic("mq_health_run: no config");
    h = g_new0(struct mq_health, 1);
    h->config = config;
    h->now = now;
    /* The daemon first: the heartbeat check compares pids with it. */
    health_check_daemon(h);
    health_check_heartbeat(h);
    health_check_queue(h);
    health_check_signatures(h);
    health_check_hold(h);
    return h;
}

void
mq_health_free(struct mq_health **health)
{
    struct mq_health *h = *health;

    if (h == NULL)
        return;
    for (unsigned i = 0; i < HEALTH_COUNT; i++)
        g_free(h->r[i].text);
    g_free(h);
    *health = NULL;
}

enum mq_health_state
mq_health_state(const struct mq_health *h)
{
    enum mq_health_state worst = MQ_HEALTH_OK;

    for (unsigned i = 0; i < HEALTH_COUNT; i++)
        worst = MAX(worst, h->r[i].state);
    return worst;
}

enum mq_health_state
mq_health_check(const struct mq_health *h, const char *name, const char **text_r)
{
    for (unsigned i = 0; i < HEALTH_COUNT; i++) {
        if (strcmp(name, health_keys[i]) == 0) {
            if (text_r != NULL)
                *text_r = h->r[i].text;
            return h->r[i].state;
        }
    }
    mq_log_panic("mq_health_check: no check named \"%s\"", name);
}

bool
mq_health_daemon_down(const struct mq_health *h)
{
    return h->daemon_down;
}

/* The texts of checks in state, sanitized (they may carry configured
 * paths), appended to out with "; " between them. */
static void
health_append_texts(GString *out, const struct mq_health *h, enum mq_health_state state)
{
    for (unsigned i = 0; i < HEALTH_COUNT; i++) {
        char *text;
        if (h->r[i].state != state)
            continue;
        text = mq_log_sanitize(h->r[i].text, HEALTH_TEXT_MAX);
        if (out->len > 0 && out->str[out->len - 1] != ' ')
            g_string_append(out, "; ");
        g_string_append(out, text);
        g_free(text);
    }
}

char *
mq_health_summary(const struct mq_health *h)
{
    enum mq_health_state worst = mq_health_state(h);
    GString *line = g_string_new(NULL);

    g_string_append_printf(line, "MQSCAN %s - ", mq_health_state_name(worst));
    for (int s = MQ_HEALTH_UNKNOWN; s >= MQ_HEALTH_OK; s--)
        health_append_texts(line, h, (enum mq_health_state)s);
    return g_string_free(line, FALSE);
}

/* --- alerts ------------------------------------------------------------- */

struct health_alert {
    bool known;
    enum mq_health_state state;     /* as last mailed */
    uint64_t time;                  /* when last mailed */
};

/* Parses the alert state:
 *     mqscan-check-alerts 1
 *     KEY STATE TIME          (per problem; KEY from health_keys)
 *     end
 * Returns false if the text is not exactly that. */
static bool
health_alerts_parse(const char *buf, size_t len, struct health_alert *alerts)
{
    char **lines = NULL;
    bool ok = false;
    guint n;

    if (memchr(buf, '\0', len) != NULL || len == 0 || buf[len - 1] != '\n')
        return false;
    lines = g_strsplit(buf, "\n", HEALTH_COUNT + 4);
    n = g_strv_length(lines);
    /* The text ends in "\n", so the last element is "". */
    if (n < 3 || strcmp(lines[0], HEALTH_ALERTS_MAGIC) != 0 || strcmp(lines[n - 2], "end") != 0 ||
        lines[n - 1][0] != '\0')
        goto done;
    for (guint i = 1; i < n - 2; i++) {
        char **f = g_strsplit(lines[i], " ", 4);
        unsigned k;
        int s = -1;
        uint64_t t;
        bool good = g_strv_length(f) == 3 && mq_fs_parse_uint(f[2], 0, G_MAXINT64, &t);

        for (k = 0; good && k < HEALTH_COUNT && strcmp(f[0], health_keys[k]) != 0; k++)
            ;
        if (good && strcmp(f[1], "WARNING") == 0)
            s = MQ_HEALTH_WARNING;
        else if (good && strcmp(f[1], "CRITICAL") == 0)
            s = MQ_HEALTH_CRITICAL;
        g_strfreev(f);
        if (!good || k == HEALTH_COUNT || s < 0 || alerts[k].known)
            goto done;
        alerts[k] = (struct health_alert){ true, (enum mq_health_state)s, t };
    }
    ok = true;

done:
    g_strfreev(lines);
    return ok;
}

static char *
health_alerts_format(const struct health_alert *alerts)
{
    GString *s = g_string_new(HEALTH_ALERTS_MAGIC "\n");

    for (unsigned k = 0; k < HEALTH_COUNT; k++) {
        if (alerts[k].known)
            g_string_append_printf(s, "%s %s %llu\n", health_keys[k],
                                   mq_health_state_name(alerts[k].state),
                                   (unsigned long long)alerts[k].time);
    }
    g_string_append(s, "end\n");
    return g_string_free(s, FALSE);
}

/* The alert mail: subject names the first problem due, the body has the
 * summary line and every problem, marking the ones new or worse. */
static void
health_alert_text(const struct mq_health *h, const bool *due, char **subject_r, char **text_r)
{
    const struct mq_config *c = h->config;
    GString *text = g_string_new(NULL);
    char *summary = mq_health_summary(h);
    char *first = NULL;
    char when[64];
    struct tm tm;
    time_t now = h->now;

    if (localtime_r(&now, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z",
                                                    &tm) == 0)
        g_snprintf(when, sizeof(when), "%lld", (long long)h->now);
    g_string_append_printf(text, "mqscan-check on %s at %s (configuration %s):\n\n%s\n\n",
                           c->hostname, when, c->file, summary);
    for (int s = MQ_HEALTH_UNKNOWN; s > MQ_HEALTH_OK; s--) {
        for (unsigned k = 0; k < HEALTH_COUNT; k++) {
            char *t;
            if ((int)h->r[k].state != s)
                continue;
            t = mq_log_sanitize(h->r[k].text, HEALTH_TEXT_MAX);
            g_string_append_printf(text, "%-8s %-10s %s%s\n", mq_health_state_name(h->r[k].state),
                                   health_keys[k], t, due[k] ? "" : " (already reported)");
            if (due[k] && first == NULL)
                first = g_strdup(t);
            g_free(t);
        }
    }
    g_string_append_printf(text,
                           "\nA problem is mailed again after %s if it persists, at once if it\n"
                           "gets worse, and not at all once it has cleared; see mqscan-check(8).\n",
                           health_age(when, sizeof(when), c->check_alert_interval));
    *subject_r = g_strdup_printf("mqscan %s on %s: %s", mq_health_state_name(mq_health_state(h)),
                                 c->hostname, first != NULL ? first : "problem");
    *text_r = g_string_free(text, FALSE);
    g_free(first);
    g_free(summary);
}

int
mq_health_alert(const struct mq_health *h, time_t now, bool *sent_r, GError **err)
{
    const struct mq_config *c = h->config;
    struct health_alert old[HEALTH_COUNT] = { { 0 } }, new[HEALTH_COUNT] = { { 0 } };
    bool due[HEALTH_COUNT] = { false }, any_due = false, old_valid = true;
    struct mq_queue *outgoing = NULL;
    char *buf = NULL, *state = NULL, *subject = NULL, *text = NULL, *id = NULL;
    GError *error = NULL;
    size_t len = 0;
    int dirfd = -1, ret = -1, r = 0;

    if (sent_r != NULL)
        *sent_r = false;
    /* The daemon makes state_dir; if it never ran, we do (same mode). */
    if (mq_fs_mkdir_p(c->state_dir, 0700, err) < 0 ||
        (dirfd = mq_fs_open_dir(c->state_dir, err)) < 0)
        goto done;
    r = health_read_small(dirfd, HEALTH_ALERTS_FILE, HEALTH_ALERTS_MAX, &buf, &len, &error);
    if (r < 0) {
        /* Unreadable state: rather one mail too many than a silent outage. */
        mq_log_warn("%s/%s: %s; starting afresh", c->state_dir, HEALTH_ALERTS_FILE,
                    error->message);
        g_clear_error(&error);
        old_valid = false;
    } else if (r == 0 && !health_alerts_parse(buf, len, old)) {
        mq_log_warn("%s/%s: not a valid alert state; starting afresh", c->state_dir,
                    HEALTH_ALERTS_FILE);
        memset(old, 0, sizeof(old));
        old_valid = false;
    }

    for (unsigned k = 0; k < HEALTH_COUNT; k++) {
        enum mq_health_state s = h->r[k].state;
        if (s == MQ_HEALTH_OK)
            continue;       /* cleared problems are forgotten */
        due[k] = !old[k].known || s > old[k].state || old[k].time > (uint64_t)now ||
                 (uint64_t)now - old[k].time >= c->check_alert_interval;
        new[k] = due[k] ? (struct health_alert){ true, s, (uint64_t)now } : old[k];
        any_due |= due[k];
    }

    if (any_due) {
        const char *to[] = { c->postmaster, NULL };
        outgoing = mq_queue_open(c->outgoing_queue_dir, err);
        if (outgoing == NULL)
            goto done;
        health_alert_text(h, due, &subject, &text);
        id = mq_notify_send(c, outgoing, to, subject, text, err);
        if (id == NULL)
            goto done;
        mq_log_info("%s: alert mailed to %s: %s", id, c->postmaster, subject);
        if (sent_r != NULL)
            *sent_r = true;
    }

    state = health_alerts_format(new);
    if (!old_valid || r == 1 || strlen(state) != len || memcmp(state, buf, len) != 0) {
        if (r == 1 && !any_due) {
            ret = 0;        /* no file and nothing to remember: leave it so */
            goto done;
        }
        if (mq_fs_write_atomic(dirfd, HEALTH_ALERTS_TMP, HEALTH_ALERTS_FILE, state,
                               strlen(state), err) < 0)
            goto done;
    }
    ret = 0;

done:
    mq_queue_free(&outgoing);
    g_free(id);
    g_free(text);
    g_free(subject);
    g_free(state);
    g_free(buf);
    if (dirfd >= 0)
        close(dirfd);
    return ret;
}

/* --- restart ------------------------------------------------------------ */

/* True once the daemon started by us is up: the pid file is locked and
 * names a live mqscand, and the heartbeat carries that pid. */
static bool
health_daemon_up(const struct mq_config *c)
{
    struct health_pid p;
    uint64_t pid, when, count;
    GError *error = NULL;
    bool up = false;

    health_pid_probe(c->pid_file, &p);
    if (p.status == HEALTH_PID_RUNNING) {
        if (health_read_heartbeat(c->state_dir, &pid, &when, &count, &error) == 0)
            up = (long)pid == p.pid;
        g_clear_error(&error);
    }
    g_free(p.detail);
    return up;
}

int
mq_health_start_daemon(const struct mq_config *config, const char *mqscand_path,
                       const char *config_path, unsigned timeout_ms, GError **err)
{
    char *const argv[] = { (char *)"mqscand", (char *)"-c", (char *)config_path, NULL };
    /* Built before fork: the child may only make async-signal-safe calls. */
    char *exec_failed = g_strdup_printf("mqscan-check: cannot execute %s\n", mqscand_path);
    int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
    long max_fd = sysconf(_SC_OPEN_MAX);
    bool reaped = false;
    pid_t child;
    int status, ret = -1;

    child = fork();
    if (child < 0) {
        g_set_error(err, MQ_ERROR, mq_error_from_errno(errno), "fork: %s", g_strerror(errno));
        goto done;
    }
    if (child == 0) {
        struct sigaction dfl;
        sigset_t none;
        int fd = open("/dev/null", O_RDWR);

        /* Standard error stays: mqscand reports start-up failures there
         * before it detaches, and cron mails them. */
        if (fd >= 0) {
            dup2(fd, STDIN_FILENO);
            dup2(fd, STDOUT_FILENO);
            if (fd > STDERR_FILENO)
                close(fd);
        }
        /* An inherited descriptor could hold a lock (a queue file's, say)
         * for the daemon's whole life. */
        if (close_range(STDERR_FILENO + 1, ~0U, 0) < 0) {
            for (long i = STDERR_FILENO + 1; i < max_fd && i < 65536; i++)
                close((int)i);
        }
        setsid();
        /* Whatever cron or the shell left us is not for mqscand. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGHUP, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGCHLD, &dfl, NULL);
        execv(mqscand_path, argv);
        if (write(STDERR_FILENO, exec_failed, strlen(exec_failed)) < 0)
            _exit(127);
        _exit(127);
    }

    for (;;) {
        if (!reaped) {
            pid_t w = waitpid(child, &status, WNOHANG);
            if (w == child) {
                reaped = true;
                /* mqscand exits 0 right after it has detached. */
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                    if (WIFEXITED(status))
                        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE,
                                    "%s exited with status %d", mqscand_path,
                                    WEXITSTATUS(status));
                    else
                        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE,
                                    "%s killed by signal %d", mqscand_path, WTERMSIG(status));
                    goto done;
                }
            }
        }
        if (health_daemon_up(config))
            break;
        if (g_get_monotonic_time() >= deadline) {
            /* XXX An unreaped child (still loading signatures) stays a
             * zombie until we exit; then init adopts it. */
            g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP,
                        "mqscand did not come up within %u s (pid file %s, heartbeat in %s)",
                        (timeout_ms + 999) / 1000, config->pid_file, config->state_dir);
            goto done;
        }
        g_usleep(100 * 1000);
    }
    ret = 0;

done:
    g_free(exec_failed);
    return ret;
}
