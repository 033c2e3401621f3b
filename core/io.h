/* The I/O seam: every open, pread, io_uring setup call and page-cache residency query of the
 * stream and uring sources (and hoist__pread_full) goes through these wrappers, so that tests
 * can inject the faults of docs/RELIABILITY.md cases 27, 29, 31 and 39 without a special
 * filesystem or kernel: O_DIRECT refused, io_uring disabled, short reads, EINTR, a residency
 * probe refused. Internal, not public API. */
#ifndef HOIST_CORE_IO_H
#define HOIST_CORE_IO_H

#include "core/core.h"

#include <liburing.h>
#include <stdint.h>
#include <sys/stat.h>
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
    /* Told when the mmap source has made bytes [lo, hi) of path's mapping ready (populated or
     * registered) and before they are copied: where a test truncates or replaces the file, at
     * the moment another process could. */
    void (*mapped_window)(const char *path, uint64_t lo, uint64_t hi);
    /* Answers the page-cache residency probes in place of mincore(2) (0, or -1 and errno; vec
     * filled as the kernel fills it): where a test makes the probe fail or see other pages. */
    int (*mincore)(void *addr, size_t len, unsigned char *vec);
    /* Answers cachestat(2) in its place: *cached = pages of [off, off + len) of fd in the page
     * cache (len 0: to the end of the file); 0, or -1 and errno (ENOSYS before Linux 6.5,
     * EPERM for a file the kernel will not tell this process about). */
    int (*cachestat)(int fd, uint64_t off, uint64_t len, uint64_t *cached);
} hoist__io_hooks;

/* Installs hooks process-wide (copied; NULL restores every real call). Only while no load runs:
 * loads read the table without a lock. */
void hoist__io_set_hooks(const hoist__io_hooks *hooks);

/* open(2) with flags (no O_CREAT: no mode), never blocking on a FIFO: O_NONBLOCK and O_NOCTTY
 * are added. */
int hoist__io_open(const char *path, int flags);
ssize_t hoist__io_pread(int fd, void *buf, size_t n, off_t off);
int hoist__io_uring_init(unsigned entries, struct io_uring *ring, unsigned flags);
int hoist__io_uring_register_buffers(struct io_uring *ring, const struct iovec *iovecs,
                                     unsigned nr);
int hoist__io_uring_result(int direct, uint64_t off, unsigned len, int res);
void hoist__io_mapped_window(const char *path, uint64_t lo, uint64_t hi);
int hoist__io_mincore(void *addr, size_t len, unsigned char *vec);
int hoist__io_cachestat(int fd, uint64_t off, uint64_t len, uint64_t *cached);

/* ---- helpers of the sources, built on the wrappers above ------------------------------------ */

/* fstat of fd, which must be a regular file: HOIST_E_NOT_REGULAR naming what path is instead (a
 * directory, a FIFO, a device...), or HOIST_E_IO when fstat fails. */
int hoist__io_fstat_regular(int fd, const char *path, struct stat *st);

/* The folder holding path ("." when path names no folder) opened with flags (O_DIRECTORY among
 * them) into *dirfd, and *leaf pointing at path's last component inside it: what an openat
 * relative to that folder needs, so that files found beside path are found in the very folder
 * path was read from. HOIST_E_NOMEM or HOIST_E_OPEN naming path; *dirfd is then -1. */
int hoist__io_open_parent(const char *path, int flags, int *dirfd, const char **leaf);

/* All of the regular file open as fd, for small files read whole (indexes, configurations,
 * manifests): *out is NUL-terminated, *len excludes the NUL, and the caller frees *out with
 * hoist__free. A file over `max` bytes fails with status `too_big`, its message naming `what`
 * ("a manifest"); otherwise HOIST_E_NOT_REGULAR, HOIST_E_NOMEM or HOIST_E_IO. fd stays open. */
int hoist__io_read_whole(int fd, const char *path, uint64_t max, int too_big, const char *what,
                         char **out, size_t *len);

/* Whether fd's filesystem keeps files in memory (tmpfs, ramfs): its pages are the file, so there
 * is no storage to queue reads on and no page cache to drop. */
int hoist__io_memory_backed(int fd);

/* Opens path with flags through the seam and checks that it is still a regular file of the
 * size the table recorded. On success *fd is open. On failure *fd is -1, *os_errno holds the
 * errno of a failed open (0 otherwise), and the status is HOIST_E_OPEN, HOIST_E_IO or
 * HOIST_E_FILE_CHANGED with a message naming the file. */
int hoist__io_open_checked(const char *path, uint64_t size, int flags, int *fd, int *os_errno);
/* The same, and the file must also be the one a parser opened: st_dev dev and st_ino ino, as
 * recorded then (ino 0: nothing recorded, parsed from memory; only the size is checked). path is
 * looked up again here, symbolic links followed (docs/PATHS.md), so what it names may have been
 * swapped since: the descriptor's identity, not the name, decides, and another file is
 * HOIST_E_FILE_CHANGED before a byte of it is read. */
int hoist__io_open_same(const char *path, uint64_t size, uint64_t dev, uint64_t ino, int flags,
                        int *fd, int *os_errno);
/* Reads bytes [lo, hi) of fd into buf through the seam (short reads and EINTR retried).
 * HOIST_E_IO (strerror, file, offset) on an error, HOIST_E_FILE_CHANGED when the file ends
 * before hi. */
int hoist__io_read_full(int fd, const char *path, void *buf, uint64_t lo, uint64_t hi);
/* The O_DIRECT unit (offsets, lengths and memory) of fd's file: what statx(STATX_DIOALIGN)
 * reports, 4096 where the kernel does not say, 0 when it says the file has no O_DIRECT support. */
#define HOIST_IO_DEFAULT_DIO_ALIGN 4096u
uint32_t hoist__io_dio_align(int fd);
/* Asks the kernel to drop the page-cache pages of [lo, hi), widened to HOIST_IO_DROP_ALIGN (the
 * largest page-cache folio) so that no folio straddling a window edge is left behind. */
#define HOIST_IO_DROP_ALIGN (2u << 20)
void hoist__io_drop_cache(int fd, uint64_t lo, uint64_t hi);

#endif
