/* Only in device builds (HOIST_STATIC_DEPS), where libhoist.so carries the dependencies' PIE
 * archives: their references to glibc's stdin, stdout and stderr are renamed at build time to
 * these pointers (see CMakeLists.txt), which a shared object can reach PC-relatively. They hold
 * the real streams, so the archived code behaves as it was written. */
#include <stdio.h>

#define HOIST_HIDDEN __attribute__((visibility("hidden")))

HOIST_HIDDEN FILE *hoist__stdin;
HOIST_HIDDEN FILE *hoist__stdout;
HOIST_HIDDEN FILE *hoist__stderr;

/* Before any code of the library can run: constructors run when the library is loaded. */
__attribute__((constructor)) static void hoist__stdio_refs_init(void)
{
    hoist__stdin = stdin;
    hoist__stdout = stdout;
    hoist__stderr = stderr;
}
