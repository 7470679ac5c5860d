#include <config.h>

#include <arpa/inet.h>
#include <string.h>

#include <gmime/gmime.h>

#include "mqscan/error.h"
#include "mqscan/heuristics.h"
#include "mqscan/log.h"
#include "mqscan/tokenize.h"

/* Bounds on what the checks read; see the header. */
#define HEUR_TEXT_MAX (128 * 1024)
#define HEUR_TEXT_TOTAL_MAX (512 * 1024)   /* text of all parts together */
#define HEUR_PARTS_MAX 200
#define HEUR_DEPTH_MAX 20
#define HEUR_ANCHORS_MAX 500
#define HEUR_RECEIVED_MAX 30
#define HEUR_WORDS_MAX 10000
#define HEUR_PHRASE_WORDS_MAX 8

struct heur_rule {
    const char *name;
    double weight;
    const char *description;
};

/* Default weights. A rule's weight reflects how much more often it fires on
 * spam than on legitimate mail, and no single header rule is meant to reach
 * the store threshold on its own. The BAYES_* weights were set with
 * "make bench-spam" (10-fold cross-validation on the shared corpus): from a
 * classifier probability of 0.8 up, the classifier alone reaches the
 * default store threshold (SCL 5). */
static const struct heur_rule heur_rules[] = {
    { "MISSING_DATE", 1.0, "no Date header" },
    { "BAD_DATE", 1.0, "a Date header that does not parse" },
    { "DATE_IN_FUTURE", 1.5, "Date more than a day after the message was received" },
    { "DATE_IN_PAST", 0.5, "Date more than four days before the message was received" },
    { "MISSING_MESSAGE_ID", 1.0, "no Message-ID header" },
    { "BAD_MESSAGE_ID", 1.0, "a Message-ID that is not <local@domain>" },
    { "MISSING_FROM", 1.5, "no From header" },
    { "FROM_NO_ADDRESS", 1.0, "a From header without a usable address" },
    { "FROM_ENVELOPE_MISMATCH", 0.2, "From domain differs from the envelope sender's" },
    { "MISSING_SUBJECT", 0.8, "no Subject header" },
    { "EMPTY_SUBJECT", 0.8, "an empty Subject" },
    { "SUBJECT_ALL_CAPS", 1.2, "a Subject written in capitals" },
    { "SUBJECT_EXCLAIM", 0.8, "a Subject with !!! or $$$" },
    { "MISSING_TO", 0.5, "no To header" },
    { "TO_UNDISCLOSED", 0.5, "To: undisclosed recipients" },
    { "MANY_RECIPIENTS", 1.0, "more than 15 addresses in To and Cc" },
    { "RECEIVED_BAD_IP", 2.0, "a Received header with an impossible IP address" },
    { "RECEIVED_TIME_TRAVEL", 1.0, "a Received hop dated more than 12 hours after the next" },
    { "HTML_ONLY", 0.8, "HTML without a plain-text alternative" },
    { "HTML_INVISIBLE_TEXT", 1.5, "text hidden by colour, size or display" },
    { "HTML_PHISH_LINK", 3.0, "a link whose visible text names another host than its target" },
    { "URL_RAW_IP", 1.5, "a link to a raw IP address" },
    { "HTML_SHOUTING", 0.8, "large or capital-letter HTML text" },
    { "TEXT_BASE64", 0.5, "a text part in base64" },
    { "CHARSET_FAREAST", 1.0, "a text in a CJK charset" },
    { "MIME_NO_TEXT", 0.5, "no readable text part at all" },
    { "NULL_SENDER", 0.5, "an empty envelope sender from outside" },
    { "SPF_PASS", -0.5, "SPF: the relay may send for the sender's domain" },
    { "SPF_FAIL", 3.0, "SPF: the relay must not send for the sender's domain" },
    { "SPF_SOFTFAIL", 1.0, "SPF: the relay should not send for the sender's domain" },
    { "SPF_PERMERROR", 0.5, "SPF: the domain's record is broken" },
    { "DNSBL", 3.0, "the relay is on a DNS block list (the zone's weight if set)" },
    { "BAYES_00", -4.0, "token classifier: spam probability below 1%" },
    { "BAYES_05", -1.5, "token classifier: 1% to 5%" },
    { "BAYES_20", -0.5, "token classifier: 5% to 20%" },
    { "BAYES_40", 0.0, "token classifier: 20% to 40%" },
    { "BAYES_50", 1.5, "token classifier: 40% to 60%" },
    { "BAYES_60", 3.5, "token classifier: 60% to 80%" },
    { "BAYES_80", 5.0, "token classifier: 80% to 95%" },
    { "BAYES_95", 5.5, "token classifier: 95% to 99%" },
    { "BAYES_99", 6.0, "token classifier: 99% or more" },
    { "SPAMD", 0.5, "SpamAssassin's score: this weight times (score - 3), from -3 to 9" },
};

#define HEUR_RULE_COUNT G_N_ELEMENTS(heur_rules)

/* One line of the word file. */
struct heur_phrase {
    char *name;                 /* "WORD_SUBJECT_free_money" */
    char **words;               /* lower case, NULL-terminated */
    unsigned n_words;
    double weight;
    bool subject, body;
    unsigned index;             /* for the per-message "counted once" bitmap */
};

/*
 * Most words of a text start no phrase, and a hash lookup per word was most
 * of what the phrase scan cost. A word can only start one if its length,
 * first and last byte are those of some phrase's first word: that is
 * checked first, in a bitmap filled when the word file is loaded.
 */
#define HEUR_FILTER_BITS 4096

struct mq_heuristics {
    double weights[HEUR_RULE_COUNT];
    GPtrArray *phrases;         /* struct heur_phrase * */
    GHashTable *by_first_word;  /* first word -> GPtrArray of struct heur_phrase * */
    guint64 first_word_filter[HEUR_FILTER_BITS / 64];
};

static inline unsigned char
heur_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* The filter bit of a word of len bytes, first and last already lower case. */
static inline unsigned
heur_filter_bit(size_t len, unsigned char first, unsigned char last)
{
    return ((unsigned)MIN(len, 63) * 257u + first * 31u + last) % HEUR_FILTER_BITS;
}

static inline bool
heur_filter_has(const struct mq_heuristics *h, unsigned bit)
{
    return (h->first_word_filter[bit / 64] >> (bit % 64)) & 1;
}

void
mq_spam_hit_free(gpointer p)
{
    struct mq_spam_hit *hit = p;
    g_free(hit->rule);
    g_free(hit);
}

static void
heur_phrase_free(gpointer p)
{
    struct heur_phrase *ph = p;
    g_free(ph->name);
    g_strfreev(ph->words);
    g_free(ph);
}

void
mq_spam_hit_add(GPtrArray *hits, char *rule, double weight)
{
    struct mq_spam_hit *hit;

    if (weight == 0 || hits == NULL) {
        g_free(rule);
        return;
    }
    hit = g_new(struct mq_spam_hit, 1);
    hit->rule = rule;
    hit->weight = weight;
    g_ptr_array_add(hits, hit);
}

static void
heur_hit(GPtrArray *hits, const char *rule, double weight)
{
    mq_spam_hit_add(hits, g_strdup(rule), weight);
}

static int
heur_rule_index(const char *name)
{
    for (size_t i = 0; i < HEUR_RULE_COUNT; i++)
        if (strcmp(heur_rules[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Bytes of words: ASCII letters and digits, and every byte from 0x80 up
 * (UTF-8 letters count). Inline arithmetic: it runs on every byte of the
 * text. */
static inline bool
heur_word_byte(unsigned char c)
{
    return c >= 0x80 || (unsigned)((c | 0x20) - 'a') < 26 || (unsigned)(c - '0') < 10;
}

/* Splits text into lower-case words of letters and digits (UTF-8 letters
 * count; everything else separates) and calls fn on each, at most max. */
typedef bool heur_word_fn(const char *word, size_t len, void *ctx);

static void
heur_words(const char *text, size_t len, unsigned max, heur_word_fn *fn, void *ctx)
{
    size_t i = 0;
    unsigned n = 0;

    while (i < len && n < max) {
        size_t start;
        while (i < len && !heur_word_byte((unsigned char)text[i]))
            i++;
        start = i;
        while (i < len && heur_word_byte((unsigned char)text[i]))
            i++;
        if (i > start) {
            n++;
            if (!fn(text + start, i - start, ctx))
                return;
        }
    }
}

static bool
heur_collect_word(const char *word, size_t len, void *ctx)
{
    GPtrArray *out = ctx;
    if (out->len >= HEUR_PHRASE_WORDS_MAX)
        return false;
    g_ptr_array_add(out, g_ascii_strdown(word, (gssize)len));
    return true;
}

static bool
heur_load_words(struct mq_heuristics *h, const char *path, GError **err)
{
    char *buf = NULL;
    gsize len;
    GError *error = NULL;
    char **lines;
    unsigned lineno = 0;
    bool ok = true;

    if (path == NULL || path[0] == '\0')
        return true;
    if (!g_file_get_contents(path, &buf, &len, &error)) {
        bool missing = g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
        if (!missing)
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s: %s", path, error->message);
        g_error_free(error);
        return missing;
    }
    lines = g_strsplit(buf, "\n", -1);
    for (char **l = lines; *l != NULL && ok; l++) {
        char *hash = strchr(*l, '#'), *end = NULL, *rest;
        struct heur_phrase *ph;
        GPtrArray *words;
        GString *name;
        double w;

        lineno++;
        if (hash != NULL)
            *hash = '\0';
        g_strstrip(*l);
        if ((*l)[0] == '\0')
            continue;
        w = g_ascii_strtod(*l, &end);
        rest = end;
        while (*rest == ' ' || *rest == '\t')
            rest++;
        ph = g_new0(struct heur_phrase, 1);
        if (end == *l || rest == end || w < -20 || w > 20) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "%s:%u: expected WEIGHT WHERE PHRASE, WEIGHT from -20 to 20", path, lineno);
            ok = false;
        } else if (g_str_has_prefix(rest, "subject") && g_ascii_isspace(rest[7])) {
            ph->subject = true;
            rest += 7;
        } else if (g_str_has_prefix(rest, "body") && g_ascii_isspace(rest[4])) {
            ph->body = true;
            rest += 4;
        } else if (g_str_has_prefix(rest, "any") && g_ascii_isspace(rest[3])) {
            ph->subject = ph->body = true;
            rest += 3;
        } else {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                        "%s:%u: WHERE must be subject, body or any", path, lineno);
            ok = false;
        }
        if (!ok) {
            heur_phrase_free(ph);
            break;
        }
        words = g_ptr_array_new();
        heur_words(rest, strlen(rest), HEUR_PHRASE_WORDS_MAX + 1, heur_collect_word, words);
        if (words->len == 0 || words->len >= HEUR_PHRASE_WORDS_MAX) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s:%u: the phrase must have 1 to %d words",
                        path, lineno, HEUR_PHRASE_WORDS_MAX - 1);
            g_ptr_array_free(words, TRUE);
            heur_phrase_free(ph);
            ok = false;
            break;
        }
        ph->n_words = words->len;
        g_ptr_array_add(words, NULL);
        ph->words = (char **)g_ptr_array_free(words, FALSE);
        ph->weight = w;
        ph->index = h->phrases->len;
        name = g_string_new(ph->subject && ph->body ? "WORD_" : ph->subject ? "WORD_SUBJECT_"
                                                                             : "WORD_BODY_");
        for (unsigned i = 0; i < ph->n_words; i++)
            g_string_append_printf(name, "%s%s", i ? "_" : "", ph->words[i]);
        ph->name = g_string_free(name, FALSE);
        g_ptr_array_add(h->phrases, ph);
        {
            size_t wl = strlen(ph->words[0]);
            unsigned bit = heur_filter_bit(wl, (unsigned char)ph->words[0][0],
                                           (unsigned char)ph->words[0][wl - 1]);
            GPtrArray *list = g_hash_table_lookup(h->by_first_word, ph->words[0]);
            if (list == NULL) {
                list = g_ptr_array_new();
                g_hash_table_insert(h->by_first_word, ph->words[0], list);
            }
            g_ptr_array_add(list, ph);
            h->first_word_filter[bit / 64] |= G_GUINT64_CONSTANT(1) << (bit % 64);
        }
    }
    g_strfreev(lines);
    g_free(buf);
    return ok;
}

struct mq_heuristics *
mq_heuristics_new(const char *words_path, const char *const *overrides, GError **err)
{
    struct mq_heuristics *h = g_new0(struct mq_heuristics, 1);

    for (size_t i = 0; i < HEUR_RULE_COUNT; i++)
        h->weights[i] = heur_rules[i].weight;
    h->phrases = g_ptr_array_new_with_free_func(heur_phrase_free);
    h->by_first_word = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                             (GDestroyNotify)g_ptr_array_unref);
    for (const char *const *o = overrides; o != NULL && *o != NULL; o++) {
        const char *eq = strchr(*o, '=');
        char *name = eq ? g_strndup(*o, (gsize)(eq - *o)) : g_strdup(*o);
        int i = heur_rule_index(name);
        if (eq == NULL || i < 0) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "spam_rule_weights: no rule named %s",
                        name);
            g_free(name);
            mq_heuristics_free(&h);
            return NULL;
        }
        h->weights[i] = g_ascii_strtod(eq + 1, NULL);
        g_free(name);
    }
    if (!heur_load_words(h, words_path, err)) {
        mq_heuristics_free(&h);
        return NULL;
    }
    return h;
}

void
mq_heuristics_free(struct mq_heuristics **heuristics)
{
    struct mq_heuristics *h = *heuristics;
    if (h == NULL)
        return;
    g_hash_table_destroy(h->by_first_word);
    g_ptr_array_free(h->phrases, TRUE);
    g_free(h);
    *heuristics = NULL;
}

double
mq_heuristics_weight(const struct mq_heuristics *h, const char *rule, GPtrArray *hits)
{
    int i = heur_rule_index(rule);
    double w;

    if (i < 0)
        return 0;
    w = h->weights[i];
    heur_hit(hits, rule, w);
    return w;
}

size_t
mq_heuristics_rule_count(void)
{
    return HEUR_RULE_COUNT;
}

void
mq_heuristics_rule(const struct mq_heuristics *h, size_t i, const char **name_r,
                   double *weight_r, const char **description_r)
{
    *name_r = heur_rules[i].name;
    *weight_r = h != NULL ? h->weights[i] : heur_rules[i].weight;
    *description_r = heur_rules[i].description;
}

/* ---- one message ------------------------------------------------------------ */

struct heur_run {
    const struct mq_heuristics *h;
    GPtrArray *hits;
    double total;
    GString *text;              /* plain text and HTML stripped of tags, lower case */
    unsigned parts;
    bool has_plain, has_html, invisible, phish, raw_ip, shouting, base64_text, fareast;
    unsigned anchors;
    guint8 *phrase_seen;
};

static void
heur_fire(struct heur_run *run, const char *rule)
{
    run->total += mq_heuristics_weight(run->h, rule, run->hits);
}

/* The host of an http(s) URL, lower case, or NULL. */
static char *
heur_url_host(const char *url, size_t len)
{
    size_t i = 0, start;

    while (i < len && g_ascii_isspace(url[i]))
        i++;
    if (len - i >= 7 && g_ascii_strncasecmp(url + i, "http://", 7) == 0)
        i += 7;
    else if (len - i >= 8 && g_ascii_strncasecmp(url + i, "https://", 8) == 0)
        i += 8;
    else if (len - i >= 4 && g_ascii_strncasecmp(url + i, "www.", 4) == 0)
        ;
    else
        return NULL;
    start = i;
    /* user:pass@host: the part before @ is what a reader sees, the host after it */
    for (size_t j = i; j < len && url[j] != '/' && url[j] != '?' && url[j] != '#'; j++)
        if (url[j] == '@')
            start = j + 1;
    i = start;
    while (i < len && (g_ascii_isalnum(url[i]) || url[i] == '.' || url[i] == '-'))
        i++;
    if (i == start || i - start > 253)
        return NULL;
    return g_ascii_strdown(url + start, (gssize)(i - start));
}

/* The last two labels ("example.co.uk" counts as three) for comparing hosts. */
static const char *
heur_base_domain(const char *host)
{
    const char *p = host + strlen(host);
    int dots = 0, want = 2;
    size_t n = strlen(host);

    if (n > 6 && (g_str_has_suffix(host, ".co.uk") || g_str_has_suffix(host, ".com.au") ||
                  g_str_has_suffix(host, ".co.jp") || g_str_has_suffix(host, ".com.br")))
        want = 3;
    while (p > host) {
        p--;
        if (*p == '.' && ++dots == want)
            return p + 1;
    }
    return host;
}

static bool
heur_is_ip(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1;
}

/* A value of an HTML attribute: name="v", name='v' or name=v. */
static char *
heur_attr(const char *tag, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < len; i++) {
        size_t j;
        char q;
        if (g_ascii_strncasecmp(tag + i, name, nl) != 0 || (i > 0 && g_ascii_isalnum(tag[i - 1])))
            continue;
        j = i + nl;
        while (j < len && g_ascii_isspace(tag[j]))
            j++;
        if (j >= len || tag[j] != '=')
            continue;
        j++;
        while (j < len && g_ascii_isspace(tag[j]))
            j++;
        q = j < len && (tag[j] == '"' || tag[j] == '\'') ? tag[j++] : 0;
        for (size_t k = j; k <= len; k++)
            if (k == len || (q ? tag[k] == q : (g_ascii_isspace(tag[k]) || tag[k] == '>')))
                return g_strndup(tag + j, k - j);
    }
    return NULL;
}

/* Whether an anchor's visible text names a host other than its target. */
static void
heur_check_anchor(struct heur_run *run, const char *href, const char *text)
{
    char *target = heur_url_host(href, strlen(href));
    const char *t = text;
    char *shown;

    if (target != NULL && heur_is_ip(target))
        run->raw_ip = true;
    while (*t != '\0' && g_ascii_isspace(*t))
        t++;
    shown = heur_url_host(t, strlen(t));
    if (target != NULL && shown != NULL && strchr(shown, '.') != NULL &&
        strcmp(heur_base_domain(target), heur_base_domain(shown)) != 0)
        run->phish = true;
    g_free(target);
    g_free(shown);
}

static bool
heur_style_hides(const char *s)
{
    char *l = g_ascii_strdown(s, -1);
    char *c = l;
    bool hides;
    /* drop blanks so "color : #fff" and "color:#fff" read the same */
    for (char *p = l; *p; p++)
        if (!g_ascii_isspace(*p))
            *c++ = *p;
    *c = '\0';
    hides = strstr(l, "display:none") != NULL || strstr(l, "visibility:hidden") != NULL ||
            strstr(l, "font-size:0") != NULL || strstr(l, "font-size:1px") != NULL ||
            (strstr(l, "color:#fff") != NULL && strstr(l, "background") == NULL) ||
            (strstr(l, "color:white") != NULL && strstr(l, "background") == NULL);
    g_free(l);
    return hides;
}

/* Strips tags into run->text, collecting anchors and hiding tricks. */
static void
heur_html(struct heur_run *run, const char *html, size_t len)
{
    size_t i = 0;
    char *href = NULL;
    GString *anchor = NULL;

    while (i < len) {
        if (html[i] == '<') {
            const char *close = memchr(html + i, '>', len - i);
            size_t tl = close ? (size_t)(close - (html + i)) + 1 : len - i;
            const char *tag = html + i + 1;
            size_t nl = tl > 1 ? tl - 1 : 0;

            if (nl >= 1 && (tag[0] == 'a' || tag[0] == 'A') && (nl == 1 || g_ascii_isspace(tag[1]))) {
                g_free(href);
                href = heur_attr(tag, nl, "href");
                if (anchor != NULL)
                    g_string_truncate(anchor, 0);
                else
                    anchor = g_string_new(NULL);
            } else if (nl >= 2 && tag[0] == '/' && (tag[1] == 'a' || tag[1] == 'A') &&
                       (nl == 2 || !g_ascii_isalnum(tag[2]))) {
                if (href != NULL && anchor != NULL && run->anchors < HEUR_ANCHORS_MAX) {
                    run->anchors++;
                    heur_check_anchor(run, href, anchor->str);
                }
                g_clear_pointer(&href, g_free);
            } else if (nl > 4 && (g_ascii_strncasecmp(tag, "font", 4) == 0 ||
                                  g_ascii_strncasecmp(tag, "span", 4) == 0 ||
                                  g_ascii_strncasecmp(tag, "div", 3) == 0 ||
                                  g_ascii_strncasecmp(tag, "p ", 2) == 0 ||
                                  g_ascii_strncasecmp(tag, "td", 2) == 0)) {
                char *style = heur_attr(tag, nl, "style");
                char *color = heur_attr(tag, nl, "color");
                char *size = heur_attr(tag, nl, "size");
                if ((style != NULL && heur_style_hides(style)) ||
                    (color != NULL && (g_ascii_strcasecmp(color, "#ffffff") == 0 ||
                                       g_ascii_strcasecmp(color, "white") == 0)))
                    run->invisible = true;
                if (size != NULL && (strcmp(size, "+3") == 0 || strcmp(size, "+4") == 0 ||
                                     strcmp(size, "6") == 0 || strcmp(size, "7") == 0))
                    run->shouting = true;
                g_free(style);
                g_free(color);
                g_free(size);
            } else if (nl >= 5 && (g_ascii_strncasecmp(tag, "style", 5) == 0 ||
                                   g_ascii_strncasecmp(tag, "script", 6) == 0)) {
                /* skip the element's content: it is not text a reader sees */
                const char *end = g_strstr_len(html + i + tl, (gssize)(len - i - tl), "</");
                /* No end tag: the rest is not text either (and looking for
                 * one again at every later tag would be quadratic). */
                i = end != NULL ? (size_t)(end - html) : len;
                continue;
            }
            g_string_append_c(run->text, ' ');
            i += tl;
            continue;
        }
        if (html[i] == '&') {
            /* entities become a blank: words on either side stay apart */
            size_t j = i + 1;
            while (j < len && j - i < 10 && html[j] != ';' && !g_ascii_isspace(html[j]))
                j++;
            if (j < len && html[j] == ';') {
                g_string_append_c(run->text, ' ');
                i = j + 1;
                continue;
            }
        }
        g_string_append_c(run->text, (char)heur_lower((unsigned char)html[i]));
        if (anchor != NULL && href != NULL && anchor->len < 300)
            g_string_append_c(anchor, html[i]);
        i++;
    }
    g_free(href);
    if (anchor != NULL)
        g_string_free(anchor, TRUE);
}

static void
heur_walk(struct heur_run *run, GMimeObject *obj, unsigned depth)
{
    GMimeContentType *ct;
    const char *charset;

    if (obj == NULL || depth > HEUR_DEPTH_MAX || ++run->parts > HEUR_PARTS_MAX)
        return;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && run->parts <= HEUR_PARTS_MAX; i++)
            heur_walk(run, g_mime_multipart_get_part(mp, i), depth + 1);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (inner != NULL)
            heur_walk(run, g_mime_message_get_mime_part(inner), depth + 1);
        return;
    }
    if (!GMIME_IS_PART(obj))
        return;
    ct = g_mime_object_get_content_type(obj);
    if (ct == NULL || !g_mime_content_type_is_type(ct, "text", "*") ||
        g_mime_part_get_filename(GMIME_PART(obj)) != NULL)
        return;
    charset = g_mime_content_type_get_parameter(ct, "charset");
    if (charset != NULL && (g_ascii_strncasecmp(charset, "gb", 2) == 0 ||
                            g_ascii_strcasecmp(charset, "big5") == 0 ||
                            g_ascii_strncasecmp(charset, "ks_c", 4) == 0 ||
                            g_ascii_strcasecmp(charset, "euc-kr") == 0 ||
                            g_ascii_strncasecmp(charset, "iso-2022", 8) == 0))
        run->fareast = true;
    if (g_mime_part_get_content_encoding(GMIME_PART(obj)) == GMIME_CONTENT_ENCODING_BASE64)
        run->base64_text = true;
    if (run->text->len >= HEUR_TEXT_TOTAL_MAX)
        return;
    if (g_mime_content_type_is_type(ct, "text", "html")) {
        GString *html = g_string_new(NULL);
        run->has_html = true;
        mq_tokenize_part_text(GMIME_PART(obj), HEUR_TEXT_MAX, html);
        heur_html(run, html->str, html->len);
        g_string_free(html, TRUE);
    } else if (g_mime_content_type_is_type(ct, "text", "plain")) {
        size_t start = run->text->len;
        run->has_plain = true;
        mq_tokenize_part_text(GMIME_PART(obj), HEUR_TEXT_MAX, run->text);
        for (size_t i = start; i < run->text->len; i++)
            run->text->str[i] = (char)heur_lower((unsigned char)run->text->str[i]);
    }
}

/* ---- word rules ------------------------------------------------------------ */

struct heur_phrase_scan {
    struct heur_run *run;
    const char *text;
    size_t len;
    bool subject;
};

/* Does phrase ph continue at the words after word (which matched words[0])? */
static bool
heur_phrase_at(const struct heur_phrase *ph, const char *after, const char *end)
{
    const char *p = after;
    for (unsigned w = 1; w < ph->n_words; w++) {
        size_t wl = strlen(ph->words[w]);
        while (p < end && !heur_word_byte((unsigned char)*p))
            p++;
        if ((size_t)(end - p) < wl)
            return false;
        for (size_t i = 0; i < wl; i++)     /* case-blind: the subject is not lowered */
            if (heur_lower((unsigned char)p[i]) != (unsigned char)ph->words[w][i])
                return false;
        p += wl;
        if (p < end && heur_word_byte((unsigned char)*p))
            return false;
    }
    return true;
}

static bool
heur_phrase_word(const char *word, size_t len, void *ctx)
{
    struct heur_phrase_scan *scan = ctx;
    const struct mq_heuristics *h = scan->run->h;
    char key[64];
    GPtrArray *list;

    if (len >= sizeof(key)
        || !heur_filter_has(h, heur_filter_bit(len, heur_lower((unsigned char)word[0]),
                                               heur_lower((unsigned char)word[len - 1]))))
        return true;
    for (size_t i = 0; i < len; i++)
        key[i] = (char)heur_lower((unsigned char)word[i]);
    key[len] = '\0';
    list = g_hash_table_lookup(h->by_first_word, key);
    for (guint i = 0; list != NULL && i < list->len; i++) {
        const struct heur_phrase *ph = g_ptr_array_index(list, i);
        if ((scan->subject ? !ph->subject : !ph->body) || scan->run->phrase_seen[ph->index])
            continue;
        if (heur_phrase_at(ph, word + len, scan->text + scan->len)) {
            scan->run->phrase_seen[ph->index] = 1;
            scan->run->total += ph->weight;
            heur_hit(scan->run->hits, ph->name, ph->weight);
        }
    }
    return true;
}

static void
heur_scan_phrases(struct heur_run *run, const char *text, size_t len, bool subject)
{
    struct heur_phrase_scan scan = { run, text, len, subject };
    if (run->h->phrases->len > 0)
        heur_words(text, len, HEUR_WORDS_MAX, heur_phrase_word, &scan);
}

/* ---- header rules ----------------------------------------------------------- */

static const char *
heur_header(GMimeMessage *msg, const char *name)
{
    return g_mime_object_get_header(GMIME_OBJECT(msg), name);
}

/* The date after the last ';' of a Received header, or NULL. */
static GDateTime *
heur_received_date(const char *value)
{
    const char *semi = strrchr(value, ';');
    return semi != NULL ? g_mime_utils_header_decode_date(semi + 1) : NULL;
}

/* "[a.b.c.d]" literals in a Received header's from clause that are not valid addresses. */
static bool
heur_received_bad_ip(const char *value)
{
    const char *by = strstr(value, " by ");
    const char *end = by != NULL ? by : value + strlen(value);

    for (const char *p = strchr(value, '['); p != NULL && p < end; p = strchr(p + 1, '[')) {
        const char *close = strchr(p, ']');
        char lit[64];
        unsigned char buf[16];
        size_t n;
        bool digits = true;
        if (close == NULL || close > end)
            break;
        n = (size_t)(close - p - 1);
        if (n == 0 || n >= sizeof(lit))
            continue;
        memcpy(lit, p + 1, n);
        lit[n] = '\0';
        for (size_t i = 0; i < n; i++)
            if (!g_ascii_isdigit(lit[i]) && lit[i] != '.')
                digits = false;
        if (digits && inet_pton(AF_INET, lit, buf) != 1)
            return true;
    }
    return false;
}

static void
heur_check_received(struct heur_run *run, GMimeMessage *msg, GDateTime **top_r)
{
    GMimeHeaderList *list = g_mime_object_get_header_list(GMIME_OBJECT(msg));
    int n = g_mime_header_list_get_count(list), seen = 0;
    GDateTime *upper = NULL;
    bool bad_ip = false, travel = false;

    *top_r = NULL;
    for (int i = 0; i < n && seen < HEUR_RECEIVED_MAX; i++) {
        GMimeHeader *hdr = g_mime_header_list_get_header_at(list, i);
        const char *value;
        GDateTime *d;
        if (g_ascii_strcasecmp(g_mime_header_get_name(hdr), "Received") != 0)
            continue;
        seen++;
        value = g_mime_header_get_value(hdr);
        if (value == NULL)
            continue;
        if (heur_received_bad_ip(value))
            bad_ip = true;
        d = heur_received_date(value);
        if (d == NULL)
            continue;
        if (*top_r == NULL)
            *top_r = g_date_time_ref(d);
        /* Headers are newest first: this hop is older than the one above. */
        if (upper != NULL && g_date_time_difference(d, upper) > 12 * G_TIME_SPAN_HOUR)
            travel = true;
        if (upper != NULL)
            g_date_time_unref(upper);
        upper = d;
    }
    if (upper != NULL)
        g_date_time_unref(upper);
    if (bad_ip)
        heur_fire(run, "RECEIVED_BAD_IP");
    if (travel)
        heur_fire(run, "RECEIVED_TIME_TRAVEL");
}

static void
heur_check_date(struct heur_run *run, GMimeMessage *msg, const struct mq_heuristics_env *env,
                GDateTime *top_received)
{
    const char *value = heur_header(msg, "Date");
    GDateTime *date, *ref = NULL;

    if (value == NULL) {
        heur_fire(run, "MISSING_DATE");
        return;
    }
    date = g_mime_utils_header_decode_date(value);
    if (date == NULL) {
        heur_fire(run, "BAD_DATE");
        return;
    }
    if (env != NULL && env->queue_time_known)
        ref = g_date_time_new_from_unix_utc(env->queue_time);
    else if (top_received != NULL)
        ref = g_date_time_ref(top_received);
    if (ref != NULL) {
        GTimeSpan d = g_date_time_difference(date, ref);
        if (d > 24 * G_TIME_SPAN_HOUR)
            heur_fire(run, "DATE_IN_FUTURE");
        else if (d < -96 * G_TIME_SPAN_HOUR)
            heur_fire(run, "DATE_IN_PAST");
        g_date_time_unref(ref);
    }
    g_date_time_unref(date);
}

static void
heur_check_message_id(struct heur_run *run, GMimeMessage *msg)
{
    const char *raw = heur_header(msg, "Message-ID");
    const char *at, *lt, *gt;

    if (raw == NULL) {
        heur_fire(run, "MISSING_MESSAGE_ID");
        return;
    }
    while (g_ascii_isspace(*raw))
        raw++;
    lt = strchr(raw, '<');
    at = strchr(raw, '@');
    gt = strchr(raw, '>');
    if (lt != raw || at == NULL || gt == NULL || at < lt || gt < at || at == lt + 1 ||
        gt == at + 1)
        heur_fire(run, "BAD_MESSAGE_ID");
}

static const char *
heur_domain_of(const char *addr)
{
    const char *at = addr != NULL ? strrchr(addr, '@') : NULL;
    return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

/* True if a and b are the same domain or one is under the other's base domain. */
static bool
heur_domains_related(const char *a, const char *b)
{
    char *la = g_ascii_strdown(a, -1), *lb = g_ascii_strdown(b, -1);
    bool related = strcmp(heur_base_domain(la), heur_base_domain(lb)) == 0;
    g_free(la);
    g_free(lb);
    return related;
}

static void
heur_check_from(struct heur_run *run, GMimeMessage *msg, const struct mq_heuristics_env *env)
{
    InternetAddressList *from = g_mime_message_get_from(msg);
    InternetAddress *first;
    const char *addr = NULL, *fd, *ed;

    if (heur_header(msg, "From") == NULL) {
        heur_fire(run, "MISSING_FROM");
        return;
    }
    first = from != NULL && internet_address_list_length(from) > 0
                ? internet_address_list_get_address(from, 0) : NULL;
    if (first != NULL && INTERNET_ADDRESS_IS_MAILBOX(first))
        addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(first));
    fd = heur_domain_of(addr);
    if (fd == NULL) {
        heur_fire(run, "FROM_NO_ADDRESS");
        return;
    }
    if (env != NULL && env->env_sender != NULL && env->env_sender[0] != '\0') {
        ed = heur_domain_of(env->env_sender);
        if (ed != NULL && !heur_domains_related(fd, ed))
            heur_fire(run, "FROM_ENVELOPE_MISMATCH");
    }
}

static void
heur_check_subject(struct heur_run *run, GMimeMessage *msg)
{
    const char *subject = g_mime_message_get_subject(msg);
    unsigned upper = 0, lower = 0, bang = 0, dollar = 0;

    if (heur_header(msg, "Subject") == NULL) {
        heur_fire(run, "MISSING_SUBJECT");
        return;
    }
    if (subject == NULL || subject[strspn(subject, " \t")] == '\0') {
        heur_fire(run, "EMPTY_SUBJECT");
        return;
    }
    for (const char *p = subject; *p != '\0' && p - subject < 1000; p++) {
        upper += g_ascii_isupper(*p);
        lower += g_ascii_islower(*p);
        bang += *p == '!';
        dollar += *p == '$';
    }
    if (upper >= 10 && lower == 0)
        heur_fire(run, "SUBJECT_ALL_CAPS");
    if (bang >= 3 || dollar >= 3 || strstr(subject, "!!") != NULL)
        heur_fire(run, "SUBJECT_EXCLAIM");
    heur_scan_phrases(run, subject, strlen(subject), true);
}

static void
heur_check_recipients(struct heur_run *run, GMimeMessage *msg)
{
    InternetAddressList *to = g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_TO);
    InternetAddressList *cc = g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_CC);
    const char *raw_to = heur_header(msg, "To");
    int n = (to ? internet_address_list_length(to) : 0) + (cc ? internet_address_list_length(cc) : 0);

    if (raw_to == NULL)
        heur_fire(run, "MISSING_TO");
    else if (strstr(raw_to, "ndisclosed") != NULL || strstr(raw_to, "NDISCLOSED") != NULL)
        heur_fire(run, "TO_UNDISCLOSED");
    if (n > 15)
        heur_fire(run, "MANY_RECIPIENTS");
}

double
mq_heuristics_run(const struct mq_heuristics *h, GMimeMessage *msg,
                  const struct mq_heuristics_env *env, GPtrArray *hits)
{
    struct heur_run run = { 0 };
    GDateTime *top = NULL;

    run.h = h;
    run.hits = hits;
    run.text = g_string_sized_new(8192);
    run.phrase_seen = g_new0(guint8, h->phrases->len + 1);

    heur_check_received(&run, msg, &top);
    heur_check_date(&run, msg, env, top);
    if (top != NULL)
        g_date_time_unref(top);
    heur_check_message_id(&run, msg);
    heur_check_from(&run, msg, env);
    heur_check_subject(&run, msg);
    heur_check_recipients(&run, msg);

    heur_walk(&run, g_mime_message_get_mime_part(msg), 0);
    if (run.has_html && !run.has_plain)
        heur_fire(&run, "HTML_ONLY");
    if (!run.has_html && !run.has_plain)
        heur_fire(&run, "MIME_NO_TEXT");
    if (run.invisible)
        heur_fire(&run, "HTML_INVISIBLE_TEXT");
    if (run.phish)
        heur_fire(&run, "HTML_PHISH_LINK");
    if (run.raw_ip)
        heur_fire(&run, "URL_RAW_IP");
    if (run.shouting)
        heur_fire(&run, "HTML_SHOUTING");
    if (run.base64_text)
        heur_fire(&run, "TEXT_BASE64");
    if (run.fareast)
        heur_fire(&run, "CHARSET_FAREAST");
    /* Links written out in plain text count too. */
    if (!run.raw_ip) {
        const char *p = run.text->str;
        while ((p = strstr(p, "http://")) != NULL) {
            char *host = heur_url_host(p, strnlen(p, 300));
            bool ip = host != NULL && heur_is_ip(host);
            g_free(host);
            if (ip) {
                heur_fire(&run, "URL_RAW_IP");
                break;
            }
            p += 7;
        }
    }
    heur_scan_phrases(&run, run.text->str, run.text->len, false);

    g_string_free(run.text, TRUE);
    g_free(run.phrase_seen);
    return run.total;
}
