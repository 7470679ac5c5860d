/* sockio - stream sockets to the daemons mqscan asks (clamd, spamd): the
 * "unix:/path" / "tcp:host:port" server strings, and connecting and waiting
 * under a deadline.
 *
 * Public functions: mq_sock_spec_parse(), mq_sock_spec_clear(),
 * mq_sock_remaining_ms(), mq_sock_wait(), mq_sock_connect().
 *
 * Deadlines are g_get_monotonic_time() values (microseconds). Sockets are
 * nonblocking and close-on-exec.
 *
 * XXX getaddrinfo() has no timeout: a host name that needs a slow DNS
 * lookup can take longer than the deadline; configure addresses or names
 * from /etc/hosts.
 *
 * DIAGNOSTICS
 * mq_sock_spec_parse() fails with MQ_ERROR_CONFIG and a message that starts
 * with what and the quoted string. mq_sock_connect() returns -1 and a
 * reason ("connect: Connection refused", "connect timed out after N ms",
 * "cannot resolve HOST: ...") for the caller's own error.
 */
#ifndef MQSCAN_SOCKIO_H
#define MQSCAN_SOCKIO_H

#include <stdbool.h>

#include <glib.h>

struct mq_sock_spec {
    char *spec;                 /* as configured */
    bool is_unix;
    char *path;                 /* unix: absolute, fits sun_path */
    char *host;                 /* tcp: name or address, without [] */
    char *port;                 /* tcp: decimal, 1-65535 */
};

/* Parses "unix:/absolute/path" or "tcp:host:port" ("tcp:[v6addr]:port")
 * into *s (clear with mq_sock_spec_clear()). what names the option in the
 * error ("clamd server"). Returns 0 or -1 with err set (*s is then clear). */
int mq_sock_spec_parse(const char *spec, const char *what, struct mq_sock_spec *s,
                       GError **err);
void mq_sock_spec_clear(struct mq_sock_spec *s);

/* Milliseconds left until deadline, 0 if past. */
int mq_sock_remaining_ms(gint64 deadline);

/* Waits for events (POLLIN, POLLOUT) on fd until deadline. Returns 1 when
 * ready, 0 on timeout, -1 with errno. EINTR restarts with the time left. */
int mq_sock_wait(int fd, short events, gint64 deadline);

/* Connects to s before deadline (the addresses of a host name share it).
 * Returns a connected socket, or -1 with *why_r set (caller frees);
 * timeout_ms is only quoted in the timeout reason. */
int mq_sock_connect(const struct mq_sock_spec *s, gint64 deadline, unsigned timeout_ms,
                    char **why_r);

#endif
