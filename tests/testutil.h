/* testutil - helpers shared by the unit tests.
 *
 * test_data_path(): path of a fixture under tests/data (MQ_SRCDIR, or the
 * GTest dist dir). test_load(): a fixture's bytes. test_remove_tree(): rm -r
 * without following symbolic links. test_listing(): the names in a
 * directory (dot files too), sorted, joined by commas. Every returned string is g_free'd by the
 * caller; a fixture that cannot be read aborts the test.
 */
#ifndef MQSCAN_TESTUTIL_H
#define MQSCAN_TESTUTIL_H

#include <stddef.h>

char *test_data_path(const char *rel);
char *test_load(const char *rel, size_t *len_r);
void test_remove_tree(const char *path);
char *test_listing(const char *dir);
/* Headers are data[0, *headers_len_r); the body starts after the empty line
 * (LF or CRLF). No empty line: all headers, empty body. */
void test_split_message(const char *data, size_t len, size_t *headers_len_r,
                        const char **body_r, size_t *body_len_r);

#endif
