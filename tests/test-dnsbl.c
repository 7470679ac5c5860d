/* test-dnsbl - mqscan/dnsbl.c: query names for IPv4 and IPv6, zone and
 * server validation in mq_dnsbl_new(), a check with no zones, and forged
 * or broken replies from a fake server (a thread on 127.0.0.1:26175) that
 * answers each query as scripted: a "listed" answer with the wrong ID, one
 * for another question, then the true NXDOMAIN; only the forgery; or a
 * "listed" reply whose answer count promises more records than it holds. Real lookups run against
 * dnsmasq in netchecks.sh.
 */
#include <config.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* ---- a fake DNS server ------------------------------------------------------ */

#define PORT_FAKE 26175

enum fake_mode {
    FAKE_FORGED_THEN_TRUE,      /* wrong ID "listed", wrong question "listed", NXDOMAIN */
    FAKE_ONLY_FORGED,           /* wrong ID "listed" only */
    FAKE_SHORT_ANSWERS,         /* right header, ancount 50, one record */
};

static gint fake_mode;
static gint fake_stop;

/* The reply to query q (n bytes) in out: rcode, and one A record 127.0.0.2
 * if listed; ancount as given. Returns its length. */
static size_t
fake_reply(const unsigned char *q, size_t n, int rcode, bool listed, unsigned ancount,
           unsigned char *out)
{
    static const unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 2 };

    memcpy(out, q, n);
    out[2] |= 0x80;                             /* QR */
    out[3] = (unsigned char)(0x80 | rcode);     /* RA, rcode */
    out[6] = (unsigned char)(ancount >> 8);
    out[7] = (unsigned char)ancount;
    if (!listed)
        return n;
    memcpy(out + n, rr, sizeof(rr));
    return n + sizeof(rr);
}

static gpointer
fake_thread(gpointer data)
{
    int fd = GPOINTER_TO_INT(data);

    while (!g_atomic_int_get(&fake_stop)) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        unsigned char q[512], out[600];
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n;
        size_t len;

        if (poll(&pfd, 1, 50) <= 0)
            continue;
        n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
        if (n < NS_HFIXEDSZ + 5)
            continue;
        switch (g_atomic_int_get(&fake_mode)) {
        case FAKE_FORGED_THEN_TRUE:
        case FAKE_ONLY_FORGED:
            len = fake_reply(q, (size_t)n, ns_r_noerror, true, 1, out);
            out[0] ^= 0x5a;                     /* another ID */
            sendto(fd, out, len, 0, (struct sockaddr *)&from, fromlen);
            if (g_atomic_int_get(&fake_mode) == FAKE_ONLY_FORGED)
                break;
            len = fake_reply(q, (size_t)n, ns_r_noerror, true, 1, out);
            out[NS_HFIXEDSZ + 1] = '9';         /* 2.0.0.127... -> 9.0.0.127... */
            sendto(fd, out, len, 0, (struct sockaddr *)&from, fromlen);
            len = fake_reply(q, (size_t)n, ns_r_nxdomain, false, 0, out);
            sendto(fd, out, len, 0, (struct sockaddr *)&from, fromlen);
            break;
        case FAKE_SHORT_ANSWERS:
            len = fake_reply(q, (size_t)n, ns_r_noerror, true, 50, out);
            sendto(fd, out, len, 0, (struct sockaddr *)&from, fromlen);
            break;
        }
    }
    return NULL;
}

static void
test_fake_server(void)
{
    static const struct {
        enum fake_mode mode;
        int failed;
        const char *why;
    } cases[] = {
        { FAKE_FORGED_THEN_TRUE, 0, NULL },
        { FAKE_ONLY_FORGED, 1, "bl.example: no answer within 300 ms" },
        /* ns_initparse() refuses it: dropped like a forgery, so the
         * zone times out rather than ending early on garbage. */
        { FAKE_SHORT_ANSWERS, 1, "bl.example: no answer within 300 ms" },
    };
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(PORT_FAKE) };
    const char *zones[] = { "bl.example", NULL };
    uint8_t addr[16] = { 127, 0, 0, 2 };
    GError *err = NULL;
    GThread *thread;
    int fd;

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(fd, >=, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
    thread = g_thread_new("fake-dns", fake_thread, GINT_TO_POINTER(fd));

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        struct mq_dnsbl *d = mq_dnsbl_new(zones, "127.0.0.1:26175", 300, 0, &err);
        GPtrArray *hits = NULL;
        char *why = NULL;

        g_assert_no_error(err);
        g_atomic_int_set(&fake_mode, (gint)cases[i].mode);
        g_assert_cmpint(mq_dnsbl_check(d, AF_INET, addr, &hits, &why, &err), ==,
                        cases[i].failed);
        g_assert_no_error(err);
        /* A forged "listed" is never believed. */
        g_assert_cmpuint(hits->len, ==, 0);
        g_assert_cmpstr(why, ==, cases[i].why);
        g_free(why);
        mq_dnsbl_hits_free(&hits);
        mq_dnsbl_free(&d);
    }
    g_atomic_int_set(&fake_stop, 1);
    g_thread_join(thread);
    close(fd);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dnsbl/query-names", test_query_names);
    g_test_add_func("/dnsbl/query-name-small-buffer", test_query_name_small_buffer);
    g_test_add_func("/dnsbl/new", test_new);
    g_test_add_func("/dnsbl/no-zones", test_no_zones);
    g_test_add_func("/dnsbl/fake-server", test_fake_server);
    return g_test_run();
}
