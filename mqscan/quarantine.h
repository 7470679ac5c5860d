/* quarantine - durable store of original messages that were not delivered as
 * they arrived, and the postmaster's verbs over it.
 *
 * Public functions: mq_quarantine_open(), mq_quarantine_open_existing(),
 * mq_quarantine_free(), mq_quarantine_path(), mq_quarantine_store(),
 * mq_quarantine_stage(), mq_quarantine_commit(), mq_quarantine_unstage(),
 * mq_quarantine_id_ok(), mq_quarantine_addr_ok(), mq_quarantine_meta_parse(),
 * mq_quarantine_info_free(), mq_quarantine_read(), mq_quarantine_list(),
 * mq_quarantine_files(), mq_quarantine_headers(), mq_quarantine_original(),
 * mq_quarantine_release(),
 * mq_quarantine_delete(), mq_quarantine_purge().
 *
 * Layout: DIR/YYYYMMDD/QUEUEID-RANDOM/ holding "qf" and "df" (the message
 * exactly as the incoming sendmail queued it, envelope included, so that it
 * can be released as it was), "part-N" for each removed part (its decoded
 * content; N is the part's number in the message, never its file name), and
 * "meta" (versioned "key: value" lines ending in "end", every value
 * sanitized and cut to 1000 bytes). An entry is built under DIR/tmp/ and
 * renamed into place after everything in it is fsynced, so a reader never
 * sees half an entry. Files are 0600, directories 0700. Names are built from
 * the validated queue ID, the date (UTC) and random letters only, never from
 * message data. The entry's ID is "YYYYMMDD-QUEUEID-RANDOM".
 *
 * The meta file, version 1:
 *     mqscan-quarantine 1
 *     id: YYYYMMDD-QUEUEID-RANDOM      must match where the entry lies
 *     queue-id: QUEUEID                the incoming queue ID
 *     time: SECONDS                    when it was stored (Unix time, UTC)
 *     reason: TEXT                     findings' kinds: "infected, banned"
 *     action: TEXT                     "replace", "delete", "quarantine-only"
 *     direction: TEXT                  "inbound", "outbound", "internal"
 *     sender: ADDRESS                  envelope sender ("" for <>)
 *     recipient: ADDRESS               one line per envelope recipient
 *     subject: TEXT
 *     finding: TEXT                    one line per finding
 *     part: part-N SIZE                one line per part-N file
 *     released: SECONDS USER QUEUEID TO    one line per release: when, by
 *                                      whom, the outgoing queue ID, and the
 *                                      one recipient it went to ("-": the
 *                                      original recipients)
 *     end
 * id, queue-id and time are required, the others may be missing (empty);
 * unknown keys are skipped, so a later version may add some.
 *
 * Ownership: the strings and arrays of a struct mq_quarantine_info belong
 * to it (freed by mq_quarantine_info_free()); arrays returned by the list
 * and files verbs free their elements when unref'd.
 *
 * Reading: everything read back from DIR is untrusted (it may have been
 * tampered with, or cut short by a crash): names are checked before use,
 * files are opened without following symlinks and must be regular files
 * with one link and a bounded size, and meta is parsed strictly (version,
 * "end", line length and count, the id matching the entry's place). IDs
 * given by an operator go through mq_quarantine_id_ok() before any path is
 * built from them. Removal (delete, purge) unlinks only the names an entry
 * can hold (qf, df, meta, meta.tmp, part-N) and never follows a symlink: a
 * symlink with one of those names is removed itself, its target untouched;
 * an entry holding any other name or a directory is refused and left alone.
 *
 * DIAGNOSTICS
 * Failures are returned (MQ_ERROR_TEMP for a full disk or an entry another
 * process is releasing or deleting, MQ_ERROR_CORRUPT for unusable files); a
 * failed store leaves nothing behind but, at worst, a directory under
 * DIR/tmp/. An ID that is not valid, an address that is not acceptable and
 * an entry that does not exist are reported in the MQ_QUARANTINE_ERROR
 * domain, so that a tool can tell the operator's mistake from a failure.
 * Nothing here panics on operator input; a bad queue ID in a record given
 * to mq_quarantine_store() is a programmer error and panics.
 */
#ifndef MQSCAN_QUARANTINE_H
#define MQSCAN_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <glib.h>

#include "mqscan/queue.h"

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

/* Errors about what the caller asked for, rather than failures. */
#define MQ_QUARANTINE_ERROR (mq_quarantine_error_quark())
GQuark mq_quarantine_error_quark(void);

enum mq_quarantine_error_code {
    MQ_QUARANTINE_ERROR_BAD_ID,         /* not an entry ID */
    MQ_QUARANTINE_ERROR_BAD_ADDRESS,    /* refused by mq_quarantine_addr_ok() */
    MQ_QUARANTINE_ERROR_NO_ENTRY,       /* valid ID, no such entry */
};

/* Longest meta file, and longest line in it, that a reader accepts. */
#define MQ_QUARANTINE_META_MAX (4u * 1024 * 1024)
#define MQ_QUARANTINE_META_LINE_MAX 2048
#define MQ_QUARANTINE_META_LINES_MAX 100000

/* Opens (creating, 0700) the quarantine directory dir and its tmp/.
 * Returns a new handle (caller frees with mq_quarantine_free()) or NULL. */
struct mq_quarantine *mq_quarantine_open(const char *dir, GError **err);

/* For the operator's tools: opens an existing quarantine directory without
 * creating anything (a tool run as root must not make root-owned
 * directories the daemon then cannot write). dir and dir/tmp must be
 * directories (tmp not a symlink) that neither the group nor others may
 * write. Returns a new handle (caller frees with mq_quarantine_free()) or
 * NULL with err set (MQ_ERROR_CONFIG for a missing or unsafe directory). */
struct mq_quarantine *mq_quarantine_open_existing(const char *dir, GError **err);

/* Frees *quarantine and sets it to NULL. NULL is allowed. */
void mq_quarantine_free(struct mq_quarantine **quarantine);

/* The directory, borrowed. */
const char *mq_quarantine_path(const struct mq_quarantine *quarantine);

/* Stores one message, durably. Returns the new entry's ID (caller frees
 * with g_free()) or NULL with err set. Thread-safe. Same as
 * mq_quarantine_stage() and mq_quarantine_commit() of that one entry. */
char *mq_quarantine_store(struct mq_quarantine *quarantine,
                          const struct mq_quarantine_record *record,
                          const char *qf, size_t qf_len,
                          const char *df, size_t df_len, GError **err);

/* Writes one message's entry under tmp/, not yet durable nor visible.
 * Returns the ID it will have (caller frees with g_free()) or NULL with err
 * set. Thread-safe. Then mq_quarantine_commit() or mq_quarantine_unstage(),
 * so that a group of entries costs one sync, not one per file. */
char *mq_quarantine_stage(struct mq_quarantine *quarantine,
                          const struct mq_quarantine_record *record,
                          const char *qf, size_t qf_len,
                          const char *df, size_t df_len, GError **err);

enum {
    MQ_QUARANTINE_SYNCFS = 1 << 0,  /* one syncfs() instead of an fsync per file */
};

/* Makes the n staged entries ids durable and puts them in place: their
 * files synced (one syncfs() of the quarantine's file system with
 * MQ_QUARANTINE_SYNCFS, else an fsync each), renamed into their day
 * directories, and those directories synced. Sets failed[i] for each entry
 * not committed (it stays staged: unstage it). Returns 0, or -1 with err
 * set (the first error) if any failed. Not thread-safe against another
 * commit of the same entries. */
int mq_quarantine_commit(struct mq_quarantine *quarantine, const char *const *ids, size_t n,
                         unsigned flags, bool *failed, GError **err);

/* Removes a staged entry that will not be committed. Best effort. */
void mq_quarantine_unstage(struct mq_quarantine *quarantine, const char *id);

/* True if id has the form of an entry ID ("YYYYMMDD-QUEUEID-RANDOM"). */
bool mq_quarantine_id_ok(const char *id);

/* True if addr is acceptable as the one recipient of a release: at most 254
 * bytes, "local@domain" with one '@', a local part of at most 64 bytes of
 * [A-Za-z0-9._+=-] (no leading, trailing or doubled dot), and a domain of
 * dot-separated labels of [A-Za-z0-9-] (at most 63 bytes, no leading or
 * trailing '-'), at least two of them. Deliberately narrower than RFC 5321:
 * no quotes, spaces, control characters, angle brackets, '|', '/', '%',
 * '!', ':' or address literals reach a queue file. */
bool mq_quarantine_addr_ok(const char *addr);

/* ---- reading ------------------------------------------------------------ */

struct mq_quarantine_meta_part {
    unsigned number;            /* the N of part-N */
    uint64_t size;
};

struct mq_quarantine_release_record {
    time_t when;
    char *user;                 /* who released it */
    char *queue_id;             /* its ID in the outgoing queue */
    char *to;                   /* the one recipient, or NULL: the originals */
};

/* A parsed meta file. Every string is sanitized again on reading (no
 * control characters, valid UTF-8), so it can be printed as it is. */
struct mq_quarantine_info {
    char *id;
    char *queue_id;
    time_t when;
    char *reason;               /* "" when missing, as below */
    char *action;
    char *direction;
    char *sender;               /* "" for the null sender */
    char *subject;              /* leading blanks dropped */
    char **recipients;          /* NULL-terminated */
    char **findings;            /* NULL-terminated */
    struct mq_quarantine_meta_part *parts;
    size_t n_parts;
    struct mq_quarantine_release_record *releases;
    size_t n_releases;
};

/* Frees *info and sets it to NULL. NULL is allowed. */
void mq_quarantine_info_free(struct mq_quarantine_info **info);

/* Parses len bytes of a meta file (see above for the format). Returns a new
 * info (caller frees with mq_quarantine_info_free()) or NULL with
 * MQ_ERROR_CORRUPT: over MQ_QUARANTINE_META_MAX bytes, a NUL byte, a first
 * line other than "mqscan-quarantine 1" (another version is refused, not
 * guessed at), a line over MQ_QUARANTINE_META_LINE_MAX bytes or more than
 * MQ_QUARANTINE_META_LINES_MAX lines, a line that is not "key: value", no
 * "end" line, anything after it, a missing or repeated id/queue-id/time,
 * an id or queue-id of the wrong form, a bad number, part or released
 * line. */
struct mq_quarantine_info *mq_quarantine_meta_parse(const char *buf, size_t len,
                                                    GError **err);

/* Reads the meta of entry id. Returns a new info (caller frees with
 * mq_quarantine_info_free()) or NULL with err set (MQ_QUARANTINE_ERROR_BAD_ID,
 * MQ_QUARANTINE_ERROR_NO_ENTRY, MQ_ERROR_CORRUPT for a meta that does not
 * parse or whose id is not id). */
struct mq_quarantine_info *mq_quarantine_read(struct mq_quarantine *quarantine,
                                              const char *id, GError **err);

/* Which entries mq_quarantine_list() returns: all the conditions given. */
struct mq_quarantine_filter {
    time_t since;               /* stored at or after this time; 0: any */
    const char *sender;         /* glob (*, ?) over the whole sender, any case;
                                   NULL: any. The null sender is "" */
    const char *reason;         /* substring of reason, any case; NULL: any */
};

enum mq_quarantine_order {
    MQ_QUARANTINE_NEWEST_FIRST,     /* by time, then ID, descending */
    MQ_QUARANTINE_OLDEST_FIRST,     /* by time, then ID, ascending */
};

/* Reads the meta of every entry that matches filter (NULL: all). Returns
 * an array of struct mq_quarantine_info * (caller unrefs; the array frees
 * the elements) or NULL with err set when DIR itself cannot be read. An
 * entry that cannot be read does not stop the listing: when problems_r is
 * not NULL, one line "ID: why" (or "DAY/NAME: why" for a name that is not
 * an entry) is appended to it per such entry (caller unrefs; give an array
 * made with g_ptr_array_new_with_free_func(g_free)). */
GPtrArray *mq_quarantine_list(struct mq_quarantine *quarantine,
                              const struct mq_quarantine_filter *filter,
                              enum mq_quarantine_order order, GPtrArray *problems_r,
                              GError **err);

/* One name in an entry's directory. */
struct mq_quarantine_file {
    char *name;                 /* sanitized for display */
    uint64_t size;
    char kind;                  /* 'f' regular file, 'l' symlink, 'd' directory,
                                   '?' anything else */
};

/* The names in entry id, sorted, without following anything. Returns an
 * array of struct mq_quarantine_file * (caller unrefs; the array frees the
 * elements) or NULL with err set. */
GPtrArray *mq_quarantine_files(struct mq_quarantine *quarantine, const char *id,
                               GError **err);

/* The original message's headers called names (NULL-terminated, any case),
 * from the entry's qf: an array of "Name: value" strings (caller unrefs;
 * the array frees them), every header of those names in message order,
 * folded lines joined by a space, sanitized and cut to 1000 bytes (no
 * RFC 2047 decoding: what the sender wrote, made printable). NULL with err
 * set if the qf cannot be read or parsed. */
GPtrArray *mq_quarantine_headers(struct mq_quarantine *quarantine, const char *id,
                                 const char *const *names, GError **err);

/* The original message of entry id as a mail reader would see it: the
 * qf's header block (mq_qf_headers_text()), an empty line, and the df (at
 * most max_df bytes; a regular file with one link, as every file read
 * here). Returns 0 and *msg_r (caller frees with g_free(); *len_r bytes, NUL
 * terminated), or -1 with err set as for mq_quarantine_headers(). */
int mq_quarantine_original(struct mq_quarantine *quarantine, const char *id, size_t max_df,
                           char **msg_r, size_t *len_r, GError **err);

/* ---- acting ---------------------------------------------------------------- */

/* Releases entry id: reads its qf and df (regular files with one link, the
 * qf at most MQ_QF_MAX_SIZE bytes and the df at most max_df bytes), parses
 * the qf, with to != NULL replaces every recipient by to (which must pass
 * mq_quarantine_addr_ok(); headers are not changed), and writes the message
 * into the outgoing queue out with mq_queue_write(): the same df bytes,
 * headers and envelope as the incoming sendmail queued them. The outgoing
 * queue ID is the original queue ID when qfID is free in out, else the
 * first free of ID followed by one letter A-Z (so that a copy still queued,
 * for example the cleaned one, is never taken for this release). Then a
 * "released" line (when, user, queue ID, to) is added to the entry's meta,
 * which is replaced atomically. The entry is kept.
 *
 * user is who asked (a login name; anything outside [A-Za-z0-9._-] becomes
 * '?'); now is the time recorded. The entry is locked (flock on its
 * directory) against a concurrent release or delete: MQ_ERROR_TEMP if it is
 * busy. Returns 0 and sets *queue_id_r (caller frees) to the outgoing ID, or
 * -1 with err set. If the message was queued but the meta could not be
 * rewritten, -1 is returned, *queue_id_r is still set and err says so: the
 * message will be delivered and the release is not recorded.
 *
 * XXX a release interrupted between the queue write and the meta rewrite
 * and then repeated delivers the message twice. */
int mq_quarantine_release(struct mq_quarantine *quarantine, struct mq_queue *out,
                          const char *id, const char *to, const char *user, time_t now,
                          size_t max_df, char **queue_id_r, GError **err);

/* The findings line of an entry decided before its virus scan (spam over
 * the gateway threshold): releasing it needs a scan first. */
#define MQ_QUARANTINE_NOT_VIRUS_SCANNED "not scanned for viruses: decided as spam first"

/* True if info's findings hold MQ_QUARANTINE_NOT_VIRUS_SCANNED. */
bool mq_quarantine_info_not_virus_scanned(const struct mq_quarantine_info *info);

/* A check of the whole message (headers, blank line, body) before release:
 * 0 to go on, -1 with err set to refuse. */
typedef int mq_quarantine_check_fn(const char *msg, size_t len, void *ctx, GError **err);

/* mq_quarantine_release() that first runs check on an entry that was never
 * scanned for viruses (mq_quarantine_info_not_virus_scanned()), and
 * releases nothing if it refuses. check NULL: no check. */
int mq_quarantine_release_checked(struct mq_quarantine *quarantine, struct mq_queue *out,
                                  const char *id, const char *to, const char *user, time_t now,
                                  size_t max_df, mq_quarantine_check_fn *check, void *check_ctx,
                                  char **queue_id_r, GError **err);

/* Removes entry id (see the removal rules above), and its day directory if
 * that is now empty and not today's. The entry is first renamed into DIR/tmp/,
 * so readers see it whole or not at all. Returns 0 or -1 with err set
 * (MQ_QUARANTINE_ERROR_BAD_ID, MQ_QUARANTINE_ERROR_NO_ENTRY, MQ_ERROR_CORRUPT
 * for an entry holding names it does not know, MQ_ERROR_TEMP when busy). */
int mq_quarantine_delete(struct mq_quarantine *quarantine, const char *id, GError **err);

/* Removes every entry stored at or before cutoff, day by day and entry by
 * entry in name order: its day directory's date
 * (midnight UTC) and its meta time must both be at or before cutoff. An
 * entry whose meta cannot be read goes when its whole day is before cutoff.
 * Empty day directories before today are removed; names in DIR that are
 * not day directories, and day directories that are symlinks, are left
 * alone. Appends the ID of each removed entry to removed (g_free'd strings)
 * and "ID: why" for each entry it could not remove, or left alone on
 * purpose, to problems (both arrays made with
 * g_ptr_array_new_with_free_func(g_free); problems may be NULL). Returns 0,
 * or -1 with err set if DIR cannot be read (entries already removed stay
 * in removed). An entry that could not be removed is not a -1. */
int mq_quarantine_purge(struct mq_quarantine *quarantine, time_t cutoff, time_t now,
                        GPtrArray *removed, GPtrArray *problems, GError **err);

#endif
