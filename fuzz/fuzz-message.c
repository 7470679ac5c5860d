/* fuzz-message - the MIME walk and rebuild (mqscan/message.h).
 *
 * The input is a whole message; it is split at the first empty line into
 * the header block (as mqscand takes it from the qf) and the body (the df).
 * If GMime makes a message of it:
 *  - every leaf is walked within mqscand's default limits; a leaf's type is
 *    lower-case UTF-8 and its file name valid UTF-8, shown only sanitized;
 *    text leaves are read in each of a few charsets, which must give valid
 *    UTF-8 whatever the bytes;
 *  - as process.c does to an infected message: every other leaf is replaced
 *    by a notice, a notice goes above the first text, the Content-* headers
 *    go into a qf if the top-level part changed (each one line, or folded
 *    with a TAB: no header can be smuggled into the qf), and the body is
 *    written out; the qf must still parse, and the rebuilt message (qf
 *    headers and body, as it is scanned again) must parse and walk;
 *  - on a second parse the whole body is replaced, as for a finding that no
 *    single part explains.
 * Whatever does not hold panics.
 */
#include <config.h>

#include <string.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/message.h"
#include "mqscan/qf.h"

#include "fuzz.h"
#include "testutil.h"

/* mqscand's defaults (max_mime_depth, max_mime_parts). */
static const struct mq_message_limits fuzz_limits = { 20, 1000 };

/* As process.c caps a file name before it is logged or stored. */
#define FUZZ_NAME_MAX 200

/* Text that takes the place of a part: 8-bit and a long line, so that the
 * new part needs quoted-printable and soft line breaks. */
#define FUZZ_REPLACEMENT "Part removed (caf\xc3\xa9): " \
    "a line longer than seventy-six characters, which quoted-printable must break.\n"
/* A notice with what format=flowed must stuff. */
#define FUZZ_NOTICE "Removed:\n  - one part\n>quoted\nFrom here\n"

/* A qf whose headers stand for the message's in the outgoing queue. */
#define FUZZ_QF "V8\nT0\nK0\nN0\nP0\nS<alice@example.com>\nRPFD:<bob@example.net>\n" \
    "H??From: alice@example.com\nH??Subject: test\nH??MIME-Version: 1.0\n" \
    "H??Content-Type: text/plain\n.\n"

/* Charsets a text leaf is read in: none (UTF-8 or Windows-1252), UTF-8
 * through iconv, stateful and multi-byte ones, one iconv does not know.
 * Only the start of a big leaf: the conversion loop is what is tested. */
static const char *const fuzz_charsets[] = {
    NULL, "utf-8", "iso-2022-jp", "utf-16", "x-no-such-charset",
};
#define FUZZ_TEXT_MAX 65536

struct fuzz_walk {
    unsigned leaves;
};

static int
fuzz_leaf(const struct mq_message_leaf *leaf, const void *data, size_t len, void *ctx,
          GError **err)
{
    struct fuzz_walk *walk = ctx;
    const char *type = leaf->content_type;

    if (leaf->index != walk->leaves)
        mq_log_panic("leaf %u handed out as number %u", walk->leaves, leaf->index);
    walk->leaves++;
    if (type == NULL || !g_utf8_validate(type, -1, NULL))
        mq_log_panic("leaf %u: content type missing or not UTF-8", leaf->index);
    for (const char *p = type; *p != '\0'; p++)
        if (g_ascii_isupper(*p))
            mq_log_panic("leaf %u: content type not in lower case", leaf->index);
    if (leaf->depth > fuzz_limits.max_depth)
        mq_log_panic("leaf %u: depth %u over the limit", leaf->index, leaf->depth);
    if (leaf->filename != NULL) {
        char *shown;

        if (!g_utf8_validate(leaf->filename, -1, NULL))
            mq_log_panic("leaf %u: file name not UTF-8", leaf->index);
        shown = mq_log_sanitize(leaf->filename, FUZZ_NAME_MAX);
        fuzz_check_shown("file name", shown, FUZZ_NAME_MAX);
        g_free(shown);
    }
    for (gsize c = 0; g_str_has_prefix(type, "text/") && c < G_N_ELEMENTS(fuzz_charsets); c++) {
        const char *charset = fuzz_charsets[c];
        GString *text = g_string_new(NULL);

        mq_message_append_utf8(text, charset, data, MIN(len, FUZZ_TEXT_MAX));
        /* NUL bytes of the part may stay; GLib's validator stops at them. */
        for (gsize i = 0; i < text->len; i++)
            if (text->str[i] == '\0')
                text->str[i] = ' ';
        if (!g_utf8_validate_len(text->str, text->len, NULL))
            mq_log_panic("leaf %u: text read as %s is not UTF-8", leaf->index,
                         charset != NULL ? charset : "(none)");
        g_string_free(text, TRUE);
    }
    return 0;
}

/* Walks msg; returns the number of leaves, or -1 if a limit stopped it. */
static int
fuzz_walk(struct mq_message *msg)
{
    struct fuzz_walk walk = { 0 };
    GError *error = NULL;

    if (mq_message_foreach_leaf(msg, &fuzz_limits, fuzz_leaf, &walk, &error) < 0) {
        if (error->domain != MQ_ERROR || error->code != MQ_ERROR_LIMIT)
            mq_log_panic("walk failed, not on a limit: %s", error->message);
        g_error_free(error);
        return -1;
    }
    return (int)walk.leaves;
}

/* The Content-* headers of a changed top-level part, put into a qf as
 * process.c does; the qf must still parse. Returns the qf's header block
 * (caller frees). */
static GString *
fuzz_headers_into_qf(struct mq_message *msg)
{
    struct mq_qf *qf, *again;
    GString *headers = g_string_new(NULL), *out = g_string_new(NULL);
    GError *error = NULL;

    qf = mq_qf_parse(FUZZ_QF, strlen(FUZZ_QF), &error);
    if (qf == NULL)
        mq_log_panic("fixed qf: %s", error->message);
    if (mq_message_body_replaced(msg)) {
        GPtrArray *ch = mq_message_content_headers(msg);

        for (guint i = 0; i < ch->len; i++) {
            const char *h = g_ptr_array_index(ch, i);
            const char *colon = strchr(h, ':');

            if (colon == NULL || colon == h)
                mq_log_panic("content header \"%s\" has no name", h);
            for (const char *p = h; p < colon; p++)
                if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
                    mq_log_panic("content header name with byte 0x%02x", (unsigned char)*p);
            for (const char *p = strchr(h, '\n'); p != NULL; p = strchr(p + 1, '\n'))
                if (p[1] != '\t')
                    mq_log_panic("content header line break not followed by a TAB");
        }
        mq_qf_replace_content_headers(qf, ch);
        g_ptr_array_unref(ch);
    }
    mq_qf_format(qf, MQ_QF_FORMAT_NEW_ENTRY, out);
    again = mq_qf_parse(out->str, out->len, &error);
    if (again == NULL)
        mq_log_panic("qf with the new content headers does not parse: %s", error->message);
    mq_qf_headers_text(again, headers);
    mq_qf_free(&again);
    mq_qf_free(&qf);
    g_string_free(out, TRUE);
    return headers;
}

/* The rebuilt message, as process_verify() scans it: it must parse. */
static void
fuzz_rebuilt(struct mq_message *msg)
{
    GByteArray *body = g_byte_array_new();
    GString *headers;
    struct mq_message *rebuilt;
    GError *error = NULL;

    headers = fuzz_headers_into_qf(msg);
    if (mq_message_write_body(msg, body, &error) < 0)
        mq_log_panic("rebuilt body not written: %s", error->message);
    rebuilt = mq_message_parse(headers->str, headers->len, (const char *)body->data, body->len,
                               &error);
    if (rebuilt == NULL)
        mq_log_panic("rebuilt message does not parse: %s", error->message);
    (void)fuzz_walk(rebuilt);
    mq_message_free(&rebuilt);
    g_string_free(headers, TRUE);
    g_byte_array_unref(body);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data, *body;
    size_t headers_len, body_len;
    struct mq_message *msg;
    GError *error = NULL;
    int leaves;

    test_split_message(buf, size, &headers_len, &body, &body_len);
    msg = mq_message_parse(buf, headers_len, body, body_len, &error);
    if (msg == NULL) {
        if (error == NULL || error->domain != MQ_ERROR)
            mq_log_panic("mq_message_parse failed without an MQ_ERROR");
        g_error_free(error);
        return 0;
    }

    leaves = fuzz_walk(msg);
    if (leaves >= 0) {
        /* Every other leaf; a lone leaf is the message's own part. */
        for (int i = leaves == 1 ? 0 : 1; i < leaves; i += 2) {
            if (mq_message_replace_leaf(msg, (unsigned)i, FUZZ_REPLACEMENT, &error) < 0)
                mq_log_panic("leaf %d not replaced: %s", i, error->message);
        }
        if (mq_message_prepend_notice(msg, FUZZ_NOTICE, &error) < 0)
            g_clear_error(&error);
        fuzz_rebuilt(msg);
    }
    mq_message_free(&msg);

    msg = mq_message_parse(buf, headers_len, body, body_len, &error);
    if (msg == NULL)
        mq_log_panic("second parse failed: %s", error->message);
    mq_message_replace_body(msg, FUZZ_NOTICE);
    fuzz_rebuilt(msg);
    mq_message_free(&msg);
    return 0;
}
