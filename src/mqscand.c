/* mqscand - scan every message between the incoming and outgoing sendmail.
 *
 * Options, configuration, pidfile and daemonizing; everything else is in the
 * library (mqscan/daemon.h). See mqscand(8).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/config.h"
#include "mqscan/daemon.h"
#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"

#ifndef MQ_SYSCONFDIR
#define MQ_SYSCONFDIR "/etc"
#endif

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: mqscand [-c FILE] [-f] [--once | --lint] [-d]\n"
            "  -c, --config FILE  configuration file (default %s/mqscan/mqscan.conf)\n"
            "  -f, --foreground   do not detach; log to stderr as well as syslog\n"
            "      --once         process the incoming queue once, then exit\n"
            "                     (0: queue done, 75: messages had to be left in place)\n"
            "      --lint         check the configuration and load the signatures, then exit\n"
            "  -d, --debug        log at debug level\n"
            "  -V, --version      print the version\n"
            "  -h, --help         print this help\n",
            MQ_SYSCONFDIR);
}

/* Opens and locks the pidfile before detaching: the flock is inherited by
 * the daemon and is what tells a second mqscand that one is running. */
static int
pidfile_lock(const char *path)
{
    char *dir = g_path_get_dirname(path);
    GError *error = NULL;
    int fd;

    if (mq_fs_mkdir_p(dir, 0755, &error) < 0)
        mq_log_fatal(EX_CANTCREAT, "pid file: %s", error->message);
    g_free(dir);
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        mq_log_fatal(EX_CANTCREAT, "pid file %s: %s", path, g_strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        mq_log_fatal(EX_TEMPFAIL, "pid file %s is locked: mqscand is already running", path);
    return fd;
}

static void
pidfile_write(int fd, const char *path)
{
    char buf[32];
    int n = g_snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        mq_log_fatal(EX_CANTCREAT, "pid file %s: %s", path, g_strerror(errno));
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "foreground", no_argument, NULL, 'f' },
        { "once", no_argument, NULL, 'O' },
        { "lint", no_argument, NULL, 'L' },
        { "debug", no_argument, NULL, 'd' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = MQ_SYSCONFDIR "/mqscan/mqscan.conf";
    bool foreground = false, once = false, lint = false, debug = false;
    struct mq_config *config;
    struct mq_daemon *d;
    char *pid_path = NULL;
    GError *error = NULL;
    int opt, pidfd = -1, status;

    mq_daemon_block_signals();
    while ((opt = getopt_long(argc, argv, "c:fdVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'f': foreground = true; break;
        case 'O': once = true; break;
        case 'L': lint = true; break;
        case 'd': debug = true; break;
        case 'V': printf("mqscand %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EX_USAGE;
        }
    }
    if (optind != argc || (once && lint)) {
        usage(stderr);
        return EX_USAGE;
    }

    /* Until we detach, problems go to the terminal too. */
    mq_log_open("mqscand", MQ_LOG_SINK_STDERR | (lint ? 0 : MQ_LOG_SINK_SYSLOG));
    config = mq_config_load(config_path, &error);
    if (config == NULL) {
        fprintf(stderr, "mqscand: %s\n", error->message);
        if (!lint)
            mq_log_error("%s", error->message);
        return EX_CONFIG;
    }
    mq_log_set_level(debug ? MQ_LOG_DEBUG : config->log_level);

    if (lint) {
        char *report = mq_daemon_lint(config, &error);
        mq_config_free(&config);
        if (report == NULL) {
            fprintf(stderr, "mqscand: %s\n", error->message);
            return error->code == MQ_ERROR_ENGINE ? EX_UNAVAILABLE : EX_CONFIG;
        }
        printf("configuration OK: %s\n%s", config_path, report);
        g_free(report);
        return 0;
    }

    if (!once) {
        pid_path = g_strdup(config->pid_file);
        pidfd = pidfile_lock(pid_path);
    }
    d = mq_daemon_new(config, !once, &error);
    if (d == NULL) {
        /* Fail closed: without an engine nothing leaves the incoming queue. */
        mq_log_error("cannot start: %s", error->message);
        return error->code == MQ_ERROR_ENGINE ? EX_UNAVAILABLE : EX_CONFIG;
    }
    if (!once && !foreground) {
        if (daemon(0, 0) < 0)
            mq_log_fatal(EX_OSERR, "daemon: %s", g_strerror(errno));
        mq_log_open("mqscand", MQ_LOG_SINK_SYSLOG);
    }
    if (pidfd >= 0)
        pidfile_write(pidfd, pid_path);
    mq_log_info("started (%s): %s", once ? "once" : "daemon", mq_daemon_describe(d));

    status = mq_daemon_run(d, once);
    mq_daemon_free(&d);
    if (pidfd >= 0) {
        unlink(pid_path);
        close(pidfd);
    }
    g_free(pid_path);
    mq_log_info("exiting with status %d", status);
    return status;
}
