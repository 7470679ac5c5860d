/* stats - message statistics in an embedded SQLite database, written by
 * mqscand after each batch and read by mqscan-stats(8).
 *
 * Public functions: mq_stats_open(), mq_stats_close(), mq_stats_add(),
 * mq_stats_expire(), mq_stats_totals(), mq_stats_top(), mq_stats_top_free(),
 * mq_stats_counter_name(), mq_stats_report().
 *
 * Storage. One file, state_dir/stats.db (MQ_STATS_FILE), in WAL mode with
 * synchronous=NORMAL: readers never block the writer and the writer never
 * blocks readers; a power cut may lose the last batches' counts, never the
 * file. Every counter is kept per hour, where hour = Unix time / 3600. Days
 * are not stored: a day is 24 hours from 00:00 UTC, so days are UTC days
 * (mqscan-stats labels everything "UTC"). A table schema_version holds the
 * layout's version (MQ_STATS_SCHEMA_VERSION); a file with another version is
 * refused, never rewritten. Tables:
 *   hours(hour PRIMARY KEY, messages, bytes, clean, passed, cleaned,
 *         quarantined, deleted, held, deferred, infected, banned, limits,
 *         encrypted, unscannable, spam0 .. spam9)
 *   viruses(hour, name, count)     PRIMARY KEY (hour, name)
 *   senders(hour, sender, count)   PRIMARY KEY (hour, sender)
 *
 * What is counted, per struct mq_stats_sample:
 *   skipped      nothing (the message was not claimed; it comes again);
 *   deferred     "deferred" only: an attempt, since the message is scanned
 *                again later and counted then (as in mqscand's summary);
 *   any other    "messages", "bytes", the outcome's own counter ("clean" for
 *                MQ_OUTCOME_DELIVERED), one count per finding kind present
 *                (a message with two infected parts counts once in
 *                "infected"), the spam level if scored, each distinct virus
 *                name once, and, if the outcome is cleaned, quarantined or
 *                deleted ("blocked"), the sender once.
 * Virus names and senders come from messages: they are sanitized
 * (mq_log_sanitize(): control characters and invalid UTF-8 become '?'), cut
 * to MQ_STATS_NAME_MAX bytes, and only ever bound as SQL parameters. An hour
 * keeps at most MQ_STATS_NAMES_PER_HOUR distinct names per list; further new
 * names are counted as MQ_STATS_OTHER, so a flood of random senders cannot
 * grow the file without bound. The tables grow by one row per hour plus the
 * names: call mq_stats_expire() now and then.
 *
 * Calling it from mqscand (sketch, with struct mq_process_result *r of each
 * finished task; r->finding_kinds uses the same bits as MQ_STATS_FINDING):
 *
 *     stats = mq_stats_open(path in state_dir, true, &error);   (after any fork)
 *     ...after each batch, one sample per task, then one call:
 *     samples[i] = (struct mq_stats_sample){
 *         .when = time(NULL), .outcome = r->outcome, .bytes = r->size,
 *         .finding_kinds = r->finding_kinds,
 *         .virus_names = r->report ? (const char *const *)r->report->virus_names : NULL,
 *         .sender = r->report ? r->report->sender : NULL };
 *     if (mq_stats_add(stats, samples, n, &error) < 0) -> mq_log_warn() only
 *     ...once a day or so: mq_stats_expire(stats, time(NULL) - KEEP, &error)
 *
 * Statistics are never worth a message: a failed mq_stats_add() should be
 * logged and forgotten (the batch's counts are lost, nothing else).
 *
 * Ownership. A struct mq_stats is one SQLite connection: use it from one
 * thread at a time, and never across fork() (open it in the process that
 * uses it). Several handles, in one process or several, may use the same
 * file at once: writers wait for each other up to MQ_STATS_BUSY_TIMEOUT_MS.
 * Strings passed in are borrowed for the call. Arrays returned are the
 * caller's (see each function).
 *
 * Time zone. Only the report functions turn hours into dates, always in UTC.
 *
 * DIAGNOSTICS
 * Panics: mq_stats_add() or mq_stats_expire() on a read-only handle, an
 * outcome outside enum mq_outcome. Everything else is returned with a GError
 * in the MQ_ERROR domain: MQ_ERROR_TEMP (the database stayed locked longer
 * than the busy timeout, or the disk is full), MQ_ERROR_CORRUPT (not an
 * mqscan statistics database, another schema version, a damaged file, not a
 * regular file), MQ_ERROR_LIMIT (a query range too long), MQ_ERROR_IO
 * (anything else, e.g. the file does not exist or cannot be read). Messages
 * start with the database's path.
 */
#ifndef MQSCAN_STATS_H
#define MQSCAN_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <glib.h>

#include "mqscan/policy.h"
#include "mqscan/process.h"

/* The file's name in state_dir. */
#define MQ_STATS_FILE "stats.db"
/* The layout this code reads and writes. */
#define MQ_STATS_SCHEMA_VERSION 1
/* How long a handle waits for another one's write lock. */
#define MQ_STATS_BUSY_TIMEOUT_MS 5000
/* Longest stored virus name or sender, in bytes (a cut ends in "..."). */
#define MQ_STATS_NAME_MAX 200
/* Virus names counted per message; more are ignored. */
#define MQ_STATS_NAMES_PER_SAMPLE 32
/* Distinct names per hour and list; more are counted as MQ_STATS_OTHER. */
#define MQ_STATS_NAMES_PER_HOUR 1000
#define MQ_STATS_OTHER "(other)"
/* Spam levels 0..9, counted in spam0..spam9. */
#define MQ_STATS_SPAM_LEVELS 10
/* Reports count as spam the messages at this level or above. */
#define MQ_STATS_SPAM_REPORT_LEVEL 5
/* Longest result of mq_stats_totals(), in periods. */
#define MQ_STATS_PERIODS_MAX 100000
/* Longest list mq_stats_top() returns. */
#define MQ_STATS_TOP_MAX 1000

/* The bit for one finding kind in mq_stats_sample.finding_kinds. */
#define MQ_STATS_FINDING(kind) (1u << (unsigned)(kind))

struct mq_stats;

/* One finished (or deferred) message. */
struct mq_stats_sample {
    time_t when;                    /* when it was finished; gives the hour */
    enum mq_outcome outcome;        /* mq_process_result.outcome */
    uint64_t bytes;                 /* mq_process_result.size */
    unsigned finding_kinds;         /* MQ_STATS_FINDING(kind) for each kind found */
    const char *const *virus_names; /* NULL-terminated, or NULL; untrusted */
    const char *sender;             /* envelope sender, or NULL; untrusted;
                                       counted only if blocked; "" is stored as "<>" */
    bool spam_scored;               /* false: no spam level (all messages for now) */
    unsigned spam_level;            /* 0..9 when spam_scored; larger counts as 9 */
};

/* The counters, in the order of the hours table's columns. */
enum mq_stats_counter {
    MQ_STATS_MESSAGES,              /* finished: all outcomes but deferred, skipped */
    MQ_STATS_BYTES,
    MQ_STATS_CLEAN,                 /* MQ_OUTCOME_DELIVERED */
    MQ_STATS_PASSED,
    MQ_STATS_CLEANED,
    MQ_STATS_QUARANTINED,
    MQ_STATS_DELETED,
    MQ_STATS_HELD,
    MQ_STATS_DEFERRED,              /* attempts, not messages */
    MQ_STATS_INFECTED,              /* messages with at least one such finding */
    MQ_STATS_BANNED,
    MQ_STATS_LIMITS,
    MQ_STATS_ENCRYPTED,
    MQ_STATS_UNSCANNABLE,
    MQ_STATS_SPAM0,                 /* MQ_STATS_SPAM0 + level, level 0..9 */
    MQ_STATS_COUNTER_COUNT = MQ_STATS_SPAM0 + MQ_STATS_SPAM_LEVELS
};

/* Totals over one period of mq_stats_totals(). */
struct mq_stats_period {
    time_t start;                   /* first second of the period's first hour */
    uint64_t counts[MQ_STATS_COUNTER_COUNT];
};

/* One entry of a top list. */
struct mq_stats_top {
    char *name;                     /* sanitized, at most MQ_STATS_NAME_MAX bytes */
    uint64_t count;
};

enum mq_stats_list {
    MQ_STATS_LIST_VIRUSES,
    MQ_STATS_LIST_SENDERS,          /* senders of blocked messages */
};

enum mq_stats_format {
    MQ_STATS_FORMAT_TEXT,           /* a table for a terminal, UTF-8 */
    MQ_STATS_FORMAT_HTML,           /* one self-contained page with inline SVG */
};

/* Opens the database at path. writable: create the file (mode 0640) and the
 * schema if missing, and switch it to WAL; this is mqscand's handle. Not
 * writable: the file must exist and have the current schema (the handle is
 * query-only; it still needs write access to path's "-shm" file, or to the
 * directory to create it, as every WAL reader does). A symbolic link or
 * anything but a regular file is refused. Returns a handle (caller frees
 * with mq_stats_close()) or NULL with err set. */
struct mq_stats *mq_stats_open(const char *path, bool writable, GError **err);

/* Closes *stats and sets it to NULL. NULL is allowed. */
void mq_stats_close(struct mq_stats **stats);

/* Counts n samples in one transaction: all of them or, on failure, none.
 * The samples and their strings are borrowed for the call. Returns 0, or -1
 * with err set (typically MQ_ERROR_TEMP). */
int mq_stats_add(struct mq_stats *stats, const struct mq_stats_sample *samples, size_t n,
                 GError **err);

/* Deletes everything about hours that start before the time before.
 * Returns the number of hours deleted, or -1 with err set. */
int64_t mq_stats_expire(struct mq_stats *stats, time_t before, GError **err);

/* Sums the hours that start in [from, to) into periods of step_hours hours
 * each, the first one starting at from's hour (ceil(from / 3600)): with from
 * at 00:00 UTC, step 1 gives hours and step 24 gives UTC days. Every period
 * is returned, empty ones as zeros, oldest first: *n_r =
 * ceil(hours / step_hours). Negative stored values count as 0. Returns 0
 * and *periods_r (caller frees with g_free(); NULL when *n_r is 0), or -1
 * with err set: MQ_ERROR_LIMIT for more than MQ_STATS_PERIODS_MAX periods
 * or step_hours 0. One SELECT: a consistent snapshot. */
int mq_stats_totals(struct mq_stats *stats, time_t from, time_t to, unsigned step_hours,
                    struct mq_stats_period **periods_r, size_t *n_r, GError **err);

/* The max (at most MQ_STATS_TOP_MAX) most frequent names of list in the
 * hours that start in [from, to), by count, then by name (bytewise). Names
 * read back are sanitized and capped again (the file is not trusted).
 * Returns 0 and *top_r (caller frees with mq_stats_top_free(); NULL when
 * *n_r is 0), or -1 with err set. */
int mq_stats_top(struct mq_stats *stats, enum mq_stats_list list, time_t from, time_t to,
                 size_t max, struct mq_stats_top **top_r, size_t *n_r, GError **err);

/* Frees the n entries of *top and the array, and sets *top to NULL. */
void mq_stats_top_free(struct mq_stats_top **top, size_t n);

/* The hours table's column for a counter: "messages", "clean", "spam3". */
const char *mq_stats_counter_name(enum mq_stats_counter counter);

/* A report on the hours that start in [from, to), in periods of step_hours
 * (1: one row and one bar per hour; 24: per UTC day), with top_n (at most
 * MQ_STATS_TOP_MAX) viruses and blocked senders, all read in one
 * transaction. Dates and hours are UTC. HTML: a complete UTF-8 page with no
 * external resource and no script; every value is HTML-escaped; the chart of
 * messages and threats per period is <svg id="chart-hourly"> with step 1
 * ("chart-daily" otherwise) and holds exactly one <rect class="messages">
 * and one <rect class="threats"> per period (threats: messages with a
 * finding, i.e. passed + cleaned + quarantined + deleted), and the top
 * viruses are <svg id="chart-viruses">, one <rect> per name. The column
 * "spam" is the messages at spam level MQ_STATS_SPAM_REPORT_LEVEL or above.
 * Returns the text (caller frees with g_free()) or NULL with err set. */
char *mq_stats_report(struct mq_stats *stats, enum mq_stats_format format, time_t from,
                      time_t to, unsigned step_hours, size_t top_n, GError **err);

#endif
