/* tools/cmd_inspect.c: `hoist inspect --json` on a sharded model lists every tensor once, with
 * the shard the index names for it. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

START_TEST(test_sharded_json_lists_each_tensor_once)
{
    char *dir = tu_mkdtemp(), args[1024];
    snprintf(args, sizeof args, "gen '%s/m' --preset tiny --shard-size 64K --quiet", dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "inspect '%s/m' --json > '%s/out.json'", dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);

    char path[512];
    json_error_t err;
    snprintf(path, sizeof path, "%s/out.json", dir);
    json_t *out = json_load_file(path, 0, &err);
    ck_assert_msg(out != NULL, "inspect --json is not JSON: %s", err.text);
    snprintf(path, sizeof path, "%s/m/model.safetensors.index.json", dir);
    json_t *index = json_load_file(path, 0, &err);
    ck_assert_ptr_nonnull(index);
    json_t *map = json_object_get(index, "weight_map");

    json_t *tensors = json_object_get(out, "tensors"), *seen = json_object();
    ck_assert_uint_eq(json_array_size(tensors), json_object_size(map));
    ck_assert_uint_gt(json_array_size(json_object_get(out, "files")), 2);
    size_t i;
    json_t *t;
    json_int_t sum = 0;
    json_array_foreach(tensors, i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        ck_assert_ptr_nonnull(name);
        ck_assert_msg(json_object_get(seen, name) == NULL, "%s listed twice", name);
        json_object_set_new(seen, name, json_true());
        ck_assert_str_eq(json_string_value(json_object_get(t, "file")),
                         json_string_value(json_object_get(map, name)));
        sum += json_integer_value(json_object_get(t, "bytes"));
    }
    ck_assert_int_eq(sum, json_integer_value(json_object_get(out, "total_bytes")));
    json_t *bf16 = json_object_get(json_object_get(out, "dtypes"), "BF16");
    ck_assert_ptr_nonnull(bf16);
    ck_assert_int_eq(json_integer_value(json_object_get(bf16, "bytes")), sum);
    json_decref(seen);
    json_decref(index);
    json_decref(out);
    tu_rmtree(dir);
}
END_TEST

/* A GGUF model: ggml dtypes in the histogram, typed metadata, arrays summarised by their head. */
START_TEST(test_gguf_json_and_table)
{
    char *dir = tu_mkdtemp(), args[1024];
    snprintf(args, sizeof args, "gen '%s/m' --preset tiny --format gguf --dtype q8_0 --quiet",
             dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(args, sizeof args, "inspect '%s/m/model.gguf' --json > '%s/out.json'", dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char path[512];
    json_error_t err;
    snprintf(path, sizeof path, "%s/out.json", dir);
    json_t *out = json_load_file(path, 0, &err);
    ck_assert_msg(out != NULL, "inspect --json is not JSON: %s", err.text);
    ck_assert_uint_eq(json_array_size(json_object_get(out, "tensors")), 21);
    json_t *dtypes = json_object_get(out, "dtypes");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(dtypes, "Q8_0"),
                                                        "tensors")),
                     14);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(dtypes, "F16"),
                                                        "tensors")),
                     2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(dtypes, "F32"),
                                                        "tensors")),
                     5);
    /* parameters count elements, not bytes: 34-byte blocks hold 32 */
    ck_assert_int_eq(json_integer_value(json_object_get(out, "parameters")), 123712);
    json_t *meta = json_object_get(out, "metadata"), *types = json_object_get(out, "metadata_types");
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "llama.block_count")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(types, "llama.block_count")), "u32");
    ck_assert_str_eq(json_string_value(json_object_get(meta, "general.architecture")), "llama");
    ck_assert(json_is_real(json_object_get(meta, "llama.rope.freq_base")));
    json_t *tokens = json_object_get(meta, "tokenizer.ggml.tokens");
    ck_assert_str_eq(json_string_value(json_object_get(tokens, "array")), "string");
    ck_assert_int_eq(json_integer_value(json_object_get(tokens, "count")), 256);
    json_t *head = json_object_get(tokens, "head");
    ck_assert_uint_eq(json_array_size(head), 8);
    ck_assert_str_eq(json_string_value(json_array_get(head, 0)), "<unk>");
    json_decref(out);

    snprintf(args, sizeof args, "inspect '%s/m' > '%s/out.txt'", dir, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    char *text = tu_read(path, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "blk.0.attn_q.weight"));
    ck_assert_ptr_nonnull(strstr(text, "Q8_0"));
    ck_assert_ptr_nonnull(strstr(text, "[string x 256] = [\"<unk>\", \"<s>\""));
    ck_assert_ptr_nonnull(strstr(text, "llama.attention.head_count_kv"));
    free(text);
    tu_rmtree(dir);
}
END_TEST

/* ---- hostile bytes: a GGUF written by hand ---- */

typedef struct gb {
    unsigned char b[8192];
    size_t n;
} gb;

static void gb_put(gb *g, const void *p, size_t n)
{
    ck_assert_uint_le(g->n + n, sizeof g->b);
    memcpy(g->b + g->n, p, n);
    g->n += n;
}
static void gb_u32(gb *g, uint32_t v) { gb_put(g, &v, 4); } /* the tests run little-endian */
static void gb_u64(gb *g, uint64_t v) { gb_put(g, &v, 8); }
static void gb_str(gb *g, const char *s, size_t n)
{
    gb_u64(g, n);
    gb_put(g, s, n);
}
/* A key and the type of its value (GGUF's numbering: 4 u32, 6 f32, 8 string, 9 array, 10 u64,
 * 12 f64). */
static void gb_key(gb *g, const char *k, uint32_t type)
{
    gb_str(g, k, strlen(k));
    gb_u32(g, type);
}

/* The GGUF of test_json_escapes_every_byte_string: three F32 tensors of 4 elements, one named
 * with bytes that are not UTF-8, and metadata whose keys and values are not UTF-8, not finite,
 * or beyond INT64_MAX. */
static void write_hostile_gguf(const char *path)
{
    static gb g;
    g.n = 0;
    const char *names[] = {"tok\xff\xfe.weight", "caf\xc3\xa9.weight", "ok.weight"};
    gb_put(&g, "GGUF", 4);
    gb_u32(&g, 3);
    gb_u64(&g, 3);  /* tensors */
    gb_u64(&g, 11); /* metadata entries */
    gb_key(&g, "general.name", 8);
    gb_str(&g, "caf\xe9", 4); /* Latin-1 */
    gb_key(&g, "bad\xffkey", 4);
    gb_u32(&g, 7);
    gb_key(&g, "bad\xfekey", 4);
    gb_u32(&g, 8);
    gb_key(&g, "bad\xef\xbf\xbdkey", 4); /* UTF-8 holding U+FFFD itself */
    gb_u32(&g, 9);
    float nan_f = NAN, ninf_f = -INFINITY;
    double inf_d = INFINITY;
    gb_key(&g, "f.nan", 6);
    gb_put(&g, &nan_f, 4);
    gb_key(&g, "f.inf", 12);
    gb_put(&g, &inf_d, 8);
    gb_key(&g, "f.ninf", 6);
    gb_put(&g, &ninf_f, 4);
    gb_key(&g, "u.big", 10);
    gb_u64(&g, UINT64_MAX);
    gb_key(&g, "arr.f", 9);
    gb_u32(&g, 6);
    gb_u64(&g, 3);
    float fs[3] = {1.5f, NAN, -INFINITY};
    gb_put(&g, fs, sizeof fs);
    gb_key(&g, "arr.u", 9);
    gb_u32(&g, 10);
    gb_u64(&g, 2);
    gb_u64(&g, UINT64_MAX);
    gb_u64(&g, 3);
    gb_key(&g, "arr.s", 9);
    gb_u32(&g, 8);
    gb_u64(&g, 2);
    gb_str(&g, "ok", 2);
    gb_str(&g, "\xff", 1);
    for (int i = 0; i < 3; i++) {
        gb_str(&g, names[i], strlen(names[i]));
        gb_u32(&g, 1);
        gb_u64(&g, 4);
        gb_u32(&g, 0);                /* F32 */
        gb_u64(&g, 32 * (uint64_t)i); /* aligned offsets */
    }
    while (g.n % 32) gb_put(&g, "", 1);
    static const unsigned char zero[96];
    gb_put(&g, zero, sizeof zero); /* 16 bytes each, padded to 32 */
    tu_write(path, g.b, g.n);
}

static json_t *member(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(v != NULL, "no \"%s\"", k);
    return v;
}

/* docs/JSON.md: `inspect --json` keeps every tensor, file and metadata entry whatever its bytes:
 * strings that are not UTF-8 appear in their lossy form beside their exact bytes in hex, keys stay
 * distinct, non-finite floats and u64 values beyond INT64_MAX appear exactly, as strings. */
START_TEST(test_json_escapes_every_byte_string)
{
    char *dir = tu_mkdtemp(), args[1024], path[512];
    snprintf(path, sizeof path, "%s/d\xfe", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/d\xfe/m\xff.gguf", dir);
    write_hostile_gguf(path);
    snprintf(args, sizeof args, "inspect '%s' --json > '%s/out.json'", path, dir);
    ck_assert_int_eq(tu_run_cli(args), 0);
    char out_path[512];
    snprintf(out_path, sizeof out_path, "%s/out.json", dir);
    json_error_t err;
    json_t *out = json_load_file(out_path, 0, &err);
    ck_assert_msg(out != NULL, "inspect --json is not JSON: %s", err.text);

    /* files: the path is not UTF-8 */
    json_t *files = member(out, "files");
    ck_assert_uint_eq(json_array_size(files), 1);
    json_t *f0 = json_array_get(files, 0);
    char want[1024];
    size_t n = 0;
    for (const char *p = path; *p; p++)
        n += (size_t)snprintf(want + n, sizeof want - n, "%02x", (unsigned char)*p);
    ck_assert_str_eq(json_string_value(member(f0, "path_hex")), want);
    ck_assert_ptr_nonnull(
        strstr(json_string_value(member(f0, "path")), "/d\xef\xbf\xbd/m\xef\xbf\xbd.gguf"));

    /* tensors: all three, the bad name lossy beside its bytes, the UTF-8 ones as they are */
    json_t *tensors = member(out, "tensors");
    ck_assert_uint_eq(json_array_size(tensors), 3);
    int seen = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tensors, i, t)
    {
        const char *name = json_string_value(member(t, "name"));
        ck_assert_str_eq(json_string_value(member(t, "file")), "m\xef\xbf\xbd.gguf");
        ck_assert_str_eq(json_string_value(member(t, "file_hex")), "6dff2e67677566");
        if (strcmp(name, "tok\xef\xbf\xbd\xef\xbf\xbd.weight") == 0) {
            ck_assert_str_eq(json_string_value(member(t, "name_hex")), "746f6bfffe2e776569676874");
            seen |= 1;
        } else {
            ck_assert_ptr_null(json_object_get(t, "name_hex"));
            if (strcmp(name, "caf\xc3\xa9.weight") == 0) seen |= 2;
            if (strcmp(name, "ok.weight") == 0) seen |= 4;
        }
    }
    ck_assert_int_eq(seen, 7);

    /* metadata: every entry, the keys distinct */
    json_t *meta = member(out, "metadata"), *types = member(out, "metadata_types");
    json_t *hex = member(out, "metadata_hex");
    ck_assert_uint_eq(json_object_size(meta), 11);
    ck_assert_uint_eq(json_object_size(types), 11);
    ck_assert_str_eq(json_string_value(member(meta, "general.name")), "caf\xef\xbf\xbd");
    ck_assert_str_eq(json_string_value(member(member(hex, "general.name"), "value_hex")),
                     "636166e9");
    /* the UTF-8 key holding U+FFFD keeps its own key; the two that are not UTF-8 are numbered */
    ck_assert_int_eq(json_integer_value(member(meta, "bad\xef\xbf\xbdkey")), 9);
    ck_assert_ptr_null(json_object_get(hex, "bad\xef\xbf\xbdkey"));
    int keys = 0;
    for (int c = 2; c <= 3; c++) {
        char k[64];
        snprintf(k, sizeof k, "bad\xef\xbf\xbdkey#%d", c);
        json_int_t v = json_integer_value(member(meta, k));
        const char *kh = json_string_value(member(member(hex, k), "key_hex"));
        if (v == 7) {
            ck_assert_str_eq(kh, "626164ff6b6579");
            keys |= 1;
        }
        if (v == 8) {
            ck_assert_str_eq(kh, "626164fe6b6579");
            keys |= 2;
        }
    }
    ck_assert_int_eq(keys, 3);
    /* numbers JSON cannot carry exactly here */
    ck_assert_str_eq(json_string_value(member(meta, "f.nan")), "nan");
    ck_assert_str_eq(json_string_value(member(meta, "f.inf")), "inf");
    ck_assert_str_eq(json_string_value(member(meta, "f.ninf")), "-inf");
    ck_assert_str_eq(json_string_value(member(types, "f.inf")), "f64");
    ck_assert_str_eq(json_string_value(member(meta, "u.big")), "18446744073709551615");
    json_t *head = member(member(meta, "arr.f"), "head");
    ck_assert(json_real_value(json_array_get(head, 0)) == 1.5);
    ck_assert_str_eq(json_string_value(json_array_get(head, 1)), "nan");
    ck_assert_str_eq(json_string_value(json_array_get(head, 2)), "-inf");
    head = member(member(meta, "arr.u"), "head");
    ck_assert_str_eq(json_string_value(json_array_get(head, 0)), "18446744073709551615");
    ck_assert_int_eq(json_integer_value(json_array_get(head, 1)), 3);
    json_t *arr_s = member(meta, "arr.s");
    ck_assert_str_eq(json_string_value(json_array_get(member(arr_s, "head"), 1)), "\xef\xbf\xbd");
    ck_assert(json_is_null(json_array_get(member(arr_s, "head_hex"), 0)));
    ck_assert_str_eq(json_string_value(json_array_get(member(arr_s, "head_hex"), 1)), "ff");
    json_decref(out);
    tu_rmtree(dir);
}
END_TEST

START_TEST(test_bad_file_fails_with_message)
{
    char *bad = tu_data("safetensors/c09_gap.safetensors");
    char args[1024];
    snprintf(args, sizeof args, "inspect '%s' > /dev/null 2>&1", bad);
    ck_assert_int_eq(tu_run_cli(args), 1);
    free(bad);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inspect");
    TCase *tc = tcase_create("cli");
    tcase_add_test(tc, test_sharded_json_lists_each_tensor_once);
    tcase_add_test(tc, test_bad_file_fails_with_message);
    tcase_add_test(tc, test_gguf_json_and_table);
    tcase_add_test(tc, test_json_escapes_every_byte_string);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
