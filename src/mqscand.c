/* mqscand - scan every message between the incoming and outgoing sendmail.
 *
 * Options, configuration, pidfile and daemonizing; everything else is in the
 * library (mqscan/daemon.h). See mqscand(8).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
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
#include "mqscan/supervise.h"

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

/* A just-killed mqscand's scanner process may hold the pid file's lock
 * for a moment after its supervisor died: wait that long before saying
 * another one is running. */
#define PIDFILE_LOCK_WAIT_MS 3000

/* What the scanner process needs: the daemon built before detaching (for
 * the first one), or what it takes to build one again (after a restart). */
struct scanner_args {
    struct mq_daemon *daemon;
    const char *config_path;
    bool once, debug;
    long supervisor_pid;
};

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
    for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited += 100) {
        if (waited >= PIDFILE_LOCK_WAIT_MS)
            mq_log_fatal(EX_TEMPFAIL, "pid file %s is locked: mqscand is already running", path);
        g_usleep(100 * 1000);
    }
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

/* Looks up the user mqscand runs as. Returns false with *why set (caller
 * frees) when it does not exist. */
static bool
user_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, char **why)
{
    struct passwd *pw;

    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        *why = g_strdup_printf("user %s does not exist (%s): create it (useradd --system "
                               "--user-group %s) or set user = \"\" to run as root", user,
                               errno ? g_strerror(errno) : "no such user", user);
        return false;
    }
    *uid_r = pw->pw_uid;
    *gid_r = pw->pw_gid;
    return true;
}

/* Becomes config->user for good, if we are root and one is set: after the
 * pid file is locked, before any message, signature or directory of ours is
 * touched, so that everything mqscand creates belongs to that user. */
static void
drop_privileges(const struct mq_config *config)
{
    uid_t uid;
    gid_t gid;
    char *why = NULL;

    if (config->user[0] == '\0') {
        if (geteuid() == 0)
            mq_log_warn("running as root (user = \"\" in %s)", config->file);
        return;
    }
    if (!user_lookup(config->user, &uid, &gid, &why))
        mq_log_fatal(EX_CONFIG, "%s", why);
    if (geteuid() != 0) {
        if (geteuid() != uid)
            mq_log_warn("not root: cannot become %s, running as uid %ld", config->user,
                        (long)geteuid());
        return;
    }
    if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
        mq_log_fatal(EX_OSERR, "cannot become %s: %s", config->user, g_strerror(errno));
    if (setuid(0) == 0)
        mq_log_fatal(EX_SOFTWARE, "still root after becoming %s", config->user);
    mq_log_info("running as %s (uid %ld, gid %ld)", config->user, (long)uid, (long)gid);
}

/* Detaches like daemon(3), but the command returns only once the pid file
 * names the detached process, so that whoever started mqscand (an init
 * script, a health check's restart) can read it at once. */
static void
detach(int pidfd, const char *pid_path)
{
    int ready[2], devnull;
    pid_t pid;
    char byte;

    if (pipe(ready) < 0 || (pid = fork()) < 0)
        mq_log_fatal(EX_OSERR, "detach: %s", g_strerror(errno));
    if (pid > 0) {
        close(ready[1]);
        /* EOF without the byte: the child died before it was ready. */
        _exit(read(ready[0], &byte, 1) == 1 ? 0 : EX_OSERR);
    }
    close(ready[0]);
    if (setsid() < 0 || chdir("/") < 0)
        mq_log_fatal(EX_OSERR, "detach: %s", g_strerror(errno));
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0)
        mq_log_fatal(EX_OSERR, "detach: /dev/null: %s", g_strerror(errno));
    if (devnull > 2)
        close(devnull);
    if (pidfd >= 0)
        pidfile_write(pidfd, pid_path);
    byte = 1;
    if (write(ready[1], &byte, 1) != 1)
        mq_log_warn("detach: cannot tell the starting process: %s", g_strerror(errno));
    close(ready[1]);
}

/* The scanner process (see supervise.h). */
static int
scanner_main(void *data, unsigned generation)
{
    struct scanner_args *a = data;
    struct mq_daemon *d = a->daemon;
    GError *error = NULL;
    int status;

    a->daemon = NULL;
    if (generation > 0) {
        struct mq_config *config = mq_config_load(a->config_path, &error);
        if (config == NULL) {
            mq_log_error("cannot restart: %s", error->message);
            return EX_CONFIG;
        }
        mq_log_set_level(a->debug ? MQ_LOG_DEBUG : config->log_level);
        d = mq_daemon_new(config, !a->once, &error);
        if (d == NULL) {
            mq_log_error("cannot restart: %s", error->message);
            return error->code == MQ_ERROR_ENGINE ? EX_UNAVAILABLE : EX_CONFIG;
        }
        mq_log_info("scanner process restarted: %s", mq_daemon_describe(d));
    }
    mq_daemon_set_heartbeat_pid(d, a->supervisor_pid);
    status = mq_daemon_run(d, a->once);
    mq_daemon_free(&d);
    return status;
}

/* In the supervisor once the first scanner process has its copy. */
static void
scanner_started(void *data)
{
    struct scanner_args *a = data;

    mq_daemon_free(&a->daemon);
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
    struct scanner_args args;
    char *pid_path = NULL;
    GError *error = NULL;
    int opt, pidfd = -1, status;

    mq_daemon_block_signals();
    /* Nothing mqscand creates is for anyone else: files it does not open
     * itself (SQLite's statistics database and its journal) included. */
    umask(077);
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
        char *report, *why = NULL, *user_line;
        uid_t uid;
        gid_t gid;
        if (config->user[0] != '\0' && !user_lookup(config->user, &uid, &gid, &why)) {
            fprintf(stderr, "mqscand: %s: %s\n", config->file, why);
            g_free(why);
            mq_config_free(&config);
            return EX_CONFIG;
        }
        report = mq_daemon_lint(config, &error);
        user_line = config->user[0] != '\0' ? g_strdup_printf("user: %s\n", config->user)
                                              : g_strdup("user: none, mqscand stays root\n");
        mq_config_free(&config);
        if (report == NULL) {
            g_free(user_line);
            fprintf(stderr, "mqscand: %s\n", error->message);
            return error->code == MQ_ERROR_ENGINE ? EX_UNAVAILABLE : EX_CONFIG;
        }
        printf("configuration OK: %s\n%s%s", config_path, report, user_line);
        g_free(user_line);
        g_free(report);
        return 0;
    }

    if (!once) {
        pid_path = g_strdup(config->pid_file);
        pidfd = pidfile_lock(pid_path);
    }
    drop_privileges(config);
    d = mq_daemon_new(config, !once, &error);
    if (d == NULL) {
        /* Fail closed: without an engine nothing leaves the incoming queue. */
        mq_log_error("cannot start: %s", error->message);
        return error->code == MQ_ERROR_ENGINE ? EX_UNAVAILABLE : EX_CONFIG;
    }
    if (!once && !foreground) {
        detach(pidfd, pid_path);
        mq_log_open("mqscand", MQ_LOG_SINK_SYSLOG);
    } else if (pidfd >= 0) {
        pidfile_write(pidfd, pid_path);
    }
    mq_log_info("started (%s): %s", once ? "once" : "daemon", mq_daemon_describe(d));

    args = (struct scanner_args){ .daemon = d, .config_path = config_path, .once = once,
                                  .debug = debug, .supervisor_pid = (long)getpid() };
    status = mq_supervise(scanner_main, scanner_started, &args);
    if (pidfd >= 0) {
        unlink(pid_path);
        close(pidfd);
    }
    g_free(pid_path);
    mq_log_info("exiting with status %d", status);
    return status;
}
