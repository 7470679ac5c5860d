/* test-scanner - mqscan/scanner.c against the offline test signatures.
 *
 * MQ_TESTSIGS names the signature directory (../shared/testsigs): it detects
 * EICAR and every file of /usr/share/clamav-testfiles, with names that come
 * back as "MqScan.Test.<name>.UNOFFICIAL"; tests match on the prefix. The
 * EICAR string is assembled at run time so that it never appears in the
 * repository in one piece.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/scanner.h"

#define TESTFILES "/usr/share/clamav-testfiles"

static const struct mq_scanner_limits default_limits = {
    .max_scan_size = 100u << 20,
    .max_file_size = 25u << 20,
    .max_recursion = 16,
    .max_files = 10000,
    .max_scan_time_ms = 60000,
};

static const char *
testsigs(void)
{
    const char *dir = g_getenv("MQ_TESTSIGS");

    if (dir == NULL)
        g_error("MQ_TESTSIGS is not set (it names ../shared/testsigs)");
    return dir;
}

static struct mq_scanner *
new_scanner(const struct mq_scanner_limits *limits)
{
    GError *err = NULL;
    struct mq_scanner *scanner = mq_scanner_new(testsigs(), NULL, limits, &err);

    g_assert_no_error(err);
    g_assert_nonnull(scanner);
    return scanner;
}

/* ---- test objects, built at run time ----------------------------------- */

static GBytes *
make_eicar(void)
{
    /* Two halves; only their concatenation is the test file. */
    static const char a[] = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EIC";
    static const char b[] = "AR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    char *s = g_strconcat(a, b, NULL);

    return g_bytes_new_take(s, strlen(s));
}

static GBytes *
make_eicar_in_text(void)
{
    GBytes *eicar = make_eicar();
    GString *s = g_string_new("Some harmless text before it.\n");

    g_string_append_len(s, g_bytes_get_data(eicar, NULL), g_bytes_get_size(eicar));
    g_string_append(s, "\nand after it.\n");
    g_bytes_unref(eicar);
    return g_string_free_to_bytes(s);
}

static GBytes *
make_clean_text(void)
{
    static const char text[] = "Dear Bob,\n\nthe minutes of Tuesday's meeting follow.\n";

    return g_bytes_new_static(text, sizeof(text) - 1);
}

static GBytes *
make_zeros(void)
{
    return g_bytes_new_take(g_malloc0(64 * 1024), 64 * 1024);
}

static GBytes *
make_empty(void)
{
    return g_bytes_new_static("", 0);
}

static GBytes *
make_mail_base64_eicar(void)
{
    GBytes *eicar = make_eicar();
    char *b64 = g_base64_encode(g_bytes_get_data(eicar, NULL), g_bytes_get_size(eicar));
    char *mail = g_strdup_printf(
        "From: a@example.com\nTo: b@example.net\nSubject: test\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
        "--b\nContent-Type: text/plain\n\nsee attachment\n"
        "--b\nContent-Type: application/octet-stream; name=\"t.com\"\n"
        "Content-Transfer-Encoding: base64\n\n%s\n--b--\n", b64);

    g_free(b64);
    g_bytes_unref(eicar);
    return g_bytes_new_take(mail, strlen(mail));
}

/* uuencode, as a mail client would put it inline in a plain text body
 * (no Content-Transfer-Encoding). GMime does not decode this; libclamav's
 * mail parser does (NOTES, "Coverage gap found"). */
static GBytes *
make_mail_inline_uu_eicar(void)
{
    GBytes *eicar = make_eicar();
    const guint8 *p = g_bytes_get_data(eicar, NULL);
    size_t len = g_bytes_get_size(eicar);
    GString *s = g_string_new("From: a@example.com\nTo: b@example.net\nSubject: uu\n\n"
                              "Here it is:\n\nbegin 644 eicar.com\n");

    for (size_t off = 0; off < len; off += 45) {
        size_t n = MIN(45, len - off);

        g_string_append_c(s, (char)(0x20 + n));
        for (size_t i = 0; i < n; i += 3) {
            guint8 c0 = p[off + i];
            guint8 c1 = i + 1 < n ? p[off + i + 1] : 0;
            guint8 c2 = i + 2 < n ? p[off + i + 2] : 0;
            guint8 q[4] = { c0 >> 2, ((c0 & 3) << 4) | (c1 >> 4),
                            ((c1 & 15) << 2) | (c2 >> 6), c2 & 63 };

            for (int k = 0; k < 4; k++)
                g_string_append_c(s, q[k] == 0 ? '`' : (char)(0x20 + q[k]));
        }
        g_string_append_c(s, '\n');
    }
    g_string_append(s, "`\nend\n\nBye.\n");
    g_bytes_unref(eicar);
    return g_string_free_to_bytes(s);
}

/* ---- encrypted archives, built at run time ------------------------------ */

/* A zip archive with traditional PKWARE encryption ("ZipCrypto", APPNOTE
 * 6.1), the kind `zip -P` writes: real encryption, so the content is hidden
 * from the scanner, which must not call it clean. Members are stored, each
 * encrypted or not. */

static guint32 zc_crc_table[256];

static void
zc_init_table(void)
{
    for (guint32 n = 0; n < 256; n++) {
        guint32 c = n;

        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        zc_crc_table[n] = c;
    }
}

static guint32
zc_crc_byte(guint32 crc, guint8 b)
{
    return zc_crc_table[(crc ^ b) & 0xff] ^ (crc >> 8);
}

static guint32
zc_crc32(const guint8 *p, size_t len)
{
    guint32 crc = 0xffffffffu;

    for (size_t i = 0; i < len; i++)
        crc = zc_crc_byte(crc, p[i]);
    return crc ^ 0xffffffffu;
}

struct zc_keys {
    guint32 k0, k1, k2;
};

static void
zc_update(struct zc_keys *k, guint8 plain)
{
    k->k0 = zc_crc_byte(k->k0, plain);
    k->k1 = (k->k1 + (k->k0 & 0xff)) * 134775813u + 1;
    k->k2 = zc_crc_byte(k->k2, (guint8)(k->k1 >> 24));
}

static guint8
zc_encrypt(struct zc_keys *k, guint8 plain)
{
    guint16 t = (guint16)((k->k2 | 2) & 0xffff);
    guint8 c = plain ^ (guint8)(((guint32)t * (t ^ 1)) >> 8);

    zc_update(k, plain);
    return c;
}

static void
put16(GByteArray *a, guint16 v)
{
    guint8 b[2] = { v & 0xff, v >> 8 };

    g_byte_array_append(a, b, 2);
}

static void
put32(GByteArray *a, guint32 v)
{
    guint8 b[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24 };

    g_byte_array_append(a, b, 4);
}

/* Appends the central directory cd (n records) and the end record to zip;
 * frees both arrays and returns the archive. */
static GBytes *
zip_finish(GByteArray *zip, GByteArray *cd, size_t n)
{
    guint32 cd_offset = zip->len, cd_size = cd->len;

    g_byte_array_append(zip, cd->data, cd->len);
    put32(zip, 0x06054b50);
    put16(zip, 0);
    put16(zip, 0);
    put16(zip, (guint16)MIN(n, 0xffff));
    put16(zip, (guint16)MIN(n, 0xffff));
    put32(zip, cd_size);
    put32(zip, cd_offset);
    put16(zip, 0);
    g_byte_array_unref(cd);
    return g_byte_array_free_to_bytes(zip);
}

struct zip_member {
    const char *name;
    GBytes *data;
    const char *password;       /* NULL: stored in the clear */
};

static GBytes *
make_zip(const struct zip_member *m, size_t n)
{
    GByteArray *zip = g_byte_array_new();
    GByteArray *cd = g_byte_array_new();

    zc_init_table();
    for (size_t i = 0; i < n; i++) {
        const guint8 *data = g_bytes_get_data(m[i].data, NULL);
        size_t len = g_bytes_get_size(m[i].data);
        guint32 crc = zc_crc32(data, len);
        guint16 flags = m[i].password != NULL ? 1 : 0;
        guint32 csize = (guint32)len + (m[i].password != NULL ? 12 : 0);
        guint32 offset = zip->len;
        guint16 nlen = (guint16)strlen(m[i].name);

        /* Local header: version 2.0, flags, stored, no time, CRC, sizes. */
        put32(zip, 0x04034b50);
        put16(zip, 20);
        put16(zip, flags);
        put16(zip, 0);
        put16(zip, 0);
        put16(zip, 0x21);
        put32(zip, crc);
        put32(zip, csize);
        put32(zip, (guint32)len);
        put16(zip, nlen);
        put16(zip, 0);
        g_byte_array_append(zip, (const guint8 *)m[i].name, nlen);
        if (m[i].password != NULL) {
            struct zc_keys k = { 0x12345678u, 0x23456789u, 0x34567890u };

            for (const char *p = m[i].password; *p != '\0'; p++)
                zc_update(&k, (guint8)*p);
            /* The 12-byte encryption header ends with the CRC's top byte
             * (the password check). */
            for (int b = 0; b < 12; b++) {
                guint8 c = zc_encrypt(&k, b == 11 ? (guint8)(crc >> 24) : (guint8)(b * 37 + 1));

                g_byte_array_append(zip, &c, 1);
            }
            for (size_t b = 0; b < len; b++) {
                guint8 c = zc_encrypt(&k, data[b]);

                g_byte_array_append(zip, &c, 1);
            }
        } else {
            g_byte_array_append(zip, data, (guint)len);
        }
        /* Its central directory entry. */
        put32(cd, 0x02014b50);
        put16(cd, 20);
        put16(cd, 20);
        put16(cd, flags);
        put16(cd, 0);
        put16(cd, 0);
        put16(cd, 0x21);
        put32(cd, crc);
        put32(cd, csize);
        put32(cd, (guint32)len);
        put16(cd, nlen);
        put16(cd, 0);
        put16(cd, 0);
        put16(cd, 0);
        put16(cd, 0);
        put32(cd, 0);
        put32(cd, offset);
        g_byte_array_append(cd, (const guint8 *)m[i].name, nlen);
    }
    return zip_finish(zip, cd, n);
}

static GBytes *
make_encrypted_zip_text(void)
{
    GBytes *text = make_clean_text();
    const struct zip_member m[] = { { "minutes.txt", text, "secret" } };
    GBytes *zip = make_zip(m, 1);

    g_bytes_unref(text);
    return zip;
}

static GBytes *
make_encrypted_zip_eicar(void)
{
    GBytes *eicar = make_eicar();
    const struct zip_member m[] = { { "eicar.com", eicar, "infected" } };
    GBytes *zip = make_zip(m, 1);

    g_bytes_unref(eicar);
    return zip;
}

/* One member in the clear (EICAR), one encrypted: what can be seen is
 * reported, as a match takes precedence over the heuristic. */
static GBytes *
make_mixed_zip_eicar(void)
{
    GBytes *eicar = make_eicar(), *text = make_clean_text();
    const struct zip_member m[] = {
        { "readme.txt", text, "secret" },
        { "eicar.com", eicar, NULL },
    };
    GBytes *zip = make_zip(m, 2);

    g_bytes_unref(text);
    g_bytes_unref(eicar);
    return zip;
}

static GBytes *
make_plain_zip_text(void)
{
    GBytes *text = make_clean_text();
    const struct zip_member m[] = { { "minutes.txt", text, NULL } };
    GBytes *zip = make_zip(m, 1);

    g_bytes_unref(text);
    return zip;
}

static GBytes *
make_mail_encrypted_zip(void)
{
    GBytes *zip = make_encrypted_zip_eicar();
    char *b64 = g_base64_encode(g_bytes_get_data(zip, NULL), g_bytes_get_size(zip));
    char *mail = g_strdup_printf(
        "From: a@example.com\nTo: b@example.net\nSubject: invoice\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
        "--b\nContent-Type: text/plain\n\nThe password is infected.\n"
        "--b\nContent-Type: application/zip; name=\"invoice.zip\"\n"
        "Content-Transfer-Encoding: base64\n\n%s\n--b--\n", b64);

    g_free(b64);
    g_bytes_unref(zip);
    return g_bytes_new_take(mail, strlen(mail));
}

/* ---- zips that libclamav 1.4 reads only in part --------------------------- */

/* Raw deflate (what zip method 8 holds) of data. */
static GBytes *
deflate_raw(GBytes *data)
{
    GConverter *z = G_CONVERTER(g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_RAW, 9));
    GByteArray *out = g_byte_array_new();
    const guint8 *in = g_bytes_get_data(data, NULL);
    gsize left = g_bytes_get_size(data);
    guint8 buf[65536];
    GConverterResult r;

    do {
        gsize read = 0, written = 0;

        r = g_converter_convert(z, in, left, buf, sizeof(buf), G_CONVERTER_INPUT_AT_END, &read,
                                &written, NULL);
        g_assert_cmpint(r, !=, G_CONVERTER_ERROR);
        g_byte_array_append(out, buf, (guint)written);
        in += read;
        left -= read;
    } while (r != G_CONVERTER_FINISHED);
    g_object_unref(z);
    return g_byte_array_free_to_bytes(out);
}

/* A zip of n members, each with the method and size fields given (not
 * necessarily true ones) and stored bytes data (NULL: empty). */
struct raw_member {
    guint16 method;
    guint32 csize, usize;       /* 0: the real ones */
    GBytes *data;
};

static GBytes *
make_raw_zip(const struct raw_member *m, size_t n)
{
    GByteArray *zip = g_byte_array_new(), *cd = g_byte_array_new();

    for (size_t i = 0; i < n; i++) {
        gsize len = m[i].data != NULL ? g_bytes_get_size(m[i].data) : 0;
        guint32 csize = m[i].csize ? m[i].csize : (guint32)len;
        guint32 usize = m[i].usize ? m[i].usize : (guint32)len;
        char name[16];
        guint32 offset = zip->len;

        g_snprintf(name, sizeof(name), "m%06zu.txt", i);
        for (int pass = 0; pass < 2; pass++) {
            GByteArray *a = pass == 0 ? zip : cd;

            put32(a, pass == 0 ? 0x04034b50 : 0x02014b50);
            if (pass == 1)
                put16(a, 20);
            put16(a, 20);
            put16(a, 0);
            put16(a, m[i].method);
            put16(a, 0);
            put16(a, 0x21);
            put32(a, 0);        /* CRC: libclamav does not check it */
            put32(a, csize);
            put32(a, usize);
            put16(a, (guint16)strlen(name));
            put16(a, 0);
            if (pass == 1) {
                put16(a, 0);
                put16(a, 0);
                put16(a, 0);
                put32(a, 0);
                put32(a, offset);
            }
            g_byte_array_append(a, (const guint8 *)name, (guint)strlen(name));
        }
        if (len > 0)
            g_byte_array_append(zip, g_bytes_get_data(m[i].data, NULL), (guint)len);
    }
    return zip_finish(zip, cd, n);
}

/* One member: EICAR, deflated (so not visible in the archive's own bytes),
 * under the method and size fields given. */
static GBytes *
make_zip_hidden_eicar(guint16 method, guint32 size_fields)
{
    GBytes *eicar = make_eicar_in_text(), *packed = deflate_raw(eicar);
    const struct raw_member m = { method, size_fields, size_fields, packed };
    GBytes *zip = make_raw_zip(&m, 1);

    g_bytes_unref(packed);
    g_bytes_unref(eicar);
    return zip;
}

static GBytes *
make_zip_deflate_eicar(void)
{
    return make_zip_hidden_eicar(8, 0);
}

/* zip64 ("see the extra field"): libclamav skips the member. */
static GBytes *
make_zip64_eicar(void)
{
    return make_zip_hidden_eicar(8, 0xffffffffu);
}

/* LZMA, PPMd, Zstandard ...: libclamav skips a method it does not know. */
static GBytes *
make_zip_lzma_eicar(void)
{
    return make_zip_hidden_eicar(14, 0);
}

/* EICAR after 2 MB of zeros in a member whose header says 1,000 bytes:
 * libclamav inflates MaxFileSize (1 MB in the case below), scans that, and
 * drops the rest without a word. */
static GBytes *
make_zip_false_size_eicar(void)
{
    GBytes *eicar = make_eicar(), *packed;
    GByteArray *plain = g_byte_array_new();
    struct raw_member m = { 8, 0, 1000, NULL };
    GBytes *zip, *bytes;

    g_byte_array_set_size(plain, 2u << 20);
    memset(plain->data, 0, plain->len);
    g_byte_array_append(plain, g_bytes_get_data(eicar, NULL), (guint)g_bytes_get_size(eicar));
    bytes = g_byte_array_free_to_bytes(plain);
    packed = deflate_raw(bytes);
    m.data = packed;
    m.csize = (guint32)g_bytes_get_size(packed);
    zip = make_raw_zip(&m, 1);
    g_bytes_unref(packed);
    g_bytes_unref(bytes);
    g_bytes_unref(eicar);
    return zip;
}

/* 101 empty members (the case below allows 100): libclamav compares every
 * central record with the others, and does not count empty ones at all. */
static GBytes *
make_zip_many_members(void)
{
    struct raw_member m[101] = { { 0 } };

    return make_raw_zip(m, G_N_ELEMENTS(m));
}

/* The same, with an archive comment after the end record: the end record
 * is found further back, past the comment's own 'P's. */
static GBytes *
make_zip_many_members_comment(void)
{
    static const char comment[] = "PK\003\004 PPP, Pretty Please PK";
    GBytes *zip = make_zip_many_members();
    GByteArray *a = g_byte_array_new();

    g_byte_array_append(a, g_bytes_get_data(zip, NULL), (guint)g_bytes_get_size(zip));
    a->data[a->len - 2] = (guint8)(sizeof(comment) - 1);
    a->data[a->len - 1] = 0;
    g_byte_array_append(a, (const guint8 *)comment, sizeof(comment) - 1);
    g_bytes_unref(zip);
    return g_byte_array_free_to_bytes(a);
}

/* MQ_WRITE_ZIPS=DIR keeps each object of /scanner/encrypted in DIR, for a
 * look with `unzip -P` and for tests/clamd.sh, which has clamd scan them
 * too. */
static void
maybe_keep(const char *what, GBytes *data)
{
    const char *dir = g_getenv("MQ_WRITE_ZIPS");
    char *path;

    if (dir == NULL)
        return;
    path = g_build_filename(dir, what, NULL);
    g_assert_true(g_file_set_contents(path, g_bytes_get_data(data, NULL),
                                      (gssize)g_bytes_get_size(data), NULL));
    g_free(path);
}

/* NULL if the file is not there (clamav-testfiles not installed). */
static GBytes *
load_testfile(const char *name)
{
    char *path = g_build_filename(TESTFILES, name, NULL);
    char *data = NULL;
    gsize len = 0;
    GBytes *bytes = NULL;

    if (g_file_get_contents(path, &data, &len, NULL))
        bytes = g_bytes_new_take(data, len);
    g_free(path);
    return bytes;
}

/* ---- verdicts ------------------------------------------------------------ */

static const struct {
    const char *what;
    GBytes *(*make)(void);      /* or NULL: */
    const char *testfile;       /* a file of clamav-testfiles */
    int verdict;
    const char *name_prefix;
} verdict_cases[] = {
    { "EICAR", make_eicar, NULL, MQ_SCAN_INFECTED, "MqScan.Test.EICAR" },
    { "EICAR inside text", make_eicar_in_text, NULL, MQ_SCAN_INFECTED, "MqScan.Test.EICAR" },
    { "clean text", make_clean_text, NULL, MQ_SCAN_CLEAN, NULL },
    { "64 KiB of zeros", make_zeros, NULL, MQ_SCAN_CLEAN, NULL },
    { "empty", make_empty, NULL, MQ_SCAN_CLEAN, NULL },
    { "mail, base64 EICAR", make_mail_base64_eicar, NULL, MQ_SCAN_INFECTED, "MqScan.Test.EICAR" },
    { "mail, inline uuencoded EICAR", make_mail_inline_uu_eicar, NULL, MQ_SCAN_INFECTED,
      "MqScan.Test.EICAR" },
    { "clam.exe", NULL, "clam.exe", MQ_SCAN_INFECTED, "MqScan.Test.ClamExe" },
    { "clam.zip", NULL, "clam.zip", MQ_SCAN_INFECTED, "MqScan.Test.ClamExe" },
    { "clam.tar.gz", NULL, "clam.tar.gz", MQ_SCAN_INFECTED, "MqScan.Test.ClamExe" },
    { "clam.mail", NULL, "clam.mail", MQ_SCAN_INFECTED, "MqScan.Test.ClamExe" },
    { "clam.exe.mbox.uu", NULL, "clam.exe.mbox.uu", MQ_SCAN_INFECTED, "MqScan.Test.ClamExe" },
    { "deflated zip, EICAR", make_zip_deflate_eicar, NULL, MQ_SCAN_INFECTED, "MqScan.Test.EICAR" },
};

static void
test_load(void)
{
    struct mq_scanner *scanner = new_scanner(&default_limits);
    const char *desc = mq_scanner_describe(scanner);
    double load = -1, compile = -1;

    g_assert_cmpuint(mq_scanner_signatures(scanner), >=, 4);
    /* Four signatures load and compile in milliseconds; a minute means the
     * clock or the fields are wrong. */
    mq_scanner_build_times(scanner, &load, &compile);
    g_assert_cmpfloat(load, >, 0.0);
    g_assert_cmpfloat(load, <, 60.0);
    g_assert_cmpfloat(compile, >=, 0.0);
    g_assert_cmpfloat(compile, <, 60.0);
    g_assert_true(g_str_has_prefix(desc, "libclamav "));
    g_assert_nonnull(strstr(desc, " signatures"));
    g_test_message("%s", desc);
    mq_scanner_unref(&scanner);
    g_assert_null(scanner);
    /* A NULL engine is allowed, like g_clear_pointer. */
    mq_scanner_unref(&scanner);
}

static void
test_verdicts(void)
{
    struct mq_scanner *scanner = new_scanner(&default_limits);

    for (gsize c = 0; c < G_N_ELEMENTS(verdict_cases); c++) {
        GBytes *data = verdict_cases[c].make != NULL ? verdict_cases[c].make()
                                                      : load_testfile(verdict_cases[c].testfile);
        GError *err = NULL;
        char *name = (char *)"not touched";
        int verdict;

        if (data == NULL) {
            g_test_message("skipped %s: %s/%s missing", verdict_cases[c].what, TESTFILES,
                           verdict_cases[c].testfile);
            continue;
        }
        verdict = mq_scanner_scan(scanner, g_bytes_get_data(data, NULL), g_bytes_get_size(data),
                                  verdict_cases[c].what, &name, &err);
        g_test_message("%s: %d %s", verdict_cases[c].what, verdict, name ? name : "-");
        g_assert_no_error(err);
        g_assert_cmpint(verdict, ==, verdict_cases[c].verdict);
        if (verdict_cases[c].name_prefix == NULL) {
            g_assert_null(name);
        } else {
            g_assert_nonnull(name);
            g_assert_true(g_str_has_prefix(name, verdict_cases[c].name_prefix));
        }
        g_free(name);
        g_bytes_unref(data);
    }
    mq_scanner_unref(&scanner);
}

/* Encrypted archives are a verdict of their own (CL_SCAN_HEURISTIC_ENCRYPTED_*
 * in the scan options): never clean, and not "infected" either. */
static const struct {
    const char *what;
    GBytes *(*make)(void);
    int verdict;
    const char *name;           /* exact, or a prefix for INFECTED */
} encrypted_cases[] = {
    { "encrypted-text.zip", make_encrypted_zip_text, MQ_SCAN_ENCRYPTED, "Heuristics.Encrypted.Zip" },
    { "encrypted-eicar.zip", make_encrypted_zip_eicar, MQ_SCAN_ENCRYPTED,
      "Heuristics.Encrypted.Zip" },
    { "mixed.zip", make_mixed_zip_eicar, MQ_SCAN_INFECTED, "MqScan.Test.EICAR" },
    { "plain.zip", make_plain_zip_text, MQ_SCAN_CLEAN, NULL },
    { "encrypted-zip.eml", make_mail_encrypted_zip, MQ_SCAN_ENCRYPTED,
      "Heuristics.Encrypted.Zip" },
};

static void
test_encrypted(void)
{
    struct mq_scanner *scanner = new_scanner(&default_limits);

    for (gsize c = 0; c < G_N_ELEMENTS(encrypted_cases); c++) {
        GBytes *data = encrypted_cases[c].make();
        GError *err = NULL;
        char *name = NULL;
        int verdict;

        maybe_keep(encrypted_cases[c].what, data);
        verdict = mq_scanner_scan(scanner, g_bytes_get_data(data, NULL), g_bytes_get_size(data),
                                  encrypted_cases[c].what, &name, &err);
        g_test_message("%s: %d %s", encrypted_cases[c].what, verdict, name ? name : "-");
        g_assert_no_error(err);
        g_assert_cmpint(verdict, ==, encrypted_cases[c].verdict);
        if (encrypted_cases[c].name == NULL)
            g_assert_null(name);
        else if (verdict == MQ_SCAN_INFECTED)
            g_assert_true(g_str_has_prefix(name, encrypted_cases[c].name));
        else
            g_assert_cmpstr(name, ==, encrypted_cases[c].name);
        g_free(name);
        g_bytes_unref(data);
    }
    mq_scanner_unref(&scanner);
}

/* ---- fail closed ----------------------------------------------------------- */

/* Database directories that must not give an engine. */
static const struct {
    const char *what;
    const char *file;           /* created in a fresh directory, or NULL */
    const char *content;
    bool missing;               /* use a directory that does not exist */
    const char *message;        /* substring of the error */
} fail_cases[] = {
    { "empty directory", NULL, NULL, false, "cannot load signatures" },
    { "only a README", "README", "not a database\n", false, "cannot load signatures" },
    { "no signatures, only an ignore list", "local.ign2", "MqScan.Test.EICAR\n", false,
      "no signatures in" },
    { "malformed database", "bad.ndb", "MqScan.Bad:0:*:zz\n", false, "cannot load signatures" },
    { "nonexistent directory", NULL, NULL, true, "cannot load signatures" },
};

static void
test_fail_closed(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(fail_cases); c++) {
        GError *err = NULL;
        char *dir = g_dir_make_tmp("mqscan-db-XXXXXX", &err);
        char *file = NULL, *dbdir;
        struct mq_scanner *scanner;

        g_assert_no_error(err);
        if (fail_cases[c].file != NULL) {
            file = g_build_filename(dir, fail_cases[c].file, NULL);
            g_assert_true(g_file_set_contents(file, fail_cases[c].content, -1, NULL));
        }
        dbdir = fail_cases[c].missing ? g_build_filename(dir, "nonexistent", NULL)
                                      : g_strdup(dir);
        g_test_message("fail closed: %s", fail_cases[c].what);
        scanner = mq_scanner_new(dbdir, NULL, &default_limits, &err);
        g_assert_null(scanner);
        g_assert_error(err, MQ_ERROR, MQ_ERROR_ENGINE);
        g_assert_nonnull(strstr(err->message, fail_cases[c].message));
        g_clear_error(&err);
        if (file != NULL)
            g_assert_cmpint(g_unlink(file), ==, 0);
        g_assert_cmpint(g_rmdir(dir), ==, 0);
        g_free(dbdir);
        g_free(file);
        g_free(dir);
    }
}

/* ---- limits --------------------------------------------------------------- */

/* A mail whose scan takes far longer than 1 ms anywhere: many base64
 * attachments of pseudo-random bytes, each of which libclamav's mail parser
 * extracts and scans, checking its time limit between them. */
static GBytes *
make_slow_mail(void)
{
    GString *s = g_string_new("From: a@example.com\nMIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=\"s\"\n\n");
    GRand *rand = g_rand_new_with_seed(42);
    guint8 *chunk = g_malloc(64 * 1024);

    for (int part = 0; part < 64; part++) {
        char *b64;

        for (int i = 0; i < 64 * 1024; i++)
            chunk[i] = (guint8)g_rand_int(rand);
        b64 = g_base64_encode(chunk, 64 * 1024);
        g_string_append_printf(s, "--s\nContent-Type: application/octet-stream; name=\"p%d.bin\"\n"
                                  "Content-Transfer-Encoding: base64\n\n", part);
        for (size_t off = 0, n = strlen(b64); off < n; off += 76) {
            g_string_append_len(s, b64 + off, MIN(76, n - off));
            g_string_append_c(s, '\n');
        }
        g_free(b64);
    }
    g_string_append(s, "--s--\n");
    g_free(chunk);
    g_rand_free(rand);
    return g_string_free_to_bytes(s);
}

static const struct {
    const char *what;
    struct mq_scanner_limits limits;
    const char *testfile;       /* or NULL: */
    GBytes *(*make)(void);
    const char *name;           /* expected exactly */
} limit_cases[] = {
    { "top-level object above MaxFileSize", { 100u << 20, 300, 16, 1000, 60000 },
      "clam.zip", NULL, "Heuristics.Limits.Exceeded.MaxFileSize" },
    { "archive member above MaxFileSize", { 100u << 20, 1000, 16, 1000, 60000 },
      "clam.tar.gz", NULL, "Heuristics.Limits.Exceeded.MaxFileSize" },
    { "archive above MaxScanSize", { 300, 100u << 20, 16, 1000, 60000 },
      "clam.zip", NULL, "Heuristics.Limits.Exceeded.MaxScanSize" },
    { "archive deeper than MaxRecursion", { 100u << 20, 100u << 20, 1, 1000, 60000 },
      "clam.zip", NULL, "Heuristics.Limits.Exceeded.MaxRecursion" },
    { "archive with more than MaxFiles", { 100u << 20, 100u << 20, 16, 1, 60000 },
      "clam.zip", NULL, "Heuristics.Limits.Exceeded.MaxFiles" },
    { "mail beyond MaxScanSize", { 100000, 100u << 20, 16, 10000, 60000 },
      NULL, make_slow_mail, "Heuristics.Limits.Exceeded.MaxScanSize" },
    { "slow mail beyond MaxScanTime", { 400u << 20, 100u << 20, 16, 10000, 1 },
      NULL, make_slow_mail, "Heuristics.Limits.Exceeded.MaxScanTime" },
    /* What libclamav's zip reader passes over, found before it reads. */
    { "zip64 member", { 100u << 20, 25u << 20, 16, 10000, 60000 },
      NULL, make_zip64_eicar, "Unsupported.Zip64" },
    { "zip member in LZMA", { 100u << 20, 25u << 20, 16, 10000, 60000 },
      NULL, make_zip_lzma_eicar, "Unsupported.ZipMethod" },
    { "zip member inflating past MaxFileSize", { 100u << 20, 1u << 20, 16, 10000, 60000 },
      NULL, make_zip_false_size_eicar, "Heuristics.Limits.Exceeded.MaxFileSize" },
    { "zip with more members than MaxFiles", { 100u << 20, 25u << 20, 16, 100, 60000 },
      NULL, make_zip_many_members, "Heuristics.Limits.Exceeded.MaxFiles" },
    { "zip with more members than MaxFiles, and a comment", { 100u << 20, 25u << 20, 16, 100, 60000 },
      NULL, make_zip_many_members_comment, "Heuristics.Limits.Exceeded.MaxFiles" },
};

static void
test_limits(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(limit_cases); c++) {
        struct mq_scanner *scanner = new_scanner(&limit_cases[c].limits);
        GBytes *data = limit_cases[c].make != NULL ? limit_cases[c].make()
                                                    : load_testfile(limit_cases[c].testfile);
        GError *err = NULL;
        char *name = NULL;
        int verdict;

        if (data == NULL) {
            g_test_message("skipped %s: %s/%s missing", limit_cases[c].what, TESTFILES,
                           limit_cases[c].testfile);
            mq_scanner_unref(&scanner);
            continue;
        }
        verdict = mq_scanner_scan(scanner, g_bytes_get_data(data, NULL), g_bytes_get_size(data),
                                  NULL, &name, &err);
        g_test_message("%s: %d %s", limit_cases[c].what, verdict, name ? name : "-");
        g_assert_no_error(err);
        /* Never clean: a limit is a verdict of its own. */
        g_assert_cmpint(verdict, ==, MQ_SCAN_UNSCANNABLE);
        g_assert_cmpstr(name, ==, limit_cases[c].name);
        g_free(name);
        g_bytes_unref(data);
        mq_scanner_unref(&scanner);
    }
}

/* libclamav writes temporary files even for a scan from memory; they go to
 * the directory we name, and nothing is left there afterwards. */
static void
test_tmp_dir(void)
{
    GError *err = NULL;
    char *tmp = g_dir_make_tmp("mqscan-tmp-XXXXXX", &err);
    struct mq_scanner *scanner;
    GBytes *data = make_mail_base64_eicar();
    char *name = NULL;
    GDir *dir;

    g_assert_no_error(err);
    scanner = mq_scanner_new(testsigs(), tmp, &default_limits, &err);
    g_assert_no_error(err);
    g_assert_cmpint(mq_scanner_scan(scanner, g_bytes_get_data(data, NULL), g_bytes_get_size(data),
                                    "mail", &name, &err), ==, MQ_SCAN_INFECTED);
    g_assert_true(g_str_has_prefix(name, "MqScan.Test.EICAR"));
    dir = g_dir_open(tmp, 0, &err);
    g_assert_no_error(err);
    g_assert_null(g_dir_read_name(dir));
    g_dir_close(dir);
    g_assert_cmpint(g_rmdir(tmp), ==, 0);
    g_free(name);
    g_bytes_unref(data);
    mq_scanner_unref(&scanner);
    g_free(tmp);
}

/* ---- threads and references ----------------------------------------------- */

#define N_THREADS 4
#define N_ROUNDS 40

struct thread_job {
    struct mq_scanner *scanner;     /* a reference of the thread's own */
    GBytes *objects[4];
    int expected[4];
    unsigned mismatches;
    unsigned scans;
};

static gpointer
scan_thread(gpointer p)
{
    struct thread_job *job = p;

    for (int r = 0; r < N_ROUNDS; r++) {
        for (int i = 0; i < 4; i++) {
            GBytes *obj = job->objects[(i + r) % 4];
            int want = job->expected[(i + r) % 4];
            char *name = NULL;
            GError *err = NULL;
            int got = mq_scanner_scan(job->scanner, g_bytes_get_data(obj, NULL),
                                      g_bytes_get_size(obj), NULL, &name, &err);

            if (got != want || err != NULL)
                job->mismatches++;
            job->scans++;
            g_clear_error(&err);
            g_free(name);
        }
    }
    mq_scanner_unref(&job->scanner);
    return NULL;
}

static void
test_threads(void)
{
    struct mq_scanner *scanner = new_scanner(&default_limits);
    GBytes *objects[4] = {
        make_eicar(), make_clean_text(), make_mail_base64_eicar(), make_zeros(),
    };
    const int expected[4] = { MQ_SCAN_INFECTED, MQ_SCAN_CLEAN, MQ_SCAN_INFECTED, MQ_SCAN_CLEAN };
    struct thread_job jobs[N_THREADS];
    GThread *threads[N_THREADS];

    for (int t = 0; t < N_THREADS; t++) {
        jobs[t].scanner = mq_scanner_ref(scanner);
        for (int i = 0; i < 4; i++) {
            jobs[t].objects[i] = objects[i];
            jobs[t].expected[i] = expected[i];
        }
        jobs[t].mismatches = 0;
        jobs[t].scans = 0;
    }
    /* The threads hold the only references from here on: the last one to
     * finish frees the engine. */
    mq_scanner_unref(&scanner);
    for (int t = 0; t < N_THREADS; t++)
        threads[t] = g_thread_new("scan", scan_thread, &jobs[t]);
    for (int t = 0; t < N_THREADS; t++) {
        g_thread_join(threads[t]);
        g_assert_null(jobs[t].scanner);
        g_assert_cmpuint(jobs[t].scans, ==, N_ROUNDS * 4);
        g_assert_cmpuint(jobs[t].mismatches, ==, 0);
    }
    for (int i = 0; i < 4; i++)
        g_bytes_unref(objects[i]);
}

static void
test_refcount(void)
{
    struct mq_scanner *scanner = new_scanner(&default_limits);
    struct mq_scanner *second = mq_scanner_ref(scanner);
    GBytes *eicar = make_eicar();
    char *name = NULL;

    g_assert_true(second == scanner);
    mq_scanner_unref(&scanner);
    g_assert_null(scanner);
    /* Still alive through the second reference. */
    g_assert_cmpint(mq_scanner_scan(second, g_bytes_get_data(eicar, NULL), g_bytes_get_size(eicar),
                                    NULL, &name, NULL), ==, MQ_SCAN_INFECTED);
    g_free(name);
    mq_scanner_unref(&second);
    g_assert_null(second);
    g_bytes_unref(eicar);
}

static void
test_ref_null_panics(void)
{
    if (g_test_subprocess()) {
        mq_scanner_ref(NULL);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*panic: mq_scanner_ref*");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    mq_log_open("test-scanner", MQ_LOG_SINK_STDERR);

    g_test_add_func("/scanner/load", test_load);
    g_test_add_func("/scanner/verdicts", test_verdicts);
    g_test_add_func("/scanner/encrypted", test_encrypted);
    g_test_add_func("/scanner/fail-closed", test_fail_closed);
    g_test_add_func("/scanner/limits", test_limits);
    g_test_add_func("/scanner/tmp-dir", test_tmp_dir);
    g_test_add_func("/scanner/threads", test_threads);
    g_test_add_func("/scanner/refcount", test_refcount);
    g_test_add_func("/scanner/ref-null-panics", test_ref_null_panics);
    return g_test_run();
}
