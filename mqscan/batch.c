#include <config.h>

#include <stdint.h>

#include <glib.h>

#include "mqscan/batch.h"
#include "mqscan/log.h"

struct batch_item {
    char *id;
    uint64_t size;
    int64_t arrived_ms;
    int64_t not_before_ms;
    GList *link;        /* in waiting, NULL while in flight */
};

struct mq_batcher {
    struct mq_batch_limits limits;
    GHashTable *items;  /* id -> struct batch_item (owns it) */
    GQueue waiting;     /* struct batch_item *, arrival order */
};

static void
batch_item_free(gpointer p)
{
    struct batch_item *it = p;
    g_free(it->id);
    g_free(it);
}

struct mq_batcher *
mq_batcher_new(const struct mq_batch_limits *limits)
{
    struct mq_batcher *b = g_new0(struct mq_batcher, 1);

    b->limits = *limits;
    b->items = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, batch_item_free);
    g_queue_init(&b->waiting);
    return b;
}

void
mq_batcher_free(struct mq_batcher **batcher)
{
    struct mq_batcher *b = *batcher;

    if (b == NULL)
        return;
    g_queue_clear(&b->waiting);
    g_hash_table_destroy(b->items);
    g_free(b);
    *batcher = NULL;
}

void
mq_batcher_set_limits(struct mq_batcher *batcher, const struct mq_batch_limits *limits)
{
    batcher->limits = *limits;
}

void
mq_batcher_offer(struct mq_batcher *b, const char *id, uint64_t size, int64_t now_ms)
{
    struct batch_item *it;

    if (g_hash_table_contains(b->items, id))
        return;
    it = g_new0(struct batch_item, 1);
    it->id = g_strdup(id);
    it->size = size;
    it->arrived_ms = now_ms;
    it->not_before_ms = INT64_MIN;
    g_queue_push_tail(&b->waiting, it);
    it->link = b->waiting.tail;
    g_hash_table_insert(b->items, it->id, it);
}

void
mq_batcher_sync(struct mq_batcher *b, GHashTable *present)
{
    GList *l = b->waiting.head;

    while (l != NULL) {
        GList *next = l->next;
        struct batch_item *it = l->data;
        if (!g_hash_table_contains(present, it->id)) {
            g_queue_delete_link(&b->waiting, l);
            g_hash_table_remove(b->items, it->id);
        }
        l = next;
    }
}

GPtrArray *
mq_batcher_take(struct mq_batcher *b, int64_t now_ms, bool flush, int64_t *wake_ms_r)
{
    const struct mq_batch_limits *lim = &b->limits;
    GPtrArray *chosen = g_ptr_array_new();
    GPtrArray *ids;
    uint64_t bytes = 0;
    int64_t oldest = INT64_MAX, next_eligible = INT64_MAX;
    bool due, full = false;

    *wake_ms_r = INT64_MAX;
    for (GList *l = b->waiting.head; l != NULL; l = l->next) {
        struct batch_item *it = l->data;
        if (it->not_before_ms > now_ms) {
            next_eligible = MIN(next_eligible, it->not_before_ms);
            continue;
        }
        if (chosen->len >= lim->max_messages ||
            (chosen->len > 0 && bytes + it->size > lim->max_bytes)) {
            full = true;
            break;
        }
        g_ptr_array_add(chosen, it);
        bytes += it->size;
        /* A deferred message counts as waiting since it became eligible. */
        oldest = MIN(oldest, MAX(it->arrived_ms, it->not_before_ms));
    }

    due = chosen->len > 0 &&
          (flush || full || chosen->len >= lim->max_messages || bytes >= lim->max_bytes ||
           now_ms - oldest >= (int64_t)lim->max_wait_ms);
    if (!due) {
        if (chosen->len > 0)
            *wake_ms_r = oldest + lim->max_wait_ms;
        *wake_ms_r = MIN(*wake_ms_r, next_eligible);
        g_ptr_array_unref(chosen);
        return NULL;
    }

    ids = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < chosen->len; i++) {
        struct batch_item *it = g_ptr_array_index(chosen, i);
        g_queue_delete_link(&b->waiting, it->link);
        it->link = NULL;
        g_ptr_array_add(ids, g_strdup(it->id));
    }
    g_ptr_array_unref(chosen);
    return ids;
}

static struct batch_item *
batch_in_flight(struct mq_batcher *b, const char *id)
{
    struct batch_item *it = g_hash_table_lookup(b->items, id);

    if (it == NULL || it->link != NULL)
        mq_log_panic("batch: %s is not in flight", id);
    return it;
}

void
mq_batcher_done(struct mq_batcher *b, const char *id)
{
    batch_in_flight(b, id);
    g_hash_table_remove(b->items, id);
}

void
mq_batcher_defer(struct mq_batcher *b, const char *id, int64_t not_before_ms)
{
    struct batch_item *it = batch_in_flight(b, id);

    it->not_before_ms = not_before_ms;
    g_queue_push_tail(&b->waiting, it);
    it->link = b->waiting.tail;
}

size_t
mq_batcher_count(const struct mq_batcher *b)
{
    return g_hash_table_size(b->items);
}
