/* qf - sendmail queue control files (format version 8): parse, edit, format.
 *
 * Public functions: mq_qf_parse(), mq_qf_free(), mq_qf_sender(),
 * mq_qf_rcpt_count(), mq_qf_rcpt(), mq_qf_ctime(), mq_qf_body_type(),
 * mq_qf_macro(), mq_qf_header_count(), mq_qf_header(), mq_qf_find_header(),
 * mq_qf_remove_headers(), mq_qf_headers_blank_cr(), mq_qf_add_header(),
 * mq_qf_replace_content_headers(),
 * mq_qf_set_recipient(), mq_qf_headers_text(), mq_qf_format().
 *
 * A qf file is a list of records, one per line, the first byte saying what
 * the record is (V version, T creation time, S sender, R recipient, H header,
 * $ macro, "." end, ...); lines that begin with a space or a TAB continue the
 * record before them. The parser keeps every record in order, byte for byte,
 * so that formatting an unedited qf gives back the input, and a record it does
 * not interpret is carried through unchanged. Only qf.c knows the layout.
 *
 * This module does no I/O; see queue.h for files and locks.
 *
 * DIAGNOSTICS
 * mq_qf_parse() returns NULL with MQ_ERROR_CORRUPT (and a reason a
 * postmaster can act on) for anything that is not a complete version 8 qf:
 * no "." end record, NUL bytes, no sender, no recipient, an unknown version,
 * a control character (a continuation line too) in the sender or a
 * recipient.
 * Index arguments out of range panic.
 */
#ifndef MQSCAN_QF_H
#define MQSCAN_QF_H

#include <stddef.h>
#include <time.h>

#include <glib.h>

struct mq_qf;

/* Largest qf accepted (many recipients and long headers fit easily). */
#define MQ_QF_MAX_SIZE (16u * 1024 * 1024)
/* Longest header value mq_qf_add_header() writes, as RFC 5322's line limit. */
#define MQ_QF_HEADER_MAX 998

/* Parses len bytes of buf. Returns a new qf (caller frees with mq_qf_free())
 * or NULL with err set. */
struct mq_qf *mq_qf_parse(const char *buf, size_t len, GError **err);

/* Frees *qf and sets it to NULL. NULL is allowed. */
void mq_qf_free(struct mq_qf **qf);

/* Envelope sender without the angle brackets ("" for the null sender).
 * Borrowed from qf. */
const char *mq_qf_sender(const struct mq_qf *qf);

/* Recipients (R records), in order. mq_qf_rcpt() returns the address
 * without angle brackets and, if flags_r is not NULL, the flag letters before
 * the ':' ("PFD"). Both borrowed from qf. */
size_t mq_qf_rcpt_count(const struct mq_qf *qf);
const char *mq_qf_rcpt(const struct mq_qf *qf, size_t i, const char **flags_r);

/* T record: when the message was queued. */
time_t mq_qf_ctime(const struct mq_qf *qf);
/* B record ("8BITMIME", "7BIT") or NULL. Borrowed. */
const char *mq_qf_body_type(const struct mq_qf *qf);
/* Value of macro name ("_" is the client, "r" the protocol, "{daemon_flags}"
 * a long one) or NULL. Borrowed. */
const char *mq_qf_macro(const struct mq_qf *qf, const char *name);

/* Headers (H records) in order. mq_qf_header() gives the name and the value
 * (continuation lines joined by "\n\t" as stored; leading blanks after the
 * colon kept; sendmail's quoting of 8-bit bytes kept, see
 * mq_qf_headers_text()) with sendmail's "?flags?" prefix removed. Borrowed. */
size_t mq_qf_header_count(const struct mq_qf *qf);
void mq_qf_header(const struct mq_qf *qf, size_t i, const char **name_r, const char **value_r);
/* Value of the first header called name (any case), or NULL. Borrowed. */
const char *mq_qf_find_header(const struct mq_qf *qf, const char *name);

/* Removes every header whose name starts with prefix (any case), e.g.
 * "X-mqscan" so that nobody outside can pre-stamp a message. Returns how
 * many were removed. */
size_t mq_qf_remove_headers(struct mq_qf *qf, const char *prefix);

/* Replaces every CR in the header records by a blank. sendmail ends header
 * lines with LF alone, so a CR is the sender's, and a reader that takes a
 * bare CR for the end of a line would see the rest as a header of its own
 * ("Subject: hi\rBcc: ..."). Returns how many were replaced. */
size_t mq_qf_headers_blank_cr(struct mq_qf *qf);

/* Appends a header after the existing ones. name must be a valid field name
 * (panics otherwise: names are ours, never the attacker's). value may carry
 * untrusted text: control characters (CR and LF included), bytes 0x80 and
 * above (sendmail's macro bytes) are replaced by '?', and it is cut to
 * MQ_QF_HEADER_MAX bytes. */
void mq_qf_add_header(struct mq_qf *qf, const char *name, const char *value);

/* Replaces the top-level MIME headers (Content-*, MIME-Version is kept) by
 * headers, an array of "Name: value" strings (from a rebuilt body), cleaned
 * as by mq_qf_add_header() except that folded lines ("\n\t" followed by
 * anything but a blank, as mq_message_content_headers() gives them) stay
 * folded and
 * 8-bit bytes stay, quoted as sendmail quotes them (mq_qf_headers_text()
 * gives them back as they were). */
void mq_qf_replace_content_headers(struct mq_qf *qf, GPtrArray *headers);

/* Replaces the envelope recipients by the single address addr (without
 * angle brackets): every R record goes, with the DSN records that belong to
 * the recipients (Q: ORCPT, r: final recipient), and one "RPFD:<addr>"
 * record (primary address, DSN on failure and delay: what sendmail writes
 * for a recipient given without NOTIFY) takes the place of the first.
 * Headers are not touched. addr must be non-empty printable ASCII without
 * spaces, '<', '>' or '"' (panics otherwise: callers validate it). */
void mq_qf_set_recipient(struct mq_qf *qf, const char *addr);

/* Removes envelope recipient i (0 <= i < mq_qf_rcpt_count()) with the DSN
 * records (Q, r) written just before it; the indexes of later recipients
 * shift down by one. */
void mq_qf_remove_rcpt(struct mq_qf *qf, size_t i);

/* Puts prefix and a blank in front of the value of the first header named
 * name (any case); adds the header with the prefix alone if there is none.
 * Bytes of prefix outside printable ASCII become '?'. */
void mq_qf_prefix_header(struct mq_qf *qf, const char *name, const char *prefix);

/* Appends the message's header block as a mail reader would see it (no
 * "?flags?", continuation lines kept, LF line ends, no trailing blank line) to
 * out. Bytes sendmail quoted in the qf (0x80 to 0x9f and 0xff, each after a
 * 0xff byte) are given as the sender wrote them. Headers still holding
 * sendmail macros (an unquoted 0x81, as in Return-Path) are left out: they
 * are filled in at delivery. */
void mq_qf_headers_text(const struct mq_qf *qf, GString *out);

enum mq_qf_format_flags {
    /* For a new queue entry: delivery attempts and last-attempt time reset
     * (N0, K0), and records that tie the qf to the old df file (I: inode,
     * d: data file directory) dropped. */
    MQ_QF_FORMAT_NEW_ENTRY = 1 << 0,
};

/* Appends the qf, with edits, to out. */
void mq_qf_format(const struct mq_qf *qf, unsigned flags, GString *out);

#endif
