/* mq-bayes-cv - cross-validation and speed of the token classifier on a
 * labelled corpus (not run by make check; it takes minutes).
 *
 *   mq-bayes-cv [--folds N] [--workdir DIR] [--misses N] HAMDIR SPAMDIR
 *       N-fold cross-validation (default 10): the files of each directory,
 *       sorted by name, go to fold (index % N); for each fold a fresh
 *       database learns every other fold through mq_bayes_store_learn()
 *       and the fold itself is classified, so no message is ever classified
 *       by a database that learned it. Prints ham false positives and spam
 *       detection at the cut-offs 0.5, 0.9 and 0.99, and with --misses the
 *       N worst-classified messages of each class with their clues.
 *   mq-bayes-cv --bench [--workdir DIR] HAMDIR SPAMDIR
 *       learns every message, then times mq_bayes_classify() over all of
 *       them on one thread: once on messages parsed beforehand, once
 *       parsing each from memory first.
 *   mq-bayes-cv --tokens FILE
 *       prints the tokens of one message, one per line.
 *
 * The fold logic (cv_list(), cv_fold_of()) is meant to be reused by other
 * evaluations of the same corpus.
 */
#include <config.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <glib.h>
#include <glib-object.h>
#include <glib/gstdio.h>

#include "mqscan/bayes.h"
#include "mqscan/tokenize.h"

/* Larger files are left out of the corpus. */
#define CV_FILE_MAX (10u * 1024 * 1024)
/* Messages learned per transaction. */
#define CV_BATCH 500

struct cv_msg {
    char *path;
    GBytes *data;
    bool spam;
    unsigned fold;
    double prob;
    char *clues;
};

static unsigned
cv_fold_of(size_t index, unsigned folds)
{
    return (unsigned)(index % folds);
}

static int
cv_cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the files of dir, sorted by name, to msgs, with their folds. */
static void
cv_list(const char *dir, bool spam, unsigned folds, GArray *msgs)
{
    GError *err = NULL;
    GDir *d = g_dir_open(dir, 0, &err);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    size_t index = 0;

    if (d == NULL) {
        fprintf(stderr, "mq-bayes-cv: %s\n", err->message);
        exit(EX_NOINPUT);
    }
    while ((name = g_dir_read_name(d)) != NULL)
        if (name[0] != '.')
            g_ptr_array_add(names, g_strdup(name));
    g_dir_close(d);
    g_ptr_array_sort(names, cv_cmp_str);
    for (guint i = 0; i < names->len; i++) {
        struct cv_msg m = { 0 };
        char *contents;
        gsize len;

        m.path = g_build_filename(dir, g_ptr_array_index(names, i), NULL);
        if (!g_file_get_contents(m.path, &contents, &len, NULL) || len > CV_FILE_MAX) {
            g_free(m.path);
            continue;
        }
        m.data = g_bytes_new_take(contents, len);
        m.spam = spam;
        m.fold = cv_fold_of(index++, folds);
        g_array_append_val(msgs, m);
    }
    g_ptr_array_unref(names);
}

static GMimeMessage *
cv_parse(const struct cv_msg *m)
{
    gsize len;
    const char *data = g_bytes_get_data(m->data, &len);
    GMimeMessage *msg = mq_tokenize_parse(data, len, NULL);

    if (msg == NULL)
        fprintf(stderr, "mq-bayes-cv: %s: not parsed\n", m->path);
    return msg;
}

/* A fresh database at path that learned every message not in fold skip
 * (skip >= folds: all of them). */
static void
cv_train(const char *path, GArray *msgs, unsigned skip)
{
    GError *err = NULL;
    struct mq_bayes_store *store;
    char *wal = g_strconcat(path, "-wal", NULL), *shm = g_strconcat(path, "-shm", NULL);
    unsigned n = 0;

    g_unlink(path);
    g_unlink(wal);
    g_unlink(shm);
    g_free(wal);
    g_free(shm);
    store = mq_bayes_store_open(path, &err);
    if (store == NULL) {
        fprintf(stderr, "mq-bayes-cv: %s\n", err->message);
        exit(EX_CANTCREAT);
    }
    for (guint i = 0; i < msgs->len; i++) {
        struct cv_msg *m = &g_array_index(msgs, struct cv_msg, i);
        GMimeMessage *msg;

        if (m->fold == skip || (msg = cv_parse(m)) == NULL)
            continue;
        if (mq_bayes_store_learn(store, msg, m->spam, &err) < 0) {
            fprintf(stderr, "mq-bayes-cv: %s: %s\n", m->path, err->message);
            g_clear_error(&err);
        }
        g_object_unref(msg);
        if (++n % CV_BATCH == 0 && mq_bayes_store_commit(store, &err) < 0) {
            fprintf(stderr, "mq-bayes-cv: commit: %s\n", err->message);
            exit(EX_IOERR);
        }
    }
    if (mq_bayes_store_commit(store, &err) < 0) {
        fprintf(stderr, "mq-bayes-cv: commit: %s\n", err->message);
        exit(EX_IOERR);
    }
    mq_bayes_store_close(&store);
}

static struct mq_bayes *
cv_load(const char *path)
{
    GError *err = NULL;
    struct mq_bayes *b = mq_bayes_open(path, &err);

    if (b == NULL) {
        fprintf(stderr, "mq-bayes-cv: %s\n", err->message);
        exit(EX_SOFTWARE);
    }
    return b;
}

static int
cv_cmp_worst(gconstpointer a, gconstpointer b)
{
    const struct cv_msg *x = *(struct cv_msg *const *)a, *y = *(struct cv_msg *const *)b;
    double dx = x->spam ? 1.0 - x->prob : x->prob, dy = y->spam ? 1.0 - y->prob : y->prob;

    return dx > dy ? -1 : dx < dy ? 1 : 0;
}

static void
cv_report(GArray *msgs, unsigned misses)
{
    static const double cutoffs[] = { 0.5, 0.9, 0.99 };
    unsigned nham = 0, nspam = 0;

    for (guint i = 0; i < msgs->len; i++) {
        if (g_array_index(msgs, struct cv_msg, i).spam)
            nspam++;
        else
            nham++;
    }
    printf("%u ham, %u spam\n", nham, nspam);
    printf("cut-off  ham FP            spam detected\n");
    for (size_t c = 0; c < G_N_ELEMENTS(cutoffs); c++) {
        unsigned fp = 0, tp = 0;
        for (guint i = 0; i < msgs->len; i++) {
            const struct cv_msg *m = &g_array_index(msgs, struct cv_msg, i);
            if (m->prob >= cutoffs[c]) {
                if (m->spam)
                    tp++;
                else
                    fp++;
            }
        }
        printf("%-7.2f  %4u (%6.2f%%)  %4u (%6.2f%%)\n", cutoffs[c], fp,
               100.0 * fp / MAX(nham, 1u), tp, 100.0 * tp / MAX(nspam, 1u));
    }
    for (int cls = 0; cls < 2 && misses > 0; cls++) {
        GPtrArray *worst = g_ptr_array_new();
        for (guint i = 0; i < msgs->len; i++) {
            struct cv_msg *m = &g_array_index(msgs, struct cv_msg, i);
            if (m->spam == (cls == 1))
                g_ptr_array_add(worst, m);
        }
        g_ptr_array_sort(worst, cv_cmp_worst);
        printf("worst %s:\n", cls ? "spam" : "ham");
        for (guint i = 0; i < worst->len && i < misses; i++) {
            const struct cv_msg *m = g_ptr_array_index(worst, i);
            printf("  %.4f %s\n         %s\n", m->prob, strrchr(m->path, '/') + 1, m->clues);
        }
        g_ptr_array_unref(worst);
    }
}

static void
cv_run(GArray *msgs, unsigned folds, const char *workdir, unsigned misses)
{
    char *path = g_build_filename(workdir, "cv.db", NULL);

    for (unsigned k = 0; k < folds; k++) {
        struct mq_bayes *b;
        unsigned nham, nspam;

        cv_train(path, msgs, k);
        b = cv_load(path);
        mq_bayes_counts(b, &nham, &nspam);
        fprintf(stderr, "fold %u: learned %u ham, %u spam\n", k, nham, nspam);
        for (guint i = 0; i < msgs->len; i++) {
            struct cv_msg *m = &g_array_index(msgs, struct cv_msg, i);
            struct mq_bayes_result r;
            GMimeMessage *msg;
            GError *err = NULL;

            if (m->fold != k)
                continue;
            m->prob = 0.5;
            if ((msg = cv_parse(m)) == NULL)
                continue;
            if (mq_bayes_classify(b, msg, &r, &err) < 0) {
                fprintf(stderr, "mq-bayes-cv: %s: %s\n", m->path, err->message);
                exit(EX_SOFTWARE);
            }
            m->prob = r.prob;
            m->clues = g_steal_pointer(&r.clues);
            mq_bayes_result_clear(&r);
            g_object_unref(msg);
        }
        mq_bayes_free(&b);
    }
    cv_report(msgs, misses);
    g_free(path);
}

static void
cv_bench(GArray *msgs, const char *workdir)
{
    char *path = g_build_filename(workdir, "bench.db", NULL);
    GPtrArray *parsed = g_ptr_array_new_with_free_func(g_object_unref);
    struct mq_bayes *b;
    double t0, t1, t2;
    unsigned n = msgs->len;

    cv_train(path, msgs, G_MAXUINT);
    b = cv_load(path);
    for (guint i = 0; i < n; i++) {
        GMimeMessage *msg = cv_parse(&g_array_index(msgs, struct cv_msg, i));
        if (msg != NULL)
            g_ptr_array_add(parsed, msg);
    }
    t0 = (double)g_get_monotonic_time();
    for (guint i = 0; i < parsed->len; i++) {
        struct mq_bayes_result r;
        if (mq_bayes_classify(b, g_ptr_array_index(parsed, i), &r, NULL) < 0)
            exit(EX_SOFTWARE);
        mq_bayes_result_clear(&r);
    }
    t1 = (double)g_get_monotonic_time();
    for (guint i = 0; i < n; i++) {
        struct mq_bayes_result r;
        GMimeMessage *msg = cv_parse(&g_array_index(msgs, struct cv_msg, i));
        if (msg == NULL)
            continue;
        if (mq_bayes_classify(b, msg, &r, NULL) < 0)
            exit(EX_SOFTWARE);
        mq_bayes_result_clear(&r);
        g_object_unref(msg);
    }
    t2 = (double)g_get_monotonic_time();
    printf("classify, parsed beforehand: %u messages in %.3f s: %.0f messages/s\n",
           parsed->len, (t1 - t0) / 1e6, parsed->len / ((t1 - t0) / 1e6));
    printf("parse + classify:            %u messages in %.3f s: %.0f messages/s\n", n,
           (t2 - t1) / 1e6, n / ((t2 - t1) / 1e6));
    mq_bayes_free(&b);
    g_ptr_array_unref(parsed);
    g_free(path);
}

static void
cv_msgs_free(GArray *msgs)
{
    for (guint i = 0; i < msgs->len; i++) {
        struct cv_msg *m = &g_array_index(msgs, struct cv_msg, i);
        g_free(m->path);
        g_free(m->clues);
        g_bytes_unref(m->data);
    }
    g_array_free(msgs, TRUE);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "folds", required_argument, NULL, 'f' },
        { "workdir", required_argument, NULL, 'w' },
        { "misses", required_argument, NULL, 'm' },
        { "bench", no_argument, NULL, 'b' },
        { "tokens", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    unsigned folds = 10, misses = 0;
    const char *workdir = NULL, *tokens_of = NULL;
    bool bench = false;
    char *tmp = NULL;
    GArray *msgs;
    int opt;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f': folds = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'w': workdir = optarg; break;
        case 'm': misses = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'b': bench = true; break;
        case 't': tokens_of = optarg; break;
        default: return EX_USAGE;
        }
    }
    if (tokens_of != NULL) {
        struct cv_msg m = { .path = (char *)tokens_of };
        char *contents;
        gsize len;
        GMimeMessage *msg;
        GPtrArray *tokens;

        if (!g_file_get_contents(tokens_of, &contents, &len, NULL))
            return EX_NOINPUT;
        m.data = g_bytes_new_take(contents, len);
        if ((msg = cv_parse(&m)) == NULL)
            return EX_DATAERR;
        tokens = mq_tokenize(msg);
        for (guint i = 0; i < tokens->len; i++)
            printf("%s\n", (const char *)g_ptr_array_index(tokens, i));
        g_ptr_array_unref(tokens);
        g_object_unref(msg);
        g_bytes_unref(m.data);
        return 0;
    }
    if (argc - optind != 2 || folds < 2 || folds > 100) {
        fprintf(stderr, "usage: mq-bayes-cv [--folds N] [--workdir DIR] [--misses N] [--bench] "
                        "HAMDIR SPAMDIR\n       mq-bayes-cv --tokens FILE\n");
        return EX_USAGE;
    }
    if (workdir == NULL)
        workdir = tmp = g_dir_make_tmp("mq-bayes-cv-XXXXXX", NULL);
    msgs = g_array_new(FALSE, TRUE, sizeof(struct cv_msg));
    cv_list(argv[optind], false, folds, msgs);
    cv_list(argv[optind + 1], true, folds, msgs);
    if (bench)
        cv_bench(msgs, workdir);
    else
        cv_run(msgs, folds, workdir, misses);
    cv_msgs_free(msgs);
    if (tmp != NULL) {
        const char *names[] = { "cv.db", "cv.db-wal", "cv.db-shm", "bench.db", "bench.db-wal",
                                "bench.db-shm" };
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
            char *p = g_build_filename(tmp, names[i], NULL);
            g_unlink(p);
            g_free(p);
        }
        g_rmdir(tmp);
        g_free(tmp);
    }
    return 0;
}
