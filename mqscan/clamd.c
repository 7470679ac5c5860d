#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/clamd.h"
#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/sockio.h"

/*
 * A client for clamd's INSTREAM protocol with failover between servers.
 *
 * Nothing that comes back from a server is trusted: a reply is read into a
 * fixed buffer (CLAMD_REPLY_MAX) and a longer one is a server failure, not a
 * truncated verdict; a signature name is cut to CLAMD_NAME_MAX bytes of
 * printable ASCII before anyone sees it, because it ends up in headers and
 * log lines. A reply that is neither "OK", "FOUND" nor the size-limit error
 * is no verdict: the next server is asked, and when none answers the scan
 * fails (never "clean").
 *
 * Timeouts: connecting and reading the reply each have a deadline of
 * timeout_ms; the reply deadline starts when the last byte has been sent,
 * so it also bounds clamd's scan time. Sending fails when the server takes
 * no data for timeout_ms (a stalled peer); a large object on a slow but
 * moving link is not cut off.
 */

#define CLAMD_CHUNK (64 * 1024)     /* INSTREAM chunk size */
#define CLAMD_REPLY_MAX 4096        /* longest reply accepted, NUL included */
#define CLAMD_NAME_MAX 200          /* a signature name is cut to this */
#define CLAMD_ERRTEXT_MAX 120       /* server text quoted in an error */

struct mq_clamd {
    struct mq_sock_spec *servers;
    unsigned n_servers;
    unsigned timeout_ms;
    gint next;                  /* start index of the next scan (rotates) */
};

/* What one exchange with one server gave when it gave no answer: *why_r
 * says why, and the next server is tried. */
#define CLAMD_OUT_FAILED (-1)

/* ---- untrusted text -------------------------------------------------------- */

/* A printable-ASCII copy of len bytes of s, cut to max bytes. Space is
 * kept only if keep_space (error text); a signature name has none. */
static char *
clamd_sanitize(const char *s, size_t len, size_t max, bool keep_space)
{
    char *out;

    if (len > max)
        len = max;
    out = g_malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        out[i] = (c > 0x20 && c < 0x7f) || (keep_space && c == ' ') ? (char)c : '?';
    }
    out[len] = '\0';
    return out;
}

struct mq_clamd *
mq_clamd_new(const char *const *servers, unsigned timeout_ms, GError **err)
{
    struct mq_clamd *clamd = NULL;
    struct mq_sock_spec *list = NULL;
    unsigned n = 0, parsed = 0;

    while (servers != NULL && servers[n] != NULL)
        n++;
    if (n == 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "no clamd server given");
        goto out;
    }
    /* poll() takes an int; 0 would time out every operation at once. */
    if (timeout_ms == 0 || timeout_ms > INT_MAX) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "clamd timeout of %u ms is out of range", timeout_ms);
        goto out;
    }
    list = g_new0(struct mq_sock_spec, n);
    for (parsed = 0; parsed < n; parsed++)
        if (mq_sock_spec_parse(servers[parsed], "clamd server", &list[parsed], err) < 0)
            goto out;

    clamd = g_new0(struct mq_clamd, 1);
    clamd->servers = list;
    clamd->n_servers = n;
    clamd->timeout_ms = timeout_ms;
    list = NULL;

out:
    if (list != NULL) {
        for (unsigned i = 0; i < parsed; i++)
            mq_sock_spec_clear(&list[i]);
        g_free(list);
    }
    return clamd;
}

void
mq_clamd_free(struct mq_clamd **clamdp)
{
    struct mq_clamd *clamd;

    if (clamdp == NULL)
        mq_log_panic("mq_clamd_free: NULL argument");
    clamd = *clamdp;
    *clamdp = NULL;
    if (clamd == NULL)
        return;
    for (unsigned i = 0; i < clamd->n_servers; i++)
        mq_sock_spec_clear(&clamd->servers[i]);
    g_free(clamd->servers);
    g_free(clamd);
}

/* ---- I/O with deadlines ---------------------------------------------------- */

/* Connects to a server within the client's timeout (see sockio.h). */
static int
clamd_connect(const struct mq_clamd *clamd, const struct mq_sock_spec *s, char **why_r)
{
    return mq_sock_connect(s, g_get_monotonic_time() + (gint64)clamd->timeout_ms * 1000,
                           clamd->timeout_ms, why_r);
}

/* Sends all len bytes; fails when the peer takes nothing for timeout_ms.
 * Returns 0, or -1 with errno (ETIMEDOUT for the timeout). */
static int
clamd_send_all(int fd, const void *buf, size_t len, int flags, unsigned timeout_ms)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, flags | MSG_NOSIGNAL);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = mq_sock_wait(fd, POLLOUT,
                                g_get_monotonic_time() + (gint64)timeout_ms * 1000);

            if (rc == 0)
                errno = ETIMEDOUT;
            if (rc <= 0)
                return -1;
            continue;
        }
        if (n == 0)
            errno = EPIPE;
        return -1;
    }
    return 0;
}

/* The whole INSTREAM request: command, chunks, terminating empty chunk. */
static int
clamd_send_instream(int fd, const void *buf, size_t len, unsigned timeout_ms)
{
    static const char cmd[] = "zINSTREAM";
    const char *p = buf;
    guint32 hdr;

    if (clamd_send_all(fd, cmd, sizeof(cmd), MSG_MORE, timeout_ms) < 0)
        return -1;
    while (len > 0) {
        size_t n = MIN(len, (size_t)CLAMD_CHUNK);

        hdr = g_htonl((guint32)n);
        if (clamd_send_all(fd, &hdr, sizeof(hdr), MSG_MORE, timeout_ms) < 0
            || clamd_send_all(fd, p, n, 0, timeout_ms) < 0)
            return -1;
        p += n;
        len -= n;
    }
    hdr = 0;
    return clamd_send_all(fd, &hdr, sizeof(hdr), 0, timeout_ms);
}

/* Reads one reply, up to its NUL, into buf (CLAMD_REPLY_MAX + 1 bytes),
 * before deadline. Returns its length without the NUL and trailing
 * newlines, or -1 with *why_r. A reply cut short by EOF or a reset is no
 * reply: "stream: OK" could be the start of "stream: OKlahoma.Worm FOUND".
 * Every reply to a "z" command ends with a NUL. */
static ssize_t
clamd_read_reply(int fd, char *buf, gint64 deadline, unsigned timeout_ms, char **why_r)
{
    size_t got = 0;
    char *nul = NULL;

    while (nul == NULL) {
        ssize_t n;
        int rc;

        if (got == CLAMD_REPLY_MAX) {
            *why_r = g_strdup_printf("reply longer than %d bytes", CLAMD_REPLY_MAX);
            return -1;
        }
        rc = mq_sock_wait(fd, POLLIN, deadline);
        if (rc == 0) {
            *why_r = g_strdup_printf("timed out after %u ms waiting for the reply", timeout_ms);
            return -1;
        }
        if (rc < 0) {
            *why_r = g_strdup_printf("poll: %s", g_strerror(errno));
            return -1;
        }
        n = recv(fd, buf + got, CLAMD_REPLY_MAX - got, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0) {
            *why_r = g_strdup_printf("reading the reply%s: %s", got > 0 ? " (cut short)" : "",
                                     g_strerror(errno));
            return -1;
        }
        if (n == 0) {
            *why_r = g_strdup(got > 0 ? "reply cut short by EOF"
                                      : "connection closed without a reply");
            return -1;
        }
        nul = memchr(buf + got, '\0', (size_t)n);
        got += (size_t)n;
    }
    got = (size_t)(nul - buf);
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
        got--;
    if (got == 0) {
        *why_r = g_strdup("empty reply");
        return -1;
    }
    buf[got] = '\0';
    return (ssize_t)got;
}

/* ---- one request to one server --------------------------------------------- */

#define CLAMD_STREAM_PREFIX "stream: "
#define CLAMD_FOUND_SUFFIX " FOUND"
#define CLAMD_ERROR_SUFFIX " ERROR"
#define CLAMD_SIZE_LIMIT "INSTREAM size limit exceeded"

/* Classifies a reply to INSTREAM. Returns an mq_clamd_reply with *name_r
 * for FOUND and LIMIT, or CLAMD_OUT_FAILED with *why_r. */
static int
clamd_parse_scan_reply(const char *reply, size_t len, char **name_r, char **why_r)
{
    const size_t plen = strlen(CLAMD_STREAM_PREFIX);
    const size_t flen = strlen(CLAMD_FOUND_SUFFIX);
    const size_t elen = strlen(CLAMD_ERROR_SUFFIX);

    if (strcmp(reply, CLAMD_STREAM_PREFIX "OK") == 0)
        return MQ_CLAMD_CLEAN;
    if (g_str_has_prefix(reply, CLAMD_SIZE_LIMIT)
        && g_str_has_suffix(reply, CLAMD_ERROR_SUFFIX)) {
        *name_r = g_strdup(CLAMD_SIZE_LIMIT);
        return MQ_CLAMD_LIMIT;
    }
    if (len > plen + flen && g_str_has_prefix(reply, CLAMD_STREAM_PREFIX)
        && g_str_has_suffix(reply, CLAMD_FOUND_SUFFIX)) {
        const char *name = reply + plen;
        size_t nlen = len - plen - flen;

        /* One token: clamd names have no blanks, and anything else is
         * not a reply we understand. */
        if (memchr(name, ' ', nlen) == NULL) {
            *name_r = clamd_sanitize(name, nlen, CLAMD_NAME_MAX, false);
            return MQ_CLAMD_FOUND;
        }
    }
    if (len > elen && g_str_has_suffix(reply, CLAMD_ERROR_SUFFIX)) {
        char *text = clamd_sanitize(reply, len, CLAMD_ERRTEXT_MAX, true);

        *why_r = g_strdup_printf("server error: %s", text);
        g_free(text);
        return CLAMD_OUT_FAILED;
    }
    {
        char *text = clamd_sanitize(reply, len, CLAMD_ERRTEXT_MAX, true);

        *why_r = g_strdup_printf("unexpected reply \"%s\"", text);
        g_free(text);
    }
    return CLAMD_OUT_FAILED;
}

/* One INSTREAM exchange. Returns an mq_clamd_reply or CLAMD_OUT_FAILED with
 * *why_r (owned by the caller). */
static int
clamd_scan_one(const struct mq_clamd *clamd, const struct mq_sock_spec *s, const void *buf,
               size_t len, char **name_r, char **why_r)
{
    char reply[CLAMD_REPLY_MAX + 1];
    char *send_why = NULL;
    int fd = -1, result = CLAMD_OUT_FAILED;
    ssize_t rlen;

    fd = clamd_connect(clamd, s, why_r);
    if (fd < 0)
        goto out;
    if (clamd_send_instream(fd, buf, len, clamd->timeout_ms) < 0) {
        int e = errno;

        /* A server that stopped taking data will not answer either. */
        if (e == ETIMEDOUT) {
            *why_r = g_strdup_printf("sending timed out after %u ms", clamd->timeout_ms);
            goto out;
        }
        /* clamd answers "INSTREAM size limit exceeded" and closes while we
         * are still sending: the reply may be waiting. If there is none,
         * the send error is the story. */
        send_why = g_strdup_printf("sending: %s", g_strerror(e));
    }
    rlen = clamd_read_reply(fd, reply,
                            g_get_monotonic_time() + (gint64)clamd->timeout_ms * 1000,
                            clamd->timeout_ms, why_r);
    if (rlen < 0) {
        if (send_why != NULL) {
            g_free(*why_r);
            *why_r = g_steal_pointer(&send_why);
        }
        goto out;
    }
    result = clamd_parse_scan_reply(reply, (size_t)rlen, name_r, why_r);
    /* A reply after a failed send is believed only if it is the size
     * limit; anything else might be about a truncated stream. */
    if (send_why != NULL && result != MQ_CLAMD_LIMIT && result != CLAMD_OUT_FAILED) {
        g_clear_pointer(name_r, g_free);
        g_clear_pointer(why_r, g_free);
        *why_r = g_steal_pointer(&send_why);
        result = CLAMD_OUT_FAILED;
    }

out:
    g_free(send_why);
    if (fd >= 0)
        close(fd);
    return result;
}

/* Adds "SPEC: WHY" to the list of failures for the final error. */
static void
clamd_note_failure(GString *failures, const struct mq_sock_spec *s, const char *why)
{
    if (failures->len > 0)
        g_string_append(failures, "; ");
    g_string_append_printf(failures, "%s: %s", s->spec, why != NULL ? why : "failed");
}

int
mq_clamd_scan(struct mq_clamd *clamd, const void *buf, size_t len, char **name_r, GError **err)
{
    GString *failures = NULL;
    unsigned start;
    int result = -1;

    if (clamd == NULL || name_r == NULL || (buf == NULL && len > 0))
        mq_log_panic("mq_clamd_scan: invalid arguments");
    *name_r = NULL;

    /* Each scan starts one server further on, so that workers share the
     * load; the counter may wrap, which only shifts the rotation. */
    start = (unsigned)g_atomic_int_add(&clamd->next, 1) % clamd->n_servers;
    failures = g_string_new(NULL);
    for (unsigned i = 0; i < clamd->n_servers; i++) {
        const struct mq_sock_spec *s = &clamd->servers[(start + i) % clamd->n_servers];
        char *why = NULL;
        int rc = clamd_scan_one(clamd, s, buf, len, name_r, &why);

        if (rc >= 0) {
            if (failures->len > 0)
                mq_log_warn("clamd: scanned by %s after failures: %s", s->spec, failures->str);
            result = rc;
            break;
        }
        clamd_note_failure(failures, s, why);
        g_free(why);
    }
    if (result < 0)
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "no clamd server answered: %s",
                    failures->str);
    g_string_free(failures, TRUE);
    return result;
}

char *
mq_clamd_version(struct mq_clamd *clamd, GError **err)
{
    static const char cmd[] = "zVERSION";
    GString *failures = NULL;
    char *version = NULL;

    if (clamd == NULL)
        mq_log_panic("mq_clamd_version: NULL client");
    failures = g_string_new(NULL);
    for (unsigned i = 0; i < clamd->n_servers && version == NULL; i++) {
        const struct mq_sock_spec *s = &clamd->servers[i];
        char reply[CLAMD_REPLY_MAX + 1];
        char *why = NULL;
        ssize_t rlen = -1;
        int fd = clamd_connect(clamd, s, &why);

        if (fd >= 0) {
            if (clamd_send_all(fd, cmd, sizeof(cmd), 0, clamd->timeout_ms) < 0)
                why = g_strdup_printf("sending: %s", g_strerror(errno));
            else
                rlen = clamd_read_reply(fd, reply,
                                        g_get_monotonic_time()
                                            + (gint64)clamd->timeout_ms * 1000,
                                        clamd->timeout_ms, &why);
            close(fd);
        }
        if (rlen > 0 && strlen(reply) == (size_t)rlen && g_str_has_prefix(reply, "ClamAV ")) {
            version = clamd_sanitize(reply, (size_t)rlen, CLAMD_ERRTEXT_MAX, true);
        } else {
            if (rlen > 0 && why == NULL) {
                char *text = clamd_sanitize(reply, (size_t)rlen, CLAMD_ERRTEXT_MAX, true);

                why = g_strdup_printf("unexpected reply \"%s\"", text);
                g_free(text);
            }
            clamd_note_failure(failures, s, why);
        }
        g_free(why);
    }
    if (version == NULL)
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "no clamd server answered: %s",
                    failures->str);
    g_string_free(failures, TRUE);
    return version;
}
