#include <config.h>

#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/qf.h"

/* sendmail writes the macro-expansion byte (MACROEXPAND, octal 201) into
 * headers it fills in at delivery time, such as Return-Path. A byte of the
 * message that sendmail uses internally (0x80 to 0x9f, and 0xff itself) is
 * written after a METAQUOTE byte (octal 377) instead, and delivered without
 * it: "\377\201" is a 0x81 the sender wrote, not a macro. */
#define QF_MACRO_BYTE '\201'
#define QF_METAQUOTE '\377'

struct qf_record {
    char type;          /* first byte of the line */
    char *value;        /* rest of the line, continuation lines joined by "\n" */
    bool deleted;
    /* H records */
    char *hname;        /* field name */
    const char *hvalue; /* into value: after "Name:" */
    /* R records */
    char *rflags;
    char *raddr;
};

struct mq_qf {
    GPtrArray *records;         /* struct qf_record *, in file order */
    GPtrArray *headers;         /* borrowed struct qf_record *, live H records */
    GPtrArray *rcpts;           /* borrowed struct qf_record *, R records */
    char *sender;
    time_t ctime;
    const char *body_type;      /* into a B record */
};

static void
qf_record_free(gpointer p)
{
    struct qf_record *r = p;
    g_free(r->value);
    g_free(r->hname);
    g_free(r->rflags);
    g_free(r->raddr);
    g_free(r);
}

static char *
qf_strip_angles(const char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
        return g_strndup(s + 1, n - 2);
    return g_strdup(s);
}

/* "?flags?Name: value" -> name and value pointer. Returns false if there is
 * no field name. */
static bool
qf_split_header(struct qf_record *r)
{
    const char *p = r->value, *colon;

    if (*p == '?') {
        const char *end = strchr(p + 1, '?');
        if (end == NULL)
            return false;
        p = end + 1;
    }
    colon = strchr(p, ':');
    if (colon == NULL || colon == p)
        return false;
    for (const char *q = p; q < colon; q++) {
        if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
            return false;
    }
    r->hname = g_strndup(p, (size_t)(colon - p));
    r->hvalue = colon + 1;
    return true;
}

/* "PFD:<addr>" -> flags "PFD", address "addr". Flags are letters only; an
 * address may itself hold ':' (source routes), so only a leading run of
 * letters followed by ':' counts as flags. */
static void
qf_split_rcpt(struct qf_record *r)
{
    const char *p = r->value;
    size_t n = 0;

    while (g_ascii_isalpha(p[n]))
        n++;
    if (p[n] == ':') {
        r->rflags = g_strndup(p, n);
        r->raddr = qf_strip_angles(p + n + 1);
    } else {
        r->rflags = g_strdup("");
        r->raddr = qf_strip_angles(p);
    }
}

/* sendmail writes an envelope address on one line of printable bytes; a CR,
 * a continuation line or another control character would go on into the
 * outgoing queue, the SMTP commands and the notices. */
static bool
qf_has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f)
            return true;
    return false;
}

static void
qf_index(struct mq_qf *qf)
{
    g_ptr_array_set_size(qf->headers, 0);
    for (guint i = 0; i < qf->records->len; i++) {
        struct qf_record *r = g_ptr_array_index(qf->records, i);
        if (r->type == 'H' && !r->deleted)
            g_ptr_array_add(qf->headers, r);
    }
}

static struct mq_qf *
qf_fail(struct mq_qf *qf, GError **err, const char *why)
{
    g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "bad qf file: %s", why);
    mq_qf_free(&qf);
    return NULL;
}

struct mq_qf *
mq_qf_parse(const char *buf, size_t len, GError **err)
{
    struct mq_qf *qf;
    const char *p = buf, *end = buf + len;
    bool ended = false, have_version = false;
    uint64_t num;

    qf = g_new0(struct mq_qf, 1);
    qf->records = g_ptr_array_new_with_free_func(qf_record_free);
    qf->headers = g_ptr_array_new();
    qf->rcpts = g_ptr_array_new();

    if (len > MQ_QF_MAX_SIZE)
        return qf_fail(qf, err, "larger than the limit");
    if (memchr(buf, '\0', len) != NULL)
        return qf_fail(qf, err, "contains NUL bytes");

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        size_t n = (size_t)(line_end - p);

        if (ended)
            return qf_fail(qf, err, "data after the end record");
        if (n == 0)
            return qf_fail(qf, err, "empty line");
        if (*p == ' ' || *p == '\t') {
            /* Those after a record are taken with it, below. */
            return qf_fail(qf, err, "continuation line before any record");
        } else if (*p == '.' && n == 1) {
            if (nl == NULL)
                return qf_fail(qf, err, "end record without a newline (incomplete file)");
            ended = true;
        } else {
            struct qf_record *r;

            /* The record and the continuation lines after it, newlines
             * kept, copied once: joining line by line would copy a header
             * folded over a hundred thousand lines once per line. */
            while (nl != NULL && nl + 1 < end && (nl[1] == ' ' || nl[1] == '\t')) {
                nl = memchr(nl + 1, '\n', (size_t)(end - nl - 1));
                line_end = nl ? nl : end;
            }
            n = (size_t)(line_end - p);
            r = g_new0(struct qf_record, 1);
            r->type = *p;
            r->value = g_strndup(p + 1, n - 1);
            g_ptr_array_add(qf->records, r);
            if (qf->records->len == 1 && r->type != 'V')
                return qf_fail(qf, err, "does not start with a version record");
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if (!ended)
        return qf_fail(qf, err, "no end record (incomplete file)");

    for (guint i = 0; i < qf->records->len; i++) {
        struct qf_record *r = g_ptr_array_index(qf->records, i);
        switch (r->type) {
        case 'V':
            if (strcmp(r->value, "8") != 0)
                return qf_fail(qf, err, "unsupported version (only version 8 is read)");
            have_version = true;
            break;
        case 'T':
            if (!mq_fs_parse_uint(r->value, 0, G_MAXINT64, &num))
                return qf_fail(qf, err, "bad creation time");
            qf->ctime = (time_t)num;
            break;
        case 'S':
            if (qf->sender != NULL)
                return qf_fail(qf, err, "two sender records");
            if (qf_has_control(r->value))
                return qf_fail(qf, err, "control character or continuation line in the sender");
            qf->sender = qf_strip_angles(r->value);
            break;
        case 'R':
            if (qf_has_control(r->value))
                return qf_fail(qf, err, "control character or continuation line in a recipient");
            qf_split_rcpt(r);
            g_ptr_array_add(qf->rcpts, r);
            break;
        case 'H':
            if (!qf_split_header(r))
                return qf_fail(qf, err, "header record without a field name");
            break;
        case 'B':
            qf->body_type = r->value;
            break;
        default:
            break;
        }
    }
    if (!have_version)
        return qf_fail(qf, err, "no version record");
    if (qf->sender == NULL)
        return qf_fail(qf, err, "no sender record");
    if (qf->rcpts->len == 0)
        return qf_fail(qf, err, "no recipients");
    qf_index(qf);
    return qf;
}

void
mq_qf_free(struct mq_qf **qfp)
{
    struct mq_qf *qf = *qfp;

    if (qf == NULL)
        return;
    g_ptr_array_unref(qf->headers);
    g_ptr_array_unref(qf->rcpts);
    g_ptr_array_unref(qf->records);
    g_free(qf->sender);
    g_free(qf);
    *qfp = NULL;
}

const char *
mq_qf_sender(const struct mq_qf *qf)
{
    return qf->sender;
}

size_t
mq_qf_rcpt_count(const struct mq_qf *qf)
{
    return qf->rcpts->len;
}

const char *
mq_qf_rcpt(const struct mq_qf *qf, size_t i, const char **flags_r)
{
    struct qf_record *r;

    if (i >= qf->rcpts->len)
        mq_log_panic("mq_qf_rcpt: index %zu out of range", i);
    r = g_ptr_array_index(qf->rcpts, i);
    if (flags_r != NULL)
        *flags_r = r->rflags;
    return r->raddr;
}

time_t
mq_qf_ctime(const struct mq_qf *qf)
{
    return qf->ctime;
}

const char *
mq_qf_body_type(const struct mq_qf *qf)
{
    return qf->body_type;
}

const char *
mq_qf_macro(const struct mq_qf *qf, const char *name)
{
    char *key;
    size_t klen;
    const char *found = NULL;

    /* One-letter macros are stored as "$xvalue", long ones as "${name}value". */
    if (name[0] == '{' || strlen(name) == 1)
        key = g_strdup(name);
    else
        key = g_strdup_printf("{%s}", name);
    klen = strlen(key);
    for (guint i = 0; i < qf->records->len && found == NULL; i++) {
        struct qf_record *r = g_ptr_array_index(qf->records, i);
        if (r->type == '$' && strncmp(r->value, key, klen) == 0)
            found = r->value + klen;
    }
    g_free(key);
    return found;
}

size_t
mq_qf_header_count(const struct mq_qf *qf)
{
    return qf->headers->len;
}

void
mq_qf_header(const struct mq_qf *qf, size_t i, const char **name_r, const char **value_r)
{
    struct qf_record *r;

    if (i >= qf->headers->len)
        mq_log_panic("mq_qf_header: index %zu out of range", i);
    r = g_ptr_array_index(qf->headers, i);
    *name_r = r->hname;
    *value_r = r->hvalue;
}

const char *
mq_qf_find_header(const struct mq_qf *qf, const char *name)
{
    for (guint i = 0; i < qf->headers->len; i++) {
        struct qf_record *r = g_ptr_array_index(qf->headers, i);
        if (g_ascii_strcasecmp(r->hname, name) == 0)
            return r->hvalue;
    }
    return NULL;
}

size_t
mq_qf_remove_headers(struct mq_qf *qf, const char *prefix)
{
    size_t n = strlen(prefix), removed = 0;

    for (guint i = 0; i < qf->headers->len; i++) {
        struct qf_record *r = g_ptr_array_index(qf->headers, i);
        if (g_ascii_strncasecmp(r->hname, prefix, n) == 0) {
            r->deleted = true;
            removed++;
        }
    }
    qf_index(qf);
    return removed;
}

size_t
mq_qf_headers_blank_cr(struct mq_qf *qf)
{
    size_t n = 0;

    for (guint i = 0; i < qf->headers->len; i++) {
        struct qf_record *r = g_ptr_array_index(qf->headers, i);
        for (char *p = r->value; *p != '\0'; p++) {
            if (*p == '\r') {
                *p = ' ';
                n++;
            }
        }
    }
    return n;
}

/*
 * Adds the header record "??name: value" after the last header. Control
 * characters and bytes 0x80 and above (sendmail's macro byte among them)
 * become '?', and the value is cut to MQ_QF_HEADER_MAX bytes.
 *
 * A message_text value is the message's own header text (its Content-*
 * headers after a rebuild), which must reach the reader as it is: a '?' in
 * place of a fold or of an 8-bit byte makes a parameter list that readers
 * (GMime among them) stop parsing, and the charset after it is lost. So a
 * line break followed by a TAB and anything but a blank stays, as a
 * continuation line, which cannot start a record (and is never blank); and
 * a byte of 0x80 and above is
 * written as sendmail writes the message's bytes, quoted when sendmail
 * uses it itself (see QF_METAQUOTE), so that it is never a macro.
 */
static void
qf_add_header(struct mq_qf *qf, const char *name, const char *value, bool message_text)
{
    struct qf_record *r;
    GString *v;
    size_t limit;

    for (const char *p = name; *p != '\0'; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == ':')
            mq_log_panic("mq_qf_add_header: bad field name");
    }
    if (*name == '\0')
        mq_log_panic("mq_qf_add_header: empty field name");

    v = g_string_new("??");
    g_string_append_printf(v, "%s: ", name);
    limit = v->len + MQ_QF_HEADER_MAX;
    for (const char *p = value; *p != '\0' && v->len < limit; p++) {
        unsigned char c = (unsigned char)*p;

        if (message_text && c == '\n' && p[1] == '\t' && p[2] != '\0'
            && strchr(" \t\r\n", p[2]) == NULL && v->len + 2 < limit) {
            g_string_append(v, "\n\t");
            p++;
        } else if (message_text && c >= 0x80) {
            if ((c < 0xa0 || c == 0xff) && v->len + 2 > limit)
                break;
            if (c < 0xa0 || c == 0xff)
                g_string_append_c(v, QF_METAQUOTE);
            g_string_append_c(v, (char)c);
        } else {
            g_string_append_c(v, (c < ' ' || c >= 0x7f) ? '?' : (char)c);
        }
    }
    r = g_new0(struct qf_record, 1);
    r->type = 'H';
    r->value = g_string_free(v, FALSE);
    qf_split_header(r);

    /* After the last header record, so headers stay together and in order. */
    guint pos = qf->records->len;
    for (guint i = qf->records->len; i > 0; i--) {
        struct qf_record *h = g_ptr_array_index(qf->records, i - 1);
        if (h->type == 'H') {
            pos = i;
            break;
        }
    }
    g_ptr_array_insert(qf->records, (gint)pos, r);
    qf_index(qf);
}

void
mq_qf_add_header(struct mq_qf *qf, const char *name, const char *value)
{
    qf_add_header(qf, name, value, false);
}

void
mq_qf_replace_content_headers(struct mq_qf *qf, GPtrArray *headers)
{
    mq_qf_remove_headers(qf, "Content-");
    for (guint i = 0; i < headers->len; i++) {
        const char *h = g_ptr_array_index(headers, i);
        const char *colon = strchr(h, ':');
        char *name;
        if (colon == NULL || colon == h)
            mq_log_panic("mq_qf_replace_content_headers: \"%s\" is not a header", h);
        name = g_strndup(h, (size_t)(colon - h));
        qf_add_header(qf, name, colon[1] == ' ' ? colon + 2 : colon + 1, true);
        g_free(name);
    }
}

void
mq_qf_remove_rcpt(struct mq_qf *qf, size_t i)
{
    struct qf_record *r;
    guint pos = 0;

    if (i >= qf->rcpts->len)
        mq_log_panic("mq_qf_remove_rcpt: no recipient %zu", i);
    r = g_ptr_array_index(qf->rcpts, i);
    if (!g_ptr_array_find(qf->records, r, &pos))
        mq_log_panic("mq_qf_remove_rcpt: recipient not in the records");
    r->deleted = true;
    while (pos > 0) {
        struct qf_record *before = g_ptr_array_index(qf->records, pos - 1);
        if (before->deleted || (before->type != 'Q' && before->type != 'r'))
            break;
        before->deleted = true;
        pos--;
    }
    g_ptr_array_remove_index(qf->rcpts, (guint)i);
}

void
mq_qf_prefix_header(struct mq_qf *qf, const char *name, const char *prefix)
{
    GString *clean = g_string_new(NULL);

    for (const char *p = prefix; *p != '\0' && clean->len < 200; p++) {
        unsigned char c = (unsigned char)*p;
        g_string_append_c(clean, (c < ' ' || c >= 0x7f) ? '?' : (char)c);
    }
    for (guint i = 0; i < qf->headers->len; i++) {
        struct qf_record *r = g_ptr_array_index(qf->headers, i);
        if (g_ascii_strcasecmp(r->hname, name) == 0) {
            size_t at = (size_t)(r->hvalue - r->value);
            GString *v = g_string_new(r->value);
            while (at < v->len && (v->str[at] == ' ' || v->str[at] == '\t'))
                at++;
            g_string_insert(v, (gssize)at, " ");
            g_string_insert(v, (gssize)at, clean->str);
            if (at == (size_t)(r->hvalue - r->value))
                g_string_insert_c(v, (gssize)at, ' ');
            g_free(r->value);
            g_free(r->hname);
            r->value = g_string_free(v, FALSE);
            if (!qf_split_header(r))
                mq_log_panic("mq_qf_prefix_header: header no longer splits");
            g_string_free(clean, TRUE);
            return;
        }
    }
    mq_qf_add_header(qf, name, clean->str);
    g_string_free(clean, TRUE);
}

void
mq_qf_set_recipient(struct mq_qf *qf, const char *addr)
{
    struct qf_record *r;
    guint pos = G_MAXUINT;

    if (*addr == '\0')
        mq_log_panic("mq_qf_set_recipient: empty address");
    for (const char *p = addr; *p != '\0'; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || strchr("<>\"", *p) != NULL)
            mq_log_panic("mq_qf_set_recipient: bad address");
    }
    g_ptr_array_set_size(qf->rcpts, 0);
    for (guint i = 0; i < qf->records->len;) {
        r = g_ptr_array_index(qf->records, i);
        if (r->type == 'R' || r->type == 'Q' || r->type == 'r') {
            if (pos == G_MAXUINT)
                pos = i;
            g_ptr_array_remove_index(qf->records, i);   /* frees r */
        } else {
            i++;
        }
    }
    r = g_new0(struct qf_record, 1);
    r->type = 'R';
    r->value = g_strdup_printf("PFD:<%s>", addr);
    qf_split_rcpt(r);
    /* A parsed qf always had a recipient; keep the new one where it was. */
    g_ptr_array_insert(qf->records, pos == G_MAXUINT ? -1 : (gint)pos, r);
    g_ptr_array_add(qf->rcpts, r);
}

/* Appends value as sendmail delivers it, its METAQUOTE bytes taken off.
 * Returns false, with out as it was, if it holds a macro. */
static bool
qf_append_delivered(GString *out, const char *value)
{
    size_t start = out->len;

    for (const char *p = value; *p != '\0'; p++) {
        if (*p == QF_METAQUOTE && p[1] != '\0') {
            p++;
        } else if (*p == QF_MACRO_BYTE) {
            g_string_truncate(out, start);
            return false;
        }
        g_string_append_c(out, *p);
    }
    return true;
}

/*
 * Dropping the header with a quoted byte instead, as before, let a sender
 * hide a header from the scan that the recipient still gets: a 0x81 in the
 * boundary took the Content-Type out of what was scanned, so that neither
 * GMime nor libclamav saw the attachments; a 0x9f or 0xff was scanned
 * doubled, and the boundary no longer matched the body.
 */
void
mq_qf_headers_text(const struct mq_qf *qf, GString *out)
{
    for (guint i = 0; i < qf->headers->len; i++) {
        struct qf_record *r = g_ptr_array_index(qf->headers, i);
        size_t start = out->len;

        g_string_append_printf(out, "%s:", r->hname);
        if (!qf_append_delivered(out, r->hvalue)) {
            g_string_truncate(out, start);
            continue;
        }
        g_string_append_c(out, '\n');
    }
}

void
mq_qf_format(const struct mq_qf *qf, unsigned flags, GString *out)
{
    bool fresh = (flags & MQ_QF_FORMAT_NEW_ENTRY) != 0;

    for (guint i = 0; i < qf->records->len; i++) {
        struct qf_record *r = g_ptr_array_index(qf->records, i);
        if (r->deleted)
            continue;
        if (fresh && (r->type == 'I' || r->type == 'd'))
            continue;
        if (fresh && r->type == 'K') {
            g_string_append(out, "K0\n");
            continue;
        }
        if (fresh && r->type == 'N') {
            g_string_append(out, "N0\n");
            continue;
        }
        g_string_append_c(out, r->type);
        g_string_append(out, r->value);
        g_string_append_c(out, '\n');
    }
    g_string_append(out, ".\n");
}
