/* The I/O seam: every open, pread and io_uring setup call of the stream and uring sources (and
 * hoist__pread_full) goes through these wrappers, so that tests can inject the faults of
 * RELIABILITY.md cases 27, 29 and 31 without a special filesystem or kernel: O_DIRECT refused,
 * io_uring disabled, short reads, EINTR. Internal, not public API. */
#ifndef HOIST_IO_H
#define HOIST_IO_H

#include "formats/table.h"

#include <liburing.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Every member may be NULL: the real call is made. Each hook has the calling convention of the
 * call it replaces (open/pread: -1 and errno; liburing: -errno). */
typedef struct hoist__io_hooks {
    int (*open)(const char *path, int flags);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    int (*uring_init)(unsigned entries, struct io_uring *ring, unsigned flags);
    int (*uring_register_buffers)(struct io_uring *ring, const struct iovec *iovecs,
                                  unsigned nr);
    /* Sees the result of every io_uring read completion (bytes or -errno) before the source
     * does, and returns the result the source acts on. It stands for what the kernel could
     * have answered: it may only shorten a count or replace it with an error (-EINVAL for an
     * O_DIRECT read a filesystem refuses, -EINTR, -EAGAIN), never claim bytes that were not
     * read. `direct` tells whether the read went through an O_DIRECT descriptor. */
    int (*uring_result)(int direct, uint64_t off, unsigned len, int res);
} hoist__io_hooks;

/* Installs hooks process-wide (copied; NULL restores every real call). Only while no load runs:
 * loads read the table without a lock. */
void hoist__io_set_hooks(const hoist__io_hooks *hooks);

/* open(2) with flags (no O_CREAT: no mode). */
int hoist__io_open(const char *path, int flags);
ssize_t hoist__io_pread(int fd, void *buf, size_t n, off_t off);
int hoist__io_uring_init(unsigned entries, struct io_uring *ring, unsigned flags);
int hoist__io_uring_register_buffers(struct io_uring *ring, const struct iovec *iovecs,
                                     unsigned nr);
int hoist__io_uring_result(int direct, uint64_t off, unsigned len, int res);

/* ---- helpers of the stream and uring sources, built on the wrappers above ---------------- */

/* Opens path with flags through the seam and checks that it still has the size the table
 * recorded. On success *fd is open. On failure *fd is -1, *os_errno holds the errno of a failed
 * open (0 otherwise), and the status is HOIST_E_OPEN, HOIST_E_IO or HOIST_E_FILE_CHANGED with a
 * message naming the file. */
int hoist__io_open_checked(const char *path, uint64_t size, int flags, int *fd, int *os_errno);
/* Reads bytes [lo, hi) of fd into buf through the seam (short reads and EINTR retried), then
 * drops them from the page cache. HOIST_E_IO (strerror, file, offset) on an error,
 * HOIST_E_FILE_CHANGED when the file ends before hi. */
int hoist__io_read_dropping(int fd, const char *path, void *buf, uint64_t lo, uint64_t hi);
/* Fills the options a path leaves to its defaults (0): `threads` workers and `window`-byte
 * windows, scaled down for small models so that they take no more staging than they have
 * windows to read. Options the caller set are kept. */
void hoist__io_apply_defaults(hoist_load_options *o, const hoist__table *t, unsigned threads,
                              uint64_t window);
/* Asks the kernel to drop the page-cache pages of [lo, hi), widened to whole 4 KiB pages. */
void hoist__io_drop_cache(int fd, uint64_t lo, uint64_t hi);

#endif
