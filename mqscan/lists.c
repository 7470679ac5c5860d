#include <config.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "mqscan/config.h"
#include "mqscan/error.h"
#include "mqscan/lists.h"

#define LIST_ENTRY_MAX 320
#define LIST_ENTRIES_MAX 1000000
#define LIST_FILE_MAX ((gsize)256 << 20)

struct list_entry {
    char *text;                 /* as written, for logs */
    time_t expires;             /* first second it no longer matches; 0 never */
    enum { LIST_EXACT, LIST_DOMAIN, LIST_SUBDOMAIN, LIST_GLOB, LIST_NET } how;
    char *key;                  /* lower case: address, domain or glob */
    GPatternSpec *glob;
    struct mq_config_network net;
};

struct mq_list {
    enum mq_list_kind kind;
    GPtrArray *entries;         /* struct list_entry *, in file order */
    /* Exact addresses and domains, for a lookup that does not grow with
     * the list: key -> entry. Globs and networks are tried in order. */
    GHashTable *exact;
    GHashTable *domains;
};

static void
list_entry_free(gpointer p)
{
    struct list_entry *e = p;
    g_free(e->text);
    g_free(e->key);
    if (e->glob != NULL)
        g_pattern_spec_free(e->glob);
    g_free(e);
}

/* "YYYY-MM-DD" -> the first second (local time) of the following day. */
static bool
list_parse_until(const char *s, time_t *expires_r)
{
    struct tm tm = { 0 };
    const char *end = strptime(s, "%Y-%m-%d", &tm);

    if (end == NULL || *end != '\0')
        return false;
    tm.tm_mday += 1;
    tm.tm_isdst = -1;
    *expires_r = mktime(&tm);
    return *expires_r != (time_t)-1;
}

static bool
list_parse_entry(enum mq_list_kind kind, const char *word, struct list_entry *e)
{
    if (kind == MQ_LIST_NETWORKS) {
        e->how = LIST_NET;
        return mq_config_parse_network(word, &e->net);
    }
    if (strpbrk(word, "\"\\()<>,;: \t") != NULL && strcmp(word, "<>") != 0)
        return false;
    e->key = g_ascii_strdown(word[0] == '@' ? word + 1 : word, -1);
    if (strcmp(word, "<>") == 0) {
        g_free(e->key);
        e->key = g_strdup("");
        e->how = LIST_EXACT;
    } else if (strpbrk(e->key, "*?") != NULL) {
        if (g_str_has_prefix(e->key, "*.") && strpbrk(e->key + 2, "*?@") == NULL) {
            char *d = g_strdup(e->key + 2);
            g_free(e->key);
            e->key = d;
            e->how = LIST_SUBDOMAIN;
        } else {
            e->how = LIST_GLOB;
            e->glob = g_pattern_spec_new(e->key);
        }
    } else if (strchr(e->key, '@') != NULL) {
        e->how = LIST_EXACT;
    } else {
        e->how = LIST_DOMAIN;
    }
    return e->key[0] != '\0' || e->how == LIST_EXACT;
}

struct mq_list *
mq_list_load(const char *path, enum mq_list_kind kind, GError **err)
{
    struct mq_list *list = g_new0(struct mq_list, 1);
    char *buf = NULL;
    gsize len = 0;
    GError *error = NULL;
    char **lines;
    unsigned lineno = 0;

    list->kind = kind;
    list->entries = g_ptr_array_new_with_free_func(list_entry_free);
    list->exact = g_hash_table_new(g_str_hash, g_str_equal);
    list->domains = g_hash_table_new(g_str_hash, g_str_equal);
    if (path == NULL || path[0] == '\0')
        return list;
    if (!g_file_get_contents(path, &buf, &len, &error)) {
        if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            g_error_free(error);
            return list;
        }
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s: %s", path, error->message);
        g_error_free(error);
        goto fail;
    }
    if (len > LIST_FILE_MAX || memchr(buf, '\0', len) != NULL) {
        g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s: too large or not text", path);
        goto fail;
    }
    lines = g_strsplit(buf, "\n", -1);
    for (char **l = lines; *l != NULL; l++) {
        char *hash = strchr(*l, '#');
        char **words;
        const char *w[4];
        guint n = 0;
        struct list_entry *e;
        const char *problem = NULL;

        lineno++;
        if (hash != NULL)
            *hash = '\0';
        words = g_strsplit_set(g_strstrip(*l), " \t\r", -1);
        for (guint i = 0; words[i] != NULL; i++)
            if (words[i][0] != '\0' && n < G_N_ELEMENTS(w))
                w[n++] = words[i];
        if (n == 0) {
            g_strfreev(words);
            continue;
        }
        e = g_new0(struct list_entry, 1);
        e->text = g_strdup(w[0]);
        if (strlen(w[0]) > LIST_ENTRY_MAX)
            problem = "entry too long";
        else if (!list_parse_entry(kind, w[0], e))
            problem = kind == MQ_LIST_NETWORKS ? "not an address or CIDR network"
                                               : "not an address, domain or pattern";
        else if (n == 3 && strcmp(w[1], "until") == 0) {
            if (!list_parse_until(w[2], &e->expires))
                problem = "the date after \"until\" is not YYYY-MM-DD";
        } else if (n != 1)
            problem = "expected ENTRY or ENTRY until YYYY-MM-DD";
        if (problem == NULL && list->entries->len >= LIST_ENTRIES_MAX)
            problem = "too many entries";
        if (problem != NULL) {
            g_set_error(err, MQ_ERROR, MQ_ERROR_CONFIG, "%s:%u: %s", path, lineno, problem);
            list_entry_free(e);
            g_strfreev(words);
            g_strfreev(lines);
            goto fail;
        }
        g_ptr_array_add(list->entries, e);
        /* First entry wins, as the file reads. */
        if (e->how == LIST_EXACT && !g_hash_table_contains(list->exact, e->key))
            g_hash_table_insert(list->exact, e->key, e);
        else if (e->how == LIST_DOMAIN && !g_hash_table_contains(list->domains, e->key))
            g_hash_table_insert(list->domains, e->key, e);
        g_strfreev(words);
    }
    g_strfreev(lines);
    g_free(buf);
    return list;
fail:
    g_free(buf);
    mq_list_free(&list);
    return NULL;
}

void
mq_list_free(struct mq_list **list)
{
    struct mq_list *l = *list;

    if (l == NULL)
        return;
    g_hash_table_destroy(l->exact);
    g_hash_table_destroy(l->domains);
    g_ptr_array_free(l->entries, TRUE);
    g_free(l);
    *list = NULL;
}

size_t
mq_list_size(const struct mq_list *list)
{
    return list->entries->len;
}

static bool
list_live(const struct list_entry *e, time_t now, const char **entry_r)
{
    if (e->expires != 0 && now >= e->expires)
        return false;
    if (entry_r != NULL)
        *entry_r = e->text;
    return true;
}

bool
mq_list_match_address(const struct mq_list *list, const char *addr, time_t now,
                       const char **entry_r)
{
    char *lower;
    const char *domain;
    struct list_entry *e;
    bool found = false;

    if (list->kind != MQ_LIST_ADDRESSES || list->entries->len == 0 ||
        strlen(addr) > LIST_ENTRY_MAX)
        return false;
    lower = g_ascii_strdown(addr, -1);
    domain = strrchr(lower, '@');
    domain = domain != NULL ? domain + 1 : lower[0] != '\0' ? lower : NULL;

    e = g_hash_table_lookup(list->exact, lower);
    if (e != NULL && list_live(e, now, entry_r)) {
        found = true;
        goto out;
    }
    if (domain != NULL) {
        e = g_hash_table_lookup(list->domains, domain);
        if (e != NULL && list_live(e, now, entry_r)) {
            found = true;
            goto out;
        }
    }
    for (guint i = 0; i < list->entries->len; i++) {
        e = g_ptr_array_index(list->entries, i);
        if (e->how == LIST_SUBDOMAIN && domain != NULL) {
            size_t dl = strlen(domain), kl = strlen(e->key);
            if (dl > kl && domain[dl - kl - 1] == '.' && strcmp(domain + dl - kl, e->key) == 0 &&
                list_live(e, now, entry_r)) {
                found = true;
                break;
            }
        } else if (e->how == LIST_GLOB && lower[0] != '\0' &&
                   g_pattern_spec_match_string(e->glob, lower) && list_live(e, now, entry_r)) {
            found = true;
            break;
        }
    }
out:
    g_free(lower);
    return found;
}

bool
mq_list_match_ip(const struct mq_list *list, int family, const uint8_t *addr, time_t now,
                 const char **entry_r)
{
    if (list->kind != MQ_LIST_NETWORKS)
        return false;
    for (guint i = 0; i < list->entries->len; i++) {
        const struct list_entry *e = g_ptr_array_index(list->entries, i);
        if (mq_config_network_contains(&e->net, family, addr) && list_live(e, now, entry_r))
            return true;
    }
    return false;
}
