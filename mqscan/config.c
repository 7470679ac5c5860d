#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <confuse.h>
#include <glib.h>

#include "mqscan/config.h"
#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/sockio.h"

#ifndef MQ_LOCALSTATEDIR
#define MQ_LOCALSTATEDIR "/var"
#endif
#ifndef MQ_RUNSTATEDIR
#define MQ_RUNSTATEDIR "/run"
#endif
#ifndef MQ_SYSCONFDIR
#define MQ_SYSCONFDIR "/etc"
#endif

/* One "policy DIRECTION { finding = action ... }" section. Options left out
 * keep the direction's default (config_default_policy). */
static cfg_opt_t config_policy_opts[] = {
    CFG_STR("infected", NULL, CFGF_NODEFAULT),
    CFG_STR("banned", NULL, CFGF_NODEFAULT),
    CFG_STR("limits", NULL, CFGF_NODEFAULT),
    CFG_STR("encrypted", NULL, CFGF_NODEFAULT),
    CFG_STR("unscannable", NULL, CFGF_NODEFAULT),
    CFG_END()
};

/* Inbound mail is the stricter: what is removed coming in may go out
 * (an internal user sending a program to a partner), but nothing infected
 * and nothing that could not be scanned passes either way. */
static const enum mq_action config_default_policy[MQ_DIRECTION_COUNT][MQ_FINDING_COUNT] = {
    [MQ_DIRECTION_INBOUND] = { MQ_ACTION_REPLACE, MQ_ACTION_REPLACE, MQ_ACTION_REPLACE,
                               MQ_ACTION_REPLACE, MQ_ACTION_REPLACE },
    [MQ_DIRECTION_OUTBOUND] = { MQ_ACTION_REPLACE, MQ_ACTION_DELIVER, MQ_ACTION_REPLACE,
                                MQ_ACTION_DELIVER, MQ_ACTION_REPLACE },
    [MQ_DIRECTION_INTERNAL] = { MQ_ACTION_REPLACE, MQ_ACTION_DELIVER, MQ_ACTION_REPLACE,
                                MQ_ACTION_DELIVER, MQ_ACTION_REPLACE },
};

/* The whole option table. Defaults are what a Debian sendmail pair with a
 * second queue directory needs; every option is documented in
 * conf/mqscan.conf.in and mqscan.conf(5). */
static cfg_opt_t config_opts[] = {
    CFG_STR("incoming_queue_dir", "/var/spool/mqueue.in", CFGF_NONE),
    CFG_STR("outgoing_queue_dir", "/var/spool/mqueue", CFGF_NONE),
    CFG_STR("quarantine_dir", MQ_LOCALSTATEDIR "/spool/mqscan/quarantine", CFGF_NONE),
    CFG_STR("hold_dir", MQ_LOCALSTATEDIR "/spool/mqscan/hold", CFGF_NONE),
    CFG_STR("state_dir", MQ_LOCALSTATEDIR "/lib/mqscan", CFGF_NONE),
    CFG_STR("scan_tmp_dir", MQ_RUNSTATEDIR "/mqscan/tmp", CFGF_NONE),
    CFG_STR("pid_file", MQ_RUNSTATEDIR "/mqscan/mqscand.pid", CFGF_NONE),
    CFG_STR("user", "mqscan", CFGF_NONE),

    CFG_STR("engine", "libclamav", CFGF_NONE),
    CFG_STR_LIST("clamd_servers", "{\"unix:/run/clamav/clamd.ctl\"}", CFGF_NONE),
    CFG_INT("clamd_timeout", 60, CFGF_NONE),
    CFG_STR("clamav_database_dir", "/var/lib/clamav", CFGF_NONE),
    CFG_STR("clamav_max_scan_size", "128M", CFGF_NONE),
    CFG_STR("clamav_max_file_size", "64M", CFGF_NONE),
    CFG_INT("clamav_max_recursion", 16, CFGF_NONE),
    CFG_INT("clamav_max_files", 10000, CFGF_NONE),
    CFG_INT("clamav_max_scan_time", 120000, CFGF_NONE),

    CFG_STR("max_message_size", "50M", CFGF_NONE),
    CFG_INT("max_mime_depth", 20, CFGF_NONE),
    CFG_INT("max_mime_parts", 1000, CFGF_NONE),

    CFG_STR("filename_rules", MQ_SYSCONFDIR "/mqscan/filename.rules", CFGF_NONE),
    CFG_STR("filetype_rules", MQ_SYSCONFDIR "/mqscan/filetype.rules", CFGF_NONE),
    CFG_STR("template_dir", MQ_SYSCONFDIR "/mqscan/templates", CFGF_NONE),
    CFG_STR("language", "en", CFGF_NONE),
    CFG_STR_LIST("mass_mailer_patterns",
                 "{\"*worm.mydoom*\", \"*worm.netsky*\", \"*worm.bagle*\", \"*worm.sober*\", "
                 "\"*worm.mimail*\", \"*worm.sobig*\", \"*worm.klez*\", \"*worm.mytob*\", "
                 "\"email.worm.*\", \"*email-worm*\", \"*mass-mailer*\", \"*.massmailer*\"}",
                 CFGF_NONE),
    CFG_SEC("policy", config_policy_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_BOOL("spam_checks", cfg_true, CFGF_NONE),
    CFG_INT("spam_store_threshold", 5, CFGF_NONE),
    CFG_INT("spam_gateway_threshold", 9, CFGF_NONE),
    CFG_STR("spam_gateway_action", "quarantine", CFGF_NONE),
    CFG_STR("spam_subject_tag", "[SPAM]", CFGF_NONE),
    CFG_STR("spam_words", MQ_SYSCONFDIR "/mqscan/spam.words", CFGF_NONE),
    CFG_STR_LIST("spam_rule_weights", "{}", CFGF_NONE),
    CFG_STR("sender_allow", MQ_SYSCONFDIR "/mqscan/sender.allow", CFGF_NONE),
    CFG_STR("sender_block", MQ_SYSCONFDIR "/mqscan/sender.block", CFGF_NONE),
    CFG_STR("recipient_block", MQ_SYSCONFDIR "/mqscan/recipient.block", CFGF_NONE),
    CFG_STR("ip_allow", MQ_SYSCONFDIR "/mqscan/ip.allow", CFGF_NONE),
    CFG_STR("ip_block", MQ_SYSCONFDIR "/mqscan/ip.block", CFGF_NONE),
    CFG_STR("spam_null_sender", "score", CFGF_NONE),
    CFG_STR_LIST("dnsbl_zones", "{}", CFGF_NONE),
    CFG_STR("dnsbl_server", "", CFGF_NONE),
    CFG_INT("dnsbl_timeout", 2000, CFGF_NONE),
    CFG_INT("dnsbl_cache_ttl", 600, CFGF_NONE),
    CFG_BOOL("spf_check", cfg_true, CFGF_NONE),
    CFG_STR("spamd_server", "", CFGF_NONE),
    CFG_INT("spamd_timeout", 10000, CFGF_NONE),
    CFG_STR("spamd_max_size", "512K", CFGF_NONE),
    CFG_STR("bayes_db", MQ_LOCALSTATEDIR "/lib/mqscan/bayes.db", CFGF_NONE),
    CFG_STR("postmaster", "postmaster", CFGF_NONE),
    CFG_STR_LIST("local_domains", "{}", CFGF_NONE),
    CFG_STR_LIST("internal_networks", "{127.0.0.0/8, ::1/128}", CFGF_NONE),
    CFG_STR("hostname", "", CFGF_NONE),

    CFG_INT("batch_max_messages", 30, CFGF_NONE),
    CFG_STR("batch_max_bytes", "50M", CFGF_NONE),
    CFG_FLOAT("batch_max_wait", 0.5, CFGF_NONE),
    CFG_INT("workers", 2, CFGF_NONE),
    CFG_STR("queue_sync", "filesystem", CFGF_NONE),
    CFG_INT("rescan_interval", 30, CFGF_NONE),
    CFG_INT("retry_interval", 60, CFGF_NONE),
    CFG_INT("max_attempts", 3, CFGF_NONE),
    CFG_INT("message_time_limit", 600, CFGF_NONE),

    CFG_BOOL("notify_postmaster", cfg_true, CFGF_NONE),
    CFG_BOOL("notify_internal_senders", cfg_true, CFGF_NONE),
    CFG_BOOL("notify_external_senders", cfg_false, CFGF_NONE),
    CFG_INT("check_heartbeat_max_age", 600, CFGF_NONE),
    CFG_INT("check_queue_max_age", 1800, CFGF_NONE),
    CFG_INT("check_signatures_max_age", 3 * 86400, CFGF_NONE),
    CFG_INT("check_hold_max", 100, CFGF_NONE),
    CFG_INT("check_alert_interval", 3600, CFGF_NONE),
    CFG_STR("on_scan_error", "defer", CFGF_NONE),
    CFG_STR("log_level", "info", CFGF_NONE),
    CFG_END()
};

/* Integer options and their allowed ranges. */
static const struct config_int_range {
    const char *name;
    long min, max;
} config_int_ranges[] = {
    { "clamav_max_recursion", 1, 64 },
    { "clamav_max_files", 1, 1000000 },
    { "clamav_max_scan_time", 1000, 3600000 },
    { "max_mime_depth", 1, 100 },
    { "max_mime_parts", 1, 100000 },
    { "batch_max_messages", 1, 10000 },
    { "workers", 1, 64 },
    { "rescan_interval", 1, 86400 },
    { "retry_interval", 1, 86400 },
    { "max_attempts", 1, 100 },
    { "message_time_limit", 1, 86400 },
    { "clamd_timeout", 1, 3600 },
    { "check_heartbeat_max_age", 10, 86400 * 7 },
    { "check_queue_max_age", 10, 86400 * 7 },
    { "check_signatures_max_age", 3600, 86400 * 365 },
    { "check_hold_max", 0, 10000000 },
    { "check_alert_interval", 60, 86400 * 7 },
    { "spam_store_threshold", 1, 9 },
    { "spam_gateway_threshold", 1, 10 },
    { "dnsbl_timeout", 10, 60000 },
    { "dnsbl_cache_ttl", 0, 86400 },
    { "spamd_timeout", 10, 600000 },
};

/* Size options: a number with an optional K, M or G suffix (powers of 1024). */
static const struct config_size_range {
    const char *name;
    uint64_t min, max;
} config_size_ranges[] = {
    { "clamav_max_scan_size", 1024, (uint64_t)4 << 30 },
    { "clamav_max_file_size", 1024, (uint64_t)4 << 30 },
    { "max_message_size", 1024, (uint64_t)2 << 30 },
    { "batch_max_bytes", 1024, (uint64_t)16 << 30 },
    { "spamd_max_size", 1024, (uint64_t)64 << 20 },
};

/* Paths that may be "" to turn a feature off. */
static const char *const config_optional_path_opts[] = {
    "spam_words", "sender_allow", "sender_block", "recipient_block", "ip_allow", "ip_block",
    "bayes_db",
};

static const char *const config_dir_opts[] = {
    "incoming_queue_dir", "outgoing_queue_dir", "quarantine_dir", "hold_dir",
    "state_dir", "scan_tmp_dir", "clamav_database_dir",
    "filename_rules", "filetype_rules", "template_dir",
};

/* The index of s in names[n] into *index_r (if not NULL). */
static bool
config_choice(const char *const *names, size_t n, const char *s, int *index_r)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            if (index_r != NULL)
                *index_r = (int)i;
            return true;
        }
    }
    return false;
}

/* In enum order: enum mq_spam_action, enum mq_null_sender. */
static const char *const config_spam_actions[] = { "none", "quarantine", "reject", "delete" };
static const char *const config_null_senders[] = { "score", "accept", "block" };

static bool
config_parse_size(const char *s, uint64_t *value_r)
{
    char digits[32];
    size_t n = strlen(s);
    unsigned shift = 0;
    uint64_t v;

    if (n == 0 || n >= sizeof(digits))
        return false;
    memcpy(digits, s, n + 1);
    switch (g_ascii_toupper(digits[n - 1])) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    default: break;
    }
    if (shift != 0)
        digits[n - 1] = '\0';
    if (!mq_fs_parse_uint(digits, 0, UINT64_MAX >> shift, &v))
        return false;
    *value_r = v << shift;
    return true;
}

bool
mq_config_parse_network(const char *s, struct mq_config_network *net)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    uint64_t prefix;
    unsigned bits;

    if (alen == 0 || alen >= sizeof(addr))
        return false;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    memset(net, 0, sizeof(*net));
    if (inet_pton(AF_INET, addr, net->addr) == 1) {
        net->family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, addr, net->addr) == 1) {
        net->family = AF_INET6;
        bits = 128;
    } else {
        return false;
    }
    if (slash == NULL)
        prefix = bits;
    else if (!mq_fs_parse_uint(slash + 1, 0, bits, &prefix))
        return false;
    net->prefix = (unsigned)prefix;
    for (unsigned i = net->prefix; i < bits; i++)
        net->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    return true;
}

/* Validators run as each option is parsed, so cfg->line is its line. */
static int
config_validate_int(cfg_t *cfg, cfg_opt_t *opt)
{
    long v = cfg_opt_getnint(opt, cfg_opt_size(opt) - 1);
    for (size_t i = 0; i < G_N_ELEMENTS(config_int_ranges); i++) {
        const struct config_int_range *r = &config_int_ranges[i];
        if (strcmp(r->name, cfg_opt_name(opt)) == 0 && (v < r->min || v > r->max)) {
            cfg_error(cfg, "%s = %ld is out of range (%ld to %ld)", r->name, v, r->min, r->max);
            return -1;
        }
    }
    return 0;
}

static int
config_validate_size(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    uint64_t v;
    for (size_t i = 0; i < G_N_ELEMENTS(config_size_ranges); i++) {
        const struct config_size_range *r = &config_size_ranges[i];
        if (strcmp(r->name, cfg_opt_name(opt)) != 0)
            continue;
        if (s == NULL || !config_parse_size(s, &v)) {
            cfg_error(cfg, "%s = \"%s\" is not a size (a number with an optional K, M or G)",
                      r->name, s ? s : "");
            return -1;
        }
        if (v < r->min || v > r->max) {
            cfg_error(cfg, "%s = %s is out of range (%" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT " bytes)",
                      r->name, s, r->min, r->max);
            return -1;
        }
    }
    return 0;
}

static int
config_validate_dir(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    if (s == NULL || s[0] != '/' || strstr(s, "/../") != NULL || g_str_has_suffix(s, "/..")) {
        cfg_error(cfg, "%s must be an absolute path without \"..\"", cfg_opt_name(opt));
        return -1;
    }
    return 0;
}

static int
config_validate_networks(cfg_t *cfg, cfg_opt_t *opt)
{
    struct mq_config_network net;
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    if (s == NULL || !mq_config_parse_network(s, &net)) {
        cfg_error(cfg, "internal_networks: \"%s\" is not an address or CIDR network", s ? s : "");
        return -1;
    }
    return 0;
}

static int
config_validate_domains(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 253) {
        cfg_error(cfg, "local_domains: empty or over-long domain");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(s[i]) && s[i] != '-' && s[i] != '.') {
            cfg_error(cfg, "local_domains: \"%s\" is not a domain name", s);
            return -1;
        }
    }
    return 0;
}

static int
config_validate_choice(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    const char *name = cfg_opt_name(opt);
    enum mq_log_level level;
    enum mq_action action;
    if (strcmp(name, "on_scan_error") == 0) {
        if (s == NULL || (strcmp(s, "defer") != 0 && strcmp(s, "hold") != 0)) {
            cfg_error(cfg, "on_scan_error must be \"defer\" or \"hold\"");
            return -1;
        }
    } else if (strcmp(name, "engine") == 0) {
        if (s == NULL || (strcmp(s, "libclamav") != 0 && strcmp(s, "clamd") != 0)) {
            cfg_error(cfg, "engine must be \"libclamav\" or \"clamd\"");
            return -1;
        }
    } else if (strcmp(name, "spam_gateway_action") == 0) {
        if (s == NULL || !config_choice(config_spam_actions, G_N_ELEMENTS(config_spam_actions), s, NULL)) {
            cfg_error(cfg, "spam_gateway_action must be none, quarantine, reject or delete");
            return -1;
        }
    } else if (strcmp(name, "spam_null_sender") == 0) {
        if (s == NULL || !config_choice(config_null_senders, G_N_ELEMENTS(config_null_senders), s, NULL)) {
            cfg_error(cfg, "spam_null_sender must be score, accept or block");
            return -1;
        }
    } else if (strcmp(name, "queue_sync") == 0) {
        if (s == NULL || (strcmp(s, "filesystem") != 0 && strcmp(s, "files") != 0)) {
            cfg_error(cfg, "queue_sync must be \"filesystem\" or \"files\"");
            return -1;
        }
    } else if (strcmp(name, "language") == 0) {
        if (s == NULL || strlen(s) < 2 || strlen(s) > 8 || strspn(s, "abcdefghijklmnopqrstuvwxyz_") != strlen(s)) {
            cfg_error(cfg, "language must be a lower-case language code such as \"en\" or \"fr\"");
            return -1;
        }
    } else if (strcmp(name, "log_level") != 0) {
        /* a finding inside a policy section */
        if (s == NULL || !mq_policy_action_parse(s, &action)) {
            cfg_error(cfg, "%s must be deliver, replace, quarantine-only or delete", name);
            return -1;
        }
    } else if (s == NULL || !mq_log_level_parse(s, &level)) {
        cfg_error(cfg, "log_level must be debug, info, warning or error");
        return -1;
    }
    return 0;
}

static int
config_validate_optional_path(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    if (s != NULL && s[0] == '\0')
        return 0;
    return config_validate_dir(cfg, opt);
}

/* "RULE=WEIGHT": an upper-case rule name and a weight from -20 to 20. */
static int
config_validate_rule_weight(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    const char *eq = s ? strchr(s, '=') : NULL;
    char *end = NULL;
    double w = 0;

    if (eq != NULL && eq > s && eq - s < 64 &&
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == (size_t)(eq - s)) {
        w = g_ascii_strtod(eq + 1, &end);
        if (end != eq + 1 && *end == '\0' && w >= -20 && w <= 20)
            return 0;
    }
    cfg_error(cfg, "spam_rule_weights: \"%s\" is not RULE=WEIGHT (weight from -20 to 20)",
              s ? s : "");
    return -1;
}

/* "zone" or "zone=weight": a DNS name and a weight from 0 to 10. */
static int
config_validate_dnsbl_zone(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    const char *eq = s ? strchr(s, '=') : NULL;
    size_t n = s == NULL ? 0 : eq ? (size_t)(eq - s) : strlen(s);
    char *end = NULL;
    double w;

    if (s != NULL && n > 0 && n < 200 &&
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") >= n &&
        s[0] != '.' && s[0] != '-') {
        if (eq == NULL)
            return 0;
        w = g_ascii_strtod(eq + 1, &end);
        if (end != eq + 1 && *end == '\0' && w >= 0 && w <= 10)
            return 0;
    }
    cfg_error(cfg, "dnsbl_zones: \"%s\" is not ZONE or ZONE=WEIGHT (weight from 0 to 10)",
              s ? s : "");
    return -1;
}

/* Splits "" / "IP" / "IP:PORT" / "[IPv6]:PORT"; true if well formed. */
bool
mq_config_parse_dns_server(const char *s, char *host, size_t host_size, unsigned *port_r)
{
    uint64_t port = 53;
    const char *colon;
    unsigned char buf[16];

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || (size_t)(close - s - 1) >= host_size)
            return false;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        if (close[1] != '\0' && (close[1] != ':' || !mq_fs_parse_uint(close + 2, 1, 65535, &port)))
            return false;
    } else if ((colon = strchr(s, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
        if ((size_t)(colon - s) >= host_size || !mq_fs_parse_uint(colon + 1, 1, 65535, &port))
            return false;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    } else if (strlen(s) < host_size) {
        strcpy(host, s);
    } else {
        return false;
    }
    *port_r = (unsigned)port;
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int
config_validate_dns_server(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    char host[64];
    unsigned port;

    if (s == NULL || s[0] == '\0' || mq_config_parse_dns_server(s, host, sizeof(host), &port))
        return 0;
    cfg_error(cfg, "dnsbl_server: \"%s\" is not a numeric address with an optional port", s);
    return -1;
}

static int
config_validate_text(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    /* Both end up in generated headers and envelopes. */
    if (s == NULL || strlen(s) > 255 || strpbrk(s, "\r\n\t <>\"(),;") != NULL) {
        cfg_error(cfg, "%s must be a plain address or host name (no spaces, brackets or line breaks)",
                  cfg_opt_name(opt));
        return -1;
    }
    return 0;
}

static int
config_validate_wait(cfg_t *cfg, cfg_opt_t *opt)
{
    double v = cfg_opt_getnfloat(opt, cfg_opt_size(opt) - 1);
    if (!(v >= 0.0 && v <= 3600.0)) {
        cfg_error(cfg, "batch_max_wait = %g is out of range (0 to 3600 seconds)", v);
        return -1;
    }
    return 0;
}

/* libconfuse 3.3 (and upstream so far) counts a "#" or "//" comment as
 * three lines and a C comment as one line too many - its lexer's qput() and
 * qend() both bump cfg->line - so every error after the first comment named
 * the wrong line. Comments are blanked out here, newlines kept, so that
 * libconfuse counts only newlines. The rules are its lexer's: outside quoted
 * strings '#' starts a comment anywhere, while "//" and "/" "*" do so only
 * where a token could start (inside an unquoted word they are part of it);
 * in "..." and '...' a backslash escapes the next character. */
static void
config_blank_comments(char *s, size_t len)
{
    enum { CODE, DQ, SQ, LINE, BLOCK } state = CODE;
    bool word = false;          /* inside an unquoted word */

    for (size_t i = 0; i < len; i++) {
        char c = s[i], next = i + 1 < len ? s[i + 1] : '\0';

        switch (state) {
        case CODE:
            if (c == '#' || (!word && c == '/' && next == '/')) {
                state = LINE;
                s[i] = ' ';
            } else if (!word && c == '/' && next == '*') {
                state = BLOCK;
                s[i] = s[i + 1] = ' ';
                i++;
            } else if (c == '"' || c == '\'') {
                state = c == '"' ? DQ : SQ;
                word = false;
            } else {
                word = c != '\0' && strchr(" \t\r\n={}()+,*", c) == NULL;
            }
            break;
        case DQ:
        case SQ:
            if (c == '\\' && next != '\0')
                i++;
            else if (c == (state == DQ ? '"' : '\''))
                state = CODE;
            break;
        case LINE:
            if (c == '\n')
                state = CODE;
            else
                s[i] = ' ';
            break;
        case BLOCK:
            if (c == '*' && next == '/') {
                s[i] = s[i + 1] = ' ';
                i++;
                state = CODE;
            } else if (c != '\n') {
                s[i] = ' ';
            }
            break;
        }
    }
}

/* A server string as clamd.c and spamd.c take it (sockio.h); "" is allowed
 * where the option can be off (spamd_server). */
static int
config_validate_server(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    struct mq_sock_spec spec;
    GError *error = NULL;

    if (s != NULL && s[0] == '\0' && strcmp(cfg_opt_name(opt), "spamd_server") == 0)
        return 0;
    if (mq_sock_spec_parse(s, cfg_opt_name(opt), &spec, &error) == 0) {
        mq_sock_spec_clear(&spec);
        return 0;
    }
    cfg_error(cfg, "%s", error->message);
    g_error_free(error);
    return -1;
}

static int
config_validate_pattern(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *s = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    if (s == NULL || *s == '\0' || strlen(s) > 200) {
        cfg_error(cfg, "mass_mailer_patterns: empty or over-long pattern");
        return -1;
    }
    return 0;
}

static int
config_validate_policy(cfg_t *cfg, cfg_opt_t *opt)
{
    cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
    enum mq_direction d;
    if (sec == NULL || !mq_policy_direction_parse(cfg_title(sec), &d)) {
        cfg_error(cfg, "policy \"%s\": the direction must be inbound, outbound or internal",
                  sec && cfg_title(sec) ? cfg_title(sec) : "");
        return -1;
    }
    return 0;
}

/* libconfuse reports through a callback with no user data, so the first
 * message of the load in progress on this thread is kept here. */
static __thread GString *config_first_error;

static void config_error_cb(cfg_t *cfg, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
config_error_cb(cfg_t *cfg, const char *fmt, va_list ap)
{
    if (config_first_error == NULL || config_first_error->len > 0)
        return;
    if (cfg != NULL && cfg->filename != NULL && cfg->line > 0)
        g_string_append_printf(config_first_error, "%s:%d: ", cfg->filename, cfg->line);
    else if (cfg != NULL && cfg->filename != NULL)
        g_string_append_printf(config_first_error, "%s: ", cfg->filename);
    g_string_append_vprintf(config_first_error, fmt, ap);
}

static char *
config_dup_str(cfg_t *cfg, const char *name)
{
    return g_strdup(cfg_getstr(cfg, name));
}

/* A NULL-terminated copy of a list option, lower-cased if asked. */
static char **
config_dup_list(cfg_t *cfg, const char *name, bool lower)
{
    unsigned n = cfg_size(cfg, name);
    char **v = g_new0(char *, n + 1);

    for (unsigned i = 0; i < n; i++) {
        const char *s = cfg_getnstr(cfg, name, i);
        v[i] = lower ? g_ascii_strdown(s, -1) : g_strdup(s);
    }
    return v;
}

static uint64_t
config_get_size(cfg_t *cfg, const char *name)
{
    uint64_t v = 0;
    if (!config_parse_size(cfg_getstr(cfg, name), &v))
        mq_log_panic("config: %s passed validation but does not parse", name);
    return v;
}

/* Checks that involve several options; runs after the whole file parsed. */
static bool
config_check_cross(const struct mq_config *c, GString *why)
{
    const char *dirs[] = { c->incoming_queue_dir, c->outgoing_queue_dir,
                           c->quarantine_dir, c->hold_dir };
    for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
        for (size_t j = i + 1; j < G_N_ELEMENTS(dirs); j++) {
            if (strcmp(dirs[i], dirs[j]) == 0) {
                g_string_append_printf(why, "%s: the incoming queue, outgoing queue, quarantine "
                                       "and hold directories must all differ (\"%s\" is used twice)",
                                       c->file, dirs[i]);
                return false;
            }
        }
    }
    /* The whole message is scanned as one object: a smaller engine limit
     * would hold every message between the two sizes as unscannable. */
    if (c->clamav_max_file_size < c->max_message_size ||
        c->clamav_max_scan_size < c->max_message_size) {
        g_string_append_printf(why, "%s: clamav_max_file_size and clamav_max_scan_size must be at "
                               "least max_message_size", c->file);
        return false;
    }
    if (c->batch_max_bytes < c->max_message_size) {
        g_string_append_printf(why, "%s: batch_max_bytes must be at least max_message_size",
                               c->file);
        return false;
    }
    return true;
}

struct mq_config *
mq_config_load(const char *path, GError **err)
{
    struct mq_config *c = NULL;
    cfg_t *cfg;
    GString *why = g_string_new(NULL);
    GError *read_err = NULL;
    struct stat st;
    char *text = NULL;
    gsize text_len = 0;
    int rc, choice = 0;
    size_t n;

    cfg = cfg_init(config_opts, CFGF_NONE);
    cfg_set_error_function(cfg, config_error_cb);
    for (size_t i = 0; i < G_N_ELEMENTS(config_int_ranges); i++)
        cfg_set_validate_func(cfg, config_int_ranges[i].name, config_validate_int);
    for (size_t i = 0; i < G_N_ELEMENTS(config_size_ranges); i++)
        cfg_set_validate_func(cfg, config_size_ranges[i].name, config_validate_size);
    for (size_t i = 0; i < G_N_ELEMENTS(config_dir_opts); i++)
        cfg_set_validate_func(cfg, config_dir_opts[i], config_validate_dir);
    cfg_set_validate_func(cfg, "pid_file", config_validate_dir);
    cfg_set_validate_func(cfg, "internal_networks", config_validate_networks);
    cfg_set_validate_func(cfg, "local_domains", config_validate_domains);
    cfg_set_validate_func(cfg, "on_scan_error", config_validate_choice);
    cfg_set_validate_func(cfg, "log_level", config_validate_choice);
    cfg_set_validate_func(cfg, "postmaster", config_validate_text);
    cfg_set_validate_func(cfg, "hostname", config_validate_text);
    cfg_set_validate_func(cfg, "batch_max_wait", config_validate_wait);
    cfg_set_validate_func(cfg, "engine", config_validate_choice);
    cfg_set_validate_func(cfg, "queue_sync", config_validate_choice);
    cfg_set_validate_func(cfg, "language", config_validate_choice);
    cfg_set_validate_func(cfg, "spam_gateway_action", config_validate_choice);
    cfg_set_validate_func(cfg, "spam_null_sender", config_validate_choice);
    cfg_set_validate_func(cfg, "spam_subject_tag", config_validate_text);
    cfg_set_validate_func(cfg, "spam_rule_weights", config_validate_rule_weight);
    cfg_set_validate_func(cfg, "dnsbl_zones", config_validate_dnsbl_zone);
    cfg_set_validate_func(cfg, "dnsbl_server", config_validate_dns_server);
    cfg_set_validate_func(cfg, "spamd_server", config_validate_server);
    for (size_t i = 0; i < G_N_ELEMENTS(config_optional_path_opts); i++)
        cfg_set_validate_func(cfg, config_optional_path_opts[i], config_validate_optional_path);
    cfg_set_validate_func(cfg, "clamd_servers", config_validate_server);
    cfg_set_validate_func(cfg, "mass_mailer_patterns", config_validate_pattern);
    cfg_set_validate_func(cfg, "policy", config_validate_policy);
    for (size_t i = 0; i < MQ_FINDING_COUNT; i++) {
        char *name = g_strdup_printf("policy|%s", mq_policy_finding_name((enum mq_finding)i));
        cfg_set_validate_func(cfg, name, config_validate_choice);
        g_free(name);
    }

    /* libconfuse treats a missing file as "use the defaults"; for a daemon
     * that guards the mail flow a missing file is a mistake. */
    /* A directory passes access() and then makes libconfuse's flex scanner
     * exit(2) the whole process; a FIFO would block. */
    if (stat(path, &st) < 0 || access(path, R_OK) < 0) {
        g_string_printf(why, "%s: cannot read configuration: %s", path, g_strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        g_string_printf(why, "%s: cannot read configuration: not a regular file", path);
        goto fail;
    }
    if (!g_file_get_contents(path, &text, &text_len, &read_err)) {
        g_string_printf(why, "%s: cannot read configuration: %s", path, read_err->message);
        g_error_free(read_err);
        goto fail;
    }
    config_blank_comments(text, text_len);
    free(cfg->filename);                /* libconfuse's, freed with free() */
    cfg->filename = strdup(path);
    rc = CFG_SUCCESS;
    if (text_len > 0) {
        FILE *fp = fmemopen(text, text_len, "r");
        if (fp == NULL || cfg->filename == NULL) {
            g_string_printf(why, "%s: cannot read configuration: %s", path, g_strerror(errno));
            if (fp != NULL)
                fclose(fp);
            goto fail;
        }
        config_first_error = why;
        rc = cfg_parse_fp(cfg, fp);
        config_first_error = NULL;
        fclose(fp);
    }
    if (rc != CFG_SUCCESS) {
        if (why->len == 0)
            g_string_printf(why, "%s: %s", path,
                            rc == CFG_FILE_ERROR ? "cannot read configuration" : "parse error");
        goto fail;
    }

    c = g_new0(struct mq_config, 1);
    c->file = g_strdup(path);
    c->incoming_queue_dir = config_dup_str(cfg, "incoming_queue_dir");
    c->outgoing_queue_dir = config_dup_str(cfg, "outgoing_queue_dir");
    c->quarantine_dir = config_dup_str(cfg, "quarantine_dir");
    c->hold_dir = config_dup_str(cfg, "hold_dir");
    c->state_dir = config_dup_str(cfg, "state_dir");
    c->scan_tmp_dir = config_dup_str(cfg, "scan_tmp_dir");
    c->pid_file = config_dup_str(cfg, "pid_file");
    c->user = config_dup_str(cfg, "user");
    c->engine = strcmp(cfg_getstr(cfg, "engine"), "clamd") == 0 ? MQ_ENGINE_CLAMD
                                                                : MQ_ENGINE_LIBCLAMAV;
    c->clamd_servers = config_dup_list(cfg, "clamd_servers", false);
    c->clamd_timeout = (unsigned)cfg_getint(cfg, "clamd_timeout") * 1000;
    c->clamav_database_dir = config_dup_str(cfg, "clamav_database_dir");
    c->clamav_max_scan_size = config_get_size(cfg, "clamav_max_scan_size");
    c->clamav_max_file_size = config_get_size(cfg, "clamav_max_file_size");
    c->clamav_max_recursion = (unsigned)cfg_getint(cfg, "clamav_max_recursion");
    c->clamav_max_files = (unsigned)cfg_getint(cfg, "clamav_max_files");
    c->clamav_max_scan_time = (unsigned)cfg_getint(cfg, "clamav_max_scan_time");
    c->max_message_size = config_get_size(cfg, "max_message_size");
    c->max_mime_depth = (unsigned)cfg_getint(cfg, "max_mime_depth");
    c->max_mime_parts = (unsigned)cfg_getint(cfg, "max_mime_parts");
    c->filename_rules = config_dup_str(cfg, "filename_rules");
    c->filetype_rules = config_dup_str(cfg, "filetype_rules");
    c->template_dir = config_dup_str(cfg, "template_dir");
    c->language = config_dup_str(cfg, "language");
    c->mass_mailer_patterns = config_dup_list(cfg, "mass_mailer_patterns", true);
    memcpy(c->policy, config_default_policy, sizeof(c->policy));
    for (unsigned i = 0; i < cfg_size(cfg, "policy"); i++) {
        cfg_t *sec = cfg_getnsec(cfg, "policy", i);
        enum mq_direction d = MQ_DIRECTION_INBOUND;
        mq_policy_direction_parse(cfg_title(sec), &d);
        for (size_t f = 0; f < MQ_FINDING_COUNT; f++) {
            const char *name = mq_policy_finding_name((enum mq_finding)f);
            if (cfg_size(sec, name) > 0)
                mq_policy_action_parse(cfg_getstr(sec, name), &c->policy[d][f]);
        }
    }
    c->postmaster = config_dup_str(cfg, "postmaster");

    c->local_domains = config_dup_list(cfg, "local_domains", true);
    n = cfg_size(cfg, "internal_networks");
    c->n_internal_networks = n;
    c->internal_networks = g_new0(struct mq_config_network, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        const char *s = cfg_getnstr(cfg, "internal_networks", (unsigned)i);
        if (!mq_config_parse_network(s, &c->internal_networks[i])) {
            /* The default list is not validated by libconfuse. */
            g_string_printf(why, "%s: internal_networks: \"%s\" is not a network", path, s);
            goto fail;
        }
    }

    c->hostname = config_dup_str(cfg, "hostname");
    if (c->hostname[0] == '\0') {
        char host[256] = "";
        g_free(c->hostname);
        if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
            g_strlcpy(host, "localhost", sizeof(host));
        c->hostname = g_strdup(host);
    }
    c->batch_max_messages = (unsigned)cfg_getint(cfg, "batch_max_messages");
    c->batch_max_bytes = config_get_size(cfg, "batch_max_bytes");
    c->batch_max_wait_ms = (unsigned)(cfg_getfloat(cfg, "batch_max_wait") * 1000.0 + 0.5);
    c->workers = (unsigned)cfg_getint(cfg, "workers");
    c->queue_sync_fs = strcmp(cfg_getstr(cfg, "queue_sync"), "filesystem") == 0;
    c->rescan_interval = (unsigned)cfg_getint(cfg, "rescan_interval");
    c->retry_interval = (unsigned)cfg_getint(cfg, "retry_interval");
    c->max_attempts = (unsigned)cfg_getint(cfg, "max_attempts");
    c->message_time_limit = (unsigned)cfg_getint(cfg, "message_time_limit");
    c->spam_checks = cfg_getbool(cfg, "spam_checks");
    c->spam_store_threshold = (unsigned)cfg_getint(cfg, "spam_store_threshold");
    c->spam_gateway_threshold = (unsigned)cfg_getint(cfg, "spam_gateway_threshold");
    config_choice(config_spam_actions, G_N_ELEMENTS(config_spam_actions),
                  cfg_getstr(cfg, "spam_gateway_action"), &choice);
    c->spam_gateway_action = (enum mq_spam_action)choice;
    c->spam_subject_tag = config_dup_str(cfg, "spam_subject_tag");
    c->spam_words = config_dup_str(cfg, "spam_words");
    c->spam_rule_weights = config_dup_list(cfg, "spam_rule_weights", false);
    c->sender_allow = config_dup_str(cfg, "sender_allow");
    c->sender_block = config_dup_str(cfg, "sender_block");
    c->recipient_block = config_dup_str(cfg, "recipient_block");
    c->ip_allow = config_dup_str(cfg, "ip_allow");
    c->ip_block = config_dup_str(cfg, "ip_block");
    config_choice(config_null_senders, G_N_ELEMENTS(config_null_senders),
                  cfg_getstr(cfg, "spam_null_sender"), &choice);
    c->spam_null_sender = (enum mq_null_sender)choice;
    c->dnsbl_zones = config_dup_list(cfg, "dnsbl_zones", true);
    c->dnsbl_server = config_dup_str(cfg, "dnsbl_server");
    c->dnsbl_timeout = (unsigned)cfg_getint(cfg, "dnsbl_timeout");
    c->dnsbl_cache_ttl = (unsigned)cfg_getint(cfg, "dnsbl_cache_ttl");
    c->spf_check = cfg_getbool(cfg, "spf_check");
    c->spamd_server = config_dup_str(cfg, "spamd_server");
    c->spamd_timeout = (unsigned)cfg_getint(cfg, "spamd_timeout");
    c->spamd_max_size = config_get_size(cfg, "spamd_max_size");
    c->bayes_db = config_dup_str(cfg, "bayes_db");
    c->notify_postmaster = cfg_getbool(cfg, "notify_postmaster");
    c->notify_internal_senders = cfg_getbool(cfg, "notify_internal_senders");
    c->notify_external_senders = cfg_getbool(cfg, "notify_external_senders");
    c->check_heartbeat_max_age = (unsigned)cfg_getint(cfg, "check_heartbeat_max_age");
    c->check_queue_max_age = (unsigned)cfg_getint(cfg, "check_queue_max_age");
    c->check_signatures_max_age = (unsigned)cfg_getint(cfg, "check_signatures_max_age");
    c->check_hold_max = (unsigned)cfg_getint(cfg, "check_hold_max");
    c->check_alert_interval = (unsigned)cfg_getint(cfg, "check_alert_interval");
    c->on_scan_error = strcmp(cfg_getstr(cfg, "on_scan_error"), "hold") == 0
                       ? MQ_ON_ERROR_HOLD : MQ_ON_ERROR_DEFER;
    if (!mq_log_level_parse(cfg_getstr(cfg, "log_level"), &c->log_level))
        c->log_level = MQ_LOG_INFO;

    if (!config_check_cross(c, why))
        goto fail;

    cfg_free(cfg);
    g_free(text);
    g_string_free(why, TRUE);
    return c;

fail:
    g_set_error_literal(err, MQ_ERROR, MQ_ERROR_CONFIG, why->str);
    mq_config_free(&c);
    cfg_free(cfg);
    g_free(text);
    g_string_free(why, TRUE);
    return NULL;
}

void
mq_config_free(struct mq_config **config)
{
    struct mq_config *c = *config;

    if (c == NULL)
        return;
    g_free(c->file);
    g_free(c->incoming_queue_dir);
    g_free(c->outgoing_queue_dir);
    g_free(c->quarantine_dir);
    g_free(c->hold_dir);
    g_free(c->state_dir);
    g_free(c->scan_tmp_dir);
    g_free(c->pid_file);
    g_free(c->user);
    g_free(c->clamav_database_dir);
    g_strfreev(c->clamd_servers);
    g_free(c->filename_rules);
    g_free(c->filetype_rules);
    g_free(c->template_dir);
    g_free(c->language);
    g_strfreev(c->mass_mailer_patterns);
    g_free(c->spam_subject_tag);
    g_free(c->spam_words);
    g_strfreev(c->spam_rule_weights);
    g_free(c->sender_allow);
    g_free(c->sender_block);
    g_free(c->recipient_block);
    g_free(c->ip_allow);
    g_free(c->ip_block);
    g_strfreev(c->dnsbl_zones);
    g_free(c->dnsbl_server);
    g_free(c->spamd_server);
    g_free(c->bayes_db);
    g_free(c->postmaster);
    g_strfreev(c->local_domains);
    g_free(c->internal_networks);
    g_free(c->hostname);
    g_free(c);
    *config = NULL;
}

bool
mq_config_network_contains(const struct mq_config_network *net, int family, const void *addr)
{
    const uint8_t *a = addr;
    unsigned full = net->prefix / 8, rest = net->prefix % 8;

    if (net->family != family || memcmp(net->addr, a, full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ net->addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

bool
mq_config_is_internal(const struct mq_config *config, int family, const void *addr)
{
    for (size_t i = 0; i < config->n_internal_networks; i++)
        if (mq_config_network_contains(&config->internal_networks[i], family, addr))
            return true;
    return false;
}

bool
mq_config_is_local_domain(const struct mq_config *config, const char *domain)
{
    size_t dlen = strlen(domain);

    for (char **d = config->local_domains; *d != NULL; d++) {
        size_t n = strlen(*d);
        if (dlen == n && g_ascii_strcasecmp(domain, *d) == 0)
            return true;
        if (dlen > n && domain[dlen - n - 1] == '.' &&
            g_ascii_strcasecmp(domain + dlen - n, *d) == 0)
            return true;
    }
    return false;
}
