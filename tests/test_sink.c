/* hoist_load_sink (loader/load.c, loader/pipeline.c): pieces in order on every path, errors from
 * the callback, the RAM budget, and the acceptance run: a 4 GB checkpoint through a 64 MiB budget
 * with bounded RSS and page cache and the bytes checked by hash. */
#include "source_test_common.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- a sink that rebuilds the tensors and checks the order ---- */

typedef struct rebuild {
    const hoist_model *m;
    uint8_t **bufs;       /* per tensor */
    uint64_t *filled;     /* bytes received per tensor */
    int *done;            /* `last` seen */
    long cur;             /* tensor of the previous piece */
    uint64_t max_piece;
    unsigned calls, stop_at; /* stop_at: fail on this call (1-based), 0 = never */
    int stop_rc;
    char error[256];
    _Atomic int inside;   /* concurrent calls would show up here */
} rebuild;

static void rebuild_init(rebuild *r, const hoist_model *m)
{
    memset(r, 0, sizeof *r);
    size_t n = hoist_model_tensor_count(m);
    r->m = m;
    r->bufs = calloc(n, sizeof *r->bufs);
    r->filled = calloc(n, sizeof *r->filled);
    r->done = calloc(n, sizeof *r->done);
    r->cur = -1;
    for (size_t i = 0; i < n; i++) {
        hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
        ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
        r->bufs[i] = malloc(ti.nbytes ? ti.nbytes : 1);
    }
}

static void rebuild_free(rebuild *r)
{
    for (size_t i = 0; i < hoist_model_tensor_count(r->m); i++) free(r->bufs[i]);
    free(r->bufs);
    free(r->filled);
    free(r->done);
}

#define REBUILD_FAIL(...) (snprintf(r->error, sizeof r->error, __VA_ARGS__), -1000)

static int rebuild_cb(const hoist_piece *p, void *user)
{
    rebuild *r = user;
    if (atomic_fetch_add(&r->inside, 1) != 0) return REBUILD_FAIL("concurrent call");
    int rc = 0;
    hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
    r->calls++;
    if (r->stop_at && r->calls == r->stop_at) {
        rc = r->stop_rc;
    } else if (hoist_model_tensor(r->m, p->tensor, &ti) != HOIST_OK) {
        rc = REBUILD_FAIL("tensor index %zu out of range", p->tensor);
    } else if ((long)p->tensor < r->cur || ((long)p->tensor > r->cur && r->cur >= 0 &&
                                            !r->done[r->cur])) {
        rc = REBUILD_FAIL("tensor %zu arrived after %ld (done %d)", p->tensor, r->cur,
                          r->cur >= 0 ? r->done[r->cur] : -1);
    } else if (p->offset != r->filled[p->tensor] || p->offset + p->nbytes > ti.nbytes ||
               strcmp(p->name, ti.name) != 0) {
        rc = REBUILD_FAIL("tensor %s: piece at %llu+%llu, expected offset %llu of %llu", p->name,
                          (unsigned long long)p->offset, (unsigned long long)p->nbytes,
                          (unsigned long long)r->filled[p->tensor],
                          (unsigned long long)ti.nbytes);
    } else if (p->last != (p->offset + p->nbytes == ti.nbytes)) {
        rc = REBUILD_FAIL("tensor %s: last flag %d wrong", p->name, p->last);
    } else {
        if (p->nbytes) memcpy(r->bufs[p->tensor] + p->offset, p->data, p->nbytes);
        r->filled[p->tensor] += p->nbytes;
        r->done[p->tensor] = p->last;
        r->cur = (long)p->tensor;
        if (p->nbytes > r->max_piece) r->max_piece = p->nbytes;
    }
    atomic_fetch_sub(&r->inside, 1);
    return rc;
}

/* Every tensor complete and equal to its bytes in the file. */
static void rebuild_check(const rebuild *r)
{
    ck_assert_msg(!r->error[0], "%s", r->error);
    for (size_t i = 0; i < hoist_model_tensor_count(r->m); i++) {
        hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
        ck_assert_int_eq(hoist_model_tensor(r->m, i, &ti), HOIST_OK);
        ck_assert_msg(r->done[i], "tensor %s never completed", ti.name);
        ck_assert_uint_eq(r->filled[i], ti.nbytes);
        const char *path = hoist_model_file_path(r->m, ti.file);
        int fd = open(path, O_RDONLY);
        ck_assert_int_ge(fd, 0);
        uint8_t *want = malloc(ti.nbytes ? ti.nbytes : 1);
        ck_assert_int_eq(pread(fd, want, ti.nbytes, (off_t)ti.offset), (ssize_t)ti.nbytes);
        close(fd);
        ck_assert_msg(memcmp(want, r->bufs[i], ti.nbytes) == 0, "tensor %s differs", ti.name);
        free(want);
    }
}

static void sink_every_path(hoist_model *m, unsigned threads, uint64_t chunk)
{
    const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_URING, HOIST_PATH_STREAM,
                                HOIST_PATH_AUTO};
    for (size_t k = 0; k < sizeof paths / sizeof *paths; k++) {
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = paths[k];
        o.threads = threads;
        o.chunk_bytes = chunk;
        rebuild r;
        rebuild_init(&r, m);
        hoist_load_stats st = HOIST_LOAD_STATS_INIT;
        int rc = hoist_load_sink(m, &o, rebuild_cb, &r, &st);
        ck_assert_msg(rc == HOIST_OK, "%s: %s (%s)", hoist_path_name(paths[k]),
                      hoist_last_error(), r.error);
        rebuild_check(&r);
        ck_assert_uint_eq(st.bytes, hoist_model_total_bytes(m));
        ck_assert_uint_eq(st.arena_bytes, 0);
        if (chunk) ck_assert_uint_le(r.max_piece, chunk);
        rebuild_free(&r);
    }
}

START_TEST(test_pieces_in_order_every_path)
{
    hoist_model *m = open_odd(23, 7);
    sink_every_path(m, 0, 0);                 /* each path's defaults */
    sink_every_path(m, 6, 16384);             /* many small windows, many workers racing */
    sink_every_path(m, 1, 4096);
    hoist_model_free(m);
}
END_TEST

/* A tensor with no bytes is announced in its place, including at the very end. */
START_TEST(test_empty_tensors_announced)
{
    char *path = tu_path(dir, "empty.safetensors");
    const char *hdr = "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
                      "\"b\":{\"dtype\":\"U8\",\"shape\":[5],\"data_offsets\":[0,5]},"
                      "\"c\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[5,5]},"
                      "\"d\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[5,8]},"
                      "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}";
    tu_write_safetensors(path, hdr, "abcdefgh", 8);
    hoist_model *m;
    ck_assert_int_eq(hoist_model_open(path, NULL, &m), HOIST_OK);
    free(path);
    sink_every_path(m, 3, 4096);
    hoist_model_free(m);
}
END_TEST

static void expect_stop(hoist_model *m, hoist_path path, unsigned stop_at, int stop_rc, int want)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = path;
    o.threads = 4;
    o.chunk_bytes = 8192;
    rebuild r;
    rebuild_init(&r, m);
    r.stop_at = stop_at;
    r.stop_rc = stop_rc;
    ck_assert_int_eq(hoist_load_sink(m, &o, rebuild_cb, &r, NULL), want);
    ck_assert_msg(strstr(hoist_last_error(), "the sink stopped the load at tensor '"),
                  "message: %s", hoist_last_error());
    ck_assert_msg(strstr(hoist_last_error(), "odd.safetensors"), "no file in: %s",
                  hoist_last_error());
    ck_assert_uint_eq(r.calls, stop_at); /* nothing after the refusal */
    ck_assert_msg(!r.error[0], "%s", r.error);
    rebuild_free(&r);
}

START_TEST(test_callback_stops_load)
{
    hoist_model *m = open_odd(23, 7);
    expect_stop(m, HOIST_PATH_STREAM, 1, 1, HOIST_E_ABORTED);
    expect_stop(m, HOIST_PATH_URING, 17, -999, HOIST_E_ABORTED); /* not a status: aborted */
    expect_stop(m, HOIST_PATH_MMAP, 9, HOIST_E_IO, HOIST_E_IO); /* a status: kept */
    hoist_model_free(m);
}
END_TEST

START_TEST(test_bad_arguments)
{
    hoist_model *m = open_odd(3, 7);
    rebuild r;
    rebuild_init(&r, m);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    ck_assert_int_eq(hoist_load_sink(NULL, &o, rebuild_cb, &r, NULL), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_load_sink(m, &o, NULL, &r, NULL), HOIST_E_INVALID_ARG);
    o.device = 0;
    ck_assert_int_eq(hoist_load_sink(m, &o, rebuild_cb, &r, NULL), HOIST_E_INVALID_ARG);
    o.device = HOIST_DEVICE_HOST;
    o.verify = HOIST_VERIFY_READBACK;
    ck_assert_int_eq(hoist_load_sink(m, &o, rebuild_cb, &r, NULL), HOIST_E_INVALID_ARG);
    ck_assert_uint_eq(r.calls, 0);
    rebuild_free(&r);
    hoist_model_free(m);
}
END_TEST

/* A budget far below the largest tensor: it arrives in pieces, and the peak stays inside. */
START_TEST(test_budget_smaller_than_tensor)
{
    char *path = tu_path(dir, "big.safetensors");
    st_write_random_model(path, 2, 8u << 20); /* two 8 MiB tensors */
    hoist_model *m;
    ck_assert_int_eq(hoist_model_open(path, NULL, &m), HOIST_OK);
    free(path);
    const hoist_path paths[] = {HOIST_PATH_STREAM, HOIST_PATH_URING, HOIST_PATH_MMAP};
    for (size_t k = 0; k < 3; k++) {
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = paths[k];
        o.ram_budget = 1u << 20;
        rebuild r;
        rebuild_init(&r, m);
        hoist_load_stats st = HOIST_LOAD_STATS_INIT;
        ck_assert_msg(hoist_load_sink(m, &o, rebuild_cb, &r, &st) == HOIST_OK, "%s: %s",
                      hoist_path_name(paths[k]), hoist_last_error());
        rebuild_check(&r);
        ck_assert_uint_le(st.peak_host_bytes, o.ram_budget);
        ck_assert_uint_gt(st.peak_host_bytes, 0);
        ck_assert_uint_lt(r.max_piece, 1u << 20);
        rebuild_free(&r);
    }
    /* below what one worker with the smallest window needs: refused before reading */
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.ram_budget = 64u << 10;
    rebuild r;
    rebuild_init(&r, m);
    ck_assert_int_eq(hoist_load_sink(m, &o, rebuild_cb, &r, NULL), HOIST_E_BUDGET);
    ck_assert_msg(strstr(hoist_last_error(), "needs at least"), "%s", hoist_last_error());
    ck_assert_uint_eq(r.calls, 0);
    rebuild_free(&r);
    hoist_model_free(m);
}
END_TEST

#if !defined(HOIST_SANITIZER) /* see main() */
/* ---- the 4 GB acceptance run ---- */

/* What the run's RSS may add to the 64 MiB budget: the executable, libc, the test framework and
 * the model's table (about 6 MiB measured), the hash state and the mincore vector (1 MiB per
 * 4 GiB of file), with room to spare. */
#define SINK_RSS_OVERHEAD (24ull << 20)
#define SINK_BUDGET (64ull << 20)

typedef struct hashing {
    XXH3_state_t *h;
    uint64_t bytes, next_probe;
    const char *const *paths;
    size_t npaths;
    uint64_t max_cached; /* most model bytes seen in the page cache at once */
} hashing;

static uint64_t cached_bytes(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = ((size_t)st.st_size + (size_t)page - 1) / (size_t)page;
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    unsigned char *vec = malloc(pages);
    ck_assert_int_eq(mincore(map, (size_t)st.st_size, vec), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
    free(vec);
    munmap(map, (size_t)st.st_size);
    close(fd);
    return n * (uint64_t)page;
}

static int hash_cb(const hoist_piece *p, void *user)
{
    hashing *h = user;
    XXH3_64bits_update(h->h, p->data, p->nbytes);
    h->bytes += p->nbytes;
    if (h->bytes >= h->next_probe) { /* sample the page cache every 64 MiB delivered */
        h->next_probe += 64u << 20;
        uint64_t c = 0;
        for (size_t i = 0; i < h->npaths; i++) c += cached_bytes(h->paths[i]);
        if (c > h->max_cached) h->max_cached = c;
    }
    return 0;
}

/* The same bytes in the same order, read straight from the files. */
static uint64_t reference_hash(hoist_model *m)
{
    XXH3_state_t *h = XXH3_createState();
    XXH3_64bits_reset(h);
    size_t cap = 4u << 20;
    uint8_t *buf = malloc(cap);
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
        ck_assert_int_eq(hoist_model_tensor(m, i, &ti), HOIST_OK);
        int fd = open(hoist_model_file_path(m, ti.file), O_RDONLY);
        ck_assert_int_ge(fd, 0);
        for (uint64_t off = 0; off < ti.nbytes;) {
            size_t n = ti.nbytes - off < cap ? (size_t)(ti.nbytes - off) : cap;
            ck_assert_int_eq(pread(fd, buf, n, (off_t)(ti.offset + off)), (ssize_t)n);
            XXH3_64bits_update(h, buf, n);
            off += n;
        }
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    free(buf);
    uint64_t d = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return d;
}

/* Resets VmHWM to the current RSS, so the peak measured is this load's. */
static int reset_hwm(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd < 0) return -1;
    int ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok ? 0 : -1;
}

START_TEST(test_4g_through_64m_budget)
{
    char args[1024];
    snprintf(args, sizeof args, "gen '%s/m4g' --size 4G --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *mdir = tu_path(dir, "m4g");
    hoist_model *m;
    ck_assert_int_eq(hoist_model_open(mdir, NULL, &m), HOIST_OK);
    free(mdir);
    ck_assert_uint_ge(hoist_model_total_bytes(m), 4000000000ull);
    size_t nf = hoist_model_file_count(m);
    const char *paths[64];
    ck_assert_uint_le(nf, 64);
    for (size_t i = 0; i < nf; i++) {
        paths[i] = hoist_model_file_path(m, i);
        st_uncache(paths[i]); /* the generator's writes are still cached */
    }
    uint64_t cached0 = 0;
    for (size_t i = 0; i < nf; i++) cached0 += cached_bytes(paths[i]);

    hashing hs = {.h = XXH3_createState(), .paths = paths, .npaths = nf};
    XXH3_64bits_reset(hs.h);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.ram_budget = SINK_BUDGET;
    int have_hwm = reset_hwm() == 0;
    uint64_t rss0 = tu_rss_bytes();
    hoist_load_stats st = HOIST_LOAD_STATS_INIT;
    ck_assert_msg(hoist_load_sink(m, &o, hash_cb, &hs, &st) == HOIST_OK, "%s", hoist_last_error());
    uint64_t hwm = tu_status_bytes("VmHWM");
    uint64_t got = XXH3_64bits_digest(hs.h);
    XXH3_freeState(hs.h);

    ck_assert_uint_eq(hs.bytes, hoist_model_total_bytes(m));
    ck_assert_uint_le(st.peak_host_bytes, SINK_BUDGET);
    ck_assert_uint_le(hs.max_cached, cached0 + SINK_BUDGET);
    fprintf(stderr,
            "4g sink: %.2f s, %.2f GB/s, peak host %llu MiB (loader), VmHWM %llu MiB "
            "(baseline RSS %llu MiB), page cache of the model at most %llu MiB\n",
            st.seconds, (double)st.bytes / st.seconds / 1e9,
            (unsigned long long)(st.peak_host_bytes >> 20), (unsigned long long)(hwm >> 20),
            (unsigned long long)(rss0 >> 20), (unsigned long long)(hs.max_cached >> 20));
    if (have_hwm) ck_assert_uint_le(hwm, SINK_BUDGET + SINK_RSS_OVERHEAD);
    uint64_t want = reference_hash(m);
    ck_assert_uint_eq(got, want);

    /* mmap under the same budget: its RSS stays inside too (the page cache does not: that is
     * the path's trade) */
    for (size_t i = 0; i < nf; i++) st_uncache(paths[i]);
    hs = (hashing){.h = XXH3_createState(), .paths = paths, .npaths = nf};
    XXH3_64bits_reset(hs.h);
    o.path = HOIST_PATH_MMAP;
    have_hwm = reset_hwm() == 0;
    ck_assert_msg(hoist_load_sink(m, &o, hash_cb, &hs, &st) == HOIST_OK, "%s", hoist_last_error());
    hwm = tu_status_bytes("VmHWM");
    ck_assert_uint_eq(XXH3_64bits_digest(hs.h), want);
    XXH3_freeState(hs.h);
    ck_assert_uint_le(st.peak_host_bytes, SINK_BUDGET);
    fprintf(stderr, "4g sink, mmap: %.2f s, VmHWM %llu MiB, page cache of the model at most %llu MiB\n",
            st.seconds, (unsigned long long)(hwm >> 20), (unsigned long long)(hs.max_cached >> 20));
    if (have_hwm) ck_assert_uint_le(hwm, SINK_BUDGET + SINK_RSS_OVERHEAD);
    for (size_t i = 0; i < nf; i++) st_uncache(paths[i]);
    hoist_model_free(m);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("sink");
    TCase *tc = tcase_create("sink");
    tcase_add_checked_fixture(tc, st_setup, st_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pieces_in_order_every_path);
    tcase_add_test(tc, test_empty_tensors_announced);
    tcase_add_test(tc, test_callback_stops_load);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_budget_smaller_than_tensor);
    suite_add_tcase(s, tc);
#if !defined(HOIST_SANITIZER)
    /* A resource bound, which the sanitizers' shadow memory (and ASan's quarantine, TSan's
     * slowdown) would distort; the byte checks it also makes are the same as the small cases',
     * which the sanitizer builds do run. */
    TCase *big = tcase_create("4g");
    tcase_add_checked_fixture(big, st_setup, st_teardown);
    tcase_set_timeout(big, 900);
    tcase_add_test(big, test_4g_through_64m_budget);
    suite_add_tcase(s, big);
#endif
    return tu_run_suite(s);
}
