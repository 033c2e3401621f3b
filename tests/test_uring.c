/* core/uring.c: the read engine on its own, over a real file, with its cursor, its queue and every
 * fault of the I/O seam. Where this kernel gives no io_uring, the ring cases check the fallback
 * and the pread cases still run. */
#include "core/uring.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Not a multiple of 4096: the last read's O_DIRECT length runs past the end of the file. */
#define FILE_BYTES ((3u << 20) + 1234u)
#define BLOCK (64u << 10)
#define DEPTH 8u

static char *dir, *path;
static unsigned char *want; /* the file's bytes */

static void setup(void)
{
    dir = tu_mkdtemp();
    path = tu_path(dir, "data.bin");
    want = malloc(FILE_BYTES);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < FILE_BYTES; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        want[i] = (unsigned char)(x >> 32);
    }
    tu_write(path, want, FILE_BYTES);
}

static void teardown(void)
{
    hoist__io_set_hooks(NULL);
    hoist__alloc_set_hooks(NULL);
    free(want);
    free(path);
    tu_rmtree(dir);
}

/* ---- a cursor of BLOCK-sized reads over the file, one buffer per queue slot ---------------- */

typedef struct cursor {
    hoist__uring_file *f;
    unsigned char *got;  /* the file as read, assembled */
    unsigned char *bufs; /* DEPTH blocks */
    uint64_t next;       /* the next block's offset */
    unsigned handed, finished, outstanding, most, refusals;
    int stopped;          /* done() has failed */
    unsigned asked_after; /* reads asked for after that */
    uint64_t fail_done_at; /* done() fails for the read at this offset (UINT64_MAX: never) */
    int bad_read;          /* hand out a read whose need runs past its end */
} cursor;

static bool cur_next(void *ctx, unsigned slot, hoist__uring_read *r)
{
    cursor *c = ctx;
    ck_assert_uint_lt(slot, DEPTH);
    c->asked_after += c->stopped;
    if (c->next >= FILE_BYTES) return false;
    uint64_t end = c->next + BLOCK < FILE_BYTES ? c->next + BLOCK : FILE_BYTES;
    *r = (hoist__uring_read){.file = 0,
                             .buf = (int)slot,
                             .direct = atomic_load(&c->f->direct),
                             .off = c->next,
                             .end = (end + 4095) / 4096 * 4096,
                             .need = c->bad_read ? end + 8192 : end,
                             .dst = c->bufs + (size_t)slot * BLOCK};
    c->next = end;
    c->handed++;
    if (++c->outstanding > c->most) c->most = c->outstanding;
    return true;
}

static int cur_done(void *ctx, const hoist__uring_read *r)
{
    cursor *c = ctx;
    ck_assert_uint_eq(r->off >= r->need, 1);
    uint64_t n = r->need - r->start;
    /* the engine advanced dst with off: the block sits at the start of its slot's buffer */
    const unsigned char *slot = r->dst - (r->off - r->start);
    memcpy(c->got + r->start, slot, n);
    c->finished++;
    c->outstanding--;
    if (r->start != c->fail_done_at) return HOIST_OK;
    c->stopped = 1;
    return HOIST_E_ABORTED;
}

static void cur_refused(void *ctx, const hoist__uring_file *f, const char *why)
{
    cursor *c = ctx;
    ck_assert_ptr_eq(f, c->f);
    ck_assert_ptr_nonnull(strstr(why, "EINVAL"));
    c->refusals++;
}

static hoist__uring_feed feed_of(cursor *c)
{
    return (hoist__uring_feed){cur_next, cur_done, cur_refused, c};
}

static void cursor_init(cursor *c, hoist__uring_file *f)
{
    memset(c, 0, sizeof *c);
    c->f = f;
    c->got = calloc(1, FILE_BYTES);
    ck_assert_int_eq(posix_memalign((void **)&c->bufs, 4096, (size_t)DEPTH * BLOCK), 0);
    c->fail_done_at = UINT64_MAX;
}

/* The cursor back at the start of the file, over the same buffers: the engine registered them
 * and reads into them for as long as it lives (new ones would leave it writing freed memory). */
static void cursor_rewind(cursor *c)
{
    unsigned char *got = c->got, *bufs = c->bufs;
    hoist__uring_file *f = c->f;
    memset(c, 0, sizeof *c);
    memset(got, 0, FILE_BYTES);
    *c = (cursor){.f = f, .got = got, .bufs = bufs, .fail_done_at = UINT64_MAX};
}

static void cursor_free(cursor *c)
{
    free(c->got);
    free(c->bufs);
}

static void open_file(hoist__uring_file *f)
{
    char why[128] = "";
    ck_assert_int_eq(hoist__uring_file_open(f, path, FILE_BYTES, 0, 0, why, sizeof why), HOIST_OK);
    ck_assert_int_ge(f->buffered_fd, 0);
    if (!atomic_load(&f->direct)) ck_assert_str_ne(why, ""); /* a refusal says why */
}

static void engine_init(hoist__uring *u, hoist__uring_file *f, cursor *c)
{
    struct iovec iov[DEPTH];
    for (unsigned i = 0; i < DEPTH; i++)
        iov[i] = (struct iovec){c->bufs + (size_t)i * BLOCK, BLOCK};
    ck_assert_int_eq(hoist__uring_init(u, DEPTH, f, 1, iov, DEPTH), HOIST_OK);
}

/* A fresh cursor over f and an engine over its buffers; stop gives both back. */
static void start(cursor *c, hoist__uring *u, hoist__uring_file *f)
{
    cursor_init(c, f);
    engine_init(u, f, c);
}

static void stop(cursor *c, hoist__uring *u)
{
    hoist__uring_exit(u);
    cursor_free(c);
}

/* Reads the file through the ring (or pread, where there is none) and checks every byte. */
static int read_all(hoist__uring *u, cursor *c)
{
    hoist__uring_feed feed = feed_of(c);
    return u->live ? hoist__uring_run(u, &feed) : hoist__uring_pread(c->f, 1, &feed);
}

static void assert_read_whole(const cursor *c)
{
    unsigned blocks = (FILE_BYTES + BLOCK - 1) / BLOCK;
    ck_assert_uint_eq(c->handed, blocks);
    ck_assert_uint_eq(c->finished, blocks);
    ck_assert_uint_eq(c->outstanding, 0);
    ck_assert_msg(memcmp(c->got, want, FILE_BYTES) == 0, "bytes differ");
}

/* The ring keeps its whole depth in flight from the cursor, never more, and every read lands. */
START_TEST(test_reads_the_file)
{
    hoist__uring_file f;
    open_file(&f);
    cursor c;
    hoist__uring u;
    start(&c, &u, &f);
    ck_assert_int_eq(read_all(&u, &c), HOIST_OK);
    assert_read_whole(&c);
    if (u.live) ck_assert_uint_eq(c.most, DEPTH); /* filled, not fed one read at a time */
    /* the same engine runs again: nothing of the first run is left in its queue */
    cursor_rewind(&c);
    ck_assert_int_eq(read_all(&u, &c), HOIST_OK);
    ck_assert_int_eq(read_all(&u, &c), HOIST_OK); /* the cursor is dry: no read, no wait */
    assert_read_whole(&c);
    stop(&c, &u);
    hoist__uring_exit(&u); /* twice is harmless */
    hoist__uring_file_close(&f);
}
END_TEST

static _Atomic unsigned results;

/* Every completion short (a third, at least one byte), every fifth EINTR, every seventh EAGAIN. */
static int short_and_interrupted(int direct, uint64_t off, unsigned len, int res)
{
    (void)direct, (void)off, (void)len;
    unsigned k = atomic_fetch_add(&results, 1);
    if (k % 5 == 0) return -EINTR;
    if (k % 7 == 0) return -EAGAIN;
    return res > 3 ? res / 3 : res;
}

static ssize_t pread_short(int fd, void *buf, size_t n, off_t off)
{
    unsigned k = atomic_fetch_add(&results, 1);
    if (k % 5 == 0) {
        errno = EINTR;
        return -1;
    }
    return pread(fd, buf, n > 3 ? n / 3 : n, off);
}

/* The rest of a short read is read again, interrupted ones retried: the bytes come out exact,
 * through the ring and through pread. */
START_TEST(test_short_and_interrupted)
{
    hoist__uring_file f;
    open_file(&f);
    for (int ring = 1; ring >= 0; ring--) {
        atomic_store(&results, 0);
        hoist__io_set_hooks(&(hoist__io_hooks){.uring_result = short_and_interrupted,
                                                .pread = pread_short});
        cursor c;
        hoist__uring u;
        start(&c, &u, &f);
        hoist__uring_feed feed = feed_of(&c);
        int rc = ring && u.live ? hoist__uring_run(&u, &feed) : hoist__uring_pread(&f, 1, &feed);
        ck_assert_msg(rc == HOIST_OK, "%s", hoist_last_error());
        assert_read_whole(&c);
        ck_assert_uint_gt(atomic_load(&results), 2 * c.handed); /* the faults did happen */
        stop(&c, &u);
    }
    hoist__uring_file_close(&f);
}
END_TEST

static int refuse_direct(int direct, uint64_t off, unsigned len, int res)
{
    (void)off, (void)len;
    return direct ? -EINVAL : res;
}

/* EINVAL on O_DIRECT reads: the file goes buffered for good, the caller hears of it once, and
 * the reads are retried there. */
START_TEST(test_direct_refused_on_read)
{
    hoist__uring_file f;
    open_file(&f);
    if (!atomic_load(&f.direct)) { /* nothing is read O_DIRECT here to begin with */
        hoist__uring_file_close(&f);
        return;
    }
    hoist__io_set_hooks(&(hoist__io_hooks){.uring_result = refuse_direct});
    cursor c;
    hoist__uring u;
    start(&c, &u, &f);
    ck_assert_int_eq(read_all(&u, &c), HOIST_OK);
    assert_read_whole(&c);
    ck_assert_int_eq(atomic_load(&f.direct), u.live ? 0 : 1);
    ck_assert_uint_eq(c.refusals, u.live ? 1 : 0);
    stop(&c, &u);
    hoist__uring_file_close(&f);
}
END_TEST

static int eio_at_1m(int direct, uint64_t off, unsigned len, int res)
{
    (void)direct, (void)len;
    return off == (1u << 20) ? -EIO : res;
}

/* A failed read fails the run, naming the file and the offset, after every read in flight has
 * come back; the ring is still good for the next run. */
START_TEST(test_read_error)
{
    hoist__uring_file f;
    open_file(&f);
    cursor c;
    hoist__uring u;
    start(&c, &u, &f);
    if (u.live) {
        hoist__io_set_hooks(&(hoist__io_hooks){.uring_result = eio_at_1m});
        ck_assert_int_eq(read_all(&u, &c), HOIST_E_IO);
        const char *e = hoist_last_error();
        ck_assert_msg(strstr(e, "data.bin") && strstr(e, "1048576") && strstr(e, strerror(EIO)),
                      "message: %s", e);
        ck_assert_uint_lt(c.finished, (FILE_BYTES + BLOCK - 1) / BLOCK);
        ck_assert(u.live);
        hoist__io_set_hooks(NULL);
        cursor_rewind(&c);
        ck_assert_int_eq(read_all(&u, &c), HOIST_OK);
        assert_read_whole(&c);
    }
    stop(&c, &u);
    hoist__uring_file_close(&f);
}
END_TEST

/* done() failing stops the cursor and is what the run returns; so is a bad read, refused before
 * it is queued (the first one: nothing is read). */
START_TEST(test_caller_failures)
{
    hoist__uring_file f;
    open_file(&f);
    for (int bad = 0; bad <= 1; bad++) {
        cursor c;
        hoist__uring u;
        start(&c, &u, &f);
        c.fail_done_at = bad ? UINT64_MAX : BLOCK;
        c.bad_read = bad;
        int rc = read_all(&u, &c);
        ck_assert_int_eq(rc, bad ? HOIST_E_INTERNAL : HOIST_E_ABORTED);
        ck_assert_uint_eq(c.asked_after, 0);
        if (bad) ck_assert_uint_eq(c.handed, 1);
        if (bad) ck_assert_uint_eq(c.finished, 0);
        stop(&c, &u);
    }
    hoist__uring_file_close(&f);
}
END_TEST

/* A file that ends before the bytes a read needs was changed under the reader. */
START_TEST(test_file_shrank)
{
    hoist__uring_file f;
    open_file(&f);
    ck_assert_int_eq(truncate(path, FILE_BYTES / 2), 0);
    cursor c;
    hoist__uring u;
    start(&c, &u, &f);
    ck_assert_int_eq(read_all(&u, &c), HOIST_E_FILE_CHANGED);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "ends at byte"));
    stop(&c, &u);
    hoist__uring_file_close(&f);
    ck_assert_int_eq(f.buffered_fd, -1);
}
END_TEST

static int no_ring(unsigned entries, struct io_uring *ring, unsigned flags)
{
    (void)entries, (void)ring, (void)flags;
    return -EPERM;
}

static int no_register(struct io_uring *ring, const struct iovec *iov, unsigned nr)
{
    (void)ring, (void)iov, (void)nr;
    return -ENOMEM;
}

/* io_uring refused: no ring, the reason kept, not an error. Buffers refused: the ring reads into
 * unregistered memory. */
START_TEST(test_setup_refusals)
{
    hoist__uring_file f;
    open_file(&f);
    cursor c;
    hoist__uring u;
    hoist__io_set_hooks(&(hoist__io_hooks){.uring_init = no_ring});
    start(&c, &u, &f);
    ck_assert(!u.live);
    ck_assert_int_eq(u.init_errno, EPERM);
    ck_assert_int_eq(hoist__uring_run(&u, &(hoist__uring_feed){cur_next, NULL, NULL, &c}),
                     HOIST_E_INTERNAL);
    ck_assert_uint_eq(c.handed, 0);
    hoist__uring_exit(&u);

    hoist__io_set_hooks(&(hoist__io_hooks){.uring_register_buffers = no_register});
    engine_init(&u, &f, &c);
    if (u.live) {
        ck_assert(!u.fixed_bufs);
        ck_assert_int_eq(u.bufs_errno, ENOMEM);
    }
    ck_assert_int_eq(read_all(&u, &c), HOIST_OK);
    assert_read_whole(&c);
    stop(&c, &u);

    ck_assert_int_eq(hoist__uring_init(&u, 0, &f, 1, NULL, 0), HOIST_E_INTERNAL);
    ck_assert_int_eq(hoist__uring_init(&u, HOIST_URING_MAX_DEPTH + 1, &f, 1, NULL, 0),
                     HOIST_E_INTERNAL);
    hoist__uring_file_close(&f);
}
END_TEST

static int fail_at, alloc_calls;

static bool fail_kth(size_t bytes)
{
    (void)bytes;
    return ++alloc_calls == fail_at;
}

/* Every allocation of the setup fails in turn: HOIST_E_NOMEM with nothing kept. */
START_TEST(test_allocation_failures)
{
    hoist__uring_file f;
    open_file(&f);
    cursor c;
    cursor_init(&c, &f);
    struct iovec iov = {c.bufs, BLOCK};
    int64_t live = hoist__alloc_live_bytes();
    int failed = 0;
    for (fail_at = 1;; fail_at++) {
        alloc_calls = 0;
        hoist__alloc_set_hooks(&(hoist__alloc_hooks){.fail = fail_kth});
        hoist__uring u;
        int rc = hoist__uring_init(&u, DEPTH, &f, 1, &iov, 1);
        hoist__alloc_set_hooks(NULL);
        if (rc == HOIST_OK) {
            hoist__uring_exit(&u);
            ck_assert_int_eq(hoist__alloc_live_bytes(), live);
            if (alloc_calls < fail_at) break;
            continue; /* past the ring's setup: a later allocation */
        }
        ck_assert_int_eq(rc, HOIST_E_NOMEM);
        ck_assert(!u.live && !u.reads);
        ck_assert_int_eq(hoist__alloc_live_bytes(), live);
        failed++;
    }
    ck_assert_int_ge(failed, 3);
    cursor_free(&c);
    hoist__uring_file_close(&f);
}
END_TEST

static int refuse_direct_open(const char *p, int flags)
{
    if (flags & O_DIRECT) {
        errno = EINVAL;
        return -1;
    }
    return open(p, flags);
}

/* O_DIRECT refused at open: buffered reads, and why; a file changed since it was parsed is
 * refused with both descriptors closed. */
START_TEST(test_file_open)
{
    hoist__uring_file f;
    char why[128] = "";
    hoist__io_set_hooks(&(hoist__io_hooks){.open = refuse_direct_open});
    ck_assert_int_eq(hoist__uring_file_open(&f, path, FILE_BYTES, 0, 0, why, sizeof why), HOIST_OK);
    ck_assert_int_eq(atomic_load(&f.direct), 0);
    ck_assert_int_eq(f.direct_fd, -1);
    ck_assert_str_eq(why, "open: Invalid argument");
    hoist__uring_file_close(&f);
    hoist__io_set_hooks(NULL);
    ck_assert_int_eq(hoist__uring_file_open(&f, path, FILE_BYTES + 1, 0, 0, why, sizeof why),
                     HOIST_E_FILE_CHANGED);
    ck_assert_int_eq(f.buffered_fd, -1);
    ck_assert_int_eq(f.direct_fd, -1);
    /* the same name, but not the file the parser opened (another inode): refused, both closed */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(hoist__uring_file_open(&f, path, FILE_BYTES, (uint64_t)st.st_dev,
                                            (uint64_t)st.st_ino + 1, why, sizeof why),
                     HOIST_E_FILE_CHANGED);
    ck_assert_int_eq(f.buffered_fd, -1);
    ck_assert_int_eq(f.direct_fd, -1);
    ck_assert_int_eq(hoist__uring_file_open(&f, path, FILE_BYTES, (uint64_t)st.st_dev,
                                            (uint64_t)st.st_ino, why, sizeof why),
                     HOIST_OK);
    hoist__uring_file_close(&f);
    char *gone = tu_path(dir, "gone.bin");
    ck_assert_int_eq(hoist__uring_file_open(&f, gone, 1, 0, 0, why, sizeof why), HOIST_E_OPEN);
    free(gone);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("uring");
    TCase *tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reads_the_file);
    tcase_add_test(tc, test_short_and_interrupted);
    tcase_add_test(tc, test_direct_refused_on_read);
    tcase_add_test(tc, test_read_error);
    tcase_add_test(tc, test_caller_failures);
    tcase_add_test(tc, test_file_shrank);
    tcase_add_test(tc, test_setup_refusals);
    tcase_add_test(tc, test_allocation_failures);
    tcase_add_test(tc, test_file_open);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
