/* Copies out of file mappings that survive the file shrinking underneath them.
 *
 * A page of a MAP_SHARED mapping that lies past the end of its file (truncated by another
 * process after the mapping was made) raises SIGBUS when touched, and the default action kills
 * the process. MADV_POPULATE_READ catches most of it beforehand, but a truncation between the
 * populate and the copy still lands. A copy guarded here runs with a handler that jumps back out
 * of it when the faulting address is inside the range being copied, and the caller reports an
 * error. Every other SIGBUS goes to the handler that was installed before ours (or to the
 * default action), so embedders and sanitizers that handle SIGBUS keep working. The handler is
 * installed once per process, on the first guarded copy. */
#include "core/core.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A guard either jumps back out of the copy (ours: memcpy can be abandoned halfway) or patches
 * the hole and lets the faulting code go on (someone else's code, such as a CUDA driver reading
 * a registered mapping, which holds locks we must not jump over). */
typedef struct guard {
    sigjmp_buf env;
    const char *lo, *hi;
    bool patch;
    _Atomic unsigned patched;
} guard;

/* Maps a private zero page over the page of `at`, so the faulting access reads zeros when it
 * is retried. mmap is a plain system call: safe enough inside the handler. */
static bool patch_page(const char *at)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    void *lo = (void *)((uintptr_t)at & ~(page - 1));
    return mmap(lo, page, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED;
}

/* The copy in progress on this thread. Written before each copy, so the thread's slot exists
 * before the handler reads it (a first access could allocate, which a handler must not). */
static _Thread_local guard *volatile active;
static struct sigaction previous;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool installed;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    guard *g = active;
    const char *at = si ? (const char *)si->si_addr : NULL;
    if (g && at >= g->lo && at < g->hi && g->patch && patch_page(at)) {
        atomic_fetch_add(&g->patched, 1);
        return;
    }
    if (g && at >= g->lo && at < g->hi && !g->patch) {
        active = NULL;
        siglongjmp(g->env, 1); /* SA_NODEFER: SIGBUS is not left blocked */
    }
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, si, uc);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    /* The default action, as if we had never been here: a core dump. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGBUS, &dfl, NULL);
    raise(SIGBUS);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    installed = sigaction(SIGBUS, &sa, &previous) == 0;
    if (!installed)
        hoist__log(HOIST_LOG_WARN, "cannot install a SIGBUS handler: copies out of file mappings "
                                   "are unguarded");
}

bool hoist__copy_guarded(void *dst, const void *src, size_t n)
{
    pthread_once(&once, install);
    if (!installed) {
        memcpy(dst, src, n);
        return true;
    }
    guard g;
    g.lo = src;
    g.hi = (const char *)src + n;
    g.patch = false;
    if (sigsetjmp(g.env, 0)) return false; /* the handler cleared `active` */
    active = &g;
    memcpy(dst, src, n);
    active = NULL;
    return true;
}

int hoist__call_patched(const void *lo, size_t n, int (*fn)(void *), void *arg,
                        unsigned *patched)
{
    pthread_once(&once, install);
    *patched = 0;
    if (!installed) return fn(arg);
    guard g;
    g.lo = lo;
    g.hi = (const char *)lo + n;
    g.patch = true;
    atomic_init(&g.patched, 0);
    active = &g;
    int rc = fn(arg);
    active = NULL;
    *patched = atomic_load(&g.patched);
    return rc;
}
