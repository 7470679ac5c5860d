/* attempts - the record of messages being processed, kept across crashes.
 *
 * Public functions: mq_attempts_open(), mq_attempts_free(),
 * mq_attempts_begin(), mq_attempts_end(), mq_attempts_count(),
 * mq_attempts_sync().
 *
 * Before a worker starts on a message it records "one more attempt" in a
 * small file named after the queue ID in a directory of its own; when the
 * attempt ends, whatever its outcome, the file goes. A file that is still
 * there at the next attempt therefore counts attempts that never ended: the
 * process crashed, or was stopped because the message ran past its time
 * limit. That count is what lets the daemon retry a message a bounded number
 * of times, and then hold it instead of crashing on it forever. (MailScanner
 * keeps such a record for the same reason.)
 *
 * The files are written without fsync: they must survive the process, which
 * the page cache guarantees, not the machine. A power cut resets the counts,
 * which only costs another bounded round of attempts. Only IDs that pass
 * mq_fs_id_ok() become file names.
 *
 * DIAGNOSTICS
 * mq_attempts_open() returns NULL with err set. The others never fail from
 * the caller's point of view: a record that cannot be written or removed is
 * logged (a lost record only costs counting), and an unreadable one counts
 * as zero.
 */
#ifndef MQSCAN_ATTEMPTS_H
#define MQSCAN_ATTEMPTS_H

#include <glib.h>

struct mq_attempts;

/* Opens (creating it 0700 if missing) the directory path. Returns a new
 * record (caller frees with mq_attempts_free()) or NULL with err set. */
struct mq_attempts *mq_attempts_open(const char *path, GError **err);
void mq_attempts_free(struct mq_attempts **attempts);

/* Records the start of an attempt on id and returns how many earlier
 * attempts never ended. Thread-safe for distinct IDs. */
unsigned mq_attempts_begin(struct mq_attempts *attempts, const char *id);
/* Records the end of the attempt on id (the record is removed). */
void mq_attempts_end(struct mq_attempts *attempts, const char *id);
/* How many attempts on id never ended, without recording anything. */
unsigned mq_attempts_count(struct mq_attempts *attempts, const char *id);

/* Removes the records of every ID not in present (a set of IDs): messages
 * that left the queue some other way. */
void mq_attempts_sync(struct mq_attempts *attempts, GHashTable *present);

#endif
