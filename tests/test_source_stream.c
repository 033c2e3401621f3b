/* loader/source_stream.c and the I/O seam: buffered pread in windows, page cache dropped behind,
 * faults of docs/RELIABILITY.md cases 27 and 37, the RAM budget. Host destination. */
#include "gpu/gpu.h"
#include "source_test_common.h"

/* Odd sizes and offsets, windows much smaller than tensors, several threads. */
START_TEST(test_odd_sizes_small_windows)
{
    hoist_model *m = open_odd(60, 7);
    unsigned threads[] = {1, 3, 8, 0};
    uint64_t chunks[] = {4096, 65536, 1u << 20, 0};
    for (int i = 0; i < 4; i++) st_load_check(m, HOIST_PATH_STREAM, threads[i], chunks[i]);
    ck_assert_int_eq(st_warns(), 0);
    hoist_model_free(m);
}
END_TEST

/* 12 workers with a 2 MiB buffer each; a small model takes no more than it has windows. */
START_TEST(test_defaults)
{
    char *path = tu_path(dir, "mid.safetensors");
    st_write_random_model(path, 8, 4u << 20);
    hoist_model *m = st_open(path);
    hoist_load_stats s = st_load_stats(m, HOIST_PATH_STREAM);
    ck_assert_uint_eq(s.threads, 12);
    ck_assert_uint_ge(s.peak_host_bytes, 12u * (2u << 20));
    hoist_model_free(m);
    free(path);

    m = open_odd(5, 2);
    s = st_load_stats(m, HOIST_PATH_STREAM);
    ck_assert_uint_eq(s.threads, 1);
    ck_assert_uint_lt(s.peak_host_bytes, 1u << 20);
    hoist_model_free(m);
}
END_TEST

static hoist_load_stats load_with(hoist_model *m, int64_t readahead, uint64_t budget)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.readahead_bytes = readahead;
    o.ram_budget = budget;
    hoist_weights *w = NULL;
    ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
    return s;
}

/* peak is want, give or take the residency map of a 32 MiB file (a bit per page), which the
 * probe holds only while the file is partly cached: the kernel may reclaim some of its pages
 * between two loads when tests beside this one need the memory. */
static void assert_peak(uint64_t peak, uint64_t want)
{
    uint64_t map = (32u << 20) / 4096 / 8 + 64;
    ck_assert_msg(peak + map >= want && peak <= want + map, "peak %llu, want %llu",
                  (unsigned long long)peak, (unsigned long long)want);
}

/* The read-ahead is host memory of the load: it shows in the peak by whole windows, never past
 * the model's last window, and under a budget it takes at most a quarter of it. */
START_TEST(test_read_ahead_counted)
{
    char *path = tu_path(dir, "ra.safetensors");
    st_write_random_model(path, 8, 4u << 20); /* 32 MiB and a header: 17 windows of 2 MiB */
    hoist_model *m = st_open(path);
    uint64_t none = load_with(m, 0, 0).peak_host_bytes;
    assert_peak(load_with(m, 8u << 20, 0).peak_host_bytes, none + (8u << 20));
    assert_peak(load_with(m, (8u << 20) + 4096, 0).peak_host_bytes, none + (8u << 20));
    assert_peak(load_with(m, 1u << 30, 0).peak_host_bytes, none + 16 * (2u << 20));
    assert_peak(load_with(m, -1, 0).peak_host_bytes,
                none + HOIST_STREAM_READAHEAD / (2u << 20) * (2u << 20));

    uint64_t budget = 24u << 20;
    hoist_load_stats b = load_with(m, 1u << 30, budget);
    ck_assert_uint_le(b.peak_host_bytes, budget);
    hoist_load_stats b0 = load_with(m, 0, budget);
    ck_assert_uint_le(b0.peak_host_bytes, budget);
    ck_assert_uint_ge(b0.threads, b.threads); /* the read-ahead's quarter came out of staging */
    hoist_model_free(m);
    free(path);
}
END_TEST

START_TEST(test_sharded)
{
    char *index = st_write_sharded(dir);
    hoist_model *m = st_open(index);
    ck_assert_uint_eq(hoist_model_file_count(m), 2);
    st_load_check(m, HOIST_PATH_STREAM, 3, 4096);
    st_load_check(m, HOIST_PATH_STREAM, 2, 65536);
    hoist_model_free(m);
    free(index);
}
END_TEST

/* Case 27: every pread answers one byte, a random short count, or EINTR every other call. */
START_TEST(test_short_reads_and_eintr)
{
    hoist_model *m = open_odd(7, 13);
    hoist__io_hooks one = {.pread = st_pread_one_byte};
    hoist__io_hooks rnd = {.pread = st_pread_random_short};
    hoist__io_hooks intr = {.pread = st_pread_eintr_every_other};
    const hoist__io_hooks *all[] = {&one, &rnd, &intr};
    for (int i = 0; i < 3; i++) {
        st_hooks(all[i]);
        st_load_check(m, HOIST_PATH_STREAM, 3, 8192);
        st_load_check(m, HOIST_PATH_STREAM, 1, 65536);
    }
    hoist_model_free(m);
}
END_TEST

START_TEST(test_read_error_names_file_and_offset)
{
    hoist_model *m = open_odd(20, 4);
    st_fail_off = 100000;
    st_hooks(&(hoist__io_hooks){.pread = st_pread_eio_above});
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.chunk_bytes = 65536;
    hoist_weights *w = (hoist_weights *)1;
    int fds = st_fd_count();
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_IO);
    ck_assert_int_eq(st_fd_count(), fds);
    ck_assert_ptr_null(w);
    const char *e = hoist_last_error();
    ck_assert_msg(strstr(e, "odd.safetensors") && strstr(e, "at byte") &&
                      strstr(e, strerror(EIO)),
                  "message: %s", e);
    hoist_model_free(m);
}
END_TEST

/* The file shrinking between hoist_model_open and hoist_load: the size is rechecked at open. */
START_TEST(test_truncated_file)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 20, 4);
    hoist_model *m = st_open(path);
    ck_assert_int_eq(truncate(path, 200000), 0);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    hoist_weights *w = (hoist_weights *)1;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_FILE_CHANGED);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "odd.safetensors"));
    hoist_model_free(m);
    free(path);
}
END_TEST

static char *trunc_path;
static _Atomic int trunc_done;
static ssize_t pread_truncating(int fd, void *buf, size_t n, off_t off)
{
    if (!atomic_exchange(&trunc_done, 1)) ck_assert_int_eq(truncate(trunc_path, 150000), 0);
    return pread(fd, buf, n, off);
}

START_TEST(test_truncated_during_load)
{
    trunc_path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(trunc_path, 20, 4);
    hoist_model *m = st_open(trunc_path);
    atomic_store(&trunc_done, 0);
    st_hooks(&(hoist__io_hooks){.pread = pread_truncating});
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.chunk_bytes = 65536;
    o.threads = 1;
    hoist_weights *w = (hoist_weights *)1;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_FILE_CHANGED);
    ck_assert_ptr_null(w);
    const char *e = hoist_last_error();
    ck_assert_msg(strstr(e, "odd.safetensors") && strstr(e, "ends at byte"), "message: %s", e);
    hoist_model_free(m);
    free(trunc_path);
}
END_TEST

static char *probe_path;
static _Atomic int probe_stop;
static double probe_max;

/* Samples the file's residency until told to stop, keeping the highest. */
static void *probe_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&probe_stop)) {
        double f = st_cached_fraction(probe_path);
        if (f > probe_max) probe_max = f;
        usleep(500);
    }
    return NULL;
}

/* hoist_load with probe_main sampling probe_path's residency all along (into probe_max). */
static int load_probed(hoist_model *m, const hoist_load_options *o, hoist_weights **w)
{
    probe_max = 0;
    atomic_store(&probe_stop, 0);
    pthread_t probe;
    ck_assert_int_eq(pthread_create(&probe, NULL, probe_main, NULL), 0);
    int rc = hoist_load(m, o, w);
    atomic_store(&probe_stop, 1);
    pthread_join(probe, NULL);
    return rc;
}

/* DONTNEED behind the reads: a 512 MiB model read cold leaves nothing in the page cache after
 * the load, and never has more than a little of itself cached during the load (sampled all
 * along; loosely bounded, see below); read warm, it stays cached. Windows of 1 MiB and less share
 * the kernel's 2 MiB folios, which a per-window drop would leave behind. */
START_TEST(test_page_cache_stays_flat)
{
    probe_path = tu_path(dir, "big.safetensors");
    st_write_random_model(probe_path, 32, 16u << 20);
    hoist_model *m = st_open(probe_path);
    unsigned threads[] = {0, 0, 2, 8, 3, 1};
    uint64_t chunks[] = {0, 0, 1u << 20, 1u << 20, 65536, 4096};
    for (int i = 0; i < 6; i++) {
        if (i > 0) st_uncache(probe_path); /* the first starts with the file just written */
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = HOIST_PATH_STREAM;
        o.threads = threads[i];
        o.chunk_bytes = chunks[i];
        hoist_weights *w = NULL;
        ck_assert_int_eq(load_probed(m, &o, &w), HOIST_OK);
        double after = st_cached_fraction(probe_path);
        if (i == 0) probe_max = 0; /* what was not yet read was cached before the load */
        /* During the load the drop trails the slowest worker, so a worker stalled by a busy
         * machine lets the cached span grow: the bound only catches a drop that does not
         * happen at all (that would reach 100%). After the load the bound is exact. */
        ck_assert_msg(probe_max < 0.6 && (i == 0 ? after >= 0.99 : after < 0.01),
                      "%u x %llu: up to %.1f%% of the file cached during the load, %.1f%% after",
                      threads[i], (unsigned long long)chunks[i], probe_max * 100, after * 100);
        if (i == 0) tu_assert_weights_match_files(m, w);
        hoist_weights_free(w);
    }
    hoist_model_free(m);
    free(probe_path);
}
END_TEST

/* ---- the page cache is shared: only what the load brought in is dropped ---------------------- */

static size_t count_set(const unsigned char *v, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += v[i] & 1;
    return c;
}

/* Pages resident in `after` that were not in `before`. */
static size_t count_new(const unsigned char *before, const unsigned char *after, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += (after[i] & 1) && !(before[i] & 1);
    return c;
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* Drops path from the page cache and says whether that worked (not on tmpfs, say). */
static int uncached(const char *path)
{
    st_uncache(path);
    size_t pages;
    unsigned char *v = st_resident_map(path, &pages);
    size_t left = count_set(v, pages);
    free(v);
    if (left) fprintf(stderr, "skipped: %s keeps %zu of %zu pages in the page cache after "
                              "POSIX_FADV_DONTNEED (tmpfs?)\n", path, left, pages);
    return left == 0;
}

/* Loads m through stream into host memory and returns which pages of path are resident right
 * after, before the bytes are checked (reading the file to compare would bring it back). */
static unsigned char *load_then_map(hoist_model *m, const char *path, unsigned threads,
                                    uint64_t chunk, size_t *pages)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.threads = threads;
    o.chunk_bytes = chunk;
    hoist_weights *w = NULL;
    int fds = st_fd_count();
    ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_int_eq(st_fd_count(), fds);
    unsigned char *map = st_resident_map(path, pages);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);
    return map;
}

static const unsigned ra_threads[] = {0, 1, 3, 8};
static const uint64_t ra_chunks[] = {0, 65536, 1u << 20, 4096};

/* A warm model (a second rank, a restart) stays cached through a stream load of all its bytes. */
START_TEST(test_warm_file_stays_cached)
{
    char *path = tu_path(dir, "warm.safetensors");
    st_write_random_model(path, 16, 4u << 20);
    hoist_model *m = st_open(path);
    for (int i = 0; i < 4; i++) {
        st_read_file(path);
        double before = st_cached_fraction(path);
        ck_assert_msg(before >= 0.99, "reading the file left %.1f%% of it cached", before * 100);
        size_t pages;
        unsigned char *map = load_then_map(m, path, ra_threads[i], ra_chunks[i], &pages);
        double after = (double)count_set(map, pages) / (double)pages;
        free(map);
        ck_assert_msg(after >= 0.99, "%u x %llu: %.1f%% of a cached file still cached after",
                      ra_threads[i], (unsigned long long)ra_chunks[i], after * 100);
    }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* A cold model is dropped again: by the folio rule (hoist__residency) every folio the load
 * brought in lies in pages that were not resident and goes whole, so no page stays that was not
 * there before the load; one largest folio of slack covers a page the kernel evicted and read
 * back during the load. */
START_TEST(test_cold_file_dropped)
{
    char *path = tu_path(dir, "cold.safetensors");
    st_write_random_model(path, 16, 4u << 20);
    hoist_model *m = st_open(path);
    for (int i = 0; i < 4; i++) {
        if (!uncached(path)) break;
        size_t pages;
        unsigned char *before = st_resident_map(path, &pages);
        unsigned char *after = load_then_map(m, path, ra_threads[i], ra_chunks[i], &pages);
        size_t fresh = count_new(before, after, pages);
        ck_assert_msg(fresh <= HOIST_IO_DROP_ALIGN / page_size(),
                      "%u x %llu: %zu of %zu pages left cached by a cold load", ra_threads[i],
                      (unsigned long long)ra_chunks[i], fresh, pages);
        free(before);
        free(after);
    }
    hoist_model_free(m);
    free(path);
}
END_TEST

static int mincore_enomem(void *addr, size_t len, unsigned char *vec)
{
    (void)addr, (void)len, (void)vec;
    errno = ENOMEM;
    return -1;
}

/* A kernel before 6.5. */
static int cachestat_enosys(int fd, uint64_t off, uint64_t len, uint64_t *cached)
{
    (void)fd, (void)off, (void)len, (void)cached;
    errno = ENOSYS;
    return -1;
}

/* Pages [first, first + n) of fd into the page cache, and (kernel readahead off) no others. */
static void read_pages(int fd, size_t first, size_t n)
{
    size_t page = page_size();
    char *buf = malloc(n * page);
    ck_assert_int_eq(pread(fd, buf, n * page, (off_t)(first * page)), (ssize_t)(n * page));
    free(buf);
}

/* Pages the kernel has reclaimed since boot (/proc/vmstat pgsteal_*), plus the times anyone has
 * written drop_caches (drop_pagecache): under memory pressure from tests running beside this
 * one, or a machine whose page cache is dropped from outside, a page that was read once may go,
 * which is not a drop of the load's. */
static uint64_t outside_evictions(void)
{
    FILE *f = fopen("/proc/vmstat", "r");
    char key[64];
    unsigned long long v, sum = 0;
    while (f && fscanf(f, "%63s %llu", key, &v) == 2)
        if (strncmp(key, "pgsteal_", 8) == 0 || strcmp(key, "drop_pagecache") == 0) sum += v;
    if (f) fclose(f);
    return sum;
}

/* A partly cached model keeps exactly the pages it had: scattered single pages, a run, the last
 * page; the load's own pages around them go. */
START_TEST(test_partly_cached_keeps_its_pages)
{
    char *path = tu_path(dir, "part.safetensors");
    st_write_random_model(path, 16, 4u << 20);
    hoist_model *m = st_open(path);
    int checked = 0;
    for (int i = 0; i < 4; i++) {
        if (!uncached(path)) break;
        size_t pages;
        free(st_resident_map(path, &pages));
        int fd = open(path, O_RDONLY);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
        for (size_t p = 3; p < pages / 2; p += 37) read_pages(fd, p, 1);
        read_pages(fd, pages / 2 + 5, 300);
        ck_assert_int_gt(pread(fd, &(char){0}, 1, (off_t)((pages - 1) * page_size())), 0);
        close(fd);
        unsigned char *before = st_resident_map(path, &pages);
        size_t kept = count_set(before, pages);
        ck_assert_msg(kept >= 300 && kept < pages / 4, "%zu of %zu pages cached", kept, pages);
        /* every other load without cachestat: mincore alone maps the pages */
        if (i % 2) st_hooks(&(hoist__io_hooks){.cachestat = cachestat_enosys});
        uint64_t reclaim = outside_evictions();
        unsigned char *after = load_then_map(m, path, ra_threads[i], ra_chunks[i], &pages);
        st_hooks(NULL);
        size_t lost = count_new(after, before, pages), fresh = count_new(before, after, pages);
        bool evicted = lost && outside_evictions() != reclaim; /* this round tells nothing */
        ck_assert_msg((lost == 0 || evicted) && fresh == 0,
                      "%u x %llu: of %zu cached pages %zu dropped, and %zu others left cached",
                      ra_threads[i], (unsigned long long)ra_chunks[i], kept, lost, fresh);
        checked += !evicted;
        free(before);
        free(after);
    }
    ck_assert_int_gt(checked, 0);
    hoist_model_free(m);
    free(path);
}
END_TEST


/* Case 38: a probe that fails cannot say what was cached: the load then drops every page it
 * read (the budget must hold), says why at DEBUG, and the bytes are the file's. cachestat
 * answering for a whole file needs no mincore; without it, a failing mincore fails the probe. */
START_TEST(test_probe_fails)
{
    char *path = tu_path(dir, "probe.safetensors");
    st_write_random_model(path, 4, 4u << 20);
    hoist_model *m = st_open(path);
    st_read_file(path);
    ck_assert(st_cached_fraction(path) >= 0.99);
    st_log_start();
    st_hooks(&(hoist__io_hooks){.mincore = mincore_enomem, .cachestat = cachestat_enosys});
    st_load_check(m, HOIST_PATH_STREAM, 2, 65536);
    st_hooks(NULL);
    hoist_set_log_callback(NULL, NULL, HOIST_LOG_WARN);
    ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, "cannot tell which pages were cached"), 1);
    ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, "mincore failed"), 1);
    /* a kernel with cachestat: a whole cached file needs no mincore */
    int fd = open(path, O_RDONLY);
    uint64_t cached;
    int cs = fd >= 0 && hoist__io_cachestat(fd, 0, 0, &cached) == 0;
    if (fd >= 0) close(fd);
    if (cs) {
        st_read_file(path);
        st_hooks(&(hoist__io_hooks){.mincore = mincore_enomem});
        size_t pages;
        unsigned char *map = load_then_map(m, path, 2, 65536, &pages);
        st_hooks(NULL);
        ck_assert_uint_ge(count_set(map, pages), pages * 99 / 100);
        free(map);
    }
    if (uncached(path)) { /* a filesystem that drops at all dropped it */
        st_read_file(path);
        st_hooks(&(hoist__io_hooks){.mincore = mincore_enomem, .cachestat = cachestat_enosys});
        size_t pages;
        unsigned char *map = load_then_map(m, path, 2, 65536, &pages);
        st_hooks(NULL);
        ck_assert_uint_lt(count_set(map, pages), pages / 100);
        free(map);
    }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* ---- a cold model through the workers' rings ------------------------------------------------ */

#define RING_LOG "each with an io_uring"
#define DIRECT_LOG "each with an io_uring reading what is not cached with O_DIRECT"
#define BUFFERED_LOG "each with an io_uring of buffered reads"

/* Case 27 through the rings: ring reads answering one byte, a random short count, or EINTR
 * every other completion give the file's bytes, with O_DIRECT (a short count at an unaligned
 * offset finishes buffered) and with the file refusing O_DIRECT at open (buffered rings); under
 * a 1 MiB budget too, and a budget too small is refused as on a warm file. One byte at a time
 * costs the square of a read's length (the kernel copies the rest again each time): those run
 * in 64 KiB windows. */
START_TEST(test_cold_ring_faults)
{
    char *path = tu_path(dir, "ring.safetensors");
    st_write_random_model(path, 6, (3u << 20) + 4097);
    hoist_model *m = st_open(path);
    int (*results[])(int, uint64_t, unsigned, int) = {NULL, st_result_one_byte,
                                                      st_result_random_short,
                                                      st_result_eintr_every_other};
    for (int refuse = 0; refuse <= 1; refuse++)
        for (int i = 0; i < 4 && uncached(path); i++) {
            st_log_start();
            st_hooks(&(hoist__io_hooks){.open = refuse ? st_open_refuse_direct : NULL,
                                        .uring_result = results[i]});
            st_load_check(m, HOIST_PATH_STREAM, i == 3 ? 1 : 0, i == 1 || i == 2 ? 65536 : 0);
            st_hooks(NULL);
            ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, refuse ? BUFFERED_LOG : DIRECT_LOG), 1);
        }
    if (uncached(path)) {
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = HOIST_PATH_STREAM;
        o.ram_budget = 1u << 20;
        hoist_weights *w = NULL;
        ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
        hoist_load_stats st = HOIST_LOAD_STATS_INIT;
        ck_assert_int_eq(hoist_weights_stats(w, &st), HOIST_OK);
        ck_assert_uint_le(st.peak_host_bytes, 1u << 20);
        tu_assert_weights_match_files(m, w);
        hoist_weights_free(w);
    }
    if (uncached(path)) {
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = HOIST_PATH_STREAM;
        o.ram_budget = 4096;
        hoist_weights *w = (hoist_weights *)1;
        int fds = st_fd_count();
        ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_BUDGET);
        ck_assert_int_eq(st_fd_count(), fds);
        ck_assert_ptr_null(w);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "at least"));
    }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* ---- O_DIRECT for what was not cached ------------------------------------------------------ */

static _Atomic uint64_t direct_bytes, buffered_bytes;

/* Counts what the ring reads bring, by descriptor kind; changes nothing. */
static int result_count(int direct, uint64_t off, unsigned len, int res)
{
    (void)off, (void)len;
    if (res > 0) atomic_fetch_add(direct ? &direct_bytes : &buffered_bytes, (uint64_t)res);
    return res;
}

static void count_start(void)
{
    atomic_store(&direct_bytes, 0);
    atomic_store(&buffered_bytes, 0);
    st_hooks(&(hoist__io_hooks){.uring_result = result_count});
}

/* A cold model is read with O_DIRECT, every byte of it: no page of it enters the page cache at
 * any moment of the load (sampled all along), none is left after, and the bytes are the file's;
 * into host memory (the destination handed as the buffer, the bytes copied out of the worker's
 * staging buffer) and through the device pipeline (slots, the bytes at an offset in them). */
START_TEST(test_cold_direct_adds_nothing)
{
    probe_path = tu_path(dir, "direct.safetensors");
    st_write_random_model(probe_path, 8, (4u << 20) + 12345);
    hoist_model *m = st_open(probe_path);
    const uint64_t data = 8 * ((4ull << 20) + 12345);
    unsigned threads[] = {0, 3, 1, 8, 0};
    uint64_t chunks[] = {0, 65536, 4096, 1u << 20, 0};
    for (int i = 0; i < 5 && uncached(probe_path); i++) {
        bool as_device = i == 4;
        hoist__gpu_set_hooks(&(hoist__gpu_hooks){.host_as_device = as_device});
        st_log_start();
        count_start();
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = HOIST_PATH_STREAM;
        o.threads = threads[i];
        o.chunk_bytes = chunks[i];
        hoist_weights *w = NULL;
        int rc = load_probed(m, &o, &w);
        st_hooks(NULL);
        ck_assert_msg(rc == HOIST_OK, "%s", hoist_last_error());
        double after = st_cached_fraction(probe_path);
        ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, DIRECT_LOG), 1);
        ck_assert_msg(probe_max == 0 && after == 0,
                      "%u x %llu%s: %.2f%% of the file cached during the load, %.2f%% after",
                      threads[i], (unsigned long long)chunks[i], as_device ? " (device)" : "",
                      probe_max * 100, after * 100);
        /* every byte of the data, each window widened to whole 4096-byte blocks */
        ck_assert_uint_ge(atomic_load(&direct_bytes), data);
        ck_assert_uint_eq(atomic_load(&buffered_bytes), 0);
        tu_assert_weights_match_files(m, w);
        hoist_weights_free(w);
        hoist__gpu_set_hooks(NULL);
    }
    hoist_model_free(m);
    free(probe_path);
}
END_TEST

/* Case 29 for stream: a file refusing O_DIRECT at open, or with EINVAL on its reads, is read
 * buffered through the rings, logged once; same bytes, and what the load read is dropped again
 * (one largest folio of slack, as test_cold_file_dropped). */
START_TEST(test_cold_direct_refused)
{
    char *path = tu_path(dir, "refused.safetensors");
    st_write_random_model(path, 6, (2u << 20) + 777);
    hoist_model *m = st_open(path);
    hoist__io_hooks at_open = {.open = st_open_refuse_direct};
    hoist__io_hooks on_read = {.uring_result = st_result_refuse_direct};
    const hoist__io_hooks *hooks[] = {&at_open, &on_read};
    for (int i = 0; i < 2 && uncached(path); i++) {
        st_log_start();
        st_hooks(hooks[i]);
        size_t pages;
        unsigned char *after = load_then_map(m, path, 0, 0, &pages);
        st_hooks(NULL);
        size_t fresh = count_set(after, pages);
        free(after);
        ck_assert_msg(fresh <= HOIST_IO_DROP_ALIGN / page_size(),
                      "refused %s: %zu of %zu pages left cached", i ? "on a read" : "at open",
                      fresh, pages);
        if (i == 0) {
            ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, BUFFERED_LOG), 1);
            ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, "(not O_DIRECT: "), 1);
        } else {
            ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, DIRECT_LOG), 1);
            ck_assert_int_eq(st_lines(HOIST_LOG_INFO, "O_DIRECT refused (EINVAL"), 1);
        }
    }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* A model on a memory filesystem loads as any other, and so does one with a cold shard on disk
 * and a shard linked to /dev/shm: the rings read the first with O_DIRECT and the second buffered
 * (a memory filesystem's pages are the file: nothing to keep clean), and its pages stay. */
START_TEST(test_cold_with_shard_in_memory)
{
    char *shm = st_shm_dir();
    char *onshm = tu_path(shm, "m.safetensors");
    st_write_random_model(onshm, 3, 300001);
    hoist_model *m = st_open(onshm);
    st_load_check(m, HOIST_PATH_STREAM, 0, 0);
    st_load_check(m, HOIST_PATH_STREAM, 3, 4096);
    ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, RING_LOG), 0); /* it is all cached */
    hoist_model_free(m);
    free(onshm);

    char map[8192] = "{";
    st_write_shard(dir, "model-00001-of-00002.safetensors", "a", 40, 5, map, sizeof map);
    st_write_shard(shm, "model-00002-of-00002.safetensors", "b", 5, 6, map, sizeof map);
    char *target = tu_path(shm, "model-00002-of-00002.safetensors");
    char *link = tu_path(dir, "model-00002-of-00002.safetensors");
    ck_assert_int_eq(symlink(target, link), 0);
    char json[9000];
    snprintf(json, sizeof json, "{\"metadata\":{\"total_size\":0},\"weight_map\":%s}}", map);
    char *index = tu_path(dir, "model.safetensors.index.json");
    tu_write(index, json, strlen(json));
    char *disk = tu_path(dir, "model-00001-of-00002.safetensors");
    m = st_open(index);
    for (int i = 0; i < 2 && uncached(disk); i++) {
        st_log_start();
        count_start();
        st_load_check(m, HOIST_PATH_STREAM, i ? 2 : 0, i ? 65536 : 0);
        st_hooks(NULL);
        ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, DIRECT_LOG), 1);
        ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, "a memory filesystem"), 1);
        ck_assert_uint_gt(atomic_load(&direct_bytes), 0);
        ck_assert_uint_gt(atomic_load(&buffered_bytes), 0);
        ck_assert(st_cached_fraction(target) == 1.0);
    }
    hoist_model_free(m);
    free(disk);
    free(index);
    free(link);
    free(target);
    tu_rmtree(shm);
}
END_TEST

/* A ring read failing names the file and the offset; a file ending early through a ring is a
 * changed file; nothing is published and every descriptor is closed. */
START_TEST(test_cold_ring_errors)
{
    hoist_model *m = open_odd(20, 4);
    char *path = tu_path(dir, "odd.safetensors");
    st_fail_off = 100000;
    hoist__io_hooks eio = {.uring_result = st_result_eio_above};
    hoist__io_hooks eof = {.uring_result = st_result_eof_above};
    const hoist__io_hooks *hooks[] = {&eio, &eof};
    const int want[] = {HOIST_E_IO, HOIST_E_FILE_CHANGED};
    for (int i = 0; i < 2 && uncached(path); i++) {
        st_log_start();
        st_hooks(hooks[i]);
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = HOIST_PATH_STREAM;
        o.chunk_bytes = 65536;
        hoist_weights *w = (hoist_weights *)1;
        int fds = st_fd_count();
        ck_assert_int_eq(hoist_load(m, &o, &w), want[i]);
        st_hooks(NULL);
        ck_assert_int_eq(st_fd_count(), fds);
        ck_assert_ptr_null(w);
        ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, DIRECT_LOG), 1);
        const char *e = hoist_last_error();
        ck_assert_msg(strstr(e, "odd.safetensors") && strstr(e, i ? "ends at byte" : "at byte"),
                      "message: %s", e);
    }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* Case 31 for stream: no io_uring (kernel.io_uring_disabled) reads a cold model with one pread
 * worker, same bytes. */
START_TEST(test_cold_without_ring)
{
    char *path = tu_path(dir, "noring.safetensors");
    st_write_random_model(path, 4, 1u << 20);
    hoist_model *m = st_open(path);
    if (uncached(path)) {
        st_init_errno = EPERM;
        st_hooks(&(hoist__io_hooks){.uring_init = st_uring_init_fail});
        hoist_load_stats s = st_load_stats(m, HOIST_PATH_STREAM);
        st_hooks(NULL);
        ck_assert_uint_eq(s.threads, 1);
        ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, "not in the page cache: 1 worker"), 1);
        ck_assert_int_eq(st_lines(HOIST_LOG_DEBUG, "io_uring"), 0);
    }
    hoist_model_free(m);
    free(path);
}
END_TEST

START_TEST(test_ram_budget)
{
    char *path = tu_path(dir, "mid.safetensors");
    st_write_random_model(path, 4, 16u << 20);
    hoist_model *m = st_open(path);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.ram_budget = 1u << 20;
    hoist_weights *w = NULL;
    ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    ck_assert_uint_le(s.peak_host_bytes, 1u << 20);
    ck_assert_uint_gt(s.peak_host_bytes, 0);
    tu_assert_weights_match_files(m, w);
    hoist_weights_free(w);

    o.ram_budget = 4096;
    w = (hoist_weights *)1;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_BUDGET);
    ck_assert_ptr_null(w);
    const char *e = hoist_last_error();
    ck_assert_msg(strstr(e, "at least") && strstr(e, "4096"), "message: %s", e);
    hoist_model_free(m);
    free(path);
}
END_TEST

/* Case 37. */
START_TEST(test_above_4g) { st_check_sparse_above_4g(dir, HOIST_PATH_STREAM); }
END_TEST

int main(void)
{
    Suite *s = suite_create("source_stream");
    TCase *tc = tcase_create("host");
    tcase_add_checked_fixture(tc, st_setup, st_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_odd_sizes_small_windows);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_read_ahead_counted);
    tcase_add_test(tc, test_sharded);
    tcase_add_test(tc, test_short_reads_and_eintr);
    tcase_add_test(tc, test_read_error_names_file_and_offset);
    tcase_add_test(tc, test_truncated_file);
    tcase_add_test(tc, test_truncated_during_load);
    tcase_add_test(tc, test_page_cache_stays_flat);
    tcase_add_test(tc, test_warm_file_stays_cached);
    tcase_add_test(tc, test_cold_file_dropped);
    tcase_add_test(tc, test_partly_cached_keeps_its_pages);
    tcase_add_test(tc, test_probe_fails);
    tcase_add_test(tc, test_cold_ring_faults);
    tcase_add_test(tc, test_cold_ring_errors);
    tcase_add_test(tc, test_cold_direct_adds_nothing);
    tcase_add_test(tc, test_cold_direct_refused);
    tcase_add_test(tc, test_cold_with_shard_in_memory);
    tcase_add_test(tc, test_cold_without_ring);
    tcase_add_test(tc, test_ram_budget);
    tcase_add_test(tc, test_above_4g);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
