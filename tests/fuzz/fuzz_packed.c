/* Fuzz target: a packed container from memory (formats/packed.c), then every chunk decoded.
 *
 * Random bytes almost never carry the right XXH3 of the header and index, so each input is also
 * parsed a second time with both hashes recomputed (the magic, version and header length set):
 * that lets the fuzzer reach the index parser and the decoders (zstd and codec 2). A table that parses must hold the
 * container's invariants, and decoding any chunk must end in HOIST_OK, HOIST_E_DECODE or
 * HOIST_E_INTEGRITY without writing past the chunk. */
#define XXH_STATIC_LINKING_ONLY
#include "formats/packed.h"
#include "fuzz_common.h"

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The chunks tile the tensors in order, the frames tile the file from the header to the index,
 * and no chunk stores more than it decodes to. */
static void check_packed(const hoist__table *t, size_t size)
{
    const hoist__packed *pk = t->packed;
    FZ_CHECK(pk && t->nfiles == 1 && t->files[0].size == size);
    uint64_t off = HOIST_PACKED_HEADER;
    for (uint64_t c = 0; c < pk->nchunks; c++) {
        const hoist__chunk *ch = &pk->chunks[c];
        FZ_CHECK(ch->file_off == off);
        FZ_CHECK(ch->stored >= 1 && ch->stored <= ch->len && ch->len <= pk->chunk_bytes);
        FZ_CHECK(ch->tensor < t->ntensors);
        const hoist__tensor *x = &t->tensors[ch->tensor];
        FZ_CHECK(ch->vofs >= x->offset && ch->vofs - x->offset + ch->len <= x->nbytes);
        off += ch->stored;
    }
    FZ_CHECK(off == HOIST_PACKED_HEADER + pk->stored_bytes && off <= size);
    uint64_t total = 0;
    for (size_t i = 0; i < t->ntensors; i++) {
        const hoist__tensor *x = &t->tensors[i];
        uint64_t n = 0;
        FZ_CHECK(hoist__tensor_bytes(x->name, x->dtype, x->ndim, x->shape, &n) == HOIST_OK);
        FZ_CHECK(n == x->nbytes);
        FZ_CHECK(pk->tensors[i].nchunks == (x->nbytes + pk->chunk_bytes - 1) / pk->chunk_bytes);
        FZ_CHECK(hoist__table_find(t, x->name) == (long)i);
        total += x->nbytes;
    }
    FZ_CHECK(total == t->total_bytes);
}

static void decode_all(const hoist__table *t, const uint8_t *data)
{
    hoist__decoder d;
    if (hoist__decoder_init(&d, t->packed->chunk_bytes) != HOIST_OK) return;
    uint8_t *out = malloc(t->packed->chunk_bytes + 1);
    for (uint64_t c = 0; out && c < t->packed->nchunks && c < 64; c++) {
        const hoist__chunk *ch = &t->packed->chunks[c];
        out[ch->len] = 0xa5; /* a write past the chunk would change it */
        int rc = hoist__packed_decode(t, &d, c, data + ch->file_off, out, NULL, NULL);
        FZ_CHECK(rc == HOIST_OK || rc == HOIST_E_DECODE || rc == HOIST_E_INTEGRITY);
        fz_check_status(rc);
        FZ_CHECK(out[ch->len] == 0xa5);
    }
    free(out);
    hoist__decoder_free(&d);
}

static void one(const uint8_t *data, size_t size)
{
    hoist__table t;
    hoist__table_init(&t);
    int rc = hoist__packed_parse_buffer(&t, "fuzz.hoist", data, size);
    if (rc == HOIST_OK) rc = hoist__table_finish(&t);
    fz_check_status(rc);
    if (rc == HOIST_OK) {
        check_packed(&t, size);
        decode_all(&t, data);
    }
    hoist__table_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    if (size < HOIST_PACKED_HEADER || size > (64u << 20)) return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed) return 0;
    memcpy(fixed, data, size);
    memcpy(fixed, HOIST_PACKED_MAGIC, 8);
    /* version 2 kept as it is: its codec 2 chunks reach the Huffman decoder */
    uint64_t version = fixed[8] == HOIST_PACKED_VERSION_GPU ? HOIST_PACKED_VERSION_GPU
                                                             : HOIST_PACKED_VERSION;
    put64(fixed + 8, version | (uint64_t)HOIST_PACKED_HEADER << 32);
    uint64_t ioff = get64(fixed + 24), ilen = get64(fixed + 32);
    if (ioff <= size && ilen <= size - ioff) put64(fixed + 40, XXH3_64bits(fixed + ioff, ilen));
    put64(fixed + 56, XXH3_64bits(fixed, 56));
    one(fixed, size);
    free(fixed);
    return 0;
}
