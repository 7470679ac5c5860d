#include <config.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <glib.h>
#include <spf2/spf.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/spf.h"

/*
 * SPF through libspf2.
 *
 * libspf2's resolver layer (SPF_DNS_RESOLV) calls res_nquery() with a
 * resolver state of its own per thread, so DNS is thread-safe; the rest of
 * an SPF_server_t is not documented to be, so each check borrows a server
 * from a pool and is the only user of it until it gives it back. The pool
 * grows to the number of threads that check at the same time and no
 * further.
 *
 * We do not use SPF_DNS_CACHE: it is one more layer with its own locking
 * questions, and the site's resolver caches anyway.
 *
 * The Received-SPF value comes from libspf2, which copies the envelope
 * sender and HELO name into it. Both are attacker data and may hold CR or
 * LF (a header injection), so the value is rewritten to printable ASCII
 * and cut before anyone sees it.
 */

#define SPF_NAME_MAX 253            /* receiver name */
#define SPF_ARG_MAX 1024            /* longer HELO or sender: not checked */

struct mq_spf {
    char *receiver;
    GMutex lock;
    GPtrArray *idle;                /* SPF_server_t *, not in use */
};

static const char *const spf_names[] = {
    [MQ_SPF_NONE] = "none",
    [MQ_SPF_NEUTRAL] = "neutral",
    [MQ_SPF_PASS] = "pass",
    [MQ_SPF_FAIL] = "fail",
    [MQ_SPF_SOFTFAIL] = "softfail",
    [MQ_SPF_TEMPERROR] = "temperror",
    [MQ_SPF_PERMERROR] = "permerror",
};

const char *
mq_spf_result_name(enum mq_spf_result result)
{
    if ((unsigned)result >= G_N_ELEMENTS(spf_names))
        mq_log_panic("mq_spf_result_name: result %d", (int)result);
    return spf_names[result];
}

char *
mq_spf_header_value(const char *s)
{
    size_t len;
    char *out;

    if (s == NULL)
        s = "";
    len = strnlen(s, MQ_SPF_HEADER_MAX);
    out = g_malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[len] = '\0';
    return out;
}

/* libspf2's log hooks. What it says may quote records from DNS. */
static void
spf_log_hook(const char *file, int line, const char *msg)
{
    char *clean = mq_log_sanitize(msg, MQ_LOG_FIELD_MAX);

    mq_log_debug("spf: libspf2: %s", clean);
    g_free(clean);
}

static bool
spf_hostname_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > SPF_NAME_MAX || s[0] == '.' || s[0] == '-')
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

/* A new libspf2 server, or NULL. */
static SPF_server_t *
spf_server_make(const char *receiver)
{
    SPF_server_t *server = SPF_server_new(SPF_DNS_RESOLV, 0);

    if (server == NULL)
        return NULL;
    if (SPF_server_set_rec_dom(server, receiver) != SPF_E_SUCCESS) {
        SPF_server_free(server);
        return NULL;
    }
    return server;
}

struct mq_spf *
mq_spf_new(const char *receiver, GError **err)
{
    struct mq_spf *spf;
    SPF_server_t *server;

    if (receiver == NULL || !spf_hostname_ok(receiver)) {
        char *bad = mq_log_sanitize(receiver, 80);

        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "SPF: receiver \"%s\" is not a host name",
                    bad);
        g_free(bad);
        return NULL;
    }
    SPF_warning_handler = spf_log_hook;
    SPF_info_handler = spf_log_hook;
    SPF_debug_handler = spf_log_hook;
    /* One server now, so that a broken libspf2 shows at start-up. */
    server = spf_server_make(receiver);
    if (server == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "SPF: libspf2 could not make a server");
        return NULL;
    }
    spf = g_new0(struct mq_spf, 1);
    spf->receiver = g_strdup(receiver);
    g_mutex_init(&spf->lock);
    spf->idle = g_ptr_array_new();
    g_ptr_array_add(spf->idle, server);
    return spf;
}

void
mq_spf_free(struct mq_spf **spfp)
{
    struct mq_spf *spf;

    if (spfp == NULL)
        mq_log_panic("mq_spf_free: NULL argument");
    spf = *spfp;
    *spfp = NULL;
    if (spf == NULL)
        return;
    for (guint i = 0; i < spf->idle->len; i++)
        SPF_server_free(g_ptr_array_index(spf->idle, i));
    g_ptr_array_free(spf->idle, TRUE);
    g_mutex_clear(&spf->lock);
    g_free(spf->receiver);
    g_free(spf);
}

static SPF_server_t *
spf_server_take(struct mq_spf *spf)
{
    SPF_server_t *server = NULL;

    g_mutex_lock(&spf->lock);
    if (spf->idle->len > 0)
        server = g_ptr_array_steal_index_fast(spf->idle, spf->idle->len - 1);
    g_mutex_unlock(&spf->lock);
    return server != NULL ? server : spf_server_make(spf->receiver);
}

static void
spf_server_give_back(struct mq_spf *spf, SPF_server_t *server)
{
    g_mutex_lock(&spf->lock);
    g_ptr_array_add(spf->idle, server);
    g_mutex_unlock(&spf->lock);
}

static int
spf_map_result(SPF_result_t r, enum mq_spf_result *result_r)
{
    switch (r) {
    case SPF_RESULT_NEUTRAL: *result_r = MQ_SPF_NEUTRAL; return 0;
    case SPF_RESULT_PASS: *result_r = MQ_SPF_PASS; return 0;
    case SPF_RESULT_FAIL: *result_r = MQ_SPF_FAIL; return 0;
    case SPF_RESULT_SOFTFAIL: *result_r = MQ_SPF_SOFTFAIL; return 0;
    case SPF_RESULT_NONE: *result_r = MQ_SPF_NONE; return 0;
    case SPF_RESULT_TEMPERROR: *result_r = MQ_SPF_TEMPERROR; return 0;
    case SPF_RESULT_PERMERROR: *result_r = MQ_SPF_PERMERROR; return 0;
    case SPF_RESULT_INVALID: break;
    }
    return -1;
}

/* Sets the client address of req. */
static SPF_errcode_t
spf_set_ip(SPF_request_t *req, int family, const uint8_t addr[16])
{
    if (family == AF_INET) {
        struct in_addr a;

        memcpy(&a, addr, sizeof(a));
        return SPF_request_set_ipv4(req, a);
    }
    {
        struct in6_addr a;

        memcpy(&a, addr, sizeof(a));
        return SPF_request_set_ipv6(req, a);
    }
}

/* A value for checks libspf2 gave no header for. */
static char *
spf_own_header(const struct mq_spf *spf, enum mq_spf_result result, int family,
               const uint8_t addr[16], const char *why)
{
    char ip[INET6_ADDRSTRLEN] = "";
    char *raw, *value;

    inet_ntop(family, addr, ip, sizeof(ip));
    raw = g_strdup_printf("%s (%s: %s) client-ip=%s; receiver=%s;", mq_spf_result_name(result),
                          spf->receiver, why, ip, spf->receiver);
    value = mq_spf_header_value(raw);
    g_free(raw);
    return value;
}

int
mq_spf_check(struct mq_spf *spf, int family, const uint8_t addr[16], const char *helo,
             const char *sender, enum mq_spf_result *result_r, char **header_r, GError **err)
{
    SPF_server_t *server = NULL;
    SPF_request_t *req = NULL;
    SPF_response_t *resp = NULL;
    char *from = NULL;
    SPF_errcode_t code;
    int rc = -1;

    if (spf == NULL || addr == NULL || helo == NULL || sender == NULL || result_r == NULL
        || (family != AF_INET && family != AF_INET6))
        mq_log_panic("mq_spf_check: invalid arguments");
    if (header_r != NULL)
        *header_r = NULL;

    /* RFC 7208 2.4: the null sender is checked as postmaster@HELO. */
    if (sender[0] == '\0' && helo[0] != '\0')
        from = g_strconcat("postmaster@", helo, NULL);
    else
        from = g_strdup(sender);
    if (from[0] == '\0' || strlen(from) > SPF_ARG_MAX || strlen(helo) > SPF_ARG_MAX) {
        *result_r = MQ_SPF_NONE;
        if (header_r != NULL)
            *header_r = spf_own_header(spf, MQ_SPF_NONE, family, addr,
                                       from[0] == '\0' ? "no sender and no HELO"
                                                       : "sender or HELO too long");
        rc = 0;
        goto out;
    }

    server = spf_server_take(spf);
    if (server == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "SPF: libspf2 could not make a server");
        goto out;
    }
    req = SPF_request_new(server);
    if (spf_set_ip(req, family, addr) != SPF_E_SUCCESS) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "SPF: libspf2 refused the client address");
        goto out;
    }
    if (helo[0] != '\0')
        SPF_request_set_helo_dom(req, helo);
    if (SPF_request_set_env_from(req, from) != 0) {
        /* libspf2 could not make a domain of it: nothing to check. */
        *result_r = MQ_SPF_NONE;
        if (header_r != NULL)
            *header_r = spf_own_header(spf, MQ_SPF_NONE, family, addr,
                                       "sender has no usable domain");
        rc = 0;
        goto out;
    }
    code = SPF_request_query_mailfrom(req, &resp);
    if (resp == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "SPF: libspf2 gave no response (error %d)",
                    (int)code);
        goto out;
    }
    if (spf_map_result(SPF_response_result(resp), result_r) < 0) {
        /* No result, only an error code: a record that does not compile
         * is a permerror (RFC 7208 4.6), a DNS failure a temperror; our
         * own trouble is no result at all. */
        if (code == SPF_E_SUCCESS)
            code = SPF_response_errcode(resp);
        if (code == SPF_E_NO_MEMORY || code == SPF_E_INTERNAL_ERROR || code == SPF_E_NOT_CONFIG
            || code == SPF_E_SUCCESS) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "SPF: libspf2 gave no result (%s)",
                        SPF_strerror(code));
            goto out;
        }
        *result_r = code == SPF_E_DNS_ERROR ? MQ_SPF_TEMPERROR : MQ_SPF_PERMERROR;
        if (header_r != NULL)
            *header_r = spf_own_header(spf, *result_r, family, addr, SPF_strerror(code));
        rc = 0;
        goto out;
    }
    if (header_r != NULL) {
        const char *value = SPF_response_get_received_spf_value(resp);

        *header_r = value != NULL ? mq_spf_header_value(value)
                                  : g_strdup(mq_spf_result_name(*result_r));
    }
    rc = 0;

out:
    if (resp != NULL)
        SPF_response_free(resp);
    if (req != NULL)
        SPF_request_free(req);
    if (server != NULL)
        spf_server_give_back(spf, server);
    g_free(from);
    return rc;
}
