/* The decode step's matrix-vector kernels (infer/kernels.cu, hoist__k_gemv) against a CPU
 * reference in double precision: BF16, F16 and Q8_0 weights, odd row counts (not multiples of
 * the rows a warp takes), rows of 16-byte groups that are not multiples of a warp's loads, three
 * segments with their own output columns, the folded RMSNorm, residual add and bias, SwiGLU,
 * inputs above the 48 KiB of shared memory a kernel gets without asking, and every tuning. Rows
 * stored permuted give the same sums bit for bit, permuted (GGUF's q and k rows). Shapes the
 * kernels cannot read are refused before anything runs, naming why (these checks run without a
 * GPU too). Then sessions: the decode products by these kernels against cuBLAS's and against
 * the reference, and a model whose hidden size the kernels refuse, decoded through cuBLAS. */
#include "testutil.h"
#include "gpu/gpu.h"
#include "infer/kernels.h"
#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- host-side numbers ----------------------------------------------------------------------- */

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1); /* round to nearest even (no NaNs here) */
    return (uint16_t)(u >> 16);
}
static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint16_t to_f16(float f)
{
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}
static float from_f16(uint16_t u)
{
    _Float16 h;
    memcpy(&h, &u, 2);
    return (float)h;
}
static uint16_t to_half(hoist_dtype d, float f)
{
    return d == HOIST_DTYPE_BF16 ? to_bf16(f) : to_f16(f);
}
static float from_half(hoist_dtype d, uint16_t u)
{
    return d == HOIST_DTYPE_BF16 ? from_bf16(u) : from_f16(u);
}
static float round_to(hoist_dtype d, float f) { return from_half(d, to_half(d, f)); }

static uint64_t rng = 88172645463325252ull;
static float uniform(void) /* [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 4503599627370496.0 - 1.0);
}

/* A matrix in its device encoding (bytes) and its values as the kernel must see them. */
typedef struct mat {
    uint32_t rows, cols;
    hoist_dtype dtype;
    uint8_t *bytes;
    size_t nbytes;
    float *val; /* [rows][cols] */
} mat;

static mat make_mat(uint32_t rows, uint32_t cols, hoist_dtype dtype)
{
    mat m = {.rows = rows, .cols = cols, .dtype = dtype};
    m.val = malloc((size_t)rows * cols * sizeof(float));
    if (dtype == HOIST_DTYPE_Q8_0) {
        m.nbytes = (size_t)rows * cols / 32 * 34;
        m.bytes = malloc(m.nbytes);
        for (size_t b = 0; b < (size_t)rows * cols / 32; b++) {
            float v[32], amax = 0;
            for (int k = 0; k < 32; k++) {
                v[k] = uniform() * (1 + (float)(b % 5)); /* scales that differ per block */
                if (fabsf(v[k]) > amax) amax = fabsf(v[k]);
            }
            uint16_t dh = to_f16(amax / 127.0f);
            float d = from_f16(dh);
            uint8_t *blk = m.bytes + b * 34;
            blk[0] = (uint8_t)(dh & 0xff);
            blk[1] = (uint8_t)(dh >> 8);
            for (int k = 0; k < 32; k++) {
                int q = (int)lrintf(v[k] / d);
                q = q < -128 ? -128 : q > 127 ? 127 : q;
                blk[2 + k] = (uint8_t)(int8_t)q;
                m.val[b * 32 + k] = d * (float)q;
            }
        }
    } else {
        m.nbytes = (size_t)rows * cols * 2;
        m.bytes = malloc(m.nbytes);
        uint16_t *h = (uint16_t *)m.bytes;
        for (size_t i = 0; i < (size_t)rows * cols; i++) {
            h[i] = to_half(dtype, uniform() * 0.5f);
            m.val[i] = from_half(dtype, h[i]);
        }
    }
    return m;
}

static void free_mat(mat *m)
{
    free(m->bytes);
    free(m->val);
}

/* ---- device helpers ------------------------------------------------------------------------ */

static const hoist__gpu_ops *G;
static hoist__stream *S;

static void *dev_copy(const void *host, size_t bytes)
{
    void *p = NULL;
    ck_assert_int_eq(G->mem_alloc(0, bytes, &p), HOIST_OK);
    ck_assert_int_eq(G->copy_h2d(p, host, bytes, S), HOIST_OK);
    ck_assert_int_eq(G->stream_sync(S), HOIST_OK);
    return p;
}

static void host_copy(void *host, const void *dev, size_t bytes)
{
    ck_assert_int_eq(G->stream_sync(S), HOIST_OK);
    ck_assert_int_eq(G->copy_d2h(host, dev, bytes, 0), HOIST_OK);
}

/* ---- one case ------------------------------------------------------------------------------ */

typedef struct gcase {
    hoist_dtype wdtype, xdtype;
    uint32_t cols, nseg, rows[3], ycol[3];
    int norm;             /* 0 none, else the norm weight's dtype */
    int residual, bias;   /* y = y + Wx (+ b) */
    int swiglu, gbias;    /* act = silu(gate x + bg) * (up x + bu) */
} gcase;

static const hoist__gemv_tune tunes[] = {{1, 1, 0}, {2, 2, 0}, {4, 3, 0}, {2, 8, 0}};

/* Runs c under every tuning against the reference. */
static void run_case(const gcase *c)
{
    uint32_t units = c->swiglu ? c->rows[0] : 0, ylen = 0;
    mat m[3];
    for (uint32_t i = 0; i < c->nseg; i++) {
        m[i] = make_mat(c->rows[i], c->cols, c->wdtype);
        if (!c->swiglu) {
            units += c->rows[i];
            if (c->ycol[i] + c->rows[i] > ylen) ylen = c->ycol[i] + c->rows[i];
        }
    }
    /* the input and the values the kernel multiplies (rounded to the activations' dtype) */
    float *xf = malloc(c->cols * 4), *xv = malloc(c->cols * 4), *nw = malloc(c->cols * 4);
    uint16_t *xh = malloc(c->cols * 2), *nwh = malloc(c->cols * 2);
    double ss = 0;
    for (uint32_t i = 0; i < c->cols; i++) {
        xf[i] = uniform() * 3;
        ss += (double)xf[i] * xf[i];
        nwh[i] = to_half((hoist_dtype)(c->norm ? c->norm : HOIST_DTYPE_BF16), 1 + uniform() / 2);
        nw[i] = c->norm == HOIST_DTYPE_F32 ? 1 + uniform() / 2
                : from_half((hoist_dtype)(c->norm ? c->norm : HOIST_DTYPE_BF16), nwh[i]);
        xh[i] = to_half(c->xdtype, xf[i]);
    }
    const float eps = 1e-5f;
    float inv = 1.0f / sqrtf((float)(ss / c->cols) + eps);
    for (uint32_t i = 0; i < c->cols; i++)
        xv[i] = c->norm ? round_to(c->xdtype, xf[i] * inv * nw[i]) : from_half(c->xdtype, xh[i]);
    uint32_t olen = c->swiglu ? units : ylen;
    float *y0 = malloc(olen * 4), *bias = malloc(olen * 4), *bu = malloc(olen * 4);
    for (uint32_t i = 0; i < olen; i++) {
        y0[i] = c->residual ? uniform() * 4 : 0;
        bias[i] = uniform();
        bu[i] = uniform();
    }
    /* reference: per output, the value and a bound on its rounding */
    double *ref = calloc(olen, sizeof(double)), *tol = calloc(olen, sizeof(double));
    int *written = calloc(olen, sizeof(int));
    double tol_rel = c->norm ? 1e-2 : 2e-3; /* a normalized input may round the other way */
    uint32_t r0 = 0;
    for (uint32_t sgm = 0; sgm < c->nseg && !c->swiglu; sgm++) {
        for (uint32_t r = 0; r < c->rows[sgm]; r++) {
            double d = 0, a = 0;
            for (uint32_t i = 0; i < c->cols; i++) {
                d += (double)m[sgm].val[(size_t)r * c->cols + i] * xv[i];
                a += fabs((double)m[sgm].val[(size_t)r * c->cols + i] * xv[i]);
            }
            uint32_t o = c->ycol[sgm] + r;
            ref[o] = (c->residual ? y0[o] : 0) + d + (c->bias ? bias[r0 + r] : 0);
            tol[o] = tol_rel * a + 1e-5 * (fabs(y0[o]) + 1);
            written[o] = 1;
        }
        r0 += c->rows[sgm];
    }
    for (uint32_t u = 0; c->swiglu && u < units; u++) {
        double g = 0, up = 0, ag = 0, au = 0;
        for (uint32_t i = 0; i < c->cols; i++) {
            g += (double)m[0].val[(size_t)u * c->cols + i] * xv[i];
            up += (double)m[1].val[(size_t)u * c->cols + i] * xv[i];
            ag += fabs((double)m[0].val[(size_t)u * c->cols + i] * xv[i]);
            au += fabs((double)m[1].val[(size_t)u * c->cols + i] * xv[i]);
        }
        if (c->gbias) {
            g += bias[u];
            up += bu[u];
        }
        double sg = g / (1 + exp(-g));
        ref[u] = sg * up;
        /* d(act)/dg <= 1.1 |up|; the output is rounded to 8 (bf16) or 11 bits */
        tol[u] = tol_rel * (ag * 1.1 * fabs(up) + au * fabs(sg)) + 8e-3 * fabs(ref[u]) + 1e-6;
        written[u] = 1;
    }
    /* device */
    void *dw[3] = {NULL, NULL, NULL};
    for (uint32_t i = 0; i < c->nseg; i++) dw[i] = dev_copy(m[i].bytes, m[i].nbytes);
    void *dx = c->norm ? dev_copy(xf, c->cols * 4) : dev_copy(xh, c->cols * 2);
    void *dn = c->norm == HOIST_DTYPE_F32 ? dev_copy(nw, c->cols * 4) : dev_copy(nwh, c->cols * 2);
    void *dy = dev_copy(y0, olen * 4), *db = dev_copy(bias, olen * 4);
    void *dbu = dev_copy(bu, olen * 4);
    float *got = malloc(olen * 4);
    uint16_t *goth = malloc(olen * 2);
    for (size_t t = 0; t < sizeof tunes / sizeof *tunes; t++) {
        hoist__gemv_tune tune = tunes[t];
        int sms = 0;
        ck_assert_int_eq(G->multiprocessors(0, &sms), HOIST_OK);
        tune.sms = (uint32_t)sms;
        hoist__gemv g = {.wdtype = c->wdtype, .xdtype = c->xdtype, .cols = c->cols,
                         .nseg = c->nseg, .x = dx, .eps = eps};
        for (uint32_t i = 0; i < c->nseg; i++) {
            g.w[i] = dw[i];
            g.rows[i] = c->rows[i];
            g.ycol[i] = c->ycol[i];
        }
        if (c->norm) {
            g.norm = dn;
            g.norm_dtype = (hoist_dtype)c->norm;
        }
        if (c->swiglu) {
            g.act = dy; /* olen * 4 bytes: room for the half-size output */
            g.bg = c->gbias ? db : NULL;
            g.bu = c->gbias ? dbu : NULL;
        } else {
            g.y = dy;
            g.beta = c->residual ? 1.0f : 0.0f;
            g.bias = c->bias ? db : NULL;
        }
        ck_assert_int_eq(G->copy_h2d(dy, y0, olen * 4, S), HOIST_OK);
        if (t % 2) { /* prepared, as sessions do; else prepared by the launch */
            int rc = hoist__k_gemv_prepare(S, &g, &tune);
            ck_assert_msg(rc == HOIST_OK, "%s", hoist_last_error());
            ck_assert_uint_gt(g.grid, 0);
            ck_assert_uint_le(g.grid, tune.sms * tune.blocks_per_sm);
        }
        int rc = hoist__k_gemv(S, &g, &tune);
        ck_assert_msg(rc == HOIST_OK, "%s", hoist_last_error());
        if (c->swiglu) {
            host_copy(goth, dy, olen * 2);
            for (uint32_t i = 0; i < olen; i++) got[i] = from_half(c->xdtype, goth[i]);
        } else {
            host_copy(got, dy, olen * 4);
        }
        for (uint32_t o = 0; o < olen; o++) {
            if (!written[o]) { /* a gap between segments' columns stays as it was */
                ck_assert_msg(got[o] == y0[o], "column %u outside every segment changed", o);
                continue;
            }
            ck_assert_msg(fabs(got[o] - ref[o]) <= tol[o],
                          "%s [%u x %u], tuning %u rows %u blocks: output %u is %.7g, reference "
                          "%.7g (tolerance %.3g)",
                          hoist_dtype_name(c->wdtype), units, c->cols, tune.rows_per_warp,
                          tune.blocks_per_sm, o, got[o], ref[o], tol[o]);
        }
    }
    for (uint32_t i = 0; i < c->nseg; i++) {
        G->mem_free(0, dw[i]);
        free_mat(&m[i]);
    }
    void *bufs[] = {dx, dn, dy, db, dbu};
    for (size_t i = 0; i < 5; i++) G->mem_free(0, bufs[i]);
    free(xf), free(xv), free(nw), free(xh), free(nwh), free(y0), free(bias), free(bu);
    free(ref), free(tol), free(written), free(got), free(goth);
}

static void gpu_setup(void)
{
    G = hoist__gpu_cuda();
    ck_assert_int_eq(G->stream_create(0, &S), HOIST_OK);
}
static void gpu_teardown(void)
{
    G->stream_destroy(S);
    S = NULL;
}

/* the weights', the activations' dtype and the columns of a case */
#define W(w, x, c) .wdtype = w, .xdtype = x, .cols = c
#define BF HOIST_DTYPE_BF16
#define F16 HOIST_DTYPE_F16
#define Q8 HOIST_DTYPE_Q8_0

START_TEST(test_plain_odd_rows)
{
    /* 37 rows: no multiple of 2 or 4; 33 groups of 8 columns: lane 0 takes two */
    run_case(&(gcase){W(BF, BF, 264), .nseg = 1, .rows = {37}});
    run_case(&(gcase){W(BF, BF, 8), .nseg = 1, .rows = {1}});
    run_case(&(gcase){W(F16, F16, 136), .nseg = 1, .rows = {33}});
    run_case(&(gcase){W(BF, BF, 4104), .nseg = 1, .rows = {301}});
}
END_TEST

START_TEST(test_segments_residual_norm)
{
    /* q, k, v apart, their outputs in another order with a gap (columns 10, 11) left alone */
    run_case(&(gcase){W(BF, BF, 512), .nseg = 3, .rows = {5, 3, 7}, .ycol = {12, 0, 3}});
    run_case(&(gcase){W(BF, BF, 1032), .nseg = 3, .rows = {9, 1, 2}, .ycol = {0, 9, 10},
                      .norm = BF});
    run_case(&(gcase){W(BF, BF, 4096), .nseg = 1, .rows = {67}, .norm = HOIST_DTYPE_F32});
    run_case(&(gcase){W(F16, F16, 2048), .nseg = 1, .rows = {19}, .norm = F16, .residual = 1,
                      .bias = 1});
    run_case(&(gcase){W(BF, BF, 1024), .nseg = 1, .rows = {130}, .residual = 1, .bias = 1});
}
END_TEST

START_TEST(test_swiglu)
{
    run_case(&(gcase){W(BF, BF, 1032), .nseg = 2, .rows = {13, 13}, .norm = BF, .swiglu = 1,
                      .gbias = 1});
    run_case(&(gcase){W(F16, F16, 256), .nseg = 2, .rows = {7, 7}, .swiglu = 1});
    run_case(&(gcase){W(Q8, F16, 512), .nseg = 2, .rows = {9, 9}, .norm = HOIST_DTYPE_F32,
                      .swiglu = 1});
    run_case(&(gcase){W(Q8, BF, 4352), .nseg = 2, .rows = {5, 5}, .swiglu = 1, .gbias = 1});
}
END_TEST

START_TEST(test_q8_0)
{
    /* groups of 8 blocks per row: 1 and 3 (8 lanes a row), 17 (16), 33 (32) */
    run_case(&(gcase){W(Q8, F16, 256), .nseg = 1, .rows = {7}});
    run_case(&(gcase){W(Q8, F16, 768), .nseg = 1, .rows = {19}, .norm = BF});
    run_case(&(gcase){W(Q8, F16, 4352), .nseg = 3, .rows = {3, 5, 2}, .ycol = {7, 0, 5},
                      .residual = 1, .bias = 1});
    run_case(&(gcase){W(Q8, BF, 8448), .nseg = 1, .rows = {11}, .norm = F16});
}
END_TEST

/* Inputs past 48 KiB of shared memory: a 70B model's down_proj (28672 columns). */
START_TEST(test_wide_inputs)
{
    run_case(&(gcase){W(BF, BF, 28672), .nseg = 1, .rows = {9}, .residual = 1});
    run_case(&(gcase){W(Q8, F16, 14336), .nseg = 1, .rows = {5}, .residual = 1, .bias = 1});
}
END_TEST

/* The same rows stored in another order give the same sums bit for bit, whatever the tuning. */
START_TEST(test_permuted_rows_bitwise)
{
    const uint32_t rows = 29, cols = 1024;
    hoist_dtype dts[] = {BF, Q8};
    for (int k = 0; k < 2; k++) {
        mat m = make_mat(rows, cols, dts[k]);
        size_t rb = m.nbytes / rows;
        uint8_t *perm = malloc(m.nbytes);
        for (uint32_t r = 0; r < rows; r++) /* row r lands at (r * 7) % rows */
            memcpy(perm + (size_t)((r * 7) % rows) * rb, m.bytes + (size_t)r * rb, rb);
        float *x = malloc(cols * 4);
        for (uint32_t i = 0; i < cols; i++) x[i] = uniform() * 2;
        void *da = dev_copy(m.bytes, m.nbytes), *dp = dev_copy(perm, m.nbytes);
        void *dx = dev_copy(x, cols * 4);
        uint16_t *nw = malloc(cols * 2);
        for (uint32_t i = 0; i < cols; i++) nw[i] = to_bf16(1.0f + uniform() / 4);
        void *dn = dev_copy(nw, cols * 2);
        float *ya = calloc(rows, 4), *yp = calloc(rows, 4);
        void *dya = dev_copy(ya, rows * 4), *dyp = dev_copy(yp, rows * 4);
        int sms = 0;
        ck_assert_int_eq(G->multiprocessors(0, &sms), HOIST_OK);
        hoist__gemv_tune ta = {1, 1, (uint32_t)sms}, tp = {4, 2, (uint32_t)sms};
        hoist__gemv g = {.wdtype = dts[k], .xdtype = dts[k] == BF ? BF : F16, .cols = cols,
                         .nseg = 1, .w = {da}, .rows = {rows}, .x = dx, .norm = dn,
                         .norm_dtype = BF, .eps = 1e-6f, .y = dya};
        ck_assert_int_eq(hoist__k_gemv(S, &g, &ta), HOIST_OK);
        g.w[0] = dp;
        g.y = dyp;
        ck_assert_int_eq(hoist__k_gemv(S, &g, &tp), HOIST_OK);
        host_copy(ya, dya, rows * 4);
        host_copy(yp, dyp, rows * 4);
        for (uint32_t r = 0; r < rows; r++)
            ck_assert_msg(memcmp(&ya[r], &yp[(r * 7) % rows], 4) == 0,
                          "%s row %u: %.9g stored elsewhere gives %.9g", hoist_dtype_name(dts[k]),
                          r, ya[r], yp[(r * 7) % rows]);
        void *bufs[] = {da, dp, dx, dn, dya, dyp};
        for (size_t i = 0; i < 6; i++) G->mem_free(0, bufs[i]);
        free_mat(&m);
        free(perm), free(x), free(nw), free(ya), free(yp);
    }
}
END_TEST

/* ---- what the kernels refuse (no GPU needed) ---------------------------------------------- */

static void refused_with(const hoist__gemv *g, const char *why)
{
    ck_assert_int_eq(hoist__k_gemv_check(g), HOIST_E_UNSUPPORTED);
    ck_assert_msg(strstr(hoist_last_error(), why), "'%s' does not say '%s'", hoist_last_error(),
                  why);
}

START_TEST(test_refusals)
{
    static _Alignas(16) uint8_t buf[1 << 16];
    hoist__gemv ok = {W(BF, BF, 64), .nseg = 1, .w = {buf},
                      .rows = {3}, .x = buf, .y = (float *)buf};
    ck_assert_int_eq(hoist__k_gemv_check(&ok), HOIST_OK);
    hoist__gemv g = ok;
    g.cols = 12;
    refused_with(&g, "12 columns are not a multiple of 8");
    g = ok;
    g.wdtype = Q8;
    g.xdtype = F16;
    g.cols = 96;
    refused_with(&g, "96 columns are not a multiple of 256");
    g = ok;
    g.w[0] = buf + 2;
    refused_with(&g, "not 16-byte aligned");
    g = ok;
    g.x = buf + 4;
    refused_with(&g, "input is not 16-byte aligned");
    g = ok;
    g.wdtype = g.xdtype = HOIST_DTYPE_F32;
    refused_with(&g, "F32 weights");
    g = ok;
    g.xdtype = F16;
    refused_with(&g, "F16 activations for BF16 weights");
    g = ok;
    g.nseg = 2;
    g.w[1] = buf;
    g.rows[1] = 4;
    g.act = buf;
    refused_with(&g, "equal rows");
    g = ok;
    g.cols = 1u << 20;
    refused_with(&g, "does not fit in shared memory");
    g = ok;
    g.nseg = 0;
    refused_with(&g, "0 matrices");
    /* the launcher refuses them the same way, before any device call */
    g = ok;
    g.cols = 12;
    hoist__gemv_tune t = {2, 2, 1};
    ck_assert_int_eq(hoist__k_gemv(NULL, &g, &t), HOIST_E_UNSUPPORTED);
}
END_TEST

/* ---- sessions -------------------------------------------------------------------------------- */

static char *dir;

static void sess_setup(void) { dir = tu_mkdtemp(); }
static void sess_teardown(void)
{
    unsetenv("HOIST_DECODE_GEMV");
    tu_rmtree(dir);
    dir = NULL;
}

static hoist_weights *load(hoist_model *m, int device)
{
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.device = device;
    hoist_weights *w = NULL;
    ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
    return w;
}

/* The logits after a prompt and each of 6 decode steps, greedy on the reference's choice. */
static void decode_logits(hoist_weights *w, const hoist_geometry *g, const char *env,
                          float *out /* [7][vocab] */, const int32_t *feed)
{
    if (env)
        setenv("HOIST_DECODE_GEMV", env, 1);
    else
        unsetenv("HOIST_DECODE_GEMV");
    hoist_session_options o = HOIST_SESSION_OPTIONS_DEFAULT;
    o.max_tokens = 32;
    hoist_session *s = NULL;
    ck_assert_msg(hoist_session_create(w, g, &o, &s) == HOIST_OK, "%s", hoist_last_error());
    const int32_t prompt[] = {5, 77, 30, 2, 99};
    ck_assert_int_eq(hoist_session_prefill(s, prompt, 5), HOIST_OK);
    for (int k = 0; k < 7; k++) {
        if (k) ck_assert_int_eq(hoist_session_decode(s, feed[k - 1]), HOIST_OK);
        ck_assert_int_eq(hoist_session_logits(s, out + (size_t)k * g->vocab, g->vocab), HOIST_OK);
    }
    hoist_session_free(s);
}

static double rel(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(a[i]), "logit %zu is %g", i, a[i]);
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

/* flags: a model; tol: GPU against the reference; each setting of HOIST_DECODE_GEMV */
static void check_session(const char *name, const char *flags, double tol)
{
    char args[1024], *mdir = tu_path(dir, name);
    snprintf(args, sizeof args, "gen '%s' %s --quiet", mdir, flags);
    ck_assert_msg(tu_run_cli(args) == 0, "hoist %s failed", args);
    hoist_model *m = NULL;
    ck_assert_msg(hoist_model_open(mdir, NULL, &m) == HOIST_OK, "%s", hoist_last_error());
    hoist_geometry g = HOIST_GEOMETRY_INIT;
    ck_assert_int_eq(hoist_model_geometry(m, &g), HOIST_OK);
    hoist_weights *hw = load(m, HOIST_DEVICE_HOST), *gw = load(m, 0);
    size_t n = (size_t)7 * g.vocab;
    float *ref = malloc(n * 4), *got = malloc(n * 4), *blas = malloc(n * 4);
    int32_t feed[6] = {11, 12, 13, 14, 15, 16};
    decode_logits(hw, &g, NULL, ref, feed);
    decode_logits(gw, &g, "off", blas, feed);
    const char *settings[] = {NULL, "1,1", "4,3", "2,8"};
    for (size_t k = 0; k < sizeof settings / sizeof *settings; k++) {
        decode_logits(gw, &g, settings[k], got, feed);
        for (int step = 0; step < 7; step++) {
            size_t at = (size_t)step * g.vocab;
            double e = rel(got + at, ref + at, g.vocab), eb = rel(got + at, blas + at, g.vocab);
            ck_assert_msg(e < tol, "%s, HOIST_DECODE_GEMV=%s, step %d: %.3g from the reference",
                          flags, settings[k] ? settings[k] : "", step, e);
            ck_assert_msg(eb < tol, "%s, HOIST_DECODE_GEMV=%s, step %d: %.3g from cuBLAS's",
                          flags, settings[k] ? settings[k] : "", step, eb);
        }
    }
    free(ref), free(got), free(blas);
    hoist_weights_free(hw);
    hoist_weights_free(gw);
    hoist_model_free(m);
    free(mdir);
}

#define SMALL "--layers 2 --hidden 256 --intermediate 512 --vocab 1000 "
START_TEST(test_session_bf16)
{
    check_session("a", SMALL "--heads 8 --kv-heads 2 --head-dim 32", 1e-2);
    check_session("b", SMALL "--heads 4 --kv-heads 4 --head-dim 64 --family qwen2 --dtype f16",
                  1e-2);
}
END_TEST

START_TEST(test_session_q8_0)
{
    check_session("q", SMALL "--heads 8 --kv-heads 2 --head-dim 32 --format gguf --dtype q8_0",
                  2e-2);
}
END_TEST

/* hidden 260: rows of 520 bytes, which the kernels refuse; the session decodes through cuBLAS. */
START_TEST(test_session_refused_shape)
{
    check_session("r", "--layers 2 --hidden 260 --intermediate 512 --vocab 1000 --heads 4 "
                       "--kv-heads 2 --head-dim 64", 1e-2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gpu_gemv");
    TCase *host = tcase_create("checks");
    tcase_add_test(host, test_refusals);
    suite_add_tcase(s, host);
    if (hoist_device_count() > 0) {
        TCase *k = tcase_create("kernels");
        tcase_add_checked_fixture(k, gpu_setup, gpu_teardown);
        tcase_set_timeout(k, 300);
        tcase_add_test(k, test_plain_odd_rows);
        tcase_add_test(k, test_segments_residual_norm);
        tcase_add_test(k, test_swiglu);
        tcase_add_test(k, test_q8_0);
        tcase_add_test(k, test_wide_inputs);
        tcase_add_test(k, test_permuted_rows_bitwise);
        suite_add_tcase(s, k);
        TCase *ss = tcase_create("sessions");
        tcase_add_checked_fixture(ss, sess_setup, sess_teardown);
        tcase_set_timeout(ss, 300);
        tcase_add_test(ss, test_session_bf16);
        tcase_add_test(ss, test_session_q8_0);
        tcase_add_test(ss, test_session_refused_shape);
        suite_add_tcase(s, ss);
    }
    return tu_run_suite_nofork(s);
}
