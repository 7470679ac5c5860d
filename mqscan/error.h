/* error - the GError domain shared by every mqscan module.
 *
 * A returned failure is always classified, because the daemon turns it into a
 * decision about one message:
 *   MQ_ERROR_TEMP     try again later (ENOSPC, EAGAIN, a lock held elsewhere)
 *   MQ_ERROR_CORRUPT  the input is malformed; retrying will not help (hold it)
 *   MQ_ERROR_LIMIT    the input exceeds a configured limit (hold it)
 *   MQ_ERROR_ENGINE   the scanner could not scan (defer, never deliver)
 *   MQ_ERROR_CONFIG   configuration or start-up environment is wrong
 *   MQ_ERROR_IO       any other system call failure
 */
#ifndef MQSCAN_ERROR_H
#define MQSCAN_ERROR_H

#include <glib.h>

#define MQ_ERROR (mq_error_quark())
GQuark mq_error_quark(void);

enum mq_error_code {
    MQ_ERROR_TEMP,
    MQ_ERROR_CORRUPT,
    MQ_ERROR_LIMIT,
    MQ_ERROR_ENGINE,
    MQ_ERROR_CONFIG,
    MQ_ERROR_IO,
};

/* Maps an errno value from a failed system call to an error code:
 * ENOSPC, EDQUOT, EAGAIN, EINTR, ENOMEM and EMFILE are temporary. */
enum mq_error_code mq_error_from_errno(int errnum);

#endif
