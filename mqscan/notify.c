#include <config.h>

#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <gmime/gmime.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/notify.h"
#include "mqscan/qf.h"

#define NOTIFY_MAX_RCPTS 100
#define NOTIFY_SUBJECT_MAX 200

static gsize notify_init_done;

static void
notify_init(void)
{
    if (g_once_init_enter(&notify_init_done)) {
        g_mime_init();
        g_once_init_leave(&notify_init_done, 1);
    }
}

/* "lower case letters and digits" base 36, at least width characters. */
static void
notify_base36(GString *out, guint64 v, unsigned width)
{
    char buf[16];
    unsigned n = 0;

    do {
        buf[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        v /= 36;
    } while (v != 0 && n < sizeof(buf));
    while (n < width && n < sizeof(buf))
        buf[n++] = '0';
    while (n > 0)
        g_string_append_c(out, buf[--n]);
}

/* A queue ID of our own: "N" + time + pid + a counter, 14 characters, well
 * within sendmail's limit on queue file names and unlike its own IDs
 * (which never start with "N" followed by lower case). */
static char *
notify_queue_id(void)
{
    static gint counter;
    GString *id = g_string_new("N");

    notify_base36(id, (guint64)time(NULL) % G_GUINT64_CONSTANT(2176782336), 6);
    notify_base36(id, (guint64)getpid() % 1679616, 4);
    notify_base36(id, (guint64)(g_atomic_int_add(&counter, 1) & 0xffff) % 46656, 3);
    return g_string_free(id, FALSE);
}

static bool
notify_address_ok(const char *a)
{
    size_t n = a ? strlen(a) : 0;

    if (n == 0 || n > 254)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= ' ' || c >= 0x7f || strchr("<>()[]\\,;:\"", c) != NULL)
            return false;
    }
    return true;
}

/* Turns the header block GMime wrote into qf H records: one record per
 * field, continuation lines kept (they start with a blank). */
static void
notify_headers_to_qf(const char *headers, size_t len, GString *qf)
{
    const char *p = headers, *end = headers + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0) {
            if (*p == ' ' || *p == '\t')
                g_string_append_len(qf, p, n);
            else {
                g_string_append(qf, "H??");
                g_string_append_len(qf, p, n);
            }
            g_string_append_c(qf, '\n');
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
}

char *
mq_notify_send(const struct mq_config *config, struct mq_queue *outgoing,
               const char *const *to, const char *subject, const char *text, GError **err)
{
    return mq_notify_send_attached(config, outgoing, to, subject, text, NULL, NULL, NULL, 0, err);
}

char *
mq_notify_send_attached(const struct mq_config *config, struct mq_queue *outgoing,
                        const char *const *to, const char *subject, const char *text,
                        const char *name, const char *mime_type, const void *data, size_t len,
                        GError **err)
{
    GMimeMultipart *mixed = NULL;
    GMimePart *attachment = NULL;
    GMimeMessage *msg = NULL;
    GMimeTextPart *part = NULL;
    GMimeFormatOptions *fo = NULL;
    GString *qftext = NULL, *body_text = NULL;
    struct mq_qf *qf = NULL;
    char *raw = NULL, *id = NULL, *out_id = NULL, *clean_subject = NULL, *from = NULL;
    char *msgid = NULL, *sep;
    GDateTime *now = NULL;
    GPtrArray *rcpts = g_ptr_array_new_with_free_func(g_free);
    gboolean dup = FALSE;
    size_t nrcpt = 0;

    notify_init();
    for (nrcpt = 0; to != NULL && to[nrcpt] != NULL; nrcpt++) {
        if (nrcpt >= NOTIFY_MAX_RCPTS || !notify_address_ok(to[nrcpt])) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "notification: bad recipient address");
            goto done;
        }
        /* "postmaster" alone is local to this host, as sendmail reads it. */
        g_ptr_array_add(rcpts, strchr(to[nrcpt], '@') != NULL
                                   ? g_strdup(to[nrcpt])
                                   : g_strdup_printf("%s@%s", to[nrcpt], config->hostname));
    }
    if (nrcpt == 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "notification: no recipient");
        goto done;
    }

    msg = g_mime_message_new(TRUE);
    from = g_strdup_printf("MAILER-DAEMON@%s", config->hostname);
    g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, "mqscan", from);
    for (size_t i = 0; i < nrcpt; i++)
        g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL,
                                   (const char *)g_ptr_array_index(rcpts, i));
    clean_subject = mq_log_sanitize(subject, NOTIFY_SUBJECT_MAX);
    g_mime_message_set_subject(msg, clean_subject, "utf-8");
    now = g_date_time_new_now_local();
    g_mime_message_set_date(msg, now);
    id = notify_queue_id();
    msgid = g_strdup_printf("%s.mqscan@%s", id, config->hostname);
    g_mime_message_set_message_id(msg, msgid);
    g_mime_object_set_header(GMIME_OBJECT(msg), "Auto-Submitted", "auto-generated", NULL);
    g_mime_object_set_header(GMIME_OBJECT(msg), "X-mqscan", "notification", NULL);

    body_text = g_string_new(text);
    if (body_text->len == 0 || body_text->str[body_text->len - 1] != '\n')
        g_string_append_c(body_text, '\n');
    part = g_mime_text_part_new_with_subtype("plain");
    g_mime_text_part_set_text(part, body_text->str);
    g_mime_part_set_content_encoding(GMIME_PART(part), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
    if (name == NULL) {
        g_mime_message_set_mime_part(msg, GMIME_OBJECT(part));
    } else {
        /* The text first, then the file (a report of ours, e.g. HTML). */
        GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
        GMimeDataWrapper *content = g_mime_data_wrapper_new_with_stream(
            stream, GMIME_CONTENT_ENCODING_DEFAULT);
        char **type = g_strsplit(mime_type ? mime_type : "application/octet-stream", "/", 2);
        attachment = g_mime_part_new_with_type(type[0], type[1] ? type[1] : "octet-stream");
        g_strfreev(type);
        g_mime_part_set_content(attachment, content);
        g_mime_part_set_filename(attachment, name);
        g_mime_part_set_content_encoding(attachment, GMIME_CONTENT_ENCODING_BASE64);
        g_object_unref(content);
        g_object_unref(stream);
        mixed = g_mime_multipart_new_with_subtype("mixed");
        g_mime_multipart_add(mixed, GMIME_OBJECT(part));
        g_mime_multipart_add(mixed, GMIME_OBJECT(attachment));
        g_mime_message_set_mime_part(msg, GMIME_OBJECT(mixed));
    }

    fo = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_UNIX);
    raw = g_mime_object_to_string(GMIME_OBJECT(msg), fo);
    sep = strstr(raw, "\n\n");
    if (sep == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_IO, "notification: cannot build the message");
        goto done;
    }

    /* The null sender: a notification never bounces, so never loops. */
    qftext = g_string_new(NULL);
    g_string_append_printf(qftext, "V8\nT%lld\nK0\nN0\nP30000\nFb\nS<>\n", (long long)time(NULL));
    for (size_t i = 0; i < nrcpt; i++)
        g_string_append_printf(qftext, "RPF:<%s>\n", (const char *)g_ptr_array_index(rcpts, i));
    notify_headers_to_qf(raw, (size_t)(sep - raw) + 1, qftext);
    g_string_append(qftext, ".\n");
    qf = mq_qf_parse(qftext->str, qftext->len, err);
    if (qf == NULL)
        goto done;
    if (mq_queue_write(outgoing, id, qf, sep + 2, strlen(sep + 2), &out_id, &dup, err) < 0)
        goto done;

done:
    g_ptr_array_unref(rcpts);
    mq_qf_free(&qf);
    if (qftext != NULL)
        g_string_free(qftext, TRUE);
    if (body_text != NULL)
        g_string_free(body_text, TRUE);
    if (fo != NULL)
        g_mime_format_options_free(fo);
    g_free(raw);
    g_clear_object(&part);
    g_clear_object(&attachment);
    g_clear_object(&mixed);
    g_clear_object(&msg);
    g_clear_pointer(&now, g_date_time_unref);
    g_free(msgid);
    g_free(from);
    g_free(clean_subject);
    g_free(id);
    return out_id;
}

char *
mq_notify_send_rendered(const struct mq_config *config, struct mq_queue *outgoing,
                        const char *const *to, const char *rendered, GError **err)
{
    char *copy = g_strdup(rendered), *subject = "mqscan", *body = copy, *id;

    if (g_str_has_prefix(copy, "Subject: ")) {
        char *nl = strchr(copy, '\n');
        subject = copy + 9;
        body = nl ? nl + 1 : copy + strlen(copy);
        if (nl != NULL)
            *nl = '\0';
    }
    id = mq_notify_send(config, outgoing, to, subject, body, err);
    g_free(copy);
    return id;
}
