/* mqscan-quarantine - the postmaster's view of, and verbs over, the quarantine.
 *
 * Options, configuration, the operator's IDs and the output; everything else
 * is in the library (mqscan/quarantine.h). Every ID is checked with
 * mq_quarantine_id_ok() before the configuration is even read, so a bad ID
 * touches nothing. See mqscan-quarantine(8).
 *
 * Exit codes (sysexits): 0 done, 64 usage (bad option, argument or ID,
 * refused address), 66 no such entry, 69 the quarantine or outgoing queue
 * cannot be opened, 74 an I/O failure or an entry that cannot be read or
 * removed (list, show and purge go on with the rest first), 78 configuration.
 */
#include <config.h>

#include <getopt.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/config.h"
#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/quarantine.h"
#include "mqscan/scanner.h"
#include "mqscan/queue.h"

#ifndef MQ_SYSCONFDIR
#define MQ_SYSCONFDIR "/etc"
#endif

#define PROG "mqscan-quarantine"
/* Longest purge age: a century. */
#define MAX_DAYS 36500

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " [-c FILE] COMMAND [ARGS]\n"
            "  list [--since YYYY-MM-DD] [--sender PATTERN] [--reason TEXT] [--oldest-first]\n"
            "                          one line per entry, newest first, TAB separated:\n"
            "                          ID DATE ACTION REASON SENDER SUBJECT\n"
            "  show ID                 the entry's meta, original headers and files\n"
            "  release ID [--to ADDR]  queue the original for delivery (to ADDR only)\n"
            "  delete ID               remove the entry\n"
            "  purge --older-than DAYS remove entries stored DAYS days ago or earlier\n"
            "options:\n"
            "  -c, --config FILE  configuration file (default %s/mqscan/mqscan.conf)\n"
            "  -V, --version      print the version\n"
            "  -h, --help         print this help\n",
            MQ_SYSCONFDIR);
}

/* "PROG: what "arg"why", arg sanitized; then the usage. Returns EX_USAGE. */
static int
usage_error(const char *what, const char *arg, const char *why)
{
    char *shown = mq_log_sanitize(arg, 100);

    fprintf(stderr, PROG ": %s \"%s\"%s\n", what, shown, why);
    g_free(shown);
    usage(stderr);
    return EX_USAGE;
}

/* The exit code for a failure of a library verb. */
static int
exit_code(const GError *e)
{
    if (e->domain == MQ_QUARANTINE_ERROR)
        return e->code == MQ_QUARANTINE_ERROR_NO_ENTRY ? EX_NOINPUT : EX_USAGE;
    return EX_IOERR;
}

static int
fail(GError **e)
{
    int code = exit_code(*e);

    fprintf(stderr, PROG ": %s\n", (*e)->message);
    g_clear_error(e);
    return code;
}

/* "2026-11-24T04:52:00Z" */
static char *
iso_time(time_t t)
{
    GDateTime *dt = g_date_time_new_from_unix_utc(t);
    char *s;

    if (dt == NULL)
        return g_strdup("?");
    s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(dt);
    return s;
}

/* "YYYY-MM-DD" -> midnight UTC, or -1. */
static time_t
parse_date(const char *s)
{
    uint64_t y, m, d;
    char part[5];
    GDateTime *dt;
    time_t t;

    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    g_strlcpy(part, s, 5);
    if (!mq_fs_parse_uint(part, 1970, 9999, &y))
        return -1;
    g_strlcpy(part, s + 5, 3);
    if (!mq_fs_parse_uint(part, 1, 12, &m))
        return -1;
    g_strlcpy(part, s + 8, 3);
    if (!mq_fs_parse_uint(part, 1, 31, &d))
        return -1;
    dt = g_date_time_new_utc((gint)y, (gint)m, (gint)d, 0, 0, 0);
    if (dt == NULL)
        return -1;
    t = (time_t)g_date_time_to_unix(dt);
    g_date_time_unref(dt);
    return t;
}

/* The one ID argument of show, release and delete, checked before any path
 * is built from it. */
static int
take_id(int argc, char **argv, const char *cmd, const char **id_r)
{
    if (optind != argc - 1) {
        fprintf(stderr, PROG ": %s takes exactly one entry ID\n", cmd);
        usage(stderr);
        return EX_USAGE;
    }
    if (!mq_quarantine_id_ok(argv[optind])) {
        char *shown = mq_log_sanitize(argv[optind], 100);
        fprintf(stderr, PROG ": invalid entry ID \"%s\" (expected YYYYMMDD-QUEUEID-RANDOM)\n",
                shown);
        g_free(shown);
        return EX_USAGE;
    }
    *id_r = argv[optind];
    return 0;
}

static struct mq_quarantine *
open_quarantine(const struct mq_config *config, int *status_r)
{
    GError *e = NULL;
    struct mq_quarantine *q = mq_quarantine_open_existing(config->quarantine_dir, &e);

    if (q == NULL) {
        fprintf(stderr, PROG ": %s\n", e->message);
        g_error_free(e);
        *status_r = EX_UNAVAILABLE;
    }
    return q;
}

/* ---- list ---------------------------------------------------------------------- */

static void
print_problems(GPtrArray *problems)
{
    for (guint i = 0; i < problems->len; i++)
        fprintf(stderr, PROG ": %s\n", (const char *)g_ptr_array_index(problems, i));
}

static int
cmd_list(const struct mq_config *config, const struct mq_quarantine_filter *filter,
         enum mq_quarantine_order order)
{
    GPtrArray *problems = g_ptr_array_new_with_free_func(g_free), *entries;
    struct mq_quarantine *q;
    GError *e = NULL;
    int status = 0;

    q = open_quarantine(config, &status);
    if (q == NULL)
        goto done;
    entries = mq_quarantine_list(q, filter, order, problems, &e);
    if (entries == NULL) {
        status = fail(&e);
        goto done;
    }
    for (guint i = 0; i < entries->len; i++) {
        const struct mq_quarantine_info *info = g_ptr_array_index(entries, i);
        char *when = iso_time(info->when);
        /* Values are sanitized by the library: no TAB, no newline. */
        printf("%s\t%s\t%s\t%s\t%s\t%s\n", info->id, when, info->action, info->reason,
               info->sender[0] != '\0' ? info->sender : "<>", info->subject);
        g_free(when);
    }
    g_ptr_array_unref(entries);
    print_problems(problems);
    if (problems->len > 0)
        status = EX_IOERR;
done:
    mq_quarantine_free(&q);
    g_ptr_array_unref(problems);
    return status;
}

/* ---- show ---------------------------------------------------------------------- */

static void
show_info(const struct mq_quarantine_info *info)
{
    char *when = iso_time(info->when);

    printf("id: %s\n", info->id);
    printf("queue-id: %s\n", info->queue_id);
    printf("time: %s (%lld)\n", when, (long long)info->when);
    printf("reason: %s\n", info->reason);
    printf("action: %s\n", info->action);
    printf("direction: %s\n", info->direction);
    printf("sender: %s\n", info->sender[0] != '\0' ? info->sender : "<>");
    for (char **r = info->recipients; *r != NULL; r++)
        printf("recipient: %s\n", *r);
    printf("subject: %s\n", info->subject);
    for (char **f = info->findings; *f != NULL; f++)
        printf("finding: %s\n", *f);
    for (size_t i = 0; i < info->n_parts; i++)
        printf("part: part-%u %" G_GUINT64_FORMAT "\n", info->parts[i].number,
               info->parts[i].size);
    for (size_t i = 0; i < info->n_releases; i++) {
        const struct mq_quarantine_release_record *r = &info->releases[i];
        char *rwhen = iso_time(r->when);
        printf("released: %s by %s as %s to %s\n", rwhen, r->user, r->queue_id,
               r->to != NULL ? r->to : "the original recipients");
        g_free(rwhen);
    }
    g_free(when);
}

static int
cmd_show(const struct mq_config *config, const char *id)
{
    static const char *const headers[] = { "From", "To", "Cc", "Subject", "Date",
                                           "Message-ID", NULL };
    struct mq_quarantine_info *info = NULL;
    GPtrArray *list = NULL;
    struct mq_quarantine *q;
    GError *e = NULL;
    int status = 0;

    q = open_quarantine(config, &status);
    if (q == NULL)
        return status;
    info = mq_quarantine_read(q, id, &e);
    if (info == NULL) {
        /* A damaged entry is still shown as far as it goes. */
        bool damaged = e->domain == MQ_ERROR;
        status = fail(&e);
        if (!damaged)
            goto done;
    } else {
        show_info(info);
    }
    list = mq_quarantine_headers(q, id, headers, &e);
    if (list == NULL) {
        status = fail(&e);
    } else {
        for (guint i = 0; i < list->len; i++)
            printf("header: %s\n", (const char *)g_ptr_array_index(list, i));
        g_ptr_array_unref(list);
    }
    list = mq_quarantine_files(q, id, &e);
    if (list == NULL) {
        status = fail(&e);
    } else {
        for (guint i = 0; i < list->len; i++) {
            const struct mq_quarantine_file *f = g_ptr_array_index(list, i);
            if (f->kind == 'f')
                printf("file: %s %" G_GUINT64_FORMAT "\n", f->name, f->size);
            else
                printf("file: %s (%s, not followed)\n", f->name,
                       f->kind == 'l' ? "symlink" : f->kind == 'd' ? "directory" : "special");
        }
        g_ptr_array_unref(list);
    }
done:
    mq_quarantine_info_free(&info);
    mq_quarantine_free(&q);
    return status;
}

/* ---- release, delete, purge ------------------------------------------------------ */

/* Who asked: the login name of the real user ID. */
static char *
invoking_user(void)
{
    struct passwd *pw = getpwuid(getuid());

    if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0')
        return g_strdup(pw->pw_name);
    return g_strdup_printf("uid%lu", (unsigned long)getuid());
}

/* An entry decided as spam before its virus scan is scanned now: release
 * must never be the way an unscanned message reaches a mailbox. */
static int
release_check(const char *msg, size_t len, void *ctx, GError **err)
{
    const struct mq_config *config = ctx;
    struct mq_scanner *scanner = mq_scanner_from_config(config, NULL, err);
    char *name = NULL;
    int verdict;

    if (scanner == NULL)
        return -1;
    verdict = mq_scanner_scan(scanner, msg, len, "release", &name, err);
    mq_scanner_unref(&scanner);
    if (verdict == MQ_SCAN_CLEAN)
        return 0;
    if (verdict >= 0)
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                    "not released: the virus scan found %s", name ? name : "a problem");
    g_free(name);
    return -1;
}

static int
cmd_release(const struct mq_config *config, const char *id, const char *to)
{
    struct mq_quarantine *q;
    struct mq_queue *out = NULL;
    char *user = invoking_user(), *qid = NULL;
    GError *e = NULL;
    int status = 0;

    q = open_quarantine(config, &status);
    if (q == NULL)
        goto done;
    out = mq_queue_open(config->outgoing_queue_dir, &e);
    if (out == NULL) {
        fprintf(stderr, PROG ": outgoing queue: %s\n", e->message);
        g_clear_error(&e);
        status = EX_UNAVAILABLE;
        goto done;
    }
    if (mq_quarantine_release_checked(q, out, id, to, user, time(NULL), config->max_message_size,
                                      release_check, (void *)config, &qid, &e) < 0) {
        if (qid != NULL)
            mq_log_warn("%s: released as %s by %s to %s; not recorded", id, qid, user,
                        to != NULL ? to : "the original recipients");
        status = fail(&e);
        goto done;
    }
    mq_log_info("%s: released as %s by %s to %s", id, qid, user,
                to != NULL ? to : "the original recipients");
    printf("released %s as %s to %s\n", id, qid, to != NULL ? to : "the original recipients");
done:
    g_free(qid);
    g_free(user);
    mq_queue_free(&out);
    mq_quarantine_free(&q);
    return status;
}

static int
cmd_delete(const struct mq_config *config, const char *id)
{
    struct mq_quarantine *q;
    char *user = invoking_user();
    GError *e = NULL;
    int status = 0;

    q = open_quarantine(config, &status);
    if (q == NULL)
        goto done;
    if (mq_quarantine_delete(q, id, &e) < 0) {
        status = fail(&e);
        goto done;
    }
    mq_log_info("%s: deleted by %s", id, user);
    printf("deleted %s\n", id);
done:
    g_free(user);
    mq_quarantine_free(&q);
    return status;
}

static int
cmd_purge(const struct mq_config *config, uint64_t days)
{
    GPtrArray *removed = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
    struct mq_quarantine *q;
    char *user = invoking_user();
    time_t now = time(NULL);
    GError *e = NULL;
    int status = 0;

    q = open_quarantine(config, &status);
    if (q == NULL)
        goto done;
    if (mq_quarantine_purge(q, now - (time_t)days * 86400, now, removed, problems, &e) < 0)
        status = fail(&e);
    for (guint i = 0; i < removed->len; i++)
        printf("purged %s\n", (const char *)g_ptr_array_index(removed, i));
    print_problems(problems);
    if (status == 0 && problems->len > 0)
        status = EX_IOERR;
    mq_log_info("purge of entries older than %" G_GUINT64_FORMAT " days by %s: %u removed, "
                "%u problems", days, user, removed->len, problems->len);
done:
    g_free(user);
    mq_quarantine_free(&q);
    g_ptr_array_unref(problems);
    g_ptr_array_unref(removed);
    return status;
}

/* ---- main ------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
    static const struct option global_opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const struct option cmd_opts[] = {
        { "since", required_argument, NULL, 's' },
        { "sender", required_argument, NULL, 'f' },
        { "reason", required_argument, NULL, 'r' },
        { "oldest-first", no_argument, NULL, 'o' },
        { "to", required_argument, NULL, 't' },
        { "older-than", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = MQ_SYSCONFDIR "/mqscan/mqscan.conf";
    struct mq_quarantine_filter filter = { 0 };
    enum mq_quarantine_order order = MQ_QUARANTINE_NEWEST_FIRST;
    const char *cmd, *id = NULL, *to = NULL;
    bool have_days = false;
    struct mq_config *config;
    uint64_t days = 0;
    GError *e = NULL;
    int opt, status;

    mq_log_open(PROG, MQ_LOG_SINK_SYSLOG);
    /* "+": options up to the command only. */
    while ((opt = getopt_long(argc, argv, "+c:Vh", global_opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'V': printf(PROG " %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EX_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EX_USAGE;
    }
    cmd = argv[optind];
    if (strcmp(cmd, "list") != 0 && strcmp(cmd, "show") != 0 && strcmp(cmd, "release") != 0 &&
        strcmp(cmd, "delete") != 0 && strcmp(cmd, "purge") != 0)
        return usage_error("unknown command", cmd, "");

    /* The command's own options; argv is re-read from the command on. */
    argc -= optind;
    argv += optind;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", cmd_opts, NULL)) != -1) {
        bool ok = true;
        switch (opt) {
        case 's':
            ok = strcmp(cmd, "list") == 0 && (filter.since = parse_date(optarg)) >= 0;
            break;
        case 'f':
            ok = strcmp(cmd, "list") == 0;
            filter.sender = optarg;
            break;
        case 'r':
            ok = strcmp(cmd, "list") == 0;
            filter.reason = optarg;
            break;
        case 'o':
            ok = strcmp(cmd, "list") == 0;
            order = MQ_QUARANTINE_OLDEST_FIRST;
            break;
        case 't':
            ok = strcmp(cmd, "release") == 0 && mq_quarantine_addr_ok(optarg);
            to = optarg;
            break;
        case 'a':
            ok = strcmp(cmd, "purge") == 0 && mq_fs_parse_uint(optarg, 0, MAX_DAYS, &days);
            have_days = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
        if (!ok && opt == 't' && strcmp(cmd, "release") == 0)
            return usage_error("refusing recipient", optarg,
                               ": not a plain local@domain address");
        if (!ok)
            return usage_error("bad option or value", argv[optind - 1],
                               " for this command");
    }
    if (strcmp(cmd, "show") == 0 || strcmp(cmd, "release") == 0 ||
        strcmp(cmd, "delete") == 0) {
        status = take_id(argc, argv, cmd, &id);
        if (status != 0)
            return status;
    } else if (optind != argc) {
        return usage_error("unexpected argument", argv[optind], "");
    }
    if (strcmp(cmd, "purge") == 0 && !have_days)
        return usage_error("command", cmd, " needs --older-than DAYS");

    config = mq_config_load(config_path, &e);
    if (config == NULL) {
        fprintf(stderr, PROG ": %s\n", e->message);
        g_error_free(e);
        return EX_CONFIG;
    }
    if (strcmp(cmd, "list") == 0)
        status = cmd_list(config, &filter, order);
    else if (strcmp(cmd, "show") == 0)
        status = cmd_show(config, id);
    else if (strcmp(cmd, "release") == 0)
        status = cmd_release(config, id, to);
    else if (strcmp(cmd, "delete") == 0)
        status = cmd_delete(config, id);
    else
        status = cmd_purge(config, days);
    mq_config_free(&config);
    if (fflush(stdout) != 0 && status == 0)
        status = EX_IOERR;
    return status;
}
