#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <gmime/gmime.h>
#include <sqlite3.h>

#include "mqscan/bayes.h"
#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/tokenize.h"

#define BAYES_KEY_LEN MQ_BAYES_KEY_LEN
#define BAYES_FP_LEN 32         /* SHA-256 */
/* f(w) is kept this far from 0 and 1, so that no logarithm is infinite. */
#define BAYES_F_EPSILON 1e-6

struct bayes_token {
    int64_t hash;
    uint32_t nspam;
    uint32_t nham;
};

struct mq_bayes {
    guint8 key[BAYES_KEY_LEN];
    unsigned nspam, nham;
    struct bayes_token *tokens;     /* sorted by hash, n of them */
    size_t n;
};

struct mq_bayes_store {
    sqlite3 *db;
    char *path;
    guint8 key[BAYES_KEY_LEN];
    bool in_batch;                  /* a transaction is open */
    sqlite3_stmt *seen_get, *seen_put, *seen_del;
    sqlite3_stmt *tok_add, *tok_sub, *tok_gc, *totals_add;
};

/* ---- hashing ------------------------------------------------------------------- */

static uint64_t
bayes_le64(const guint8 *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define BAYES_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define BAYES_SIPROUND                                                                   \
    do {                                                                                 \
        v0 += v1; v1 = BAYES_ROTL(v1, 13); v1 ^= v0; v0 = BAYES_ROTL(v0, 32);           \
        v2 += v3; v3 = BAYES_ROTL(v3, 16); v3 ^= v2;                                     \
        v0 += v3; v3 = BAYES_ROTL(v3, 21); v3 ^= v0;                                     \
        v2 += v1; v1 = BAYES_ROTL(v1, 17); v1 ^= v2; v2 = BAYES_ROTL(v2, 32);           \
    } while (0)

/* SipHash-2-4 (Aumasson and Bernstein): a keyed hash, so that token hashes
 * cannot be predicted without the database's key. */
uint64_t
mq_bayes_siphash(const uint8_t key[MQ_BAYES_KEY_LEN], const void *data, size_t len)
{
    uint64_t k0 = bayes_le64(key), k1 = bayes_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    const guint8 *in = data;
    size_t whole = len - len % 8;
    uint64_t b = (uint64_t)len << 56;

    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = bayes_le64(in + i);
        v3 ^= m;
        BAYES_SIPROUND;
        BAYES_SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= b;
    BAYES_SIPROUND;
    BAYES_SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    BAYES_SIPROUND;
    BAYES_SIPROUND;
    BAYES_SIPROUND;
    BAYES_SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static int64_t
bayes_hash(const guint8 key[BAYES_KEY_LEN], const char *token)
{
    return (int64_t)mq_bayes_siphash(key, token, strlen(token));
}

/* ---- the classifier ---------------------------------------------------------------- */

static double
bayes_f(unsigned nspam_total, unsigned nham_total, uint64_t s, uint64_t h)
{
    double ps = (double)s / (double)MAX(nspam_total, 1u);
    double ph = (double)h / (double)MAX(nham_total, 1u);
    double n = (double)s + (double)h;
    double p = ps + ph > 0 ? ps / (ps + ph) : MQ_BAYES_X;
    double f = (MQ_BAYES_S * MQ_BAYES_X + n * p) / (MQ_BAYES_S + n);

    return CLAMP(f, BAYES_F_EPSILON, 1.0 - BAYES_F_EPSILON);
}

/* The probability that a chi-square variable with 2 * k degrees of freedom
 * is at least x2, summed in logarithms so that nothing underflows early. */
static double
bayes_chi2q(double x2, unsigned k)
{
    double m = x2 / 2.0, lm, lt, sum = 0.0;

    if (m <= 0.0)
        return 1.0;
    lm = log(m);
    lt = -m;
    for (unsigned i = 0; i < k; i++) {
        sum += exp(lt);
        lt += lm - log((double)(i + 1));
    }
    return MIN(sum, 1.0);
}

static const struct bayes_token *
bayes_lookup(const struct mq_bayes *b, int64_t hash)
{
    size_t lo = 0, hi = b->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->tokens[mid].hash < hash)
            lo = mid + 1;
        else if (b->tokens[mid].hash > hash)
            hi = mid;
        else
            return &b->tokens[mid];
    }
    return NULL;
}

struct bayes_clue {
    const char *token;          /* borrowed from the token array */
    double f;
};

static int
bayes_clue_cmp(const void *a, const void *b)
{
    double da = fabs(((const struct bayes_clue *)a)->f - 0.5);
    double db = fabs(((const struct bayes_clue *)b)->f - 0.5);

    if (da != db)
        return da > db ? -1 : 1;
    /* Ties in token order, so that the result never depends on qsort. */
    return strcmp(((const struct bayes_clue *)a)->token, ((const struct bayes_clue *)b)->token);
}

static char *
bayes_format_clues(const struct bayes_clue *clues, size_t n)
{
    GString *out = g_string_new(NULL);

    for (size_t i = 0; i < n && i < MQ_BAYES_CLUES; i++) {
        char *clean = mq_log_sanitize(clues[i].token, MQ_BAYES_CLUE_BYTES);
        for (char *p = clean; *p != '\0'; p++)
            if (*p == ' ')
                *p = '_';
        g_string_append_printf(out, "%s%s:%.3f", i > 0 ? " " : "", clean, clues[i].f);
        g_free(clean);
    }
    return g_string_free(out, FALSE);
}

int
mq_bayes_classify(const struct mq_bayes *b, GMimeMessage *msg, struct mq_bayes_result *r,
                  GError **err)
{
    GPtrArray *tokens;
    struct bayes_clue *clues;
    size_t n = 0;
    double ln_f = 0.0, ln_1f = 0.0;

    if (b == NULL || msg == NULL || r == NULL)
        mq_log_panic("mq_bayes_classify: NULL argument");
    memset(r, 0, sizeof(*r));
    if (!mq_bayes_ready(b)) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG,
                    "token database not ready: %u ham and %u spam learned, %u of each needed",
                    b->nham, b->nspam, MQ_BAYES_MIN_LEARNED);
        return -1;
    }
    tokens = mq_tokenize(msg);
    clues = g_new(struct bayes_clue, MAX(tokens->len, 1u));
    for (guint i = 0; i < tokens->len; i++) {
        const char *tok = g_ptr_array_index(tokens, i);
        const struct bayes_token *e = bayes_lookup(b, bayes_hash(b->key, tok));
        double f;

        if (e == NULL)
            continue;
        f = bayes_f(b->nspam, b->nham, e->nspam, e->nham);
        if (fabs(f - 0.5) < MQ_BAYES_MIN_DEV)
            continue;
        clues[n].token = tok;
        clues[n].f = f;
        n++;
    }
    qsort(clues, n, sizeof(*clues), bayes_clue_cmp);
    n = MIN(n, (size_t)MQ_BAYES_TOKENS_USED);
    for (size_t i = 0; i < n; i++) {
        ln_f += log(clues[i].f);
        ln_1f += log(1.0 - clues[i].f);
    }
    if (n == 0) {
        r->prob = 0.5;
    } else {
        double h = bayes_chi2q(-2.0 * ln_f, (unsigned)n);
        double s = bayes_chi2q(-2.0 * ln_1f, (unsigned)n);
        r->prob = CLAMP((1.0 + h - s) / 2.0, 0.0, 1.0);
    }
    r->tokens_used = (unsigned)n;
    r->clues = bayes_format_clues(clues, n);
    g_free(clues);
    g_ptr_array_unref(tokens);
    return 0;
}

void
mq_bayes_result_clear(struct mq_bayes_result *r)
{
    if (r == NULL)
        return;
    g_free(r->clues);
    memset(r, 0, sizeof(*r));
}

void
mq_bayes_counts(const struct mq_bayes *b, unsigned *nham_r, unsigned *nspam_r)
{
    if (nham_r != NULL)
        *nham_r = b->nham;
    if (nspam_r != NULL)
        *nspam_r = b->nspam;
}

bool
mq_bayes_ready(const struct mq_bayes *b)
{
    return b->nham >= MQ_BAYES_MIN_LEARNED && b->nspam >= MQ_BAYES_MIN_LEARNED;
}

/* ---- SQLite ----------------------------------------------------------------------- */

static enum mq_error_code
bayes_code(int rc)
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
    case SQLITE_MISMATCH:
        return MQ_ERROR_CORRUPT;
    default:
        return MQ_ERROR_IO;
    }
}

static void
bayes_fail(sqlite3 *db, const char *path, int rc, const char *what, GError **err)
{
    g_set_error(err, MQ_ERROR, bayes_code(rc), "%s: %s: %s", path, what,
                db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int
bayes_exec(sqlite3 *db, const char *path, const char *sql, GError **err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK) {
        bayes_fail(db, path, rc, "sql", err);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *
bayes_prepare(sqlite3 *db, const char *path, const char *sql, GError **err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK) {
        bayes_fail(db, path, rc, "prepare", err);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Steps a statement that returns no row and resets it. */
static int
bayes_done(sqlite3 *db, const char *path, sqlite3_stmt *st, GError **err)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        bayes_fail(db, path, rc == SQLITE_ROW ? SQLITE_MISUSE : rc, "write", err);
        return -1;
    }
    return 0;
}

/* The file is state read back: a regular file with one link, not a
 * symbolic link, opened with O_NONBLOCK so that a FIFO put there does not
 * hang us. */
static int
bayes_check_file(const char *path, bool create, GError **err)
{
    struct stat st;
    int fd = open(path, (create ? O_RDWR | O_CREAT : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK |
                            O_NOCTTY | O_CLOEXEC, 0640);
    bool regular;

    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (e == ELOOP)
            g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: is a symbolic link", path);
        else
            g_set_error(err, MQ_ERROR, mq_error_from_errno(e), "%s: %s", path, g_strerror(e));
        return -1;
    }
    close(fd);
    regular = S_ISREG(st.st_mode) && st.st_nlink == 1;
    if (!regular)
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: not a regular file with one link", path);
    return regular ? 0 : -1;
}

/* Opens path with SQLite after bayes_check_file(), hardened against a file
 * someone else edited: no triggers or views calling functions with side
 * effects, no schema writes behind SQLite's back. */
static sqlite3 *
bayes_sqlite_open(const char *path, bool writable, GError **err)
{
    sqlite3 *db = NULL;
    int flags = (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX;
    int rc;

#ifdef SQLITE_OPEN_NOFOLLOW
    flags |= SQLITE_OPEN_NOFOLLOW;
#endif
    if (bayes_check_file(path, writable, err) < 0)
        return NULL;
    rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        bayes_fail(db, path, rc, "cannot open", err);
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, MQ_BAYES_BUSY_TIMEOUT_MS);
#ifdef SQLITE_DBCONFIG_DEFENSIVE
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
#endif
    if (bayes_exec(db, path, "PRAGMA trusted_schema = OFF", err) < 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static const char bayes_schema[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);\n"
    "CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 1), hash_key BLOB NOT NULL,\n"
    "    nspam INTEGER NOT NULL, nham INTEGER NOT NULL);\n"
    "CREATE TABLE tokens (hash INTEGER PRIMARY KEY, token TEXT NOT NULL,\n"
    "    nspam INTEGER NOT NULL, nham INTEGER NOT NULL);\n"
    "CREATE TABLE seen (fingerprint BLOB PRIMARY KEY, spam INTEGER NOT NULL) WITHOUT ROWID;\n";

/* Reads the schema version, the key and the totals. Returns 1 on success,
 * 0 for a file without any table (new), -1 with err set. */
static int
bayes_read_header(sqlite3 *db, const char *path, guint8 key[BAYES_KEY_LEN], unsigned *nspam_r,
                  unsigned *nham_r, GError **err)
{
    sqlite3_stmt *st = NULL;
    int rc, ret = -1;

    if ((st = bayes_prepare(db, path, "SELECT count(*), coalesce(sum(name IN ('schema_version', "
                                      "'totals', 'tokens', 'seen')), 0) FROM sqlite_master "
                                      "WHERE type = 'table'", err)) == NULL)
        goto done;
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        bayes_fail(db, path, rc, "reading the schema", err);
        goto done;
    }
    if (sqlite3_column_int64(st, 0) == 0) {
        ret = 0;
        goto done;
    }
    if (sqlite3_column_int64(st, 1) != 4) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: not an mqscan token database", path);
        goto done;
    }
    sqlite3_finalize(st);
    if ((st = bayes_prepare(db, path, "SELECT (SELECT version FROM schema_version), "
                                      "(SELECT count(*) FROM schema_version), hash_key, nspam, "
                                      "nham, (SELECT count(*) FROM totals) FROM totals "
                                      "WHERE id = 1", err)) == NULL)
        goto done;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        bayes_fail(db, path, rc, "reading the totals", err);
        goto done;
    }
    if (rc == SQLITE_DONE || sqlite3_column_int64(st, 1) != 1 || sqlite3_column_int64(st, 5) != 1) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: no schema version or totals", path);
        goto done;
    }
    if (sqlite3_column_int64(st, 0) != MQ_BAYES_SCHEMA_VERSION) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT,
                    "%s: schema version %lld, this mqscan knows version %d", path,
                    (long long)sqlite3_column_int64(st, 0), MQ_BAYES_SCHEMA_VERSION);
        goto done;
    }
    if (sqlite3_column_type(st, 2) != SQLITE_BLOB || sqlite3_column_bytes(st, 2) != BAYES_KEY_LEN ||
        sqlite3_column_int64(st, 3) < 0 || sqlite3_column_int64(st, 3) > UINT32_MAX ||
        sqlite3_column_int64(st, 4) < 0 || sqlite3_column_int64(st, 4) > UINT32_MAX) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: damaged totals", path);
        goto done;
    }
    memcpy(key, sqlite3_column_blob(st, 2), BAYES_KEY_LEN);
    *nspam_r = (unsigned)sqlite3_column_int64(st, 3);
    *nham_r = (unsigned)sqlite3_column_int64(st, 4);
    ret = 1;
done:
    sqlite3_finalize(st);
    return ret;
}

/* ---- read-only handle ---------------------------------------------------------------- */

static int
bayes_load_tokens(struct mq_bayes *b, sqlite3 *db, const char *path, GError **err)
{
    sqlite3_stmt *st = NULL;
    int rc, ret = -1;
    size_t cap;

    if ((st = bayes_prepare(db, path, "SELECT count(*) FROM tokens", err)) == NULL)
        goto done;
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        bayes_fail(db, path, rc, "counting tokens", err);
        goto done;
    }
    if (sqlite3_column_int64(st, 0) > MQ_BAYES_DB_TOKENS_MAX) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_LIMIT, "%s: %lld tokens, more than %u", path,
                    (long long)sqlite3_column_int64(st, 0), MQ_BAYES_DB_TOKENS_MAX);
        goto done;
    }
    cap = (size_t)MAX(sqlite3_column_int64(st, 0), 0);
    sqlite3_finalize(st);
    b->tokens = g_new(struct bayes_token, MAX(cap, 1u));
    /* The rowid order is the hash order: one pass, already sorted. */
    if ((st = bayes_prepare(db, path, "SELECT hash, nspam, nham FROM tokens ORDER BY hash",
                            err)) == NULL)
        goto done;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct bayes_token *t = &b->tokens[b->n];
        int64_t s = sqlite3_column_int64(st, 1), h = sqlite3_column_int64(st, 2);

        if (b->n >= cap || s < 0 || h < 0 || s > UINT32_MAX || h > UINT32_MAX ||
            (b->n > 0 && b->tokens[b->n - 1].hash >= sqlite3_column_int64(st, 0))) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: damaged token table", path);
            goto done;
        }
        t->hash = sqlite3_column_int64(st, 0);
        t->nspam = (uint32_t)s;
        t->nham = (uint32_t)h;
        b->n++;
    }
    if (rc != SQLITE_DONE) {
        bayes_fail(db, path, rc, "reading tokens", err);
        goto done;
    }
    ret = 0;
done:
    sqlite3_finalize(st);
    return ret;
}

struct mq_bayes *
mq_bayes_open(const char *path, GError **err)
{
    struct mq_bayes *b = g_new0(struct mq_bayes, 1);
    sqlite3 *db = NULL;
    int rc;

    if ((db = bayes_sqlite_open(path, false, err)) == NULL)
        goto fail;
    if (bayes_exec(db, path, "PRAGMA query_only = ON", err) < 0 ||
        bayes_exec(db, path, "BEGIN", err) < 0)
        goto fail;
    /* One read transaction: totals and tokens from the same moment, even
     * while mqscan-learn commits. */
    rc = bayes_read_header(db, path, b->key, &b->nspam, &b->nham, err);
    if (rc == 0)
        g_set_error(err, MQ_ERROR, MQ_ERROR_CORRUPT, "%s: not an mqscan token database", path);
    if (rc <= 0 || bayes_load_tokens(b, db, path, err) < 0)
        goto fail;
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return b;

fail:
    sqlite3_close(db);
    mq_bayes_free(&b);
    return NULL;
}

void
mq_bayes_free(struct mq_bayes **bp)
{
    if (*bp == NULL)
        return;
    g_free((*bp)->tokens);
    g_free(*bp);
    *bp = NULL;
}

/* ---- training ---------------------------------------------------------------------- */

static int
bayes_store_prepare(struct mq_bayes_store *s, GError **err)
{
    static const struct {
        size_t offset;
        const char *sql;
    } stmts[] = {
        { G_STRUCT_OFFSET(struct mq_bayes_store, seen_get),
          "SELECT spam FROM seen WHERE fingerprint = ?1" },
        { G_STRUCT_OFFSET(struct mq_bayes_store, seen_put),
          "INSERT OR REPLACE INTO seen (fingerprint, spam) VALUES (?1, ?2)" },
        { G_STRUCT_OFFSET(struct mq_bayes_store, seen_del),
          "DELETE FROM seen WHERE fingerprint = ?1" },
        { G_STRUCT_OFFSET(struct mq_bayes_store, tok_add),
          "INSERT INTO tokens (hash, token, nspam, nham) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT (hash) DO UPDATE SET nspam = nspam + excluded.nspam, "
          "nham = nham + excluded.nham" },
        { G_STRUCT_OFFSET(struct mq_bayes_store, tok_sub),
          "UPDATE tokens SET nspam = max(nspam - ?2, 0), nham = max(nham - ?3, 0) "
          "WHERE hash = ?1" },
        { G_STRUCT_OFFSET(struct mq_bayes_store, tok_gc),
          "DELETE FROM tokens WHERE hash = ?1 AND nspam = 0 AND nham = 0" },
        { G_STRUCT_OFFSET(struct mq_bayes_store, totals_add),
          "UPDATE totals SET nspam = max(nspam + ?1, 0), nham = max(nham + ?2, 0) "
          "WHERE id = 1" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(stmts); i++) {
        sqlite3_stmt **st = G_STRUCT_MEMBER_P(s, stmts[i].offset);
        if ((*st = bayes_prepare(s->db, s->path, stmts[i].sql, err)) == NULL)
            return -1;
    }
    return 0;
}

/* Checks the schema under a write lock, creating it with a new random key
 * in an empty file; then WAL, so that mqscand loads while this writes. */
static int
bayes_store_setup(struct mq_bayes_store *s, GError **err)
{
    unsigned nspam, nham;
    sqlite3_stmt *st = NULL;
    int rc, ret = -1;

    if (bayes_exec(s->db, s->path, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    rc = bayes_read_header(s->db, s->path, s->key, &nspam, &nham, err);
    if (rc < 0)
        goto done;
    if (rc == 0) {
        if (getrandom(s->key, BAYES_KEY_LEN, 0) != BAYES_KEY_LEN) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_IO, "%s: getrandom: %s", s->path,
                        g_strerror(errno));
            goto done;
        }
        if (bayes_exec(s->db, s->path, bayes_schema, err) < 0)
            goto done;
        if ((st = bayes_prepare(s->db, s->path,
                                "INSERT INTO totals (id, hash_key, nspam, nham) VALUES (1, ?1, 0, 0)",
                                err)) == NULL)
            goto done;
        sqlite3_bind_blob(st, 1, s->key, BAYES_KEY_LEN, SQLITE_STATIC);
        if (bayes_done(s->db, s->path, st, err) < 0)
            goto done;
        if (bayes_exec(s->db, s->path, "INSERT INTO schema_version (version) VALUES (1)", err) < 0)
            goto done;
    }
    if (bayes_exec(s->db, s->path, "COMMIT", err) < 0)
        goto done;
    sqlite3_finalize(st);
    st = NULL;
    if (bayes_exec(s->db, s->path, "PRAGMA journal_mode = WAL", err) < 0 ||
        bayes_exec(s->db, s->path, "PRAGMA synchronous = NORMAL", err) < 0)
        goto done;
    ret = bayes_store_prepare(s, err);
done:
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

struct mq_bayes_store *
mq_bayes_store_open(const char *path, GError **err)
{
    struct mq_bayes_store *s = g_new0(struct mq_bayes_store, 1);

    s->path = g_strdup(path);
    if ((s->db = bayes_sqlite_open(path, true, err)) == NULL || bayes_store_setup(s, err) < 0) {
        mq_bayes_store_close(&s);
        return NULL;
    }
    return s;
}

void
mq_bayes_store_close(struct mq_bayes_store **sp)
{
    struct mq_bayes_store *s = *sp;

    if (s == NULL)
        return;
    if (s->db != NULL && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(s->seen_get);
    sqlite3_finalize(s->seen_put);
    sqlite3_finalize(s->seen_del);
    sqlite3_finalize(s->tok_add);
    sqlite3_finalize(s->tok_sub);
    sqlite3_finalize(s->tok_gc);
    sqlite3_finalize(s->totals_add);
    if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
        mq_log_warn("%s: close: %s", s->path, sqlite3_errmsg(s->db));
    g_free(s->path);
    g_free(s);
    *sp = NULL;
}

/* The message's fingerprint: SHA-256 of its Message-ID, or of its tokens. */
static void
bayes_fingerprint(GMimeMessage *msg, GPtrArray *tokens, guint8 fp[BAYES_FP_LEN])
{
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    const char *mid = g_mime_message_get_message_id(msg);
    gsize len = BAYES_FP_LEN;

    if (mid != NULL && *mid != '\0') {
        g_checksum_update(sum, (const guchar *)"message-id\n", -1);
        g_checksum_update(sum, (const guchar *)mid, (gssize)strnlen(mid, 4096));
    } else {
        g_checksum_update(sum, (const guchar *)"tokens\n", -1);
        for (guint i = 0; i < tokens->len; i++) {
            g_checksum_update(sum, g_ptr_array_index(tokens, i), -1);
            g_checksum_update(sum, (const guchar *)"\n", 1);
        }
    }
    g_checksum_get_digest(sum, fp, &len);
    g_checksum_free(sum);
}

/* Adds sign (+1 or -1) to every token's count of the class, and to the
 * class's total. */
static int
bayes_apply(struct mq_bayes_store *s, GPtrArray *tokens, bool spam, int sign, GError **err)
{
    for (guint i = 0; i < tokens->len; i++) {
        const char *tok = g_ptr_array_index(tokens, i);
        int64_t hash = bayes_hash(s->key, tok);

        if (sign > 0) {
            sqlite3_bind_int64(s->tok_add, 1, hash);
            sqlite3_bind_text(s->tok_add, 2, tok, -1, SQLITE_STATIC);
            sqlite3_bind_int(s->tok_add, 3, spam ? 1 : 0);
            sqlite3_bind_int(s->tok_add, 4, spam ? 0 : 1);
            if (bayes_done(s->db, s->path, s->tok_add, err) < 0)
                return -1;
        } else {
            sqlite3_bind_int64(s->tok_sub, 1, hash);
            sqlite3_bind_int(s->tok_sub, 2, spam ? 1 : 0);
            sqlite3_bind_int(s->tok_sub, 3, spam ? 0 : 1);
            sqlite3_bind_int64(s->tok_gc, 1, hash);
            if (bayes_done(s->db, s->path, s->tok_sub, err) < 0 ||
                bayes_done(s->db, s->path, s->tok_gc, err) < 0)
                return -1;
        }
    }
    sqlite3_bind_int(s->totals_add, 1, spam ? sign : 0);
    sqlite3_bind_int(s->totals_add, 2, spam ? 0 : sign);
    return bayes_done(s->db, s->path, s->totals_add, err);
}

/* Learns (want 0 ham, 1 spam) or forgets (want -1) one message, inside a
 * savepoint of the batch's transaction. */
static int
bayes_store_change(struct mq_bayes_store *s, GMimeMessage *msg, int want, GError **err)
{
    GPtrArray *tokens = NULL;
    guint8 fp[BAYES_FP_LEN];
    int rc, have = -1, ret = -1;

    if (s == NULL || msg == NULL)
        mq_log_panic("mq_bayes_store: NULL argument");
    if (!s->in_batch) {
        if (bayes_exec(s->db, s->path, "BEGIN IMMEDIATE", err) < 0)
            return -1;
        s->in_batch = true;
    }
    if (bayes_exec(s->db, s->path, "SAVEPOINT message", err) < 0)
        return -1;
    tokens = mq_tokenize(msg);
    bayes_fingerprint(msg, tokens, fp);
    sqlite3_bind_blob(s->seen_get, 1, fp, BAYES_FP_LEN, SQLITE_STATIC);
    rc = sqlite3_step(s->seen_get);
    if (rc == SQLITE_ROW)
        have = sqlite3_column_int(s->seen_get, 0) != 0;
    sqlite3_reset(s->seen_get);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        bayes_fail(s->db, s->path, rc, "reading seen", err);
        goto done;
    }
    if (have == want) {
        ret = 0;
        goto done;
    }
    if (have >= 0 && bayes_apply(s, tokens, have == 1, -1, err) < 0)
        goto done;
    if (want >= 0) {
        if (bayes_apply(s, tokens, want == 1, +1, err) < 0)
            goto done;
        sqlite3_bind_blob(s->seen_put, 1, fp, BAYES_FP_LEN, SQLITE_STATIC);
        sqlite3_bind_int(s->seen_put, 2, want);
        if (bayes_done(s->db, s->path, s->seen_put, err) < 0)
            goto done;
    } else {
        sqlite3_bind_blob(s->seen_del, 1, fp, BAYES_FP_LEN, SQLITE_STATIC);
        if (bayes_done(s->db, s->path, s->seen_del, err) < 0)
            goto done;
    }
    ret = 1;
done:
    if (ret < 0)
        sqlite3_exec(s->db, "ROLLBACK TO message", NULL, NULL, NULL);
    sqlite3_exec(s->db, "RELEASE message", NULL, NULL, NULL);
    g_ptr_array_unref(tokens);
    return ret;
}

int
mq_bayes_store_learn(struct mq_bayes_store *s, GMimeMessage *msg, bool spam, GError **err)
{
    return bayes_store_change(s, msg, spam ? 1 : 0, err);
}

int
mq_bayes_store_forget(struct mq_bayes_store *s, GMimeMessage *msg, GError **err)
{
    return bayes_store_change(s, msg, -1, err);
}

int
mq_bayes_store_commit(struct mq_bayes_store *s, GError **err)
{
    if (!s->in_batch)
        return 0;
    s->in_batch = false;
    if (bayes_exec(s->db, s->path, "COMMIT", err) < 0) {
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

int
mq_bayes_store_counts(struct mq_bayes_store *s, unsigned *nham_r, unsigned *nspam_r, GError **err)
{
    guint8 key[BAYES_KEY_LEN];
    unsigned nspam = 0, nham = 0;

    if (bayes_read_header(s->db, s->path, key, &nspam, &nham, err) <= 0)
        return -1;
    if (nham_r != NULL)
        *nham_r = nham;
    if (nspam_r != NULL)
        *nspam_r = nspam;
    return 0;
}

int
mq_bayes_store_top(struct mq_bayes_store *s, bool spam, size_t max, struct mq_bayes_top **top_r,
                   size_t *n_r, GError **err)
{
    /* f(w) as bayes_f() computes it; ?1 nspam, ?2 nham, ?3 S, ?4 X. */
    static const char sql_spam[] =
        "SELECT token, nspam, nham FROM (SELECT token, nspam, nham, "
        "(?3 * ?4 + (nspam + nham) * ((nspam * 1.0 / ?1) / (nspam * 1.0 / ?1 + nham * 1.0 / ?2)))"
        " / (?3 + nspam + nham) AS f FROM tokens WHERE nspam + nham > 0) "
        "ORDER BY f DESC, nspam + nham DESC, token LIMIT ?5";
    static const char sql_ham[] =
        "SELECT token, nspam, nham FROM (SELECT token, nspam, nham, "
        "(?3 * ?4 + (nspam + nham) * ((nspam * 1.0 / ?1) / (nspam * 1.0 / ?1 + nham * 1.0 / ?2)))"
        " / (?3 + nspam + nham) AS f FROM tokens WHERE nspam + nham > 0) "
        "ORDER BY f ASC, nspam + nham DESC, token LIMIT ?5";
    guint8 key[BAYES_KEY_LEN];
    unsigned nspam = 0, nham = 0;
    sqlite3_stmt *st = NULL;
    GArray *out = g_array_new(FALSE, TRUE, sizeof(struct mq_bayes_top));
    int rc, ret = -1;

    *top_r = NULL;
    *n_r = 0;
    max = MIN(max, (size_t)MQ_BAYES_TOP_MAX);
    if (bayes_read_header(s->db, s->path, key, &nspam, &nham, err) <= 0)
        goto done;
    if ((st = bayes_prepare(s->db, s->path, spam ? sql_spam : sql_ham, err)) == NULL)
        goto done;
    sqlite3_bind_int64(st, 1, MAX(nspam, 1u));
    sqlite3_bind_int64(st, 2, MAX(nham, 1u));
    sqlite3_bind_double(st, 3, MQ_BAYES_S);
    sqlite3_bind_double(st, 4, MQ_BAYES_X);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)max);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mq_bayes_top e;
        const char *tok = (const char *)sqlite3_column_text(st, 0);
        int64_t ts = sqlite3_column_int64(st, 1), th = sqlite3_column_int64(st, 2);

        /* Read back from a file: sanitized and bounded again. */
        e.token = mq_log_sanitize(tok != NULL ? tok : "", MQ_BAYES_CLUE_BYTES);
        e.nspam = (unsigned)CLAMP(ts, 0, (int64_t)UINT32_MAX);
        e.nham = (unsigned)CLAMP(th, 0, (int64_t)UINT32_MAX);
        e.prob = bayes_f(nspam, nham, e.nspam, e.nham);
        g_array_append_val(out, e);
    }
    if (rc != SQLITE_DONE) {
        bayes_fail(s->db, s->path, rc, "reading tokens", err);
        goto done;
    }
    ret = 0;
done:
    sqlite3_finalize(st);
    *n_r = out->len;
    *top_r = out->len > 0 ? (struct mq_bayes_top *)(void *)out->data : NULL;
    g_array_free(out, out->len == 0);
    if (ret < 0)
        mq_bayes_top_free(top_r, *n_r);
    if (ret < 0)
        *n_r = 0;
    return ret;
}

void
mq_bayes_top_free(struct mq_bayes_top **top, size_t n)
{
    if (*top == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        g_free((*top)[i].token);
    g_free(*top);
    *top = NULL;
}
