/* attempts - the record of messages being processed, kept across crashes.
 *
 * Public functions: mq_attempts_open(), mq_attempts_free(),
 * mq_attempts_begin(), mq_attempts_end(), mq_attempts_count(),
 * mq_attempts_sync().
 *
 * Before a worker starts on a message it records "one more attempt"; when
 * the attempt ends, whatever its outcome, the record goes. A record that is
 * still there at the next start of the scanning process counts an attempt
 * that never ended: the process crashed, or was stopped because the message
 * ran past its time limit. That count is what lets the daemon retry a
 * message a bounded number of times, and then hold it instead of crashing on
 * it forever. (MailScanner keeps such a record for the same reason.)
 *
 * Where the records are: an attempt in progress is one fixed-width line
 * ("ID COUNT") in a slot file of the directory (".slot-N", one per attempt
 * running at once, reused from message to message), so a message that ends
 * well costs two small writes and no file created or removed. When the
 * directory is opened (a new scanning process), the lines left in the slots
 * are the attempts that never ended: each becomes, or raises, the record
 * file named after its queue ID, which holds the count as one line
 * ("%10u\n") and stays until an attempt on that message ends. Those record
 * files are also what an admin may read, write or remove by hand.
 *
 * Nothing here is fsynced: the records must survive the process, which the
 * page cache guarantees, not the machine. A power cut resets the counts,
 * which only costs another bounded round of attempts. Only IDs that pass
 * mq_fs_id_ok() become file names or slot lines.
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

/* Opens (creating it 0700 if missing) the directory path, turns the
 * attempts left in its slots into record files, and reads the record files.
 * Returns a new record (caller frees with mq_attempts_free(), which leaves
 * the slots of attempts still in progress as they are) or NULL with err set.
 * One process at a time may have a directory open. */
struct mq_attempts *mq_attempts_open(const char *path, GError **err);
void mq_attempts_free(struct mq_attempts **attempts);

/* Records the start of an attempt on id and returns how many earlier
 * attempts never ended. Thread-safe; one attempt per ID at a time (a second
 * begin before the end counts as one more attempt that did not end). */
unsigned mq_attempts_begin(struct mq_attempts *attempts, const char *id);
/* Records the end of the attempt on id (its slot line and record file are
 * removed). */
void mq_attempts_end(struct mq_attempts *attempts, const char *id);
/* How many attempts on id never ended, counting one in progress, without
 * recording anything. */
unsigned mq_attempts_count(struct mq_attempts *attempts, const char *id);

/* Removes the records of every ID not in present (a set of IDs): messages
 * that left the queue some other way. Attempts in progress are left alone. */
void mq_attempts_sync(struct mq_attempts *attempts, GHashTable *present);

#endif
