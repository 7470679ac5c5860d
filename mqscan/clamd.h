/* clamd - scanning through clamd daemons with the INSTREAM protocol.
 *
 * Public functions: mq_clamd_new(), mq_clamd_free(), mq_clamd_scan(),
 * mq_clamd_version().
 *
 * Servers are "unix:/path/to/clamd.ctl" or "tcp:host:port". A scan goes to
 * one server, starting with the next one in turn (so several mqscand workers
 * spread their load); a server that cannot be connected to, times out, or
 * answers with an error is skipped and the next one tried. Every connect,
 * write and read has the timeout. Only when no server gives an answer does
 * the scan fail. The protocol, from clamd(8): "zINSTREAM\0", then chunks of
 * a 4-byte big-endian length and data, a zero-length chunk, and one reply
 * "stream: OK", "stream: NAME FOUND" or "... ERROR", NUL-terminated.
 *
 * DIAGNOSTICS
 * mq_clamd_new() fails (MQ_ERROR_CONFIG) on a server string that does not
 * parse. mq_clamd_scan() returns -1 with MQ_ERROR_ENGINE when no server
 * answered, naming each failure.
 */
#ifndef MQSCAN_CLAMD_H
#define MQSCAN_CLAMD_H

#include <stddef.h>

#include <glib.h>

struct mq_clamd;

enum mq_clamd_reply {
    MQ_CLAMD_CLEAN,
    MQ_CLAMD_FOUND,             /* *name_r: the signature name */
    MQ_CLAMD_LIMIT,             /* "INSTREAM size limit exceeded": *name_r says so */
};

/* servers: NULL-terminated. timeout_ms applies to each connect, write and
 * read. Returns a new client (caller frees with mq_clamd_free()) or NULL. */
struct mq_clamd *mq_clamd_new(const char *const *servers, unsigned timeout_ms, GError **err);
void mq_clamd_free(struct mq_clamd **clamd);

/* Scans len bytes of buf. Returns an mq_clamd_reply (>= 0; *name_r set for
 * FOUND and LIMIT, caller frees) or -1 with err. Thread-safe. */
int mq_clamd_scan(struct mq_clamd *clamd, const void *buf, size_t len, char **name_r,
                  GError **err);

/* Asks the first server that answers for its VERSION ("ClamAV 1.4.6/..."),
 * also a reachability check for --lint. Caller frees; NULL with err. */
char *mq_clamd_version(struct mq_clamd *clamd, GError **err);

#endif
