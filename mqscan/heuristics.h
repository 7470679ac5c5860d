/* heuristics - the built-in spam rules: header checks, HTML checks and the
 * site's word-weight file, each a named rule with a weight.
 *
 * Public functions: mq_heuristics_new(), mq_heuristics_free(),
 * mq_heuristics_run(), mq_heuristics_weight(), mq_heuristics_rule_count(),
 * mq_spam_hit_add(), mq_spam_hit_free(),
 * mq_heuristics_rule().
 *
 * Every rule of the spam score lives in one table here, including the ones
 * another module evaluates (BAYES_*, SPF_*, DNSBL, SPAMD_*, NULL_SENDER), so
 * spam_rule_weights in the configuration can change any weight by name and
 * the log shows every rule that fired with the weight it had. A rule's
 * weight is in points; spam.c turns the total into the 0-9 level.
 *
 * The word-weight file has one rule per line:
 *     WEIGHT  WHERE  WORD OR PHRASE
 * WHERE is "subject", "body" or "any"; the phrase is matched case-blind on
 * whole words, with any run of blanks and punctuation between its words.
 * Each line counts at most once per message. "#" starts a comment.
 *     2.0  body     work from home
 *     1.5  subject  free
 *    -1.0  any      our-project-name      (a negative weight for ham words)
 *
 * The checks read only the first HEUR_TEXT_MAX bytes of each text part
 * and at most HEUR_PARTS_MAX parts, so their cost is bounded whatever the
 * message. An immutable handle; mq_heuristics_run() is thread-safe.
 *
 * DIAGNOSTICS
 * mq_heuristics_new() fails with MQ_ERROR_CONFIG and "FILE:LINE: problem"
 * for a bad word-file line or an override naming an unknown rule. A missing
 * word file means no word rules.
 */
#ifndef MQSCAN_HEURISTICS_H
#define MQSCAN_HEURISTICS_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

struct _GMimeMessage;
struct mq_heuristics;

/* One rule that fired; stored in the caller's GPtrArray (free with g_free,
 * the array's free function should be mq_spam_hit_free). */
struct mq_spam_hit {
    char *rule;                 /* "HTML_ONLY", "WORD_BODY_free_money", ... */
    double weight;
};
void mq_spam_hit_free(gpointer hit);
/* Appends a hit for rule (taken over) with weight; a weight of 0 or a NULL
 * hits array adds nothing (rule is freed). */
void mq_spam_hit_add(GPtrArray *hits, char *rule, double weight);

/* What the checks know beyond the message itself. */
struct mq_heuristics_env {
    const char *env_sender;     /* the envelope sender, "" null; NULL unknown */
    bool queue_time_known;
    gint64 queue_time;          /* when our MTA received it (Unix time) */
};

struct mq_heuristics *mq_heuristics_new(const char *words_path,
                                        const char *const *weight_overrides, GError **err);
void mq_heuristics_free(struct mq_heuristics **heuristics);

/* Runs every header, HTML and word rule on msg; appends a hit per rule that
 * fired and returns the sum of their weights. */
double mq_heuristics_run(const struct mq_heuristics *heuristics, struct _GMimeMessage *msg,
                         const struct mq_heuristics_env *env, GPtrArray *hits);

/* The weight of a named rule of the table (0 if it has none), after the
 * overrides. Appends a hit with it to hits if hits is not NULL and the
 * weight is not 0; returns the weight. */
double mq_heuristics_weight(const struct mq_heuristics *heuristics, const char *rule,
                            GPtrArray *hits);

/* The rule table, for documentation and --lint: name, weight, what it means. */
size_t mq_heuristics_rule_count(void);
void mq_heuristics_rule(const struct mq_heuristics *heuristics, size_t i, const char **name_r,
                        double *weight_r, const char **description_r);

#endif
