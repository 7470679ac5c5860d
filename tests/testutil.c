#include <config.h>

#include <string.h>
#include <sys/stat.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "testutil.h"

char *
test_data_path(const char *rel)
{
    const char *srcdir = g_getenv("MQ_SRCDIR");

    if (srcdir != NULL && *srcdir != '\0')
        return g_build_filename(srcdir, "data", rel, NULL);
    return g_test_build_filename(G_TEST_DIST, "data", rel, NULL);
}

char *
test_load(const char *rel, size_t *len_r)
{
    char *path = test_data_path(rel), *text = NULL;
    gsize len = 0;
    GError *err = NULL;

    if (!g_file_get_contents(path, &text, &len, &err))
        g_error("fixture %s: %s", path, err->message);
    g_free(path);
    *len_r = len;
    return text;
}

void
test_remove_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;

    if (d != NULL) {
        while ((name = g_dir_read_name(d)) != NULL) {
            char *p = g_build_filename(path, name, NULL);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                test_remove_tree(p);
            else
                g_unlink(p);
            g_free(p);
        }
        g_dir_close(d);
    }
    g_rmdir(path);
}

void
test_split_message(const char *data, size_t len, size_t *headers_len_r,
                   const char **body_r, size_t *body_len_r)
{
    size_t pos = 0;

    while (pos < len) {
        const char *nl;

        if (data[pos] == '\n' || (data[pos] == '\r' && pos + 1 < len && data[pos + 1] == '\n')) {
            size_t eol = data[pos] == '\n' ? pos + 1 : pos + 2;
            *headers_len_r = pos;
            *body_r = data + eol;
            *body_len_r = len - eol;
            return;
        }
        nl = memchr(data + pos, '\n', len - pos);
        if (nl == NULL)
            break;
        pos = (size_t)(nl - data) + 1;
    }
    *headers_len_r = len;
    *body_r = data + len;
    *body_len_r = 0;
}

static gint
test_compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *
test_listing(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    char *joined;

    g_assert_nonnull(d);
    while ((n = g_dir_read_name(d)) != NULL)
        g_ptr_array_add(names, g_strdup(n));
    g_dir_close(d);
    g_ptr_array_sort(names, test_compare_names);
    g_ptr_array_add(names, NULL);
    joined = g_strjoinv(",", (char **)names->pdata);
    g_ptr_array_unref(names);
    return joined;
}
