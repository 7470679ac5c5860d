/* test-config - the configuration loader, its validators and lookups.
 *
 * Bad configurations are fixture files in tests/data/config; the table below
 * gives the line each error must name ("FILE:LINE: ...") and a piece of the
 * message. Good configurations are written into a temporary directory, so
 * their directories can point into it.
 */
#include <config.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/config.h"
#include "mqscan/error.h"

#include "testutil.h"

static char *tmpdir;

/* Writes a config file into the temporary directory: "@T@" in text is
 * replaced by the directory. Returns its path (g_free). */
static char *
write_config(const char *name, const char *text)
{
    char *path = g_build_filename(tmpdir, name, NULL);
    char **parts = g_strsplit(text, "@T@", -1);
    char *body = g_strjoinv(tmpdir, parts);
    GError *err = NULL;

    g_file_set_contents(path, body, -1, &err);
    g_assert_no_error(err);
    g_strfreev(parts);
    g_free(body);
    return path;
}

#define DIRS \
    "incoming_queue_dir = \"@T@/mqueue.in\"\n" \
    "outgoing_queue_dir = \"@T@/mqueue\"\n" \
    "quarantine_dir = \"@T@/quarantine\"\n" \
    "hold_dir = \"@T@/hold\"\n" \
    "state_dir = \"@T@/state\"\n" \
    "scan_tmp_dir = \"@T@/tmp\"\n" \
    "pid_file = \"@T@/mqscand.pid\"\n"

static struct mq_config *
load_ok(const char *name, const char *text)
{
    char *path = write_config(name, text);
    GError *err = NULL;
    struct mq_config *c = mq_config_load(path, &err);

    g_assert_no_error(err);
    g_assert_nonnull(c);
    g_assert_cmpstr(c->file, ==, path);
    g_free(path);
    return c;
}

static void
assert_in_tmp(const char *got, const char *rel)
{
    char *want = g_build_filename(tmpdir, rel, NULL);
    g_assert_cmpstr(got, ==, want);
    g_free(want);
}

static void
test_good_minimal(void)
{
    struct mq_config *c = load_ok("minimal.conf", "# minimal\n" DIRS);
    char host[256] = "";

    assert_in_tmp(c->incoming_queue_dir, "mqueue.in");
    assert_in_tmp(c->outgoing_queue_dir, "mqueue");
    assert_in_tmp(c->quarantine_dir, "quarantine");
    assert_in_tmp(c->hold_dir, "hold");
    assert_in_tmp(c->state_dir, "state");
    assert_in_tmp(c->scan_tmp_dir, "tmp");
    assert_in_tmp(c->pid_file, "mqscand.pid");

    /* defaults */
    g_assert_cmpstr(c->clamav_database_dir, ==, "/var/lib/clamav");
    g_assert_cmpuint(c->clamav_max_scan_size, ==, 134217728);
    g_assert_cmpuint(c->clamav_max_file_size, ==, 67108864);
    g_assert_cmpuint(c->clamav_max_recursion, ==, 16);
    g_assert_cmpuint(c->clamav_max_files, ==, 10000);
    g_assert_cmpuint(c->clamav_max_scan_time, ==, 120000);
    g_assert_cmpuint(c->max_message_size, ==, 52428800);
    g_assert_cmpuint(c->max_mime_depth, ==, 20);
    g_assert_cmpuint(c->max_mime_parts, ==, 1000);
    g_assert_cmpstr(c->postmaster, ==, "postmaster");
    g_assert_nonnull(c->local_domains);
    g_assert_null(c->local_domains[0]);
    g_assert_cmpuint(c->n_internal_networks, ==, 2);
    g_assert_cmpint(c->internal_networks[0].family, ==, AF_INET);
    g_assert_cmpuint(c->internal_networks[0].prefix, ==, 8);
    g_assert_cmpint(c->internal_networks[1].family, ==, AF_INET6);
    g_assert_cmpuint(c->internal_networks[1].prefix, ==, 128);
    g_assert_cmpuint(c->batch_max_messages, ==, 30);
    g_assert_cmpuint(c->batch_max_bytes, ==, 52428800);
    g_assert_cmpuint(c->batch_max_wait_ms, ==, 500);
    g_assert_cmpuint(c->workers, ==, 2);
    g_assert_true(c->queue_sync_fs);
    g_assert_cmpuint(c->rescan_interval, ==, 30);
    g_assert_cmpuint(c->retry_interval, ==, 60);
    g_assert_cmpint(c->on_scan_error, ==, MQ_ON_ERROR_DEFER);
    g_assert_cmpint(c->log_level, ==, MQ_LOG_INFO);
    /* hostname defaults to the system's name */
    g_assert_cmpint(gethostname(host, sizeof(host) - 1), ==, 0);
    g_assert_cmpstr(c->hostname, ==, host[0] ? host : "localhost");

    mq_config_free(&c);
    g_assert_null(c);
    mq_config_free(&c);         /* NULL allowed */
}

static void
test_good_full(void)
{
    struct mq_config *c = load_ok("full.conf",
        "# every option set\n" DIRS
        "clamav_database_dir = \"/work/shared/testsigs\"\n"
        "clamav_max_scan_size = \"2g\"\n"
        "clamav_max_file_size = \"1024K\"\n"
        "clamav_max_recursion = 64\n"
        "clamav_max_files = 1\n"
        "clamav_max_scan_time = 1000\n"
        "max_message_size = 1024\n"             /* unquoted number: a string too */
        "max_mime_depth = 100\n"
        "max_mime_parts = 100000\n"
        "postmaster = \"abuse@example.com\"\n"
        "local_domains = { \"Example.COM\", \"mail.example.org\" }\n"
        "internal_networks = { \"192.0.2.7/24\", \"2001:db8::1/32\", \"198.51.100.1\" }\n"
        "hostname = \"mx1.example.com\"\n"
        "batch_max_messages = 10000\n"
        "batch_max_bytes = \"16G\"\n"
        "batch_max_wait = 1.25\n"
        "workers = 64\n"
        "queue_sync = \"files\"\n"
        "rescan_interval = 1\n"
        "retry_interval = 86400\n"
        "on_scan_error = \"hold\"\n"
        "log_level = \"debug\"\n");
    static const uint8_t net0[4] = { 192, 0, 2, 0 };
    static const uint8_t net2[4] = { 198, 51, 100, 1 };
    static const uint8_t net1[16] = { 0x20, 0x01, 0x0d, 0xb8 };

    g_assert_cmpstr(c->clamav_database_dir, ==, "/work/shared/testsigs");
    g_assert_cmpuint(c->clamav_max_scan_size, ==, (uint64_t)2 << 30);
    g_assert_cmpuint(c->clamav_max_file_size, ==, 1 << 20);
    g_assert_cmpuint(c->clamav_max_recursion, ==, 64);
    g_assert_cmpuint(c->clamav_max_files, ==, 1);
    g_assert_cmpuint(c->clamav_max_scan_time, ==, 1000);
    g_assert_cmpuint(c->max_message_size, ==, 1024);
    g_assert_cmpuint(c->max_mime_depth, ==, 100);
    g_assert_cmpuint(c->max_mime_parts, ==, 100000);
    g_assert_cmpstr(c->postmaster, ==, "abuse@example.com");
    g_assert_cmpstr(c->local_domains[0], ==, "example.com");        /* lower case */
    g_assert_cmpstr(c->local_domains[1], ==, "mail.example.org");
    g_assert_null(c->local_domains[2]);
    g_assert_cmpuint(c->n_internal_networks, ==, 3);
    /* host bits are cleared */
    g_assert_cmpint(c->internal_networks[0].family, ==, AF_INET);
    g_assert_cmpuint(c->internal_networks[0].prefix, ==, 24);
    g_assert_cmpmem(c->internal_networks[0].addr, 4, net0, 4);
    g_assert_cmpint(c->internal_networks[1].family, ==, AF_INET6);
    g_assert_cmpuint(c->internal_networks[1].prefix, ==, 32);
    g_assert_cmpmem(c->internal_networks[1].addr, 16, net1, 16);
    g_assert_cmpuint(c->internal_networks[2].prefix, ==, 32);       /* no prefix: host */
    g_assert_cmpmem(c->internal_networks[2].addr, 4, net2, 4);
    g_assert_cmpstr(c->hostname, ==, "mx1.example.com");
    g_assert_cmpuint(c->batch_max_messages, ==, 10000);
    g_assert_cmpuint(c->batch_max_bytes, ==, (uint64_t)16 << 30);
    g_assert_cmpuint(c->batch_max_wait_ms, ==, 1250);
    g_assert_cmpuint(c->workers, ==, 64);
    g_assert_false(c->queue_sync_fs);
    g_assert_cmpuint(c->rescan_interval, ==, 1);
    g_assert_cmpuint(c->retry_interval, ==, 86400);
    g_assert_cmpint(c->on_scan_error, ==, MQ_ON_ERROR_HOLD);
    g_assert_cmpint(c->log_level, ==, MQ_LOG_DEBUG);
    mq_config_free(&c);
}

/* Values at the edges of their ranges that must load. */
static void
test_good_edges(void)
{
    static const struct {
        const char *line;
        size_t offset;          /* into struct mq_config, of an unsigned */
        unsigned want;
    } cases[] = {
        { "workers = 1\n", G_STRUCT_OFFSET(struct mq_config, workers), 1 },
        { "batch_max_messages = 1\n", G_STRUCT_OFFSET(struct mq_config, batch_max_messages), 1 },
        { "batch_max_wait = 0\n", G_STRUCT_OFFSET(struct mq_config, batch_max_wait_ms), 0 },
        { "batch_max_wait = 0.001\n", G_STRUCT_OFFSET(struct mq_config, batch_max_wait_ms), 1 },
        { "batch_max_wait = 0.25\n", G_STRUCT_OFFSET(struct mq_config, batch_max_wait_ms), 250 },
        { "batch_max_wait = 3600\n", G_STRUCT_OFFSET(struct mq_config, batch_max_wait_ms), 3600000 },
        { "max_mime_depth = 1\n", G_STRUCT_OFFSET(struct mq_config, max_mime_depth), 1 },
        { "log_level = \"error\"\n", G_STRUCT_OFFSET(struct mq_config, log_level), MQ_LOG_ERROR },
        { "log_level = \"warning\"\n", G_STRUCT_OFFSET(struct mq_config, log_level), MQ_LOG_WARN },
        { "on_scan_error = \"defer\"\n", G_STRUCT_OFFSET(struct mq_config, on_scan_error), MQ_ON_ERROR_DEFER },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *text = g_strconcat(DIRS, cases[i].line, NULL);
        struct mq_config *c;

        g_test_message("%.*s", (int)strlen(cases[i].line) - 1, cases[i].line);
        c = load_ok("edge.conf", text);
        g_assert_cmpuint(G_STRUCT_MEMBER(unsigned, c, cases[i].offset), ==, cases[i].want);
        mq_config_free(&c);
        g_free(text);
    }

    /* sizes: suffixes in either case, and 1024 as the smallest */
    static const struct {
        const char *value;
        uint64_t want;
    } sizes[] = {
        { "1024", 1024 }, { "1k", 1024 }, { "1K", 1024 }, { "3m", 3 << 20 },
        { "2G", (uint64_t)2 << 30 }, { "0002048", 2048 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        char *text = g_strdup_printf(DIRS "batch_max_bytes = \"16G\"\nmax_message_size = \"%s\"\n"
                                     "clamav_max_file_size = \"4G\"\nclamav_max_scan_size = \"4G\"\n",
                                     sizes[i].value);
        struct mq_config *c = load_ok("size.conf", text);
        g_assert_cmpuint(c->max_message_size, ==, sizes[i].want);
        mq_config_free(&c);
        g_free(text);
    }
}

/* ---- bad configurations -------------------------------------------------- */

static const struct bad_case {
    const char *file;
    int line;                   /* 0: the message names the file but no line */
    const char *substring;
} bad_cases[] = {
    { "bad-unknown-key.conf", 3, "no such option 'frobnicate'" },
    { "bad-workers-zero.conf", 3, "workers = 0 is out of range" },
    { "bad-workers-1000.conf", 1, "workers = 1000 is out of range" },
    { "bad-string-for-int.conf", 1, "workers" },
    { "bad-size-suffix.conf", 3, "batch_max_bytes = \"12Q\" is not a size" },
    { "bad-size-empty.conf", 1, "not a size" },
    { "bad-size-overflow.conf", 1, "not a size" },
    { "bad-size-shift-overflow.conf", 1, "not a size" },
    { "bad-size-range.conf", 2, "max_message_size = 3G is out of range" },
    { "bad-size-small.conf", 1, "out of range" },
    { "bad-dir-relative.conf", 2, "quarantine_dir must be an absolute path" },
    { "bad-dir-dotdot.conf", 1, "hold_dir must be an absolute path without \"..\"" },
    { "bad-dir-dotdot-end.conf", 1, "state_dir must be an absolute path without \"..\"" },
    { "bad-pidfile-relative.conf", 1, "pid_file must be an absolute path" },
    { "bad-cidr-33.conf", 2, "\"10.0.0.0/33\" is not an address or CIDR network" },
    { "bad-cidr-foo.conf", 1, "\"foo\" is not an address or CIDR network" },
    { "bad-cidr-v6-129.conf", 1, "not an address or CIDR network" },
    { "bad-cidr-empty-prefix.conf", 1, "not an address or CIDR network" },
    { "bad-cidr-sign.conf", 1, "not an address or CIDR network" },
    { "bad-on-scan-error.conf", 1, "on_scan_error must be \"defer\" or \"hold\"" },
    { "bad-queue-sync.conf", 1, "queue_sync must be \"filesystem\" or \"files\"" },
    { "bad-log-level.conf", 1, "log_level must be" },
    { "bad-postmaster-space.conf", 1, "postmaster must be a plain address" },
    { "bad-postmaster-newline.conf", 1, "postmaster must be a plain address" },
    { "bad-hostname-brackets.conf", 1, "hostname must be" },
    { "bad-multiline-string.conf", 3, "hostname must be" },     /* where the string ends */
    { "bad-domain.conf", 1, "\"bad domain.example\" is not a domain name" },
    { "bad-wait-negative.conf", 1, "batch_max_wait = -0.5 is out of range" },
    { "bad-same-dirs.conf", 0, "must all differ (\"/var/spool/mqueue\" is used twice)" },
    { "bad-same-dirs-hold.conf", 0, "must all differ" },
    { "bad-batch-bytes.conf", 0, "batch_max_bytes must be at least max_message_size" },
    { "bad-engine-limits.conf", 0, "clamav_max_file_size and clamav_max_scan_size must be at least max_message_size" },
    /* libconfuse notices a missing quote where the next quote closes the string */
    { "bad-syntax-quote.conf", 3, "postmaster must be a plain address" },
    /* a string left open runs to the end of the file: the line after the last */
    { "bad-syntax-quote-eof.conf", 4, "premature end of file" },
    { "bad-syntax-brace.conf", 2, "unexpected token 'workers'" },
    { "bad-include.conf", 3, "no such option 'include'" },
    { "bad-section.conf", 1, "no such option 'scanner'" },
};

/* BUG: libconfuse 3.3 (Debian 12) counts each "#" or "//" comment as three
 * lines and each C comment as one line too many (qput() and qend() in its
 * lexer.l both do cfg->line++, on top of the newline rule; still so
 * upstream). Every "FILE:LINE:" after the first comment is wrong - and the
 * shipped mqscan.conf starts with a comment block. These cases fail until
 * config.c hides comments from libconfuse; the proposed fix (blank comments
 * out, newlines kept, then parse the text) is in the final report. */
static const struct bad_case comment_cases[] = {
    { "bad-comments-hash.conf", 7, "workers = 0 is out of range" },
    { "bad-comments-slashes.conf", 4, "log_level must be" },
    { "bad-comments-block.conf", 5, "on_scan_error must be" },
    { "bad-comments-trailing.conf", 4, "max_mime_depth = 1000 is out of range" },
    { "bad-comments-in-strings.conf", 5, "workers = 65 is out of range" },
};

static void
test_bad(gconstpointer data)
{
    const struct bad_case *bc = data;
    char *rel = g_build_filename("config", bc->file, NULL);
    char *path = test_data_path(rel);
    char *prefix;
    GError *err = NULL;
    struct mq_config *c = mq_config_load(path, &err);

    g_assert_null(c);
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
    g_test_message("%s", err->message);
    if (bc->line > 0)
        prefix = g_strdup_printf("%s:%d: ", path, bc->line);
    else
        prefix = g_strdup_printf("%s: ", path);
    g_assert_true(g_str_has_prefix(err->message, prefix));
    g_assert_nonnull(strstr(err->message + strlen(prefix), bc->substring));
    g_assert_cmpuint(strlen(err->message), >, strlen(prefix));
    /* one line, fit for --lint output and a log line */
    g_assert_null(strchr(err->message, '\n'));
    g_clear_error(&err);
    g_free(prefix);
    g_free(path);
    g_free(rel);
}

/* A missing or unreadable file is an error, not "use the defaults". */
static void
test_missing(void)
{
    char *path = g_build_filename(tmpdir, "no-such.conf", NULL);
    GError *err = NULL;

    g_assert_null(mq_config_load(path, &err));
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
    g_assert_true(g_str_has_prefix(err->message, path));
    g_assert_nonnull(strstr(err->message, "cannot read"));
    g_clear_error(&err);

    if (geteuid() != 0) {       /* root reads anything */
        char *unreadable = write_config("unreadable.conf", DIRS);
        g_assert_cmpint(g_chmod(unreadable, 0), ==, 0);
        g_assert_null(mq_config_load(unreadable, &err));
        g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
        g_clear_error(&err);
        g_unlink(unreadable);
        g_free(unreadable);
    }
    g_free(path);
}

/* BUG: a config path that names a directory passes the access(R_OK) check,
 * and libconfuse's flex scanner then fails to read it and calls exit(2)
 * ("input in flex scanner failed"): mqscand --lint, start-up and - worst -
 * a SIGHUP reload die instead of reporting an error and keeping the old
 * configuration. Run in a subprocess because it exits.
 * Proposed fix in mq_config_load(), mqscan/config.c (add <sys/stat.h>):
 *
 *     -    if (access(path, R_OK) < 0) {
 *     -        g_string_printf(why, "%s: cannot read configuration: %s", path, g_strerror(errno));
 *     +    struct stat st;
 *     +    if (stat(path, &st) < 0 || access(path, R_OK) < 0) {
 *     +        g_string_printf(why, "%s: cannot read configuration: %s", path, g_strerror(errno));
 *     +        goto fail;
 *     +    }
 *     +    if (!S_ISREG(st.st_mode)) {
 *     +        g_string_printf(why, "%s: cannot read configuration: not a regular file", path);
 *              goto fail;
 *          }
 *
 * (S_ISREG also keeps a FIFO from blocking the load.) */
static void
test_bug_directory(void)
{
    char *dir;

    /* the child has a temporary directory of its own: pass the path */
    if (g_test_subprocess()) {
        GError *err = NULL;
        dir = g_strdup(g_getenv("MQ_TEST_CONFIG_DIR"));
        g_assert_nonnull(dir);
        g_assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));
        g_assert_null(mq_config_load(dir, &err));
        g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
        g_assert_true(g_str_has_prefix(err->message, dir));
        g_clear_error(&err);
        g_free(dir);
        return;
    }
    dir = g_build_filename(tmpdir, "a-directory.conf", NULL);
    g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
    g_setenv("MQ_TEST_CONFIG_DIR", dir, TRUE);
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_unsetenv("MQ_TEST_CONFIG_DIR");
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_free(dir);
    g_test_trap_assert_passed();
}

/* A failed load leaves nothing behind for the next one (the first-error
 * buffer is per load). */
static void
test_error_then_good(void)
{
    char *bad = write_config("bad-then.conf", DIRS "workers = 0\n");
    GError *err = NULL;
    struct mq_config *c;

    g_assert_null(mq_config_load(bad, &err));
    g_assert_error(err, MQ_ERROR, MQ_ERROR_CONFIG);
    g_clear_error(&err);
    c = load_ok("good-after.conf", DIRS "workers = 3\n");
    g_assert_cmpuint(c->workers, ==, 3);
    mq_config_free(&c);
    g_assert_null(mq_config_load(bad, &err));
    g_assert_true(g_str_has_prefix(err->message, bad));
    g_assert_nonnull(strstr(err->message, ":8: "));
    g_clear_error(&err);
    g_unlink(bad);
    g_free(bad);
}

/* ---- lookups --------------------------------------------------------------- */

static const struct internal_case {
    const char *network;
    const char *addr;
    bool want;
} internal_cases[] = {
    { "0.0.0.0/0", "0.0.0.0", true },
    { "0.0.0.0/0", "255.255.255.255", true },
    { "0.0.0.0/0", "::1", false },                  /* family matters */
    { "192.0.2.1/32", "192.0.2.1", true },
    { "192.0.2.1/32", "192.0.2.0", false },
    { "192.0.2.1/32", "192.0.2.2", false },
    { "192.0.2.1", "192.0.2.1", true },
    { "192.0.2.1", "192.0.2.129", false },
    { "10.0.0.0/8", "10.0.0.0", true },
    { "10.0.0.0/8", "10.255.255.255", true },
    { "10.0.0.0/8", "11.0.0.0", false },
    { "10.0.0.0/8", "9.255.255.255", false },
    { "10.1.2.3/8", "10.200.0.1", true },           /* host bits ignored */
    { "172.16.0.0/12", "172.16.0.0", true },
    { "172.16.0.0/12", "172.31.255.255", true },
    { "172.16.0.0/12", "172.32.0.0", false },
    { "172.16.0.0/12", "172.15.255.255", false },
    { "192.168.0.0/13", "192.175.255.255", true },  /* 168..175 */
    { "192.168.0.0/13", "192.176.0.0", false },
    { "192.168.0.0/13", "192.167.255.255", false },
    { "128.0.0.0/1", "200.1.1.1", true },
    { "128.0.0.0/1", "127.255.255.255", false },
    { "192.0.2.128/25", "192.0.2.255", true },
    { "192.0.2.128/25", "192.0.2.127", false },
    { "192.0.2.0/31", "192.0.2.1", true },
    { "192.0.2.0/31", "192.0.2.2", false },
    { "::/0", "ffff::1", true },
    { "::/0", "10.0.0.1", false },
    { "::1/128", "::1", true },
    { "::1/128", "::2", false },
    { "::1", "::1", true },
    { "2001:db8::/32", "2001:db8:ffff:ffff::1", true },
    { "2001:db8::/32", "2001:db9::", false },
    { "2001:db8::/32", "2001:db7:ffff::", false },
    { "fe80::/10", "fe80::1", true },
    { "fe80::/10", "febf:ffff::1", true },
    { "fe80::/10", "fec0::1", false },
    { "fe80::/10", "fe7f::1", false },
    { "2001:db8:0:1::/63", "2001:db8:0:0:ffff::1", true },
    { "2001:db8:0:1::/63", "2001:db8:0:2::", false },
    { "2001:db8::1:0/127", "2001:db8::1:1", true },
    { "2001:db8::1:0/127", "2001:db8::1:2", false },
    { "::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true },
};

static void
test_is_internal(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(internal_cases); i++) {
        const struct internal_case *ic = &internal_cases[i];
        char *text = g_strdup_printf(DIRS "internal_networks = { \"%s\" }\n", ic->network);
        struct mq_config *c = load_ok("net.conf", text);
        uint8_t addr[16];
        int family = strchr(ic->addr, ':') ? AF_INET6 : AF_INET;

        g_test_message("%s in %s", ic->addr, ic->network);
        g_assert_cmpint(inet_pton(family, ic->addr, addr), ==, 1);
        g_assert_cmpint(mq_config_is_internal(c, family, addr), ==, ic->want);
        mq_config_free(&c);
        g_free(text);
    }
}

static void
test_is_internal_list(void)
{
    struct mq_config *c;
    uint8_t a[16];

    /* an empty list: nothing is internal */
    c = load_ok("nonet.conf", DIRS "internal_networks = {}\n");
    g_assert_cmpuint(c->n_internal_networks, ==, 0);
    inet_pton(AF_INET, "127.0.0.1", a);
    g_assert_false(mq_config_is_internal(c, AF_INET, a));
    mq_config_free(&c);

    /* the defaults: loopback only */
    c = load_ok("defnet.conf", DIRS);
    inet_pton(AF_INET, "127.1.2.3", a);
    g_assert_true(mq_config_is_internal(c, AF_INET, a));
    inet_pton(AF_INET, "128.0.0.1", a);
    g_assert_false(mq_config_is_internal(c, AF_INET, a));
    inet_pton(AF_INET6, "::1", a);
    g_assert_true(mq_config_is_internal(c, AF_INET6, a));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", a);
    g_assert_false(mq_config_is_internal(c, AF_INET6, a));
    mq_config_free(&c);

    /* several: any one matches */
    c = load_ok("nets.conf", DIRS "internal_networks = { \"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.0/24\" }\n");
    inet_pton(AF_INET, "192.0.2.9", a);
    g_assert_true(mq_config_is_internal(c, AF_INET, a));
    inet_pton(AF_INET, "10.9.9.9", a);
    g_assert_true(mq_config_is_internal(c, AF_INET, a));
    inet_pton(AF_INET, "198.51.100.1", a);
    g_assert_false(mq_config_is_internal(c, AF_INET, a));
    inet_pton(AF_INET6, "2001:db8::5", a);
    g_assert_true(mq_config_is_internal(c, AF_INET6, a));
    mq_config_free(&c);
}

static void
test_is_local_domain(void)
{
    static const struct {
        const char *domain;
        bool want;
    } cases[] = {
        { "example.com", true },
        { "EXAMPLE.COM", true },
        { "Example.Com", true },
        { "sub.example.com", true },
        { "a.b.example.com", true },
        { "SUB.Example.COM", true },
        { "badexample.com", false },
        { "xample.com", false },
        { "example.co", false },
        { "example.com.evil.net", false },
        { "example.comx", false },
        { "com", false },
        { "", false },
        { "mail.example.org", true },
        { "MAIL.EXAMPLE.ORG", true },
        { "x.mail.example.org", true },
        { "example.org", false },
        { "ail.example.org", false },
        { "gmail.example.org", false },
    };
    struct mq_config *c = load_ok("dom.conf", DIRS "local_domains = { \"example.com\", \"Mail.Example.ORG\" }\n");

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("%s", cases[i].domain);
        g_assert_cmpint(mq_config_is_local_domain(c, cases[i].domain), ==, cases[i].want);
    }
    mq_config_free(&c);

    c = load_ok("nodom.conf", DIRS);
    g_assert_false(mq_config_is_local_domain(c, "example.com"));
    g_assert_false(mq_config_is_local_domain(c, ""));
    mq_config_free(&c);
}

int
main(int argc, char **argv)
{
    GError *err = NULL;
    int rc;

    g_test_init(&argc, &argv, NULL);
    /* a must-die child gets its paths from the parent and may never return */
    if (!g_test_subprocess()) {
        tmpdir = g_dir_make_tmp("test-config-XXXXXX", &err);
        g_assert_no_error(err);
    }

    g_test_add_func("/config/good/minimal", test_good_minimal);
    g_test_add_func("/config/good/full", test_good_full);
    g_test_add_func("/config/good/edges", test_good_edges);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        char *path = g_strdup_printf("/config/bad/%s", bad_cases[i].file);
        g_test_add_data_func(path, &bad_cases[i], test_bad);
        g_free(path);
    }
    g_test_add_func("/config/missing", test_missing);
    g_test_add_func("/config/error-then-good", test_error_then_good);
    g_test_add_func("/config/is-internal/table", test_is_internal);
    g_test_add_func("/config/is-internal/lists", test_is_internal_list);
    g_test_add_func("/config/is-local-domain", test_is_local_domain);
    /* Known bugs last, so that a failure does not hide the other results. */
    for (size_t i = 0; i < G_N_ELEMENTS(comment_cases); i++) {
        char *path = g_strdup_printf("/config/bug/line-after-comments/%s", comment_cases[i].file);
        g_test_add_data_func(path, &comment_cases[i], test_bad);
        g_free(path);
    }
    g_test_add_func("/config/bug/directory-kills-process", test_bug_directory);
    rc = g_test_run();
    if (tmpdir != NULL)
        test_remove_tree(tmpdir);
    g_free(tmpdir);
    return rc;
}
