/* mq-stats-fill - writes a fixed set of samples into a statistics database,
 * for stats-html.sh. Usage: mq-stats-fill DB
 *
 * Everything happens on 2023-11-14 (UTC), except one message the evening
 * before and one just after midnight, which a report for that day must not
 * show. Per day (see stats-html.sh for the checks):
 *   messages 66: 60 clean (1 to 4 per hour, 10000 bytes each), 2 cleaned,
 *   1 deleted, 2 quarantined, 1 held; 1 deferred attempt;
 *   infected 4, banned 2, threats 5;
 *   viruses: Win.Test.EICAR_HDB-1 3, <script>alert(1)</script> 1,
 *   Eicar-Signature 1;
 *   blocked senders: alice@example.org 2, bob@example.net 2,
 *   <img src=x onerror=alert(2)>@evil.example 1.
 */
#include <config.h>

#include <stdio.h>
#include <time.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/policy.h"
#include "mqscan/process.h"
#include "mqscan/stats.h"

#define DAY0 ((time_t)1699920000)       /* 2023-11-14T00:00:00Z */
#define AT(h, m) (DAY0 + (time_t)(h) * 3600 + (time_t)(m) * 60)
#define INFECTED MQ_STATS_FINDING(MQ_FINDING_INFECTED)
#define BANNED MQ_STATS_FINDING(MQ_FINDING_BANNED)

int
main(int argc, char **argv)
{
    static const char *const eicar[] = { "Win.Test.EICAR_HDB-1", NULL };
    static const char *const script[] = { "<script>alert(1)</script>", NULL };
    static const char *const two[] = { "Win.Test.EICAR_HDB-1", "Eicar-Signature",
                                       "Win.Test.EICAR_HDB-1", NULL };
    static const char *const before[] = { "Outside.Before", NULL };
    static const char *const after[] = { "Outside.After", NULL };
    const struct mq_stats_sample fixed[] = {
        { AT(3, 10), MQ_OUTCOME_CLEANED, 20000, INFECTED, eicar, "alice@example.org", false, 0 },
        { AT(3, 50), MQ_OUTCOME_CLEANED, 20000, INFECTED, eicar, "alice@example.org", false, 0 },
        { AT(9, 5), MQ_OUTCOME_DELETED, 30000, INFECTED, script,
          "<img src=x onerror=alert(2)>@evil.example", false, 0 },
        { AT(15, 0), MQ_OUTCOME_QUARANTINED, 5000, BANNED, NULL, "bob@example.net", false, 0 },
        { AT(15, 30), MQ_OUTCOME_QUARANTINED, 5000, INFECTED | BANNED, two, "bob@example.net",
          false, 0 },
        { AT(20, 0), MQ_OUTCOME_HELD, 70000, 0, NULL, NULL, false, 0 },
        { AT(20, 1), MQ_OUTCOME_DEFERRED, 70000, 0, NULL, NULL, false, 0 },
        { AT(0, 0) - 1800, MQ_OUTCOME_CLEANED, 1000, INFECTED, before, "early@example.org",
          false, 0 },
        { AT(24, 10), MQ_OUTCOME_CLEANED, 1000, INFECTED, after, "late@example.org", false, 0 },
    };
    GArray *samples = g_array_new(FALSE, TRUE, sizeof(struct mq_stats_sample));
    struct mq_stats *stats;
    GError *error = NULL;
    int status = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: mq-stats-fill DB\n");
        return 64;
    }
    for (int h = 0; h < 24; h++) {
        for (int i = 0; i < h % 4 + 1; i++) {
            struct mq_stats_sample s = { AT(h, 20 + i), MQ_OUTCOME_DELIVERED, 10000, 0, NULL,
                                         "clean@example.org", false, 0 };
            g_array_append_val(samples, s);
        }
    }
    g_array_append_vals(samples, fixed, G_N_ELEMENTS(fixed));

    stats = mq_stats_open(argv[1], true, &error);
    /* Two batches, as mqscand would add them. */
    if (stats == NULL ||
        mq_stats_add(stats, (struct mq_stats_sample *)(void *)samples->data, 60, &error) < 0 ||
        mq_stats_add(stats, &g_array_index(samples, struct mq_stats_sample, 60),
                     samples->len - 60, &error) < 0) {
        fprintf(stderr, "mq-stats-fill: %s\n", error->message);
        g_error_free(error);
        goto done;
    }
    status = 0;
done:
    mq_stats_close(&stats);
    g_array_free(samples, TRUE);
    return status;
}
