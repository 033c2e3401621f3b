/* The CUDA kernels of infer/kernels.cu that the forward-pass tests reach only through whole
 * models: here each is held to a double-precision reference on inputs chosen to reach its edges.
 * The Q8_0 matrix-vector product has two kernels: the staged one, two rows a warp, for 16-byte
 * aligned rows of a multiple of 256 columns, and the scalar one for the rest. Both must give the
 * reference's sums for every activation dtype, beta, a partial last group of blocks and row
 * counts that leave a warp one row or a thread block part empty. Built with the CUDA backend
 * only; exits 77 (skipped) without a device. */
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
    suite_add_tcase(s, tc);
    return tu_run_suite_nofork(s);
}
