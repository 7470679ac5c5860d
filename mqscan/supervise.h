/* supervise - run the scanner in a child process and restart it when it
 * dies, so that a message that crashes or hangs the scanner costs one
 * process, not the service.
 *
 * Public functions: mq_supervise().
 *
 * The parent does nothing but wait: SIGHUP, SIGTERM and SIGINT are passed on
 * to the child; a child that exits is done (its status becomes the parent's),
 * unless it exits with EX_SOFTWARE, which is how the child says "restart me"
 * (a message ran past its time limit and threads cannot be cancelled); a
 * child killed by a signal is restarted too. Restarts that follow each other
 * quickly are spaced out (1 s, 2 s, 4 s, ... at most 30 s) so that a crash
 * loop does not burn the machine; what breaks the loop is the per-message
 * attempt count (attempts.h), which holds the message after max_attempts.
 * The child gets SIGKILL when the parent dies, so that killing the pid in
 * the pid file stops everything, as before.
 *
 * Call it with SIGHUP, SIGTERM and SIGINT blocked (mq_daemon_block_signals())
 * and before any thread exists.
 *
 * DIAGNOSTICS
 * Every restart is logged with the cause. A fork that fails is fatal
 * (EX_OSERR).
 */
#ifndef MQSCAN_SUPERVISE_H
#define MQSCAN_SUPERVISE_H

/* The child's work: gets arg and the number of earlier children (0 for the
 * first), returns the exit status. */
typedef int (*mq_supervise_fn)(void *arg, unsigned generation);

/* Runs child(arg, n) in child process n = 0, 1, ... as described above,
 * and started(arg) (if not NULL) in the parent once the first child runs:
 * the parent may then drop what it built for that child. Returns the exit
 * status to exit with. */
int mq_supervise(mq_supervise_fn child, void (*started)(void *arg), void *arg);

#endif
