/* queue - sendmail queue directories: list, claim, write, remove, hold.
 *
 * Public functions: mq_queue_open(), mq_queue_free(), mq_queue_path(),
 * mq_queue_list(), mq_queue_stat(), mq_queue_claim(), mq_queue_claim_unread(),
 * mq_queue_entry_*(), mq_queue_write(), mq_queue_stage(), mq_queue_stage_same_df(),
 * mq_queue_commit(),
 * mq_queue_unstage(), mq_queue_remove(), mq_queue_remove_many(), mq_queue_hold().
 *
 * Claiming a message takes the lock sendmail itself uses: flock(LOCK_EX|
 * LOCK_NB) on the qf file. A qf that sendmail still holds (being received, or
 * the empty placeholder it creates before renaming tf to qf) is skipped, and
 * the lock is kept until the entry is freed, so sendmail and mqscand never
 * work on one message at once. Nothing is ever renamed away from the incoming
 * queue before its successor is durable: after a crash the lock goes with the
 * process and the message is simply claimed again.
 *
 * Writing to the outgoing queue follows sendmail's own order: the df file
 * (created exclusively, fsynced), then the qf written as tfID, fsynced and
 * renamed to qfID, then the directory fsynced. Only queue IDs that pass
 * mq_fs_id_ok() become file names.
 *
 * The same order serves a whole batch at once (group commit): each message
 * is staged (df and tfID written, nothing synced, the df's writeback started), then
 * mq_queue_commit() fsyncs every df and tf of the batch, renames every tf to
 * its qf, and fsyncs the directory once; only then may the originals go,
 * with mq_queue_remove_many() (one directory fsync for them all). A
 * message's files are durable before its qf is visible, and its original is
 * removed only after its qf is durable: the rule is the same, its cost is
 * one directory fsync per batch instead of one per message.
 *
 * DIAGNOSTICS
 * Failures are returned: MQ_ERROR_TEMP for "not now" (locked, vanished, disk
 * full), MQ_ERROR_CORRUPT for files that will never parse, MQ_ERROR_LIMIT
 * for messages over max_message_size, MQ_ERROR_IO otherwise.
 */
#ifndef MQSCAN_QUEUE_H
#define MQSCAN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <glib.h>

#include "mqscan/qf.h"

struct mq_queue;
struct mq_queue_entry;

/* Opens the queue directory path. Returns a new queue (caller frees with
 * mq_queue_free()) or NULL with err set. */
struct mq_queue *mq_queue_open(const char *path, GError **err);
void mq_queue_free(struct mq_queue **queue);
/* Borrowed. */
const char *mq_queue_path(const struct mq_queue *queue);

/* Appends the ID of every qf file whose ID is valid to ids (g_free'd
 * strings; give an array made with g_ptr_array_new_with_free_func(g_free)).
 * Names that are not valid IDs are skipped. Returns 0 or -1. */
int mq_queue_list(struct mq_queue *queue, GPtrArray *ids, GError **err);

/* Size of the message (qf + df) and mtime of its qf, without locking.
 * Returns 0, or -1 if the qf is gone. */
int mq_queue_stat(struct mq_queue *queue, const char *id, uint64_t *size_r,
                  time_t *mtime_r);

/* Claims message id: locks its qf, reads and parses it, reads its df (at
 * most max_size bytes for both). Returns NULL with err set when the message
 * cannot be claimed now (MQ_ERROR_TEMP: locked by sendmail, vanished, still
 * an empty placeholder) or on an I/O error. Otherwise returns a new entry
 * holding the lock (caller frees with mq_queue_entry_free(), which drops
 * it). If the files are unusable, mq_queue_entry_problem() says why
 * (MQ_ERROR_CORRUPT or MQ_ERROR_LIMIT), the qf and df accessors return NULL,
 * and the entry is fit only for mq_queue_hold(). */
struct mq_queue_entry *mq_queue_claim(struct mq_queue *queue, const char *id,
                                      size_t max_size, GError **err);
/* Claims message id like mq_queue_claim() but reads nothing: the entry is
 * fit only for mq_queue_hold() (its problem says so). For a message whose
 * very reading is suspect. */
struct mq_queue_entry *mq_queue_claim_unread(struct mq_queue *queue, const char *id,
                                             GError **err);
void mq_queue_entry_free(struct mq_queue_entry **entry);

/* Borrowed accessors. */
const char *mq_queue_entry_id(const struct mq_queue_entry *entry);
const GError *mq_queue_entry_problem(const struct mq_queue_entry *entry);
struct mq_qf *mq_queue_entry_qf(struct mq_queue_entry *entry);
const char *mq_queue_entry_qf_raw(const struct mq_queue_entry *entry, size_t *len_r);
const char *mq_queue_entry_df(const struct mq_queue_entry *entry, size_t *len_r);
/* Age of the qf file (seconds since its mtime). */
time_t mq_queue_entry_mtime(const struct mq_queue_entry *entry);

/* Writes a new entry into the outgoing queue: df bytes, then qf (formatted
 * with MQ_QF_FORMAT_NEW_ENTRY). The entry takes the ID id when that is free;
 * if qfID already exists and has the same creation time and sender it is the
 * durable result of an earlier run that was interrupted before the original
 * was removed, and nothing is written (*dup_r is set); otherwise a free ID
 * derived from id is used. *id_r gets the ID used (caller frees). Returns 0
 * or -1; on failure nothing new is left behind. */
int mq_queue_write(struct mq_queue *out, const char *id, const struct mq_qf *qf,
                   const void *df, size_t df_len, char **id_r, gboolean *dup_r,
                   GError **err);

/* As mq_queue_write(), but the entry is only staged: df and tfID are
 * written and the df's writeback started, nothing waits for the disk and no
 * qf appears. Finish it with mq_queue_commit() or drop it with
 * mq_queue_unstage(). *id_r (caller frees) is the staged ID, or with *dup_r
 * the ID of the earlier result (then nothing was staged). */
int mq_queue_stage(struct mq_queue *out, const char *id, const struct mq_qf *qf,
                   const void *df, size_t df_len, char **id_r, gboolean *dup_r,
                   GError **err);

/* Tells the incoming queue in where mq_queue_stage_same_df() links its
 * dfs: a claim then accepts a df with such links, and removes those of a
 * run that died before its commit (out must outlive in's claims). */
void mq_queue_set_outgoing(struct mq_queue *in, struct mq_queue *out);

/* As mq_queue_stage(), with the df of entry (claimed from in, its df
 * read) as the data, unchanged. Where it can, the new df is a hard link to
 * entry's, as sendmail links the df of an envelope it splits: nothing is
 * copied, written back or later freed. That is when both queues are on one
 * file system and entry's df is what mq_queue_stage() would have made (a
 * regular file of ours, mode 0600, the one read at the claim). Else the
 * bytes are written as by mq_queue_stage(). Either way the df is made
 * durable by mq_queue_commit(). */
int mq_queue_stage_same_df(struct mq_queue *out, const char *id, const struct mq_qf *qf,
                           struct mq_queue *in, const struct mq_queue_entry *entry, char **id_r,
                           gboolean *dup_r, GError **err);

enum mq_queue_commit_flags {
    MQ_QUEUE_SYNCFS = 1 << 0,   /* one syncfs() for all files, not an fsync() each */
    MQ_QUEUE_SYNCED = 1 << 1,   /* the caller synced the file system after staging
                                 * them all: no sync of the files here */
};

/* Makes the n staged entries ids durable and visible: every df and tf made
 * durable (an fsync each, or with MQ_QUEUE_SYNCFS one syncfs() of the
 * queue's file system), every tf renamed to its qf (never over an existing
 * qf), one fsync of the directory. An entry that cannot be committed is
 * unstaged and failed_r[i] set; if the directory fsync fails, every entry
 * is taken back (its qf and df unlinked) and failed. Returns 0 if all were
 * committed, else -1 with err set to the first failure. */
int mq_queue_commit(struct mq_queue *out, const char *const *ids, size_t n, unsigned flags,
                    bool *failed_r, GError **err);

/* Drops staged entry id: unlinks its tf and df. */
void mq_queue_unstage(struct mq_queue *out, const char *id);

/* Removes a claimed entry's files from its queue (qf first, then df) and
 * fsyncs the directory. Call only once its successor is durable. */
int mq_queue_remove(struct mq_queue *queue, struct mq_queue_entry *entry, GError **err);

/* The same for n entries of one queue, with one directory fsync. Returns 0,
 * or -1 with err for the first qf that could not be unlinked (the others are
 * still removed) or a failed fsync. */
int mq_queue_remove_many(struct mq_queue *queue, struct mq_queue_entry *const *entries,
                         size_t n, GError **err);

/* Moves a claimed entry's files into the directory hold_path, together with a
 * "ID.reason" file holding reason (one line). Never overwrites: a second hold
 * of the same ID gets a suffixed name. Returns 0 or -1. */
int mq_queue_hold(struct mq_queue *queue, struct mq_queue_entry *entry,
                  const char *hold_path, const char *reason, GError **err);

#endif
