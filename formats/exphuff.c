/* The exponent-Huffman codec (layout in exphuff.h): a length-limited canonical Huffman code per
 * chunk, blocks that each start on a recorded word, and a table-driven CPU decoder. */
#include "formats/exphuff.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define L HOIST_EXPHUFF_MAX_LEN

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* The symbol and the raw byte of a rotated element (see exphuff.h). */
static inline unsigned symbol_of(const uint8_t *e) { return (unsigned)(e[1] << 1 | e[0] >> 7) & 0xff; }
static inline uint8_t raw_of(const uint8_t *e) { return (uint8_t)(e[0] << 1 | e[1] >> 7); }

/* ---- code lengths ------------------------------------------------------------------------- */

/* Optimal (unlimited) Huffman lengths for the m >= 2 symbols sym[], sorted by ascending freq:
 * the two-queue construction over sorted leaves. */
static void huffman_depths(const uint64_t *freq, const uint32_t *sym, uint32_t m, uint8_t *len)
{
    uint64_t w[511];
    uint16_t parent[511];
    uint8_t depth[511];
    for (uint32_t i = 0; i < m; i++) w[i] = freq[sym[i]];
    uint32_t leaf = 0, node = m, next = m;
    for (uint32_t k = 0; k + 1 < m; k++, next++) {
        uint32_t pick[2];
        for (int j = 0; j < 2; j++)
            pick[j] = leaf < m && (node >= next || w[leaf] <= w[node]) ? leaf++ : node++;
        w[next] = w[pick[0]] + w[pick[1]];
        parent[pick[0]] = parent[pick[1]] = (uint16_t)next;
    }
    depth[next - 1] = 0;
    for (uint32_t i = next - 1; i-- > 0;) depth[i] = (uint8_t)(depth[parent[i]] + 1);
    for (uint32_t i = 0; i < m; i++) len[sym[i]] = depth[i];
}

/* Caps lengths at L and restores Kraft's inequality by lengthening, one bit at a time, the
 * rarest symbol still below L: the loss is small because only symbols the optimal code made
 * longer than L (rare ones) were shortened. */
static void limit_lengths(const uint64_t *freq, uint8_t *len)
{
    uint32_t kraft = 0;
    for (unsigned s = 0; s < 256; s++) {
        if (len[s] > L) len[s] = L;
        if (len[s]) kraft += 1u << (L - len[s]);
    }
    while (kraft > (1u << L)) {
        int best = -1;
        for (unsigned s = 0; s < 256; s++)
            if (len[s] && len[s] < L &&
                (best < 0 || freq[s] < freq[best] ||
                 (freq[s] == freq[best] && len[s] > len[best])))
                best = (int)s;
        if (best < 0) break; /* cannot happen: all at L would make kraft <= 256 */
        kraft -= 1u << (L - len[best] - 1);
        len[best]++;
    }
}

static void code_lengths(const uint64_t *freq, uint8_t *len)
{
    uint32_t sym[256], m = 0;
    memset(len, 0, 256);
    for (unsigned s = 0; s < 256; s++)
        if (freq[s]) sym[m++] = s;
    if (m == 1) { /* one symbol still needs a code to consume: one bit */
        len[sym[0]] = 1;
        return;
    }
    for (uint32_t i = 1; i < m; i++) { /* insertion sort by freq: m <= 256 */
        uint32_t s = sym[i], j = i;
        for (; j > 0 && freq[sym[j - 1]] > freq[s]; j--) sym[j] = sym[j - 1];
        sym[j] = s;
    }
    huffman_depths(freq, sym, m, len);
    limit_lengths(freq, len);
}

/* Canonical codes from lengths; the symbols in canonical order into order[], counts per length. */
static uint32_t canonical(const uint8_t *len, uint16_t *code, uint8_t *order, uint16_t *count)
{
    memset(count, 0, (L + 1) * sizeof *count);
    for (unsigned s = 0; s < 256; s++) count[len[s]]++;
    count[0] = 0;
    uint32_t next = 0, k = 0;
    for (unsigned l = 1; l <= L; l++) {
        for (unsigned s = 0; s < 256; s++)
            if (len[s] == l) {
                code[s] = (uint16_t)next++;
                order[k++] = (uint8_t)s;
            }
        next <<= 1;
    }
    return k;
}

/* ---- encoding ----------------------------------------------------------------------------- */

typedef struct bitw {
    uint8_t *p, *end;
    uint64_t acc;
    unsigned n; /* bits pending in acc's low end */
    bool full;
} bitw;

static void bw_word(bitw *b, uint32_t w)
{
    if (b->end - b->p < 4) {
        b->full = true;
        return;
    }
    put32(b->p, w);
    b->p += 4;
}

static inline void bw_put(bitw *b, uint32_t code, unsigned len)
{
    b->acc = b->acc << len | code;
    b->n += len;
    if (b->n >= 32) {
        b->n -= 32;
        bw_word(b, (uint32_t)(b->acc >> b->n));
    }
}

static void bw_flush(bitw *b)
{
    if (b->n) bw_word(b, (uint32_t)(b->acc << (32 - b->n)));
    b->n = 0;
}

size_t hoist__exphuff_encode(const uint8_t *src, uint32_t len, uint8_t *dst, size_t cap)
{
    if (len < 2 || len % 2) return 0;
    uint32_t elems = len / 2, be = HOIST_EXPHUFF_BLOCK, nblocks = (elems + be - 1) / be;
    uint64_t freq[256] = {0};
    for (uint32_t i = 0; i < elems; i++) freq[symbol_of(src + 2 * i)]++;
    uint8_t lens[256], order[256];
    uint16_t code[256], count[L + 1];
    code_lengths(freq, lens);
    uint32_t nsym = canonical(lens, code, order, count);
    uint64_t head = HOIST_EXPHUFF_HEADER + nsym, offs = head, raw = offs + 4ull * nblocks,
             bits = raw + elems;
    if (bits > cap) return 0;
    put32(dst, be);
    for (unsigned l = 1; l <= L; l++) {
        dst[4 + 2 * (l - 1)] = (uint8_t)count[l];
        dst[5 + 2 * (l - 1)] = (uint8_t)(count[l] >> 8);
    }
    memcpy(dst + HOIST_EXPHUFF_HEADER, order, nsym);
    for (uint32_t i = 0; i < elems; i++) dst[raw + i] = raw_of(src + 2 * i);
    bitw b = {.p = dst + bits, .end = dst + cap};
    for (uint32_t k = 0; k < nblocks && !b.full; k++) {
        put32(dst + offs + 4ull * k, (uint32_t)((uint64_t)(b.p - (dst + bits)) / 4));
        uint32_t end = (k + 1) * be < elems ? (k + 1) * be : elems;
        for (uint32_t i = k * be; i < end; i++) {
            unsigned s = symbol_of(src + 2 * i);
            bw_put(&b, code[s], lens[s]);
        }
        bw_flush(&b);
    }
    return b.full ? 0 : (size_t)(b.p - dst);
}

/* ---- checking ----------------------------------------------------------------------------- */

static int why_fmt(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why_fmt(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_table(const uint8_t *in, uint32_t stored, hoist__exphuff *x, char *why, size_t n)
{
    uint64_t kraft = 0, nsym = 0;
    x->count[0] = 0;
    for (unsigned l = 1; l <= L; l++) {
        x->count[l] = (uint16_t)(in[4 + 2 * (l - 1)] | in[5 + 2 * (l - 1)] << 8);
        nsym += x->count[l];
        kraft += (uint64_t)x->count[l] << (L - l);
    }
    if (nsym == 0 || nsym > 256)
        return why_fmt(why, n, "its code table has %llu symbols (1 to 256)",
                       (unsigned long long)nsym);
    if (kraft > HOIST_EXPHUFF_LUT)
        return why_fmt(why, n, "its code lengths are oversubscribed (Kraft sum %llu/%u)",
                       (unsigned long long)kraft, HOIST_EXPHUFF_LUT);
    if (HOIST_EXPHUFF_HEADER + nsym > stored)
        return why_fmt(why, n, "its %llu table symbols run past its %u bytes",
                       (unsigned long long)nsym, stored);
    bool seen[256] = {false};
    for (uint32_t i = 0; i < nsym; i++) {
        uint8_t s = in[HOIST_EXPHUFF_HEADER + i];
        if (seen[s]) return why_fmt(why, n, "symbol 0x%02x is in its code table twice", s);
        seen[s] = true;
    }
    x->nsym = (uint32_t)nsym;
    x->syms = HOIST_EXPHUFF_HEADER;
    return 0;
}

static int parse_offsets(const uint8_t *in, const hoist__exphuff *x, char *why, size_t n)
{
    uint32_t prev = 0;
    for (uint32_t b = 0; b < x->nblocks; b++) {
        uint32_t o = le32(in + x->offsets + 4ull * b);
        if ((b == 0 && o != 0) || o < prev || o > x->words)
            return why_fmt(why, n,
                           "block %u starts at word %u (after %u, within the %u words of its "
                           "bitstream, block 0 at 0)",
                           b, o, prev, x->words);
        prev = o;
    }
    return 0;
}

int hoist__exphuff_parse(const uint8_t *in, uint32_t stored, uint32_t len, hoist__exphuff *x,
                         char *why, size_t why_len)
{
    memset(x, 0, sizeof *x);
    if (len == 0 || len % 2)
        return why_fmt(why, why_len, "%u bytes are not whole 16-bit elements", len);
    if (stored < HOIST_EXPHUFF_HEADER)
        return why_fmt(why, why_len, "%u bytes cannot hold the %u-byte codec header", stored,
                       HOIST_EXPHUFF_HEADER);
    uint32_t be = le32(in);
    if (be < HOIST_EXPHUFF_MIN_BLOCK || be > HOIST_EXPHUFF_MAX_BLOCK || (be & (be - 1)))
        return why_fmt(why, why_len, "block size %u is not a power of two from %u to %u", be,
                       HOIST_EXPHUFF_MIN_BLOCK, HOIST_EXPHUFF_MAX_BLOCK);
    x->elems = len / 2;
    x->block_elems = be;
    x->nblocks = (x->elems + be - 1) / be;
    if (parse_table(in, stored, x, why, why_len) < 0) return -1;
    uint64_t offs = (uint64_t)x->syms + x->nsym, raw = offs + 4ull * x->nblocks,
             bits = raw + x->elems;
    if (bits > stored)
        return why_fmt(why, why_len,
                       "its %u block offsets and %u raw bytes run past its %u bytes", x->nblocks,
                       x->elems, stored);
    if ((stored - bits) % 4)
        return why_fmt(why, why_len, "its bitstream of %llu bytes is not whole 32-bit words",
                       (unsigned long long)(stored - bits));
    x->offsets = (uint32_t)offs;
    x->raw = (uint32_t)raw;
    x->bits = (uint32_t)bits;
    x->words = (uint32_t)((stored - bits) / 4);
    return parse_offsets(in, x, why, why_len);
}

/* ---- decoding ----------------------------------------------------------------------------- */

/* lut[i]: (length << 8 | symbol) of the code that prefixes the 12-bit value i, 0 where none. */
static void build_lut(const uint8_t *in, const hoist__exphuff *x, uint16_t *lut)
{
    memset(lut, 0, HOIST_EXPHUFF_LUT * sizeof *lut);
    uint32_t code = 0, k = 0;
    for (unsigned l = 1; l <= L; l++) {
        for (uint32_t j = 0; j < x->count[l]; j++, k++, code++) {
            uint16_t e = (uint16_t)(l << 8 | in[x->syms + k]);
            uint32_t lo = code << (L - l), n = 1u << (L - l);
            for (uint32_t i = 0; i < n; i++) lut[lo + i] = e; /* Kraft: lo + n <= 4096 */
        }
        code <<= 1;
    }
}

/* A block's bit reader: pending bits at the top of acc. Past the block's words it reads zeros,
 * and the word count checked at the end fails the block. */
typedef struct bitr {
    const uint8_t *words;
    uint32_t w0, w, wend;
    uint64_t acc;
    unsigned have;
    bool bad; /* a bit pattern that is no code */
} bitr;

static void bitr_init(bitr *r, const uint8_t *in, const hoist__exphuff *x, uint32_t b)
{
    r->words = in + x->bits;
    r->w0 = r->w = le32(in + x->offsets + 4ull * b);
    r->wend = b + 1 < x->nblocks ? le32(in + x->offsets + 4ull * (b + 1)) : x->words;
    r->acc = 0;
    r->have = 0;
    r->bad = false;
}

static inline unsigned bitr_sym(bitr *r, const uint16_t *lut)
{
    if (r->have < L) {
        uint32_t word = 0; /* little-endian host (formats/filter.c asserts it) */
        if (r->w < r->wend) memcpy(&word, r->words + 4ull * r->w, 4);
        uint64_t v = word;
        r->w++;
        r->acc |= v << (32 - r->have);
        r->have += 32;
    }
    uint16_t e = lut[r->acc >> (64 - L)];
    unsigned l = e >> 8;
    r->bad |= !l;
    l += !l; /* go on decoding garbage rather than branch: the block fails below */
    r->acc <<= l;
    r->have -= l;
    return e & 0xff;
}

/* The decoders put each symbol in its element's high byte; join() then rebuilds whole elements
 * in one pass the compiler vectorizes, instead of a scalar join per decoded symbol. */
static void join(uint8_t *restrict out, const uint8_t *restrict raw, uint32_t elems)
{
    for (uint32_t i = 0; i < elems; i++) {
        uint16_t v;
        memcpy(&v, out + 2 * i, 2);
        v = (uint16_t)((v & 0xff00) | raw[i]);
        v = (uint16_t)(v >> 1 | v << 15);
        memcpy(out + 2 * i, &v, 2);
    }
}

static int bitr_check(const bitr *r, uint32_t b, char *why, size_t n)
{
    if (r->bad) return why_fmt(why, n, "block %u holds a bit pattern that is no code", b);
    uint64_t used = (uint64_t)(r->w - r->w0) * 32 - r->have; /* bits taken from the words */
    uint64_t need = (used + 31) / 32;
    if (need != (uint64_t)(r->wend - r->w0))
        return why_fmt(why, n, "block %u decodes from %llu words but spans %u", b,
                       (unsigned long long)need, r->wend - r->w0);
    return 0;
}

/* Blocks b .. b+3, all full: four independent bit readers in one loop, so that the CPU overlaps
 * their table lookups (one reader is a chain of dependent loads). */
#define WAYS 4
static int decode_ways(const uint8_t *in, const hoist__exphuff *x, const uint16_t *lut,
                       uint32_t b, uint8_t *out, char *why, size_t n)
{
    /* four named readers, not an array: kept in registers, not reloaded after every store */
    bitr r0, r1, r2, r3;
    bitr_init(&r0, in, x, b);
    bitr_init(&r1, in, x, b + 1);
    bitr_init(&r2, in, x, b + 2);
    bitr_init(&r3, in, x, b + 3);
    uint32_t be = x->block_elems;
    uint8_t *o0 = out + 2ull * b * be + 1, *o1 = o0 + 2ull * be, *o2 = o1 + 2ull * be,
            *o3 = o2 + 2ull * be;
    for (uint32_t i = 0; i < be; i++) {
        unsigned s0 = bitr_sym(&r0, lut), s1 = bitr_sym(&r1, lut);
        unsigned s2 = bitr_sym(&r2, lut), s3 = bitr_sym(&r3, lut);
        o0[2 * i] = (uint8_t)s0;
        o1[2 * i] = (uint8_t)s1;
        o2[2 * i] = (uint8_t)s2;
        o3[2 * i] = (uint8_t)s3;
    }
    if (bitr_check(&r0, b, why, n) < 0 || bitr_check(&r1, b + 1, why, n) < 0 ||
        bitr_check(&r2, b + 2, why, n) < 0 || bitr_check(&r3, b + 3, why, n) < 0)
        return -1;
    return 0;
}

static int decode_block(const uint8_t *in, const hoist__exphuff *x, const uint16_t *lut,
                        uint32_t b, uint8_t *out, char *why, size_t n)
{
    bitr r;
    bitr_init(&r, in, x, b);
    uint32_t lo = b * x->block_elems;
    uint32_t hi = lo + x->block_elems < x->elems ? lo + x->block_elems : x->elems;
    for (uint32_t i = lo; i < hi; i++) out[2 * i + 1] = (uint8_t)bitr_sym(&r, lut);
    return bitr_check(&r, b, why, n);
}

int hoist__exphuff_decode(const uint8_t *in, const hoist__exphuff *x, uint8_t *out, char *why,
                          size_t why_len)
{
    uint16_t lut[HOIST_EXPHUFF_LUT];
    build_lut(in, x, lut);
    uint32_t full = x->elems / x->block_elems, b = 0;
    for (; b + WAYS <= full; b += WAYS)
        if (decode_ways(in, x, lut, b, out, why, why_len) < 0) return -1;
    for (; b < x->nblocks; b++)
        if (decode_block(in, x, lut, b, out, why, why_len) < 0) return -1;
    join(out, in + x->raw, x->elems);
    return 0;
}
