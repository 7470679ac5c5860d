#include <config.h>

#include <string.h>
#include <time.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/message.h"
#include "mqscan/process.h"
#include "mqscan/qf.h"

#define PROCESS_STATUS_HEADER "X-mqscan"
#define PROCESS_MAX_FINDINGS 50

/* Everything one message needs while it is processed; freed at the end. */
struct process_job {
    const struct mq_process_ctx *ctx;
    const char *id;
    struct mq_queue_entry *entry;
    struct mq_qf *qf;           /* borrowed from entry */
    GString *headers;           /* header block as a reader sees it */
    struct mq_message *msg;     /* NULL if GMime could not parse it */
    GPtrArray *findings;        /* char *: "part N (name): Virus" */
    GArray *infected_leaves;    /* unsigned leaf indexes */
    GPtrArray *leaf_notes;      /* char *: notice text per infected leaf */
    bool whole_infected;
    char *whole_virus;
    char *unscannable;          /* why the message cannot be scanned */
    GError *engine_error;
};

static void
process_log_outcome(const struct process_job *job, struct mq_process_result *r)
{
    char *sender = mq_log_sanitize(job->qf ? mq_qf_sender(job->qf) : "?", MQ_LOG_FIELD_MAX);
    char *detail = mq_log_sanitize(r->detail ? r->detail : "", 400);
    unsigned nrcpt = job->qf ? (unsigned)mq_qf_rcpt_count(job->qf) : 0;

    if (r->outcome == MQ_OUTCOME_DEFERRED)
        mq_log_error("%s: from=<%s> size=%" G_GUINT64_FORMAT " nrcpt=%u verdict=%s%s%s time=%.3fs",
                     job->id, sender, r->size, nrcpt, mq_process_outcome_name(r->outcome),
                     *detail ? " reason=" : "", detail, r->seconds);
    else
        mq_log_info("%s: from=<%s> size=%" G_GUINT64_FORMAT " nrcpt=%u verdict=%s%s%s time=%.3fs",
                    job->id, sender, r->size, nrcpt, mq_process_outcome_name(r->outcome),
                    *detail ? " " : "", detail, r->seconds);
    g_free(sender);
    g_free(detail);
}

/* Scan verdicts from the engine, folded into the job. Returns -1 when the
 * walk must stop (unscannable or engine error). */
static int
process_note_verdict(struct process_job *job, int verdict, char *name, GError *error,
                     const char *where)
{
    if (verdict < 0) {
        job->engine_error = error;
        return -1;
    }
    if (verdict == MQ_SCAN_UNSCANNABLE) {
        job->unscannable = g_strdup_printf("%s: %s", where, name);
        g_free(name);
        return -1;
    }
    g_free(name);
    return 0;
}

static int
process_scan_leaf(const struct mq_message_leaf *leaf, const void *data, size_t len,
                  void *ctxp, GError **err)
{
    struct process_job *job = ctxp;
    char *name = NULL, *where;
    GError *error = NULL;
    int verdict, rc;

    /* A fragment is only dangerous once the reader's client joins the
     * fragments, which no scanner here ever sees: refuse to pass it. */
    if (g_ascii_strcasecmp(leaf->content_type, "message/partial") == 0) {
        job->unscannable = g_strdup_printf("part %u: message/partial cannot be scanned",
                                           leaf->index + 1);
        g_set_error_literal(err, MQ_ERROR, MQ_ERROR_LIMIT, job->unscannable);
        return -1;
    }
    verdict = mq_scanner_scan(job->ctx->scanner, data, len, leaf->filename, &name, &error);
    if (verdict == MQ_SCAN_INFECTED) {
        char *fname = mq_log_sanitize(leaf->filename ? leaf->filename : "", 120);
        char *host = job->ctx->config->hostname;
        g_array_append_val(job->infected_leaves, leaf->index);
        if (job->findings->len < PROCESS_MAX_FINDINGS)
            g_ptr_array_add(job->findings,
                            g_strdup_printf("part %u%s%s%s: %s", leaf->index + 1,
                                            *fname ? " (" : "", fname, *fname ? ")" : "", name));
        g_ptr_array_add(job->leaf_notes, g_strdup_printf(
            "This part of the message was removed by the mail gateway %s\n"
            "because it contained a virus.\n\n"
            "  File name: %s\n"
            "  Type:      %s\n"
            "  Found:     %s\n"
            "  Queue ID:  %s\n\n"
            "The original message is kept in quarantine. If you need it, ask\n"
            "your postmaster (%s) and quote the queue ID.\n",
            host, *fname ? fname : "(none)", leaf->content_type, name, job->id,
            job->ctx->config->postmaster));
        g_free(fname);
        g_free(name);
        return 0;
    }
    where = g_strdup_printf("part %u", leaf->index + 1);
    rc = process_note_verdict(job, verdict, name, error, where);
    g_free(where);
    if (rc < 0)
        g_set_error_literal(err, MQ_ERROR, MQ_ERROR_ENGINE, "scan stopped");
    return rc;
}

/* Whole message first (libclamav's own mail parser also finds what GMime
 * does not decode, such as uuencode inside a text part), then every decoded
 * leaf as GMime sees it, which is what the rebuilt message will hold. */
static void
process_scan(struct process_job *job, const char *buf, size_t len)
{
    const struct mq_config *c = job->ctx->config;
    struct mq_message_limits limits = { c->max_mime_depth, c->max_mime_parts };
    const char *df;
    size_t df_len;
    char *name = NULL;
    GError *error = NULL;
    int verdict;

    verdict = mq_scanner_scan(job->ctx->scanner, buf, len, job->id, &name, &error);
    if (verdict == MQ_SCAN_INFECTED) {
        job->whole_infected = true;
        job->whole_virus = name;
    } else if (process_note_verdict(job, verdict, name, error, "message") < 0) {
        return;
    }

    df = mq_queue_entry_df(job->entry, &df_len);
    job->msg = mq_message_parse(job->headers->str, job->headers->len, df, df_len, &error);
    if (job->msg == NULL) {
        mq_log_info("%s: MIME structure not parsed (%s); whole message scanned as one",
                    job->id, error->message);
        g_clear_error(&error);
        return;
    }
    if (mq_message_foreach_leaf(job->msg, &limits, process_scan_leaf, job, &error) < 0) {
        if (error->code == MQ_ERROR_LIMIT && job->unscannable == NULL && job->engine_error == NULL)
            job->unscannable = g_strdup(error->message);
        g_clear_error(&error);
    }
}

static void
process_add_status(struct process_job *job, const char *status)
{
    mq_qf_remove_headers(job->qf, PROCESS_STATUS_HEADER);
    mq_qf_add_header(job->qf, PROCESS_STATUS_HEADER, status);
}

/* Builds the body to deliver for an infected message into out. */
static int
process_rebuild(struct process_job *job, GByteArray *out, GError **err)
{
    const struct mq_config *c = job->ctx->config;

    if (job->msg != NULL && job->infected_leaves->len > 0) {
        for (guint i = 0; i < job->infected_leaves->len; i++) {
            unsigned idx = g_array_index(job->infected_leaves, unsigned, i);
            if (mq_message_replace_leaf(job->msg, idx, g_ptr_array_index(job->leaf_notes, i),
                                        NULL) < 0) {
                job->infected_leaves->len = 0;   /* fall back to the whole body */
                break;
            }
        }
    }
    if (job->msg == NULL || job->infected_leaves->len == 0) {
        /* libclamav found something GMime's parts do not show (or the MIME
         * could not be parsed): nothing of the body can be trusted. */
        char *text = g_strdup_printf(
            "The content of this message was removed by the mail gateway %s\n"
            "because it contained a virus.\n\n"
            "  Found:     %s\n"
            "  Queue ID:  %s\n\n"
            "The original message is kept in quarantine. If you need it, ask\n"
            "your postmaster (%s) and quote the queue ID.\n",
            c->hostname, job->whole_virus ? job->whole_virus : "(see log)", job->id,
            c->postmaster);
        if (job->msg == NULL) {
            GError *error = NULL;
            /* A minimal message to carry the notice; its Content-* headers
             * replace the original ones below. */
            job->msg = mq_message_parse("Subject: x\n", 11, "", 0, &error);
            if (job->msg == NULL) {
                g_propagate_error(err, error);
                g_free(text);
                return -1;
            }
        }
        mq_message_replace_body(job->msg, text);
        g_free(text);
        if (job->findings->len == 0)
            g_ptr_array_add(job->findings, g_strdup_printf("message: %s",
                            job->whole_virus ? job->whole_virus : "?"));
    }
    if (mq_message_body_replaced(job->msg)) {
        GPtrArray *ch = mq_message_content_headers(job->msg);
        mq_qf_replace_content_headers(job->qf, ch);
        g_ptr_array_unref(ch);
    }
    return mq_message_write_body(job->msg, out, err);
}

/* A rebuilt message is scanned again before it goes out: if anything is
 * still found, the whole body goes. */
static int
process_verify(struct process_job *job, GByteArray *body)
{
    GString *buf = g_string_new(NULL);
    char *name = NULL;
    GError *error = NULL;
    int verdict;

    mq_qf_headers_text(job->qf, buf);
    g_string_append_c(buf, '\n');
    g_string_append_len(buf, (const char *)body->data, body->len);
    verdict = mq_scanner_scan(job->ctx->scanner, buf->str, buf->len, job->id, &name, &error);
    g_string_free(buf, TRUE);
    if (verdict < 0) {
        job->engine_error = error;
        return -1;
    }
    if (verdict != MQ_SCAN_CLEAN) {
        mq_log_warn("%s: rebuilt message still matches %s; removing the whole body",
                    job->id, name);
        g_free(job->whole_virus);
        job->whole_virus = name;
        job->infected_leaves->len = 0;
        return 1;
    }
    return 0;
}

static void
process_job_clear(struct process_job *job)
{
    mq_message_free(&job->msg);
    if (job->headers != NULL)
        g_string_free(job->headers, TRUE);
    g_ptr_array_unref(job->findings);
    g_ptr_array_unref(job->leaf_notes);
    g_array_unref(job->infected_leaves);
    g_free(job->whole_virus);
    g_free(job->unscannable);
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
        return;
    }
    r->outcome = MQ_OUTCOME_HELD;
    r->detail = g_strdup(reason);
}

static void
process_deliver(struct process_job *job, struct mq_process_result *r)
{
    const struct mq_config *c = job->ctx->config;
    const char *df, *qf_raw;
    size_t df_len, qf_len;
    GByteArray *body = NULL;
    GError *error = NULL;
    char *out_id = NULL, *qid = NULL, *status = NULL;
    gboolean dup = FALSE;
    bool infected = job->whole_infected || job->infected_leaves->len > 0;

    df = mq_queue_entry_df(job->entry, &df_len);
    if (infected) {
        GPtrArray *rcpts = g_ptr_array_new();
        struct mq_quarantine_record rec = { 0 };
        for (size_t i = 0; i < mq_qf_rcpt_count(job->qf); i++)
            g_ptr_array_add(rcpts, (gpointer)mq_qf_rcpt(job->qf, i, NULL));
        g_ptr_array_add(rcpts, NULL);
        body = g_byte_array_new();
        if (process_rebuild(job, body, &error) < 0)
            goto fail;
        if (process_verify(job, body) != 0) {
            if (job->engine_error != NULL)
                goto engine;
            g_byte_array_set_size(body, 0);
            if (process_rebuild(job, body, &error) < 0 || process_verify(job, body) != 0)
                goto fail_closed;
        }
        g_ptr_array_add(job->findings, NULL);
        rec.queue_id = job->id;
        rec.reason = "infected";
        rec.sender = mq_qf_sender(job->qf);
        rec.recipients = (const char *const *)rcpts->pdata;
        rec.subject = mq_qf_find_header(job->qf, "Subject");
        rec.findings = (const char *const *)job->findings->pdata;
        rec.when = time(NULL);
        qf_raw = mq_queue_entry_qf_raw(job->entry, &qf_len);
        qid = mq_quarantine_store(job->ctx->quarantine, &rec, qf_raw, qf_len, df, df_len, &error);
        g_ptr_array_unref(rcpts);
        g_ptr_array_remove_index(job->findings, job->findings->len - 1);
        if (qid == NULL)
            goto fail;
        status = g_strdup_printf("cleaned by %s (mqscan %s): %u part%s removed",
                                 c->hostname, PACKAGE_VERSION,
                                 MAX(job->infected_leaves->len, 1u),
                                 MAX(job->infected_leaves->len, 1u) == 1 ? "" : "s");
        df = (const char *)body->data;
        df_len = body->len;
    } else {
        status = g_strdup_printf("clean, scanned by %s (mqscan %s)", c->hostname, PACKAGE_VERSION);
    }
    process_add_status(job, status);

    if (mq_queue_write(job->ctx->outgoing, job->id, job->qf, df, df_len, &out_id, &dup,
                       &error) < 0)
        goto fail;
    if (mq_queue_remove(job->ctx->incoming, job->entry, &error) < 0) {
        /* The result is durable; at worst the original is scanned again and
         * recognised as already written. */
        mq_log_error("%s: written to the outgoing queue as %s but not removed: %s",
                     job->id, out_id, error->message);
        g_clear_error(&error);
    }
    r->outcome = infected ? MQ_OUTCOME_CLEANED : MQ_OUTCOME_DELIVERED;
    if (infected) {
        GString *d = g_string_new(NULL);
        for (guint i = 0; i < job->findings->len; i++)
            g_string_append_printf(d, "%s%s", i ? ", " : "", (char *)g_ptr_array_index(job->findings, i));
        g_string_append_printf(d, " quarantine=%s", qid);
        g_string_append_printf(d, " out=%s%s", out_id, dup ? " (already there)" : "");
        r->detail = g_string_free(d, FALSE);
    } else {
        r->detail = g_strdup_printf("out=%s%s", out_id, dup ? " (already there)" : "");
    }
    goto done;

engine:
    r->outcome = MQ_OUTCOME_DEFERRED;
    r->detail = g_strdup_printf("scanner error: %s", job->engine_error->message);
    goto done;
fail_closed:
    r->outcome = MQ_OUTCOME_DEFERRED;
    r->detail = g_strdup_printf("cannot build a clean copy%s%s",
                                error ? ": " : "", error ? error->message : "");
    goto done;
fail:
    r->outcome = MQ_OUTCOME_DEFERRED;
    r->detail = g_strdup(error ? error->message : "unknown error");
done:
    g_clear_error(&error);
    if (body != NULL)
        g_byte_array_unref(body);
    g_free(out_id);
    g_free(qid);
    g_free(status);
}

void
mq_process_message(const struct mq_process_ctx *ctx, const char *id,
                   struct mq_process_result *r)
{
    struct process_job job = { 0 };
    gint64 start = g_get_monotonic_time();
    GError *error = NULL;
    const GError *problem;
    const char *df;
    size_t df_len;
    GString *buf = NULL;

    memset(r, 0, sizeof(*r));
    job.ctx = ctx;
    job.id = id;
    job.findings = g_ptr_array_new_with_free_func(g_free);
    job.leaf_notes = g_ptr_array_new_with_free_func(g_free);
    job.infected_leaves = g_array_new(FALSE, FALSE, sizeof(unsigned));

    job.entry = mq_queue_claim(ctx->incoming, id, ctx->config->max_message_size, &error);
    if (job.entry == NULL) {
        r->outcome = error->code == MQ_ERROR_TEMP ? MQ_OUTCOME_SKIPPED : MQ_OUTCOME_DEFERRED;
        r->detail = g_strdup(error->message);
        g_error_free(error);
        if (r->outcome == MQ_OUTCOME_SKIPPED)
            mq_log_debug("%s: skipped: %s", id, r->detail);
        else
            mq_log_error("%s: cannot claim: %s", id, r->detail);
        process_job_clear(&job);
        return;
    }
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

    job.headers = g_string_sized_new(4096);
    mq_qf_headers_text(job.qf, job.headers);
    buf = g_string_sized_new(job.headers->len + 1 + df_len);
    g_string_append_len(buf, job.headers->str, job.headers->len);
    g_string_append_c(buf, '\n');
    g_string_append_len(buf, df, df_len);

    process_scan(&job, buf->str, buf->len);
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
    if (job.unscannable != NULL) {
        char *why = g_strdup_printf("unscannable: %s", job.unscannable);
        process_hold(&job, why, r);
        g_free(why);
        goto out;
    }
    process_deliver(&job, r);

out:
    r->seconds = (double)(g_get_monotonic_time() - start) / 1e6;
    process_log_outcome(&job, r);
    if (buf != NULL)
        g_string_free(buf, TRUE);
    process_job_clear(&job);
}

void
mq_process_result_clear(struct mq_process_result *result)
{
    g_clear_pointer(&result->detail, g_free);
}

const char *
mq_process_outcome_name(enum mq_outcome outcome)
{
    static const char *const names[] = {
        [MQ_OUTCOME_DELIVERED] = "clean",
        [MQ_OUTCOME_CLEANED] = "infected",
        [MQ_OUTCOME_HELD] = "held",
        [MQ_OUTCOME_DEFERRED] = "deferred",
        [MQ_OUTCOME_SKIPPED] = "skipped",
    };
    return names[outcome];
}
