/* test-dnsbl - the pure parts of mqscan/dnsbl.c: query names for IPv4 and
 * IPv6, zone and server validation in mq_dnsbl_new(), and a check with no
 * zones. The lookups themselves run against dnsmasq in netchecks.sh.
 */
#include <config.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include <glib.h>

#include "mqscan/dnsbl.h"
#include "mqscan/error.h"

static const struct {
    const char *addr;
    const char *zone;
    const char *want;           /* NULL: does not fit */
} names[] = {
    { "127.0.0.2", "bl.example", "2.0.0.127.bl.example" },
    { "192.0.2.1", "zen.spamhaus.org", "1.2.0.192.zen.spamhaus.org" },
    { "255.255.255.255", "x", "255.255.255.255.x" },
    { "0.0.0.0", "x", "0.0.0.0.x" },
    { "2001:db8::1", "bl.example",
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example" },
    { "fe80::abcd:ef01", "z",
      "1.0.f.e.d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.z" },
    /* 64 bytes of nibbles + a 190-byte zone is over 253. */
    { "2001:db8::1",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaa",
      NULL },
};

static void
test_query_names(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        uint8_t addr[16] = { 0 };
        char buf[300];
        int family = strchr(names[i].addr, ':') != NULL ? AF_INET6 : AF_INET;
        bool ok;

        g_assert_cmpint(inet_pton(family, names[i].addr, addr), ==, 1);
        ok = mq_dnsbl_query_name(family, addr, names[i].zone, buf, sizeof(buf));
        if (names[i].want == NULL) {
            g_assert_false(ok);
            continue;
        }
        g_assert_true(ok);
        g_assert_cmpstr(buf, ==, names[i].want);
    }
}

static void
test_query_name_small_buffer(void)
{
    uint8_t addr[16] = { 127, 0, 0, 2 };
    char buf[20];

    /* "2.0.0.127.bl.example" is 20 bytes: no room for the NUL. */
    g_assert_false(mq_dnsbl_query_name(AF_INET, addr, "bl.example", buf, sizeof(buf)));
    g_assert_true(mq_dnsbl_query_name(AF_INET, addr, "bl.exampl", buf, sizeof(buf)));
    g_assert_cmpstr(buf, ==, "2.0.0.127.bl.exampl");
}

static const struct {
    const char *zone;
    const char *server;
    unsigned timeout;
    bool ok;
} configs[] = {
    { "bl.example", "127.0.0.1", 1000, true },
    { "bl.example=2.5", "127.0.0.1:530", 1000, true },
    { "bl.example=0", "[::1]:5353", 1000, true },
    { "bl.example=10", "::1", 1000, true },
    { "bl.example=10.5", "127.0.0.1", 1000, false },
    { "bl.example=-1", "127.0.0.1", 1000, false },
    { "bl.example=nan", "127.0.0.1", 1000, false },
    { "bl.example=", "127.0.0.1", 1000, false },
    { "bl.example=2x", "127.0.0.1", 1000, false },
    { ".bl.example", "127.0.0.1", 1000, false },
    { "bl..example", "127.0.0.1", 1000, false },
    { "bl.example.", "127.0.0.1", 1000, false },
    { "bl example", "127.0.0.1", 1000, false },
    { "bl.exa\nmple", "127.0.0.1", 1000, false },
    { "", "127.0.0.1", 1000, false },
    { "bl.example", "localhost", 1000, false },
    { "bl.example", "127.0.0.1:0", 1000, false },
    { "bl.example", "127.0.0.1:65536", 1000, false },
    { "bl.example", "[::1", 1000, false },
    { "bl.example", "127.0.0.1", 0, false },
    { "bl.example", "127.0.0.1", 60001, false },
};

static void
test_new(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(configs); i++) {
        const char *zones[] = { configs[i].zone, NULL };
        GError *err = NULL;
        struct mq_dnsbl *d = mq_dnsbl_new(zones, configs[i].server, configs[i].timeout, 60, &err);

        if (configs[i].ok) {
            g_assert_no_error(err);
            g_assert_nonnull(d);
            mq_dnsbl_free(&d);
            g_assert_null(d);
        } else {
            g_assert_null(d);
            g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
            g_clear_error(&err);
        }
    }
}

/* No zones: every check is empty, nothing is sent. */
static void
test_no_zones(void)
{
    const char *zones[] = { NULL };
    uint8_t addr[16] = { 127, 0, 0, 2 };
    GPtrArray *hits = NULL;
    GError *err = NULL;
    char *why = NULL;
    uint64_t queries = 1, cached = 1;
    struct mq_dnsbl *d = mq_dnsbl_new(zones, "127.0.0.1:9", 100, 60, &err);

    g_assert_no_error(err);
    g_assert_cmpint(mq_dnsbl_check(d, AF_INET, addr, &hits, &why, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_null(why);
    g_assert_cmpuint(hits->len, ==, 0);
    mq_dnsbl_hits_free(&hits);
    g_assert_null(hits);
    mq_dnsbl_stats(d, &queries, &cached);
    g_assert_cmpuint(queries, ==, 0);
    g_assert_cmpuint(cached, ==, 0);
    mq_dnsbl_free(&d);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dnsbl/query-names", test_query_names);
    g_test_add_func("/dnsbl/query-name-small-buffer", test_query_name_small_buffer);
    g_test_add_func("/dnsbl/new", test_new);
    g_test_add_func("/dnsbl/no-zones", test_no_zones);
    return g_test_run();
}
