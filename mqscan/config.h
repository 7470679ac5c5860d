/* config - the libconfuse option table, its validators, and the immutable
 * struct mq_config every other module reads.
 *
 * Public functions: mq_config_load(), mq_config_free(), mq_config_is_internal(),
 * mq_config_is_local_domain().
 *
 * Only config.c includes <confuse.h>. After a successful load the values are
 * copied into a struct mq_config that nobody modifies; a reload builds a new
 * one and swaps it between batches.
 *
 * DIAGNOSTICS
 * mq_config_load() returns NULL with an MQ_ERROR_CONFIG GError whose message
 * names the file and line of the first problem ("FILE:LINE: ..."). Unknown
 * options, bad values, and a missing or unreadable file are all errors.
 */
#ifndef MQSCAN_CONFIG_H
#define MQSCAN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "mqscan/log.h"
#include "mqscan/policy.h"

/* One entry of internal_networks. */
struct mq_config_network {
    int family;             /* AF_INET or AF_INET6 */
    uint8_t addr[16];       /* network byte order, host bits cleared */
    unsigned prefix;        /* 0..32 or 0..128 */
};

enum mq_config_engine {
    MQ_ENGINE_LIBCLAMAV,    /* in-process, one engine shared by the workers */
    MQ_ENGINE_CLAMD,        /* one or more clamd daemons, INSTREAM, failover */
};

enum mq_config_on_error {
    MQ_ON_ERROR_DEFER,      /* leave the message in the incoming queue, retry */
    MQ_ON_ERROR_HOLD,       /* move it to the hold area */
};

/* What happens to a message at or above the gateway spam threshold. */
enum mq_spam_action {
    MQ_SPAM_ACTION_NONE,        /* deliver, tagged like any message over the store threshold */
    MQ_SPAM_ACTION_QUARANTINE,  /* keep in quarantine, deliver nothing */
    MQ_SPAM_ACTION_REJECT,      /* a notice to a verifiable sender, original in quarantine */
    MQ_SPAM_ACTION_DELETE,      /* drop (a copy stays in quarantine until purged) */
};

/* What happens to a message from outside with an empty envelope sender. */
enum mq_null_sender {
    MQ_NULL_SENDER_SCORE,       /* score it like any other (rule NULL_SENDER) */
    MQ_NULL_SENDER_ACCEPT,      /* no weight for the empty sender */
    MQ_NULL_SENDER_BLOCK,       /* treat as over the gateway threshold */
};

struct mq_config {
    char *file;                     /* the file this was loaded from */

    /* Directories. */
    char *incoming_queue_dir;
    char *outgoing_queue_dir;
    char *quarantine_dir;
    char *hold_dir;
    char *state_dir;                /* heartbeat and other daemon state */
    char *scan_tmp_dir;             /* libclamav temp files; best on tmpfs */
    char *pid_file;
    char *user;                     /* mqscand runs as this user; "" stays root */

    /* Engine. */
    enum mq_config_engine engine;
    char **clamd_servers;           /* NULL-terminated: "unix:/path", "tcp:host:port" */
    unsigned clamd_timeout;         /* milliseconds, per connect and per read/write */
    char *clamav_database_dir;
    uint64_t clamav_max_scan_size;  /* bytes scanned per message, in total */
    uint64_t clamav_max_file_size;  /* largest single object scanned */
    unsigned clamav_max_recursion;  /* archive nesting */
    unsigned clamav_max_files;      /* objects per archive */
    unsigned clamav_max_scan_time;  /* milliseconds per scan */

    /* Message limits: exceeding one makes a message unscannable (held). */
    uint64_t max_message_size;      /* df + headers */
    unsigned max_mime_depth;
    unsigned max_mime_parts;

    /* Content policy. */
    char *filename_rules;           /* rule files, see rules.h */
    char *filetype_rules;
    char *template_dir;             /* holds LANGUAGE/part-removed.txt etc. */
    char *language;                 /* "en", "fr" */
    char **mass_mailer_patterns;    /* NULL-terminated globs, lower case */
    enum mq_action policy[MQ_DIRECTION_COUNT][MQ_FINDING_COUNT];

    /* Spam checks, run before the virus scan (see spam.h). A message gets a
     * spam confidence level (SCL) from 0 to 9. */
    bool spam_checks;
    unsigned spam_store_threshold;      /* SCL at or above: flagged and tagged */
    unsigned spam_gateway_threshold;    /* SCL at or above: spam_gateway_action */
    enum mq_spam_action spam_gateway_action;
    char *spam_subject_tag;             /* "" for none */
    char *spam_words;                   /* word-weight file */
    char **spam_rule_weights;           /* NULL-terminated "RULE=WEIGHT" overrides */
    char *sender_allow;                 /* list files; "" for none */
    char *sender_block;
    char *recipient_block;
    char *ip_allow;
    char *ip_block;
    enum mq_null_sender spam_null_sender;
    char **dnsbl_zones;                 /* NULL-terminated "zone" or "zone=weight" */
    char *dnsbl_server;                 /* "" (system resolver) or "IP" or "IP:PORT" */
    unsigned dnsbl_timeout;             /* milliseconds per query */
    unsigned dnsbl_cache_ttl;           /* seconds an answer is reused */
    bool spf_check;
    char *spamd_server;                 /* "" (off), "unix:/path" or "tcp:host:port" */
    unsigned spamd_timeout;             /* milliseconds for the whole exchange */
    uint64_t spamd_max_size;            /* larger messages are not sent to spamd */
    char *bayes_db;                     /* token database (SQLite); "" for none */

    /* Site. */
    char *postmaster;
    char **local_domains;           /* NULL-terminated, lower case */
    struct mq_config_network *internal_networks;
    size_t n_internal_networks;
    char *hostname;                 /* named in the X-mqscan header */

    /* Batches and workers. */
    unsigned batch_max_messages;
    uint64_t batch_max_bytes;
    unsigned batch_max_wait_ms;
    unsigned workers;
    bool queue_sync_fs;             /* queue_sync = "filesystem": one syncfs() per
                                       group of entries, else an fsync() per file */
    unsigned rescan_interval;       /* seconds between full queue rescans */
    unsigned retry_interval;        /* seconds before a deferred message is retried */
    /* Poison messages: attempts that crash the scanner process or run past
     * message_time_limit seconds; after max_attempts the message is held. */
    unsigned max_attempts;
    unsigned message_time_limit;

    /* Notifications: one report per batch to the postmaster; a notice to
     * the sender of a blocked message, only if the sender is internal
     * (relay in internal_networks and domain in local_domains) unless
     * notify_external_senders says otherwise. */
    bool notify_postmaster;
    bool notify_internal_senders;
    bool notify_external_senders;

    /* Health check (mqscan-check) thresholds, in seconds. */
    unsigned check_heartbeat_max_age;   /* CRITICAL when older */
    unsigned check_queue_max_age;       /* oldest incoming message: CRITICAL when older */
    unsigned check_signatures_max_age;  /* newest database file: CRITICAL when older */
    unsigned check_hold_max;            /* messages in hold_dir: WARNING above */
    unsigned check_alert_interval;      /* one mail per problem per interval */

    enum mq_config_on_error on_scan_error;
    enum mq_log_level log_level;
};

/* Loads and validates path. Returns a new config (caller frees with
 * mq_config_free()) or NULL with err set to "PATH:LINE: problem". */
struct mq_config *mq_config_load(const char *path, GError **err);

/* Frees *config and sets it to NULL. NULL is allowed. */
void mq_config_free(struct mq_config **config);

/* True if addr (AF_INET or AF_INET6, network byte order) is inside one of
 * internal_networks. */
bool mq_config_is_internal(const struct mq_config *config, int family, const void *addr);

/* Parses "ADDR" or "ADDR/PREFIX" (IPv4 or IPv6) into net, host bits
 * cleared. False if it is neither. */
bool mq_config_parse_network(const char *s, struct mq_config_network *net);

/* True if addr (family AF_INET or AF_INET6, network byte order) is in net. */
bool mq_config_network_contains(const struct mq_config_network *net, int family,
                                const void *addr);

/* Splits a dnsbl_server value ("IP", "IP:PORT", "[IPv6]:PORT") into host
 * and port (53 if none). False if it is not of that form. */
bool mq_config_parse_dns_server(const char *s, char *host, size_t host_size, unsigned *port_r);

/* True if domain (any case) is one of local_domains or a subdomain of one. */
bool mq_config_is_local_domain(const struct mq_config *config, const char *domain);

#endif
