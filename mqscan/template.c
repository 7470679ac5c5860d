#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/template.h"

/* A template file larger than this is refused at load time. */
#define TEMPLATE_FILE_MAX (64 * 1024)
/* A rendered value is cut to this many bytes, at a character boundary. */
#define TEMPLATE_VALUE_MAX 1000
/* ... and for a list (${removed}, ${entries}, ${findings}). */
#define TEMPLATE_LIST_MAX (256 * 1024)
/* Longest language directory name accepted. */
#define TEMPLATE_LANGUAGE_MAX 32

enum template_var {
    TEMPLATE_VAR_FILENAME,
    TEMPLATE_VAR_REASON,
    TEMPLATE_VAR_VIRUS,
    TEMPLATE_VAR_QUEUE_ID,
    TEMPLATE_VAR_DATE,
    TEMPLATE_VAR_HOSTNAME,
    TEMPLATE_VAR_POSTMASTER,
    TEMPLATE_VAR_REMOVED,
    TEMPLATE_VAR_COUNT_MESSAGES,
    TEMPLATE_VAR_ENTRIES,
    TEMPLATE_VAR_SUBJECT,
    TEMPLATE_VAR_RECIPIENTS,
    TEMPLATE_VAR_SENDER,
    TEMPLATE_VAR_FINDINGS,
    TEMPLATE_VAR_COUNT
};

static const char *const template_var_names[TEMPLATE_VAR_COUNT] = {
    [TEMPLATE_VAR_FILENAME] = "filename",
    [TEMPLATE_VAR_REASON] = "reason",
    [TEMPLATE_VAR_VIRUS] = "virus",
    [TEMPLATE_VAR_QUEUE_ID] = "queue_id",
    [TEMPLATE_VAR_DATE] = "date",
    [TEMPLATE_VAR_HOSTNAME] = "hostname",
    [TEMPLATE_VAR_POSTMASTER] = "postmaster",
    [TEMPLATE_VAR_REMOVED] = "removed",
    [TEMPLATE_VAR_COUNT_MESSAGES] = "count",
    [TEMPLATE_VAR_ENTRIES] = "entries",
    [TEMPLATE_VAR_SUBJECT] = "subject",
    [TEMPLATE_VAR_RECIPIENTS] = "recipients",
    [TEMPLATE_VAR_SENDER] = "sender",
    [TEMPLATE_VAR_FINDINGS] = "findings",
};

/* Variables whose value may hold several lines: lists we build ourselves
 * from sanitized pieces. They may also be longer: a batch report lists up
 * to a batch of messages. */
static bool
template_var_multiline(int v)
{
    return v == TEMPLATE_VAR_REMOVED || v == TEMPLATE_VAR_ENTRIES || v == TEMPLATE_VAR_FINDINGS;
}

static const char *const template_file_names[MQ_TEMPLATE_COUNT] = {
    [MQ_TEMPLATE_PART_REMOVED] = "part-removed.txt",
    [MQ_TEMPLATE_BODY_REMOVED] = "body-removed.txt",
    [MQ_TEMPLATE_NOTICE] = "notice.txt",
    [MQ_TEMPLATE_REPORT] = "postmaster-report.txt",
    [MQ_TEMPLATE_SENDER] = "sender-notice.txt",
    [MQ_TEMPLATE_SPAM_REJECT] = "spam-rejected.txt",
};

/*
 * A template is parsed once, at load time, into a list of segments: literal
 * text (borrowed from the template's own copy of the file) or a variable.
 * Rendering only reads this list, so one set can be shared by any number of
 * threads without a lock, and a value is never looked at for "${": what a
 * message puts into a value stays data.
 */
struct template_segment {
    const char *text;           /* literal: borrowed from template.source */
    size_t len;
    int var;                    /* enum template_var, or -1 for a literal */
};

struct template {
    char *source;               /* the file's text, CRLF made LF; owned */
    struct template_segment *segments;
    size_t n_segments;
    size_t literal_len;         /* sum of the literal segments' lengths */
};

struct mq_templates {
    struct template kinds[MQ_TEMPLATE_COUNT];
};

/* ---- loading ------------------------------------------------------------ */

/* A language is one path component we build from configuration: letters,
 * digits, '_' and '-' only, so it can never climb out of DIR. */
static bool
template_language_ok(const char *language)
{
    size_t len = strlen(language);

    return len > 0 && len <= TEMPLATE_LANGUAGE_MAX
        && strspn(language, "abcdefghijklmnopqrstuvwxyz"
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == len;
}

/*
 * Reads path whole, refusing anything but a regular file of at most
 * TEMPLATE_FILE_MAX bytes. The size is checked before the buffer is
 * allocated and again while reading, in case the file grows meanwhile.
 * O_NONBLOCK keeps a FIFO put in place of a template from hanging the
 * daemon at start-up. Returns 0 with a NUL-terminated *buf_r, or -1.
 */
static int
template_read(const char *path, char **buf_r, size_t *len_r, GError **err)
{
    struct stat st;
    char *buf = NULL;
    size_t done = 0;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s: cannot open template: %s",
                    path, g_strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s: cannot stat template: %s",
                    path, g_strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s: template is not a regular file", path);
        goto out;
    }
    if (st.st_size < 0 || st.st_size > TEMPLATE_FILE_MAX) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "%s: template is %lld bytes, more than the limit of %d",
                    path, (long long)st.st_size, TEMPLATE_FILE_MAX);
        goto out;
    }

    /* One byte more than allowed, to see a file that grew past the limit. */
    buf = g_malloc(TEMPLATE_FILE_MAX + 2);
    for (;;) {
        ssize_t n = read(fd, buf + done, TEMPLATE_FILE_MAX + 1 - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s: cannot read template: %s",
                        path, g_strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        done += (size_t)n;
        if (done > TEMPLATE_FILE_MAX) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "%s: template is more than the limit of %d bytes",
                        path, TEMPLATE_FILE_MAX);
            goto out;
        }
    }
    buf[done] = '\0';
    *buf_r = buf;
    *len_r = done;
    buf = NULL;
    rc = 0;

out:
    g_free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* 1-based line number of offset pos in text. */
static unsigned
template_line_of(const char *text, size_t pos)
{
    unsigned line = 1;

    for (size_t i = 0; i < pos; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

/*
 * Checks the file's bytes and makes them the template's source text: no NUL,
 * valid UTF-8 (the error names the line of the first bad byte), a leading
 * byte-order mark dropped, CRLF line ends made LF (a template edited on
 * Windows must not put stray CRs into a message). Works in place.
 */
static int
template_check_text(const char *path, char *text, size_t *len_r, GError **err)
{
    size_t len = *len_r, out = 0;
    const char *bad = NULL;
    const char *nul = memchr(text, '\0', len);

    if (nul != NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s:%u: template contains a NUL byte",
                    path, template_line_of(text, (size_t)(nul - text)));
        return -1;
    }
    if (!g_utf8_validate(text, (gssize)len, &bad)) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s:%u: template is not valid UTF-8",
                    path, template_line_of(text, (size_t)(bad - text)));
        return -1;
    }
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        memmove(text, text + 3, len - 3);
        len -= 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
            continue;
        text[out++] = text[i];
    }
    text[out] = '\0';
    *len_r = out;
    return 0;
}

static void
template_add_segment(GArray *segments, const char *text, size_t len, int var)
{
    struct template_segment seg = { .text = text, .len = len, .var = var };

    if (var < 0 && len == 0)
        return;
    g_array_append_val(segments, seg);
}

/* The list of known names, for the error message about an unknown one. */
static char *
template_known_names(void)
{
    GString *s = g_string_new(NULL);

    for (int v = 0; v < TEMPLATE_VAR_COUNT; v++)
        g_string_append_printf(s, "%s${%s}", v > 0 ? ", " : "", template_var_names[v]);
    return g_string_free(s, FALSE);
}

/*
 * Splits source into segments. "${name}" is a variable; the name must be
 * known and the closing brace must be on the same line, or the template is
 * refused (an unterminated "${" would otherwise swallow the rest of the
 * text). A "$" not followed by "{" is literal text.
 */
static int
template_parse(const char *path, struct template *tmpl, size_t len, GError **err)
{
    const char *src = tmpl->source;
    GArray *segments = g_array_new(FALSE, FALSE, sizeof(struct template_segment));
    size_t lit = 0, i = 0;
    int rc = -1;

    while (i < len) {
        size_t start, end;
        int var = -1;

        if (src[i] != '$' || i + 1 >= len || src[i + 1] != '{') {
            i++;
            continue;
        }
        start = i + 2;
        end = start;
        while (end < len && src[end] != '}' && src[end] != '\n')
            end++;
        if (end >= len || src[end] != '}') {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "%s:%u: unterminated \"${\" (a variable is written ${name} on one line)",
                        path, template_line_of(src, i));
            goto out;
        }
        for (int v = 0; v < TEMPLATE_VAR_COUNT; v++) {
            if (strlen(template_var_names[v]) == end - start
                && memcmp(template_var_names[v], src + start, end - start) == 0) {
                var = v;
                break;
            }
        }
        if (var < 0) {
            char *name = g_strndup(src + start, end - start);
            char *shown = mq_log_sanitize(name, 64);
            char *known = template_known_names();

            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "%s:%u: unknown variable ${%s} (known: %s)",
                        path, template_line_of(src, i), shown, known);
            g_free(known);
            g_free(shown);
            g_free(name);
            goto out;
        }
        template_add_segment(segments, src + lit, i - lit, -1);
        template_add_segment(segments, NULL, 0, var);
        tmpl->literal_len += i - lit;
        i = end + 1;
        lit = i;
    }
    template_add_segment(segments, src + lit, len - lit, -1);
    tmpl->literal_len += len - lit;
    tmpl->n_segments = segments->len;
    tmpl->segments = (struct template_segment *)(void *)g_array_free(segments, FALSE);
    segments = NULL;
    rc = 0;

out:
    if (segments != NULL)
        g_array_free(segments, TRUE);
    return rc;
}

static void
template_clear(struct template *tmpl)
{
    g_clear_pointer(&tmpl->segments, g_free);
    g_clear_pointer(&tmpl->source, g_free);
    tmpl->n_segments = 0;
    tmpl->literal_len = 0;
}

static int
template_load_one(struct template *tmpl, const char *path, GError **err)
{
    size_t len = 0;

    if (template_read(path, &tmpl->source, &len, err) < 0)
        return -1;
    if (template_check_text(path, tmpl->source, &len, err) < 0
        || template_parse(path, tmpl, len, err) < 0) {
        template_clear(tmpl);
        return -1;
    }
    return 0;
}

struct mq_templates *
mq_templates_load(const char *dir, const char *language, GError **err)
{
    struct mq_templates *templates = NULL;
    char *path = NULL;

    if (dir == NULL || language == NULL)
        mq_log_panic("mq_templates_load: NULL argument");
    if (!template_language_ok(language)) {
        char *shown = mq_log_sanitize(language, 64);

        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "template language \"%s\" is not a plain directory name", shown);
        g_free(shown);
        goto out;
    }

    templates = g_new0(struct mq_templates, 1);
    for (int k = 0; k < MQ_TEMPLATE_COUNT; k++) {
        path = g_build_filename(dir, language, template_file_names[k], NULL);
        if (template_load_one(&templates->kinds[k], path, err) < 0) {
            mq_templates_free(&templates);
            goto out;
        }
        g_clear_pointer(&path, g_free);
    }

out:
    g_free(path);
    return templates;
}

void
mq_templates_free(struct mq_templates **templatesp)
{
    struct mq_templates *templates;

    if (templatesp == NULL || (templates = *templatesp) == NULL)
        return;
    *templatesp = NULL;
    for (int k = 0; k < MQ_TEMPLATE_COUNT; k++)
        template_clear(&templates->kinds[k]);
    g_free(templates);
}

/* ---- rendering ---------------------------------------------------------- */

/*
 * Characters a value may not bring into a message text: C0 and C1 controls
 * (CR, TAB, ESC, NEL, ...), the Unicode line and paragraph separators, and
 * the bidirectional controls, with which a file name such as
 * "invoice<U+202E>fdp.exe" shows as "invoiceexe.pdf".
 */
static bool
template_char_unsafe(gunichar c)
{
    switch (g_unichar_type(c)) {
    case G_UNICODE_CONTROL:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
        return true;
    default:
        break;
    }
    return c == 0x061c || c == 0x200e || c == 0x200f
        || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/*
 * The printable form of one untrusted value: valid UTF-8 (bad bytes become
 * U+FFFD), unsafe characters '?' (LF is kept when allow_lf, for the lines of
 * ${removed}, whose final newlines are dropped so the template decides what
 * follows), at most TEMPLATE_VALUE_MAX bytes, cut between characters.
 *
 * Every input byte yields at least half an output byte, so no more than
 * 2 * TEMPLATE_VALUE_MAX input bytes can matter; only a bounded prefix is
 * looked at, whatever the caller passes. Caller frees with g_free().
 */
static char *
template_clean_value(const char *value, bool allow_lf)
{
    size_t max = allow_lf ? TEMPLATE_LIST_MAX : TEMPLATE_VALUE_MAX;
    size_t in_len = strnlen(value, 4 * max);
    char *valid = g_utf8_make_valid(value, (gssize)in_len);
    GString *out = g_string_sized_new(MIN(in_len, max) + 1);

    for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        size_t n = (size_t)(g_utf8_next_char(p) - p);
        const char *bytes = p;

        if (template_char_unsafe(c) && !(c == '\n' && allow_lf)) {
            bytes = "?";
            n = 1;
        }
        if (out->len + n > max)
            break;
        g_string_append_len(out, bytes, (gssize)n);
    }
    if (allow_lf) {
        while (out->len > 0 && out->str[out->len - 1] == '\n')
            g_string_truncate(out, out->len - 1);
    }
    g_free(valid);
    return g_string_free(out, FALSE);
}

/*
 * Only the caller's vars and the read-only template are touched, so this is
 * safe to call from any number of threads at once. A name that is not a
 * known variable is ignored (it cannot appear in a template); the first
 * value given for a name wins; a NULL value ends the list like a NULL name.
 */
char *
mq_templates_render(const struct mq_templates *templates, enum mq_template_kind kind,
                    const char *const *vars)
{
    char *values[TEMPLATE_VAR_COUNT] = { NULL };
    const struct template *tmpl;
    GString *out;
    size_t size;

    if (templates == NULL || (int)kind < 0 || kind >= MQ_TEMPLATE_COUNT)
        mq_log_panic("mq_templates_render: invalid arguments (kind %d)", (int)kind);
    tmpl = &templates->kinds[kind];

    for (size_t i = 0; vars != NULL && vars[i] != NULL && vars[i + 1] != NULL; i += 2) {
        for (int v = 0; v < TEMPLATE_VAR_COUNT; v++) {
            if (values[v] == NULL && strcmp(vars[i], template_var_names[v]) == 0) {
                values[v] = template_clean_value(vars[i + 1], template_var_multiline(v));
                break;
            }
        }
    }

    size = tmpl->literal_len;
    for (size_t s = 0; s < tmpl->n_segments; s++) {
        const struct template_segment *seg = &tmpl->segments[s];

        if (seg->var >= 0 && values[seg->var] != NULL)
            size += strlen(values[seg->var]);
    }
    out = g_string_sized_new(size + 1);
    for (size_t s = 0; s < tmpl->n_segments; s++) {
        const struct template_segment *seg = &tmpl->segments[s];

        if (seg->var < 0)
            g_string_append_len(out, seg->text, (gssize)seg->len);
        else if (values[seg->var] != NULL)
            g_string_append(out, values[seg->var]);
    }

    for (int v = 0; v < TEMPLATE_VAR_COUNT; v++)
        g_free(values[v]);
    return g_string_free(out, FALSE);
}
