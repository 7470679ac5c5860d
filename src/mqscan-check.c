/* mqscan-check - health check for cron and Nagios: one status line, exit
 * 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; alerts the postmaster; can start
 * a dead mqscand. The checks are in the library (mqscan/health.h). See
 * mqscan-check(8).
 */
#include <config.h>

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <glib.h>

#include "mqscan/config.h"
#include "mqscan/health.h"
#include "mqscan/log.h"

#ifndef MQ_SYSCONFDIR
#define MQ_SYSCONFDIR "/etc"
#endif
#ifndef MQ_SBINDIR
#define MQ_SBINDIR "/usr/sbin"
#endif

/* How long --restart waits for the new daemon's pid file and heartbeat. */
#define CHECK_RESTART_TIMEOUT_MS 10000

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: mqscan-check [-c FILE] [--restart] [--no-mail] [-q]\n"
            "  -c, --config FILE  configuration file (default %s/mqscan/mqscan.conf)\n"
            "      --restart      start mqscand if it is not running, then check again\n"
            "      --no-mail      do not mail the postmaster about problems\n"
            "  -q, --quiet        do not print the status line\n"
            "  -V, --version      print the version\n"
            "  -h, --help         print this help\n"
            "exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN\n",
            MQ_SYSCONFDIR);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "restart", no_argument, NULL, 'R' },
        { "no-mail", no_argument, NULL, 'M' },
        { "quiet", no_argument, NULL, 'q' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = MQ_SYSCONFDIR "/mqscan/mqscan.conf";
    bool restart = false, mail = true, quiet = false, sent;
    struct mq_config *config = NULL;
    struct mq_health *health = NULL;
    enum mq_health_state state;
    char *line = NULL, *abs_config = NULL;
    GError *error = NULL;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:qVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'R': restart = true; break;
        case 'M': mail = false; break;
        case 'q': quiet = true; break;
        case 'V': printf("mqscan-check %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return MQ_HEALTH_UNKNOWN;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return MQ_HEALTH_UNKNOWN;
    }

    /* Syslog only: cron mails whatever reaches standard error. */
    mq_log_open("mqscan-check", MQ_LOG_SINK_SYSLOG);
    config = mq_config_load(config_path, &error);
    if (config == NULL) {
        fprintf(quiet ? stderr : stdout, "MQSCAN UNKNOWN - configuration: %s\n", error->message);
        g_error_free(error);
        return MQ_HEALTH_UNKNOWN;
    }
    mq_log_set_level(config->log_level);

    health = mq_health_run(config, time(NULL));
    if (restart && mq_health_daemon_down(health)) {
        const char *mqscand = getenv("MQSCAND");

        if (mqscand == NULL || *mqscand == '\0')
            mqscand = MQ_SBINDIR "/mqscand";
        /* mqscand changes directory to / and rereads its file on SIGHUP. */
        abs_config = g_canonicalize_filename(config_path, NULL);
        mq_log_warn("mqscand is not running; starting %s -c %s", mqscand, abs_config);
        if (mq_health_start_daemon(config, mqscand, abs_config, CHECK_RESTART_TIMEOUT_MS,
                                   &error) < 0) {
            mq_log_error("restart failed: %s", error->message);
            fprintf(stderr, "mqscan-check: restart failed: %s\n", error->message);
            g_clear_error(&error);
        } else {
            mq_log_info("mqscand restarted");
            fprintf(stderr, "mqscan-check: mqscand was not running; restarted it\n");
        }
        mq_health_free(&health);
        health = mq_health_run(config, time(NULL));
    }

    if (mail && mq_health_alert(health, time(NULL), &sent, &error) < 0) {
        mq_log_error("alert mail to %s not queued: %s", config->postmaster, error->message);
        fprintf(stderr, "mqscan-check: alert mail to %s not queued: %s\n", config->postmaster,
                error->message);
        g_clear_error(&error);
    }

    state = mq_health_state(health);
    line = mq_health_summary(health);
    if (!quiet)
        printf("%s\n", line);
    g_free(line);
    g_free(abs_config);
    mq_health_free(&health);
    mq_config_free(&config);
    return (int)state;
}
