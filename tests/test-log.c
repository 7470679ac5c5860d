/* test-log - the sanitizer for attacker text, level parsing, and what the
 * log functions write to stderr (checked in subprocesses).
 *
 * Tests whose path contains "/bug/" document a bug found while writing them;
 * they fail until the fix proposed next to them is applied.
 */
#include <config.h>

#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "mqscan/log.h"

static const struct sanitize_case {
    const char *in;
    size_t max;
    const char *want;
} sanitize_cases[] = {
    { "", 200, "" },
    { "hello", 200, "hello" },
    { "Subject: hi there", MQ_LOG_FIELD_MAX, "Subject: hi there" },
    /* control characters, CR and LF (log injection), DEL */
    { "a\rb\nc", 200, "a?b?c" },
    { "line1\r\nfake: 6AO3fFCt012659: delivered", 200, "line1??fake: 6AO3fFCt012659: delivered" },
    { "\t", 200, "?" },
    { "\x01\x02\x1b[31m\x1f", 200, "???[31m?" },
    { "del\x7f", 200, "del?" },
    /* C1 controls (U+0080..U+009F, two bytes each) become one '?' */
    { "\xc2\x80x\xc2\x9f", 200, "?x?" },
    { "\xc2\x9b" "31m", 200, "?31m" },                  /* CSI */
    { "\xc2\xa0", 200, "\xc2\xa0" },                    /* U+00A0 is printable */
    /* invalid UTF-8: every bad byte becomes '?' */
    { "\xff", 200, "?" },
    { "a\xfe" "b", 200, "a?b" },
    { "\xc3", 200, "?" },                               /* truncated sequence */
    { "\xc3(", 200, "?(" },
    { "\xe2\x82", 200, "??" },
    { "\xc0\xaf", 200, "??" },                          /* overlong '/' */
    { "\xed\xa0\x80", 200, "???" },                     /* surrogate */
    { "\xf4\x90\x80\x80", 200, "????" },                /* above U+10FFFF */
    { "\x80\x81\x82", 200, "???" },                     /* lone continuation bytes */
    { "caf\xe9", 200, "caf?" },                         /* Latin-1 */
    /* valid multibyte text is kept */
    { "caf\xc3\xa9", 200, "caf\xc3\xa9" },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 200, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
    { "\xf0\x9f\x98\x80 ok", 200, "\xf0\x9f\x98\x80 ok" },
    /* cuts: marked with "...", within max_len, never inside a character */
    { "abcdefghij", 8, "abcde..." },
    { "abcdefghijklmnop", 10, "abcdefg..." },
    { "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8, "\xc3\xa9\xc3\xa9..." },
    { "a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 7, "a\xc3\xa9..." },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe6\x97\xa5", 10, "\xe6\x97\xa5\xe6\x9c\xac..." },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe6\x97\xa5", 8, "\xe6\x97\xa5..." },
    { "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 10, "\xf0\x9f\x98\x80..." },
    { "\n\n\n\n\n\n\n\n\n\n", 8, "?????..." },
    { "\xc2\x80\xc2\x80\xc2\x80\xc2\x80\xc2\x80\xc2\x80\xc2\x80\xc2\x80\xc2\x80", 8, "?????..." },
};

static void
test_sanitize(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(sanitize_cases); i++) {
        const struct sanitize_case *c = &sanitize_cases[i];
        char *got = mq_log_sanitize(c->in, c->max);
        char *esc_in = g_strescape(c->in, NULL);

        g_test_message("\"%s\" max %zu", esc_in, c->max);
        g_assert_cmpstr(got, ==, c->want);
        g_assert_true(g_utf8_validate(got, -1, NULL));
        g_assert_cmpuint(strlen(got), <=, c->max);
        g_free(esc_in);
        g_free(got);
    }
}

static void
test_sanitize_null(void)
{
    char *got = mq_log_sanitize(NULL, 200);

    g_assert_cmpstr(got, ==, "(null)");
    g_free(got);
}

/* Whatever the input and max_len (4 and up): the result is valid UTF-8,
 * printable, within max_len, and either the whole (clean) input or a prefix
 * of it at a character boundary followed by "...". */
static void
test_sanitize_property(void)
{
    static const char *const inputs[] = {
        "plain ascii text that is rather long for a log field",
        "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80\xf0\x9f\x98\x80 fin",
        "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
    };

    for (size_t k = 0; k < G_N_ELEMENTS(inputs); k++) {
        const char *in = inputs[k];
        size_t len = strlen(in);

        for (size_t max = 4; max < len + 4; max++) {
            char *got = mq_log_sanitize(in, max);
            size_t n = strlen(got);

            g_assert_true(g_utf8_validate(got, -1, NULL));
            g_assert_cmpuint(n, <=, max);
            if (strcmp(got, in) != 0) {
                const char *end;
                g_assert_true(g_str_has_suffix(got, "..."));
                g_assert_cmpmem(got, n - 3, in, n - 3);
                /* the kept prefix ends at a character boundary of the input */
                g_assert_true(g_utf8_validate(in, (gssize)(n - 3), &end));
                g_assert_true(end == in + n - 3);
                /* and nothing longer would have fitted */
                g_assert_cmpuint(n - 3 + (size_t)(g_utf8_next_char(in + n - 3) - (in + n - 3)), >, max - 3);
            }
            g_free(got);
        }
    }
}

/* BUG: text that fits in max_len is cut anyway when it is within 3 bytes of
 * it ("abcdef" with max_len 6 gives "abc..."): the check for room for "..."
 * is made for every character, not only when the text does not fit. Up to
 * three bytes of every field that is exactly MQ_LOG_FIELD_MAX long are lost
 * for nothing. Proposed fix in mq_log_sanitize(), mqscan/log.c: remember
 * the last character boundary that leaves room for "..." and cut there only
 * once the output would exceed max_len:
 *
 *     size_t keep = 0;    (before the loop)
 *     ...
 *         if (out->len <= max_len - 3)
 *             keep = out->len;
 *         if (out->len + (c == '?' ? 1 : clen) > max_len) {
 *             g_string_truncate(out, keep);
 *             g_string_append(out, "...");
 *             break;
 *         }
 *
 * replacing the "out->len + ... > max_len - 3" test. */
static void
test_bug_sanitize_fits(void)
{
    static const struct sanitize_case cases[] = {
        { "abcdef", 6, "abcdef" },
        { "abcdefghij", 10, "abcdefghij" },
        { "abcdefghi", 10, "abcdefghi" },
        { "abcdefgh", 10, "abcdefgh" },
        { "\xc3\xa9\xc3\xa9\xc3\xa9", 6, "\xc3\xa9\xc3\xa9\xc3\xa9" },
        { "a\nb\nc\n", 6, "a?b?c?" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *got = mq_log_sanitize(cases[i].in, cases[i].max);
        g_test_message("\"%s\" max %zu", cases[i].want, cases[i].max);
        g_assert_cmpstr(got, ==, cases[i].want);
        g_free(got);
    }
    /* the same through the property: any clean input that fits is kept */
    for (size_t max = 4; max < 40; max++) {
        const char *in = "0123456789012345678901234567890123456789";
        char *prefix = g_strndup(in, max);
        char *got = mq_log_sanitize(prefix, max);
        g_assert_cmpstr(got, ==, prefix);
        g_free(got);
        g_free(prefix);
    }
}

static void
test_level_parse(void)
{
    static const struct {
        const char *name;
        bool ok;
        enum mq_log_level level;
    } cases[] = {
        { "debug", true, MQ_LOG_DEBUG },
        { "info", true, MQ_LOG_INFO },
        { "warning", true, MQ_LOG_WARN },
        { "error", true, MQ_LOG_ERROR },
        { "warn", false, 0 },
        { "DEBUG", false, 0 },
        { "Info", false, 0 },
        { "loud", false, 0 },
        { "", false, 0 },
        { "error ", false, 0 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        enum mq_log_level level = 99;
        g_assert_cmpint(mq_log_level_parse(cases[i].name, &level), ==, cases[i].ok);
        if (cases[i].ok)
            g_assert_cmpint(level, ==, cases[i].level);
    }
}

/* ---- output, in subprocesses ------------------------------------------------ */

static void
test_output_levels(void)
{
    if (g_test_subprocess()) {
        mq_log_open("mqtest", MQ_LOG_SINK_STDERR);
        mq_log_set_level(MQ_LOG_WARN);
        mq_log_debug("hidden %d", 1);
        mq_log_info("hidden %d", 2);
        mq_log_warn("%s: shown %d", "6AO3fFCt012659", 3);
        mq_log_error("shown %d", 4);
        mq_log_set_level(MQ_LOG_DEBUG);
        mq_log_debug("shown %d", 5);
        mq_log_open("mqtest", 0);           /* no sink at all */
        mq_log_error("hidden %d", 6);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("mqtest: warning: 6AO3fFCt012659: shown 3\n"
                              "mqtest: error: shown 4\n"
                              "mqtest: debug: shown 5\n");
    g_test_trap_assert_stderr_unmatched("*hidden*");
}

static void
test_output_long_line(void)
{
    if (g_test_subprocess()) {
        char *big = g_malloc(10000);
        memset(big, 'x', 9999);
        big[9999] = '\0';
        mq_log_open("mqtest", MQ_LOG_SINK_STDERR);
        mq_log_error("%s", big);            /* cut, not overflowing */
        mq_log_error("after");
        g_free(big);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("mqtest: error: xxxx*xxx\nmqtest: error: after\n");
}

static void
test_panic(void)
{
    if (g_test_subprocess()) {
        mq_log_open("mqtest", MQ_LOG_SINK_STDERR);
        mq_log_set_level(MQ_LOG_ERROR);     /* a panic is logged at any level */
        mq_log_panic("broken invariant %d", 42);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("mqtest: error: panic: broken invariant 42\n");
}

static void
test_fatal(void)
{
    if (g_test_subprocess()) {
        mq_log_open("mqtest", MQ_LOG_SINK_STDERR);
        mq_log_fatal(78, "bad config %s", "x.conf");
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("mqtest: error: fatal: bad config x.conf\n");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/log/sanitize/table", test_sanitize);
    g_test_add_func("/log/sanitize/null", test_sanitize_null);
    g_test_add_func("/log/sanitize/property", test_sanitize_property);
    g_test_add_func("/log/level-parse", test_level_parse);
    g_test_add_func("/log/output/levels", test_output_levels);
    g_test_add_func("/log/output/long-line", test_output_long_line);
    g_test_add_func("/log/output/panic", test_panic);
    g_test_add_func("/log/output/fatal", test_fatal);
    /* Known bugs last, so that a failure does not hide the other results. */
    g_test_add_func("/log/bug/sanitize-cuts-text-that-fits", test_bug_sanitize_fits);
    return g_test_run();
}
