/* template - the texts mqscan puts into messages, in the site's language.
 *
 * Public functions: mq_templates_load(), mq_templates_free(),
 * mq_templates_render().
 *
 * Templates are UTF-8 text files in DIR/LANGUAGE/ (shipped: en, fr):
 *   part-removed.txt   replaces a removed attachment
 *   body-removed.txt   replaces a whole body (the finding has no single part)
 *   notice.txt         put at the top of the first text part, listing what
 *                      was removed
 *   postmaster-report.txt  the postmaster's report of one batch
 *   sender-notice.txt  to the internal sender of a blocked message
 *   spam-rejected.txt  to the verifiable sender of a message refused as spam
 * The two mail templates start with a "Subject: ..." line, the subject of
 * the mail (so that it is translated with the text).
 * Variables are written ${name}: ${filename}, ${reason} (the text for the
 * user, e.g. "contained a virus"), ${virus} (or rule name), ${queue_id},
 * ${date} (RFC 5322 date), ${hostname}, ${postmaster}, ${removed} (notice
 * only: one line per removed part), ${count}, ${entries} (report: one block
 * per message), ${subject}, ${recipients}, ${sender}, ${findings} (one
 * line per finding). Lists may hold several lines and up to 256 KB. An unknown variable is an error at load
 * time, so a typo is found by --lint and not by a recipient.
 *
 * DIAGNOSTICS
 * mq_templates_load() returns NULL with MQ_ERROR_CONFIG naming the file: a
 * missing file, invalid UTF-8, a file over 64 KB, an unknown variable.
 */
#ifndef MQSCAN_TEMPLATE_H
#define MQSCAN_TEMPLATE_H

#include <glib.h>

struct mq_templates;

enum mq_template_kind {
    MQ_TEMPLATE_PART_REMOVED,
    MQ_TEMPLATE_BODY_REMOVED,
    MQ_TEMPLATE_NOTICE,
    MQ_TEMPLATE_REPORT,         /* postmaster-report.txt: one per batch */
    MQ_TEMPLATE_SENDER,         /* sender-notice.txt: to an internal sender */
    MQ_TEMPLATE_SPAM_REJECT,    /* spam-rejected.txt: to a verifiable sender */
    MQ_TEMPLATE_COUNT
};

/* Loads the three files of DIR/LANGUAGE. Returns a new set (caller frees with
 * mq_templates_free()) or NULL with err set. */
struct mq_templates *mq_templates_load(const char *dir, const char *language, GError **err);
void mq_templates_free(struct mq_templates **templates);

/* Renders a template. vars is a NULL-terminated list of name, value pairs;
 * values are untrusted: control characters (except LF in ${removed}) become
 * '?', invalid UTF-8 is replaced, and each value is cut to 1000 bytes. A
 * variable not given renders empty. Returns UTF-8 text (caller frees with
 * g_free()). Thread-safe. */
char *mq_templates_render(const struct mq_templates *templates, enum mq_template_kind kind,
                          const char *const *vars);

#endif
