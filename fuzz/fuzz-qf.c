/* fuzz-qf - the qf parser, editor and formatter (mqscan/qf.h).
 *
 * The input is a queue control file, as mqscand reads it from the incoming
 * queue. If it parses:
 *  - formatting it unedited gives the input back byte for byte;
 *  - the form written for a new queue entry parses again, keeps the sender,
 *    recipients and headers, and formats the same after that second parse;
 *  - after the edits mqscand makes (its own and the spam headers removed
 *    and added with values taken from the message, a subject tag, the
 *    Content-* headers replaced, a recipient removed, or every recipient
 *    replaced by one, as a quarantine release does) the qf still parses,
 *    and parsing and formatting it again changes nothing.
 * Whatever does not hold panics.
 */
#include <config.h>

#include <string.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/qf.h"

#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    return 0;
}

/* Formats qf with flags; the text must parse again and format the same
 * (the round trip is stable). Returns the text; caller frees. */
static GString *
fuzz_qf_stable(const struct mq_qf *qf, unsigned flags, const char *what)
{
    GString *out = g_string_new(NULL), *again = g_string_new(NULL);
    GError *error = NULL;
    struct mq_qf *reparsed;

    mq_qf_format(qf, flags, out);
    reparsed = mq_qf_parse(out->str, out->len, &error);
    if (reparsed == NULL)
        mq_log_panic("%s: formatted qf does not parse: %s", what, error->message);
    if (strcmp(mq_qf_sender(qf), mq_qf_sender(reparsed)) != 0
        || mq_qf_rcpt_count(qf) != mq_qf_rcpt_count(reparsed)
        || mq_qf_header_count(qf) != mq_qf_header_count(reparsed))
        mq_log_panic("%s: sender, recipients or headers changed on reparsing", what);
    for (size_t i = 0; i < mq_qf_rcpt_count(qf); i++) {
        const char *f1, *f2;
        const char *a1 = mq_qf_rcpt(qf, i, &f1), *a2 = mq_qf_rcpt(reparsed, i, &f2);

        if (strcmp(a1, a2) != 0 || strcmp(f1, f2) != 0)
            mq_log_panic("%s: recipient %zu changed on reparsing", what, i);
    }
    for (size_t i = 0; i < mq_qf_header_count(qf); i++) {
        const char *n1, *v1, *n2, *v2;

        mq_qf_header(qf, i, &n1, &v1);
        mq_qf_header(reparsed, i, &n2, &v2);
        if (strcmp(n1, n2) != 0 || strcmp(v1, v2) != 0)
            mq_log_panic("%s: header %zu changed on reparsing", what, i);
    }
    /* What was written for a new entry is already new: the flag changes
     * nothing the second time. */
    mq_qf_format(reparsed, flags, again);
    if (!g_string_equal(out, again))
        mq_log_panic("%s: formatting the reparsed qf gives other bytes", what);
    g_string_free(again, TRUE);
    mq_qf_free(&reparsed);
    return out;
}

/* The accessors a worker calls, for whatever they may read out of bounds. */
static void
fuzz_qf_read(const struct mq_qf *qf)
{
    GString *text = g_string_new(NULL);
    const char *name, *value;

    (void)mq_qf_ctime(qf);
    (void)mq_qf_body_type(qf);
    (void)mq_qf_macro(qf, "_");
    (void)mq_qf_macro(qf, "s");
    (void)mq_qf_macro(qf, "daemon_flags");
    (void)mq_qf_find_header(qf, "Subject");
    for (size_t i = 0; i < mq_qf_header_count(qf); i++)
        mq_qf_header(qf, i, &name, &value);
    mq_qf_headers_text(qf, text);
    if (text->len > 0 && text->str[text->len - 1] != '\n')
        mq_log_panic("headers text does not end in a newline");
    g_string_free(text, TRUE);
}

/* The edits of process.c and quarantine.c, with values from the qf itself
 * where the daemon takes them from the message. */
static void
fuzz_qf_edit(struct mq_qf *qf)
{
    GPtrArray *content = g_ptr_array_new_with_free_func(g_free);
    const char *subject = mq_qf_find_header(qf, "Subject");
    const char *name, *value;

    mq_qf_remove_headers(qf, "X-mqscan");
    mq_qf_remove_headers(qf, "X-Spam-");
    mq_qf_add_header(qf, "X-Spam-Status", subject != NULL ? subject : "");
    mq_qf_add_header(qf, "X-mqscan", mq_qf_sender(qf));
    mq_qf_prefix_header(qf, "Subject", "[SPAM]");
    /* The top-level MIME headers of a rebuilt body: here the message's own
     * headers, as mq_message_content_headers() would give them back. */
    for (size_t i = 0; i < mq_qf_header_count(qf) && content->len < 8; i++) {
        mq_qf_header(qf, i, &name, &value);
        g_ptr_array_add(content, g_strdup_printf("%s: %s", name, value));
    }
    mq_qf_replace_content_headers(qf, content);
    g_ptr_array_unref(content);
    if (mq_qf_rcpt_count(qf) > 1)
        mq_qf_remove_rcpt(qf, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct mq_qf *qf;
    GString *out, *fresh, *edited;
    GError *error = NULL;

    qf = mq_qf_parse(buf, size, &error);
    if (qf == NULL) {
        if (error == NULL || error->domain != MQ_ERROR || error->code != MQ_ERROR_CORRUPT)
            mq_log_panic("mq_qf_parse failed without MQ_ERROR_CORRUPT");
        g_error_free(error);
        return 0;
    }
    fuzz_qf_read(qf);

    out = g_string_new(NULL);
    mq_qf_format(qf, 0, out);
    if (out->len != size || memcmp(out->str, buf, size) != 0)
        mq_log_panic("unedited qf does not format back to its input");
    g_string_free(out, TRUE);

    fresh = fuzz_qf_stable(qf, MQ_QF_FORMAT_NEW_ENTRY, "new entry");
    g_string_free(fresh, TRUE);

    fuzz_qf_edit(qf);
    fuzz_qf_read(qf);
    edited = fuzz_qf_stable(qf, MQ_QF_FORMAT_NEW_ENTRY, "edited");
    g_string_free(edited, TRUE);

    mq_qf_set_recipient(qf, "postmaster@example.org");
    edited = fuzz_qf_stable(qf, 0, "one recipient");
    g_string_free(edited, TRUE);

    mq_qf_free(&qf);
    return 0;
}
