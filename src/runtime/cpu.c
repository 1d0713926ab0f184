/* CPU discovery and thread pinning for the runtime's workers.
 *
 * "Online CPUs" means the CPUs this process may run on (sched_getaffinity),
 * not sysconf(_SC_NPROCESSORS_ONLN): under taskset or a container cpuset the
 * two differ, and pinning a worker to a CPU outside the allowed set fails
 * with EINVAL (sched_setaffinity(2)).
 */
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "runtime/runtime_internal.h"

unsigned wh__cpu_count(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int wh__cpu_nth(unsigned idx)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -errno;
    int n = CPU_COUNT(&set);
    if (n <= 0) return -ENODEV;
    /* Thread idx goes to the (idx mod n)-th allowed CPU, so more threads than
     * CPUs wrap around instead of failing. */
    unsigned want = idx % (unsigned)n, seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (seen++ == want) return cpu;
    }
    return -ENODEV;
}

int wh__cpu_pin_self(int cpu)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    return -rc;
}
