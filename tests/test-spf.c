/* test-spf - the parts of mqscan/spf.c that need no DNS: result names, the
 * header sanitizer, receiver validation, and checks that never reach
 * libspf2 (no sender and no HELO). Real SPF records are checked against
 * dnsmasq in netchecks.sh.
 */
#include <config.h>

#include <string.h>
#include <sys/socket.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/spf.h"

static void
test_names(void)
{
    g_assert_cmpstr(mq_spf_result_name(MQ_SPF_NONE), ==, "none");
    g_assert_cmpstr(mq_spf_result_name(MQ_SPF_NEUTRAL), ==, "neutral");
    g_assert_cmpstr(mq_spf_result_name(MQ_SPF_PASS), ==, "pass");
    g_assert_cmpstr(mq_spf_result_name(MQ_SPF_FAIL), ==, "fail");
    g_assert_cmpstr(mq_spf_result_name(MQ_SPF_SOFTFAIL), ==, "softfail");
    g_assert_cmpstr(mq_spf_result_name(MQ_SPF_TEMPERROR), ==, "temperror");
    g_assert_cmpstr(mq_spf_result_name(MQ_SPF_PERMERROR), ==, "permerror");
}

static const struct {
    const char *in, *want;
} values[] = {
    { "pass (x) client-ip=1.2.3.4;", "pass (x) client-ip=1.2.3.4;" },
    { "a\r\nX-Injected: 1", "a??X-Injected: 1" },
    { "tab\there", "tab?here" },
    { "del\x7f", "del?" },
    { "utf8 \xc3\xa9", "utf8 ??" },
    { "", "" },
};

static void
test_header_value(void)
{
    GString *big;
    char *v;

    for (size_t i = 0; i < G_N_ELEMENTS(values); i++) {
        v = mq_spf_header_value(values[i].in);
        g_assert_cmpstr(v, ==, values[i].want);
        g_free(v);
    }
    v = mq_spf_header_value(NULL);
    g_assert_cmpstr(v, ==, "");
    g_free(v);
    big = g_string_new(NULL);
    for (int i = 0; i < 5000; i++)
        g_string_append_c(big, i % 100 == 0 ? '\n' : 'a');
    v = mq_spf_header_value(big->str);
    g_assert_cmpuint(strlen(v), ==, MQ_SPF_HEADER_MAX);
    g_assert_null(strchr(v, '\n'));
    g_free(v);
    g_string_free(big, TRUE);
}

static void
test_receiver(void)
{
    static const char *const bad[] = { "", "-x", ".x", "a b", "a\nb", "a;b" };
    GError *err = NULL;
    struct mq_spf *spf;

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_null(mq_spf_new(bad[i], &err));
        g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
        g_clear_error(&err);
    }
    spf = mq_spf_new("mx.mqscan.test", &err);
    g_assert_no_error(err);
    mq_spf_free(&spf);
    g_assert_null(spf);
}

/* No sender and no HELO: nothing to check, "none", and no DNS at all. */
static void
test_nothing_to_check(void)
{
    uint8_t addr[16] = { 192, 0, 2, 1 };
    enum mq_spf_result result = MQ_SPF_PASS;
    GError *err = NULL;
    char *header = NULL;
    struct mq_spf *spf = mq_spf_new("mx.mqscan.test", &err);

    g_assert_no_error(err);
    g_assert_cmpint(mq_spf_check(spf, AF_INET, addr, "", "", &result, &header, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(result, ==, MQ_SPF_NONE);
    g_assert_true(g_str_has_prefix(header, "none (mx.mqscan.test: no sender and no HELO) "
                                           "client-ip=192.0.2.1;"));
    g_free(header);
    mq_spf_free(&spf);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/spf/names", test_names);
    g_test_add_func("/spf/header-value", test_header_value);
    g_test_add_func("/spf/receiver", test_receiver);
    g_test_add_func("/spf/nothing-to-check", test_nothing_to_check);
    return g_test_run();
}
