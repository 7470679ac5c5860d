/* dnsbl - looks up a client address in DNS block lists.
 *
 * Public functions: mq_dnsbl_new(), mq_dnsbl_free(), mq_dnsbl_check(),
 * mq_dnsbl_hits_free(), mq_dnsbl_query_name(), mq_dnsbl_stats().
 *
 * An IPv4 address 192.0.2.1 is looked up as 1.2.0.192.ZONE, an IPv6 address
 * as its 32 nibbles in reverse, each zone asking for an A record. All zones
 * of one address are asked at once over UDP, with one deadline for the
 * lot. An answer is a listing only if it is an A record in 127.0.0.0/8 and
 * not in 127.255.255.0/24, which the big lists use for "query refused" or
 * "you are over quota"; such a code is logged, never scored. Answers
 * (listed and not listed) are kept for cache_ttl seconds in a cache of
 * bounded size that every thread shares.
 *
 * Ownership: the hits array and its entries belong to the caller (free with
 * mq_dnsbl_hits_free()); the client is freed with mq_dnsbl_free() once no
 * thread uses it any more.
 *
 * DIAGNOSTICS
 * mq_dnsbl_new() fails with MQ_ERROR_CONFIG on a bad zone, server or
 * timeout, or when no name server is known. A zone that times out or fails
 * is not a listing: mq_dnsbl_check() counts it in its return value and
 * describes it in *why_r, and the message is scored without it. Only a
 * failure to ask at all (no socket: EMFILE and the like) is returned as -1
 * with MQ_ERROR_TEMP. Calling with a bad family or NULL arguments panics.
 */
#ifndef MQSCAN_DNSBL_H
#define MQSCAN_DNSBL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

struct mq_dnsbl;

/* One listing. */
struct mq_dnsbl_hit {
    char *zone;                         /* as configured, without "=weight" */
    double weight;                      /* from "zone=weight"; 1.0 if none */
    char answer[INET_ADDRSTRLEN];       /* the A record, e.g. "127.0.0.2" */
};

/* zones: NULL-terminated "zone" or "zone=weight" (weight 0 to 10), as in
 * dnsbl_zones; may be empty (every check then finds nothing). server: NULL
 * or "" for the first name server of /etc/resolv.conf (read now, not at each
 * query), else "IP", "IP:PORT" or "[IPv6]:PORT". timeout_ms: 1 to 60000,
 * for all zones of one check together. cache_ttl: seconds, 0 for no cache.
 * Returns a client (free with mq_dnsbl_free()) or NULL with err. */
struct mq_dnsbl *mq_dnsbl_new(const char *const *zones, const char *server, unsigned timeout_ms,
                              unsigned cache_ttl, GError **err);
void mq_dnsbl_free(struct mq_dnsbl **dnsbl);

/* Looks addr up in every zone. family is AF_INET (addr[0..3]) or AF_INET6
 * (addr[0..15]; an IPv4-mapped ::ffff:a.b.c.d is looked up as IPv4).
 * *hits_r becomes a new array of struct mq_dnsbl_hit *, one per listing
 * zone (caller frees with mq_dnsbl_hits_free()). Returns the number of zones
 * that gave no usable answer (timeout, SERVFAIL, a malformed reply), with
 * *why_r (if why_r is not NULL; caller frees; NULL when 0) naming each, or
 * -1 with err (*hits_r is then NULL). Thread-safe. */
int mq_dnsbl_check(struct mq_dnsbl *dnsbl, int family, const uint8_t addr[16], GPtrArray **hits_r,
                   char **why_r, GError **err);

/* Frees the array from mq_dnsbl_check() and its entries; sets *hits to NULL. */
void mq_dnsbl_hits_free(GPtrArray **hits);

/* Writes the query name for addr in zone ("2.0.0.127.zone") to buf. False
 * if it does not fit in size bytes or is longer than a DNS name may be. */
bool mq_dnsbl_query_name(int family, const uint8_t addr[16], const char *zone, char *buf,
                         size_t size);

/* Counters since mq_dnsbl_new(): queries sent and answers taken from the
 * cache. Either pointer may be NULL. */
void mq_dnsbl_stats(struct mq_dnsbl *dnsbl, uint64_t *queries_r, uint64_t *cache_hits_r);

#endif
