/* watch - inotify wake-ups for the incoming queue directory.
 *
 * Public functions: mq_watch_new(), mq_watch_free(), mq_watch_fd(),
 * mq_watch_read().
 *
 * An event is only a hint that a qf file appeared; the daemon also rescans
 * the whole directory periodically, because inotify can overflow and misses
 * whatever happened while the daemon was not running. sendmail creates an
 * empty, locked qf first and then renames tfID to qfID, so IN_MOVED_TO is
 * the event that matters; IN_CLOSE_WRITE covers tools that write a qf in
 * place.
 *
 * DIAGNOSTICS
 * mq_watch_new() returns NULL with err set if inotify is unavailable; the
 * daemon then relies on rescans alone.
 */
#ifndef MQSCAN_WATCH_H
#define MQSCAN_WATCH_H

#include <stdbool.h>

#include <glib.h>

struct mq_watch;

struct mq_watch *mq_watch_new(const char *dir, GError **err);
void mq_watch_free(struct mq_watch **watch);

/* File descriptor to poll for POLLIN. */
int mq_watch_fd(const struct mq_watch *watch);

/* Reads all pending events without blocking and appends the ID of each qf
 * file that appeared to ids (g_free'd strings). Returns true if events were
 * lost (queue overflow) and a full rescan is needed. */
bool mq_watch_read(struct mq_watch *watch, GPtrArray *ids);

#endif
