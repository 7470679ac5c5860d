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
 *    go into the qf (made of the input's header block, 8-bit bytes quoted
 *    as sendmail quotes them) if the top-level part changed (each one line,
 *    or folded with a TAB: no header can be smuggled into the qf), and the
 *    body is written out; the qf must still parse, and the rebuilt message
 *    (qf headers and body, as it is scanned again and delivered) must
 *    parse, walk, and have the top-level type, charset and boundary that
 *    the edited message has;
 *  - on a second parse a lone leaf (the message's own part) is replaced,
 *    or else the whole body, as for a finding that no single part explains.
 * Whatever does not hold panics.
 */
#include <config.h>

#include <string.h>

#include <glib.h>
#include <gmime/gmime.h>

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

/* The envelope of the qf that carries the message's headers. */
#define FUZZ_QF_ENVELOPE "V8\nT0\nK0\nN0\nP0\nS<alice@example.com>\nRPFD:<bob@example.net>\n"

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

/*
 * The header block as sendmail keeps it in a qf: one H record per header
 * line, continuation lines as they are, LF line ends, and the bytes sendmail
 * uses itself (0x80 to 0x9f, 0xff) quoted with a 0xff byte. NULL if the
 * block does not make a qf (a line that is neither a header nor a
 * continuation, NUL bytes): such a message never reaches mqscand with these
 * headers.
 */
static struct mq_qf *
fuzz_qf_from_headers(const char *headers, size_t len)
{
    GString *text = g_string_new(FUZZ_QF_ENVELOPE);
    const char *p = headers, *end = headers + len;
    struct mq_qf *qf;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl != NULL ? nl : end) - p);

        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        if (*p != ' ' && *p != '\t')
            g_string_append(text, "H??");
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];

            if ((c >= 0x80 && c < 0xa0) || c == 0xff)
                g_string_append_c(text, '\377');
            g_string_append_c(text, (char)c);
        }
        g_string_append_c(text, '\n');
        p = nl != NULL ? nl + 1 : end;
    }
    g_string_append(text, ".\n");
    qf = mq_qf_parse(text->str, text->len, NULL);
    g_string_free(text, TRUE);
    return qf;
}

static unsigned
fuzz_count_lines(const char *s)
{
    unsigned n = 1;

    for (const char *p = strchr(s, '\n'); p != NULL; p = strchr(p + 1, '\n'))
        n++;
    return n;
}

/* The Content-* headers of a changed top-level part, put into the qf as
 * process.c does; the qf must still parse. Returns the qf's header block
 * (caller frees). */
static GString *
fuzz_headers_into_qf(struct mq_message *msg, struct mq_qf *qf)
{
    struct mq_qf *again;
    GString *headers = g_string_new(NULL), *out = g_string_new(NULL);
    GPtrArray *ch = NULL;
    GError *error = NULL;

    if (mq_message_body_replaced(msg)) {
        ch = mq_message_content_headers(msg);

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
    }
    mq_qf_format(qf, MQ_QF_FORMAT_NEW_ENTRY, out);
    again = mq_qf_parse(out->str, out->len, &error);
    if (again == NULL)
        mq_log_panic("qf with the new content headers does not parse: %s", error->message);
    /* They come last, in order, and keep their folded lines (a fold made
     * into "??" would join a parameter to junk). */
    for (guint i = 0; ch != NULL && i < ch->len; i++) {
        const char *h = g_ptr_array_index(ch, i), *name, *value;
        size_t n = mq_qf_header_count(again) - ch->len + i;

        mq_qf_header(again, n, &name, &value);
        if (strncmp(h, name, strlen(name)) != 0 || h[strlen(name)] != ':')
            mq_log_panic("content header %u is not where it was put", i);
        if (strlen(h) <= MQ_QF_HEADER_MAX && fuzz_count_lines(h) != fuzz_count_lines(value))
            mq_log_panic("content header lost its folded lines: \"%s\" is \"%s\" in the qf", h, value);
    }
    g_clear_pointer(&ch, g_ptr_array_unref);
    mq_qf_headers_text(again, headers);
    mq_qf_free(&again);
    g_string_free(out, TRUE);
    return headers;
}

/* A parameter of the top-level Content-Type, or "". */
static const char *
fuzz_top_parameter(struct mq_message *msg, const char *name)
{
    GMimeObject *top = g_mime_message_get_mime_part(mq_message_gmime(msg));
    const char *value = top != NULL ? g_mime_object_get_content_type_parameter(top, name) : NULL;

    return value != NULL ? value : "";
}

/* The top-level type as a reader of the rebuilt message sees it must be the
 * one mqscan meant: same type, charset and boundary. */
static void
fuzz_same_top(struct mq_message *msg, struct mq_message *rebuilt)
{
    static const char *const params[] = { "charset", "boundary" };
    GMimeObject *t1 = g_mime_message_get_mime_part(mq_message_gmime(msg));
    GMimeObject *t2 = g_mime_message_get_mime_part(mq_message_gmime(rebuilt));
    char *m1, *m2;

    if (t1 == NULL || t2 == NULL)
        return;
    m1 = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(t1));
    m2 = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(t2));
    if (g_ascii_strcasecmp(m1, m2) != 0)
        mq_log_panic("rebuilt message is %s, meant to be %s", m2, m1);
    for (size_t i = 0; i < G_N_ELEMENTS(params); i++) {
        const char *v1 = fuzz_top_parameter(msg, params[i]);
        const char *v2 = fuzz_top_parameter(rebuilt, params[i]);

        if (strcmp(v1, v2) != 0)
            mq_log_panic("rebuilt message has %s \"%s\", meant to be \"%s\"", params[i], v2, v1);
    }
    g_free(m1);
    g_free(m2);
}

/* The rebuilt message, as process_verify() scans it and the recipient
 * reads it (headers from a qf made of the original header block): it must
 * parse, with the top-level type that was meant. */
static void
fuzz_rebuilt(struct mq_message *msg, const char *header_block, size_t header_len)
{
    struct mq_qf *qf = fuzz_qf_from_headers(header_block, header_len);
    GByteArray *body;
    GString *headers;
    struct mq_message *rebuilt;
    GError *error = NULL;

    if (qf == NULL)
        return;
    body = g_byte_array_new();
    headers = fuzz_headers_into_qf(msg, qf);
    if (mq_message_write_body(msg, body, &error) < 0)
        mq_log_panic("rebuilt body not written: %s", error->message);
    rebuilt = mq_message_parse(headers->str, headers->len, (const char *)body->data, body->len,
                               &fuzz_limits, &error);
    if (rebuilt == NULL)
        mq_log_panic("rebuilt message does not parse: %s", error->message);
    fuzz_same_top(msg, rebuilt);
    (void)fuzz_walk(rebuilt);
    mq_message_free(&rebuilt);
    g_string_free(headers, TRUE);
    g_byte_array_unref(body);
    mq_qf_free(&qf);
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
    msg = mq_message_parse(buf, headers_len, body, body_len, &fuzz_limits, &error);
    if (msg == NULL) {
        if (error == NULL || error->domain != MQ_ERROR)
            mq_log_panic("mq_message_parse failed without an MQ_ERROR");
        g_error_free(error);
        return 0;
    }

    /* Leaves 1, 3, 5 ... replaced, then the notice (so into the message's
     * own part when it is a lone text). */
    leaves = fuzz_walk(msg);
    if (leaves >= 0) {
        for (int i = 1; i < leaves; i += 2) {
            if (mq_message_replace_leaf(msg, (unsigned)i, FUZZ_REPLACEMENT, &error) < 0)
                mq_log_panic("leaf %d not replaced: %s", i, error->message);
        }
        if (mq_message_prepend_notice(msg, FUZZ_NOTICE, &error) < 0)
            g_clear_error(&error);
        fuzz_rebuilt(msg, buf, headers_len);
    }
    mq_message_free(&msg);

    /* A lone leaf replaced (the message's own part), or else the body. */
    msg = mq_message_parse(buf, headers_len, body, body_len, &fuzz_limits, &error);
    if (msg == NULL)
        mq_log_panic("second parse failed: %s", error->message);
    if (leaves == 1 && fuzz_walk(msg) == 1) {
        if (mq_message_replace_leaf(msg, 0, FUZZ_REPLACEMENT, &error) < 0)
            mq_log_panic("lone leaf not replaced: %s", error->message);
    } else {
        mq_message_replace_body(msg, FUZZ_NOTICE);
    }
    fuzz_rebuilt(msg, buf, headers_len);
    mq_message_free(&msg);
    return 0;
}
