/* test-health - the health checks and the alert state, with injected time.
 *
 * Every case writes the files a check reads (pid file, heartbeat, queue
 * files, signature databases, held messages) into a temporary directory,
 * runs the checks "now" = a fixed time, and looks at one check's state and
 * text. The end-to-end cases with a real mqscand are in health.sh.
 */
#include <config.h>

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/config.h"
#include "mqscan/health.h"

#include "testutil.h"

/* The injected "now". */
#define NOW ((time_t)1795500000)

static char *tmpdir;

static char *
tpath(const char *rel)
{
    return g_build_filename(tmpdir, rel, NULL);
}

/* Writes tmpdir/rel with text and sets its mtime to mtime (0: leave it). */
static void
put(const char *rel, const char *text, size_t len, time_t mtime)
{
    char *path = tpath(rel);
    GError *err = NULL;

    g_file_set_contents(path, text, (gssize)len, &err);
    g_assert_no_error(err);
    if (mtime != 0) {
        struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
        g_assert_cmpint(utimensat(AT_FDCWD, path, ts, 0), ==, 0);
    }
    g_free(path);
}

static void
put_str(const char *rel, const char *text, time_t mtime)
{
    put(rel, text, strlen(text), mtime);
}

static void
rm(const char *rel)
{
    char *path = tpath(rel);
    g_unlink(path);
    g_free(path);
}

static struct mq_config *
load(const char *extra)
{
    char *path = tpath("mqscan.conf");
    char *text = g_strdup_printf(
        "incoming_queue_dir = \"%1$s/mqueue.in\"\n"
        "outgoing_queue_dir = \"%1$s/mqueue\"\n"
        "quarantine_dir = \"%1$s/quarantine\"\n"
        "hold_dir = \"%1$s/hold\"\n"
        "state_dir = \"%1$s/state\"\n"
        "scan_tmp_dir = \"%1$s/tmp\"\n"
        "pid_file = \"%1$s/mqscand.pid\"\n"
        "clamav_database_dir = \"%1$s/sigs\"\n"
        "postmaster = \"postmaster@example.test\"\n"
        "check_heartbeat_max_age = 60\n"
        "check_queue_max_age = 600\n"
        "check_hold_max = 2\n"
        "check_alert_interval = 3600\n"
        "%2$s",
        tmpdir, extra);
    GError *err = NULL;
    struct mq_config *c;

    g_file_set_contents(path, text, -1, &err);
    g_assert_no_error(err);
    c = mq_config_load(path, &err);
    g_assert_no_error(err);
    g_free(text);
    g_free(path);
    return c;
}

/* Runs the checks at now and returns the state of check name; its text is
 * copied to *text_r when that is not NULL (g_free). */
static enum mq_health_state
run_one(const struct mq_config *c, time_t now, const char *name, char **text_r)
{
    struct mq_health *h = mq_health_run(c, now);
    const char *text;
    enum mq_health_state s = mq_health_check(h, name, &text);
    char *line = mq_health_summary(h);

    g_assert_null(strchr(line, '\n'));
    g_assert_true(g_str_has_prefix(line, "MQSCAN "));
    if (text_r != NULL)
        *text_r = g_strdup(text);
    g_free(line);
    mq_health_free(&h);
    g_assert_null(h);
    return s;
}

static void
assert_check(const struct mq_config *c, time_t now, const char *name,
             enum mq_health_state want, const char *fragment)
{
    char *text = NULL;
    enum mq_health_state got = run_one(c, now, name, &text);

    if (got != want || strstr(text, fragment) == NULL)
        g_error("%s: got %s \"%s\", want %s with \"%s\"", name, mq_health_state_name(got), text,
                mq_health_state_name(want), fragment);
    g_free(text);
}

static void
setup_dirs(void)
{
    const char *dirs[] = { "mqueue.in", "mqueue", "state", "sigs", "hold" };
    char *path;

    for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
        path = tpath(dirs[i]);
        g_assert_cmpint(g_mkdir_with_parents(path, 0700), ==, 0);
        g_free(path);
    }
    put_str("sigs/test.ndb", "Test.Sig:0:*:41424344\n", NOW - 60);
}

/* --- heartbeat ---------------------------------------------------------- */

static void
test_heartbeat(void)
{
    static const struct {
        const char *content;    /* NULL: no file */
        time_t now;
        enum mq_health_state want;
        const char *fragment;
    } cases[] = {
        { NULL, NOW, MQ_HEALTH_CRITICAL, "no heartbeat" },
        { "4242 1795500000 17\n", NOW, MQ_HEALTH_OK, "heartbeat 0 s old" },
        { "4242 1795500000 0\n", NOW + 30, MQ_HEALTH_OK, "heartbeat 30 s old" },
        { "4242 1795500000 0\n", NOW + 31, MQ_HEALTH_WARNING, "heartbeat 31 s old (max 60 s)" },
        { "4242 1795500000 0\n", NOW + 60, MQ_HEALTH_WARNING, "60 s old" },
        { "4242 1795500000 0\n", NOW + 61, MQ_HEALTH_CRITICAL, "61 s old (max 60 s)" },
        { "4242 1795500000 0\n", NOW + 7199, MQ_HEALTH_CRITICAL, "119 min old" },
        { "4242 1795500000 0\n", NOW + 7200, MQ_HEALTH_CRITICAL, "2 h old" },
        { "4242 1795500000 0\n", NOW + 3 * 86400, MQ_HEALTH_CRITICAL, "3 days old" },
        { "4242 1795500030 0\n", NOW, MQ_HEALTH_OK, "0 s old" },   /* slack */
        { "4242 1795509999 0\n", NOW, MQ_HEALTH_WARNING, "in the future" },
        /* Strict parsing. */
        { "4242 1795500000 0", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "4242 1795500000\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "4242  1795500000 0\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "4242 1795500000 0 1\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "4242 1795500000 0\n\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { " 4242 1795500000 0\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "+4242 1795500000 0\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "0 1795500000 0\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "99999999 1795500000 0\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "4242 -5 0\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "4242 1795500000x 0\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "4242 99999999999999999999 0\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "4242 1795500000 0\r\n", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
        { "", NOW, MQ_HEALTH_CRITICAL, "unreadable" },
    };
    struct mq_config *c;

    setup_dirs();
    c = load("");
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        if (cases[i].content == NULL)
            rm("state/heartbeat");
        else
            put_str("state/heartbeat", cases[i].content, 0);
        assert_check(c, cases[i].now, "heartbeat", cases[i].want, cases[i].fragment);
    }
    /* Too long to be a heartbeat. */
    {
        char big[512];
        memset(big, '1', sizeof(big));
        put("state/heartbeat", big, sizeof(big), 0);
        assert_check(c, NOW, "heartbeat", MQ_HEALTH_CRITICAL, "unreadable");
    }
    /* A symlink is not followed. */
    {
        char *target = tpath("state/real"), *link = tpath("state/heartbeat");
        put_str("state/real", "4242 1795500000 0\n", 0);
        rm("state/heartbeat");
        g_assert_cmpint(symlink(target, link), ==, 0);
        assert_check(c, NOW, "heartbeat", MQ_HEALTH_CRITICAL, "unreadable");
        g_free(target);
        g_free(link);
    }
    mq_config_free(&c);
}

/* --- daemon (pid file) -------------------------------------------------- */

static void
test_daemon(void)
{
    struct mq_config *c;
    struct mq_health *h;
    char *pid_path = tpath("mqscand.pid"), *self;
    int fd;

    setup_dirs();
    c = load("");
    rm("mqscand.pid");
    assert_check(c, NOW, "daemon", MQ_HEALTH_CRITICAL, "daemon not running (no pid file)");
    h = mq_health_run(c, NOW);
    g_assert_true(mq_health_daemon_down(h));
    mq_health_free(&h);

    /* Nobody holds the lock: stale, whatever process the pid names. */
    self = g_strdup_printf("%ld\n", (long)getpid());
    put_str("mqscand.pid", self, 0);
    assert_check(c, NOW, "daemon", MQ_HEALTH_CRITICAL, "stale pid file, pid");
    h = mq_health_run(c, NOW);
    g_assert_true(mq_health_daemon_down(h));
    mq_health_free(&h);

    /* Locked (as mqscand does, on its own open file). */
    fd = open(pid_path, O_RDWR | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(flock(fd, LOCK_EX | LOCK_NB), ==, 0);
    /* ... by us: a live process that is not mqscand. */
    assert_check(c, NOW, "daemon", MQ_HEALTH_CRITICAL, "not mqscand");
    h = mq_health_run(c, NOW);
    g_assert_false(mq_health_daemon_down(h));
    mq_health_free(&h);
    g_assert_cmpint(ftruncate(fd, 0), ==, 0);
    assert_check(c, NOW, "daemon", MQ_HEALTH_WARNING, "daemon starting");
    g_assert_cmpint(pwrite(fd, "12x\n", 4, 0), ==, 4);
    assert_check(c, NOW, "daemon", MQ_HEALTH_CRITICAL, "holds no valid pid");
    g_assert_cmpint(ftruncate(fd, 0), ==, 0);
    g_assert_cmpint(pwrite(fd, "4194303\n", 8, 0), ==, 8);
    if (kill(4194303, 0) < 0)
        assert_check(c, NOW, "daemon", MQ_HEALTH_CRITICAL, "pid 4194303 gone");
    close(fd);

    g_free(self);
    g_free(pid_path);
    mq_config_free(&c);
}

/* --- incoming queue ----------------------------------------------------- */

static void
test_queue(void)
{
    struct mq_config *c;

    setup_dirs();
    c = load("");
    assert_check(c, NOW, "queue", MQ_HEALTH_OK, "queue: 0 messages");
    put_str("mqueue.in/qfA1", "x", NOW - 100);
    put_str("mqueue.in/dfA1", "x", NOW - 9000);    /* df times do not count */
    assert_check(c, NOW, "queue", MQ_HEALTH_OK, "queue: 1 message, oldest 100 s (max 10 min)");
    put_str("mqueue.in/qfA2", "x", NOW - 301);
    assert_check(c, NOW, "queue", MQ_HEALTH_WARNING, "queue slow: 2 messages, oldest 5 min");
    put_str("mqueue.in/qfA3", "x", NOW - 7300);
    put_str("mqueue.in/tfA4", "x", NOW - 99999);    /* not a queued message */
    put_str("mqueue.in/qf..", "x", NOW - 99999);    /* not a valid ID */
    assert_check(c, NOW, "queue", MQ_HEALTH_CRITICAL,
                 "queue stuck: 3 messages, oldest 2 h (max 10 min)");
    mq_config_free(&c);
}

/* --- signatures --------------------------------------------------------- */

static void
put_cvd(const char *rel, const char *header, time_t mtime)
{
    char buf[512];
    size_t n = strlen(header);

    memset(buf, ' ', sizeof(buf));
    memcpy(buf, header, MIN(n, sizeof(buf)));
    put(rel, buf, sizeof(buf), mtime);
}

static void
test_signatures(void)
{
    static const struct {
        const char *header;
        const char *fragment;   /* NULL: no version shown */
    } headers[] = {
        { "ClamAV-VDB:24 Nov 2026 08-25 +0000:27100:2071234:90:md5:dsig:builder:1795500000",
          "daily 27100" },
        { "ClamAV-VDB:24 Nov 2026 08-25 +0000:27101:2071234", "daily 27101" },
        { "ClamAV-VDB:24 Nov 2026 08-25 +0000:0:1:90", NULL },
        { "ClamAV-VDB:24 Nov 2026 08-25 +0000:-3:1:90", NULL },
        { "ClamAV-VDB:24 Nov 2026 08-25 +0000:99999999999:1:90", NULL },
        { "ClamAV-VDB:24 Nov 2026 08-25 +0000:27x:1:90", NULL },
        { "ClamAV-VDB:27100", NULL },
        { "ClamAV-VDB", NULL },
        { "NotClamAV:x:27100:1:90", NULL },
    };
    struct mq_config *c;
    char *text = NULL;

    setup_dirs();
    c = load("");
    assert_check(c, NOW, "signatures", MQ_HEALTH_OK, "signatures: newest 60 s old (max 3 days)");
    put_str("sigs/test.ndb", "x", NOW - 2 * 86400);
    assert_check(c, NOW, "signatures", MQ_HEALTH_WARNING, "signatures aging: newest 2 days old");
    put_str("sigs/test.ndb", "x", NOW - 10 * 86400);
    assert_check(c, NOW, "signatures", MQ_HEALTH_CRITICAL,
                 "signatures too old: newest 10 days old (max 3 days)");
    /* Only database files count. */
    put_str("sigs/freshclam.dat", "x", NOW);
    put_str("sigs/local.ign2", "x", NOW);
    put_str("sigs/.hidden.ndb", "x", NOW);
    assert_check(c, NOW, "signatures", MQ_HEALTH_CRITICAL, "10 days old");
    put_str("sigs/local.HDB", "x", NOW - 10);
    assert_check(c, NOW, "signatures", MQ_HEALTH_OK, "newest 10 s old");
    rm("sigs/local.HDB");

    for (size_t i = 0; i < G_N_ELEMENTS(headers); i++) {
        put_cvd("sigs/daily.cvd", headers[i].header, NOW - 3600);
        g_assert_cmpint(run_one(c, NOW, "signatures", &text), ==, MQ_HEALTH_OK);
        if (headers[i].fragment != NULL)
            g_assert_nonnull(strstr(text, headers[i].fragment));
        else
            g_assert_null(strstr(text, "daily"));
        g_free(text);
    }
    /* Both daily.cvd and daily.cld: the higher version; main as well. */
    put_cvd("sigs/daily.cvd", "ClamAV-VDB:x:27100:1:90", NOW - 3600);
    put_cvd("sigs/daily.cld", "ClamAV-VDB:x:27105:1:90", NOW - 3600);
    put_cvd("sigs/main.cvd", "ClamAV-VDB:x:62:1:90", NOW - 86400);
    assert_check(c, NOW, "signatures", MQ_HEALTH_OK, "newest 60 min old (max 3 days), daily 27105, main 62");
    rm("sigs/daily.cvd");
    rm("sigs/daily.cld");
    rm("sigs/main.cvd");

    rm("sigs/test.ndb");
    assert_check(c, NOW, "signatures", MQ_HEALTH_CRITICAL, "signatures: no database files in");
    mq_config_free(&c);

    c = load("engine = \"clamd\"\nclamd_servers = { \"unix:/nonexistent\" }\n");
    assert_check(c, NOW, "signatures", MQ_HEALTH_OK, "clamd, not checked here");
    mq_config_free(&c);
}

/* --- hold area ---------------------------------------------------------- */

static void
test_hold(void)
{
    struct mq_config *c;
    char *hold = tpath("hold");

    setup_dirs();
    c = load("");
    assert_check(c, NOW, "hold", MQ_HEALTH_OK, "hold: 0 messages");
    put_str("hold/A1.reason", "x", 0);
    put_str("hold/qfA1", "x", 0);
    put_str("hold/A2.reason", "x", 0);
    assert_check(c, NOW, "hold", MQ_HEALTH_OK, "hold: 2 messages");
    put_str("hold/A3.reason", "x", 0);
    assert_check(c, NOW, "hold", MQ_HEALTH_WARNING, "hold: 3 messages (max 2)");
    test_remove_tree(hold);
    assert_check(c, NOW, "hold", MQ_HEALTH_OK, "hold: 0 messages");
    g_free(hold);
    mq_config_free(&c);
}

/* --- summary and alerts ------------------------------------------------- */

static void
test_summary(void)
{
    struct mq_config *c;
    struct mq_health *h;
    char *line;

    setup_dirs();
    c = load("");
    rm("mqscand.pid");
    put_str("state/heartbeat", "4242 1795500000 0\n", 0);
    put_str("hold/A1.reason", "x", 0);
    put_str("hold/A2.reason", "x", 0);
    put_str("hold/A3.reason", "x", 0);
    h = mq_health_run(c, NOW + 40);
    g_assert_cmpint(mq_health_state(h), ==, MQ_HEALTH_CRITICAL);
    line = mq_health_summary(h);
    /* Worst first, then the warnings in check order, then the rest. */
    g_assert_cmpstr(line, ==,
                    "MQSCAN CRITICAL - daemon not running (no pid file); "
                    "heartbeat 40 s old (max 60 s); hold: 3 messages (max 2); "
                    "queue: 0 messages; signatures: newest 100 s old (max 3 days)");
    g_free(line);
    mq_health_free(&h);
    mq_config_free(&c);
}

static unsigned
count_mails(void)
{
    char *path = tpath("mqueue");
    GDir *dir = g_dir_open(path, 0, NULL);
    const char *name;
    unsigned n = 0;

    g_assert_nonnull(dir);
    while ((name = g_dir_read_name(dir)) != NULL)
        n += g_str_has_prefix(name, "qf");
    g_dir_close(dir);
    g_free(path);
    return n;
}

/* Runs the checks and the alert at now; returns whether a mail went out. */
static bool
alert_at(const struct mq_config *c, time_t now)
{
    struct mq_health *h = mq_health_run(c, now);
    unsigned before = count_mails();
    GError *err = NULL;
    bool sent = false;

    g_assert_cmpint(mq_health_alert(h, now, &sent, &err), ==, 0);
    g_assert_no_error(err);
    mq_health_free(&h);
    g_assert_cmpuint(count_mails(), ==, before + (sent ? 1 : 0));
    return sent;
}

/* Writes a heartbeat from pid at now, runs the checks and the alert. */
static bool
beat_alert(const struct mq_config *c, long pid, time_t now)
{
    char *line = g_strdup_printf("%ld %lld 0\n", pid, (long long)now);

    put_str("state/heartbeat", line, 0);
    g_free(line);
    return alert_at(c, now);
}

static char *
read_state(void)
{
    char *path = tpath("state/check-alerts"), *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        text = NULL;
    g_free(path);
    return text;
}

static void
test_alerts(void)
{
    struct mq_config *c;
    char *state, *pid_path = tpath("mqscand.pid"), *self;
    char name[17] = "";
    int fd;

    setup_dirs();
    c = load("");
    /* A locked, empty pid file: the daemon is "starting", a WARNING that
     * stays for the whole test. */
    fd = open(pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(flock(fd, LOCK_EX | LOCK_NB), ==, 0);
    g_assert_true(beat_alert(c, 4242, NOW));            /* new problem */
    g_assert_false(beat_alert(c, 4242, NOW + 10));      /* within the interval */
    g_assert_false(beat_alert(c, 4242, NOW + 3599));
    g_assert_true(beat_alert(c, 4242, NOW + 3600));     /* interval over */

    /* A second problem: mailed, although the first is not due. */
    put_str("sigs/test.ndb", "x", NOW + 3610 - 2 * 86400);
    g_assert_true(beat_alert(c, 4242, NOW + 3610));
    state = read_state();
    g_assert_cmpstr(state, ==, "mqscan-check-alerts 1\n"
                               "daemon WARNING 1795503600\n"
                               "signatures WARNING 1795503610\n"
                               "end\n");
    g_free(state);
    /* It gets worse: mailed again at once, then not. */
    put_str("sigs/test.ndb", "x", NOW + 3620 - 4 * 86400);
    g_assert_true(beat_alert(c, 4242, NOW + 3620));
    g_assert_false(beat_alert(c, 4242, NOW + 3630));
    /* Better, but not cleared: nothing. */
    put_str("sigs/test.ndb", "x", NOW + 3640 - 2 * 86400);
    g_assert_false(beat_alert(c, 4242, NOW + 3640));
    /* Cleared: forgotten. Back: mailed at once. */
    put_str("sigs/test.ndb", "x", NOW + 3650);
    g_assert_false(beat_alert(c, 4242, NOW + 3650));
    state = read_state();
    g_assert_cmpstr(state, ==, "mqscan-check-alerts 1\ndaemon WARNING 1795503600\nend\n");
    g_free(state);
    put_str("sigs/test.ndb", "x", NOW + 3660 - 4 * 86400);
    g_assert_true(beat_alert(c, 4242, NOW + 3660));

    /* A damaged state file: start afresh (mail) and write a good one. */
    {
        static const char *const damaged[] = {
            "mqscan-check-alerts 1\ndaemon WARNING 1\n",                      /* no end */
            "mqscan-check-alerts 1\nbogus WARNING 1\nend\n",                  /* key */
            "mqscan-check-alerts 1\ndaemon OK 1\nend\n",                      /* state */
            "mqscan-check-alerts 1\ndaemon WARNING 1x\nend\n",                /* time */
            "mqscan-check-alerts 1\ndaemon WARNING 1\ndaemon WARNING 1\nend\n", /* twice */
            "mqscan-check-alerts 2\nend\n",                                    /* version */
            "mqscan-check-alerts 1\nend",                                      /* no newline */
            "",
        };
        time_t t = NOW + 3700;
        for (size_t i = 0; i < G_N_ELEMENTS(damaged); i++, t += 10) {
            put_str("state/check-alerts", damaged[i], 0);
            g_assert_true(beat_alert(c, 4242, t));
            g_assert_false(beat_alert(c, 4242, t + 1));
        }
    }

    /* All clear: a pid file naming a live "mqscand" (this process, renamed)
     * that holds the lock, a fresh heartbeat from it, fresh signatures. The
     * state is emptied; without a state file, none is written. */
    g_assert_cmpint(prctl(PR_GET_NAME, name), ==, 0);
    g_assert_cmpint(prctl(PR_SET_NAME, "mqscand"), ==, 0);
    self = g_strdup_printf("%ld\n", (long)getpid());
    g_assert_cmpint(pwrite(fd, self, strlen(self), 0), ==, (ssize_t)strlen(self));
    put_str("sigs/test.ndb", "x", NOW + 4000);
    g_assert_false(beat_alert(c, (long)getpid(), NOW + 4000));
    assert_check(c, NOW + 4000, "daemon", MQ_HEALTH_OK, "daemon running (pid ");
    state = read_state();
    g_assert_cmpstr(state, ==, "mqscan-check-alerts 1\nend\n");
    g_free(state);
    rm("state/check-alerts");
    g_assert_false(beat_alert(c, (long)getpid(), NOW + 4010));
    g_assert_null(read_state());
    /* A heartbeat from another pid than the running daemon's. */
    put_str("state/heartbeat", "4242 1795504020 0\n", 0);
    assert_check(c, NOW + 4020, "heartbeat", MQ_HEALTH_WARNING, "from pid 4242, not the running");
    g_assert_cmpint(prctl(PR_SET_NAME, name), ==, 0);

    close(fd);
    g_free(self);
    g_free(pid_path);
    mq_config_free(&c);
}

static void
test_alert_fails(void)
{
    struct mq_config *c;
    struct mq_health *h;
    GError *err = NULL;
    bool sent = true;
    char *out = tpath("mqueue");

    setup_dirs();
    c = load("");
    test_remove_tree(out);      /* the outgoing queue is gone */
    h = mq_health_run(c, NOW);
    g_assert_cmpint(mq_health_alert(h, NOW, &sent, &err), ==, -1);
    g_assert_nonnull(err);
    g_assert_false(sent);
    g_clear_error(&err);
    /* Nothing remembered: the next run tries again. */
    g_assert_null(read_state());
    mq_health_free(&h);
    g_free(out);
    mq_config_free(&c);
}

static void
fresh_tmpdir(void)
{
    if (tmpdir != NULL) {
        test_remove_tree(tmpdir);
        g_free(tmpdir);
    }
    tmpdir = g_dir_make_tmp("test-health-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);
}

#define ADD(name, fn) \
    g_test_add_vtable(name, 0, NULL, (GTestFixtureFunc)fresh_tmpdir, (GTestFixtureFunc)fn, NULL)

int
main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    ADD("/health/heartbeat", test_heartbeat);
    ADD("/health/daemon", test_daemon);
    ADD("/health/queue", test_queue);
    ADD("/health/signatures", test_signatures);
    ADD("/health/hold", test_hold);
    ADD("/health/summary", test_summary);
    ADD("/health/alerts", test_alerts);
    ADD("/health/alert-fails", test_alert_fails);
    ret = g_test_run();
    if (tmpdir != NULL) {
        test_remove_tree(tmpdir);
        g_free(tmpdir);
    }
    return ret;
}
