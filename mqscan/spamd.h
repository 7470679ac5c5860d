/* spamd - asks SpamAssassin's spamd for a score, with the spamc protocol.
 *
 * Public functions: mq_spamd_new(), mq_spamd_free(), mq_spamd_check(),
 * mq_spamd_ping(), mq_spamd_result_clear(), mq_spamd_parse_reply().
 *
 * The server is "unix:/path/to/spamd.sock" or "tcp:host:port" (the
 * spamd_server setting). A check sends "SYMBOLS SPAMC/1.5" with
 * Content-length (and User, if one is set) and the message, and reads
 * "SPAMD/1.x 0 EX_OK", a "Spam: True|False ; SCORE / THRESHOLD" header and
 * the comma-separated names of the rules that hit. Connecting, sending and
 * reading share one deadline, timeout_ms from the start of the check.
 *
 * Size: a message longer than max_size (spamd_max_size) is not sent: the
 * check fails with MQ_ERROR_LIMIT at once, and the caller scores the
 * message without spamd, as spamc does with its -s limit.
 *
 * Ownership: a result's rules belong to the result; free them with
 * mq_spamd_result_clear().
 *
 * DIAGNOSTICS
 * mq_spamd_new() fails with MQ_ERROR_CONFIG on a bad server string or
 * timeout. mq_spamd_check() returns -1 with MQ_ERROR_TEMP when spamd cannot
 * be reached or does not answer in time, MQ_ERROR_ENGINE when it answers
 * with an error or something that is not a reply, and MQ_ERROR_LIMIT for a
 * message over max_size. In each case the caller falls back to its own
 * score and logs the message. NULL arguments panic.
 */
#ifndef MQSCAN_SPAMD_H
#define MQSCAN_SPAMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

struct mq_spamd;

struct mq_spamd_result {
    double score;                   /* finite, within +-MQ_SPAMD_SCORE_MAX */
    double threshold;               /* spamd's required_score */
    bool is_spam;                   /* spamd's verdict ("Spam: True") */
    char **rules;                   /* NULL-terminated rule names, [A-Za-z0-9_.-] */
};

#define MQ_SPAMD_SCORE_MAX 10000.0  /* a score beyond this is a broken reply */
#define MQ_SPAMD_RULES_MAX 256      /* rule names kept from one reply */
#define MQ_SPAMD_REPLY_MAX (64 * 1024)  /* longest reply read */

/* server: "unix:/path" or "tcp:host:port" ("tcp:[v6]:port"). user: NULL or
 * "" for none, else sent as "User:" (printable, no blanks, < 128 bytes).
 * timeout_ms: 1 to 600000. max_size: largest message sent. Returns a client
 * (free with mq_spamd_free()) or NULL with err. */
struct mq_spamd *mq_spamd_new(const char *server, const char *user, unsigned timeout_ms,
                              uint64_t max_size, GError **err);
void mq_spamd_free(struct mq_spamd **spamd);

/* Scores len bytes of msg. Returns 0 with *result_r filled (clear it with
 * mq_spamd_result_clear()), or -1 with err and *result_r empty.
 * Thread-safe (one connection per check). */
int mq_spamd_check(struct mq_spamd *spamd, const void *msg, size_t len,
                   struct mq_spamd_result *result_r, GError **err);

/* PING; 0 if spamd answers PONG in time, else -1 with err. */
int mq_spamd_ping(struct mq_spamd *spamd, GError **err);

/* Frees the rules and zeroes the result. */
void mq_spamd_result_clear(struct mq_spamd_result *result);

/* Parses a complete reply to SYMBOLS (len bytes, need not be NUL-
 * terminated). Returns 0 with *result_r, or -1 with err (MQ_ERROR_ENGINE).
 * Exposed for tests. */
int mq_spamd_parse_reply(const char *buf, size_t len, struct mq_spamd_result *result_r,
                         GError **err);

#endif
