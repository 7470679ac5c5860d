/* notify - mail that mqscan itself sends: the postmaster's batch report,
 * the notice to an internal sender, health-check alerts.
 *
 * Public functions: mq_notify_send(), mq_notify_send_rendered(),
 * mq_notify_send_attached().
 *
 * A notification is written straight into the outgoing queue as a new
 * sendmail queue entry (the same durable df-then-qf write as every result),
 * so no shell and no external program is involved, and it leaves with the
 * rest of the mail. The envelope sender is empty ("<>", as for bounces), so
 * a notification can never cause a notification loop. The body is UTF-8 text
 * in a proper MIME text/plain part (quoted-printable), the subject is
 * RFC 2047 encoded where needed. Every value that came from a message must
 * have been sanitized by the caller (the templates do it); this module also
 * refuses CR and LF in addresses and the subject.
 *
 * DIAGNOSTICS
 * Failures are returned (MQ_ERROR_TEMP for a full disk); a bad recipient
 * address (empty, with spaces, CR/LF, angle brackets) is MQ_ERROR_CONFIG.
 */
#ifndef MQSCAN_NOTIFY_H
#define MQSCAN_NOTIFY_H

#include <glib.h>

#include "mqscan/config.h"
#include "mqscan/queue.h"

/* Queues one message from "mqscan on HOSTNAME <MAILER-DAEMON@HOSTNAME>" to
 * the NULL-terminated list of addresses to (an address without a domain,
 * such as "postmaster", gets "@HOSTNAME"), with subject and text (UTF-8;
 * a final newline is added if missing). The Auto-Submitted: auto-generated
 * header keeps well-behaved responders quiet. Returns the new queue ID
 * (caller frees) or NULL with err set. Thread-safe. */
char *mq_notify_send(const struct mq_config *config, struct mq_queue *outgoing,
                     const char *const *to, const char *subject, const char *text,
                     GError **err);

/* The same, with one file attached after the text: name (ours, e.g.
 * "mqscan-report.html"), mime_type ("text/html"), len bytes of data. */
/* mq_notify_send() for a rendered mail template: its first line
 * "Subject: ..." is the subject (else "mqscan"), the rest the text. */
char *mq_notify_send_rendered(const struct mq_config *config, struct mq_queue *outgoing,
                              const char *const *to, const char *rendered, GError **err);

char *mq_notify_send_attached(const struct mq_config *config, struct mq_queue *outgoing,
                              const char *const *to, const char *subject, const char *text,
                              const char *name, const char *mime_type, const void *data,
                              size_t len, GError **err);

#endif
