/* qf-roundtrip - check the qf parser and writer on real sendmail qf files.
 *
 * usage: qf-roundtrip DIR
 *
 * For every qfID in DIR: parsing and formatting without edits must give the
 * file back byte for byte; the form written for a new queue entry must parse
 * again with the same sender, recipients (flags included) and headers.
 * Prints a summary; exit 0 if every file passes, 1 otherwise.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "mqscan/qf.h"

static int
check_file(const char *path, size_t *rcpts, size_t *headers)
{
    char *buf = NULL;
    gsize len = 0;
    GError *error = NULL;
    struct mq_qf *qf = NULL, *again = NULL;
    GString *out = g_string_new(NULL), *fresh = g_string_new(NULL);
    int bad = 0;

    if (!g_file_get_contents(path, &buf, &len, &error)) {
        printf("%s: %s\n", path, error->message);
        bad = 1;
        goto done;
    }
    qf = mq_qf_parse(buf, len, &error);
    if (qf == NULL) {
        printf("%s: %s\n", path, error->message);
        bad = 1;
        goto done;
    }
    mq_qf_format(qf, 0, out);
    if (out->len != len || memcmp(out->str, buf, len) != 0) {
        printf("%s: formatted qf differs from the original\n", path);
        bad = 1;
    }
    mq_qf_format(qf, MQ_QF_FORMAT_NEW_ENTRY, fresh);
    again = mq_qf_parse(fresh->str, fresh->len, &error);
    if (again == NULL) {
        printf("%s: new-entry form does not parse: %s\n", path, error->message);
        bad = 1;
        goto done;
    }
    if (strcmp(mq_qf_sender(qf), mq_qf_sender(again)) != 0 ||
        mq_qf_rcpt_count(qf) != mq_qf_rcpt_count(again) ||
        mq_qf_header_count(qf) != mq_qf_header_count(again)) {
        printf("%s: new-entry form lost envelope or headers\n", path);
        bad = 1;
        goto done;
    }
    for (size_t i = 0; i < mq_qf_rcpt_count(qf); i++) {
        const char *f1, *f2;
        const char *a1 = mq_qf_rcpt(qf, i, &f1), *a2 = mq_qf_rcpt(again, i, &f2);
        if (strcmp(a1, a2) != 0 || strcmp(f1, f2) != 0) {
            printf("%s: recipient %zu changed\n", path, i);
            bad = 1;
        }
    }
    for (size_t i = 0; i < mq_qf_header_count(qf); i++) {
        const char *n1, *v1, *n2, *v2;
        mq_qf_header(qf, i, &n1, &v1);
        mq_qf_header(again, i, &n2, &v2);
        if (strcmp(n1, n2) != 0 || strcmp(v1, v2) != 0) {
            printf("%s: header %zu changed\n", path, i);
            bad = 1;
        }
    }
    *rcpts += mq_qf_rcpt_count(qf);
    *headers += mq_qf_header_count(qf);
done:
    g_clear_error(&error);
    mq_qf_free(&qf);
    mq_qf_free(&again);
    g_string_free(out, TRUE);
    g_string_free(fresh, TRUE);
    g_free(buf);
    return bad;
}

int
main(int argc, char **argv)
{
    GDir *dir;
    const char *name;
    size_t files = 0, failed = 0, rcpts = 0, headers = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: qf-roundtrip DIR\n");
        return 2;
    }
    dir = g_dir_open(argv[1], 0, NULL);
    if (dir == NULL) {
        fprintf(stderr, "qf-roundtrip: cannot open %s\n", argv[1]);
        return 2;
    }
    while ((name = g_dir_read_name(dir)) != NULL) {
        char *path;
        if (strncmp(name, "qf", 2) != 0)
            continue;
        path = g_build_filename(argv[1], name, NULL);
        failed += (size_t)check_file(path, &rcpts, &headers);
        files++;
        g_free(path);
    }
    g_dir_close(dir);
    printf("qf-roundtrip: %zu files (%zu recipients, %zu headers): %zu passed, %zu failed\n",
           files, rcpts, headers, files - failed, failed);
    return failed == 0 && files > 0 ? 0 : 1;
}
