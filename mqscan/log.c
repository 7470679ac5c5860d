#include <config.h>

#include <paths.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/log.h"

static unsigned log_sinks = MQ_LOG_SINK_STDERR;
static enum mq_log_level log_min = MQ_LOG_INFO;
static char log_ident[64] = "mqscan";
static GMutex log_lock;

void
mq_log_open(const char *ident, unsigned sinks)
{
    g_mutex_lock(&log_lock);
    g_strlcpy(log_ident, ident, sizeof(log_ident));
    if (log_sinks & MQ_LOG_SINK_SYSLOG)
        closelog();
    log_sinks = sinks;
    if (sinks & MQ_LOG_SINK_SYSLOG)
        openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
    g_mutex_unlock(&log_lock);
}

void
mq_log_set_level(enum mq_log_level level)
{
    log_min = level;
}

bool
mq_log_level_parse(const char *name, enum mq_log_level *level_r)
{
    static const struct { const char *name; enum mq_log_level level; } table[] = {
        { "debug", MQ_LOG_DEBUG }, { "info", MQ_LOG_INFO },
        { "warning", MQ_LOG_WARN }, { "error", MQ_LOG_ERROR },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
        if (strcmp(name, table[i].name) == 0) {
            *level_r = table[i].level;
            return true;
        }
    }
    return false;
}

/*
 * Whether a syslog daemon can be there: glibc's syslog() opens a socket and
 * tries to connect to /dev/log again on every call while it cannot, which
 * on a machine without a syslog daemon is two system calls a line, under
 * log_lock, from every worker. So the socket's existence is checked instead,
 * at most once a second (a daemon started later is still found). Called
 * with log_lock held.
 */
static bool
log_syslog_reachable(void)
{
    static gint64 checked_us;
    static bool checked, present;
    gint64 now = g_get_monotonic_time();

    if (!checked || now - checked_us >= G_USEC_PER_SEC) {
        checked = true;
        present = access(_PATH_LOG, F_OK) == 0;
        checked_us = now;
    }
    return present;
}

static void log_vemit(enum mq_log_level level, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
log_vemit(enum mq_log_level level, const char *prefix, const char *fmt, va_list ap)
{
    static const int priorities[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
    static const char *const names[] = { "debug", "info", "warning", "error" };
    char line[2048];

    if (level < log_min)
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    g_mutex_lock(&log_lock);
    if ((log_sinks & MQ_LOG_SINK_SYSLOG) && log_syslog_reachable())
        syslog(priorities[level], "%s%s", prefix, line);
    if (log_sinks & MQ_LOG_SINK_STDERR)
        fprintf(stderr, "%s: %s: %s%s\n", log_ident, names[level], prefix, line);
    g_mutex_unlock(&log_lock);
}

#define LOG_FUNC(fn, level)                      \
    void fn(const char *fmt, ...)                \
    {                                            \
        va_list ap;                              \
        va_start(ap, fmt);                       \
        log_vemit(level, "", fmt, ap);           \
        va_end(ap);                              \
    }

LOG_FUNC(mq_log_debug, MQ_LOG_DEBUG)
LOG_FUNC(mq_log_info, MQ_LOG_INFO)
LOG_FUNC(mq_log_warn, MQ_LOG_WARN)
LOG_FUNC(mq_log_error, MQ_LOG_ERROR)

void
mq_log_fatal(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vemit(MQ_LOG_ERROR, "fatal: ", fmt, ap);
    va_end(ap);
    exit(status);
}

void
mq_log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vemit(MQ_LOG_ERROR, "panic: ", fmt, ap);
    va_end(ap);
    abort();
}

char *
mq_log_sanitize(const char *s, size_t max_len)
{
    GString *out;
    const char *p, *end;
    size_t keep = 0;    /* longest output, at a character boundary, that leaves room for "..." */

    if (s == NULL)
        return g_strdup("(null)");
    if (max_len < 4)
        max_len = 4;
    out = g_string_sized_new(MIN(strlen(s), max_len) + 1);
    p = s;
    end = s + strlen(s);
    while (p < end) {
        gunichar c = g_utf8_get_char_validated(p, end - p);
        size_t clen;
        if (c == (gunichar)-1 || c == (gunichar)-2) {
            c = '?';
            clen = 1;
        } else {
            clen = g_utf8_next_char(p) - p;
        }
        /* Control characters, and the invisible ones that reorder or break
         * text (bidi overrides and isolates, line and paragraph separators):
         * "invoice\u202Efdp.exe" must not read as "invoiceexe.pdf". */
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) ||
            (c >= 0x200e && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) ||
            (c >= 0x2066 && c <= 0x2069)) {
            c = '?';
        }
        if (out->len <= max_len - 3)
            keep = out->len;
        if (out->len + (c == '?' ? 1 : clen) > max_len) {
            g_string_truncate(out, keep);
            g_string_append(out, "...");
            break;
        }
        if (c == '?')
            g_string_append_c(out, '?');
        else
            g_string_append_len(out, p, clen);
        p += clen;
    }
    return g_string_free(out, FALSE);
}
