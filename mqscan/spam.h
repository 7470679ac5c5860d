/* spam - the spam decision for one message: lists, heuristics, the token
 * classifier, SPF, DNS block lists and (optionally) spamd, combined into a
 * spam confidence level (SCL) from 0 (clean) to 9 (certain spam).
 *
 * Public functions: mq_spam_new(), mq_spam_free(), mq_spam_describe(), mq_spam_check(),
 * mq_spam_verdict_clear(), mq_spam_level_stars().
 *
 * Cheapest checks first: the IP and sender lists decide alone when they
 * match (allow: SCL 0; block: SCL 9, treated as over the gateway threshold);
 * then the header, HTML and word rules and the classifier, which need no
 * network; then SPF and the DNS block lists; spamd last, and only when the
 * message is not already over the gateway threshold. The score is the sum
 * of the weights of the rules that fired (see heuristics.h); the SCL is its
 * integer part, clamped to 0..9.
 *
 * The relay address, HELO name and envelope come from sendmail's queue
 * file, which our own MTA wrote, never from headers the sender wrote.
 *
 * A check that cannot run (spamd down or slow, a DNS timeout, no trained
 * database) adds nothing to the score and a note to the verdict, which the
 * log line shows: spam scoring degrades, it never holds mail.
 *
 * An mq_spam is built from one configuration and shared by the workers;
 * mq_spam_check() is thread-safe.
 *
 * DIAGNOSTICS
 * mq_spam_new() fails with MQ_ERROR_CONFIG naming the list or word file and
 * line that is wrong, or the classifier database that does not open.
 */
#ifndef MQSCAN_SPAM_H
#define MQSCAN_SPAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "mqscan/config.h"

struct _GMimeMessage;
struct mq_spam;

struct mq_spam_input {
    struct _GMimeMessage *msg;      /* NULL if the MIME structure did not parse */
    const char *raw;                /* the whole message, for spamd */
    size_t raw_len;
    const char *sender;             /* envelope sender, "" for the null sender */
    const char *const *rcpts;       /* envelope recipients */
    size_t n_rcpts;
    bool relay_known;               /* from the queue file's $_ macro */
    int relay_family;               /* AF_INET or AF_INET6 */
    uint8_t relay_addr[16];
    const char *helo;               /* $s macro, or NULL */
    bool queue_time_known;
    gint64 queue_time;
};

enum mq_spam_listed {
    MQ_SPAM_LISTED_NONE,
    MQ_SPAM_LISTED_ALLOW,           /* sender or IP allow list: SCL 0 */
    MQ_SPAM_LISTED_BLOCK,           /* sender or IP block list, or a blocked null sender */
};

struct mq_spam_verdict {
    unsigned scl;                   /* 0..9 */
    double score;
    bool flagged;                   /* scl >= spam_store_threshold */
    bool gateway;                   /* scl >= spam_gateway_threshold, or block-listed */
    enum mq_spam_listed listed;
    char *list_entry;               /* "sender_block: example.com", sanitized */
    char *rules;                    /* "RULE=2.0 RULE2=-1.5 ...", for the log */
    char *received_spf;             /* a Received-SPF header value (one line), or NULL */
    bool spf_pass;
    double bayes;                   /* classifier probability, -1 if not used */
    double spamd_score;             /* SpamAssassin's score, NAN if not asked */
    bool *rcpt_blocked;             /* per envelope recipient: on recipient_block */
    size_t n_rcpt_blocked;          /* how many are */
    char *notes;                    /* checks that could not run, or NULL */
    double seconds;                 /* time spent */
};

struct mq_spam *mq_spam_new(const struct mq_config *config, GError **err);
void mq_spam_free(struct mq_spam **spam);

/* One line for --lint and the start-up log: thresholds, action, list
 * sizes, word rules, which network checks are on, the classifier's state.
 * Caller frees. */
char *mq_spam_describe(const struct mq_spam *spam);

/* Fills *v (clear with mq_spam_verdict_clear()). */
void mq_spam_check(struct mq_spam *spam, const struct mq_spam_input *in,
                   struct mq_spam_verdict *v);
void mq_spam_verdict_clear(struct mq_spam_verdict *v);

/* "*****" for scl 5 (X-Spam-Level). Static storage. */
const char *mq_spam_level_stars(unsigned scl);

#endif
