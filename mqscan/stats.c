#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <sqlite3.h>

#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/policy.h"
#include "mqscan/process.h"
#include "mqscan/stats.h"

#define STATS_HOUR 3600
#define STATS_LISTS 2

/* Column names of the hours table, in enum mq_stats_counter order. These
 * constants, the two list tables below and the numbers in this file are the
 * only things ever pasted into SQL text; values from messages are always
 * bound parameters. */
static const char *const counter_names[MQ_STATS_COUNTER_COUNT] = {
    "messages", "bytes", "clean", "passed", "cleaned", "quarantined", "deleted", "held",
    "deferred", "infected", "banned", "limits", "encrypted", "unscannable",
    "spam0", "spam1", "spam2", "spam3", "spam4", "spam5", "spam6", "spam7", "spam8", "spam9",
};

static const struct {
    const char *table;
    const char *column;
} stats_lists[STATS_LISTS] = {
    [MQ_STATS_LIST_VIRUSES] = { "viruses", "name" },
    [MQ_STATS_LIST_SENDERS] = { "senders", "sender" },
};

/* A new finding kind needs a column (and a schema version) of its own. */
G_STATIC_ASSERT(MQ_FINDING_COUNT == 5);
static const enum mq_stats_counter finding_counters[MQ_FINDING_COUNT] = {
    [MQ_FINDING_INFECTED] = MQ_STATS_INFECTED,
    [MQ_FINDING_BANNED] = MQ_STATS_BANNED,
    [MQ_FINDING_LIMITS] = MQ_STATS_LIMITS,
    [MQ_FINDING_ENCRYPTED] = MQ_STATS_ENCRYPTED,
    [MQ_FINDING_UNSCANNABLE] = MQ_STATS_UNSCANNABLE,
};

/* The counter of each finished outcome. An outcome added to process.h later
 * and missing here maps to 0, MQ_STATS_MESSAGES, which every finished message
 * counts anyway: it is counted as a message and nothing more, until it gets
 * a column. */
static const enum mq_stats_counter outcome_counters[MQ_OUTCOME_COUNT] = {
    [MQ_OUTCOME_DELIVERED] = MQ_STATS_CLEAN,
    [MQ_OUTCOME_PASSED] = MQ_STATS_PASSED,
    [MQ_OUTCOME_CLEANED] = MQ_STATS_CLEANED,
    [MQ_OUTCOME_QUARANTINED] = MQ_STATS_QUARANTINED,
    [MQ_OUTCOME_DELETED] = MQ_STATS_DELETED,
    [MQ_OUTCOME_HELD] = MQ_STATS_HELD,
};

struct stats_list_stmts {
    sqlite3_stmt *update;       /* count + 1 for (hour, name), if present */
    sqlite3_stmt *count;        /* distinct names in an hour */
    sqlite3_stmt *insert;       /* (hour, name, 1), or count + 1 */
};

struct mq_stats {
    sqlite3 *db;
    char *path;
    bool writable;
    sqlite3_stmt *hour_upsert;  /* writable only */
    struct stats_list_stmts lists[STATS_LISTS];
};

/* ---- helpers ---------------------------------------------------------------- */

static int64_t
stats_hour_floor(time_t t)
{
    int64_t v = (int64_t)t;

    return v / STATS_HOUR - (v % STATS_HOUR < 0 ? 1 : 0);
}

/* The first hour that starts at or after t. */
static int64_t
stats_hour_ceil(time_t t)
{
    int64_t v = (int64_t)t;

    return v / STATS_HOUR + (v % STATS_HOUR > 0 ? 1 : 0);
}

static enum mq_error_code
stats_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_NOMEM:
        return MQ_ERROR_TEMP;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
        return MQ_ERROR_CORRUPT;
    default:
        return MQ_ERROR_IO;
    }
}

/* Call right after the failing sqlite3 call: sqlite3_errmsg() describes the
 * most recent one. */
static void
stats_fail(const struct mq_stats *s, int rc, const char *what, GError **err)
{
    g_set_error(err, MQ_ERROR, stats_code(rc), "%s: %s: %s", s->path, what,
                s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

static int
stats_exec(struct mq_stats *s, const char *sql, GError **err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        g_set_error(err, MQ_ERROR, stats_code(rc), "%s: %s", s->path,
                    msg != NULL ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Ends a transaction that failed half-way; nothing of it is kept. */
static void
stats_rollback(struct mq_stats *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static sqlite3_stmt *
stats_prepare(struct mq_stats *s, const char *sql, GError **err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK) {
        stats_fail(s, rc, "prepare", err);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Runs a statement that returns no row, then resets it for the next use. */
static int
stats_step_done(struct mq_stats *s, sqlite3_stmt *st, const char *what, GError **err)
{
    int rc = sqlite3_step(st);

    if (rc != SQLITE_DONE) {
        stats_fail(s, rc == SQLITE_ROW ? SQLITE_MISUSE : rc, what, err);
        sqlite3_reset(st);
        return -1;
    }
    sqlite3_reset(st);
    return 0;
}

/* A name from a message as it is stored: printable UTF-8, capped; NULL for
 * an empty one (not counted). Caller frees with g_free(). */
static char *
stats_clean_name(const char *name)
{
    if (name == NULL || *name == '\0')
        return NULL;
    return mq_log_sanitize(name, MQ_STATS_NAME_MAX);
}

static uint64_t
stats_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- open, schema ------------------------------------------------------------ */

static char *
stats_schema_sql(void)
{
    GString *sql = g_string_new("CREATE TABLE schema_version (version INTEGER NOT NULL);\n"
                                "CREATE TABLE hours (hour INTEGER PRIMARY KEY");

    for (size_t i = 0; i < MQ_STATS_COUNTER_COUNT; i++)
        g_string_append_printf(sql, ", %s INTEGER NOT NULL DEFAULT 0", counter_names[i]);
    g_string_append(sql, ");\n");
    for (size_t i = 0; i < STATS_LISTS; i++)
        g_string_append_printf(sql,
                               "CREATE TABLE %s (hour INTEGER NOT NULL, %s TEXT NOT NULL, "
                               "count INTEGER NOT NULL, PRIMARY KEY (hour, %s)) WITHOUT ROWID;\n",
                               stats_lists[i].table, stats_lists[i].column, stats_lists[i].column);
    g_string_append_printf(sql, "INSERT INTO schema_version (version) VALUES (%d);\n",
                           MQ_STATS_SCHEMA_VERSION);
    return g_string_free(sql, FALSE);
}

/* Returns the schema version, 0 for a file without any table (a new, empty
 * database), or -1 with err set. A file with tables but no schema_version is
 * someone else's database: never add ours to it. */
static int
stats_read_version(struct mq_stats *s, GError **err)
{
    sqlite3_stmt *st = NULL;
    int rc, version = -1;

    st = stats_prepare(s, "SELECT count(*), coalesce(sum(name = 'schema_version'), 0) "
                          "FROM sqlite_master WHERE type = 'table'", err);
    if (st == NULL)
        goto done;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        stats_fail(s, rc, "reading the schema", err);
        goto done;
    }
    if (sqlite3_column_int64(st, 0) == 0) {
        version = 0;
        goto done;
    }
    if (sqlite3_column_int64(st, 1) != 1) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: not an mqscan statistics database",
                    s->path);
        goto done;
    }
    sqlite3_finalize(st);
    st = stats_prepare(s, "SELECT version, (SELECT count(*) FROM schema_version) "
                          "FROM schema_version", err);
    if (st == NULL)
        goto done;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER &&
        sqlite3_column_int64(st, 1) == 1 && sqlite3_column_int64(st, 0) > 0 &&
        sqlite3_column_int64(st, 0) < INT32_MAX) {
        version = (int)sqlite3_column_int64(st, 0);
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: schema_version is not one version number",
                    s->path);
    } else {
        stats_fail(s, rc, "reading the schema version", err);
    }
done:
    sqlite3_finalize(st);
    return version;
}

static int
stats_check_version(struct mq_stats *s, int version, GError **err)
{
    if (version == MQ_STATS_SCHEMA_VERSION)
        return 0;
    if (version == 0)
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                    "%s: not an mqscan statistics database", s->path);
    else
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                    "%s: schema version %d, this mqscan knows version %d", s->path, version,
                    MQ_STATS_SCHEMA_VERSION);
    return -1;
}

static int
stats_prepare_writes(struct mq_stats *s, GError **err)
{
    GString *sql = g_string_new("INSERT INTO hours (hour");
    int ret = -1;

    for (size_t i = 0; i < MQ_STATS_COUNTER_COUNT; i++)
        g_string_append_printf(sql, ", %s", counter_names[i]);
    g_string_append(sql, ") VALUES (?1");
    for (size_t i = 0; i < MQ_STATS_COUNTER_COUNT; i++)
        g_string_append_printf(sql, ", ?%zu", i + 2);
    g_string_append(sql, ") ON CONFLICT (hour) DO UPDATE SET ");
    for (size_t i = 0; i < MQ_STATS_COUNTER_COUNT; i++)
        g_string_append_printf(sql, "%s%s = %s + excluded.%s", i ? ", " : "", counter_names[i],
                               counter_names[i], counter_names[i]);
    if ((s->hour_upsert = stats_prepare(s, sql->str, err)) == NULL)
        goto done;
    for (size_t i = 0; i < STATS_LISTS; i++) {
        const char *t = stats_lists[i].table, *c = stats_lists[i].column;
        struct stats_list_stmts *ls = &s->lists[i];

        g_string_printf(sql, "UPDATE %s SET count = count + 1 WHERE hour = ?1 AND %s = ?2", t, c);
        if ((ls->update = stats_prepare(s, sql->str, err)) == NULL)
            goto done;
        g_string_printf(sql, "SELECT count(*) FROM %s WHERE hour = ?1", t);
        if ((ls->count = stats_prepare(s, sql->str, err)) == NULL)
            goto done;
        g_string_printf(sql, "INSERT INTO %s (hour, %s, count) VALUES (?1, ?2, 1) "
                             "ON CONFLICT (hour, %s) DO UPDATE SET count = count + 1", t, c, c);
        if ((ls->insert = stats_prepare(s, sql->str, err)) == NULL)
            goto done;
    }
    ret = 0;
done:
    g_string_free(sql, TRUE);
    return ret;
}

/* The schema is checked (and, in a new file, created) under a write lock,
 * so two writers that open a new file at once cannot both create it, and
 * before anything else touches the file: someone else's database is refused
 * unchanged. Then WAL, so that mqscan-stats reads while mqscand writes and
 * neither waits, and synchronous=NORMAL, since a power cut may cost the last
 * counts but never the file. */
static int
stats_setup_writer(struct mq_stats *s, GError **err)
{
    sqlite3_stmt *st = NULL;
    char *schema = NULL;
    int rc, version, ret = -1;

    if (stats_exec(s, "BEGIN IMMEDIATE", err) < 0)
        goto done;
    version = stats_read_version(s, err);
    if (version < 0)
        goto done;
    if (version == 0) {
        schema = stats_schema_sql();
        if (stats_exec(s, schema, err) < 0)
            goto done;
    } else if (stats_check_version(s, version, err) < 0) {
        goto done;
    }
    if (stats_exec(s, "COMMIT", err) < 0)
        goto done;

    if ((st = stats_prepare(s, "PRAGMA journal_mode = WAL", err)) == NULL)
        goto done;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        stats_fail(s, rc, "journal_mode", err);
        goto done;
    }
    if (g_strcmp0((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_IO, "%s: cannot switch to WAL mode", s->path);
        goto done;
    }
    if (stats_exec(s, "PRAGMA synchronous = NORMAL", err) < 0)
        goto done;
    ret = stats_prepare_writes(s, err);
done:
    sqlite3_finalize(st);
    g_free(schema);
    if (ret < 0)
        stats_rollback(s);
    return ret;
}

/* sqlite3_open_v2() follows symbolic links and opens whatever is there. The
 * file is state we read back (rule 11): it must be a regular file with one
 * link, and O_NONBLOCK keeps a FIFO planted there from hanging us. */
static int
stats_check_file(const char *path, bool writable, GError **err)
{
    struct stat st;
    int fd = open(path, (writable ? O_RDWR | O_CREAT : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK |
                        O_NOCTTY | O_CLOEXEC, 0640);

    if (fd < 0) {
        int e = errno;
        g_set_error(err, MQ_ERROR, e == ELOOP ? MQ_ERROR_CORRUPT : mq_error_from_errno(e),
                    "%s: %s", path, e == ELOOP ? "is a symbolic link" : g_strerror(e));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        int e = errno;
        g_set_error(err, MQ_ERROR, mq_error_from_errno(e), "%s: %s", path, g_strerror(e));
        close(fd);
        return -1;
    }
    close(fd);
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: not a regular file with one link",
                    path);
        return -1;
    }
    return 0;
}

struct mq_stats *
mq_stats_open(const char *path, bool writable, GError **err)
{
    struct mq_stats *s = g_new0(struct mq_stats, 1);
    int rc, flags, version;

    s->path = g_strdup(path);
    s->writable = writable;
    if (stats_check_file(path, writable, err) < 0)
        goto fail;
    flags = (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX;
#ifdef SQLITE_OPEN_NOFOLLOW
    flags |= SQLITE_OPEN_NOFOLLOW;
#endif
    rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        stats_fail(s, rc, "cannot open", err);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, MQ_STATS_BUSY_TIMEOUT_MS);
    /* The file may have been edited by someone else: nothing in it (triggers,
     * views) may call functions with side effects, and nothing may write to
     * the schema behind SQLite's back. */
#ifdef SQLITE_DBCONFIG_DEFENSIVE
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
#endif
    if (stats_exec(s, "PRAGMA trusted_schema = OFF", err) < 0)
        goto fail;
    if (writable) {
        if (stats_setup_writer(s, err) < 0)
            goto fail;
    } else {
        if (stats_exec(s, "PRAGMA query_only = ON", err) < 0)
            goto fail;
        version = stats_read_version(s, err);
        if (version < 0 || stats_check_version(s, version, err) < 0)
            goto fail;
    }
    return s;

fail:
    mq_stats_close(&s);
    return NULL;
}

void
mq_stats_close(struct mq_stats **statsp)
{
    struct mq_stats *s = *statsp;

    if (s == NULL)
        return;
    sqlite3_finalize(s->hour_upsert);
    for (size_t i = 0; i < STATS_LISTS; i++) {
        sqlite3_finalize(s->lists[i].update);
        sqlite3_finalize(s->lists[i].count);
        sqlite3_finalize(s->lists[i].insert);
    }
    if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
        mq_log_warn("%s: close: %s", s->path, sqlite3_errmsg(s->db));
    g_free(s->path);
    g_free(s);
    *statsp = NULL;
}

const char *
mq_stats_counter_name(enum mq_stats_counter counter)
{
    if ((unsigned)counter >= MQ_STATS_COUNTER_COUNT)
        mq_log_panic("mq_stats_counter_name: counter %d out of range", (int)counter);
    return counter_names[counter];
}

/* ---- writing ----------------------------------------------------------------- */

/* One more occurrence of name in list during hour. A new name in an hour
 * that already has MQ_STATS_NAMES_PER_HOUR of them is counted as
 * MQ_STATS_OTHER instead. */
static int
stats_bump(struct mq_stats *s, enum mq_stats_list list, int64_t hour, const char *name,
           GError **err)
{
    struct stats_list_stmts *ls = &s->lists[list];
    int64_t n;
    int rc;

    sqlite3_bind_int64(ls->update, 1, hour);
    sqlite3_bind_text(ls->update, 2, name, -1, SQLITE_TRANSIENT);
    if (stats_step_done(s, ls->update, "update", err) < 0)
        return -1;
    if (sqlite3_changes(s->db) > 0)
        return 0;

    sqlite3_bind_int64(ls->count, 1, hour);
    rc = sqlite3_step(ls->count);
    if (rc != SQLITE_ROW) {
        stats_fail(s, rc, "count", err);
        sqlite3_reset(ls->count);
        return -1;
    }
    n = sqlite3_column_int64(ls->count, 0);
    sqlite3_reset(ls->count);
    if (n >= MQ_STATS_NAMES_PER_HOUR)
        name = MQ_STATS_OTHER;
    sqlite3_bind_int64(ls->insert, 1, hour);
    sqlite3_bind_text(ls->insert, 2, name, -1, SQLITE_TRANSIENT);
    return stats_step_done(s, ls->insert, "insert", err);
}

static bool
stats_blocked(enum mq_outcome outcome)
{
    return outcome == MQ_OUTCOME_CLEANED || outcome == MQ_OUTCOME_QUARANTINED ||
           outcome == MQ_OUTCOME_DELETED;
}

static int
stats_add_one(struct mq_stats *s, const struct mq_stats_sample *sm, GError **err)
{
    int64_t delta[MQ_STATS_COUNTER_COUNT] = { 0 };
    char *names[MQ_STATS_NAMES_PER_SAMPLE];
    size_t n_names = 0;
    int64_t hour;
    int ret = -1;

    if ((unsigned)sm->outcome >= MQ_OUTCOME_COUNT)
        mq_log_panic("mq_stats_add: outcome %d out of range", (int)sm->outcome);
    if (sm->outcome == MQ_OUTCOME_SKIPPED)
        return 0;
    hour = stats_hour_floor(sm->when);
    if (sm->outcome == MQ_OUTCOME_DEFERRED) {
        delta[MQ_STATS_DEFERRED] = 1;
    } else {
        delta[MQ_STATS_MESSAGES] = 1;
        delta[MQ_STATS_BYTES] = sm->bytes > INT64_MAX ? INT64_MAX : (int64_t)sm->bytes;
        delta[outcome_counters[sm->outcome]] = 1;
        for (unsigned k = 0; k < MQ_FINDING_COUNT; k++) {
            if (sm->finding_kinds & MQ_STATS_FINDING(k))
                delta[finding_counters[k]] = 1;
        }
        if (sm->spam_scored)
            delta[MQ_STATS_SPAM0 + MIN(sm->spam_level, MQ_STATS_SPAM_LEVELS - 1)] = 1;
    }
    sqlite3_bind_int64(s->hour_upsert, 1, hour);
    for (size_t i = 0; i < MQ_STATS_COUNTER_COUNT; i++)
        sqlite3_bind_int64(s->hour_upsert, (int)i + 2, delta[i]);
    if (stats_step_done(s, s->hour_upsert, "update hours", err) < 0)
        return -1;
    if (sm->outcome == MQ_OUTCOME_DEFERRED)
        return 0;

    /* Each distinct name once per message, however many parts carry it. */
    for (const char *const *p = sm->virus_names; p != NULL && *p != NULL &&
                                                 n_names < MQ_STATS_NAMES_PER_SAMPLE; p++) {
        char *name = stats_clean_name(*p);
        bool seen = name == NULL;

        for (size_t i = 0; i < n_names && !seen; i++)
            seen = strcmp(names[i], name) == 0;
        if (seen)
            g_free(name);
        else
            names[n_names++] = name;
    }
    for (size_t i = 0; i < n_names; i++) {
        if (stats_bump(s, MQ_STATS_LIST_VIRUSES, hour, names[i], err) < 0)
            goto done;
    }
    if (sm->sender != NULL && stats_blocked(sm->outcome)) {
        char *sender = stats_clean_name(sm->sender);
        int rc = stats_bump(s, MQ_STATS_LIST_SENDERS, hour, sender != NULL ? sender : "<>", err);
        g_free(sender);
        if (rc < 0)
            goto done;
    }
    ret = 0;
done:
    for (size_t i = 0; i < n_names; i++)
        g_free(names[i]);
    return ret;
}

int
mq_stats_add(struct mq_stats *s, const struct mq_stats_sample *samples, size_t n, GError **err)
{
    if (!s->writable)
        mq_log_panic("mq_stats_add: %s is open read-only", s->path);
    if (n == 0)
        return 0;
    if (stats_exec(s, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (stats_add_one(s, &samples[i], err) < 0)
            goto fail;
    }
    if (stats_exec(s, "COMMIT", err) < 0)
        goto fail;
    return 0;

fail:
    stats_rollback(s);
    return -1;
}

int64_t
mq_stats_expire(struct mq_stats *s, time_t before, GError **err)
{
    sqlite3_stmt *st = NULL;
    int64_t hour = stats_hour_ceil(before), deleted = -1, n = 0;
    const char *tables[] = { "hours", "viruses", "senders" };

    if (!s->writable)
        mq_log_panic("mq_stats_expire: %s is open read-only", s->path);
    if (stats_exec(s, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
        char *sql = g_strdup_printf("DELETE FROM %s WHERE hour < ?1", tables[i]);
        st = stats_prepare(s, sql, err);
        g_free(sql);
        if (st == NULL)
            goto done;
        sqlite3_bind_int64(st, 1, hour);
        if (stats_step_done(s, st, "expire", err) < 0)
            goto done;
        if (i == 0)
            n = sqlite3_changes(s->db);
        sqlite3_finalize(st);
        st = NULL;
    }
    if (stats_exec(s, "COMMIT", err) < 0)
        goto done;
    deleted = n;
done:
    sqlite3_finalize(st);
    if (deleted < 0)
        stats_rollback(s);
    return deleted;
}

/* ---- queries ------------------------------------------------------------------ */

int
mq_stats_totals(struct mq_stats *s, time_t from, time_t to, unsigned step_hours,
                struct mq_stats_period **periods_r, size_t *n_r, GError **err)
{
    int64_t from_h = stats_hour_ceil(from), to_h = stats_hour_ceil(to), n;
    struct mq_stats_period *periods = NULL;
    sqlite3_stmt *st = NULL;
    GString *sql = NULL;
    int rc, ret = -1;

    *periods_r = NULL;
    *n_r = 0;
    if (step_hours == 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT, "%s: periods of 0 hours", s->path);
        return -1;
    }
    if (to_h <= from_h)
        return 0;
    n = (to_h - from_h) / step_hours + ((to_h - from_h) % step_hours != 0);
    if (n > MQ_STATS_PERIODS_MAX) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT, "%s: %" PRId64 " periods, at most %d",
                    s->path, n, MQ_STATS_PERIODS_MAX);
        return -1;
    }
    periods = g_new0(struct mq_stats_period, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        periods[i].start = (time_t)((from_h + i * (int64_t)step_hours) * STATS_HOUR);

    sql = g_string_new("SELECT hour");
    for (size_t i = 0; i < MQ_STATS_COUNTER_COUNT; i++)
        g_string_append_printf(sql, ", %s", counter_names[i]);
    g_string_append(sql, " FROM hours WHERE hour >= ?1 AND hour < ?2 ORDER BY hour");
    if ((st = stats_prepare(s, sql->str, err)) == NULL)
        goto done;
    sqlite3_bind_int64(st, 1, from_h);
    sqlite3_bind_int64(st, 2, to_h);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t hour = sqlite3_column_int64(st, 0);
        struct mq_stats_period *p;

        if (hour < from_h || hour >= to_h)     /* a column that is not an integer */
            continue;
        p = &periods[(hour - from_h) / step_hours];
        for (size_t i = 0; i < MQ_STATS_COUNTER_COUNT; i++) {
            int64_t v = sqlite3_column_int64(st, (int)i + 1);
            if (v > 0)
                p->counts[i] = stats_sat_add(p->counts[i], (uint64_t)v);
        }
    }
    if (rc != SQLITE_DONE) {
        stats_fail(s, rc, "reading hours", err);
        goto done;
    }
    *periods_r = periods;
    *n_r = (size_t)n;
    periods = NULL;
    ret = 0;
done:
    sqlite3_finalize(st);
    if (sql != NULL)
        g_string_free(sql, TRUE);
    g_free(periods);
    return ret;
}

int
mq_stats_top(struct mq_stats *s, enum mq_stats_list list, time_t from, time_t to, size_t max,
             struct mq_stats_top **top_r, size_t *n_r, GError **err)
{
    GArray *top = NULL;
    sqlite3_stmt *st = NULL;
    char *sql = NULL;
    int rc, ret = -1;

    *top_r = NULL;
    *n_r = 0;
    if ((unsigned)list >= STATS_LISTS)
        mq_log_panic("mq_stats_top: list %d out of range", (int)list);
    if (max > MQ_STATS_TOP_MAX)
        max = MQ_STATS_TOP_MAX;
    if (max == 0)
        return 0;
    sql = g_strdup_printf("SELECT %s, sum(count) AS n FROM %s WHERE hour >= ?1 AND hour < ?2 "
                          "GROUP BY %s ORDER BY n DESC, %s LIMIT ?3",
                          stats_lists[list].column, stats_lists[list].table,
                          stats_lists[list].column, stats_lists[list].column);
    if ((st = stats_prepare(s, sql, err)) == NULL)
        goto done;
    sqlite3_bind_int64(st, 1, stats_hour_ceil(from));
    sqlite3_bind_int64(st, 2, stats_hour_ceil(to));
    sqlite3_bind_int64(st, 3, (int64_t)max);
    top = g_array_new(FALSE, TRUE, sizeof(struct mq_stats_top));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        int64_t count = sqlite3_column_int64(st, 1);
        struct mq_stats_top e;

        e.name = stats_clean_name(text);
        if (e.name == NULL)
            e.name = g_strdup("");
        e.count = count > 0 ? (uint64_t)count : 0;
        g_array_append_val(top, e);
    }
    if (rc != SQLITE_DONE) {
        stats_fail(s, rc, "reading top list", err);
        goto done;
    }
    *n_r = top->len;
    if (top->len > 0)
        *top_r = (struct mq_stats_top *)(void *)g_array_free(top, FALSE);
    else
        g_array_free(top, TRUE);
    top = NULL;
    ret = 0;
done:
    if (top != NULL) {
        for (guint i = 0; i < top->len; i++)
            g_free(g_array_index(top, struct mq_stats_top, i).name);
        g_array_free(top, TRUE);
    }
    sqlite3_finalize(st);
    g_free(sql);
    return ret;
}

void
mq_stats_top_free(struct mq_stats_top **top, size_t n)
{
    if (*top == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        g_free((*top)[i].name);
    g_free(*top);
    *top = NULL;
}

/* ---- reports ------------------------------------------------------------------ */

/* What a report shows, read in one transaction. */
struct report {
    unsigned step;
    const struct mq_stats_period *periods;
    size_t n;
    uint64_t total[MQ_STATS_COUNTER_COUNT];
    const struct mq_stats_top *viruses;
    size_t n_viruses;
    const struct mq_stats_top *senders;
    size_t n_senders;
    size_t top_n;
    bool one_day;               /* every period within one UTC day */
    char title[64];             /* "2023-11-14" or "2023-11-01 to 2023-11-07" */
};

/* The report's columns: a counter, or one of the two derived values. */
enum { REPORT_MB = -1, REPORT_SPAM = -2, REPORT_THREATS = -3 };
static const struct {
    const char *head;
    int counter;
} report_columns[] = {
    { "messages", MQ_STATS_MESSAGES },
    { "MB", REPORT_MB },
    { "clean", MQ_STATS_CLEAN },
    { "passed", MQ_STATS_PASSED },
    { "cleaned", MQ_STATS_CLEANED },
    { "quarantined", MQ_STATS_QUARANTINED },
    { "deleted", MQ_STATS_DELETED },
    { "held", MQ_STATS_HELD },
    { "deferred", MQ_STATS_DEFERRED },
    { "infected", MQ_STATS_INFECTED },
    { "banned", MQ_STATS_BANNED },
    { "limits", MQ_STATS_LIMITS },
    { "encrypted", MQ_STATS_ENCRYPTED },
    { "unscannable", MQ_STATS_UNSCANNABLE },
    { "spam", REPORT_SPAM },
};

static uint64_t
report_value(const uint64_t *counts, int column)
{
    uint64_t v = 0;

    switch (column) {
    case REPORT_SPAM:
        for (int l = MQ_STATS_SPAM_REPORT_LEVEL; l < MQ_STATS_SPAM_LEVELS; l++)
            v = stats_sat_add(v, counts[MQ_STATS_SPAM0 + l]);
        return v;
    case REPORT_THREATS:
        v = stats_sat_add(counts[MQ_STATS_PASSED], counts[MQ_STATS_CLEANED]);
        v = stats_sat_add(v, counts[MQ_STATS_QUARANTINED]);
        return stats_sat_add(v, counts[MQ_STATS_DELETED]);
    default:
        return counts[column];
    }
}

/* A column's value as text: MB with two decimals, counts as integers. */
static void
report_cell(const uint64_t *counts, int column, char *buf, size_t size)
{
    if (column == REPORT_MB)
        g_ascii_formatd(buf, (int)size, "%.2f", (double)counts[MQ_STATS_BYTES] / 1e6);
    else
        g_snprintf(buf, (gulong)size, "%" PRIu64, report_value(counts, column));
}

enum report_date_form { DATE_DAY, DATE_HOUR, DATE_DAY_HOUR };

static void
report_date(time_t t, enum report_date_form form, char *buf, size_t size)
{
    struct tm tm;
    size_t n = 0;

    /* Literal formats only (-Wformat-nonliteral). */
    if (gmtime_r(&t, &tm) != NULL) {
        switch (form) {
        case DATE_DAY: n = strftime(buf, size, "%Y-%m-%d", &tm); break;
        case DATE_HOUR: n = strftime(buf, size, "%H:00", &tm); break;
        case DATE_DAY_HOUR: n = strftime(buf, size, "%Y-%m-%d %H:00", &tm); break;
        }
    }
    if (n == 0)
        g_strlcpy(buf, "?", size);
}

/* A period's label: its hour within a one-day report, its date for whole
 * days, both otherwise. */
static void
report_label(const struct report *r, time_t start, char *buf, size_t size)
{
    if (r->step % 24 == 0 && (int64_t)start % 86400 == 0)
        report_date(start, DATE_DAY, buf, size);
    else if (r->one_day)
        report_date(start, DATE_HOUR, buf, size);
    else
        report_date(start, DATE_DAY_HOUR, buf, size);
}

static const char *
report_period_word(const struct report *r)
{
    return r->step == 1 ? "hour" : r->step == 24 ? "day" : "period";
}

static void
report_text(const struct report *r, GString *out)
{
    enum { NCOL = G_N_ELEMENTS(report_columns) };
    size_t width[NCOL], label_width = strlen(report_period_word(r));
    char cell[64];

    g_string_append_printf(out, "mqscan statistics: %s (UTC)\n\n", r->title);
    for (size_t c = 0; c < NCOL; c++) {
        width[c] = strlen(report_columns[c].head);
        report_cell(r->total, report_columns[c].counter, cell, sizeof(cell));
        width[c] = MAX(width[c], strlen(cell));     /* the total is the widest */
    }
    for (size_t i = 0; i < r->n; i++) {
        report_label(r, r->periods[i].start, cell, sizeof(cell));
        label_width = MAX(label_width, strlen(cell));
    }
    g_string_append_printf(out, "%-*s", (int)label_width, report_period_word(r));
    for (size_t c = 0; c < NCOL; c++)
        g_string_append_printf(out, "  %*s", (int)width[c], report_columns[c].head);
    g_string_append_c(out, '\n');
    for (size_t i = 0; i <= r->n; i++) {
        const uint64_t *counts = i < r->n ? r->periods[i].counts : r->total;
        if (i < r->n)
            report_label(r, r->periods[i].start, cell, sizeof(cell));
        else
            g_strlcpy(cell, "total", sizeof(cell));
        g_string_append_printf(out, "%-*s", (int)label_width, cell);
        for (size_t c = 0; c < NCOL; c++) {
            report_cell(counts, report_columns[c].counter, cell, sizeof(cell));
            g_string_append_printf(out, "  %*s", (int)width[c], cell);
        }
        g_string_append_c(out, '\n');
    }
    for (int l = 0; l < 2; l++) {
        const struct mq_stats_top *top = l == 0 ? r->viruses : r->senders;
        size_t n = l == 0 ? r->n_viruses : r->n_senders;

        g_string_append_printf(out, "\ntop %zu %s\n", r->top_n,
                               l == 0 ? "viruses" : "blocked senders");
        if (n == 0)
            g_string_append(out, "  (none)\n");
        for (size_t i = 0; i < n; i++)
            g_string_append_printf(out, "%10" PRIu64 "  %s\n", top[i].count, top[i].name);
    }
}

/* Text for HTML element content and attribute values. Names are already
 * printable UTF-8 (sanitized); the markup characters are all that matter. */
static void
html_text(GString *out, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': g_string_append(out, "&amp;"); break;
        case '<': g_string_append(out, "&lt;"); break;
        case '>': g_string_append(out, "&gt;"); break;
        case '"': g_string_append(out, "&quot;"); break;
        case '\'': g_string_append(out, "&#39;"); break;
        default: g_string_append_c(out, *s); break;
        }
    }
}

/* A coordinate, with a '.' whatever the locale. */
static void
svg_num(GString *out, const char *before, double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    g_string_append(out, before);
    g_string_append(out, g_ascii_formatd(buf, sizeof(buf), "%.1f", v));
}

/* The smallest 1, 2 or 5 times a power of ten that is >= v (at least 1). */
static uint64_t
report_axis_max(uint64_t v)
{
    uint64_t p = 1;

    if (v <= 1)
        return 1;
    while (p <= v / 10)
        p *= 10;
    if (p >= v)
        return p;
    if (p <= UINT64_MAX / 2 && 2 * p >= v)
        return 2 * p;
    if (p <= UINT64_MAX / 5 && 5 * p >= v)
        return 5 * p;
    return p <= UINT64_MAX / 10 ? 10 * p : UINT64_MAX;
}

#define CHART_W 960.0
#define CHART_H 320.0
#define CHART_LEFT 60.0
#define CHART_RIGHT 12.0
#define CHART_TOP 16.0
#define CHART_BOTTOM 40.0

/* Messages and threats per period: one <rect class="messages"> and one
 * <rect class="threats"> per period, empty ones with height 0, so that the
 * number of bars always says how many periods there are. No other <rect>. */
static void
report_svg_periods(const struct report *r, GString *out)
{
    const double pw = CHART_W - CHART_LEFT - CHART_RIGHT, ph = CHART_H - CHART_TOP - CHART_BOTTOM;
    const double base = CHART_TOP + ph;
    uint64_t max = 0, axis;
    double group = r->n > 0 ? pw / (double)r->n : pw;
    size_t every;
    char label[64], num[32];

    for (size_t i = 0; i < r->n; i++)
        max = MAX(max, r->periods[i].counts[MQ_STATS_MESSAGES]);
    axis = report_axis_max(max);
    g_string_append_printf(out, "<svg id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
                                "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
                           r->step == 1 ? "chart-hourly" : "chart-daily",
                           (int)CHART_W, (int)CHART_H, (int)CHART_W, (int)CHART_H);
    g_string_append_printf(out, "<title>Messages and threats per %s (UTC)</title>\n",
                           report_period_word(r));
    /* Axis: 0, half way (when it is a whole number) and the top. */
    for (int t = 0; t <= 2; t++) {
        double y = base - ph * t / 2.0;
        if (t == 1 && axis % 2 != 0)
            continue;
        g_string_append(out, "<line class=\"grid\"");
        svg_num(out, " x1=\"", CHART_LEFT);
        svg_num(out, "\" x2=\"", CHART_W - CHART_RIGHT);
        svg_num(out, "\" y1=\"", y);
        svg_num(out, "\" y2=\"", y);
        g_string_append(out, "\"/>\n<text class=\"axis\" text-anchor=\"end\"");
        svg_num(out, " x=\"", CHART_LEFT - 6);
        svg_num(out, "\" y=\"", y + 4);
        g_string_append_printf(out, "\">%" PRIu64 "</text>\n", axis / 2 * (uint64_t)t);
    }
    /* Labels under the bars, as many as fit (about 40 px each). */
    every = 1;
    if (r->n > 0) {
        report_label(r, r->periods[0].start, label, sizeof(label));
        every = (size_t)((double)r->n * (7.0 * (double)strlen(label) + 8.0) / pw) + 1;
    }
    for (size_t i = 0; i < r->n; i++) {
        const uint64_t *c = r->periods[i].counts;
        uint64_t v[2] = { c[MQ_STATS_MESSAGES], report_value(c, REPORT_THREATS) };
        static const char *const cls[2] = { "messages", "threats" };

        report_label(r, r->periods[i].start, label, sizeof(label));
        for (int b = 0; b < 2; b++) {
            double h = ph * (double)MIN(v[b], axis) / (double)axis;
            g_string_append_printf(out, "<rect class=\"%s\"", cls[b]);
            svg_num(out, " x=\"", CHART_LEFT + group * (double)i + group * (b == 0 ? 0.1 : 0.5));
            svg_num(out, "\" y=\"", base - h);
            svg_num(out, "\" width=\"", group * 0.4);
            svg_num(out, "\" height=\"", h);
            g_string_append(out, "\"><title>");
            html_text(out, label);
            g_snprintf(num, sizeof(num), ": %" PRIu64 " %s", v[b], cls[b]);
            html_text(out, num);
            g_string_append(out, "</title></rect>\n");
        }
        if (i % every == 0) {
            g_string_append(out, "<text class=\"axis\" text-anchor=\"middle\"");
            svg_num(out, " x=\"", CHART_LEFT + group * ((double)i + 0.5));
            svg_num(out, "\" y=\"", base + 16);
            g_string_append(out, "\">");
            html_text(out, label);
            g_string_append(out, "</text>\n");
        }
    }
    g_string_append(out, "<line class=\"base\"");
    svg_num(out, " x1=\"", CHART_LEFT);
    svg_num(out, "\" x2=\"", CHART_W - CHART_RIGHT);
    svg_num(out, "\" y1=\"", base);
    svg_num(out, "\" y2=\"", base);
    g_string_append(out, "\"/>\n</svg>\n");
}

#define VCHART_ROW 26.0
#define VCHART_LABEL 330.0
#define VCHART_BAR_MAX 540.0
#define VCHART_NAME_SHOWN 44     /* characters; the full name is in the <title> */

/* Top viruses as horizontal bars: one <rect class="virus"> per name. */
static void
report_svg_viruses(const struct report *r, GString *out)
{
    double h = r->n_viruses > 0 ? 16.0 + VCHART_ROW * (double)r->n_viruses : 40.0;
    uint64_t max = r->n_viruses > 0 ? MAX(r->viruses[0].count, 1) : 1;

    g_string_append_printf(out, "<svg id=\"chart-viruses\" xmlns=\"http://www.w3.org/2000/svg\" "
                                "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n"
                                "<title>Top viruses</title>\n",
                           (int)CHART_W, (int)h, (int)CHART_W, (int)h);
    if (r->n_viruses == 0)
        g_string_append(out, "<text class=\"axis\" x=\"8\" y=\"24\">No viruses in this period.</text>\n");
    for (size_t i = 0; i < r->n_viruses; i++) {
        const struct mq_stats_top *e = &r->viruses[i];
        double y = 8.0 + VCHART_ROW * (double)i;
        double w = VCHART_BAR_MAX * (double)MIN(e->count, max) / (double)max;
        char *shown = g_utf8_strlen(e->name, -1) > VCHART_NAME_SHOWN
                          ? g_utf8_substring(e->name, 0, VCHART_NAME_SHOWN - 1)
                          : NULL;

        g_string_append(out, "<g><title>");
        html_text(out, e->name);
        g_string_append_printf(out, ": %" PRIu64 "</title>\n<text class=\"name\" text-anchor=\"end\"",
                               e->count);
        svg_num(out, " x=\"", VCHART_LABEL - 8);
        svg_num(out, "\" y=\"", y + 15);
        g_string_append(out, "\">");
        if (shown != NULL) {
            html_text(out, shown);
            g_string_append(out, "\u2026");
        } else {
            html_text(out, e->name);
        }
        g_string_append(out, "</text>\n<rect class=\"virus\"");
        svg_num(out, " x=\"", VCHART_LABEL);
        svg_num(out, "\" y=\"", y + 3);
        svg_num(out, "\" width=\"", w);
        svg_num(out, "\" height=\"", VCHART_ROW - 8);
        g_string_append(out, "\"/>\n<text class=\"axis\"");
        svg_num(out, " x=\"", VCHART_LABEL + w + 6);
        svg_num(out, "\" y=\"", y + 15);
        g_string_append_printf(out, "\">%" PRIu64 "</text></g>\n", e->count);
        g_free(shown);
    }
    g_string_append(out, "</svg>\n");
}

static const char report_css[] =
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;"
    "color:#1d1d1d;background:#fff}\n"
    "h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:2em}\n"
    ".note{color:#555;margin-top:0}\n"
    "dl.summary{display:flex;flex-wrap:wrap;gap:.6em;margin:0}\n"
    "dl.summary div{border:1px solid #d0d0d0;border-radius:4px;padding:.4em .8em;min-width:6.5em}\n"
    "dl.summary dt{font-size:.8em;color:#555}dl.summary dd{margin:0;font-size:1.35em;"
    "font-weight:600}\n"
    "table{border-collapse:collapse;font-size:.85em;font-variant-numeric:tabular-nums}\n"
    "th,td{padding:.15em .55em;text-align:right;border-bottom:1px solid #eee}\n"
    "th:first-child,td:first-child{text-align:left}tr.total td{font-weight:600;"
    "border-top:1px solid #999}\n"
    "td.name{text-align:left;font-family:monospace;word-break:break-all}\n"
    ".scroll{overflow-x:auto}\n"
    "svg{max-width:100%;height:auto;font-size:11px;display:block}\n"
    "svg .messages{fill:#4a78b5}svg .threats,svg .virus{fill:#c8553d}\n"
    "svg .grid{stroke:#e2e2e2}svg .base{stroke:#777}svg .axis{fill:#555}"
    "svg .name{fill:#1d1d1d;font-family:monospace}\n"
    ".key{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;"
    "vertical-align:-.1em}\n"
    ".key.messages{background:#4a78b5}.key.threats{background:#c8553d}\n";

static void
report_html_table(const struct report *r, GString *out)
{
    char cell[64];

    g_string_append_printf(out, "<div class=\"scroll\"><table>\n<thead><tr><th>%s</th>",
                           report_period_word(r));
    for (size_t c = 0; c < G_N_ELEMENTS(report_columns); c++)
        g_string_append_printf(out, "<th>%s</th>", report_columns[c].head);
    g_string_append(out, "</tr></thead>\n<tbody>\n");
    for (size_t i = 0; i <= r->n; i++) {
        const uint64_t *counts = i < r->n ? r->periods[i].counts : r->total;
        if (i < r->n) {
            report_label(r, r->periods[i].start, cell, sizeof(cell));
            g_string_append(out, "<tr><td>");
            html_text(out, cell);
        } else {
            g_string_append(out, "<tr class=\"total\"><td>total");
        }
        g_string_append(out, "</td>");
        for (size_t c = 0; c < G_N_ELEMENTS(report_columns); c++) {
            report_cell(counts, report_columns[c].counter, cell, sizeof(cell));
            g_string_append_printf(out, "<td>%s</td>", cell);
        }
        g_string_append(out, "</tr>\n");
    }
    g_string_append(out, "</tbody>\n</table></div>\n");
}

static void
report_html(const struct report *r, GString *out)
{
    static const int summary[] = {
        MQ_STATS_MESSAGES, REPORT_MB, MQ_STATS_CLEAN, REPORT_THREATS, MQ_STATS_INFECTED,
        MQ_STATS_BANNED, MQ_STATS_CLEANED, MQ_STATS_QUARANTINED, MQ_STATS_DELETED,
        MQ_STATS_HELD, MQ_STATS_DEFERRED, REPORT_SPAM,
    };
    char cell[64];

    g_string_append(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                         "<title>mqscan statistics: ");
    html_text(out, r->title);
    g_string_append_printf(out, " (UTC)</title>\n<style>\n%s</style>\n</head>\n<body>\n"
                                "<h1>mqscan statistics: ", report_css);
    html_text(out, r->title);
    g_string_append(out, " (UTC)</h1>\n<p class=\"note\">Times are UTC. Threats are messages "
                         "with a finding: passed, cleaned, quarantined or deleted.</p>\n"
                         "<h2>Summary</h2>\n<dl class=\"summary\">\n");
    for (size_t i = 0; i < G_N_ELEMENTS(summary); i++) {
        const char *name = summary[i] == REPORT_MB ? "MB"
                           : summary[i] == REPORT_THREATS ? "threats"
                           : summary[i] == REPORT_SPAM    ? "spam"
                                                          : counter_names[summary[i]];
        if (summary[i] == REPORT_THREATS)
            g_snprintf(cell, sizeof(cell), "%" PRIu64, report_value(r->total, REPORT_THREATS));
        else
            report_cell(r->total, summary[i], cell, sizeof(cell));
        g_string_append_printf(out, "<div><dt>%s</dt><dd>%s</dd></div>\n", name, cell);
    }
    g_string_append_printf(out, "</dl>\n<h2>Messages and threats per %s</h2>\n"
                                "<p class=\"note\"><span class=\"key messages\"></span>messages"
                                "<span class=\"key threats\"></span>threats</p>\n",
                           report_period_word(r));
    report_svg_periods(r, out);
    g_string_append_printf(out, "<h2>Top %zu viruses</h2>\n", r->top_n);
    report_svg_viruses(r, out);
    g_string_append_printf(out, "<h2>Top %zu blocked senders</h2>\n", r->top_n);
    if (r->n_senders == 0) {
        g_string_append(out, "<p>No blocked senders in this period.</p>\n");
    } else {
        g_string_append(out, "<table>\n<thead><tr><th>sender</th><th>messages</th></tr></thead>\n"
                             "<tbody>\n");
        for (size_t i = 0; i < r->n_senders; i++) {
            g_string_append(out, "<tr><td class=\"name\">");
            html_text(out, r->senders[i].name);
            g_string_append_printf(out, "</td><td>%" PRIu64 "</td></tr>\n", r->senders[i].count);
        }
        g_string_append(out, "</tbody>\n</table>\n");
    }
    g_string_append_printf(out, "<h2>Per %s</h2>\n", report_period_word(r));
    report_html_table(r, out);
    g_string_append(out, "<p class=\"note\">mqscan " PACKAGE_VERSION "</p>\n</body>\n</html>\n");
}

char *
mq_stats_report(struct mq_stats *s, enum mq_stats_format format, time_t from, time_t to,
                unsigned step_hours, size_t top_n, GError **err)
{
    struct mq_stats_period *periods = NULL;
    struct mq_stats_top *viruses = NULL, *senders = NULL;
    struct report r = { 0 };
    char first[16], last[16];
    GString *out = NULL;

    if (top_n > MQ_STATS_TOP_MAX)
        top_n = MQ_STATS_TOP_MAX;
    /* One read transaction: the table, the totals and both lists describe
     * the same moment, even while mqscand adds a batch. */
    if (stats_exec(s, "BEGIN", err) < 0)
        return NULL;
    if (mq_stats_totals(s, from, to, step_hours, &periods, &r.n, err) < 0 ||
        mq_stats_top(s, MQ_STATS_LIST_VIRUSES, from, to, top_n, &viruses, &r.n_viruses, err) < 0 ||
        mq_stats_top(s, MQ_STATS_LIST_SENDERS, from, to, top_n, &senders, &r.n_senders, err) < 0)
        goto done;
    r.step = step_hours;
    r.periods = periods;
    r.viruses = viruses;
    r.senders = senders;
    r.top_n = top_n;
    for (size_t i = 0; i < r.n; i++) {
        for (size_t c = 0; c < MQ_STATS_COUNTER_COUNT; c++)
            r.total[c] = stats_sat_add(r.total[c], periods[i].counts[c]);
    }
    /* The days of the first and the last hour covered. */
    {
        time_t a = (time_t)(stats_hour_ceil(from) * STATS_HOUR);
        time_t b = (time_t)(MAX(stats_hour_ceil(to), stats_hour_ceil(from) + 1) * STATS_HOUR - 1);
        report_date(a, DATE_DAY, first, sizeof(first));
        report_date(b, DATE_DAY, last, sizeof(last));
        r.one_day = strcmp(first, last) == 0;
        if (r.one_day)
            g_strlcpy(r.title, first, sizeof(r.title));
        else
            g_snprintf(r.title, sizeof(r.title), "%s to %s", first, last);
    }
    out = g_string_new(NULL);
    if (format == MQ_STATS_FORMAT_HTML)
        report_html(&r, out);
    else
        report_text(&r, out);
done:
    stats_rollback(s);
    g_free(periods);
    mq_stats_top_free(&viruses, r.n_viruses);
    mq_stats_top_free(&senders, r.n_senders);
    return out != NULL ? g_string_free(out, FALSE) : NULL;
}
