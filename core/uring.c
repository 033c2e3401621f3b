/* The io_uring read engine (see uring.h).
 *
 * The ring has at least `depth` submission entries and twice as many completion entries, and no
 * more than `depth` reads are ever pending (queued or in flight), so neither a submission entry
 * nor a completion can be lacking: the completion queue cannot overflow by construction. Should a
 * kernel still report an overflow (IORING_SQ_CQ_OVERFLOW), what the ring holds is reaped and the
 * kernel asked to flush the rest before anything more is submitted, so that no completion is
 * lost and no read waits forever. */
#include "core/uring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Completions taken from the ring per peek. */
#define REAP_BATCH 32u
/* Submissions refused for lack of kernel resources (EAGAIN, EBUSY) in a row before the engine
 * gives up. */
#define MAX_STALLS 1000u
/* Above this many files, descriptors are looked up per read rather than registered (the kernel
 * caps fixed files at RLIMIT_NOFILE). */
#define MAX_FIXED_FILES 4096u

enum { READ_DONE = 0, READ_AGAIN = 1 };

/* ---- files -------------------------------------------------------------------------------- */

static int same_file(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

void hoist__uring_file_close(hoist__uring_file *f)
{
    if (f->buffered_fd >= 0) close(f->buffered_fd);
    if (f->direct_fd >= 0) close(f->direct_fd);
    f->buffered_fd = f->direct_fd = -1;
    atomic_store(&f->direct, 0);
}

int hoist__uring_file_direct(hoist__uring_file *f, uint64_t size, uint64_t dev, uint64_t ino,
                             char *why, size_t whylen)
{
    f->direct_fd = -1;
    atomic_store(&f->direct, 0);
    f->align = hoist__io_dio_align(f->buffered_fd);
    if (!f->align) {
        snprintf(why, whylen, "the filesystem reports no O_DIRECT support");
        return HOIST_OK;
    }
    /* reads are cut at multiples of 4096, so a larger or odd unit would leave some unaligned */
    if (f->align > HOIST_IO_DEFAULT_DIO_ALIGN || HOIST_IO_DEFAULT_DIO_ALIGN % f->align) {
        snprintf(why, whylen, "its %u-byte O_DIRECT unit does not divide 4096", f->align);
        return HOIST_OK;
    }
    int os_errno;
    int rc = hoist__io_open_same(f->path, size, dev, ino, O_RDONLY | O_CLOEXEC | O_DIRECT,
                                 &f->direct_fd, &os_errno);
    if (rc < 0 && os_errno) {
        snprintf(why, whylen, "open: %s", strerror(os_errno));
        return HOIST_OK;
    }
    if (rc == HOIST_OK && !same_file(f->direct_fd, f->buffered_fd))
        rc = hoist__err(HOIST_E_FILE_CHANGED, "%s: replaced while being opened", f->path);
    if (rc < 0) {
        if (f->direct_fd >= 0) close(f->direct_fd);
        f->direct_fd = -1;
        return rc;
    }
    atomic_store(&f->direct, 1);
    return HOIST_OK;
}

int hoist__uring_file_open(hoist__uring_file *f, const char *path, uint64_t size, uint64_t dev,
                           uint64_t ino, char *why, size_t whylen)
{
    f->path = path;
    f->buffered_fd = f->direct_fd = -1;
    atomic_store(&f->direct, 0);
    int os_errno;
    RETURN_IF_ERR(hoist__io_open_same(path, size, dev, ino, O_RDONLY | O_CLOEXEC, &f->buffered_fd,
                                      &os_errno));
    int rc = hoist__uring_file_direct(f, size, dev, ino, why, whylen);
    if (rc < 0) hoist__uring_file_close(f);
    return rc;
}

/* ---- one read's outcome, shared by the ring and pread ------------------------------------- */

/* The file refuses O_DIRECT: it is read buffered from now on, by every engine; whichever sees it
 * first tells the caller. */
static void refuse(hoist__uring_file *f, const hoist__uring_read *r, const hoist__uring_feed *fd)
{
    if (!atomic_exchange(&f->direct, 0) || !fd->refused) return;
    char why[96];
    snprintf(why, sizeof why, "EINVAL reading byte %llu", (unsigned long long)r->off);
    fd->refused(fd->ctx, f, why);
}

/* What a result (bytes or -errno) means for r: READ_DONE, READ_AGAIN (the rest of it, or the
 * same again), or a failure status with its message. */
static int complete(hoist__uring_file *f, hoist__uring_read *r, int res,
                    const hoist__uring_feed *feed)
{
    if (res == -EINTR || res == -EAGAIN) return READ_AGAIN;
    if (res == -EINVAL && r->direct) {
        refuse(f, r, feed);
        r->direct = 0;
        return READ_AGAIN;
    }
    RETURN_IF(res < 0, HOIST_E_IO, "%s: read of %u bytes at byte %llu: %s", f->path, r->len,
              (unsigned long long)r->off, strerror(-res));
    if (res == 0) { /* end of file: fine inside the padding of an O_DIRECT length */
        RETURN_IF(r->off < r->need, HOIST_E_FILE_CHANGED,
                  "%s: file ends at byte %llu, before byte %llu of the data being read "
                  "(truncated since it was opened?)",
                  f->path, (unsigned long long)r->off, (unsigned long long)r->need);
        return READ_DONE;
    }
    r->off += (unsigned)res;
    r->dst += (unsigned)res;
    if (r->off >= r->need) return READ_DONE;
    /* O_DIRECT cannot resume at an unaligned offset; such short reads do not happen on real
     * kernels short of end of file, so finishing buffered costs nothing in practice */
    if (r->direct && r->off % f->align) r->direct = 0;
    return READ_AGAIN;
}

/* Takes a read from the cursor, which must fit the engine's bounds (a bug otherwise, not bad
 * input). */
static int accept_read(uint32_t nfiles, hoist__uring_read *r)
{
    RETURN_IF(r->file >= nfiles || r->off >= r->need || r->need > r->end ||
                  r->end - r->off > HOIST_URING_MAX_READ || !r->dst,
              HOIST_E_INTERNAL, "io_uring: bad read of file %u, bytes %llu..%llu (need %llu)",
              r->file, (unsigned long long)r->off, (unsigned long long)r->end,
              (unsigned long long)r->need);
    r->start = r->off;
    return HOIST_OK;
}

/* ---- the ring ----------------------------------------------------------------------------- */

static void ring_lost(hoist__uring *u)
{
    if (u->live) io_uring_queue_exit(&u->ring);
    u->live = u->fixed_bufs = u->fixed_files = false;
}

void hoist__uring_exit(hoist__uring *u)
{
    ring_lost(u);
    hoist__free(u->reads);
    hoist__free(u->free_slots);
    hoist__free(u->bufs);
    memset(u, 0, sizeof *u);
}

/* Slot 2i is file i's O_DIRECT descriptor (-1, a sparse slot, when refused), 2i+1 its buffered
 * one. A refusal only costs a lookup per read: not worth a log. */
static int register_files(hoist__uring *u)
{
    if (!u->nfiles || u->nfiles > MAX_FIXED_FILES) return HOIST_OK;
    int *fds = hoist__malloc(2 * (size_t)u->nfiles * sizeof *fds);
    RETURN_IF(!fds, HOIST_E_NOMEM, "out of memory for %u file descriptors", 2 * u->nfiles);
    for (uint32_t i = 0; i < u->nfiles; i++) {
        fds[2 * i] = u->files[i].direct_fd;
        fds[2 * i + 1] = u->files[i].buffered_fd;
    }
    u->fixed_files = io_uring_register_files(&u->ring, fds, 2 * u->nfiles) == 0;
    hoist__free(fds);
    return HOIST_OK;
}

int hoist__uring_init(hoist__uring *u, unsigned depth, hoist__uring_file *files, uint32_t nfiles,
                      const struct iovec *bufs, unsigned nbufs)
{
    memset(u, 0, sizeof *u);
    RETURN_IF(!depth || depth > HOIST_URING_MAX_DEPTH || nbufs > HOIST_URING_MAX_BUFS ||
                  (nbufs && !bufs),
              HOIST_E_INTERNAL, "io_uring: %u reads in flight and %u buffers (at most %u and %u)",
              depth, nbufs, HOIST_URING_MAX_DEPTH, HOIST_URING_MAX_BUFS);
    u->files = files;
    u->nfiles = nfiles;
    u->depth = depth;
    u->nbufs = nbufs;
    u->reads = hoist__calloc(depth, sizeof *u->reads);
    u->free_slots = hoist__calloc(depth, sizeof *u->free_slots);
    u->bufs = nbufs ? hoist__calloc(nbufs, sizeof *u->bufs) : NULL;
    if (!u->reads || !u->free_slots || (nbufs && !u->bufs)) {
        hoist__uring_exit(u);
        return hoist__err(HOIST_E_NOMEM, "out of memory for %u reads in flight", depth);
    }
    if (nbufs) memcpy(u->bufs, bufs, nbufs * sizeof *bufs);
    int rc = hoist__io_uring_init(depth, &u->ring, 0);
    if (rc < 0) {
        u->init_errno = -rc;
        return HOIST_OK;
    }
    u->live = true;
    rc = register_files(u);
    if (rc < 0) {
        hoist__uring_exit(u);
        return rc;
    }
    if (!nbufs) return HOIST_OK;
    rc = hoist__io_uring_register_buffers(&u->ring, u->bufs, nbufs);
    u->fixed_bufs = rc == 0;
    u->bufs_errno = rc < 0 ? -rc : 0;
    return HOIST_OK;
}

static bool in_fixed_buf(const hoist__uring *u, const hoist__uring_read *r)
{
    if (!u->fixed_bufs || r->buf < 0 || (unsigned)r->buf >= u->nbufs) return false;
    const uint8_t *b = u->bufs[r->buf].iov_base;
    return r->dst >= b && r->dst + r->len <= b + u->bufs[r->buf].iov_len;
}

static int queue(hoist__uring *u, hoist__uring_read *r)
{
    hoist__uring_file *f = &u->files[r->file];
    if (r->direct && !atomic_load(&f->direct)) r->direct = 0;
    r->len = (unsigned)(r->end - r->off);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    RETURN_IF(!sqe, HOIST_E_INTERNAL, "io_uring: no free submission entry (depth %u)", u->depth);
    int fd = u->fixed_files ? (int)(2 * r->file + !r->direct)
             : r->direct    ? f->direct_fd
                            : f->buffered_fd;
    if (in_fixed_buf(u, r))
        io_uring_prep_read_fixed(sqe, fd, r->dst, r->len, r->off, r->buf);
    else
        io_uring_prep_read(sqe, fd, r->dst, r->len, r->off);
    if (u->fixed_files) sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data(sqe, r);
    return HOIST_OK;
}

/* One run of an engine: the slots not in use are a stack; the first failure wins. */
typedef struct run {
    hoist__uring *u;
    const hoist__uring_feed *feed;
    unsigned nfree;
    bool dry; /* the cursor has run out */
    int err;
} run;

static unsigned pending(const run *st) { return st->u->depth - st->nfree; }

static unsigned in_flight(const run *st) { return pending(st) - io_uring_sq_ready(&st->u->ring); }

static void fail(run *st, int rc)
{
    if (!st->err) st->err = rc;
}

static void finish(run *st, const hoist__uring_read *r)
{
    st->u->free_slots[st->nfree++] = (unsigned)(r - st->u->reads);
}

/* Queues reads from the cursor while a slot is free. */
static void fill(run *st)
{
    hoist__uring *u = st->u;
    while (!st->err && !st->dry && st->nfree) {
        unsigned slot = u->free_slots[st->nfree - 1];
        hoist__uring_read *r = &u->reads[slot];
        if (!st->feed->next(st->feed->ctx, slot, r)) {
            st->dry = true;
            break;
        }
        int rc = accept_read(u->nfiles, r);
        if (rc == HOIST_OK) rc = queue(u, r);
        if (rc < 0)
            fail(st, rc);
        else
            st->nfree--;
    }
}

/* One completion: the rest of a short read goes back in the queue, a finished read frees its
 * slot. After a failure reads are only collected. */
static void reaped(run *st, const struct io_uring_cqe *cqe)
{
    hoist__uring_read *r = io_uring_cqe_get_data(cqe);
    int res = hoist__io_uring_result(r->direct, r->off, r->len, cqe->res);
    int rc = st->err ? READ_DONE : complete(&st->u->files[r->file], r, res, st->feed);
    if (rc == READ_AGAIN) {
        rc = queue(st->u, r);
        if (rc == HOIST_OK) return;
    } else if (rc == READ_DONE && !st->err && st->feed->done) {
        rc = st->feed->done(st->feed->ctx, r);
    }
    finish(st, r);
    if (rc < 0) fail(st, rc);
}

/* Takes every completion the ring holds, in batches; then any the kernel kept aside for lack of
 * room, which it moves into the ring when asked. Returns how many. */
static unsigned reap(run *st)
{
    struct io_uring *ring = &st->u->ring;
    struct io_uring_cqe *cqes[REAP_BATCH];
    unsigned total = 0;
    for (int flushed = 0;;) {
        unsigned n = io_uring_peek_batch_cqe(ring, cqes, REAP_BATCH);
        for (unsigned i = 0; i < n; i++) reaped(st, cqes[i]);
        io_uring_cq_advance(ring, n);
        total += n;
        if (n == REAP_BATCH) continue;
        if (!io_uring_cq_has_overflow(ring) || flushed++ > 2) return total;
        (void)io_uring_get_events(ring);
    }
}

/* Submits what is queued and waits: for every pending read once the cursor is dry or a read
 * failed (they must all finish anyway, and one wait is one system call), else for the first, so
 * that its slot is refilled at once. EAGAIN and EBUSY (the kernel short of resources, or holding
 * completions back) are retried after reaping, a bounded number of times without progress. */
static int submit_wait(run *st, unsigned *stalls)
{
    struct io_uring *ring = &st->u->ring;
    if (io_uring_cq_has_overflow(ring)) { /* reap first: submitting could only add to it */
        RETURN_IF(++*stalls > MAX_STALLS, HOIST_E_IO, "io_uring: completions kept overflowing");
        return HOIST_OK;
    }
    unsigned want = st->dry || st->err ? pending(st) : 1;
    unsigned queued = io_uring_sq_ready(ring);
    int r = io_uring_submit_and_wait(ring, want);
    if (r > 0 || (r == 0 && !queued) || r == -EINTR || r == -ETIME) return HOIST_OK;
    if (r < 0 && r != -EAGAIN && r != -EBUSY)
        return hoist__err(HOIST_E_IO, "io_uring_submit_and_wait: %s", strerror(-r));
    RETURN_IF(++*stalls > MAX_STALLS, HOIST_E_IO, "io_uring_submit_and_wait: %s, %u times",
              r < 0 ? strerror(-r) : "nothing submitted", MAX_STALLS);
    struct io_uring_cqe *cqe;
    if (in_flight(st) && !io_uring_cq_ready(ring)) (void)io_uring_wait_cqe(ring, &cqe);
    return HOIST_OK;
}

/* After the ring refused a submission: collects the reads in flight without submitting more.
 * A failure to wait leaves the ring unusable. */
static int drain(run *st)
{
    for (;;) {
        reap(st);
        unsigned n = in_flight(st);
        if (!n) return HOIST_OK;
        struct io_uring_cqe *cqe;
        int r = io_uring_wait_cqe_nr(&st->u->ring, &cqe, n);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -ETIME)
            return hoist__err(HOIST_E_IO, "io_uring: waiting for %u reads: %s", n, strerror(-r));
    }
}

int hoist__uring_run(hoist__uring *u, const hoist__uring_feed *feed)
{
    RETURN_IF(!u->live, HOIST_E_INTERNAL, "io_uring: the engine has no ring");
    run st = {.u = u, .feed = feed, .nfree = u->depth};
    for (unsigned i = 0; i < u->depth; i++) u->free_slots[i] = i;
    unsigned stalls = 0;
    int rc = HOIST_OK;
    for (;;) {
        fill(&st);
        if (!pending(&st)) break;
        rc = submit_wait(&st, &stalls);
        if (rc < 0) break;
        if (reap(&st)) stalls = 0;
    }
    if (rc < 0) {
        fail(&st, rc);
        if (drain(&st) < 0) ring_lost(u); /* the kernel cancels what is left as it goes */
    }
    /* entries the kernel never took would be submitted with the next run's reads */
    if (u->live && io_uring_sq_ready(&u->ring)) ring_lost(u);
    return st.err;
}

/* ---- without a ring ----------------------------------------------------------------------- */

static int pread_once(hoist__uring_file *f, hoist__uring_read *r, const hoist__uring_feed *feed)
{
    if (r->direct && !atomic_load(&f->direct)) r->direct = 0;
    r->len = (unsigned)(r->end - r->off);
    ssize_t n = hoist__io_pread(r->direct ? f->direct_fd : f->buffered_fd, r->dst, r->len,
                                (off_t)r->off);
    return complete(f, r, n < 0 ? -errno : (int)n, feed);
}

int hoist__uring_pread(hoist__uring_file *files, uint32_t nfiles, const hoist__uring_feed *feed)
{
    hoist__uring_read r;
    while (feed->next(feed->ctx, 0, &r)) {
        RETURN_IF_ERR(accept_read(nfiles, &r));
        int rc;
        do rc = pread_once(&files[r.file], &r, feed);
        while (rc == READ_AGAIN);
        RETURN_IF_ERR(rc);
        if (feed->done) RETURN_IF_ERR(feed->done(feed->ctx, &r));
    }
    return HOIST_OK;
}
