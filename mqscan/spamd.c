#include <config.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/sockio.h"
#include "mqscan/spamd.h"

/*
 * A spamc-protocol client.
 *
 * One check is one connection: connect, send the request and the message,
 * half-close, read until spamd closes. Everything shares one deadline, so
 * a spamd that accepts and then thinks forever, or a peer that reads
 * nothing, costs at most timeout_ms; spamd's own child timeout may be
 * longer than ours.
 *
 * The reply is read into a buffer of MQ_SPAMD_REPLY_MAX bytes; a longer
 * one is not a reply. Header lines are at most SPAMD_LINE_MAX bytes and
 * there are at most SPAMD_HEADERS_MAX of them. Scores must be finite
 * numbers within +-MQ_SPAMD_SCORE_MAX; rule names must look like rule
 * names, and others are dropped, because they end up in headers and logs.
 *
 * XXX getaddrinfo() for "tcp:NAME:port" has no timeout; use an address or a
 * name from /etc/hosts.
 */

#define SPAMD_LINE_MAX 1024
#define SPAMD_HEADERS_MAX 32
#define SPAMD_RULE_NAME_MAX 64
#define SPAMD_USER_MAX 127
#define SPAMD_TEXT_MAX 120          /* server text quoted in an error */

struct mq_spamd {
    struct mq_sock_spec server;
    const char *spec;           /* server.spec */
    char *user;
    unsigned timeout_ms;
    uint64_t max_size;
};

/* ---- construction ----------------------------------------------------------- */

static bool
spamd_token_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

struct mq_spamd *
mq_spamd_new(const char *server, const char *user, unsigned timeout_ms, uint64_t max_size,
             GError **err)
{
    struct mq_spamd *s = NULL;

    if (timeout_ms == 0 || timeout_ms > 600000) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "spamd timeout of %u ms is out of range",
                    timeout_ms);
        goto fail;
    }
    if (user != NULL && user[0] != '\0' && !spamd_token_ok(user, SPAMD_USER_MAX)) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "spamd user: not printable, has blanks, or too long");
        goto fail;
    }
    s = g_new0(struct mq_spamd, 1);
    s->timeout_ms = timeout_ms;
    s->max_size = max_size;
    s->user = user != NULL && user[0] != '\0' ? g_strdup(user) : NULL;
    if (mq_sock_spec_parse(server, "spamd server", &s->server, err) < 0)
        goto fail;
    s->spec = s->server.spec;
    return s;

fail:
    if (s != NULL)
        mq_spamd_free(&s);
    return NULL;
}

void
mq_spamd_free(struct mq_spamd **sp)
{
    struct mq_spamd *s;

    if (sp == NULL)
        mq_log_panic("mq_spamd_free: NULL argument");
    s = *sp;
    *sp = NULL;
    if (s == NULL)
        return;
    mq_sock_spec_clear(&s->server);
    g_free(s->user);
    g_free(s);
}

void
mq_spamd_result_clear(struct mq_spamd_result *r)
{
    if (r == NULL)
        return;
    g_strfreev(r->rules);
    memset(r, 0, sizeof(*r));
}

/* ---- I/O under one deadline ------------------------------------------------- */

static int
spamd_connect(const struct mq_spamd *s, gint64 deadline, GError **err)
{
    char *why = NULL;
    int fd = mq_sock_connect(&s->server, deadline, s->timeout_ms, &why);

    if (fd < 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP, "spamd %s: %s", s->spec, why);
        g_free(why);
    }
    return fd;
}

static int
spamd_send_all(const struct mq_spamd *s, int fd, const void *buf, size_t len, gint64 deadline,
               GError **err)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        int rc;

        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = mq_sock_wait(fd, POLLOUT, deadline);
            if (rc > 0)
                continue;
            g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP, "spamd %s: sending: %s", s->spec,
                        rc == 0 ? "timed out" : g_strerror(errno));
            return -1;
        }
        g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP, "spamd %s: sending: %s", s->spec,
                    n == 0 ? "connection closed" : g_strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads until EOF into a new buffer of at most MQ_SPAMD_REPLY_MAX bytes.
 * Returns it (*len_r bytes, NUL-terminated; caller frees) or NULL. */
static char *
spamd_read_all(const struct mq_spamd *s, int fd, gint64 deadline, size_t *len_r, GError **err)
{
    char *buf = g_malloc(MQ_SPAMD_REPLY_MAX + 1);
    size_t got = 0;

    for (;;) {
        ssize_t n;
        int rc = mq_sock_wait(fd, POLLIN, deadline);

        if (rc <= 0) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP, "spamd %s: %s", s->spec,
                        rc == 0 ? "no reply in time" : g_strerror(errno));
            break;
        }
        n = recv(fd, buf + got, MQ_SPAMD_REPLY_MAX + 1 - got, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP, "spamd %s: reading the reply: %s",
                        s->spec, g_strerror(errno));
            break;
        }
        if (n == 0) {
            buf[got] = '\0';
            *len_r = got;
            return buf;
        }
        got += (size_t)n;
        if (got > MQ_SPAMD_REPLY_MAX) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "spamd %s: reply longer than %d bytes",
                        s->spec, MQ_SPAMD_REPLY_MAX);
            break;
        }
    }
    g_free(buf);
    return NULL;
}

/* Connects, sends head and body, half-closes, reads the whole reply. */
static char *
spamd_exchange(const struct mq_spamd *s, const char *head, const void *body, size_t body_len,
               size_t *len_r, GError **err)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)s->timeout_ms * 1000;
    char *reply = NULL;
    int fd;

    fd = spamd_connect(s, deadline, err);
    if (fd < 0)
        return NULL;
    if (spamd_send_all(s, fd, head, strlen(head), deadline, err) == 0
        && spamd_send_all(s, fd, body, body_len, deadline, err) == 0) {
        shutdown(fd, SHUT_WR);
        reply = spamd_read_all(s, fd, deadline, len_r, err);
    }
    close(fd);
    return reply;
}

/* ---- replies ---------------------------------------------------------------- */

static void
spamd_set_bad(GError **err, const char *what, const char *text, size_t len)
{
    char *raw = g_strndup(text, MIN(len, (size_t)SPAMD_TEXT_MAX));
    char *clean = mq_log_sanitize(raw, SPAMD_TEXT_MAX);

    g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "spamd reply: %s: \"%s\"", what, clean);
    g_free(clean);
    g_free(raw);
}

/* A finite number within the bounds, from the start of *p; moves *p past it. */
static bool
spamd_parse_number(const char **p, double *value_r)
{
    char *end = NULL;
    double v;

    /* g_ascii_strtod() also takes "nan", "inf" and hex: all refused here. */
    if (!g_ascii_isdigit(**p) && **p != '-' && **p != '+' && **p != '.')
        return false;
    v = g_ascii_strtod(*p, &end);
    if (end == *p || !isfinite(v) || fabs(v) > MQ_SPAMD_SCORE_MAX)
        return false;
    for (const char *c = *p; c < end; c++)
        if (!g_ascii_isdigit(*c) && *c != '.' && *c != '-' && *c != '+')
            return false;
    *p = end;
    *value_r = v;
    return true;
}

/* "True ; 12.3 / 5.0" (the value of the Spam header). */
static bool
spamd_parse_spam_header(const char *v, struct mq_spamd_result *r)
{
    if (g_ascii_strncasecmp(v, "True", 4) == 0 || g_ascii_strncasecmp(v, "Yes", 3) == 0)
        r->is_spam = true;
    else if (g_ascii_strncasecmp(v, "False", 5) == 0 || g_ascii_strncasecmp(v, "No", 2) == 0)
        r->is_spam = false;
    else
        return false;
    while (g_ascii_isalpha(*v))
        v++;
    while (*v == ' ')
        v++;
    if (*v++ != ';')
        return false;
    while (*v == ' ')
        v++;
    if (!spamd_parse_number(&v, &r->score))
        return false;
    while (*v == ' ')
        v++;
    if (*v++ != '/')
        return false;
    while (*v == ' ')
        v++;
    if (!spamd_parse_number(&v, &r->threshold))
        return false;
    while (*v == ' ')
        v++;
    return *v == '\0';
}

static bool
spamd_rule_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > SPAMD_RULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

/* The SYMBOLS body: "RULE1,RULE2,...", possibly with a line end. */
static char **
spamd_parse_rules(const char *body, size_t len)
{
    GPtrArray *rules = g_ptr_array_new();
    size_t i = 0;

    while (i < len && rules->len < MQ_SPAMD_RULES_MAX) {
        const char *start;
        size_t n;

        while (i < len && (body[i] == ',' || g_ascii_isspace(body[i])))
            i++;
        start = body + i;
        while (i < len && body[i] != ',' && !g_ascii_isspace(body[i]))
            i++;
        n = (size_t)(body + i - start);
        if (spamd_rule_name_ok(start, n))
            g_ptr_array_add(rules, g_strndup(start, n));
    }
    g_ptr_array_add(rules, NULL);
    return (char **)g_ptr_array_free(rules, FALSE);
}

/* Splits the status line and headers of buf. Calls back for each header
 * line; returns the offset of the body, or -1 with err. *code_r gets the
 * status code. */
static gssize
spamd_parse_head(const char *buf, size_t len, int *code_r, char **status_text_r,
                 GPtrArray *lines, GError **err)
{
    size_t pos = 0;
    bool first = true;

    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n;
        char *line;

        if (nl == NULL) {
            spamd_set_bad(err, "header not terminated", buf + pos, len - pos);
            return -1;
        }
        n = (size_t)(nl - (buf + pos));
        if (n > 0 && buf[pos + n - 1] == '\r')
            n--;
        if (n > SPAMD_LINE_MAX) {
            spamd_set_bad(err, "header line too long", buf + pos, n);
            return -1;
        }
        if (memchr(buf + pos, '\0', n) != NULL) {
            spamd_set_bad(err, "NUL in header", buf + pos, n);
            return -1;
        }
        line = g_strndup(buf + pos, n);
        pos = (size_t)(nl - buf) + 1;
        if (first) {
            guint64 code;
            char **f = g_strsplit(line, " ", 3);
            bool ok = g_strv_length(f) >= 2 && g_str_has_prefix(f[0], "SPAMD/")
                      && g_ascii_string_to_unsigned(f[1], 10, 0, 999, &code, NULL);

            if (ok) {
                *code_r = (int)code;
                *status_text_r = g_strdup(f[2] != NULL ? f[2] : "");
            } else {
                spamd_set_bad(err, "not a SPAMD status line", line, n);
            }
            g_strfreev(f);
            g_free(line);
            if (!ok)
                return -1;
            first = false;
            continue;
        }
        if (n == 0) {
            g_free(line);
            return (gssize)pos;
        }
        if (lines->len >= SPAMD_HEADERS_MAX) {
            g_free(line);
            spamd_set_bad(err, "too many header lines", "", 0);
            return -1;
        }
        g_ptr_array_add(lines, line);
    }
}

int
mq_spamd_parse_reply(const char *buf, size_t len, struct mq_spamd_result *r, GError **err)
{
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    char *status_text = NULL;
    bool have_spam = false, have_length = false;
    guint64 content_length = 0;
    gssize body;
    int code = -1, rc = -1;

    if (buf == NULL || r == NULL)
        mq_log_panic("mq_spamd_parse_reply: NULL argument");
    memset(r, 0, sizeof(*r));
    body = spamd_parse_head(buf, len, &code, &status_text, lines, err);
    if (body < 0)
        goto out;
    if (code != 0) {
        char *clean = mq_log_sanitize(status_text, SPAMD_TEXT_MAX);

        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "spamd answered %d %s", code, clean);
        g_free(clean);
        goto out;
    }
    for (guint i = 0; i < lines->len; i++) {
        const char *line = g_ptr_array_index(lines, i);
        const char *colon = strchr(line, ':');
        const char *v;

        if (colon == NULL)
            continue;
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (colon - line == 4 && g_ascii_strncasecmp(line, "Spam", 4) == 0) {
            if (have_spam || !spamd_parse_spam_header(v, r)) {
                spamd_set_bad(err, "bad Spam header", line, strlen(line));
                goto out;
            }
            have_spam = true;
        } else if (colon - line == 14 && g_ascii_strncasecmp(line, "Content-length", 14) == 0) {
            if (have_length
                || !g_ascii_string_to_unsigned(v, 10, 0, MQ_SPAMD_REPLY_MAX, &content_length,
                                               NULL)) {
                spamd_set_bad(err, "bad Content-length", line, strlen(line));
                goto out;
            }
            have_length = true;
        }
    }
    if (!have_spam) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "spamd reply: no Spam header");
        goto out;
    }
    if (have_length && content_length != len - (size_t)body) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE,
                    "spamd reply: body of %zu bytes, Content-length says %" G_GUINT64_FORMAT,
                    len - (size_t)body, content_length);
        goto out;
    }
    r->rules = spamd_parse_rules(buf + body, len - (size_t)body);
    rc = 0;

out:
    if (rc < 0)
        mq_spamd_result_clear(r);
    g_free(status_text);
    g_ptr_array_unref(lines);
    return rc;
}

/* ---- verbs ------------------------------------------------------------------ */

int
mq_spamd_check(struct mq_spamd *s, const void *msg, size_t len, struct mq_spamd_result *r,
               GError **err)
{
    char *head = NULL, *reply = NULL;
    size_t reply_len = 0;
    int rc = -1;

    if (s == NULL || r == NULL || (msg == NULL && len > 0))
        mq_log_panic("mq_spamd_check: invalid arguments");
    memset(r, 0, sizeof(*r));
    if ((uint64_t)len > s->max_size) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT,
                    "message of %zu bytes is over the spamd limit of %" G_GUINT64_FORMAT, len,
                    s->max_size);
        goto out;
    }
    head = g_strdup_printf("SYMBOLS SPAMC/1.5\r\nContent-length: %zu\r\n%s%s%s\r\n", len,
                           s->user != NULL ? "User: " : "", s->user != NULL ? s->user : "",
                           s->user != NULL ? "\r\n" : "");
    reply = spamd_exchange(s, head, msg, len, &reply_len, err);
    if (reply == NULL)
        goto out;
    if (mq_spamd_parse_reply(reply, reply_len, r, err) < 0) {
        g_prefix_error(err, "%s: ", s->spec);
        goto out;
    }
    rc = 0;

out:
    g_free(reply);
    g_free(head);
    return rc;
}

int
mq_spamd_ping(struct mq_spamd *s, GError **err)
{
    char *reply = NULL;
    size_t len = 0;
    int rc = -1;

    if (s == NULL)
        mq_log_panic("mq_spamd_ping: NULL client");
    reply = spamd_exchange(s, "PING SPAMC/1.5\r\n\r\n", "", 0, &len, err);
    if (reply == NULL)
        return -1;
    if (g_str_has_prefix(reply, "SPAMD/") && strstr(reply, " 0 PONG") != NULL)
        rc = 0;
    else
        spamd_set_bad(err, "not PONG", reply, len);
    g_free(reply);
    return rc;
}
