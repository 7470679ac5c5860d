/* poison-shim - an LD_PRELOAD library for poison.sh, never installed.
 *
 * Stands in front of libclamav's cl_fmap_open_memory(), which mqscand uses
 * for every buffer it scans: a buffer carrying MQSCAN-TEST-CRASH kills the
 * process with SIGSEGV, one carrying MQSCAN-TEST-HANG never returns. Any
 * other buffer goes to the real function. This stands for a bug in a
 * parser or in the engine that some message sets off.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <clamav.h>

#define MARK_CRASH "MQSCAN-TEST-CRASH"
#define MARK_HANG "MQSCAN-TEST-HANG"

cl_fmap_t *
cl_fmap_open_memory(const void *start, size_t len)
{
    cl_fmap_t *(*real)(const void *, size_t);

    if (memmem(start, len, MARK_CRASH, sizeof(MARK_CRASH) - 1) != NULL)
        raise(SIGSEGV);
    if (memmem(start, len, MARK_HANG, sizeof(MARK_HANG) - 1) != NULL)
        for (;;)
            sleep(60);
    *(void **)&real = dlsym(RTLD_NEXT, "cl_fmap_open_memory");
    return real(start, len);
}
