#include <config.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <clamav.h>
#include <gio/gio.h>
#include <glib.h>

#include "mqscan/clamd.h"
#include "mqscan/error.h"
#include "mqscan/log.h"
#include "mqscan/config.h"
#include "mqscan/scanner.h"

enum scanner_kind {
    SCANNER_LIBCLAMAV,
    SCANNER_CLAMD,
};

/*
 * One engine and what we say about it: a compiled libclamav engine, or a
 * client for a set of clamd servers. Everything here is written once in the
 * constructor and only read afterwards, so any number of threads may scan
 * with it; the reference count is the only field that changes (the clamd
 * client's rotation counter is atomic and its own business).
 */
struct mq_scanner {
    gint refcount;
    enum scanner_kind kind;
    struct cl_engine *engine;       /* libclamav: owned; freed with the last reference */
    struct mq_clamd *clamd;         /* clamd: owned; freed with the last reference */
    unsigned signatures;            /* libclamav; 0 for clamd (not known here) */
    uint64_t max_file_size;         /* libclamav, as the engine has it; 0 = none */
    double load_seconds;            /* libclamav: cl_load(); 0 for clamd */
    double compile_seconds;         /* libclamav: cl_engine_compile(); 0 for clamd */
    uint64_t max_scan_size;         /* libclamav, as the engine has it; 0 = none */
    uint64_t max_files;             /* libclamav, as the engine has it; 0 = none */
    char *description;              /* owned; mq_scanner_describe() */
};

/* Passed through libclamav as the scan context, so that its warnings about a
 * scan can say which object they are about, and so that the inspection
 * callback can say why it stopped the scan. Lives on the scanning thread's
 * stack for the duration of one scan. */
struct scanner_scan_ctx {
    const char *name_hint;          /* may be NULL */
    const struct mq_scanner *scanner;
    const char *unreadable;         /* set by scanner_clcb_inspect() */
};

/* The name libclamav gives an object its inspection callback blocked. */
#define SCANNER_INSPECT_VIRNAME "Detected.By.Callback.Inspection"

/* Everything libclamav says goes through here. Its text can quote names
 * taken from inside archives (attacker data), so it is sanitized, and the
 * trailing newline libclamav adds is dropped. */
static void
scanner_clcb_msg(enum cl_msg severity, const char *fullmsg, const char *msg,
                 void *context)
{
    const struct scanner_scan_ctx *ctx = context;
    char *copy, *clean, *hint = NULL;
    size_t len;

    if (msg == NULL)
        msg = fullmsg != NULL ? fullmsg : "";
    len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        len--;
    copy = g_strndup(msg, len);
    clean = mq_log_sanitize(copy, 400);
    if (ctx != NULL && ctx->name_hint != NULL)
        hint = mq_log_sanitize(ctx->name_hint, MQ_LOG_FIELD_MAX);

    switch (severity) {
    case CL_MSG_ERROR:
        mq_log_error("%s%slibclamav: %s", hint ? hint : "", hint ? ": " : "", clean);
        break;
    case CL_MSG_WARN:
        mq_log_warn("%s%slibclamav: %s", hint ? hint : "", hint ? ": " : "", clean);
        break;
    default:
        mq_log_debug("%s%slibclamav: %s", hint ? hint : "", hint ? ": " : "", clean);
        break;
    }
    g_free(hint);
    g_free(clean);
    g_free(copy);
}

/* ---- what libclamav's zip reader passes over ------------------------------ */

/*
 * libclamav 1.4 reads zip archives with its own code (unzip.c), which skips
 * some members without a word and calls the archive clean:
 *  - zip64 members (a size or offset field of 0xFFFFFFFF, "see the zip64
 *    extra field"): it takes the field as a size, finds the member "out of
 *    file" and goes on. Mail never needs zip64 (it is for members over 4 GB).
 *  - members compressed with a method it does not know (LZMA, PPMd, XZ,
 *    Zstandard, ...), which 7-Zip and WinZip unpack.
 *  - the part of a member beyond MaxFileSize: it inflates that much, scans
 *    it, and drops the rest ("trimming output size"), where every other
 *    unpacker of libclamav reports Heuristics.Limits.Exceeded.MaxFileSize.
 *    A 4 GB bomb is 4 MB of deflate; a virus after 64 MB of zeros passes.
 * And it checks every central record against the others before it unpacks
 * anything, in time that grows with the square of their number (40,000
 * empty members: a minute), before MaxFiles is counted.
 * So every object of a scan that is a zip is walked here first, the way
 * libclamav walks it (the central directory the end record names, else the
 * local headers one after the other), and one of these stops the scan as
 * unscannable. Encrypted members are left to libclamav, which reports them.
 */
#define ZIP_LOCAL_LEN 30
#define ZIP_CENTRAL_LEN 46
#define ZIP_END_LEN 22
#define ZIP_COMMENT_MAX 65535
#define ZIP_FLAG_ENCRYPTED 0x0001
#define ZIP_FLAG_DESCRIPTOR 0x0008

/* One archive's walk: the limits, and what its members add up to. */
struct scanner_zip {
    const unsigned char *buf;
    size_t len;
    uint64_t max_file_size;
    uint64_t max_scan_size;
    uint64_t max_files;
    uint64_t total;             /* uncompressed bytes of the members so far */
};

static uint16_t
scanner_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
scanner_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* How many bytes the raw deflate stream at data inflates to, counting no
 * further than stop + 1: the headers may lie, the stream cannot. */
static uint64_t
scanner_inflated_size(const unsigned char *data, size_t len, uint64_t stop)
{
    GConverter *z = G_CONVERTER(g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_RAW));
    unsigned char out[65536];
    uint64_t total = 0;

    while (total <= stop) {
        gsize read = 0, written = 0;
        GConverterResult r = g_converter_convert(z, data, len, out, sizeof(out),
                                                 G_CONVERTER_NO_FLAGS, &read, &written, NULL);
        total += written;
        data += read;
        len -= read;
        if (r == G_CONVERTER_ERROR || r == G_CONVERTER_FINISHED || (read == 0 && written == 0))
            break;
    }
    g_object_unref(z);
    return total;
}

/* The member whose local header is at off; csize and usize are the central
 * record's (NULL: none, walking local headers), which libclamav uses when
 * the sizes follow the data. Returns a problem or NULL; *next_r is where the
 * next local header would be. */
static const char *
scanner_zip_member(struct scanner_zip *z, size_t off, const unsigned char *central,
                   size_t *next_r)
{
    const unsigned char *p = z->buf + off;
    uint32_t csize, usize;
    uint16_t flags, method;
    uint64_t size;
    size_t data;

    *next_r = z->len;
    if (off > z->len || z->len - off < ZIP_LOCAL_LEN || memcmp(p, "PK\003\004", 4) != 0)
        return NULL;            /* libclamav finds nothing there either */
    flags = scanner_le16(p + 6);
    method = scanner_le16(p + 8);
    csize = scanner_le32(p + 18);
    usize = scanner_le32(p + 22);
    if (csize == 0xFFFFFFFFu || usize == 0xFFFFFFFFu)
        return "Unsupported.Zip64";
    if ((flags & ZIP_FLAG_DESCRIPTOR) && central != NULL) {
        csize = scanner_le32(central + 20);
        usize = scanner_le32(central + 24);
    }
    data = off + ZIP_LOCAL_LEN + scanner_le16(p + 26) + scanner_le16(p + 28);
    if (data > z->len || csize == 0 || (flags & ZIP_FLAG_ENCRYPTED))
        return NULL;            /* out of file, empty, or libclamav's to report */
    *next_r = csize <= z->len - data ? data + csize : z->len;
    switch (method) {
    case 0:                     /* stored */
        size = csize;
        break;
    case 8:                     /* deflate */
        if (z->max_file_size == 0 && z->max_scan_size == 0)
            return NULL;        /* no size to hold it to */
        size = scanner_inflated_size(z->buf + data, MIN((size_t)csize, z->len - data),
                                     z->max_file_size > 0 ? z->max_file_size : z->max_scan_size);
        break;
    case 6:                     /* implode, deflate64, bzip2: as declared. */
    case 9:                     /* XXX a false size in their headers is */
    case 12:                    /* not found here. */
        size = usize;
        break;
    default:
        return "Unsupported.ZipMethod";
    }
    if (z->max_file_size > 0 && size > z->max_file_size)
        return "Heuristics.Limits.Exceeded.MaxFileSize";
    z->total += size;
    if (z->max_scan_size > 0 && z->total > z->max_scan_size)
        return "Heuristics.Limits.Exceeded.MaxScanSize";
    return NULL;
}

/* The end record: the last "PK\5\6" that can be one (a comment may follow
 * it). NULL if there is none. */
static const unsigned char *
scanner_zip_end(const unsigned char *buf, size_t len)
{
    size_t lowest;

    if (len < ZIP_END_LEN)
        return NULL;
    lowest = len - ZIP_END_LEN > ZIP_COMMENT_MAX ? len - ZIP_END_LEN - ZIP_COMMENT_MAX : 0;
    /* Every object of every scan comes here, most of them no zip: memrchr
     * finds the candidate 'P's far faster than a compare at each offset. */
    for (size_t top = len - ZIP_END_LEN + 1; top > lowest;) {
        const unsigned char *p = memrchr(buf + lowest, 'P', top - lowest);
        if (p == NULL)
            break;
        if (memcmp(p, "PK\005\006", 4) == 0)
            return p;
        top = (size_t)(p - buf);
    }
    return NULL;
}

/* What libclamav would pass over in buf if it is a zip archive, or NULL. */
static const char *
scanner_zip_problem(struct scanner_zip *z)
{
    const unsigned char *end = scanner_zip_end(z->buf, z->len);
    const char *problem = NULL;
    uint64_t entries = 0;
    size_t off, next;

    if (end != NULL) {
        if (scanner_le32(end + 12) == 0xFFFFFFFFu || scanner_le32(end + 16) == 0xFFFFFFFFu)
            return "Unsupported.Zip64";
        off = scanner_le32(end + 16);
        while (problem == NULL && off <= z->len && z->len - off >= ZIP_CENTRAL_LEN
               && memcmp(z->buf + off, "PK\001\002", 4) == 0) {
            const unsigned char *c = z->buf + off;

            if (z->max_files > 0 && ++entries > z->max_files)
                return "Heuristics.Limits.Exceeded.MaxFiles";
            if (scanner_le32(c + 20) == 0xFFFFFFFFu || scanner_le32(c + 24) == 0xFFFFFFFFu
                || scanner_le32(c + 42) == 0xFFFFFFFFu)
                return "Unsupported.Zip64";
            problem = scanner_zip_member(z, scanner_le32(c + 42), c, &next);
            off += ZIP_CENTRAL_LEN + (size_t)scanner_le16(c + 28) + scanner_le16(c + 30)
                   + scanner_le16(c + 32);
        }
        if (entries > 0 || problem != NULL)
            return problem;
    }
    /* No central directory: the local headers, one after the other. */
    for (off = 0; problem == NULL && off < z->len; off = next) {
        if (z->max_files > 0 && ++entries > z->max_files)
            return "Heuristics.Limits.Exceeded.MaxFiles";
        problem = scanner_zip_member(z, off, NULL, &next);
    }
    return problem;
}

/* Called by libclamav for every object of a scan (the message, and each
 * part, member and layer it unpacks) before it looks into it, cached or
 * not. An object it would pass over unread stops the scan, which then ends
 * as "infected" with SCANNER_INSPECT_VIRNAME; ctx->unreadable says why. */
static cl_error_t
scanner_clcb_inspect(int fd, const char *type, const char **ancestors, size_t parent_file_size,
                     const char *file_name, size_t file_size, const char *file_buffer,
                     uint32_t recursion_level, uint32_t layer_attributes, void *context)
{
    struct scanner_scan_ctx *ctx = context;
    struct scanner_zip z;

    if (ctx == NULL || file_buffer == NULL || ctx->unreadable != NULL)
        return CL_CLEAN;
    z = (struct scanner_zip){
        .buf = (const unsigned char *)file_buffer, .len = file_size,
        .max_file_size = ctx->scanner->max_file_size,
        .max_scan_size = ctx->scanner->max_scan_size,
        .max_files = ctx->scanner->max_files,
    };
    ctx->unreadable = scanner_zip_problem(&z);
    return ctx->unreadable != NULL ? CL_VIRUS : CL_CLEAN;
}

/*
 * cl_init() must run once per process before anything else in libclamav,
 * and the message callback must be set before threads use libclamav (it is a
 * plain global in libclamav). Both happen here, once. The result of cl_init()
 * is kept (as rc + 1, since 0 means "not yet") so that every later
 * mq_scanner_new() reports the same failure.
 */
static cl_error_t
scanner_global_init(void)
{
    static gsize once = 0;

    if (g_once_init_enter(&once)) {
        cl_error_t rc;

        cl_set_clcb_msg(scanner_clcb_msg);
        rc = cl_init(CL_INIT_DEFAULT);
        g_once_init_leave(&once, (gsize)rc + 1);
    }
    return (cl_error_t)(once - 1);
}

/* libclamav takes every number as long long; our limits are unsigned and
 * 64-bit, so clamp rather than wrap to a negative (= "no limit" or an
 * error inside libclamav). A value of 0 keeps libclamav's default: 0 in
 * libclamav would mean "unlimited", which is never what a mail gateway
 * wants, and the config module rejects 0 anyway. */
static int
scanner_set_limit(struct cl_engine *engine, enum cl_engine_field field,
                  const char *what, uint64_t value, GError **err)
{
    cl_error_t rc;

    if (value == 0)
        return 0;
    if (value > (uint64_t)LLONG_MAX)
        value = (uint64_t)LLONG_MAX;
    rc = cl_engine_set_num(engine, field, (long long)value);
    if (rc != CL_SUCCESS) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE,
                    "cannot set libclamav %s to %" G_GUINT64_FORMAT ": %s",
                    what, value, cl_strerror(rc));
        return -1;
    }
    return 0;
}

/* NULL limits keep every libclamav default (1.4: MaxScanSize 400 MiB,
 * MaxFileSize 100 MiB, MaxRecursion 17, MaxFiles 10000, MaxScanTime
 * 120 s); the daemon always passes its configured ones. */
static int
scanner_apply_limits(struct cl_engine *engine,
                     const struct mq_scanner_limits *limits, GError **err)
{
    if (limits == NULL)
        return 0;
    if (scanner_set_limit(engine, CL_ENGINE_MAX_SCANSIZE, "MaxScanSize",
                          limits->max_scan_size, err) < 0
        || scanner_set_limit(engine, CL_ENGINE_MAX_FILESIZE, "MaxFileSize",
                             limits->max_file_size, err) < 0
        || scanner_set_limit(engine, CL_ENGINE_MAX_RECURSION, "MaxRecursion",
                             limits->max_recursion, err) < 0
        || scanner_set_limit(engine, CL_ENGINE_MAX_FILES, "MaxFiles",
                             limits->max_files, err) < 0
        || scanner_set_limit(engine, CL_ENGINE_MAX_SCANTIME, "MaxScanTime",
                             limits->max_scan_time_ms, err) < 0)
        return -1;
    return 0;
}

static uint64_t
scanner_get_u64(const struct cl_engine *engine, enum cl_engine_field field)
{
    int e = CL_SUCCESS;
    long long v = cl_engine_get_num(engine, field, &e);

    return (e == CL_SUCCESS && v > 0) ? (uint64_t)v : 0;
}

/* Built once, so that describe() can hand out a borrowed string. The
 * database version and time are only known for official (CVD/CLD)
 * databases; our own .ndb/.hdb files have neither. */
static char *
scanner_build_description(const struct mq_scanner *scanner)
{
    GString *s = g_string_new(NULL);
    long long version, dbtime;
    int e1 = 0, e2 = 0;

    g_string_append_printf(s, "libclamav %s, %u signature%s", cl_retver(),
                           scanner->signatures, scanner->signatures == 1 ? "" : "s");
    version = cl_engine_get_num(scanner->engine, CL_ENGINE_DB_VERSION, &e1);
    dbtime = cl_engine_get_num(scanner->engine, CL_ENGINE_DB_TIME, &e2);
    if (e1 == CL_SUCCESS && version > 0) {
        g_string_append_printf(s, ", database version %lld", version);
        if (e2 == CL_SUCCESS && dbtime > 0) {
            GDateTime *dt = g_date_time_new_from_unix_utc((gint64)dbtime);
            if (dt != NULL) {
                char *when = g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC");
                g_string_append_printf(s, " (%s)", when);
                g_free(when);
                g_date_time_unref(dt);
            }
        }
    } else {
        g_string_append(s, ", no versioned database");
    }
    return g_string_free(s, FALSE);
}

struct mq_scanner *
mq_scanner_new(const char *db_dir, const char *tmp_dir,
               const struct mq_scanner_limits *limits, GError **err)
{
    struct mq_scanner *scanner = NULL;
    struct cl_engine *engine = NULL;
    unsigned sigs = 0;
    cl_error_t rc;
    gint64 t0, t1, t2;

    if (db_dir == NULL)
        mq_log_panic("mq_scanner_new: db_dir is NULL");

    rc = scanner_global_init();
    if (rc != CL_SUCCESS) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "cl_init failed: %s",
                    cl_strerror(rc));
        goto out;
    }

    engine = cl_engine_new();
    if (engine == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE,
                    "cl_engine_new failed (out of memory?)");
        goto out;
    }

    /* The directory is the caller's: it creates it with the right owner
     * and mode (ideally on tmpfs, see NOTES); we only point libclamav at
     * it. libclamav copies the string. */
    if (tmp_dir != NULL) {
        rc = cl_engine_set_str(engine, CL_ENGINE_TMPDIR, tmp_dir);
        if (rc != CL_SUCCESS) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE,
                        "cannot set libclamav temporary directory %s: %s",
                        tmp_dir, cl_strerror(rc));
            goto out;
        }
    }

    /* Limits must be in place before compiling: afterwards the engine is
     * read-only. The clean-file cache stays on (libclamav's default): a
     * mail gateway sees the same attachment many times, and the cache is
     * per engine, so it is dropped together with an engine that a reload
     * replaced. Results that hit a limit are reported as a heuristic
     * "virus" (see scanner_scan_options()) and are therefore never cached
     * as clean. */
    if (scanner_apply_limits(engine, limits, err) < 0)
        goto out;
    cl_engine_set_clcb_file_inspection(engine, scanner_clcb_inspect);

    t0 = g_get_monotonic_time();
    rc = cl_load(db_dir, engine, &sigs, CL_DB_STDOPT);
    t1 = g_get_monotonic_time();
    if (rc != CL_SUCCESS) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE,
                    "cannot load signatures from %s: %s", db_dir, cl_strerror(rc));
        goto out;
    }
    /* Fail closed: an engine without signatures would call everything
     * clean. */
    if (sigs == 0) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "no signatures in %s", db_dir);
        goto out;
    }
    rc = cl_engine_compile(engine);
    t2 = g_get_monotonic_time();
    if (rc != CL_SUCCESS) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE,
                    "cannot compile signatures from %s: %s", db_dir, cl_strerror(rc));
        goto out;
    }

    scanner = g_new0(struct mq_scanner, 1);
    scanner->refcount = 1;
    scanner->kind = SCANNER_LIBCLAMAV;
    scanner->engine = engine;
    scanner->signatures = sigs;
    scanner->max_file_size = scanner_get_u64(engine, CL_ENGINE_MAX_FILESIZE);
    scanner->load_seconds = (double)(t1 - t0) / 1e6;
    scanner->compile_seconds = (double)(t2 - t1) / 1e6;
    scanner->max_scan_size = scanner_get_u64(engine, CL_ENGINE_MAX_SCANSIZE);
    scanner->max_files = scanner_get_u64(engine, CL_ENGINE_MAX_FILES);
    engine = NULL;
    scanner->description = scanner_build_description(scanner);

out:
    if (engine != NULL)
        cl_engine_free(engine);
    return scanner;
}

/* "clamd: unix:/x, tcp:127.0.0.1:3310 (timeout 60 s)". The server strings
 * have been validated by mq_clamd_new(), so they are printable. */
static char *
scanner_describe_clamd(const char *const *servers, unsigned timeout_ms)
{
    GString *s = g_string_new("clamd: ");

    for (unsigned i = 0; servers[i] != NULL; i++)
        g_string_append_printf(s, "%s%s", i > 0 ? ", " : "", servers[i]);
    if (timeout_ms % 1000 == 0)
        g_string_append_printf(s, " (timeout %u s)", timeout_ms / 1000);
    else
        g_string_append_printf(s, " (timeout %u ms)", timeout_ms);
    return g_string_free(s, FALSE);
}

struct mq_scanner *
mq_scanner_new_clamd(const char *const *servers, unsigned timeout_ms, GError **err)
{
    struct mq_scanner *scanner;
    struct mq_clamd *clamd = mq_clamd_new(servers, timeout_ms, err);

    if (clamd == NULL)
        return NULL;
    scanner = g_new0(struct mq_scanner, 1);
    scanner->refcount = 1;
    scanner->kind = SCANNER_CLAMD;
    scanner->clamd = clamd;
    scanner->description = scanner_describe_clamd(servers, timeout_ms);
    return scanner;
}

struct mq_scanner *
mq_scanner_ref(struct mq_scanner *scanner)
{
    if (scanner == NULL || g_atomic_int_get(&scanner->refcount) <= 0)
        mq_log_panic("mq_scanner_ref: invalid scanner %p", (void *)scanner);
    g_atomic_int_inc(&scanner->refcount);
    return scanner;
}

void
mq_scanner_unref(struct mq_scanner **scannerp)
{
    struct mq_scanner *scanner;

    if (scannerp == NULL)
        mq_log_panic("mq_scanner_unref: NULL argument");
    scanner = *scannerp;
    *scannerp = NULL;
    if (scanner == NULL)
        return;
    /* This catches a double unref only while the memory still holds the
     * old count, which is the common case for a just-freed object; it is
     * a best-effort check, not a guarantee. */
    if (g_atomic_int_get(&scanner->refcount) <= 0)
        mq_log_panic("mq_scanner_unref: engine %p already freed", (void *)scanner);
    if (!g_atomic_int_dec_and_test(&scanner->refcount))
        return;
    if (scanner->engine != NULL)
        cl_engine_free(scanner->engine);
    mq_clamd_free(&scanner->clamd);
    g_free(scanner->description);
    scanner->refcount = 0;
    g_free(scanner);
}

unsigned
mq_scanner_signatures(const struct mq_scanner *scanner)
{
    return scanner->signatures;
}

const char *
mq_scanner_describe(const struct mq_scanner *scanner)
{
    return scanner->description;
}

void
mq_scanner_build_times(const struct mq_scanner *scanner, double *load_r, double *compile_r)
{
    *load_r = scanner->load_seconds;
    *compile_r = scanner->compile_seconds;
}

char *
mq_scanner_check(struct mq_scanner *scanner, GError **err)
{
    char *version, *line;

    if (scanner->kind != SCANNER_CLAMD)
        return g_strdup(scanner->description);
    version = mq_clamd_version(scanner->clamd, err);
    if (version == NULL) {
        if (err != NULL && *err != NULL)
            (*err)->code = MQ_ERROR_ENGINE;
        return NULL;
    }
    line = g_strdup_printf("%s; answering: %s", scanner->description, version);
    g_free(version);
    return line;
}

/*
 * What clamscan does by default, plus two heuristics. "Exceeds max": without
 * it, libclamav stops at a limit and reports the object as clean, which would
 * let anything through that is wrapped deeply or large enough. With it, the
 * scan ends with CL_VIRUS and a "Heuristics.Limits.Exceeded.<Limit>" name.
 * Real signature matches take precedence over that heuristic (we do not set
 * CL_SCAN_GENERAL_HEURISTIC_PRECEDENCE), so an infected archive that also
 * exceeds a limit is still reported as infected when the match was seen.
 * "Encrypted": an encrypted archive (zip, rar, 7z, egg) or PDF cannot be
 * looked into, and without the heuristic it is reported as clean; with it
 * the name is "Heuristics.Encrypted.<Zip|RAR|7Zip|EGG|PDF>" (clamd:
 * AlertEncrypted). A match inside the readable part of such an archive still
 * wins, as above.
 * Mail parsing is part of .parse, so libclamav's own MIME/uuencode extraction
 * runs when a whole message is scanned (NOTES, "Coverage gap found").
 */
static void
scanner_scan_options(struct cl_scan_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->parse = ~0u;
    opts->general = CL_SCAN_GENERAL_HEURISTICS;
    opts->heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX | CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE
                      | CL_SCAN_HEURISTIC_ENCRYPTED_DOC;
}

#define SCANNER_LIMIT_PREFIX "Heuristics.Limits.Exceeded"
#define SCANNER_ENCRYPTED_PREFIX "Heuristics.Encrypted"

/* The verdict for a name that an engine "found", shared by both engines so
 * that a configuration switch between them changes nothing downstream.
 * Takes ownership of name and stores it in *name_r. */
static int
scanner_classify(char *name, char **name_r)
{
    *name_r = name;
    if (g_str_has_prefix(name, SCANNER_LIMIT_PREFIX "."))
        return MQ_SCAN_UNSCANNABLE;
    if (g_str_has_prefix(name, SCANNER_ENCRYPTED_PREFIX "."))
        return MQ_SCAN_ENCRYPTED;
    return MQ_SCAN_INFECTED;
}

/* Return codes that mean "a limit stopped the scan". The clamav.h comment
 * marks the CL_EMAX* codes as internal, but nothing stops them from leaking
 * out of a code path, and treating them as errors would defer the message
 * for ever; they are verdicts. */
static const char *
scanner_limit_name(cl_error_t rc)
{
    switch (rc) {
    case CL_EMAXREC:
        return "Limits.Exceeded.MaxRecursion";
    case CL_EMAXSIZE:
        return "Limits.Exceeded.MaxSize";
    case CL_EMAXFILES:
        return "Heuristics.Limits.Exceeded.MaxFiles";
    case CL_ETIMEOUT:
        return "Limits.Exceeded.MaxScanTime";
    default:
        return NULL;
    }
}

/* clamd's stream limit (StreamMaxLength) is its own thing, not a libclamav
 * limit heuristic: it is reported under a name of the same family as
 * scanner_limit_name()'s. clamd reads zips with the same libclamav code,
 * and its limits are its own: a zip it would pass over unread is caught
 * here, but only at the top (a leaf the caller hands in), not inside
 * another archive. */
static int
scanner_scan_clamd(struct mq_scanner *scanner, const void *buf, size_t len, char **name_r,
                   GError **err)
{
    struct scanner_zip zip = { .buf = buf, .len = len };
    const char *problem = scanner_zip_problem(&zip);
    char *name = NULL;
    int reply;

    if (problem != NULL) {
        *name_r = g_strdup(problem);
        return MQ_SCAN_UNSCANNABLE;
    }
    reply = mq_clamd_scan(scanner->clamd, buf, len, &name, err);

    switch (reply) {
    case MQ_CLAMD_CLEAN:
        g_free(name);
        return MQ_SCAN_CLEAN;
    case MQ_CLAMD_FOUND:
        return scanner_classify(name, name_r);
    case MQ_CLAMD_LIMIT:
        g_free(name);
        *name_r = g_strdup("Limits.Exceeded.StreamMaxLength");
        return MQ_SCAN_UNSCANNABLE;
    default:
        g_free(name);
        return -1;
    }
}

static int
scanner_scan_libclamav(struct mq_scanner *scanner, const void *buf, size_t len,
                       const char *name_hint, char **name_r, GError **err)
{
    struct scanner_scan_ctx ctx = { .name_hint = name_hint, .scanner = scanner };
    struct cl_scan_options opts;
    const char *virname = NULL;
    const char *limit;
    unsigned long scanned = 0;
    cl_fmap_t *map;
    cl_error_t rc;

    /* libclamav itself ignores objects of 5 bytes or less when scanning a
     * descriptor (cl_scandesc_callback: "File too small"); an empty buffer
     * cannot even be mapped. Nothing can be found in zero bytes. */
    if (len == 0)
        return MQ_SCAN_CLEAN;

    /* libclamav 1.4 checks the top-level size itself, but for an object
     * above MaxFileSize it returns CL_VIRUS *without* a name unless a
     * virus-found callback is registered (scanners.c,
     * cl_scanmap_callback). Decide that case here, with the name libclamav
     * would have used. */
    if (scanner->max_file_size > 0 && (uint64_t)len > scanner->max_file_size) {
        *name_r = g_strdup(SCANNER_LIMIT_PREFIX ".MaxFileSize");
        return MQ_SCAN_UNSCANNABLE;
    }

    map = cl_fmap_open_memory(buf, len);
    if (map == NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE,
                    "cannot map %zu bytes for scanning", len);
        return -1;
    }
    scanner_scan_options(&opts);
    rc = cl_scanmap_callback(map, name_hint, &virname, &scanned, scanner->engine,
                             &opts, &ctx);
    cl_fmap_close(map);

    switch (rc) {
    case CL_CLEAN:
        return MQ_SCAN_CLEAN;
    case CL_VIRUS:
        /* Stopped by scanner_clcb_inspect(): not read, so not clean. A
         * signature that matched before it keeps its own name. */
        if (ctx.unreadable != NULL && virname != NULL
            && strcmp(virname, SCANNER_INSPECT_VIRNAME) == 0) {
            *name_r = g_strdup(ctx.unreadable);
            return MQ_SCAN_UNSCANNABLE;
        }
        /* virname points into the engine (or a static string); copy it.
         * A CL_VIRUS without a name should not happen any more (see the
         * size check above); it still is not clean. */
        if (virname == NULL)
            virname = "Unknown.Unnamed";
        return scanner_classify(g_strdup(virname), name_r);
    default:
        break;
    }
    limit = scanner_limit_name(rc);
    if (limit != NULL) {
        *name_r = g_strdup(limit);
        return MQ_SCAN_UNSCANNABLE;
    }
    g_set_error(err, MQ_ERROR, MQ_ERROR_ENGINE, "libclamav scan failed: %s",
                cl_strerror(rc));
    return -1;
}

int
mq_scanner_scan(struct mq_scanner *scanner, const void *buf, size_t len,
                const char *name_hint, char **name_r, GError **err)
{
    if (scanner == NULL || name_r == NULL || (buf == NULL && len > 0))
        mq_log_panic("mq_scanner_scan: invalid arguments");
    *name_r = NULL;

    switch (scanner->kind) {
    case SCANNER_LIBCLAMAV:
        return scanner_scan_libclamav(scanner, buf, len, name_hint, name_r, err);
    case SCANNER_CLAMD:
        return scanner_scan_clamd(scanner, buf, len, name_r, err);
    }
    mq_log_panic("mq_scanner_scan: engine %p of unknown kind %d", (void *)scanner,
                 (int)scanner->kind);
}

struct mq_scanner *
mq_scanner_from_config(const struct mq_config *c, const char *tmp_dir, GError **err)
{
    struct mq_scanner_limits limits = {
        .max_scan_size = c->clamav_max_scan_size,
        .max_file_size = c->clamav_max_file_size,
        .max_recursion = c->clamav_max_recursion,
        .max_files = c->clamav_max_files,
        .max_scan_time_ms = c->clamav_max_scan_time,
    };

    if (c->engine == MQ_ENGINE_CLAMD)
        return mq_scanner_new_clamd((const char *const *)c->clamd_servers, c->clamd_timeout,
                                    err);
    return mq_scanner_new(c->clamav_database_dir, tmp_dir, &limits, err);
}
