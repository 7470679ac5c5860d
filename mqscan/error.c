#include <config.h>

#include <errno.h>

#include "mqscan/error.h"

G_DEFINE_QUARK(mq-error-quark, mq_error)

enum mq_error_code
mq_error_from_errno(int errnum)
{
    switch (errnum) {
    case ENOSPC:
    case EDQUOT:
    case EAGAIN:
    case EINTR:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
        return MQ_ERROR_TEMP;
    default:
        return MQ_ERROR_IO;
    }
}
