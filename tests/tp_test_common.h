/* Shared by test_tp.c and test_tp_coop.c (tensor-parallel slices and cooperative loads): models
 * with every dtype, a GGUF writer for the block types, and the tests' own cut of a tensor, worked
 * out from the shape and the files' bytes rather than from loader/tp.c, to compare each rank's
 * slice with. Each test executable uses only some of these, hence the unused attribute. */
#ifndef HOIST_TP_TEST_COMMON_H
#define HOIST_TP_TEST_COMMON_H

#include "source_test_common.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TP_UNUSED __attribute__((unused))

/* ---- the tests' own cut ------------------------------------------------------------------- */

/* Dimension `dim` of t cut into `parts`, part `index`: entries of `unit` bytes (a block of a
 * block type along the innermost dimension, else everything inside dim), `outer` rows of them.
 * false when the cut is not possible (dim does not divide without pad, not a whole byte). */
typedef struct tp_ref {
    uint64_t outer, n, unit, p, start, r;
    int64_t shape[HOIST_MAX_DIMS];
    uint64_t nbytes; /* of the slice */
} tp_ref;

static TP_UNUSED bool tp_ref_cut(const hoist_tensor_info *t, int dim, uint32_t parts,
                                 uint32_t index, bool pad, tp_ref *c)
{
    memset(c, 0, sizeof *c);
    memcpy(c->shape, t->shape, sizeof c->shape);
    if (dim < 0 || parts == 1) {
        *c = (tp_ref){.outer = 1, .n = 1, .unit = t->nbytes, .p = 1, .start = 0, .r = 1,
                      .nbytes = t->nbytes};
        memcpy(c->shape, t->shape, sizeof c->shape);
        return true;
    }
    c->outer = 1;
    for (int k = 0; k < dim; k++) c->outer *= (uint64_t)t->shape[k];
    unsigned be = hoist_dtype_block_elems(t->dtype), bb = hoist_dtype_block_bytes(t->dtype);
    bool innermost = (uint32_t)dim + 1 == t->ndim;
    if (innermost) {
        c->n = (uint64_t)t->shape[dim] / be;
        c->unit = bb;
    } else {
        c->n = (uint64_t)t->shape[dim];
        if (t->nbytes % (c->outer * c->n)) return false;
        c->unit = t->nbytes / (c->outer * c->n);
    }
    if (c->n % parts && !pad) return false;
    c->p = (c->n + parts - 1) / parts;
    c->start = (uint64_t)index * c->p;
    c->r = c->start < c->n ? (c->n - c->start < c->p ? c->n - c->start : c->p) : 0;
    c->shape[dim] = (int64_t)(c->p * (innermost ? be : 1));
    c->nbytes = c->outer * c->p * c->unit;
    return true;
}

/* The slice's bytes from the whole tensor's: each row's part, then zeros for the padding. */
static TP_UNUSED uint8_t *tp_ref_bytes(const tp_ref *c, const uint8_t *full)
{
    uint8_t *out = calloc(c->nbytes + 1, 1);
    for (uint64_t o = 0; o < c->outer; o++)
        memcpy(out + o * c->p * c->unit, full + (o * c->n + c->start) * c->unit, c->r * c->unit);
    return out;
}

/* Bytes of the file a rank must read for the slice (padding is not read). */
static TP_UNUSED uint64_t tp_ref_read(const tp_ref *c) { return c->outer * c->r * c->unit; }

/* Tensor i's bytes, read from its file with pread (not through hoist). */
static TP_UNUSED uint8_t *tp_file_bytes(const hoist_model *m, size_t i)
{
    hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
    ck_assert_int_eq(hoist_model_tensor(m, i, &t), HOIST_OK);
    uint8_t *b = malloc(t.nbytes + 1);
    int fd = open(hoist_model_file_path(m, t.file), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, b, t.nbytes, (off_t)t.offset), (ssize_t)t.nbytes);
    close(fd);
    return b;
}

/* Asserts that tensor i of w is the slice c of the file's tensor: shape, size and bytes. */
static TP_UNUSED void tp_assert_slice(const hoist_model *m, const hoist_weights *w, size_t i,
                                      const tp_ref *c, const char *what)
{
    hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
    hoist_view v = HOIST_VIEW_INIT;
    ck_assert_int_eq(hoist_model_tensor(m, i, &t), HOIST_OK);
    ck_assert_int_eq(hoist_weights_view(w, i, &v), HOIST_OK);
    ck_assert_msg(v.nbytes == c->nbytes, "%s: %s: view of %llu bytes, expected %llu", what,
                  t.name, (unsigned long long)v.nbytes, (unsigned long long)c->nbytes);
    ck_assert_uint_eq(v.ndim, t.ndim);
    for (uint32_t k = 0; k < t.ndim; k++)
        ck_assert_msg(v.shape[k] == c->shape[k], "%s: %s: dimension %u is %lld, expected %lld",
                      what, t.name, k, (long long)v.shape[k], (long long)c->shape[k]);
    uint8_t *full = tp_file_bytes(m, i);
    uint8_t *want = tp_ref_bytes(c, full);
    uint8_t *got = malloc(c->nbytes + 1);
    ck_assert_int_eq(hoist_weights_read(w, i, 0, got, c->nbytes), HOIST_OK);
    ck_assert_msg(memcmp(got, want, c->nbytes) == 0, "%s: tensor %s: slice bytes differ", what,
                  t.name);
    free(got);
    free(want);
    free(full);
}

/* ---- counting what the sources read (the I/O seam of core/io.h) ---------------------------- */

static _Atomic uint64_t tp_read_count;
static _Atomic uint64_t tp_mapped_count;

static TP_UNUSED ssize_t tp_count_pread(int fd, void *buf, size_t n, off_t off)
{
    ssize_t r = pread(fd, buf, n, off);
    if (r > 0) atomic_fetch_add(&tp_read_count, (uint64_t)r);
    return r;
}

static TP_UNUSED int tp_count_uring(int direct, uint64_t off, unsigned len, int res)
{
    (void)direct, (void)off, (void)len;
    if (res > 0) atomic_fetch_add(&tp_read_count, (uint64_t)res);
    return res;
}

static TP_UNUSED void tp_count_mapped(const char *path, uint64_t lo, uint64_t hi)
{
    (void)path;
    atomic_fetch_add(&tp_mapped_count, hi - lo);
}

static TP_UNUSED int tp_open_no_direct(const char *path, int flags)
{
    if (flags & O_DIRECT) {
        errno = EINVAL;
        return -1;
    }
    return open(path, flags);
}

/* Counts every byte read from now on; with no_direct, O_DIRECT is refused at open (so that
 * uring reads exactly what it is asked, not whole O_DIRECT units). */
static TP_UNUSED void tp_count_start(bool no_direct)
{
    atomic_store(&tp_read_count, 0);
    atomic_store(&tp_mapped_count, 0);
    hoist__io_set_hooks(&(hoist__io_hooks){.pread = tp_count_pread,
                                           .uring_result = tp_count_uring,
                                           .mapped_window = tp_count_mapped,
                                           .open = no_direct ? tp_open_no_direct : NULL});
}

static TP_UNUSED void tp_count_stop(void) { hoist__io_set_hooks(NULL); }

/* ---- loading a rank ----------------------------------------------------------------------- */

static TP_UNUSED int tp_load(hoist_model *m, hoist_path path, const hoist_tp_options *tp,
                             hoist_weights **w)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = path;
    o.threads = 2;
    o.chunk_bytes = 65536; /* several windows, each holding many rows */
    o.tp = tp;
    *w = NULL;
    return hoist_load(m, &o, w);
}

static TP_UNUSED hoist_weights *tp_load_ok(hoist_model *m, hoist_path path,
                                           const hoist_tp_options *tp)
{
    hoist_weights *w = NULL;
    int rc = tp_load(m, path, tp, &w);
    ck_assert_msg(rc == HOIST_OK, "rank %d of %d through %s: %s: %s", tp ? tp->rank : 0,
                  tp ? tp->world : 1, hoist_path_name(path), hoist_status_name(rc),
                  hoist_last_error());
    return w;
}

static TP_UNUSED hoist_load_stats tp_stats(const hoist_weights *w)
{
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    return s;
}

/* ---- models ------------------------------------------------------------------------------- */

/* `hoist gen DIR/SUB ARGS`: a small Llama model (config.json beside it for the head counts). */
static TP_UNUSED char *tp_gen(const char *base, const char *sub, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "gen '%s/%s' %s --quiet", base, sub, args);
    ck_assert_msg(tu_run_cli(cmd) == 0, "hoist %s failed", cmd);
    return tu_path(base, sub);
}

/* A byte pattern that differs at every offset of every tensor. */
static TP_UNUSED void tp_fill(uint8_t *p, uint64_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 12345u;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* Shapes every safetensors dtype gets in the zoo: [8, 16] and [4, 8, 8] (a middle dimension). */
#define TP_ZOO_SHAPES 2

/* Writes a safetensors file holding, for every safetensors dtype, "zoo.<DTYPE>.2d" [8, 16] and
 * "zoo.<DTYPE>.3d" [4, 8, 8]. */
static TP_UNUSED void tp_write_zoo(const char *path)
{
    char *header = malloc(1 << 16);
    size_t hl = 0;
    uint8_t *data = malloc(1 << 20);
    uint64_t off = 0;
    hl += (size_t)snprintf(header + hl, (1 << 16) - hl, "{");
    for (int d = 0; d <= HOIST_DTYPE_U64; d++) {
        unsigned bits = hoist_dtype_bits((hoist_dtype)d);
        const char *shapes[] = {"[8, 16]", "[4, 8, 8]"};
        const char *names[] = {"2d", "3d"};
        uint64_t elems[] = {128, 256};
        for (int s = 0; s < TP_ZOO_SHAPES; s++) {
            uint64_t n = elems[s] * bits / 8;
            tp_fill(data + off, n, (uint32_t)(d * 7 + s));
            hl += (size_t)snprintf(header + hl, (1 << 16) - hl,
                                   "%s\"zoo.%s.%s\": {\"dtype\": \"%s\", \"shape\": %s, "
                                   "\"data_offsets\": [%llu, %llu]}",
                                   hl > 1 ? ", " : "", hoist_dtype_name((hoist_dtype)d), names[s],
                                   hoist_dtype_name((hoist_dtype)d), shapes[s],
                                   (unsigned long long)off, (unsigned long long)(off + n));
            off += n;
        }
    }
    hl += (size_t)snprintf(header + hl, (1 << 16) - hl, "}");
    tu_write_safetensors(path, header, data, off);
    free(header);
    free(data);
}

/* ---- a GGUF writer, for block types hoist gen does not write ------------------------------ */

typedef struct tp_gguf_tensor {
    const char *name;
    uint32_t ggml_type; /* ggml's numbering: 8 = Q8_0, 12 = Q4_K, 1 = F16, 0 = F32 */
    hoist_dtype dtype;  /* the same as hoist reports it */
    uint32_t ndim;
    uint64_t ne[4];     /* ggml order: innermost first */
} tp_gguf_tensor;

static TP_UNUSED void tp_put(uint8_t *b, size_t *at, const void *p, size_t n)
{
    memcpy(b + *at, p, n);
    *at += n;
}

static TP_UNUSED void tp_put_str(uint8_t *b, size_t *at, const char *s)
{
    uint64_t n = strlen(s);
    tp_put(b, at, &n, 8);
    tp_put(b, at, s, n);
}

/* A GGUF v3 file with no metadata and these tensors, each filled with a pattern: alignment 32. */
static TP_UNUSED void tp_write_gguf(const char *path, const tp_gguf_tensor *ts, size_t n)
{
    uint8_t *b = calloc(1, 1 << 20);
    size_t at = 0;
    uint32_t version = 3;
    uint64_t nt = n, nkv = 0;
    tp_put(b, &at, "GGUF", 4);
    tp_put(b, &at, &version, 4);
    tp_put(b, &at, &nt, 8);
    tp_put(b, &at, &nkv, 8);
    uint64_t offs[16], off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t elems = 1;
        for (uint32_t k = 0; k < ts[i].ndim; k++) elems *= ts[i].ne[k];
        uint64_t bytes = elems / hoist_dtype_block_elems(ts[i].dtype) *
                         hoist_dtype_block_bytes(ts[i].dtype);
        offs[i] = off;
        tp_put_str(b, &at, ts[i].name);
        tp_put(b, &at, &ts[i].ndim, 4);
        for (uint32_t k = 0; k < ts[i].ndim; k++) tp_put(b, &at, &ts[i].ne[k], 8);
        tp_put(b, &at, &ts[i].ggml_type, 4);
        tp_put(b, &at, &off, 8);
        off = (off + bytes + 31) / 32 * 32;
    }
    at = (at + 31) / 32 * 32;
    for (size_t i = 0; i < n; i++) {
        uint64_t end = i + 1 < n ? offs[i + 1] : off;
        tp_fill(b + at + offs[i], end - offs[i], (uint32_t)i + 99);
    }
    tu_write(path, b, at + off);
    free(b);
}

#endif
