#include <config.h>

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>

#include <gmime/gmime.h>

#include "mqscan/bayes.h"
#include "mqscan/dnsbl.h"
#include "mqscan/error.h"
#include "mqscan/heuristics.h"
#include "mqscan/lists.h"
#include "mqscan/log.h"
#include "mqscan/spam.h"
#include "mqscan/spamd.h"
#include "mqscan/spf.h"

struct mq_spam {
    const struct mq_config *config;     /* borrowed; outlives this */
    struct mq_heuristics *heuristics;
    struct mq_list *sender_allow, *sender_block, *recipient_block, *ip_allow, *ip_block;
    struct mq_bayes *bayes;             /* NULL: no trained database */
    char *bayes_state;                  /* why not, or its counts, for describe */
    struct mq_spf *spf;                 /* NULL: spf_check off */
    struct mq_dnsbl *dnsbl;             /* NULL: no zones */
    struct mq_spamd *spamd;             /* NULL: no spamd_server */
};

static bool
spam_load_list(const char *path, enum mq_list_kind kind, struct mq_list **list_r, GError **err)
{
    *list_r = mq_list_load(path, kind, err);
    return *list_r != NULL;
}

/* The classifier is an input like any other: without a database, or with
 * one trained on too little mail, the score simply goes without it. */
static void
spam_open_bayes(struct mq_spam *s)
{
    const char *path = s->config->bayes_db;
    GError *error = NULL;
    unsigned nham = 0, nspam = 0;

    if (path[0] == '\0') {
        s->bayes_state = g_strdup("classifier off (bayes_db = \"\")");
        return;
    }
    s->bayes = mq_bayes_open(path, &error);
    if (s->bayes == NULL) {
        s->bayes_state = g_strdup_printf("classifier off: %s", error->message);
        g_error_free(error);
        return;
    }
    mq_bayes_counts(s->bayes, &nham, &nspam);
    if (!mq_bayes_ready(s->bayes)) {
        s->bayes_state = g_strdup_printf("classifier off: %s has learned %u ham and %u spam, "
                                         "needs %u of each (mqscan-learn)",
                                         path, nham, nspam, MQ_BAYES_MIN_LEARNED);
        mq_bayes_free(&s->bayes);
        return;
    }
    s->bayes_state = g_strdup_printf("classifier %s (%u ham, %u spam)", path, nham, nspam);
}

struct mq_spam *
mq_spam_new(const struct mq_config *c, GError **err)
{
    struct mq_spam *s = g_new0(struct mq_spam, 1);

    s->config = c;
    s->heuristics = mq_heuristics_new(c->spam_words, (const char *const *)c->spam_rule_weights,
                                      err);
    if (s->heuristics == NULL ||
        !spam_load_list(c->sender_allow, MQ_LIST_ADDRESSES, &s->sender_allow, err) ||
        !spam_load_list(c->sender_block, MQ_LIST_ADDRESSES, &s->sender_block, err) ||
        !spam_load_list(c->recipient_block, MQ_LIST_ADDRESSES, &s->recipient_block, err) ||
        !spam_load_list(c->ip_allow, MQ_LIST_NETWORKS, &s->ip_allow, err) ||
        !spam_load_list(c->ip_block, MQ_LIST_NETWORKS, &s->ip_block, err))
        goto fail;
    spam_open_bayes(s);
    if (c->spf_check && (s->spf = mq_spf_new(c->hostname[0] ? c->hostname : "localhost", err)) == NULL)
        goto fail;
    if (c->dnsbl_zones[0] != NULL &&
        (s->dnsbl = mq_dnsbl_new((const char *const *)c->dnsbl_zones, c->dnsbl_server,
                                 c->dnsbl_timeout, c->dnsbl_cache_ttl, err)) == NULL)
        goto fail;
    if (c->spamd_server[0] != '\0' &&
        (s->spamd = mq_spamd_new(c->spamd_server, NULL, c->spamd_timeout, c->spamd_max_size,
                                 err)) == NULL)
        goto fail;
    return s;
fail:
    if (err != NULL && *err != NULL)
        (*err)->code = MQ_ERROR_CONFIG;
    mq_spam_free(&s);
    return NULL;
}

void
mq_spam_free(struct mq_spam **spam)
{
    struct mq_spam *s = *spam;
    if (s == NULL)
        return;
    mq_heuristics_free(&s->heuristics);
    mq_list_free(&s->sender_allow);
    mq_list_free(&s->sender_block);
    mq_list_free(&s->recipient_block);
    mq_list_free(&s->ip_allow);
    mq_list_free(&s->ip_block);
    mq_bayes_free(&s->bayes);
    g_free(s->bayes_state);
    mq_spf_free(&s->spf);
    mq_dnsbl_free(&s->dnsbl);
    mq_spamd_free(&s->spamd);
    g_free(s);
    *spam = NULL;
}

char *
mq_spam_describe(const struct mq_spam *s)
{
    static const char *const actions[] = { "none", "quarantine", "reject", "delete" };
    const struct mq_config *c = s->config;
    GString *d = g_string_new(NULL);

    g_string_append_printf(d, "store threshold SCL %u, gateway threshold SCL %u (%s)",
                           c->spam_store_threshold, c->spam_gateway_threshold,
                           actions[c->spam_gateway_action]);
    g_string_append_printf(d, "; lists: sender_allow %zu, sender_block %zu, recipient_block %zu, "
                           "ip_allow %zu, ip_block %zu entries",
                           mq_list_size(s->sender_allow), mq_list_size(s->sender_block),
                           mq_list_size(s->recipient_block), mq_list_size(s->ip_allow),
                           mq_list_size(s->ip_block));
    g_string_append_printf(d, "; %zu rules; %s; SPF %s; DNSBL %s; spamd %s",
                           mq_heuristics_rule_count(), s->bayes_state,
                           s->spf ? "on" : "off", s->dnsbl ? "on" : "off",
                           s->spamd ? c->spamd_server : "off");
    return g_string_free(d, FALSE);
}

const char *
mq_spam_level_stars(unsigned scl)
{
    static const char stars[] = "*********";
    return stars + 9 - MIN(scl, 9u);
}

/* The From header's address, lower case, or NULL. */
static char *
spam_from_address(GMimeMessage *msg)
{
    InternetAddressList *from = msg ? g_mime_message_get_from(msg) : NULL;
    InternetAddress *a;

    if (from == NULL || internet_address_list_length(from) == 0)
        return NULL;
    a = internet_address_list_get_address(from, 0);
    if (!INTERNET_ADDRESS_IS_MAILBOX(a))
        return NULL;
    return g_strdup(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a)));
}

/* Lists decide alone. Returns true if one matched. */
static bool
spam_check_lists(const struct mq_spam *s, const struct mq_spam_input *in, time_t now,
                 struct mq_spam_verdict *v)
{
    const char *entry = NULL;
    char *from = spam_from_address(in->msg);
    const char *which = NULL;

    if (in->relay_known && mq_list_match_ip(s->ip_allow, in->relay_family, in->relay_addr, now,
                                            &entry)) {
        v->listed = MQ_SPAM_LISTED_ALLOW;
        which = "ip_allow";
    } else if (in->relay_known && mq_list_match_ip(s->ip_block, in->relay_family,
                                                   in->relay_addr, now, &entry)) {
        v->listed = MQ_SPAM_LISTED_BLOCK;
        which = "ip_block";
    } else if (mq_list_match_address(s->sender_block, in->sender, now, &entry) ||
               (from != NULL && mq_list_match_address(s->sender_block, from, now, &entry))) {
        /* Block before allow: a forged allowed From must not beat a block. */
        v->listed = MQ_SPAM_LISTED_BLOCK;
        which = "sender_block";
    } else if (mq_list_match_address(s->sender_allow, in->sender, now, &entry)) {
        v->listed = MQ_SPAM_LISTED_ALLOW;
        which = "sender_allow";
    } else if (in->sender[0] == '\0' && s->config->spam_null_sender == MQ_NULL_SENDER_BLOCK) {
        v->listed = MQ_SPAM_LISTED_BLOCK;
        which = "spam_null_sender";
        entry = "block";
    }
    g_free(from);
    if (which == NULL)
        return false;
    v->list_entry = g_strdup_printf("%s: %s", which, entry);
    {
        char *clean = mq_log_sanitize(v->list_entry, 400);
        g_free(v->list_entry);
        v->list_entry = clean;
    }
    return true;
}

static void
spam_check_recipients(const struct mq_spam *s, const struct mq_spam_input *in, time_t now,
                      struct mq_spam_verdict *v)
{
    if (mq_list_size(s->recipient_block) == 0 || in->n_rcpts == 0)
        return;
    v->rcpt_blocked = g_new0(bool, in->n_rcpts);
    for (size_t i = 0; i < in->n_rcpts; i++) {
        if (mq_list_match_address(s->recipient_block, in->rcpts[i], now, NULL)) {
            v->rcpt_blocked[i] = true;
            v->n_rcpt_blocked++;
        }
    }
}

static void
spam_note(GString **notes, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
spam_note(GString **notes, const char *fmt, ...)
{
    va_list ap;
    if (*notes == NULL)
        *notes = g_string_new(NULL);
    else
        g_string_append(*notes, "; ");
    va_start(ap, fmt);
    g_string_append_vprintf(*notes, fmt, ap);
    va_end(ap);
}

static double
spam_bayes(struct mq_spam *s, struct _GMimeMessage *msg, struct mq_spam_verdict *v,
           GPtrArray *hits, GString **notes)
{
    static const struct {
        double below;
        const char *rule;
    } buckets[] = {
        { 0.01, "BAYES_00" }, { 0.05, "BAYES_05" }, { 0.20, "BAYES_20" }, { 0.40, "BAYES_40" },
        { 0.60, "BAYES_50" }, { 0.80, "BAYES_60" }, { 0.95, "BAYES_80" }, { 0.99, "BAYES_95" },
        { 2.00, "BAYES_99" },
    };
    struct mq_bayes_result r = { 0 };
    GError *error = NULL;
    double w = 0;

    if (mq_bayes_classify(s->bayes, msg, &r, &error) < 0) {
        spam_note(notes, "classifier: %s", error->message);
        g_error_free(error);
        return 0;
    }
    v->bayes = r.prob;
    for (size_t i = 0; i < G_N_ELEMENTS(buckets); i++) {
        if (r.prob < buckets[i].below) {
            w = mq_heuristics_weight(s->heuristics, buckets[i].rule, hits);
            break;
        }
    }
    mq_bayes_result_clear(&r);
    return w;
}

static double
spam_spf(struct mq_spam *s, const struct mq_spam_input *in, struct mq_spam_verdict *v,
         GPtrArray *hits, GString **notes)
{
    enum mq_spf_result result;
    GError *error = NULL;
    const char *rule = NULL;

    if (mq_spf_check(s->spf, in->relay_family, in->relay_addr, in->helo ? in->helo : "",
                     in->sender, &result, &v->received_spf, &error) < 0) {
        spam_note(notes, "SPF: %s", error->message);
        g_error_free(error);
        return 0;
    }
    switch (result) {
    case MQ_SPF_PASS: rule = "SPF_PASS"; v->spf_pass = true; break;
    case MQ_SPF_FAIL: rule = "SPF_FAIL"; break;
    case MQ_SPF_SOFTFAIL: rule = "SPF_SOFTFAIL"; break;
    case MQ_SPF_PERMERROR: rule = "SPF_PERMERROR"; break;
    case MQ_SPF_TEMPERROR: spam_note(notes, "SPF: temporary DNS error"); break;
    default: break;
    }
    return rule != NULL ? mq_heuristics_weight(s->heuristics, rule, hits) : 0;
}

static double
spam_dnsbl(struct mq_spam *s, const struct mq_spam_input *in, GPtrArray *hits, GString **notes)
{
    GPtrArray *listed = NULL;
    GError *error = NULL;
    char *why = NULL;
    double total = 0, base = mq_heuristics_weight(s->heuristics, "DNSBL", NULL);
    int failed;

    /* Our own networks are never looked up: their mail is not from outside. */
    if (mq_config_is_internal(s->config, in->relay_family, in->relay_addr))
        return 0;
    failed = mq_dnsbl_check(s->dnsbl, in->relay_family, in->relay_addr, &listed, &why, &error);
    if (failed < 0) {
        spam_note(notes, "DNSBL: %s", error->message);
        g_error_free(error);
        return 0;
    }
    if (failed > 0)
        spam_note(notes, "DNSBL: %s", why ? why : "a zone did not answer");
    for (guint i = 0; listed != NULL && i < listed->len; i++) {
        const struct mq_dnsbl_hit *h = g_ptr_array_index(listed, i);
        /* "zone=weight" in dnsbl_zones scales the rule's weight */
        double w = base * h->weight;
        mq_spam_hit_add(hits, g_strdup_printf("DNSBL_%s", h->zone), w);
        total += w;
    }
    mq_dnsbl_hits_free(&listed);
    g_free(why);
    return total;
}

static double
spam_spamd(struct mq_spam *s, const struct mq_spam_input *in, struct mq_spam_verdict *v,
           GPtrArray *hits, GString **notes)
{
    struct mq_spamd_result r = { 0 };
    GError *error = NULL;
    double per_point = mq_heuristics_weight(s->heuristics, "SPAMD", NULL), w;

    if (mq_spamd_check(s->spamd, in->raw, in->raw_len, &r, &error) < 0) {
        spam_note(notes, "spamd: %s (built-in score only)", error->message);
        g_error_free(error);
        return 0;
    }
    v->spamd_score = r.score;
    /* SpamAssassin's points count from 3 (the score of a typical legitimate
     * message without Bayes and network tests is below it) and are bounded,
     * so that spamd can confirm or doubt the built-in score without
     * overruling it, except for a certain verdict such as GTUBE. */
    w = CLAMP((r.score - 3.0) * per_point, -3.0, 9.0);
    mq_spam_hit_add(hits, g_strdup_printf("SPAMD(%.1f)", r.score), w);
    mq_spamd_result_clear(&r);
    return w;
}

void
mq_spam_check(struct mq_spam *s, const struct mq_spam_input *in, struct mq_spam_verdict *v)
{
    const struct mq_config *c = s->config;
    GPtrArray *hits = g_ptr_array_new_with_free_func(mq_spam_hit_free);
    gint64 start = g_get_monotonic_time();
    time_t now = time(NULL);
    GString *notes = NULL, *rules;
    double score = 0;

    memset(v, 0, sizeof(*v));
    v->bayes = -1;
    v->spamd_score = NAN;

    spam_check_recipients(s, in, now, v);
    if (spam_check_lists(s, in, now, v)) {
        score = v->listed == MQ_SPAM_LISTED_ALLOW ? 0 : 9;
        goto decide;
    }

    if (in->sender[0] == '\0' && c->spam_null_sender == MQ_NULL_SENDER_SCORE)
        score += mq_heuristics_weight(s->heuristics, "NULL_SENDER", hits);
    if (in->msg != NULL) {
        struct mq_heuristics_env env = { in->sender, in->queue_time_known, in->queue_time };
        score += mq_heuristics_run(s->heuristics, in->msg, &env, hits);
    } else {
        spam_note(&notes, "MIME structure not parsed: headers and text not checked");
    }
    if (s->bayes != NULL && in->msg != NULL)
        score += spam_bayes(s, in->msg, v, hits, &notes);
    if (s->spf != NULL && in->relay_known)
        score += spam_spf(s, in, v, hits, &notes);
    if (s->dnsbl != NULL && in->relay_known)
        score += spam_dnsbl(s, in, hits, &notes);
    /* The slowest check last, and only when it can still change the outcome. */
    if (s->spamd != NULL && score < c->spam_gateway_threshold)
        score += spam_spamd(s, in, v, hits, &notes);

decide:
    v->score = score;
    v->scl = score <= 0 ? 0 : score >= 9 ? 9 : (unsigned)floor(score);
    v->flagged = v->scl >= c->spam_store_threshold;
    v->gateway = v->listed == MQ_SPAM_LISTED_BLOCK || v->scl >= c->spam_gateway_threshold;
    if (v->listed == MQ_SPAM_LISTED_ALLOW)
        v->flagged = v->gateway = false;
    rules = g_string_new(NULL);
    for (guint i = 0; i < hits->len; i++) {
        const struct mq_spam_hit *h = g_ptr_array_index(hits, i);
        g_string_append_printf(rules, "%s%s=%.1f", i ? " " : "", h->rule, h->weight);
    }
    v->rules = mq_log_sanitize(rules->str, 2000);
    g_string_free(rules, TRUE);
    if (notes != NULL) {
        v->notes = mq_log_sanitize(notes->str, 1000);
        g_string_free(notes, TRUE);
    }
    g_ptr_array_free(hits, TRUE);
    v->seconds = (double)(g_get_monotonic_time() - start) / 1e6;
}

void
mq_spam_verdict_clear(struct mq_spam_verdict *v)
{
    g_clear_pointer(&v->list_entry, g_free);
    g_clear_pointer(&v->rules, g_free);
    g_clear_pointer(&v->received_spf, g_free);
    g_clear_pointer(&v->rcpt_blocked, g_free);
    g_clear_pointer(&v->notes, g_free);
}
