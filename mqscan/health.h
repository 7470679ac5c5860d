/* health - the checks behind mqscan-check(8): is mqscand alive, is it
 * working, is mail moving, are the signatures fresh, is the hold area
 * filling up; alerting the postmaster; restarting a dead daemon.
 *
 * Public functions: mq_health_run(), mq_health_free(), mq_health_state(),
 * mq_health_state_name(), mq_health_check(), mq_health_summary(),
 * mq_health_daemon_down(),
 * mq_health_alert(), mq_health_start_daemon().
 *
 * A run is a snapshot: every check is done once, at the time given, and its
 * result (OK, WARNING or CRITICAL and a short text) kept in a struct
 * mq_health. The overall state is the worst one. The checks only read: the
 * pid file (a shared flock, dropped at once, tells whether anybody holds
 * mqscand's lock on it), /proc, state_dir/heartbeat, the incoming queue
 * directory (stat only, no queue file is opened or locked), the signature
 * database directory and the hold directory. The one file the health check
 * writes is its own alert state, state_dir/check-alerts.
 *
 * Files read back (pid file, heartbeat, alert state, database headers) are
 * untrusted: opened without following symlinks, size-capped, and parsed
 * strictly with bounded number parsing.
 *
 * DIAGNOSTICS
 * The checks themselves never fail: what they cannot read is a finding
 * (CRITICAL or WARNING, said in the text). mq_health_alert() and
 * mq_health_start_daemon() return -1 with a GError in the MQ_ERROR domain.
 * A NULL config is a panic.
 */
#ifndef MQSCAN_HEALTH_H
#define MQSCAN_HEALTH_H

#include <stdbool.h>
#include <time.h>

#include <glib.h>

#include "mqscan/config.h"

/* Ordered: a larger value is worse. The values are the Nagios plugin exit
 * codes. */
enum mq_health_state {
    MQ_HEALTH_OK = 0,
    MQ_HEALTH_WARNING = 1,
    MQ_HEALTH_CRITICAL = 2,
    MQ_HEALTH_UNKNOWN = 3,
};

struct mq_health;

/* Runs every check against config as of now (Unix time; injected so tests
 * are deterministic). Returns a new result (caller frees with
 * mq_health_free()); config must stay valid until then. */
struct mq_health *mq_health_run(const struct mq_config *config, time_t now);
void mq_health_free(struct mq_health **health);

/* The worst state of all checks. */
enum mq_health_state mq_health_state(const struct mq_health *health);

/* "OK", "WARNING", "CRITICAL", "UNKNOWN". Static. */
const char *mq_health_state_name(enum mq_health_state state);

/* The state of one check, by name: "daemon", "heartbeat", "queue",
 * "signatures" or "hold" (another name is a panic). *text_r (may be NULL)
 * gets its text, borrowed from health. */
enum mq_health_state mq_health_check(const struct mq_health *health, const char *name,
                                     const char **text_r);

/* One line, no newline, in the style of a Nagios plugin:
 * "MQSCAN CRITICAL - daemon not running (no pid file); queue: ...".
 * Problems come first, worst first. Caller frees with g_free(). */
char *mq_health_summary(const struct mq_health *health);

/* True if nobody holds the lock on pid_file, that is, mqscand is not
 * running (whatever the pid file says) and starting it is safe. */
bool mq_health_daemon_down(const struct mq_health *health);

/* Mails the postmaster about the problems of health (if any) that have not
 * been mailed within check_alert_interval seconds of now, or that got worse
 * since. The state is kept in state_dir/check-alerts, one line per problem
 * with the state and time of the last mail; a problem that has cleared is
 * dropped from it, so it is mailed again if it comes back. The mail goes
 * through mq_notify_send() into outgoing_queue_dir; one mail covers every
 * problem due. *sent_r (may be NULL) is set to true if a mail was queued.
 * Returns 0, or -1 with err set (the state is not updated for a mail that
 * could not be queued, so the next run tries again). */
int mq_health_alert(const struct mq_health *health, time_t now, bool *sent_r, GError **err);

/* Starts mqscand: fork, setsid, execv(mqscand_path, {"mqscand", "-c",
 * config_path}) without a shell, then waits up to timeout_ms for the new
 * daemon to hold the lock on pid_file, to have written its pid there, and
 * to have written a heartbeat with that pid. Returns 0 when it has, or -1
 * with err set: MQ_ERROR_ENGINE if mqscand exited with an error (its own
 * message went to standard error), MQ_ERROR_TEMP on a time-out, MQ_ERROR_IO
 * if fork failed. config_path should be absolute (mqscand reloads it after
 * it has changed directory to /). */
int mq_health_start_daemon(const struct mq_config *config, const char *mqscand_path,
                           const char *config_path, unsigned timeout_ms, GError **err);

#endif
