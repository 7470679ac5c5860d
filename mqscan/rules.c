#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <glib.h>
#include <magic.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/rules.h"

/*
 * How much of a member's content libmagic sees. Every type the default
 * filetype.rules deny (PE, ELF, Mach-O, shortcuts, CHM, ...) announces
 * itself in the first few hundred bytes; reading more of every member would
 * only make a big archive slower to list.
 */
#define RULES_MEMBER_HEAD   8192

/*
 * How much of a whole attachment libmagic sees, and its own bytes_max. The
 * caller has already bounded the attachment, but libmagic's magic_buffer()
 * does not cut what it is given, and some of its parsers (CDF, JSON, CSV,
 * text encodings) walk the whole buffer.
 */
#define RULES_MAGIC_BYTES   ((size_t)1 << 20)

/*
 * Decompressed bytes read out of one attachment's members, at most. Listing
 * a tar.gz or a solid 7z means decompressing everything before the last
 * member; a small bomb would otherwise cost minutes. Past the budget the
 * listing stops and the members not reached are not looked at.
 * XXX that is a silent truncation, which the house style dislikes: the
 * interface has no "unscannable" answer, so the bomb is left to ClamAV, whose
 * MaxScanSize/MaxFileSize limits do report it.
 */
#define RULES_ARCHIVE_READ_MAX ((uint64_t)128 << 20)
#define RULES_DRAIN_BUF     65536

/* Caps for the strings in a struct mq_rules_match. */
#define RULES_SUBJECT_MAX   MQ_LOG_FIELD_MAX
#define RULES_TEXT_MAX      500

/* libmagic checks we never want: decompression (it may fork helpers). */
#define RULES_MAGIC_FLAGS   (MAGIC_NO_CHECK_COMPRESS)

struct rules_rule {
    bool deny;
    GRegex *re;
    char *log_text;             /* "" when the file says "-" */
    char *user_text;
};

struct mq_rules {
    GPtrArray *name_rules;      /* of struct rules_rule *, file order */
    GPtrArray *type_rules;
    bool text_tests;            /* libmagic runs on text too (rules_decide_text_tests()) */
};

static void rules_decide_text_tests(struct mq_rules *rules);

/* ---- loading ------------------------------------------------------------ */

static void
rules_rule_free(gpointer p)
{
    struct rules_rule *rule = p;

    if (rule == NULL)
        return;
    g_clear_pointer(&rule->re, g_regex_unref);
    g_free(rule->log_text);
    g_free(rule->user_text);
    g_free(rule);
}

/* Splits a rule line into its TAB-separated fields (runs of TABs count as
 * one separator; spaces around a field are dropped). Returns the number of
 * fields; at most max are stored, the count goes on. */
static unsigned
rules_split(char *line, char **fields, unsigned max)
{
    unsigned n = 0;
    char *p = line;

    for (;;) {
        char *start;

        while (*p == '\t')
            p++;
        if (*p == '\0')
            break;
        start = p;
        while (*p != '\0' && *p != '\t')
            p++;
        if (*p == '\t')
            *p++ = '\0';
        g_strstrip(start);
        if (*start == '\0')
            continue;
        if (n < max)
            fields[n] = start;
        n++;
    }
    return n;
}

/* Parses one non-comment line. Returns a new rule or NULL with err set to
 * "PATH:LINE: ...". */
static struct rules_rule *
rules_parse_line(const char *path, unsigned lineno, char *line, GError **err)
{
    char *fields[4];
    unsigned n;
    struct rules_rule *rule = NULL;
    GError *rerr = NULL;
    bool deny;

    n = rules_split(line, fields, G_N_ELEMENTS(fields));
    if (n < 4) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "%s:%u: missing fields: a rule is allow|deny, pattern, log text and "
                    "user text, separated by TABs", path, lineno);
        return NULL;
    }
    if (n > 4) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "%s:%u: too many fields (%u): a rule is allow|deny, pattern, log text "
                    "and user text, separated by TABs", path, lineno, n);
        return NULL;
    }
    if (g_ascii_strcasecmp(fields[0], "deny") == 0) {
        deny = true;
    } else if (g_ascii_strcasecmp(fields[0], "allow") == 0) {
        deny = false;
    } else {
        char *shown = mq_log_sanitize(fields[0], 40);
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "%s:%u: unknown action \"%s\" (allow or deny)", path, lineno, shown);
        g_free(shown);
        return NULL;
    }

    rule = g_new0(struct rules_rule, 1);
    rule->deny = deny;
    rule->re = g_regex_new(fields[1], G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, &rerr);
    if (rule->re == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s:%u: bad pattern: %s",
                    path, lineno, rerr->message);
        g_error_free(rerr);
        rules_rule_free(rule);
        return NULL;
    }
    /* One match now, on the loading thread: whatever GRegex prepares
     * lazily for a match (the JIT code for these options) is then in place
     * before the rule set is shared by the workers, which only read it. */
    (void)g_regex_match(rule->re, "", 0, NULL);
    rule->log_text = g_strdup(strcmp(fields[2], "-") == 0 ? "" : fields[2]);
    rule->user_text = g_strdup(strcmp(fields[3], "-") == 0 ? "" : fields[3]);
    return rule;
}

/* Appends the rules of path to out. Returns 0, or -1 with err set. */
static int
rules_load_file(const char *path, GPtrArray *out, GError **err)
{
    char *text = NULL;
    gsize len = 0;
    GError *ferr = NULL;
    const char *p, *end;
    unsigned lineno = 0;
    int ret = -1;

    if (!g_file_get_contents(path, &text, &len, &ferr)) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s: %s", path, ferr->message);
        g_error_free(ferr);
        goto done;
    }
    p = text;
    end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t linelen = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        char *line, *s;
        struct rules_rule *rule;

        lineno++;
        if (memchr(p, '\0', linelen) != NULL) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s:%u: NUL byte in line", path, lineno);
            goto done;
        }
        if (!g_utf8_validate(p, (gssize)linelen, NULL)) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s:%u: line is not valid UTF-8",
                        path, lineno);
            goto done;
        }
        line = g_strndup(p, linelen);
        p += linelen + (nl != NULL ? 1 : 0);
        if (linelen > 0 && line[linelen - 1] == '\r')
            line[linelen - 1] = '\0';
        s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#') {
            g_free(line);
            continue;
        }
        rule = rules_parse_line(path, lineno, s, err);
        g_free(line);
        if (rule == NULL)
            goto done;
        g_ptr_array_add(out, rule);
    }
    ret = 0;
done:
    g_free(text);
    return ret;
}

struct mq_rules *
mq_rules_load(const char *filename_rules, const char *filetype_rules, GError **err)
{
    struct mq_rules *rules = g_new0(struct mq_rules, 1);

    rules->name_rules = g_ptr_array_new_with_free_func(rules_rule_free);
    rules->type_rules = g_ptr_array_new_with_free_func(rules_rule_free);
    if ((filename_rules != NULL && rules_load_file(filename_rules, rules->name_rules, err) < 0)
        || (filetype_rules != NULL
            && rules_load_file(filetype_rules, rules->type_rules, err) < 0)) {
        mq_rules_free(&rules);
        return NULL;
    }
    rules_decide_text_tests(rules);
    return rules;
}

void
mq_rules_free(struct mq_rules **rules)
{
    if (rules == NULL || *rules == NULL)
        return;
    g_clear_pointer(&(*rules)->name_rules, g_ptr_array_unref);
    g_clear_pointer(&(*rules)->type_rules, g_ptr_array_unref);
    g_free(*rules);
    *rules = NULL;
}

size_t
mq_rules_count(const struct mq_rules *rules)
{
    if (rules == NULL)
        return 0;
    return rules->name_rules->len + rules->type_rules->len;
}

/* ---- text handling -------------------------------------------------------- */

/* The copy of an untrusted string that goes into a match: printable, valid
 * UTF-8, at most max bytes. On top of mq_log_sanitize() (control characters,
 * invalid UTF-8, the cap), Unicode format characters (bidi overrides,
 * zero-width characters) and line/paragraph separators become '?': they
 * would reorder or split a log line or a header as shown to a person. */
static char *
rules_sanitize(const char *s, size_t max)
{
    char *clean = mq_log_sanitize(s, max);
    GString *out;
    const char *p;

    for (p = clean; *p != '\0'; p = g_utf8_next_char(p)) {
        GUnicodeType t = g_unichar_type(g_utf8_get_char(p));
        if (t == G_UNICODE_FORMAT || t == G_UNICODE_LINE_SEPARATOR
            || t == G_UNICODE_PARAGRAPH_SEPARATOR)
            break;
    }
    if (*p == '\0')
        return clean;
    out = g_string_sized_new(strlen(clean));
    for (p = clean; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        GUnicodeType t = g_unichar_type(c);
        if (t == G_UNICODE_FORMAT || t == G_UNICODE_LINE_SEPARATOR
            || t == G_UNICODE_PARAGRAPH_SEPARATOR)
            g_string_append_c(out, '?');
        else
            g_string_append_unichar(out, c);
    }
    g_free(clean);
    return g_string_free(out, FALSE);
}

/* The form of a name that the filename rules see: valid UTF-8 (each invalid
 * byte becomes U+FFFD) and at most max_name bytes. A longer name keeps its
 * beginning and, above all, its end, where the extensions are, joined by
 * "…": cutting only the tail would let "aaaa...(300 KB)....exe" through. */
static char *
rules_match_name(const char *name, size_t max_name)
{
    static const char ellipsis[] = "\xe2\x80\xa6";     /* U+2026 */
    char *valid = g_utf8_make_valid(name, -1);
    size_t len = strlen(valid), head, tail, tail_start;
    char *out;

    if (len <= max_name)
        return valid;
    head = max_name / 4;
    tail = max_name > head + 3 ? max_name - head - 3 : 0;
    while (head > 0 && ((unsigned char)valid[head] & 0xc0) == 0x80)
        head--;
    tail_start = len - tail;
    while (tail_start < len && ((unsigned char)valid[tail_start] & 0xc0) == 0x80)
        tail_start++;
    out = g_malloc(head + 3 + (len - tail_start) + 1);
    memcpy(out, valid, head);
    memcpy(out + head, ellipsis, 3);
    memcpy(out + head + 3, valid + tail_start, len - tail_start);
    out[head + 3 + (len - tail_start)] = '\0';
    g_free(valid);
    return out;
}

/* ---- matching ------------------------------------------------------------- */

/* True if re matches s. A match that fails (PCRE's backtracking limit on a
 * hostile subject) counts as a match for a deny rule and as none for an allow
 * rule: an attacker must not get past a deny rule by making it slow. */
static bool
rules_regex_hit(const struct rules_rule *rule, const char *s)
{
    GError *merr = NULL;
    gboolean hit;

    hit = g_regex_match_full(rule->re, s, -1, 0, 0, NULL, &merr);
    if (merr != NULL) {
        g_error_free(merr);
        return rule->deny;
    }
    return hit;
}

/* First rule of list matching s1 or s2 (either may be NULL), or NULL. */
static const struct rules_rule *
rules_first_match(const GPtrArray *list, const char *s1, const char *s2)
{
    for (guint i = 0; i < list->len; i++) {
        const struct rules_rule *rule = g_ptr_array_index(list, i);
        if ((s1 != NULL && rules_regex_hit(rule, s1)) || (s2 != NULL && rules_regex_hit(rule, s2)))
            return rule;
    }
    return NULL;
}

/* The subject is cut like a name, keeping its end: for a long file name the
 * extension is what the reader of the log needs to see. */
static void
rules_fill_match(struct mq_rules_match *match, const struct rules_rule *rule,
                 const char *subject, bool in_archive)
{
    char *cut = rules_match_name(subject, RULES_SUBJECT_MAX);

    match->in_archive = in_archive;
    match->subject = rules_sanitize(cut, RULES_SUBJECT_MAX);
    g_free(cut);
    match->log_text = rules_sanitize(rule->log_text, RULES_TEXT_MAX);
    match->user_text = rules_sanitize(rule->user_text, RULES_TEXT_MAX);
}

/* Filename rules on name. Returns true (match_r filled) if denied. */
static bool
rules_check_name(const struct mq_rules *rules, const struct mq_rules_limits *limits,
                 const char *name, bool in_archive, struct mq_rules_match *match_r)
{
    const struct rules_rule *rule;
    char *subject;
    bool denied = false;

    if (rules->name_rules->len == 0)
        return false;
    subject = rules_match_name(name, limits->max_name);
    rule = rules_first_match(rules->name_rules, subject, NULL);
    if (rule != NULL && rule->deny) {
        rules_fill_match(match_r, rule, subject, in_archive);
        denied = true;
    }
    g_free(subject);
    return denied;
}

/* ---- libmagic ------------------------------------------------------------- */

/*
 * libmagic is not thread-safe: each thread gets its own cookie, made on the
 * first check in that thread and closed by GPrivate when the thread exits.
 * One cookie serves both questions (MIME type, description) by switching
 * flags, so each thread loads the database once.
 */
static void
rules_magic_close(gpointer cookie)
{
    magic_close(cookie);
}

static GPrivate rules_magic_key = G_PRIVATE_INIT(rules_magic_close);

static magic_t
rules_magic_get(GError **err)
{
    static const struct {
        int param;
        size_t value;
    } params[] = {
        { MAGIC_PARAM_BYTES_MAX, RULES_MAGIC_BYTES },
        { MAGIC_PARAM_INDIR_MAX, 15 },
        { MAGIC_PARAM_NAME_MAX, 30 },
        { MAGIC_PARAM_ELF_PHNUM_MAX, 128 },
        { MAGIC_PARAM_ELF_SHNUM_MAX, 1024 },
        { MAGIC_PARAM_ELF_NOTES_MAX, 64 },
        { MAGIC_PARAM_REGEX_MAX, 8192 },
        { MAGIC_PARAM_ENCODING_MAX, 65536 },
    };
    magic_t cookie = g_private_get(&rules_magic_key);

    if (cookie != NULL)
        return cookie;
    cookie = magic_open(RULES_MAGIC_FLAGS);
    if (cookie == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "libmagic: magic_open: %s",
                    g_strerror(errno));
        return NULL;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(params); i++) {
        if (magic_setparam(cookie, params[i].param, &params[i].value) != 0) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "libmagic: cannot set limit %d",
                        params[i].param);
            magic_close(cookie);
            return NULL;
        }
    }
    if (magic_load(cookie, NULL) != 0) {
        const char *why = magic_error(cookie);
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "libmagic: cannot load the database: %s",
                    why != NULL ? why : "unknown error");
        magic_close(cookie);
        return NULL;
    }
    g_private_set(&rules_magic_key, cookie);
    return cookie;
}

/* What libmagic says about content it recognises nothing in. */
#define RULES_UNKNOWN_DESC  "data"
#define RULES_UNKNOWN_MIME  "application/octet-stream"

/* What libmagic says about data: the description and the MIME type, each
 * NULL if libmagic fails on this input (the type rules then see nothing;
 * the content still goes to the virus scanner). Without text_tests,
 * libmagic's tests for kinds of text are left out (MAGIC_NO_CHECK_TEXT):
 * text is then "data" like anything else it does not recognise. For "data"
 * the MIME type is known without asking again. Caller g_free()s both. */
static void
rules_magic_type(magic_t cookie, bool text_tests, const void *data, size_t len, char **mime_r,
                 char **desc_r)
{
    int flags = RULES_MAGIC_FLAGS | (text_tests ? 0 : MAGIC_NO_CHECK_TEXT);
    const char *s;

    len = MIN(len, RULES_MAGIC_BYTES);
    magic_setflags(cookie, flags);
    s = magic_buffer(cookie, data, len);
    *desc_r = s != NULL ? g_strdup(s) : NULL;
    if (s != NULL && strcmp(s, RULES_UNKNOWN_DESC) == 0) {
        *mime_r = g_strdup(RULES_UNKNOWN_MIME);
        return;
    }
    magic_setflags(cookie, flags | MAGIC_MIME_TYPE);
    s = magic_buffer(cookie, data, len);
    *mime_r = s != NULL ? g_strdup(s) : NULL;
}

/*
 * Most parts of a mail message are text, and libmagic costs the same on
 * each whatever its length: its text tests (scripts, source code, markup,
 * encodings) 1-3 ms, and even without them, the walk over its binary
 * patterns 0.15-0.2 ms, most of what the type rules cost. Both are only
 * worth it when a type rule can match what libmagic says about text. That
 * is decided here, once: each type rule is tried against what libmagic
 * says, with every test, about sample texts of the usual kinds, including
 * the text formats its binary patterns recognise (registry files, RTF,
 * vCard, SVG, JSON, ...), and against "data" and
 * "application/octet-stream". If any rule matches any of those, libmagic
 * sees every part with every test. If none does, libmagic's text tests are
 * off, and content that is plain text (rules_plain_text()) does not go to
 * libmagic at all. The default filetype.rules name binary formats only;
 * every one of them has bytes that plain text has not.
 * XXX a rule for a kind of text that no sample stands for (say, Fortran
 * source) is not seen here; list such kinds below when a rule needs them.
 */
static void
rules_decide_text_tests(struct mq_rules *rules)
{
    static const char *const samples[] = {
        "Hello,\nthis is plain text.\n",
        "caf\xc3\xa9 cr\xc3\xa8me\n",
        "caf\xe9 cr\xe8me\n",
        "line one\r\nline two\r\n",
        "#!/bin/sh\necho hello\n",
        "#!/usr/bin/env python3\nprint('x')\n",
        "#!/usr/bin/perl\nprint \"x\";\n",
        "<?php echo 'x'; ?>\n",
        "<html><body>x</body></html>\n",
        "<?xml version=\"1.0\"?>\n<a/>\n",
        "@echo off\r\necho x\r\n",
        "#include <stdio.h>\nint main(void) { return 0; }\n",
        "From: a@example.com\nSubject: x\n\nbody\n",
        "Received: from x\nFrom: a@example.com\n\nx\n",
        ".TH X 1\n.SH NAME\n",
        "\\documentclass{article}\n\\begin{document}\nx\n\\end{document}\n",
        "begin 644 x\nM86)C\n`\nend\n",
        "a,b,c\n1,2,3\n4,5,6\n",
        /* text formats that libmagic's binary patterns recognise */
        "{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}} hello}\n",
        "%!PS-Adobe-3.0\n%%Title: x\nshowpage\n",
        "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
        "REGEDIT4\n\n[HKEY_CURRENT_USER\\Software\\x]\n\"a\"=\"b\"\n",
        "Windows Registry Editor Version 5.00\n\n[HKEY_CURRENT_USER\\x]\n",
        "[InternetShortcut]\nURL=http://example.com/\n",
        "[Shell]\nCommand=2\nIconFile=x.ico\n",
        "[Desktop Entry]\nType=Application\nExec=x\n",
        "BEGIN:VCARD\nVERSION:3.0\nFN:x\nEND:VCARD\n",
        "BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>\n",
        "<HTA:APPLICATION ID=\"x\">\n<script>x</script>\n",
        "var x = function() { return 1; };\n",
        "{\"a\": [1, 2, 3], \"b\": \"c\"}\n",
        "Dim x\nSet x = CreateObject(\"WScript.Shell\")\n",
        "$x = New-Object System.Net.WebClient\n",
        "#EXTM3U\n#EXTINF:1,x\nx.mp3\n",
        "ID;PWXL;N;E\nC;X1;Y1;K\"x\"\nE\n",
        "!<arch>\nfoo.txt/        0           0     0     644     6         `\nhello\n",
        "070707000000000000000000000000000000000000000001000000000000000000000200000000000x\n",
        "-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
        "MZ this is text that starts like a DOS program\n",
    };
    static const char utf16[] = "\xff\xfeh\0i\0\n\0";
    magic_t cookie;

    rules->text_tests = true;
    if (rules->type_rules->len == 0) {
        rules->text_tests = false;
        return;
    }
    /* Without libmagic now, the checks will say why; keep every test. */
    if ((cookie = rules_magic_get(NULL)) == NULL)
        return;
    if (rules_first_match(rules->type_rules, RULES_UNKNOWN_MIME, RULES_UNKNOWN_DESC) != NULL)
        return;
    for (size_t i = 0; i <= G_N_ELEMENTS(samples); i++) {
        const char *data = i < G_N_ELEMENTS(samples) ? samples[i] : utf16;
        size_t len = i < G_N_ELEMENTS(samples) ? strlen(samples[i]) : sizeof(utf16) - 1;
        char *mime, *desc;
        bool hit;

        rules_magic_type(cookie, true, data, len, &mime, &desc);
        hit = rules_first_match(rules->type_rules, mime, desc) != NULL;
        g_free(mime);
        g_free(desc);
        if (hit)
            return;
    }
    rules->text_tests = false;
}

/*
 * True if data is plain text for the type rules: no byte that text has not
 * (controls other than TAB, LF, VT, FF, CR and ESC; NUL; DEL) in what
 * libmagic would see. Bytes from 0x80 up are text (UTF-8, Latin-1 ...).
 * Every binary format has such bytes in its header; "MZ" (a DOS program
 * may be all printable) always goes to libmagic.
 */
static bool
rules_plain_text(const unsigned char *data, size_t len)
{
    /* 1: a byte plain text has not */
    static const unsigned char binary[256] = {
        [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1,
        [0x06] = 1, [0x07] = 1, [0x08] = 1, [0x0e] = 1, [0x0f] = 1, [0x10] = 1,
        [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1,
        [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1c] = 1, [0x1d] = 1,
        [0x1e] = 1, [0x1f] = 1, [0x7f] = 1,
    };

    if (len >= 2 && ((data[0] == 'M' && data[1] == 'Z') || (data[0] == 'Z' && data[1] == 'M')))
        return false;
    len = MIN(len, RULES_MAGIC_BYTES);
    for (size_t i = 0; i < len; i++)
        if (binary[data[i]])
            return false;       /* a binary part is told at its first bytes */
    return true;
}

/* State shared by the checks of one attachment. */
struct rules_ctx {
    const struct mq_rules *rules;
    const struct mq_rules_limits *limits;
    magic_t cookie;                 /* NULL until first needed */
    struct mq_rules_match *match_r;
};

/* Filetype rules on data. Returns 1 if denied (match filled), 0 if not, -1
 * with err if libmagic cannot start. */
static int
rules_check_type(struct rules_ctx *ctx, const void *data, size_t len, bool in_archive,
                 GError **err)
{
    const struct rules_rule *rule;
    char *mime = NULL, *desc = NULL, *subject;
    int ret = 0;

    if (ctx->rules->type_rules->len == 0 || len == 0)
        return 0;
    if (!ctx->rules->text_tests && rules_plain_text(data, len))
        return 0;               /* what libmagic says of it matches no rule */
    if (ctx->cookie == NULL && (ctx->cookie = rules_magic_get(err)) == NULL)
        return -1;
    rules_magic_type(ctx->cookie, ctx->rules->text_tests, data, len, &mime, &desc);
    rule = rules_first_match(ctx->rules->type_rules, mime, desc);
    if (rule != NULL && rule->deny) {
        subject = g_strdup_printf("type: %s", desc != NULL ? desc : mime);
        rules_fill_match(ctx->match_r, rule, subject, in_archive);
        g_free(subject);
        ret = 1;
    }
    g_free(mime);
    g_free(desc);
    return ret;
}

/* ---- libarchive ----------------------------------------------------------- */

/*
 * Formats that list members. Left out on purpose:
 *  - mtree: a text format, so many text attachments would "be" archives,
 *    and its reader opens the files an entry names on the local disk;
 *  - warc and empty: nothing to gain;
 *  - raw is enabled, but a raw "archive" counts only when a compression
 *    filter was found under it (see rules_check_archive()): that is how a
 *    lone invoice.exe.gz or .xz gets its content looked at. Raw data without
 *    a filter is every other attachment, and is not listed.
 */
static int (*const rules_formats[])(struct archive *) = {
    archive_read_support_format_zip,
    archive_read_support_format_7zip,
    archive_read_support_format_rar,
    archive_read_support_format_rar5,
    archive_read_support_format_tar,
    archive_read_support_format_cpio,
    archive_read_support_format_cab,
    archive_read_support_format_iso9660,
    archive_read_support_format_lha,
    archive_read_support_format_ar,
    archive_read_support_format_xar,
    archive_read_support_format_raw,
};

/*
 * Decompression filters. archive_read_support_filter_all() would also
 * register filters that run an external program (lrzip, grzip, and lzop or
 * lz4 or zstd when libarchive was built without the library) on the
 * attachment: those say ARCHIVE_WARN when registered, so each filter is
 * tried once on a scratch handle and only those built in (ARCHIVE_OK) are
 * used.
 */
static int (*const rules_filters[])(struct archive *) = {
    archive_read_support_filter_gzip,
    archive_read_support_filter_bzip2,
    archive_read_support_filter_xz,
    archive_read_support_filter_lzma,
    archive_read_support_filter_lzip,
    archive_read_support_filter_zstd,
    archive_read_support_filter_lz4,
    archive_read_support_filter_compress,
    archive_read_support_filter_lzop,
    archive_read_support_filter_uu,
    archive_read_support_filter_rpm,
};

static unsigned
rules_builtin_filters(void)
{
    static gsize once = 0;
    static unsigned mask;

    G_STATIC_ASSERT(G_N_ELEMENTS(rules_filters) < 32);
    if (g_once_init_enter(&once)) {
        unsigned m = 0;
        for (size_t i = 0; i < G_N_ELEMENTS(rules_filters); i++) {
            struct archive *probe = archive_read_new();
            if (probe == NULL)
                mq_log_panic("rules: archive_read_new: out of memory");
            if (rules_filters[i](probe) == ARCHIVE_OK)
                m |= 1u << i;
            archive_read_free(probe);
        }
        mask = m;
        g_once_init_leave(&once, 1);
    }
    return mask;
}

static struct archive *
rules_archive_new(void)
{
    unsigned filters = rules_builtin_filters();
    struct archive *a = archive_read_new();

    if (a == NULL)
        mq_log_panic("rules: archive_read_new: out of memory");
    for (size_t i = 0; i < G_N_ELEMENTS(rules_filters); i++)
        if (filters & (1u << i))
            (void)rules_filters[i](a);
    /* A format missing from this libarchive build (xar without libxml2)
     * says ARCHIVE_WARN and is simply not there. */
    for (size_t i = 0; i < G_N_ELEMENTS(rules_formats); i++)
        (void)rules_formats[i](a);
    return a;
}

/* The member's name as bytes: the UTF-8 form when libarchive knows it, else
 * the raw bytes (made valid UTF-8 later). NULL if there is none. */
static const char *
rules_entry_name(struct archive_entry *entry)
{
    const char *name = archive_entry_pathname_utf8(entry);

    if (name == NULL)
        name = archive_entry_pathname(entry);
    return name;
}

/*
 * Lists the members of data if libarchive reads it as an archive: each
 * member's name through the filename rules, the first RULES_MEMBER_HEAD bytes
 * of each regular member through the filetype rules. Returns 1 if a member is
 * denied, 0 if not (or data is no archive), -1 with err if libmagic cannot
 * start.
 *
 * Only one level: a member that is itself an archive has its name and type
 * checked but is not opened. Nested archives are ClamAV's job (it recurses
 * up to MaxRecursion); deeper listing here would multiply the cost bounds.
 *
 * Encrypted members keep only the name check: their content cannot be read
 * (the "encrypted" verdict, if wanted, comes from the scanner).
 */
static int
rules_check_archive(struct rules_ctx *ctx, const void *data, size_t len, GError **err)
{
    struct archive *a = NULL;
    struct archive_entry *entry;
    unsigned char *head = NULL, *scratch = NULL;
    uint64_t budget = RULES_ARCHIVE_READ_MAX;
    int ret = 0;

    a = rules_archive_new();
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK)
        goto done;      /* not an archive we read */
    head = g_malloc(RULES_MEMBER_HEAD);
    scratch = g_malloc(RULES_DRAIN_BUF);
    for (unsigned n = 0; n < ctx->limits->max_members; n++) {
        int r = archive_read_next_header(a, &entry);
        bool raw;
        size_t got = 0;

        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            break;      /* damaged or unsupported from here on */
        raw = archive_format(a) == ARCHIVE_FORMAT_RAW;
        if (raw && archive_filter_count(a) <= 1)
            break;      /* plain data, no archive at all */

        /* A raw entry's name ("data") is made up by libarchive. */
        if (!raw) {
            const char *name = rules_entry_name(entry);
            if (name != NULL && rules_check_name(ctx->rules, ctx->limits, name, true,
                                                 ctx->match_r)) {
                ret = 1;
                goto done;
            }
        }

        if (archive_entry_is_data_encrypted(entry))
            continue;   /* next_header skips it; there is nothing to decompress */

        /* The head of a file, for libmagic ... */
        while (archive_entry_filetype(entry) == AE_IFREG && got < RULES_MEMBER_HEAD) {
            la_ssize_t k = archive_read_data(a, head + got, RULES_MEMBER_HEAD - got);
            if (k == ARCHIVE_FATAL)
                goto done;
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        budget -= MIN(budget, got);
        r = rules_check_type(ctx, head, got, true, err);
        if (r != 0) {
            ret = r;
            goto done;
        }
        /* ... and the rest (of any kind of entry) read here rather than
         * skipped by the next archive_read_next_header(), so that it counts
         * against the budget. */
        for (;;) {
            la_ssize_t k;

            if (budget == 0)
                goto done;
            k = archive_read_data(a, scratch, (size_t)MIN((uint64_t)RULES_DRAIN_BUF, budget));
            if (k == ARCHIVE_FATAL)
                goto done;
            if (k <= 0)
                break;
            budget -= MIN(budget, (uint64_t)k);
        }
    }
done:
    g_free(scratch);
    g_free(head);
    if (a != NULL)
        archive_read_free(a);
    return ret;
}

/* ---- the check ------------------------------------------------------------ */

int
mq_rules_check(const struct mq_rules *rules, const struct mq_rules_limits *limits,
               const char *filename, const void *data, size_t len,
               struct mq_rules_match *match_r, GError **err)
{
    struct rules_ctx ctx;
    int r;

    if (rules == NULL || limits == NULL || match_r == NULL || (data == NULL && len > 0))
        mq_log_panic("mq_rules_check: NULL argument");
    /* 0 would cut every name to nothing, and "no cap" would let a hostile
     * 200 KB name into the patterns: the caller has to choose a length. */
    if (limits->max_name == 0)
        mq_log_panic("mq_rules_check: limits->max_name is 0");
    memset(match_r, 0, sizeof(*match_r));

    /* The name, then the content, then the members: each a separate rule
     * file or pass, each "first match wins", the first denial is the answer. */
    if (filename != NULL && rules_check_name(rules, limits, filename, false, match_r))
        return 1;
    ctx.rules = rules;
    ctx.limits = limits;
    ctx.cookie = NULL;
    ctx.match_r = match_r;
    r = rules_check_type(&ctx, data, len, false, err);
    if (r != 0)
        return r;
    if (len == 0 || limits->max_members == 0
        || (rules->name_rules->len == 0 && rules->type_rules->len == 0))
        return 0;
    return rules_check_archive(&ctx, data, len, err);
}

void
mq_rules_match_clear(struct mq_rules_match *match)
{
    if (match == NULL)
        return;
    g_clear_pointer(&match->subject, g_free);
    g_clear_pointer(&match->log_text, g_free);
    g_clear_pointer(&match->user_text, g_free);
    match->in_archive = false;
}
