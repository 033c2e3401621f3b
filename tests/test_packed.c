/* formats/packed.c, packed_write.c, loader/plan_packed.c, transform_decode.c: pack -> load gives
 * the original bytes for every dtype, odd sizes, every path, on the host and through the device
 * pipeline (host_as_device); handcrafted containers (tests/data/packed, docs/RELIABILITY.md cases 25
 * and 26 and the structure) fail with their status, naming the tensor, publishing nothing. */
#include "formats/exphuff.h"
#include "gpu/codec.h"
#include "gpu/gpu.h"
#include "core/core.h"
#include "core/io.h"
#include "testutil.h"
#include "cut_sweep.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>
#include <unistd.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    hoist__gpu_set_hooks(NULL);
    tu_rmtree(dir);
    dir = NULL;
}

static void pack_ok(hoist_model *m, const char *out, uint64_t chunk, int filter, int level)
{
    hoist_pack_options o = HOIST_PACK_OPTIONS_DEFAULT;
    o.chunk_bytes = chunk;
    o.filter = filter;
    o.level = level;
    o.threads = 3;
    o.overwrite = 1;
    hoist_pack_stats st = HOIST_PACK_STATS_INIT;
    int rc = hoist_pack(m, out, &o, &st);
    ck_assert_msg(rc == HOIST_OK, "pack: %s", hoist_last_error());
    ck_assert_uint_eq(st.model_bytes, hoist_model_total_bytes(m));
    struct stat sb;
    ck_assert_int_eq(stat(out, &sb), 0);
    ck_assert_uint_eq(st.file_bytes, (uint64_t)sb.st_size);
}

/* Every tensor of orig, read from its file, equals the tensor of the same name in w. */
static void assert_same_as(const hoist_model *orig, const hoist_weights *w)
{
    ck_assert_uint_eq(hoist_weights_count(w), hoist_model_tensor_count(orig));
    for (size_t i = 0; i < hoist_model_tensor_count(orig); i++) {
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        hoist_view v = HOIST_VIEW_INIT;
        ck_assert_int_eq(hoist_model_tensor(orig, i, &t), HOIST_OK);
        ck_assert_int_eq(hoist_weights_find(w, t.name, &v), HOIST_OK);
        ck_assert_uint_eq(v.nbytes, t.nbytes);
        ck_assert_int_eq(v.dtype, t.dtype);
        ck_assert_uint_eq(v.ndim, t.ndim);
        ck_assert_mem_eq(v.shape, t.shape, t.ndim * sizeof *t.shape);
        ck_assert_uint_eq((uintptr_t)v.data % 64, 0);
        unsigned char *want = malloc(t.nbytes + 1), *got = malloc(t.nbytes + 1);
        FILE *f = fopen(hoist_model_file_path(orig, t.file), "rb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fseeko(f, (off_t)t.offset, SEEK_SET), 0);
        ck_assert_uint_eq(fread(want, 1, t.nbytes, f), t.nbytes);
        fclose(f);
        size_t idx;
        ck_assert_int_eq(hoist_model_find(orig, t.name, &idx), HOIST_OK);
        size_t wi = 0;
        while (wi < hoist_weights_count(w)) {
            hoist_view x = HOIST_VIEW_INIT;
            hoist_weights_view(w, wi, &x);
            if (strcmp(x.name, t.name) == 0) break;
            wi++;
        }
        ck_assert_int_eq(hoist_weights_read(w, wi, 0, got, t.nbytes), HOIST_OK);
        ck_assert_msg(memcmp(want, got, t.nbytes) == 0, "tensor %s differs from the original",
                      t.name);
        free(want);
        free(got);
    }
}

static const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_URING, HOIST_PATH_STREAM};

/* Loads packed through `path` (on the host, or through the device pipeline with host_as_device)
 * and checks every byte against orig. */
static hoist_load_stats load_same(hoist_model *packed, const hoist_model *orig, hoist_path path,
                                  int as_device, unsigned threads, uint64_t chunk)
{
    hoist__gpu_hooks h = {.host_as_device = as_device != 0};
    hoist__gpu_set_hooks(as_device ? &h : NULL);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = path;
    o.threads = threads;
    o.chunk_bytes = chunk;
    hoist_weights *w = NULL;
    int rc = hoist_load(packed, &o, &w);
    ck_assert_msg(rc == HOIST_OK, "%s%s: %s", hoist_path_name(path),
                  as_device ? " (device pipeline)" : "", hoist_last_error());
    assert_same_as(orig, w);
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    hoist_weights_free(w);
    hoist__gpu_set_hooks(NULL);
    return s;
}

/* ---- round trips -------------------------------------------------------------------------- */

/* Every dtype, odd sizes, several chunk sizes, filters and levels; every path, host and device
 * pipeline, one and several workers, windows from the smallest allowed up. */
START_TEST(test_round_trip_every_dtype_every_path)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 66, 21);
    hoist_model *orig = tu_open_ok(src);
    static const struct {
        uint64_t chunk;
        int filter, level;
    } packs[] = {{4096, HOIST_FILTER_AUTO, 1},
                 {65536, HOIST_FILTER_PLANES, 3},
                 {8192, HOIST_FILTER_NONE, 1},
                 {0, HOIST_FILTER_EXPONENT, 0}};
    for (size_t p = 0; p < sizeof packs / sizeof *packs; p++) {
        pack_ok(orig, dst, packs[p].chunk, packs[p].filter, packs[p].level);
        hoist_model *m = tu_open_ok(dst);
        ck_assert_int_eq(hoist_model_format(m), HOIST_FORMAT_PACKED);
        ck_assert_uint_eq(hoist_model_total_bytes(m), hoist_model_total_bytes(orig));
        ck_assert_str_eq(hoist_model_metadata_get(m, "format"), "pt");
        for (size_t pi = 0; pi < 3; pi++)
            for (int dev = 0; dev <= 1; dev++) {
                load_same(m, orig, paths[pi], dev, 1, 0);
                hoist_load_stats s = load_same(m, orig, paths[pi], dev, 3, 2 * 65536);
                ck_assert_uint_eq(s.bytes, hoist_model_total_bytes(orig));
                hoist_packed_info info = HOIST_PACKED_INFO_INIT;
                ck_assert_int_eq(hoist_model_packed_info(m, &info), HOIST_OK);
                ck_assert_uint_eq(s.file_bytes, info.stored_bytes);
            }
        hoist_model_free(m);
    }
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

/* A sharded bf16 checkpoint from hoist gen packs into one container at most 75% of its size (the
 * issue's target; measured 68%), and f16 and f32 ones round-trip; the tensor hashes in the
 * container are those of the original bytes (hoist verify checks them). */
START_TEST(test_gen_checkpoints)
{
    static const char *dtypes[] = {"bf16", "f16", "f32"};
    for (int d = 0; d < 3; d++) {
        char args[1024], mdir[512], out[512];
        snprintf(mdir, sizeof mdir, "%s/%s", dir, dtypes[d]);
        snprintf(out, sizeof out, "%s/%s.hoist", dir, dtypes[d]);
        snprintf(args, sizeof args,
                 "gen '%s' --preset tiny --hidden 256 --intermediate 688 --vocab 1024 --layers 3 "
                 "--dtype %s --shard-size 1M --quiet",
                 mdir, dtypes[d]);
        ck_assert_int_eq(tu_run_cli(args), 0);
        hoist_model *orig = tu_open_ok(mdir);
        ck_assert_uint_gt(hoist_model_file_count(orig), 1);
        pack_ok(orig, out, 0, HOIST_FILTER_AUTO, 0);
        hoist_model *m = tu_open_ok(out);
        hoist_packed_info info = HOIST_PACKED_INFO_INIT;
        ck_assert_int_eq(hoist_model_packed_info(m, &info), HOIST_OK);
        if (d == 0)
            ck_assert_msg(info.stored_bytes * 4 <= hoist_model_total_bytes(m) * 3,
                          "bf16 packs to %llu of %llu bytes",
                          (unsigned long long)info.stored_bytes,
                          (unsigned long long)hoist_model_total_bytes(m));
        ck_assert_uint_lt(info.stored_bytes, hoist_model_total_bytes(m));
        load_same(m, orig, HOIST_PATH_URING, 1, 4, 0);
        ck_assert_int_eq(hoist_model_verify(m, NULL), HOIST_OK);
        ck_assert_int_eq(hoist_model_sum(orig, NULL), HOIST_OK);
        /* the container's tensor hashes are the manifest's */
        for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
            hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
            hoist_tensor_packing tp = HOIST_TENSOR_PACKING_INIT;
            hoist_model_tensor(m, i, &t);
            ck_assert_int_eq(hoist_model_tensor_packing(m, i, &tp), HOIST_OK);
            ck_assert_int_eq(tp.filter, t.dtype == HOIST_DTYPE_BF16 || t.dtype == HOIST_DTYPE_F16 ||
                                                t.dtype == HOIST_DTYPE_F32
                                            ? HOIST_FILTER_EXPONENT
                                            : HOIST_FILTER_NONE);
            ck_assert_uint_eq(tp.chunks, (t.nbytes + info.chunk_bytes - 1) / info.chunk_bytes);
        }
        hoist_model_free(m);
        hoist_model_free(orig);
    }
}
END_TEST

/* Windows the caller asks for below two chunks are raised (logged), and a RAM budget shrinks the
 * workers; too small a budget fails before anything is read, naming the decoder. */
START_TEST(test_windows_and_budget)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 30, 5);
    hoist_model *orig = tu_open_ok(src);
    pack_ok(orig, dst, 65536, HOIST_FILTER_AUTO, 1);
    hoist_model *m = tu_open_ok(dst);
    hoist_load_stats s = load_same(m, orig, HOIST_PATH_STREAM, 0, 2, 4096);
    ck_assert(s.decode_seconds > 0);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.threads = 8;
    o.ram_budget = 2u << 20;
    hoist_weights *w = NULL;
    ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    ck_assert_uint_le(s.peak_host_bytes, 2u << 20);
    assert_same_as(orig, w);
    hoist_weights_free(w);
    o.ram_budget = 200u << 10;
    w = (hoist_weights *)1;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_BUDGET);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "packed decoder"));
    hoist_model_free(m);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

/* Read-back verification of a packed model hashes the destination against the chunk hashes. */
START_TEST(test_readback_verify)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 40, 8);
    hoist_model *orig = tu_open_ok(src);
    pack_ok(orig, dst, 4096, HOIST_FILTER_AUTO, 1);
    hoist_model *m = tu_open_ok(dst);
    for (int dev = 0; dev <= 1; dev++) {
        hoist__gpu_hooks h = {.host_as_device = true};
        hoist__gpu_set_hooks(dev ? &h : NULL);
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.verify = HOIST_VERIFY_READBACK | HOIST_VERIFY_MANIFEST; /* no manifest file needed */
        hoist_weights *w = NULL;
        ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
        hoist_load_stats s = HOIST_LOAD_STATS_INIT;
        ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
        ck_assert(s.readback_seconds > 0);
        ck_assert(s.verify_seconds > 0);
        hoist_weights_free(w);
        hoist__gpu_set_hooks(NULL);
    }
    hoist_model_free(m);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

START_TEST(test_empty_and_zero_size)
{
    char *src = tu_path(dir, "z.safetensors"), *dst = tu_path(dir, "z.hoist");
    tu_write_safetensors(src,
                         "{\"e\":{\"dtype\":\"BF16\",\"shape\":[0,4],\"data_offsets\":[0,0]},"
                         "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
                         "\x00\x00\x80\x3f", 4);
    hoist_model *orig = tu_open_ok(src);
    pack_ok(orig, dst, 0, HOIST_FILTER_AUTO, 0);
    hoist_model *m = tu_open_ok(dst);
    ck_assert_uint_eq(hoist_model_tensor_count(m), 2);
    for (size_t pi = 0; pi < 3; pi++) load_same(m, orig, paths[pi], 1, 0, 0);
    ck_assert_int_eq(hoist_model_verify(m, NULL), HOIST_OK);
    hoist_model_free(m);
    hoist_model_free(orig);
    tu_write_safetensors(src, "{}", NULL, 0);
    orig = tu_open_ok(src);
    pack_ok(orig, dst, 0, HOIST_FILTER_AUTO, 0);
    m = tu_open_ok(dst);
    ck_assert_uint_eq(hoist_model_tensor_count(m), 0);
    load_same(m, orig, HOIST_PATH_URING, 0, 0, 0);
    hoist_model_free(m);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

/* A callback sink receives a packed model decoded, in order, every byte as in the original. */
typedef struct rebuild {
    const hoist_model *orig;
    unsigned char **bufs;
    size_t next; /* tensors must arrive in order */
} rebuild;

static int rebuild_cb(const hoist_piece *p, void *user)
{
    rebuild *r = user;
    ck_assert_uint_ge(p->tensor, r->next);
    r->next = p->tensor;
    size_t oi;
    ck_assert_int_eq(hoist_model_find(r->orig, p->name, &oi), HOIST_OK);
    hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
    hoist_model_tensor(r->orig, oi, &t);
    ck_assert_uint_le(p->offset + p->nbytes, t.nbytes);
    if (!r->bufs[oi]) r->bufs[oi] = calloc(1, t.nbytes + 1);
    if (p->nbytes) memcpy(r->bufs[oi] + p->offset, p->data, p->nbytes);
    return 0;
}

START_TEST(test_sink_gets_decoded_bytes)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 30, 14);
    hoist_model *orig = tu_open_ok(src);
    pack_ok(orig, dst, 4096, HOIST_FILTER_AUTO, 1);
    hoist_model *m = tu_open_ok(dst);
    for (size_t pi = 0; pi < 3; pi++) {
        rebuild r = {.orig = orig,
                     .bufs = calloc(hoist_model_tensor_count(orig), sizeof *r.bufs)};
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = paths[pi];
        o.verify = HOIST_VERIFY_MANIFEST;
        hoist_load_stats s = HOIST_LOAD_STATS_INIT;
        ck_assert_msg(hoist_load_sink(m, &o, rebuild_cb, &r, &s) == HOIST_OK, "%s",
                      hoist_last_error());
        ck_assert(s.decode_seconds > 0);
        for (size_t i = 0; i < hoist_model_tensor_count(orig); i++) {
            hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
            hoist_model_tensor(orig, i, &t);
            ck_assert_ptr_nonnull(r.bufs[i]);
            size_t n;
            unsigned char *file = tu_read(src, &n);
            ck_assert_msg(memcmp(file + t.offset, r.bufs[i], t.nbytes) == 0, "%s", t.name);
            free(file);
            free(r.bufs[i]);
        }
        free(r.bufs);
    }
    hoist_model_free(m);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

/* ---- damaged containers ------------------------------------------------------------------- */

/* Flips one bit of the frame of tensor `name` (the middle of its stored bytes). */
static void flip_in_tensor(const char *path, const char *name)
{
    hoist_model *m = tu_open_ok(path);
    uint64_t off = 64;
    size_t i = 0;
    for (; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        hoist_tensor_packing tp = HOIST_TENSOR_PACKING_INIT;
        hoist_model_tensor(m, i, &t);
        hoist_model_tensor_packing(m, i, &tp);
        if (strcmp(t.name, name) == 0) {
            off += tp.stored_bytes / 2;
            break;
        }
        off += tp.stored_bytes;
    }
    ck_assert_uint_lt(i, hoist_model_tensor_count(m));
    hoist_model_free(m);
    size_t n;
    unsigned char *b = tu_read(path, &n);
    b[off] ^= 0x10;
    tu_write(path, b, n);
    free(b);
}

/* A flipped bit in a frame fails every load naming the tensor; nothing is published and every
 * host and device resource is back where it was. hoist verify names it too. */
START_TEST(test_flipped_bit_fails_naming_the_tensor)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 40, 12);
    hoist_model *orig = tu_open_ok(src);
    pack_ok(orig, dst, 4096, HOIST_FILTER_AUTO, 1);
    hoist_model_free(orig);
    flip_in_tensor(dst, "t033"); /* a 64 KiB tensor of several chunks */
    hoist_model *m = tu_open_ok(dst);
    for (size_t pi = 0; pi < 3; pi++)
        for (int dev = 0; dev <= 1; dev++) {
            hoist__gpu_hooks h = {.host_as_device = true};
            hoist__gpu_set_hooks(dev ? &h : NULL);
            int64_t live = hoist__alloc_live_bytes();
            hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
            o.path = paths[pi];
            hoist_weights *w = (hoist_weights *)1;
            int rc = hoist_load(m, &o, &w);
            ck_assert_msg(rc == HOIST_E_INTEGRITY || rc == HOIST_E_DECODE, "%s: %s",
                          hoist_path_name(paths[pi]), hoist_status_name(rc));
            ck_assert_ptr_null(w);
            ck_assert_ptr_nonnull(strstr(hoist_last_error(), "tensor 't033'"));
            ck_assert_ptr_nonnull(strstr(hoist_last_error(), "chunk "));
            ck_assert_int_eq(hoist__alloc_live_bytes(), live);
            for (int r = 0; r < HOIST_GPU_NRES; r++) ck_assert_int_eq(hoist__gpu_live(r), 0);
            hoist__gpu_set_hooks(NULL);
        }
    int rc = hoist_model_verify(m, NULL);
    ck_assert(rc == HOIST_E_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "t033"));
    hoist_model_free(m);
    free(src);
    free(dst);
}
END_TEST

static uint32_t rd32(const unsigned char *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Changes the index's hash of tensor `name` (formats/packed.h's layout) and recomputes the index
 * and header hashes: a container whose tensor record contradicts its chunks, otherwise valid. */
static void break_tensor_hash(const char *path, const char *name)
{
    size_t n;
    unsigned char *b = tu_read(path, &n);
    ck_assert_ptr_nonnull(b);
    uint64_t ix = rd64(b + 24), ixn = rd64(b + 32);
    ck_assert_uint_eq(ix + ixn, n);
    unsigned char *p = b + ix + 16;
    uint32_t nt = rd32(b + ix);
    int found = 0;
    for (uint32_t i = 0; i < nt; i++) {
        uint32_t nl = rd32(p);
        int match = nl == strlen(name) && memcmp(p + 4, name, nl) == 0;
        p += 4 + nl + 8; /* name, dtype, filter */
        uint32_t ndim = rd32(p);
        p += 4 + 8 * (size_t)ndim + 8; /* ndim, shape, bytes */
        if (match) {
            wr64(p, rd64(p) ^ 1);
            found = 1;
        }
        p += 8;
    }
    ck_assert(found);
    wr64(b + 40, XXH3_64bits(b + ix, ixn));
    wr64(b + 56, XXH3_64bits(b, 56));
    tu_write(path, b, n);
    free(b);
}

/* A container whose hash of a tensor of many chunks is wrong, every chunk's right: every load
 * (every path, host and device pipeline, several workers, windows of two chunks so that the
 * tensor's chunks reach its hash from different workers) and hoist verify fail naming the file
 * and the tensor; nothing is published or left allocated. */
START_TEST(test_wrong_tensor_hash_fails)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 40, 12);
    hoist_model *orig = tu_open_ok(src);
    pack_ok(orig, dst, 4096, HOIST_FILTER_AUTO, 1);
    hoist_model_free(orig);
    break_tensor_hash(dst, "t033"); /* a 64 KiB tensor of several chunks */
    hoist_model *m = tu_open_ok(dst);
    for (size_t pi = 0; pi < 3; pi++)
        for (int dev = 0; dev <= 1; dev++)
            for (int small = 0; small <= 1; small++) {
                hoist__gpu_hooks h = {.host_as_device = true};
                hoist__gpu_set_hooks(dev ? &h : NULL);
                int64_t live = hoist__alloc_live_bytes();
                hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
                o.path = paths[pi];
                o.threads = small ? 4 : 0;
                o.chunk_bytes = small ? 8192 : 0;
                hoist_weights *w = (hoist_weights *)1;
                int rc = hoist_load(m, &o, &w);
                ck_assert_msg(rc == HOIST_E_INTEGRITY, "%s: %s: %s", hoist_path_name(paths[pi]),
                              hoist_status_name(rc), hoist_last_error());
                ck_assert_ptr_null(w);
                ck_assert_msg(strstr(hoist_last_error(), "tensor 't033'") &&
                                  strstr(hoist_last_error(), "odd.hoist"),
                              "%s", hoist_last_error());
                ck_assert_int_eq(hoist__alloc_live_bytes(), live);
                for (int r = 0; r < HOIST_GPU_NRES; r++) ck_assert_int_eq(hoist__gpu_live(r), 0);
                hoist__gpu_set_hooks(NULL);
            }
    ck_assert_int_eq(hoist_model_verify(m, NULL), HOIST_E_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "tensor 't033'"));
    hoist_model_free(m);
    free(src);
    free(dst);
}
END_TEST

/* A container truncated after it was opened fails the load (the size is rechecked); one
 * truncated before fails to open. */
START_TEST(test_truncated_container)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 30, 2);
    hoist_model *orig = tu_open_ok(src);
    pack_ok(orig, dst, 4096, HOIST_FILTER_AUTO, 1);
    hoist_model *m = tu_open_ok(dst);
    struct stat sb;
    ck_assert_int_eq(stat(dst, &sb), 0);
    ck_assert_int_eq(truncate(dst, sb.st_size / 2), 0);
    for (size_t pi = 0; pi < 3; pi++) {
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = paths[pi];
        hoist_weights *w = (hoist_weights *)1;
        int rc = hoist_load(m, &o, &w);
        ck_assert_msg(rc == HOIST_E_FILE_CHANGED, "%s: %s: %s", hoist_path_name(paths[pi]),
                      hoist_status_name(rc), hoist_last_error());
        ck_assert_ptr_null(w);
    }
    hoist_model_free(m);
    hoist_model *bad = (hoist_model *)1;
    ck_assert_int_eq(hoist_model_open(dst, NULL, &bad), HOIST_E_TRUNCATED);
    ck_assert_ptr_null(bad);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

/* RELIABILITY case 28 under the decoder (tests/cut_sweep.h): the window is copied out of the
 * mapping (guarded) before it is decoded. */
typedef struct cut_ctx {
    const char *dst;
    const void *bytes; /* the container as packed */
    size_t n;
    const hoist_model *orig;
} cut_ctx;

static hoist_model *cut_prepare(void *user)
{
    cut_ctx *c = user;
    tu_write(c->dst, c->bytes, c->n);
    return tu_open_ok(c->dst);
}

static void cut_check(const hoist_weights *w, void *user)
{
    assert_same_as(((cut_ctx *)user)->orig, w);
}

START_TEST(test_truncated_under_the_mapping)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 7, 3); /* about 145 KB: 18 windows */
    hoist_model *orig = tu_open_ok(src);
    pack_ok(orig, dst, 4096, HOIST_FILTER_AUTO, 1);
    size_t n;
    void *bytes = tu_read(dst, &n);
    cut_ctx ctx = {.dst = dst, .bytes = bytes, .n = n, .orig = orig};
    cut_sweep c = {.path = dst, .prepare = cut_prepare, .check = cut_check, .user = &ctx};
    /* some copies themselves faulted: the guard turned SIGBUS away */
    ck_assert_uint_gt(cut_sweep_run(&c), 2);
    free(bytes);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

static int status_of(const char *name)
{
    if (strcmp(name, "OK") == 0) return HOIST_OK;
    char full[96];
    snprintf(full, sizeof full, "HOIST_E_%s", name);
    for (int s = 0; s >= -64; s--)
        if (strcmp(hoist_status_name(s), full) == 0) return s;
    ck_abort_msg("unknown status %s in cases.tsv", name);
    return 1;
}

/* Every handcrafted container of tests/data/packed/cases.tsv: open, load through every path (host
 * and device pipeline) and verify fail with the listed status and a message holding the listed
 * text; nothing is published or left allocated. */
START_TEST(test_handcrafted_cases)
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
        int got = sscanf(line, "%255[^\t]\t%d\t%63[^\t]\t%63[^\t]\t%63[^\t]\t%255[^\n]", name, &num,
                         open_s, load_s, verify_s, needle);
        ck_assert_int_ge(got, 5);
        char rel[300];
        snprintf(rel, sizeof rel, "packed/%s", name);
        char *path = tu_data(rel);
        int64_t live = hoist__alloc_live_bytes();
        hoist_model *m = (hoist_model *)1;
        int rc = hoist_model_open(path, NULL, &m);
        ck_assert_msg(rc == status_of(open_s), "%s: open gave %s: %s", name,
                      hoist_status_name(rc), hoist_last_error());
        if (rc < 0) {
            ck_assert_ptr_null(m);
            ck_assert_msg(strstr(hoist_last_error(), needle), "%s: '%s' lacks '%s'", name,
                          hoist_last_error(), needle);
            ck_assert_msg(strstr(hoist_last_error(), name), "%s: the message does not name the file",
                          name);
        } else {
            for (size_t pi = 0; pi < 3; pi++)
                for (int dev = 0; dev <= 1; dev++) {
                    hoist__gpu_hooks h = {.host_as_device = true};
                    hoist__gpu_set_hooks(dev ? &h : NULL);
                    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
                    o.path = paths[pi];
                    hoist_weights *w = NULL;
                    rc = hoist_load(m, &o, &w);
                    ck_assert_msg(rc == status_of(load_s), "%s via %s: load gave %s: %s", name,
                                  hoist_path_name(paths[pi]), hoist_status_name(rc),
                                  hoist_last_error());
                    if (rc < 0) {
                        ck_assert_ptr_null(w);
                        ck_assert_msg(strstr(hoist_last_error(), needle), "%s: '%s' lacks '%s'",
                                      name, hoist_last_error(), needle);
                    }
                    hoist_weights_free(w);
                    for (int r = 0; r < HOIST_GPU_NRES; r++)
                        ck_assert_int_eq(hoist__gpu_live(r), 0);
                    hoist__gpu_set_hooks(NULL);
                }
            rc = hoist_model_verify(m, NULL);
            ck_assert_msg(rc == status_of(verify_s), "%s: verify gave %s: %s", name,
                          hoist_status_name(rc), hoist_last_error());
            if (rc < 0)
                ck_assert_msg(strstr(hoist_last_error(), needle), "%s: '%s' lacks '%s'", name,
                              hoist_last_error(), needle);
            hoist_model_free(m);
        }
        ck_assert_int_eq(hoist__alloc_live_bytes(), live);
        free(path);
        n++;
    }
    fclose(f);
    free(tsv);
    ck_assert_int_ge(n, 40);
}
END_TEST

/* The good container decodes to the bytes the generator put in it. */
START_TEST(test_handcrafted_good_bytes)
{
    char *path = tu_data("packed/good.hoist");
    hoist_model *m = tu_open_ok(path);
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_OK);
    hoist_view v = HOIST_VIEW_INIT;
    ck_assert_int_eq(hoist_weights_find(w, "b.bias", &v), HOIST_OK);
    for (int i = 0; i < 12; i++) ck_assert_uint_eq(((uint8_t *)v.data)[i], (uint8_t)(i * 7 + 1));
    ck_assert_int_eq(hoist_weights_find(w, "a.weight", &v), HOIST_OK);
    /* stored planes of 0x3c, exponent filter: 0x3c3c rotated right by one = 0x1e1e */
    ck_assert_uint_eq(((uint8_t *)v.data)[0], 0x1e);
    ck_assert_uint_eq(((uint8_t *)v.data)[4095], 0x1e);
    ck_assert_int_eq(hoist_weights_find(w, "c.ids", &v), HOIST_OK);
    ck_assert_uint_eq(((uint8_t *)v.data)[0], 0x11);
    ck_assert_uint_eq(((uint8_t *)v.data)[7999], 0x22);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(path);
}
END_TEST

/* ---- the writer's refusals, the CLI and inspect ------------------------------------------ */

START_TEST(test_pack_refusals)
{
    char *src = tu_path(dir, "odd.safetensors"), *dst = tu_path(dir, "odd.hoist");
    tu_write_odd_model(src, 10, 3);
    hoist_model *orig = tu_open_ok(src);
    hoist_pack_options o = HOIST_PACK_OPTIONS_DEFAULT;
    ck_assert_int_eq(hoist_pack(orig, src, &o, NULL), HOIST_E_INVALID_ARG); /* its own file */
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "own files"));
    ck_assert_int_eq(hoist_pack(orig, dst, &o, NULL), HOIST_OK);
    ck_assert_int_eq(hoist_pack(orig, dst, &o, NULL), HOIST_E_INVALID_ARG); /* exists */
    o.chunk_bytes = 3000;
    o.overwrite = 1;
    ck_assert_int_eq(hoist_pack(orig, dst, &o, NULL), HOIST_E_INVALID_ARG);
    o = (hoist_pack_options)HOIST_PACK_OPTIONS_DEFAULT;
    o.overwrite = 1;
    o.level = 99;
    ck_assert_int_eq(hoist_pack(orig, dst, &o, NULL), HOIST_E_INVALID_ARG);
    o.level = 0;
    o.filter = 5;
    ck_assert_int_eq(hoist_pack(orig, dst, &o, NULL), HOIST_E_INVALID_ARG);
    hoist_model *m = tu_open_ok(dst);
    char *again = tu_path(dir, "again.hoist");
    ck_assert_int_eq(hoist_pack(m, again, NULL, NULL), HOIST_E_UNSUPPORTED);
    ck_assert_int_eq(hoist_model_sum(m, NULL), HOIST_E_UNSUPPORTED);
    hoist_packed_info info = HOIST_PACKED_INFO_INIT;
    ck_assert_int_eq(hoist_model_packed_info(orig, &info), HOIST_E_UNSUPPORTED);
    ck_assert_int_eq(hoist_model_format(orig), HOIST_FORMAT_SAFETENSORS);
    ck_assert_str_eq(hoist_format_name(HOIST_FORMAT_PACKED), "packed");
    /* a FIFO named like a container is refused by type, never waited on */
    char *fifo = tu_path(dir, "fifo.hoist");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    hoist_model *bad = (hoist_model *)1;
    ck_assert_int_eq(hoist_model_open(fifo, NULL, &bad), HOIST_E_NOT_REGULAR);
    ck_assert_ptr_null(bad);
    unlink(fifo);
    free(fifo);
    /* nothing is left beside the output: no temporary files */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp", dir);
    FILE *p = popen(cmd, "r");
    char out[16] = "";
    ck_assert_ptr_nonnull(fgets(out, sizeof out, p));
    pclose(p);
    ck_assert_int_eq(atoi(out), 0);
    hoist_model_free(m);
    hoist_model_free(orig);
    free(again);
    free(src);
    free(dst);
}
END_TEST

START_TEST(test_cli_pack_inspect_load_verify)
{
    char args[2048], mdir[512], out[512], js[512];
    snprintf(mdir, sizeof mdir, "%s/m", dir);
    snprintf(out, sizeof out, "%s/m/model.hoist", dir);
    snprintf(js, sizeof js, "%s/inspect.json", dir);
    snprintf(args, sizeof args, "gen '%s' --preset tiny --quiet", mdir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "pack '%s' '%s' --chunk 16K --threads 2 > /dev/null", mdir, out);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "pack '%s' '%s' > /dev/null 2>&1", mdir, out);
    ck_assert_int_eq(tu_run_cli(args), 1); /* exists */
    snprintf(args, sizeof args, "inspect '%s' --json > '%s'", out, js);
    ck_assert_int_eq(tu_run_cli(args), 0);
    json_error_t err;
    json_t *root = json_load_file(js, 0, &err);
    ck_assert_msg(root != NULL, "%s", err.text);
    ck_assert_str_eq(json_string_value(json_object_get(root, "format")), "packed");
    json_t *packed = json_object_get(root, "packed");
    ck_assert_int_eq(json_integer_value(json_object_get(packed, "chunk_bytes")), 16384);
    json_t *t0 = json_array_get(json_object_get(root, "tensors"), 0);
    ck_assert_ptr_nonnull(json_object_get(t0, "stored_bytes"));
    ck_assert_ptr_nonnull(json_object_get(t0, "filter"));
    json_decref(root);
    snprintf(args, sizeof args, "inspect '%s' > /dev/null", out);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "load '%s' --device host --verify > /dev/null", out);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "verify '%s' > /dev/null", out);
    ck_assert_int_eq(tu_run_cli(args), 0);
}
END_TEST


/* ---- codec 2: exponent Huffman (formats/exphuff.c, gpu/codec.c, loader/gpu_decode.c) ------ */

static uint32_t xs(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* A normal-ish float (sum of four uniforms) scaled by s. */
static float normalish(uint32_t *x, float s)
{
    float v = 0;
    for (int i = 0; i < 4; i++) v += (float)(xs(x) & 0xffff) / 65536.0f - 0.5f;
    return v * s;
}

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

/* Element patterns the codec must reproduce bit for bit. */
enum { PAT_NORMAL, PAT_ONE_EXPONENT, PAT_SPECIALS, PAT_RANDOM, PAT_F16_NORMAL, PAT_SKEWED, NPAT };

static void fill(uint8_t *p, size_t elems, int pat, uint32_t seed)
{
    uint32_t x = seed | 1;
    static const uint16_t specials[] = {0x7f80, 0xff80, 0x7fc0, 0xffc1, 0x0001, 0x807f, 0x0000,
                                        0x8000, 0x7f7f, 0x0080, 0x7c00, 0xfc00, 0x7e01, 0x03ff};
    for (size_t i = 0; i < elems; i++) {
        uint16_t v;
        switch (pat) {
        case PAT_NORMAL: v = to_bf16(normalish(&x, 0.05f)); break;
        case PAT_ONE_EXPONENT: v = (uint16_t)(0x3f80 | (xs(&x) & 0x807f)); break; /* +-[1, 2) */
        case PAT_SPECIALS: v = specials[xs(&x) % (sizeof specials / sizeof *specials)]; break;
        case PAT_RANDOM: v = (uint16_t)xs(&x); break;
        case PAT_F16_NORMAL: { /* f16 bits of a small normal value: exponent 5 bits */
            float f = normalish(&x, 0.1f);
            int e = 0;
            uint16_t sign = f < 0 ? 0x8000 : 0;
            f = f < 0 ? -f : f;
            while (f < 1.0f && e > -14) {
                f *= 2;
                e--;
            }
            v = (uint16_t)(sign | (uint16_t)((e + 15) << 10) | (xs(&x) & 0x3ff));
            break;
        }
        default: { /* geometric exponents: codes longer than 12 bits before limiting */
            unsigned k = 0;
            while (k < 60 && (xs(&x) & 1)) k++;
            v = (uint16_t)(((0x40 + k) << 7) | (xs(&x) & 0x7f));
        }
        }
        p[2 * i] = (uint8_t)v;
        p[2 * i + 1] = (uint8_t)(v >> 8);
    }
}

static void decode_ok(const uint8_t *enc, size_t stored, const uint8_t *want, uint32_t len)
{
    hoist__exphuff x;
    char why[256] = "";
    ck_assert_msg(hoist__exphuff_parse(enc, (uint32_t)stored, len, &x, why, sizeof why) == 0, "%s",
                  why);
    uint8_t *out = malloc(len);
    memset(out, 0xa5, len);
    ck_assert_msg(hoist__exphuff_decode(enc, &x, out, why, sizeof why) == 0, "%s", why);
    ck_assert_msg(memcmp(out, want, len) == 0, "decoded bytes differ");
    free(out);
}

/* Every pattern and awkward length (one element, odd counts, less than a block, a block and one)
 * round-trips; a cap below what the code needs gives 0 (stored raw instead); normal-like bf16
 * exponents take under 3 bits, and the limited code never exceeds 12 bits. */
START_TEST(test_exphuff_round_trip)
{
    static const uint32_t counts[] = {1, 2, 3, 255, 1023, 1024, 1025, 4097, 131072};
    for (int pat = 0; pat < NPAT; pat++)
        for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
            uint32_t n = counts[k], len = 2 * n;
            uint8_t *src = malloc(len), *enc = malloc(2 * len + 1024);
            fill(src, n, pat, (uint32_t)(k * 77 + 5));
            size_t stored = hoist__exphuff_encode(src, len, enc, 2 * len + 1024);
            ck_assert_uint_gt(stored, 0);
            decode_ok(enc, stored, src, len);
            if (stored > 1) ck_assert_uint_eq(hoist__exphuff_encode(src, len, enc, stored - 1), 0);
            hoist__exphuff x;
            char why[256];
            ck_assert_int_eq(hoist__exphuff_parse(enc, (uint32_t)stored, len, &x, why, sizeof why),
                             0);
            for (unsigned l = 0; l <= HOIST_EXPHUFF_MAX_LEN; l++)
                if (pat == PAT_ONE_EXPONENT && n > 1) /* one symbol: a 1-bit code */
                    ck_assert_uint_eq(x.count[l], l == 1 ? 1 : 0);
            if (pat == PAT_NORMAL && n == 131072) /* 8 raw bits + under 3 for the exponent */
                ck_assert_msg(stored * 16 < (size_t)len * 11, "%zu of %u", stored, len);
            if (pat == PAT_SKEWED && n == 131072) {
                uint32_t longest = 0;
                for (unsigned l = 1; l <= HOIST_EXPHUFF_MAX_LEN; l++)
                    if (x.count[l]) longest = l;
                ck_assert_uint_eq(longest, HOIST_EXPHUFF_MAX_LEN); /* the limit was reached */
            }
            free(src);
            free(enc);
        }
    uint8_t b[4] = {0};
    ck_assert_uint_eq(hoist__exphuff_encode(b, 3, b, sizeof b), 0); /* not whole elements */
    ck_assert_uint_eq(hoist__exphuff_encode(b, 0, b, sizeof b), 0);
}
END_TEST

/* The host twin of the GPU kernel (gpu/codec.c, reading descriptors as the kernel does) decodes
 * what the CPU decoder decodes, several chunks at unaligned offsets of one staged window. */
START_TEST(test_exphuff_host_twin_agrees)
{
    hoist__gpu_hooks h = {.host_as_device = true};
    hoist__gpu_set_hooks(&h);
    ck_assert(hoist__gpu_codec_ready(&hoist__gpu_host));
    enum { N = 4 };
    static const uint32_t elems[N] = {131072, 3, 1025, 4097};
    uint8_t *stage = calloc(1, 1 << 22), *want[N], *got[N];
    hoist__gpu_codec_chunk d[N];
    uint32_t at = 1; /* unaligned on purpose */
    for (int i = 0; i < N; i++) {
        uint32_t len = 2 * elems[i];
        want[i] = malloc(len);
        got[i] = calloc(1, len);
        fill(want[i], elems[i], i % 2 ? PAT_SPECIALS : PAT_NORMAL, 9u + (uint32_t)i);
        size_t st = hoist__exphuff_encode(want[i], len, stage + at, 2 * len + 1024);
        ck_assert_uint_gt(st, 0);
        hoist__exphuff x;
        char why[256];
        ck_assert_int_eq(hoist__exphuff_parse(stage + at, (uint32_t)st, len, &x, why, sizeof why), 0);
        d[i] = (hoist__gpu_codec_chunk){.out = (uint64_t)(uintptr_t)got[i],
                                        .xxh3 = XXH3_64bits(want[i], len), .in = at,
                                        .elems = x.elems, .block_elems = x.block_elems,
                                        .syms = x.syms, .offsets = x.offsets, .raw = x.raw,
                                        .bits = x.bits, .words = x.words, .index = (uint32_t)i};
        memcpy(d[i].count, x.count, sizeof d[i].count);
        at += (uint32_t)st + 3;
    }
    uint32_t err[2] = {UINT32_MAX, UINT32_MAX};
    ck_assert_int_eq(hoist__gpu_codec_decode(&hoist__gpu_host, HOIST_DEVICE_HOST, NULL, stage, d,
                                             N, 2, err),
                     HOIST_OK);
    ck_assert_uint_eq(err[0], UINT32_MAX);
    ck_assert_uint_eq(err[1], UINT32_MAX); /* every chunk hashes to its record */
    for (int i = 0; i < N; i++)
        ck_assert_msg(memcmp(got[i], want[i], 2 * elems[i]) == 0, "chunk %d differs", i);
    /* a flipped bit in chunk 2's bitstream: the twin names chunk 2, as undecodable or (having
     * decoded other bytes) as not hashing to its record */
    stage[d[2].in + d[2].bits + 5] ^= 0x40;
    memset(got[2], 0, 2 * elems[2]);
    ck_assert_int_eq(hoist__gpu_codec_decode(&hoist__gpu_host, HOIST_DEVICE_HOST, NULL, stage,
                                             d + 2, 1, 1, err),
                     HOIST_OK);
    ck_assert(err[0] == 2 || err[1] == 2);
    for (int i = 0; i < N; i++) {
        free(want[i]);
        free(got[i]);
    }
    free(stage);
    hoist__gpu_set_hooks(NULL);
}
END_TEST

/* Damaged bitstreams: the CPU decoder (formats/exphuff.c, three symbols per lookup) and the GPU
 * kernel's algorithm (the host twin, one symbol per lookup) accept exactly the same chunks and
 * decode them to the same bytes, so that no file loads on one and is refused by the other. Bits
 * are flipped and words zeroed across the blocks of a chunk with a short last block. */
START_TEST(test_exphuff_decoders_agree_on_damage)
{
    hoist__gpu_hooks h = {.host_as_device = true};
    hoist__gpu_set_hooks(&h);
    const uint32_t elems = 5 * 1024 + 37, len = 2 * elems;
    uint8_t *src = malloc(len), *good = malloc(2 * len + 1024), *bad = malloc(2 * len + 1024);
    uint8_t *cpu = malloc(len), *twin = malloc(len);
    fill(src, elems, PAT_NORMAL, 77);
    size_t stored = hoist__exphuff_encode(src, len, good, 2 * len + 1024);
    ck_assert_uint_gt(stored, 0);
    hoist__exphuff x;
    char why[256];
    ck_assert_int_eq(hoist__exphuff_parse(good, (uint32_t)stored, len, &x, why, sizeof why), 0);
    hoist__gpu_codec_chunk d = {.out = (uint64_t)(uintptr_t)twin, .xxh3 = XXH3_64bits(src, len),
                                .in = 0, .elems = x.elems,
                                .block_elems = x.block_elems, .syms = x.syms,
                                .offsets = x.offsets, .raw = x.raw, .bits = x.bits,
                                .words = x.words, .index = 0};
    memcpy(d.count, x.count, sizeof d.count);
    uint32_t seed = 2024, accepted = 0, refused = 0;
    for (int trial = 0; trial < 400; trial++) {
        memcpy(bad, good, stored);
        uint32_t flips = 1 + xs(&seed) % 3;
        for (uint32_t k = 0; k < flips; k++) {
            uint32_t word = xs(&seed) % x.words, at = x.bits + 4 * word;
            if (xs(&seed) % 4 == 0)
                memset(bad + at, 0, 4); /* a zeroed word: often still codes, in other symbols */
            else
                bad[at + xs(&seed) % 4] ^= (uint8_t)(1u << (xs(&seed) % 8));
        }
        int cpu_ok = hoist__exphuff_decode(bad, &x, cpu, why, sizeof why) == 0;
        uint32_t err[2] = {UINT32_MAX, UINT32_MAX};
        ck_assert_int_eq(hoist__gpu_codec_decode(&hoist__gpu_host, HOIST_DEVICE_HOST, NULL, bad,
                                                 &d, 1, 1, err),
                         HOIST_OK);
        int twin_ok = err[0] == UINT32_MAX;
        ck_assert_msg(cpu_ok == twin_ok, "trial %d: CPU %s, twin %s (%s)", trial,
                      cpu_ok ? "accepts" : "refuses", twin_ok ? "accepts" : "refuses", why);
        if (cpu_ok) ck_assert_msg(memcmp(cpu, twin, len) == 0, "trial %d: bytes differ", trial);
        if (cpu_ok) /* a damaged chunk that still decodes is caught by its hash, only then */
            ck_assert_uint_eq(err[1], memcmp(twin, src, len) ? 0 : UINT32_MAX);
        cpu_ok ? accepted++ : refused++;
    }
    ck_assert_uint_gt(accepted, 0); /* both verdicts were exercised */
    ck_assert_uint_gt(refused, 0);
    free(src);
    free(good);
    free(bad);
    free(cpu);
    free(twin);
    hoist__gpu_set_hooks(NULL);
}
END_TEST

/* A checkpoint of the patterns above in bf16 and f16, with an f32 tensor, an empty one and
 * sizes around the chunk and block sizes. */
static void write_codec_model(const char *path)
{
    static const struct {
        const char *dtype;
        int pat;
        uint32_t n;
    } ts[] = {{"BF16", PAT_NORMAL, 300000},   {"BF16", PAT_ONE_EXPONENT, 4097},
              {"BF16", PAT_SPECIALS, 2049},   {"F16", PAT_F16_NORMAL, 70001},
              {"BF16", PAT_RANDOM, 5000},     {"BF16", PAT_NORMAL, 3},
              {"F16", PAT_SKEWED, 65536},     {"BF16", PAT_NORMAL, 0},
              {"F32", PAT_RANDOM, 1001},      {"BF16", PAT_NORMAL, 1}};
    size_t nt = sizeof ts / sizeof *ts, total = 0;
    for (size_t i = 0; i < nt; i++) total += (ts[i].dtype[1] == '3' ? 4 : 2) * (size_t)ts[i].n;
    uint8_t *data = malloc(total + 1);
    char header[4096];
    size_t hl = (size_t)snprintf(header, sizeof header, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < nt; i++) {
        uint64_t bytes = (ts[i].dtype[1] == '3' ? 4 : 2) * (uint64_t)ts[i].n;
        fill(data + off, bytes / 2, ts[i].pat, (uint32_t)i + 1);
        hl += (size_t)snprintf(header + hl, sizeof header - hl,
                               ",\"w%02zu\":{\"dtype\":\"%s\",\"shape\":[%u],\"data_offsets\":[%llu,%llu]}",
                               i, ts[i].dtype, ts[i].n, (unsigned long long)off,
                               (unsigned long long)(off + bytes));
        off += bytes;
    }
    snprintf(header + hl, sizeof header - hl, "}");
    tu_write_safetensors(path, header, data, off);
    free(data);
}

static hoist_weights *load_opts(hoist_model *m, hoist_path path, int dev, unsigned threads,
                                unsigned verify, hoist_load_stats *st)
{
    hoist__gpu_hooks h = {.host_as_device = dev != 0};
    hoist__gpu_set_hooks(dev ? &h : NULL);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = path;
    o.threads = threads;
    o.verify = verify;
    hoist_weights *w = NULL;
    int rc = hoist_load(m, &o, &w);
    ck_assert_msg(rc == HOIST_OK, "%s%s: %s", hoist_path_name(path), dev ? " (device)" : "",
                  hoist_last_error());
    *st = (hoist_load_stats)HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, st), HOIST_OK);
    return w;
}

/* pack --codec gpu -> a version 2 container; every path, on the host (CPU decoder) and through
 * the device pipeline (the GPU decoding path with the host twin), with and without
 * verification, gives the original bytes; the stats say what the GPU decoded, and that every
 * byte of it was hashed. Chunks of 4 KiB and 64 KiB. */
START_TEST(test_codec_gpu_pack_load)
{
    char *src = tu_path(dir, "c.safetensors"), *dst = tu_path(dir, "c.hoist");
    write_codec_model(src);
    hoist_model *orig = tu_open_ok(src);
    static const uint64_t chunks[] = {4096, 65536};
    for (size_t c = 0; c < 2; c++) {
        hoist_pack_options po = HOIST_PACK_OPTIONS_DEFAULT;
        po.codec = HOIST_PACK_CODEC_GPU;
        po.chunk_bytes = chunks[c];
        po.overwrite = 1;
        po.threads = 2;
        ck_assert_msg(hoist_pack(orig, dst, &po, NULL) == HOIST_OK, "%s", hoist_last_error());
        hoist_model *m = tu_open_ok(dst);
        hoist_packed_info info = HOIST_PACKED_INFO_INIT;
        ck_assert_int_eq(hoist_model_packed_info(m, &info), HOIST_OK);
        ck_assert_uint_eq(info.version, 2);
        ck_assert_int_eq(hoist_model_verify(m, NULL), HOIST_OK);
        uint64_t gpu_chunks = 0;
        for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
            hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
            hoist_tensor_packing tp = HOIST_TENSOR_PACKING_INIT;
            hoist_model_tensor(m, i, &t);
            ck_assert_int_eq(hoist_model_tensor_packing(m, i, &tp), HOIST_OK);
            if (t.dtype != HOIST_DTYPE_BF16 && t.dtype != HOIST_DTYPE_F16)
                ck_assert_uint_eq(tp.gpu_chunks, 0);
            else
                ck_assert_int_eq(tp.filter, HOIST_FILTER_NONE);
            gpu_chunks += tp.gpu_chunks;
        }
        ck_assert_uint_gt(gpu_chunks, 2); /* random bf16 stays raw; the rest compress */
        for (size_t pi = 0; pi < 3; pi++)
            for (int dev = 0; dev <= 1; dev++)
                for (unsigned verify = 0; verify <= HOIST_VERIFY_READBACK; verify += 2) {
                    hoist_load_stats st;
                    hoist_weights *w = load_opts(m, paths[pi], dev, pi + 1, verify, &st);
                    assert_same_as(orig, w);
                    hoist_weights_free(w);
                    hoist__gpu_set_hooks(NULL);
                    if (dev) {
                        ck_assert_uint_gt(st.gpu_decoded_bytes, 300000);
                        ck_assert_uint_eq(st.unhashed_bytes, 0);
                    } else {
                        ck_assert_uint_eq(st.gpu_decoded_bytes, 0);
                    }
                    for (int r = 0; r < HOIST_GPU_NRES; r++)
                        if (r != HOIST_GPU_RES_PINNED)
                            ck_assert_int_eq(hoist__gpu_live(r), 0);
                }
        hoist_model_free(m);
    }
    /* the zstd codec still writes version 1 */
    hoist_pack_options po = HOIST_PACK_OPTIONS_DEFAULT;
    po.overwrite = 1;
    ck_assert_int_eq(hoist_pack(orig, dst, &po, NULL), HOIST_OK);
    hoist_model *m = tu_open_ok(dst);
    hoist_packed_info info = HOIST_PACKED_INFO_INIT;
    ck_assert_int_eq(hoist_model_packed_info(m, &info), HOIST_OK);
    ck_assert_uint_eq(info.version, 1);
    hoist_model_free(m);
    po.codec = 7;
    ck_assert_int_eq(hoist_pack(orig, dst, &po, NULL), HOIST_E_INVALID_ARG);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

/* A GPU-decoded load reads 4 MiB windows unless the caller chose (loader/gpu_decode.c): through
 * the device pipeline (the host twin), every path says at DEBUG that it widened the source's
 * windows to 4 MiB, and with o.chunk_bytes of 1 MiB it keeps them; the bytes are the original's
 * either way. */
static char window_msg[256];
static int window_msgs;

static void window_line(hoist_log_level level, const char *msg, void *user)
{
    (void)level;
    (void)user;
    if (!strstr(msg, "windows for the GPU decoder")) return;
    snprintf(window_msg, sizeof window_msg, "%s", msg);
    window_msgs++;
}

START_TEST(test_codec_gpu_windows)
{
    char *src = tu_path(dir, "w.safetensors"), *dst = tu_path(dir, "w.hoist");
    write_codec_model(src);
    hoist_model *orig = tu_open_ok(src);
    hoist_pack_options po = HOIST_PACK_OPTIONS_DEFAULT;
    po.codec = HOIST_PACK_CODEC_GPU;
    po.overwrite = 1;
    ck_assert_int_eq(hoist_pack(orig, dst, &po, NULL), HOIST_OK);
    hoist_model *m = tu_open_ok(dst);
    for (size_t pi = 0; pi < 3; pi++)
        for (int asked = 0; asked < 2; asked++) {
            hoist__gpu_hooks h = {.host_as_device = true};
            hoist__gpu_set_hooks(&h);
            window_msgs = 0;
            hoist_set_log_callback(window_line, NULL, HOIST_LOG_DEBUG);
            hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
            o.path = paths[pi];
            o.chunk_bytes = asked ? 1u << 20 : 0;
            hoist_weights *w = NULL;
            int rc = hoist_load(m, &o, &w);
            hoist_set_log_callback(NULL, NULL, HOIST_LOG_ERROR);
            hoist__gpu_set_hooks(NULL);
            ck_assert_msg(rc == HOIST_OK, "%s: %s", hoist_path_name(paths[pi]),
                          hoist_last_error());
            assert_same_as(orig, w);
            hoist_load_stats st = HOIST_LOAD_STATS_INIT;
            ck_assert_int_eq(hoist_weights_stats(w, &st), HOIST_OK);
            ck_assert_uint_gt(st.gpu_decoded_bytes, 0);
            if (asked)
                ck_assert_msg(window_msgs == 0, "%s: the caller's 1 MiB windows changed: %s",
                              hoist_path_name(paths[pi]), window_msg);
            else
                ck_assert_msg(window_msgs == 1 &&
                                  strstr(window_msg, ": 4194304-byte windows for the GPU decoder"),
                              "%s: %d lines, the last: %s", hoist_path_name(paths[pi]),
                              window_msgs, window_msg);
            hoist_weights_free(w);
        }
    hoist_model_free(m);
    hoist_model_free(orig);
    free(src);
    free(dst);
}
END_TEST

/* A codec 2 chunk whose recorded hash is wrong: a load that decodes it on the device (the hash
 * kernel's host twin) fails naming the tensor and saying that the bytes, read back and hashed
 * on the CPU, differ from the record; with verification too; the host load and hoist verify
 * fail on it as well. */
START_TEST(test_codec_gpu_hash_checked)
{
    char *path = tu_data("packed/g_chunk_hash.hoist");
    hoist_model *m = tu_open_ok(path);
    for (unsigned verify = 0; verify <= HOIST_VERIFY_MANIFEST; verify += HOIST_VERIFY_MANIFEST) {
        hoist__gpu_hooks h = {.host_as_device = true};
        hoist__gpu_set_hooks(&h);
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = HOIST_PATH_STREAM;
        o.verify = verify;
        hoist_weights *w = NULL;
        ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_INTEGRITY);
        ck_assert_ptr_null(w);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "h.weight"));
        if (!verify) /* the GPU's verdict, confirmed on the CPU (with verify, staging's hash) */
            ck_assert_msg(strstr(hoist_last_error(), "decoded on the GPU, its bytes hash to"),
                          "%s", hoist_last_error());
        for (int r = 0; r < HOIST_GPU_NRES; r++)
            if (r != HOIST_GPU_RES_PINNED) ck_assert_int_eq(hoist__gpu_live(r), 0);
    }
    hoist__gpu_set_hooks(NULL);
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_E_INTEGRITY);
    ck_assert_int_eq(hoist_model_verify(m, NULL), HOIST_E_INTEGRITY);
    hoist_model_free(m);
    free(path);
}
END_TEST

/* The hash kernel's XXH3 (its host twin: every lane's share of each block, summed as the warp
 * sums them) and the one-thread hoist__xxh3_64 are libxxhash's XXH3_64bits for every length
 * class (0, 1-3, 4-8, 9-16, 17-128, 129-240, then whole and partial 1024-byte blocks, the last
 * stripe overlapping the one before) and at every alignment. */
START_TEST(test_xxh3_twin_is_libxxhash)
{
    static const uint8_t sec[HOIST__XXH3_SECRET_SIZE] = {HOIST__XXH3_SECRET_BYTES};
    size_t cap = 300000;
    uint8_t *buf = malloc(cap + 8);
    uint32_t x = 99;
    for (size_t i = 0; i < cap + 8; i++) buf[i] = (uint8_t)xs(&x);
    static const size_t big[] = {1023, 1024, 1025, 1087, 1088, 1089, 2047, 2048, 2049, 4096 + 65,
                                 65536, 262144, 262145, 299999};
    for (size_t k = 0; k < 2100 + sizeof big / sizeof *big; k++) {
        size_t len = k < 2100 ? k : big[k - 2100];
        for (size_t at = 0; at < 8; at += (len > 4096 ? 7 : 1)) {
            uint64_t want = XXH3_64bits(buf + at, len);
            ck_assert_msg(hoist__gpu_codec_xxh3(buf + at, len) == want, "kernel way, len %zu at %zu",
                          len, at);
            ck_assert_msg(hoist__xxh3_64(buf + at, len, sec) == want, "one thread, len %zu at %zu",
                          len, at);
        }
    }
    free(buf);
}
END_TEST

/* hoist gen's bf16 checkpoints pack to at most 70% with --codec gpu (random-normal weights:
 * about 2.6 bits of exponent entropy, so 66-68%), f16 ones round-trip. */
START_TEST(test_codec_gpu_gen_ratio)
{
    static const char *dtypes[] = {"bf16", "f16"};
    for (int d = 0; d < 2; d++) {
        char mdir[512], out[512];
        tu_gen_packed(dir, dtypes[d],
                      "--preset tiny --hidden 256 --intermediate 688 --vocab 1024 --layers 3",
                      "--codec gpu", mdir, out);
        hoist_model *orig = tu_open_ok(mdir), *m = tu_open_ok(out);
        hoist_packed_info info = HOIST_PACKED_INFO_INIT;
        ck_assert_int_eq(hoist_model_packed_info(m, &info), HOIST_OK);
        if (d == 0)
            ck_assert_msg(info.stored_bytes * 10 <= hoist_model_total_bytes(m) * 7,
                          "bf16 packs to %llu of %llu bytes",
                          (unsigned long long)info.stored_bytes,
                          (unsigned long long)hoist_model_total_bytes(m));
        ck_assert_uint_lt(info.stored_bytes, hoist_model_total_bytes(m));
        hoist_load_stats st;
        hoist_weights *w = load_opts(m, HOIST_PATH_URING, 1, 4, 0, &st);
        assert_same_as(orig, w);
        hoist_weights_free(w);
        hoist__gpu_set_hooks(NULL);
        hoist_model_free(m);
        hoist_model_free(orig);
    }
}
END_TEST

/* --codec takes gpu and zstd, refuses anything else as a usage error, and --help says so. */
START_TEST(test_cli_codec)
{
    char args[2048], mdir[512], out[512];
    snprintf(mdir, sizeof mdir, "%s/m", dir);
    snprintf(out, sizeof out, "%s/m.hoist", dir);
    snprintf(args, sizeof args, "gen '%s' --preset tiny --quiet", mdir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "pack '%s' '%s' --codec=gpu > /dev/null", mdir, out);
    ck_assert_int_eq(tu_run_cli(args), 0);
    hoist_model *m = tu_open_ok(out);
    hoist_packed_info info = HOIST_PACKED_INFO_INIT;
    ck_assert_int_eq(hoist_model_packed_info(m, &info), HOIST_OK);
    ck_assert_uint_eq(info.version, 2);
    hoist_model_free(m);
    snprintf(args, sizeof args, "load '%s' --device host --verify > /dev/null", out);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "pack '%s' '%s' --codec zstd --force > /dev/null", mdir, out);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "pack '%s' '%s' --codec lz4 --force", mdir, out);
    ck_assert_int_eq(tu_run_cli_capture(args, &o, &e), 2);
    ck_assert_ptr_nonnull(strstr(e, "lz4"));
    free(o);
    free(e);
    ck_assert_int_eq(tu_run_cli_capture("pack --help", &o, &e), 0);
    ck_assert_ptr_nonnull(strstr(o, "--codec C"));
    ck_assert_ptr_nonnull(strstr(o, "zstd (default)"));
    free(o);
    free(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("packed");
    TCase *tc = tcase_create("packed");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_round_trip_every_dtype_every_path);
    tcase_add_test(tc, test_gen_checkpoints);
    tcase_add_test(tc, test_windows_and_budget);
    tcase_add_test(tc, test_readback_verify);
    tcase_add_test(tc, test_empty_and_zero_size);
    tcase_add_test(tc, test_sink_gets_decoded_bytes);
    tcase_add_test(tc, test_flipped_bit_fails_naming_the_tensor);
    tcase_add_test(tc, test_wrong_tensor_hash_fails);
    tcase_add_test(tc, test_truncated_container);
    tcase_add_test(tc, test_truncated_under_the_mapping);
    tcase_add_test(tc, test_handcrafted_cases);
    tcase_add_test(tc, test_handcrafted_good_bytes);
    tcase_add_test(tc, test_pack_refusals);
    tcase_add_test(tc, test_cli_pack_inspect_load_verify);
    tcase_add_test(tc, test_exphuff_round_trip);
    tcase_add_test(tc, test_exphuff_host_twin_agrees);
    tcase_add_test(tc, test_exphuff_decoders_agree_on_damage);
    tcase_add_test(tc, test_codec_gpu_pack_load);
    tcase_add_test(tc, test_codec_gpu_hash_checked);
    tcase_add_test(tc, test_codec_gpu_windows);
    tcase_add_test(tc, test_xxh3_twin_is_libxxhash);
    tcase_add_test(tc, test_codec_gpu_gen_ratio);
    tcase_add_test(tc, test_cli_codec);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
