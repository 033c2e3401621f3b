/* Internal helpers shared by every module: errors, logging, checked arithmetic, clocks. */
#ifndef HOIST_INTERNAL_H
#define HOIST_INTERNAL_H

#include "hoist.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOIST_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Records status and a formatted message as this thread's last error; returns status so that
 * callers can write `return hoist__err(...)`. */
int hoist__err(int status, const char *fmt, ...) HOIST_PRINTF(2, 3);
/* Prefixes this thread's last error with more context ("file.safetensors: <old message>"). */
int hoist__err_prefix(int status, const char *fmt, ...) HOIST_PRINTF(2, 3);
/* Clears the last error (a public call that succeeds leaves ""). */
void hoist__err_clear(void);

void hoist__log(hoist_log_level level, const char *fmt, ...) HOIST_PRINTF(2, 3);

/* Fails the enclosing function with status and message when cond holds. */
#define RETURN_IF(cond, status, ...)                                                               \
    do {                                                                                           \
        if (cond) return hoist__err((status), __VA_ARGS__);                                        \
    } while (0)

/* Propagates a failing status (message already set by the callee). */
#define RETURN_IF_ERR(expr)                                                                        \
    do {                                                                                           \
        int hoist__rc = (expr);                                                                    \
        if (hoist__rc < 0) return hoist__rc;                                                       \
    } while (0)

/* Checked arithmetic on untrusted sizes: false on overflow. */
static inline bool hoist__mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool hoist__add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline uint64_t hoist__align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
static inline uint64_t hoist__align_down(uint64_t v, uint64_t a) { return v / a * a; }

/* Monotonic seconds. */
double hoist__now(void);

/* ---- host memory (loader/alloc.c) ------------------------------------------------------------
 * Every host allocation of the library goes through these wrappers, never malloc itself, so that
 * tests can fail the k-th allocation and check that each error path gives back what it took (the
 * allocator seam below). They behave as their libc namesakes. Memory from them is released with
 * hoist__free, and hoist__free takes nothing else: what libc allocates (realpath's result, say)
 * goes back to free. */
void *hoist__malloc(size_t n);
void *hoist__calloc(size_t count, size_t size);
/* On failure p is untouched and still owned by the caller. */
void *hoist__realloc(void *p, size_t n);
/* align: a power of two, at least sizeof(void *). */
void *hoist__memalign(size_t align, size_t n);
void hoist__free(void *p);
/* Duplicates a string; NULL on allocation failure (caller reports HOIST_E_NOMEM). */
char *hoist__strdup(const char *s);

/* The allocator seam (tests only, like the I/O hooks of loader/io.h). */
typedef struct hoist__alloc_hooks {
    /* Asked before every allocation with its size; true makes it fail the way an exhausted heap
     * does (NULL, errno ENOMEM). Called from any thread. */
    bool (*fail)(size_t bytes);
} hoist__alloc_hooks;
/* Installs hooks process-wide (copied; NULL restores plain allocation). Only while no load runs. */
void hoist__alloc_set_hooks(const hoist__alloc_hooks *hooks);
/* Bytes held through the wrappers right now, process-wide (usable size of each live block):
 * a load that failed must leave this where it found it. */
int64_t hoist__alloc_live_bytes(void);

/* Reads exactly n bytes at off, retrying short reads and EINTR. Returns n, or fewer at end of
 * file, or -errno. Every read of file data in the library goes through here or a source, so
 * that fault injection has one seam. */
int64_t hoist__pread_full(int fd, void *buf, uint64_t n, uint64_t off);

/* memcpy out of a file mapping (loader/guard.c): false, with nothing else done, when part of src
 * is no longer backed by the file (truncated under the mapping), where memcpy would take SIGBUS
 * (dst is then partly written).
 * Installs a process-wide SIGBUS handler on first use that passes every other SIGBUS on to the
 * handler it replaced. Thread-safe. */
bool hoist__copy_guarded(void *dst, const void *src, size_t n);

/* Calls fn(arg) (a device call that reads a file mapping in [lo, lo+n): registering it, or a
 * copy the driver may do with the CPU) and returns its result. A SIGBUS on this thread inside
 * the range, a page truncated away under the mapping, maps a zero page there and lets fn go on
 * instead of killing the process; *patched counts those pages, and any count means the bytes
 * fn saw are not the file's, so the caller must fail the window. Same handler as above. */
int hoist__call_patched(const void *lo, size_t n, int (*fn)(void *), void *arg,
                        unsigned *patched);

/* Host memory counted against a load's RAM budget. Thread-safe. limit 0 = unlimited. */
typedef struct hoist__budget {
    uint64_t limit;
    _Atomic uint64_t used;
    _Atomic uint64_t peak;
} hoist__budget;

void hoist__budget_init(hoist__budget *b, uint64_t limit);
/* Counts n bytes; HOIST_E_BUDGET (with a message naming what and the limit) if that would pass
 * the limit. */
int hoist__budget_take(hoist__budget *b, uint64_t n, const char *what);
void hoist__budget_give(hoist__budget *b, uint64_t n);

#endif
