/* quarantine - durable store of original messages that were not delivered as
 * they arrived.
 *
 * Public functions: mq_quarantine_open(), mq_quarantine_free(),
 * mq_quarantine_store(), mq_quarantine_id_ok().
 *
 * Layout: DIR/YYYYMMDD/QUEUEID-RANDOM/ holding "qf" and "df" (the message
 * exactly as the incoming sendmail queued it, envelope included, so that it
 * can be released as it was), "part-N" for each removed part (its decoded
 * content; N is the part's number in the message, never its file name), and
 * "meta" (versioned "key: value" lines ending in "end", every value
 * sanitized and cut to 1000 bytes). An entry is built under DIR/tmp/ and
 * renamed into place after everything in it is fsynced, so a reader never
 * sees half an entry. Files are 0600, directories 0700. Names are built from
 * the validated queue ID, the date and random letters only, never from
 * message data. The entry's ID is "YYYYMMDD-QUEUEID-RANDOM".
 *
 * DIAGNOSTICS
 * Failures are returned (MQ_ERROR_TEMP for a full disk); a failed store
 * leaves nothing behind but, at worst, a directory under DIR/tmp/.
 */
#ifndef MQSCAN_QUARANTINE_H
#define MQSCAN_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <glib.h>

struct mq_quarantine;

/* A removed part: its number in the message (1, 2, ...) and content. */
struct mq_quarantine_part {
    unsigned number;
    const void *data;
    size_t len;
};

/* What the meta file records; every string is untrusted and sanitized on
 * write. findings are strings such as "part 2 (invoice.zip): Virus.Name". */
struct mq_quarantine_record {
    const char *queue_id;
    const char *reason;         /* "infected", ... */
    const char *action;         /* "replace", "delete", "quarantine-only" */
    const char *direction;      /* "inbound", "outbound", "internal" */
    const struct mq_quarantine_part *parts;
    size_t n_parts;
    const char *sender;
    const char *const *recipients;  /* NULL-terminated */
    const char *subject;        /* may be NULL */
    const char *const *findings;    /* NULL-terminated */
    time_t when;
};

/* Opens (creating, 0700) the quarantine directory dir and its tmp/.
 * Returns a new handle (caller frees with mq_quarantine_free()) or NULL. */
struct mq_quarantine *mq_quarantine_open(const char *dir, GError **err);
void mq_quarantine_free(struct mq_quarantine **quarantine);

/* Stores one message. Returns the new entry's ID (caller frees with
 * g_free()) or NULL with err set. Thread-safe. */
char *mq_quarantine_store(struct mq_quarantine *quarantine,
                          const struct mq_quarantine_record *record,
                          const char *qf, size_t qf_len,
                          const char *df, size_t df_len, GError **err);

/* True if id has the form of an entry ID ("YYYYMMDD-QUEUEID-RANDOM"). */
bool mq_quarantine_id_ok(const char *id);

#endif
