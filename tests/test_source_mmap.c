/* loader/source_mmap.c and loader/guard.c, docs/RELIABILITY.md case 28: the file truncated or replaced
 * while the mmap path copies out of its mapping. At every window, into host memory and through
 * the device pipeline: an error naming the file, never SIGBUS, nothing published, everything
 * given back. A SIGBUS that is not the loader's still reaches the handler installed before.
 * And the mapped pages in the process stay at the windows in hand, budget or not. */
#include "fault_sweep.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

static hoist_load_options host_opts(unsigned threads)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_MMAP;
    o.threads = threads;
    o.chunk_bytes = 8192;
    return o;
}

/* One worker: the window being copied is the one cut, so the copy itself faults and the guard
 * must turn SIGBUS into the error (without it this test dies of SIGBUS). */
START_TEST(test_truncated_while_copying)
{
    for (int dev = 0; dev <= 1; dev++) {
        unsigned guarded = fs_cut_sweep(FS_TRUNCATE, host_opts(1), dev);
        if (getenv("HOIST_SWEEP_LOG")) fprintf(stderr, "guarded copies: %u\n", guarded);
        ck_assert_uint_gt(guarded, 10);
    }
}
END_TEST

/* Several workers: some copies fault, others find the bytes gone when they populate; either way
 * one error, every worker joined. */
START_TEST(test_truncated_with_workers)
{
    for (int dev = 0; dev <= 1; dev++) fs_cut_sweep(FS_TRUNCATE, host_opts(3), dev);
}
END_TEST

/* Replaced by a file of the same size and mtime: the mapping still reads the old one, so the
 * copy succeeds; the identity check before publishing refuses it. */
START_TEST(test_replaced)
{
    for (int dev = 0; dev <= 1; dev++) fs_cut_sweep(FS_REPLACE, host_opts(2), dev);
}
END_TEST

typedef struct sum_call {
    const volatile unsigned char *p;
    size_t n;
    uint64_t sum;
} sum_call;

static int sum_bytes(void *arg)
{
    sum_call *c = arg;
    for (size_t i = 0; i < c->n; i++) c->sum += c->p[i];
    return 7;
}

/* The patching guard, which device calls reading a registered mapping run under: pages
 * truncated away read as zeros instead of raising SIGBUS, the call returns what it returns, and
 * the patched pages are counted so the window can fail. Pages still in the file are untouched. */
START_TEST(test_patched_call)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *path = tu_path(dir, "patched");
    unsigned char *bytes = malloc(3 * page);
    memset(bytes, 1, 3 * page);
    tu_write(path, bytes, 3 * page);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char *map = mmap(NULL, 3 * page, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert(map != MAP_FAILED);

    sum_call c = {map, 3 * page, 0};
    unsigned patched = 99;
    ck_assert_int_eq(hoist__call_patched(map, 3 * page, sum_bytes, &c, &patched), 7);
    ck_assert_uint_eq(patched, 0);
    ck_assert_uint_eq(c.sum, 3 * page);

    ck_assert_int_eq(ftruncate(fd, (off_t)page + 10), 0); /* the third page is gone */
    c.sum = 0;
    ck_assert_int_eq(hoist__call_patched(map, 3 * page, sum_bytes, &c, &patched), 7);
    ck_assert_uint_eq(patched, 1);
    ck_assert_uint_eq(c.sum, page + 10); /* the tail of the second page reads zeros already */
    ck_assert_uint_eq(map[2 * page + 5], 0);

    munmap(map, 3 * page);
    close(fd);
    free(bytes);
    free(path);
}
END_TEST

static sigjmp_buf foreign_jmp;
static volatile sig_atomic_t foreign_seen;

static void foreign_handler(int sig, siginfo_t *si, void *uc)
{
    foreign_seen = 1;
    siglongjmp(foreign_jmp, 1);
}

/* The loader's handler, installed by the first guarded copy, passes a SIGBUS that is not its own
 * to the handler it replaced. Needs a fresh process (Check's default fork mode). */
START_TEST(test_foreign_sigbus_is_passed_on)
{
    const char *fork_mode = getenv("CK_FORK");
    if (fork_mode && strcmp(fork_mode, "no") == 0) return;
    struct sigaction sa, now;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = foreign_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    ck_assert_int_eq(sigaction(SIGBUS, &sa, NULL), 0);

    hoist_model *m = open_odd(6, 9);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_MMAP;
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_OK);
    hoist_weights_free(w);
    hoist_model_free(m);
    ck_assert_int_eq(sigaction(SIGBUS, NULL, &now), 0);
    ck_assert_msg(now.sa_sigaction != foreign_handler, "the loader installed no handler");

    /* a SIGBUS of the test's own: a mapped page past the end of a truncated file */
    char *path = tu_path(dir, "foreign");
    char page[8192] = {1};
    tu_write(path, page, sizeof page);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    volatile char *map = mmap(NULL, sizeof page, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(ftruncate(fd, 0), 0);
    if (sigsetjmp(foreign_jmp, 0) == 0) {
        (void)map[4096];
        ck_abort_msg("no SIGBUS past the end of the file");
    }
    ck_assert_int_eq(foreign_seen, 1);
    munmap((void *)map, sizeof page);
    close(fd);
    free(path);
}
END_TEST

typedef struct rss_peak {
    pthread_mutex_t lock;
    uint64_t peak;
} rss_peak;

static int sample_rss_file(const hoist_piece *piece, void *user)
{
    (void)piece;
    rss_peak *p = user;
    uint64_t now = tu_status_bytes("RssFile");
    pthread_mutex_lock(&p->lock);
    if (now > p->peak) p->peak = now;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* Without a budget, each worker still unmaps the window it is done with: a 64 MiB model never
 * has more than the windows in hand mapped (before, all of it stayed mapped for the munmap at
 * the end to tear down alone). Sampled from the sink, while the pieces arrive. */
START_TEST(test_windows_unmapped_without_budget)
{
    enum { MIB = 1 << 20, DATA = 64 * MIB };
    char *tmp = tu_mkdtemp();
    char *path = tu_path(tmp, "big.safetensors");
    char header[128];
    snprintf(header, sizeof header,
             "{\"t\":{\"dtype\":\"U8\",\"shape\":[%d],\"data_offsets\":[0,%d]}}    ", DATA,
             DATA);
    uint8_t *data = malloc(DATA);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < DATA; i++) data[i] = (uint8_t)(i * 2654435761u >> 24);
    tu_write_safetensors(path, header, data, DATA);
    free(data);
    size_t n = 0;
    free(tu_read(path, &n)); /* in the page cache: the mapping's populate only maps it */
    ck_assert_uint_eq(n, DATA + 8 + strlen(header));

    hoist_model *m = tu_open_ok(path);
    hoist_load_options o = host_opts(2);
    o.chunk_bytes = MIB;
    rss_peak peak = {.lock = PTHREAD_MUTEX_INITIALIZER};
    uint64_t before = tu_status_bytes("RssFile");
    ck_assert_int_eq(hoist_load_sink(m, &o, sample_rss_file, &peak, NULL), HOIST_OK);
    ck_assert_uint_gt(peak.peak, 0);
    uint64_t grew = peak.peak > before ? peak.peak - before : 0;
    ck_assert_msg(grew < 16 * MIB, "%llu MiB of the file mapped at once (2 workers, 1 MiB windows)",
                  (unsigned long long)(grew / MIB));
    hoist_model_free(m);
    free(path);
    tu_rmtree(tmp);
}
END_TEST

int main(void)
{
    fs_init();
    Suite *s = suite_create("source_mmap");
    TCase *tc = tcase_create("host");
    tcase_add_checked_fixture(tc, st_setup, st_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_truncated_while_copying);
    tcase_add_test(tc, test_truncated_with_workers);
    tcase_add_test(tc, test_replaced);
    tcase_add_test(tc, test_patched_call);
    tcase_add_test(tc, test_foreign_sigbus_is_passed_on);
    tcase_add_test(tc, test_windows_unmapped_without_budget);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
