/* mq-netcheck - runs the network checks (dnsbl, spf, spamd) from the
 * command line, for netchecks.sh, and prints one line per result in a form
 * the script can match:
 *
 *   mq-netcheck dnsbl [--server IP[:PORT]] [--timeout MS] [--ttl S] --zone Z[=W]... ADDR...
 *     (an ADDR of "sleep=MS" waits that long instead)
 *     ADDR failed=N hits=ZONE:WEIGHT:ANSWER,...|- ms=T [why=...]
 *     stats queries=N cache_hits=N                      (last line)
 *   mq-netcheck spf [--receiver NAME] ADDR HELO SENDER
 *     result=RESULT
 *     header=VALUE
 *   mq-netcheck spamd --server S [--timeout MS] [--user U] [--max-size N] [--ping] FILE...
 *     FILE spam=0|1 score=X threshold=Y rules=A,B,...|- ms=T
 *     FILE error=CODE MESSAGE                            (and exit status 1)
 *     ping ok ms=T | ping error=CODE MESSAGE
 *
 * Exit status: 0, 1 if any check returned an error, 2 on bad usage.
 */
#include <config.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <glib.h>

#include "mqscan/dnsbl.h"
#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/spamd.h"
#include "mqscan/spf.h"

static const char *
code_name(const GError *e)
{
    static const char *const names[] = { "TEMP", "CORRUPT", "LIMIT", "ENGINE", "CONFIG", "IO" };

    if (e->domain != MQ_ERROR || e->code < 0 || (size_t)e->code >= G_N_ELEMENTS(names))
        return "OTHER";
    return names[e->code];
}

static int
parse_addr(const char *s, int *family_r, uint8_t addr[16])
{
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family_r = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        *family_r = AF_INET6;
        return 0;
    }
    fprintf(stderr, "mq-netcheck: not an address: %s\n", s);
    return -1;
}

static double
ms_since(gint64 t0)
{
    return (double)(g_get_monotonic_time() - t0) / 1000.0;
}

static int
cmd_dnsbl(int argc, char **argv)
{
    char *server = NULL;
    char **zones = NULL;
    gint timeout = 2000, ttl = 600;
    GOptionEntry entries[] = {
        { "server", 0, 0, G_OPTION_ARG_STRING, &server, "DNS server", "IP[:PORT]" },
        { "zone", 0, 0, G_OPTION_ARG_STRING_ARRAY, &zones, "zone (repeat)", "ZONE[=W]" },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, "timeout", "MS" },
        { "ttl", 0, 0, G_OPTION_ARG_INT, &ttl, "cache TTL", "S" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *ctx = g_option_context_new("ADDR...");
    struct mq_dnsbl *d = NULL;
    GError *err = NULL;
    uint64_t queries = 0, hits_cached = 0;
    int status = 0;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc < 2 || timeout < 0 || ttl < 0) {
        fprintf(stderr, "mq-netcheck dnsbl: %s\n", err ? err->message : "usage");
        status = 2;
        goto out;
    }
    d = mq_dnsbl_new((const char *const *)zones, server, (unsigned)timeout, (unsigned)ttl, &err);
    if (d == NULL) {
        printf("new error=%s %s\n", code_name(err), err->message);
        status = 1;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        GPtrArray *hits = NULL;
        char *why = NULL;
        uint8_t addr[16];
        int family, failed;
        gint64 t0;

        if (g_str_has_prefix(argv[i], "sleep=")) {
            g_usleep((gulong)g_ascii_strtoull(argv[i] + 6, NULL, 10) * 1000);
            continue;
        }
        if (parse_addr(argv[i], &family, addr) < 0) {
            status = 2;
            goto out;
        }
        t0 = g_get_monotonic_time();
        failed = mq_dnsbl_check(d, family, addr, &hits, &why, &err);
        if (failed < 0) {
            printf("%s error=%s %s\n", argv[i], code_name(err), err->message);
            g_clear_error(&err);
            status = 1;
            continue;
        }
        printf("%s failed=%d hits=", argv[i], failed);
        for (guint j = 0; j < hits->len; j++) {
            const struct mq_dnsbl_hit *h = g_ptr_array_index(hits, j);

            printf("%s%s:%g:%s", j > 0 ? "," : "", h->zone, h->weight, h->answer);
        }
        printf("%s ms=%.3f", hits->len == 0 ? "-" : "", ms_since(t0));
        if (why != NULL)
            printf(" why=%s", why);
        printf("\n");
        g_free(why);
        mq_dnsbl_hits_free(&hits);
    }
    mq_dnsbl_stats(d, &queries, &hits_cached);
    printf("stats queries=%" G_GUINT64_FORMAT " cache_hits=%" G_GUINT64_FORMAT "\n", queries,
           hits_cached);

out:
    if (d != NULL)
        mq_dnsbl_free(&d);
    g_clear_error(&err);
    g_strfreev(zones);
    g_free(server);
    g_option_context_free(ctx);
    return status;
}

static int
cmd_spf(int argc, char **argv)
{
    char *receiver = NULL;
    GOptionEntry entries[] = {
        { "receiver", 0, 0, G_OPTION_ARG_STRING, &receiver, "this host", "NAME" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *ctx = g_option_context_new("ADDR HELO SENDER");
    struct mq_spf *spf = NULL;
    enum mq_spf_result result;
    GError *err = NULL;
    char *header = NULL;
    uint8_t addr[16];
    int family, status = 0;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc != 4
        || parse_addr(argv[1], &family, addr) < 0) {
        fprintf(stderr, "mq-netcheck spf: %s\n", err ? err->message : "usage");
        status = 2;
        goto out;
    }
    spf = mq_spf_new(receiver != NULL ? receiver : "mx.mqscan.test", &err);
    if (spf == NULL
        || mq_spf_check(spf, family, addr, argv[2], argv[3], &result, &header, &err) < 0) {
        printf("error=%s %s\n", code_name(err), err->message);
        status = 1;
        goto out;
    }
    printf("result=%s\nheader=%s\n", mq_spf_result_name(result), header);

out:
    if (spf != NULL)
        mq_spf_free(&spf);
    g_free(header);
    g_clear_error(&err);
    g_free(receiver);
    g_option_context_free(ctx);
    return status;
}

static int
cmd_spamd(int argc, char **argv)
{
    char *server = NULL, *user = NULL;
    gint timeout = 10000;
    gint64 max_size = 512 * 1024;
    gboolean ping = FALSE;
    GOptionEntry entries[] = {
        { "server", 0, 0, G_OPTION_ARG_STRING, &server, "spamd", "unix:/P|tcp:H:P" },
        { "user", 0, 0, G_OPTION_ARG_STRING, &user, "User header", "U" },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, "timeout", "MS" },
        { "max-size", 0, 0, G_OPTION_ARG_INT64, &max_size, "largest message", "BYTES" },
        { "ping", 0, 0, G_OPTION_ARG_NONE, &ping, "PING first", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *ctx = g_option_context_new("FILE...");
    struct mq_spamd *s = NULL;
    GError *err = NULL;
    int status = 0;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || server == NULL || timeout < 0
        || max_size < 0) {
        fprintf(stderr, "mq-netcheck spamd: %s\n", err ? err->message : "usage");
        status = 2;
        goto out;
    }
    s = mq_spamd_new(server, user, (unsigned)timeout, (uint64_t)max_size, &err);
    if (s == NULL) {
        printf("new error=%s %s\n", code_name(err), err->message);
        status = 1;
        goto out;
    }
    if (ping) {
        gint64 t0 = g_get_monotonic_time();

        if (mq_spamd_ping(s, &err) < 0) {
            printf("ping error=%s %s ms=%.3f\n", code_name(err), err->message, ms_since(t0));
            g_clear_error(&err);
            status = 1;
        } else {
            printf("ping ok ms=%.3f\n", ms_since(t0));
        }
    }
    for (int i = 1; i < argc; i++) {
        struct mq_spamd_result r;
        gchar *msg = NULL;
        gsize len = 0;
        gint64 t0;

        if (!g_file_get_contents(argv[i], &msg, &len, &err)) {
            fprintf(stderr, "mq-netcheck: %s\n", err->message);
            status = 2;
            goto out;
        }
        t0 = g_get_monotonic_time();
        if (mq_spamd_check(s, msg, len, &r, &err) < 0) {
            printf("%s error=%s %s ms=%.3f\n", argv[i], code_name(err), err->message,
                   ms_since(t0));
            g_clear_error(&err);
            status = 1;
        } else {
            double ms = ms_since(t0);
            char *rules = g_strjoinv(",", r.rules);

            printf("%s spam=%d score=%.1f threshold=%.1f rules=%s ms=%.3f\n", argv[i],
                   r.is_spam ? 1 : 0, r.score, r.threshold, rules[0] != '\0' ? rules : "-", ms);
            g_free(rules);
            mq_spamd_result_clear(&r);
        }
        g_free(msg);
    }

out:
    if (s != NULL)
        mq_spamd_free(&s);
    g_clear_error(&err);
    g_free(server);
    g_free(user);
    g_option_context_free(ctx);
    return status;
}

int
main(int argc, char **argv)
{
    mq_log_open("mq-netcheck", MQ_LOG_SINK_STDERR);
    if (argc >= 2 && strcmp(argv[1], "dnsbl") == 0)
        return cmd_dnsbl(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "spf") == 0)
        return cmd_spf(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "spamd") == 0)
        return cmd_spamd(argc - 1, argv + 1);
    fprintf(stderr, "usage: mq-netcheck dnsbl|spf|spamd ...\n");
    return 2;
}
