/* message - one mail message as GMime sees it: parse, walk the leaf parts,
 * replace parts, and write the result back out.
 *
 * Public functions: mq_message_parse(), mq_message_free(),
 * mq_message_foreach_leaf(), mq_message_replace_leaf(),
 * mq_message_replace_body(), mq_message_body_replaced(),
 * mq_message_write_body(), mq_message_content_headers(),
 * mq_message_prepend_notice(), mq_message_append_utf8().
 *
 * The message is built from the header block and the body that the caller
 * assembles (sendmail keeps them in different files). Leaves are every
 * non-multipart part, including the parts of attached message/rfc822
 * messages, and every multipart that has no parts (no boundary found; its
 * raw content is the leaf's data), numbered 0, 1, ... in depth-first
 * order; the numbering is stable
 * for the life of the object as long as no part is replaced, so a caller walks
 * first, then replaces.
 *
 * Only message.c includes <gmime/gmime.h> to build and change messages;
 * the spam checks read the parsed message through mq_message_gmime().
 *
 * DIAGNOSTICS
 * mq_message_parse() returns NULL with MQ_ERROR_CORRUPT when GMime cannot
 * make a message out of the input (the caller still scans the raw bytes),
 * and with MQ_ERROR_LIMIT, before GMime sees it, when the input could make
 * GMime build more parts and headers than the limits allow for.
 * mq_message_foreach_leaf() fails with MQ_ERROR_LIMIT when the MIME tree is
 * deeper or has more parts than allowed, or holds a multipart whose boundary
 * has 8-bit bytes (GMime cannot split it; a mail reader may). Bad leaf
 * indexes panic.
 */
#ifndef MQSCAN_MESSAGE_H
#define MQSCAN_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

struct mq_message;

struct mq_message_limits {
    unsigned max_depth;         /* multipart + message/rfc822 nesting */
    unsigned max_parts;         /* parts of any kind, in total */
};

struct mq_message_leaf {
    unsigned index;             /* depth-first leaf number */
    unsigned depth;             /* 0 for a single-part message */
    const char *content_type;   /* "type/subtype", lower case */
    const char *filename;       /* decoded (RFC 2047/2231) file name as UTF-8, or
                                   NULL; untrusted data, never a path */
};

/* Called with each leaf's decoded content (transfer encoding undone).
 * data is valid only during the call. Return 0 to go on, -1 (with err set)
 * to stop the walk. */
typedef int mq_message_leaf_fn(const struct mq_message_leaf *leaf,
                               const void *data, size_t len,
                               void *ctx, GError **err);

/* Parses headers (an RFC 5322 header block, LF line ends, without the blank
 * line) followed by body. GMime builds an object of about a kilobyte for
 * every part, header line, address and parameter it reads, so first what
 * can become one (lines starting with "--", and the lines of what can be a
 * header block and the "," and ";" in them) is counted; more than
 * MQ_MESSAGE_OBJECTS(limits), or address lists that GMime would read for
 * more than about a second (it takes quadratic time on some), and the input
 * is refused (MQ_ERROR_LIMIT) unread. Returns a new message (caller frees with
 * mq_message_free()) or NULL with err set. */
struct mq_message *mq_message_parse(const char *headers, size_t headers_len,
                                    const char *body, size_t body_len,
                                    const struct mq_message_limits *limits, GError **err);

/* What may become GMime objects, at most: room for max_parts parts with
 * several header lines each, and for a long header block. */
#define MQ_MESSAGE_OBJECTS(limits) (8 * (uint64_t)(limits)->max_parts + 65536)

/* Frees *msg and sets it to NULL. NULL is allowed. */
void mq_message_free(struct mq_message **msg);

/* The parsed GMimeMessage, borrowed, for checks that only read it. */
struct _GMimeMessage;
struct _GMimeMessage *mq_message_gmime(struct mq_message *msg);

/* Walks every leaf within limits. Returns 0, or -1 with err set by the limit
 * check (MQ_ERROR_LIMIT, checked before the leaf's content is decoded) or by
 * fn. */
int mq_message_foreach_leaf(struct mq_message *msg,
                            const struct mq_message_limits *limits,
                            mq_message_leaf_fn *fn, void *ctx, GError **err);

/* Replaces leaf index (from the last walk) with a text/plain; charset=utf-8
 * part whose content is text. Returns 0, or -1 with err if the leaf cannot
 * be replaced in place. */
int mq_message_replace_leaf(struct mq_message *msg, unsigned index,
                            const char *text, GError **err);

/* Replaces the whole body of the message by a text/plain; charset=utf-8
 * part whose content is text. */
void mq_message_replace_body(struct mq_message *msg, const char *text);

/* True if the top-level part was replaced, so the message's Content-*
 * headers must change (see mq_message_content_headers()). */
bool mq_message_body_replaced(const struct mq_message *msg);

/* Puts text (UTF-8) at the top of the first text/plain leaf that was not
 * replaced, and whose Content-Type GMime can write again (every parameter
 * name an RFC 2045 token of at most 60 bytes, no value in RFC 2047 encoded
 * words), followed by a blank line.
 * The part's content is decoded from its charset and written back as UTF-8
 * (charset parameter updated, a transfer encoding chosen for 7-bit
 * transport), so any original charset survives. Leaves that are attachments
 * (Content-Disposition: attachment, or a file name) and attached messages
 * are not used. If the leaf is the message's top-level part,
 * mq_message_body_replaced() becomes true: call this before taking
 * mq_message_content_headers().
 * Returns 1 if a part got the notice, 0 if the message has no such part, -1
 * with err if the part could not be rewritten. */
int mq_message_prepend_notice(struct mq_message *msg, const char *text, GError **err);

/* Appends the body of the message (everything after the header block; LF
 * line ends, as sendmail's df file holds it) to out. Returns 0 or -1. */
int mq_message_write_body(struct mq_message *msg, GByteArray *out, GError **err);

/* Returns the top-level part's MIME headers as "Name: value" strings
 * (folded lines joined with "\n\t"), for use when the body was replaced;
 * then, if the message had no MIME-Version header, "MIME-Version: 1.0" comes
 * first. Caller frees with g_ptr_array_unref(). */
GPtrArray *mq_message_content_headers(struct mq_message *msg);

/* Appends len bytes of text in charset (a MIME charset name, or NULL when
 * none was declared) to out as valid UTF-8, as mq_message_prepend_notice()
 * reads a part: a charset iconv knows is used; without one, or with
 * US-ASCII or an unknown name, UTF-8 if the bytes are UTF-8, else
 * Windows-1252. Bytes the charset cannot decode become U+FFFD. Never fails;
 * out grows by at most a few times len. */
void mq_message_append_utf8(GString *out, const char *charset, const char *data, size_t len);

#endif
