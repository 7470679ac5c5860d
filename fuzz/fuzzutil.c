#include <config.h>

#include <string.h>

#include <glib.h>

#include "mqscan/log.h"

#include "fuzz.h"

void
fuzz_init(void)
{
    /* Hostile input makes the library log at info and warning level on
     * every other run; only what ends a run is worth printing. */
    mq_log_set_level(MQ_LOG_ERROR);
}

void
fuzz_check_shown(const char *what, const char *s, size_t max)
{
    const char *p;

    if (s == NULL)
        mq_log_panic("%s: NULL", what);
    if (strlen(s) > max)
        mq_log_panic("%s: %zu bytes, more than %zu", what, strlen(s), max);
    if (!g_utf8_validate(s, -1, NULL))
        mq_log_panic("%s: not valid UTF-8", what);
    for (p = s; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);

        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)
            || (c >= 0x200e && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e)
            || (c >= 0x2066 && c <= 0x2069))
            mq_log_panic("%s: character U+%04X left in shown text", what, (unsigned)c);
    }
}
