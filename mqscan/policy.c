#include <config.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include <glib.h>

#include "mqscan/config.h"
#include "mqscan/policy.h"

static const char *const direction_names[MQ_DIRECTION_COUNT] = {
    "inbound", "outbound", "internal",
};
static const char *const finding_names[MQ_FINDING_COUNT] = {
    "infected", "banned", "limits", "encrypted", "unscannable",
};
static const char *const action_names[MQ_ACTION_COUNT] = {
    "deliver", "replace", "quarantine-only", "delete",
};

/* The address inside the last "[...]" of sendmail's $_ macro ("host
 * [192.0.2.1]", "[IPv6:2001:db8::1]"). Returns the family or 0. */
int
mq_policy_relay_addr(const char *relay, uint8_t addr[16])
{
    const char *open, *close;
    char buf[INET6_ADDRSTRLEN + 8];
    size_t n;

    if (relay == NULL || (open = strrchr(relay, '[')) == NULL ||
        (close = strchr(open, ']')) == NULL)
        return 0;
    open++;
    if (g_ascii_strncasecmp(open, "IPv6:", 5) == 0)
        open += 5;
    n = (size_t)(close - open);
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, open, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, addr) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, buf, addr) == 1)
        return AF_INET6;
    return 0;
}

static bool
policy_local_address(const struct mq_config *config, const char *address)
{
    const char *at = address ? strrchr(address, '@') : NULL;

    /* An address without a domain is local to the MTA that accepted it. */
    if (address == NULL || *address == '\0')
        return false;
    if (at == NULL)
        return true;
    return mq_config_is_local_domain(config, at + 1);
}

enum mq_direction
mq_policy_direction(const struct mq_config *config, const char *relay, const char *sender,
                    const char *const *rcpts, size_t n_rcpts)
{
    uint8_t addr[16] = { 0 };
    int family = mq_policy_relay_addr(relay, addr);

    if (family == 0 || !mq_config_is_internal(config, family, addr))
        return MQ_DIRECTION_INBOUND;
    if (!policy_local_address(config, sender))
        return MQ_DIRECTION_OUTBOUND;
    for (size_t i = 0; i < n_rcpts; i++) {
        if (!policy_local_address(config, rcpts[i]))
            return MQ_DIRECTION_OUTBOUND;
    }
    return MQ_DIRECTION_INTERNAL;
}

bool
mq_policy_sender_internal(const struct mq_config *config, const char *relay, const char *sender)
{
    uint8_t addr[16] = { 0 };
    int family = mq_policy_relay_addr(relay, addr);
    const char *at = sender ? strrchr(sender, '@') : NULL;

    return family != 0 && mq_config_is_internal(config, family, addr) && at != NULL &&
           mq_config_is_local_domain(config, at + 1);
}

enum mq_action
mq_policy_action(const struct mq_config *config, enum mq_direction direction,
                 enum mq_finding finding, const char *name)
{
    if (finding == MQ_FINDING_INFECTED && name != NULL) {
        char *lower = g_ascii_strdown(name, -1);
        bool worm = false;
        for (char **p = config->mass_mailer_patterns; p != NULL && *p != NULL && !worm; p++)
            worm = g_pattern_match_simple(*p, lower);
        g_free(lower);
        if (worm)
            return MQ_ACTION_DELETE;
    }
    return config->policy[direction][finding];
}

const char *
mq_policy_direction_name(enum mq_direction direction)
{
    return direction_names[direction];
}

const char *
mq_policy_finding_name(enum mq_finding finding)
{
    return finding_names[finding];
}

const char *
mq_policy_action_name(enum mq_action action)
{
    return action_names[action];
}

static bool
policy_parse(const char *const *names, size_t n, const char *name, int *value_r)
{
    for (size_t i = 0; name != NULL && i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            *value_r = (int)i;
            return true;
        }
    }
    return false;
}

bool
mq_policy_direction_parse(const char *name, enum mq_direction *direction_r)
{
    int v;
    if (!policy_parse(direction_names, MQ_DIRECTION_COUNT, name, &v))
        return false;
    *direction_r = (enum mq_direction)v;
    return true;
}

bool
mq_policy_finding_parse(const char *name, enum mq_finding *finding_r)
{
    int v;
    if (!policy_parse(finding_names, MQ_FINDING_COUNT, name, &v))
        return false;
    *finding_r = (enum mq_finding)v;
    return true;
}

bool
mq_policy_action_parse(const char *name, enum mq_action *action_r)
{
    int v;
    if (!policy_parse(action_names, MQ_ACTION_COUNT, name, &v))
        return false;
    *action_r = (enum mq_action)v;
    return true;
}
