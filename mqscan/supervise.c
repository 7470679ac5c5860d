#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/log.h"
#include "mqscan/supervise.h"

/* A child that lived less than this was a quick failure: the next restart
 * waits, longer each time, up to SUPERVISE_DELAY_MAX_S. */
#define SUPERVISE_QUICK_S 10
#define SUPERVISE_DELAY_MAX_S 30

static pid_t
supervise_start(mq_supervise_fn child, void *arg, unsigned generation)
{
    pid_t parent = getpid(), pid = fork();
    sigset_t chld;

    if (pid < 0)
        mq_log_fatal(EX_OSERR, "fork: %s", g_strerror(errno));
    if (pid > 0)
        return pid;
    /* The child: dies with the parent; SIGCHLD back to normal. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(EX_OSERR);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_UNBLOCK, &chld, NULL);
    exit(child(arg, generation));
}

/* Waits for the child, passing signals on. Returns its wait status; sets
 * *stopping when we were asked to stop. */
static int
supervise_wait(pid_t pid, const sigset_t *set, bool *stopping)
{
    for (;;) {
        siginfo_t si;
        int status;
        pid_t got;

        if (sigwaitinfo(set, &si) < 0) {
            if (errno == EINTR)
                continue;
            mq_log_fatal(EX_OSERR, "sigwaitinfo: %s", g_strerror(errno));
        }
        if (si.si_signo != SIGCHLD) {
            if (si.si_signo != SIGHUP)
                *stopping = true;
            kill(pid, si.si_signo);
            continue;
        }
        while ((got = waitpid(-1, &status, WNOHANG)) > 0) {
            if (got == pid)
                return status;
        }
    }
}

/* Sleeps seconds unless asked to stop meanwhile. */
static void
supervise_pause(unsigned seconds, const sigset_t *set, bool *stopping)
{
    struct timespec until, now;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += seconds;
    while (!*stopping) {
        struct timespec left;
        siginfo_t si;

        clock_gettime(CLOCK_MONOTONIC, &now);
        left.tv_sec = until.tv_sec - now.tv_sec;
        left.tv_nsec = until.tv_nsec - now.tv_nsec;
        if (left.tv_nsec < 0) {
            left.tv_sec--;
            left.tv_nsec += 1000000000L;
        }
        if (left.tv_sec < 0)
            return;
        if (sigtimedwait(set, &si, &left) < 0)
            continue;           /* EAGAIN (time is up) or EINTR */
        if (si.si_signo == SIGTERM || si.si_signo == SIGINT)
            *stopping = true;
    }
}

int
mq_supervise(mq_supervise_fn child, void (*started)(void *arg), void *arg)
{
    sigset_t set;
    bool stopping = false;
    unsigned quick = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    for (unsigned generation = 0;; generation++) {
        gint64 began = g_get_monotonic_time();
        pid_t pid = supervise_start(child, arg, generation);
        unsigned delay = 0;
        int status;

        if (generation == 0 && started != NULL)
            started(arg);
        status = supervise_wait(pid, &set, &stopping);

        if (WIFEXITED(status) && (WEXITSTATUS(status) != EX_SOFTWARE || stopping))
            return WEXITSTATUS(status);
        if (stopping)
            return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : EX_SOFTWARE;
        if (g_get_monotonic_time() - began < SUPERVISE_QUICK_S * G_USEC_PER_SEC)
            quick++;
        else
            quick = 0;
        if (quick > 1)
            delay = MIN(1u << MIN(quick - 2, 5u), (unsigned)SUPERVISE_DELAY_MAX_S);
        if (WIFSIGNALED(status))
            mq_log_error("scanner process %ld killed by signal %d (%s)%s; restarting it in %u s",
                         (long)pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
                         WCOREDUMP(status) ? ", core dumped" : "", delay);
        else
            mq_log_error("scanner process %ld stopped on a message that ran past its time "
                         "limit; restarting it in %u s", (long)pid, delay);
        if (delay > 0)
            supervise_pause(delay, &set, &stopping);
        if (stopping)
            return 0;
    }
}
