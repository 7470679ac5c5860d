#include <config.h>
/* being written */
