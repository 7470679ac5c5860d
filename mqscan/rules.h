/* rules - attachment filename and filetype rules.
 *
 * Public functions: mq_rules_load(), mq_rules_free(), mq_rules_check(),
 * mq_rules_match_clear().
 *
 * Two plain rule files, one rule a line, fields separated by one or more TABs:
 *     allow|deny  PATTERN  LOG-TEXT  USER-TEXT
 * Blank lines and lines starting with '#' are ignored. PATTERN is a
 * case-insensitive PCRE (GLib GRegex). Rules are tried in file order and the
 * first match wins; a name or type that no rule matches is allowed.
 * Filename rules match the attachment's decoded file name (RFC 2047 and 2231
 * decoded to UTF-8 by the caller). Filetype rules match what libmagic says
 * about the content: the MIME type ("application/x-dosexec") and the
 * description ("PE32 executable (GUI) Intel 80386 ..."), a rule matching
 * either. libmagic's tests for kinds of text (scripts, source, markup) run
 * only when a type rule could match what they find, as decided at load
 * time; otherwise text is "data" ("application/octet-stream"), which then
 * no rule matches. When the content is an archive that lists its members (zip, and
 * whatever else libarchive reads: tar, 7z, rar, cab, ...) every member's name
 * goes through the filename rules and the start of every member's content
 * through the filetype rules too, within limits.
 *
 * Names are data only: nothing here opens a file by a name from a message.
 * libmagic handles are per thread (libmagic is not thread-safe); a
 * struct mq_rules is read-only after loading and shared by the workers.
 *
 * DIAGNOSTICS
 * mq_rules_load() returns NULL with MQ_ERROR_CONFIG and "FILE:LINE: ..." for
 * a rule that does not parse (bad action, bad regex, missing fields).
 * mq_rules_check() fails only when libmagic cannot start (MQ_ERROR_ENGINE);
 * an archive that does not open is simply not listed.
 */
#ifndef MQSCAN_RULES_H
#define MQSCAN_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

struct mq_rules;

struct mq_rules_limits {
    unsigned max_members;       /* archive members looked at, at most */
    size_t max_name;            /* longer names are cut before matching */
};

struct mq_rules_match {
    bool in_archive;            /* the match was on an archive member */
    char *subject;              /* what matched, sanitized: the name, or
                                   "type: <libmagic description>" */
    char *log_text;             /* the rule's log text */
    char *user_text;            /* the rule's text for the recipient */
};

/* Loads both files (either path may be NULL for "no rules of that kind").
 * Returns a new rule set (caller frees with mq_rules_free()) or NULL. */
struct mq_rules *mq_rules_load(const char *filename_rules, const char *filetype_rules,
                               GError **err);
void mq_rules_free(struct mq_rules **rules);

/* Number of rules loaded (both files). */
size_t mq_rules_count(const struct mq_rules *rules);

/* Checks one attachment. filename may be NULL. Returns 1 if denied (match_r
 * filled; clear it with mq_rules_match_clear()), 0 if allowed, -1 with err
 * if it could not be checked. Thread-safe. */
int mq_rules_check(const struct mq_rules *rules, const struct mq_rules_limits *limits,
                   const char *filename, const void *data, size_t len,
                   struct mq_rules_match *match_r, GError **err);
void mq_rules_match_clear(struct mq_rules_match *match);

#endif
