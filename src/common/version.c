#include "wharf/common.h"

const char *wh_version(void)
{
    return WH_VERSION;
}
