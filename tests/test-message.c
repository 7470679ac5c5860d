/* test-message - mqscan/message.c: parse, leaf walk, limits, replacement.
 *
 * Fixtures are in tests/data/mime (MQ_SRCDIR/data/mime); the corpus walk
 * uses MQ_SHARED_DIR/corpus/mime and is skipped when it is absent.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/message.h"

#include "testutil.h"

static const struct mq_message_limits default_limits = {
    .max_depth = 20,
    .max_parts = 1000,
};

/* ---- helpers ---------------------------------------------------------- */

/* One leaf as the walk reported it. */
struct seen_leaf {
    unsigned index;
    unsigned depth;
    char *content_type;
    char *filename;
    GBytes *data;
};

static void
seen_leaf_free(gpointer p)
{
    struct seen_leaf *leaf = p;

    g_free(leaf->content_type);
    g_free(leaf->filename);
    g_bytes_unref(leaf->data);
    g_free(leaf);
}

static int
collect_leaf(const struct mq_message_leaf *leaf, const void *data, size_t len,
             void *ctx, GError **err)
{
    GPtrArray *seen = ctx;
    struct seen_leaf *copy = g_new0(struct seen_leaf, 1);

    g_assert_nonnull(data);
    g_assert_nonnull(leaf->content_type);
    copy->index = leaf->index;
    copy->depth = leaf->depth;
    copy->content_type = g_strdup(leaf->content_type);
    copy->filename = g_strdup(leaf->filename);
    copy->data = g_bytes_new(data, len);
    g_ptr_array_add(seen, copy);
    return 0;
}

static GPtrArray *
walk(struct mq_message *msg, const struct mq_message_limits *limits, GError **err)
{
    GPtrArray *seen = g_ptr_array_new_with_free_func(seen_leaf_free);

    if (mq_message_foreach_leaf(msg, limits, collect_leaf, seen, err) < 0)
        g_clear_pointer(&seen, g_ptr_array_unref);
    return seen;
}

static char *
fixture_path(const char *name)
{
    const char *srcdir = g_getenv("MQ_SRCDIR");

    return g_build_filename(srcdir != NULL ? srcdir : ".", "data", "mime", name, NULL);
}

static char *
load_fixture(const char *name, size_t *len_r)
{
    char *path = fixture_path(name);
    char *data = NULL;
    gsize len = 0;
    GError *err = NULL;

    if (!g_file_get_contents(path, &data, &len, &err))
        g_error("cannot read fixture %s: %s", path, err->message);
    g_free(path);
    *len_r = len;
    return data;
}

static struct mq_message *
parse_whole(const char *data, size_t len, GError **err)
{
    const char *body;
    size_t hlen, blen;

    test_split_message(data, len, &hlen, &body, &blen);
    return mq_message_parse(data, hlen, body, blen, &default_limits, err);
}

static struct mq_message *
parse_fixture(const char *name, char **data_r, size_t *len_r)
{
    GError *err = NULL;
    struct mq_message *msg;

    *data_r = load_fixture(name, len_r);
    msg = parse_whole(*data_r, *len_r, &err);
    g_assert_no_error(err);
    g_assert_nonnull(msg);
    return msg;
}

static GByteArray *
write_body(struct mq_message *msg)
{
    GByteArray *out = g_byte_array_new();
    GError *err = NULL;

    g_assert_cmpint(mq_message_write_body(msg, out, &err), ==, 0);
    g_assert_no_error(err);
    return out;
}

/* The header block the caller would write after a body replacement: the
 * original one without its Content-* headers, plus the new ones. */
static char *
rebuild_headers(const char *headers, size_t headers_len, GPtrArray *content_headers)
{
    GString *out = g_string_new(NULL);
    char *copy = g_strndup(headers, headers_len);
    char **lines = g_strsplit(copy, "\n", -1);
    bool skipping = false;

    for (char **l = lines; *l != NULL; l++) {
        if (**l == '\0')
            continue;
        if (**l == ' ' || **l == '\t') {
            if (!skipping)
                g_string_append_printf(out, "%s\n", *l);
            continue;
        }
        skipping = g_ascii_strncasecmp(*l, "Content-", 8) == 0;
        if (!skipping)
            g_string_append_printf(out, "%s\n", *l);
    }
    for (guint i = 0; i < content_headers->len; i++)
        g_string_append_printf(out, "%s\n", (const char *)g_ptr_array_index(content_headers, i));
    g_strfreev(lines);
    g_free(copy);
    return g_string_free(out, FALSE);
}

/* ---- fixtures: leaf count, types, names, one decoded leaf -------------- */

#define MAX_LEAVES 4

static GBytes *
mixed_attachment(void)
{
    static const char tail[] = "mqscan attachment payload\n";
    GByteArray *b = g_byte_array_new();

    for (int i = 0; i < 256; i++) {
        guint8 c = (guint8)i;
        g_byte_array_append(b, &c, 1);
    }
    g_byte_array_append(b, (const guint8 *)tail, sizeof(tail) - 1);
    return g_byte_array_free_to_bytes(b);
}

static const struct {
    const char *file;
    unsigned n_leaves;
    const char *types[MAX_LEAVES];
    const char *filenames[MAX_LEAVES];
    unsigned depths[MAX_LEAVES];
    unsigned check;             /* which leaf's content to compare */
    const char *content;        /* its decoded content, or NULL: */
    GBytes *(*content_fn)(void);/* built at run time */
} fixture_cases[] = {
    { "single.eml", 1, { "text/plain" }, { NULL }, { 0 }, 0,
      "Hello Bob,\n\nthis message has exactly one part and no MIME headers at all.\n"
      "-- \nAlice\n", NULL },
    { "mixed-base64.eml", 2, { "text/plain", "application/octet-stream" },
      { NULL, "report.bin" }, { 1, 1 }, 1, NULL, mixed_attachment },
    { "quoted-printable.eml", 1, { "text/plain" }, { NULL }, { 0 }, 0,
      "Caf\xc3\xa9 cr\xc3\xa8me \xe2\x80\x93 a line long enough that quoted-printable has to "
      "break it with a soft line break somewhere.\nSecond line: 1+1=2.\n", NULL },
    { "uuencode.eml", 2, { "text/plain", "application/octet-stream" },
      { NULL, "hello.txt" }, { 1, 1 }, 1,
      "uuencoded hello from mqscan\nsecond line\n", NULL },
    { "rfc822.eml", 3, { "text/plain", "text/plain", "application/zip" },
      { NULL, NULL, "inner.zip" }, { 1, 3, 3 }, 2, "inner attachment bytes\n", NULL },
    { "rfc822-single.eml", 2, { "text/plain", "application/octet-stream" },
      { NULL, "tool.exe" }, { 1, 2 }, 1,
      NULL, NULL },
    { "rfc2231.eml", 2, { "text/plain", "text/plain" },
      { "\xe2\x82\xac rates.txt", "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln.txt" }, { 1, 1 }, 0,
      "Euro rates.", NULL },
    { "rfc2047.eml", 2, { "text/plain", "application/pdf" },
      { NULL, "\xc3\xa9t\xc3\xa9 report.pdf" }, { 1, 1 }, 1,
      "%PDF-1.4\n% not really a pdf\n", NULL },
};

static void
test_fixtures(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(fixture_cases); c++) {
        char *data;
        size_t len;
        struct mq_message *msg = parse_fixture(fixture_cases[c].file, &data, &len);
        GError *err = NULL;
        GPtrArray *seen = walk(msg, &default_limits, &err);

        g_test_message("fixture %s", fixture_cases[c].file);
        g_assert_no_error(err);
        g_assert_cmpuint(seen->len, ==, fixture_cases[c].n_leaves);
        for (guint i = 0; i < seen->len; i++) {
            struct seen_leaf *leaf = g_ptr_array_index(seen, i);

            g_assert_cmpuint(leaf->index, ==, i);
            g_assert_cmpstr(leaf->content_type, ==, fixture_cases[c].types[i]);
            g_assert_cmpstr(leaf->filename, ==, fixture_cases[c].filenames[i]);
            g_assert_cmpuint(leaf->depth, ==, fixture_cases[c].depths[i]);
        }
        if (fixture_cases[c].content != NULL || fixture_cases[c].content_fn != NULL) {
            struct seen_leaf *leaf = g_ptr_array_index(seen, fixture_cases[c].check);
            GBytes *want = fixture_cases[c].content != NULL
                ? g_bytes_new_static(fixture_cases[c].content, strlen(fixture_cases[c].content))
                : fixture_cases[c].content_fn();
            gsize got_len, want_len;
            const char *got_data = g_bytes_get_data(leaf->data, &got_len);
            const char *want_data = g_bytes_get_data(want, &want_len);

            /* Text leaves end where the boundary line begins; the line
             * break before a boundary belongs to the boundary. */
            g_assert_cmpmem(got_data, got_len, want_data, want_len);
            g_bytes_unref(want);
        }
        g_ptr_array_unref(seen);
        mq_message_free(&msg);
        g_assert_null(msg);
        g_free(data);
    }
}

/* Writing back a message nobody changed gives back the body it came from. */
static void
test_unchanged_roundtrip(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(fixture_cases); c++) {
        char *data;
        size_t len, hlen, blen;
        const char *body;
        struct mq_message *msg = parse_fixture(fixture_cases[c].file, &data, &len);
        GError *err = NULL;
        GPtrArray *seen = walk(msg, &default_limits, &err);
        GByteArray *out;

        g_assert_no_error(err);
        test_split_message(data, len, &hlen, &body, &blen);
        out = write_body(msg);
        g_test_message("roundtrip %s", fixture_cases[c].file);
        g_assert_cmpmem(out->data, out->len, body, blen);
        g_assert_false(mq_message_body_replaced(msg));
        g_byte_array_unref(out);
        g_ptr_array_unref(seen);
        mq_message_free(&msg);
        g_free(data);
    }
}

/* ---- limits ------------------------------------------------------------ */

/* depth nested multiparts, each holding the next, and one text leaf at the
 * bottom (at depth `depth`). */
static char *
gen_nested(unsigned depth, size_t *hlen_r)
{
    GString *s = g_string_new("From: a@example.com\nMIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"b0\"\n");

    *hlen_r = s->len;
    g_string_append(s, "\n");
    for (unsigned i = 1; i < depth; i++)
        g_string_append_printf(s, "--b%u\nContent-Type: multipart/mixed; boundary=\"b%u\"\n\n",
                               i - 1, i);
    g_string_append_printf(s, "--b%u\nContent-Type: text/plain\n\nbottom\n", depth - 1);
    for (unsigned i = depth; i-- > 0;)
        g_string_append_printf(s, "--b%u--\n", i);
    return g_string_free(s, FALSE);
}

/* One multipart/mixed with n_leaves text parts: n_leaves + 1 parts. */
static char *
gen_wide(unsigned n_leaves, size_t *hlen_r)
{
    GString *s = g_string_new("From: a@example.com\nMIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"w\"\n");

    *hlen_r = s->len;
    g_string_append(s, "\n");
    for (unsigned i = 0; i < n_leaves; i++)
        g_string_append_printf(s, "--w\nContent-Type: text/plain\n\npart %u\n", i);
    g_string_append(s, "--w--\n");
    return g_string_free(s, FALSE);
}

static int
count_calls(const struct mq_message_leaf *leaf, const void *data, size_t len,
            void *ctx, GError **err)
{
    (*(unsigned *)ctx)++;
    return 0;
}

static const struct {
    const char *what;
    bool wide;                  /* gen_wide(n) or gen_nested(n) */
    unsigned n;
    struct mq_message_limits limits;
    bool ok;
    const char *message;        /* substring of the error */
    unsigned leaves;
} limit_cases[] = {
    { "depth 50 under max_depth 20", false, 50, { 20, 1000 }, false, "max_mime_depth", 0 },
    { "depth 50 under max_depth 50", false, 50, { 50, 1000 }, true, NULL, 1 },
    { "depth 50 under max_depth 49", false, 50, { 49, 1000 }, false, "max_mime_depth", 0 },
    { "depth 20 under max_parts 20", false, 20, { 20, 20 }, false, "max_mime_parts", 0 },
    { "depth 20 under max_parts 21", false, 20, { 20, 21 }, true, NULL, 1 },
    { "2000 parts under max_parts 1000", true, 1999, { 20, 1000 }, false, "max_mime_parts", 0 },
    { "2000 parts under max_parts 2000", true, 1999, { 20, 2000 }, true, NULL, 1999 },
    { "2000 parts under max_parts 1999", true, 1999, { 20, 1999 }, false, "max_mime_parts", 0 },
    { "single part under max_depth 0", true, 1, { 0, 10 }, false, "max_mime_depth", 0 },
};

static void
test_limits(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(limit_cases); c++) {
        size_t hlen;
        char *data = limit_cases[c].wide ? gen_wide(limit_cases[c].n, &hlen)
                                         : gen_nested(limit_cases[c].n, &hlen);
        size_t len = strlen(data);
        GError *err = NULL;
        struct mq_message *msg;
        unsigned calls = 0;
        int rc;

        g_test_message("limit case: %s", limit_cases[c].what);
        msg = mq_message_parse(data, hlen, data + hlen + 1, len - hlen - 1, &default_limits, &err);
        g_assert_no_error(err);
        g_assert_nonnull(msg);
        rc = mq_message_foreach_leaf(msg, &limit_cases[c].limits, count_calls, &calls, &err);
        if (limit_cases[c].ok) {
            g_assert_no_error(err);
            g_assert_cmpint(rc, ==, 0);
            g_assert_cmpuint(calls, ==, limit_cases[c].leaves);
        } else {
            g_assert_cmpint(rc, ==, -1);
            g_assert_error(err, MQ_ERROR, MQ_ERROR_LIMIT);
            g_assert_nonnull(strstr(err->message, limit_cases[c].message));
            /* The check comes before any leaf is decoded. */
            g_assert_cmpuint(calls, ==, 0);
            g_clear_error(&err);
        }
        mq_message_free(&msg);
        g_free(data);
    }
}

/* ---- what GMime is given ---------------------------------------------------- */

/* n copies of unit after a header block head ("" for none) and before tail. */
static char *
gen_repeat(const char *head, const char *unit, unsigned n, const char *tail)
{
    GString *s = g_string_new(head);

    for (unsigned i = 0; i < n; i++)
        g_string_append(s, unit);
    g_string_append(s, tail);
    return g_string_free(s, FALSE);
}

#define CENSUS_MULTI "Content-Type: multipart/mixed; boundary=b\n"

static const struct {
    const char *what;
    const char *headers;        /* the header block, one object per line */
    const char *head, *unit;    /* the body: head, n units, tail */
    unsigned n;
    const char *tail;
    bool ok;
} census_cases[] = {
    /* 5 MB: a million parts to GMime, 1.3 GB. */
    { "a million empty parts", CENSUS_MULTI, "", "--b\n\n", 1000000, "--b--\n", false },
    { "100,000 header lines in a part", CENSUS_MULTI, "--b\n", "A: b\n", 100000,
      "\ntext\n--b--\n", false },
    /* The header block of an attached message is GMime's too. */
    { "100,000 header lines in an attached message", CENSUS_MULTI,
      "--b\nContent-Type: message/rfc822\n\n", "A: b\n", 100000, "\ntext\n--b--\n", false },
    /* A part of a digest is a message unless it says otherwise. */
    { "100,000 header lines in a message of a digest",
      "Content-Type: multipart/digest; boundary=b\n", "--b\n\n", "A: b\n", 100000,
      "\ntext\n--b--\n", false },
    { "... whose Content-Type is folded", CENSUS_MULTI,
      "--b\nContent-Type:\n message/rfc822\n\n", "A: b\n", 100000, "\ntext\n--b--\n", false },
    { "100,000 header lines in a top-level attached message",
      "Content-Type: Message/RFC822\n", "", "A: b\n", 100000, "\ntext\n", false },
    /* Addresses and parameters are objects too; and GMime reads a list of
     * names without "@" in quadratic time (80 KB: 6 s): commas times
     * bytes of address fields are counted. */
    { "To of 40,000 bare names in an attached message", CENSUS_MULTI,
      "--b\nContent-Type: message/rfc822\n\nTo: ", "a,", 40000, "a\n\ntext\n--b--\n", false },
    { "To of 20,000 names folded", CENSUS_MULTI,
      "--b\nContent-Type: message/rfc822\n\nTo: a", ",\n a", 20000, "\n\ntext\n--b--\n", false },
    { "Resent-Cc of 40,000 names, a blank before the colon", CENSUS_MULTI,
      "--b\nContent-Type: message/rfc822\n\nResent-Cc : a", ",a", 40000, "\n\ntext\n--b--\n",
      false },
    { "X-To of 40,000 names (no address field)", CENSUS_MULTI,
      "--b\nContent-Type: message/rfc822\n\nX-To: a", ",a", 40000, "\n\ntext\n--b--\n", true },
    { "To of 2,000 addresses, 30 KB", CENSUS_MULTI,
      "--b\nContent-Type: message/rfc822\n\nTo: x@example.com", ", a@example.com", 2000,
      "\n\ntext\n--b--\n", true },
    { "To of one address and 50,000 folded encoded words", CENSUS_MULTI,
      "--b\nContent-Type: message/rfc822\n\nTo: \"t\" <t@example.com>,", "\n =?utf-8?q?a?=",
      50000, "\n\ntext\n--b--\n", true },
    { "Content-Type with 100,000 parameters", CENSUS_MULTI,
      "--b\nContent-Type: text/plain", "; a=b", 100000, "\n\ntext\n--b--\n", false },
    /* Text is not headers: a Message-ID is no attached message. */
    { "100,000 lines of text", "Message-ID: <x@y>\nSubject: log\n", "", "line of a log\n",
      100000, "", true },
    { "20,000 SQL comments", CENSUS_MULTI,
      "--b\nContent-Type: text/plain\n\n", "-- a comment\n\nSELECT 1;\n", 20000, "--b--\n", true },
    /* The budget for max_mime_parts 10 is 65,616, the header line and its
     * ";" included. */
    { "65,614 empty parts", CENSUS_MULTI, "", "--b\n\n", 65614, "", true },
    { "65,615 empty parts", CENSUS_MULTI, "", "--b\n\n", 65615, "", false },
};

/* Input that could make GMime build more parts and headers than the limits
 * allow for is refused before GMime reads it, in time linear in its size. */
static void
test_census(void)
{
    static const struct mq_message_limits limits = { 20, 10 };

    for (gsize c = 0; c < G_N_ELEMENTS(census_cases); c++) {
        char *body = gen_repeat(census_cases[c].head, census_cases[c].unit, census_cases[c].n,
                                census_cases[c].tail);
        const char *h = census_cases[c].headers;
        gint64 start = g_get_monotonic_time();
        GError *err = NULL;
        struct mq_message *msg;

        g_test_message("census case: %s", census_cases[c].what);
        msg = mq_message_parse(h, strlen(h), body, strlen(body), &limits, &err);
        if (census_cases[c].ok) {
            g_assert_no_error(err);
            g_assert_nonnull(msg);
        } else {
            g_assert_null(msg);
            g_assert_error(err, MQ_ERROR, MQ_ERROR_LIMIT);
            g_test_message("refused: %s", err->message);
            g_assert_true(strstr(err->message, "max_mime_parts (10)") != NULL
                          || strstr(err->message, "address lists") != NULL);
            g_clear_error(&err);
            /* Unread by GMime: a few ms (GMime took seconds). */
            g_assert_cmpint(g_get_monotonic_time() - start, <, 2 * G_USEC_PER_SEC);
        }
        mq_message_free(&msg);
        g_free(body);
    }
}

/* A leaf callback that fails stops the walk and its error comes back. */
static int
fail_second(const struct mq_message_leaf *leaf, const void *data, size_t len,
            void *ctx, GError **err)
{
    (*(unsigned *)ctx)++;
    if (leaf->index == 1) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_TEMP, "stop at %u", leaf->index);
        return -1;
    }
    return 0;
}

static void
test_callback_error(void)
{
    char *data;
    size_t len;
    struct mq_message *msg = parse_fixture("rfc822.eml", &data, &len);
    GError *err = NULL;
    unsigned calls = 0;

    g_assert_cmpint(mq_message_foreach_leaf(msg, &default_limits, fail_second, &calls, &err),
                    ==, -1);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_TEMP);
    g_assert_cmpuint(calls, ==, 2);
    g_clear_error(&err);
    mq_message_free(&msg);
    g_free(data);
}

/* ---- replacement -------------------------------------------------------- */

static const char *
find_mem(const guint8 *hay, size_t hay_len, const char *needle)
{
    size_t n = strlen(needle);

    if (n > hay_len)
        return NULL;
    for (size_t i = 0; i + n <= hay_len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return (const char *)hay + i;
    return NULL;
}

/* Re-parses headers + a written body and returns its leaves. */
static GPtrArray *
reparse(const char *headers, size_t headers_len, GByteArray *body)
{
    GError *err = NULL;
    struct mq_message *msg = mq_message_parse(headers, headers_len,
                                              (const char *)body->data, body->len, &default_limits, &err);
    GPtrArray *seen;

    g_assert_no_error(err);
    g_assert_nonnull(msg);
    seen = walk(msg, &default_limits, &err);
    g_assert_no_error(err);
    mq_message_free(&msg);
    return seen;
}

static void
assert_leaf_text(GPtrArray *seen, unsigned index, const char *type, const char *text)
{
    struct seen_leaf *leaf = g_ptr_array_index(seen, index);
    gsize len;
    const char *data = g_bytes_get_data(leaf->data, &len);

    g_assert_cmpstr(leaf->content_type, ==, type);
    g_assert_cmpmem(data, len, text, strlen(text));
}

/* The attachment of a multipart goes, the text part, the preamble, the
 * boundaries and the epilogue stay byte for byte. */
static void
test_replace_attachment(void)
{
    static const char note[] = "The attachment report.bin was removed.\n";
    char *data;
    size_t len, hlen, blen;
    const char *body, *second, *orig_second;
    struct mq_message *msg = parse_fixture("mixed-base64.eml", &data, &len);
    GError *err = NULL;
    GPtrArray *seen = walk(msg, &default_limits, &err);
    GByteArray *out;

    g_assert_no_error(err);
    test_split_message(data, len, &hlen, &body, &blen);
    g_assert_cmpint(mq_message_replace_leaf(msg, 1, note, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(mq_message_body_replaced(msg));
    out = write_body(msg);

    /* Everything up to the second part's boundary is unchanged. */
    orig_second = find_mem((const guint8 *)body, blen,
                           "--=-outer-boundary-42\nContent-Type: application/octet-stream");
    g_assert_nonnull(orig_second);
    second = find_mem(out->data, out->len, "--=-outer-boundary-42\nContent-Type: text/plain; charset=utf-8");
    g_assert_nonnull(second);
    g_assert_cmpmem(out->data, second - (const char *)out->data, body, orig_second - body);
    /* So is the end: closing boundary and epilogue. */
    g_assert_nonnull(find_mem(out->data, out->len, "\n--=-outer-boundary-42--\nThis is the epilogue.\n"));
    g_assert_null(find_mem(out->data, out->len, "report.bin\""));
    g_assert_nonnull(find_mem(out->data, out->len, "Content-Transfer-Encoding: quoted-printable"));
    g_assert_nonnull(find_mem(out->data, out->len, "Content-Disposition: inline"));

    g_ptr_array_unref(seen);
    seen = reparse(data, hlen, out);
    g_assert_cmpuint(seen->len, ==, 2);
    assert_leaf_text(seen, 0, "text/plain", "Please find the report attached.\n");
    assert_leaf_text(seen, 1, "text/plain", note);

    g_byte_array_unref(out);
    g_ptr_array_unref(seen);
    mq_message_free(&msg);
    g_free(data);
}

/* The only part of a single-part message is the body: body_replaced and new
 * content headers, including MIME-Version for a message that had none. */
static void
test_replace_single(void)
{
    static const char note[] = "This message was replaced.";
    char *data, *headers;
    size_t len, hlen, blen;
    const char *body;
    struct mq_message *msg = parse_fixture("single.eml", &data, &len);
    GError *err = NULL;
    GPtrArray *seen = walk(msg, &default_limits, &err);
    GPtrArray *ch;
    GByteArray *out;

    g_assert_no_error(err);
    test_split_message(data, len, &hlen, &body, &blen);
    g_assert_cmpint(mq_message_replace_leaf(msg, 0, note, &err), ==, 0);
    g_assert_true(mq_message_body_replaced(msg));

    ch = mq_message_content_headers(msg);
    g_assert_cmpuint(ch->len, ==, 4);
    g_assert_cmpstr(g_ptr_array_index(ch, 0), ==, "MIME-Version: 1.0");
    g_assert_cmpstr(g_ptr_array_index(ch, 1), ==, "Content-Type: text/plain; charset=utf-8");
    g_assert_cmpstr(g_ptr_array_index(ch, 2), ==, "Content-Disposition: inline");
    g_assert_cmpstr(g_ptr_array_index(ch, 3), ==, "Content-Transfer-Encoding: quoted-printable");

    out = write_body(msg);
    /* A newline is added so that the df file ends with one. */
    g_assert_cmpmem(out->data, out->len, "This message was replaced.\n", strlen(note) + 1);

    headers = rebuild_headers(data, hlen, ch);
    g_ptr_array_unref(seen);
    seen = reparse(headers, strlen(headers), out);
    g_assert_cmpuint(seen->len, ==, 1);
    assert_leaf_text(seen, 0, "text/plain", "This message was replaced.\n");

    g_free(headers);
    g_ptr_array_unref(ch);
    g_byte_array_unref(out);
    g_ptr_array_unref(seen);
    mq_message_free(&msg);
    g_free(data);
}

/* Leaves inside an attached message: one in its multipart (parent path) and
 * one that is its whole body (inner message's top-level part). Neither
 * touches the outer message's body headers. */
static const struct {
    const char *file;
    unsigned leaf;
    const char *gone;           /* text that must no longer be in the body */
    unsigned n_leaves;
} nested_cases[] = {
    { "rfc822.eml", 2, "inner.zip", 3 },
    { "rfc822-single.eml", 1, "tool.exe", 2 },
};

static void
test_replace_nested(void)
{
    static const char note[] = "Removed by the gateway.\n";

    for (gsize c = 0; c < G_N_ELEMENTS(nested_cases); c++) {
        char *data;
        size_t len, hlen, blen;
        const char *body;
        struct mq_message *msg = parse_fixture(nested_cases[c].file, &data, &len);
        GError *err = NULL;
        GPtrArray *seen = walk(msg, &default_limits, &err), *again;
        GByteArray *out;

        g_test_message("nested %s", nested_cases[c].file);
        g_assert_no_error(err);
        test_split_message(data, len, &hlen, &body, &blen);
        g_assert_cmpint(mq_message_replace_leaf(msg, nested_cases[c].leaf, note, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_false(mq_message_body_replaced(msg));
        out = write_body(msg);
        g_assert_null(find_mem(out->data, out->len, nested_cases[c].gone));
        /* The forwarded message keeps its own From/Subject. */
        g_assert_nonnull(find_mem(out->data, out->len, "\nSubject: "));

        /* The untouched first leaf decodes as before; the replaced one is
         * the note. */
        again = reparse(data, hlen, out);
        g_assert_cmpuint(again->len, ==, nested_cases[c].n_leaves);
        g_assert_true(g_bytes_equal(((struct seen_leaf *)g_ptr_array_index(again, 0))->data,
                                    ((struct seen_leaf *)g_ptr_array_index(seen, 0))->data));
        assert_leaf_text(again, nested_cases[c].leaf, "text/plain", note);
        g_ptr_array_unref(again);
        g_ptr_array_unref(seen);
        g_byte_array_unref(out);
        mq_message_free(&msg);
        g_free(data);
    }
}

static void
test_replace_body(void)
{
    char *data, *headers;
    size_t len, hlen, blen;
    const char *body;
    struct mq_message *msg = parse_fixture("mixed-base64.eml", &data, &len);
    GPtrArray *ch, *seen;
    GByteArray *out;

    test_split_message(data, len, &hlen, &body, &blen);
    mq_message_replace_body(msg, "All of it is gone.\n");
    g_assert_true(mq_message_body_replaced(msg));
    ch = mq_message_content_headers(msg);
    /* The message had a MIME-Version header: no second one. */
    for (guint i = 0; i < ch->len; i++)
        g_assert_false(g_str_has_prefix(g_ptr_array_index(ch, i), "MIME-Version"));
    g_assert_cmpstr(g_ptr_array_index(ch, 0), ==, "Content-Type: text/plain; charset=utf-8");
    out = write_body(msg);
    g_assert_cmpmem(out->data, out->len, "All of it is gone.\n", 19);
    headers = rebuild_headers(data, hlen, ch);
    g_assert_null(strstr(headers, "multipart"));
    seen = reparse(headers, strlen(headers), out);
    g_assert_cmpuint(seen->len, ==, 1);
    assert_leaf_text(seen, 0, "text/plain", "All of it is gone.\n");

    g_ptr_array_unref(seen);
    g_free(headers);
    g_byte_array_unref(out);
    g_ptr_array_unref(ch);
    mq_message_free(&msg);
    g_free(data);
}

/* Replacement text with an overlong line, 8-bit text and a byte that is not
 * UTF-8: the written part is 7-bit with short lines and decodes to valid
 * UTF-8 that keeps the long line. */
static void
test_replace_text_encoding(void)
{
    GString *text = g_string_new("Removed: \xc3\xa9t\xc3\xa9 \xff name\n");
    char *data;
    size_t len, hlen, blen;
    const char *body;
    struct mq_message *msg = parse_fixture("mixed-base64.eml", &data, &len);
    GError *err = NULL;
    GPtrArray *seen = walk(msg, &default_limits, &err);
    GByteArray *out;
    struct seen_leaf *leaf;
    gsize dlen;
    const char *decoded;
    char **lines;

    for (int i = 0; i < 50; i++)
        g_string_append(text, "0123456789");
    g_string_append(text, "\n");
    test_split_message(data, len, &hlen, &body, &blen);
    g_assert_cmpint(mq_message_replace_leaf(msg, 1, text->str, &err), ==, 0);
    out = write_body(msg);
    for (guint i = 0; i < out->len; i++)
        if (out->data[i] >= 0x80)
            g_error("8-bit byte 0x%02x at %u in the written body", out->data[i], i);
    g_byte_array_append(out, (const guint8 *)"", 1);
    lines = g_strsplit((const char *)out->data, "\n", -1);
    g_byte_array_set_size(out, out->len - 1);
    for (char **l = lines; *l != NULL; l++)
        g_assert_cmpuint(strlen(*l), <=, 998);
    g_strfreev(lines);

    g_ptr_array_unref(seen);
    seen = reparse(data, hlen, out);
    leaf = g_ptr_array_index(seen, 1);
    decoded = g_bytes_get_data(leaf->data, &dlen);
    g_assert_true(g_utf8_validate(decoded, dlen, NULL));
    g_assert_nonnull(find_mem((const guint8 *)decoded, dlen, "\xc3\xa9t\xc3\xa9 "));
    g_assert_nonnull(find_mem((const guint8 *)decoded, dlen, "0123456789" "0123456789" "0123456789"
                                                              "0123456789" "0123456789" "0123456789"
                                                              "0123456789" "0123456789\n"));

    g_ptr_array_unref(seen);
    g_byte_array_unref(out);
    mq_message_free(&msg);
    g_free(data);
    g_string_free(text, TRUE);
}

/* Each leaf of a multipart replaced in turn, then the numbering still holds:
 * a second walk gives as many leaves, all text/plain. */
static void
test_replace_all_leaves(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(fixture_cases); c++) {
        char *data;
        size_t len;
        struct mq_message *msg = parse_fixture(fixture_cases[c].file, &data, &len);
        GError *err = NULL;
        GPtrArray *seen = walk(msg, &default_limits, &err), *again;

        for (guint i = 0; i < seen->len; i++) {
            g_assert_cmpint(mq_message_replace_leaf(msg, i, "gone", &err), ==, 0);
            /* Replacing the same leaf twice works too. */
            g_assert_cmpint(mq_message_replace_leaf(msg, i, "gone", &err), ==, 0);
        }
        again = walk(msg, &default_limits, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(again->len, ==, seen->len);
        for (guint i = 0; i < again->len; i++)
            assert_leaf_text(again, i, "text/plain", "gone\n");
        g_ptr_array_unref(again);
        g_ptr_array_unref(seen);
        mq_message_free(&msg);
        g_free(data);
    }
}

/* A leaf index that the last walk did not produce is a programming error. */
static void
test_bad_index_panics(void)
{
    if (g_test_subprocess()) {
        char *data;
        size_t len;
        struct mq_message *msg = parse_fixture("single.eml", &data, &len);

        mq_log_open("test-message", MQ_LOG_SINK_STDERR);
        mq_message_replace_leaf(msg, 0, "no walk yet", NULL);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*panic: mq_message_replace_leaf: no leaf 0*");
}

/* The top-level part's headers as the caller gets them: folded lines
 * joined with "\n\t", CRs gone, other headers not included. */
static const struct {
    const char *headers;
    const char *expected[3];
} content_header_cases[] = {
    { "Subject: x\nContent-Type: application/octet-stream;\n name=\"a.bin\"\n"
      "Content-Transfer-Encoding: base64\n",
      { "Content-Type: application/octet-stream;\n\tname=\"a.bin\"",
        "Content-Transfer-Encoding: base64", NULL } },
    { "Subject: x\r\nContent-Type: text/plain;\r\n\tcharset=us-ascii\r\n",
      { "Content-Type: text/plain;\n\tcharset=us-ascii", NULL } },
    { "Subject: no MIME headers\n", { NULL } },
};

static void
test_content_headers(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(content_header_cases); c++) {
        const char *h = content_header_cases[c].headers;
        GError *err = NULL;
        struct mq_message *msg = mq_message_parse(h, strlen(h), "AAAA\n", 5, &default_limits, &err);
        GPtrArray *ch;
        guint n = 0;

        g_assert_no_error(err);
        ch = mq_message_content_headers(msg);
        while (content_header_cases[c].expected[n] != NULL)
            n++;
        g_assert_cmpuint(ch->len, ==, n);
        for (guint i = 0; i < n; i++)
            g_assert_cmpstr(g_ptr_array_index(ch, i), ==, content_header_cases[c].expected[i]);
        g_ptr_array_unref(ch);
        mq_message_free(&msg);
    }
}

/* write_body appends to what the array already holds. */
static void
test_write_appends(void)
{
    static const char headers[] = "Subject: x\n";
    static const char body[] = "body text\n";
    struct mq_message *msg = mq_message_parse(headers, strlen(headers), body, strlen(body), &default_limits, NULL);
    GByteArray *out = g_byte_array_new();
    GError *err = NULL;

    g_byte_array_append(out, (const guint8 *)"PREFIX\n", 7);
    g_assert_cmpint(mq_message_write_body(msg, out, &err), ==, 0);
    g_assert_cmpmem(out->data, out->len, "PREFIX\nbody text\n", 17);
    g_byte_array_unref(out);
    mq_message_free(&msg);
}

/* ---- hostile and odd input ---------------------------------------------- */

static const struct {
    const char *what;
    const char *headers;
    const char *body;
} odd_cases[] = {
    { "empty", "", "" },
    { "no headers", "", "just a body\n" },
    { "headers start with whitespace", " From: a@example.com\nSubject: x\n", "body\n" },
    { "header line without colon", "this is not a header\n", "body\n" },
    { "last header without newline", "Subject: x", "body\n" },
    { "multipart without boundary", "Content-Type: multipart/mixed\n",
      "--x\nContent-Type: text/plain\n\nhidden\n--x--\n" },
    { "multipart with no boundary lines", "Content-Type: multipart/mixed; boundary=zz\n",
      "preamble only, never a boundary\n" },
    { "truncated multipart", "Content-Type: multipart/mixed; boundary=x\n",
      "--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA" },
    { "empty message/rfc822", "Content-Type: message/rfc822\n", "" },
    { "message/partial", "Content-Type: message/partial; id=\"x\"; number=1; total=2\n",
      "From: a@example.com\n\npart one\n" },
    { "bad base64", "Content-Transfer-Encoding: base64\n", "!!!!****====\n\x01\x02" },
    { "unknown encoding", "Content-Transfer-Encoding: x-mystery\n", "abc\n" },
    { "broken uuencode", "Content-Transfer-Encoding: x-uuencode\n", "begin 644 x\nMMMMMMMM\n" },
    { "CRLF", "Subject: crlf\r\nContent-Type: text/plain\r\n", "line\r\n" },
    { "NUL in headers", "Subject: a\x01\x7f\n", "b" },
    { "encoded-word filename garbage",
      "Content-Type: application/octet-stream; name=\"=?x-unknown?Q?=FF=FE?=\"\n"
      "Content-Disposition: attachment; filename*=bogus'xx'%FF%FE%\n", "x" },
    { "8-bit filename", "Content-Disposition: attachment; filename=\"\xff\xfe.exe\"\n", "x" },
    { "From_ line", "From alice@example.com Mon Nov 23 10:00:00 2026\nSubject: x\n", "x\n" },
};

static void
test_odd_input(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(odd_cases); c++) {
        const char *h = odd_cases[c].headers, *b = odd_cases[c].body;
        GError *err = NULL;
        struct mq_message *msg;
        GPtrArray *seen, *ch;
        GByteArray *out;

        g_test_message("odd input: %s", odd_cases[c].what);
        msg = mq_message_parse(h, strlen(h), b, strlen(b), &default_limits, &err);
        if (msg == NULL) {
            g_assert_error(err, MQ_ERROR, MQ_ERROR_CORRUPT);
            g_clear_error(&err);
            continue;
        }
        g_assert_no_error(err);
        seen = walk(msg, &default_limits, &err);
        g_assert_no_error(err);
        for (guint i = 0; i < seen->len; i++) {
            struct seen_leaf *leaf = g_ptr_array_index(seen, i);

            if (leaf->filename != NULL)
                g_assert_true(g_utf8_validate(leaf->filename, -1, NULL));
            g_assert_true(g_utf8_validate(leaf->content_type, -1, NULL));
        }
        out = write_body(msg);
        ch = mq_message_content_headers(msg);
        for (guint i = 0; i < seen->len; i++)
            g_assert_cmpint(mq_message_replace_leaf(msg, i, "x", &err), ==, 0);
        g_byte_array_set_size(out, 0);
        g_byte_array_unref(out);
        out = write_body(msg);
        g_byte_array_unref(out);
        g_ptr_array_unref(ch);
        g_ptr_array_unref(seen);
        mq_message_free(&msg);
    }
}

/* Parse, walk, replace every leaf and write back; whatever the input, this
 * must not crash, and a walk error can only be a limit. */
static void
exercise(const char *data, size_t len)
{
    GError *err = NULL;
    struct mq_message *msg = parse_whole(data, len, &err);
    GPtrArray *seen, *ch;
    GByteArray *out;

    if (msg == NULL) {
        g_assert_error(err, MQ_ERROR, MQ_ERROR_CORRUPT);
        g_clear_error(&err);
        return;
    }
    seen = walk(msg, &default_limits, &err);
    if (seen == NULL) {
        g_assert_error(err, MQ_ERROR, MQ_ERROR_LIMIT);
        g_clear_error(&err);
        mq_message_free(&msg);
        return;
    }
    for (guint i = 0; i < seen->len; i++)
        g_assert_cmpint(mq_message_replace_leaf(msg, i, "removed", &err), ==, 0);
    out = write_body(msg);
    ch = mq_message_content_headers(msg);
    g_ptr_array_unref(ch);
    g_byte_array_unref(out);
    g_ptr_array_unref(seen);
    mq_message_free(&msg);
}

/* Deterministic mutations of every fixture: truncation, byte flips, stray
 * boundary and header lines. */
static void
test_mutations(void)
{
    static const char *const inserts[] = {
        "\n--=-outer-boundary-42\n", "\n--fwd-inner--\n", "\nContent-Type: multipart/mixed\n",
        "\nContent-Transfer-Encoding: base64\n", "\n\n", "=?utf-8?b?", "begin 644 x\n",
        "\nContent-Type: message/rfc822\n\n",
    };
    GRand *rand = g_rand_new_with_seed(20261124);
    unsigned runs = 0;

    for (gsize c = 0; c < G_N_ELEMENTS(fixture_cases); c++) {
        size_t len;
        char *orig = load_fixture(fixture_cases[c].file, &len);

        for (int m = 0; m < 300; m++) {
            GString *s = g_string_new_len(orig, (gssize)len);

            switch (m % 3) {
            case 0:
                g_string_truncate(s, g_rand_int_range(rand, 0, (gint32)len + 1));
                break;
            case 1:
                for (int k = 0; k < 8 && s->len > 0; k++)
                    s->str[g_rand_int_range(rand, 0, (gint32)s->len)] = (char)g_rand_int(rand);
                break;
            default:
                g_string_insert(s, g_rand_int_range(rand, 0, (gint32)s->len + 1),
                                inserts[g_rand_int_range(rand, 0, G_N_ELEMENTS(inserts))]);
                break;
            }
            exercise(s->str, s->len);
            runs++;
            g_string_free(s, TRUE);
        }
        g_free(orig);
    }
    g_test_message("%u mutated messages", runs);
    g_rand_free(rand);
}

/* What no boundary hides is still seen: a multipart GMime cannot split is a
 * leaf whose data is its raw content. */
static void
test_unsplittable_multipart(void)
{
    static const char headers[] = "Content-Type: multipart/mixed\n";
    static const char body[] = "--x\nContent-Type: text/plain\n\nhidden\n--x--\n";
    GError *err = NULL;
    struct mq_message *msg = mq_message_parse(headers, strlen(headers), body, strlen(body), &default_limits, &err);
    GPtrArray *seen;
    struct seen_leaf *leaf;

    g_assert_nonnull(msg);
    seen = walk(msg, &default_limits, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(seen->len, ==, 1);
    leaf = g_ptr_array_index(seen, 0);
    g_assert_cmpstr(leaf->content_type, ==, "multipart/mixed");
    g_assert_nonnull(find_mem(g_bytes_get_data(leaf->data, NULL),
                              g_bytes_get_size(leaf->data), "hidden"));
    g_ptr_array_unref(seen);
    mq_message_free(&msg);
}

/* A text part whose Content-Type has a parameter GMime cannot write back:
 * a name of 70 bytes with a value that needs RFC 2231 encoding (GMime 3.2.13
 * loops without end), an 8-bit name (GMime's parser then stops there, and
 * the charset written after it is lost), a value in RFC 2047 encoded words
 * (written back as one, with a quote inside that its parser decodes too
 * early). The notice goes into the next text part, or nowhere. All found
 * by fuzz-message. */
static void
test_notice_bad_parameter_name(void)
{
    static const struct {
        const char *name;           /* NULL: name_len times 'a' */
        unsigned name_len;
        const char *first;          /* what the first text part holds afterwards */
    } cases[] = {
        { NULL, 60, "NOTICE\n\nfirst" },
        { NULL, 70, "first" },      /* the notice went into the second part */
        { "cha\xe7-set", 0, "first" },
        { "x-y", 0, "NOTICE\n\nfirst" },
        { "x=\"a\xd7; b==?koi8-r\"; y", 0, "first" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        GString *body = g_string_new("--b\nContent-Type: text/plain; ");
        const char *headers = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n";
        bool skipped = strcmp(cases[i].first, "first") == 0;
        struct mq_message *msg;
        GError *err = NULL;
        GPtrArray *seen;

        if (cases[i].name != NULL)
            g_string_append(body, cases[i].name);
        for (unsigned k = 0; k < cases[i].name_len; k++)
            g_string_append_c(body, 'a');
        g_string_append(body, "=\xe9t\xe9\n\nfirst\n--b\nContent-Type: text/plain\n\nsecond\n--b--\n");
        msg = mq_message_parse(headers, strlen(headers), body->str, body->len, &default_limits, &err);
        g_assert_nonnull(msg);
        g_assert_cmpint(mq_message_prepend_notice(msg, "NOTICE", &err), ==, 1);
        g_assert_no_error(err);
        seen = walk(msg, &default_limits, &err);
        g_assert_no_error(err);
        assert_leaf_text(seen, 0, "text/plain", cases[i].first);
        assert_leaf_text(seen, 1, "text/plain", skipped ? "NOTICE\n\nsecond" : "second");
        g_ptr_array_unref(seen);
        mq_message_free(&msg);
        g_string_free(body, TRUE);
    }
}

/* A boundary with 8-bit bytes: GMime decodes it to UTF-8 and finds no
 * parts, a reader comparing bytes finds the attachment; its name and type
 * would never be checked. The walk calls it unscannable, nested or not. */
static void
test_boundary_8bit(void)
{
    static const struct {
        const char *boundary;
        unsigned leaves;            /* 0: MQ_ERROR_LIMIT */
    } cases[] = {
        { "bx", 2 },
        { "b\x81x", 0 },
        { "b\xe9x", 0 },
        { "\xff", 0 },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        for (int nested = 0; nested < 2; nested++) {
            const char *b = cases[i].boundary;
            char *headers = g_strdup_printf("MIME-Version: 1.0\nContent-Type: multipart/mixed; "
                                            "boundary=\"%s\"\n", nested ? "outer" : b);
            char *inner = g_strdup_printf("--%s\nContent-Type: text/plain\n\nhi\n--%s\n"
                                          "Content-Type: application/octet-stream; "
                                          "name=\"invoice.exe\"\n\nMZ\n--%s--\n", b, b, b);
            char *body = nested ? g_strdup_printf("--outer\nContent-Type: multipart/mixed; "
                                                  "boundary=\"%s\"\n\n%s--outer--\n", b, inner)
                                : g_strdup(inner);
            GError *err = NULL;
            struct mq_message *msg = mq_message_parse(headers, strlen(headers), body,
                                                      strlen(body), &default_limits, &err);
            GPtrArray *seen;

            g_assert_nonnull(msg);
            seen = walk(msg, &default_limits, &err);
            if (cases[i].leaves == 0) {
                g_assert_error(err, MQ_ERROR, MQ_ERROR_LIMIT);
                g_clear_error(&err);
            } else {
                g_assert_no_error(err);
                g_assert_cmpuint(seen->len, ==, cases[i].leaves);
                g_assert_cmpstr(((struct seen_leaf *)g_ptr_array_index(seen, 1))->filename, ==,
                                "invoice.exe");
            }
            g_clear_pointer(&seen, g_ptr_array_unref);
            mq_message_free(&msg);
            g_free(body);
            g_free(inner);
            g_free(headers);
        }
    }
}

/* Every file of the shared MIME corpus: parse, walk within limits, write
 * back unchanged, replace every other leaf, write again and re-parse. It
 * must never crash; the counts go to the test log. */
static void
test_corpus(void)
{
    const char *shared = g_getenv("MQ_SHARED_DIR");
    char *dirpath;
    GDir *dir;
    const char *name;
    unsigned files = 0, unparsed = 0, limited = 0, leaves = 0, identical = 0, replaced = 0;
    gint64 t0;

    if (shared == NULL) {
        g_test_skip("MQ_SHARED_DIR is not set");
        return;
    }
    dirpath = g_build_filename(shared, "corpus", "mime", NULL);
    dir = g_dir_open(dirpath, 0, NULL);
    if (dir == NULL) {
        g_test_skip("no corpus/mime in MQ_SHARED_DIR");
        g_free(dirpath);
        return;
    }
    t0 = g_get_monotonic_time();
    while ((name = g_dir_read_name(dir)) != NULL) {
        char *path, *data = NULL;
        gsize len = 0;
        size_t hlen, blen;
        const char *body;
        struct mq_message *msg;
        GError *err = NULL;
        GPtrArray *seen;
        GByteArray *out;

        if (!g_str_has_suffix(name, ".eml"))
            continue;
        path = g_build_filename(dirpath, name, NULL);
        if (!g_file_get_contents(path, &data, &len, NULL))
            g_error("cannot read %s", path);
        files++;
        test_split_message(data, len, &hlen, &body, &blen);
        msg = mq_message_parse(data, hlen, body, blen, &default_limits, &err);
        if (msg == NULL) {
            g_assert_error(err, MQ_ERROR, MQ_ERROR_CORRUPT);
            g_test_message("unparsed: %s", name);
            unparsed++;
            goto next;
        }
        seen = walk(msg, &default_limits, &err);
        if (seen == NULL) {
            g_assert_error(err, MQ_ERROR, MQ_ERROR_LIMIT);
            g_test_message("limit: %s: %s", name, err->message);
            limited++;
            goto next;
        }
        leaves += seen->len;
        out = write_body(msg);
        if (out->len == blen && (blen == 0 || memcmp(out->data, body, blen) == 0))
            identical++;
        else
            g_test_message("not byte-identical when unchanged: %s", name);
        g_byte_array_unref(out);

        for (guint i = 0; i < seen->len; i += 2) {
            g_assert_cmpint(mq_message_replace_leaf(msg, i, "removed", &err), ==, 0);
            g_assert_no_error(err);
            replaced++;
        }
        out = write_body(msg);
        if (!mq_message_body_replaced(msg)) {
            struct mq_message *again = mq_message_parse(data, hlen, (const char *)out->data,
                                                        out->len, &default_limits, &err);
            g_assert_no_error(err);
            g_assert_nonnull(again);
            mq_message_free(&again);
        }
        g_byte_array_unref(out);
        g_ptr_array_unref(seen);
    next:
        g_clear_error(&err);
        mq_message_free(&msg);
        g_free(data);
        g_free(path);
    }
    g_test_message("corpus: %u files, %u not parsed, %u over limits, %u leaves, "
                   "%u written back byte-identical, %u leaves replaced, %.1f ms",
                   files, unparsed, limited, leaves, identical, replaced,
                   (g_get_monotonic_time() - t0) / 1000.0);
    g_assert_cmpuint(files, >, 0);
    g_dir_close(dir);
    g_free(dirpath);
}

/* ---- the notice at the top of the first text part ------------------------- */

#define NOTICE "mqscan removed the following from this message:\n" \
               "  - invoice.exe: executable files are not allowed\n"
#define NOTICE_TOP NOTICE "\n"
#define MIXED "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"m\"\n"

/*
 * Each case: a message, optionally a leaf (or the whole body) replaced
 * first, then mq_message_prepend_notice(NOTICE). For rc 1, the leaf that
 * got the notice decodes to text (UTF-8) after write-back and re-parse,
 * every other leaf is as it was, and the body is 7-bit; top says the part
 * was the message's body, so its Content-* headers go to the caller.
 */
static const struct {
    const char *what;
    const char *headers;
    const char *body;
    int replace;                /* leaf replaced by "removed" first, or -1 */
    bool replace_body;
    int rc;
    unsigned leaf;              /* leaf with the notice */
    const char *text;           /* its decoded content afterwards */
    bool top;
} notice_cases[] = {
    { "us-ascii 7bit single part",
      "From: a@example.com\nSubject: hi\nMIME-Version: 1.0\n"
      "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n",
      "Hello Bob,\n\nsee you.\n", -1, false,
      1, 0, NOTICE_TOP "Hello Bob,\n\nsee you.\n", true },
    { "no MIME headers at all", "From: a@example.com\nSubject: hi\n",
      "plain old mail\n", -1, false, 1, 0, NOTICE_TOP "plain old mail\n", true },
    { "ISO-8859-1 quoted-printable",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-8859-1\n"
      "Content-Transfer-Encoding: quoted-printable\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n",
      "Caf=E9 cr=E8me br=FBl=E9e, =E0 bient=F4t.\nA soft =\nbreak.\n", -1, false,
      1, 0, NOTICE_TOP "Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e, \xc3\xa0 bient\xc3\xb4t.\n"
      "A soft break.\n", true },
    { "multipart/alternative: the text/plain part",
      "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"alt\"\n",
      "--alt\nContent-Type: text/plain; charset=us-ascii\n\nplain version\n"
      "--alt\nContent-Type: text/html; charset=us-ascii\n\n<p>html version</p>\n--alt--\n",
      -1, false, 1, 0, NOTICE_TOP "plain version", false },
    { "text/plain after text/html",
      "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"alt\"\n",
      "--alt\nContent-Type: text/html\n\n<p>html</p>\n"
      "--alt\nContent-Type: text/plain\n\nplain\n--alt--\n",
      -1, false, 1, 1, NOTICE_TOP "plain", false },
    { "base64 UTF-8",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: base64\n",
      "R3LDvMOfZSBhdXMgS8O2bG4sCnp3ZWl0ZSBaZWlsZS4K\n", -1, false,
      1, 0, NOTICE_TOP "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln,\nzweite Zeile.\n", true },
    /* The notice takes the CRLF line ends of the text; written back as
     * 7bit, every line end is the df file's LF. */
    { "base64 with CRLF lines",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"
      "Content-Transfer-Encoding: base64\n",
      "V2luZG93cyB0ZXh0DQpzZWNvbmQgbGluZQ0K\n", -1, false,
      1, 0, NOTICE_TOP "Windows text\nsecond line\n", true },
    { "format=flowed: notice lines space-stuffed",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\n",
      "This is flowed \ntext.\n>quoted\n", -1, false,
      1, 0, "mqscan removed the following from this message:\n"
            "   - invoice.exe: executable files are not allowed\n\n"
            "This is flowed \ntext.\n>quoted\n", true },
    { "Shift_JIS", "MIME-Version: 1.0\nContent-Type: text/plain; charset=Shift_JIS\n"
      "Content-Transfer-Encoding: 8bit\n",
      "\x93\xfa\x96{\x8c\xea\x82\xcc\x83" "e\x83L\x83X\x83g\n", -1, false,
      1, 0, NOTICE_TOP "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86"
            "\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88\n", true },
    { "unknown charset, 8-bit bytes: Windows-1252",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=x-mystery\n",
      "na\xefve caf\xe9 \x93quoted\x94\n", -1, false,
      1, 0, NOTICE_TOP "na\xc3\xafve caf\xc3\xa9 \xe2\x80\x9cquoted\xe2\x80\x9d\n", true },
    { "unknown charset, UTF-8 bytes: kept",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=x-mystery\n",
      "caf\xc3\xa9\n", -1, false, 1, 0, NOTICE_TOP "caf\xc3\xa9\n", true },
    { "us-ascii label on Latin-1 bytes",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n",
      "caf\xe9\n", -1, false, 1, 0, NOTICE_TOP "caf\xc3\xa9\n", true },
    { "ascii label on UTF-8 bytes",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=ANSI_X3.4-1968\n",
      "caf\xc3\xa9\n", -1, false, 1, 0, NOTICE_TOP "caf\xc3\xa9\n", true },
    { "UTF-8 label with a bad byte",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n",
      "ok \xff end\n", -1, false, 1, 0, NOTICE_TOP "ok \xef\xbf\xbd end\n", true },
    { "only an attachment", MIXED,
      "--m\nContent-Type: application/pdf; name=\"a.pdf\"\n"
      "Content-Disposition: attachment; filename=\"a.pdf\"\nContent-Transfer-Encoding: base64\n\n"
      "JVBERi0xLjQK\n--m--\n", -1, false, 0, 0, NULL, false },
    { "a text/plain attachment is not the text",
      "MIME-Version: 1.0\nContent-Type: text/plain\n"
      "Content-Disposition: attachment; filename=\"notes.txt\"\n",
      "file content\n", -1, false, 0, 0, NULL, false },
    { "HTML only", "MIME-Version: 1.0\nContent-Type: text/html\n",
      "<p>hello</p>\n", -1, false, 0, 0, NULL, false },
    { "inline text with a file name is a file: the next text part", MIXED,
      "--m\nContent-Type: text/plain; name=\"data.csv\"\n"
      "Content-Disposition: inline; filename=\"data.csv\"\n\na;b;c\n"
      "--m\nContent-Type: text/plain\n\nthe text\n--m--\n", -1, false,
      1, 1, NOTICE_TOP "the text", false },
    { "an attached message is not entered", MIXED,
      "--m\nContent-Type: text/html\n\n<p>see attached</p>\n"
      "--m\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n"
      "From: b@example.com\nSubject: fwd\n\ninner text\n--m--\n", -1, false,
      0, 0, NULL, false },
    { "an inline message is walked like the scan walk does", MIXED,
      "--m\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
      "--m\nContent-Type: message/rfc822\n\n"
      "From: b@example.com\nSubject: fwd\n\ninner text\n--m--\n", -1, false,
      1, 1, NOTICE_TOP "inner text", false },
    { "after a replacement: the first remaining text part", MIXED,
      "--m\nContent-Type: text/plain\n\ninfected text\n"
      "--m\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAEC\n"
      "--m\nContent-Type: text/plain\n\nfooter\n--m--\n", 0, false,
      1, 2, NOTICE_TOP "footer", false },
    { "replaced single part: nothing left", "Subject: x\n", "text\n", 0, false,
      0, 0, NULL, false },
    { "whole body replaced: nothing left", MIXED,
      "--m\nContent-Type: text/plain\n\ntext\n--m--\n", -1, true, 0, 0, NULL, false },
};

static bool
all_7bit_short_lines(const GByteArray *out)
{
    size_t line = 0;

    for (guint i = 0; i < out->len; i++) {
        if (out->data[i] >= 0x80)
            return false;
        line = out->data[i] == '\n' ? 0 : line + 1;
        if (line > 998)
            return false;
    }
    return true;
}

static void
test_notice(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(notice_cases); c++) {
        const char *h = notice_cases[c].headers, *b = notice_cases[c].body;
        GError *err = NULL;
        struct mq_message *msg;
        GPtrArray *before, *after, *ch = NULL;
        GByteArray *out;
        char *headers;
        int rc;

        g_test_message("notice case: %s", notice_cases[c].what);
        msg = mq_message_parse(h, strlen(h), b, strlen(b), &default_limits, &err);
        g_assert_no_error(err);
        before = walk(msg, &default_limits, &err);
        g_assert_no_error(err);
        if (notice_cases[c].replace >= 0)
            g_assert_cmpint(mq_message_replace_leaf(msg, (unsigned)notice_cases[c].replace,
                                                    "removed", &err), ==, 0);
        if (notice_cases[c].replace_body)
            mq_message_replace_body(msg, "removed");
        rc = mq_message_prepend_notice(msg, NOTICE, &err);
        g_assert_no_error(err);
        g_assert_cmpint(rc, ==, notice_cases[c].rc);
        out = write_body(msg);

        if (rc == 0) {
            if (notice_cases[c].replace < 0 && !notice_cases[c].replace_body) {
                g_assert_cmpmem(out->data, out->len, b, strlen(b));
                g_assert_false(mq_message_body_replaced(msg));
            }
            goto next;
        }

        g_assert_true(all_7bit_short_lines(out));
        g_assert_cmpint(mq_message_body_replaced(msg), ==, notice_cases[c].top);
        if (notice_cases[c].top) {
            bool charset = false, cte = false;

            ch = mq_message_content_headers(msg);
            for (guint i = 0; i < ch->len; i++) {
                const char *line = g_ptr_array_index(ch, i);

                charset |= g_str_has_prefix(line, "Content-Type: text/plain")
                           && strstr(line, "charset=utf-8") != NULL;
                cte |= g_str_has_prefix(line, "Content-Transfer-Encoding: ");
                g_assert_false(g_str_has_prefix(line, "Content-MD5"));
                if (strstr(h, "format=flowed") != NULL && g_str_has_prefix(line, "Content-Type"))
                    g_assert_nonnull(strstr(line, "format=flowed"));
            }
            g_assert_true(charset);
            g_assert_true(cte);
            headers = rebuild_headers(h, strlen(h), ch);
        } else {
            g_assert_nonnull(find_mem(out->data, out->len, "charset=utf-8"));
            headers = g_strdup(h);
        }
        after = reparse(headers, strlen(headers), out);
        g_assert_cmpuint(after->len, ==, before->len);
        for (guint i = 0; i < after->len; i++) {
            struct seen_leaf *was = g_ptr_array_index(before, i);
            struct seen_leaf *now = g_ptr_array_index(after, i);

            if (i == notice_cases[c].leaf)
                assert_leaf_text(after, i, "text/plain", notice_cases[c].text);
            else if ((int)i == notice_cases[c].replace)
                assert_leaf_text(after, i, "text/plain", "removed\n");
            else
                g_assert_true(g_bytes_equal(was->data, now->data));
        }
        g_ptr_array_unref(after);
        g_free(headers);

    next:
        if (ch != NULL)
            g_ptr_array_unref(ch);
        g_byte_array_unref(out);
        g_ptr_array_unref(before);
        mq_message_free(&msg);
    }
}

/* No walk is needed first; a second notice goes above the first; invalid
 * UTF-8 in the notice is repaired; a long line stays whole (quoted-
 * printable soft breaks); the fixtures all take a notice. */
static void
test_notice_more(void)
{
    static const char headers[] = "Subject: x\n";
    static const char body[] = "body\n";
    struct mq_message *msg = mq_message_parse(headers, strlen(headers), body, strlen(body), &default_limits, NULL);
    GString *long_line = g_string_new("\xff ");
    GError *err = NULL;
    GPtrArray *seen, *ch;
    GByteArray *out;
    char *rebuilt, *want;

    g_assert_cmpint(mq_message_prepend_notice(msg, "first\n", &err), ==, 1);
    g_assert_cmpint(mq_message_prepend_notice(msg, "second", &err), ==, 1);
    for (int i = 0; i < 200; i++)
        g_string_append(long_line, "0123456789");
    g_assert_cmpint(mq_message_prepend_notice(msg, long_line->str, &err), ==, 1);
    g_assert_no_error(err);
    out = write_body(msg);
    g_assert_true(all_7bit_short_lines(out));
    ch = mq_message_content_headers(msg);
    rebuilt = rebuild_headers(headers, strlen(headers), ch);
    seen = reparse(rebuilt, strlen(rebuilt), out);
    want = g_strdup_printf("\xef\xbf\xbd%s\n\nsecond\n\nfirst\n\nbody\n", long_line->str + 1);
    assert_leaf_text(seen, 0, "text/plain", want);
    g_free(want);
    g_ptr_array_unref(seen);
    g_free(rebuilt);
    g_ptr_array_unref(ch);
    g_byte_array_unref(out);
    g_string_free(long_line, TRUE);
    mq_message_free(&msg);

    for (gsize c = 0; c < G_N_ELEMENTS(fixture_cases); c++) {
        char *data;
        size_t len;

        /* Both text parts of rfc2231.eml are named files. */
        bool named = strcmp(fixture_cases[c].file, "rfc2231.eml") == 0;

        msg = parse_fixture(fixture_cases[c].file, &data, &len);
        g_test_message("notice into %s", fixture_cases[c].file);
        g_assert_cmpint(mq_message_prepend_notice(msg, NOTICE, &err), ==, named ? 0 : 1);
        g_assert_no_error(err);
        out = write_body(msg);
        if (!named) {
            g_assert_true(all_7bit_short_lines(out));
            g_assert_nonnull(find_mem(out->data, out->len, "mqscan removed the following"));
        }
        g_byte_array_unref(out);
        mq_message_free(&msg);
        g_free(data);
    }
}

/* Whatever the input (mutated fixtures, the shared corpus), a notice
 * either goes in or is refused with 0, and the result writes back and
 * parses again. */
static void
notice_exercise(const char *data, size_t len, unsigned *done_r)
{
    GError *err = NULL;
    struct mq_message *msg = parse_whole(data, len, &err);
    GByteArray *out;
    int rc;

    if (msg == NULL) {
        g_clear_error(&err);
        return;
    }
    rc = mq_message_prepend_notice(msg, NOTICE, &err);
    g_assert_no_error(err);
    g_assert_true(rc == 0 || rc == 1);
    *done_r += (unsigned)rc;
    out = write_body(msg);
    if (rc == 1) {
        const char *body;
        size_t hlen, blen;
        struct mq_message *again;

        /* In clear, unless GMime chose base64 for mostly 8-bit text (its
         * header is in the body, or in the message's header block when
         * the part is the whole body). */
        bool base64 = find_mem(out->data, out->len, "base64") != NULL;

        if (mq_message_body_replaced(msg)) {
            GPtrArray *ch = mq_message_content_headers(msg);

            for (guint i = 0; i < ch->len; i++)
                base64 |= strstr(g_ptr_array_index(ch, i), "base64") != NULL;
            g_ptr_array_unref(ch);
        }
        if (find_mem(out->data, out->len, "mqscan removed") == NULL && !base64)
            g_error("notice not found in:\n%.*s", (int)MIN(out->len, 2000), out->data);
        test_split_message(data, len, &hlen, &body, &blen);
        again = mq_message_parse(data, hlen, (const char *)out->data, out->len, &default_limits, &err);
        g_assert_no_error(err);
        mq_message_free(&again);
    }
    g_byte_array_unref(out);
    mq_message_free(&msg);
}

static void
test_notice_hostile(void)
{
    const char *shared = g_getenv("MQ_SHARED_DIR");
    GRand *rand = g_rand_new_with_seed(20261125);
    unsigned runs = 0, done = 0;
    char *dirpath;
    GDir *dir;
    const char *name;

    for (gsize c = 0; c < G_N_ELEMENTS(fixture_cases); c++) {
        size_t len;
        char *orig = load_fixture(fixture_cases[c].file, &len);

        for (int m = 0; m < 100; m++) {
            GString *s = g_string_new_len(orig, (gssize)len);

            if (m % 2 == 0)
                g_string_truncate(s, g_rand_int_range(rand, 0, (gint32)len + 1));
            else
                for (int k = 0; k < 8 && s->len > 0; k++)
                    s->str[g_rand_int_range(rand, 0, (gint32)s->len)] = (char)g_rand_int(rand);
            notice_exercise(s->str, s->len, &done);
            runs++;
            g_string_free(s, TRUE);
        }
        g_free(orig);
    }
    g_rand_free(rand);

    if (shared != NULL) {
        dirpath = g_build_filename(shared, "corpus", "mime", NULL);
        dir = g_dir_open(dirpath, 0, NULL);
        while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
            char *path, *data = NULL;
            gsize len = 0;

            if (!g_str_has_suffix(name, ".eml"))
                continue;
            path = g_build_filename(dirpath, name, NULL);
            if (!g_file_get_contents(path, &data, &len, NULL))
                g_error("cannot read %s", path);
            notice_exercise(data, len, &done);
            runs++;
            g_free(data);
            g_free(path);
        }
        if (dir != NULL)
            g_dir_close(dir);
        g_free(dirpath);
    }
    g_test_message("%u messages, %u took a notice", runs, done);
}

/* mq_message_append_utf8(): whatever the bytes and the declared charset,
 * the text comes out as valid UTF-8 (NUL bytes kept). glibc's iconv passes
 * some invalid UTF-8 through from "UTF-8": lead bytes F5-F7 and code points
 * above U+10FFFF (found by fuzz-message). */
static void
test_append_utf8(void)
{
    static const struct {
        const char *charset;
        const char *in;
        size_t len;
        const char *out;
        size_t out_len;
    } cases[] = {
#define C(cs, in, out) { cs, in, sizeof(in) - 1, out, sizeof(out) - 1 }
        C("utf-8", "caf\xc3\xa9", "caf\xc3\xa9"),
        C("utf-8", "a\xf7\xa3\xac\xb6" "b", "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "b"),
        C("UTF-8", "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
        C("utf-8", "\xed\xa0\x80.", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd."),
        C("utf-8", "\xf8\x88\x80\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
        C("utf-8", "a\0b\xc3", "a\0b\xef\xbf\xbd"),
        C("iso-8859-1", "caf\xe9", "caf\xc3\xa9"),
        C(NULL, "caf\xe9", "caf\xc3\xa9"),
        C("us-ascii", "caf\xc3\xa9", "caf\xc3\xa9"),
        C("x-no-such-charset", "\x80", "\xe2\x82\xac"),
#undef C
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        GString *out = g_string_new(NULL);

        mq_message_append_utf8(out, cases[i].charset, cases[i].in, cases[i].len);
        g_assert_cmpmem(out->str, out->len, cases[i].out, cases[i].out_len);
        g_string_free(out, TRUE);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    mq_log_open("test-message", MQ_LOG_SINK_STDERR);

    g_test_add_func("/message/fixtures", test_fixtures);
    g_test_add_func("/message/unchanged-roundtrip", test_unchanged_roundtrip);
    g_test_add_func("/message/limits", test_limits);
    g_test_add_func("/message/census", test_census);
    g_test_add_func("/message/callback-error", test_callback_error);
    g_test_add_func("/message/replace/attachment", test_replace_attachment);
    g_test_add_func("/message/replace/single", test_replace_single);
    g_test_add_func("/message/replace/nested", test_replace_nested);
    g_test_add_func("/message/replace/body", test_replace_body);
    g_test_add_func("/message/replace/text-encoding", test_replace_text_encoding);
    g_test_add_func("/message/replace/all-leaves", test_replace_all_leaves);
    g_test_add_func("/message/replace/bad-index-panics", test_bad_index_panics);
    g_test_add_func("/message/content-headers", test_content_headers);
    g_test_add_func("/message/notice/cases", test_notice);
    g_test_add_func("/message/notice/more", test_notice_more);
    g_test_add_func("/message/notice/hostile", test_notice_hostile);
    g_test_add_func("/message/notice/bad-parameter-name", test_notice_bad_parameter_name);
    g_test_add_func("/message/write-appends", test_write_appends);
    g_test_add_func("/message/append-utf8", test_append_utf8);
    g_test_add_func("/message/odd-input", test_odd_input);
    g_test_add_func("/message/unsplittable-multipart", test_unsplittable_multipart);
    g_test_add_func("/message/boundary-8bit", test_boundary_8bit);
    g_test_add_func("/message/mutations", test_mutations);
    g_test_add_func("/message/corpus", test_corpus);
    return g_test_run();
}
