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

/* Two tables per chunk, both indexed by the next 12 bits of a block. lut1[i] is (length << 8 |
 * symbol) of the one code that i begins with, 0 where none. lut3[i] holds as many whole codes as
 * those 12 bits hold, up to three (a weight's exponent takes under 3 bits on average, so most
 * lookups give three symbols): their symbols in bytes 0..2, the bits they take in bits 24..27
 * and their number in bits 28..29; 0 where i begins with no code. */
#define LUT3_BITS(e) (((e) >> 24) & 0xf)
#define LUT3_SYMS(e) ((e) >> 28)

static void build_luts(const uint8_t *in, const hoist__exphuff *x, uint16_t *lut1, uint32_t *lut3)
{
    memset(lut1, 0, HOIST_EXPHUFF_LUT * sizeof *lut1);
    uint32_t code = 0, k = 0;
    for (unsigned l = 1; l <= L; l++) {
        for (uint32_t j = 0; j < x->count[l]; j++, k++, code++) {
            uint16_t e = (uint16_t)(l << 8 | in[x->syms + k]);
            uint32_t lo = code << (L - l), n = 1u << (L - l);
            for (uint32_t i = 0; i < n; i++) lut1[lo + i] = e; /* Kraft: lo + n <= 4096 */
        }
        code <<= 1;
    }
    for (uint32_t i = 0; i < HOIST_EXPHUFF_LUT; i++) {
        uint32_t e = 0, used = 0, n = 0;
        for (; n < 3; n++) { /* the next code starts `used` bits in: shift them out */
            uint16_t c = lut1[(i << used) & (HOIST_EXPHUFF_LUT - 1)];
            unsigned l = c >> 8;
            if (!l || used + l > L) break; /* no code, or one that runs past these 12 bits */
            e |= (uint32_t)(c & 0xff) << (8 * n);
            used += l;
        }
        lut3[i] = e | used << 24 | n << 28;
    }
}

/* A block's bit reader: pending bits at the top of acc. Past the block's words it reads zeros,
 * and the word count checked at the end fails the block. Passed and returned by value, so that
 * the compiler keeps four of them in registers. */
typedef struct bitr {
    const uint8_t *words;
    uint32_t w0, w, wend;
    uint64_t acc;
    unsigned have;
    bool bad; /* a bit pattern that is no code */
} bitr;

static bitr bitr_at(const uint8_t *in, const hoist__exphuff *x, uint32_t b)
{
    bitr r = {.words = in + x->bits};
    r.w0 = r.w = le32(in + x->offsets + 4ull * b);
    r.wend = b + 1 < x->nblocks ? le32(in + x->offsets + 4ull * (b + 1)) : x->words;
    return r;
}

/* Tops acc up to at least 32 bits (so that two lookups of up to 12 bits need no check between
 * them) without a data-dependent branch: the word is loaded, and kept only when needed. */
static inline bitr refill(bitr r)
{
    uint32_t word = 0, need = r.have < 32;
    if (r.w < r.wend) memcpy(&word, r.words + 4ull * r.w, 4); /* little-endian host (filter.c) */
    r.acc |= (uint64_t)(word & (0u - need)) << ((32 - r.have) & 63);
    r.have += 32 * need;
    r.w += need;
    return r;
}

/* Up to three symbols through lut3, stored at sym (4 bytes written: the caller's buffer has room
 * past its end); returns how many. A pattern that is no code takes one bit and gives one garbage
 * symbol, rather than a branch: the block then fails. */
static inline uint32_t take3(bitr *r, const uint32_t *lut3, uint8_t *sym)
{
    uint32_t e = lut3[r->acc >> (64 - L)];
    uint32_t n = LUT3_SYMS(e), l = LUT3_BITS(e);
    r->bad |= !n;
    l += !n;
    n += !n;
    memcpy(sym, &e, 4);
    r->acc <<= l;
    r->have -= l;
    return n;
}

/* One symbol through lut1: the end of a span, where three might overshoot it. */
static inline uint8_t take1(bitr *r, const uint16_t *lut1)
{
    uint16_t e = lut1[r->acc >> (64 - L)];
    unsigned l = e >> 8;
    r->bad |= !l;
    l += !l;
    r->acc <<= l;
    r->have -= l;
    return (uint8_t)e;
}

/* Symbols p .. n-1 of a span into sym (n + 3 bytes of room). */
static inline bitr finish(bitr r, const uint32_t *lut3, const uint16_t *lut1, uint8_t *sym,
                          uint32_t p, uint32_t n)
{
    while (p + 3 <= n) {
        r = refill(r);
        p += take3(&r, lut3, sym + p);
    }
    while (p < n) {
        r = refill(r);
        sym[p++] = take1(&r, lut1);
    }
    return r;
}

/* n symbols from each of four readers into four rows of sym, ROW bytes apart: their
 * lookups interleaved, so that the CPU overlaps them (one reader is a chain of dependent loads);
 * the few symbols left when one reader nears the end are finished one reader at a time. */
#define SPAN 1024u
#define ROW (SPAN + 4u)
static void take_four(bitr r[4], const uint32_t *lut3, const uint16_t *lut1, uint8_t *sym,
                      uint32_t n)
{
    bitr r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
    uint8_t *s0 = sym, *s1 = sym + ROW, *s2 = sym + 2 * ROW, *s3 = sym + 3 * ROW;
    uint32_t p0 = 0, p1 = 0, p2 = 0, p3 = 0;
    while (p0 + 6 <= n && p1 + 6 <= n && p2 + 6 <= n && p3 + 6 <= n) {
        r0 = refill(r0);
        r1 = refill(r1);
        r2 = refill(r2);
        r3 = refill(r3);
        p0 += take3(&r0, lut3, s0 + p0);
        p1 += take3(&r1, lut3, s1 + p1);
        p2 += take3(&r2, lut3, s2 + p2);
        p3 += take3(&r3, lut3, s3 + p3);
        p0 += take3(&r0, lut3, s0 + p0);
        p1 += take3(&r1, lut3, s1 + p1);
        p2 += take3(&r2, lut3, s2 + p2);
        p3 += take3(&r3, lut3, s3 + p3);
    }
    r[0] = finish(r0, lut3, lut1, s0, p0, n);
    r[1] = finish(r1, lut3, lut1, s1, p1, n);
    r[2] = finish(r2, lut3, lut1, s2, p2, n);
    r[3] = finish(r3, lut3, lut1, s3, p3, n);
}

/* Rebuilds n elements from their symbols and raw bytes, with whole-vector stores into out (which
 * is often memory no cache holds yet). Groups of a fixed 16 elements are what -O2's cheap
 * vectorizer takes: a loop it can replace whole, without a remainder to peel. */
static inline uint16_t element(uint8_t sym, uint8_t raw)
{
    uint16_t v = (uint16_t)(sym << 8 | raw);
    return (uint16_t)(v >> 1 | v << 15);
}

static void join(uint8_t *restrict out, const uint8_t *restrict sym, const uint8_t *restrict raw,
                 uint32_t n)
{
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (uint32_t j = i; j < i + 16; j++) {
            uint16_t v = element(sym[j], raw[j]);
            memcpy(out + 2 * j, &v, 2);
        }
    for (; i < n; i++) {
        uint16_t v = element(sym[i], raw[i]);
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

/* Blocks b .. b+ways-1 (ways 4, all full; or 1, the last one shorter), SPAN symbols at a time
 * through a scratch that stays in the L1 cache. */
static int decode_blocks(const uint8_t *in, const hoist__exphuff *x, const uint16_t *lut1,
                         const uint32_t *lut3, uint32_t b, uint32_t ways, uint8_t *out,
                         char *why, size_t why_len)
{
    uint8_t sym[4 * ROW];
    bitr r[4];
    uint32_t lo = b * x->block_elems;
    uint32_t len = ways == 4 || lo + x->block_elems <= x->elems ? x->block_elems : x->elems - lo;
    for (uint32_t k = 0; k < ways; k++) r[k] = bitr_at(in, x, b + k);
    for (uint32_t at = 0; at < len; at += SPAN) {
        uint32_t n = len - at < SPAN ? len - at : SPAN;
        if (ways == 4)
            take_four(r, lut3, lut1, sym, n);
        else
            r[0] = finish(r[0], lut3, lut1, sym, 0, n);
        for (uint32_t k = 0; k < ways; k++) {
            uint64_t e = (uint64_t)lo + (uint64_t)k * x->block_elems + at;
            join(out + 2 * e, sym + k * ROW, in + x->raw + e, n);
        }
    }
    for (uint32_t k = 0; k < ways; k++)
        if (bitr_check(&r[k], b + k, why, why_len) < 0) return -1;
    return 0;
}

int hoist__exphuff_decode(const uint8_t *in, const hoist__exphuff *x, uint8_t *out, char *why,
                          size_t why_len)
{
    uint16_t lut1[HOIST_EXPHUFF_LUT];
    uint32_t lut3[HOIST_EXPHUFF_LUT];
    build_luts(in, x, lut1, lut3);
    uint32_t full = x->elems / x->block_elems, b = 0;
    for (; b + 4 <= full; b += 4)
        if (decode_blocks(in, x, lut1, lut3, b, 4, out, why, why_len) < 0) return -1;
    for (; b < x->nblocks; b++)
        if (decode_blocks(in, x, lut1, lut3, b, 1, out, why, why_len) < 0) return -1;
    return 0;
}
