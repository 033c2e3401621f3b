/* formats/manifest.c, loader/integrity.c, loader/transform_manifest.c: hoist_model_sum writes a
 * manifest that hoist_model_verify and HOIST_VERIFY_MANIFEST loads (every path, host and device
 * pipeline) check; a changed byte, header or size fails naming the file, tensor and chunk with
 * nothing published; the handcrafted manifests of tests/data/manifest are refused. */
#include "gpu/gpu.h"
#include "core/core.h"
#include "core/io.h"
#include "testutil.h"
#include "cut_sweep.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    hoist__gpu_set_hooks(NULL);
    tu_rmtree(dir);
    dir = NULL;
}

static void sum_ok(hoist_model *m, uint64_t chunk)
{
    hoist_sum_options o = HOIST_SUM_OPTIONS_DEFAULT;
    o.chunk_bytes = chunk;
    o.threads = 3;
    int rc = hoist_model_sum(m, &o);
    ck_assert_msg(rc == HOIST_OK, "sum: %s", hoist_last_error());
}

static const hoist_path paths[] = {HOIST_PATH_MMAP, HOIST_PATH_URING, HOIST_PATH_STREAM};

/* Loads m with HOIST_VERIFY_MANIFEST through `path`; returns the status. */
static int load_verified(hoist_model *m, hoist_path path, int as_device, uint64_t chunk,
                         unsigned threads, hoist_load_stats *stats)
{
    hoist__gpu_hooks h = {.host_as_device = as_device != 0};
    hoist__gpu_set_hooks(as_device ? &h : NULL);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = path;
    o.verify = HOIST_VERIFY_MANIFEST;
    o.chunk_bytes = chunk;
    o.threads = threads;
    hoist_weights *w = (hoist_weights *)1;
    int rc = hoist_load(m, &o, &w);
    if (rc == HOIST_OK) {
        tu_assert_weights_match_files(m, w);
        if (stats) ck_assert_int_eq(hoist_weights_stats(w, stats), HOIST_OK);
        hoist_weights_free(w);
    } else {
        ck_assert_ptr_null(w);
    }
    hoist__gpu_set_hooks(NULL);
    return rc;
}

static void flip_byte(const char *path, uint64_t off)
{
    size_t n;
    unsigned char *b = tu_read(path, &n);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_lt(off, n);
    b[off] ^= 0x01;
    tu_write(path, b, n);
    free(b);
}

/* ---- round trips -------------------------------------------------------------------------- */

/* Every dtype at odd offsets, chunks of 4 KiB (tensors straddle chunks and chunks hold many
 * tensors): the manifest verifies, and verified loads pass on every path, host and device, with
 * windows raised to multiples of the chunk. */
START_TEST(test_sum_verify_load_odd_model)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 60, 17);
    hoist_model *m = tu_open_ok(path);
    sum_ok(m, 4096);
    struct stat sb;
    ck_assert_int_eq(stat(hoist_model_manifest_path(m), &sb), 0);
    ck_assert_ptr_nonnull(strstr(hoist_model_manifest_path(m), "odd.safetensors.hoist-sum"));
    ck_assert_int_eq(hoist_model_verify(m, NULL), HOIST_OK);
    for (size_t pi = 0; pi < 3; pi++)
        for (int dev = 0; dev <= 1; dev++) {
            hoist_load_stats s = HOIST_LOAD_STATS_INIT;
            int rc = load_verified(m, paths[pi], dev, 0, 0, &s);
            ck_assert_msg(rc == HOIST_OK, "%s: %s", hoist_path_name(paths[pi]), hoist_last_error());
            ck_assert(s.verify_seconds > 0);
            ck_assert_int_eq(load_verified(m, paths[pi], dev, 12288, 3, NULL), HOIST_OK);
        }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* A sharded checkpoint: the manifest sits beside its index, lists every shard, and verifies. */
START_TEST(test_sharded_model)
{
    char args[512], *mdir = tu_path(dir, "m");
    snprintf(args, sizeof args, "gen '%s' --preset tiny --shard-size 96K --quiet", mdir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    hoist_model *m = tu_open_ok(mdir);
    ck_assert_uint_gt(hoist_model_file_count(m), 2);
    sum_ok(m, 0);
    ck_assert_ptr_nonnull(
        strstr(hoist_model_manifest_path(m), "model.safetensors.index.json.hoist-sum"));
    json_error_t err;
    json_t *root = json_load_file(hoist_model_manifest_path(m), JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(root != NULL, "%s", err.text);
    ck_assert_uint_eq(json_array_size(json_object_get(root, "files")), hoist_model_file_count(m));
    ck_assert_uint_eq(json_array_size(json_object_get(root, "tensors")),
                      hoist_model_tensor_count(m));
    ck_assert_str_eq(json_string_value(json_object_get(root, "hoist_version")), hoist_version());
    json_decref(root);
    ck_assert_int_eq(hoist_model_verify(m, NULL), HOIST_OK);
    for (size_t pi = 0; pi < 3; pi++)
        ck_assert_int_eq(load_verified(m, paths[pi], 1, 0, 0, NULL), HOIST_OK);
    /* the same checkpoint opened through its index finds the same manifest */
    char *index = tu_path(mdir, "model.safetensors.index.json");
    hoist_model *m2 = tu_open_ok(index);
    ck_assert_str_eq(hoist_model_manifest_path(m2), hoist_model_manifest_path(m));
    ck_assert_int_eq(hoist_model_verify(m2, NULL), HOIST_OK);
    hoist_model_free(m2);
    hoist_model_free(m);
    free(index);
    free(mdir);
}
END_TEST

/* ---- changed files ------------------------------------------------------------------------ */

/* One flipped byte inside a tensor fails every verified load naming that tensor and its chunk,
 * publishes nothing and leaves no memory behind; a load without verification does not notice;
 * hoist_model_verify names it and counts it. */
START_TEST(test_flipped_byte_fails_naming_tensor_and_chunk)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 40, 9);
    hoist_model *m = tu_open_ok(path);
    sum_ok(m, 8192);
    size_t ti;
    ck_assert_int_eq(hoist_model_find(m, "t037", &ti), HOIST_OK); /* 1 MiB+ of F32 */
    hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
    hoist_model_tensor(m, ti, &t);
    uint64_t off = t.offset + t.nbytes / 2;
    hoist_model_free(m);
    flip_byte(path, off);
    m = tu_open_ok(path);
    char chunk[64];
    snprintf(chunk, sizeof chunk, "chunk %llu ", (unsigned long long)(off / 8192));
    for (size_t pi = 0; pi < 3; pi++)
        for (int dev = 0; dev <= 1; dev++) {
            int64_t live = hoist__alloc_live_bytes();
            int rc = load_verified(m, paths[pi], dev, 0, 0, NULL);
            ck_assert_msg(rc == HOIST_E_INTEGRITY, "%s: %s", hoist_path_name(paths[pi]),
                          hoist_status_name(rc));
            ck_assert_ptr_nonnull(strstr(hoist_last_error(), "tensor 't037'"));
            ck_assert_msg(strstr(hoist_last_error(), chunk), "%s", hoist_last_error());
            ck_assert_ptr_nonnull(strstr(hoist_last_error(), "odd.safetensors"));
            ck_assert_int_eq(hoist__alloc_live_bytes(), live);
            for (int r = 0; r < HOIST_GPU_NRES; r++) ck_assert_int_eq(hoist__gpu_live(r), 0);
        }
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_OK);
    hoist_weights_free(w);
    ck_assert_int_eq(hoist_model_verify(m, NULL), HOIST_E_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "t037"));
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), chunk));
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "1 chunks and 1 tensors differ"));
    hoist_model_free(m);
    free(path);
}
END_TEST

/* Rewrites the manifest of m with tensor `name`'s hash changed (its chunks left right): a manifest
 * that contradicts itself. */
static void break_tensor_hash(const hoist_model *m, const char *name)
{
    json_error_t err;
    json_t *root = json_load_file(hoist_model_manifest_path(m), JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(root != NULL, "%s", err.text);
    size_t i;
    json_t *e;
    int found = 0;
    json_array_foreach(json_object_get(root, "tensors"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) != 0) continue;
        char hx[17];
        snprintf(hx, sizeof hx, "%s", json_string_value(json_object_get(e, "xxh3")));
        hx[15] = hx[15] == '0' ? '1' : '0';
        json_object_set_new(e, "xxh3", json_string(hx));
        found = 1;
    }
    ck_assert(found);
    ck_assert_int_eq(json_dump_file(root, hoist_model_manifest_path(m), JSON_COMPACT), 0);
    json_decref(root);
}

static const char *const WRONG[] = {"t002", "t037"}; /* 7 bytes; 1 MiB+ of F32 */

/* A manifest whose hash of one tensor is wrong while every chunk hash is right fails hoist verify
 * naming the file and the tensor. A tensor inside one chunk and one across many. */
START_TEST(test_wrong_tensor_hash_fails_verify)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 40, 9);
    hoist_model *m = tu_open_ok(path);
    for (int k = 0; k < 2; k++) {
        sum_ok(m, 4096);
        break_tensor_hash(m, WRONG[k]);
        char want[64];
        snprintf(want, sizeof want, "tensor '%s'", WRONG[k]);
        int rc = hoist_model_verify(m, NULL);
        ck_assert_msg(rc == HOIST_E_INTEGRITY, "%s", hoist_last_error());
        ck_assert_msg(strstr(hoist_last_error(), want) &&
                          strstr(hoist_last_error(), "odd.safetensors") &&
                          strstr(hoist_last_error(), "0 chunks and 1 tensors differ"),
                      "%s", hoist_last_error());
    }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* The same manifests fail every verified load (every path, host and device pipeline, one window
 * or many per tensor, several workers) naming the file and the tensor; nothing is published or
 * left allocated. */
START_TEST(test_wrong_tensor_hash_fails_load)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 40, 9);
    hoist_model *m = tu_open_ok(path);
    for (int k = 0; k < 2; k++) {
        sum_ok(m, 4096);
        break_tensor_hash(m, WRONG[k]);
        char want[64];
        snprintf(want, sizeof want, "tensor '%s'", WRONG[k]);
        for (size_t pi = 0; pi < 3; pi++)
            for (int dev = 0; dev <= 1; dev++)
                for (int windows = 0; windows < 2; windows++) {
                    int64_t live = hoist__alloc_live_bytes();
                    int rc = load_verified(m, paths[pi], dev, windows ? 12288 : 0,
                                           windows ? 3 : 0, NULL);
                    ck_assert_msg(rc == HOIST_E_INTEGRITY, "%s %s: %s: %s", WRONG[k],
                                  hoist_path_name(paths[pi]), hoist_status_name(rc),
                                  hoist_last_error());
                    ck_assert_msg(strstr(hoist_last_error(), want) &&
                                      strstr(hoist_last_error(), "odd.safetensors") &&
                                      strstr(hoist_last_error(), "every chunk of it matches"),
                                  "%s", hoist_last_error());
                    ck_assert_int_eq(hoist__alloc_live_bytes(), live);
                    for (int r = 0; r < HOIST_GPU_NRES; r++)
                        ck_assert_int_eq(hoist__gpu_live(r), 0);
                }
    }
    hoist_model_free(m);
    free(path);
}
END_TEST

/* A damaged byte in a chunk that holds several tensors: hoist verify names the tensor the byte
 * belongs to (whose own hash differs), not the first tensor of the chunk. */
START_TEST(test_verify_names_the_damaged_tensor)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 40, 9);
    hoist_model *m = tu_open_ok(path);
    sum_ok(m, 1u << 20);
    /* the last tensor of the first chunk: not its first */
    size_t pick = SIZE_MAX;
    for (size_t i = 1; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info t;
        hoist_model_tensor(m, i, &t);
        if (t.nbytes && t.offset + t.nbytes <= (1u << 20)) pick = i;
    }
    ck_assert_uint_ne(pick, SIZE_MAX);
    hoist_tensor_info t, first;
    hoist_model_tensor(m, pick, &t);
    hoist_model_tensor(m, 0, &first);
    ck_assert_str_ne(t.name, first.name);
    char want[64];
    snprintf(want, sizeof want, "tensor '%s'", t.name);
    uint64_t off = t.offset + t.nbytes - 1;
    hoist_model_free(m);
    flip_byte(path, off);
    m = tu_open_ok(path);
    ck_assert_int_eq(hoist_model_verify(m, NULL), HOIST_E_INTEGRITY);
    ck_assert_msg(strstr(hoist_last_error(), want) && strstr(hoist_last_error(), "chunk 0 "),
                  "%s", hoist_last_error());
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "1 chunks and 1 tensors differ"));
    hoist_model_free(m);
    free(path);
}
END_TEST

/* A changed header (same length, one metadata character) fails before any tensor byte is read. */
START_TEST(test_changed_header)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 10, 4);
    hoist_model *m = tu_open_ok(path);
    sum_ok(m, 0);
    hoist_model_free(m);
    size_t n;
    char *b = tu_read(path, &n);
    char *p = strstr(b + 8, "\"pt\"");
    ck_assert_ptr_nonnull(p);
    p[1] = 'q';
    tu_write(path, b, n);
    free(b);
    m = tu_open_ok(path);
    ck_assert_int_eq(load_verified(m, HOIST_PATH_STREAM, 0, 0, 0, NULL), HOIST_E_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "header"));
    ck_assert_int_eq(hoist_model_verify(m, NULL), HOIST_E_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "header"));
    hoist_model_free(m);
    free(path);
}
END_TEST

/* A manifest of another model, of a file that grew, or none at all. */
START_TEST(test_other_files_and_missing_manifest)
{
    char *a = tu_path(dir, "a.safetensors"), *b = tu_path(dir, "b.safetensors");
    tu_write_odd_model(a, 12, 1);
    tu_write_odd_model(b, 14, 1);
    hoist_model *ma = tu_open_ok(a), *mb = tu_open_ok(b);
    ck_assert_int_eq(hoist_model_verify(ma, NULL), HOIST_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "hoist sum"));
    ck_assert_int_eq(load_verified(ma, HOIST_PATH_MMAP, 0, 0, 0, NULL), HOIST_E_NOT_FOUND);
    sum_ok(ma, 0);
    hoist_sum_options so = HOIST_SUM_OPTIONS_DEFAULT;
    so.manifest = hoist_model_manifest_path(ma);
    ck_assert_int_eq(hoist_model_verify(mb, &so), HOIST_E_BAD_MANIFEST);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.verify = HOIST_VERIFY_MANIFEST;
    o.manifest = hoist_model_manifest_path(ma);
    hoist_weights *w = (hoist_weights *)1;
    ck_assert_int_eq(hoist_load(mb, &o, &w), HOIST_E_BAD_MANIFEST);
    ck_assert_ptr_null(w);
    /* a.safetensors with one more tensor byte at the end: strict open refuses it, a lenient one
     * sees a size the manifest does not have */
    FILE *f = fopen(a, "ab");
    fputc(0, f);
    fclose(f);
    hoist_model_free(ma);
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    oo.strict = 0;
    ck_assert_int_eq(hoist_model_open(a, &oo, &ma), HOIST_OK);
    ck_assert_int_eq(hoist_model_verify(ma, NULL), HOIST_E_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "bytes, the manifest"));
    hoist_sum_options bad = HOIST_SUM_OPTIONS_DEFAULT;
    bad.chunk_bytes = 3000;
    ck_assert_int_eq(hoist_model_sum(ma, &bad), HOIST_E_INVALID_ARG);
    hoist_model_free(ma);
    hoist_model_free(mb);
    free(a);
    free(b);
}
END_TEST

/* Windows become multiples of the manifest's chunk, also when a RAM budget shrinks them. */
START_TEST(test_windows_follow_the_chunk)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 50, 6);
    hoist_model *m = tu_open_ok(path);
    sum_ok(m, 65536);
    ck_assert_int_eq(load_verified(m, HOIST_PATH_URING, 0, 4096, 2, NULL), HOIST_OK);
    ck_assert_int_eq(load_verified(m, HOIST_PATH_STREAM, 1, 98304, 3, NULL), HOIST_OK);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.path = HOIST_PATH_STREAM;
    o.verify = HOIST_VERIFY_MANIFEST;
    o.threads = 8;
    o.chunk_bytes = 1u << 20;
    o.ram_budget = 700u << 10;
    hoist_weights *w = NULL;
    ck_assert_msg(hoist_load(m, &o, &w) == HOIST_OK, "%s", hoist_last_error());
    hoist_load_stats s = HOIST_LOAD_STATS_INIT;
    ck_assert_int_eq(hoist_weights_stats(w, &s), HOIST_OK);
    ck_assert_uint_le(s.peak_host_bytes, 700u << 10);
    hoist_weights_free(w);
    hoist_model_free(m);
    free(path);
}
END_TEST

/* RELIABILITY case 28 under the manifest check (tests/cut_sweep.h): the window is copied out of
 * the mapping (guarded) before it is hashed. */
static hoist_model *cut_prepare(void *user)
{
    const char *path = user;
    tu_write_odd_model(path, 7, 3); /* about 145 KB: 18 windows */
    hoist_model *m = tu_open_ok(path);
    sum_ok(m, 8192);
    return m;
}

START_TEST(test_truncated_under_the_mapping)
{
    char *path = tu_path(dir, "odd.safetensors");
    cut_sweep c = {.path = path, .verify = HOIST_VERIFY_MANIFEST, .prepare = cut_prepare,
                   .user = path};
    ck_assert_uint_gt(cut_sweep_run(&c), 2);
    free(path);
}
END_TEST

/* ---- handcrafted manifests ---------------------------------------------------------------- */

/* The model good.hoist-sum describes: one U8 tensor, a 100-byte header, 9000 bytes in all. */
static char *write_described_model(void)
{
    char header[93];
    int n = snprintf(header, sizeof header,
                     "{\"w\":{\"dtype\":\"U8\",\"shape\":[8900],\"data_offsets\":[0,8900]}}");
    memset(header + n, ' ', 92 - (size_t)n);
    header[92] = 0;
    char *data = calloc(8900, 1), *path = tu_path(dir, "model.safetensors");
    tu_write_safetensors(path, header, data, 8900);
    free(data);
    return path;
}

START_TEST(test_handcrafted_manifests)
{
    char *model = write_described_model();
    hoist_model *m = tu_open_ok(model);
    char *tsv = tu_data("manifest/cases.tsv");
    FILE *f = fopen(tsv, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256], status[64], needle[256] = "";
        line[strcspn(line, "\n")] = 0;
        ck_assert_int_ge(sscanf(line, "%255[^\t]\t%63[^\t]\t%255[^\n]", name, status, needle), 2);
        char rel[300];
        snprintf(rel, sizeof rel, "manifest/%s", name);
        char *path = tu_data(rel);
        int64_t live = hoist__alloc_live_bytes();
        hoist_sum_options so = HOIST_SUM_OPTIONS_DEFAULT;
        so.manifest = path;
        int rc = hoist_model_verify(m, &so);
        if (strcmp(status, "OK") == 0) {
            /* parsed and matched: only its made-up hashes differ */
            ck_assert_msg(rc == HOIST_E_INTEGRITY, "%s: %s", name, hoist_last_error());
            ck_assert_ptr_nonnull(strstr(hoist_last_error(), "header"));
        } else {
            ck_assert_msg(rc == HOIST_E_BAD_MANIFEST, "%s: %s: %s", name, hoist_status_name(rc),
                          hoist_last_error());
            ck_assert_msg(strstr(hoist_last_error(), needle), "%s: '%s' lacks '%s'", name,
                          hoist_last_error(), needle);
            ck_assert_ptr_nonnull(strstr(hoist_last_error(), name));
            hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
            o.verify = HOIST_VERIFY_MANIFEST;
            o.manifest = path;
            hoist_weights *w = (hoist_weights *)1;
            ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_BAD_MANIFEST);
            ck_assert_ptr_null(w);
        }
        ck_assert_int_eq(hoist__alloc_live_bytes(), live);
        free(path);
        n++;
    }
    fclose(f);
    ck_assert_int_ge(n, 30);
    hoist_model_free(m);
    free(tsv);
    free(model);
}
END_TEST

START_TEST(test_bad_options)
{
    char *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 4, 1);
    hoist_model *m = tu_open_ok(path);
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    o.verify = 8;
    hoist_weights *w = (hoist_weights *)1;
    ck_assert_int_eq(hoist_load(m, &o, &w), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_model_sum(NULL, NULL), HOIST_E_INVALID_ARG);
    ck_assert_int_eq(hoist_model_verify(NULL, NULL), HOIST_E_INVALID_ARG);
    ck_assert_ptr_null(hoist_model_manifest_path(NULL));
    /* a FIFO where the manifest should be: refused by type, never waited on */
    char *fifo = tu_path(dir, "fifo.hoist-sum");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    hoist_sum_options so = HOIST_SUM_OPTIONS_DEFAULT;
    so.manifest = fifo;
    ck_assert_int_eq(hoist_model_verify(m, &so), HOIST_E_NOT_REGULAR);
    hoist_model_free(m);
    free(fifo);
    free(path);
}
END_TEST

START_TEST(test_cli_sum_verify_load)
{
    char args[1024], *path = tu_path(dir, "odd.safetensors");
    tu_write_odd_model(path, 20, 3);
    snprintf(args, sizeof args, "verify '%s' > /dev/null 2>&1", path);
    ck_assert_int_eq(tu_run_cli(args), 1); /* no manifest yet */
    snprintf(args, sizeof args, "sum '%s' --chunk 64K > /dev/null", path);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "verify '%s' > /dev/null", path);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "load '%s' --device host --verify --path uring --csv > /dev/null",
             path);
    ck_assert_int_eq(tu_run_cli(args), 0);
    flip_byte(path, 4000);
    snprintf(args, sizeof args, "verify '%s' > /dev/null 2>&1", path);
    ck_assert_int_eq(tu_run_cli(args), 1);
    snprintf(args, sizeof args, "load '%s' --device host --verify > /dev/null 2>&1", path);
    ck_assert_int_eq(tu_run_cli(args), 1);
    free(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manifest");
    TCase *tc = tcase_create("manifest");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sum_verify_load_odd_model);
    tcase_add_test(tc, test_sharded_model);
    tcase_add_test(tc, test_flipped_byte_fails_naming_tensor_and_chunk);
    tcase_add_test(tc, test_wrong_tensor_hash_fails_verify);
    tcase_add_test(tc, test_wrong_tensor_hash_fails_load);
    tcase_add_test(tc, test_verify_names_the_damaged_tensor);
    tcase_add_test(tc, test_changed_header);
    tcase_add_test(tc, test_other_files_and_missing_manifest);
    tcase_add_test(tc, test_windows_follow_the_chunk);
    tcase_add_test(tc, test_truncated_under_the_mapping);
    tcase_add_test(tc, test_handcrafted_manifests);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_cli_sum_verify_load);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
