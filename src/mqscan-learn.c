/* mqscan-learn - teach the token classifier: learn messages as ham or
 * spam, forget them, and show what the database holds.
 *
 * Options, configuration and the walk over files and directories; the
 * tokenizer, the classifier and the database are in the library
 * (mqscan/bayes.h), quarantine entries are read through
 * mqscan/quarantine.h. See mqscan-learn(8).
 *
 * Exit codes (sysexits): 0 done, 64 usage (also a bad quarantine ID), 65
 * some messages could not be read or parsed (the others were learned), 66
 * a named file or directory does not exist, 69 the database or quarantine
 * cannot be opened, 74 the database cannot be written, 75 it stayed locked
 * (try again), 78 configuration.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <glib.h>
#include <glib-object.h>

#include "mqscan/bayes.h"
#include "mqscan/config.h"
#include "mqscan/error.h"
#include "mqscan/fsutil.h"
#include "mqscan/log.h"
#include "mqscan/quarantine.h"
#include "mqscan/tokenize.h"

#ifndef MQ_SYSCONFDIR
#define MQ_SYSCONFDIR "/etc"
#endif

#define PROG "mqscan-learn"
/* Largest message file read without a configuration (with one:
 * max_message_size). */
#define LEARN_FILE_MAX (32u * 1024 * 1024)
/* Directory levels walked below a named directory (a maildir's cur/new is
 * one level down, a tree of maildirs a few more). */
#define LEARN_DEPTH_MAX 8
/* Messages per transaction. */
#define LEARN_BATCH 500
/* Longest --top list. */
#define LEARN_TOP_MAX 1000

enum learn_mode {
    MODE_NONE,
    MODE_HAM,
    MODE_SPAM,
    MODE_FORGET,
    MODE_BAD,                       /* more than one of the three */
};

struct learn {
    struct mq_bayes_store *store;
    enum learn_mode mode;
    size_t file_max;
    unsigned changed, unchanged, failed, pending;
    int status;                     /* worst exit status so far */
};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " [-c FILE] [--db PATH] --ham|--spam|--forget FILE|DIR...\n"
            "       " PROG " [-c FILE] [--db PATH] --ham|--spam --quarantine ID...\n"
            "       " PROG " [-c FILE] [--db PATH] --released\n"
            "       " PROG " [-c FILE] [--db PATH] --stats | --top N\n"
            "  -c, --config FILE  configuration file, for bayes_db and quarantine_dir\n"
            "                     (default %s/mqscan/mqscan.conf)\n"
            "      --db PATH      token database (default: bayes_db of the configuration)\n"
            "      --ham          learn the messages as ham\n"
            "      --spam         learn the messages as spam\n"
            "      --forget       unlearn the messages\n"
            "      --quarantine   the arguments are quarantine entry IDs\n"
            "      --released     learn as ham every released quarantine entry\n"
            "      --stats        print how many messages were learned\n"
            "      --top N        print the N strongest spam and ham tokens\n"
            "  -V, --version      print the version\n"
            "  -h, --help         print this help\n",
            MQ_SYSCONFDIR);
}

static void
learn_worse(struct learn *l, int status)
{
    /* Any failure beats success; a database failure beats a bad message. */
    if (l->status == 0 || (l->status == EX_DATAERR && status != EX_DATAERR))
        l->status = status;
}

static int
learn_status_of(const GError *e)
{
    return e->code == MQ_ERROR_TEMP ? EX_TEMPFAIL : EX_IOERR;
}

/* Commits the batch so far. Returns false if the database failed. */
static bool
learn_commit(struct learn *l)
{
    GError *err = NULL;

    if (mq_bayes_store_commit(l->store, &err) < 0) {
        mq_log_error("%s", err->message);
        learn_worse(l, learn_status_of(err));
        g_error_free(err);
        return false;
    }
    l->pending = 0;
    return true;
}

/* Learns or forgets one message of len bytes; what names it in messages. */
static bool
learn_message(struct learn *l, const char *what, const char *data, size_t len)
{
    GError *err = NULL;
    GMimeMessage *msg = mq_tokenize_parse(data, len, &err);
    int rc;

    if (msg == NULL) {
        mq_log_error("%s: %s", what, err->message);
        g_error_free(err);
        l->failed++;
        learn_worse(l, EX_DATAERR);
        return true;
    }
    if (l->mode == MODE_FORGET)
        rc = mq_bayes_store_forget(l->store, msg, &err);
    else
        rc = mq_bayes_store_learn(l->store, msg, l->mode == MODE_SPAM, &err);
    g_object_unref(msg);
    if (rc < 0) {
        mq_log_error("%s: %s", what, err->message);
        learn_worse(l, learn_status_of(err));
        g_error_free(err);
        return false;
    }
    if (rc > 0)
        l->changed++;
    else
        l->unchanged++;
    if (++l->pending >= LEARN_BATCH)
        return learn_commit(l);
    return true;
}

/* One file: no symbolic link, a regular file with one link, bounded. */
static bool
learn_file(struct learn *l, int dirfd, const char *name, const char *shown)
{
    GError *err = NULL;
    char *buf = NULL;
    size_t len = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    bool ok;

    if (fd < 0) {
        mq_log_error("%s: %s", shown, errno == ELOOP ? "a symbolic link, skipped" : g_strerror(errno));
        l->failed++;
        learn_worse(l, EX_DATAERR);
        return true;
    }
    if (mq_fs_read_fd(fd, l->file_max, &buf, &len, &err) < 0) {
        mq_log_error("%s: %s", shown, err->message);
        g_error_free(err);
        close(fd);
        l->failed++;
        learn_worse(l, EX_DATAERR);
        return true;
    }
    close(fd);
    ok = learn_message(l, shown, buf, len);
    g_free(buf);
    return ok;
}

static int
learn_cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file under the open directory dirfd, in name order, names
 * starting with '.' left out (maildir's tmp/ is walked: a message there is
 * complete once it has a name without a dot, as everywhere). Symbolic links
 * are not followed. */
static bool
learn_dir(struct learn *l, int dirfd, const char *shown, unsigned depth)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    DIR *d = fdopendir(dirfd);
    struct dirent *de;
    bool ok = true;

    if (d == NULL) {
        mq_log_error("%s: %s", shown, g_strerror(errno));
        close(dirfd);
        l->failed++;
        learn_worse(l, EX_DATAERR);
        g_ptr_array_unref(names);
        return true;
    }
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            g_ptr_array_add(names, g_strdup(de->d_name));
    g_ptr_array_sort(names, learn_cmp_names);
    for (guint i = 0; i < names->len && ok; i++) {
        const char *name = g_ptr_array_index(names, i);
        char *path = g_build_filename(shown, name, NULL);
        char *shown_path = mq_log_sanitize(path, 1000);
        struct stat st;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            mq_log_error("%s: %s", shown_path, g_strerror(errno));
        } else if (S_ISDIR(st.st_mode) && depth >= LEARN_DEPTH_MAX) {
            mq_log_warn("%s: more than %d levels deep, skipped", shown_path, LEARN_DEPTH_MAX);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                mq_log_error("%s: %s", shown_path, g_strerror(errno));
            else
                ok = learn_dir(l, sub, path, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            ok = learn_file(l, dirfd, name, shown_path);
        }
        g_free(shown_path);
        g_free(path);
    }
    closedir(d);
    g_ptr_array_unref(names);
    return ok;
}

static bool
learn_path(struct learn *l, const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0) {
        mq_log_error("%s: %s", path, g_strerror(errno));
        learn_worse(l, EX_NOINPUT);
        return true;
    }
    if (S_ISDIR(st.st_mode)) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            mq_log_error("%s: %s", path, g_strerror(errno));
            learn_worse(l, EX_NOINPUT);
            return true;
        }
        return learn_dir(l, fd, path, 0);
    }
    return learn_file(l, AT_FDCWD, path, path);
}

static bool
learn_entry(struct learn *l, struct mq_quarantine *q, const char *id)
{
    GError *err = NULL;
    char *buf = NULL;
    size_t len = 0;
    bool ok;

    if (mq_quarantine_original(q, id, l->file_max, &buf, &len, &err) < 0) {
        mq_log_error("%s", err->message);
        learn_worse(l, err->domain == MQ_QUARANTINE_ERROR &&
                               err->code == MQ_QUARANTINE_ERROR_BAD_ID ? EX_USAGE
                       : err->domain == MQ_QUARANTINE_ERROR ? EX_NOINPUT
                                                            : EX_DATAERR);
        g_error_free(err);
        l->failed++;
        return true;
    }
    ok = learn_message(l, id, buf, len);
    g_free(buf);
    return ok;
}

/* --released: every entry with a release record, as ham. */
static bool
learn_released(struct learn *l, struct mq_quarantine *q)
{
    GError *err = NULL;
    GPtrArray *entries = mq_quarantine_list(q, NULL, MQ_QUARANTINE_OLDEST_FIRST, NULL, &err);
    bool ok = true;

    if (entries == NULL) {
        mq_log_error("%s", err->message);
        g_error_free(err);
        learn_worse(l, EX_UNAVAILABLE);
        return false;
    }
    for (guint i = 0; i < entries->len && ok; i++) {
        const struct mq_quarantine_info *info = g_ptr_array_index(entries, i);
        if (info->n_releases > 0)
            ok = learn_entry(l, q, info->id);
    }
    g_ptr_array_unref(entries);
    return ok;
}

static int
show_stats(const char *db_path)
{
    GError *err = NULL;
    struct mq_bayes *b = mq_bayes_open(db_path, &err);
    unsigned nham, nspam;

    if (b == NULL) {
        mq_log_error("%s", err->message);
        g_error_free(err);
        return EX_UNAVAILABLE;
    }
    mq_bayes_counts(b, &nham, &nspam);
    printf("ham: %u\nspam: %u\nready: %s\n", nham, nspam,
           mq_bayes_ready(b) ? "yes" : "no (" G_STRINGIFY(MQ_BAYES_MIN_LEARNED) " of each needed)");
    mq_bayes_free(&b);
    return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

static int
show_top(const char *db_path, size_t n)
{
    GError *err = NULL;
    struct mq_bayes_store *s = NULL;
    int status = 0;

    /* Looking must not create a database. */
    if (access(db_path, F_OK) < 0) {
        mq_log_error("%s: %s", db_path, g_strerror(errno));
        return EX_UNAVAILABLE;
    }
    if ((s = mq_bayes_store_open(db_path, &err)) == NULL) {
        mq_log_error("%s", err->message);
        g_error_free(err);
        return EX_UNAVAILABLE;
    }
    for (int spam = 1; spam >= 0 && status == 0; spam--) {
        struct mq_bayes_top *top = NULL;
        size_t count = 0;

        if (mq_bayes_store_top(s, spam, n, &top, &count, &err) < 0) {
            mq_log_error("%s", err->message);
            g_clear_error(&err);
            status = EX_IOERR;
            break;
        }
        printf("%s tokens (probability, spam, ham, token):\n", spam ? "spam" : "ham");
        for (size_t i = 0; i < count; i++)
            printf("%8.4f %7u %7u  %s\n", top[i].prob, top[i].nspam, top[i].nham, top[i].token);
        mq_bayes_top_free(&top, count);
    }
    mq_bayes_store_close(&s);
    if (fflush(stdout) != 0)
        status = EX_IOERR;
    return status;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "db", required_argument, NULL, 'D' },
        { "ham", no_argument, NULL, 'H' },
        { "spam", no_argument, NULL, 'S' },
        { "forget", no_argument, NULL, 'F' },
        { "quarantine", no_argument, NULL, 'Q' },
        { "released", no_argument, NULL, 'R' },
        { "stats", no_argument, NULL, 's' },
        { "top", required_argument, NULL, 't' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = MQ_SYSCONFDIR "/mqscan/mqscan.conf", *db_arg = NULL;
    bool quarantine = false, released = false, stats = false, config_given = false;
    uint64_t top_n = 0;
    struct learn l = { .file_max = LEARN_FILE_MAX };
    struct mq_config *config = NULL;
    struct mq_quarantine *q = NULL;
    char *db_path = NULL;
    GError *err = NULL;
    int opt, actions, status = EX_UNAVAILABLE;
    bool ok = true;

    while ((opt = getopt_long(argc, argv, "c:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; config_given = true; break;
        case 'D': db_arg = optarg; break;
        case 'H': l.mode = l.mode == MODE_NONE ? MODE_HAM : MODE_BAD; break;
        case 'S': l.mode = l.mode == MODE_NONE ? MODE_SPAM : MODE_BAD; break;
        case 'F': l.mode = l.mode == MODE_NONE ? MODE_FORGET : MODE_BAD; break;
        case 'Q': quarantine = true; break;
        case 'R': released = true; break;
        case 's': stats = true; break;
        case 't':
            if (!mq_fs_parse_uint(optarg, 1, LEARN_TOP_MAX, &top_n)) {
                fprintf(stderr, PROG ": --top takes a number from 1 to %d\n", LEARN_TOP_MAX);
                return EX_USAGE;
            }
            break;
        case 'V': printf(PROG " %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EX_USAGE;
        }
    }
    actions = (l.mode != MODE_NONE) + released + stats + (top_n > 0);
    if (l.mode == MODE_BAD || actions != 1 || (db_arg != NULL && *db_arg == '\0') ||
        (l.mode != MODE_NONE && optind == argc) || (l.mode == MODE_NONE && optind != argc) ||
        (quarantine && l.mode != MODE_HAM && l.mode != MODE_SPAM)) {
        usage(stderr);
        return EX_USAGE;
    }
    /* Training is recorded in the mail log too. */
    mq_log_open(PROG, MQ_LOG_SINK_STDERR | MQ_LOG_SINK_SYSLOG);
    /* Operator IDs are checked before anything is read. */
    for (int i = optind; quarantine && i < argc; i++) {
        if (!mq_quarantine_id_ok(argv[i])) {
            char *shown = mq_log_sanitize(argv[i], 100);
            mq_log_error("invalid entry ID \"%s\" (expected YYYYMMDD-QUEUEID-RANDOM)", shown);
            g_free(shown);
            return EX_USAGE;
        }
    }

    /* The configuration is read when something comes from it. */
    if (db_arg == NULL || quarantine || released || config_given) {
        config = mq_config_load(config_path, &err);
        if (config == NULL) {
            mq_log_error("%s", err->message);
            status = EX_CONFIG;
            goto done;
        }
        l.file_max = config->max_message_size;
    }
    if (db_arg == NULL && (config->bayes_db == NULL || *config->bayes_db == '\0')) {
        mq_log_error("%s: bayes_db is empty: no token database is configured", config_path);
        status = EX_CONFIG;
        goto done;
    }
    db_path = g_strdup(db_arg != NULL ? db_arg : config->bayes_db);

    if (stats) {
        status = show_stats(db_path);
        goto done;
    }
    if (top_n > 0) {
        status = show_top(db_path, (size_t)top_n);
        goto done;
    }
    if (quarantine || released) {
        q = mq_quarantine_open_existing(config->quarantine_dir, &err);
        if (q == NULL) {
            mq_log_error("%s", err->message);
            goto done;
        }
    }
    if (released)
        l.mode = MODE_HAM;
    l.store = mq_bayes_store_open(db_path, &err);
    if (l.store == NULL) {
        mq_log_error("%s", err->message);
        goto done;
    }
    if (released)
        ok = learn_released(&l, q);
    for (int i = optind; i < argc && ok; i++)
        ok = quarantine ? learn_entry(&l, q, argv[i]) : learn_path(&l, argv[i]);
    if (ok)
        ok = learn_commit(&l);
    if (!ok) {
        /* What was not committed is lost; the counts say what is in. */
        mq_log_error("stopped: the database failed; nothing since the last commit was kept");
    }
    mq_log_info("%s: %u %s, %u unchanged, %u failed", db_path, l.changed,
                l.mode == MODE_FORGET ? "forgotten" : l.mode == MODE_SPAM ? "learned as spam"
                                                                          : "learned as ham",
                l.unchanged, l.failed);
    status = l.status;

done:
    g_clear_error(&err);
    mq_bayes_store_close(&l.store);
    mq_quarantine_free(&q);
    g_free(db_path);
    mq_config_free(&config);
    return status;
}
