/* batch - the set of messages waiting in the incoming queue, and the rule
 * that turns them into batches.
 *
 * Public functions: mq_batcher_new(), mq_batcher_free(),
 * mq_batcher_set_limits(), mq_batcher_offer(), mq_batcher_sync(),
 * mq_batcher_take(), mq_batcher_done(), mq_batcher_defer(),
 * mq_batcher_count().
 *
 * Messages are offered as inotify or a rescan finds them and kept in arrival
 * order. A batch is due when max_messages are eligible, when they add up to
 * max_bytes, or when the oldest eligible one has waited max_wait_ms; it then
 * holds the oldest eligible messages up to those limits (always at least one,
 * however large). A message taken is "in flight" until the caller reports it
 * done (forgotten) or deferred (eligible again after a delay, at the back).
 * Time is passed in, in milliseconds, so tests are deterministic. Every
 * operation is O(1) or O(batch size), except sync, which is O(queue).
 *
 * DIAGNOSTICS
 * None: nothing here fails. Reporting an ID that is not in flight panics.
 */
#ifndef MQSCAN_BATCH_H
#define MQSCAN_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

struct mq_batcher;

struct mq_batch_limits {
    unsigned max_messages;
    uint64_t max_bytes;
    unsigned max_wait_ms;
};

struct mq_batcher *mq_batcher_new(const struct mq_batch_limits *limits);
void mq_batcher_free(struct mq_batcher **batcher);
void mq_batcher_set_limits(struct mq_batcher *batcher, const struct mq_batch_limits *limits);

/* Adds id (copied) with its size, arriving at now_ms. An ID already known
 * keeps its place and arrival time. */
void mq_batcher_offer(struct mq_batcher *batcher, const char *id, uint64_t size, int64_t now_ms);

/* After a full rescan: forgets every waiting ID not in present (a set of
 * IDs, e.g. from g_hash_table_new). In-flight IDs are kept. */
void mq_batcher_sync(struct mq_batcher *batcher, GHashTable *present);

/* If a batch is due at now_ms (or flush is true and anything is eligible),
 * returns its IDs, oldest first (caller frees with g_ptr_array_unref(); the
 * strings are copies) and marks them in flight. Otherwise returns NULL and
 * sets *wake_ms_r to when a batch may become due (INT64_MAX: never, until
 * something new is offered). */
GPtrArray *mq_batcher_take(struct mq_batcher *batcher, int64_t now_ms, bool flush,
                           int64_t *wake_ms_r);

/* Reports an in-flight id finished: it is forgotten. */
void mq_batcher_done(struct mq_batcher *batcher, const char *id);
/* Reports an in-flight id not finished: it waits again, not before
 * not_before_ms, behind everything else. */
void mq_batcher_defer(struct mq_batcher *batcher, const char *id, int64_t not_before_ms);

/* Messages known (waiting + in flight). */
size_t mq_batcher_count(const struct mq_batcher *batcher);

#endif
