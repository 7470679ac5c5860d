/* spam-bench - accuracy and speed of the spam checks on a labelled corpus.
 *
 * spam-bench -c CONF [-f FOLDS] [-x] HAMDIR SPAMDIR
 *   -x  skip the heuristics-only pass (when CONF names a spamd_server, that
 *       pass would only ask spamd everything twice)
 *
 * Every message is parsed with GMime and run through mq_spam_check() as
 * mqscand does, with the envelope sender taken from Return-Path (the corpus
 * has no queue files) and no relay address (no network checks). With
 * --folds N (10 by default) the classifier is trained, for each fold, on
 * the other N-1 folds through the same store mqscan-learn uses and asked
 * about the held-out fold only; a message is never scored by a classifier
 * that learned it. Folds are assigned by sorted file name index modulo N.
 *
 * Prints, for "heuristics" (no classifier) and "heuristics+classifier"
 * (and "with spamd" if spamd_server is set in CONF): ham at or above the
 * store threshold (false positives), spam at or above it (detection), the
 * SCL histograms, the rules that fired most on each class, and the time per
 * message of the spam checks alone, single thread.
 */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "mqscan/bayes.h"
#include "mqscan/config.h"
#include "mqscan/log.h"
#include "mqscan/spam.h"
#include "mqscan/tokenize.h"

struct sample {
    char *path;
    bool spam;
    unsigned fold;
    GMimeMessage *msg;
    char *raw;
    size_t raw_len;
    char *sender;
};

struct tally {
    const char *name;
    unsigned n[2], flagged[2], gateway[2];
    unsigned hist[2][10];
    double seconds;
    unsigned checked;
    GHashTable *rule_hits[2];     /* rule -> count */
};

static gint
by_name(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static GPtrArray *
load_dir(const char *dir, bool spam)
{
    GPtrArray *out = g_ptr_array_new();
    GDir *d = g_dir_open(dir, 0, NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *n;

    if (d == NULL) {
        fprintf(stderr, "spam-bench: cannot open %s\n", dir);
        exit(66);
    }
    while ((n = g_dir_read_name(d)) != NULL)
        g_ptr_array_add(names, g_strdup(n));
    g_dir_close(d);
    g_ptr_array_sort(names, by_name);
    for (guint i = 0; i < names->len; i++) {
        struct sample *s = g_new0(struct sample, 1);
        s->path = g_build_filename(dir, g_ptr_array_index(names, i), NULL);
        s->spam = spam;
        g_ptr_array_add(out, s);
    }
    g_ptr_array_free(names, TRUE);
    return out;
}

static void
parse_sample(struct sample *s)
{
    const char *rp;

    if (!g_file_get_contents(s->path, &s->raw, &s->raw_len, NULL)) {
        fprintf(stderr, "spam-bench: cannot read %s\n", s->path);
        exit(66);
    }
    s->msg = mq_tokenize_parse(s->raw, s->raw_len, NULL);
    rp = s->msg ? g_mime_object_get_header(GMIME_OBJECT(s->msg), "Return-Path") : NULL;
    if (rp != NULL) {
        const char *lt = strchr(rp, '<'), *gt = lt ? strchr(lt, '>') : NULL;
        s->sender = lt && gt ? g_strndup(lt + 1, (gsize)(gt - lt - 1)) : g_strstrip(g_strdup(rp));
    } else {
        s->sender = g_strdup("unknown@unknown.invalid");
    }
}

static void
count_rules(struct tally *t, bool spam, const char *rules)
{
    char **words = g_strsplit(rules ? rules : "", " ", -1);
    for (char **w = words; *w != NULL; w++) {
        char *eq = strchr(*w, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        gpointer old = g_hash_table_lookup(t->rule_hits[spam], *w);
        g_hash_table_replace(t->rule_hits[spam], g_strdup(*w),
                             GUINT_TO_POINTER(GPOINTER_TO_UINT(old) + 1));
    }
    g_strfreev(words);
}

static void
score(struct mq_spam *spam, struct sample *s, struct tally *t)
{
    struct mq_spam_input in = { 0 };
    struct mq_spam_verdict v;

    in.msg = s->msg;
    in.raw = s->raw;
    in.raw_len = s->raw_len;
    in.sender = s->sender;
    mq_spam_check(spam, &in, &v);
    t->n[s->spam]++;
    t->flagged[s->spam] += v.flagged;
    t->gateway[s->spam] += v.gateway;
    t->hist[s->spam][v.scl]++;
    t->seconds += v.seconds;
    t->checked++;
    count_rules(t, s->spam, v.rules);
    if (getenv("SPAM_BENCH_VERBOSE") != NULL && (v.flagged != s->spam))
        printf("  miss %s scl=%u score=%.1f %s\n", s->path, v.scl, v.score, v.rules);
    mq_spam_verdict_clear(&v);
}

static gint
by_count_desc(gconstpointer a, gconstpointer b, gpointer table)
{
    guint ca = GPOINTER_TO_UINT(g_hash_table_lookup(table, *(char **)a));
    guint cb = GPOINTER_TO_UINT(g_hash_table_lookup(table, *(char **)b));
    return ca < cb ? 1 : ca > cb ? -1 : strcmp(*(char **)a, *(char **)b);
}

static void
print_tally(const struct tally *t, unsigned store)
{
    printf("\n== %s ==\n", t->name);
    printf("  ham:  %u messages, %u at or above the store threshold (SCL >= %u): "
           "false positives %.2f%%\n",
           t->n[0], t->flagged[0], store, t->n[0] ? 100.0 * t->flagged[0] / t->n[0] : 0);
    printf("  spam: %u messages, %u at or above it: detection %.2f%%\n", t->n[1], t->flagged[1],
           t->n[1] ? 100.0 * t->flagged[1] / t->n[1] : 0);
    printf("  at or above the gateway threshold: ham %u, spam %u\n", t->gateway[0], t->gateway[1]);
    for (int c = 0; c < 2; c++) {
        printf("  SCL histogram %-4s:", c ? "spam" : "ham");
        for (int i = 0; i < 10; i++)
            printf(" %u:%u", i, t->hist[c][i]);
        printf("\n");
    }
    printf("  spam checks: %.3f ms per message, %.0f messages/s (one thread, parse excluded)\n",
           t->checked ? 1000.0 * t->seconds / t->checked : 0,
           t->seconds > 0 ? t->checked / t->seconds : 0);
    for (int c = 1; c >= 0; c--) {
        GPtrArray *keys = g_ptr_array_new();
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, t->rule_hits[c]);
        while (g_hash_table_iter_next(&it, &k, NULL))
            g_ptr_array_add(keys, k);
        g_ptr_array_sort_with_data(keys, by_count_desc, t->rule_hits[c]);
        printf("  rules firing most on %s:", c ? "spam" : "ham");
        for (guint i = 0; i < keys->len && i < 12; i++) {
            const char *key = g_ptr_array_index(keys, i);
            printf(" %s(%u)", key, GPOINTER_TO_UINT(g_hash_table_lookup(t->rule_hits[c], key)));
        }
        printf("\n");
        g_ptr_array_free(keys, TRUE);
    }
}

static void
tally_init(struct tally *t, const char *name)
{
    memset(t, 0, sizeof(*t));
    t->name = name;
    for (int c = 0; c < 2; c++)
        t->rule_hits[c] = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static void
tally_clear(struct tally *t)
{
    for (int c = 0; c < 2; c++)
        g_hash_table_destroy(t->rule_hits[c]);
}

int
main(int argc, char **argv)
{
    const char *conf_path = NULL;
    unsigned folds = 10;
    int opt;
    struct mq_config *config;
    GError *error = NULL;
    GPtrArray *all;
    struct tally heur, full;
    char tmpdir[] = "/tmp/spam-bench.XXXXXX";
    gint64 t0;
    double parse_s;

    bool skip_heuristics = false;

    while ((opt = getopt(argc, argv, "c:f:x")) != -1) {
        if (opt == 'x')
            skip_heuristics = true;
        else if (opt == 'c')
            conf_path = optarg;
        else if (opt == 'f')
            folds = (unsigned)atoi(optarg);
        else
            return 64;
    }
    if (conf_path == NULL || argc - optind != 2 || folds < 2) {
        fprintf(stderr, "usage: spam-bench -c CONF [-f FOLDS] HAMDIR SPAMDIR\n");
        return 64;
    }
    g_mime_init();
    mq_log_open("spam-bench", MQ_LOG_SINK_STDERR);
    mq_log_set_level(MQ_LOG_WARN);
    config = mq_config_load(conf_path, &error);
    if (config == NULL) {
        fprintf(stderr, "spam-bench: %s\n", error->message);
        return 78;
    }
    all = load_dir(argv[optind], false);
    {
        GPtrArray *spam = load_dir(argv[optind + 1], true);
        for (guint i = 0; i < all->len; i++)
            ((struct sample *)g_ptr_array_index(all, i))->fold = i % folds;
        for (guint i = 0; i < spam->len; i++) {
            ((struct sample *)g_ptr_array_index(spam, i))->fold = i % folds;
            g_ptr_array_add(all, g_ptr_array_index(spam, i));
        }
        g_ptr_array_free(spam, TRUE);
    }
    t0 = g_get_monotonic_time();
    for (guint i = 0; i < all->len; i++)
        parse_sample(g_ptr_array_index(all, i));
    parse_s = (double)(g_get_monotonic_time() - t0) / 1e6;
    printf("corpus: %u messages (%s, %s); GMime parse %.3f ms per message\n", all->len,
           argv[optind], argv[optind + 1], 1000.0 * parse_s / all->len);

    tally_init(&heur, "heuristics alone (no classifier, no network)");
    tally_init(&full, config->spamd_server[0] != '\0'
                          ? "heuristics + classifier + spamd, cross-validation"
                          : "heuristics + classifier, cross-validation (no network)");
    if (!skip_heuristics) {
        char *words = config->bayes_db;
        struct mq_spam *spam;
        config->bayes_db = g_strdup("");
        spam = mq_spam_new(config, &error);
        if (spam == NULL) {
            fprintf(stderr, "spam-bench: %s\n", error->message);
            return 78;
        }
        for (guint i = 0; i < all->len; i++)
            score(spam, g_ptr_array_index(all, i), &heur);
        mq_spam_free(&spam);
        g_free(config->bayes_db);
        config->bayes_db = words;
    }
    if (!skip_heuristics)
        print_tally(&heur, config->spam_store_threshold);

    if (mkdtemp(tmpdir) == NULL)
        return 73;
    for (unsigned f = 0; f < folds; f++) {
        char *db = g_strdup_printf("%s/fold%u.db", tmpdir, f);
        struct mq_bayes_store *store = mq_bayes_store_open(db, &error);
        struct mq_spam *spam;
        if (store == NULL) {
            fprintf(stderr, "spam-bench: %s\n", error->message);
            return 73;
        }
        for (guint i = 0; i < all->len; i++) {
            struct sample *s = g_ptr_array_index(all, i);
            if (s->fold != f && s->msg != NULL &&
                mq_bayes_store_learn(store, s->msg, s->spam, &error) < 0) {
                fprintf(stderr, "spam-bench: learn %s: %s\n", s->path, error->message);
                return 70;
            }
        }
        if (mq_bayes_store_commit(store, &error) < 0) {
            fprintf(stderr, "spam-bench: %s\n", error->message);
            return 70;
        }
        mq_bayes_store_close(&store);
        g_free(config->bayes_db);
        config->bayes_db = g_strdup(db);
        spam = mq_spam_new(config, &error);
        if (spam == NULL) {
            fprintf(stderr, "spam-bench: %s\n", error->message);
            return 78;
        }
        for (guint i = 0; i < all->len; i++) {
            struct sample *s = g_ptr_array_index(all, i);
            if (s->fold == f)
                score(spam, s, &full);
        }
        mq_spam_free(&spam);
        unlink(db);
        g_free(db);
    }
    rmdir(tmpdir);
    print_tally(&full, config->spam_store_threshold);
    {
        double per_msg = parse_s / all->len + full.seconds / MAX(full.checked, 1);
        printf("\n%s, one thread: GMime parse + spam checks = %.3f ms per message, "
               "%.0f messages/s (%u folds)\n",
               config->spamd_server[0] != '\0' ? "with spamd" : "built-in engine",
               1000.0 * per_msg, 1.0 / per_msg, folds);
    }

    tally_clear(&heur);
    tally_clear(&full);
    for (guint i = 0; i < all->len; i++) {
        struct sample *s = g_ptr_array_index(all, i);
        if (s->msg != NULL)
            g_object_unref(s->msg);
        g_free(s->raw);
        g_free(s->path);
        g_free(s->sender);
        g_free(s);
    }
    g_ptr_array_free(all, TRUE);
    mq_config_free(&config);
    g_mime_shutdown();
    return 0;
}
