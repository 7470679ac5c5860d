/* fuzz-config - the configuration loader (mqscan/config.h, libconfuse).
 *
 * The input is a configuration file. mq_config_load() only reads paths, so
 * the input is written to one temporary file (made once per process,
 * removed at exit) and loaded from there. A load either gives a config, or
 * fails with MQ_ERROR_CONFIG and a message that starts with the file name
 * (as mqscand --lint prints it). It must never exit the process: a reload
 * on SIGHUP goes through the same loader, and libFuzzer reports an exit as
 * a crash. Whatever does not hold panics.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "mqscan/config.h"
#include "mqscan/error.h"
#include "mqscan/log.h"

#include "fuzz.h"

static char *fuzz_path;
static int fuzz_fd = -1;

static void
fuzz_remove_file(void)
{
    if (fuzz_path != NULL)
        g_unlink(fuzz_path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    GError *error = NULL;

    fuzz_init();
    fuzz_fd = g_file_open_tmp("fuzz-config-XXXXXX.conf", &fuzz_path, &error);
    if (fuzz_fd < 0)
        mq_log_panic("cannot make a temporary file: %s", error->message);
    atexit(fuzz_remove_file);
    return 0;
}

static void
fuzz_write(const uint8_t *data, size_t size)
{
    size_t done = 0;

    if (ftruncate(fuzz_fd, 0) < 0)
        mq_log_panic("ftruncate %s: %s", fuzz_path, g_strerror(errno));
    while (done < size) {
        ssize_t n = pwrite(fuzz_fd, data + done, size - done, (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            mq_log_panic("write %s: %s", fuzz_path, n < 0 ? g_strerror(errno) : "nothing written");
        done += (size_t)n;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mq_config *config;
    GError *error = NULL;

    fuzz_write(data, size);
    config = mq_config_load(fuzz_path, &error);
    if (config == NULL) {
        if (error == NULL || error->domain != MQ_ERROR || error->code != MQ_ERROR_CONFIG)
            mq_log_panic("mq_config_load failed without MQ_ERROR_CONFIG");
        if (!g_str_has_prefix(error->message, fuzz_path))
            mq_log_panic("config error does not name the file: %s", error->message);
        g_error_free(error);
        return 0;
    }
    if (config->workers < 1 || config->max_mime_depth < 1 || config->clamd_servers == NULL
        || config->local_domains == NULL || config->mass_mailer_patterns == NULL)
        mq_log_panic("loaded config with an invalid value");
    (void)mq_config_is_local_domain(config, "mail.example.org");
    mq_config_free(&config);
    return 0;
}
