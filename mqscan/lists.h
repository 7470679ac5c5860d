/* lists - the site's allow and block lists: plain files an admin edits,
 * reloaded with the rest of the configuration on SIGHUP.
 *
 * Public functions: mq_list_load(), mq_list_free(), mq_list_size(),
 * mq_list_match_address(), mq_list_match_ip().
 *
 * One entry per line; "#" starts a comment; blank lines are ignored. An
 * entry may end with "until YYYY-MM-DD": from the day after that date it no
 * longer matches, so a temporary exception removes itself.
 *
 * Address lists (sender allow and block lists, recipient block list), case
 * is ignored:
 *     user@example.com      that address
 *     example.com           any address at that domain
 *     *.example.com         any address at a subdomain of it
 *     @example.com          same as example.com
 *     *@*.example.net       glob: "*" any run, "?" one character
 *     <>                    the empty (null) envelope sender
 * Network lists (IP allow and block lists): an IPv4 or IPv6 address or
 * CIDR network ("192.0.2.0/24", "2001:db8::/32").
 *
 * A list is immutable once loaded: the workers match against it
 * concurrently without locks.
 *
 * DIAGNOSTICS
 * mq_list_load() fails with MQ_ERROR_CONFIG and "FILE:LINE: problem" for a
 * malformed entry, so --lint and SIGHUP report it; a missing file is an
 * empty list (these files are optional).
 */
#ifndef MQSCAN_LISTS_H
#define MQSCAN_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <glib.h>

enum mq_list_kind {
    MQ_LIST_ADDRESSES,
    MQ_LIST_NETWORKS,
};

struct mq_list;

/* Loads path ("" or NULL gives an empty list). Entries longer than 320
 * bytes and files with more than 1,000,000 entries are refused. */
struct mq_list *mq_list_load(const char *path, enum mq_list_kind kind, GError **err);
void mq_list_free(struct mq_list **list);

/* Entries loaded, expired ones included. */
size_t mq_list_size(const struct mq_list *list);

/* True if addr ("" for the null sender) matches an entry that has not
 * expired at now; *entry_r (if not NULL) points to the entry text, valid
 * while the list lives. */
bool mq_list_match_address(const struct mq_list *list, const char *addr, time_t now,
                           const char **entry_r);

/* The same for an address of family AF_INET or AF_INET6 (network order). */
bool mq_list_match_ip(const struct mq_list *list, int family, const uint8_t *addr, time_t now,
                      const char **entry_r);

#endif
