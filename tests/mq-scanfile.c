/* mq-scanfile - scan whole files with mqscan's scanner module.
 *
 * Usage: mq-scanfile DBDIR FILE...
 *
 * Prints one line per file: "FILE: CLEAN", "FILE: INFECTED NAME" or
 * "FILE: UNSCANNABLE NAME". Exit status: 0 if every file is clean, 1 if any
 * is infected or unscannable, 2 on any error (an unreadable file, an engine
 * that does not load, a failed scan). The end-to-end test uses it to prove
 * that delivered messages are clean and quarantined originals are not.
 *
 * Limits are generous (scanning a test message must not stop on a limit)
 * but present, as in the daemon.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "mqscan/log.h"
#include "mqscan/scanner.h"

int
main(int argc, char **argv)
{
    const struct mq_scanner_limits limits = {
        .max_scan_size = 400u << 20,
        .max_file_size = 100u << 20,
        .max_recursion = 17,
        .max_files = 10000,
        .max_scan_time_ms = 120000,
    };
    struct mq_scanner *scanner = NULL;
    GError *err = NULL;
    int status = 0;

    mq_log_open("mq-scanfile", MQ_LOG_SINK_STDERR);
    if (argc < 3) {
        fprintf(stderr, "usage: mq-scanfile DBDIR FILE...\n");
        return 2;
    }
    scanner = mq_scanner_new(argv[1], NULL, &limits, &err);
    if (scanner == NULL) {
        fprintf(stderr, "mq-scanfile: %s\n", err->message);
        g_clear_error(&err);
        return 2;
    }

    for (int i = 2; i < argc; i++) {
        char *data = NULL, *name = NULL;
        gsize len = 0;
        int verdict;

        if (!g_file_get_contents(argv[i], &data, &len, &err)) {
            fprintf(stderr, "mq-scanfile: %s\n", err->message);
            g_clear_error(&err);
            status = 2;
            continue;
        }
        verdict = mq_scanner_scan(scanner, data, len, argv[i], &name, &err);
        switch (verdict) {
        case MQ_SCAN_CLEAN:
            printf("%s: CLEAN\n", argv[i]);
            break;
        case MQ_SCAN_INFECTED:
            printf("%s: INFECTED %s\n", argv[i], name);
            break;
        case MQ_SCAN_UNSCANNABLE:
            printf("%s: UNSCANNABLE %s\n", argv[i], name);
            break;
        default:
            fprintf(stderr, "mq-scanfile: %s: %s\n", argv[i], err->message);
            g_clear_error(&err);
            status = 2;
            break;
        }
        if ((verdict == MQ_SCAN_INFECTED || verdict == MQ_SCAN_UNSCANNABLE) && status == 0)
            status = 1;
        g_free(name);
        g_free(data);
    }
    fflush(stdout);
    mq_scanner_unref(&scanner);
    return status;
}
