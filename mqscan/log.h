/* log - levelled logging to syslog (mail facility) and/or stderr.
 *
 * Public functions: mq_log_open(), mq_log_set_level(), mq_log_debug/info/
 * warn/error(), mq_log_fatal(), mq_log_panic(), mq_log_sanitize().
 *
 * Every line about a message starts with its queue ID ("6AO3UQJ2003494: ...").
 * Text that comes from a message (subjects, file names, addresses, virus
 * names) goes through mq_log_sanitize() before it is logged.
 *
 * DIAGNOSTICS
 * mq_log_fatal() logs and exits with the given sysexits code; mq_log_panic()
 * logs and aborts. Nothing here returns an error.
 */
#ifndef MQSCAN_LOG_H
#define MQSCAN_LOG_H

#include <stddef.h>
#include <stdbool.h>

enum mq_log_level {
    MQ_LOG_DEBUG,
    MQ_LOG_INFO,
    MQ_LOG_WARN,
    MQ_LOG_ERROR,
};

enum mq_log_sink {
    MQ_LOG_SINK_SYSLOG = 1 << 0,
    MQ_LOG_SINK_STDERR = 1 << 1,
};

/* Sets the program name and where lines go (a mask of mq_log_sink).
 * Syslog uses LOG_MAIL and LOG_PID. May be called again to change sinks. */
void mq_log_open(const char *ident, unsigned sinks);
void mq_log_set_level(enum mq_log_level level);
/* Parses "debug", "info", "warning", "error"; returns false if unknown. */
bool mq_log_level_parse(const char *name, enum mq_log_level *level_r);

void mq_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mq_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mq_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mq_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs at error level, then exit(status). */
void mq_log_fatal(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* Logs "panic: ..." at error level, then abort(). For programmer errors. */
void mq_log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Returns a printable copy of untrusted text: bytes below 0x20, 0x7f and
 * invalid UTF-8 become '?', and the result is cut to max_len bytes (a
 * cut is marked with "..."). s may be NULL ("(null)"). Caller frees with
 * g_free(). */
char *mq_log_sanitize(const char *s, size_t max_len);

/* Default cap for attacker text in log lines. */
#define MQ_LOG_FIELD_MAX 200

#endif
