/* bayes - a trainable token classifier for spam: a token database in
 * SQLite, written by mqscan-learn(8), and an in-memory copy of it that
 * mqscand classifies messages with.
 *
 * Public functions: mq_bayes_open(), mq_bayes_free(), mq_bayes_counts(),
 * mq_bayes_ready(), mq_bayes_classify(), mq_bayes_result_clear(),
 * mq_bayes_store_open(), mq_bayes_store_close(), mq_bayes_store_learn(),
 * mq_bayes_store_forget(), mq_bayes_store_commit(), mq_bayes_store_counts(),
 * mq_bayes_store_top(), mq_bayes_top_free(), mq_bayes_siphash().
 *
 * Method. A message is cut into tokens (tokenize.h). Each token w seen in
 * s learned spam and h learned ham messages, out of nspam and nham, gets
 * Robinson's probability
 *     p(w) = (s / nspam) / (s / nspam + h / nham)
 *     f(w) = (MQ_BAYES_S * MQ_BAYES_X + n * p(w)) / (MQ_BAYES_S + n),  n = s + h
 * so that a rarely seen token stays near MQ_BAYES_X. Only tokens with
 * |f(w) - 0.5| >= MQ_BAYES_MIN_DEV count, at most the MQ_BAYES_TOKENS_USED
 * strongest, combined with Fisher's chi-square method (as bogofilter and
 * SpamAssassin do):
 *     H = chi2Q(-2 sum ln f(w), 2k),  S = chi2Q(-2 sum ln (1 - f(w)), 2k)
 *     prob = (1 + H - S) / 2
 * 0 is certainly ham, 1 certainly spam, 0.5 undecided (also: no token).
 *
 * Storage. One SQLite file (default: the config's bayes_db), WAL mode:
 *   schema_version(version)              MQ_BAYES_SCHEMA_VERSION
 *   totals(id = 1, hash_key, nspam, nham)
 *   tokens(hash PRIMARY KEY, token, nspam, nham)
 *   seen(fingerprint PRIMARY KEY, spam)
 * hash is a keyed 64-bit SipHash-2-4 of the token, with a random key made
 * when the file is created, so that nobody who does not have the file can
 * make up tokens that collide with the strong ones in it; the token's text
 * is kept for reports only. A message's fingerprint is the SHA-256 of its
 * Message-ID, or of its tokens when it has none: learning a message twice
 * as the same class does nothing, as the other class moves it.
 *
 * Use by the daemon. mq_bayes_open() reads the whole file once, read-only,
 * into a sorted array of (hash, nspam, nham); classifying costs no SQL. The
 * handle is immutable: any number of threads may call mq_bayes_classify()
 * and the other const functions on it at once (each with its own
 * GMimeMessage). A newer database is picked up by opening a new handle and
 * swapping it in (config reload). The file has to exist and hold enough
 * training: mq_bayes_ready() is false below MQ_BAYES_MIN_LEARNED messages of
 * either class, and the caller then scores without the classifier.
 *
 * Training. A struct mq_bayes_store is one read-write SQLite connection,
 * for one thread. Learning and forgetting happen in one transaction that
 * mq_bayes_store_commit() ends (call it every few hundred messages and at
 * the end); mq_bayes_store_close() without it throws the batch away. One
 * message that fails is undone alone (a savepoint), the batch stays.
 * Writers wait for each other up to MQ_BAYES_BUSY_TIMEOUT_MS.
 *
 * Ownership: strings in results are the caller's (see each function);
 * messages are borrowed for the call.
 *
 * DIAGNOSTICS
 * Returned, in the MQ_ERROR domain, with the database's path first:
 * MQ_ERROR_IO (the file is missing or unreadable), MQ_ERROR_CORRUPT (not a
 * regular file, not an mqscan token database, another schema version,
 * damaged counts), MQ_ERROR_LIMIT (more than MQ_BAYES_DB_TOKENS_MAX tokens
 * to load), MQ_ERROR_TEMP (locked longer than the busy timeout, disk full),
 * MQ_ERROR_CONFIG (mq_bayes_classify() on a handle that is not ready). A
 * NULL handle, message or result panics.
 */
#ifndef MQSCAN_BAYES_H
#define MQSCAN_BAYES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "mqscan/tokenize.h"

#define MQ_BAYES_SCHEMA_VERSION 1
/* Learned messages of each class before mq_bayes_ready() is true. */
#define MQ_BAYES_MIN_LEARNED 200
/* Robinson's strength of the prior, and the prior (f of an unknown token).
 * These and MQ_BAYES_MIN_DEV were chosen by 10-fold cross-validation on the
 * SpamAssassin public corpus (tests/mq-bayes-cv.c). */
#define MQ_BAYES_S 0.5
#define MQ_BAYES_X 0.538
/* Tokens closer to 0.5 than this are not used. */
#define MQ_BAYES_MIN_DEV 0.1
/* The most significant tokens used per message. */
#define MQ_BAYES_TOKENS_USED 150
/* Tokens named in mq_bayes_result.clues, and bytes per token there. */
#define MQ_BAYES_CLUES 8
#define MQ_BAYES_CLUE_BYTES 40
/* Largest database mq_bayes_open() loads (16 bytes each in memory). */
#define MQ_BAYES_DB_TOKENS_MAX (8u * 1024 * 1024)
#define MQ_BAYES_BUSY_TIMEOUT_MS 10000
/* Longest list mq_bayes_store_top() returns. */
#define MQ_BAYES_TOP_MAX 10000

struct mq_bayes;
struct mq_bayes_store;

struct mq_bayes_result {
    double prob;                /* 0 ham .. 1 spam; 0.5 when no token counted */
    unsigned tokens_used;       /* tokens that went into prob */
    char *clues;                /* "tok:0.99 tok2:0.02 ...": the MQ_BAYES_CLUES
                                   strongest, sanitized, each cut to
                                   MQ_BAYES_CLUE_BYTES, blanks as '_';
                                   "" if none. Owned; freed by
                                   mq_bayes_result_clear() */
};

/* Loads the database at path read-only (a symbolic link or anything but a
 * regular file is refused; a WAL reader needs write access to the "-shm"
 * file or the directory, as for mq_stats_open()). Returns a handle (caller
 * frees with mq_bayes_free()), ready or not, or NULL with err set. */
struct mq_bayes *mq_bayes_open(const char *path, GError **err);

/* Frees *bayes and sets it to NULL. NULL is allowed. */
void mq_bayes_free(struct mq_bayes **bayes);

/* Learned messages of each class. Either pointer may be NULL. */
void mq_bayes_counts(const struct mq_bayes *bayes, unsigned *nham_r, unsigned *nspam_r);

/* True if at least MQ_BAYES_MIN_LEARNED ham and as many spam were learned. */
bool mq_bayes_ready(const struct mq_bayes *bayes);

/* Classifies msg (only read). Fills *result (clear it with
 * mq_bayes_result_clear() afterwards) and returns 0, or returns -1 with
 * MQ_ERROR_CONFIG if the handle is not ready. Thread-safe (see above). */
int mq_bayes_classify(const struct mq_bayes *bayes, GMimeMessage *msg,
                      struct mq_bayes_result *result, GError **err);

/* Frees what a result owns and zeroes it. */
void mq_bayes_result_clear(struct mq_bayes_result *result);

/* ---- training ------------------------------------------------------------- */

/* Opens the database at path read-write, creating it (mode 0640) and its
 * tables if missing, in WAL mode. A file that is not an mqscan token
 * database is refused unchanged. Returns a handle (caller frees with
 * mq_bayes_store_close()) or NULL with err set. */
struct mq_bayes_store *mq_bayes_store_open(const char *path, GError **err);

/* Rolls back what was not committed, closes *store, sets it to NULL. NULL
 * is allowed. */
void mq_bayes_store_close(struct mq_bayes_store **store);

/* Learns msg as spam or ham. Returns 1 if learned (also: moved from the
 * other class), 0 if it was already learned as that class, -1 with err
 * set (the message's changes are undone, the batch's others kept). */
int mq_bayes_store_learn(struct mq_bayes_store *store, GMimeMessage *msg, bool spam,
                         GError **err);

/* Unlearns msg. Returns 1 if it was learned, 0 if not, -1 with err set. */
int mq_bayes_store_forget(struct mq_bayes_store *store, GMimeMessage *msg, GError **err);

/* Commits what was learned since the last commit (nothing to do: 0).
 * Returns 0 or -1 with err set (the batch is then lost). */
int mq_bayes_store_commit(struct mq_bayes_store *store, GError **err);

/* Learned messages of each class, counting what is not committed yet.
 * Returns 0 or -1 with err set. */
int mq_bayes_store_counts(struct mq_bayes_store *store, unsigned *nham_r, unsigned *nspam_r,
                          GError **err);

/* One token of a top list. */
struct mq_bayes_top {
    char *token;                /* sanitized, at most MQ_BAYES_CLUE_BYTES bytes */
    unsigned nspam, nham;
    double prob;                /* f(w) as the classifier computes it */
};

/* The max (at most MQ_BAYES_TOP_MAX) tokens with the highest f(w) (spam)
 * or the lowest (ham), ties by more messages. Returns 0 and *top_r (caller
 * frees with mq_bayes_top_free(); NULL when *n_r is 0), or -1 with err. */
int mq_bayes_store_top(struct mq_bayes_store *store, bool spam, size_t max,
                       struct mq_bayes_top **top_r, size_t *n_r, GError **err);

/* Frees the n entries of *top and the array, sets *top to NULL. */
void mq_bayes_top_free(struct mq_bayes_top **top, size_t n);

/* The token hash: SipHash-2-4 of len bytes of data with a 16-byte key.
 * Public for its test vectors only. */
#define MQ_BAYES_KEY_LEN 16
uint64_t mq_bayes_siphash(const uint8_t key[MQ_BAYES_KEY_LEN], const void *data, size_t len);

#endif
