#include <config.h>

#include <string.h>
#include <time.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/message.h"
#include "mqscan/notify.h"
#include "mqscan/policy.h"
#include "mqscan/process.h"
#include "mqscan/qf.h"

#define PROCESS_STATUS_HEADER "X-mqscan"
/* Findings kept per message; a message with more is not less dangerous,
 * and the first ones say enough in logs, notices and quarantine. */
#define PROCESS_MAX_FINDINGS 100
#define PROCESS_NAME_MAX 200

/* What a check found, in one leaf part or (leaf < 0) the whole message. */
struct process_finding {
    enum mq_finding kind;
    int leaf;
    char *name;                 /* virus, limit or rule name; sanitized */
    char *reason;               /* for the recipient; sanitized */
    char *filename;             /* sanitized, "" if none */
    enum mq_action action;
    GBytes *content;            /* the leaf's decoded content, for quarantine */
};

/* What is left of a message for mq_process_commit(). */
struct mq_process_pending {
    struct mq_queue *incoming;      /* borrowed from the context */
    struct mq_queue *outgoing;
    struct mq_queue_entry *entry;   /* the original, still claimed */
    char *staged_id;                /* the staged outgoing entry, or NULL */
    struct mq_quarantine *quarantine;
    char *quarantine_id;            /* the staged quarantine entry, or NULL */
};

/* Everything one message needs while it is processed; freed at the end. */
struct process_job {
    const struct mq_process_ctx *ctx;
    const char *id;
    struct mq_queue_entry *entry;
    struct mq_qf *qf;           /* borrowed from entry */
    GString *headers;           /* header block as a reader sees it */
    struct mq_message *msg;     /* NULL if GMime could not parse it */
    GPtrArray *findings;        /* struct process_finding * */
    enum mq_direction direction;
    enum mq_action action;      /* the most severe of the findings' */
    GError *engine_error;       /* a check could not be done: no verdict */
    bool spam_checked;
    struct mq_spam_verdict spam;
    /* Decided before the virus scan: spam over the gateway threshold, or
     * every recipient refuses mail from outside. Nothing is delivered. */
    bool spam_stop;
    enum mq_action spam_action;
    bool rcpts_all_blocked;     /* stopped by recipient_block, not by the score */
    const char **rcpts;         /* envelope recipients as queued (before any
                                   recipient_block removal); borrowed from qf */
    size_t n_rcpts;
    uint64_t *stage_us;         /* the result's stage times */
    gint64 mark;                /* when the current stage began */
};

/* Charges the time since the last lap to stage. */
static void
process_lap(struct process_job *job, enum mq_process_stage stage)
{
    gint64 now = g_get_monotonic_time();

    job->stage_us[stage] += (uint64_t)(now - job->mark);
    job->mark = now;
}

/* Reasons for the recipient, for findings that no rule file words. The
 * rule files carry their own user texts. */
static const char *
process_reason(const struct mq_config *c, enum mq_finding kind)
{
    static const char *const en[MQ_FINDING_COUNT] = {
        "It contained a virus.",
        "This type of file is not accepted here.",
        "It could not be checked completely: it exceeds a scanning limit.",
        "It is an encrypted archive, whose contents cannot be checked.",
        "It cannot be scanned (for example, a fragment of a larger message).",
    };
    static const char *const fr[MQ_FINDING_COUNT] = {
        "Elle contenait un virus.",
        "Ce type de fichier n’est pas accepté ici.",
        "Elle n’a pas pu être entièrement vérifiée : une limite d’analyse est dépassée.",
        "C’est une archive chiffrée, dont le contenu ne peut pas être vérifié.",
        "Elle ne peut pas être analysée (par exemple, un fragment d’un message plus grand).",
    };
    return strcmp(c->language, "fr") == 0 ? fr[kind] : en[kind];
}

static void
process_finding_free(gpointer p)
{
    struct process_finding *f = p;

    g_free(f->name);
    g_free(f->reason);
    g_free(f->filename);
    if (f->content != NULL)
        g_bytes_unref(f->content);
    g_free(f);
}

static void
process_add_finding(struct process_job *job, enum mq_finding kind, int leaf, const char *name,
                    const char *reason, const char *filename, const void *data, size_t len)
{
    struct process_finding *f;

    if (job->findings->len >= PROCESS_MAX_FINDINGS)
        return;
    f = g_new0(struct process_finding, 1);
    f->kind = kind;
    f->leaf = leaf;
    f->name = mq_log_sanitize(name ? name : "", PROCESS_NAME_MAX);
    f->reason = mq_log_sanitize(reason ? reason : process_reason(job->ctx->config, kind),
                                PROCESS_NAME_MAX);
    f->filename = mq_log_sanitize(filename ? filename : "", PROCESS_NAME_MAX);
    if (leaf >= 0 && data != NULL)
        f->content = g_bytes_new(data, len);
    g_ptr_array_add(job->findings, f);
}

/* The finding a scan verdict other than clean stands for. */
static enum mq_finding
process_verdict_finding(int verdict)
{
    return verdict == MQ_SCAN_UNSCANNABLE ? MQ_FINDING_LIMITS
         : verdict == MQ_SCAN_ENCRYPTED   ? MQ_FINDING_ENCRYPTED
                                          : MQ_FINDING_INFECTED;
}

/* Folds a scan result into the job. Returns -1 when there is no verdict. */
static int
process_note_scan(struct process_job *job, int verdict, char *name, GError *error, int leaf,
                  const char *filename, const void *data, size_t len)
{

    if (verdict < 0) {
        job->engine_error = error;
        return -1;
    }
    if (verdict != MQ_SCAN_CLEAN)
        process_add_finding(job, process_verdict_finding(verdict), leaf, name, NULL, filename,
                            data, len);
    g_free(name);
    return 0;
}

static int
process_check_leaf(const struct mq_message_leaf *leaf, const void *data, size_t len,
                   void *ctxp, GError **err)
{
    struct process_job *job = ctxp;
    const struct mq_process_ctx *ctx = job->ctx;
    struct mq_rules_limits limits = { ctx->config->clamav_max_files, 1024 };
    struct mq_rules_match match = { 0 };
    char *name = NULL;
    GError *error = NULL;
    int rc, verdict;

    process_lap(job, MQ_STAGE_PARSE);       /* decoding this leaf */
    /* A fragment is only dangerous once the reader's client joins the
     * fragments, which no scanner here ever sees. */
    if (g_ascii_strcasecmp(leaf->content_type, "message/partial") == 0) {
        process_add_finding(job, MQ_FINDING_UNSCANNABLE, (int)leaf->index, "message/partial",
                            NULL, leaf->filename, data, len);
        return 0;
    }
    rc = mq_rules_check(ctx->rules, &limits, leaf->filename, data, len, &match, &error);
    process_lap(job, MQ_STAGE_RULES);
    if (rc < 0) {
        job->engine_error = error;
        g_set_error_literal(err, MQ_ERROR, MQ_ERROR_ENGINE, "rules check failed");
        return -1;
    }
    if (rc > 0) {
        char *what = g_strdup_printf("%s (%s%s)", match.log_text, match.in_archive ? "in archive: " : "",
                                     match.subject);
        process_add_finding(job, MQ_FINDING_BANNED, (int)leaf->index, what, match.user_text,
                            leaf->filename, data, len);
        g_free(what);
        mq_rules_match_clear(&match);
    }
    verdict = mq_scanner_scan(ctx->scanner, data, len, leaf->filename, &name, &error);
    process_lap(job, MQ_STAGE_SCAN);
    if (process_note_scan(job, verdict, name, error, (int)leaf->index, leaf->filename, data,
                          len) < 0) {
        g_set_error_literal(err, MQ_ERROR, MQ_ERROR_ENGINE, "scan failed");
        return -1;
    }
    return 0;
}

static bool
process_leaf_has(const struct process_job *job, enum mq_finding kind)
{
    for (guint i = 0; i < job->findings->len; i++) {
        const struct process_finding *f = g_ptr_array_index(job->findings, i);
        if (f->leaf >= 0 && f->kind == kind)
            return true;
    }
    return false;
}

/* The whole message first (libclamav's own mail parser also finds what the
 * MIME structure does not show, such as uuencode inside a text part), then
 * every decoded leaf as GMime sees it, which is what will be delivered. */
/* The envelope recipients that are on recipient_block leave the envelope;
 * a message left with none is dropped. */
static void
process_spam_recipients(struct process_job *job)
{
    size_t n = mq_qf_rcpt_count(job->qf);

    if (job->spam.n_rcpt_blocked == 0)
        return;
    if (job->spam.n_rcpt_blocked == n) {
        job->spam_stop = true;
        job->spam_action = MQ_ACTION_DELETE;
        job->rcpts_all_blocked = true;
        mq_log_info("%s: every recipient is on recipient_block: not delivered", job->id);
        return;
    }
    for (size_t i = n; i > 0; i--) {
        if (!job->spam.rcpt_blocked[i - 1])
            continue;
        char *to = mq_log_sanitize(mq_qf_rcpt(job->qf, i - 1, NULL), MQ_LOG_FIELD_MAX);
        mq_log_info("%s: to=<%s> removed: on recipient_block", job->id, to);
        g_free(to);
        mq_qf_remove_rcpt(job->qf, i - 1);
    }
}

/* The spam decision, before any virus scan: a message dropped at the
 * gateway threshold costs no scan. Only mail from outside is checked. */
static void
process_spam(struct process_job *job, const char *buf, size_t len)
{
    const struct mq_config *c = job->ctx->config;
    struct mq_spam_input in = { 0 };
    char *from;

    if (job->ctx->spam == NULL || job->direction != MQ_DIRECTION_INBOUND)
        return;
    in.msg = job->msg != NULL ? mq_message_gmime(job->msg) : NULL;
    in.raw = buf;
    in.raw_len = len;
    in.sender = mq_qf_sender(job->qf);
    in.rcpts = job->rcpts;
    in.n_rcpts = job->n_rcpts;
    in.relay_family = mq_policy_relay_addr(mq_qf_macro(job->qf, "_"), in.relay_addr);
    in.relay_known = in.relay_family != 0;
    in.helo = mq_qf_macro(job->qf, "s");
    in.queue_time_known = mq_qf_ctime(job->qf) > 0;
    in.queue_time = mq_qf_ctime(job->qf);
    mq_spam_check(job->ctx->spam, &in, &job->spam);
    job->spam_checked = true;

    from = mq_log_sanitize(in.sender, MQ_LOG_FIELD_MAX);
    mq_log_info("%s: spam from=<%s> scl=%u score=%.1f%s%s%s%s rules=%s%s%s time=%.3fs", job->id,
                from, job->spam.scl, job->spam.score,
                job->spam.gateway ? " gateway" : job->spam.flagged ? " flagged" : "",
                job->spam.list_entry ? " (" : "", job->spam.list_entry ? job->spam.list_entry : "",
                job->spam.list_entry ? ")" : "", *job->spam.rules ? job->spam.rules : "none",
                job->spam.notes ? " notes=" : "", job->spam.notes ? job->spam.notes : "",
                job->spam.seconds);
    g_free(from);

    if (job->spam.gateway && c->spam_gateway_action != MQ_SPAM_ACTION_NONE) {
        job->spam_stop = true;
        job->spam_action = c->spam_gateway_action == MQ_SPAM_ACTION_QUARANTINE
                               ? MQ_ACTION_QUARANTINE
                               : MQ_ACTION_DELETE;
        return;
    }
    process_spam_recipients(job);
}

/* The whole message first (libclamav's own mail parser also finds what the
 * MIME structure does not show, such as uuencode inside a text part), then
 * every decoded leaf as GMime sees it, which is what will be delivered.
 * The spam checks run before both. */
static void
process_check(struct process_job *job, const char *buf, size_t len)
{
    const struct mq_config *c = job->ctx->config;
    struct mq_message_limits limits = { c->max_mime_depth, c->max_mime_parts };
    const char *df;
    size_t df_len;
    char *name = NULL;
    GError *error = NULL;
    bool over_limits = false;
    int verdict, rc;

    df = mq_queue_entry_df(job->entry, &df_len);
    job->msg = mq_message_parse(job->headers->str, job->headers->len, df, df_len, &limits,
                                &error);
    if (job->msg == NULL && error->code == MQ_ERROR_LIMIT) {
        /* Over the limits, the message is not read any further: libclamav's
         * mail parser builds as much for it as GMime would (a 7 MB nest of
         * multiparts: 270 MB), and the finding decides already. */
        mq_log_info("%s: MIME structure not parsed (%s); not scanned", job->id, error->message);
        process_add_finding(job, MQ_FINDING_UNSCANNABLE, -1, error->message, NULL, NULL, NULL,
                            0);
        over_limits = true;
    } else if (job->msg == NULL) {
        mq_log_info("%s: MIME structure not parsed (%s); whole message scanned as one",
                    job->id, error->message);
    }
    g_clear_error(&error);
    process_lap(job, MQ_STAGE_PARSE);
    process_spam(job, buf, len);
    process_lap(job, MQ_STAGE_SPAM);
    if (job->spam_stop || over_limits)
        return;

    verdict = mq_scanner_scan(job->ctx->scanner, buf, len, job->id, &name, &error);
    process_lap(job, MQ_STAGE_SCAN);
    if (process_note_scan(job, verdict, name, error, -1, NULL, NULL, 0) < 0)
        return;
    if (job->msg == NULL)
        return;
    rc = mq_message_foreach_leaf(job->msg, &limits, process_check_leaf, job, &error);
    process_lap(job, MQ_STAGE_PARSE);       /* the walk, and what follows the last leaf */
    if (rc < 0) {
        if (error->code == MQ_ERROR_LIMIT)
            process_add_finding(job, MQ_FINDING_UNSCANNABLE, -1, error->message, NULL, NULL,
                                NULL, 0);
        g_clear_error(&error);
        if (job->engine_error != NULL)
            return;
    }

    /* A whole-message finding that a leaf explains says nothing more. */
    for (guint i = job->findings->len; i > 0; i--) {
        struct process_finding *f = g_ptr_array_index(job->findings, i - 1);
        if (f->leaf < 0 && f->kind != MQ_FINDING_UNSCANNABLE && process_leaf_has(job, f->kind))
            g_ptr_array_remove_index(job->findings, i - 1);
    }
}

static void
process_direction(struct process_job *job)
{
    job->n_rcpts = mq_qf_rcpt_count(job->qf);
    job->rcpts = g_new0(const char *, job->n_rcpts + 1);
    for (size_t i = 0; i < job->n_rcpts; i++)
        job->rcpts[i] = mq_qf_rcpt(job->qf, i, NULL);
    job->direction = mq_policy_direction(job->ctx->config, mq_qf_macro(job->qf, "_"),
                                         mq_qf_sender(job->qf), job->rcpts, job->n_rcpts);
}

static void
process_decide(struct process_job *job)
{
    const struct mq_config *c = job->ctx->config;

    job->action = job->spam_stop ? job->spam_action : MQ_ACTION_DELIVER;
    for (guint i = 0; i < job->findings->len; i++) {
        struct process_finding *f = g_ptr_array_index(job->findings, i);
        f->action = mq_policy_action(c, job->direction, f->kind, f->name);
        job->action = MAX(job->action, f->action);
    }
}

/* "part 2 (invoice.exe): infected Win.Test.EICAR, ..." for logs and meta. */
static char *
process_describe(const struct process_finding *f)
{
    if (f->leaf < 0)
        return g_strdup_printf("message: %s %s", mq_policy_finding_name(f->kind), f->name);
    return g_strdup_printf("part %d%s%s%s: %s %s", f->leaf + 1, *f->filename ? " (" : "",
                           f->filename, *f->filename ? ")" : "",
                           mq_policy_finding_name(f->kind), f->name);
}

/* The finding that speaks for a part (or, with leaf < 0, for the message)
 * to the recipient: a virus before a banned name. */
static const struct process_finding *
process_primary(const struct process_job *job, int leaf)
{
    static const int rank[MQ_FINDING_COUNT] = {
        [MQ_FINDING_INFECTED] = 5, [MQ_FINDING_ENCRYPTED] = 4, [MQ_FINDING_LIMITS] = 3,
        [MQ_FINDING_UNSCANNABLE] = 2, [MQ_FINDING_BANNED] = 1,
    };
    const struct process_finding *best = NULL;

    for (guint i = 0; i < job->findings->len; i++) {
        const struct process_finding *f = g_ptr_array_index(job->findings, i);
        if (f->action != MQ_ACTION_REPLACE || (leaf >= 0 && f->leaf != leaf))
            continue;
        if (best == NULL || rank[f->kind] > rank[best->kind])
            best = f;
    }
    return best;
}

static char *
process_render(const struct process_job *job, enum mq_template_kind kind,
               const struct process_finding *f, const char *removed)
{
    const struct mq_config *c = job->ctx->config;
    GDateTime *now = g_date_time_new_now_local();
    char *date = g_date_time_format(now, "%a, %d %b %Y %H:%M:%S %z");
    const char *vars[] = {
        "filename", f && *f->filename ? f->filename : "-",
        "reason", f ? f->reason : "",
        "virus", f ? f->name : "",
        "queue_id", job->id,
        "date", date,
        "hostname", c->hostname,
        "postmaster", c->postmaster,
        "removed", removed ? removed : "",
        NULL,
    };
    char *text = mq_templates_render(job->ctx->templates, kind, vars);

    g_free(date);
    g_date_time_unref(now);
    return text;
}

/* Builds the body to deliver when parts are replaced. Returns 0, or -1. */
static int
process_rebuild(struct process_job *job, bool whole, GByteArray *out, GError **err)
{
    GString *removed = g_string_new(NULL);
    GHashTable *done = g_hash_table_new(g_direct_hash, g_direct_equal);
    const struct process_finding *first = NULL;
    int rc = -1;

    for (guint i = 0; i < job->findings->len && !whole; i++) {
        const struct process_finding *f = g_ptr_array_index(job->findings, i);
        char *text;
        if (f->action != MQ_ACTION_REPLACE)
            continue;
        if (f->leaf < 0 || job->msg == NULL) {
            whole = true;
            break;
        }
        if (g_hash_table_contains(done, GINT_TO_POINTER(f->leaf + 1)))
            continue;
        g_hash_table_add(done, GINT_TO_POINTER(f->leaf + 1));
        f = process_primary(job, f->leaf);
        text = process_render(job, MQ_TEMPLATE_PART_REMOVED, f, NULL);
        if (mq_message_replace_leaf(job->msg, (unsigned)f->leaf, text, NULL) < 0)
            whole = true;
        g_string_append_printf(removed, "%s  - %s: %s", removed->len ? "\n" : "",
                               *f->filename ? f->filename : "-", f->reason);
        g_free(text);
    }
    if (whole) {
        /* The finding has no single part, or the parts cannot be replaced:
         * nothing of the body can be trusted. */
        char *text;
        first = process_primary(job, -1);
        if (job->msg == NULL) {
            /* A minimal message to carry the notice; its Content-* headers
             * replace the original ones below. */
            const struct mq_message_limits limits = { 1, 1 };

            job->msg = mq_message_parse("Subject: x\n", 11, "", 0, &limits, err);
            if (job->msg == NULL)
                goto done;
        }
        text = process_render(job, MQ_TEMPLATE_BODY_REMOVED, first, NULL);
        mq_message_replace_body(job->msg, text);
        g_free(text);
    } else if (removed->len > 0) {
        char *text = process_render(job, MQ_TEMPLATE_NOTICE, NULL, removed->str);
        if (mq_message_prepend_notice(job->msg, text, err) < 0) {
            g_free(text);
            goto done;
        }
        g_free(text);
    }
    if (mq_message_body_replaced(job->msg)) {
        GPtrArray *ch = mq_message_content_headers(job->msg);
        mq_qf_replace_content_headers(job->qf, ch);
        g_ptr_array_unref(ch);
    }
    rc = mq_message_write_body(job->msg, out, err);
done:
    g_hash_table_destroy(done);
    g_string_free(removed, TRUE);
    return rc;
}

/* The rebuilt message is scanned again before it goes out. Returns 0 if
 * clean (or what is left is something the policy delivers on purpose), 1 if
 * it still matches, -1 on an engine error. */
static int
process_verify(struct process_job *job, GByteArray *body)
{
    GString *buf;
    char *name = NULL;
    int verdict;

    buf = g_string_new(NULL);
    mq_qf_headers_text(job->qf, buf);
    g_string_append_c(buf, '\n');
    g_string_append_len(buf, (const char *)body->data, body->len);
    verdict = mq_scanner_scan(job->ctx->scanner, buf->str, buf->len, job->id, &name,
                              &job->engine_error);
    g_string_free(buf, TRUE);
    if (verdict < 0)
        return -1;
    if (verdict == MQ_SCAN_CLEAN)
        return 0;
    for (guint i = 0; i < job->findings->len; i++) {
        const struct process_finding *f = g_ptr_array_index(job->findings, i);
        if (f->kind == process_verdict_finding(verdict) && f->action == MQ_ACTION_DELIVER) {
            g_free(name);
            return 0;
        }
    }
    mq_log_warn("%s: rebuilt message still matches %s; removing the whole body", job->id, name);
    g_free(name);
    return 1;
}

static void
process_job_clear(struct process_job *job)
{
    mq_message_free(&job->msg);
    mq_spam_verdict_clear(&job->spam);
    g_free(job->rcpts);
    if (job->headers != NULL)
        g_string_free(job->headers, TRUE);
    g_ptr_array_unref(job->findings);
    g_clear_error(&job->engine_error);
    mq_queue_entry_free(&job->entry);
}

/* Moves the entry to the hold area; the outcome is HELD, or DEFERRED if
 * even that failed (the message stays where it is). */
static void
process_hold(struct process_job *job, const char *reason, struct mq_process_result *r)
{
    GError *error = NULL;

    if (mq_queue_hold(job->ctx->incoming, job->entry, job->ctx->config->hold_dir, reason,
                      &error) < 0) {
        r->outcome = MQ_OUTCOME_DEFERRED;
        r->detail = g_strdup_printf("cannot hold (%s): %s", reason, error->message);
        g_error_free(error);
        process_lap(job, MQ_STAGE_WRITE);
        return;
    }
    r->outcome = MQ_OUTCOME_HELD;
    r->detail = g_strdup(reason);
    process_lap(job, MQ_STAGE_WRITE);
}

/* The Subject as stored (RFC 2047 words stay encoded), trimmed and
 * sanitized. Caller frees. */
static char *
process_subject(const struct process_job *job)
{
    const char *subject = mq_qf_find_header(job->qf, "Subject");
    char *trimmed = g_strstrip(g_strdup(subject ? subject : ""));
    char *clean = mq_log_sanitize(trimmed, MQ_LOG_FIELD_MAX);

    g_free(trimmed);
    return clean;
}

/* "spam: SCL 9, score 12.3 (RULE=1.0 ...)" or the recipient-list reason. */
static char *
process_spam_summary(const struct process_job *job)
{
    if (job->rcpts_all_blocked)
        return g_strdup("recipient_block: every recipient refuses mail from outside");
    return g_strdup_printf("spam: SCL %u, score %.1f%s%s (%s)", job->spam.scl, job->spam.score,
                           job->spam.list_entry ? ", " : "",
                           job->spam.list_entry ? job->spam.list_entry : "",
                           *job->spam.rules ? job->spam.rules : "no rules");
}

/* The headers that tell the recipient's mail client what the spam checks
 * found, replacing any that came with the message. */
static void
process_spam_headers(struct process_job *job)
{
    const struct mq_config *c = job->ctx->config;
    const struct mq_spam_verdict *v = &job->spam;
    char *status;

    if (!job->spam_checked)
        return;
    mq_qf_remove_headers(job->qf, "X-Spam-");
    if (v->received_spf != NULL) {
        mq_qf_remove_headers(job->qf, "Received-SPF");
        mq_qf_add_header(job->qf, "Received-SPF", v->received_spf);
    }
    if (v->flagged)
        mq_qf_add_header(job->qf, "X-Spam-Flag", "YES");
    mq_qf_add_header(job->qf, "X-Spam-Level", mq_spam_level_stars(v->scl));
    status = g_strdup_printf("%s, scl=%u score=%.1f store=%u gateway=%u rules=%s",
                             v->flagged ? "Yes" : "No", v->scl, v->score,
                             c->spam_store_threshold, c->spam_gateway_threshold,
                             *v->rules ? v->rules : "none");
    mq_qf_add_header(job->qf, "X-Spam-Status", status);
    g_free(status);
    status = g_strdup_printf("%u", v->scl);
    mq_qf_add_header(job->qf, "X-mqscan-SCL", status);
    g_free(status);
    if (v->flagged && c->spam_subject_tag[0] != '\0')
        mq_qf_prefix_header(job->qf, "Subject", c->spam_subject_tag);
}

/* Stores the original and the removed parts. Returns the entry ID or NULL. */
static char *
process_quarantine(struct process_job *job, GError **err)
{
    GPtrArray *rcpts = g_ptr_array_new(), *lines = g_ptr_array_new_with_free_func(g_free);
    GArray *parts = g_array_new(FALSE, FALSE, sizeof(struct mq_quarantine_part));
    GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);
    GString *reason = g_string_new(NULL);
    struct mq_quarantine_record rec = { 0 };
    const char *df, *qf_raw;
    size_t df_len, qf_len;
    char *qid, *subject;

    for (size_t i = 0; i < mq_qf_rcpt_count(job->qf); i++)
        g_ptr_array_add(rcpts, (gpointer)mq_qf_rcpt(job->qf, i, NULL));
    g_ptr_array_add(rcpts, NULL);
    for (guint i = 0; i < job->findings->len; i++) {
        const struct process_finding *f = g_ptr_array_index(job->findings, i);
        const char *kind = mq_policy_finding_name(f->kind);
        g_ptr_array_add(lines, process_describe(f));
        if (strstr(reason->str, kind) == NULL)
            g_string_append_printf(reason, "%s%s", reason->len ? ", " : "", kind);
        if (f->content != NULL && f->action != MQ_ACTION_DELIVER &&
            !g_hash_table_contains(seen, GINT_TO_POINTER(f->leaf + 1))) {
            struct mq_quarantine_part part = { (unsigned)f->leaf + 1, NULL, 0 };
            gsize n;
            part.data = g_bytes_get_data(f->content, &n);
            part.len = n;
            g_array_append_val(parts, part);
            g_hash_table_add(seen, GINT_TO_POINTER(f->leaf + 1));
        }
    }
    if (job->spam_stop) {
        g_string_append_printf(reason, "%s%s", reason->len ? ", " : "",
                               job->rcpts_all_blocked ? "recipient_block" : "spam");
        g_ptr_array_add(lines, process_spam_summary(job));
        /* mqscan-quarantine scans such an entry before it releases it */
        g_ptr_array_add(lines, g_strdup(MQ_QUARANTINE_NOT_VIRUS_SCANNED));
    }
    g_ptr_array_add(lines, NULL);
    rec.queue_id = job->id;
    rec.reason = reason->str;
    rec.action = mq_policy_action_name(job->action);
    rec.direction = mq_policy_direction_name(job->direction);
    rec.parts = (const struct mq_quarantine_part *)(void *)parts->data;
    rec.n_parts = parts->len;
    rec.sender = mq_qf_sender(job->qf);
    rec.recipients = (const char *const *)rcpts->pdata;
    subject = process_subject(job);
    rec.subject = subject;
    rec.findings = (const char *const *)lines->pdata;
    rec.when = time(NULL);
    qf_raw = mq_queue_entry_qf_raw(job->entry, &qf_len);
    df = mq_queue_entry_df(job->entry, &df_len);
    qid = mq_quarantine_stage(job->ctx->quarantine, &rec, qf_raw, qf_len, df, df_len, err);

    g_free(subject);
    g_string_free(reason, TRUE);
    g_hash_table_destroy(seen);
    g_array_unref(parts);
    g_ptr_array_unref(lines);
    g_ptr_array_unref(rcpts);
    return qid;
}

static struct mq_process_report *
process_report(const struct process_job *job, const char *qid)
{
    struct mq_process_report *rep = g_new0(struct mq_process_report, 1);
    GString *rcpts = g_string_new(NULL), *lines = g_string_new(NULL);
    GPtrArray *names = g_ptr_array_new();

    for (size_t i = 0; i < mq_qf_rcpt_count(job->qf) && rcpts->len < 1000; i++)
        g_string_append_printf(rcpts, "%s%s", i ? ", " : "", mq_qf_rcpt(job->qf, i, NULL));
    for (guint i = 0; i < job->findings->len; i++) {
        const struct process_finding *f = g_ptr_array_index(job->findings, i);
        char *d = process_describe(f);
        g_string_append_printf(lines, "%s%s", i ? "\n" : "", d);
        g_free(d);
        rep->finding_kinds |= 1u << f->kind;
        if (f->kind == MQ_FINDING_INFECTED)
            g_ptr_array_add(names, g_strdup(f->name));
    }
    g_ptr_array_add(names, NULL);
    rep->queue_id = g_strdup(job->id);
    rep->sender = mq_log_sanitize(mq_qf_sender(job->qf), MQ_LOG_FIELD_MAX);
    rep->recipients = mq_log_sanitize(rcpts->str, 1000);
    rep->subject = process_subject(job);
    rep->findings = g_string_free(lines, FALSE);
    rep->action = g_strdup(mq_policy_action_name(job->action));
    rep->direction = g_strdup(mq_policy_direction_name(job->direction));
    rep->quarantine_id = g_strdup(qid ? qid : "");
    rep->sender_internal = mq_policy_sender_internal(job->ctx->config, mq_qf_macro(job->qf, "_"),
                                                     mq_qf_sender(job->qf));
    rep->virus_names = (char **)g_ptr_array_free(names, FALSE);
    g_string_free(rcpts, TRUE);
    return rep;
}

static void
process_report_free(struct mq_process_report *rep)
{
    if (rep == NULL)
        return;
    g_free(rep->queue_id);
    g_free(rep->sender);
    g_free(rep->recipients);
    g_free(rep->subject);
    g_free(rep->findings);
    g_free(rep->action);
    g_free(rep->direction);
    g_free(rep->quarantine_id);
    g_strfreev(rep->virus_names);
    g_free(rep);
}

/* Stopped by the score, and the gateway action is "reject". */
static bool
process_spam_rejects(const struct process_job *job)
{
    return job->spam_stop && !job->rcpts_all_blocked &&
           job->ctx->config->spam_gateway_action == MQ_SPAM_ACTION_REJECT;
}

/* "reject": a notice goes back only to a sender we can believe (SPF pass
 * for the envelope domain, or an internal sender); a forged sender would
 * turn our notices into backscatter. */
static void
process_spam_reject(struct process_job *job, const char *qid, GString *detail)
{
    const struct mq_config *c = job->ctx->config;
    const char *sender = mq_qf_sender(job->qf);
    bool internal = mq_policy_sender_internal(c, mq_qf_macro(job->qf, "_"), sender);
    const char *to[2] = { sender, NULL };
    char *subject, *rcpts, *findings, *text, *date, *nid;
    GString *list = g_string_new(NULL);
    GError *error = NULL;

    if (sender[0] == '\0' || (!job->spam.spf_pass && !internal)) {
        g_string_append(detail, " notice=none (sender not verifiable)");
        g_string_free(list, TRUE);
        return;
    }
    for (size_t i = 0; i < mq_qf_rcpt_count(job->qf) && list->len < 1000; i++)
        g_string_append_printf(list, "%s%s", i ? ", " : "", mq_qf_rcpt(job->qf, i, NULL));
    rcpts = mq_log_sanitize(list->str, 1000);
    subject = process_subject(job);
    findings = process_spam_summary(job);
    date = g_date_time_format(g_date_time_new_now_local(), "%a, %d %b %Y %H:%M:%S %z");
    {
        const char *vars[] = { "subject", subject, "recipients", rcpts, "findings", findings,
                               "queue_id", qid ? qid : job->id, "hostname", c->hostname,
                               "postmaster", c->postmaster, "date", date, "sender", sender,
                               NULL };
        text = mq_templates_render(job->ctx->templates, MQ_TEMPLATE_SPAM_REJECT, vars);
    }
    nid = mq_notify_send_rendered(c, job->ctx->outgoing, to, text, &error);
    if (nid == NULL) {
        mq_log_warn("%s: spam notice to the sender not sent: %s", job->id, error->message);
        g_clear_error(&error);
        g_string_append(detail, " notice=failed");
    } else {
        g_string_append_printf(detail, " notice=%s", nid);
    }
    g_free(nid);
    g_free(text);
    g_free(date);
    g_free(findings);
    g_free(subject);
    g_free(rcpts);
    g_string_free(list, TRUE);
}

static void
process_act(struct process_job *job, struct mq_process_result *r)
{
    const struct mq_config *c = job->ctx->config;
    GByteArray *body = NULL;
    GError *error = NULL;
    GString *detail = g_string_new(NULL);
    char *out_id = NULL, *qid = NULL, *status = NULL;
    const char *df;
    size_t df_len;
    gboolean dup = FALSE;

    g_string_append_printf(detail, "direction=%s", mq_policy_direction_name(job->direction));
    if (job->spam_checked)
        g_string_append_printf(detail, " scl=%u", job->spam.scl);
    if (job->spam_stop)
        g_string_append_printf(detail, " %s action=%s (not scanned for viruses)",
                               job->rcpts_all_blocked ? "recipient_block" : "spam",
                               process_spam_rejects(job) ? "reject"
                                                         : mq_policy_action_name(job->action));
    if (job->findings->len > 0)
        g_string_append_printf(detail, " action=%s", mq_policy_action_name(job->action));
    for (guint i = 0; i < job->findings->len; i++) {
        char *d = process_describe(g_ptr_array_index(job->findings, i));
        g_string_append_printf(detail, "%s%s", i ? "; " : " findings: ", d);
        g_free(d);
    }

    df = mq_queue_entry_df(job->entry, &df_len);
    process_lap(job, MQ_STAGE_OTHER);
    if (job->action == MQ_ACTION_REPLACE) {
        bool whole = false;
        int v;
        body = g_byte_array_new();
        for (;;) {
            int rc = process_rebuild(job, whole, body, &error);
            process_lap(job, MQ_STAGE_REBUILD);
            if (rc < 0)
                goto fail;
            v = process_verify(job, body);
            process_lap(job, MQ_STAGE_SCAN);
            if (v < 0)
                goto engine;
            if (v == 0)
                break;
            if (whole) {
                error = g_error_new_literal(MQ_ERROR, MQ_ERROR_ENGINE,
                                            "cannot build a clean copy");
                goto fail;
            }
            whole = true;
            g_byte_array_set_size(body, 0);
        }
        df = (const char *)body->data;
        df_len = body->len;
    }
    if (job->action != MQ_ACTION_DELIVER) {
        qid = process_quarantine(job, &error);
        if (qid == NULL)
            goto fail;
        g_string_append_printf(detail, " quarantine=%s", qid);
    }

    if (job->action == MQ_ACTION_DELETE || job->action == MQ_ACTION_QUARANTINE) {
        r->outcome = job->action == MQ_ACTION_DELETE ? MQ_OUTCOME_DELETED : MQ_OUTCOME_QUARANTINED;
    } else {
        if (job->action == MQ_ACTION_REPLACE)
            status = g_strdup_printf("cleaned by %s (mqscan %s): %s", c->hostname,
                                     PACKAGE_VERSION,
                                     mq_message_body_replaced(job->msg) ? "message content removed"
                                                                        : "parts removed");
        else if (job->findings->len > 0)
            status = g_strdup_printf("passed by policy (%s) by %s (mqscan %s)",
                                     mq_policy_direction_name(job->direction), c->hostname,
                                     PACKAGE_VERSION);
        else
            status = g_strdup_printf("clean, scanned by %s (mqscan %s)", c->hostname,
                                     PACKAGE_VERSION);
        /* Whatever arrived with the message under this name is a forgery. */
        mq_qf_remove_headers(job->qf, PROCESS_STATUS_HEADER);
        mq_qf_add_header(job->qf, PROCESS_STATUS_HEADER, status);
        process_spam_headers(job);
        if ((body != NULL ? mq_queue_stage(job->ctx->outgoing, job->id, job->qf, df, df_len,
                                           &out_id, &dup, &error)
                          : mq_queue_stage_same_df(job->ctx->outgoing, job->id, job->qf,
                                                   job->ctx->incoming, job->entry, &out_id,
                                                   &dup, &error)) < 0)
            goto fail;
        g_string_append_printf(detail, " out=%s%s", out_id, dup ? " (already there)" : "");
        r->outcome = job->action == MQ_ACTION_REPLACE ? MQ_OUTCOME_CLEANED
                     : job->findings->len > 0           ? MQ_OUTCOME_PASSED
                                                         : MQ_OUTCOME_DELIVERED;
    }
    /* The original goes once the batch is committed. */
    r->pending = g_new0(struct mq_process_pending, 1);
    r->pending->incoming = job->ctx->incoming;
    r->pending->outgoing = job->ctx->outgoing;
    r->pending->entry = job->entry;
    job->entry = NULL;
    if (out_id != NULL && !dup)
        r->pending->staged_id = g_strdup(out_id);
    r->pending->quarantine = job->ctx->quarantine;
    r->pending->quarantine_id = g_steal_pointer(&qid);
    if (r->pending->quarantine_id != NULL)
        qid = g_strdup(r->pending->quarantine_id);
    if (process_spam_rejects(job))
        process_spam_reject(job, qid, detail);
    process_lap(job, MQ_STAGE_WRITE);
    r->detail = g_string_free(detail, FALSE);
    detail = NULL;
    /* Spam is counted and logged, not reported to the postmaster one by one. */
    if (job->action != MQ_ACTION_DELIVER && !job->spam_stop)
        r->report = process_report(job, qid);
    goto done;

engine:
    r->outcome = MQ_OUTCOME_DEFERRED;
    r->detail = g_strdup_printf("scanner error: %s", job->engine_error->message);
    goto done;
fail:
    process_lap(job, MQ_STAGE_WRITE);       /* mostly a write that failed */
    if (qid != NULL)
        mq_quarantine_unstage(job->ctx->quarantine, qid);
    r->outcome = MQ_OUTCOME_DEFERRED;
    r->detail = g_strdup(error ? error->message : "unknown error");
done:
    if (detail != NULL)
        g_string_free(detail, TRUE);
    g_clear_error(&error);
    if (body != NULL)
        g_byte_array_unref(body);
    g_free(out_id);
    g_free(qid);
    g_free(status);
}

static void
process_log_outcome(const struct process_job *job, struct mq_process_result *r)
{
    char *sender = mq_log_sanitize(job->qf ? mq_qf_sender(job->qf) : "?", MQ_LOG_FIELD_MAX);
    char *detail = mq_log_sanitize(r->detail ? r->detail : "", 2000);
    unsigned nrcpt = job->qf ? (unsigned)mq_qf_rcpt_count(job->qf) : 0;
    char *line = g_strdup_printf("%s: from=<%s> size=%" G_GUINT64_FORMAT
                                 " nrcpt=%u verdict=%s%s%s time=%.3fs",
                                 job->id, sender, r->size, nrcpt,
                                 mq_process_outcome_name(r->outcome), *detail ? " " : "", detail,
                                 r->seconds);

    if (r->outcome == MQ_OUTCOME_DEFERRED)
        mq_log_error("%s", line);
    else
        mq_log_info("%s", line);
    g_free(line);
    g_free(sender);
    g_free(detail);
}

/* Claims job->id (reading it if read). Returns true, or false with *r
 * filled, logged and the job cleared. */
static bool
process_claim(struct process_job *job, bool read, struct mq_process_result *r)
{
    const struct mq_process_ctx *ctx = job->ctx;
    GError *error = NULL;

    job->entry = read ? mq_queue_claim(ctx->incoming, job->id, ctx->config->max_message_size,
                                       &error)
                      : mq_queue_claim_unread(ctx->incoming, job->id, &error);
    if (job->entry != NULL)
        return true;
    r->outcome = error->code == MQ_ERROR_TEMP ? MQ_OUTCOME_SKIPPED : MQ_OUTCOME_DEFERRED;
    r->detail = g_strdup(error->message);
    g_error_free(error);
    if (r->outcome == MQ_OUTCOME_SKIPPED)
        mq_log_debug("%s: skipped: %s", job->id, r->detail);
    else
        mq_log_error("%s: cannot claim: %s", job->id, r->detail);
    process_job_clear(job);
    return false;
}

void
mq_process_poison(const struct mq_process_ctx *ctx, const char *id, unsigned attempts,
                  struct mq_process_result *r)
{
    struct process_job job = { 0 };
    gint64 start = g_get_monotonic_time();
    /* Reading the queue files is a suspect too once holding it has failed
     * as well: then it is held without being read, and reported bare. */
    bool read = attempts <= ctx->config->max_attempts;
    char *why = g_strdup_printf("not scanned: processing crashed or ran past message_time_limit "
                                "%u times", attempts);

    memset(r, 0, sizeof(*r));
    job.ctx = ctx;
    job.id = id;
    job.findings = g_ptr_array_new_with_free_func(process_finding_free);
    job.stage_us = r->stage_us;
    job.mark = start;
    if (!process_claim(&job, read, r)) {
        g_free(why);
        return;
    }
    if (mq_queue_entry_problem(job.entry) == NULL)
        job.qf = mq_queue_entry_qf(job.entry);
    process_hold(&job, why, r);
    if (r->outcome == MQ_OUTCOME_HELD) {
        if (job.qf != NULL) {
            process_direction(&job);
            r->report = process_report(&job, NULL);
        } else {
            r->report = g_new0(struct mq_process_report, 1);
            r->report->queue_id = g_strdup(id);
            r->report->sender = g_strdup("?");
            r->report->recipients = g_strdup("?");
            r->report->subject = g_strdup("?");
            r->report->direction = g_strdup("?");
            r->report->virus_names = g_new0(char *, 1);
        }
        g_free(r->report->findings);
        r->report->findings = g_strdup(why);
        g_free(r->report->action);
        r->report->action = g_strdup("hold");
        g_free(r->report->quarantine_id);
        r->report->quarantine_id = g_strdup_printf("none (held in %s)", ctx->config->hold_dir);
        r->report->postmaster_only = true;
    }
    g_free(why);
    r->seconds = (double)(g_get_monotonic_time() - start) / 1e6;
    process_log_outcome(&job, r);
    process_job_clear(&job);
}

void
mq_process_message(const struct mq_process_ctx *ctx, const char *id,
                   struct mq_process_result *r)
{
    struct process_job job = { 0 };
    gint64 start = g_get_monotonic_time();
    uint64_t sync_start = mq_fs_sync_us(), sync_us;
    const GError *problem;
    const char *df;
    size_t df_len;
    GString *buf = NULL;

    memset(r, 0, sizeof(*r));
    job.ctx = ctx;
    job.id = id;
    job.findings = g_ptr_array_new_with_free_func(process_finding_free);
    job.stage_us = r->stage_us;
    job.mark = start;

    if (!process_claim(&job, true, r)) {
        r->seconds = (double)(g_get_monotonic_time() - start) / 1e6;
        process_lap(&job, MQ_STAGE_READ);
        return;
    }
    process_lap(&job, MQ_STAGE_READ);
    problem = mq_queue_entry_problem(job.entry);
    if (problem != NULL) {
        char *why = g_strdup_printf("%s: %s",
                                    problem->code == MQ_ERROR_LIMIT ? "over a size limit"
                                                                    : "corrupt queue file",
                                    problem->message);
        process_hold(&job, why, r);
        g_free(why);
        goto out;
    }
    job.qf = mq_queue_entry_qf(job.entry);
    df = mq_queue_entry_df(job.entry, &df_len);
    r->size = df_len;
    /* Before anything reads the headers: what is scanned is what goes out. */
    if (mq_qf_headers_blank_cr(job.qf) > 0)
        mq_log_info("%s: CR in header fields made blanks", id);

    job.headers = g_string_sized_new(4096);
    mq_qf_headers_text(job.qf, job.headers);
    buf = g_string_sized_new(job.headers->len + 1 + df_len);
    g_string_append_len(buf, job.headers->str, job.headers->len);
    g_string_append_c(buf, '\n');
    g_string_append_len(buf, df, df_len);
    process_lap(&job, MQ_STAGE_READ);

    process_direction(&job);
    process_check(&job, buf->str, buf->len);
    g_string_free(buf, TRUE);
    if (job.engine_error != NULL) {
        char *why = g_strdup_printf("scanner error: %s", job.engine_error->message);
        if (ctx->config->on_scan_error == MQ_ON_ERROR_HOLD) {
            process_hold(&job, why, r);
        } else {
            r->outcome = MQ_OUTCOME_DEFERRED;
            r->detail = g_strdup(why);
        }
        g_free(why);
        goto out;
    }
    process_decide(&job);
    for (guint i = 0; i < job.findings->len; i++)
        r->finding_kinds |= 1u << ((struct process_finding *)g_ptr_array_index(job.findings, i))->kind;
    process_act(&job, r);

out:
    r->seconds = (double)(g_get_monotonic_time() - start) / 1e6;
    process_log_outcome(&job, r);
    process_job_clear(&job);
    process_lap(&job, MQ_STAGE_OTHER);
    /* Every fsync happened inside a write; it is counted on its own. */
    sync_us = mq_fs_sync_us() - sync_start;
    r->stage_us[MQ_STAGE_FSYNC] = sync_us;
    r->stage_us[MQ_STAGE_WRITE] -= MIN(sync_us, r->stage_us[MQ_STAGE_WRITE]);
}

/* Frees p; a staged entry still in it is removed (never committed). */
static void
process_pending_free(struct mq_process_pending *p)
{
    if (p == NULL)
        return;
    if (p->staged_id != NULL)
        mq_queue_unstage(p->outgoing, p->staged_id);
    if (p->quarantine_id != NULL)
        mq_quarantine_unstage(p->quarantine, p->quarantine_id);
    g_free(p->staged_id);
    g_free(p->quarantine_id);
    mq_queue_entry_free(&p->entry);
    g_free(p);
}

/* A result whose outgoing (or quarantine) entry could not be committed:
 * deferred, its original left in the incoming queue, whatever it staged
 * removed. */
static void
process_uncommitted(struct mq_process_result *r, const char *where, const GError *error)
{
    const char *id = mq_queue_entry_id(r->pending->entry);

    mq_log_error("%s: verdict=deferred not committed to the %s, left in the incoming queue: %s",
                 id, where, error != NULL ? error->message : "unknown error");
    r->outcome = MQ_OUTCOME_DEFERRED;
    g_free(r->detail);
    r->detail = g_strdup_printf("not committed: %s", error != NULL ? error->message : "?");
    g_clear_pointer(&r->report, process_report_free);
    g_clear_pointer(&r->pending, process_pending_free);
}

/* Commits, for the members that still have one, their staged quarantine
 * entries (quarantine) or their staged outgoing entries; a member whose
 * entry fails is uncommitted, whatever else it staged removed. With synced,
 * the outgoing files were made durable by the quarantine's syncfs(). True
 * if this commit was a syncfs() that succeeded. */
static bool
process_commit_staged(const struct mq_process_ctx *ctx, GPtrArray *members, bool quarantine,
                      bool synced)
{
    GPtrArray *ids = g_ptr_array_new(), *owners = g_ptr_array_new();
    bool *failed = g_new0(bool, members->len + 1);
    GError *error = NULL;
    int rc = -1;

    for (guint i = 0; i < members->len; i++) {
        struct mq_process_result *r = g_ptr_array_index(members, i);
        char *id = r->pending == NULL ? NULL
                   : quarantine       ? r->pending->quarantine_id
                                      : r->pending->staged_id;
        if (id != NULL) {
            g_ptr_array_add(ids, id);
            g_ptr_array_add(owners, r);
        }
    }
    if (ids->len > 0 && quarantine)
        rc = mq_quarantine_commit(ctx->quarantine, (const char *const *)ids->pdata, ids->len,
                                  ctx->config->queue_sync_fs ? MQ_QUARANTINE_SYNCFS : 0, failed,
                                  &error);
    else if (ids->len > 0)
        rc = mq_queue_commit(ctx->outgoing, (const char *const *)ids->pdata, ids->len,
                             (ctx->config->queue_sync_fs ? MQ_QUEUE_SYNCFS : 0)
                             | (synced ? MQ_QUEUE_SYNCED : 0), failed, &error);
    for (guint j = 0; j < owners->len; j++) {
        struct mq_process_result *r = g_ptr_array_index(owners, j);
        if (quarantine && failed[j]) {
            process_uncommitted(r, "quarantine", error);    /* still staged: removed */
            continue;
        }
        /* Durable now, or (a failed outgoing entry) already unstaged. */
        g_clear_pointer(quarantine ? &r->pending->quarantine_id : &r->pending->staged_id, g_free);
        if (failed[j])
            process_uncommitted(r, "outgoing queue", error);
    }
    g_clear_error(&error);
    g_free(failed);
    g_ptr_array_unref(owners);
    g_ptr_array_unref(ids);
    return rc == 0 && ctx->config->queue_sync_fs;
}

void
mq_process_commit(const struct mq_process_ctx *ctx, struct mq_process_result *const *results,
                  size_t n)
{
    GPtrArray *members = g_ptr_array_new(), *originals = g_ptr_array_new();
    gint64 start = g_get_monotonic_time();
    uint64_t sync_start = mq_fs_sync_us(), sync_us, total_us;
    GError *error = NULL;
    bool synced;

    for (size_t i = 0; i < n; i++) {
        if (results[i]->pending != NULL)
            g_ptr_array_add(members, results[i]);
    }
    /* The quarantine first: an original goes only once every copy of it,
     * outgoing and quarantined, is durable. Every outgoing entry was staged
     * before that syncfs(), so on the same file system it need not be
     * repeated. */
    synced = process_commit_staged(ctx, members, true, false);
    process_commit_staged(ctx, members, false, synced && ctx->quarantine_on_outgoing_fs);

    /* Every successor is durable: the originals may go. */
    for (guint i = 0; i < members->len; i++) {
        struct mq_process_result *r = g_ptr_array_index(members, i);
        if (r->pending != NULL)
            g_ptr_array_add(originals, r->pending->entry);
    }
    if (originals->len > 0 &&
        mq_queue_remove_many(ctx->incoming, (struct mq_queue_entry *const *)originals->pdata,
                             originals->len, &error) < 0) {
        /* The results are durable; at worst an original is processed again
         * and recognised as already written. */
        mq_log_error("done but not all removed from the incoming queue: %s", error->message);
        g_clear_error(&error);
    }

    /* Claims dropped; the batch's time shared out among its messages. */
    sync_us = mq_fs_sync_us() - sync_start;
    total_us = (uint64_t)(g_get_monotonic_time() - start);
    for (guint i = 0; i < members->len; i++) {
        struct mq_process_result *r = g_ptr_array_index(members, i);
        g_clear_pointer(&r->pending, process_pending_free);
        r->stage_us[MQ_STAGE_FSYNC] += sync_us / members->len;
        r->stage_us[MQ_STAGE_WRITE] += (total_us - MIN(sync_us, total_us)) / members->len;
    }
    g_ptr_array_unref(members);
    g_ptr_array_unref(originals);
}

void
mq_process_result_clear(struct mq_process_result *result)
{
    g_clear_pointer(&result->detail, g_free);
    g_clear_pointer(&result->report, process_report_free);
    g_clear_pointer(&result->pending, process_pending_free);
}

const char *
mq_process_outcome_name(enum mq_outcome outcome)
{
    static const char *const names[MQ_OUTCOME_COUNT] = {
        [MQ_OUTCOME_DELIVERED] = "clean",
        [MQ_OUTCOME_PASSED] = "passed",
        [MQ_OUTCOME_CLEANED] = "cleaned",
        [MQ_OUTCOME_QUARANTINED] = "quarantined",
        [MQ_OUTCOME_DELETED] = "deleted",
        [MQ_OUTCOME_HELD] = "held",
        [MQ_OUTCOME_DEFERRED] = "deferred",
        [MQ_OUTCOME_SKIPPED] = "skipped",
    };
    return names[outcome];
}

const char *
mq_process_stage_name(enum mq_process_stage stage)
{
    static const char *const names[MQ_STAGE_COUNT] = {
        [MQ_STAGE_READ] = "queue read",
        [MQ_STAGE_PARSE] = "MIME parse",
        [MQ_STAGE_SPAM] = "spam checks",
        [MQ_STAGE_RULES] = "rules",
        [MQ_STAGE_SCAN] = "virus scan",
        [MQ_STAGE_REBUILD] = "rebuild",
        [MQ_STAGE_WRITE] = "queue write",
        [MQ_STAGE_FSYNC] = "fsync",
        [MQ_STAGE_OTHER] = "other",
    };
    return names[stage];
}
