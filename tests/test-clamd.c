/* test-clamd - mqscan/clamd.c (and the clamd engine of scanner.c) against
 * fake clamd servers.
 *
 * A fake is a thread that accepts on a Unix socket in a temporary directory
 * (or on 127.0.0.1:26142) and speaks just enough of clamd's protocol: it
 * reads "zINSTREAM\0" and the chunks, keeps what it received, and answers
 * as scripted: OK, FOUND, a raw reply, a reply cut at EOF, the size-limit
 * error half-way, a reply longer than any real one, nothing at all, or it
 * closes at once. It handles one connection at a time and logs the order in
 * which servers were contacted, which is what the failover tests check.
 * Timeouts are 200 ms, so a test of a server that never answers is quick.
 *
 * Ports used: 26142 (fake TCP clamd), 26143 (a listener whose queue is
 * full, for the connect timeout), 26144 (nothing listens there).
 */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/clamd.h"
#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/scanner.h"

#define TIMEOUT_MS 200
#define PORT_FAKE 26142
#define PORT_FULL 26143
#define PORT_DEAD 26144

/* ---- the fake clamd ------------------------------------------------------ */

enum fake_act {
    FAKE_OK,            /* "stream: OK" */
    FAKE_FOUND,         /* "stream: ARG FOUND" */
    FAKE_RAW,           /* ARG (arg_len bytes) and a NUL */
    FAKE_RAW_EOF,       /* ARG, then close: no NUL */
    FAKE_SPLIT,         /* "stream: OK" one byte at a time */
    FAKE_LIMIT,         /* after `limit` bytes: the size-limit error, close */
    FAKE_LONG,          /* 8 KiB without a NUL */
    FAKE_SILENT,        /* reads everything, never answers */
    FAKE_STALL,         /* reads nothing, never answers */
    FAKE_CLOSE,         /* closes at once */
};

struct fake {
    char label;
    char *spec;             /* "unix:/tmp/.../A.sock" or "tcp:127.0.0.1:26142" */
    char *path;             /* socket file, NULL for TCP */
    int lfd;
    int stop[2];            /* a byte on stop[1] ends the thread */
    GThread *thread;
    enum fake_act act;      /* the script: fixed before the thread starts */
    char *arg;
    size_t arg_len;
    size_t limit;
    GMutex lock;            /* protects what follows */
    unsigned connections;
    unsigned streams;       /* complete INSTREAM requests */
    unsigned chunks;        /* in the last one */
    size_t max_chunk;
    GByteArray *data;       /* the last stream received */
    char *command;          /* the last command */
};

/* Labels of the servers, in the order they were connected to. */
static GMutex order_lock;
static GString *order;

static void
order_reset(void)
{
    g_mutex_lock(&order_lock);
    if (order == NULL)
        order = g_string_new(NULL);
    g_string_truncate(order, 0);
    g_mutex_unlock(&order_lock);
}

static char *
order_get(void)
{
    char *s;

    g_mutex_lock(&order_lock);
    s = g_strdup(order->str);
    g_mutex_unlock(&order_lock);
    return s;
}

/* Waits until fd has `events` or the fake is told to stop; false on stop. */
static bool
fake_wait(struct fake *f, int fd, short events)
{
    struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = f->stop[0], .events = POLLIN } };

    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (p[1].revents != 0)
            return false;
        if (p[0].revents != 0)
            return true;
    }
}

/* Reads exactly n bytes; false on EOF, error or stop. */
static bool
fake_read(struct fake *f, int fd, void *buf, size_t n)
{
    char *p = buf;

    while (n > 0) {
        ssize_t r;

        if (!fake_wait(f, fd, POLLIN))
            return false;
        r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static void
fake_write(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;             /* the client went away: fine */
        p += w;
        n -= (size_t)w;
    }
}

/* Waits for the client to close (or for stop), discarding input. */
static void
fake_drain(struct fake *f, int fd)
{
    char buf[4096];

    while (fake_wait(f, fd, POLLIN) && read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void
fake_reply(int fd, const char *s)
{
    fake_write(fd, s, strlen(s) + 1);
}

/* One connection. */
static void
fake_serve(struct fake *f, int fd)
{
    char cmd[64];
    size_t n = 0;
    GByteArray *data = NULL;
    unsigned chunks = 0;
    size_t max_chunk = 0;
    bool complete = false;

    if (f->act == FAKE_CLOSE)
        return;
    if (f->act == FAKE_STALL) {
        fake_wait(f, f->stop[0], POLLIN);
        return;
    }
    /* The command, up to its NUL. */
    for (;;) {
        if (n == sizeof(cmd) - 1 || !fake_read(f, fd, cmd + n, 1))
            return;
        if (cmd[n++] == '\0')
            break;
    }
    g_mutex_lock(&f->lock);
    g_free(f->command);
    f->command = g_strdup(cmd);
    g_mutex_unlock(&f->lock);

    if (strcmp(cmd, "zVERSION") == 0) {
        if (f->act == FAKE_RAW)
            fake_write(fd, f->arg, f->arg_len + 1);
        else if (f->act == FAKE_SILENT)
            fake_drain(f, fd);
        else
            fake_reply(fd, "ClamAV 1.4.6/27831/Mon Nov 23 09:00:00 2026");
        return;
    }
    if (strcmp(cmd, "zINSTREAM") != 0) {
        fake_reply(fd, "UNKNOWN COMMAND");
        return;
    }
    data = g_byte_array_new();
    for (;;) {
        guint32 len;
        guint8 *buf;

        if (!fake_read(f, fd, &len, sizeof(len)))
            break;
        len = g_ntohl(len);
        if (len == 0) {
            complete = true;
            break;
        }
        chunks++;
        max_chunk = MAX(max_chunk, len);
        buf = g_malloc(len);
        if (!fake_read(f, fd, buf, len)) {
            g_free(buf);
            break;
        }
        g_byte_array_append(data, buf, len);
        g_free(buf);
        if (f->act == FAKE_LIMIT && data->len > f->limit) {
            /* As clamd does: answer, and close with the rest unread. */
            fake_reply(fd, "INSTREAM size limit exceeded. ERROR");
            break;
        }
    }
    g_mutex_lock(&f->lock);
    if (complete)
        f->streams++;
    f->chunks = chunks;
    f->max_chunk = max_chunk;
    if (f->data != NULL)
        g_byte_array_unref(f->data);
    f->data = data;
    g_mutex_unlock(&f->lock);
    if (!complete)
        return;

    switch (f->act) {
    case FAKE_OK:
        fake_reply(fd, "stream: OK");
        break;
    case FAKE_FOUND: {
        char *s = g_strdup_printf("stream: %s FOUND", f->arg);

        fake_reply(fd, s);
        g_free(s);
        break;
    }
    case FAKE_RAW:
        fake_write(fd, f->arg, f->arg_len + 1);
        break;
    case FAKE_RAW_EOF:
        fake_write(fd, f->arg, f->arg_len);
        break;
    case FAKE_SPLIT:
        for (const char *p = "stream: OK"; ; p++) {
            fake_write(fd, p, 1);
            if (*p == '\0')
                break;
            g_usleep(2000);
        }
        break;
    case FAKE_LONG: {
        char *s = g_malloc(8192);

        memset(s, 'A', 8192);
        fake_write(fd, s, 8192);
        g_free(s);
        fake_drain(f, fd);
        break;
    }
    case FAKE_SILENT:
        fake_drain(f, fd);
        break;
    default:
        break;
    }
}

static gpointer
fake_thread(gpointer p)
{
    struct fake *f = p;

    while (fake_wait(f, f->lfd, POLLIN)) {
        int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0)
            continue;
        g_mutex_lock(&f->lock);
        f->connections++;
        g_mutex_unlock(&f->lock);
        g_mutex_lock(&order_lock);
        g_string_append_c(order, f->label);
        g_mutex_unlock(&order_lock);
        fake_serve(f, fd);
        close(fd);
    }
    return NULL;
}

static struct fake *
fake_start(struct fake *f, enum fake_act act, const char *arg)
{
    f->act = act;
    f->arg = g_strdup(arg != NULL ? arg : "");
    f->arg_len = strlen(f->arg);
    g_mutex_init(&f->lock);
    g_assert_cmpint(pipe(f->stop), ==, 0);
    g_assert_cmpint(listen(f->lfd, 16), ==, 0);
    f->thread = g_thread_new("fake-clamd", fake_thread, f);
    return f;
}

/* A fake on DIR/<label>.sock. */
static struct fake *
fake_new(const char *dir, char label, enum fake_act act, const char *arg)
{
    struct fake *f = g_new0(struct fake, 1);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    char name[8];

    f->label = label;
    g_snprintf(name, sizeof(name), "%c.sock", label);
    f->path = g_build_filename(dir, name, NULL);
    f->spec = g_strconcat("unix:", f->path, NULL);
    g_assert_cmpuint(strlen(f->path), <, sizeof(sun.sun_path));
    strcpy(sun.sun_path, f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(f->lfd, >=, 0);
    g_assert_cmpint(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    return fake_start(f, act, arg);
}

static int
tcp_listener(int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), ==, 0);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        /* Another run of this test, at the same time: skip, don't fail. */
        if (errno != EADDRINUSE)
            g_error("cannot bind 127.0.0.1:%d: %s", port, g_strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool
skip_port_busy(int fd, int port)
{
    if (fd >= 0)
        return false;
    g_test_skip_printf("port %d is in use", port);
    return true;
}

/* A fake on 127.0.0.1:port; NULL (and the test skipped) if it is in use. */
static struct fake *
fake_new_tcp(char label, int port, enum fake_act act, const char *arg)
{
    int fd = tcp_listener(port);
    struct fake *f;

    if (skip_port_busy(fd, port))
        return NULL;
    f = g_new0(struct fake, 1);
    f->label = label;
    f->spec = g_strdup_printf("tcp:127.0.0.1:%d", port);
    f->lfd = fd;
    return fake_start(f, act, arg);
}

static void
fake_free(struct fake **fp)
{
    struct fake *f = *fp;

    *fp = NULL;
    if (f == NULL)
        return;
    g_assert_cmpint(write(f->stop[1], "x", 1), ==, 1);
    g_thread_join(f->thread);
    close(f->lfd);
    close(f->stop[0]);
    close(f->stop[1]);
    if (f->path != NULL)
        g_assert_cmpint(g_unlink(f->path), ==, 0);
    if (f->data != NULL)
        g_byte_array_unref(f->data);
    g_mutex_clear(&f->lock);
    g_free(f->command);
    g_free(f->arg);
    g_free(f->spec);
    g_free(f->path);
    g_free(f);
}

static unsigned
fake_connections(struct fake *f)
{
    unsigned n;

    g_mutex_lock(&f->lock);
    n = f->connections;
    g_mutex_unlock(&f->lock);
    return n;
}

static char *
make_tmpdir(void)
{
    GError *err = NULL;
    char *dir = g_dir_make_tmp("mqscan-clamd-XXXXXX", &err);

    g_assert_no_error(err);
    return dir;
}

static GBytes *
make_payload(size_t len)
{
    guint8 *p = g_malloc(len);

    for (size_t i = 0; i < len; i++)
        p[i] = (guint8)(i * 31 + (i >> 8));
    return g_bytes_new_take(p, len);
}

static struct mq_clamd *
client_new(const char *const *servers)
{
    GError *err = NULL;
    struct mq_clamd *c = mq_clamd_new(servers, TIMEOUT_MS, &err);

    g_assert_no_error(err);
    g_assert_nonnull(c);
    return c;
}

/* ---- server strings ------------------------------------------------------ */

static const struct {
    const char *server;         /* NULL: an empty list */
    unsigned timeout_ms;
    const char *message;        /* NULL: must be accepted */
} new_cases[] = {
    { "unix:/run/clamav/clamd.ctl", 60000, NULL },
    { "tcp:127.0.0.1:3310", 60000, NULL },
    { "tcp:localhost:3310", 1, NULL },
    { "tcp:[::1]:3310", 60000, NULL },
    { "tcp:clamd.example.com:65535", 60000, NULL },
    { NULL, 60000, "no clamd server" },
    { "", 60000, "empty" },
    { "clamd.ctl", 60000, "expected unix:/PATH or tcp:HOST:PORT" },
    { "udp:127.0.0.1:3310", 60000, "expected unix:/PATH or tcp:HOST:PORT" },
    { "unix:", 60000, "must be absolute" },
    { "unix:run/clamd.ctl", 60000, "must be absolute" },
    { "unix:/with space", 60000, "not printable" },
    { "unix:/tab\there", 60000, "not printable" },
    { "tcp:127.0.0.1", 60000, "tcp:HOST:PORT" },
    { "tcp:127.0.0.1:", 60000, "tcp:HOST:PORT" },
    { "tcp::3310", 60000, "tcp:HOST:PORT" },
    { "tcp:127.0.0.1:0", 60000, "port of 1-65535" },
    { "tcp:127.0.0.1:65536", 60000, "port of 1-65535" },
    { "tcp:127.0.0.1:33x", 60000, "port of 1-65535" },
    { "tcp:127.0.0.1:-1", 60000, "port of 1-65535" },
    { "tcp:127.0.0.1:+80", 60000, "port of 1-65535" },
    { "tcp:::1:3310", 60000, "tcp:[ADDR]:PORT" },
    { "tcp:[::1:3310", 60000, "unbalanced" },
    { "tcp:[]:3310", 60000, "unbalanced" },
    { "tcp:127.0.0.1:3310", 0, "out of range" },
};

static void
test_new(void)
{
    /* Longer than sun_path. */
    char *fill = g_strnfill(120, 'p');
    char *long_path = g_strconcat("unix:/", fill, NULL);
    const char *const long_list[] = { long_path, NULL };
    GError *err = NULL;

    for (gsize c = 0; c < G_N_ELEMENTS(new_cases); c++) {
        const char *const list[] = { new_cases[c].server, NULL };
        struct mq_clamd *clamd = mq_clamd_new(list, new_cases[c].timeout_ms, &err);

        g_test_message("%s: %s", new_cases[c].server ? new_cases[c].server : "(none)",
                       err ? err->message : "ok");
        if (new_cases[c].message == NULL) {
            g_assert_no_error(err);
            g_assert_nonnull(clamd);
            mq_clamd_free(&clamd);
            g_assert_null(clamd);
        } else {
            g_assert_null(clamd);
            g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
            g_assert_nonnull(strstr(err->message, new_cases[c].message));
            g_clear_error(&err);
        }
    }
    g_assert_null(mq_clamd_new(long_list, 1000, &err));
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
    g_assert_nonnull(strstr(err->message, "longer than"));
    g_clear_error(&err);
    g_assert_null(mq_clamd_new(NULL, 1000, &err));
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
    g_clear_error(&err);
    /* One bad string spoils the list, wherever it is. */
    {
        const char *const list[] = { "unix:/ok", "tcp:host", "unix:/ok2", NULL };

        g_assert_null(mq_clamd_new(list, 1000, &err));
        g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
        g_assert_nonnull(strstr(err->message, "\"tcp:host\""));
        g_clear_error(&err);
    }
    g_free(long_path);
    g_free(fill);
}

/* ---- replies ------------------------------------------------------------- */

#define LONG_NAME_LEN 300

static const struct {
    const char *what;
    enum fake_act act;
    const char *arg;
    int result;                 /* mq_clamd_reply or -1 */
    const char *name;           /* exact; "=LONG" for the long-name case */
    const char *message;        /* substring of the error, for -1 */
} reply_cases[] = {
    { "OK", FAKE_OK, NULL, MQ_CLAMD_CLEAN, NULL, NULL },
    { "OK, one byte at a time", FAKE_SPLIT, NULL, MQ_CLAMD_CLEAN, NULL, NULL },
    { "OK and a newline", FAKE_RAW, "stream: OK\n", MQ_CLAMD_CLEAN, NULL, NULL },
    /* Cut short: could have been "stream: OKlahoma.Worm FOUND". */
    { "OK ended by EOF, no NUL", FAKE_RAW_EOF, "stream: OK", -1, NULL, "cut short by EOF" },
    { "FOUND", FAKE_FOUND, "Eicar-Signature", MQ_CLAMD_FOUND, "Eicar-Signature", NULL },
    { "FOUND encrypted", FAKE_FOUND, "Heuristics.Encrypted.Zip", MQ_CLAMD_FOUND,
      "Heuristics.Encrypted.Zip", NULL },
    { "FOUND with control bytes", FAKE_RAW, "stream: Bad\x01\x1b[31m\x7f\xc3\xa9Name FOUND",
      MQ_CLAMD_FOUND, "Bad??[31m???Name", NULL },
    { "FOUND with a very long name", FAKE_FOUND, "=LONG", MQ_CLAMD_FOUND, "=LONG", NULL },
    { "size limit", FAKE_RAW, "INSTREAM size limit exceeded. ERROR", MQ_CLAMD_LIMIT,
      "INSTREAM size limit exceeded", NULL },
    { "server error", FAKE_RAW, "stream: Can't allocate memory ERROR", -1, NULL,
      "server error: stream: Can't allocate memory ERROR" },
    { "garbage", FAKE_RAW, "HTTP/1.0 400 Bad Request", -1, NULL, "unexpected reply" },
    { "garbage with control bytes", FAKE_RAW, "\x1b]0;owned\x07", -1, NULL,
      "unexpected reply \"?]0;owned?\"" },
    { "FOUND without a name", FAKE_RAW, "stream:  FOUND", -1, NULL, "unexpected reply" },
    { "FOUND with two words", FAKE_RAW, "stream: Two Words FOUND", -1, NULL,
      "unexpected reply" },
    { "OK for another stream", FAKE_RAW, "/etc/passwd: OK", -1, NULL, "unexpected reply" },
    { "a reply longer than 4 KiB", FAKE_LONG, NULL, -1, NULL, "longer than 4096" },
    { "EOF without a reply", FAKE_RAW_EOF, "", -1, NULL, "without a reply" },
    { "just a NUL", FAKE_RAW, "", -1, NULL, "empty reply" },
    { "closes at once", FAKE_CLOSE, NULL, -1, NULL, NULL },
    { "never answers", FAKE_SILENT, NULL, -1, NULL, "timed out after 200 ms" },
};

static void
test_replies(void)
{
    char *dir = make_tmpdir();
    GBytes *payload = make_payload(150 * 1024 + 7);     /* three chunks */
    char *long_name = g_strnfill(LONG_NAME_LEN, 'N');
    char *cut_name = g_strnfill(200, 'N');

    for (gsize c = 0; c < G_N_ELEMENTS(reply_cases); c++) {
        const char *arg = reply_cases[c].arg;
        struct fake *f;
        struct mq_clamd *clamd;
        GError *err = NULL;
        char *name = (char *)"untouched";
        gint64 t0;
        double ms;
        int rc;

        if (arg != NULL && strcmp(arg, "=LONG") == 0)
            arg = long_name;
        f = fake_new(dir, 'A', reply_cases[c].act, arg);
        {
            const char *const list[] = { f->spec, NULL };

            clamd = client_new(list);
        }
        t0 = g_get_monotonic_time();
        rc = mq_clamd_scan(clamd, g_bytes_get_data(payload, NULL), g_bytes_get_size(payload),
                           &name, &err);
        ms = (double)(g_get_monotonic_time() - t0) / 1000;
        g_test_message("%s: %d %s (%.0f ms)", reply_cases[c].what, rc,
                       rc >= 0 ? (name ? name : "-") : err->message, ms);
        g_assert_cmpint(rc, ==, reply_cases[c].result);
        if (rc < 0) {
            g_assert_error(err, MQ_ERROR, MQ_ERROR_ENGINE);
            g_assert_null(name);
            g_assert_nonnull(strstr(err->message, f->spec));
            if (reply_cases[c].message != NULL)
                g_assert_nonnull(strstr(err->message, reply_cases[c].message));
            g_clear_error(&err);
        } else {
            g_assert_no_error(err);
            if (reply_cases[c].name == NULL)
                g_assert_null(name);
            else if (strcmp(reply_cases[c].name, "=LONG") == 0)
                g_assert_cmpstr(name, ==, cut_name);
            else
                g_assert_cmpstr(name, ==, reply_cases[c].name);
        }
        /* No wait beyond the timeout (and some slack for a loaded machine). */
        g_assert_cmpfloat(ms, <, 10 * TIMEOUT_MS);
        if (reply_cases[c].act == FAKE_SILENT)
            g_assert_cmpfloat(ms, >=, TIMEOUT_MS - 1);
        /* What the server got is exactly what was sent, in 64 KiB chunks. */
        if (reply_cases[c].act != FAKE_CLOSE) {
            g_mutex_lock(&f->lock);
            g_assert_cmpstr(f->command, ==, "zINSTREAM");
            g_assert_cmpuint(f->streams, ==, 1);
            g_assert_cmpuint(f->chunks, ==, 3);
            g_assert_cmpuint(f->max_chunk, ==, 65536);
            g_assert_cmpmem(f->data->data, f->data->len, g_bytes_get_data(payload, NULL),
                            g_bytes_get_size(payload));
            g_mutex_unlock(&f->lock);
        }
        if (rc >= 0)
            g_free(name);
        mq_clamd_free(&clamd);
        fake_free(&f);
    }
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(cut_name);
    g_free(long_name);
    g_bytes_unref(payload);
    g_free(dir);
}

/* An empty object is still a request: a zero-length INSTREAM. */
static void
test_empty(void)
{
    char *dir = make_tmpdir();
    struct fake *f = fake_new(dir, 'A', FAKE_OK, NULL);
    const char *const list[] = { f->spec, NULL };
    struct mq_clamd *clamd = client_new(list);
    char *name = NULL;

    g_assert_cmpint(mq_clamd_scan(clamd, NULL, 0, &name, NULL), ==, MQ_CLAMD_CLEAN);
    g_assert_null(name);
    g_mutex_lock(&f->lock);
    g_assert_cmpuint(f->streams, ==, 1);
    g_assert_cmpuint(f->chunks, ==, 0);
    g_mutex_unlock(&f->lock);
    mq_clamd_free(&clamd);
    fake_free(&f);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
}

/* clamd answers the size-limit error and closes while the client is still
 * sending; the client must still see the reply, not a send error. */
static void
test_size_limit(void)
{
    char *dir = make_tmpdir();
    struct fake *f = fake_new(dir, 'A', FAKE_LIMIT, NULL);
    const char *const list[] = { f->spec, NULL };
    struct mq_clamd *clamd;
    GBytes *payload = make_payload(8u << 20);
    GError *err = NULL;
    char *name = NULL;

    f->limit = 256 * 1024;
    clamd = client_new(list);
    g_assert_cmpint(mq_clamd_scan(clamd, g_bytes_get_data(payload, NULL),
                                  g_bytes_get_size(payload), &name, &err), ==, MQ_CLAMD_LIMIT);
    g_assert_no_error(err);
    g_assert_cmpstr(name, ==, "INSTREAM size limit exceeded");
    g_free(name);
    mq_clamd_free(&clamd);
    fake_free(&f);
    g_bytes_unref(payload);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
}

/* A server that takes no data: the send times out. */
static void
test_send_timeout(void)
{
    char *dir = make_tmpdir();
    struct fake *f = fake_new(dir, 'A', FAKE_STALL, NULL);
    const char *const list[] = { f->spec, NULL };
    struct mq_clamd *clamd = client_new(list);
    GBytes *payload = make_payload(16u << 20);
    GError *err = NULL;
    char *name = NULL;
    gint64 t0 = g_get_monotonic_time();

    g_assert_cmpint(mq_clamd_scan(clamd, g_bytes_get_data(payload, NULL),
                                  g_bytes_get_size(payload), &name, &err), ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_ENGINE);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, "sending timed out after 200 ms"));
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * TIMEOUT_MS * 1000);
    g_clear_error(&err);
    mq_clamd_free(&clamd);
    fake_free(&f);
    g_bytes_unref(payload);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
}

/* A TCP listener whose queue is full drops our SYN: the connect times out. */
static void
test_connect_timeout(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(PORT_FULL) };
    const char *const list[] = { "tcp:127.0.0.1:26143", NULL };
    int lfd = tcp_listener(PORT_FULL);
    int filler[4];
    struct mq_clamd *clamd;
    GError *err = NULL;
    char *name = NULL;
    gint64 t0;
    int rc;

    if (skip_port_busy(lfd, PORT_FULL))
        return;
    g_assert_cmpint(listen(lfd, 0), ==, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* With a backlog of 0 Linux queues one connection; the others stay in
     * progress, as ours will. */
    for (int i = 0; i < 4; i++) {
        filler[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        g_assert_cmpint(filler[i], >=, 0);
        rc = connect(filler[i], (struct sockaddr *)&sin, sizeof(sin));
        g_assert_true(rc == 0 || errno == EINPROGRESS);
    }
    g_usleep(50000);
    clamd = client_new(list);
    t0 = g_get_monotonic_time();
    rc = mq_clamd_scan(clamd, "x", 1, &name, &err);
    g_assert_cmpint(rc, ==, -1);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, "connect timed out after 200 ms"));
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, (TIMEOUT_MS - 1) * 1000);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * TIMEOUT_MS * 1000);
    g_clear_error(&err);
    mq_clamd_free(&clamd);
    for (int i = 0; i < 4; i++)
        close(filler[i]);
    close(lfd);
}

/* ---- failover ------------------------------------------------------------ */

static void
test_failover_order(void)
{
    char *dir = make_tmpdir();
    char *dead = g_strconcat("unix:", dir, "/dead.sock", NULL);
    struct fake *b = fake_new(dir, 'B', FAKE_SILENT, NULL);
    struct fake *c = fake_new(dir, 'C', FAKE_RAW, "garbage");
    struct fake *d = fake_new(dir, 'D', FAKE_FOUND, "Found.By.D");
    const char *const list[] = { dead, b->spec, c->spec, d->spec, NULL };
    struct mq_clamd *clamd = client_new(list);
    /* Where each scan starts, and the servers it then reaches: the dead
     * socket leaves no trace in the log. */
    static const char *const want[] = { "BCD", "BCD", "CD", "D", "BCD" };
    GBytes *payload = make_payload(1000);

    for (gsize s = 0; s < G_N_ELEMENTS(want); s++) {
        char *name = NULL, *got;
        GError *err = NULL;

        order_reset();
        g_assert_cmpint(mq_clamd_scan(clamd, g_bytes_get_data(payload, NULL),
                                      g_bytes_get_size(payload), &name, &err), ==,
                        MQ_CLAMD_FOUND);
        g_assert_no_error(err);
        g_assert_cmpstr(name, ==, "Found.By.D");
        got = order_get();
        g_test_message("scan %zu: %s", s, got);
        g_assert_cmpstr(got, ==, want[s]);
        g_free(got);
        g_free(name);
    }
    mq_clamd_free(&clamd);
    fake_free(&d);
    fake_free(&c);
    fake_free(&b);
    g_bytes_unref(payload);
    g_free(dead);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
}

/* Every server fails: one error that names each server and its failure. */
static void
test_all_fail(void)
{
    char *dir = make_tmpdir();
    char *dead = g_strconcat("unix:", dir, "/dead.sock", NULL);
    struct fake *b = fake_new(dir, 'B', FAKE_RAW, "stream: Can't create temporary file ERROR");
    struct fake *c = fake_new(dir, 'C', FAKE_SILENT, NULL);
    const char *const list[] = { dead, b->spec, c->spec, "tcp:127.0.0.1:26144", NULL };
    struct mq_clamd *clamd = client_new(list);
    GError *err = NULL;
    char *name = NULL, *want;

    order_reset();
    g_assert_cmpint(mq_clamd_scan(clamd, "data", 4, &name, &err), ==, -1);
    g_assert_null(name);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_ENGINE);
    g_test_message("%s", err->message);
    want = g_strdup_printf("no clamd server answered: %s: connect: No such file or directory; "
                           "%s: server error: stream: Can't create temporary file ERROR; "
                           "%s: timed out after 200 ms waiting for the reply; "
                           "tcp:127.0.0.1:26144: connect: Connection refused",
                           dead, b->spec, c->spec);
    g_assert_cmpstr(err->message, ==, want);
    g_clear_error(&err);
    g_free(want);
    /* The scanner turns it into an engine error, never a verdict. */
    {
        struct mq_scanner *scanner = mq_scanner_new_clamd(list, TIMEOUT_MS, &err);

        g_assert_no_error(err);
        g_assert_cmpint(mq_scanner_scan(scanner, "data", 4, NULL, &name, &err), ==, -1);
        g_assert_null(name);
        g_assert_error(err, MQ_ERROR, MQ_ERROR_ENGINE);
        g_clear_error(&err);
        mq_scanner_unref(&scanner);
    }
    mq_clamd_free(&clamd);
    fake_free(&c);
    fake_free(&b);
    g_free(dead);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
}

/* Healthy servers share the scans in turn. */
static void
test_rotation(void)
{
    struct fake *tcp = fake_new_tcp('C', PORT_FAKE, FAKE_OK, NULL);
    char *dir;
    struct fake *f[3];
    struct mq_clamd *clamd;
    char *got;

    if (tcp == NULL)
        return;
    dir = make_tmpdir();
    f[0] = fake_new(dir, 'A', FAKE_OK, NULL);
    f[1] = fake_new(dir, 'B', FAKE_OK, NULL);
    f[2] = tcp;
    {
        const char *const list[] = { f[0]->spec, f[1]->spec, f[2]->spec, NULL };

        clamd = client_new(list);
    }
    order_reset();
    for (int s = 0; s < 7; s++) {
        char *name = NULL;

        g_assert_cmpint(mq_clamd_scan(clamd, "abc", 3, &name, NULL), ==, MQ_CLAMD_CLEAN);
    }
    got = order_get();
    g_assert_cmpstr(got, ==, "ABCABCA");
    g_free(got);
    mq_clamd_free(&clamd);
    for (int i = 0; i < 3; i++)
        fake_free(&f[i]);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
}

/* TCP by address and by name; a port where nothing listens. */
static void
test_tcp(void)
{
    struct fake *f = fake_new_tcp('T', PORT_FAKE, FAKE_FOUND, "Tcp.Found");
    static const char *const specs[] = { "tcp:127.0.0.1:26142", "tcp:localhost:26142" };

    if (f == NULL)
        return;
    for (gsize i = 0; i < G_N_ELEMENTS(specs); i++) {
        const char *const list[] = { specs[i], NULL };
        struct mq_clamd *clamd = client_new(list);
        GError *err = NULL;
        char *name = NULL;

        g_assert_cmpint(mq_clamd_scan(clamd, "abc", 3, &name, &err), ==, MQ_CLAMD_FOUND);
        g_assert_no_error(err);
        g_assert_cmpstr(name, ==, "Tcp.Found");
        g_free(name);
        mq_clamd_free(&clamd);
    }
    {
        const char *const list[] = { "tcp:127.0.0.1:26144", "tcp:no-such-host.invalid:26142",
                                     NULL };
        struct mq_clamd *clamd = client_new(list);
        GError *err = NULL;
        char *name = NULL;

        g_assert_cmpint(mq_clamd_scan(clamd, "abc", 3, &name, &err), ==, -1);
        g_test_message("%s", err->message);
        g_assert_nonnull(strstr(err->message, "tcp:127.0.0.1:26144: connect: Connection refused"));
        g_assert_nonnull(strstr(err->message, "cannot resolve no-such-host.invalid"));
        g_clear_error(&err);
        mq_clamd_free(&clamd);
    }
    g_assert_cmpuint(fake_connections(f), ==, 2);
    fake_free(&f);
}

/* Scans from several threads: each takes the next start server. */
#define N_THREADS 4
#define N_SCANS 25

static gpointer
scan_thread(gpointer p)
{
    struct mq_clamd *clamd = p;
    gsize bad = 0;

    for (int i = 0; i < N_SCANS; i++) {
        char *name = NULL;
        GError *err = NULL;

        if (mq_clamd_scan(clamd, "abcdef", 6, &name, &err) != MQ_CLAMD_CLEAN)
            bad++;
        g_clear_error(&err);
        g_free(name);
    }
    return GSIZE_TO_POINTER(bad);
}

static void
test_threads(void)
{
    char *dir = make_tmpdir();
    struct fake *a = fake_new(dir, 'A', FAKE_OK, NULL);
    struct fake *b = fake_new(dir, 'B', FAKE_OK, NULL);
    const char *const list[] = { a->spec, b->spec, NULL };
    struct mq_clamd *clamd;
    GThread *threads[N_THREADS];
    GError *err = NULL;

    clamd = mq_clamd_new(list, 5000, &err);
    g_assert_no_error(err);
    for (int t = 0; t < N_THREADS; t++)
        threads[t] = g_thread_new("scan", scan_thread, clamd);
    for (int t = 0; t < N_THREADS; t++)
        g_assert_cmpuint(GPOINTER_TO_SIZE(g_thread_join(threads[t])), ==, 0);
    g_assert_cmpuint(fake_connections(a), ==, N_THREADS * N_SCANS / 2);
    g_assert_cmpuint(fake_connections(b), ==, N_THREADS * N_SCANS / 2);
    mq_clamd_free(&clamd);
    fake_free(&b);
    fake_free(&a);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
}

/* ---- VERSION ------------------------------------------------------------- */

static void
test_version(void)
{
    char *dir = make_tmpdir();
    char *dead = g_strconcat("unix:", dir, "/dead.sock", NULL);
    struct fake *a = fake_new(dir, 'A', FAKE_OK, NULL);
    struct fake *g = fake_new(dir, 'G', FAKE_RAW, "220 smtp.example.com ESMTP");
    struct fake *s = fake_new(dir, 'S', FAKE_SILENT, NULL);
    GError *err = NULL;
    char *v;

    {
        const char *const list[] = { dead, a->spec, NULL };
        struct mq_clamd *clamd = client_new(list);

        /* Always the first server that answers: no rotation. */
        for (int i = 0; i < 2; i++) {
            v = mq_clamd_version(clamd, &err);
            g_assert_no_error(err);
            g_assert_cmpstr(v, ==, "ClamAV 1.4.6/27831/Mon Nov 23 09:00:00 2026");
            g_free(v);
        }
        g_mutex_lock(&a->lock);
        g_assert_cmpstr(a->command, ==, "zVERSION");
        g_mutex_unlock(&a->lock);
        mq_clamd_free(&clamd);
    }
    {
        const char *const list[] = { g->spec, s->spec, dead, NULL };
        struct mq_clamd *clamd = client_new(list);

        v = mq_clamd_version(clamd, &err);
        g_assert_null(v);
        g_assert_error(err, MQ_ERROR, MQ_ERROR_ENGINE);
        g_test_message("%s", err->message);
        g_assert_nonnull(strstr(err->message, "unexpected reply \"220 smtp.example.com ESMTP\""));
        g_assert_nonnull(strstr(err->message, "timed out"));
        g_assert_nonnull(strstr(err->message, "No such file"));
        g_clear_error(&err);
        mq_clamd_free(&clamd);
    }
    fake_free(&s);
    fake_free(&g);
    fake_free(&a);
    g_free(dead);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
}

/* ---- through the scanner: shared verdicts -------------------------------- */

static const struct {
    enum fake_act act;
    const char *arg;
    int verdict;
    const char *name;
} verdict_cases[] = {
    { FAKE_OK, NULL, MQ_SCAN_CLEAN, NULL },
    { FAKE_FOUND, "Win.Test.EICAR_HDB-1", MQ_SCAN_INFECTED, "Win.Test.EICAR_HDB-1" },
    { FAKE_FOUND, "MqScan.Test.EICAR.UNOFFICIAL", MQ_SCAN_INFECTED,
      "MqScan.Test.EICAR.UNOFFICIAL" },
    { FAKE_FOUND, "Heuristics.Encrypted.Zip", MQ_SCAN_ENCRYPTED, "Heuristics.Encrypted.Zip" },
    { FAKE_FOUND, "Heuristics.Encrypted.7Zip", MQ_SCAN_ENCRYPTED, "Heuristics.Encrypted.7Zip" },
    { FAKE_FOUND, "Heuristics.Encrypted.PDF", MQ_SCAN_ENCRYPTED, "Heuristics.Encrypted.PDF" },
    { FAKE_FOUND, "Heuristics.Limits.Exceeded.MaxRecursion", MQ_SCAN_UNSCANNABLE,
      "Heuristics.Limits.Exceeded.MaxRecursion" },
    { FAKE_FOUND, "Heuristics.Phishing.Email.SpoofedDomain", MQ_SCAN_INFECTED,
      "Heuristics.Phishing.Email.SpoofedDomain" },
    /* Only the exact family, not a look-alike prefix. */
    { FAKE_FOUND, "Heuristics.EncryptedNot", MQ_SCAN_INFECTED, "Heuristics.EncryptedNot" },
    { FAKE_RAW, "INSTREAM size limit exceeded. ERROR", MQ_SCAN_UNSCANNABLE,
      "Limits.Exceeded.StreamMaxLength" },
    { FAKE_RAW, "stream: OK FOUND", MQ_SCAN_INFECTED, "OK" },
    { FAKE_RAW, "garbage", -1, NULL },
    { FAKE_SILENT, NULL, -1, NULL },
};

static void
test_scanner(void)
{
    char *dir = make_tmpdir();
    GBytes *payload = make_payload(70000);

    for (gsize c = 0; c < G_N_ELEMENTS(verdict_cases); c++) {
        struct fake *f = fake_new(dir, 'A', verdict_cases[c].act, verdict_cases[c].arg);
        const char *const list[] = { f->spec, NULL };
        GError *err = NULL;
        struct mq_scanner *scanner = mq_scanner_new_clamd(list, TIMEOUT_MS, &err);
        char *name = (char *)"untouched";
        int verdict;

        g_assert_no_error(err);
        verdict = mq_scanner_scan(scanner, g_bytes_get_data(payload, NULL),
                                  g_bytes_get_size(payload), "hint", &name, &err);
        g_test_message("%s %s: %d %s", verdict_cases[c].arg ? verdict_cases[c].arg : "",
                       verdict_cases[c].act == FAKE_SILENT ? "(silent)" : "", verdict,
                       verdict >= 0 ? (name ? name : "-") : err->message);
        g_assert_cmpint(verdict, ==, verdict_cases[c].verdict);
        g_assert_cmpstr(name, ==, verdict_cases[c].name);
        if (verdict < 0) {
            g_assert_error(err, MQ_ERROR, MQ_ERROR_ENGINE);
            g_clear_error(&err);
        } else {
            g_assert_no_error(err);
        }
        g_free(name);
        mq_scanner_unref(&scanner);
        fake_free(&f);
    }
    g_bytes_unref(payload);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
}

/* A zip64 member (size fields 0xFFFFFFFF): clamd's libclamav would skip it
 * and answer OK; the scanner calls it unscannable before asking. */
static void
test_scanner_zip64(void)
{
    static const unsigned char zip64[] = {
        'P', 'K', 3, 4, 45, 0, 0, 0, 8, 0, 0, 0, 0x21, 0, 0, 0, 0, 0,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 'x', 0x4b, 0x04, 0x00,
    };
    char *dir = make_tmpdir();
    struct fake *f = fake_new(dir, 'A', FAKE_OK, NULL);
    const char *const list[] = { f->spec, NULL };
    GError *err = NULL;
    struct mq_scanner *scanner = mq_scanner_new_clamd(list, TIMEOUT_MS, &err);
    char *name = NULL;

    g_assert_no_error(err);
    g_assert_cmpint(mq_scanner_scan(scanner, zip64, sizeof(zip64), "zip64", &name, &err), ==,
                    MQ_SCAN_UNSCANNABLE);
    g_assert_no_error(err);
    g_assert_cmpstr(name, ==, "Unsupported.Zip64");
    g_free(name);
    mq_scanner_unref(&scanner);
    fake_free(&f);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
}

static void
test_scanner_describe(void)
{
    static const struct {
        const char *servers[3];
        unsigned timeout_ms;
        const char *desc;
    } cases[] = {
        { { "unix:/x", "tcp:127.0.0.1:3310", NULL }, 60000,
          "clamd: unix:/x, tcp:127.0.0.1:3310 (timeout 60 s)" },
        { { "tcp:[::1]:3310", NULL, NULL }, 1500, "clamd: tcp:[::1]:3310 (timeout 1500 ms)" },
    };
    GError *err = NULL;

    for (gsize c = 0; c < G_N_ELEMENTS(cases); c++) {
        /* Nothing listens on these: construction contacts nobody. */
        struct mq_scanner *scanner = mq_scanner_new_clamd(cases[c].servers, cases[c].timeout_ms,
                                                          &err);
        struct mq_scanner *ref;

        g_assert_no_error(err);
        g_assert_cmpstr(mq_scanner_describe(scanner), ==, cases[c].desc);
        g_assert_cmpuint(mq_scanner_signatures(scanner), ==, 0);
        ref = mq_scanner_ref(scanner);
        mq_scanner_unref(&scanner);
        g_assert_cmpstr(mq_scanner_describe(ref), ==, cases[c].desc);
        mq_scanner_unref(&ref);
        g_assert_null(ref);
    }
    {
        const char *const bad[] = { "unix:/x", "tcp:nope", NULL };

        g_assert_null(mq_scanner_new_clamd(bad, 1000, &err));
        g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
        g_clear_error(&err);
    }
}

static void
test_scan_null_panics(void)
{
    if (g_test_subprocess()) {
        char *name;

        mq_clamd_scan(NULL, "x", 1, &name, NULL);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*panic: mq_clamd_scan*");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    mq_log_open("test-clamd", MQ_LOG_SINK_STDERR);
    order_reset();

    g_test_add_func("/clamd/new", test_new);
    g_test_add_func("/clamd/replies", test_replies);
    g_test_add_func("/clamd/empty", test_empty);
    g_test_add_func("/clamd/size-limit", test_size_limit);
    g_test_add_func("/clamd/send-timeout", test_send_timeout);
    g_test_add_func("/clamd/connect-timeout", test_connect_timeout);
    g_test_add_func("/clamd/failover-order", test_failover_order);
    g_test_add_func("/clamd/all-fail", test_all_fail);
    g_test_add_func("/clamd/rotation", test_rotation);
    g_test_add_func("/clamd/tcp", test_tcp);
    g_test_add_func("/clamd/threads", test_threads);
    g_test_add_func("/clamd/version", test_version);
    g_test_add_func("/clamd/scanner", test_scanner);
    g_test_add_func("/clamd/scanner-zip64", test_scanner_zip64);
    g_test_add_func("/clamd/scanner-describe", test_scanner_describe);
    g_test_add_func("/clamd/scan-null-panics", test_scan_null_panics);
    int rc = g_test_run();

    g_mutex_lock(&order_lock);
    g_string_free(order, TRUE);
    order = NULL;
    g_mutex_unlock(&order_lock);
    return rc;
}
