/* The CUDA kernels of infer/kernels.cu that the forward-pass tests reach only through whole
 * models: here each is held to a double-precision reference on inputs chosen to reach its edges.
 * The Q8_0 matrix-vector product has two kernels: the staged one, two rows a warp, for 16-byte
 * aligned rows of a multiple of 256 columns, and the scalar one for the rest. Both must give the
 * reference's sums for every activation dtype, beta, a partial last group of blocks and row
 * counts that leave a warp one row or a thread block part empty. The fused decode kernels
 * (kernels_gemv.cu) are held to the same references, and their norm and SwiGLU parts to
 * hoist__k_rmsnorm's and hoist__k_swiglu's outputs. Few-row products split each row among
 * warps (split-K): every split is forced in turn (hoist__k_force_split), held to the same
 * references, and two launches must give the same bits. Built with the CUDA backend only; exits 77
 * (skipped) without a device. */
#include "gpu/gpu.h"
#include "infer/kernels.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* IEEE half bits of f, which must be exact in half (the compiler's own conversion, as
 * gguf_test_common.h uses). */
static uint16_t half_bits(float f)
{
    _Float16 h = (_Float16)f;
    ck_assert_msg((float)h == f, "%g is not a half", f);
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}

static uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    ck_assert_msg((u & 0xffff) == 0, "%g is not a bf16", f);
    return (uint16_t)(u >> 16);
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

typedef struct q8_case {
    uint32_t rows, cols, w_offset; /* w_offset bytes before the first row (34: unaligned rows) */
    hoist_dtype x_dtype;
    float beta;
} q8_case;

/* Runs one product on the device with the kernel HOIST_Q8_GEMV selects and compares every row
 * with the reference: within 1e-5 of the sum of the terms' magnitudes (fp32 accumulation). */
static void check_q8(const hoist__gpu_ops *g, hoist__stream *st, const q8_case *c, uint32_t seed)
{
    uint32_t nblk = c->cols / 32;
    size_t wbytes = c->w_offset + (size_t)c->rows * nblk * 34;
    size_t es = c->x_dtype == HOIST_DTYPE_F32 ? 4 : 2;
    uint8_t *w = calloc(1, wbytes);
    float *x = malloc(c->cols * sizeof *x), *y0 = malloc(c->rows * sizeof *y0);
    float *got = malloc(c->rows * sizeof *got);
    uint8_t *xb = malloc(c->cols * es);
    double *ref = malloc(c->rows * sizeof *ref), *mag = malloc(c->rows * sizeof *mag);
    for (uint32_t i = 0; i < c->cols; i++) {
        x[i] = (float)((int)(rnd(&seed) % 129) - 64) / 64.0f; /* exact in bf16, f16 and f32 */
        if (es == 4) memcpy(xb + 4 * i, &x[i], 4);
        else {
            uint16_t h = c->x_dtype == HOIST_DTYPE_BF16 ? bf16_bits(x[i]) : half_bits(x[i]);
            memcpy(xb + 2 * i, &h, 2);
        }
    }
    for (uint32_t r = 0; r < c->rows; r++) {
        y0[r] = (float)(r % 7) - 3.0f;
        ref[r] = c->beta * (double)y0[r];
        mag[r] = fabs(ref[r]);
        for (uint32_t b = 0; b < nblk; b++) {
            uint8_t *blk = w + c->w_offset + ((size_t)r * nblk + b) * 34;
            float d = ldexpf(1.0f + (float)(rnd(&seed) % 16) / 16.0f, -(int)(rnd(&seed) % 9) - 4);
            uint16_t h = half_bits(d);
            memcpy(blk, &h, 2);
            for (uint32_t k = 0; k < 32; k++) {
                int8_t q = (int8_t)(rnd(&seed) & 0xff); /* -128 included */
                blk[2 + k] = (uint8_t)q;
                double t = (double)d * q * x[b * 32 + k];
                ref[r] += t;
                mag[r] += fabs(t);
            }
        }
    }
    void *dw, *dx;
    float *dy;
    ck_assert_int_eq(g->mem_alloc(0, wbytes, &dw), HOIST_OK);
    ck_assert_int_eq(g->mem_alloc(0, c->cols * es, &dx), HOIST_OK);
    ck_assert_int_eq(g->mem_alloc(0, c->rows * sizeof(float), (void **)&dy), HOIST_OK);
    ck_assert_int_eq(g->copy_h2d(dw, w, wbytes, st), HOIST_OK);
    ck_assert_int_eq(g->copy_h2d(dx, xb, c->cols * es, st), HOIST_OK);
    ck_assert_int_eq(g->copy_h2d(dy, y0, c->rows * sizeof(float), st), HOIST_OK);
    ck_assert_int_eq(hoist__k_gemv_q8_0(st, dy, (uint8_t *)dw + c->w_offset, dx, c->x_dtype,
                                        c->rows, c->cols, c->beta),
                     HOIST_OK);
    ck_assert_int_eq(g->stream_sync(st), HOIST_OK);
    ck_assert_int_eq(g->copy_d2h(got, dy, c->rows * sizeof(float), 0), HOIST_OK);
    /* a second launch from the same y gives the same bits (the split's fixed order) */
    float *again = malloc(c->rows * sizeof *again);
    ck_assert_int_eq(g->copy_h2d(dy, y0, c->rows * sizeof(float), st), HOIST_OK);
    ck_assert_int_eq(hoist__k_gemv_q8_0(st, dy, (uint8_t *)dw + c->w_offset, dx, c->x_dtype,
                                        c->rows, c->cols, c->beta),
                     HOIST_OK);
    ck_assert_int_eq(g->stream_sync(st), HOIST_OK);
    ck_assert_int_eq(g->copy_d2h(again, dy, c->rows * sizeof(float), 0), HOIST_OK);
    ck_assert_msg(memcmp(got, again, c->rows * sizeof(float)) == 0,
                  "Q8_0 gemv, %u x %u: two launches differ", c->rows, c->cols);
    free(again);
    for (uint32_t r = 0; r < c->rows; r++)
        ck_assert_msg(fabs(got[r] - ref[r]) <= 1e-5 * mag[r] + 1e-6,
                      "Q8_0 gemv (%s kernel), %u x %u, x %s, beta %g, offset %u: row %u is %.9g, "
                      "the reference %.9g",
                      getenv("HOIST_Q8_GEMV") ? getenv("HOIST_Q8_GEMV") : "default", c->rows,
                      c->cols, hoist_dtype_name(c->x_dtype), c->beta, c->w_offset, r, got[r],
                      ref[r]);
    g->mem_free(0, dw);
    g->mem_free(0, dx);
    g->mem_free(0, dy);
    free(w);
    free(x);
    free(y0);
    free(got);
    free(xb);
    free(ref);
    free(mag);
}

/* Widths of a whole number of staging groups (32 blocks), a partial last group of each size the
 * staged kernel takes (8, 16, 24 blocks), Llama's 4096 and 14336, and widths only the scalar
 * kernel takes; rows from one to past a thread block of eight warps (of two rows each, an odd
 * count leaving a warp one). Every case runs through the default selection and through
 * HOIST_Q8_GEMV=scalar. */
START_TEST(test_gemv_q8_0_matches_reference)
{
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    ck_assert_ptr_nonnull(g);
    hoist__stream *st;
    ck_assert_int_eq(g->stream_create(0, &st), HOIST_OK);
    const uint32_t cols[] = {256, 1024, 1280, 1536, 1792, 2304, 4096, 14336, 32, 1056, 2080};
    const uint32_t rows[] = {1, 7, 8, 9, 33};
    const hoist_dtype xt[] = {HOIST_DTYPE_BF16, HOIST_DTYPE_F16, HOIST_DTYPE_F32};
    const float betas[] = {0.0f, 1.0f, 0.5f};
    const char *kernels[] = {NULL, "scalar"}; /* the default: staged where it can */
    uint32_t seed = 0x9e3779b9u, n = 0;
    for (int k = 0; k < 2; k++) {
        if (kernels[k]) setenv("HOIST_Q8_GEMV", kernels[k], 1);
        for (size_t ci = 0; ci < sizeof cols / sizeof *cols; ci++)
            for (size_t ri = 0; ri < sizeof rows / sizeof *rows; ri++, n++) {
                q8_case c = {rows[ri], cols[ci], 0, xt[n % 3], betas[n / 3 % 3]};
                check_q8(g, st, &c, seed + n);
            }
        /* rows that do not start 16-byte aligned take the scalar kernel, also when cols would
         * suit the staged one */
        q8_case c = {9, 4096, 34, HOIST_DTYPE_BF16, 0.5f};
        check_q8(g, st, &c, seed);
        unsetenv("HOIST_Q8_GEMV");
    }
    g->stream_destroy(st);
}
END_TEST

/* ---- the fused decode kernels (kernels_gemv.cu) ------------------------------------------- */

static size_t dt_bytes(hoist_dtype dt) { return dt == HOIST_DTYPE_F32 ? 4 : 2; }

/* v (exact in dt) as element i of a dt array. */
static void put_val(void *dst, size_t i, hoist_dtype dt, float v)
{
    if (dt == HOIST_DTYPE_F32) {
        memcpy((uint8_t *)dst + 4 * i, &v, 4);
        return;
    }
    uint16_t h = dt == HOIST_DTYPE_BF16 ? bf16_bits(v) : half_bits(v);
    memcpy((uint8_t *)dst + 2 * i, &h, 2);
}

static float get_val(const void *src, size_t i, hoist_dtype dt)
{
    float f;
    if (dt == HOIST_DTYPE_F32) {
        memcpy(&f, (const uint8_t *)src + 4 * i, 4);
    } else if (dt == HOIST_DTYPE_BF16) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)src + 2 * i, 2);
        uint32_t u = (uint32_t)h << 16;
        memcpy(&f, &u, 4);
    } else {
        _Float16 h;
        memcpy(&h, (const uint8_t *)src + 2 * i, 2);
        f = (float)h;
    }
    return f;
}

/* The spacing of dt's values at v (normal range). */
static double ulp(double v, hoist_dtype dt)
{
    int e;
    frexp(fabs(v) > 1e-30 ? v : 1e-30, &e);
    int mant = dt == HOIST_DTYPE_BF16 ? 8 : dt == HOIST_DTYPE_F16 ? 11 : 24;
    return ldexp(1.0, e - mant);
}

/* A rows x cols matrix of weight dtype wdt (Q8_0 or a float dtype) with its values in val. */
static size_t matrix_bytes(uint32_t rows, uint32_t cols, hoist_dtype wdt)
{
    return wdt == HOIST_DTYPE_Q8_0 ? (size_t)rows * cols / 32 * 34
                                   : (size_t)rows * cols * dt_bytes(wdt);
}

static void make_matrix(uint8_t *w, double *val, uint32_t rows, uint32_t cols, hoist_dtype wdt,
                        uint32_t *seed)
{
    if (wdt != HOIST_DTYPE_Q8_0) {
        for (size_t i = 0; i < (size_t)rows * cols; i++) {
            float v = ldexpf((float)((int)(rnd(seed) % 33) - 16) / 16.0f, -(int)(rnd(seed) % 3));
            put_val(w, i, wdt, v);
            val[i] = v;
        }
        return;
    }
    for (size_t b = 0; b < (size_t)rows * cols / 32; b++) {
        uint8_t *blk = w + b * 34;
        float d = ldexpf(1.0f + (float)(rnd(seed) % 16) / 16.0f, -(int)(rnd(seed) % 9) - 4);
        uint16_t h = half_bits(d);
        memcpy(blk, &h, 2);
        for (uint32_t k = 0; k < 32; k++) {
            int8_t q = (int8_t)(rnd(seed) & 0xff);
            blk[2 + k] = (uint8_t)q;
            val[b * 32 + k] = (double)d * q;
        }
    }
}

static void *dev_put(const hoist__gpu_ops *g, hoist__stream *st, const void *host, size_t bytes)
{
    void *p;
    ck_assert_int_eq(g->mem_alloc(0, bytes, &p), HOIST_OK);
    if (host) ck_assert_int_eq(g->copy_h2d(p, host, bytes, st), HOIST_OK);
    return p;
}

static void dev_get(const hoist__gpu_ops *g, hoist__stream *st, void *host, const void *dev,
                    size_t bytes)
{
    ck_assert_int_eq(g->stream_sync(st), HOIST_OK);
    ck_assert_int_eq(g->copy_d2h(host, dev, bytes, 0), HOIST_OK);
}

typedef struct dcase {
    uint32_t rows, cols;
    hoist_dtype wdt, xdt, ndt; /* weights, activations, norm weights */
    float beta, eps;
    int bias;
} dcase;

static const char *dname(hoist_dtype dt) { return hoist_dtype_name(dt); }

/* A product's rows against sum(val[r] * x) in double: within 1e-5 of the terms' magnitudes. */
static void check_rows(const dcase *c, const char *what, const float *got, const double *val,
                       const double *x, const float *y0, const float *bias)
{
    for (uint32_t r = 0; r < c->rows; r++) {
        double ref = c->beta * (double)y0[r], mag = fabs(ref);
        for (uint32_t k = 0; k < c->cols; k++) {
            double t = val[(size_t)r * c->cols + k] * x[k];
            ref += t;
            mag += fabs(t);
        }
        if (bias) {
            ref += bias[r];
            mag += fabs(bias[r]);
        }
        ck_assert_msg(fabs(got[r] - ref) <= 1e-5 * mag + 1e-6,
                      "%s, %u x %u, W %s, x %s, beta %g, bias %d: row %u is %.9g, the reference "
                      "%.9g",
                      what, c->rows, c->cols, dname(c->wdt), dname(c->xdt), c->beta, c->bias, r,
                      got[r], ref);
    }
}

/* hoist__k_decode_gemv: y = beta * y + W . x + bias, x in the activation dtype. */
static void check_decode_gemv(const hoist__gpu_ops *g, hoist__stream *st, const dcase *c,
                              uint32_t seed)
{
    size_t wb = matrix_bytes(c->rows, c->cols, c->wdt), es = dt_bytes(c->xdt);
    uint8_t *w = malloc(wb), *xb = malloc(c->cols * es);
    double *val = malloc((size_t)c->rows * c->cols * sizeof *val);
    double *x = malloc(c->cols * sizeof *x);
    float *y0 = malloc(c->rows * 4), *b = malloc(c->rows * 4), *got = malloc(c->rows * 4);
    make_matrix(w, val, c->rows, c->cols, c->wdt, &seed);
    for (uint32_t i = 0; i < c->cols; i++) {
        float v = (float)((int)(rnd(&seed) % 129) - 64) / 64.0f;
        put_val(xb, i, c->xdt, v);
        x[i] = v;
    }
    for (uint32_t r = 0; r < c->rows; r++) {
        y0[r] = (float)(r % 7) - 3.0f;
        b[r] = (float)((int)(rnd(&seed) % 17) - 8) / 4.0f;
    }
    void *dw = dev_put(g, st, w, wb), *dx = dev_put(g, st, xb, c->cols * es);
    float *dy = dev_put(g, st, y0, c->rows * 4), *db = dev_put(g, st, b, c->rows * 4);
    ck_assert(hoist__k_decode_takes(dw, c->wdt, c->xdt, c->cols));
    ck_assert_int_eq(hoist__k_decode_gemv(st, dy, dw, c->wdt, dx, c->xdt, c->rows, c->cols,
                                          c->beta, c->bias ? db : NULL),
                     HOIST_OK);
    dev_get(g, st, got, dy, c->rows * 4);
    check_rows(c, "decode gemv", got, val, x, y0, c->bias ? b : NULL);
    /* a second launch from the same y gives the same bits (the split's fixed order) */
    float *again = malloc(c->rows * 4);
    ck_assert_int_eq(g->copy_h2d(dy, y0, c->rows * 4, st), HOIST_OK);
    ck_assert_int_eq(hoist__k_decode_gemv(st, dy, dw, c->wdt, dx, c->xdt, c->rows, c->cols,
                                          c->beta, c->bias ? db : NULL),
                     HOIST_OK);
    dev_get(g, st, again, dy, c->rows * 4);
    ck_assert_msg(memcmp(got, again, c->rows * 4) == 0, "decode gemv, %u x %u, W %s: two launches "
                  "differ", c->rows, c->cols, dname(c->wdt));
    free(again);
    g->mem_free(0, dw);
    g->mem_free(0, dx);
    g->mem_free(0, dy);
    g->mem_free(0, db);
    free(w);
    free(xb);
    free(val);
    free(x);
    free(y0);
    free(b);
    free(got);
}

/* A residual row x (fp32) and norm weights of dtype ndt on the device, and xn =
 * hoist__k_rmsnorm(x) read back as doubles: what the norm-fused kernels must multiply by. */
static void make_norm_input(const hoist__gpu_ops *g, hoist__stream *st, const dcase *c,
                            uint32_t *seed, float **dx, void **dnw, double *xn)
{
    float *x = malloc(c->cols * 4);
    uint8_t *nw = malloc(c->cols * dt_bytes(c->ndt)), *xnb = malloc(c->cols * dt_bytes(c->xdt));
    for (uint32_t i = 0; i < c->cols; i++) {
        x[i] = (float)((int)(rnd(seed) % 2001) - 1000) / 700.0f;
        put_val(nw, i, c->ndt, (float)(rnd(seed) % 64 + 16) / 32.0f);
    }
    *dx = dev_put(g, st, x, c->cols * 4);
    *dnw = dev_put(g, st, nw, c->cols * dt_bytes(c->ndt));
    void *dxn = dev_put(g, st, NULL, c->cols * dt_bytes(c->xdt));
    ck_assert_int_eq(hoist__k_rmsnorm(st, dxn, c->xdt, *dx, *dnw, c->ndt, 1, c->cols, c->eps),
                     HOIST_OK);
    dev_get(g, st, xnb, dxn, c->cols * dt_bytes(c->xdt));
    /* the test's own check that rmsnorm normalized at all (and with this eps and weight) */
    double ss = 0;
    for (uint32_t i = 0; i < c->cols; i++) ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / c->cols + c->eps);
    for (uint32_t i = 0; i < c->cols; i++) {
        xn[i] = get_val(xnb, i, c->xdt);
        double want = x[i] * inv * get_val(nw, i, c->ndt);
        ck_assert_msg(fabs(xn[i] - want) <= 2 * ulp(want, c->xdt) + 1e-5 * fabs(want) + 1e-6,
                      "rmsnorm %u: %g vs %g", i, xn[i], want);
    }
    g->mem_free(0, dxn);
    free(x);
    free(nw);
    free(xnb);
}

/* hoist__k_decode_norm_gemv against rmsnorm-then-product: the product of W with
 * hoist__k_rmsnorm's own output, in double, within the fp32 accumulation's error. A wrong scale,
 * eps or norm weight moves xn by far more than that (eps is large in some cases so that a wrong
 * one shows). */
static void check_norm_gemv(const hoist__gpu_ops *g, hoist__stream *st, const dcase *c,
                            uint32_t seed)
{
    size_t wb = matrix_bytes(c->rows, c->cols, c->wdt);
    uint8_t *w = malloc(wb);
    double *val = malloc((size_t)c->rows * c->cols * sizeof *val);
    double *xn = malloc(c->cols * sizeof *xn);
    float *y0 = malloc(c->rows * 4), *got = malloc(c->rows * 4);
    make_matrix(w, val, c->rows, c->cols, c->wdt, &seed);
    for (uint32_t r = 0; r < c->rows; r++) y0[r] = (float)(r % 5) - 2.0f;
    float *dx;
    void *dnw;
    make_norm_input(g, st, c, &seed, &dx, &dnw, xn);
    void *dw = dev_put(g, st, w, wb);
    float *dy = dev_put(g, st, y0, c->rows * 4);
    ck_assert_int_eq(hoist__k_decode_norm_gemv(st, dy, dw, c->wdt, dx, dnw, c->ndt, c->eps,
                                               c->xdt, c->rows, c->cols, c->beta),
                     HOIST_OK);
    dev_get(g, st, got, dy, c->rows * 4);
    check_rows(c, "decode RMSNorm gemv", got, val, xn, y0, NULL);
    /* hoist__k_rmsnorm, then the plain product: the same bits (the fused path takes this way
     * where its launches have many blocks) */
    float *plain = malloc(c->rows * 4);
    void *dxn = dev_put(g, st, NULL, c->cols * dt_bytes(c->xdt));
    ck_assert_int_eq(g->copy_h2d(dy, y0, c->rows * 4, st), HOIST_OK);
    ck_assert_int_eq(hoist__k_rmsnorm(st, dxn, c->xdt, dx, dnw, c->ndt, 1, c->cols, c->eps),
                     HOIST_OK);
    ck_assert_int_eq(hoist__k_decode_gemv(st, dy, dw, c->wdt, dxn, c->xdt, c->rows, c->cols,
                                          c->beta, NULL),
                     HOIST_OK);
    dev_get(g, st, plain, dy, c->rows * 4);
    ck_assert_msg(memcmp(got, plain, c->rows * 4) == 0,
                  "decode RMSNorm gemv, %u x %u, W %s, x %s, norm %s: rmsnorm then the product "
                  "differs from the fused launch",
                  c->rows, c->cols, dname(c->wdt), dname(c->xdt), dname(c->ndt));
    g->mem_free(0, dxn);
    free(plain);
    g->mem_free(0, dw);
    g->mem_free(0, dx);
    g->mem_free(0, dnw);
    g->mem_free(0, dy);
    free(w);
    free(val);
    free(xn);
    free(y0);
    free(got);
}

/* hoist__k_decode_norm_swiglu: gate and up rows in one [2I][H] allocation (layout 0: gate rows
 * first, 1: up rows first, as a fused gate_up matrix of either order) or two (layout 2). Its
 * output must equal, to an ulp of the activation dtype, hoist__k_swiglu over the plain products
 * (hoist__k_decode_gemv of hoist__k_rmsnorm's output, which sums each row in the same order),
 * and the double reference within the dtype's rounding. */
static void check_norm_swiglu(const hoist__gpu_ops *g, hoist__stream *st, const dcase *c,
                              int layout, uint32_t seed)
{
    uint32_t I = c->rows, H = c->cols;
    size_t mb = matrix_bytes(I, H, c->wdt), es = dt_bytes(c->xdt);
    uint8_t *w = malloc(2 * mb);
    double *val = malloc(2 * (size_t)I * H * sizeof *val), *xn = malloc(H * sizeof *xn);
    float *bias = malloc(2 * I * 4);
    make_matrix(w, val, 2 * I, H, c->wdt, &seed);
    for (uint32_t i = 0; i < 2 * I; i++) bias[i] = (float)((int)(rnd(&seed) % 17) - 8) / 8.0f;
    float *dx;
    void *dnw;
    make_norm_input(g, st, c, &seed, &dx, &dnw, xn);
    uint32_t g_col = layout == 1 ? I : 0, u_col = layout == 1 ? 0 : I; /* rows of the matrix */
    uint8_t *dw = dev_put(g, st, w, 2 * mb), *dw2 = NULL;
    const uint8_t *wg = dw + (size_t)g_col / I * mb, *wu = dw + (size_t)u_col / I * mb;
    if (layout == 2) { /* the up rows in an allocation of their own */
        dw2 = dev_put(g, st, w + (size_t)u_col / I * mb, mb);
        wu = dw2;
    }
    float *db = dev_put(g, st, bias, 2 * I * 4);
    const float *bg = c->bias ? db : NULL, *bu = c->bias ? db + I : NULL;
    void *dact = dev_put(g, st, NULL, I * es), *dref = dev_put(g, st, NULL, I * es);
    ck_assert_int_eq(hoist__k_decode_norm_swiglu(st, dact, c->xdt, wg, wu, c->wdt, dx, dnw, c->ndt,
                                                 c->eps, I, H, bg, bu),
                     HOIST_OK);
    /* rmsnorm, the plain products into gu ([gate | up]), swiglu */
    void *dxn = dev_put(g, st, NULL, H * es);
    float *dgu = dev_put(g, st, NULL, 2 * I * 4);
    ck_assert_int_eq(hoist__k_rmsnorm(st, dxn, c->xdt, dx, dnw, c->ndt, 1, H, c->eps), HOIST_OK);
    ck_assert_int_eq(hoist__k_decode_gemv(st, dgu, wg, c->wdt, dxn, c->xdt, I, H, 0.0f, NULL),
                     HOIST_OK);
    ck_assert_int_eq(hoist__k_decode_gemv(st, dgu + I, wu, c->wdt, dxn, c->xdt, I, H, 0.0f, NULL),
                     HOIST_OK);
    ck_assert_int_eq(hoist__k_swiglu(st, dref, c->xdt, dgu, 2 * I, 0, I, 1, I, bg, bu), HOIST_OK);
    uint8_t *act = malloc(I * es), *ref = malloc(I * es), *plain = malloc(I * es);
    dev_get(g, st, act, dact, I * es);
    dev_get(g, st, ref, dref, I * es);
    /* the norm run on its own (hoist__k_decode_norm_fuses said no), then the SwiGLU product: the
     * same bits as the fused launch */
    ck_assert_int_eq(hoist__k_decode_swiglu(st, dref, c->xdt, wg, wu, c->wdt, dxn, I, H, bg, bu),
                     HOIST_OK);
    dev_get(g, st, plain, dref, I * es);
    ck_assert_msg(memcmp(act, plain, I * es) == 0,
                  "SwiGLU, %u x %u, W %s, x %s, layout %d: hoist__k_decode_swiglu after "
                  "hoist__k_rmsnorm differs from the norm-fused launch",
                  I, H, dname(c->wdt), dname(c->xdt), layout);
    free(plain);
    for (uint32_t i = 0; i < I; i++) {
        double a = get_val(act, i, c->xdt), b = get_val(ref, i, c->xdt);
        ck_assert_msg(a == b || fabs(a - b) <= ulp(b, c->xdt), /* == : both infinite */
                      "SwiGLU epilogue, %u x %u, W %s, x %s, layout %d, bias %d: act[%u] %.9g, "
                      "swiglu_kernel %.9g",
                      I, H, dname(c->wdt), dname(c->xdt), layout, c->bias, i, a, b);
        double gs = c->bias ? bias[i] : 0, us = c->bias ? bias[I + i] : 0, gm = fabs(gs),
               um = fabs(us);
        for (uint32_t k = 0; k < H; k++) {
            double tg = val[((size_t)g_col + i) * H + k] * xn[k];
            double tu = val[((size_t)u_col + i) * H + k] * xn[k];
            gs += tg;
            us += tu;
            gm += fabs(tg);
            um += fabs(tu);
        }
        double sg = 1.0 / (1.0 + exp(-gs)), want = gs * sg * us;
        /* fp32 sums (1e-5 of the magnitudes) through silu(g) * u, then the rounding to x's dtype */
        double tol = 1e-5 * (gm * fabs(us) * 1.2 + um * fabs(gs * sg)) + 1e-4 * fabs(want) +
                     2 * ulp(want, c->xdt) + 1e-6;
        if (isinf(a)) { /* past f16's 65504 the store rounds to infinity, of the product's sign */
            ck_assert_msg(c->xdt == HOIST_DTYPE_F16 && fabs(want) > 65000 &&
                              signbit(a) == signbit(want),
                          "SwiGLU epilogue, %u x %u, W %s, x %s: act[%u] %g, the reference %.9g",
                          I, H, dname(c->wdt), dname(c->xdt), i, a, want);
            continue;
        }
        ck_assert_msg(fabs(a - want) <= tol,
                      "SwiGLU epilogue, %u x %u, W %s, x %s, layout %d, bias %d: act[%u] %.9g, "
                      "the reference %.9g",
                      I, H, dname(c->wdt), dname(c->xdt), layout, c->bias, i, a, want);
    }
    void *bufs[] = {dx, dnw, dw, dw2, db, dact, dref, dxn, dgu};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        if (bufs[i]) g->mem_free(0, bufs[i]);
    free(w);
    free(val);
    free(xn);
    free(bias);
    free(act);
    free(ref);
}

static const hoist_dtype xdts[] = {HOIST_DTYPE_BF16, HOIST_DTYPE_F16, HOIST_DTYPE_F32};

/* The sweeps' weights: Q8_0 (q) or the activation dtype. */
static hoist_dtype sweep_wdt(int q, hoist_dtype xdt) { return q ? HOIST_DTYPE_Q8_0 : xdt; }

/* The sweeps' widths: 4096 (wi 0), 14336 (wi 1), and (wi 2) the smallest each weight kind takes
 * that is no power of two, 264 (33 words of bf16) or 768 (24 Q8_0 blocks, a partial staging
 * group). */
static uint32_t sweep_width(int wi, hoist_dtype wdt)
{
    return wi == 0 ? 4096 : wi == 1 ? 14336 : wdt == HOIST_DTYPE_Q8_0 ? 768 : 264;
}

/* Widths 4096, 14336 and a small one, row counts from one to past a block (odd ones leaving warps
 * of a block, or a Q8_0 warp's second row, empty), every activation dtype, beta 0 and 1, with and
 * without a bias, Q8_0 and float weights. */
START_TEST(test_decode_gemv_matches_reference)
{
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    hoist__stream *st;
    ck_assert_int_eq(g->stream_create(0, &st), HOIST_OK);
    const uint32_t rows[] = {1, 7, 33, 301};
    uint32_t n = 0;
    for (int q = 0; q < 2; q++)
        for (int wi = 0; wi < 3; wi++)
            for (size_t ri = 0; ri < sizeof rows / sizeof *rows; ri++)
                for (int xi = 0; xi < 3; xi++, n++) {
                    hoist_dtype wdt = sweep_wdt(q, xdts[xi]);
                    uint32_t cols = sweep_width(wi, wdt);
                    if (cols == 14336 && rows[ri] > 33) continue; /* the host reference's time */
                    dcase c = {rows[ri], cols, wdt, xdts[xi], HOIST_DTYPE_BF16,
                               (float)(n % 2), 0, (int)(n / 2 % 2)};
                    check_decode_gemv(g, st, &c, 0x1234567u + n);
                }
    g->stream_destroy(st);
}
END_TEST

START_TEST(test_decode_norm_gemv_matches_rmsnorm_then_product)
{
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    hoist__stream *st;
    ck_assert_int_eq(g->stream_create(0, &st), HOIST_OK);
    const uint32_t rows[] = {1, 9, 67};
    const float eps[] = {1e-5f, 0.5f, 3.0f};
    uint32_t n = 0;
    for (int q = 0; q < 2; q++)
        for (int wi = 0; wi < 3; wi++)
            for (size_t ri = 0; ri < sizeof rows / sizeof *rows; ri++)
                for (int xi = 0; xi < 3; xi++, n++) {
                    hoist_dtype wdt = sweep_wdt(q, xdts[xi]);
                    dcase c = {rows[ri], sweep_width(wi, wdt), wdt, xdts[xi], xdts[(xi + n) % 3],
                               (float)(n % 2), eps[n % 3], 0};
                    check_norm_gemv(g, st, &c, 0x7654321u + n);
                }
    g->stream_destroy(st);
}
END_TEST

START_TEST(test_decode_norm_swiglu_matches_swiglu_kernel)
{
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    hoist__stream *st;
    ck_assert_int_eq(g->stream_create(0, &st), HOIST_OK);
    const uint32_t rows[] = {1, 9, 203};
    uint32_t n = 0;
    for (int q = 0; q < 2; q++)
        for (int wi = 0; wi < 3; wi += 2) /* 4096 and the small width */
            for (size_t ri = 0; ri < sizeof rows / sizeof *rows; ri++)
                for (int xi = 0; xi < 3; xi++)
                    for (int layout = 0; layout < 3; layout++, n++) {
                        hoist_dtype wdt = sweep_wdt(q, xdts[xi]);
                        uint32_t cols = sweep_width(wi, wdt);
                        dcase c = {rows[ri], cols, wdt, xdts[xi], xdts[(xi + n) % 3], 0.0f,
                                   n % 2 ? 1e-5f : 0.5f, (int)(n / 3 % 2)};
                        check_norm_swiglu(g, st, &c, layout, 0xabcdefu + n);
                    }
    g->stream_destroy(st);
}
END_TEST

/* ---- split-K ---------------------------------------------------------------------------- */

/* The splits hoist__k_force_split pins (0: the launchers' own choice, which on the test's GPU
 * splits the few-row shapes below). */
static const unsigned splits[] = {0, 1, 2, 4, 8};

/* The staged Q8_0 kernel with each row pair's columns split among 1 to 8 warps: few rows (1, 3,
 * 64, 4096; odd counts leave a unit's second row empty), widths whose 256-column units divide
 * unevenly among the warps (768: 3 units split 2 ways; 14336: 56 units split 8 ways is 7 units,
 * 1.75 staging groups, a warp) or leave warps none (768 split 4 or 8), each beta, each x dtype;
 * check_q8 also launches twice and wants the same bits. */
START_TEST(test_gemv_q8_0_split_k)
{
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    hoist__stream *st;
    ck_assert_int_eq(g->stream_create(0, &st), HOIST_OK);
    const uint32_t shape[][2] = {{1, 4096}, {1, 14336}, {3, 768}, {3, 14336}, {64, 4096},
                                 {64, 768}, {4096, 4096}, {4096, 14336}};
    const hoist_dtype xt[] = {HOIST_DTYPE_BF16, HOIST_DTYPE_F16, HOIST_DTYPE_F32};
    const float betas[] = {0.0f, 1.0f, 0.5f};
    uint32_t n = 0;
    for (size_t si = 0; si < sizeof splits / sizeof *splits; si++) {
        hoist__k_force_split(splits[si]);
        for (size_t hi = 0; hi < sizeof shape / sizeof *shape; hi++, n++) {
            if (shape[hi][0] == 4096 && shape[hi][1] == 14336 && splits[si] != 0 &&
                splits[si] != 8)
                continue; /* the host reference's time */
            q8_case c = {shape[hi][0], shape[hi][1], 0, xt[n % 3], betas[n / 3 % 3]};
            check_q8(g, st, &c, 0x5eed0u + n);
        }
    }
    hoist__k_force_split(0);
    g->stream_destroy(st);
}
END_TEST

/* The decode kernels under each split: the plain product (beta 0 and 1, with and without a bias,
 * launched twice for the same bits), the norm-fused one (and its bits against rmsnorm then the
 * product) and the SwiGLU epilogue after the split's sum, Q8_0 and float weights, few rows. */
START_TEST(test_decode_split_k)
{
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    hoist__stream *st;
    ck_assert_int_eq(g->stream_create(0, &st), HOIST_OK);
    const uint32_t rows[] = {1, 3, 64};
    uint32_t n = 0;
    for (size_t si = 0; si < sizeof splits / sizeof *splits; si++) {
        hoist__k_force_split(splits[si]);
        for (int q = 0; q < 2; q++) {
            for (int wi = 0; wi < 3; wi++)
                for (size_t ri = 0; ri < sizeof rows / sizeof *rows; ri++, n++) {
                    hoist_dtype xdt = xdts[n % 3], wdt = sweep_wdt(q, xdt);
                    dcase c = {rows[ri], sweep_width(wi, wdt), wdt, xdt, xdts[(n + 1) % 3],
                               (float)(n % 2), n % 3 ? 1e-5f : 0.5f, (int)(n / 2 % 2)};
                    check_decode_gemv(g, st, &c, 0x51e0u + n);
                    c.bias = 0;
                    check_norm_gemv(g, st, &c, 0x51e1u + n);
                    if (wi != 1) {
                        c.beta = 0.0f;
                        c.bias = (int)(n % 2);
                        check_norm_swiglu(g, st, &c, (int)(n % 3), 0x51e2u + n);
                    }
                }
            /* a few-row matrix of Llama's size */
            hoist_dtype xdt = xdts[n % 3], wdt = sweep_wdt(q, xdt);
            dcase c = {4096, 4096, wdt, xdt, HOIST_DTYPE_BF16, 1.0f, 1e-5f, 1};
            check_decode_gemv(g, st, &c, 0x51e3u + n++);
        }
    }
    hoist__k_force_split(0);
    g->stream_destroy(st);
}
END_TEST

/* What the kernels do not take is said by hoist__k_decode_takes and refused by the launchers,
 * never computed some other way. */
START_TEST(test_decode_refuses_what_it_does_not_take)
{
    const hoist__gpu_ops *g = hoist__gpu_cuda();
    hoist__stream *st;
    ck_assert_int_eq(g->stream_create(0, &st), HOIST_OK);
    void *w, *x;
    float *y;
    ck_assert_int_eq(g->mem_alloc(0, 1 << 20, &w), HOIST_OK);
    ck_assert_int_eq(g->mem_alloc(0, 1 << 16, &x), HOIST_OK);
    ck_assert_int_eq(g->mem_alloc(0, 1 << 12, (void **)&y), HOIST_OK);
    const hoist_dtype bf = HOIST_DTYPE_BF16, q8 = HOIST_DTYPE_Q8_0;
    ck_assert(hoist__k_decode_takes(w, bf, bf, 4096));
    ck_assert(hoist__k_decode_takes(w, q8, bf, 4096));
    ck_assert(!hoist__k_decode_takes(w, bf, bf, 4100));               /* not a multiple of 8 */
    ck_assert(!hoist__k_decode_takes(w, q8, bf, 4096 + 32));          /* Q8_0: of 256 */
    ck_assert(!hoist__k_decode_takes((uint8_t *)w + 2, bf, bf, 4096)); /* unaligned rows */
    ck_assert(!hoist__k_decode_takes(w, HOIST_DTYPE_F16, bf, 4096));   /* mixed float dtypes */
    ck_assert(!hoist__k_decode_takes(w, HOIST_DTYPE_F32, HOIST_DTYPE_F32, 32768)); /* 128 KiB */
    ck_assert_int_eq(hoist__k_decode_gemv(st, y, w, bf, x, bf, 4, 4100, 0.0f, NULL),
                     HOIST_E_DEVICE);
    ck_assert_int_eq(hoist__k_decode_gemv(st, y, w, bf, (uint8_t *)x + 8, bf, 4, 4096, 0.0f,
                                          NULL),
                     HOIST_E_DEVICE);
    ck_assert_int_eq(hoist__k_decode_norm_swiglu(st, x, bf, w, (uint8_t *)w + 2, bf, y, x, bf,
                                                 1e-5f, 4, 4096, NULL, NULL),
                     HOIST_E_DEVICE);
    ck_assert_int_eq(hoist__k_decode_swiglu(st, x, bf, w, w, bf, (uint8_t *)x + 8, 4, 4096, NULL,
                                            NULL),
                     HOIST_E_DEVICE); /* unaligned input */
    ck_assert_int_eq(g->stream_sync(st), HOIST_OK); /* nothing was launched */
    g->mem_free(0, w);
    g->mem_free(0, x);
    g->mem_free(0, y);
    g->stream_destroy(st);
}
END_TEST

int main(void)
{
    if (hoist_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return TU_SKIP;
    }
    Suite *s = suite_create("gpu_kernels");
    TCase *tc = tcase_create("cuda");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_gemv_q8_0_matches_reference);
    tcase_add_test(tc, test_decode_gemv_matches_reference);
    tcase_add_test(tc, test_decode_norm_gemv_matches_rmsnorm_then_product);
    tcase_add_test(tc, test_decode_norm_swiglu_matches_swiglu_kernel);
    tcase_add_test(tc, test_gemv_q8_0_split_k);
    tcase_add_test(tc, test_decode_split_k);
    tcase_add_test(tc, test_decode_refuses_what_it_does_not_take);
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
