#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <gmime/gmime.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/message.h"

/*
 * Where one leaf of the last walk sits in the tree, and so how to replace
 * it: either child `index` of the multipart `parent`, or the top-level part
 * of the message `owner` (the outer message, or the inner message of a
 * message/rfc822 part). All pointers are borrowed from the tree that
 * msg->message owns; they stay valid until the tree is changed above the
 * leaf, which only mq_message_replace_body() does (and it forgets them).
 */
struct message_leaf_slot {
    GMimeObject *object;
    GMimeMultipart *parent;         /* NULL when owner is set */
    int index;                      /* in parent */
    GMimeMessage *owner;            /* NULL when parent is set */
    unsigned depth;
};

struct mq_message {
    GMimeMessage *message;          /* owned */
    GArray *leaves;                 /* struct message_leaf_slot, last walk */
    bool had_mime_version;          /* the outer header block had one */
    bool body_replaced;
};

/* State of one structural walk (message_collect()). */
struct message_walk {
    struct mq_message *msg;
    const struct mq_message_limits *limits;
    unsigned parts;
};

static void
message_global_init(void)
{
    static gsize once = 0;

    if (g_once_init_enter(&once)) {
        g_mime_init();
        g_once_init_leave(&once, 1);
    }
}

/*
 * What GMime may build out of the input, counted before it sees it: GMime
 * makes a part for every line that starts with "--" and matches a boundary
 * in force (whether one does is known only while parsing, so every such
 * line counts), and a header for every line of a header block (at the
 * start, after such a line, and after the header block of a part whose
 * Content-Type names a message, which GMime parses as a message of its
 * own, as it does every part of a multipart/digest that names no type).
 * Each costs GMime about a kilobyte: 5 MB of "--b" lines made a million
 * parts and 1.3 GB, long before the walk's limits could say no. Within a
 * header block every "," and ";" counts too: GMime makes an object of each
 * address of a list and each parameter (a 7 MB To header: 300 MB).
 *
 * GMime reads an address list whose names have no "@" in time that grows
 * with the number of commas times the length of the field: after each
 * comma it reads on to the end ("To: a,a,a,...": 80 KB took 6 s, a
 * megabyte would take many minutes). So that cost, the length of each line
 * of an address field times the commas in the field up to its end, is
 * added up over the message; over MESSAGE_ADDRESS_COST_MAX (about a second
 * here) and the message is refused too. A list of real addresses costs a
 * fraction of that: 2,000 of them, 30 KB, come to 60 million.
 */
#define MESSAGE_ADDRESS_COST_MAX ((uint64_t)1 << 29)

struct message_census {
    uint64_t objects;
    uint64_t address_commas;    /* in the address field, up to this line */
    uint64_t address_cost;
    bool in_headers;            /* the line is in what can be a header block */
    bool in_content_type;       /* ... and in a Content-Type field */
    bool in_address;            /* ... or in an address field */
    bool inner;                 /* a message follows the header block */
    bool digest;                /* a Content-Type named a digest */
};

/* True if the header line p (n bytes) starts a field GMime reads as an
 * address list (Resent- ones too); the name may be followed by blanks. */
static bool
message_is_address_field(const char *p, size_t n)
{
    static const char *const names[] = { "from", "sender", "reply-to", "to", "cc", "bcc" };
    size_t len = 0;

    while (len < n && p[len] != ':' && p[len] != ' ' && p[len] != '\t')
        len++;
    if (len > 7 && g_ascii_strncasecmp(p, "resent-", 7) == 0) {
        p += 7;
        len -= 7;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        if (len == strlen(names[i]) && g_ascii_strncasecmp(p, names[i], len) == 0)
            return true;
    return false;
}

static bool
message_line_has(const char *p, size_t n, const char *word)
{
    size_t w = strlen(word);

    for (size_t i = 0; i + w <= n; i++)
        if (g_ascii_strncasecmp(p + i, word, w) == 0)
            return true;
    return false;
}

/* The end of a header block: the body follows, or an inner message's
 * header block. */
static void
message_census_blank(struct message_census *c)
{
    c->in_headers = c->inner;
    c->inner = false;
    c->in_content_type = false;
}

static void
message_census(struct message_census *c, const char *p, size_t len)
{
    const char *end;

    if (len == 0)
        return;
    for (end = p + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl != NULL ? nl : end) - p);

        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n >= 2 && p[0] == '-' && p[1] == '-') {
            c->objects++;
            c->in_headers = true;
            c->inner = c->digest;
            c->in_content_type = false;
        } else if (c->in_headers && n == 0) {
            message_census_blank(c);
        } else if (c->in_headers) {
            uint64_t commas = 0, semicolons = 0;

            for (size_t i = 0; i < n; i++) {
                commas += p[i] == ',';
                semicolons += p[i] == ';';
            }
            c->objects += 1 + commas + semicolons;
            if (p[0] != ' ' && p[0] != '\t') {
                c->in_content_type = n >= 12 && g_ascii_strncasecmp(p, "content-type", 12) == 0;
                c->in_address = message_is_address_field(p, n);
                c->address_commas = 0;
            }
            if (c->in_address) {
                c->address_commas += commas;
                c->address_cost += c->address_commas * n;
            }
            if (c->in_content_type && message_line_has(p, n, "message"))
                c->inner = true;
            if (c->in_content_type && message_line_has(p, n, "digest"))
                c->digest = true;
        }
        p = nl != NULL ? nl + 1 : end;
    }
}

struct mq_message *
mq_message_parse(const char *headers, size_t headers_len,
                 const char *body, size_t body_len,
                 const struct mq_message_limits *limits, GError **err)
{
    struct message_census census = { .in_headers = true };
    struct mq_message *msg = NULL;
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *message = NULL;
    GByteArray *buf;
    bool need_eol;
    size_t total;

    if ((headers == NULL && headers_len > 0) || (body == NULL && body_len > 0) || limits == NULL)
        mq_log_panic("mq_message_parse: invalid arguments");
    message_global_init();

    message_census(&census, headers, headers_len);
    message_census_blank(&census);
    message_census(&census, body, body_len);
    if (census.objects > MQ_MESSAGE_OBJECTS(limits)) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT,
                    "%" G_GUINT64_FORMAT " MIME parts, header lines, addresses or parameters "
                    "may be in it, more than max_mime_parts (%u) allows for (%" G_GUINT64_FORMAT ")",
                    census.objects, limits->max_parts, MQ_MESSAGE_OBJECTS(limits));
        goto out;
    }
    if (census.address_cost > MESSAGE_ADDRESS_COST_MAX) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT,
                    "address lists that would take GMime too long to read (%" G_GUINT64_FORMAT
                    " commas times bytes)", census.address_cost);
        goto out;
    }

    /* One buffer: header block, the blank line, body. sendmail keeps the
     * two in different files; GMime wants one stream. A header block whose
     * last line lacks its newline gets one, or the blank line would end
     * that header instead of the block. */
    need_eol = headers_len > 0 && headers[headers_len - 1] != '\n';
    if (!g_size_checked_add(&total, headers_len, body_len)
        || !g_size_checked_add(&total, total, 2)
        || total > G_MAXUINT) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT,
                    "message too large to parse (%zu + %zu bytes)", headers_len, body_len);
        goto out;
    }
    buf = g_byte_array_sized_new((guint)total);
    if (headers_len > 0)
        g_byte_array_append(buf, (const guint8 *)headers, (guint)headers_len);
    if (need_eol)
        g_byte_array_append(buf, (const guint8 *)"\n", 1);
    g_byte_array_append(buf, (const guint8 *)"\n", 1);
    if (body_len > 0)
        g_byte_array_append(buf, (const guint8 *)body, (guint)body_len);

    /* The stream owns buf. The parser keeps parts as substreams of it
     * (persist-stream is GMime's default for a seekable stream), so the
     * bytes are not copied again and untouched parts are written back
     * from the original bytes. */
    stream = g_mime_stream_mem_new_with_byte_array(buf);
    parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    message = g_mime_parser_construct_message(parser, NULL);
    if (message == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                    "MIME parser could not build a message");
        goto out;
    }

    msg = g_new0(struct mq_message, 1);
    msg->message = message;
    message = NULL;
    msg->leaves = g_array_new(FALSE, TRUE, sizeof(struct message_leaf_slot));
    msg->had_mime_version = g_mime_header_list_contains(
        g_mime_object_get_header_list(GMIME_OBJECT(msg->message)), "MIME-Version");

out:
    g_clear_object(&message);
    g_clear_object(&parser);
    g_clear_object(&stream);
    return msg;
}

GMimeMessage *
mq_message_gmime(struct mq_message *msg)
{
    return msg->message;
}

void
mq_message_free(struct mq_message **msgp)
{
    struct mq_message *msg;

    if (msgp == NULL || (msg = *msgp) == NULL)
        return;
    *msgp = NULL;
    g_array_unref(msg->leaves);
    g_clear_object(&msg->message);
    g_free(msg);
}

static void
message_add_leaf(struct message_walk *walk, GMimeObject *object,
                 GMimeMultipart *parent, int index, GMimeMessage *owner,
                 unsigned depth)
{
    struct message_leaf_slot slot = {
        .object = object, .parent = parent, .index = index,
        .owner = owner, .depth = depth,
    };

    g_array_append_val(walk->msg->leaves, slot);
}

/*
 * True if the boundary of multipart has 8-bit bytes. GMime decodes a
 * parameter to UTF-8 (an 8-bit byte as Latin-1), so such a boundary never
 * matches the raw boundary lines and GMime finds no parts, while a reader
 * that compares bytes does: the attachments would be scanned only as the
 * raw text of one leaf, their names and types never checked.
 */
static bool
message_boundary_8bit(GMimeMultipart *multipart)
{
    /* Not g_mime_multipart_get_boundary(): it makes one up when there is
     * none, and so changes the part. */
    const char *boundary = g_mime_object_get_content_type_parameter(GMIME_OBJECT(multipart),
                                                                    "boundary");

    for (const char *p = boundary; p != NULL && *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            return true;
    return false;
}

/*
 * Pass 1: the structure only. Every part of any kind counts against
 * max_parts, and the limits are checked before we look inside a part, so
 * the cost of a hostile tree is bounded by the limits, not by its size. The
 * recursion depth is bounded by max_depth. Nothing is decoded here.
 *
 * A multipart that GMime could not split into parts (no boundary, or no
 * boundary lines in the content) has no children: everything it carries is
 * in its prologue and epilogue. It is treated as a leaf, with its raw
 * content as data, so that what it carries is scanned and can be replaced
 * like any other leaf instead of passing as an empty container. Unless its
 * boundary has 8-bit bytes: then the parts are there for a reader, and the
 * walk stops with MQ_ERROR_LIMIT (unscannable).
 */
static int
message_collect(struct message_walk *walk, GMimeObject *object,
                GMimeMultipart *parent, int index, GMimeMessage *owner,
                unsigned depth, GError **err)
{
    if (depth > walk->limits->max_depth) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT,
                    "MIME nesting deeper than max_mime_depth (%u)",
                    walk->limits->max_depth);
        return -1;
    }
    if (walk->parts >= walk->limits->max_parts) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT,
                    "more MIME parts than max_mime_parts (%u)",
                    walk->limits->max_parts);
        return -1;
    }
    walk->parts++;

    if (GMIME_IS_MULTIPART(object)) {
        GMimeMultipart *multipart = GMIME_MULTIPART(object);
        int count = g_mime_multipart_get_count(multipart);

        if (count <= 0) {
            if (message_boundary_8bit(multipart)) {
                g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT,
                            "MIME boundary with 8-bit bytes: the parts cannot be told apart");
                return -1;
            }
            message_add_leaf(walk, object, parent, index, owner, depth);
            return 0;
        }
        for (int i = 0; i < count; i++) {
            GMimeObject *child = g_mime_multipart_get_part(multipart, i);

            if (child == NULL)
                continue;
            if (message_collect(walk, child, multipart, i, NULL, depth + 1, err) < 0)
                return -1;
        }
        return 0;
    }

    if (GMIME_IS_MESSAGE_PART(object)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
        GMimeObject *inner_part = inner != NULL ? g_mime_message_get_mime_part(inner) : NULL;

        /* An attached message with nothing in it is a leaf of its own, so
         * that it is still seen (and can be replaced). */
        if (inner_part == NULL) {
            message_add_leaf(walk, object, parent, index, owner, depth);
            return 0;
        }
        return message_collect(walk, inner_part, NULL, -1, inner, depth + 1, err);
    }

    /* GMimePart and its subclasses (text, message/partial, pkcs7-mime). */
    message_add_leaf(walk, object, parent, index, owner, depth);
    return 0;
}

/* "type/subtype" in lower case, valid UTF-8. Caller frees with g_free(). */
static char *
message_content_type(GMimeObject *object)
{
    GMimeContentType *ct = g_mime_object_get_content_type(object);
    char *mime_type, *lower;

    if (ct == NULL)
        return g_strdup("application/octet-stream");
    mime_type = g_mime_content_type_get_mime_type(ct);
    if (mime_type == NULL)
        return g_strdup("application/octet-stream");
    if (!g_utf8_validate(mime_type, -1, NULL)) {
        char *valid = g_utf8_make_valid(mime_type, -1);
        g_free(mime_type);
        mime_type = valid;
    }
    lower = g_ascii_strdown(mime_type, -1);
    g_free(mime_type);
    return lower;
}

/* True if a header that names the file spells a NUL byte: "%00" in an RFC
 * 2231 parameter. GMime's decoded name is a C string and ends there, so
 * "report.pdf%00.exe" would be matched as "report.pdf", while a mail
 * reader that drops the NUL shows "report.pdf.exe". */
static bool
message_name_has_nul(GMimeObject *object)
{
    static const char *const headers[] = { "Content-Disposition", "Content-Type" };

    for (size_t i = 0; i < G_N_ELEMENTS(headers); i++) {
        const char *v = g_mime_object_get_header(object, headers[i]);
        if (v != NULL && strstr(v, "%00") != NULL)
            return true;
    }
    return false;
}

/* The decoded file name (GMime undoes RFC 2231 and RFC 2047), made valid
 * UTF-8 if the sender's bytes were not. A name cut short by a NUL byte ends
 * in U+0001, a control character, so that the filename rules see that
 * something was hidden there. NULL if there is none. Caller frees with
 * g_free(). */
static char *
message_filename(GMimeObject *object)
{
    const char *name;
    char *valid;

    if (!GMIME_IS_PART(object))
        return NULL;
    name = g_mime_part_get_filename(GMIME_PART(object));
    if (name == NULL)
        return NULL;
    valid = g_utf8_validate(name, -1, NULL) ? g_strdup(name) : g_utf8_make_valid(name, -1);
    if (message_name_has_nul(object)) {
        char *marked = g_strconcat(valid, "\001", NULL);
        g_free(valid);
        return marked;
    }
    return valid;
}

/*
 * Writes the content of one leaf, transfer encoding undone, into out.
 * The decoded size of base64, quoted-printable and uuencode is never larger
 * than the encoded size, so this is bounded by the message size, which the
 * caller has already limited.
 */
static int
message_decode_leaf(GMimeObject *object, GMimeStream *out, unsigned index,
                    GError **err)
{
    ssize_t n = 0;

    if (GMIME_IS_PART(object)) {
        GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(object));

        if (content == NULL)
            return 0;
        n = g_mime_data_wrapper_write_to_stream(content, out);
    } else if (GMIME_IS_MULTIPART(object)) {
        /* A multipart without parts: its raw prologue and epilogue. */
        GMimeFormatOptions *fo = g_mime_format_options_new();

        g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_UNIX);
        n = g_mime_object_write_content_to_stream(object, fo, out);
        g_mime_format_options_free(fo);
    }
    /* else: an empty message/rfc822 part; nothing to decode. */
    if (n < 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                    "cannot decode MIME leaf %u", index);
        return -1;
    }
    return 0;
}

/* Decodes one leaf of the walk and hands it to fn. Returns fn's result, or
 * -1 if the leaf could not be decoded. */
static int
message_emit_leaf(const struct message_leaf_slot *slot, unsigned index,
                  mq_message_leaf_fn *fn, void *ctx, GError **err)
{
    GMimeStream *stream = g_mime_stream_mem_new();
    char *content_type = NULL, *filename = NULL;
    struct mq_message_leaf leaf;
    GByteArray *data;
    int rc = -1;

    if (message_decode_leaf(slot->object, stream, index, err) < 0)
        goto out;
    /* Borrowed from the stream; valid until it is unreferenced below. */
    data = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
    content_type = message_content_type(slot->object);
    filename = message_filename(slot->object);
    leaf.index = index;
    leaf.depth = slot->depth;
    leaf.content_type = content_type;
    leaf.filename = filename;
    rc = fn(&leaf, data->len > 0 ? (const void *)data->data : (const void *)"",
            data->len, ctx, err);

out:
    g_free(filename);
    g_free(content_type);
    g_object_unref(stream);
    return rc;
}

int
mq_message_foreach_leaf(struct mq_message *msg,
                        const struct mq_message_limits *limits,
                        mq_message_leaf_fn *fn, void *ctx, GError **err)
{
    struct message_walk walk = { .msg = msg, .limits = limits, .parts = 0 };
    GMimeObject *top;

    if (msg == NULL || limits == NULL || fn == NULL)
        mq_log_panic("mq_message_foreach_leaf: invalid arguments");

    g_array_set_size(msg->leaves, 0);
    top = g_mime_message_get_mime_part(msg->message);
    if (top != NULL
        && message_collect(&walk, top, NULL, -1, msg->message, 0, err) < 0) {
        /* No half-built numbering may be used for a replacement. */
        g_array_set_size(msg->leaves, 0);
        return -1;
    }

    /* Pass 2: decode and hand out each leaf, in depth-first order. */
    for (guint i = 0; i < msg->leaves->len; i++) {
        if (message_emit_leaf(&g_array_index(msg->leaves, struct message_leaf_slot, i),
                              i, fn, ctx, err) < 0)
            return -1;
    }
    return 0;
}

/*
 * Parts made by this module to take the place of removed ones carry this
 * mark, so that mq_message_prepend_notice() never writes into them. It is
 * kept on the GMime object itself rather than in the leaf table, which is
 * rebuilt by every walk and emptied by mq_message_replace_body().
 */
static GQuark
message_replacement_quark(void)
{
    return g_quark_from_static_string("mq-message-replacement");
}

static void
message_mark_replacement(GMimeObject *object)
{
    g_object_set_qdata(G_OBJECT(object), message_replacement_quark(), GINT_TO_POINTER(1));
}

static bool
message_is_replacement(GMimeObject *object)
{
    return g_object_get_qdata(G_OBJECT(object), message_replacement_quark()) != NULL;
}

/*
 * The part that takes the place of a removed one: text/plain; charset=utf-8,
 * inline, quoted-printable. Quoted-printable keeps ASCII readable, turns
 * 8-bit text into 7-bit (so it survives any transport) and breaks long lines
 * with soft line breaks. Invalid UTF-8 in text (it may quote names from the
 * message) is repaired so that the charset label is true. Returns a new
 * reference.
 */
static GMimeObject *
message_new_text_part(const char *text)
{
    GMimeTextPart *part;
    GMimeStream *stream;
    GMimeDataWrapper *content;
    GByteArray *buf;
    char *valid = NULL;
    size_t len;

    if (text == NULL)
        text = "";
    if (!g_utf8_validate(text, -1, NULL))
        text = valid = g_utf8_make_valid(text, -1);
    len = strlen(text);
    if (len >= G_MAXUINT)
        mq_log_panic("mq_message: replacement text of %zu bytes", len);

    buf = g_byte_array_sized_new(len + 1);
    g_byte_array_append(buf, (const guint8 *)text, len);
    /* The df file should end with a newline like any text file. */
    if (len == 0 || text[len - 1] != '\n')
        g_byte_array_append(buf, (const guint8 *)"\n", 1);
    stream = g_mime_stream_mem_new_with_byte_array(buf);   /* owns buf */

    part = g_mime_text_part_new_with_subtype("plain");
    message_mark_replacement(GMIME_OBJECT(part));
    g_mime_object_set_content_type_parameter(GMIME_OBJECT(part), "charset", "utf-8");
    g_mime_object_set_disposition(GMIME_OBJECT(part), GMIME_DISPOSITION_INLINE);
    content = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(GMIME_PART(part), content);
    g_mime_part_set_content_encoding(GMIME_PART(part), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);

    g_object_unref(content);
    g_object_unref(stream);
    g_free(valid);
    return GMIME_OBJECT(part);
}

int
mq_message_replace_leaf(struct mq_message *msg, unsigned index,
                        const char *text, GError **err)
{
    struct message_leaf_slot *slot;
    GMimeObject *part = NULL;
    int rc = -1;

    if (msg == NULL || index >= msg->leaves->len)
        mq_log_panic("mq_message_replace_leaf: no leaf %u (walk found %u)", index,
                     msg != NULL ? msg->leaves->len : 0);
    slot = &g_array_index(msg->leaves, struct message_leaf_slot, index);

    /* The tree must still be as the walk left it: nobody but this module
     * changes it, but a mismatch must never replace the wrong part. */
    if (slot->parent != NULL) {
        if (slot->index < 0 || slot->index >= g_mime_multipart_get_count(slot->parent)
            || g_mime_multipart_get_part(slot->parent, slot->index) != slot->object) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                        "MIME leaf %u is no longer where the walk found it", index);
            goto out;
        }
    } else if (slot->owner == NULL
               || g_mime_message_get_mime_part(slot->owner) != slot->object) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                    "MIME leaf %u is no longer where the walk found it", index);
        goto out;
    }

    part = message_new_text_part(text);
    if (slot->parent != NULL) {
        /* Returns the old part with a reference that is now ours. */
        GMimeObject *old = g_mime_multipart_replace(slot->parent, slot->index, part);
        g_clear_object(&old);
    } else {
        g_mime_message_set_mime_part(slot->owner, part);
        if (slot->owner == msg->message)
            msg->body_replaced = true;
    }
    slot->object = part;        /* borrowed from the tree from now on */
    rc = 0;

out:
    g_clear_object(&part);
    return rc;
}

void
mq_message_replace_body(struct mq_message *msg, const char *text)
{
    GMimeObject *part;

    if (msg == NULL)
        mq_log_panic("mq_message_replace_body: NULL message");
    part = message_new_text_part(text);
    g_mime_message_set_mime_part(msg->message, part);
    g_object_unref(part);
    msg->body_replaced = true;
    /* Every slot pointed into the tree that was just dropped. */
    g_array_set_size(msg->leaves, 0);
}

bool
mq_message_body_replaced(const struct mq_message *msg)
{
    return msg->body_replaced;
}

/* ---- the notice at the top of the text ------------------------------------ */

/*
 * Whether the notice may go into object or, for a container, anywhere below
 * it. A part the sender marked as an attachment is a file, not the text the
 * recipient reads, and neither is one that carries a file name even though
 * it is inline (a .txt or .csv the user may save): writing into it would
 * change the file. A message/rfc822 attachment is skipped as a whole: its
 * text is somebody else's message. Parts this module made are skipped too.
 */
static bool
message_notice_may_enter(GMimeObject *object)
{
    GMimeContentDisposition *disposition = g_mime_object_get_content_disposition(object);

    if (disposition != NULL && g_mime_content_disposition_is_attachment(disposition))
        return false;
    if (message_is_replacement(object))
        return false;
    if (GMIME_IS_PART(object) && g_mime_part_get_filename(GMIME_PART(object)) != NULL)
        return false;
    return true;
}

/*
 * True if GMime can write the Content-Type parameters of object again, as
 * it does when the notice sets the charset, so that readers (GMime itself
 * among them) read them back. Every parameter name must be an RFC 2045
 * token of at most MESSAGE_PARAM_NAME_MAX bytes:
 *  - GMime keeps a name with 8-bit bytes or specials as it came, in UTF-8,
 *    and writes it so; its parser then stops at that name, and the charset
 *    written after it is lost;
 *  - GMime 3.2.13 folds a parameter whose value needs RFC 2231 encoding
 *    into pieces of 70 bytes minus the length of its name: with a name of
 *    70 bytes or so it makes no progress and appends to a string until
 *    memory runs out (GMime issue #165). Real names are a few bytes long.
 * And no value may have come as an RFC 2047 encoded word (a broken but
 * common spelling of file names): GMime writes it back as one, quotes and
 * semicolons encoded inside, and its parser decodes those before it splits
 * the parameters, so the ones after it are lost.
 * A part with another parameter does not get the notice.
 */
#define MESSAGE_PARAM_NAME_MAX 60

static bool
message_params_rewritable(GMimeObject *object)
{
    GMimeContentType *ct = g_mime_object_get_content_type(object);
    GMimeParamList *params = ct != NULL ? g_mime_content_type_get_parameters(ct) : NULL;
    int n = params != NULL ? g_mime_param_list_length(params) : 0;

    for (int i = 0; i < n; i++) {
        GMimeParam *param = g_mime_param_list_get_parameter_at(params, i);
        const char *name = g_mime_param_get_name(param);

        if (name == NULL || *name == '\0' || strlen(name) > MESSAGE_PARAM_NAME_MAX
            || g_mime_param_get_encoding_method(param) == GMIME_PARAM_ENCODING_METHOD_RFC2047)
            return false;
        for (const char *p = name; *p != '\0'; p++)
            if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f
                || strchr("()<>@,;:\\\"/[]?=", *p) != NULL)
                return false;
    }
    return true;
}

/*
 * The first text/plain leaf in the order of mq_message_foreach_leaf()
 * (depth-first, children in order, into attached messages) that the notice
 * may go into, or NULL. The walk keeps its own stack instead of recursing,
 * so it needs no depth limit: the tree is bounded by the message size, and
 * the caller's limits were applied by the scan walk already.
 */
static GMimePart *
message_notice_target(GMimeObject *top)
{
    GPtrArray *stack = g_ptr_array_new();
    GMimePart *found = NULL;

    g_ptr_array_add(stack, top);
    while (stack->len > 0 && found == NULL) {
        GMimeObject *object = g_ptr_array_remove_index(stack, stack->len - 1);

        if (!message_notice_may_enter(object))
            continue;
        if (GMIME_IS_MULTIPART(object)) {
            GMimeMultipart *multipart = GMIME_MULTIPART(object);

            /* Pushed last to first, so the first child comes off first. */
            for (int i = g_mime_multipart_get_count(multipart); i-- > 0;) {
                GMimeObject *child = g_mime_multipart_get_part(multipart, i);

                if (child != NULL)
                    g_ptr_array_add(stack, child);
            }
        } else if (GMIME_IS_MESSAGE_PART(object)) {
            GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
            GMimeObject *inner_part = inner != NULL ? g_mime_message_get_mime_part(inner) : NULL;

            if (inner_part != NULL)
                g_ptr_array_add(stack, inner_part);
        } else if (GMIME_IS_PART(object)
                   && g_mime_content_type_is_type(g_mime_object_get_content_type(object),
                                                  "text", "plain")
                   && message_params_rewritable(object)) {
            found = GMIME_PART(object);
        }
    }
    g_ptr_array_unref(stack);
    return found;
}

/*
 * Appends data (len bytes) to out, unless out is NULL, with every byte that
 * is not part of a valid UTF-8 character replaced by U+FFFD; NUL bytes are
 * kept (GLib's validator stops at them). Returns the number of bytes
 * replaced, so 0 means data is UTF-8.
 */
static size_t
message_utf8_repair(GString *out, const char *data, size_t len)
{
    size_t bad = 0;

    while (len > 0) {
        const char *end;
        bool valid = g_utf8_validate_len(data, len, &end);
        size_t n = (size_t)(end - data);

        if (out != NULL)
            g_string_append_len(out, data, (gssize)n);
        if (valid)
            break;
        if (*end != '\0')
            bad++;
        if (out != NULL) {
            if (*end == '\0')
                g_string_append_c(out, '\0');
            else
                g_string_append(out, "\xef\xbf\xbd");
        }
        len -= n + 1;
        data = end + 1;
    }
    return bad;
}

static bool
message_utf8_ok(const char *data, size_t len)
{
    return message_utf8_repair(NULL, data, len) == 0;
}

/*
 * Appends data, in the iconv charset from, to out as UTF-8. What the
 * charset cannot decode becomes U+FFFD, one per bad byte, and the
 * conversion goes on after it: a few broken bytes must not cost the
 * recipient the rest of the text. What iconv writes is checked too: glibc
 * copies some invalid UTF-8 through from "UTF-8" (lead bytes F5 to F7,
 * code points above U+10FFFF). iconv writes whole characters only, so
 * each output chunk is checked on its own. Returns false (and appends
 * nothing) if iconv does not know the charset.
 */
static bool
message_convert_lossy(GString *out, const char *from, const char *data, size_t len)
{
    GIConv cd = g_iconv_open("UTF-8", from);
    char buf[4096];
    char *in = (char *)data, *o;
    gsize in_left = len, o_left;

    if (cd == (GIConv)-1)
        return false;
    while (in_left > 0) {
        gsize n;

        o = buf;
        o_left = sizeof(buf);
        n = g_iconv(cd, &in, &in_left, &o, &o_left);
        message_utf8_repair(out, buf, sizeof(buf) - o_left);
        if (n != (gsize)-1 || errno == E2BIG)
            continue;
        /* EILSEQ, or EINVAL for a sequence cut short by the end. */
        g_string_append(out, "\xef\xbf\xbd");
        in++;
        in_left--;
    }
    /* Back to the initial shift state (ISO-2022-JP and the like). */
    o = buf;
    o_left = sizeof(buf);
    if (g_iconv(cd, NULL, NULL, &o, &o_left) != (gsize)-1)
        message_utf8_repair(out, buf, sizeof(buf) - o_left);
    g_iconv_close(cd);
    return true;
}

/*
 * Appends the decoded content of a text part to out as UTF-8. A declared
 * charset that iconv knows is used, whatever the bytes look like. Without
 * one (or with us-ascii, often wrong for 8-bit text, or with a charset
 * nobody knows), UTF-8 is taken if the bytes are UTF-8, else Windows-1252,
 * the usual undeclared 8-bit charset (a superset of Latin-1's printable
 * characters).
 */
static bool
message_charset_is_ascii(const char *charset)
{
    static const char *const names[] = { "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us" };
    const char *canon = g_mime_charset_canon_name(charset);

    for (gsize i = 0; i < G_N_ELEMENTS(names); i++)
        if (g_ascii_strcasecmp(charset, names[i]) == 0
            || (canon != NULL && g_ascii_strcasecmp(canon, names[i]) == 0))
            return true;
    return false;
}

static void
message_append_as_utf8(GString *out, const char *charset, const char *data, size_t len)
{
    if (charset != NULL && *charset != '\0' && !message_charset_is_ascii(charset)) {
        if (message_convert_lossy(out, g_mime_charset_iconv_name(charset), data, len))
            return;
    }
    if (message_utf8_ok(data, len)) {
        g_string_append_len(out, data, (gssize)len);
        return;
    }
    if (message_convert_lossy(out, "WINDOWS-1252", data, len))
        return;
    /* XXX an iconv without Windows-1252: Latin-1 by hand, which cannot fail. */
    for (size_t i = 0; i < len; i++)
        g_string_append_unichar(out, (guchar)data[i]);
}

void
mq_message_append_utf8(GString *out, const char *charset, const char *data, size_t len)
{
    /* GMime's charset tables, for a caller that has parsed nothing yet. */
    message_global_init();
    message_append_as_utf8(out, charset, data, len);
}

/*
 * Writes the notice, one line at a time, with the part's own line ends and
 * then a blank line, into out. In a format=flowed part (RFC 3676) the lines
 * must not end in a space, which would join them to the next one, and a line
 * that starts with a space, ">" or "From " is space-stuffed, so that the
 * notice reads the same whether or not the reader unflows it.
 */
static void
message_format_notice(GString *out, const char *text, const char *eol, bool flowed)
{
    char *valid = NULL;
    const char *p, *end;
    size_t len;

    if (!g_utf8_validate(text, -1, NULL))
        text = valid = g_utf8_make_valid(text, -1);
    len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    p = text;
    end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl != NULL ? nl : end) - p);

        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (flowed) {
            while (n > 0 && p[n - 1] == ' ')
                n--;
            if (n > 0 && (p[0] == ' ' || p[0] == '>' || (n >= 5 && memcmp(p, "From ", 5) == 0)))
                g_string_append_c(out, ' ');
        }
        g_string_append_len(out, p, (gssize)n);
        g_string_append(out, eol);
        p = nl != NULL ? nl + 1 : end;
    }
    if (len > 0)
        g_string_append(out, eol);
    g_free(valid);
}

/*
 * The part keeps its headers except for what the new content changes: the
 * charset becomes utf-8, the transfer encoding is the one GMime finds best
 * for 7-bit transport (7bit for short ASCII lines, else quoted-printable,
 * or base64 for text that is mostly 8-bit or holds NUL bytes), and a
 * Content-MD5 would now be false, so it goes. format=flowed and delsp stay
 * true: the old text is unchanged and the notice lines are made to fit.
 */
int
mq_message_prepend_notice(struct mq_message *msg, const char *text, GError **err)
{
    GMimeStream *decoded = NULL, *stream = NULL;
    GMimeDataWrapper *content = NULL;
    GString *body = NULL, *notice = NULL;
    GMimeContentEncoding encoding;
    GMimeObject *top, *object;
    GMimePart *part;
    GByteArray *raw, *buf;
    const char *format, *nl;
    size_t len;
    int rc = -1;

    if (msg == NULL || text == NULL)
        mq_log_panic("mq_message_prepend_notice: invalid arguments");
    top = g_mime_message_get_mime_part(msg->message);
    part = top != NULL ? message_notice_target(top) : NULL;
    if (part == NULL)
        return 0;
    object = GMIME_OBJECT(part);

    /* The content with its transfer encoding undone. */
    decoded = g_mime_stream_mem_new();
    if (g_mime_part_get_content(part) != NULL
        && g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(part), decoded) < 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "cannot decode the text part for the notice");
        goto out;
    }
    raw = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(decoded));

    body = g_string_sized_new(raw->len + 1024);
    message_append_as_utf8(body, g_mime_object_get_content_type_parameter(object, "charset"),
                           raw->len > 0 ? (const char *)raw->data : "", raw->len);
    g_clear_object(&decoded);

    /* The notice uses the line ends of the text it goes above: a text that
     * was base64 in CRLF form stays CRLF throughout. */
    nl = memchr(body->str, '\n', body->len);
    format = g_mime_object_get_content_type_parameter(object, "format");
    notice = g_string_new(NULL);
    message_format_notice(notice, text,
                          nl != NULL && nl > body->str && nl[-1] == '\r' ? "\r\n" : "\n",
                          format != NULL && g_ascii_strcasecmp(format, "flowed") == 0);
    g_string_prepend_len(body, notice->str, (gssize)notice->len);

    if (body->len >= G_MAXUINT) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT, "text part too large for the notice (%zu bytes)",
                    body->len);
        goto out;
    }
    len = body->len;
    buf = g_byte_array_new_take((guint8 *)g_string_free(body, FALSE), len);
    body = NULL;
    stream = g_mime_stream_mem_new_with_byte_array(buf);     /* owns buf */
    content = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(part, content);
    g_mime_object_set_content_type_parameter(object, "charset", "utf-8");
    g_mime_object_remove_header(object, "Content-MD5");
    /* GMime says "default" for text that is 7-bit as it is; we say so in
     * the header, since the part's old one may have said otherwise. */
    encoding = g_mime_part_get_best_content_encoding(part, GMIME_ENCODING_CONSTRAINT_7BIT);
    if (encoding == GMIME_CONTENT_ENCODING_DEFAULT)
        encoding = GMIME_CONTENT_ENCODING_7BIT;
    g_mime_part_set_content_encoding(part, encoding);
    /* The message's own Content-* headers describe this part: the caller
     * must rewrite them, as after a replacement of the top-level part. */
    if (object == g_mime_message_get_mime_part(msg->message))
        msg->body_replaced = true;
    rc = 1;

out:
    g_clear_object(&content);
    g_clear_object(&stream);
    g_clear_object(&decoded);
    if (notice != NULL)
        g_string_free(notice, TRUE);
    if (body != NULL)
        g_string_free(body, TRUE);
    return rc;
}

int
mq_message_write_body(struct mq_message *msg, GByteArray *out, GError **err)
{
    GMimeFormatOptions *fo = NULL;
    GMimeStream *stream = NULL;
    GMimeObject *top;
    GByteArray *written;
    int rc = -1;

    if (msg == NULL || out == NULL)
        mq_log_panic("mq_message_write_body: invalid arguments");
    /* GMime's parser always gives a message a part; if it ever did not,
     * writing nothing would silently drop the body. */
    top = g_mime_message_get_mime_part(msg->message);
    if (top == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "message has no body part");
        return -1;
    }

    /* Content only: the header block is the caller's (it lives in the qf
     * file), and sendmail's df file has LF line ends. Parts that were not
     * replaced are written from their original bytes. */
    fo = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_UNIX);
    stream = g_mime_stream_mem_new();
    if (g_mime_object_write_content_to_stream(top, fo, stream) < 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_IO, "cannot write the message body");
        goto out;
    }
    written = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
    if ((guint64)out->len + written->len > G_MAXUINT) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT, "message body too large");
        goto out;
    }
    if (written->len > 0)
        g_byte_array_append(out, written->data, written->len);
    rc = 0;

out:
    g_clear_object(&stream);
    g_clear_pointer(&fo, g_mime_format_options_free);
    return rc;
}

/* True for a header name we can write back as it is: RFC 5322 ftext only,
 * so that nothing in it can end or start a header line. */
static bool
message_header_name_ok(const char *name)
{
    if (name == NULL || *name == '\0')
        return false;
    for (const char *p = name; *p != '\0'; p++)
        if ((unsigned char)*p < 33 || (unsigned char)*p > 126 || *p == ':')
            return false;
    return true;
}

/* "Name: value" from a header as GMime holds it: the raw value loses its
 * leading blanks and final newline, and every line break becomes "\n\t"
 * whatever followed it, so a value can never start a header line of its own
 * (the caller writes these into a qf file). NULL for a header whose name is
 * not fit to be written. */
static char *
message_header_line(GMimeHeader *header)
{
    const char *name = g_mime_header_get_name(header);
    const char *value = g_mime_header_get_raw_value(header);
    GString *line;
    const char *p;

    if (!message_header_name_ok(name))
        return NULL;
    if (value == NULL)
        value = g_mime_header_get_value(header);
    if (value == NULL)
        value = "";
    line = g_string_new(name);
    g_string_append(line, ": ");

    p = value;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    while (*p != '\0') {
        if (*p == '\r' || *p == '\n') {
            const char *q = p;

            while (*q == '\r' || *q == '\n' || *q == ' ' || *q == '\t')
                q++;
            if (*q == '\0')
                break;          /* trailing newline(s) */
            g_string_append(line, "\n\t");
            p = q;
            continue;
        }
        g_string_append_c(line, *p);
        p++;
    }
    return g_string_free(line, FALSE);
}

/*
 * The caller replaces the message's Content-* headers with these when the
 * body was replaced. A message that had no MIME-Version header needs one
 * once its body was replaced by a MIME part (quoted-printable), so it comes
 * first in that case; a message that had one keeps its own, which the
 * caller does not remove.
 */
GPtrArray *
mq_message_content_headers(struct mq_message *msg)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    GMimeObject *top;
    GMimeHeaderList *list;
    int count;

    top = g_mime_message_get_mime_part(msg->message);
    if (top == NULL)
        return out;
    if (msg->body_replaced && !msg->had_mime_version)
        g_ptr_array_add(out, g_strdup("MIME-Version: 1.0"));
    list = g_mime_object_get_header_list(top);
    count = g_mime_header_list_get_count(list);
    for (int i = 0; i < count; i++) {
        GMimeHeader *header = g_mime_header_list_get_header_at(list, i);
        char *line = header != NULL ? message_header_line(header) : NULL;

        if (line != NULL)
            g_ptr_array_add(out, line);
    }
    return out;
}
