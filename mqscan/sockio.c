#include <config.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/sockio.h"

#define SOCK_SPEC_MAX 1024

void
mq_sock_spec_clear(struct mq_sock_spec *s)
{
    g_free(s->spec);
    g_free(s->path);
    g_free(s->host);
    g_free(s->port);
    memset(s, 0, sizeof(*s));
}

static bool
sock_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

int
mq_sock_spec_parse(const char *spec, const char *what, struct mq_sock_spec *s, GError **err)
{
    struct sockaddr_un sun;

    memset(s, 0, sizeof(*s));
    if (spec == NULL || spec[0] == '\0' || strlen(spec) > SOCK_SPEC_MAX ||
        !sock_printable(spec)) {
        char *shown = mq_log_sanitize(spec != NULL ? spec : "(null)", 80);
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "%s \"%s\": empty, too long or not printable", what, shown);
        g_free(shown);
        return -1;
    }
    if (g_str_has_prefix(spec, "unix:")) {
        const char *path = spec + 5;

        if (path[0] != '/') {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "%s \"%s\": the socket path must be absolute", what, spec);
            return -1;
        }
        if (strlen(path) >= sizeof(sun.sun_path)) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "%s \"%s\": socket path longer than %zu bytes", what, spec,
                        sizeof(sun.sun_path) - 1);
            return -1;
        }
        s->is_unix = true;
        s->path = g_strdup(path);
    } else if (g_str_has_prefix(spec, "tcp:")) {
        const char *hp = spec + 4;
        const char *colon = strrchr(hp, ':');
        guint64 port = 0;
        size_t hlen;

        if (colon == NULL || colon == hp ||
            !g_ascii_string_to_unsigned(colon + 1, 10, 1, 65535, &port, NULL)) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "%s \"%s\": expected tcp:HOST:PORT with a port of 1-65535", what, spec);
            return -1;
        }
        hlen = (size_t)(colon - hp);
        if (hp[0] == '[') {
            if (hlen < 3 || hp[hlen - 1] != ']') {
                g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                            "%s \"%s\": unbalanced [ ] around the address", what, spec);
                return -1;
            }
            s->host = g_strndup(hp + 1, hlen - 2);
        } else if (memchr(hp, ':', hlen) != NULL || memchr(hp, ']', hlen) != NULL) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "%s \"%s\": write an IPv6 address as tcp:[ADDR]:PORT", what, spec);
            return -1;
        } else {
            s->host = g_strndup(hp, hlen);
        }
        s->port = g_strdup_printf("%u", (unsigned)port);
    } else {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "%s \"%s\": expected unix:/PATH or tcp:HOST:PORT", what, spec);
        return -1;
    }
    s->spec = g_strdup(spec);
    return 0;
}

int
mq_sock_remaining_ms(gint64 deadline)
{
    gint64 left = deadline - g_get_monotonic_time();

    if (left <= 0)
        return 0;
    left = (left + 999) / 1000;
    return left > INT_MAX ? INT_MAX : (int)left;
}

int
mq_sock_wait(int fd, short events, gint64 deadline)
{
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = events };
        int rc = poll(&pfd, 1, mq_sock_remaining_ms(deadline));

        if (rc > 0)
            return 1;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static int
sock_connect_addr(const struct sockaddr *sa, socklen_t salen, gint64 deadline,
                  unsigned timeout_ms, char **why_r)
{
    int fd, soerr = 0, rc;
    socklen_t optlen = sizeof(soerr);

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *why_r = g_strdup_printf("socket: %s", g_strerror(errno));
        return -1;
    }
    if (connect(fd, sa, salen) == 0)
        return fd;
    if (errno != EINPROGRESS && errno != EINTR) {
        /* EAGAIN here is a Unix socket whose listen queue is full. */
        soerr = errno;
    } else if ((rc = mq_sock_wait(fd, POLLOUT, deadline)) == 0) {
        close(fd);
        *why_r = g_strdup_printf("connect timed out after %u ms", timeout_ms);
        return -1;
    } else if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &optlen) < 0) {
        soerr = errno;
    }
    if (soerr == 0)
        return fd;
    close(fd);
    *why_r = g_strdup_printf("connect: %s", g_strerror(soerr));
    return -1;
}

int
mq_sock_connect(const struct mq_sock_spec *s, gint64 deadline, unsigned timeout_ms,
                char **why_r)
{
    struct addrinfo hints, *res = NULL;
    int fd = -1, rc;

    if (s->is_unix) {
        struct sockaddr_un sun;

        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        /* Length checked in mq_sock_spec_parse(). */
        memcpy(sun.sun_path, s->path, strlen(s->path) + 1);
        return sock_connect_addr((const struct sockaddr *)&sun, sizeof(sun), deadline,
                                 timeout_ms, why_r);
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(s->host, s->port, &hints, &res);
    if (rc != 0) {
        *why_r = g_strdup_printf("cannot resolve %s: %s", s->host,
                                 rc == EAI_SYSTEM ? g_strerror(errno) : gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        g_clear_pointer(why_r, g_free);
        fd = sock_connect_addr(ai->ai_addr, ai->ai_addrlen, deadline, timeout_ms, why_r);
        if (fd >= 0 || mq_sock_remaining_ms(deadline) == 0)
            break;
    }
    freeaddrinfo(res);
    return fd;
}
