/* Packed models and manifest verification into GPU memory (CUDA): every path decodes into the
 * device arena byte-identical to the original; verified loads pass, and a damaged container or
 * file fails naming the tensor with the device memory given back. The GPU codec (codec 2,
 * gpu/codec.cu): the CUDA kernel decodes what the CPU decoder decodes, GPU-decoded loads equal
 * the original, broken chunks fail naming the tensor. Exits 77 (skipped) without a CUDA device. */
#include "formats/exphuff.h"
#include "gpu/codec.h"
#include "gpu/gpu.h"
#include "testutil.h"

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

/* Every tensor of orig (from its file) equals the tensor of that name in w. */
static void assert_same_as(const hoist_model *orig, const hoist_weights *w)
{
    size_t n;
    unsigned char *file = NULL;
    const char *loaded_path = NULL;
    for (size_t i = 0; i < hoist_model_tensor_count(orig); i++) {
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        hoist_model_tensor(orig, i, &t);
        const char *p = hoist_model_file_path(orig, t.file);
        if (!loaded_path || strcmp(p, loaded_path) != 0) {
            free(file);
            file = tu_read(p, &n);
            loaded_path = p;
        }
        size_t wi = 0;
        hoist_view v = HOIST_VIEW_INIT;
        for (; wi < hoist_weights_count(w); wi++) {
            hoist_weights_view(w, wi, &v);
            if (strcmp(v.name, t.name) == 0) break;
        }
        ck_assert_uint_lt(wi, hoist_weights_count(w));
        ck_assert_int_eq(v.device, 0);
        unsigned char *got = malloc(t.nbytes + 1);
        ck_assert_int_eq(hoist_weights_read(w, wi, 0, got, t.nbytes), HOIST_OK);
        ck_assert_msg(memcmp(file + t.offset, got, t.nbytes) == 0, "%s differs", t.name);
        free(got);
    }
    free(file);
}

static const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_URING, HOIST_PATH_STREAM};

static int load_gpu(hoist_model *m, hoist_path path, unsigned verify, int reg, hoist_weights **w)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.device = 0;
    o.path = path;
    o.verify = verify;
    o.mmap_register = reg;
    *w = NULL;
    return hoist_load(m, &o, w);
}

START_TEST(test_packed_every_path)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 66, 31);
    hoist_model *orig = tu_open_ok(src);
    hoist_pack_options po = HOIST_PACK_OPTIONS_DEFAULT;
    po.chunk_bytes = 16384;
    ck_assert_int_eq(hoist_pack(orig, dst, &po, NULL), HOIST_OK);
    hoist_model *m = tu_open_ok(dst);
    for (size_t p = 0; p < 3; p++)
        for (int reg = -1; reg <= 1; reg += 2) {
            hoist_weights *w;
            int rc = load_gpu(m, paths[p], HOIST_VERIFY_READBACK, reg, &w);
            ck_assert_msg(rc == HOIST_OK, "%s: %s", hoist_path_name(paths[p]), hoist_last_error());
            assert_same_as(orig, w);
            hoist_weights_free(w);
        }
    hoist_model_free(m);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

START_TEST(test_gen_model_packed_and_verified)
{
    char args[1024], *mdir = tu_path(dir, "m"), *out = tu_path(dir, "m.hoist");
    snprintf(args, sizeof args,
             "gen '%s' --preset tiny --hidden 512 --intermediate 1376 --vocab 4096 --layers 4 "
             "--shard-size 4M --quiet",
             mdir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    hoist_model *orig = tu_open_ok(mdir);
    ck_assert_int_eq(hoist_model_sum(orig, NULL), HOIST_OK);
    ck_assert_int_eq(hoist_pack(orig, out, NULL, NULL), HOIST_OK);
    hoist_model *m = tu_open_ok(out);
    for (size_t p = 0; p < 3; p++) {
        hoist_weights *w;
        ck_assert_msg(load_gpu(m, paths[p], HOIST_VERIFY_MANIFEST, -1, &w) == HOIST_OK, "%s",
                      hoist_last_error());
        assert_same_as(orig, w);
        hoist_weights_free(w);
        ck_assert_msg(load_gpu(orig, paths[p], HOIST_VERIFY_MANIFEST, -1, &w) == HOIST_OK, "%s",
                      hoist_last_error());
        hoist_load_stats s = HOIST_LOAD_STATS_INIT;
        ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
        ck_assert(s.verify_seconds > 0);
        hoist_weights_free(w);
    }
    hoist_model_free(m);
    hoist_model_free(orig);
    free(mdir);
    free(out);
}
END_TEST

/* A flipped bit fails the load naming the tensor and leaves no device memory behind. */
START_TEST(test_damage_fails_and_releases)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 40, 12);
    hoist_model *orig = tu_open_ok(src);
    ck_assert_int_eq(hoist_model_sum(orig, NULL), HOIST_OK);
    ck_assert_int_eq(hoist_pack(orig, dst, NULL, NULL), HOIST_OK);
    size_t ti;
    ck_assert_int_eq(hoist_model_find(orig, "t037", &ti), HOIST_OK);
    hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
    hoist_model_tensor(orig, ti, &t);
    hoist_model_free(orig);
    size_t n;
    unsigned char *b = tu_read(src, &n);
    b[t.offset + 100] ^= 1;
    tu_write(src, b, n);
    free(b);
    b = tu_read(dst, &n);
    b[n / 2] ^= 1; /* in the frames of some large tensor */
    tu_write(dst, b, n);
    free(b);
    orig = tu_open_ok(src);
    hoist_model *m = tu_open_ok(dst);
    for (size_t p = 0; p < 3; p++) {
        hoist_weights *w;
        ck_assert_int_eq(load_gpu(orig, paths[p], HOIST_VERIFY_MANIFEST, -1, &w),
                         HOIST_E_INTEGRITY);
        ck_assert_ptr_null(w);
        ck_assert_msg(strstr(hoist_last_error(), "t037"), "%s: %s", hoist_path_name(paths[p]),
                      hoist_last_error());
        int rc = load_gpu(m, paths[p], 0, -1, &w);
        ck_assert_msg(rc == HOIST_E_INTEGRITY || rc == HOIST_E_DECODE, "%s",
                      hoist_status_name(rc));
        ck_assert_ptr_null(w);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "tensor '"));
        for (int r = 0; r < HOIST_GPU_NRES; r++)
            if (r != HOIST_GPU_RES_PINNED) /* the pinned cache keeps staging between loads */
                ck_assert_int_eq(hoist__gpu_live(r), 0);
    }
    /* a registered window that fails the manifest check is unregistered */
    hoist_weights *w;
    ck_assert_int_eq(load_gpu(orig, HOIST_PATH_MMAP, HOIST_VERIFY_MANIFEST, 1, &w),
                     HOIST_E_INTEGRITY);
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_REGISTERED), 0);
    ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_DEVICE), 0);
    hoist_model_free(m);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST


/* ---- the GPU codec ------------------------------------------------------------------------ */

static uint32_t xs(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* bf16 bits: 0 normal-ish, 1 specials (inf, NaN, denormals, zeros), 2 random, 3 skewed
 * exponents (12-bit codes), 4 one exponent. */
static void fill(uint8_t *p, size_t elems, int pat, uint32_t seed)
{
    static const uint16_t sp[] = {0x7f80, 0xff80, 0x7fc0, 0xffc1, 0x0001, 0x807f, 0x0000, 0x8000};
    uint32_t x = seed | 1;
    for (size_t i = 0; i < elems; i++) {
        uint16_t v;
        if (pat == 0) {
            float f = 0;
            for (int k = 0; k < 4; k++) f += (float)(xs(&x) & 0xffff) / 65536.0f - 0.5f;
            f *= 0.05f;
            uint32_t u;
            memcpy(&u, &f, 4);
            v = (uint16_t)(u >> 16);
        } else if (pat == 1) {
            v = sp[xs(&x) % 8];
        } else if (pat == 2) {
            v = (uint16_t)xs(&x);
        } else if (pat == 3) {
            unsigned k = 0;
            while (k < 60 && (xs(&x) & 1)) k++;
            v = (uint16_t)(((0x40 + k) << 7) | (xs(&x) & 0x7f));
        } else {
            v = (uint16_t)(0x3f80 | (xs(&x) & 0x807f));
        }
        p[2 * i] = (uint8_t)v;
        p[2 * i + 1] = (uint8_t)(v >> 8);
    }
}

/* Encodes n chunks of `elems` elements at unaligned offsets of one staged window, decodes and
 * hashes them with the CUDA kernels into device memory, and returns the kernels' milliseconds;
 * want/got hold the original and the GPU's bytes (host memory), cpu the CPU decoder's, err the
 * two error words (decoding, hashing). corrupt 1 flips a bit of chunk n/2's bitstream, 2 its
 * recorded hash. */
typedef struct staged_run {
    uint8_t *want, *got, *cpu;
    uint32_t err[2];
    float ms;
} staged_run;

static staged_run gpu_decode_chunks(uint32_t n, uint32_t elems, int pat, int corrupt)
{
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    ck_assert_ptr_nonnull(g);
    ck_assert(hoist__gpu_codec_ready(g));
    uint64_t len = 2ull * elems, cap = 2 * len + 1024, total = n * len;
    uint8_t *stage = calloc(1, n * (cap + 3) + HOIST_GPU_CODEC_SLACK);
    staged_run r = {.want = malloc(total), .got = malloc(total), .cpu = malloc(total),
                    .err = {UINT32_MAX, UINT32_MAX}};
    hoist__gpu_codec_chunk *d = calloc(n, sizeof *d);
    uint8_t *dev_out = NULL, *dev_in = NULL, *dev_d = NULL, *dev_err = NULL;
    uint64_t at = 3, stage_bytes;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *w = r.want + i * len;
        fill(w, elems, pat, 17 + i);
        size_t st = hoist__exphuff_encode(w, (uint32_t)len, stage + at, cap);
        ck_assert_uint_gt(st, 0);
        hoist__exphuff x;
        char why[256];
        ck_assert_int_eq(hoist__exphuff_parse(stage + at, (uint32_t)st, (uint32_t)len, &x, why,
                                              sizeof why), 0);
        ck_assert_int_eq(hoist__exphuff_decode(stage + at, &x, r.cpu + i * len, why, sizeof why),
                         0);
        d[i] = (hoist__gpu_codec_chunk){.xxh3 = XXH3_64bits(w, len), .in = (uint32_t)at,
                                        .elems = x.elems,
                                        .block_elems = x.block_elems, .syms = x.syms,
                                        .offsets = x.offsets, .raw = x.raw, .bits = x.bits,
                                        .words = x.words, .index = i};
        memcpy(d[i].count, x.count, sizeof d[i].count);
        if (corrupt == 1 && i == n / 2) stage[at + x.bits + 1] ^= 0x10;
        if (corrupt == 2 && i == n / 2) d[i].xxh3 ^= 1;
        at += st + (i % 4);
    }
    stage_bytes = at + HOIST_GPU_CODEC_SLACK;
    ck_assert_int_eq(g->mem_alloc(0, total, (void **)&dev_out), HOIST_OK);
    ck_assert_int_eq(g->mem_alloc(0, stage_bytes, (void **)&dev_in), HOIST_OK);
    ck_assert_int_eq(g->mem_alloc(0, n * sizeof *d, (void **)&dev_d), HOIST_OK);
    ck_assert_int_eq(g->mem_alloc(0, 256, (void **)&dev_err), HOIST_OK);
    for (uint32_t i = 0; i < n; i++) d[i].out = (uint64_t)(uintptr_t)(dev_out + i * len);
    hoist__stream *s;
    hoist__event *e0, *e1;
    ck_assert_int_eq(g->stream_create(0, &s), HOIST_OK);
    ck_assert_int_eq(g->event_create_timed(0, &e0), HOIST_OK);
    ck_assert_int_eq(g->event_create_timed(0, &e1), HOIST_OK);
    ck_assert_int_eq(g->copy_h2d(dev_in, stage, stage_bytes, s), HOIST_OK);
    ck_assert_int_eq(g->copy_h2d(dev_d, d, n * sizeof *d, s), HOIST_OK);
    ck_assert_int_eq(g->copy_h2d(dev_err, r.err, sizeof r.err, s), HOIST_OK);
    uint32_t groups = (elems / HOIST_EXPHUFF_BLOCK + 1 + HOIST_GPU_CODEC_THREADS - 1) /
                      HOIST_GPU_CODEC_THREADS;
    ck_assert_int_eq(g->event_record(e0, s), HOIST_OK);
    ck_assert_int_eq(hoist__gpu_codec_decode(g, 0, s, dev_in, (void *)dev_d, n, groups,
                                             (uint32_t *)dev_err),
                     HOIST_OK);
    ck_assert_int_eq(g->event_record(e1, s), HOIST_OK);
    ck_assert_int_eq(g->stream_sync(s), HOIST_OK);
    ck_assert_int_eq(g->event_elapsed(e0, e1, &r.ms), HOIST_OK);
    ck_assert_int_eq(g->copy_d2h(r.got, dev_out, total, 0), HOIST_OK);
    ck_assert_int_eq(g->copy_d2h(r.err, dev_err, sizeof r.err, 0), HOIST_OK);
    g->event_destroy(e0);
    g->event_destroy(e1);
    g->stream_destroy(s);
    g->mem_free(0, dev_out);
    g->mem_free(0, dev_in);
    g->mem_free(0, dev_d);
    g->mem_free(0, dev_err);
    free(stage);
    free(d);
    return r;
}

static void staged_free(staged_run *r)
{
    free(r->want);
    free(r->got);
    free(r->cpu);
}

/* The kernel and the CPU decoder give the original bytes for every pattern and awkward size
 * (less than a block, odd counts, a 4 MiB chunk of many groups), chunks at unaligned offsets,
 * and the hash kernel finds every chunk's XXH3 as libxxhash does (the short lengths included);
 * a flipped bit makes a kernel name that chunk, and so does a wrong recorded hash (the hash
 * kernel alone). Prints the kernels' output rate on 256 MiB of normal-like bf16. */
START_TEST(test_codec_kernel_agrees_with_cpu)
{
    static const uint32_t sizes[] = {1, 3, 255, 1025, 4097, 131072, 2097152};
    for (int pat = 0; pat < 5; pat++)
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            uint32_t n = sizes[k] > 200000 ? 2 : 5;
            staged_run r = gpu_decode_chunks(n, sizes[k], pat, 0);
            ck_assert_uint_eq(r.err[0], UINT32_MAX);
            ck_assert_msg(r.err[1] == UINT32_MAX, "hash: pattern %d, %u elements", pat, sizes[k]);
            ck_assert_msg(memcmp(r.cpu, r.want, 2ull * n * sizes[k]) == 0, "cpu: pattern %d", pat);
            ck_assert_msg(memcmp(r.got, r.want, 2ull * n * sizes[k]) == 0,
                          "gpu: pattern %d, %u elements", pat, sizes[k]);
            staged_free(&r);
        }
    staged_run bad = gpu_decode_chunks(5, 131072, 0, 1);
    ck_assert(bad.err[0] == 2 || bad.err[1] == 2);
    staged_free(&bad);
    staged_run wrong = gpu_decode_chunks(5, 131072, 0, 2);
    ck_assert_uint_eq(wrong.err[0], UINT32_MAX);
    ck_assert_uint_eq(wrong.err[1], 2);
    ck_assert(memcmp(wrong.got, wrong.want, 10 * 131072) == 0);
    staged_free(&wrong);
    staged_run big = gpu_decode_chunks(64, 2097152, 0, 0);
    ck_assert_uint_eq(big.err[0], UINT32_MAX);
    ck_assert_uint_eq(big.err[1], UINT32_MAX);
    ck_assert(memcmp(big.got, big.want, 64ull * 4194304) == 0);
    printf("codec kernels: 256 MiB of bf16 decoded and hashed in %.3f ms: %.1f GB/s of output\n",
           big.ms, 64.0 * 4194304 / (big.ms * 1e-3) / 1e9);
    staged_free(&big);
}
END_TEST

/* hoist gen checkpoints (bf16 and f16) packed with --codec gpu load into cuda:0 byte for byte
 * through every path, decoded on the GPU (stats say how much), with and without verification;
 * the same container loaded with HOIST_GPU_DECODE=0 (CPU decoding) gives the same bytes. */
START_TEST(test_codec_gpu_load_equals_original)
{
    static const char *dtypes[] = {"bf16", "f16"};
    for (int d = 0; d < 2; d++) {
        char mdir[512], out[512];
        tu_gen_packed(dir, dtypes[d],
                      "--preset tiny --hidden 512 --intermediate 1376 --vocab 4096 --layers 4 "
                      "--shard-size 4M",
                      "--codec gpu --chunk 64K", mdir, out);
        hoist_model *orig = tu_open_ok(mdir), *m = tu_open_ok(out);
        for (size_t p = 0; p < 3; p++)
            for (unsigned verify = 0; verify <= HOIST_VERIFY_READBACK; verify++) {
                hoist_weights *w;
                int rc = load_gpu(m, paths[p], verify, -1, &w);
                ck_assert_msg(rc == HOIST_OK, "%s: %s", hoist_path_name(paths[p]),
                              hoist_last_error());
                assert_same_as(orig, w);
                hoist_load_stats st = HOIST_LOAD_STATS_INIT;
                ck_assert_int_eq(hoist_weights_stats(w, &st), HOIST_OK);
                ck_assert_uint_gt(st.gpu_decoded_bytes, hoist_model_total_bytes(m) / 2);
                ck_assert_uint_eq(st.unhashed_bytes, 0);
                hoist_weights_free(w);
            }
        setenv("HOIST_GPU_DECODE", "0", 1);
        hoist_weights *w;
        ck_assert_int_eq(load_gpu(m, HOIST_PATH_URING, 0, -1, &w), HOIST_OK);
        assert_same_as(orig, w);
        hoist_load_stats st = HOIST_LOAD_STATS_INIT;
        ck_assert_int_eq(hoist_weights_stats(w, &st), HOIST_OK);
        ck_assert_uint_eq(st.gpu_decoded_bytes, 0);
        hoist_weights_free(w);
        unsetenv("HOIST_GPU_DECODE");
        ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_DEVICE), 0);
        hoist_model_free(m);
        hoist_model_free(orig);
    }
}
END_TEST

/* The handcrafted codec 2 containers (tests/data/packed/g_*, good_gpu) loaded into cuda:0, with
 * verification and without (the hash kernel alone): the status cases.tsv lists, naming what it
 * lists, device memory given back. */
START_TEST(test_codec_gpu_handcrafted)
{
    char *tsv = tu_data("packed/cases.tsv");
    FILE *f = fopen(tsv, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256], open_s[64], load_s[64], verify_s[64], needle[256] = "";
        int num;
        line[strcspn(line, "\n")] = 0;
        if (sscanf(line, "%255[^\t]\t%d\t%63[^\t]\t%63[^\t]\t%63[^\t]\t%255[^\n]", name, &num,
                   open_s, load_s, verify_s, needle) < 5 ||
            strcmp(open_s, "OK") != 0 || (strncmp(name, "g_", 2) && strcmp(name, "good_gpu.hoist")))
            continue;
        char rel[300];
        snprintf(rel, sizeof rel, "packed/%s", name);
        char *path = tu_data(rel);
        hoist_model *m = tu_open_ok(path);
        for (size_t p = 0; p < 6; p++) {
            hoist_weights *w;
            int rc = load_gpu(m, paths[p % 3], p < 3 ? HOIST_VERIFY_READBACK : 0, -1, &w);
            char want[80];
            snprintf(want, sizeof want, "HOIST_E_%s", load_s);
            ck_assert_msg(strcmp(load_s, "OK") == 0 ? rc == HOIST_OK
                                                    : strcmp(hoist_status_name(rc), want) == 0,
                          "%s via %s: %s: %s", name, hoist_path_name(paths[p % 3]),
                          hoist_status_name(rc), hoist_last_error());
            if (rc < 0)
                ck_assert_msg(strstr(hoist_last_error(), needle), "%s: '%s' lacks '%s'", name,
                              hoist_last_error(), needle);
            hoist_weights_free(w);
            ck_assert_int_eq(hoist__gpu_live(HOIST_GPU_RES_DEVICE), 0);
        }
        hoist_model_free(m);
        free(path);
        n++;
    }
    fclose(f);
    free(tsv);
    ck_assert_int_ge(n, 12);
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return TU_SKIP;
    }
    Suite *s = suite_create("gpu_packed");
    TCase *tc = tcase_create("cuda");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_packed_every_path);
    tcase_add_test(tc, test_gen_model_packed_and_verified);
    tcase_add_test(tc, test_damage_fails_and_releases);
    tcase_add_test(tc, test_codec_kernel_agrees_with_cpu);
    tcase_add_test(tc, test_codec_gpu_load_equals_original);
    tcase_add_test(tc, test_codec_gpu_handcrafted);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
