/* tokenize - the words of one mail message, as the token classifier
 * (bayes.h) counts them.
 *
 * Public functions: mq_tokenize_parse(), mq_tokenize(), mq_tokenize_part_text().
 *
 * What becomes a token (all lower case, valid UTF-8, deduplicated, in the
 * order first seen):
 *   - the words of every text/plain and text/html part, transfer encoding
 *     undone and converted to UTF-8 from the part's charset (bare words:
 *     "viagra", "$500", "unsubscribe"); HTML loses its tags, but each tag
 *     name gives "html:TAG", each attribute "html:TAG:ATTR", and comments,
 *     hidden text and script give "html:comment", "html:hidden", "html:script";
 *   - the host of every URL, in text or in an href/src attribute, with its
 *     parent domains: "url:www.example.com", "url:example.com"; "url:ip" for
 *     a numeric host and "url:badhost" for one that is not a host name;
 *   - header values, prefixed with the lower-case header name:
 *     "subject:free", "from:example.com", "from:name:john", "to:count:2-5",
 *     "reply-to:differs", "content-type:multipart/alternative",
 *     "charset:koi8-r", "x-mailer:outlook", "received:mail.example.net",
 *     "received:ip:192.0.2", "message-id:example.com", and the words of most
 *     other headers ("precedence:bulk"); "header:NAME" for each header
 *     present;
 *   - for every non-text part "part:TYPE/SUBTYPE", and "part:ext:EXT" for a
 *     file name extension; "parts:N" (bucketed) for the number of parts.
 * Words shorter than MQ_TOKENIZE_WORD_MIN characters, numbers, and words
 * with digits longer than 12 characters (identifiers, hashes) are skipped;
 * a word longer than MQ_TOKENIZE_WORD_MAX characters becomes "long:" and
 * its first 7 characters.
 *
 * Ignored: every header that can carry an earlier filter's verdict, so that
 * the classifier never learns a verdict instead of the mail: X-Spam-*,
 * X-mqscan*, X-Virus-*, Received-SPF, Authentication-Results, ARC-*, and
 * the headers of other filters (see tokenize.c), and DKIM signatures.
 *
 * Bounds (every byte is the sender's): at most MQ_TOKENIZE_TEXT_MAX decoded
 * bytes of each text part and MQ_TOKENIZE_TEXT_PARTS text parts, at most
 * MQ_TOKENIZE_HEADER_MAX bytes of each header value and MQ_TOKENIZE_HEADERS
 * headers, MQ_TOKENIZE_DEPTH levels of MIME nesting and MQ_TOKENIZE_PARTS
 * parts, and MQ_TOKENIZE_TOKENS_MAX tokens in all; what lies beyond is not
 * looked at. Invalid charsets and bytes are made valid, never refused.
 *
 * Thread safety: GMime objects are not; one message is tokenized by one
 * thread at a time. Different messages may be tokenized at once.
 *
 * DIAGNOSTICS
 * mq_tokenize() cannot fail. mq_tokenize_parse() returns NULL with
 * MQ_ERROR_LIMIT for input over MQ_TOKENIZE_MESSAGE_MAX bytes and
 * MQ_ERROR_CORRUPT when GMime makes no message of it.
 */
#ifndef MQSCAN_TOKENIZE_H
#define MQSCAN_TOKENIZE_H

#include <stddef.h>

#include <glib.h>

/* GMime's message type, declared here so that callers need not include
 * GMime: the daemon already holds the parsed message, and tokenizing it
 * again from bytes would parse it twice. */
typedef struct _GMimeMessage GMimeMessage;

#define MQ_TOKENIZE_TEXT_MAX (64u * 1024)       /* decoded bytes per text part */
#define MQ_TOKENIZE_TEXT_PARTS 16               /* text parts read */
#define MQ_TOKENIZE_TOKENS_MAX 5000             /* tokens per message */
#define MQ_TOKENIZE_HEADER_MAX 2048             /* bytes per header value */
#define MQ_TOKENIZE_HEADERS 200                 /* headers looked at */
#define MQ_TOKENIZE_DEPTH 20                    /* MIME nesting */
#define MQ_TOKENIZE_PARTS 200                   /* MIME parts looked at */
#define MQ_TOKENIZE_WORD_MIN 3                  /* characters */
#define MQ_TOKENIZE_WORD_MAX 24                 /* characters */
#define MQ_TOKENIZE_TOKEN_BYTES 128             /* longest token, prefix included */
/* Largest message mq_tokenize_parse() accepts. */
#define MQ_TOKENIZE_MESSAGE_MAX (64u * 1024 * 1024)

/* Parses len bytes of an RFC 5322 message (LF or CRLF line ends; an mbox
 * "From " line first is allowed). Returns a new message (caller frees with
 * g_object_unref()) or NULL with err set. */
GMimeMessage *mq_tokenize_parse(const char *data, size_t len, GError **err);

/* The tokens of msg (see above), unique, in the order first seen. Returns
 * an array of UTF-8 strings (caller unrefs; the array frees them), at most
 * MQ_TOKENIZE_TOKENS_MAX long. msg is only read. */
GPtrArray *mq_tokenize(GMimeMessage *msg);

/* Appends the text of a text part to out as UTF-8: transfer encoding undone
 * through a decoding filter that stops after max decoded bytes (a huge part
 * costs no more than that), then the part's charset converted with
 * mq_message_append_utf8(). The spam heuristics read parts the same way. */
typedef struct _GMimePart GMimePart;
void mq_tokenize_part_text(GMimePart *part, size_t max, GString *out);

#endif
