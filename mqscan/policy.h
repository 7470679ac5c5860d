/* policy - which way a message goes, and what to do about what was found.
 *
 * Public functions: mq_policy_direction(), mq_policy_action(),
 * mq_policy_direction_name(), mq_policy_finding_name(),
 * mq_policy_action_name(), mq_policy_*_parse().
 *
 * Direction comes from facts an outsider cannot forge: the address of the
 * host that handed the message to the incoming sendmail (the qf's $_ macro,
 * written by sendmail itself) against internal_networks, and the envelope
 * sender's and recipients' domains against local_domains:
 *   inbound   the relay is outside internal_networks (whatever the sender
 *             claims: a local sender from outside is forged or relayed);
 *   internal  the relay is inside, the sender's domain is local, and every
 *             recipient is local;
 *   outbound  the relay is inside and some recipient is not local (or the
 *             sender is not local: a relay for others).
 * Each finding in a message has a kind; the configured policy of the
 * message's direction maps the kind to an action, and a virus name that
 * matches mass_mailer_patterns always means delete. The message's action is
 * the most severe one of its findings (deliver < replace < quarantine <
 * delete).
 *
 * DIAGNOSTICS
 * None: nothing here fails. A relay macro that does not parse counts as
 * outside (inbound, the strictest).
 */
#ifndef MQSCAN_POLICY_H
#define MQSCAN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mq_config;

enum mq_direction {
    MQ_DIRECTION_INBOUND,
    MQ_DIRECTION_OUTBOUND,
    MQ_DIRECTION_INTERNAL,
    MQ_DIRECTION_COUNT
};

enum mq_finding {
    MQ_FINDING_INFECTED,        /* a signature matched */
    MQ_FINDING_BANNED,          /* a filename or filetype rule denied it */
    MQ_FINDING_LIMITS,          /* a scan limit was exceeded */
    MQ_FINDING_ENCRYPTED,       /* an encrypted archive: contents unknown */
    MQ_FINDING_UNSCANNABLE,     /* cannot be scanned at all (message/partial,
                                   MIME too deep or too many parts) */
    MQ_FINDING_COUNT
};

/* In order of severity: a larger value wins. */
enum mq_action {
    MQ_ACTION_DELIVER,          /* log only */
    MQ_ACTION_REPLACE,          /* the part becomes a text notice */
    MQ_ACTION_QUARANTINE,       /* hold the whole message in quarantine */
    MQ_ACTION_DELETE,           /* drop the whole message (kept in quarantine) */
    MQ_ACTION_COUNT
};

/* Direction of a message. relay is the qf's $_ macro ("host [192.0.2.1]",
 * "[IPv6:2001:db8::1]", may be NULL); sender the envelope sender; rcpts the
 * n_rcpts envelope recipients. */
enum mq_direction mq_policy_direction(const struct mq_config *config, const char *relay,
                                      const char *sender, const char *const *rcpts,
                                      size_t n_rcpts);

/* True if the sender is one of ours: the relay is inside internal_networks
 * and the sender's domain is in local_domains. Only such a sender may be
 * told about a blocked message: an outside sender is usually forged. */
/* The address inside the last "[...]" of sendmail's $_ macro ("host
 * [192.0.2.1]", "[IPv6:2001:db8::1]") into addr (network order). Returns
 * AF_INET, AF_INET6, or 0 if there is none. */
int mq_policy_relay_addr(const char *relay, uint8_t addr[16]);

bool mq_policy_sender_internal(const struct mq_config *config, const char *relay,
                               const char *sender);

/* Action for one finding. name is the virus or rule name (may be NULL). */
enum mq_action mq_policy_action(const struct mq_config *config, enum mq_direction direction,
                                enum mq_finding finding, const char *name);

/* Names as used in the configuration and in logs ("inbound", "banned",
 * "quarantine-only", ...). */
const char *mq_policy_direction_name(enum mq_direction direction);
const char *mq_policy_finding_name(enum mq_finding finding);
const char *mq_policy_action_name(enum mq_action action);
/* Inverse of the names above; false if unknown. */
bool mq_policy_direction_parse(const char *name, enum mq_direction *direction_r);
bool mq_policy_finding_parse(const char *name, enum mq_finding *finding_r);
bool mq_policy_action_parse(const char *name, enum mq_action *action_r);

#endif
