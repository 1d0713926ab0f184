#include <string.h>

#include "wharf/common.h"

const char *wh_strerror(int err)
{
    if (err == 0) return "success";
    if (err > 0) err = -err;
    /* strerror() may return a shared static buffer for unknown codes; every
     * code we produce is a known errno, whose text is a constant string. */
    return strerror(-err);
}
