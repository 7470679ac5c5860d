/* test-template - mqscan/template.c: the shipped texts, value sanitizing,
 * load-time errors, and rendering from several threads at once.
 *
 * The shipped templates are read from MQ_SRCDIR/../conf/templates, bad ones
 * from tests/data/templates; templates that are awkward to keep as files
 * (oversize, NUL bytes, CRLF) are written to a temporary directory.
 */
#include <config.h>

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/template.h"

#include "testutil.h"

/* ---- helpers ------------------------------------------------------------ */

static char *
shipped_dir(void)
{
    const char *srcdir = g_getenv("MQ_SRCDIR");

    return g_build_filename(srcdir != NULL && *srcdir != '\0' ? srcdir : ".",
                            "..", "conf", "templates", NULL);
}

static struct mq_templates *
load_ok(const char *dir, const char *language)
{
    GError *err = NULL;
    struct mq_templates *t = mq_templates_load(dir, language, &err);

    g_assert_no_error(err);
    g_assert_nonnull(t);
    return t;
}

/* A temporary template set: DIR/en/ with the three files' texts. */
static char *
make_dir(const char *part_removed, const char *body_removed, const char *notice)
{
    GError *err = NULL;
    char *dir = g_dir_make_tmp("mqscan-template-XXXXXX", &err);
    char *lang;
    const char *names[] = { "part-removed.txt", "body-removed.txt", "notice.txt",
                            "postmaster-report.txt", "sender-notice.txt",
                            "spam-rejected.txt" };
    const char *texts[] = { part_removed, body_removed, notice,
                            "Subject: ${count} blocked\n${entries}\n",
                            "Subject: ${subject}\n${findings}\n",
                            "Subject: ${subject}\n${findings}\n" };

    g_assert_no_error(err);
    lang = g_build_filename(dir, "en", NULL);
    g_assert_cmpint(g_mkdir(lang, 0700), ==, 0);
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        char *path = g_build_filename(lang, names[i], NULL);

        if (texts[i] != NULL) {
            g_assert_true(g_file_set_contents(path, texts[i], -1, &err));
            g_assert_no_error(err);
        }
        g_free(path);
    }
    g_free(lang);
    return dir;
}

/* Writes len bytes as DIR/en/NAME. */
static void
put_file(const char *dir, const char *name, const char *data, gssize len)
{
    char *path = g_build_filename(dir, "en", name, NULL);
    GError *err = NULL;

    g_assert_true(g_file_set_contents(path, data, len, &err));
    g_assert_no_error(err);
    g_free(path);
}

/* ---- the shipped templates ---------------------------------------------- */

static const char *const all_vars[] = {
    "filename", "invoice.pdf.exe",
    "reason", "contained a virus",
    "virus", "Eicar-Test-Signature",
    "queue_id", "6AO3UQJ2003494",
    "date", "Tue, 24 Nov 2026 10:00:00 +0100",
    "hostname", "mx1.example.org",
    "postmaster", "postmaster@example.org",
    "removed", "  - invoice.pdf.exe: contained a virus (Eicar-Test-Signature)\n"
               "  - run.bat: executable files are not allowed",
    NULL,
};

/* What each kind must show of all_vars. */
static const struct {
    enum mq_template_kind kind;
    const char *names[9];
} shipped_cases[] = {
    { MQ_TEMPLATE_PART_REMOVED,
      { "filename", "reason", "virus", "queue_id", "date", "hostname", "postmaster", NULL } },
    { MQ_TEMPLATE_BODY_REMOVED,
      { "reason", "virus", "queue_id", "date", "hostname", "postmaster", NULL } },
    { MQ_TEMPLATE_NOTICE,
      { "removed", "hostname", "postmaster", "queue_id", NULL } },
};

static const char *
var_value(const char *name)
{
    for (int i = 0; all_vars[i] != NULL; i += 2)
        if (strcmp(all_vars[i], name) == 0)
            return all_vars[i + 1];
    g_assert_not_reached();
}

static void
test_shipped(void)
{
    static const struct {
        const char *language;
        const char *word;        /* a word of that language in every text */
    } languages[] = {
        { "en", "removed" },
        { "fr", "retir\xc3\xa9" },
    };
    char *dir = shipped_dir();

    for (gsize l = 0; l < G_N_ELEMENTS(languages); l++) {
        struct mq_templates *t = load_ok(dir, languages[l].language);

        for (gsize c = 0; c < G_N_ELEMENTS(shipped_cases); c++) {
            char *out = mq_templates_render(t, shipped_cases[c].kind, all_vars);

            g_test_message("%s kind %d:\n%s", languages[l].language,
                           (int)shipped_cases[c].kind, out);
            g_assert_true(g_utf8_validate(out, -1, NULL));
            g_assert_null(strstr(out, "${"));
            g_assert_null(strchr(out, '\r'));
            g_assert_nonnull(strstr(out, languages[l].word));
            for (int n = 0; shipped_cases[c].names[n] != NULL; n++) {
                const char *want = var_value(shipped_cases[c].names[n]);

                if (strstr(out, want) == NULL)
                    g_error("%s/%d: ${%s} (\"%s\") not in the text", languages[l].language,
                            (int)shipped_cases[c].kind, shipped_cases[c].names[n], want);
            }
            /* Texts for people: reasonably short lines, ending in a newline. */
            g_assert_true(g_str_has_suffix(out, "\n"));
            g_free(out);

            /* Nothing given: every variable renders empty. */
            out = mq_templates_render(t, shipped_cases[c].kind, NULL);
            g_assert_null(strstr(out, "${"));
            g_assert_null(strstr(out, "example.org"));
            g_free(out);
        }
        mq_templates_free(&t);
        g_assert_null(t);
    }
    g_free(dir);
}

/* ---- untrusted values ----------------------------------------------------- */

/* Rendered through "<${filename}>" (LF not allowed) or "<${removed}>". */
static const struct {
    const char *what;
    bool removed;
    const char *value;
    const char *want;
} value_cases[] = {
    { "plain", false, "report.pdf", "report.pdf" },
    { "UTF-8 kept", false, "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln.pdf", "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln.pdf" },
    { "no-break space kept", false, "a\xc2\xa0" "b", "a\xc2\xa0" "b" },
    { "CR and LF", false, "a\rb\nc", "a?b?c" },
    { "header injection", false, "x.exe\r\nBcc: victim@example.org", "x.exe??Bcc: victim@example.org" },
    { "C0 controls and DEL", false, "\x01\x1b[31m\x7f\x1f", "??[31m??" },
    { "tab", false, "a\tb", "a?b" },
    { "C1 controls", false, "\xc2\x85" "x\xc2\x9b" "1m", "?x?1m" },
    { "line and paragraph separators", false, "a\xe2\x80\xa8" "b\xe2\x80\xa9", "a?b?" },
    { "right-to-left override", false, "invoice\xe2\x80\xae" "fdp.exe", "invoice?fdp.exe" },
    { "bidi isolates and marks", false, "\xe2\x81\xa6" "a\xe2\x81\xa9\xe2\x80\x8f", "?a??" },
    { "invalid UTF-8", false, "caf\xe9", "caf\xef\xbf\xbd" },
    { "truncated sequence", false, "ab\xe2\x82", "ab\xef\xbf\xbd\xef\xbf\xbd" },  /* one per byte */
    { "variable in a value", false, "${filename}${removed}$", "${filename}${removed}$" },
    { "removed: LF kept", true, "  - a.exe: blocked\n  - b.bat: blocked", "  - a.exe: blocked\n  - b.bat: blocked" },
    { "removed: trailing LF dropped", true, "  - a.exe: blocked\n\n", "  - a.exe: blocked" },
    { "removed: CR still replaced", true, "  - a.exe\r\n  - b", "  - a.exe?\n  - b" },
    { "removed: other controls replaced", true, "\x1b]0;x\x07\n", "?]0;x?" },
    { "removed: variable in a value", true, "${removed}", "${removed}" },
    { "empty", false, "", "" },
};

static struct mq_templates *
bracket_templates(char **dir_r)
{
    *dir_r = make_dir("<${filename}>", "<${reason}>", "<${removed}>");
    return load_ok(*dir_r, "en");
}

static void
test_values(void)
{
    char *dir;
    struct mq_templates *t = bracket_templates(&dir);

    for (gsize c = 0; c < G_N_ELEMENTS(value_cases); c++) {
        const char *vars[] = { value_cases[c].removed ? "removed" : "filename",
                               value_cases[c].value, NULL };
        char *want = g_strdup_printf("<%s>", value_cases[c].want);
        char *out = mq_templates_render(t, value_cases[c].removed ? MQ_TEMPLATE_NOTICE
                                                                  : MQ_TEMPLATE_PART_REMOVED,
                                        vars);

        g_test_message("value case: %s", value_cases[c].what);
        g_assert_cmpstr(out, ==, want);
        g_assert_true(g_utf8_validate(out, -1, NULL));
        g_free(out);
        g_free(want);
    }
    mq_templates_free(&t);
    test_remove_tree(dir);
    g_free(dir);
}

/* Long values are cut to 1000 bytes, never inside a character. */
static const struct {
    const char *what;
    const char *unit;           /* repeated */
    const char *prefix;
    size_t want_len;            /* of the rendered value */
} long_cases[] = {
    { "ASCII", "a", "", 1000 },
    { "two-byte characters at an odd offset", "\xc3\xa9", "x", 999 },
    { "three-byte characters", "\xe2\x82\xac", "", 999 },
    { "four-byte characters at offset 2", "\xf0\x9f\x98\x80", "ab", 998 },
    { "invalid bytes (3 bytes each once repaired)", "\xff", "", 999 },
    { "line feeds", "\n", "", 1000 },
    { "C1 controls (2 bytes in, 1 out)", "\xc2\x85", "", 1000 },
};

static void
test_long_values(void)
{
    char *dir;
    struct mq_templates *t = bracket_templates(&dir);

    for (gsize c = 0; c < G_N_ELEMENTS(long_cases); c++) {
        GString *value = g_string_new(long_cases[c].prefix);
        const char *vars[] = { "filename", NULL, NULL };
        char *out;
        size_t len;

        while (value->len < 5000)
            g_string_append(value, long_cases[c].unit);
        vars[1] = value->str;
        out = mq_templates_render(t, MQ_TEMPLATE_PART_REMOVED, vars);
        g_test_message("long value: %s", long_cases[c].what);
        len = strlen(out);
        g_assert_cmpuint(len, ==, long_cases[c].want_len + 2);
        g_assert_true(out[0] == '<' && out[len - 1] == '>');
        g_assert_true(g_utf8_validate(out, -1, NULL));
        g_assert_true(g_str_has_prefix(out + 1, long_cases[c].prefix));
        g_free(out);
        g_string_free(value, TRUE);
    }
    mq_templates_free(&t);
    test_remove_tree(dir);
    g_free(dir);
}

/* How the vars list is read: names not known are ignored, the first value
 * of a name wins, a variable not given is empty, and each variable may be
 * used many times. */
static void
test_vars_list(void)
{
    static const char *const vars[] = {
        "subject", "ignored", "filename", "first", "filename", "second", NULL,
    };
    static const char *const stop[] = { "filename", NULL, "reason", "r", NULL };
    char *dir = make_dir("${filename}|${reason}|${filename}", "${reason}${reason}", "");
    struct mq_templates *t = load_ok(dir, "en");
    char *out;

    out = mq_templates_render(t, MQ_TEMPLATE_PART_REMOVED, vars);
    g_assert_cmpstr(out, ==, "first||first");
    g_free(out);
    out = mq_templates_render(t, MQ_TEMPLATE_PART_REMOVED, stop);
    g_assert_cmpstr(out, ==, "||");
    g_free(out);
    out = mq_templates_render(t, MQ_TEMPLATE_BODY_REMOVED, (const char *const[]){ "reason", "r", NULL });
    g_assert_cmpstr(out, ==, "rr");
    g_free(out);
    /* An empty file is an empty text. */
    out = mq_templates_render(t, MQ_TEMPLATE_NOTICE, vars);
    g_assert_cmpstr(out, ==, "");
    g_free(out);

    mq_templates_free(&t);
    mq_templates_free(&t);      /* NULL is allowed */
    mq_templates_free(NULL);
    test_remove_tree(dir);
    g_free(dir);
}

/* "$" not followed by "{" is text; "$${x}" is "$" and a variable. */
static void
test_literal_dollar(void)
{
    static const char *const vars[] = {
        "filename", "F", "virus", "V", "date", "D", "reason", "R", NULL,
    };
    char *dir = test_data_path("templates/literal");
    struct mq_templates *t = load_ok(dir, "en");
    char *out = mq_templates_render(t, MQ_TEMPLATE_PART_REMOVED, vars);

    g_assert_cmpstr(out, ==, "Cost: $5, $$, US$ and $ {x}; F$ {reason} $\nV$D\n");
    g_free(out);
    mq_templates_free(&t);
    g_free(dir);
}

/* ---- load errors ---------------------------------------------------------- */

static const struct {
    const char *fixture;        /* under tests/data/templates */
    const char *language;
    const char *where;          /* "file:line" (or just the file) in the message */
    const char *what;           /* and this */
} bad_cases[] = {
    { "unknown-var", "en", "/en/notice.txt:3: ", "unknown variable ${queue_ID}" },
    { "unterminated", "en", "/en/body-removed.txt:2: ", "unterminated \"${\"" },
    { "bad-utf8", "en", "/en/part-removed.txt:4: ", "not valid UTF-8" },
    { "missing", "en", "/en/notice.txt: ", "cannot open template: No such file or directory" },
    { "literal", "de", "/de/part-removed.txt: ", "cannot open" },
    { "literal", "../literal/en", "", "not a plain directory name" },
    { "literal", "", "", "not a plain directory name" },
    { "literal", "en/", "", "not a plain directory name" },
};

static void
test_bad_fixtures(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(bad_cases); c++) {
        char *rel = g_build_filename("templates", bad_cases[c].fixture, NULL);
        char *dir = test_data_path(rel);
        GError *err = NULL;
        struct mq_templates *t = mq_templates_load(dir, bad_cases[c].language, &err);

        g_assert_null(t);
        g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
        g_test_message("%s/%s: %s", bad_cases[c].fixture, bad_cases[c].language, err->message);
        if (*bad_cases[c].where != '\0') {
            /* The whole path, so the operator knows which file. */
            g_assert_true(g_str_has_prefix(err->message, dir));
            g_assert_nonnull(strstr(err->message, bad_cases[c].where));
        }
        g_assert_nonnull(strstr(err->message, bad_cases[c].what));
        g_clear_error(&err);
        g_free(dir);
        g_free(rel);
    }
}

/* Templates made at run time: sizes around the limit, NUL, a directory, a
 * FIFO, a variable name split across lines, CRLF and a byte-order mark. */
static void
test_generated(void)
{
    char *dir = make_dir("part\n", "body\n", "notice\n");
    GError *err = NULL;
    struct mq_templates *t;
    char *big = g_malloc(64 * 1024 + 1), *out, *path;

    /* Exactly 64 KB loads; one byte more does not. */
    memset(big, 'x', 64 * 1024 + 1);
    put_file(dir, "notice.txt", big, 64 * 1024);
    t = load_ok(dir, "en");
    out = mq_templates_render(t, MQ_TEMPLATE_NOTICE, NULL);
    g_assert_cmpuint(strlen(out), ==, 64 * 1024);
    g_free(out);
    mq_templates_free(&t);
    put_file(dir, "notice.txt", big, 64 * 1024 + 1);
    g_assert_null(mq_templates_load(dir, "en", &err));
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
    g_assert_nonnull(strstr(err->message, "notice.txt: template is 65537 bytes, more than the limit"));
    g_clear_error(&err);
    put_file(dir, "notice.txt", "ok\n", -1);

    /* A NUL byte, with its line. */
    put_file(dir, "body-removed.txt", "one\ntwo\0three\n", 14);
    g_assert_null(mq_templates_load(dir, "en", &err));
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
    g_assert_nonnull(strstr(err->message, "body-removed.txt:2: template contains a NUL byte"));
    g_clear_error(&err);

    /* A variable name does not go on past the end of its line. */
    put_file(dir, "body-removed.txt", "on ${host\nname}\n", -1);
    g_assert_null(mq_templates_load(dir, "en", &err));
    g_assert_nonnull(strstr(err->message, "body-removed.txt:1: unterminated"));
    g_clear_error(&err);
    put_file(dir, "body-removed.txt", "${}\n", -1);
    g_assert_null(mq_templates_load(dir, "en", &err));
    g_assert_nonnull(strstr(err->message, "body-removed.txt:1: unknown variable ${}"));
    g_clear_error(&err);
    put_file(dir, "body-removed.txt", "a\n\nb $", -1);
    t = load_ok(dir, "en");
    out = mq_templates_render(t, MQ_TEMPLATE_BODY_REMOVED, NULL);
    g_assert_cmpstr(out, ==, "a\n\nb $");
    g_free(out);
    mq_templates_free(&t);

    /* A directory, then a FIFO, where a file should be. */
    path = g_build_filename(dir, "en", "body-removed.txt", NULL);
    g_assert_cmpint(g_unlink(path), ==, 0);
    g_assert_cmpint(g_mkdir(path, 0700), ==, 0);
    g_assert_null(mq_templates_load(dir, "en", &err));
    g_assert_nonnull(strstr(err->message, "body-removed.txt: template is not a regular file"));
    g_clear_error(&err);
    g_assert_cmpint(g_rmdir(path), ==, 0);
    g_assert_cmpint(mkfifo(path, 0600), ==, 0);
    g_assert_null(mq_templates_load(dir, "en", &err));
    g_assert_nonnull(strstr(err->message, "body-removed.txt: template is not a regular file"));
    g_clear_error(&err);
    g_assert_cmpint(g_unlink(path), ==, 0);
    g_free(path);

    /* Written on Windows: the BOM goes, CRLF becomes LF. */
    put_file(dir, "body-removed.txt", "\xef\xbb\xbfRemoved on ${hostname}.\r\n\r\nBye\r\n", -1);
    t = load_ok(dir, "en");
    out = mq_templates_render(t, MQ_TEMPLATE_BODY_REMOVED,
                              (const char *const[]){ "hostname", "mx", NULL });
    g_assert_cmpstr(out, ==, "Removed on mx.\n\nBye\n");
    g_free(out);
    mq_templates_free(&t);

    g_free(big);
    test_remove_tree(dir);
    g_free(dir);
}

/* ---- threads -------------------------------------------------------------- */

#define N_THREADS 8
#define N_RENDERS 2000

struct render_job {
    const struct mq_templates *t;
    unsigned id;
    unsigned failures;
};

static gpointer
render_thread(gpointer data)
{
    struct render_job *job = data;

    for (unsigned i = 0; i < N_RENDERS; i++) {
        char *name = g_strdup_printf("file-%u-%u.exe\r\n", job->id, i);
        char *qid = g_strdup_printf("Q%uN%u", job->id, i);
        const char *vars[] = { "filename", name, "queue_id", qid, "removed", "  - x\n  - y\n",
                               "hostname", "mx\xff", NULL };
        /* the three message-part kinds; the mail kinds have their own texts */
        enum mq_template_kind kind = (enum mq_template_kind)(i % 3);
        char *out = mq_templates_render(job->t, kind, vars);
        char *want;

        switch (kind) {
        case MQ_TEMPLATE_PART_REMOVED:
            want = g_strdup_printf("[file-%u-%u.exe??|Q%uN%u]", job->id, i, job->id, i);
            break;
        case MQ_TEMPLATE_BODY_REMOVED:
            want = g_strdup_printf("[mx\xef\xbf\xbd|Q%uN%u]", job->id, i);
            break;
        default:
            want = g_strdup("[  - x\n  - y]");
            break;
        }
        if (strcmp(out, want) != 0)
            job->failures++;
        g_free(want);
        g_free(out);
        g_free(qid);
        g_free(name);
    }
    return NULL;
}

static void
test_threads(void)
{
    char *dir = make_dir("[${filename}|${queue_id}]", "[${hostname}|${queue_id}]", "[${removed}]");
    struct mq_templates *t = load_ok(dir, "en");
    struct render_job jobs[N_THREADS];
    GThread *threads[N_THREADS];

    for (unsigned i = 0; i < N_THREADS; i++) {
        jobs[i] = (struct render_job){ .t = t, .id = i, .failures = 0 };
        threads[i] = g_thread_new("render", render_thread, &jobs[i]);
    }
    for (unsigned i = 0; i < N_THREADS; i++) {
        g_thread_join(threads[i]);
        g_assert_cmpuint(jobs[i].failures, ==, 0);
    }
    mq_templates_free(&t);
    test_remove_tree(dir);
    g_free(dir);
}

/* ---- programming errors ----------------------------------------------------- */

static void
test_bad_kind_panics(void)
{
    if (g_test_subprocess()) {
        char *dir = shipped_dir();
        struct mq_templates *t = load_ok(dir, "en");

        mq_log_open("test-template", MQ_LOG_SINK_STDERR);
        mq_templates_render(t, MQ_TEMPLATE_COUNT, NULL);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*panic: mq_templates_render: invalid arguments*");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    mq_log_open("test-template", MQ_LOG_SINK_STDERR);

    g_test_add_func("/template/shipped", test_shipped);
    g_test_add_func("/template/values", test_values);
    g_test_add_func("/template/long-values", test_long_values);
    g_test_add_func("/template/vars-list", test_vars_list);
    g_test_add_func("/template/literal-dollar", test_literal_dollar);
    g_test_add_func("/template/bad-fixtures", test_bad_fixtures);
    g_test_add_func("/template/generated", test_generated);
    g_test_add_func("/template/threads", test_threads);
    g_test_add_func("/template/bad-kind-panics", test_bad_kind_panics);
    return g_test_run();
}
