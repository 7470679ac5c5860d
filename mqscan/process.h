/* process - one message from claim to removal: read, scan, rebuild, write
 * the result, quarantine the original, remove it from the incoming queue.
 *
 * Public functions: mq_process_message(), mq_process_result_clear(),
 * mq_process_outcome_name().
 *
 * The order is what makes "nothing is lost" true: the incoming entry is
 * removed only after its successor (outgoing entry, quarantine entry, or held
 * copy) is durable, and every path that cannot reach a verdict leaves the
 * message where it is. Thread-safe: workers call it concurrently with one
 * shared, read-only context.
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
#include "mqscan/scanner.h"

/* Shared by the workers of one batch; all borrowed. */
struct mq_process_ctx {
    const struct mq_config *config;
    struct mq_scanner *scanner;
    struct mq_queue *incoming;
    struct mq_queue *outgoing;
    struct mq_quarantine *quarantine;
};

enum mq_outcome {
    MQ_OUTCOME_DELIVERED,   /* clean, passed to the outgoing queue */
    MQ_OUTCOME_CLEANED,     /* infected: cleaned copy delivered, original quarantined */
    MQ_OUTCOME_HELD,        /* moved to the hold area (corrupt, unscannable) */
    MQ_OUTCOME_DEFERRED,    /* left in the incoming queue: could not scan or write now */
    MQ_OUTCOME_SKIPPED,     /* not claimable now (sendmail holds it, or it is gone) */
};

struct mq_process_result {
    enum mq_outcome outcome;
    uint64_t size;
    double seconds;
    char *detail;           /* virus names or the reason; owned */
};

/* Processes incoming message id. Always fills *result (clear it with
 * mq_process_result_clear()) and logs the decision. */
void mq_process_message(const struct mq_process_ctx *ctx, const char *id,
                        struct mq_process_result *result);
void mq_process_result_clear(struct mq_process_result *result);

/* The verdict word logged for an outcome: "clean", "infected", "held",
 * "deferred", "skipped". */
const char *mq_process_outcome_name(enum mq_outcome outcome);

#endif
