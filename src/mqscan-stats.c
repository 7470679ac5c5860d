/* mqscan-stats - print, and optionally render as one HTML page, what
 * mqscand counted in state_dir/stats.db.
 *
 * Options, configuration and dates; the database and the reports are in the
 * library (mqscan/stats.h). See mqscan-stats(8). Read-only: the database is
 * opened query-only, so this can run at any time next to mqscand.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <glib.h>

#include "mqscan/config.h"
#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/notify.h"
#include "mqscan/queue.h"
#include "mqscan/stats.h"

#ifndef MQ_SYSCONFDIR
#define MQ_SYSCONFDIR "/etc"
#endif

#define DAY_SECONDS 86400
/* Longest --from/--to range, in days (ten years). */
#define RANGE_DAYS_MAX 3660
/* Entries in each top list. */
#define TOP_N 10

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: mqscan-stats [-c FILE] [--db PATH] [--day DATE | --from DATE [--to DATE]]\n"
            "                    [--html FILE]\n"
            "  -c, --config FILE  configuration file, for state_dir\n"
            "                     (default %s/mqscan/mqscan.conf)\n"
            "      --db PATH      statistics database (default STATE_DIR/" MQ_STATS_FILE
            "; the\n"
            "                     configuration is then not read)\n"
            "      --day DATE     one UTC day, per hour (YYYY-MM-DD; default today)\n"
            "      --from DATE    first UTC day of a range, per day\n"
            "      --to DATE      last UTC day of the range (default today)\n"
            "      --html FILE    also write the report as one HTML page to FILE\n"
            "      --mail         also mail the report (text, HTML attached) to the\n"
            "                     postmaster, through the outgoing queue\n"
            "  -V, --version      print the version\n"
            "  -h, --help         print this help\n",
            MQ_SYSCONFDIR);
}

/* Parses a strict YYYY-MM-DD (UTC) into days since 1970-01-01. */
static bool
parse_day(const char *s, int64_t *day_r)
{
    char y[5], m[3], d[3];
    uint64_t yy, mm, dd;
    GDate *date, *epoch;

    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    memcpy(y, s, 4);
    y[4] = '\0';
    memcpy(m, s + 5, 2);
    m[2] = '\0';
    memcpy(d, s + 8, 2);
    d[2] = '\0';
    if (!mq_fs_parse_uint(y, 1970, 9999, &yy) || !mq_fs_parse_uint(m, 1, 12, &mm) ||
        !mq_fs_parse_uint(d, 1, 31, &dd) ||
        !g_date_valid_dmy((GDateDay)dd, (GDateMonth)mm, (GDateYear)yy))
        return false;
    date = g_date_new_dmy((GDateDay)dd, (GDateMonth)mm, (GDateYear)yy);
    epoch = g_date_new_dmy(1, G_DATE_JANUARY, 1970);
    *day_r = (int64_t)g_date_get_julian(date) - (int64_t)g_date_get_julian(epoch);
    g_date_free(date);
    g_date_free(epoch);
    return true;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "db", required_argument, NULL, 'D' },
        { "day", required_argument, NULL, 'd' },
        { "from", required_argument, NULL, 'F' },
        { "to", required_argument, NULL, 'T' },
        { "html", required_argument, NULL, 'H' },
        { "mail", no_argument, NULL, 'M' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = MQ_SYSCONFDIR "/mqscan/mqscan.conf";
    const char *db_arg = NULL, *day_arg = NULL, *from_arg = NULL, *to_arg = NULL;
    const char *html_path = NULL;
    bool mail = false;
    int64_t today = (int64_t)time(NULL) / DAY_SECONDS, first, last;
    struct mq_config *config = NULL;
    struct mq_stats *stats = NULL;
    char *db_path = NULL, *text = NULL, *html = NULL;
    unsigned step;
    GError *error = NULL;
    int opt, status = EX_UNAVAILABLE;

    while ((opt = getopt_long(argc, argv, "c:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'D': db_arg = optarg; break;
        case 'd': day_arg = optarg; break;
        case 'F': from_arg = optarg; break;
        case 'T': to_arg = optarg; break;
        case 'H': html_path = optarg; break;
        case 'M': mail = true; break;
        case 'V': printf("mqscan-stats %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EX_USAGE;
        }
    }
    if (optind != argc || (day_arg != NULL && (from_arg != NULL || to_arg != NULL)) ||
        (to_arg != NULL && from_arg == NULL) || (html_path != NULL && *html_path == '\0') ||
        (db_arg != NULL && *db_arg == '\0') || (mail && db_arg != NULL)) {
        usage(stderr);
        return EX_USAGE;
    }
    mq_log_open("mqscan-stats", MQ_LOG_SINK_STDERR);

    /* One day per hour, or a range of days per day; all in UTC. */
    if (from_arg != NULL) {
        if (!parse_day(from_arg, &first) || (to_arg != NULL && !parse_day(to_arg, &last))) {
            mq_log_error("dates are YYYY-MM-DD, from 1970-01-01");
            return EX_USAGE;
        }
        if (to_arg == NULL)
            last = today;
        if (last < first || last - first >= RANGE_DAYS_MAX) {
            mq_log_error("--to must not be before --from, and a range is at most %d days",
                         RANGE_DAYS_MAX);
            return EX_USAGE;
        }
        step = 24;
    } else {
        if (day_arg != NULL && !parse_day(day_arg, &first)) {
            mq_log_error("dates are YYYY-MM-DD, from 1970-01-01");
            return EX_USAGE;
        }
        if (day_arg == NULL)
            first = today;
        last = first;
        step = 1;
    }

    if (db_arg != NULL) {
        db_path = g_strdup(db_arg);
    } else {
        config = mq_config_load(config_path, &error);
        if (config == NULL) {
            mq_log_error("%s", error->message);
            status = EX_CONFIG;
            goto done;
        }
        db_path = g_build_filename(config->state_dir, MQ_STATS_FILE, NULL);
    }

    stats = mq_stats_open(db_path, false, &error);
    if (stats == NULL) {
        mq_log_error("%s", error->message);
        goto done;
    }
    text = mq_stats_report(stats, MQ_STATS_FORMAT_TEXT, (time_t)(first * DAY_SECONDS),
                           (time_t)((last + 1) * DAY_SECONDS), step, TOP_N, &error);
    if (text != NULL && (html_path != NULL || mail))
        html = mq_stats_report(stats, MQ_STATS_FORMAT_HTML, (time_t)(first * DAY_SECONDS),
                               (time_t)((last + 1) * DAY_SECONDS), step, TOP_N, &error);
    if (text == NULL || ((html_path != NULL || mail) && html == NULL)) {
        mq_log_error("%s", error->message);
        goto done;
    }
    if (fputs(text, stdout) == EOF || fflush(stdout) == EOF) {
        mq_log_error("standard output: %s", g_strerror(errno));
        status = EX_IOERR;
        goto done;
    }
    /* Written to a temporary file and renamed: a browser never sees half. */
    if (mail) {
        const char *const to[] = { config->postmaster, NULL };
        struct mq_queue *out = mq_queue_open(config->outgoing_queue_dir, &error);
        char *subject = g_strdup_printf("mqscan statistics for %s", from_arg ? from_arg
                                        : day_arg ? day_arg : "today");
        char *id = out ? mq_notify_send_attached(config, out, to, subject, text,
                                                 "mqscan-report.html", "text/html", html,
                                                 strlen(html), &error)
                       : NULL;
        g_free(subject);
        mq_queue_free(&out);
        if (id == NULL) {
            mq_log_error("report not mailed: %s", error->message);
            status = EX_UNAVAILABLE;
            goto done;
        }
        g_free(id);
    }
    if (html_path != NULL && !g_file_set_contents_full(html_path, html, -1,
                                                  G_FILE_SET_CONTENTS_CONSISTENT, 0644,
                                                  &error)) {
        mq_log_error("%s", error->message);
        status = EX_CANTCREAT;
        goto done;
    }
    status = 0;

done:
    g_clear_error(&error);
    g_free(html);
    g_free(text);
    mq_stats_close(&stats);
    g_free(db_path);
    mq_config_free(&config);
    return status;
}
