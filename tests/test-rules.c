/* test-rules - mqscan/rules.c: rule files, name and type rules, archives.
 *
 * Rule-file fixtures are in tests/data/rules; the default rule files are the
 * ones shipped in conf/ (MQ_SRCDIR/../conf). Archives are built at test time
 * with libarchive's writer. Real executables come from the system: /bin/true
 * (ELF) and /usr/share/clamav-testfiles (small harmless PE files and
 * archives holding them; the tests that need them are skipped when that
 * package is missing). The ham walk uses MQ_SHARED_DIR/corpus/ham and is
 * skipped when it is absent.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/message.h"
#include "mqscan/rules.h"

#include "testutil.h"

#define TESTFILES "/usr/share/clamav-testfiles"

static const struct mq_rules_limits default_limits = {
    .max_members = 1000,
    .max_name = 255,
};

/* ---- helpers ---------------------------------------------------------- */

static char *
conf_path(const char *name)
{
    const char *srcdir = g_getenv("MQ_SRCDIR");

    if (srcdir != NULL && *srcdir != '\0')
        return g_build_filename(srcdir, "..", "conf", name, NULL);
    return g_test_build_filename(G_TEST_DIST, "..", "conf", name, NULL);
}

static struct mq_rules *
load_defaults(void)
{
    char *names = conf_path("filename.rules"), *types = conf_path("filetype.rules");
    GError *err = NULL;
    struct mq_rules *rules = mq_rules_load(names, types, &err);

    g_assert_no_error(err);
    g_assert_nonnull(rules);
    g_free(names);
    g_free(types);
    return rules;
}

/* The shared default rule set: loaded once, read by every test (and by
 * several threads at once in /rules/threads). */
static struct mq_rules *defaults;

static struct mq_rules *
load_fixtures(const char *names, const char *types, GError **err)
{
    char *np = names != NULL ? test_data_path(names) : NULL;
    char *tp = types != NULL ? test_data_path(types) : NULL;
    struct mq_rules *rules = mq_rules_load(np, tp, err);

    g_free(np);
    g_free(tp);
    return rules;
}

/* Runs one check and returns its result; *match is filled (to be cleared by
 * the caller) on 1. Asserts no error. Every match's strings are checked for
 * what must never be in them. */
static int
check(const struct mq_rules *rules, const struct mq_rules_limits *limits,
      const char *filename, const void *data, size_t len, struct mq_rules_match *match)
{
    GError *err = NULL;
    int r = mq_rules_check(rules, limits, filename, data, len, match, &err);

    g_assert_no_error(err);
    g_assert_cmpint(r, >=, 0);
    if (r == 1) {
        const char *fields[] = { match->subject, match->log_text, match->user_text };
        for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
            const char *p;
            g_assert_nonnull(fields[i]);
            g_assert_true(g_utf8_validate(fields[i], -1, NULL));
            g_assert_cmpuint(strlen(fields[i]), <=, 500);
            for (p = fields[i]; *p != '\0'; p = g_utf8_next_char(p)) {
                gunichar c = g_utf8_get_char(p);
                g_assert_true(c >= 0x20 && c != 0x7f && !(c >= 0x80 && c < 0xa0));
                g_assert_cmpint(g_unichar_type(c), !=, G_UNICODE_FORMAT);
                g_assert_true(c != 0x2028 && c != 0x2029);
            }
        }
        g_assert_cmpuint(strlen(match->subject), <=, MQ_LOG_FIELD_MAX);
    } else {
        g_assert_null(match->subject);
    }
    return r;
}

static bool
denied(const char *filename, const void *data, size_t len)
{
    struct mq_rules_match m;
    int r = check(defaults, &default_limits, filename, data, len, &m);

    mq_rules_match_clear(&m);
    return r == 1;
}

static GBytes *
read_file_or_skip(const char *path)
{
    char *data = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &data, &len, NULL)) {
        char *why = g_strdup_printf("%s is missing", path);
        g_test_skip(why);
        g_free(why);
        return NULL;
    }
    return g_bytes_new_take(data, len);
}

/* ---- content made at run time ------------------------------------------ */

static const char pdf_bytes[] =
    "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

static const unsigned char jpeg_bytes[] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00,
    0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0x06,
    0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07, 0x07, 0x09, 0x09, 0x08, 0x0a, 0x0c,
    0x14, 0x0d, 0x0c, 0x0b, 0x0b, 0x0c, 0x19, 0x12, 0x13, 0x0f, 0xff, 0xd9,
};

static const char text_bytes[] = "Hello,\n\nthe minutes of Tuesday's meeting are below.\n";
static const char json_bytes[] = "{\"name\": \"notes\", \"items\": [1, 2, 3]}\n";
static const char batch_bytes[] = "@echo off\r\necho hello\r\n";

/* The header of a Windows shortcut (MS-SHLLINK): size, LinkCLSID, flags. */
static GBytes *
make_lnk(void)
{
    static const unsigned char hdr[] = {
        0x4c, 0x00, 0x00, 0x00, 0x01, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46, 0x9b, 0x00, 0x08, 0x00,
        0x20, 0x00, 0x00, 0x00,
    };
    unsigned char *buf = g_malloc0(256);

    memcpy(buf, hdr, sizeof(hdr));
    return g_bytes_new_take(buf, 256);
}

struct member {
    const char *name;
    const void *data;
    size_t len;
};

static la_ssize_t
archive_out_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
    (void)a;
    g_byte_array_append(ctx, buf, (guint)len);
    return (la_ssize_t)len;
}

/* Builds an archive in memory: format is an ARCHIVE_FORMAT_* code, filter an
 * ARCHIVE_FILTER_* code (ARCHIVE_FILTER_NONE for none); options and
 * passphrase may be NULL. Returns NULL if this libarchive cannot write it. */
static GBytes *
build_archive(int format, int filter, const char *options, const char *passphrase,
              const struct member *members, size_t n)
{
    struct archive *a = archive_write_new();
    GByteArray *out = g_byte_array_new();

    g_assert_cmpint(archive_write_set_format(a, format), ==, ARCHIVE_OK);
    if (filter != ARCHIVE_FILTER_NONE)
        g_assert_cmpint(archive_write_add_filter(a, filter), ==, ARCHIVE_OK);
    if (options != NULL && archive_write_set_options(a, options) != ARCHIVE_OK)
        goto unsupported;
    if (passphrase != NULL && archive_write_set_passphrase(a, passphrase) != ARCHIVE_OK)
        goto unsupported;
    archive_write_set_bytes_in_last_block(a, 1);
    g_assert_cmpint(archive_write_open(a, out, NULL, archive_out_write, NULL), ==, ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        int r;

        archive_entry_set_pathname(e, members[i].name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)members[i].len);
        archive_entry_set_mtime(e, 1700000000, 0);
        r = archive_write_header(a, e);
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            g_error("archive_write_header(%s): %s", members[i].name, archive_error_string(a));
        if (members[i].len > 0)
            g_assert_cmpint(archive_write_data(a, members[i].data, members[i].len), ==,
                            (la_ssize_t)members[i].len);
        archive_entry_free(e);
    }
    g_assert_cmpint(archive_write_close(a), ==, ARCHIVE_OK);
    archive_write_free(a);
    return g_byte_array_free_to_bytes(out);
unsupported:
    archive_write_free(a);
    g_byte_array_unref(out);
    return NULL;
}

static GBytes *
build_zip(const struct member *members, size_t n)
{
    return build_archive(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, NULL, NULL, members, n);
}

static GBytes *
build_tgz(const struct member *members, size_t n)
{
    return build_archive(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP, NULL, NULL,
                         members, n);
}

/* ---- loading ------------------------------------------------------------ */

static void
test_load_errors(void)
{
    static const struct {
        const char *fixture;
        bool as_types;              /* load it as the filetype file */
        const char *where;          /* "FILE:LINE: " the message starts with */
        const char *what;           /* and then contains */
    } cases[] = {
        { "rules/bad-action.rules", false, "bad-action.rules:4: ", "unknown action \"deny+delete\"" },
        { "rules/bad-action.rules", true, "bad-action.rules:4: ", "unknown action" },
        { "rules/bad-regex.rules", false, "bad-regex.rules:4: ", "bad pattern" },
        { "rules/bad-regex.rules", true, "bad-regex.rules:4: ", "bad pattern" },
        { "rules/missing-field.rules", false, "missing-field.rules:4: ", "missing fields" },
        { "rules/spaces.rules", false, "spaces.rules:2: ", "missing fields" },
        { "rules/too-many-fields.rules", true, "too-many-fields.rules:3: ", "too many fields" },
        { "rules/empty-action.rules", false, "empty-action.rules:6: ", "missing fields" },
        { "rules/does-not-exist.rules", false, "does-not-exist.rules: ", "" },
        { "rules/does-not-exist.rules", true, "does-not-exist.rules: ", "" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GError *err = NULL;
        struct mq_rules *rules;
        char *path = test_data_path(cases[i].fixture);

        rules = cases[i].as_types ? mq_rules_load(NULL, path, &err)
                                  : mq_rules_load(path, NULL, &err);
        g_assert_null(rules);
        g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
        g_test_message("%s -> %s", cases[i].fixture, err->message);
        g_assert_true(g_str_has_prefix(err->message, path));
        g_assert_nonnull(strstr(err->message, cases[i].where));
        g_assert_nonnull(strstr(err->message, cases[i].what));
        g_free(path);
        g_error_free(err);
    }
}

/* Bytes the loader has to refuse, written at run time: NUL, invalid UTF-8. */
static void
test_load_bad_bytes(void)
{
#define BAD(text, what) { text, sizeof(text) - 1, what }
    static const struct {
        const char *text;
        size_t len;
        const char *what;
    } cases[] = {
        BAD("# ok\ndeny\t\\.exe$\tx\ty\ndeny\t\\.c\0m$\tx\ty\n", ":3: NUL byte"),
        BAD("deny\t\\.exe$\tx\ty\n\ndeny\t\\.scr$\tx\xff\ty\n", ":3: line is not valid UTF-8"),
    };
#undef BAD
    char *dir = g_dir_make_tmp("test-rules-XXXXXX", NULL);

    g_assert_nonnull(dir);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *path = g_build_filename(dir, "bad.rules", NULL);
        GError *err = NULL;

        g_assert_true(g_file_set_contents(path, cases[i].text, (gssize)cases[i].len, NULL));
        g_assert_null(mq_rules_load(path, NULL, &err));
        g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
        g_assert_nonnull(strstr(err->message, cases[i].what));
        g_error_free(err);
        g_unlink(path);
        g_free(path);
    }
    test_remove_tree(dir);
    g_free(dir);
}

static void
test_load_good(void)
{
    GError *err = NULL;
    struct mq_rules *rules = load_fixtures("rules/good-names.rules", "rules/good-types.rules", &err);
    struct mq_rules *none;
    struct mq_rules_match m;

    g_assert_no_error(err);
    g_assert_nonnull(rules);
    g_assert_cmpuint(mq_rules_count(rules), ==, 4 + 4);
    mq_rules_free(&rules);
    g_assert_null(rules);
    mq_rules_free(&rules);          /* NULL is fine */

    none = mq_rules_load(NULL, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(mq_rules_count(none), ==, 0);
    g_assert_cmpint(check(none, &default_limits, "setup.exe", text_bytes, strlen(text_bytes), &m),
                    ==, 0);
    mq_rules_free(&none);

    g_assert_cmpuint(mq_rules_count(defaults), >, 10);
}

/* First match wins; unmatched is allowed; field spacing and CRLF; texts. */
static void
test_first_match(void)
{
    static const struct {
        const char *name;
        int expect;
        const char *log_text;
    } cases[] = {
        { "keep-me.exe", 0, NULL },             /* allow above the deny */
        { "KEEP-ME.EXE", 0, NULL },             /* caseless */
        { "keep-me.exe.exe", 1, "Executable" },
        { "other.exe", 1, "Executable" },       /* CRLF line, runs of TABs */
        { "x.bad", 1, "Bad extension" },        /* spaces around the pattern */
        { "x.bad ", 0, NULL },
        { "notes.txt", 0, NULL },               /* unmatched */
        { "new\xe2\x80\xa8line", 1, "log?text? here" },   /* U+2028 in the name */
    };
    GError *err = NULL;
    struct mq_rules *rules = load_fixtures("rules/good-names.rules", NULL, &err);

    g_assert_no_error(err);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        struct mq_rules_match m;
        int r = check(rules, &default_limits, cases[i].name, pdf_bytes, strlen(pdf_bytes), &m);

        g_assert_cmpint(r, ==, cases[i].expect);
        if (r == 1) {
            g_assert_false(m.in_archive);
            g_assert_cmpstr(m.log_text, ==, cases[i].log_text);
        }
        mq_rules_match_clear(&m);
    }
    {
        struct mq_rules_match m;
        g_assert_cmpint(check(rules, &default_limits, "other.exe", NULL, 0, &m), ==, 1);
        g_assert_cmpstr(m.subject, ==, "other.exe");
        g_assert_cmpstr(m.user_text, ==, "No programs, please.");
        mq_rules_match_clear(&m);
        g_assert_null(m.subject);
        mq_rules_match_clear(&m);       /* twice is fine */
        mq_rules_match_clear(NULL);
        g_assert_cmpint(check(rules, &default_limits, "new\xe2\x80\xa8line", NULL, 0, &m), ==, 1);
        g_assert_cmpstr(m.subject, ==, "new?line");
        g_assert_cmpstr(m.user_text, ==, "user?text");
        mq_rules_match_clear(&m);
    }
    mq_rules_free(&rules);
}

/* Type rules match the MIME type or the description; allow above deny. */
static void
test_type_rules(void)
{
    static const struct {
        const char *name;
        const void *data;
        size_t len;
        int expect;
        const char *log_text;
    } cases[] = {
        { "a.pdf", pdf_bytes, sizeof(pdf_bytes) - 1, 1, "PDF by MIME type" },
        { "a.jpg", jpeg_bytes, sizeof(jpeg_bytes), 1, "JPEG by description" },
        { "a.bat", batch_bytes, sizeof(batch_bytes) - 1, 0, NULL },
        { "a.txt", text_bytes, sizeof(text_bytes) - 1, 0, NULL },
        { NULL, pdf_bytes, sizeof(pdf_bytes) - 1, 1, "PDF by MIME type" },
        { "empty", NULL, 0, 0, NULL },
    };
    GError *err = NULL;
    struct mq_rules *rules = load_fixtures(NULL, "rules/good-types.rules", &err);

    g_assert_no_error(err);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        struct mq_rules_match m;
        int r = check(rules, &default_limits, cases[i].name, cases[i].data, cases[i].len, &m);

        g_assert_cmpint(r, ==, cases[i].expect);
        if (r == 1) {
            g_assert_cmpstr(m.log_text, ==, cases[i].log_text);
            g_assert_true(g_str_has_prefix(m.subject, "type: "));
        }
        mq_rules_match_clear(&m);
    }
    mq_rules_free(&rules);
}

/* libmagic's text tests run only for rule sets that can match what they
 * find; whatever the rule set, a check says what the full tests would. */
static void
test_text_tests(void)
{
    static const char shell[] = "#!/bin/sh\necho hello\n";
    static const char mail[] = "From: a@example.com\nSubject: x\n\nbody\n";
    static const char reg[] = "REGEDIT4\r\n\r\n[HKEY_CURRENT_USER\\Software\\Run]\r\n"
                              "\"x\"=\"c:\\\\x.exe\"\r\n";
    static const char rtf[] = "{\\rtf1\\ansi {\\object\\objemb {\\*\\objdata 0105}}}\n";
    static const char svg[] = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\">"
                              "<script>x()</script></svg>\n";
    static const char vcard[] = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Eve\r\nEND:VCARD\r\n";
    static const unsigned char noise[] = {  /* libmagic: "data" */
        0x82, 0xb7, 0x0e, 0xee, 0x7f, 0x1a, 0x50, 0x39, 0xbe, 0xf0, 0x7e, 0xc2, 0x34, 0x7f, 0x06,
        0x6e, 0xd0, 0x8f, 0x5d, 0xc7, 0x51, 0x24, 0x47, 0xe3, 0x40, 0x43, 0x00, 0x02, 0x6b, 0x6e,
        0x54, 0x55, 0x94, 0xa0, 0x65, 0x68, 0x5d, 0x64, 0xc4, 0x98, 0x0b, 0xb8, 0xd4, 0x54, 0x4a,
        0x87, 0x21, 0xa9, 0x9a, 0x01, 0xad, 0x21, 0x9e, 0xb5, 0x9c, 0xf6, 0xa1, 0x5e, 0xf6, 0xf1,
        0x5a, 0x1d, 0x83, 0x0b,
    };
    static const struct {
        const char *rule;           /* one type rule */
        const char *data;
        size_t len;
        int expect;
    } cases[] = {
        { "deny\t^ELF\tELF\t-", shell, sizeof(shell) - 1, 0 },
        { "deny\t^ELF\tELF\t-", text_bytes, sizeof(text_bytes) - 1, 0 },
        { "deny\t^ELF\tELF\t-", NULL, 0, 1 },        /* /bin/true */
        { "deny\tshell script\tShell\t-", shell, sizeof(shell) - 1, 1 },
        { "deny\tshell script\tShell\t-", text_bytes, sizeof(text_bytes) - 1, 0 },
        { "deny\t^text/x-msdos-batch$\tBatch\t-", batch_bytes, sizeof(batch_bytes) - 1, 1 },
        { "deny\t^message/rfc822$\tMail\t-", mail, sizeof(mail) - 1, 1 },
        { "deny\t^data$\tUnknown\t-", text_bytes, sizeof(text_bytes) - 1, 0 },
        { "deny\t^data$\tUnknown\t-", (const char *)noise, sizeof(noise), 1 },
        { "deny\toctet-stream\tUnknown\t-", shell, sizeof(shell) - 1, 0 },
        /* Plain text that libmagic's binary patterns name: a rule for it
         * keeps libmagic on plain text (with the default rules, plain text
         * never reaches libmagic). */
        { "deny\t^Windows Registry text\tRegistry\t-", reg, sizeof(reg) - 1, 1 },
        { "deny\t^Rich Text Format\tRTF\t-", rtf, sizeof(rtf) - 1, 1 },
        { "deny\t^SVG Scalable Vector Graphics\tSVG\t-", svg, sizeof(svg) - 1, 1 },
        { "deny\t^vCard visiting card\tvCard\t-", vcard, sizeof(vcard) - 1, 1 },
        { "deny\t^Windows Registry text\tRegistry\t-", text_bytes, sizeof(text_bytes) - 1, 0 },
    };
    char *elf = NULL, *dir, *path;
    gsize elf_len = 0;
    GError *err = NULL;

    g_assert_true(g_file_get_contents("/bin/true", &elf, &elf_len, &err));
    dir = g_dir_make_tmp("test-rules-XXXXXX", &err);
    g_assert_no_error(err);
    path = g_build_filename(dir, "types.rules", NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        struct mq_rules *rules;
        struct mq_rules_match m;
        int r;

        g_assert_true(g_file_set_contents(path, cases[i].rule, -1, &err));
        rules = mq_rules_load(NULL, path, &err);
        g_assert_no_error(err);
        r = check(rules, &default_limits, NULL, cases[i].data ? cases[i].data : elf,
                  cases[i].data ? cases[i].len : elf_len, &m);
        if (r != cases[i].expect)
            g_test_message("case %zu (%s): %d", i, cases[i].rule, r);
        g_assert_cmpint(r, ==, cases[i].expect);
        mq_rules_match_clear(&m);
        mq_rules_free(&rules);
    }
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
    g_free(elf);
}

/* ---- the default filename rules ----------------------------------------- */

/* Every extension the default filename.rules deny. */
static const char *const denied_extensions[] = {
    "exe", "com", "scr", "pif", "cpl", "dll", "ocx", "sys", "drv", "vxd",
    "msi", "msp", "mst", "msu", "msix", "msixbundle", "appx", "appxbundle", "appinstaller",
    "application", "appref-ms", "gadget", "xbap", "xll", "xla", "xlam", "ppa", "ppam",
    "bat", "cmd", "vb", "vbs", "vbe", "js", "jse", "wsf", "wsh", "ws", "wsc", "sct", "hta",
    "ps1", "ps1xml", "ps2", "ps2xml", "psc1", "psc2", "psd1", "psm1", "msh", "msh1", "msh2",
    "mshxml", "msh1xml", "msh2xml",
    "jar", "jnlp", "lnk", "scf", "shb", "shs", "website", "settingcontent-ms",
    "library-ms", "searchconnector-ms",
    "reg", "inf", "ins", "isp", "chm", "hlp", "its", "msc", "diagcab", "wsb", "bas",
    "ade", "adp", "mde", "accde", "iqy",
    "iso", "img", "vhd", "vhdx", "ace",
};

static void
test_denied_extensions(void)
{
    static const char *const stems[] = {
        "setup", "Invoice 2024-03", "Rechnung Müller", "счёт-фактура", "請求書",
        "a.b.c", "x",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(denied_extensions); i++) {
        for (size_t j = 0; j < G_N_ELEMENTS(stems); j++) {
            char *lower = g_strdup_printf("%s.%s", stems[j], denied_extensions[i]);
            char *upper_ext = g_ascii_strup(denied_extensions[i], -1);
            char *upper = g_strdup_printf("%s.%s", stems[j], upper_ext);
            char *mixed = g_strdup(lower);
            struct mq_rules_match m;

            mixed[strlen(mixed) - 1] = g_ascii_toupper(mixed[strlen(mixed) - 1]);
            if (!denied(lower, text_bytes, sizeof(text_bytes) - 1))
                g_error("%s was allowed", lower);
            if (!denied(upper, text_bytes, sizeof(text_bytes) - 1))
                g_error("%s was allowed", upper);
            if (!denied(mixed, NULL, 0))
                g_error("%s was allowed", mixed);
            /* The subject is the name itself; the texts say why. */
            g_assert_cmpint(check(defaults, &default_limits, lower, NULL, 0, &m), ==, 1);
            g_assert_cmpstr(m.subject, ==, lower);
            g_assert_cmpstr(m.log_text, !=, "");
            g_assert_cmpstr(m.user_text, !=, "");
            mq_rules_match_clear(&m);
            g_free(lower);
            g_free(upper_ext);
            g_free(upper);
            g_free(mixed);
        }
    }
}

/* Tricks that hide an extension, each with the rule that must catch it. */
static void
test_name_tricks(void)
{
    static const struct {
        const char *name;
        const char *log_text;       /* a word of the expected rule's log text */
    } cases[] = {
        { "invoice.pdf.exe", "double extension" },
        { "readme.txt.vbs", "double extension" },
        { "Scan_2024.JPG.scr", "double extension" },
        { "report.docx .js", "double extension" },
        { "Rechnung.PDF.Exe", "double extension" },
        { "請求書.pdf.exe", "double extension" },
        { "invoice.pdf     .exe", "blanks" },
        { "invoice.pdf                                                  .zip", "blanks" },
        { "photo.jpg\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0.scr", "blanks" },          /* NBSP */
        { "photo.jpg\xe2\x80\x8b\xe2\x80\x8b\xe2\x80\x8b\xe2\x80\x8b\xe2\x80\x8b.hta", "blanks" },
        { "photo.jpg\xe3\x80\x80\xe3\x80\x80\xe3\x80\x80\xe3\x80\x80\xe3\x80\x80.png", "blanks" },
        { "report.txt.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}", "CLSID" },
        { "report.{3050f4d8-98b5-11cf-bb82-00aa00bdce0b}.txt", "CLSID" },
        { "setup.exe.", "dot or a space" },
        { "setup.exe ", "dot or a space" },
        { "report.pdf.", "dot or a space" },
        { "readme.txt...", "dot or a space" },
        { "invoice\xe2\x80\xae" "fdp.exe", "override" },            /* RLO */
        { "\xe2\x80\xae" "gpj.scr", "override" },
        { "Fotos\xe2\x80\xae" "cod.zip", "override" },              /* even without .exe */
        { "report\xe2\x80\xad.pdf", "override" },                   /* LRO */
        { "evil\n.pdf", "Control character" },
        { "evil.exe\r", "Control character" },
        { "tab\there.txt", "Control character" },
        { "c1\xc2\x85.txt", "Control character" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        struct mq_rules_match m;
        char *lower_log;

        if (check(defaults, &default_limits, cases[i].name, text_bytes, sizeof(text_bytes) - 1,
                  &m) != 1)
            g_error("\"%s\" was allowed", cases[i].name);
        lower_log = g_ascii_strdown(m.log_text, -1);
        if (strstr(m.log_text, cases[i].log_text) == NULL
            && strstr(lower_log, cases[i].log_text) == NULL)
            g_error("\"%s\": log text \"%s\", expected \"%s\"", cases[i].name, m.log_text,
                    cases[i].log_text);
        g_assert_null(strchr(m.subject, '\n'));
        g_assert_null(strchr(m.subject, '\r'));
        g_assert_null(strstr(m.subject, "\xe2\x80\xae"));
        g_free(lower_log);
        mq_rules_match_clear(&m);
    }
}

/* Names (and contents) of ordinary mail that must pass. */
static void
test_documents_allowed(void)
{
    static const char *const names[] = {
        "report.pdf", "budget.xlsx", "Budget 2024 (final).XLSX", "notes.json", "config.jsonc",
        "photo.jpg", "IMG_2024.JPEG", "archive.zip", "backup.tar.gz", "slides.pptx",
        "Lettre à Mme Dupont.docx", "Протокол заседания.pdf", "会議資料.xlsx",
        "setup.exe.txt", "scr.pdf", "exe", "com.png", "js.txt", "my.js.backup.txt",
        "www.example.org.html", "invite.ics", "contact.vcf", "message.eml", "data.csv",
        "map.kmz", "song.mp3", "video.mp4", "letter.rtf", "a.b.c.d.e.pdf", "Q3 report.pdf",
        "patch.diff", "signature.asc", "smime.p7s", "cert.crt", "mail.msg",
        "Liberalism in America.url",        /* a bookmark, as in the ham corpus */
        "two  spaces.pdf", "four    spaces.pdf", "name with 10          spaces inside.doc",
        "../../etc/passwd", "..\\x", "C:\\Users\\me\\Desktop\\report.pdf", "",
        "\xff\xfe\x80.pdf", "caf\xe9.doc",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        if (denied(names[i], text_bytes, sizeof(text_bytes) - 1))
            g_error("\"%s\" was denied", names[i]);

    g_assert_false(denied("report.pdf", pdf_bytes, sizeof(pdf_bytes) - 1));
    g_assert_false(denied("photo.jpg", jpeg_bytes, sizeof(jpeg_bytes)));
    g_assert_false(denied("notes.json", json_bytes, sizeof(json_bytes) - 1));
    g_assert_false(denied(NULL, text_bytes, sizeof(text_bytes) - 1));
    g_assert_false(denied(NULL, NULL, 0));
}

/* Office documents and archives of documents: the zips must not be denied
 * for being zips, and their members must pass. */
static void
test_document_archives_allowed(void)
{
    static const char content_types[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
        "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
        "<Default Extension=\"xml\" ContentType=\"application/xml\"/></Types>\n";
    static const char workbook[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<workbook/>\n";
    const struct member xlsx_members[] = {
        { "[Content_Types].xml", content_types, sizeof(content_types) - 1 },
        { "_rels/.rels", workbook, sizeof(workbook) - 1 },
        { "xl/workbook.xml", workbook, sizeof(workbook) - 1 },
        { "docProps/thumbnail.jpeg", jpeg_bytes, sizeof(jpeg_bytes) },
    };
    GBytes *xlsx = build_zip(xlsx_members, G_N_ELEMENTS(xlsx_members));
    gsize xlsx_len;
    const void *xlsx_data = g_bytes_get_data(xlsx, &xlsx_len);
    const struct member docs[] = {
        { "docs/report.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "docs/photo.jpg", jpeg_bytes, sizeof(jpeg_bytes) },
        { "docs/budget.xlsx", xlsx_data, xlsx_len },
        { "notes.json", json_bytes, sizeof(json_bytes) - 1 },
        { "README", text_bytes, sizeof(text_bytes) - 1 },
        { "Müller/Übersicht.txt", text_bytes, sizeof(text_bytes) - 1 },
    };
    GBytes *zip = build_zip(docs, G_N_ELEMENTS(docs));
    GBytes *tgz = build_tgz(docs, G_N_ELEMENTS(docs));
    GBytes *b;

    g_assert_false(denied("budget.xlsx", xlsx_data, xlsx_len));
    g_assert_false(denied("archive.zip", g_bytes_get_data(zip, NULL), g_bytes_get_size(zip)));
    g_assert_false(denied("archive.tar.gz", g_bytes_get_data(tgz, NULL), g_bytes_get_size(tgz)));
    b = build_archive(ARCHIVE_FORMAT_7ZIP, ARCHIVE_FILTER_NONE, NULL, NULL, docs,
                      G_N_ELEMENTS(docs));
    g_assert_false(denied("archive.7z", g_bytes_get_data(b, NULL), g_bytes_get_size(b)));
    g_bytes_unref(b);
    b = build_archive(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP, NULL, NULL, docs, 1);
    g_assert_false(denied("report.pdf.gz", g_bytes_get_data(b, NULL), g_bytes_get_size(b)));
    g_bytes_unref(b);
    g_bytes_unref(tgz);
    g_bytes_unref(zip);
    g_bytes_unref(xlsx);
}

/* ---- the default filetype rules ----------------------------------------- */

static void
test_renamed_executables(void)
{
    static const char *const disguises[] = { "holiday.jpg", "report.pdf", "notes.txt", NULL };
    GBytes *pe = read_file_or_skip(TESTFILES "/clam.exe");
    GBytes *elf = read_file_or_skip("/bin/true");
    GBytes *lnk = make_lnk();
    GBytes *all[] = { pe, elf, lnk };
    static const char *const subjects[] = { "type: PE32", "type: ELF", "type: MS Windows shortcut" };

    for (size_t k = 0; k < G_N_ELEMENTS(all); k++) {
        if (all[k] == NULL)
            continue;
        for (size_t i = 0; i < G_N_ELEMENTS(disguises); i++) {
            struct mq_rules_match m;
            int r = check(defaults, &default_limits, disguises[i], g_bytes_get_data(all[k], NULL),
                          g_bytes_get_size(all[k]), &m);
            if (r != 1)
                g_error("%s as \"%s\" was allowed", subjects[k], disguises[i]);
            g_assert_false(m.in_archive);
            g_assert_true(g_str_has_prefix(m.subject, subjects[k]));
            mq_rules_match_clear(&m);
        }
        g_bytes_unref(all[k]);
    }
    /* A DOS program: "MZ" and anything. */
    {
        guint8 mz[512] = { 'M', 'Z' };
        struct mq_rules_match m;

        for (size_t i = 2; i < sizeof(mz); i++)
            mz[i] = (guint8)(i * 37 + 11);
        g_assert_cmpint(check(defaults, &default_limits, "data.bin", mz, sizeof(mz), &m), ==, 1);
        g_assert_true(g_str_has_prefix(m.subject, "type: MS-DOS executable"));
        mq_rules_match_clear(&m);
    }
}

/* What the default filetype.rules leave alone on purpose: scripts as text
 * (left to the extension rules), and unknown binary data that libmagic
 * calls "DOS executable (COM)" because it starts with 0xB8 or 0x8C. */
static void
test_types_not_denied(void)
{
    static const char reg[] =
        "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\x]\r\n";
    static const guint8 first[] = { 0xb8, 0x8c, 0xe9, 0xeb };
    GRand *rand = g_rand_new_with_seed(7);

    g_assert_false(denied("script.txt", batch_bytes, sizeof(batch_bytes) - 1));
    g_assert_false(denied("settings.txt", reg, sizeof(reg) - 1));
    for (size_t i = 0; i < G_N_ELEMENTS(first); i++) {
        for (unsigned k = 0; k < 20; k++) {
            guint8 buf[2048];
            for (size_t j = 0; j < sizeof(buf); j++)
                buf[j] = (guint8)g_rand_int_range(rand, 0, 256);
            buf[0] = first[i];
            if (denied("measurements.dat", buf, sizeof(buf)))
                g_error("random data starting with 0x%02x was denied", first[i]);
        }
    }
    g_rand_free(rand);
}

/* ---- archives ----------------------------------------------------------- */

static void
test_archive_member_name(void)
{
    const struct member members[] = {
        { "docs/report.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "invoice.pdf.exe", text_bytes, sizeof(text_bytes) - 1 },
    };
    GBytes *zip = build_zip(members, G_N_ELEMENTS(members));
    GBytes *tgz = build_tgz(members, G_N_ELEMENTS(members));
    GBytes *both[] = { zip, tgz };
    static const char *const names[] = { "documents.zip", "documents.tar.gz" };

    for (size_t i = 0; i < G_N_ELEMENTS(both); i++) {
        struct mq_rules_match m;
        g_assert_cmpint(check(defaults, &default_limits, names[i],
                              g_bytes_get_data(both[i], NULL), g_bytes_get_size(both[i]), &m),
                        ==, 1);
        g_assert_true(m.in_archive);
        g_assert_cmpstr(m.subject, ==, "invoice.pdf.exe");
        mq_rules_match_clear(&m);
        g_bytes_unref(both[i]);
    }
}

static void
test_archive_member_type(void)
{
    GBytes *pe = read_file_or_skip(TESTFILES "/clam.exe");
    GBytes *elf = read_file_or_skip("/bin/true");
    GBytes *exes[] = { pe, elf };

    for (size_t k = 0; k < G_N_ELEMENTS(exes); k++) {
        struct member members[] = {
            { "docs/report.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
            { "photos/photo.jpg", NULL, 0 },
        };
        GBytes *zip, *tgz, *gz, *xz;
        GBytes *built[4];
        static const char *const names[] = { "photos.zip", "photos.tar.gz", "photo.gz", "photo.xz" };

        if (exes[k] == NULL)
            continue;
        members[1].data = g_bytes_get_data(exes[k], &members[1].len);
        zip = build_zip(members, G_N_ELEMENTS(members));
        tgz = build_tgz(members, G_N_ELEMENTS(members));
        /* A lone compressed file: no archive around it. */
        gz = build_archive(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP, NULL, NULL, members + 1, 1);
        xz = build_archive(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_XZ, NULL, NULL, members + 1, 1);
        built[0] = zip;
        built[1] = tgz;
        built[2] = gz;
        built[3] = xz;
        for (size_t i = 0; i < G_N_ELEMENTS(built); i++) {
            struct mq_rules_match m;
            if (built[i] == NULL)
                continue;
            if (check(defaults, &default_limits, names[i], g_bytes_get_data(built[i], NULL),
                      g_bytes_get_size(built[i]), &m) != 1)
                g_error("executable %zu in %s was allowed", k, names[i]);
            g_assert_true(m.in_archive);
            g_assert_true(g_str_has_prefix(m.subject, "type: "));
            mq_rules_match_clear(&m);
            g_bytes_unref(built[i]);
        }
        g_bytes_unref(exes[k]);
    }
}

/* The archives of clamav-testfiles, each holding clam.exe: every format
 * libarchive reads must be listed. */
static void
test_archive_formats(void)
{
    static const char *const files[] = {
        "clam.zip", "clam.7z", "clam.cab", "clam.tar.gz", "clam.newc.cpio", "clam.odc.cpio",
        "clam.bin-le.cpio", "clam.exe.bz2",
    };
    unsigned seen = 0;

    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        char *path = g_build_filename(TESTFILES, files[i], NULL);
        char *data = NULL;
        gsize len = 0;
        struct mq_rules_match m;

        if (g_file_get_contents(path, &data, &len, NULL)) {
            /* Named as something harmless: only the members can deny it. */
            if (check(defaults, &default_limits, "archive.dat", data, len, &m) != 1)
                g_error("%s was allowed", files[i]);
            g_assert_true(m.in_archive);
            g_test_message("%s: %s (%s)", files[i], m.subject, m.log_text);
            mq_rules_match_clear(&m);
            seen++;
        }
        g_free(data);
        g_free(path);
    }
    if (seen == 0)
        g_test_skip(TESTFILES " is missing");
}

static void
test_archive_max_members(void)
{
    const struct member members[] = {
        { "1.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "2.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "3.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "4.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "5.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "6.scr", text_bytes, sizeof(text_bytes) - 1 },
    };
    GBytes *zip = build_zip(members, G_N_ELEMENTS(members));
    static const struct {
        unsigned max_members;
        int expect;
    } cases[] = { { 0, 0 }, { 1, 0 }, { 5, 0 }, { 6, 1 }, { 1000, 1 } };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        struct mq_rules_limits limits = default_limits;
        struct mq_rules_match m;

        limits.max_members = cases[i].max_members;
        g_assert_cmpint(check(defaults, &limits, "a.zip", g_bytes_get_data(zip, NULL),
                              g_bytes_get_size(zip), &m), ==, cases[i].expect);
        mq_rules_match_clear(&m);
    }
    g_bytes_unref(zip);
}

/* Encrypted members: the name is checked, the content cannot be. */
static void
test_archive_encrypted(void)
{
    GBytes *pe = read_file_or_skip(TESTFILES "/clam.exe");
    const struct member named[] = {
        { "report.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "setup.exe", text_bytes, sizeof(text_bytes) - 1 },
    };
    struct member h = { "photo.jpg", NULL, 0 };
    GBytes *a, *b;

    if (pe == NULL)
        return;
    h.data = g_bytes_get_data(pe, &h.len);
    a = build_archive(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, "zip:encryption=zipcrypt",
                      "secret", &h, 1);
    if (a == NULL) {
        g_test_skip("this libarchive cannot write encrypted zip files");
        g_bytes_unref(pe);
        return;
    }
    g_assert_false(denied("photos.zip", g_bytes_get_data(a, NULL), g_bytes_get_size(a)));
    b = build_archive(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, "zip:encryption=zipcrypt",
                      "secret", named, G_N_ELEMENTS(named));
    g_assert_true(denied("documents.zip", g_bytes_get_data(b, NULL), g_bytes_get_size(b)));
    g_bytes_unref(a);
    g_bytes_unref(b);
    g_bytes_unref(pe);
}

/* Damaged archives: whatever was listed before the damage counts. */
static void
test_archive_damaged(void)
{
    const struct member members[] = {
        { "report.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "evil.scr", text_bytes, sizeof(text_bytes) - 1 },
        { "other.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
    };
    GBytes *zip = build_zip(members, G_N_ELEMENTS(members));
    GBytes *tgz = build_tgz(members, G_N_ELEMENTS(members));
    GBytes *all[] = { zip, tgz };

    for (size_t k = 0; k < G_N_ELEMENTS(all); k++) {
        gsize len;
        const guint8 *data = g_bytes_get_data(all[k], &len);

        /* Every truncation, and a few flipped bytes: no crash, no error. */
        for (gsize cut = 0; cut <= len; cut += (len > 2000 ? 7 : 1))
            (void)denied("a.zip", data, cut);
        for (gsize pos = 0; pos < len; pos += 3) {
            guint8 *copy = g_memdup2(data, len);
            copy[pos] ^= 0x5a;
            (void)denied("a.zip", copy, len);
            g_free(copy);
        }
        g_bytes_unref(all[k]);
    }
}

/* A tar.gz of zeros.bin (size bytes of zeros) with a member "run.scr"
 * before it or after it. */
static GByteArray *
build_bomb(size_t size, bool scr_first)
{
    const size_t chunk = (size_t)1 << 20;
    struct archive *a = archive_write_new();
    GByteArray *out = g_byte_array_new();
    guint8 *zeros = g_malloc0(chunk);
    struct archive_entry *e = archive_entry_new();

    g_assert_cmpint(archive_write_set_format_pax_restricted(a), ==, ARCHIVE_OK);
    g_assert_cmpint(archive_write_add_filter_gzip(a), ==, ARCHIVE_OK);
    g_assert_cmpint(archive_write_open(a, out, NULL, archive_out_write, NULL), ==, ARCHIVE_OK);
    for (int pass = 0; pass < 2; pass++) {
        archive_entry_clear(e);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        if ((pass == 0) == scr_first) {
            archive_entry_set_pathname(e, "run.scr");
            archive_entry_set_size(e, (la_int64_t)(sizeof(text_bytes) - 1));
            g_assert_cmpint(archive_write_header(a, e), ==, ARCHIVE_OK);
            g_assert_cmpint(archive_write_data(a, text_bytes, sizeof(text_bytes) - 1), >, 0);
        } else {
            archive_entry_set_pathname(e, "zeros.bin");
            archive_entry_set_size(e, (la_int64_t)size);
            g_assert_cmpint(archive_write_header(a, e), ==, ARCHIVE_OK);
            for (size_t done = 0; done < size; done += chunk)
                g_assert_cmpint(archive_write_data(a, zeros, chunk), ==, (la_ssize_t)chunk);
        }
    }
    archive_entry_free(e);
    g_assert_cmpint(archive_write_close(a), ==, ARCHIVE_OK);
    archive_write_free(a);
    g_free(zeros);
    return out;
}

/* Decompression is bounded (128 MiB of member data per attachment, see
 * RULES_ARCHIVE_READ_MAX): a member behind a bigger bomb is not reached,
 * one behind a smaller one is, and one before it always is. */
static void
test_archive_bomb(void)
{
    static const struct {
        size_t size;
        bool scr_first;
        int expect;
    } cases[] = {
        { (size_t)160 << 20, true, 1 },
        { (size_t)100 << 20, false, 1 },
        { (size_t)160 << 20, false, 0 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GByteArray *out = build_bomb(cases[i].size, cases[i].scr_first);
        struct mq_rules_match m;
        gint64 t0 = g_get_monotonic_time();

        g_assert_cmpint(check(defaults, &default_limits, "a.tar.gz", out->data, out->len, &m), ==,
                        cases[i].expect);
        g_test_message("bomb of %zu MiB (%u bytes compressed): %.1f ms", cases[i].size >> 20,
                       out->len, (g_get_monotonic_time() - t0) / 1000.0);
        mq_rules_match_clear(&m);
        g_byte_array_unref(out);
    }
}

/* ---- hostile input -------------------------------------------------------- */

static void
test_hostile_names(void)
{
    GString *huge = g_string_new(NULL);
    struct mq_rules_match m;
    char *huge_spaces;

    /* 200 KB name, executable at the end: the cut keeps the extension. */
    for (unsigned i = 0; i < 200 * 1024; i++)
        g_string_append_c(huge, "abcdefgh"[i % 8]);
    g_string_append(huge, ".exe");
    g_assert_cmpint(check(defaults, &default_limits, huge->str, NULL, 0, &m), ==, 1);
    g_assert_cmpuint(strlen(m.subject), <=, MQ_LOG_FIELD_MAX);
    mq_rules_match_clear(&m);
    /* ... and a harmless one of the same size passes. */
    g_string_truncate(huge, 200 * 1024);
    g_string_append(huge, ".pdf");
    g_assert_cmpint(check(defaults, &default_limits, huge->str, NULL, 0, &m), ==, 0);
    /* A long run of blanks must not make the patterns slow or fail open. */
    huge_spaces = g_strnfill(200 * 1024, ' ');
    g_string_assign(huge, "invoice.pdf");
    g_string_append(huge, huge_spaces);
    g_string_append(huge, ".exe");
    g_assert_cmpint(check(defaults, &default_limits, huge->str, NULL, 0, &m), ==, 1);
    mq_rules_match_clear(&m);
    g_string_assign(huge, huge_spaces);
    g_string_append(huge, "x");
    (void)check(defaults, &default_limits, huge->str, NULL, 0, &m);
    mq_rules_match_clear(&m);
    g_free(huge_spaces);
    g_string_free(huge, TRUE);

    /* Line breaks and invalid UTF-8: denied with a clean subject. */
    {
        static const char *const names[] = {
            "evil\n.exe", "line1\nline2\r\n", "\xff\xfe.scr", "caf\xe9.vbs", "a\xc3(.exe",
            "\xe2\x80\xae\n\x1b[31m.exe",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
            g_assert_cmpint(check(defaults, &default_limits, names[i], NULL, 0, &m), ==, 1);
            g_assert_null(strchr(m.subject, '\n'));
            g_assert_null(strchr(m.log_text, '\n'));
            g_assert_null(strchr(m.subject, '\x1b'));
            mq_rules_match_clear(&m);
        }
    }
}

static void
test_hostile_members(void)
{
    char *long_zip_name = g_strnfill(60000, 'z');
    char *long_tar_name = g_strnfill(200 * 1024, 't');
    char *zip_name = g_strconcat(long_zip_name, ".exe", NULL);
    char *tar_name = g_strconcat(long_tar_name, ".scr", NULL);
    const struct member zip_members[] = {
        { "../../etc/passwd", text_bytes, sizeof(text_bytes) - 1 },
        { "..\\x", text_bytes, sizeof(text_bytes) - 1 },
        { "/abs/path.txt", text_bytes, sizeof(text_bytes) - 1 },
        { "caf\xe9.txt", text_bytes, sizeof(text_bytes) - 1 },
        { zip_name, text_bytes, sizeof(text_bytes) - 1 },
    };
    const struct member tar_members[] = {
        { "ok.txt", text_bytes, sizeof(text_bytes) - 1 },
        { tar_name, text_bytes, sizeof(text_bytes) - 1 },
    };
    const struct member nl_members[] = {
        { "ok.txt", text_bytes, sizeof(text_bytes) - 1 },
        { "bad\nname\r.txt", text_bytes, sizeof(text_bytes) - 1 },
    };
    const struct member bad_utf8[] = {
        { "\xff\xfe\x80.scr", text_bytes, sizeof(text_bytes) - 1 },
    };
    const struct member passwd[] = {
        { "../../etc/passwd", text_bytes, sizeof(text_bytes) - 1 },
        { "..\\x", text_bytes, sizeof(text_bytes) - 1 },
        { "caf\xe9.txt", text_bytes, sizeof(text_bytes) - 1 },
    };
    GBytes *b;
    struct mq_rules_match m;

    b = build_zip(zip_members, G_N_ELEMENTS(zip_members));
    g_assert_cmpint(check(defaults, &default_limits, "a.zip", g_bytes_get_data(b, NULL),
                          g_bytes_get_size(b), &m), ==, 1);
    g_assert_true(m.in_archive);
    g_test_message("long zip member: %s: %s", m.subject, m.log_text);
    g_assert_true(g_str_has_suffix(m.subject, ".exe"));
    mq_rules_match_clear(&m);
    g_bytes_unref(b);

    b = build_archive(ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FILTER_NONE, NULL, NULL, tar_members,
                      G_N_ELEMENTS(tar_members));
    g_assert_cmpint(check(defaults, &default_limits, "a.tar", g_bytes_get_data(b, NULL),
                          g_bytes_get_size(b), &m), ==, 1);
    g_assert_true(g_str_has_suffix(m.subject, ".scr"));
    mq_rules_match_clear(&m);
    g_bytes_unref(b);

    b = build_archive(ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FILTER_GZIP, NULL, NULL, nl_members,
                      G_N_ELEMENTS(nl_members));
    g_assert_cmpint(check(defaults, &default_limits, "a.tgz", g_bytes_get_data(b, NULL),
                          g_bytes_get_size(b), &m), ==, 1);
    g_assert_null(strchr(m.subject, '\n'));
    g_assert_null(strchr(m.subject, '\r'));
    g_assert_cmpstr(m.subject, ==, "bad?name?.txt");
    mq_rules_match_clear(&m);
    g_bytes_unref(b);

    b = build_archive(ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FILTER_NONE, NULL, NULL, bad_utf8, 1);
    g_assert_cmpint(check(defaults, &default_limits, "a.tar", g_bytes_get_data(b, NULL),
                          g_bytes_get_size(b), &m), ==, 1);
    g_assert_true(g_str_has_suffix(m.subject, ".scr"));
    mq_rules_match_clear(&m);
    g_bytes_unref(b);

    b = build_zip(passwd, G_N_ELEMENTS(passwd));
    g_assert_cmpint(check(defaults, &default_limits, "a.zip", g_bytes_get_data(b, NULL),
                          g_bytes_get_size(b), &m), ==, 0);
    g_bytes_unref(b);

    g_free(zip_name);
    g_free(tar_name);
    g_free(long_zip_name);
    g_free(long_tar_name);
}

/* Random bytes and bytes that start like archives: no crash, no error. */
static void
test_garbage(void)
{
    static const char *const starts[] = {
        "PK\x03\x04", "7z\xbc\xaf\x27\x1c", "Rar!\x1a\x07\x00", "Rar!\x1a\x07\x01\x00",
        "MSCF", "\x1f\x8b\x08", "BZh9", "\xfd" "7zXZ", "!<arch>\n", "070707", "MZ",
        "\x7f" "ELF", "begin 644 x.exe\n",
    };
    GRand *rand = g_rand_new_with_seed(4242);

    for (unsigned i = 0; i < 300; i++) {
        size_t len = (size_t)g_rand_int_range(rand, 0, 4096);
        guint8 *buf = g_malloc(len + 16);
        const char *start = starts[i % G_N_ELEMENTS(starts)];
        size_t slen = strlen(start) + (start[0] == 'R' ? 1 : 0);

        for (size_t k = 0; k < len + 16; k++)
            buf[k] = (guint8)g_rand_int_range(rand, 0, 256);
        memcpy(buf, start, MIN(slen, len + 16));
        (void)denied("x.dat", buf, len + 16);
        g_free(buf);
    }
    g_rand_free(rand);
}

static void
test_bad_limits_panic(void)
{
    if (g_test_subprocess()) {
        struct mq_rules_limits limits = { .max_members = 10, .max_name = 0 };
        struct mq_rules_match m;
        (void)mq_rules_check(defaults, &limits, "a.txt", NULL, 0, &m, NULL);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*max_name*");
}

/* ---- threads -------------------------------------------------------------- */

struct thread_case {
    const char *name;
    GBytes *data;
    int expect;
};

static gpointer
thread_main(gpointer p)
{
    GPtrArray *cases = p;

    for (unsigned round = 0; round < 40; round++) {
        for (guint i = 0; i < cases->len; i++) {
            const struct thread_case *c = g_ptr_array_index(cases, (i + round) % cases->len);
            struct mq_rules_match m;
            GError *err = NULL;
            gsize len;
            const void *data = c->data != NULL ? g_bytes_get_data(c->data, &len) : NULL;
            int r;

            if (c->data == NULL)
                len = 0;
            r = mq_rules_check(defaults, &default_limits, c->name, data, len, &m, &err);
            if (r != c->expect || err != NULL)
                g_error("thread: %s gave %d, expected %d", c->name, r, c->expect);
            mq_rules_match_clear(&m);
        }
    }
    return NULL;
}

static void
thread_case_free(gpointer p)
{
    struct thread_case *c = p;

    g_clear_pointer(&c->data, g_bytes_unref);
    g_free(c);
}

static void
add_thread_case(GPtrArray *cases, const char *name, GBytes *data, int expect)
{
    struct thread_case *c = g_new0(struct thread_case, 1);

    c->name = name;
    c->data = data;
    c->expect = expect;
    g_ptr_array_add(cases, c);
}

static void
test_threads(void)
{
    GPtrArray *cases = g_ptr_array_new_with_free_func(thread_case_free);
    const struct member docs[] = {
        { "docs/report.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "photo.jpg", jpeg_bytes, sizeof(jpeg_bytes) },
    };
    const struct member bad[] = {
        { "docs/report.pdf", pdf_bytes, sizeof(pdf_bytes) - 1 },
        { "run.vbs", text_bytes, sizeof(text_bytes) - 1 },
    };
    char *elf_data = NULL;
    gsize elf_len = 0;
    GThread *threads[6];

    add_thread_case(cases, "report.pdf", g_bytes_new_static(pdf_bytes, sizeof(pdf_bytes) - 1), 0);
    add_thread_case(cases, "photo.jpg", g_bytes_new_static(jpeg_bytes, sizeof(jpeg_bytes)), 0);
    add_thread_case(cases, "invoice.pdf.exe", NULL, 1);
    add_thread_case(cases, "docs.zip", build_zip(docs, G_N_ELEMENTS(docs)), 0);
    add_thread_case(cases, "docs.tar.gz", build_tgz(docs, G_N_ELEMENTS(docs)), 0);
    add_thread_case(cases, "bad.zip", build_zip(bad, G_N_ELEMENTS(bad)), 1);
    add_thread_case(cases, "notes.txt", g_bytes_new_static(batch_bytes, sizeof(batch_bytes) - 1), 0);
    add_thread_case(cases, "run.cmd", g_bytes_new_static(batch_bytes, sizeof(batch_bytes) - 1), 1);
    if (g_file_get_contents("/bin/true", &elf_data, &elf_len, NULL))
        add_thread_case(cases, "holiday.jpg", g_bytes_new_take(elf_data, elf_len), 1);

    for (size_t i = 0; i < G_N_ELEMENTS(threads); i++)
        threads[i] = g_thread_new("rules", thread_main, cases);
    for (size_t i = 0; i < G_N_ELEMENTS(threads); i++)
        g_thread_join(threads[i]);
    g_ptr_array_unref(cases);
}

/* ---- the ham corpus --------------------------------------------------------- */

struct corpus_stats {
    const char *file;
    bool report;                /* print each denial */
    unsigned leaves;
    unsigned named;
    unsigned denied;
    GString *names;             /* "content/type name" of the named leaves, for the log */
};

static int
corpus_leaf(const struct mq_message_leaf *leaf, const void *data, size_t len, void *ctx,
            GError **err)
{
    struct corpus_stats *st = ctx;
    struct mq_rules_match m;
    int r;

    r = mq_rules_check(defaults, &default_limits, leaf->filename, data, len, &m, err);
    if (r < 0)
        return -1;
    st->leaves++;
    if (leaf->filename != NULL) {
        char *shown = mq_log_sanitize(leaf->filename, 80);
        st->named++;
        g_string_append_printf(st->names, "  %s %s\n", leaf->content_type, shown);
        g_free(shown);
    }
    if (r == 1) {
        st->denied++;
        if (st->report)
            g_printerr("DENIED: %s leaf %u (%s): %s%s: %s\n", st->file, leaf->index,
                       leaf->content_type, m.in_archive ? "in archive: " : "", m.subject,
                       m.log_text);
        g_test_message("denied: %s leaf %u (%s): %s%s: %s", st->file, leaf->index,
                       leaf->content_type, m.in_archive ? "in archive: " : "", m.subject,
                       m.log_text);
        mq_rules_match_clear(&m);
    }
    return 0;
}

/* Runs the default rules over every leaf of every message of
 * MQ_SHARED_DIR/corpus/<sub>. Returns false (test skipped) without it. */
static bool
walk_corpus(const char *sub, struct corpus_stats *st)
{
    static const struct mq_message_limits msg_limits = { .max_depth = 20, .max_parts = 1000 };
    const char *shared = g_getenv("MQ_SHARED_DIR");
    char *dirpath;
    GDir *dir;
    const char *name;
    unsigned files = 0, unparsed = 0, limited = 0;
    gint64 t0;

    if (shared == NULL) {
        g_test_skip("MQ_SHARED_DIR is not set");
        return false;
    }
    dirpath = g_build_filename(shared, "corpus", sub, NULL);
    dir = g_dir_open(dirpath, 0, NULL);
    if (dir == NULL) {
        char *why = g_strdup_printf("no corpus/%s in MQ_SHARED_DIR", sub);
        g_test_skip(why);
        g_free(why);
        g_free(dirpath);
        return false;
    }
    st->names = g_string_new(NULL);
    t0 = g_get_monotonic_time();
    while ((name = g_dir_read_name(dir)) != NULL) {
        char *path, *data = NULL;
        gsize len = 0;
        size_t hlen, blen;
        const char *body;
        struct mq_message *msg;
        GError *err = NULL;

        if (!g_str_has_suffix(name, ".eml"))
            continue;
        path = g_build_filename(dirpath, name, NULL);
        if (!g_file_get_contents(path, &data, &len, NULL))
            g_error("cannot read %s", path);
        files++;
        test_split_message(data, len, &hlen, &body, &blen);
        msg = mq_message_parse(data, hlen, body, blen, &msg_limits, &err);
        if (msg == NULL) {
            unparsed++;
        } else {
            st->file = name;
            if (mq_message_foreach_leaf(msg, &msg_limits, corpus_leaf, st, &err) < 0) {
                /* Only the walk's own limits may stop it: a rules error fails. */
                g_assert_error(err, MQ_ERROR, MQ_ERROR_LIMIT);
                limited++;
            }
        }
        g_clear_error(&err);
        mq_message_free(&msg);
        g_free(data);
        g_free(path);
    }
    g_dir_close(dir);
    g_test_message("named leaves of corpus/%s:\n%s", sub, st->names->str);
    g_test_message("corpus/%s: %u messages (%u not parsed, %u over limits), %u leaves checked, "
                   "%u of them named attachments, %u denied, %.1f ms",
                   sub, files, unparsed, limited, st->leaves, st->named, st->denied,
                   (g_get_monotonic_time() - t0) / 1000.0);
    g_printerr("corpus/%s: %u messages, %u leaves checked (%u named attachments), %u denied\n",
               sub, files, st->leaves, st->named, st->denied);
    g_assert_cmpuint(files, >, 0);
    g_string_free(st->names, TRUE);
    g_free(dirpath);
    return true;
}

/* The requirement: the whole clean ham corpus passes with zero attachments
 * removed. */
static void
test_ham_corpus(void)
{
    struct corpus_stats st = { .report = true };

    if (walk_corpus("ham", &st))
        g_assert_cmpuint(st.denied, ==, 0);
}

/* Torture MIME and spam: every leaf checked without an error or a crash;
 * what gets denied is only logged. */
static void
test_other_corpora(void)
{
    struct corpus_stats mime = { .report = false }, spam = { .report = false };

    if (walk_corpus("mime", &mime))
        (void)walk_corpus("spam", &spam);
}

int
main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    mq_log_open("test-rules", MQ_LOG_SINK_STDERR);
    defaults = load_defaults();

    g_test_add_func("/rules/load/errors", test_load_errors);
    g_test_add_func("/rules/load/bad-bytes", test_load_bad_bytes);
    g_test_add_func("/rules/load/good", test_load_good);
    g_test_add_func("/rules/first-match", test_first_match);
    g_test_add_func("/rules/type-rules", test_type_rules);
    g_test_add_func("/rules/text-tests", test_text_tests);
    g_test_add_func("/rules/default/denied-extensions", test_denied_extensions);
    g_test_add_func("/rules/default/name-tricks", test_name_tricks);
    g_test_add_func("/rules/default/documents", test_documents_allowed);
    g_test_add_func("/rules/default/document-archives", test_document_archives_allowed);
    g_test_add_func("/rules/default/renamed-executables", test_renamed_executables);
    g_test_add_func("/rules/default/types-not-denied", test_types_not_denied);
    g_test_add_func("/rules/archive/member-name", test_archive_member_name);
    g_test_add_func("/rules/archive/member-type", test_archive_member_type);
    g_test_add_func("/rules/archive/formats", test_archive_formats);
    g_test_add_func("/rules/archive/max-members", test_archive_max_members);
    g_test_add_func("/rules/archive/encrypted", test_archive_encrypted);
    g_test_add_func("/rules/archive/damaged", test_archive_damaged);
    g_test_add_func("/rules/archive/bomb", test_archive_bomb);
    g_test_add_func("/rules/hostile/names", test_hostile_names);
    g_test_add_func("/rules/hostile/members", test_hostile_members);
    g_test_add_func("/rules/hostile/garbage", test_garbage);
    g_test_add_func("/rules/bad-limits-panic", test_bad_limits_panic);
    g_test_add_func("/rules/threads", test_threads);
    g_test_add_func("/rules/corpus/ham", test_ham_corpus);
    g_test_add_func("/rules/corpus/mime-and-spam", test_other_corpora);
    ret = g_test_run();
    mq_rules_free(&defaults);
    return ret;
}
