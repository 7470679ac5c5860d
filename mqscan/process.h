/* process - one message from claim to removal: read, scan, rebuild, write
 * the result, quarantine the original, remove it from the incoming queue.
 *
 * Public functions: mq_process_message(), mq_process_poison(),
 * mq_process_commit(), mq_process_result_clear(), mq_process_outcome_name(),
 * mq_process_stage_name().
 *
 * Every check yields findings (infected, banned, limits, encrypted,
 * unscannable), each tied to one leaf part or to the whole message. The
 * policy of the message's direction gives each finding an action, and the
 * most severe one decides: delete or quarantine-only (nothing delivered,
 * original in quarantine), replace (the parts, or the whole body, become
 * notices from the templates, a notice goes at the top of the first text
 * part, the original and removed parts go to quarantine), or deliver.
 *
 * The order is what makes "nothing is lost" true: the incoming entry is
 * removed only after its successor (outgoing entry, quarantine entry, or held
 * copy) is durable, and every path that cannot reach a verdict leaves the
 * message where it is. Thread-safe: workers call it concurrently with one
 * shared, read-only context.
 *
 * A batch is finished together (group commit): mq_process_message() stages
 * the outgoing entry and keeps the claim on the original;
 * mq_process_commit(), called once for the whole batch, makes the staged
 * entries durable and visible and only then removes the originals, with a
 * few fsyncs for the batch instead of four per message. A result never
 * committed is undone by mq_process_result_clear(): its staged entry goes,
 * its original stays and is processed again.
 *
 * DIAGNOSTICS
 * Nothing is returned as an error: every failure becomes an outcome
 * (deferred or held) and one log line that starts with the queue ID.
 */
#ifndef MQSCAN_PROCESS_H
#define MQSCAN_PROCESS_H

#include <stdint.h>

#include "mqscan/config.h"
#include "mqscan/quarantine.h"
#include "mqscan/queue.h"
#include "mqscan/rules.h"
#include "mqscan/scanner.h"
#include "mqscan/spam.h"
#include "mqscan/template.h"

/* Shared by the workers of one batch; all borrowed. */
struct mq_process_ctx {
    const struct mq_config *config;
    struct mq_scanner *scanner;
    struct mq_queue *incoming;
    struct mq_queue *outgoing;
    struct mq_quarantine *quarantine;
    const struct mq_rules *rules;
    const struct mq_templates *templates;
    struct mq_spam *spam;       /* NULL: no spam checks */
    bool quarantine_on_outgoing_fs; /* one syncfs() covers both (mq_fs_same_fs()) */
};

enum mq_outcome {
    MQ_OUTCOME_DELIVERED,   /* clean, passed on */
    MQ_OUTCOME_PASSED,      /* findings, but the policy says deliver: passed on as is */
    MQ_OUTCOME_CLEANED,     /* parts removed: cleaned copy delivered, original quarantined */
    MQ_OUTCOME_QUARANTINED, /* whole message in quarantine, nothing delivered */
    MQ_OUTCOME_DELETED,     /* dropped (a copy kept in quarantine), nothing delivered */
    MQ_OUTCOME_HELD,        /* moved to the hold area (corrupt queue files, scan error) */
    MQ_OUTCOME_DEFERRED,    /* left in the incoming queue: could not scan or write now */
    MQ_OUTCOME_SKIPPED,     /* not claimable now (sendmail holds it, or it is gone) */
    MQ_OUTCOME_COUNT
};

/* What the notifications need about a message whose findings were acted
 * on (cleaned, quarantined or deleted). Every string is sanitized. */
struct mq_process_report {
    char *queue_id;
    char *sender;               /* "" for the null sender */
    char *recipients;           /* "a@x, b@y" */
    char *subject;
    char *findings;             /* one line per finding */
    char *action;               /* "replace", "quarantine-only", "delete" */
    char *direction;
    char *quarantine_id;
    bool sender_internal;       /* relay inside internal_networks and sender in
                                   local_domains: a notice may go back to it */
    bool postmaster_only;       /* no notice to the sender (held unscanned) */
    unsigned finding_kinds;     /* bit (1 << enum mq_finding) per kind found */
    char **virus_names;         /* NULL-terminated */
};

/* Where a message's time goes (monotonic clock, per message, summed by the
 * daemon). Every microsecond of mq_process_message() is in exactly one. */
enum mq_process_stage {
    MQ_STAGE_READ,          /* claim: lock, read and parse the qf, read the df */
    MQ_STAGE_PARSE,         /* GMime: parse, walk, decode the leaves */
    MQ_STAGE_SPAM,          /* the spam checks */
    MQ_STAGE_RULES,         /* file name and file type rules */
    MQ_STAGE_SCAN,          /* the engine: whole message, leaves, rebuilt copy */
    MQ_STAGE_REBUILD,       /* replacing parts, writing the new body */
    MQ_STAGE_WRITE,         /* outgoing queue, quarantine, hold, removal; no fsync */
    MQ_STAGE_FSYNC,         /* fsync of files and directories while writing */
    MQ_STAGE_OTHER,         /* deciding, logging, the rest */
    MQ_STAGE_COUNT
};

/* A message's unfinished business until mq_process_commit(). */
struct mq_process_pending;

struct mq_process_result {
    enum mq_outcome outcome;
    uint64_t size;
    double seconds;
    uint64_t stage_us[MQ_STAGE_COUNT];
    char *detail;           /* virus names or the reason; owned */
    unsigned finding_kinds; /* bit (1 << enum mq_finding) per kind found */
    struct mq_process_report *report;   /* owned; NULL unless acted on */
    struct mq_process_pending *pending; /* owned; NULL when nothing is left to do */
};

/* Processes incoming message id. Always fills *result (clear it with
 * mq_process_result_clear(), which frees the report too) and logs the
 * decision. A message that is delivered, quarantined or deleted is left
 * pending (result->pending): its original is still claimed, and a delivered
 * message is only staged in the outgoing queue. */
void mq_process_message(const struct mq_process_ctx *ctx, const char *id,
                        struct mq_process_result *result);
/* Instead of mq_process_message() for a message on which attempts earlier
 * attempts never ended (see attempts.h): holds it unscanned, reading its
 * queue files only while attempts <= max_attempts, and reports it to the
 * postmaster only. */
void mq_process_poison(const struct mq_process_ctx *ctx, const char *id, unsigned attempts,
                       struct mq_process_result *r);

/* Finishes the n results of a batch (those without pending work are
 * skipped): commits every staged outgoing entry (mq_queue_commit()), then
 * removes the originals of those committed and of those quarantined or
 * deleted (mq_queue_remove_many()), and drops their claims. A message whose
 * entry could not be committed becomes DEFERRED (its report dropped, one
 * error line logged) and stays in the incoming queue. The time it takes is
 * shared out among the messages' "queue write" and "fsync" stages. Call it
 * from one thread, after every message of the batch is processed. */
void mq_process_commit(const struct mq_process_ctx *ctx, struct mq_process_result *const *results,
                       size_t n);

/* Frees what result owns; a result still pending is undone (staged entry
 * removed, claim dropped). */
void mq_process_result_clear(struct mq_process_result *result);

/* The verdict word logged for an outcome: "clean", "passed", "cleaned",
 * "quarantined", "deleted", "held", "deferred", "skipped". */
const char *mq_process_outcome_name(enum mq_outcome outcome);

/* "queue read", "MIME parse", "spam checks", "rules", "virus scan",
 * "rebuild", "queue write", "fsync", "other". */
const char *mq_process_stage_name(enum mq_process_stage stage);

#endif
