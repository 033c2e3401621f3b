/* The N(0, GEN_STD) weight values of `hoist gen` (see gen.h and gen_values.h). */
#include "gen_values.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hoist gen writes little-endian safetensors data by storing host words; port the stores"
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define GEN_X86 1
#else
#define GEN_X86 0
#endif

#define GEN_AI static inline __attribute__((always_inline))

/* Pairs of normals per inner loop (fixed trip count, so the compiler vectorizes it). */
#define GEN_SUB 1024u

/* The same bits from every code path: no a * b + c contracted into an FMA (clang contracts by
 * default and its avx512f implies FMA; GCC does in GNU mode when the target has FMA). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t gen_block_key(uint64_t seed, uint64_t tensor, uint64_t block)
{
    return mix64(mix64(mix64(seed) ^ tensor) ^ (block * 0xd1b54a32d192ed03ull));
}

GEN_AI uint32_t lowbias32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

GEN_AI float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

GEN_AI uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

typedef struct gen_pair {
    uint32_t a, b; /* two independent N(0, GEN_STD) floats, as bits */
} gen_pair;

/* Pair j of a block keyed (k0, k1, k2): Box-Muller with hash-counter uniforms. Written with only
 * IEEE +, -, *, / and integer ops (no libm, no sqrt, no FMA in C11 mode), so every vector width
 * produces the same bits. Uniforms: u1 in (0, 1] from 24 bits, the angle in [-pi/4, pi/4) from 24
 * bits, then one of the 8 symmetries of the square (3 more bits) spreads it over the circle.
 * Accuracy is a few float ulps: exact enough for f32, far below bf16/f16 rounding. */
GEN_AI gen_pair normal_pair(uint32_t j, uint32_t k0, uint32_t k1, uint32_t k2)
{
    uint32_t a = lowbias32(j + k0);
    uint32_t h1 = lowbias32(a ^ k1);
    uint32_t h2 = a ^ k2; /* a is already mixed: one multiply round decorrelates h2 from h1 */
    h2 ^= h2 >> 16;
    h2 *= 0x2c1b3c6du;
    h2 ^= h2 >> 15;

    /* v = -2 ln(u1), u1 = f / 2^24, f in [1, 2^24]. ln f = e ln2 + ln m, m in [sqrt(1/2), sqrt(2)),
     * ln m = 2 atanh(s) with s = (m - 1) / (m + 1), |s| < 0.172. */
    float f = (float)(int32_t)((h1 >> 8) + 1);
    int32_t fb = (int32_t)f2u(f);
    int32_t mb = (fb & 0x7fffff) | 0x3f800000;
    int32_t big = mb > 0x3fb504f3 ? 0x800000 : 0;
    mb -= big;
    int32_t e = ((fb - 0x3f800000 + big) >> 23); /* exponent of f, rounded for m */
    float m = u2f((uint32_t)mb);
    float s = (m - 1.0f) / (m + 1.0f);
    float s2 = s * s;
    float ln_m = s * (2.0f + s2 * (0.66666669f + s2 * (0.40000001f + s2 * 0.28571430f)));
    float v = (float)(24 - e) * 1.38629436f - 2.0f * ln_m; /* >= 0 */

    /* r = GEN_STD * sqrt(v) = GEN_STD * v / sqrt(v): reciprocal square root by Moroz et al.'s
     * magic constant and modified Newton step (6.5e-4), then one Newton step (6e-7). */
    float y = u2f(0x5f1ffff9u - (f2u(v) >> 1));
    y = y * 0.703952253f * (2.38924456f - v * y * y);
    y = y * (1.5f - 0.5f * v * y * y);
    float r = GEN_STD * v * y;

    /* sin and cos on [-pi/4, pi/4] (Cephes' single-precision polynomials). */
    float x = ((float)(int32_t)(h2 >> 8) * (1.0f / 16777216.0f) - 0.5f) * 1.57079633f;
    float x2 = x * x;
    float sn = x + x * x2 *
                       (-1.6666654611e-1f + x2 * (8.3321608736e-3f + x2 * -1.9515295891e-4f));
    float cs = 1.0f - 0.5f * x2 +
               x2 * x2 *
                   (4.166664568298827e-2f +
                    x2 * (-1.388731625493765e-3f + x2 * 2.443315711809948e-5f));
    uint32_t zc = f2u(r * cs), zs = f2u(r * sn);
    uint32_t swap = 0u - (h2 & 1u);
    gen_pair p;
    p.a = ((zc & ~swap) | (zs & swap)) ^ ((h2 & 2u) << 30);
    p.b = ((zs & ~swap) | (zc & swap)) ^ ((h2 & 4u) << 29);
    return p;
}

GEN_AI uint16_t to_bf16(uint32_t x)
{
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16); /* round to nearest even; no NaN */
}

/* IEEE binary16 with round to nearest even over the whole range: subnormals, overflow to
 * infinity, NaN kept quiet. */
GEN_AI uint16_t to_f16(uint32_t bits)
{
    uint32_t sign = (bits >> 16) & 0x8000u;
    int32_t x = (int32_t)(bits & 0x7fffffffu); /* signed compares vectorize everywhere */
    int32_t normal = (int32_t)(((uint32_t)x + 0xc8000fffu + (((uint32_t)x >> 13) & 1u)) >> 13);
    int32_t sub = (int32_t)(f2u(u2f((uint32_t)x) + 0.5f) - 0x3f000000u); /* rounds to 2^-24 */
    int32_t special = 0x7c00 | ((x > 0x7f800000) << 9); /* infinity, or a quiet NaN */
    /* Bitwise selects: a branch here would keep the loop from vectorizing. */
    int32_t is_sub = -(int32_t)(x < 0x38800000), is_big = -(int32_t)(x >= 0x47800000);
    int32_t o = (sub & is_sub) | (normal & ~is_sub);
    o = (special & is_big) | (o & ~is_big);
    return (uint16_t)((uint32_t)o | sign);
}

GEN_AI void sub_block(uint32_t j0, uint32_t k0, uint32_t k1, uint32_t k2, gen_dtype dtype,
                      void *restrict out)
{
    if (dtype == GEN_DTYPE_BF16) {
        uint16_t *restrict o = out;
        for (uint32_t i = 0; i < GEN_SUB; i++) {
            gen_pair p = normal_pair(j0 + i, k0, k1, k2);
            o[2 * i] = to_bf16(p.a);
            o[2 * i + 1] = to_bf16(p.b);
        }
    } else if (dtype == GEN_DTYPE_F16) {
        uint16_t *restrict o = out;
        for (uint32_t i = 0; i < GEN_SUB; i++) {
            gen_pair p = normal_pair(j0 + i, k0, k1, k2);
            o[2 * i] = to_f16(p.a);
            o[2 * i + 1] = to_f16(p.b);
        }
    } else {
        uint32_t *restrict o = out;
        for (uint32_t i = 0; i < GEN_SUB; i++) {
            gen_pair p = normal_pair(j0 + i, k0, k1, k2);
            o[2 * i] = p.a;
            o[2 * i + 1] = p.b;
        }
    }
}

GEN_AI void fill_body(uint64_t key, uint32_t n, gen_dtype dtype, void *dst)
{
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32), k2 = (uint32_t)mix64(key);
    size_t esz = dtype == GEN_DTYPE_F32 ? 4 : 2;
    const uint32_t per = 2 * GEN_SUB;
    uint32_t full = n / per, rem = n % per;
    unsigned char *p = dst;
    for (uint32_t c = 0; c < full; c++)
        sub_block(c * GEN_SUB, k0, k1, k2, dtype, p + (size_t)c * per * esz);
    if (rem) {
        _Alignas(64) unsigned char tmp[2 * GEN_SUB * 4];
        sub_block(full * GEN_SUB, k0, k1, k2, dtype, tmp);
        memcpy(p + (size_t)full * per * esz, tmp, rem * esz);
    }
}

#define GEN_DEFINE_FILL(suffix, attr)                                                             \
    static attr void fill_##suffix(uint64_t key, uint32_t n, gen_dtype dtype, void *dst)          \
    {                                                                                             \
        switch (dtype) {                                                                          \
        case GEN_DTYPE_BF16: fill_body(key, n, GEN_DTYPE_BF16, dst); break;                       \
        case GEN_DTYPE_F16: fill_body(key, n, GEN_DTYPE_F16, dst); break;                         \
        case GEN_DTYPE_F32: fill_body(key, n, GEN_DTYPE_F32, dst); break;                         \
        case GEN_DTYPE_Q8_0: break; /* values are made as f32, then quantized */                  \
        }                                                                                         \
    }

GEN_DEFINE_FILL(generic, )
#if GEN_X86
GEN_DEFINE_FILL(avx2, __attribute__((target("avx2"))))
GEN_DEFINE_FILL(avx512, __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))))
#endif

typedef void (*fill_fn)(uint64_t key, uint32_t n, gen_dtype dtype, void *dst);

static fill_fn pick_fill(const char **name)
{
    const char *want = getenv("HOIST_GEN_SIMD");
    if (want && !*want) want = NULL;
#if GEN_X86
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    bool avx2 = __builtin_cpu_supports("avx2");
    if (avx512 && (!want || strcmp(want, "avx512") == 0)) {
        *name = "avx512";
        return fill_avx512;
    }
    if (avx2 && (!want || strcmp(want, "avx2") == 0 || strcmp(want, "avx512") == 0)) {
        *name = "avx2";
        return fill_avx2;
    }
#else
    (void)want;
#endif
    *name = "generic";
    return fill_generic;
}

#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC pop_options
#endif

static fill_fn the_fill;
static const char *the_fill_name;
static pthread_once_t fill_once = PTHREAD_ONCE_INIT;

static void init_fill(void)
{
    the_fill = pick_fill(&the_fill_name);
}

void gen_fill_normal(uint64_t key, uint32_t n, gen_dtype dtype, void *dst)
{
    pthread_once(&fill_once, init_fill);
    if (n > GEN_BLOCK_ELEMS) n = GEN_BLOCK_ELEMS;
    the_fill(key, n, dtype, dst);
}

void gen_fill_ones(uint64_t n, gen_dtype dtype, void *dst)
{
    if (dtype == GEN_DTYPE_F32) {
        uint32_t *o = dst;
        for (uint64_t i = 0; i < n; i++) o[i] = 0x3f800000u;
    } else {
        uint16_t *o = dst, one = dtype == GEN_DTYPE_BF16 ? 0x3f80u : 0x3c00u;
        for (uint64_t i = 0; i < n; i++) o[i] = one;
    }
}

void gen_fill_jitter(uint64_t key, uint64_t n, gen_dtype dtype, void *dst, void *scratch)
{
    float *v = scratch;
    if (n > GEN_BLOCK_ELEMS) n = GEN_BLOCK_ELEMS;
    gen_fill_normal(key, (uint32_t)n, GEN_DTYPE_F32, v);
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u = f2u(1.0f + v[i]);
        if (dtype == GEN_DTYPE_F32)
            ((uint32_t *)dst)[i] = u;
        else
            ((uint16_t *)dst)[i] = dtype == GEN_DTYPE_BF16 ? to_bf16(u) : to_f16(u);
    }
}

void gen_fill_range(uint64_t seed, uint32_t tensor, uint64_t first, uint64_t count,
                    gen_dtype dtype, unsigned char *dst, unsigned char *scratch)
{
    size_t esz = gen_dtype_size(dtype);
    for (uint64_t pos = first, end = first + count; pos < end;) {
        uint64_t block = pos / GEN_BLOCK_ELEMS, base = block * GEN_BLOCK_ELEMS;
        uint64_t lo = pos - base, hi = end - base < GEN_BLOCK_ELEMS ? end - base : GEN_BLOCK_ELEMS;
        uint64_t key = gen_block_key(seed, tensor, block);
        if (lo == 0) {
            gen_fill_normal(key, (uint32_t)hi, dtype, dst + (pos - first) * esz);
        } else {
            gen_fill_normal(key, (uint32_t)hi, dtype, scratch);
            memcpy(dst + (pos - first) * esz, scratch + lo * esz, (hi - lo) * esz);
        }
        pos = base + hi;
    }
}

const char *gen_simd_name(void)
{
    pthread_once(&fill_once, init_fill);
    return the_fill_name;
}
