/* The io_uring read engine: one ring keeps a queue of reads full from a cursor the caller feeds it,
 * submits and waits in one call, reaps completions in batches, resubmits the rest of a short read,
 * retries EINTR and EAGAIN, and moves a file whose O_DIRECT reads are refused (EINVAL) to its
 * buffered descriptor. The same reads can run without a ring, one at a time through pread
 * (hoist__uring_pread), for where io_uring is unavailable. Both the uring source and the read
 * ceiling drive it; every ring setup call and every completion goes through the I/O seam
 * (core/io.h), so tests inject faults here as anywhere else. */
#ifndef HOIST_CORE_URING_H
#define HOIST_CORE_URING_H

#include "core/io.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* A file read through both of its descriptors: O_DIRECT while the filesystem takes it, buffered
 * once it refuses. Shared by every engine of a load (the flag is atomic). */
typedef struct hoist__uring_file {
    const char *path;
    int buffered_fd;
    int direct_fd;      /* -1: O_DIRECT refused at open */
    uint32_t align;     /* the O_DIRECT unit of offsets, lengths and memory (divides 4096) */
    _Atomic int direct; /* reads still go through direct_fd */
} hoist__uring_file;

/* Opens path (which must still be the regular file of `size` bytes that was parsed, with st_dev dev
 * and st_ino ino where ino is not 0: hoist__io_open_same) buffered and,
 * where its filesystem takes it, O_DIRECT. A refused O_DIRECT is not an error: f->direct stays 0
 * and why (whylen bytes) says what refused it. Fails with HOIST_E_OPEN, HOIST_E_IO or
 * HOIST_E_FILE_CHANGED naming the file, with both descriptors closed. */
int hoist__uring_file_open(hoist__uring_file *f, const char *path, uint64_t size, uint64_t dev,
                           uint64_t ino, char *why, size_t whylen);
/* The same for a file whose buffered descriptor f->buffered_fd (and f->path) the caller opened
 * and keeps: opens only the O_DIRECT one, where the filesystem takes it (f->direct 1), else
 * leaves f->direct_fd -1 and says why. HOIST_E_OPEN, HOIST_E_IO or HOIST_E_FILE_CHANGED (the
 * name now leads to another file) with f->direct_fd -1; the buffered descriptor is never closed
 * here. */
int hoist__uring_file_direct(hoist__uring_file *f, uint64_t size, uint64_t dev, uint64_t ino,
                             char *why, size_t whylen);
/* Closes what open opened; a file that was never opened must have both descriptors at -1. */
void hoist__uring_file_close(hoist__uring_file *f);

/* One read: bytes [off, end) of files[file] into dst, of which those below `need` must arrive
 * (end may run past need to keep an O_DIRECT length whole; the end of the file may cut it
 * there). The engine advances off and dst as bytes arrive. */
typedef struct hoist__uring_read {
    uint32_t file;
    int buf;       /* the registered buffer holding dst (index into init's bufs), -1 if none */
    int direct;    /* through the O_DIRECT descriptor; cleared when the file refuses it */
    unsigned len;  /* the length of the read in flight */
    uint64_t off, end, need;
    uint64_t start; /* off when the cursor handed the read out */
    uint8_t *dst;
} hoist__uring_read;

/* The longest single read the engine takes (it keeps results in an int). */
#define HOIST_URING_MAX_READ (1ull << 30)
#define HOIST_URING_MAX_DEPTH 4096u
#define HOIST_URING_MAX_BUFS 1024u /* UIO_MAXIOV: what one registration takes */

/* Where reads come from and where their outcomes go. Called on the engine's thread. */
typedef struct hoist__uring_feed {
    /* Required: fills *r with the next read (every field but len and start) for queue slot
     * `slot` (< depth; it stays the read's until it finishes, so a caller may give each slot a
     * buffer). false when there is none; the engine does not ask again. */
    bool (*next)(void *ctx, unsigned slot, hoist__uring_read *r);
    /* Optional: r has all of its bytes. A negative status stops the engine, which returns it. */
    int (*done)(void *ctx, const hoist__uring_read *r);
    /* Optional: told once per file when its O_DIRECT reads are refused (EINVAL); the engine has
     * switched the file to buffered reads and retries the read there. From any engine's thread:
     * it must be thread-safe. */
    void (*refused)(void *ctx, const hoist__uring_file *f, const char *why);
    void *ctx;
} hoist__uring_feed;

/* One ring with up to `depth` reads in flight. Owned by one thread at a time. */
typedef struct hoist__uring {
    struct io_uring ring;
    bool live;        /* the ring exists and takes reads */
    bool fixed_bufs;  /* bufs registered: reads into them skip per-read page pinning */
    bool fixed_files; /* every descriptor registered: reads skip the file table lookup */
    int init_errno;   /* io_uring_queue_init's errno when the ring could not be had */
    int bufs_errno;   /* the buffer registration's errno when it was refused */
    hoist__uring_file *files;
    uint32_t nfiles;
    unsigned depth, nbufs;
    hoist__uring_read *reads; /* depth queue slots */
    unsigned *free_slots;     /* a stack of the unused ones */
    struct iovec *bufs;
} hoist__uring;

/* Sets up u for reads of files[0..nfiles) into bufs (may be NULL), registering both where the
 * kernel lets it. A ring that cannot be had (kernel.io_uring_disabled, seccomp, ENOSYS, the
 * memlock limit) is not an error: u->live is false, u->init_errno says why, and the caller
 * reads with hoist__uring_pread. A refused buffer registration sets bufs_errno and costs only
 * per-read pinning. HOIST_E_NOMEM, or HOIST_E_INTERNAL for a depth or count out of range; u is
 * then empty. files must outlive u. */
int hoist__uring_init(hoist__uring *u, unsigned depth, hoist__uring_file *files, uint32_t nfiles,
                      const struct iovec *bufs, unsigned nbufs);
/* Releases the ring and the slots; a zeroed or released u is a no-op. */
void hoist__uring_exit(hoist__uring *u);

/* Takes reads from feed until it runs dry, keeping up to depth in flight, and returns once every
 * read has finished: HOIST_OK, the first failure (a read's error names its file and offset; a
 * file that ends before `need` is HOIST_E_FILE_CHANGED), or what done returned. After a failure
 * it takes no more reads but waits for those in flight, since the kernel may still be writing
 * into their buffers. A ring that fails to wait is torn down (u->live false). */
int hoist__uring_run(hoist__uring *u, const hoist__uring_feed *feed);
/* The same reads one at a time through pread (slot 0), for where no ring is to be had or a
 * ring does not pay (a file in memory). */
int hoist__uring_pread(hoist__uring_file *files, uint32_t nfiles, const hoist__uring_feed *feed);

#endif
