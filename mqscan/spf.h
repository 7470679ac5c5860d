/* spf - Sender Policy Framework checks with libspf2.
 *
 * Public functions: mq_spf_new(), mq_spf_free(), mq_spf_check(),
 * mq_spf_result_name(), mq_spf_header_value().
 *
 * The check is RFC 7208 check_host() on the relay's address, the HELO name
 * and the envelope sender (an empty sender is checked as postmaster@HELO).
 * DNS goes through libspf2's resolver layer, which is the system resolver
 * (/etc/resolv.conf, with its timeouts and attempts): this is what
 * production uses, and a site wants a caching resolver nearby anyway.
 *
 * Threads: libspf2 keeps one resolver state per thread, but an
 * SPF_server_t (records, responses, its DNS layer) is not meant to be used by
 * two threads at once. mq_spf keeps a pool: a check takes an idle server
 * (or makes one) under a mutex, uses it alone, and gives it back. So any
 * number of worker threads may call mq_spf_check() on one mq_spf.
 * mq_spf_new() also sets libspf2's process-wide log hooks (warnings and
 * notices go to mq_log_debug, sanitized); call it before the workers start.
 *
 * Ownership: *header_r from mq_spf_check() belongs to the caller (g_free).
 *
 * DIAGNOSTICS
 * mq_spf_new() fails with MQ_ERROR_CONFIG on a bad receiver name or when
 * libspf2 cannot make a server. mq_spf_check() returns -1 with
 * MQ_ERROR_ENGINE only when libspf2 could not evaluate at all; DNS trouble
 * is the result MQ_SPF_TEMPERROR and a bad record MQ_SPF_PERMERROR, as the
 * RFC says. libspf2 itself aborts the process on internal assertion
 * failures (its SPF_error handler).
 */
#ifndef MQSCAN_SPF_H
#define MQSCAN_SPF_H

#include <stdint.h>

#include <glib.h>

struct mq_spf;

enum mq_spf_result {
    MQ_SPF_NONE,
    MQ_SPF_NEUTRAL,
    MQ_SPF_PASS,
    MQ_SPF_FAIL,
    MQ_SPF_SOFTFAIL,
    MQ_SPF_TEMPERROR,
    MQ_SPF_PERMERROR,
};

/* Longest value mq_spf_check() puts in *header_r, NUL not counted. */
#define MQ_SPF_HEADER_MAX 512

/* receiver: this host's name, named in the Received-SPF value (letters,
 * digits, '.', '-'; 1 to 253 bytes). Returns a checker (free with
 * mq_spf_free()) or NULL with err. */
struct mq_spf *mq_spf_new(const char *receiver, GError **err);
void mq_spf_free(struct mq_spf **spf);

/* Checks sender (may be "" for the null sender) from addr (family AF_INET:
 * addr[0..3], AF_INET6: addr[0..15]) that said helo (may be ""). On success
 * returns 0 with *result_r and, if header_r is not NULL, *header_r: the value
 * of a Received-SPF: header ("pass (...) client-ip=...; ..."), one line of
 * printable ASCII at most MQ_SPF_HEADER_MAX bytes (caller frees). sender
 * and helo are attacker data: control characters in them cannot reach the
 * header. Returns -1 with err (MQ_ERROR_ENGINE) if libspf2 failed.
 * Thread-safe. */
int mq_spf_check(struct mq_spf *spf, int family, const uint8_t addr[16], const char *helo,
                 const char *sender, enum mq_spf_result *result_r, char **header_r,
                 GError **err);

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror". */
const char *mq_spf_result_name(enum mq_spf_result result);

/* Makes s fit for a header value: every control character (CR, LF, TAB,
 * NUL...), DEL and byte above 0x7e becomes '?', and the result is cut to
 * MQ_SPF_HEADER_MAX bytes. Caller frees. Exposed for tests. */
char *mq_spf_header_value(const char *s);

#endif
