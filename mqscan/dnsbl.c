#include <config.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/config.h"
#include "mqscan/dnsbl.h"
#include "mqscan/error.h"
#include "mqscan/log.h"

/*
 * A DNS block-list client that speaks UDP itself.
 *
 * Why not res_nquery(): its timeout is whole seconds from resolv.conf, it
 * asks one name at a time and retries by itself, and it cannot be pointed
 * at a local list mirror on another port (rbldnsd on 127.0.0.1:530). So the
 * packets are built with res_nmkquery() and read with ns_initparse() /
 * ns_parserr(), which bound every read by the length of the reply, and the
 * sending and waiting is ours: one connected UDP socket per zone (each with
 * its own ephemeral port), every query sent first, then one poll() loop
 * until the answers are in or the single deadline has passed.
 *
 * A reply is believed only if it comes from the server (the socket is
 * connected, and the source is checked again), carries our random ID, is a
 * response, and asks exactly our question. Anything else is dropped and the
 * wait goes on: a forged packet must guess the port, the ID and the name,
 * and a wrong guess does not end the query early.
 *
 * XXX No retransmission: a lost UDP packet makes that zone time out for
 * this message; the caller logs it and scores without it.
 */

#define DNSBL_CACHE_MAX 10000       /* entries; then expired ones go, or all */
#define DNSBL_ANSWERS_MAX 32        /* answer records looked at per reply */
#define DNSBL_REPLY_MAX 4096        /* we send no EDNS: real replies are <= 512 */
#define DNSBL_NAME_MAX 253          /* longest DNS name in text form */
#define DNSBL_ZONE_MAX 200          /* as config.c allows */

struct dnsbl_zone {
    char *name;
    double weight;
};

/* A cached answer. */
struct dnsbl_entry {
    bool listed;
    char answer[INET_ADDRSTRLEN];
    gint64 expires;                 /* monotonic µs */
};

struct mq_dnsbl {
    struct dnsbl_zone *zones;
    unsigned n_zones;
    struct sockaddr_storage server;
    socklen_t server_len;
    char server_text[INET6_ADDRSTRLEN + 16];
    unsigned timeout_ms;
    unsigned cache_ttl;

    GMutex lock;                    /* guards everything below */
    struct __res_state res;         /* only for res_nmkquery() */
    GHashTable *cache;              /* query name -> struct dnsbl_entry */
    uint64_t queries;
    uint64_t cache_hits;
};

enum dnsbl_state {
    DNSBL_PENDING,
    DNSBL_LISTED,
    DNSBL_CLEAN,
    DNSBL_FAILED,
};

/* One zone's lookup within one check. */
struct dnsbl_query {
    const struct dnsbl_zone *zone;
    char qname[DNSBL_NAME_MAX + 1];
    int fd;
    uint16_t id;
    enum dnsbl_state state;
    bool from_cache;
    bool local_error;               /* FAILED here, not at the server */
    char answer[INET_ADDRSTRLEN];
    char *why;                      /* FAILED: why */
};

/* What one received datagram means for its query. */
enum dnsbl_reply {
    DNSBL_REPLY_IGNORE,             /* not an answer to our question: keep waiting */
    DNSBL_REPLY_LISTED,
    DNSBL_REPLY_CLEAN,
    DNSBL_REPLY_FAILED,
};

/* ---- names ------------------------------------------------------------------ */

/* An IPv4-mapped IPv6 address is looked up as the IPv4 address. */
static int
dnsbl_normalize(int family, const uint8_t addr[16], uint8_t out[16])
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    memset(out, 0, 16);
    if (family == AF_INET6 && memcmp(addr, mapped, sizeof(mapped)) == 0) {
        memcpy(out, addr + 12, 4);
        return AF_INET;
    }
    memcpy(out, addr, family == AF_INET ? 4 : 16);
    return family;
}

bool
mq_dnsbl_query_name(int family, const uint8_t addr[16], const char *zone, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    GString *name;
    bool ok;

    if (addr == NULL || zone == NULL || buf == NULL)
        mq_log_panic("mq_dnsbl_query_name: NULL argument");
    name = g_string_sized_new(80);
    if (family == AF_INET) {
        g_string_append_printf(name, "%u.%u.%u.%u.", addr[3], addr[2], addr[1], addr[0]);
    } else if (family == AF_INET6) {
        for (int i = 15; i >= 0; i--) {
            g_string_append_c(name, hex[addr[i] & 0x0f]);
            g_string_append_c(name, '.');
            g_string_append_c(name, hex[addr[i] >> 4]);
            g_string_append_c(name, '.');
        }
    } else {
        mq_log_panic("mq_dnsbl_query_name: address family %d", family);
    }
    g_string_append(name, zone);
    ok = name->len <= DNSBL_NAME_MAX && name->len < size;
    if (ok)
        memcpy(buf, name->str, name->len + 1);
    g_string_free(name, TRUE);
    return ok;
}

/* ---- construction ----------------------------------------------------------- */

static bool
dnsbl_zone_name_ok(const char *s, size_t n)
{
    static const char allowed[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";

    if (n == 0 || n > DNSBL_ZONE_MAX || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (strchr(allowed, s[i]) == NULL || (s[i] == '.' && s[i + 1] == '.'))
            return false;
    return true;
}

/* "zone" or "zone=weight" into z. */
static int
dnsbl_zone_parse(const char *spec, struct dnsbl_zone *z, GError **err)
{
    const char *eq = strchr(spec, '=');
    size_t n = eq != NULL ? (size_t)(eq - spec) : strlen(spec);
    double w = 1.0;

    if (!dnsbl_zone_name_ok(spec, n)) {
        char *bad = mq_log_sanitize(spec, 80);

        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "DNSBL zone \"%s\" is not a DNS name", bad);
        g_free(bad);
        return -1;
    }
    if (eq != NULL) {
        char *end = NULL;

        w = g_ascii_strtod(eq + 1, &end);
        if (end == eq + 1 || *end != '\0' || !isfinite(w) || w < 0 || w > 10) {
            char *bad = mq_log_sanitize(spec, 80);

            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "DNSBL zone \"%s\": the weight must be a number from 0 to 10", bad);
            g_free(bad);
            return -1;
        }
    }
    z->name = g_strndup(spec, n);
    z->weight = w;
    return 0;
}

/* Fills the server address from "IP[:PORT]" or, if spec is empty, from the
 * first name server in the resolver state. */
static int
dnsbl_server_set(struct mq_dnsbl *d, const char *spec, GError **err)
{
    char host[INET6_ADDRSTRLEN + 1];
    unsigned port = 53;
    struct sockaddr_in *sin = (struct sockaddr_in *)&d->server;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&d->server;

    memset(&d->server, 0, sizeof(d->server));
    if (spec == NULL || spec[0] == '\0') {
        if (d->res.nscount <= 0) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "DNSBL: no name server in /etc/resolv.conf and no dnsbl_server");
            return -1;
        }
        /* glibc keeps IPv6 servers in _u._ext.nsaddrs, IPv4 ones in
         * nsaddr_list. */
        if (d->res._u._ext.nsaddrs[0] != NULL) {
            memcpy(sin6, d->res._u._ext.nsaddrs[0], sizeof(*sin6));
            d->server_len = sizeof(*sin6);
        } else {
            memcpy(sin, &d->res.nsaddr_list[0], sizeof(*sin));
            d->server_len = sizeof(*sin);
        }
    } else if (!mq_config_parse_dns_server(spec, host, sizeof(host), &port)) {
        char *bad = mq_log_sanitize(spec, 80);

        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "DNSBL server \"%s\" is not IP, IP:PORT or [IPv6]:PORT", bad);
        g_free(bad);
        return -1;
    } else if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        d->server_len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        d->server_len = sizeof(*sin6);
    } else {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "DNSBL server \"%s\": bad address", host);
        return -1;
    }

    if (d->server.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(d->server_text, sizeof(d->server_text), "[%s]:%u", host,
                 (unsigned)ntohs(sin6->sin6_port));
    } else if (d->server.ss_family == AF_INET) {
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(d->server_text, sizeof(d->server_text), "%s:%u", host,
                 (unsigned)ntohs(sin->sin_port));
    } else {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "DNSBL: the first name server of /etc/resolv.conf has no usable address");
        return -1;
    }
    return 0;
}

struct mq_dnsbl *
mq_dnsbl_new(const char *const *zones, const char *server, unsigned timeout_ms,
             unsigned cache_ttl, GError **err)
{
    struct mq_dnsbl *d = NULL;
    unsigned n = 0;
    bool res_ok = false, ok = false;

    while (zones != NULL && zones[n] != NULL)
        n++;
    if (timeout_ms == 0 || timeout_ms > 60000) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "DNSBL timeout of %u ms is out of range",
                    timeout_ms);
        goto out;
    }
    d = g_new0(struct mq_dnsbl, 1);
    g_mutex_init(&d->lock);
    d->zones = g_new0(struct dnsbl_zone, n + 1);
    for (d->n_zones = 0; d->n_zones < n; d->n_zones++)
        if (dnsbl_zone_parse(zones[d->n_zones], &d->zones[d->n_zones], err) < 0)
            goto out;
    d->timeout_ms = timeout_ms;
    d->cache_ttl = cache_ttl;
    /* res_ninit() reads /etc/resolv.conf; the state also serves
     * res_nmkquery(), which wants an initialised one. */
    if (res_ninit(&d->res) != 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "DNSBL: res_ninit failed");
        goto out;
    }
    res_ok = true;
    if (dnsbl_server_set(d, server, err) < 0)
        goto out;
    d->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    ok = true;

out:
    if (!ok && d != NULL) {
        if (!res_ok)
            memset(&d->res, 0, sizeof(d->res));
        mq_dnsbl_free(&d);
    }
    return d;
}

void
mq_dnsbl_free(struct mq_dnsbl **dp)
{
    struct mq_dnsbl *d;

    if (dp == NULL)
        mq_log_panic("mq_dnsbl_free: NULL argument");
    d = *dp;
    *dp = NULL;
    if (d == NULL)
        return;
    for (unsigned i = 0; i < d->n_zones; i++)
        g_free(d->zones[i].name);
    g_free(d->zones);
    if (d->res.options & RES_INIT)
        res_nclose(&d->res);
    g_clear_pointer(&d->cache, g_hash_table_destroy);
    g_mutex_clear(&d->lock);
    g_free(d);
}

void
mq_dnsbl_hits_free(GPtrArray **hits)
{
    if (hits == NULL)
        mq_log_panic("mq_dnsbl_hits_free: NULL argument");
    g_clear_pointer(hits, g_ptr_array_unref);
}

static void
dnsbl_hit_free(gpointer p)
{
    struct mq_dnsbl_hit *hit = p;

    g_free(hit->zone);
    g_free(hit);
}

void
mq_dnsbl_stats(struct mq_dnsbl *d, uint64_t *queries_r, uint64_t *cache_hits_r)
{
    g_mutex_lock(&d->lock);
    if (queries_r != NULL)
        *queries_r = d->queries;
    if (cache_hits_r != NULL)
        *cache_hits_r = d->cache_hits;
    g_mutex_unlock(&d->lock);
}

/* ---- cache ------------------------------------------------------------------ */

static gboolean
dnsbl_entry_expired(gpointer key, gpointer value, gpointer now)
{
    return ((struct dnsbl_entry *)value)->expires <= *(gint64 *)now;
}

/* Under d->lock. True with q's result filled if the cache knows it. */
static bool
dnsbl_cache_get(struct mq_dnsbl *d, struct dnsbl_query *q, gint64 now)
{
    struct dnsbl_entry *e;

    if (d->cache_ttl == 0 || (e = g_hash_table_lookup(d->cache, q->qname)) == NULL)
        return false;
    if (e->expires <= now) {
        g_hash_table_remove(d->cache, q->qname);
        return false;
    }
    q->state = e->listed ? DNSBL_LISTED : DNSBL_CLEAN;
    memcpy(q->answer, e->answer, sizeof(q->answer));
    q->from_cache = true;
    d->cache_hits++;
    return true;
}

/* Under d->lock. A full cache first drops what has expired; if that is not
 * enough, everything (XXX crude, but bounded and rare: the cache holds
 * DNSBL_CACHE_MAX names, far more than one TTL of traffic normally). */
static void
dnsbl_cache_put(struct mq_dnsbl *d, const struct dnsbl_query *q, gint64 now)
{
    struct dnsbl_entry *e;

    if (d->cache_ttl == 0)
        return;
    if (g_hash_table_size(d->cache) >= DNSBL_CACHE_MAX) {
        g_hash_table_foreach_remove(d->cache, dnsbl_entry_expired, &now);
        if (g_hash_table_size(d->cache) >= DNSBL_CACHE_MAX)
            g_hash_table_remove_all(d->cache);
    }
    e = g_new0(struct dnsbl_entry, 1);
    e->listed = q->state == DNSBL_LISTED;
    memcpy(e->answer, q->answer, sizeof(e->answer));
    e->expires = now + (gint64)d->cache_ttl * G_USEC_PER_SEC;
    g_hash_table_replace(d->cache, g_strdup(q->qname), e);
}

/* ---- packets ---------------------------------------------------------------- */

static uint16_t
dnsbl_random_id(void)
{
    uint16_t id;

    if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id))
        id = (uint16_t)g_random_int();
    return id;
}

/* Classifies one datagram for q. Sets q->answer for LISTED, *why_r (caller
 * frees) for FAILED. A code outside 127.0.0.0/8, or a 127.255.255.x "refused"
 * code, is no listing: it is logged and the reply counts as CLEAN. */
static enum dnsbl_reply
dnsbl_parse_reply(const struct mq_dnsbl *d, struct dnsbl_query *q, const unsigned char *buf,
                  size_t len, char **why_r)
{
    char owner[NS_MAXDNAME];
    char odd[INET_ADDRSTRLEN] = "";
    ns_msg msg;
    ns_rr rr;
    int rcode, n;

    if (ns_initparse(buf, (int)len, &msg) < 0)
        return DNSBL_REPLY_IGNORE;
    if (ns_msg_id(msg) != q->id || !ns_msg_getflag(msg, ns_f_qr)
        || ns_msg_getflag(msg, ns_f_opcode) != ns_o_query || ns_msg_count(msg, ns_s_qd) != 1)
        return DNSBL_REPLY_IGNORE;
    if (ns_parserr(&msg, ns_s_qd, 0, &rr) < 0 || ns_rr_type(rr) != ns_t_a
        || ns_rr_class(rr) != ns_c_in || strcasecmp(ns_rr_name(rr), q->qname) != 0)
        return DNSBL_REPLY_IGNORE;

    /* From here on it is the server's answer to our question. */
    rcode = ns_msg_getflag(msg, ns_f_rcode);
    if (rcode == ns_r_nxdomain)
        return DNSBL_REPLY_CLEAN;
    if (rcode != ns_r_noerror) {
        *why_r = g_strdup_printf("server answered rcode %d", rcode);
        return DNSBL_REPLY_FAILED;
    }
    if (ns_msg_getflag(msg, ns_f_tc)) {
        *why_r = g_strdup("truncated reply");
        return DNSBL_REPLY_FAILED;
    }

    /* The owner we accept: the question, then each CNAME target in turn. */
    g_strlcpy(owner, q->qname, sizeof(owner));
    n = MIN(ns_msg_count(msg, ns_s_an), DNSBL_ANSWERS_MAX);
    for (int i = 0; i < n; i++) {
        const unsigned char *rd;

        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
            *why_r = g_strdup("malformed answer section");
            return DNSBL_REPLY_FAILED;
        }
        if (ns_rr_class(rr) != ns_c_in || strcasecmp(ns_rr_name(rr), owner) != 0)
            continue;
        rd = ns_rr_rdata(rr);
        if (ns_rr_type(rr) == ns_t_cname) {
            if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), rd, owner,
                                   sizeof(owner)) < 0) {
                *why_r = g_strdup("malformed CNAME");
                return DNSBL_REPLY_FAILED;
            }
            continue;
        }
        if (ns_rr_type(rr) != ns_t_a || ns_rr_rdlen(rr) != 4)
            continue;
        if (rd[0] == 127 && !(rd[1] == 255 && rd[2] == 255)) {
            inet_ntop(AF_INET, rd, q->answer, sizeof(q->answer));
            return DNSBL_REPLY_LISTED;
        }
        if (odd[0] == '\0')
            inet_ntop(AF_INET, rd, odd, sizeof(odd));
    }
    if (odd[0] != '\0')
        mq_log_warn("dnsbl: %s answered %s for %s: not a listing (a refusal or error code"
                    " of the list)", d->server_text, odd, q->qname);
    return DNSBL_REPLY_CLEAN;
}

/* Opens a socket for q and sends its query. On failure q is FAILED. */
static void
dnsbl_send(struct mq_dnsbl *d, struct dnsbl_query *q)
{
    unsigned char pkt[NS_PACKETSZ];
    int len;

    q->fd = socket(d->server.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (q->fd < 0) {
        q->state = DNSBL_FAILED;
        q->local_error = true;
        q->why = g_strdup_printf("socket: %s", g_strerror(errno));
        return;
    }
    if (connect(q->fd, (const struct sockaddr *)&d->server, d->server_len) < 0) {
        q->state = DNSBL_FAILED;
        q->why = g_strdup_printf("connect: %s", g_strerror(errno));
        return;
    }
    g_mutex_lock(&d->lock);
    len = res_nmkquery(&d->res, ns_o_query, q->qname, ns_c_in, ns_t_a, NULL, 0, NULL, pkt,
                       sizeof(pkt));
    if (len >= NS_HFIXEDSZ)
        d->queries++;
    g_mutex_unlock(&d->lock);
    if (len < NS_HFIXEDSZ) {
        q->state = DNSBL_FAILED;
        q->why = g_strdup("cannot build the query");
        return;
    }
    /* Our own unpredictable ID, whatever res_nmkquery() chose. */
    q->id = dnsbl_random_id();
    pkt[0] = (unsigned char)(q->id >> 8);
    pkt[1] = (unsigned char)(q->id & 0xff);
    if (send(q->fd, pkt, (size_t)len, 0) != (ssize_t)len) {
        q->state = DNSBL_FAILED;
        q->why = g_strdup_printf("send: %s", g_strerror(errno));
    }
}

/* True if from (fromlen bytes) is the configured server. */
static bool
dnsbl_from_server(const struct mq_dnsbl *d, const struct sockaddr_storage *from,
                  socklen_t fromlen)
{
    if (from->ss_family != d->server.ss_family)
        return false;
    if (from->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)from, *b = (const void *)&d->server;

        return fromlen >= sizeof(*a) && a->sin_port == b->sin_port
               && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    {
        const struct sockaddr_in6 *a = (const void *)from, *b = (const void *)&d->server;

        return fromlen >= sizeof(*a) && a->sin6_port == b->sin6_port
               && memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
    }
}

/* Reads what is waiting on q's socket. */
static void
dnsbl_receive(struct mq_dnsbl *d, struct dnsbl_query *q)
{
    unsigned char buf[DNSBL_REPLY_MAX];

    for (;;) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(q->fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&from,
                             &fromlen);
        char *why = NULL;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            /* ECONNREFUSED: an ICMP port unreachable from the server. */
            q->state = DNSBL_FAILED;
            q->why = g_strdup_printf("receive: %s", g_strerror(errno));
            return;
        }
        if ((size_t)n > sizeof(buf) || !dnsbl_from_server(d, &from, fromlen))
            continue;
        switch (dnsbl_parse_reply(d, q, buf, (size_t)n, &why)) {
        case DNSBL_REPLY_IGNORE:
            continue;
        case DNSBL_REPLY_LISTED:
            q->state = DNSBL_LISTED;
            return;
        case DNSBL_REPLY_CLEAN:
            q->state = DNSBL_CLEAN;
            return;
        case DNSBL_REPLY_FAILED:
            q->state = DNSBL_FAILED;
            q->why = why;
            return;
        }
    }
}

/* Waits for every PENDING query until deadline; what is still pending then
 * has timed out. */
static void
dnsbl_wait(struct mq_dnsbl *d, struct dnsbl_query *qs, unsigned n, gint64 deadline)
{
    struct pollfd *pfds = g_new0(struct pollfd, n);
    unsigned *which = g_new0(unsigned, n);

    for (;;) {
        unsigned np = 0;
        gint64 left;
        int rc;

        for (unsigned i = 0; i < n; i++) {
            if (qs[i].state != DNSBL_PENDING)
                continue;
            pfds[np].fd = qs[i].fd;
            pfds[np].events = POLLIN;
            pfds[np].revents = 0;
            which[np++] = i;
        }
        if (np == 0)
            break;
        left = deadline - g_get_monotonic_time();
        if (left <= 0)
            break;
        rc = poll(pfds, np, (int)MIN((left + 999) / 1000, (gint64)INT_MAX));
        if (rc < 0 && errno != EINTR) {
            for (unsigned j = 0; j < np; j++) {
                qs[which[j]].state = DNSBL_FAILED;
                qs[which[j]].why = g_strdup_printf("poll: %s", g_strerror(errno));
            }
            break;
        }
        for (unsigned j = 0; rc > 0 && j < np; j++)
            if (pfds[j].revents != 0)
                dnsbl_receive(d, &qs[which[j]]);
    }
    for (unsigned i = 0; i < n; i++) {
        if (qs[i].state == DNSBL_PENDING) {
            qs[i].state = DNSBL_FAILED;
            qs[i].why = g_strdup_printf("no answer within %u ms", d->timeout_ms);
        }
    }
    g_free(which);
    g_free(pfds);
}

int
mq_dnsbl_check(struct mq_dnsbl *d, int family, const uint8_t addr[16], GPtrArray **hits_r,
               char **why_r, GError **err)
{
    struct dnsbl_query *qs = NULL;
    GString *why = NULL;
    uint8_t a[16];
    gint64 now, deadline;
    int failed = 0, local = 0;

    if (d == NULL || addr == NULL || hits_r == NULL
        || (family != AF_INET && family != AF_INET6))
        mq_log_panic("mq_dnsbl_check: invalid arguments");
    *hits_r = NULL;
    if (why_r != NULL)
        *why_r = NULL;
    family = dnsbl_normalize(family, addr, a);
    now = g_get_monotonic_time();
    deadline = now + (gint64)d->timeout_ms * 1000;

    qs = g_new0(struct dnsbl_query, d->n_zones + 1);
    for (unsigned i = 0; i < d->n_zones; i++) {
        struct dnsbl_query *q = &qs[i];
        bool cached;

        q->zone = &d->zones[i];
        q->fd = -1;
        q->state = DNSBL_PENDING;
        if (!mq_dnsbl_query_name(family, a, q->zone->name, q->qname, sizeof(q->qname))) {
            q->state = DNSBL_FAILED;
            q->why = g_strdup("query name too long");
            continue;
        }
        g_mutex_lock(&d->lock);
        cached = dnsbl_cache_get(d, q, now);
        g_mutex_unlock(&d->lock);
        if (!cached)
            dnsbl_send(d, q);
    }
    dnsbl_wait(d, qs, d->n_zones, deadline);

    *hits_r = g_ptr_array_new_with_free_func(dnsbl_hit_free);
    now = g_get_monotonic_time();
    for (unsigned i = 0; i < d->n_zones; i++) {
        struct dnsbl_query *q = &qs[i];

        if (q->fd >= 0)
            close(q->fd);
        if (q->state == DNSBL_FAILED) {
            failed++;
            local += q->local_error;
            if (why == NULL)
                why = g_string_new(NULL);
            else
                g_string_append(why, "; ");
            g_string_append_printf(why, "%s: %s", q->zone->name, q->why);
            g_free(q->why);
            continue;
        }
        if (!q->from_cache) {
            g_mutex_lock(&d->lock);
            dnsbl_cache_put(d, q, now);
            g_mutex_unlock(&d->lock);
        }
        if (q->state == DNSBL_LISTED) {
            struct mq_dnsbl_hit *hit = g_new0(struct mq_dnsbl_hit, 1);

            hit->zone = g_strdup(q->zone->name);
            hit->weight = q->zone->weight;
            memcpy(hit->answer, q->answer, sizeof(hit->answer));
            g_ptr_array_add(*hits_r, hit);
        }
    }
    g_free(qs);
    if (local > 0 && why != NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP, "DNSBL lookups not sent: %s", why->str);
        g_string_free(why, TRUE);
        mq_dnsbl_hits_free(hits_r);
        return -1;
    }
    if (why != NULL) {
        if (why_r != NULL)
            *why_r = g_string_free(why, FALSE);
        else
            g_string_free(why, TRUE);
    }
    return failed;
}
