/* daemon - the main loop of mqscand: watch, batch, process, reload.
 *
 * Public functions: mq_daemon_block_signals(), mq_daemon_new(),
 * mq_daemon_free(), mq_daemon_lint(), mq_daemon_run(), mq_daemon_describe(),
 * mq_daemon_set_heartbeat_pid().
 *
 * The loop waits on inotify (a hint), a periodic full rescan (the safety
 * net), signals (via signalfd) and the end of a reload. A due batch is
 * handed to a pool of worker threads that share one compiled engine; signals
 * are acted on between batches only: SIGTERM/SIGINT finish the batch in hand
 * and exit, SIGHUP builds a new configuration and engine in a background
 * thread while scanning goes on, and swaps them in at the next batch
 * boundary (a failed reload logs and keeps the old ones).
 *
 * DIAGNOSTICS
 * mq_daemon_new() returns NULL with MQ_ERROR_CONFIG (directories) or
 * MQ_ERROR_ENGINE (signatures) so that the program can exit with the right
 * status. mq_daemon_run() returns an exit status.
 */
#ifndef MQSCAN_DAEMON_H
#define MQSCAN_DAEMON_H

#include <stdbool.h>

#include <glib.h>

#include "mqscan/config.h"

struct mq_daemon;

/* Blocks the signals the daemon handles. Call first in main(), before any
 * thread exists, so every thread inherits the mask. */
void mq_daemon_block_signals(void);

/* Builds everything config describes: directories (created 0700 if
 * missing), queues, engine. Starts no thread, so the caller may still fork
 * (daemon()) afterwards. Takes ownership of config. Returns a new daemon
 * (caller frees with mq_daemon_free()) or NULL with err set. */
struct mq_daemon *mq_daemon_new(struct mq_config *config, bool watch, GError **err);
void mq_daemon_free(struct mq_daemon **daemon);

/* For --lint: checks what the daemon would need (directories, signatures)
 * without creating or changing anything. Returns a report, one finding a
 * line (caller frees with g_free()), or NULL with err set: MQ_ERROR_ENGINE
 * when the signatures do not load, MQ_ERROR_CONFIG otherwise. */
char *mq_daemon_lint(const struct mq_config *config, GError **err);

/* The pid the heartbeat file carries (default: this process's): the one
 * in the pid file, which is the supervisor's when the daemon runs in a
 * child process (supervise.h). */
void mq_daemon_set_heartbeat_pid(struct mq_daemon *daemon, long pid);

/* "N signatures, libclamav ..." for the start-up log line. Borrowed. */
const char *mq_daemon_describe(const struct mq_daemon *daemon);

/* Runs until SIGTERM/SIGINT, or with once, until every message that was in
 * the incoming queue at the start has been dealt with. Returns 0, or
 * EX_TEMPFAIL (75) in once mode when messages had to be left in the queue. */
int mq_daemon_run(struct mq_daemon *daemon, bool once);

#endif
