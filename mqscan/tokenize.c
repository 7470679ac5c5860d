#include <config.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>
#include <gmime/gmime.h>

#include "mqscan/error.h"
#include "mqscan/message.h"
#include "mqscan/tokenize.h"

/* Longest header name that becomes part of a token. */
#define TOK_NAME_MAX 40
/* Received headers looked at (the newest ones, the first in the message). */
#define TOK_RECEIVED_MAX 6
/* Recipient domains and hosts per header that become tokens. */
#define TOK_ADDRESSES_MAX 10
/* A header value this short also becomes one whole token: "x-priority=3". */
#define TOK_WHOLE_VALUE_MAX 24
/* Longest URL looked at. */
#define TOK_URL_MAX 512
/* Tag names and attribute names longer than this give no token. */
#define TOK_TAG_MAX 16

struct tok {
    GPtrArray *out;             /* the tokens, owned */
    GHashTable *seen;           /* set over out's strings (borrowed keys) */
    unsigned parts;
    unsigned text_parts;
    unsigned received;
    unsigned rcpts;
    char *from_domain;          /* owned, or NULL */
    char *reply_domain;         /* owned, or NULL */
};

/* Headers that carry the verdict of a filter (this one or another): a
 * classifier that learns them learns the other filter, and a sender who
 * forges them would steer it. Matched as prefixes of the lower-case name. */
static const char *const tok_ignored_prefixes[] = {
    "x-spam", "x-mqscan", "x-virus", "received-spf", "authentication-results",
    "arc-", "x-original-authentication-results", "x-bogosity", "x-dspam", "x-crm114",
    "x-amavis", "x-mailscanner", "x-barracuda", "x-proofpoint", "x-ironport",
    "x-forefront-antispam", "x-microsoft-antispam", "x-ms-exchange-organization-scl",
    "x-ms-exchange-organization-antispam", "x-pmx", "x-razor", "x-pyzor", "x-dcc",
    "x-ham", "x-quarantine", "x-greylist", "x-policyd", "x-sa-", "x-junk", "x-dnsbl",
    "x-rbl", "x-spf", "x-dkim", "x-dmarc", "x-cloudmark", "x-mimecast-spam",
    "x-antivirus", "x-av-", "x-clam", "x-filter", "x-scanned", "x-bayes",
    "dkim-signature", "domainkey-signature", "x-google-dkim", "x-ms-has-attach",
};

/* Mailbox and mail-store bookkeeping, not mail. Matched whole. */
static const char *const tok_ignored_names[] = {
    "status", "x-status", "x-keywords", "x-uid", "x-mozilla-status", "x-mozilla-status2",
    "lines", "content-length", "x-evolution", "x-imap", "x-imapbase",
};

/* Headers whose words become tokens besides the ones handled on their own
 * (addresses, Received, Message-ID, Content-Type). Of the others, only the
 * presence counts: their words (list URLs, dates, IDs) repeat what other
 * tokens say, and many tokens saying one thing outweigh the rest. */
static const char *const tok_value_names[] = {
    "subject", "x-mailer", "user-agent", "x-mimeole", "organization", "precedence",
    "x-priority", "x-msmail-priority", "importance", "priority", "list-id",
    "content-transfer-encoding", "mime-version", "thread-topic", "x-accept-language",
    "content-language", "x-mailing-list", "mailing-list", "x-loop", "x-newsreader",
    "x-ms-tnef-correlator", "x-originating-ip", "sensitivity", "auto-submitted",
};

/* HTML tags that do not separate words: "V<b></b>iagra" is one word. */
static const char *const tok_inline_tags[] = {
    "a", "b", "i", "u", "s", "em", "font", "span", "strong", "small", "big", "sub",
    "sup", "tt", "strike", "abbr", "code", "wbr",
};

static bool
tok_in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

static bool
tok_header_ignored(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(tok_ignored_prefixes); i++)
        if (g_str_has_prefix(name, tok_ignored_prefixes[i]))
            return true;
    return tok_in_list(name, tok_ignored_names, G_N_ELEMENTS(tok_ignored_names));
}

static bool
tok_full(const struct tok *t)
{
    return t->out->len >= MQ_TOKENIZE_TOKENS_MAX;
}

/* Adds prefix + word (len bytes of valid UTF-8, already lower case) once.
 * A token over MQ_TOKENIZE_TOKEN_BYTES is dropped: only a long prefix can
 * make one, since words are cut long before. */
static void
tok_add_len(struct tok *t, const char *prefix, const char *word, size_t len)
{
    char buf[MQ_TOKENIZE_TOKEN_BYTES + 1];
    size_t plen = strlen(prefix);

    if (tok_full(t) || len == 0 || plen + len > MQ_TOKENIZE_TOKEN_BYTES ||
        memchr(word, '\0', len) != NULL)
        return;
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, word, len);
    buf[plen + len] = '\0';
    if (g_hash_table_contains(t->seen, buf))
        return;
    {
        char *copy = g_strdup(buf);
        g_ptr_array_add(t->out, copy);
        g_hash_table_add(t->seen, copy);
    }
}

static void
tok_add(struct tok *t, const char *prefix, const char *word)
{
    tok_add_len(t, prefix, word, strlen(word));
}

/* A lower-case, valid UTF-8 copy of at most max bytes of untrusted text.
 * Caller frees with g_free(). */
static char *
tok_clean(const char *s, size_t max)
{
    size_t len = strnlen(s, max);
    char *valid = g_utf8_make_valid(s, (gssize)len);
    char *lower = g_utf8_strdown(valid, -1);

    g_free(valid);
    return lower;
}

/* ---- words ------------------------------------------------------------------ */

static bool
tok_word_char(gunichar c)
{
    return g_unichar_isalnum(c) || c == '$' || c == '\'' || c == '-' || c == '.' || c == '_';
}

static bool
tok_trim_char(char c)
{
    return c == '.' || c == '-' || c == '\'' || c == '_';
}

/* One word, s[0, len) valid UTF-8 made of word characters. */
static void
tok_word(struct tok *t, const char *prefix, const char *s, size_t len)
{
    size_t nchars = 0, digits = 0, letters = 0;
    bool dollar = false, ascii = true;
    char buf[4 * MQ_TOKENIZE_WORD_MAX + 8];
    char *lower = NULL;

    while (len > 0 && tok_trim_char(s[0])) {
        s++;
        len--;
    }
    while (len > 0 && tok_trim_char(s[len - 1]))
        len--;
    for (const char *p = s; p < s + len; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        nchars++;
        if (c >= 0x80)
            ascii = false;
        if (g_unichar_isdigit(c))
            digits++;
        else if (g_unichar_isalpha(c))
            letters++;
        else if (c == '$')
            dollar = true;
    }
    if (nchars < MQ_TOKENIZE_WORD_MIN)
        return;
    /* Numbers, dates, and identifiers: too many different ones to learn. */
    if (letters == 0 && !dollar)
        return;
    if (digits > 0 && nchars > 12)
        return;
    if (nchars > MQ_TOKENIZE_WORD_MAX) {
        /* "long:" and the first 7 characters, as SpamAssassin's "sk:". */
        const char *end = g_utf8_offset_to_pointer(s, 7);
        lower = g_utf8_strdown(s, end - s);
        g_snprintf(buf, sizeof(buf), "long:%s", lower);
        g_free(lower);
        tok_add(t, prefix, buf);
        return;
    }
    if (ascii) {
        for (size_t i = 0; i < len; i++)
            buf[i] = g_ascii_tolower(s[i]);
        tok_add_len(t, prefix, buf, len);
        return;
    }
    lower = g_utf8_strdown(s, (gssize)len);
    tok_add(t, prefix, lower);
    g_free(lower);
}

/* Every word of text (len bytes, UTF-8; invalid bytes separate words). */
static void
tok_words(struct tok *t, const char *prefix, const char *text, size_t len)
{
    const char *p = text, *end = text + len, *start = NULL;

    while (p < end && !tok_full(t)) {
        gunichar c = g_utf8_get_char_validated(p, end - p);
        size_t step = c == (gunichar)-1 || c == (gunichar)-2 ? 1 : (size_t)g_utf8_skip[*(const guchar *)p];

        if (c != (gunichar)-1 && c != (gunichar)-2 && tok_word_char(c)) {
            if (start == NULL)
                start = p;
        } else if (start != NULL) {
            tok_word(t, prefix, start, (size_t)(p - start));
            start = NULL;
        }
        p += step;
    }
    if (start != NULL && p >= end)
        tok_word(t, prefix, start, (size_t)(end - start));
}

/* ---- URLs ------------------------------------------------------------------- */

/* The host of a URL, and its parent domains down to two labels. */
static void
tok_host(struct tok *t, const char *prefix, const char *host, size_t len)
{
    char buf[256];
    size_t labels = 1;
    bool digits_only = true;

    while (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0)
        return;
    if (len >= sizeof(buf)) {
        tok_add(t, prefix, "badhost");
        return;
    }
    for (size_t i = 0; i < len; i++) {
        char c = g_ascii_tolower(host[i]);
        if (!(g_ascii_isalnum(c) || c == '-' || c == '.') || (c == '.' && i > 0 && buf[i - 1] == '.') ||
            (c == '.' && i == 0)) {
            tok_add(t, prefix, "badhost");
            return;
        }
        if (c == '.')
            labels++;
        else if (!g_ascii_isdigit(c))
            digits_only = false;
        buf[i] = c;
    }
    buf[len] = '\0';
    if (digits_only || (labels == 1 && g_str_has_prefix(buf, "0x"))) {
        tok_add(t, prefix, "ip");
        return;
    }
    if (labels == 1)
        return;
    tok_add(t, prefix, buf);
    /* And the registered domain, "example.com" for "www.mail.example.com":
     * the last two labels, or three under a country's second level
     * ("example.co.uk"). Not for a name that does not end in a top-level
     * domain ("fetchmail-5.9.0"). */
    {
        const char *tld = strrchr(buf, '.') + 1, *p = buf + len;
        unsigned want = 2, seen = 0;

        for (const char *c = tld; *c != '\0'; c++)
            if (!g_ascii_isalpha(*c))
                return;
        if (strlen(tld) == 2 && labels >= 3) {
            const char *sld_end = tld - 1, *sld = sld_end;
            while (sld > buf && sld[-1] != '.')
                sld--;
            if (sld_end - sld <= 3)
                want = 3;
        }
        while (p > buf && seen < want) {
            p--;
            if (*p == '.')
                seen++;
        }
        if (seen == want)
            tok_add(t, prefix, p + 1);
    }
}

/* A URL at s (at most len bytes): "scheme://[user@]host[:port]/...",
 * or "www.host..." without a scheme. */
static void
tok_url(struct tok *t, const char *s, size_t len)
{
    const char *p = s, *end, *host, *at = NULL;
    size_t i = 0;

    len = MIN(len, TOK_URL_MAX);
    while (len > 0 && (g_ascii_isspace(*p) || *p == '"' || *p == '\'')) {
        p++;
        len--;
    }
    end = p + len;
    /* Scheme. */
    while (i < len && (g_ascii_isalnum(p[i]) || p[i] == '+' || p[i] == '-' || p[i] == '.'))
        i++;
    if (i > 0 && i < len && p[i] == ':' && g_ascii_isalpha(p[0])) {
        if (i == 6 && g_ascii_strncasecmp(p, "mailto", 6) == 0) {
            const char *a = memchr(p, '@', len);
            if (a != NULL) {
                const char *d = a + 1;
                while (d < end && (g_ascii_isalnum(*d) || *d == '.' || *d == '-'))
                    d++;
                tok_host(t, "mailto:", a + 1, (size_t)(d - a - 1));
            }
            return;
        }
        if (!((i == 4 && g_ascii_strncasecmp(p, "http", 4) == 0) ||
              (i == 5 && g_ascii_strncasecmp(p, "https", 5) == 0) ||
              (i == 3 && g_ascii_strncasecmp(p, "ftp", 3) == 0))) {
            if (i <= 10) {
                char scheme[16];
                for (size_t k = 0; k < i; k++)
                    scheme[k] = g_ascii_tolower(p[k]);
                scheme[i] = '\0';
                tok_add(t, "url:scheme:", scheme);
            }
            return;
        }
        p += i + 1;
        while (p < end && (*p == '/' || *p == '\\'))
            p++;
    } else if (!(len >= 4 && g_ascii_strncasecmp(p, "www.", 4) == 0)) {
        return;                 /* relative: no host */
    }
    host = p;
    while (p < end && strchr("/?#\\ \t\r\n\"'<>", *p) == NULL) {
        if (*p == '@')
            at = p;
        p++;
    }
    if (at != NULL) {
        /* http://paypal.com@example.net/: the host is after the '@'. */
        tok_add(t, "url:", "userinfo");
        host = at + 1;
    }
    {
        const char *colon = memchr(host, ':', (size_t)(p - host));
        tok_host(t, "url:", host, (size_t)((colon != NULL ? colon : p) - host));
    }
}

/* URLs written as text: "http://...", "https://...", "www....". */
static void
tok_text_urls(struct tok *t, const char *s, size_t len)
{
    for (size_t i = 0; i + 4 < len && !tok_full(t); i++) {
        char c = g_ascii_tolower(s[i]);
        if (c != 'h' && c != 'w')
            continue;
        if (i > 0 && (g_ascii_isalnum(s[i - 1]) || s[i - 1] == '.'))
            continue;
        if (c == 'h' && len - i >= 8 &&
            (g_ascii_strncasecmp(s + i, "http://", 7) == 0 ||
             g_ascii_strncasecmp(s + i, "https://", 8) == 0))
            tok_url(t, s + i, len - i);
        else if (c == 'w' && g_ascii_strncasecmp(s + i, "www.", 4) == 0)
            tok_url(t, s + i, len - i);
    }
}

/* ---- HTML ------------------------------------------------------------------- */

/* Finds needle (lower case ASCII) in s[from, len), any case; len if none. */
static size_t
tok_find_ci(const char *s, size_t from, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = from; i + n <= len; i++)
        if (g_ascii_strncasecmp(s + i, needle, n) == 0)
            return i;
    return len;
}

/* Decodes the entity at s[0] == '&' into out; returns the bytes used. */
static size_t
tok_entity(const char *s, size_t len, GString *out)
{
    static const struct {
        const char *name;
        const char *text;
    } names[] = {
        { "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" }, { "apos", "'" },
        { "nbsp", " " }, { "copy", "\u00a9" }, { "reg", "\u00ae" },
    };
    size_t i = 1;

    if (i < len && s[i] == '#') {
        bool hex = i + 1 < len && (s[i + 1] == 'x' || s[i + 1] == 'X');
        guint64 v = 0;
        size_t start;

        i += hex ? 2 : 1;
        start = i;
        while (i < len && i - start < 8 && (hex ? g_ascii_isxdigit(s[i]) : g_ascii_isdigit(s[i]))) {
            v = v * (hex ? 16 : 10) + (guint64)(hex ? g_ascii_xdigit_value(s[i]) : g_ascii_digit_value(s[i]));
            i++;
        }
        if (i == start)
            goto literal;
        if (i < len && s[i] == ';')
            i++;
        if (v > 0 && v <= 0x10ffff && g_unichar_validate((gunichar)v))
            g_string_append_unichar(out, (gunichar)v);
        else
            g_string_append_c(out, ' ');
        return i;
    }
    while (i < len && i < 10 && g_ascii_isalnum(s[i]))
        i++;
    if (i < len && s[i] == ';' && i > 1) {
        for (size_t k = 0; k < G_N_ELEMENTS(names); k++) {
            if (strlen(names[k].name) == i - 1 && g_ascii_strncasecmp(s + 1, names[k].name, i - 1) == 0) {
                g_string_append(out, names[k].text);
                return i + 1;
            }
        }
        g_string_append_c(out, ' ');
        return i + 1;
    }
literal:
    g_string_append_c(out, '&');
    return 1;
}

/* The attributes of a tag, s[0, len) after its name. */
static void
tok_attributes(struct tok *t, const char *tag, const char *s, size_t len)
{
    size_t i = 0;
    char prefix[TOK_TAG_MAX + 8];

    g_snprintf(prefix, sizeof(prefix), "html:%s:", tag);
    while (i < len && !tok_full(t)) {
        size_t name_start, name_len, value_start = 0, value_len = 0;
        char name[TOK_TAG_MAX + 1];

        while (i < len && (g_ascii_isspace(s[i]) || s[i] == '/'))
            i++;
        name_start = i;
        while (i < len && !g_ascii_isspace(s[i]) && s[i] != '=' && s[i] != '>' && s[i] != '/')
            i++;
        name_len = i - name_start;
        if (name_len == 0) {
            i++;
            continue;
        }
        while (i < len && g_ascii_isspace(s[i]))
            i++;
        if (i < len && s[i] == '=') {
            i++;
            while (i < len && g_ascii_isspace(s[i]))
                i++;
            if (i < len && (s[i] == '"' || s[i] == '\'')) {
                char q = s[i++];
                const char *close = memchr(s + i, q, len - i);
                value_start = i;
                value_len = (close != NULL ? (size_t)(close - s) : len) - i;
                i = value_start + value_len + 1;
            } else {
                value_start = i;
                while (i < len && !g_ascii_isspace(s[i]) && s[i] != '>')
                    i++;
                value_len = i - value_start;
            }
        }
        if (name_len > TOK_TAG_MAX)
            continue;
        for (size_t k = 0; k < name_len; k++) {
            char c = g_ascii_tolower(s[name_start + k]);
            name[k] = g_ascii_isalnum(c) || c == '-' ? c : '_';
        }
        name[name_len] = '\0';
        tok_add(t, prefix, name);
        if (value_len == 0)
            continue;
        if (strcmp(name, "href") == 0 || strcmp(name, "src") == 0 ||
            strcmp(name, "action") == 0 || strcmp(name, "background") == 0)
            tok_url(t, s + value_start, value_len);
        else if (strcmp(name, "style") == 0 &&
                 (tok_find_ci(s, value_start, value_start + value_len, "display:none") <
                      value_start + value_len ||
                  tok_find_ci(s, value_start, value_start + value_len, "visibility:hidden") <
                      value_start + value_len))
            tok_add(t, "html:", "hidden");
    }
}

/* Strips HTML from s[0, len) into out (text, entities decoded); tags,
 * attributes and their URLs become tokens. Linear in len: every search
 * moves on past what it looked at. */
static void
tok_html(struct tok *t, const char *s, size_t len, GString *out)
{
    size_t i = 0;

    while (i < len) {
        size_t j, name_start, end;
        char name[TOK_TAG_MAX + 1];
        bool closing;
        char quote = 0;

        if (s[i] == '&') {
            i += tok_entity(s + i, len - i, out);
            continue;
        }
        if (s[i] != '<') {
            g_string_append_c(out, s[i++]);
            continue;
        }
        if (len - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
            tok_add(t, "html:", "comment");
            end = tok_find_ci(s, i + 4, len, "-->");
            i = end < len ? end + 3 : len;
            continue;
        }
        j = i + 1;
        closing = j < len && s[j] == '/';
        if (closing)
            j++;
        name_start = j;
        while (j < len && (g_ascii_isalnum(s[j]) || s[j] == '!' || s[j] == '?'))
            j++;
        if (j == name_start) {
            g_string_append_c(out, s[i++]);
            continue;
        }
        /* The end of the tag, outside quotes. */
        for (end = j; end < len; end++) {
            if (quote != 0) {
                if (s[end] == quote)
                    quote = 0;
            } else if (s[end] == '"' || s[end] == '\'') {
                quote = s[end];
            } else if (s[end] == '>') {
                break;
            }
        }
        if (j - name_start <= TOK_TAG_MAX) {
            for (size_t k = 0; k < j - name_start; k++)
                name[k] = g_ascii_tolower(s[name_start + k]);
            name[j - name_start] = '\0';
        } else {
            g_strlcpy(name, "long", sizeof(name));
        }
        if (!closing) {
            tok_add(t, "html:", name);
            if (g_ascii_isalpha(name[0]))
                tok_attributes(t, name, s + j, end - j);
        }
        if (!tok_in_list(name, tok_inline_tags, G_N_ELEMENTS(tok_inline_tags)))
            g_string_append_c(out, ' ');
        i = end < len ? end + 1 : len;
        if (!closing && (strcmp(name, "script") == 0 || strcmp(name, "style") == 0)) {
            /* Not text: skip to the closing tag. */
            if (strcmp(name, "script") == 0)
                tok_add(t, "html:", "script");
            end = tok_find_ci(s, i, len, strcmp(name, "script") == 0 ? "</script" : "</style");
            i = end;
        }
    }
}

/* ---- parts -------------------------------------------------------------------- */

/* The decoded content of part, at most max bytes, into buf. Reading goes
 * through a decoding filter and stops at max, so a huge part costs no more
 * than its first max bytes. The part's stream is reset afterwards. */
static void
tok_part_content(GMimePart *part, size_t max, GByteArray *buf)
{
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    GMimeStream *src, *filtered;
    GMimeContentEncoding enc;
    char chunk[4096];

    if (content == NULL || (src = g_mime_data_wrapper_get_stream(content)) == NULL)
        return;
    enc = g_mime_data_wrapper_get_encoding(content);
    if (g_mime_stream_reset(src) < 0)
        return;
    filtered = g_mime_stream_filter_new(src);
    if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
        enc == GMIME_CONTENT_ENCODING_UUENCODE) {
        GMimeFilter *decoder = g_mime_filter_basic_new(enc, FALSE);
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), decoder);
        g_object_unref(decoder);
    }
    while (buf->len < max) {
        ssize_t n = g_mime_stream_read(filtered, chunk, MIN(sizeof(chunk), max - buf->len));
        if (n <= 0)
            break;
        g_byte_array_append(buf, (const guint8 *)chunk, (guint)n);
    }
    g_object_unref(filtered);
    g_mime_stream_reset(src);
}

void
mq_tokenize_part_text(GMimePart *part, size_t max, GString *out)
{
    GByteArray *raw = g_byte_array_new();
    const char *charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");

    tok_part_content(part, max, raw);
    mq_message_append_utf8(out, charset, (const char *)raw->data, raw->len);
    g_byte_array_free(raw, TRUE);
}

static void
tok_text_part(struct tok *t, GMimeObject *object, bool html)
{
    GString *text = g_string_new(NULL), *plain = NULL;
    const char *charset = g_mime_object_get_content_type_parameter(object, "charset");
    GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(object));

    if (charset != NULL) {
        char *c = tok_clean(charset, TOK_NAME_MAX);
        tok_add(t, "charset:", c);
        g_free(c);
    }
    if (content != NULL) {
        const char *cte =
            g_mime_content_encoding_to_string(g_mime_data_wrapper_get_encoding(content));
        tok_add(t, "cte:", cte != NULL ? cte : "default");
    }
    mq_tokenize_part_text(GMIME_PART(object), MQ_TOKENIZE_TEXT_MAX, text);
    if (html) {
        plain = g_string_sized_new(text->len);
        tok_html(t, text->str, text->len, plain);
    }
    if (plain != NULL) {
        g_string_free(text, TRUE);
        text = plain;
    }
    tok_text_urls(t, text->str, text->len);
    tok_words(t, "", text->str, text->len);
    g_string_free(text, TRUE);
}

static void
tok_object(struct tok *t, GMimeObject *object, unsigned depth)
{
    GMimeContentType *ct;
    char *type = NULL;

    if (object == NULL || tok_full(t))
        return;
    if (depth > MQ_TOKENIZE_DEPTH) {
        tok_add(t, "mime:", "too-deep");
        return;
    }
    if (++t->parts > MQ_TOKENIZE_PARTS) {
        tok_add(t, "mime:", "too-many-parts");
        return;
    }
    ct = g_mime_object_get_content_type(object);
    if (ct != NULL) {
        char *mime_type = g_mime_content_type_get_mime_type(ct);
        type = tok_clean(mime_type != NULL ? mime_type : "", TOK_NAME_MAX);
        g_free(mime_type);
    } else {
        type = g_strdup("none");
    }
    if (GMIME_IS_MULTIPART(object)) {
        GMimeMultipart *mp = GMIME_MULTIPART(object);
        int n = g_mime_multipart_get_count(mp);

        tok_add(t, "mime:", type);
        for (int i = 0; i < n && !tok_full(t) && t->parts <= MQ_TOKENIZE_PARTS; i++)
            tok_object(t, g_mime_multipart_get_part(mp, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(object)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));

        tok_add(t, "part:", type);
        if (inner != NULL)
            tok_object(t, g_mime_message_get_mime_part(inner), depth + 1);
    } else if (GMIME_IS_PART(object)) {
        const char *filename = g_mime_part_get_filename(GMIME_PART(object));
        bool text = strcmp(type, "text/plain") == 0 || strcmp(type, "text/html") == 0;

        if (filename != NULL) {
            const char *dot = strrchr(filename, '.');
            if (dot != NULL && dot[1] != '\0') {
                char *ext = tok_clean(dot + 1, 16);
                tok_add(t, "part:ext:", ext);
                g_free(ext);
            }
        }
        if (text && t->text_parts < MQ_TOKENIZE_TEXT_PARTS) {
            t->text_parts++;
            tok_text_part(t, object, strcmp(type, "text/html") == 0);
        } else if (!text) {
            tok_add(t, "part:", type);
        }
    }
    g_free(type);
}

/* ---- headers ------------------------------------------------------------------ */

/* "user@Example.COM" -> "example.com" (NULL if none). Caller frees. */
static char *
tok_addr_domain(const char *addr)
{
    const char *at = addr != NULL ? strrchr(addr, '@') : NULL;
    return at != NULL && at[1] != '\0' ? tok_clean(at + 1, 255) : NULL;
}

/* The addresses of an address header (From, To, ...): domains, and for
 * From the words of the display name. */
static void
tok_addresses(struct tok *t, const char *name, const char *raw)
{
    char *capped = g_strndup(raw, MQ_TOKENIZE_HEADER_MAX);
    InternetAddressList *list = internet_address_list_parse(NULL, capped);
    char prefix[TOK_NAME_MAX + 8];
    int n = list != NULL ? internet_address_list_length(list) : 0;
    bool is_from = strcmp(name, "from") == 0;
    bool is_rcpt = strcmp(name, "to") == 0 || strcmp(name, "cc") == 0;

    g_snprintf(prefix, sizeof(prefix), "%s:", name);
    if (n == 0)
        tok_add(t, prefix, "none");
    for (int i = 0; i < n && i < TOK_ADDRESSES_MAX; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        const char *display = internet_address_get_name(ia);
        char *domain;

        if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
            continue;
        domain = tok_addr_domain(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
        if (domain != NULL) {
            tok_host(t, prefix, domain, strlen(domain));
            if (is_from && t->from_domain == NULL)
                t->from_domain = g_strdup(domain);
            if (strcmp(name, "reply-to") == 0 && t->reply_domain == NULL)
                t->reply_domain = g_strdup(domain);
        } else {
            tok_add(t, prefix, "nodomain");
        }
        g_free(domain);
        if (is_from && display != NULL) {
            char *clean = tok_clean(display, MQ_TOKENIZE_HEADER_MAX);
            tok_words(t, "from:name:", clean, strlen(clean));
            g_free(clean);
        }
    }
    if (is_rcpt)
        t->rcpts += (unsigned)n;
    if (list != NULL)
        g_object_unref(list);
    g_free(capped);
}

/* Host names and IPv4 addresses in a Received header. */
static void
tok_received(struct tok *t, const char *value)
{
    size_t len = strnlen(value, MQ_TOKENIZE_HEADER_MAX), i = 0, found = 0;

    while (i < len && found < TOK_ADDRESSES_MAX && !tok_full(t)) {
        size_t start = i, dots = 0;
        bool alpha = false;

        while (i < len && (g_ascii_isalnum(value[i]) || value[i] == '.' || value[i] == '-')) {
            dots += value[i] == '.';
            alpha = alpha || g_ascii_isalpha(value[i]);
            i++;
        }
        if (i == start) {
            i++;
            continue;
        }
        if (dots == 0 || i - start > 253)
            continue;
        found++;
        if (!alpha && dots == 3) {
            /* 192.0.2.1: its /24 and /16. */
            const char *last = memrchr(value + start, '.', i - start);
            const char *second = memrchr(value + start, '.', (size_t)(last - value) - start);
            tok_add_len(t, "received:ip:", value + start, (size_t)(last - value) - start);
            tok_add_len(t, "received:ip:", value + start, (size_t)(second - value) - start);
        } else if (alpha) {
            char *host = g_ascii_strdown(value + start, (gssize)(i - start));
            if (strchr(host, '.') != NULL)
                tok_host(t, "received:", host, strlen(host));
            g_free(host);
        }
    }
}

static void
tok_header(struct tok *t, GMimeHeader *header)
{
    const char *raw_name = g_mime_header_get_name(header);
    const char *value = g_mime_header_get_value(header);
    const char *raw_value = g_mime_header_get_raw_value(header);
    char name[TOK_NAME_MAX + 1], prefix[TOK_NAME_MAX + 8];
    char *clean = NULL;
    size_t n = raw_name != NULL ? strlen(raw_name) : 0;
    bool value_words = false;

    if (n == 0 || n > TOK_NAME_MAX)
        return;
    for (size_t i = 0; i < n; i++) {
        char c = g_ascii_tolower(raw_name[i]);
        if (!(g_ascii_isalnum(c) || c == '-' || c == '_'))
            return;
        name[i] = c;
    }
    name[n] = '\0';
    if (tok_header_ignored(name))
        return;
    tok_add(t, "header:", name);
    if (tok_in_list(name, tok_value_names, G_N_ELEMENTS(tok_value_names)))
        value_words = true;
    g_snprintf(prefix, sizeof(prefix), "%s:", name);
    if (value == NULL)
        value = "";
    clean = tok_clean(value, MQ_TOKENIZE_HEADER_MAX);

    if (strcmp(name, "from") == 0 || strcmp(name, "to") == 0 || strcmp(name, "cc") == 0 ||
        strcmp(name, "reply-to") == 0 || strcmp(name, "sender") == 0 ||
        strcmp(name, "return-path") == 0 || strcmp(name, "errors-to") == 0) {
        tok_addresses(t, name, raw_value != NULL ? raw_value : value);
    } else if (strcmp(name, "received") == 0) {
        if (++t->received <= TOK_RECEIVED_MAX)
            tok_received(t, clean);
    } else if (strcmp(name, "message-id") == 0) {
        char *domain = tok_addr_domain(clean);
        if (domain != NULL) {
            size_t dl = strcspn(domain, "> \t");
            domain[dl] = '\0';
            tok_host(t, prefix, domain, dl);
        } else {
            tok_add(t, prefix, "nodomain");
        }
        g_free(domain);
    } else if (strcmp(name, "content-type") == 0) {
        GMimeContentType *ct = g_mime_content_type_parse(NULL, clean);
        char *mime_type = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;
        const char *charset = ct != NULL ? g_mime_content_type_get_parameter(ct, "charset") : NULL;
        char *c;

        if (mime_type != NULL) {
            c = tok_clean(mime_type, TOK_NAME_MAX);
            tok_add(t, prefix, c);
            g_free(c);
        }
        if (charset != NULL) {
            c = tok_clean(charset, TOK_NAME_MAX);
            tok_add(t, "charset:", c);
            g_free(c);
        }
        g_free(mime_type);
        if (ct != NULL)
            g_object_unref(ct);
    } else if (value_words) {
        size_t len = strlen(clean);

        if (strcmp(name, "subject") == 0 && raw_value != NULL) {
            /* The charset of an encoded word says much about where it
             * was written. */
            const char *enc = strstr(raw_value, "=?");
            if (enc != NULL) {
                size_t cl = strcspn(enc + 2, "?*");
                char *cs = tok_clean(enc + 2, MIN(cl, TOK_NAME_MAX));
                tok_add(t, "subject:charset:", cs);
                g_free(cs);
            }
        }
        if (len > 0 && len <= TOK_WHOLE_VALUE_MAX) {
            char whole[TOK_NAME_MAX + TOK_WHOLE_VALUE_MAX + 2];
            g_snprintf(whole, sizeof(whole), "%s=", name);
            g_strstrip(clean);
            if (*clean != '\0')
                tok_add(t, whole, clean);
            len = strlen(clean);
        }
        tok_words(t, prefix, clean, len);
    }
    g_free(clean);
}

static const char *
tok_bucket(unsigned n)
{
    return n == 0 ? "0" : n == 1 ? "1" : n <= 5 ? "2-5" : n <= 20 ? "6-20" : "many";
}

/* ---- public ------------------------------------------------------------------- */

static void
tok_global_init(void)
{
    static gsize once = 0;

    if (g_once_init_enter(&once)) {
        g_mime_init();
        g_once_init_leave(&once, 1);
    }
}

GMimeMessage *
mq_tokenize_parse(const char *data, size_t len, GError **err)
{
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *message = NULL;

    tok_global_init();
    if (len > MQ_TOKENIZE_MESSAGE_MAX) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT, "message of %zu bytes, more than %u", len,
                    MQ_TOKENIZE_MESSAGE_MAX);
        return NULL;
    }
    /* An mbox "From " line is not a header; a message saved from a mail
     * reader may start with one. */
    if (len >= 5 && memcmp(data, "From ", 5) == 0) {
        const char *nl = memchr(data, '\n', len);
        len = nl != NULL ? len - (size_t)(nl + 1 - data) : 0;
        data = nl != NULL ? nl + 1 : data;
    }
    stream = g_mime_stream_mem_new_with_buffer(data, len);
    parser = g_mime_parser_new_with_stream(stream);
    message = g_mime_parser_construct_message(parser, NULL);
    if (message == NULL)
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "not a mail message");
    g_object_unref(parser);
    g_object_unref(stream);
    return message;
}

GPtrArray *
mq_tokenize(GMimeMessage *msg)
{
    struct tok t = { 0 };
    GMimeHeaderList *headers;
    int n;

    tok_global_init();
    t.out = g_ptr_array_new_with_free_func(g_free);
    t.seen = g_hash_table_new(g_str_hash, g_str_equal);

    headers = g_mime_object_get_header_list(GMIME_OBJECT(msg));
    n = headers != NULL ? g_mime_header_list_get_count(headers) : 0;
    for (int i = 0; i < n && i < MQ_TOKENIZE_HEADERS && !tok_full(&t); i++)
        tok_header(&t, g_mime_header_list_get_header_at(headers, i));
    tok_add(&t, "rcpt:count:", tok_bucket(t.rcpts));
    if (t.reply_domain != NULL)
        tok_add(&t, "reply-to:",
                t.from_domain != NULL && strcmp(t.from_domain, t.reply_domain) == 0 ? "same"
                                                                                     : "differs");

    tok_object(&t, g_mime_message_get_mime_part(msg), 0);
    tok_add(&t, "parts:", tok_bucket(t.parts));

    g_free(t.from_domain);
    g_free(t.reply_domain);
    g_hash_table_destroy(t.seen);
    return t.out;
}
