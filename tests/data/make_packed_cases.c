/* Writes the handcrafted packed containers under tests/data/packed/: one per failure mode of
 * docs/RELIABILITY.md cases 25 and 26 and of the container's structure, each otherwise valid (its
 * header and index hashes are right unless the case is about them), plus README.md and
 * cases.tsv, which test_packed.c reads. Every zstd frame is assembled by hand (RLE blocks), so
 * the bytes do not depend on the zstd version.
 *
 *   build/tests/make_packed_cases tests/data/packed      (the target is built with the tests)
 */
#define XXH_STATIC_LINKING_ONLY
#include "formats/filter.h"
#include "hoist.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define MAXB (1u << 16)
#define CHUNK 4096u

typedef struct buf {
    uint8_t b[MAXB];
    size_t n;
} buf;

static void put(buf *o, const void *p, size_t n)
{
    if (o->n + n > MAXB) {
        fprintf(stderr, "make_packed_cases: buffer overflow\n");
        exit(1);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void u8(buf *o, uint8_t v) { put(o, &v, 1); }
static void u32(buf *o, uint32_t v)
{
    for (int i = 0; i < 4; i++) u8(o, (uint8_t)(v >> (8 * i)));
}
static void u64(buf *o, uint64_t v)
{
    for (int i = 0; i < 8; i++) u8(o, (uint8_t)(v >> (8 * i)));
}

/* ---- zstd frames, by hand (RFC 8878) -------------------------------------------------------- */

#define ZSTD_MAGIC 0xFD2FB528u

static void block_header(buf *o, int last, int type, uint32_t size)
{
    uint32_t h = (uint32_t)last | (uint32_t)type << 1 | size << 3;
    u8(o, (uint8_t)h);
    u8(o, (uint8_t)(h >> 8));
    u8(o, (uint8_t)(h >> 16));
}

/* A single-segment frame declaring `declared` bytes with a 4-byte content size field, whose one
 * RLE block repeats `byte` `count` times. */
static void rle_frame(buf *o, uint32_t declared, uint8_t byte, uint32_t count, int checksum)
{
    u32(o, ZSTD_MAGIC);
    u8(o, (uint8_t)(2u << 6 | 1u << 5 | (checksum ? 1u << 2 : 0))); /* FCS 4 bytes, single seg */
    u32(o, declared);
    block_header(o, 1, 1, count);
    u8(o, byte);
    if (checksum) {
        uint8_t *content = malloc(count);
        memset(content, byte, count);
        u32(o, (uint32_t)XXH64(content, count, 0));
        free(content);
    }
}

/* ---- a container -------------------------------------------------------------------------- */

typedef struct tdesc {
    const char *name;
    size_t name_len; /* 0: strlen(name) */
    uint32_t dtype, filter, ndim;
    int64_t shape[9];
    uint64_t nbytes;
    uint8_t *bytes;  /* the tensor's bytes */
    uint64_t xxh3;   /* filled from bytes unless bad_hash */
    int bad_hash;
} tdesc;

typedef struct cdesc {
    buf stored;      /* what the file holds */
    uint32_t codec;
    uint32_t len;    /* decoded bytes */
    uint64_t xxh3;   /* of the decoded (unfiltered) bytes */
    uint32_t stored_field; /* 0: stored.n */
} cdesc;

typedef struct container {
    uint32_t version, header_len;
    uint64_t chunk_bytes, reserved;
    tdesc t[5];
    uint32_t nt, nt_field; /* nt_field: 0 = nt */
    cdesc c[8];
    uint32_t nc;
    uint64_t nc_field; /* 0 = nc */
    const char *meta_key, *meta_value;
    uint32_t meta_klen_field; /* 0 = strlen */
    uint64_t gap;             /* garbage bytes between the frames and the index */
    uint64_t index_off_field, index_bytes_field; /* 0: the real ones */
    int bad_index_hash, bad_header_hash;
    size_t cut;       /* bytes cut off the end of the file */
    size_t trailing;  /* bytes appended after the index */
    size_t cut_index; /* bytes cut off the end of the index, header adjusted */
} container;

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 7 + seed);
    return p;
}

/* The valid model every case starts from: a bf16 tensor in one exponent-filtered RLE chunk, an
 * f32 tensor stored raw, and an i32 tensor of two plane-filtered RLE chunks. */
static void base(container *k)
{
    memset(k, 0, sizeof *k);
    k->version = 1;
    k->header_len = 64;
    k->chunk_bytes = CHUNK;
    k->meta_key = "format";
    k->meta_value = "pt";
    k->nt = 3;
    /* a.weight: bf16 [2048]; the stored (filtered) bytes are 4096 x 0x3c */
    uint8_t *filtered = malloc(4096), *plain = malloc(4096);
    memset(filtered, 0x3c, 4096);
    hoist__filter_undo(HOIST_FILTER_EXPONENT, 2, filtered, plain, 4096);
    k->t[0] = (tdesc){.name = "a.weight", .dtype = HOIST_DTYPE_BF16,
                      .filter = HOIST_FILTER_EXPONENT, .ndim = 1, .shape = {2048},
                      .nbytes = 4096, .bytes = plain};
    k->c[0] = (cdesc){.codec = 1, .len = 4096};
    rle_frame(&k->c[0].stored, 4096, 0x3c, 4096, 0);
    /* b.bias: f32 [3], stored raw */
    k->t[1] = (tdesc){.name = "b.bias", .dtype = HOIST_DTYPE_F32, .ndim = 1, .shape = {3},
                      .nbytes = 12, .bytes = pattern(12, 1)};
    k->c[1] = (cdesc){.codec = 0, .len = 12};
    put(&k->c[1].stored, k->t[1].bytes, 12);
    /* c.ids: i32 [2000] = 8000 bytes, chunks of 4096 and 3904, plane-filtered */
    uint8_t *f2 = malloc(8000), *p2 = malloc(8000);
    memset(f2, 0x11, 4096);
    memset(f2 + 4096, 0x22, 3904);
    hoist__filter_undo(HOIST_FILTER_PLANES, 4, f2, p2, 4096);
    hoist__filter_undo(HOIST_FILTER_PLANES, 4, f2 + 4096, p2 + 4096, 3904);
    k->t[2] = (tdesc){.name = "c.ids", .dtype = HOIST_DTYPE_I32, .filter = HOIST_FILTER_PLANES,
                      .ndim = 2, .shape = {40, 50}, .nbytes = 8000, .bytes = p2};
    k->c[2] = (cdesc){.codec = 1, .len = 4096};
    rle_frame(&k->c[2].stored, 4096, 0x11, 4096, 0);
    k->c[3] = (cdesc){.codec = 1, .len = 3904};
    rle_frame(&k->c[3].stored, 3904, 0x22, 3904, 0);
    free(filtered);
    free(f2);
    k->nc = 4;
    /* hashes of the decoded bytes */
    k->c[0].xxh3 = XXH3_64bits(plain, 4096);
    k->c[1].xxh3 = XXH3_64bits(k->t[1].bytes, 12);
    k->c[2].xxh3 = XXH3_64bits(p2, 4096);
    k->c[3].xxh3 = XXH3_64bits(p2 + 4096, 3904);
}

static void base_free(container *k)
{
    for (uint32_t i = 0; i < k->nt; i++) free(k->t[i].bytes);
}

static void write_index(const container *k, buf *ix)
{
    u32(ix, k->nt_field ? k->nt_field : k->nt);
    u32(ix, k->meta_key ? 1 : 0);
    u64(ix, k->nc_field ? k->nc_field : k->nc);
    for (uint32_t i = 0; i < k->nt; i++) {
        const tdesc *t = &k->t[i];
        size_t nl = t->name_len ? t->name_len : strlen(t->name);
        u32(ix, (uint32_t)nl);
        put(ix, t->name, nl);
        u32(ix, t->dtype);
        u32(ix, t->filter);
        u32(ix, t->ndim);
        for (uint32_t d = 0; d < t->ndim; d++) u64(ix, (uint64_t)t->shape[d]);
        u64(ix, t->nbytes);
        uint64_t h = t->bytes ? XXH3_64bits(t->bytes, t->nbytes) : 0;
        u64(ix, t->bad_hash ? h ^ 1 : h);
    }
    if (k->meta_key) {
        u32(ix, k->meta_klen_field ? k->meta_klen_field : (uint32_t)strlen(k->meta_key));
        put(ix, k->meta_key, strlen(k->meta_key));
        u32(ix, (uint32_t)strlen(k->meta_value));
        put(ix, k->meta_value, strlen(k->meta_value));
    }
    for (uint32_t i = 0; i < k->nc; i++) {
        u32(ix, k->c[i].stored_field ? k->c[i].stored_field : (uint32_t)k->c[i].stored.n);
        u32(ix, k->c[i].codec);
        u64(ix, k->c[i].xxh3);
    }
}

static buf *assemble(const container *k)
{
    static buf file;
    buf frames = {0}, ix = {0};
    for (uint32_t i = 0; i < k->nc; i++) put(&frames, k->c[i].stored.b, k->c[i].stored.n);
    for (uint64_t i = 0; i < k->gap; i++) u8(&frames, 0xee);
    write_index(k, &ix);
    if (k->cut_index) ix.n -= k->cut_index;
    memset(&file, 0, sizeof file);
    put(&file, "HOISTPAK", 8);
    u32(&file, k->version);
    u32(&file, k->header_len);
    u64(&file, k->chunk_bytes);
    u64(&file, k->index_off_field ? k->index_off_field : 64 + frames.n);
    u64(&file, k->index_bytes_field ? k->index_bytes_field : ix.n);
    uint64_t ih = XXH3_64bits(ix.b, ix.n);
    u64(&file, k->bad_index_hash ? ih ^ 1 : ih);
    u64(&file, k->reserved);
    uint64_t hh = XXH3_64bits(file.b, 56);
    u64(&file, k->bad_header_hash ? hh ^ 1 : hh);
    put(&file, frames.b, frames.n);
    put(&file, ix.b, ix.n);
    for (size_t i = 0; i < k->trailing; i++) u8(&file, 0);
    file.n -= k->cut;
    return &file;
}

/* ---- a codec 2 chunk, by hand (formats/exphuff.h) -------------------------------------------- */

/* h.weight: bf16 [2048], one chunk of 8 blocks of 256 elements. Element i has the exponent
 * symbol 0x7f, 0x80, 0x7e, 0x7e for i % 4 = 0..3 and the raw byte i * 5; the code is 0x7e "0",
 * 0x7f "10", 0x80 "11", so a block is 256 / 4 * 6 bits = 12 words. */
#define H_ELEMS 2048u
#define H_BLOCK 256u
#define H_WORDS 12u

static unsigned h_sym(unsigned i) { return i % 4 == 0 ? 0x7f : i % 4 == 1 ? 0x80 : 0x7e; }

static uint8_t *h_tensor(void)
{
    uint8_t *p = malloc(2 * H_ELEMS);
    for (unsigned i = 0; i < H_ELEMS; i++) {
        unsigned v = h_sym(i) << 8 | ((i * 5) & 0xff);
        v = (v >> 1 | v << 15) & 0xffff;
        p[2 * i] = (uint8_t)v;
        p[2 * i + 1] = (uint8_t)(v >> 8);
    }
    return p;
}

/* What may differ from the valid chunk. */
typedef struct hchunk {
    uint32_t block_elems;         /* 0: H_BLOCK */
    uint16_t count[12];           /* all 0: the valid counts */
    const uint8_t *syms;          /* NULL: 7e 7f 80 */
    uint32_t nsyms;
    int offset_at;                /* -1: none; else offsets[offset_at] = offset_value */
    uint32_t offset_value;
} hchunk;

static void h_chunk(buf *o, const hchunk *h)
{
    static const uint8_t good_syms[] = {0x7e, 0x7f, 0x80};
    uint16_t count[12] = {1, 2};
    int custom = 0;
    for (int l = 0; l < 12; l++) custom |= h->count[l] != 0;
    u32(o, h->block_elems ? h->block_elems : H_BLOCK);
    for (int l = 0; l < 12; l++) {
        uint16_t c = custom ? h->count[l] : count[l];
        u8(o, (uint8_t)c);
        u8(o, (uint8_t)(c >> 8));
    }
    if (h->syms)
        put(o, h->syms, h->nsyms);
    else
        put(o, good_syms, 3);
    for (unsigned b = 0; b < H_ELEMS / H_BLOCK; b++)
        u32(o, (int)b == h->offset_at ? h->offset_value : b * H_WORDS);
    for (unsigned i = 0; i < H_ELEMS; i++) u8(o, (uint8_t)(i * 5));
    uint64_t acc = 0;
    unsigned n = 0;
    for (unsigned i = 0; i < H_ELEMS; i++) {
        unsigned s = h_sym(i), code = s == 0x7e ? 0 : s == 0x7f ? 2 : 3, len = s == 0x7e ? 1 : 2;
        acc = acc << len | code;
        n += len;
        if (n >= 32) {
            n -= 32;
            u32(o, (uint32_t)(acc >> n));
        }
    }
}

/* The valid model plus h.weight in codec 2: a version 2 container. */
static void base_gpu(container *k)
{
    base(k);
    k->version = 2;
    k->t[3] = (tdesc){.name = "h.weight", .dtype = HOIST_DTYPE_BF16, .ndim = 2,
                      .shape = {32, 64}, .nbytes = 2 * H_ELEMS, .bytes = h_tensor()};
    k->nt = 4;
    k->c[4] = (cdesc){.codec = 2, .len = 2 * H_ELEMS};
    h_chunk(&k->c[4].stored, &(hchunk){.offset_at = -1});
    k->c[4].xxh3 = XXH3_64bits(k->t[3].bytes, 2 * H_ELEMS);
    k->nc = 5;
}

/* ---- output ------------------------------------------------------------------------------- */

static const char *dir;
static FILE *tsv, *readme;

/* name, RELIABILITY case (0: structure), then the expected status of open, load and verify
 * (load and verify only when open succeeds), a substring of the message, and what it is. */
static void emit(const char *name, int num, const char *open_st, const char *load_st,
                 const char *verify_st, const char *needle, const char *what, const buf *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->b, 1, b->n, f) != b->n || fclose(f) != 0) {
        fprintf(stderr, "make_packed_cases: cannot write %s\n", path);
        exit(1);
    }
    fprintf(tsv, "%s\t%d\t%s\t%s\t%s\t%s\n", name, num, open_st, load_st, verify_st, needle);
    char num_s[16];
    snprintf(num_s, sizeof num_s, num ? "%d" : "-", num);
    fprintf(readme, "| `%s` | %s | %s | %s | %s | %s |\n", name, num_s, open_st, load_st,
            verify_st, what);
}

typedef void (*mutate)(container *k);

static void one(const char *name, int num, const char *open_st, const char *load_st,
                const char *verify_st, const char *needle, const char *what, mutate m)
{
    container k;
    base(&k);
    if (m) m(&k);
    emit(name, num, open_st, load_st, verify_st, needle, what, assemble(&k));
    base_free(&k);
}

/* The same from the version 2 model with a codec 2 chunk. */
static void one_gpu(const char *name, int num, const char *open_st, const char *load_st,
                    const char *verify_st, const char *needle, const char *what, mutate m)
{
    container k;
    base_gpu(&k);
    if (m) m(&k);
    emit(name, num, open_st, load_st, verify_st, needle, what, assemble(&k));
    base_free(&k);
}

static void h_redo(container *k, const hchunk *h)
{
    memset(&k->c[4].stored, 0, sizeof k->c[4].stored);
    h_chunk(&k->c[4].stored, h);
}
static void g_v1(container *k) { k->version = 1; }
static void g_on_f32(container *k) { k->c[1].codec = 2; }
static void g_filtered(container *k) { k->t[3].filter = HOIST_FILTER_EXPONENT; }
static void g_block_size(container *k) { h_redo(k, &(hchunk){.block_elems = 1000, .offset_at = -1}); }
static void g_no_symbols(container *k)
{
    h_redo(k, &(hchunk){.offset_at = -1});
    memset(k->c[4].stored.b + 4, 0, 24);
}
static void g_kraft(container *k)
{
    static const uint8_t s3[] = {0x7e, 0x7f, 0x80};
    h_redo(k, &(hchunk){.count = {3}, .syms = s3, .nsyms = 3, .offset_at = -1});
}
static void g_dup(container *k)
{
    static const uint8_t s3[] = {0x7e, 0x7f, 0x7f};
    h_redo(k, &(hchunk){.syms = s3, .nsyms = 3, .offset_at = -1});
}
static void g_short(container *k) { k->c[4].stored.n = 100; }
static void g_first_offset(container *k) { h_redo(k, &(hchunk){.offset_at = 0, .offset_value = 1}); }
static void g_offsets_down(container *k) { h_redo(k, &(hchunk){.offset_at = 3, .offset_value = 5}); }
static void g_offset_past(container *k)
{
    h_redo(k, &(hchunk){.offset_at = 7, .offset_value = 1000});
}
static void g_not_words(container *k) { u8(&k->c[4].stored, 0); }
static void g_overrun(container *k) { h_redo(k, &(hchunk){.offset_at = 1, .offset_value = 11}); }
static void g_no_code(container *k)
{
    static const uint8_t s2[] = {0x7e, 0x7f};
    h_redo(k, &(hchunk){.count = {1, 1}, .syms = s2, .nsyms = 2, .offset_at = -1});
}
static void g_chunk_hash(container *k) { k->c[4].xxh3 ^= 1; }

/* ---- the cases ---------------------------------------------------------------------------- */

static void reset_chunk0(container *k)
{
    memset(&k->c[0].stored, 0, sizeof k->c[0].stored);
}
static void m_bomb_declared(container *k)
{
    reset_chunk0(k);
    rle_frame(&k->c[0].stored, 1u << 30, 0x3c, 4096, 0);
}
static void m_bomb_blocks(container *k)
{
    reset_chunk0(k);
    rle_frame(&k->c[0].stored, 4096, 0x3c, 1u << 17, 0);
}
static void m_short_frame(container *k)
{
    reset_chunk0(k);
    rle_frame(&k->c[0].stored, 4096, 0x3c, 100, 0);
}
static void m_window(container *k)
{
    buf *o = &k->c[0].stored;
    reset_chunk0(k);
    u32(o, ZSTD_MAGIC);
    u8(o, 2u << 6);    /* FCS 4 bytes, not single segment: a window descriptor follows */
    u8(o, 20u << 3);   /* window log 10 + 20: 1 GiB */
    u32(o, 4096);
    block_header(o, 1, 1, 4096);
    u8(o, 0x3c);
}
static void m_no_size(container *k)
{
    buf *o = &k->c[0].stored;
    reset_chunk0(k);
    u32(o, ZSTD_MAGIC);
    u8(o, 0);        /* no content size, not single segment */
    u8(o, 2u << 3);  /* window 4 KiB */
    block_header(o, 1, 1, 4096);
    u8(o, 0x3c);
}
static void m_truncated(container *k) { k->c[0].stored.n -= 1; }
static void m_checksum(container *k)
{
    reset_chunk0(k);
    rle_frame(&k->c[0].stored, 4096, 0x3c, 4096, 1);
    k->c[0].stored.b[k->c[0].stored.n - 1] ^= 0xff;
}
static void m_trailing_garbage(container *k)
{
    for (int i = 0; i < 5; i++) u8(&k->c[0].stored, 0xab);
}
static void m_skippable(container *k)
{
    reset_chunk0(k);
    u32(&k->c[0].stored, 0x184D2A50u);
    u32(&k->c[0].stored, 8);
    u64(&k->c[0].stored, 0);
}
static void m_chunk_hash(container *k) { k->c[0].xxh3 ^= 1; }
static void m_raw_hash(container *k) { k->c[1].xxh3 ^= 1; }
static void m_second_chunk_hash(container *k) { k->c[3].xxh3 ^= 1; }
static void m_tensor_hash(container *k) { k->t[2].bad_hash = 1; }
static void m_tensor_hash_one(container *k) { k->t[1].bad_hash = 1; }
static void m_index_hash(container *k) { k->bad_index_hash = 1; }
static void m_header_hash(container *k) { k->bad_header_hash = 1; }
static void m_version(container *k) { k->version = 3; }
static void m_header_len(container *k) { k->header_len = 128; }
static void m_chunk_odd(container *k) { k->chunk_bytes = 5000; }
static void m_chunk_small(container *k) { k->chunk_bytes = 2048; }
static void m_reserved(container *k) { k->reserved = 1; }
static void m_index_in_header(container *k) { k->index_off_field = 8; }
static void m_cut(container *k) { k->cut = 10; }
static void m_trailing(container *k) { k->trailing = 3; }
static void m_gap(container *k) { k->gap = 8; }
static void m_stored_gt_len(container *k)
{
    for (int i = 0; i < 4090; i++) u8(&k->c[0].stored, 0);
}
static void m_raw_len(container *k)
{
    k->c[1].stored.n = 11;
}
static void m_stored_zero(container *k) { k->c[0].stored.n = 0; }
static void m_codec(container *k) { k->c[0].codec = 3; }
static void m_dtype(container *k) { k->t[1].dtype = 99; }
static void m_size(container *k) { k->t[1].shape[0] = 4; }
static void m_filter_u8(container *k)
{
    k->t[1].dtype = HOIST_DTYPE_U8;
    k->t[1].shape[0] = 12;
    k->t[1].filter = HOIST_FILTER_PLANES;
}
static void m_filter_unknown(container *k) { k->t[1].filter = 7; }
static void m_chunk_count(container *k) { k->nc_field = 5; }
static void m_tensor_count(container *k) { k->nt_field = 0xffffffffu; }
static void m_name_nul(container *k)
{
    k->t[1].name = "b\0bias";
    k->t[1].name_len = 6;
}
static void m_name_empty(container *k) { k->t[1].name = ""; }
static void m_dup(container *k) { k->t[1].name = "a.weight"; }
static void m_ndim(container *k)
{
    k->t[1].ndim = 9;
    for (int d = 0; d < 9; d++) k->t[1].shape[d] = 1;
    k->t[1].shape[0] = 3;
}
static void m_negative(container *k)
{
    k->t[2].shape[0] = -40;
    k->t[2].shape[1] = -50;
}
static void m_overflow(container *k)
{
    k->t[1].ndim = 2;
    k->t[1].shape[0] = 1ll << 40;
    k->t[1].shape[1] = 1ll << 40;
}
static void m_index_cut(container *k) { k->cut_index = 9; }
static void m_meta_huge(container *k) { k->meta_klen_field = 0x80000000u; }
static void m_empty(container *k)
{
    base_free(k);
    k->nt = 0;
    k->nc = 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_packed_cases OUT_DIR\n");
        return 2;
    }
    dir = argv[1];
    mkdir(dir, 0755);
    char path[4096];
    snprintf(path, sizeof path, "%s/cases.tsv", dir);
    tsv = fopen(path, "w");
    snprintf(path, sizeof path, "%s/README.md", dir);
    readme = fopen(path, "w");
    if (!tsv || !readme) {
        fprintf(stderr, "make_packed_cases: cannot write into %s\n", dir);
        return 1;
    }
    fprintf(readme,
            "# Packed containers, handcrafted\n\n"
            "Written by `make_packed_cases` (tests/data/make_packed_cases.c; the tests build it):\n"
            "`build/tests/make_packed_cases tests/data/packed` rewrites this directory, this file\n"
            "and `cases.tsv`, which test_packed.c reads. Each container is the same small valid\n"
            "model (a bf16 tensor in one exponent-filtered chunk, an f32 tensor stored raw, an\n"
            "i32 tensor in two plane-filtered chunks) with one thing broken; its header and index\n"
            "hashes are recomputed unless the case is about them, so every file reaches the\n"
            "check it is for. The zstd frames are assembled by hand from RLE blocks, so the bytes\n"
            "do not depend on the zstd version. The `good_gpu` and `g_*` files are version 2:\n"
            "the same model plus h.weight, a bf16 tensor in one codec 2 chunk (exponent\n"
            "Huffman, formats/exphuff.h) written bit by bit, one field broken in each.\n\n"
            "Columns: the docs/RELIABILITY.md case, then the status of `hoist_model_open`, of\n"
            "`hoist_load` (every path) and of `hoist_model_verify` when the open succeeds. A\n"
            "load and `hoist verify` check every chunk's hash and every tensor's: a tensor hash\n"
            "that contradicts its chunks fails both (`c26_tensor_hash*`). A load that decodes\n"
            "codec 2 chunks on the GPU (or through the device pipeline's host twin) hashes each\n"
            "chunk there; it does not check the tensor hash (docs/PACKED.md).\n\n"
            "| file | case | open | load | verify | what |\n|---|---|---|---|---|---|\n");
    one("good.hoist", 0, "OK", "OK", "OK", "", "the valid model", NULL);
    one("empty.hoist", 0, "OK", "OK", "OK", "", "no tensors, no chunks", m_empty);
    one("c25_bomb_declares_1g.hoist", 25, "OK", "DECODE", "DECODE", "declares 1073741824",
        "frame declares 1 GiB for a 4 KiB chunk", m_bomb_declared);
    one("c25_bomb_blocks_exceed.hoist", 25, "OK", "DECODE", "DECODE", "a.weight",
        "frame declares 4 KiB, its block expands to 128 KiB", m_bomb_blocks);
    one("c25_short_frame.hoist", 25, "OK", "DECODE", "DECODE", "a.weight",
        "frame declares 4 KiB, its block holds 100 bytes", m_short_frame);
    one("c25_window_1g.hoist", 25, "OK", "DECODE", "DECODE", "window",
        "frame asks for a 1 GiB window", m_window);
    one("c25_no_content_size.hoist", 25, "OK", "DECODE", "DECODE", "does not declare",
        "frame without a content size", m_no_size);
    one("c25_truncated_frame.hoist", 25, "OK", "DECODE", "DECODE", "a.weight",
        "frame cut by one byte (its chunk says so)", m_truncated);
    one("c25_bad_checksum.hoist", 25, "OK", "DECODE", "DECODE", "a.weight",
        "frame's own checksum wrong", m_checksum);
    one("c25_trailing_garbage.hoist", 25, "OK", "DECODE", "DECODE", "trailing",
        "5 bytes after the frame inside its chunk", m_trailing_garbage);
    one("c25_skippable_frame.hoist", 25, "OK", "DECODE", "DECODE", "skippable",
        "a skippable frame instead of data", m_skippable);
    one("c26_chunk_hash.hoist", 26, "OK", "INTEGRITY", "INTEGRITY", "a.weight",
        "chunk hash of a.weight wrong", m_chunk_hash);
    one("c26_raw_chunk_hash.hoist", 26, "OK", "INTEGRITY", "INTEGRITY", "b.bias",
        "hash of the raw chunk of b.bias wrong", m_raw_hash);
    one("c26_second_chunk_hash.hoist", 26, "OK", "INTEGRITY", "INTEGRITY", "chunk 1 of 2",
        "hash of c.ids' second chunk wrong", m_second_chunk_hash);
    one("c26_tensor_hash.hoist", 26, "OK", "INTEGRITY", "INTEGRITY", "c.ids",
        "tensor hash of c.ids wrong, chunks right", m_tensor_hash);
    one("c26_tensor_hash_one_chunk.hoist", 26, "OK", "INTEGRITY", "INTEGRITY", "b.bias",
        "tensor hash of b.bias (one chunk) wrong, its chunk right", m_tensor_hash_one);
    one("c26_index_hash.hoist", 26, "INTEGRITY", "-", "-", "index checksum",
        "index hash wrong", m_index_hash);
    one("c26_header_hash.hoist", 26, "INTEGRITY", "-", "-", "header checksum",
        "header hash wrong", m_header_hash);
    one("p_version_3.hoist", 0, "BAD_PACKED", "-", "-", "version 3", "version 3", m_version);
    one("p_header_len.hoist", 0, "BAD_PACKED", "-", "-", "header length", "header length 128",
        m_header_len);
    one("p_chunk_not_pow2.hoist", 0, "BAD_PACKED", "-", "-", "chunk size",
        "chunk size 5000", m_chunk_odd);
    one("p_chunk_too_small.hoist", 0, "BAD_PACKED", "-", "-", "chunk size", "chunk size 2048",
        m_chunk_small);
    one("p_reserved.hoist", 0, "BAD_PACKED", "-", "-", "reserved", "reserved field 1",
        m_reserved);
    one("p_index_in_header.hoist", 0, "BAD_PACKED", "-", "-", "inside the header",
        "index offset 8", m_index_in_header);
    one("p_truncated.hoist", 0, "TRUNCATED", "-", "-", "truncated",
        "file cut 10 bytes short: a truncated container", m_cut);
    one("p_trailing_bytes.hoist", 0, "TRAILING_BYTES", "-", "-", "after the index",
        "3 bytes after the index", m_trailing);
    one("p_frames_gap.hoist", 0, "BAD_PACKED", "-", "-", "frames end",
        "8 bytes between the frames and the index", m_gap);
    one("p_stored_gt_len.hoist", 0, "BAD_PACKED", "-", "-", "stores",
        "a chunk stores more bytes than it decodes to", m_stored_gt_len);
    one("p_raw_len.hoist", 0, "BAD_PACKED", "-", "-", "stores",
        "a raw chunk stores 11 bytes for 12", m_raw_len);
    one("p_stored_zero.hoist", 0, "BAD_PACKED", "-", "-", "stores", "a chunk stores 0 bytes",
        m_stored_zero);
    one("p_unknown_codec.hoist", 0, "BAD_PACKED", "-", "-", "codec 3", "codec 3", m_codec);
    one("p_unknown_dtype.hoist", 0, "BAD_DTYPE", "-", "-", "dtype 99", "dtype 99", m_dtype);
    one("p_size_mismatch.hoist", 0, "SIZE_MISMATCH", "-", "-", "b.bias",
        "shape [4] f32 for 12 bytes", m_size);
    one("p_filter_on_u8.hoist", 0, "BAD_PACKED", "-", "-", "filter",
        "planes filter on a u8 tensor", m_filter_u8);
    one("p_unknown_filter.hoist", 0, "BAD_PACKED", "-", "-", "filter 7", "filter 7",
        m_filter_unknown);
    one("p_chunk_count.hoist", 0, "BAD_PACKED", "-", "-", "chunks",
        "the index counts 5 chunks for 4", m_chunk_count);
    one("p_tensor_count.hoist", 0, "TOO_MANY", "-", "-", "tensors",
        "2^32-1 tensors in a small index", m_tensor_count);
    one("p_name_nul.hoist", 0, "BAD_PACKED", "-", "-", "NUL", "NUL byte in a name", m_name_nul);
    one("p_name_empty.hoist", 0, "BAD_TENSOR", "-", "-", "empty", "empty name", m_name_empty);
    one("p_duplicate_tensor.hoist", 0, "DUPLICATE_KEY", "-", "-", "a.weight",
        "a.weight twice", m_dup);
    one("p_ndim_9.hoist", 0, "BAD_TENSOR", "-", "-", "dimensions", "9 dimensions", m_ndim);
    one("p_negative_dims.hoist", 0, "BAD_TENSOR", "-", "-", "c.ids",
        "shape [-40, -50] (product positive)", m_negative);
    one("p_shape_overflow.hoist", 0, "OVERFLOW", "-", "-", "b.bias", "shape [2^40, 2^40]",
        m_overflow);
    one("p_index_cut.hoist", 0, "BAD_PACKED", "-", "-", "bytes of index",
        "index 9 bytes short of its chunk table (hashes match the cut index)", m_index_cut);
    one("p_meta_key_huge.hoist", 0, "BAD_PACKED", "-", "-", "metadata key",
        "metadata key length 2^31", m_meta_huge);
    one_gpu("good_gpu.hoist", 0, "OK", "OK", "OK", "",
            "the valid model and h.weight in codec 2 (version 2)", NULL);
    one_gpu("g_codec2_in_v1.hoist", 0, "BAD_PACKED", "-", "-", "version 1",
            "codec 2 chunk in a version 1 container", g_v1);
    one_gpu("g_codec2_on_f32.hoist", 0, "BAD_PACKED", "-", "-", "cannot decode a F32",
            "codec 2 on the f32 tensor b.bias", g_on_f32);
    one_gpu("g_codec2_filtered.hoist", 0, "BAD_PACKED", "-", "-", "filter exponent",
            "codec 2 on a tensor with a filter", g_filtered);
    one_gpu("g_block_size.hoist", 38, "OK", "DECODE", "DECODE", "block size 1000",
            "block size 1000 (not a power of two)", g_block_size);
    one_gpu("g_no_symbols.hoist", 38, "OK", "DECODE", "DECODE", "0 symbols",
            "a code table of no symbols", g_no_symbols);
    one_gpu("g_kraft.hoist", 38, "OK", "DECODE", "DECODE", "oversubscribed",
            "three 1-bit codes (Kraft sum above 1)", g_kraft);
    one_gpu("g_duplicate_symbol.hoist", 38, "OK", "DECODE", "DECODE", "twice",
            "a symbol twice in the table", g_dup);
    one_gpu("g_chunk_short.hoist", 38, "OK", "DECODE", "DECODE", "run past",
            "the chunk stores 100 bytes: offsets and raw plane past its end", g_short);
    one_gpu("g_first_offset.hoist", 38, "OK", "DECODE", "DECODE", "block 0 starts",
            "block 0 starts at word 1", g_first_offset);
    one_gpu("g_offsets_decrease.hoist", 38, "OK", "DECODE", "DECODE", "block 3 starts",
            "block 3 starts before block 2", g_offsets_down);
    one_gpu("g_offset_past_end.hoist", 38, "OK", "DECODE", "DECODE", "block 7 starts",
            "block 7 starts past the bitstream", g_offset_past);
    one_gpu("g_bits_not_words.hoist", 38, "OK", "DECODE", "DECODE", "whole 32-bit words",
            "a bitstream one byte longer than whole words", g_not_words);
    one_gpu("g_block_overrun.hoist", 38, "OK", "DECODE", "DECODE", "h.weight",
            "block 0 is given 11 words and needs 12 (CPU and GPU decoders)", g_overrun);
    one_gpu("g_no_code.hoist", 38, "OK", "DECODE", "DECODE", "h.weight",
            "bits \"11\" that the table assigns no symbol (CPU and GPU decoders)", g_no_code);
    one_gpu("g_chunk_hash.hoist", 26, "OK", "INTEGRITY", "INTEGRITY", "h.weight",
            "hash of the codec 2 chunk wrong (a GPU load checks it with its hash kernel)",
            g_chunk_hash);
    buf tiny = {0};
    put(&tiny, "HOISTPAK", 8);
    for (int i = 0; i < 22; i++) u8(&tiny, 0);
    emit("p_short_file.hoist", 0, "TRUNCATED_HEADER", "-", "-", "too short",
         "30 bytes: the magic and part of a header", &tiny);
    fclose(tsv);
    fclose(readme);
    return 0;
}
