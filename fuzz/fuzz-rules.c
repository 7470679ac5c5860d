/* fuzz-rules - attachment names, their decoding, and the filename and
 * filetype rules (mqscan/rules.h), with the shipped rule files.
 *
 * The input is one attachment: the first line is the parameter list of its
 * Content-Disposition header (filename="..." in any RFC 2047 or RFC 2231
 * spelling), the rest is its content, sent as binary. The part is parsed
 * and walked as mqscand does (GMime decodes the name, message.c makes it
 * UTF-8), then:
 *  - the decoded name and the content go through mq_rules_check(), so also
 *    libmagic and, for an archive, the member listing; a denial's texts
 *    must be fit to show (valid UTF-8, no control or bidi characters,
 *    capped);
 *  - the name is sanitized as process.c logs it, with the same checks, and
 *    goes (unsanitized: the templates clean every value themselves) into
 *    the shipped English texts for a removed part and the notice: no line
 *    of them may then hold a control or bidi character;
 *  - the raw first line also goes to mq_rules_check() as a name, alone and
 *    with a short name limit, so that cutting names at arbitrary bytes is
 *    exercised.
 * Whatever does not hold panics.
 *
 * The rule files and templates are those of FUZZ_CONF_DIR, or of the
 * directory in the environment variable MQ_FUZZ_CONF_DIR.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/message.h"
#include "mqscan/rules.h"
#include "mqscan/template.h"

#include "fuzz.h"

#ifndef FUZZ_CONF_DIR
#define FUZZ_CONF_DIR "conf"
#endif

/* As process.c checks a leaf, and caps names it logs. */
#define FUZZ_MAX_MEMBERS 10000
#define FUZZ_MAX_NAME 1024
#define FUZZ_NAME_MAX 200
/* Caps of a struct mq_rules_match (rules.c). */
#define FUZZ_SUBJECT_MAX MQ_LOG_FIELD_MAX
#define FUZZ_TEXT_MAX 500

#define FUZZ_HEADERS "MIME-Version: 1.0\nContent-Type: application/octet-stream\n" \
    "Content-Transfer-Encoding: binary\nContent-Disposition: attachment; "

static struct mq_rules *fuzz_rules;
static struct mq_templates *fuzz_templates;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("MQ_FUZZ_CONF_DIR");
    char *names, *types;
    GError *error = NULL;

    fuzz_init();
    if (dir == NULL || *dir == '\0')
        dir = FUZZ_CONF_DIR;
    names = g_build_filename(dir, "filename.rules", NULL);
    types = g_build_filename(dir, "filetype.rules", NULL);
    fuzz_rules = mq_rules_load(names, types, &error);
    if (fuzz_rules == NULL)
        mq_log_panic("cannot load the rules: %s", error->message);
    g_free(names);
    g_free(types);
    names = g_build_filename(dir, "templates", NULL);
    fuzz_templates = mq_templates_load(names, "en", &error);
    if (fuzz_templates == NULL)
        mq_log_panic("cannot load the templates: %s", error->message);
    g_free(names);
    return 0;
}

/* A template rendered with name as an untrusted value: each line must be
 * fit to show. */
static void
fuzz_render(enum mq_template_kind kind, const char *var, const char *name)
{
    const char *const vars[] = { var, name, "hostname", "mx.example.org", NULL };
    char *text = mq_templates_render(fuzz_templates, kind, vars);
    char **lines = g_strsplit(text, "\n", -1);

    for (char **line = lines; *line != NULL; line++)
        fuzz_check_shown("template line", *line, strlen(*line));
    g_strfreev(lines);
    g_free(text);
}

static void
fuzz_check(const char *name, const void *data, size_t len, size_t max_name)
{
    const struct mq_rules_limits limits = { FUZZ_MAX_MEMBERS, max_name };
    struct mq_rules_match match;
    GError *error = NULL;
    int rc;

    rc = mq_rules_check(fuzz_rules, &limits, name, data, len, &match, &error);
    if (rc < 0)
        mq_log_panic("mq_rules_check: %s", error->message);
    if (rc == 1) {
        fuzz_check_shown("match subject", match.subject, FUZZ_SUBJECT_MAX);
        fuzz_check_shown("match log text", match.log_text, FUZZ_TEXT_MAX);
        fuzz_check_shown("match user text", match.user_text, FUZZ_TEXT_MAX);
        mq_rules_match_clear(&match);
    } else if (match.subject != NULL || match.log_text != NULL || match.user_text != NULL) {
        mq_log_panic("mq_rules_check allowed, but filled the match");
    }
}

static int
fuzz_leaf(const struct mq_message_leaf *leaf, const void *data, size_t len, void *ctx,
          GError **err)
{
    if (leaf->filename != NULL) {
        char *shown = mq_log_sanitize(leaf->filename, FUZZ_NAME_MAX);

        fuzz_check_shown("file name", shown, FUZZ_NAME_MAX);
        g_free(shown);
        fuzz_render(MQ_TEMPLATE_PART_REMOVED, "filename", leaf->filename);
        fuzz_render(MQ_TEMPLATE_NOTICE, "removed", leaf->filename);
    }
    fuzz_check(leaf->filename, data, len, FUZZ_MAX_NAME);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct mq_message_limits limits = { 20, 1000 };
    const char *buf = (const char *)data;
    const char *nl = memchr(buf, '\n', size);
    size_t params_len = nl != NULL ? (size_t)(nl - buf) : size;
    const char *content = nl != NULL ? nl + 1 : buf + size;
    size_t content_len = size - (size_t)(content - buf);
    GString *headers;
    char *raw_name;
    struct mq_message *msg;
    GError *error = NULL;

    headers = g_string_new(FUZZ_HEADERS);
    g_string_append_len(headers, buf, (gssize)params_len);
    msg = mq_message_parse(headers->str, headers->len, content, content_len, &limits, &error);
    if (msg == NULL) {
        g_clear_error(&error);
    } else {
        if (mq_message_foreach_leaf(msg, &limits, fuzz_leaf, NULL, &error) < 0)
            g_clear_error(&error);
        mq_message_free(&msg);
    }
    g_string_free(headers, TRUE);

    /* The line as a name (up to its first NUL), without content. */
    raw_name = g_strndup(buf, params_len);
    fuzz_check(raw_name, NULL, 0, 16);
    g_free(raw_name);
    return 0;
}
