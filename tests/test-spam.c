/* test-spam - mqscan/lists.c, mqscan/heuristics.c and mqscan/spam.c: list
 * files with expiry, the header/HTML/word rules on hand-written messages
 * (each rule shown to fire and not to fire), bounds on hostile input, and
 * the list decisions of mq_spam_check(). Messages are parsed by real GMime.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gmime/gmime.h>

#include "mqscan/config.h"
#include "mqscan/error.h"
#include "mqscan/heuristics.h"
#include "mqscan/lists.h"
#include "mqscan/log.h"
#include "mqscan/spam.h"

#include "testutil.h"

static char *tmpdir;

static char *
write_file(const char *name, const char *text)
{
    char *path = g_build_filename(tmpdir, name, NULL);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

static GMimeMessage *
parse(const char *text)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(text, strlen(text));
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    g_assert_nonnull(msg);
    return msg;
}

/* ---- lists ------------------------------------------------------------- */

static void
test_list_addresses(void)
{
    char *path = write_file("senders", "# comment\n"
                                       "Friend@Example.COM\n"
                                       "partner.example   # a domain\n"
                                       "*.corp.example\n"
                                       "@other.example\n"
                                       "news-*@lists.example\n"
                                       "<>\n"
                                       "old.example until 2001-01-01\n"
                                       "future.example until 2999-12-31\n");
    GError *error = NULL;
    struct mq_list *l = mq_list_load(path, MQ_LIST_ADDRESSES, &error);
    const char *entry = NULL;
    time_t now = time(NULL);

    g_assert_no_error(error);
    g_assert_cmpuint(mq_list_size(l), ==, 8);
    g_assert_true(mq_list_match_address(l, "friend@example.com", now, &entry));
    g_assert_cmpstr(entry, ==, "Friend@Example.COM");
    g_assert_false(mq_list_match_address(l, "enemy@example.com", now, NULL));
    g_assert_true(mq_list_match_address(l, "anyone@PARTNER.example", now, NULL));
    g_assert_false(mq_list_match_address(l, "anyone@sub.partner.example", now, NULL));
    g_assert_true(mq_list_match_address(l, "a@mail.corp.example", now, NULL));
    g_assert_false(mq_list_match_address(l, "a@corp.example", now, NULL));
    g_assert_false(mq_list_match_address(l, "a@notcorp.example", now, NULL));
    g_assert_true(mq_list_match_address(l, "x@other.example", now, NULL));
    g_assert_true(mq_list_match_address(l, "news-weekly@lists.example", now, NULL));
    g_assert_false(mq_list_match_address(l, "admin@lists.example", now, NULL));
    g_assert_true(mq_list_match_address(l, "", now, &entry));
    g_assert_cmpstr(entry, ==, "<>");
    /* expiry: a past date no longer matches, a future one does */
    g_assert_false(mq_list_match_address(l, "a@old.example", now, NULL));
    g_assert_true(mq_list_match_address(l, "a@old.example", 946684800 /* 2000-01-01 */, NULL));
    g_assert_true(mq_list_match_address(l, "a@future.example", now, NULL));
    mq_list_free(&l);
    g_assert_null(l);
    g_free(path);
}

static void
test_list_networks(void)
{
    char *path = write_file("ips", "192.0.2.0/24\n2001:db8::/32\n198.51.100.7\n"
                                   "203.0.113.0/24 until 2001-01-01\n");
    GError *error = NULL;
    struct mq_list *l = mq_list_load(path, MQ_LIST_NETWORKS, &error);
    uint8_t a[16] = { 0 };
    time_t now = time(NULL);

    g_assert_no_error(error);
    inet_pton(AF_INET, "192.0.2.200", a);
    g_assert_true(mq_list_match_ip(l, AF_INET, a, now, NULL));
    inet_pton(AF_INET, "192.0.3.1", a);
    g_assert_false(mq_list_match_ip(l, AF_INET, a, now, NULL));
    inet_pton(AF_INET, "198.51.100.7", a);
    g_assert_true(mq_list_match_ip(l, AF_INET, a, now, NULL));
    inet_pton(AF_INET, "198.51.100.8", a);
    g_assert_false(mq_list_match_ip(l, AF_INET, a, now, NULL));
    inet_pton(AF_INET, "203.0.113.9", a);
    g_assert_false(mq_list_match_ip(l, AF_INET, a, now, NULL));
    inet_pton(AF_INET6, "2001:db8:1::5", a);
    g_assert_true(mq_list_match_ip(l, AF_INET6, a, now, NULL));
    inet_pton(AF_INET6, "2001:db9::5", a);
    g_assert_false(mq_list_match_ip(l, AF_INET6, a, now, NULL));
    mq_list_free(&l);
    g_free(path);
}

static void
test_list_errors(void)
{
    static const struct {
        const char *text;
        enum mq_list_kind kind;
        const char *want;
    } cases[] = {
        { "ok.example\nbad entry here\n", MQ_LIST_ADDRESSES, ":2: expected ENTRY" },
        { "a@b.example until 2026-13-45\n", MQ_LIST_ADDRESSES, ":1: the date" },
        { "\"quoted\"@x.example\n", MQ_LIST_ADDRESSES, ":1: not an address" },
        { "10.0.0.0/33\n", MQ_LIST_NETWORKS, ":1: not an address or CIDR" },
        { "example.com\n", MQ_LIST_NETWORKS, ":1: not an address or CIDR" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *path = write_file("bad", cases[i].text);
        GError *error = NULL;
        struct mq_list *l = mq_list_load(path, cases[i].kind, &error);
        g_assert_null(l);
        g_assert_error(error, MQ_ERROR, MQ_ERROR_CONFIG);
        g_assert_nonnull(strstr(error->message, cases[i].want));
        g_error_free(error);
        g_free(path);
    }
    /* a missing file is an empty list; so is "" */
    {
        GError *error = NULL;
        char *missing = g_build_filename(tmpdir, "nothing-here", NULL);
        struct mq_list *l = mq_list_load(missing, MQ_LIST_ADDRESSES, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(mq_list_size(l), ==, 0);
        g_assert_false(mq_list_match_address(l, "a@b.example", time(NULL), NULL));
        mq_list_free(&l);
        l = mq_list_load("", MQ_LIST_NETWORKS, &error);
        g_assert_no_error(error);
        mq_list_free(&l);
        g_free(missing);
    }
}

/* ---- heuristics ---------------------------------------------------------- */

static bool
has_rule(GPtrArray *hits, const char *rule)
{
    for (guint i = 0; i < hits->len; i++)
        if (strcmp(((struct mq_spam_hit *)g_ptr_array_index(hits, i))->rule, rule) == 0)
            return true;
    return false;
}

static GPtrArray *
run(struct mq_heuristics *h, const char *text, const char *sender, double *total_r)
{
    GMimeMessage *msg = parse(text);
    GPtrArray *hits = g_ptr_array_new_with_free_func(mq_spam_hit_free);
    struct mq_heuristics_env env = { sender, false, 0 };
    double total = mq_heuristics_run(h, msg, &env, hits), sum = 0;

    for (guint i = 0; i < hits->len; i++)
        sum += ((struct mq_spam_hit *)g_ptr_array_index(hits, i))->weight;
    g_assert_cmpfloat(fabs(total - sum), <, 1e-9);
    if (total_r != NULL)
        *total_r = total;
    g_object_unref(msg);
    return hits;
}

#define GOOD_HEADERS                                                                  \
    "Received: from mx.example.org (mx.example.org [192.0.2.1]) by gw.example.net;"   \
    " Tue, 24 Nov 2026 10:00:05 +0000\n"                                              \
    "Date: Tue, 24 Nov 2026 10:00:00 +0000\n"                                         \
    "Message-ID: <abc.123@example.org>\n"                                             \
    "From: Alice <alice@example.org>\n"                                               \
    "To: bob@example.net\n"

static void
test_heuristics_clean(void)
{
    GError *error = NULL;
    struct mq_heuristics *h = mq_heuristics_new(NULL, NULL, &error);
    double total;
    GPtrArray *hits = run(h, GOOD_HEADERS "Subject: lunch on friday\n\nSee you there.\n",
                          "alice@example.org", &total);
    g_assert_no_error(error);
    g_assert_cmpuint(hits->len, ==, 0);
    g_assert_cmpfloat(total, ==, 0);
    g_ptr_array_unref(hits);
    mq_heuristics_free(&h);
}

static void
test_heuristics_headers(void)
{
    struct mq_heuristics *h = mq_heuristics_new(NULL, NULL, NULL);
    GPtrArray *hits;

    hits = run(h, "From: x@example.org\nSubject: FREE MONEY FOR EVERYONE\nTo: undisclosed-recipients:;\n\nhi\n",
               "bounce@other.example", NULL);
    g_assert_true(has_rule(hits, "MISSING_DATE"));
    g_assert_true(has_rule(hits, "MISSING_MESSAGE_ID"));
    g_assert_true(has_rule(hits, "SUBJECT_ALL_CAPS"));
    g_assert_true(has_rule(hits, "TO_UNDISCLOSED"));
    g_assert_true(has_rule(hits, "FROM_ENVELOPE_MISMATCH"));
    g_ptr_array_unref(hits);

    hits = run(h, "Date: yesterday-ish\nMessage-ID: no-at-sign\nSubject:\nTo: a@b.example\n\nhi\n", "", NULL);
    g_assert_true(has_rule(hits, "BAD_DATE"));
    g_assert_true(has_rule(hits, "BAD_MESSAGE_ID"));
    g_assert_true(has_rule(hits, "MISSING_FROM"));
    g_assert_true(has_rule(hits, "EMPTY_SUBJECT"));
    g_assert_false(has_rule(hits, "FROM_ENVELOPE_MISMATCH"));
    g_ptr_array_unref(hits);

    /* A subdomain of the same base domain is not a mismatch. */
    hits = run(h, GOOD_HEADERS "Subject: ok\n\nhi\n", "bounces@lists.example.org", NULL);
    g_assert_false(has_rule(hits, "FROM_ENVELOPE_MISMATCH"));
    g_ptr_array_unref(hits);

    /* Received: impossible IP, a hop dated after the one above it, Date far ahead. */
    hits = run(h,
               "Received: from a (a [192.0.2.1]) by b; Tue, 24 Nov 2026 10:00:00 +0000\n"
               "Received: from c (c [300.1.2.3]) by a; Wed, 25 Nov 2026 10:00:00 +0000\n"
               "Date: Mon, 30 Nov 2026 10:00:00 +0000\n"
               "Message-ID: <a@b.example>\nFrom: a@b.example\nTo: c@d.example\nSubject: hello\n\nhi\n",
               "a@b.example", NULL);
    g_assert_true(has_rule(hits, "RECEIVED_BAD_IP"));
    g_assert_true(has_rule(hits, "RECEIVED_TIME_TRAVEL"));
    g_assert_true(has_rule(hits, "DATE_IN_FUTURE"));
    g_ptr_array_unref(hits);

    /* many recipients */
    {
        GString *m = g_string_new(GOOD_HEADERS "Subject: hi\nCc: ");
        for (int i = 0; i < 20; i++)
            g_string_append_printf(m, "%su%d@example.net", i ? ", " : "", i);
        g_string_append(m, "\n\nhi\n");
        hits = run(h, m->str, "alice@example.org", NULL);
        g_assert_true(has_rule(hits, "MANY_RECIPIENTS"));
        g_ptr_array_unref(hits);
        g_string_free(m, TRUE);
    }
    mq_heuristics_free(&h);
}

static void
test_heuristics_html(void)
{
    struct mq_heuristics *h = mq_heuristics_new(NULL, NULL, NULL);
    GPtrArray *hits;

    hits = run(h, GOOD_HEADERS "Subject: your account\nMIME-Version: 1.0\n"
                  "Content-Type: text/html; charset=us-ascii\n\n"
                  "<html><body><p>Please log in at "
                  "<a href=\"http://evil.example.com/login\">https://www.mybank.example/login</a>"
                  "<a href='http://192.0.2.55/x'>here</a>"
                  "<font color=\"#ffffff\">lorem ipsum filler</font></body></html>\n",
               "alice@example.org", NULL);
    g_assert_true(has_rule(hits, "HTML_ONLY"));
    g_assert_true(has_rule(hits, "HTML_PHISH_LINK"));
    g_assert_true(has_rule(hits, "URL_RAW_IP"));
    g_assert_true(has_rule(hits, "HTML_INVISIBLE_TEXT"));
    g_ptr_array_unref(hits);

    /* The same link text and target host, with a text alternative: nothing. */
    hits = run(h, GOOD_HEADERS "Subject: newsletter\nMIME-Version: 1.0\n"
                  "Content-Type: multipart/alternative; boundary=\"b\"\n\n"
                  "--b\nContent-Type: text/plain\n\nsee www.example.org\n"
                  "--b\nContent-Type: text/html\n\n"
                  "<a href=\"https://news.example.org/a?b=c\">www.example.org</a>\n--b--\n",
               "alice@example.org", NULL);
    g_assert_false(has_rule(hits, "HTML_ONLY"));
    g_assert_false(has_rule(hits, "HTML_PHISH_LINK"));
    g_assert_false(has_rule(hits, "URL_RAW_IP"));
    g_ptr_array_unref(hits);

    /* base64 text in a CJK charset */
    hits = run(h, GOOD_HEADERS "Subject: hi\nMIME-Version: 1.0\n"
                  "Content-Type: text/plain; charset=gb2312\nContent-Transfer-Encoding: base64\n\n"
                  "aGVsbG8gd29ybGQ=\n",
               "alice@example.org", NULL);
    g_assert_true(has_rule(hits, "TEXT_BASE64"));
    g_assert_true(has_rule(hits, "CHARSET_FAREAST"));
    g_ptr_array_unref(hits);
    mq_heuristics_free(&h);
}

static void
test_heuristics_words(void)
{
    char *words = write_file("words", "# site words\n"
                                      "2.0 body work from home\n"
                                      "1.5 subject free\n"
                                      "-1.0 any mqscan\n"
                                      "0.5 any last chance\n");
    char *bad = write_file("badwords", "2.0 nowhere foo\n");
    const char *overrides[] = { "HTML_ONLY=4.5", NULL };
    const char *unknown[] = { "NO_SUCH_RULE=1", NULL };
    GError *error = NULL;
    struct mq_heuristics *h = mq_heuristics_new(words, overrides, &error);
    GPtrArray *hits;
    double total;

    g_assert_no_error(error);
    g_assert_cmpfloat(mq_heuristics_weight(h, "HTML_ONLY", NULL), ==, 4.5);
    hits = run(h, GOOD_HEADERS "Subject: Free offer, free!\n\n"
                  "WORK from-home, work   from home. About mqscan. freedom\n",
               "alice@example.org", &total);
    g_assert_true(has_rule(hits, "WORD_BODY_work_from_home"));
    g_assert_true(has_rule(hits, "WORD_SUBJECT_free"));
    g_assert_true(has_rule(hits, "WORD_mqscan"));
    /* each line once: 2.0 + 1.5 - 1.0 */
    g_assert_cmpfloat(fabs(total - 2.5), <, 1e-9);
    g_ptr_array_unref(hits);
    /* a phrase of several words is case-blind in the subject too */
    hits = run(h, GOOD_HEADERS "Subject: LAST Chance!\n\nhello\n", "alice@example.org", &total);
    g_assert_true(has_rule(hits, "WORD_last_chance"));
    g_assert_cmpfloat(fabs(total - 0.5), <, 1e-9);
    g_ptr_array_unref(hits);
    /* "free" in the body does not count for a subject rule, nor "freedom" */
    hits = run(h, GOOD_HEADERS "Subject: hello\n\nfree freedom\n", "alice@example.org", &total);
    g_assert_cmpuint(hits->len, ==, 0);
    g_ptr_array_unref(hits);
    mq_heuristics_free(&h);

    g_assert_null(mq_heuristics_new(bad, NULL, &error));
    g_assert_error(error, MQ_ERROR, MQ_ERROR_CONFIG);
    g_assert_nonnull(strstr(error->message, ":1: WHERE must be"));
    g_clear_error(&error);
    g_assert_null(mq_heuristics_new(NULL, unknown, &error));
    g_assert_error(error, MQ_ERROR, MQ_ERROR_CONFIG);
    g_clear_error(&error);
    g_free(words);
    g_free(bad);
}

/* Hostile input: the checks read bounded amounts whatever the message. */
static void
test_heuristics_bounds(void)
{
    struct mq_heuristics *h = mq_heuristics_new(NULL, NULL, NULL);
    GString *m = g_string_new(GOOD_HEADERS "Subject: big\nContent-Type: text/html\n\n");
    GPtrArray *hits;
    gint64 t0;

    for (int i = 0; i < 200000; i++)
        g_string_append(m, "<a href=\"http://a.example/\">http://b.example/</a><font color=");
    g_string_append(m, "\n");
    t0 = g_get_monotonic_time();
    hits = run(h, m->str, "alice@example.org", NULL);
    /* 12 MB of tags: only the first 128 KB are read (a generous 2 s bound
     * catches reading it all quadratically, not speed) */
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 2 * G_TIME_SPAN_SECOND);
    g_assert_true(has_rule(hits, "HTML_PHISH_LINK"));
    g_ptr_array_unref(hits);
    g_string_free(m, TRUE);

    /* deep nesting and many parts */
    m = g_string_new(GOOD_HEADERS "Subject: deep\nMIME-Version: 1.0\n");
    for (int i = 0; i < 300; i++)
        g_string_append_printf(m, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
    g_string_append(m, "Content-Type: text/plain\n\nbottom\n");
    hits = run(h, m->str, "alice@example.org", NULL);
    g_ptr_array_unref(hits);
    g_string_free(m, TRUE);

    /* an unknown charset and 8-bit junk */
    hits = run(h, GOOD_HEADERS "Subject: \xff\xfe\nContent-Type: text/plain; charset=x-no-such\n\n\xff\xfe\x80 junk\n",
               "alice@example.org", NULL);
    g_ptr_array_unref(hits);
    mq_heuristics_free(&h);
}

/* ---- the decision ------------------------------------------------------- */

static struct mq_config *
make_config(const char *extra)
{
    char *words = g_build_filename(tmpdir, "none", NULL);
    char *text = g_strdup_printf("incoming_queue_dir = \"%s/in\"\noutgoing_queue_dir = \"%s/out\"\n"
                                 "spam_words = \"\"\nbayes_db = \"\"\nspf_check = false\n"
                                 "sender_allow = \"%s/allow\"\nsender_block = \"%s/block\"\n"
                                 "recipient_block = \"%s/rblock\"\nip_allow = \"%s/ipallow\"\n"
                                 "ip_block = \"%s/ipblock\"\n%s",
                                 tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, extra);
    char *path = write_file("mqscan.conf", text);
    GError *error = NULL;
    struct mq_config *c = mq_config_load(path, &error);

    g_assert_no_error(error);
    g_free(text);
    g_free(path);
    g_free(words);
    return c;
}

static void
check(struct mq_spam *spam, const char *text, const char *sender, const char *relay,
      struct mq_spam_verdict *v)
{
    GMimeMessage *msg = parse(text);
    const char *rcpts[] = { "bob@example.net", "all-staff@example.net", NULL };
    struct mq_spam_input in = { 0 };

    in.msg = msg;
    in.raw = text;
    in.raw_len = strlen(text);
    in.sender = sender;
    in.rcpts = rcpts;
    in.n_rcpts = 2;
    if (relay != NULL) {
        in.relay_known = true;
        in.relay_family = strchr(relay, ':') ? AF_INET6 : AF_INET;
        inet_pton(in.relay_family, relay, in.relay_addr);
    }
    mq_spam_check(spam, &in, v);
    g_object_unref(msg);
}

static void
test_spam_lists(void)
{
    struct mq_config *c;
    struct mq_spam *spam;
    struct mq_spam_verdict v;
    GError *error = NULL;
    const char *bad = "Subject: FREE MONEY NOW FOR YOU\nTo: undisclosed-recipients:;\n"
                      "Content-Type: text/html\n\n<a href=\"http://192.0.2.9/\">http://bank.example/</a>"
                      "<font color=white>x</font>\n";

    g_free(write_file("allow", "friend@example.org\n"));
    g_free(write_file("block", "spammer.example\n"));
    g_free(write_file("rblock", "all-staff@example.net\n"));
    g_free(write_file("ipallow", "192.0.2.0/24\n"));
    g_free(write_file("ipblock", "198.51.100.0/24\n"));
    c = make_config("spam_gateway_threshold = 8\n");
    spam = mq_spam_new(c, &error);
    g_assert_no_error(error);

    /* No list: the rules decide; this one is well over the store threshold. */
    check(spam, bad, "someone@elsewhere.example", "203.0.113.5", &v);
    g_assert_cmpint(v.listed, ==, MQ_SPAM_LISTED_NONE);
    g_assert_cmpuint(v.scl, >=, 5);
    g_assert_true(v.flagged);
    g_assert_nonnull(strstr(v.rules, "HTML_PHISH_LINK=3.0"));
    g_assert_cmpuint(v.n_rcpt_blocked, ==, 1);
    g_assert_false(v.rcpt_blocked[0]);
    g_assert_true(v.rcpt_blocked[1]);
    mq_spam_verdict_clear(&v);

    /* The allowed sender bypasses the score... */
    check(spam, bad, "Friend@example.org", "203.0.113.5", &v);
    g_assert_cmpint(v.listed, ==, MQ_SPAM_LISTED_ALLOW);
    g_assert_cmpuint(v.scl, ==, 0);
    g_assert_false(v.flagged);
    g_assert_nonnull(strstr(v.list_entry, "sender_allow"));
    mq_spam_verdict_clear(&v);
    /* ...and so does an allowed relay */
    check(spam, bad, "x@elsewhere.example", "192.0.2.77", &v);
    g_assert_cmpint(v.listed, ==, MQ_SPAM_LISTED_ALLOW);
    mq_spam_verdict_clear(&v);

    /* Block-listed: over the gateway threshold whatever the content. */
    check(spam, "Subject: hi\n\nhello\n", "x@mail.spammer.example", NULL, &v);
    g_assert_cmpint(v.listed, ==, MQ_SPAM_LISTED_NONE); /* subdomain not listed */
    mq_spam_verdict_clear(&v);
    check(spam, "Subject: hi\nFrom: boss@spammer.example\n\nhello\n", "x@a.example", NULL, &v);
    g_assert_cmpint(v.listed, ==, MQ_SPAM_LISTED_BLOCK);
    g_assert_true(v.gateway);
    g_assert_cmpuint(v.scl, ==, 9);
    mq_spam_verdict_clear(&v);
    check(spam, "Subject: hi\n\nhello\n", "x@a.example", "198.51.100.200", &v);
    g_assert_cmpint(v.listed, ==, MQ_SPAM_LISTED_BLOCK);
    g_assert_true(v.gateway);
    mq_spam_verdict_clear(&v);
    mq_spam_free(&spam);
    mq_config_free(&c);

    /* The null sender: scored by default, blocked when asked. */
    c = make_config("spam_null_sender = \"block\"\n");
    spam = mq_spam_new(c, &error);
    check(spam, GOOD_HEADERS "Subject: hi\n\nhello\n", "", NULL, &v);
    g_assert_cmpint(v.listed, ==, MQ_SPAM_LISTED_BLOCK);
    mq_spam_verdict_clear(&v);
    mq_spam_free(&spam);
    mq_config_free(&c);
    c = make_config("");
    spam = mq_spam_new(c, &error);
    check(spam, GOOD_HEADERS "Subject: hi\n\nhello\n", "", NULL, &v);
    g_assert_cmpint(v.listed, ==, MQ_SPAM_LISTED_NONE);
    g_assert_nonnull(strstr(v.rules, "NULL_SENDER"));
    g_assert_cmpstr(mq_spam_level_stars(v.scl), ==, "");
    g_assert_cmpstr(mq_spam_level_stars(3), ==, "***");
    mq_spam_verdict_clear(&v);
    mq_spam_free(&spam);
    mq_config_free(&c);

    /* A bad list line stops the load with its file and line. */
    g_free(write_file("ipblock", "198.51.100.0/24\nnot-an-ip\n"));
    c = make_config("");
    g_assert_null(mq_spam_new(c, &error));
    g_assert_error(error, MQ_ERROR, MQ_ERROR_CONFIG);
    g_assert_nonnull(strstr(error->message, "ipblock:2:"));
    g_clear_error(&error);
    mq_config_free(&c);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    g_mime_init();
    mq_log_open("test-spam", 0);
    tmpdir = g_dir_make_tmp("test-spam-XXXXXX", NULL);
    g_test_add_func("/lists/addresses", test_list_addresses);
    g_test_add_func("/lists/networks", test_list_networks);
    g_test_add_func("/lists/errors", test_list_errors);
    g_test_add_func("/heuristics/clean", test_heuristics_clean);
    g_test_add_func("/heuristics/headers", test_heuristics_headers);
    g_test_add_func("/heuristics/html", test_heuristics_html);
    g_test_add_func("/heuristics/words", test_heuristics_words);
    g_test_add_func("/heuristics/bounds", test_heuristics_bounds);
    g_test_add_func("/spam/lists", test_spam_lists);
    rc = g_test_run();
    test_remove_tree(tmpdir);
    g_free(tmpdir);
    g_mime_shutdown();
    return rc;
}
