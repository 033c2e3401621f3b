/* GGUF parser (formats/gguf.c): docs/RELIABILITY.md cases 16-24, one handcrafted file per failure mode
 * (tests/data/gguf, see its README.md), every metadata value type, every ggml tensor type's
 * size, and the cases built at test time. */
#include "core/core.h"
#include "core/io.h"
#include "testutil.h"

#include "formats/table.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_data(const char *name, int strict, hoist__table *t)
{
    char rel[256];
    snprintf(rel, sizeof rel, "gguf/%s", name);
    char *path = tu_data(rel);
    hoist__table_init(t);
    int rc = hoist__gguf_parse(t, path, strict);
    free(path);
    return rc;
}

static void parse_ok(const char *name, hoist__table *t)
{
    int rc = parse_data(name, 1, t);
    ck_assert_msg(rc == HOIST_OK, "%s: %s: %s", name, hoist_status_name(rc), hoist_last_error());
}

/* ---- every bad file: exact status, a message naming the file and what else it must name ---- */

typedef struct bad_case {
    const char *file;
    int status;
    const char *want; /* a further substring of the message, or NULL */
} bad_case;

static const bad_case BAD[] = {
    /* 16 */
    {"c16_empty.gguf", HOIST_E_TRUNCATED_HEADER, "0 bytes"},
    {"c16_short.gguf", HOIST_E_TRUNCATED_HEADER, "23 bytes"},
    {"c16_bad_magic.gguf", HOIST_E_BAD_MAGIC, "47 47 55 47"},
    {"c16_magic_lowercase.gguf", HOIST_E_BAD_MAGIC, "byte 0"},
    {"c16_safetensors_named_gguf.gguf", HOIST_E_BAD_MAGIC, "bad magic"},
    {"c16_version_0.gguf", HOIST_E_BAD_VERSION, "version 0"},
    {"c16_version_1.gguf", HOIST_E_BAD_VERSION, "version 1"},
    {"c16_version_4.gguf", HOIST_E_BAD_VERSION, "version 4"},
    {"c16_version_u32max.gguf", HOIST_E_BAD_VERSION, "4294967295"},
    {"c16_big_endian.gguf", HOIST_E_BAD_VERSION, "big-endian file?"},
    /* 17 */
    {"c17_tensor_count_2pow63.gguf", HOIST_E_TOO_MANY, "tensor count 9223372036854775808"},
    {"c17_tensor_count_u64max.gguf", HOIST_E_TOO_MANY, "18446744073709551615"},
    {"c17_kv_count_2pow63.gguf", HOIST_E_TOO_MANY, "key-value count 9223372036854775808"},
    {"c17_kv_count_u64max.gguf", HOIST_E_TOO_MANY, "key-value count 18446744073709551615"},
    {"c17_tensor_count_past_eof.gguf", HOIST_E_TRUNCATED_HEADER, "1000 tensors"},
    {"c17_kv_count_past_eof.gguf", HOIST_E_TRUNCATED_HEADER, "100 key-value pairs"},
    /* 18 */
    {"c18_key_len_u64max.gguf", HOIST_E_TRUNCATED_HEADER, "string length 18446744073709551615"},
    {"c18_key_len_past_eof.gguf", HOIST_E_TRUNCATED_HEADER, "string length 1000"},
    {"c18_value_len_u64max.gguf", HOIST_E_TRUNCATED_HEADER, "'general.architecture'"},
    {"c18_value_len_one_past.gguf", HOIST_E_TRUNCATED_HEADER, "'general.name'"},
    {"c18_array_string_len_u64max.gguf", HOIST_E_TRUNCATED_HEADER, "'tokenizer.ggml.tokens'"},
    {"c18_tensor_name_len_u64max.gguf", HOIST_E_BAD_TENSOR, "18446744073709551615 bytes"},
    {"c18_empty_key.gguf", HOIST_E_BAD_METADATA, "empty key"},
    {"c18_key_nul.gguf", HOIST_E_BAD_METADATA, "NUL"},
    /* 19 */
    {"c19_value_type_13.gguf", HOIST_E_BAD_METADATA, "value type 13"},
    {"c19_value_type_u32max.gguf", HOIST_E_BAD_METADATA, "value type 4294967295"},
    {"c19_array_type_13.gguf", HOIST_E_BAD_METADATA, "element type 13"},
    {"c19_nested_array.gguf", HOIST_E_BAD_METADATA, "nested array"},
    {"c19_array_u64_overflow.gguf", HOIST_E_OVERFLOW, "2305843009213693952 elements of u64"},
    {"c19_array_f64_overflow.gguf", HOIST_E_OVERFLOW, "elements of f64"},
    {"c19_array_string_overflow.gguf", HOIST_E_OVERFLOW, "2305843009213693952 strings"},
    {"c19_array_past_eof.gguf", HOIST_E_TRUNCATED_HEADER, "1000000 elements of u8"},
    {"c19_array_strings_past_eof.gguf", HOIST_E_TRUNCATED_HEADER, "100000 strings"},
    {"c19_bool_2.gguf", HOIST_E_BAD_METADATA, "holds 2"},
    {"c19_bool_array_255.gguf", HOIST_E_BAD_METADATA, "holds 255"},
    /* 20 */
    {"c20_dup_key.gguf", HOIST_E_DUPLICATE_KEY, "'general.architecture' appears twice"},
    {"c20_dup_tensor.gguf", HOIST_E_DUPLICATE_KEY, "tensor 'a' appears twice"},
    {"c20_name_64.gguf", HOIST_E_BAD_TENSOR, "64 bytes"},
    {"c20_name_empty.gguf", HOIST_E_BAD_TENSOR, "empty name"},
    {"c20_name_nul.gguf", HOIST_E_BAD_TENSOR, "NUL"},
    /* 21 */
    {"c21_alignment_u64.gguf", HOIST_E_BAD_METADATA, "has type u64, not u32"},
    {"c21_alignment_i32.gguf", HOIST_E_BAD_METADATA, "has type i32, not u32"},
    {"c21_alignment_string.gguf", HOIST_E_BAD_METADATA, "has type string"},
    {"c21_alignment_array.gguf", HOIST_E_BAD_METADATA, "has type array"},
    {"c21_alignment_zero.gguf", HOIST_E_BAD_METADATA, "is 0, not a power of two"},
    {"c21_alignment_48.gguf", HOIST_E_BAD_METADATA, "is 48, not a power of two"},
    {"c21_alignment_u32max.gguf", HOIST_E_BAD_METADATA, "4294967295"},
    /* 22 */
    {"c22_ndims_0.gguf", HOIST_E_BAD_TENSOR, "n_dims 0"},
    {"c22_ndims_5.gguf", HOIST_E_BAD_TENSOR, "n_dims 5"},
    {"c22_dim_zero.gguf", HOIST_E_BAD_TENSOR, "ne[0] is 0"},
    {"c22_dim_zero_inner.gguf", HOIST_E_BAD_TENSOR, "ne[1] is 0"},
    {"c22_dim_negative.gguf", HOIST_E_BAD_TENSOR, "ne[1] is -1"},
    {"c22_dim_2pow63.gguf", HOIST_E_BAD_TENSOR, "9223372036854775808 as read"},
    {"c22_elements_overflow.gguf", HOIST_E_OVERFLOW, "element count"},
    {"c22_elements_2pow63.gguf", HOIST_E_OVERFLOW, "element count"},
    {"c22_bytes_overflow.gguf", HOIST_E_OVERFLOW, "elements of F64"},
    /* 23 */
    {"c23_type_43.gguf", HOIST_E_BAD_DTYPE, "unknown ggml type 43"},
    {"c23_type_u32max.gguf", HOIST_E_BAD_DTYPE, "unknown ggml type 4294967295"},
    {"c23_type_retired_4.gguf", HOIST_E_BAD_DTYPE, "4 (Q4_2)"},
    {"c23_type_retired_31.gguf", HOIST_E_BAD_DTYPE, "31 (Q4_0_4_4)"},
    {"c23_type_retired_36.gguf", HOIST_E_BAD_DTYPE, "36 (IQ4_NL_4_4)"},
    {"c23_q8_0_ne0_31.gguf", HOIST_E_SIZE_MISMATCH, "ne[0] = 31 is not a multiple of Q8_0's"},
    {"c23_q4_k_ne0_128.gguf", HOIST_E_SIZE_MISMATCH, "Q4_K's 256-element block"},
    {"c23_q8_0_blocks_on_ne1.gguf", HOIST_E_SIZE_MISMATCH, "ne[0] = 16"},
    /* 24 */
    {"c24_unaligned.gguf", HOIST_E_BAD_OFFSETS, "tensor 'b'"},
    {"c24_first_not_zero.gguf", HOIST_E_LAYOUT, "must start at 0"},
    {"c24_gap.gguf", HOIST_E_LAYOUT, "gap after the previous tensor 'a'"},
    {"c24_overlap.gguf", HOIST_E_LAYOUT, "overlaps the previous tensor 'a'"},
    {"c24_same_offset.gguf", HOIST_E_LAYOUT, "overlaps the previous tensor 'a'"},
    {"c24_out_of_order.gguf", HOIST_E_LAYOUT, "out of order"},
    {"c24_truncated.gguf", HOIST_E_TRUNCATED, "tensor 'b'"},
    {"c24_no_data.gguf", HOIST_E_TRUNCATED, "tensor 'a'"},
    {"c24_wraps.gguf", HOIST_E_BAD_OFFSETS, "wraps"},
    {"c24_trailing.gguf", HOIST_E_TRAILING_BYTES, "1 trailing"},
    {"c24_trailing_no_tensors.gguf", HOIST_E_TRAILING_BYTES, "33 trailing"},
};
#define NBAD ((int)(sizeof BAD / sizeof BAD[0]))

START_TEST(bad_file)
{
    const bad_case *c = &BAD[_i];
    hoist__table t;
    int rc = parse_data(c->file, 1, &t);
    const char *msg = hoist_last_error();
    ck_assert_msg(rc == c->status, "%s: got %s, want %s (%s)", c->file, hoist_status_name(rc),
                  hoist_status_name(c->status), msg);
    ck_assert_msg(strstr(msg, c->file) != NULL, "%s: message does not name the file: %s", c->file,
                  msg);
    if (c->want)
        ck_assert_msg(strstr(msg, c->want) != NULL, "%s: message lacks \"%s\": %s", c->file,
                      c->want, msg);
    /* nothing published for a bad file */
    ck_assert_uint_eq(t.nfiles, 0);
    ck_assert_uint_eq(t.ntensors, 0);
    ck_assert_uint_eq(t.nmeta, 0);
    hoist__table_free(&t);
}
END_TEST

static const char *const VALID[] = {
    "v_value_types.gguf", "v_tensor_types.gguf", "v_version2.gguf",      "v_empty.gguf",
    "v_no_tensors.gguf",  "v_alignment_64.gguf", "v_alignment_1.gguf",   "v_name_63.gguf",
    "v_last_unpadded.gguf", "v_dims.gguf",
    /* geometries for test_geometry.c */
    "g_typed.gguf", "g_block_count_f32.gguf", "g_heads_negative.gguf", "g_eps_array.gguf",
    "g_ffn_bool.gguf",
};

START_TEST(valid_file)
{
    hoist__table t;
    parse_ok(VALID[_i], &t);
    ck_assert_uint_eq(t.nfiles, 1);
    ck_assert_int_eq(hoist__table_finish(&t), HOIST_OK);
    hoist__table_free(&t);
}
END_TEST

/* Every file in tests/data/gguf is in one of the lists above, and every row of its README too. */
START_TEST(every_file_is_tested)
{
    char *dir = tu_data("gguf");
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 5, ".gguf") != 0) continue;
        bool found = false;
        for (int i = 0; i < NBAD; i++) found |= strcmp(BAD[i].file, de->d_name) == 0;
        for (size_t i = 0; i < sizeof VALID / sizeof *VALID; i++)
            found |= strcmp(VALID[i], de->d_name) == 0;
        ck_assert_msg(found, "%s has no test", de->d_name);
        n++;
    }
    closedir(d);
    ck_assert_int_eq(n, NBAD + (int)(sizeof VALID / sizeof *VALID));
    char *readme = tu_path(dir, "README.md");
    char *text = tu_read(readme, NULL);
    ck_assert_ptr_nonnull(text);
    for (int i = 0; i < NBAD; i++) {
        char row[160];
        snprintf(row, sizeof row, "| `%s` | %.2s | %s |", BAD[i].file, BAD[i].file + 1,
                 hoist_status_name(BAD[i].status) + strlen("HOIST_E_"));
        ck_assert_msg(strstr(text, row) != NULL, "README row for %s differs (want %s)",
                      BAD[i].file, row);
    }
    free(text);
    free(readme);
    free(dir);
}
END_TEST

/* ---- every metadata value type ---- */

static const hoist__meta *meta(const hoist__table *t, const char *key)
{
    long i = hoist__table_find_meta(t, key);
    ck_assert_msg(i >= 0, "no key %s", key);
    return &t->meta[i];
}

static void expect_scalar(const hoist__table *t, const char *key, hoist_meta_type type,
                          const char *text)
{
    const hoist__meta *m = meta(t, key);
    ck_assert_msg(m->type == type, "%s: type %s, want %s", key, hoist_meta_type_name(m->type),
                  hoist_meta_type_name(type));
    ck_assert_uint_eq(m->count, 1);
    ck_assert_str_eq(m->value, text);
}

START_TEST(value_types)
{
    hoist__table t;
    parse_ok("v_value_types.gguf", &t);
    ck_assert_uint_eq(t.nmeta, 1 + 14 + 14);
    ck_assert_str_eq(t.meta[0].key, "general.architecture"); /* file order */
    ck_assert_str_eq(t.meta[1].key, "t.u8");
    expect_scalar(&t, "t.u8", HOIST_META_U8, "255");
    ck_assert_uint_eq(meta(&t, "t.u8")->num.u, 255);
    expect_scalar(&t, "t.i8", HOIST_META_I8, "-128");
    ck_assert_int_eq(meta(&t, "t.i8")->num.i, -128);
    expect_scalar(&t, "t.u16", HOIST_META_U16, "65535");
    expect_scalar(&t, "t.i16", HOIST_META_I16, "-32768");
    ck_assert_int_eq(meta(&t, "t.i16")->num.i, -32768);
    expect_scalar(&t, "t.u32", HOIST_META_U32, "4294967295");
    ck_assert_uint_eq(meta(&t, "t.u32")->num.u, 4294967295u);
    expect_scalar(&t, "t.i32", HOIST_META_I32, "-2147483648");
    ck_assert_int_eq(meta(&t, "t.i32")->num.i, -2147483647 - 1);
    expect_scalar(&t, "t.f32", HOIST_META_F32, "3.5");
    ck_assert(meta(&t, "t.f32")->num.f == 3.5);
    expect_scalar(&t, "t.bool", HOIST_META_BOOL, "true");
    ck_assert_uint_eq(meta(&t, "t.bool")->num.u, 1);
    expect_scalar(&t, "t.string", HOIST_META_STRING, "h\xc3\xa9llo");
    ck_assert_uint_eq(meta(&t, "t.string")->str_len, 6);
    expect_scalar(&t, "t.u64", HOIST_META_U64, "18446744073709551615");
    ck_assert_uint_eq(meta(&t, "t.u64")->num.u, UINT64_MAX);
    expect_scalar(&t, "t.i64", HOIST_META_I64, "-9223372036854775808");
    ck_assert(meta(&t, "t.i64")->num.i == INT64_MIN);
    expect_scalar(&t, "t.f64", HOIST_META_F64, "-0.10000000000000001");
    ck_assert(meta(&t, "t.f64")->num.f == -0.1);
    const hoist__meta *nul = meta(&t, "t.string_nul");
    ck_assert_uint_eq(nul->str_len, 3);
    ck_assert_mem_eq(nul->value, "a\0b", 4);
    expect_scalar(&t, "t.string_empty", HOIST_META_STRING, "");

    /* arrays of every element type */
    static const struct {
        const char *key;
        hoist_meta_type et;
        uint64_t count;
        const char *text;
    } arrays[] = {
        {"a.u8", HOIST_META_U8, 3, "[u8 x 3]"},        {"a.i8", HOIST_META_I8, 2, "[i8 x 2]"},
        {"a.u16", HOIST_META_U16, 1, "[u16 x 1]"},     {"a.i16", HOIST_META_I16, 3, "[i16 x 3]"},
        {"a.u32", HOIST_META_U32, 2, "[u32 x 2]"},     {"a.i32", HOIST_META_I32, 1, "[i32 x 1]"},
        {"a.f32", HOIST_META_F32, 2, "[f32 x 2]"},     {"a.bool", HOIST_META_BOOL, 4, "[bool x 4]"},
        {"a.string", HOIST_META_STRING, 3, "[string x 3]"},
        {"a.u64", HOIST_META_U64, 2, "[u64 x 2]"},     {"a.i64", HOIST_META_I64, 1, "[i64 x 1]"},
        {"a.f64", HOIST_META_F64, 1, "[f64 x 1]"},     {"a.empty", HOIST_META_U32, 0, "[u32 x 0]"},
        {"a.empty_strings", HOIST_META_STRING, 0, "[string x 0]"},
    };
    for (size_t i = 0; i < sizeof arrays / sizeof *arrays; i++) {
        const hoist__meta *m = meta(&t, arrays[i].key);
        ck_assert_int_eq(m->type, HOIST_META_ARRAY);
        ck_assert_int_eq(m->elem_type, arrays[i].et);
        ck_assert_uint_eq(m->count, arrays[i].count);
        ck_assert_str_eq(m->value, arrays[i].text);
    }
    const uint8_t *u8 = meta(&t, "a.u8")->array;
    ck_assert(u8[0] == 0 && u8[1] == 1 && u8[2] == 255);
    const int8_t *i8 = meta(&t, "a.i8")->array;
    ck_assert(i8[0] == -1 && i8[1] == 2);
    ck_assert_uint_eq(((const uint16_t *)meta(&t, "a.u16")->array)[0], 65535);
    const int16_t *i16 = meta(&t, "a.i16")->array;
    ck_assert(i16[0] == -2 && i16[1] == 3 && i16[2] == -4);
    const uint32_t *u32 = meta(&t, "a.u32")->array;
    ck_assert(u32[0] == 7 && u32[1] == 8);
    ck_assert_int_eq(((const int32_t *)meta(&t, "a.i32")->array)[0], -5);
    const float *f32 = meta(&t, "a.f32")->array;
    ck_assert(f32[0] == 0.5f && f32[1] == -2.0f);
    ck_assert_mem_eq(meta(&t, "a.bool")->array, "\x01\x00\x01\x01", 4);
    const uint64_t *u64 = meta(&t, "a.u64")->array;
    ck_assert(u64[0] == UINT64_MAX && u64[1] == 0);
    ck_assert(((const int64_t *)meta(&t, "a.i64")->array)[0] == INT64_MIN);
    ck_assert(((const double *)meta(&t, "a.f64")->array)[0] == 1e300);
    const hoist__meta *strs = meta(&t, "a.string");
    char **sv = strs->array;
    ck_assert_str_eq(sv[0], "<unk>");
    ck_assert_str_eq(sv[1], "");
    ck_assert_str_eq(sv[2], "\xe2\x96\x81the");
    ck_assert(strs->str_lens[0] == 5 && strs->str_lens[1] == 0 && strs->str_lens[2] == 6);
    ck_assert_ptr_null(meta(&t, "a.empty")->array);
    ck_assert_uint_eq(t.ntensors, 1);
    hoist__table_free(&t);
}
END_TEST

/* The same values through the public API of an opened model. */
START_TEST(value_types_public)
{
    char *path = tu_data("gguf/v_value_types.gguf");
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(path, NULL, &m), HOIST_OK);
    ck_assert_uint_eq(hoist_model_metadata_count(m), 29);
    hoist_meta_value v = HOIST_META_VALUE_INIT;
    const char *key;
    ck_assert_int_eq(hoist_model_metadata_value(m, 0, &key, &v), HOIST_OK);
    ck_assert_str_eq(key, "general.architecture");
    ck_assert_int_eq(v.type, HOIST_META_STRING);
    ck_assert_str_eq(v.str, "llama");
    ck_assert_uint_eq(v.str_len, 5);
    ck_assert_str_eq(hoist_model_metadata_get(m, "general.architecture"), "llama");
    ck_assert_int_eq(hoist_model_metadata_find(m, "t.i64", &v), HOIST_OK);
    ck_assert(v.type == HOIST_META_I64 && v.num.i == INT64_MIN && v.count == 1);
    ck_assert_int_eq(hoist_model_metadata_find(m, "t.f32", &v), HOIST_OK);
    ck_assert(v.num.f == 3.5);
    ck_assert_int_eq(hoist_model_metadata_find(m, "a.string", &v), HOIST_OK);
    ck_assert(v.type == HOIST_META_ARRAY && v.elem_type == HOIST_META_STRING && v.count == 3);
    ck_assert_str_eq(((const char *const *)v.array)[2], "\xe2\x96\x81the");
    ck_assert_uint_eq(v.str_lens[2], 6);
    ck_assert_str_eq(v.text, "[string x 3]");
    ck_assert_int_eq(hoist_model_metadata_find(m, "a.i16", &v), HOIST_OK);
    ck_assert_uint_eq(hoist_meta_type_size(v.elem_type), 2);
    ck_assert_int_eq(((const int16_t *)v.array)[2], -4);
    ck_assert_int_eq(hoist_model_metadata_find(m, "nope", &v), HOIST_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "nope"));
    ck_assert_ptr_null(hoist_model_metadata_get(m, "nope"));
    ck_assert_int_eq(hoist_model_metadata_value(m, 29, &key, &v), HOIST_E_INVALID_ARG);
    ck_assert_str_eq(hoist_meta_type_name(HOIST_META_F64), "f64");
    ck_assert_str_eq(hoist_meta_type_name((hoist_meta_type)13), "?");
    ck_assert_uint_eq(hoist_meta_type_size(HOIST_META_STRING), 0);
    ck_assert_uint_eq(hoist_meta_type_size(HOIST_META_U64), 8);
    hoist_model_free(m);
    free(path);
}
END_TEST

/* ---- every ggml tensor type ---- */

/* ggml's types, from its type_traits, written out here independently of formats/gguf.c. */
static const struct {
    uint32_t id;
    hoist_dtype dtype;
    const char *name;
    unsigned block, bytes;
} GGML[] = {
    {0, HOIST_DTYPE_F32, "F32", 1, 4},           {1, HOIST_DTYPE_F16, "F16", 1, 2},
    {2, HOIST_DTYPE_Q4_0, "Q4_0", 32, 18},       {3, HOIST_DTYPE_Q4_1, "Q4_1", 32, 20},
    {6, HOIST_DTYPE_Q5_0, "Q5_0", 32, 22},       {7, HOIST_DTYPE_Q5_1, "Q5_1", 32, 24},
    {8, HOIST_DTYPE_Q8_0, "Q8_0", 32, 34},       {9, HOIST_DTYPE_Q8_1, "Q8_1", 32, 36},
    {10, HOIST_DTYPE_Q2_K, "Q2_K", 256, 84},     {11, HOIST_DTYPE_Q3_K, "Q3_K", 256, 110},
    {12, HOIST_DTYPE_Q4_K, "Q4_K", 256, 144},    {13, HOIST_DTYPE_Q5_K, "Q5_K", 256, 176},
    {14, HOIST_DTYPE_Q6_K, "Q6_K", 256, 210},    {15, HOIST_DTYPE_Q8_K, "Q8_K", 256, 292},
    {16, HOIST_DTYPE_IQ2_XXS, "IQ2_XXS", 256, 66}, {17, HOIST_DTYPE_IQ2_XS, "IQ2_XS", 256, 74},
    {18, HOIST_DTYPE_IQ3_XXS, "IQ3_XXS", 256, 98}, {19, HOIST_DTYPE_IQ1_S, "IQ1_S", 256, 50},
    {20, HOIST_DTYPE_IQ4_NL, "IQ4_NL", 32, 18},  {21, HOIST_DTYPE_IQ3_S, "IQ3_S", 256, 110},
    {22, HOIST_DTYPE_IQ2_S, "IQ2_S", 256, 82},   {23, HOIST_DTYPE_IQ4_XS, "IQ4_XS", 256, 136},
    {24, HOIST_DTYPE_I8, "I8", 1, 1},            {25, HOIST_DTYPE_I16, "I16", 1, 2},
    {26, HOIST_DTYPE_I32, "I32", 1, 4},          {27, HOIST_DTYPE_I64, "I64", 1, 8},
    {28, HOIST_DTYPE_F64, "F64", 1, 8},          {29, HOIST_DTYPE_IQ1_M, "IQ1_M", 256, 56},
    {30, HOIST_DTYPE_BF16, "BF16", 1, 2},        {34, HOIST_DTYPE_TQ1_0, "TQ1_0", 256, 54},
    {35, HOIST_DTYPE_TQ2_0, "TQ2_0", 256, 66},   {39, HOIST_DTYPE_MXFP4, "MXFP4", 32, 17},
    {40, HOIST_DTYPE_NVFP4, "NVFP4", 64, 36},    {41, HOIST_DTYPE_Q1_0, "Q1_0", 128, 18},
    {42, HOIST_DTYPE_Q2_0, "Q2_0", 64, 18},
};
#define NGGML (sizeof GGML / sizeof GGML[0])

/* v_tensor_types.gguf: tensor t_NAME of each type, ne [2 blocks, 3], laid out in id order. */
START_TEST(tensor_types)
{
    hoist__table t;
    parse_ok("v_tensor_types.gguf", &t);
    ck_assert_uint_eq(t.ntensors, NGGML);
    uint64_t ds = t.files[0].data_start, off = 0;
    ck_assert_uint_eq(ds % 32, 0);
    for (size_t i = 0; i < NGGML; i++) {
        const hoist__tensor *x = &t.tensors[i];
        char name[32];
        snprintf(name, sizeof name, "t_%s", GGML[i].name);
        ck_assert_str_eq(x->name, name);
        ck_assert_msg(x->dtype == GGML[i].dtype, "%s: dtype %s", name, hoist_dtype_name(x->dtype));
        ck_assert_str_eq(hoist_dtype_name(x->dtype), GGML[i].name);
        ck_assert_uint_eq(x->ndim, 2);
        ck_assert_int_eq(x->shape[0], 3);                  /* ne reversed */
        ck_assert_int_eq(x->shape[1], 2 * GGML[i].block);
        ck_assert_uint_eq(x->nbytes, 2ull * GGML[i].bytes * 3);
        ck_assert_uint_eq(x->offset, ds + off);
        off = (off + x->nbytes + 31) / 32 * 32;
        /* the public table agrees */
        ck_assert_uint_eq(hoist_dtype_block_elems(GGML[i].dtype), GGML[i].block);
        ck_assert_uint_eq(hoist_dtype_block_bytes(GGML[i].dtype), GGML[i].bytes);
        unsigned bits = GGML[i].bytes * 8 % GGML[i].block ? 0 : GGML[i].bytes * 8 / GGML[i].block;
        ck_assert_uint_eq(hoist_dtype_bits(GGML[i].dtype), bits);
        /* and the generic size rule: blocks along the innermost dimension */
        uint64_t n;
        int64_t shape[2] = {3, 2 * (int64_t)GGML[i].block};
        ck_assert_int_eq(hoist__tensor_bytes(name, GGML[i].dtype, 2, shape, &n), HOIST_OK);
        ck_assert_uint_eq(n, x->nbytes);
        if (GGML[i].block > 1) {
            shape[1] = GGML[i].block + 1;
            ck_assert_int_eq(hoist__tensor_bytes(name, GGML[i].dtype, 2, shape, &n),
                             HOIST_E_SIZE_MISMATCH);
        }
    }
    ck_assert_uint_eq(t.files[0].size, ds + off);
    /* every block type of the public list is a ggml type of this table */
    for (int d = HOIST_DTYPE_LAST_SAFETENSORS + 1; d < HOIST_DTYPE_COUNT; d++) {
        bool found = false;
        for (size_t i = 0; i < NGGML; i++) found |= GGML[i].dtype == (hoist_dtype)d;
        ck_assert_msg(found, "%s is in no GGUF type", hoist_dtype_name((hoist_dtype)d));
    }
    ck_assert_str_eq(hoist_dtype_name(HOIST_DTYPE_COUNT), "?");
    ck_assert_uint_eq(hoist_dtype_block_elems(HOIST_DTYPE_COUNT), 0);
    ck_assert_uint_eq(hoist_dtype_block_bytes(HOIST_DTYPE_COUNT), 0);
    ck_assert_uint_eq(hoist_dtype_bits(HOIST_DTYPE_Q4_0), 0);  /* 4.5 bits */
    ck_assert_uint_eq(hoist_dtype_bits(HOIST_DTYPE_Q4_K), 0);  /* 4.5 */
    ck_assert_uint_eq(hoist_dtype_bits(HOIST_DTYPE_Q1_0), 0);  /* 1.125 */
    ck_assert_uint_eq(hoist_dtype_bits(HOIST_DTYPE_F6_E2M3), 6);
    hoist__table_free(&t);
}
END_TEST

/* ---- the other valid files ---- */

static void expect_tensor(const hoist__table *t, size_t i, const char *name, hoist_dtype dtype,
                          uint32_t ndim, const int64_t *shape, uint64_t offset, uint64_t nbytes)
{
    ck_assert_uint_lt(i, t->ntensors);
    const hoist__tensor *x = &t->tensors[i];
    ck_assert_str_eq(x->name, name);
    ck_assert_msg(x->dtype == dtype, "%s: dtype %s", name, hoist_dtype_name(x->dtype));
    ck_assert_uint_eq(x->ndim, ndim);
    for (uint32_t d = 0; d < ndim; d++) ck_assert_int_eq(x->shape[d], shape[d]);
    ck_assert_uint_eq(x->offset, offset);
    ck_assert_uint_eq(x->nbytes, nbytes);
}

/* Header length of the files of make_gguf_cases.py: 24 + key-values + tensor infos. */
static uint64_t kv_string_bytes(const char *key, const char *value)
{
    return 8 + strlen(key) + 4 + 8 + strlen(value);
}

static uint64_t info_bytes(const char *name, uint32_t ndims)
{
    return 8 + strlen(name) + 4 + 8ull * ndims + 4 + 8;
}

START_TEST(version2_and_layout)
{
    hoist__table t;
    parse_ok("v_version2.gguf", &t);
    uint64_t head = 24 + kv_string_bytes("general.architecture", "llama") + info_bytes("a", 1) +
                    info_bytes("b", 1);
    uint64_t ds = (head + 31) / 32 * 32;
    ck_assert_uint_eq(t.files[0].data_start, ds);
    expect_tensor(&t, 0, "a", HOIST_DTYPE_F32, 1, (int64_t[]){16}, ds, 64);
    expect_tensor(&t, 1, "b", HOIST_DTYPE_F32, 1, (int64_t[]){8}, ds + 64, 32);
    ck_assert_uint_eq(t.files[0].size, ds + 96);
    ck_assert_uint_eq(t.nmeta, 1);
    hoist__table_free(&t);
}
END_TEST

START_TEST(empty_and_no_tensors)
{
    hoist__table t;
    parse_ok("v_empty.gguf", &t);
    ck_assert_uint_eq(t.files[0].size, 24);
    ck_assert_uint_eq(t.files[0].data_start, 32); /* the padding may be cut short */
    ck_assert_uint_eq(t.ntensors + t.nmeta, 0);
    hoist__table_free(&t);
    parse_ok("v_no_tensors.gguf", &t);
    ck_assert_uint_eq(t.ntensors, 0);
    ck_assert_uint_eq(t.nmeta, 2);
    ck_assert_str_eq(meta(&t, "general.name")->value, "x");
    ck_assert_uint_eq(t.files[0].size, t.files[0].data_start);
    hoist__table_free(&t);
}
END_TEST

START_TEST(alignments)
{
    hoist__table t;
    parse_ok("v_alignment_64.gguf", &t);
    uint64_t ds = t.files[0].data_start;
    ck_assert_uint_eq(ds % 64, 0);
    expect_tensor(&t, 0, "a", HOIST_DTYPE_F32, 1, (int64_t[]){16}, ds, 64);
    expect_tensor(&t, 1, "b", HOIST_DTYPE_F32, 1, (int64_t[]){8}, ds + 64, 32);
    expect_tensor(&t, 2, "c", HOIST_DTYPE_F32, 1, (int64_t[]){3}, ds + 128, 12);
    ck_assert_uint_eq(meta(&t, "general.alignment")->num.u, 64);
    hoist__table_free(&t);

    parse_ok("v_alignment_1.gguf", &t);
    ds = t.files[0].data_start;
    uint64_t head = 24 + (8 + strlen("general.alignment") + 4 + 4) +
                    kv_string_bytes("general.architecture", "llama") + info_bytes("a", 1) +
                    info_bytes("b", 1);
    ck_assert_uint_eq(ds, head); /* no padding at all */
    expect_tensor(&t, 0, "a", HOIST_DTYPE_I8, 1, (int64_t[]){3}, ds, 3);
    expect_tensor(&t, 1, "b", HOIST_DTYPE_F32, 1, (int64_t[]){5}, ds + 3, 20);
    hoist__table_free(&t);
}
END_TEST

START_TEST(names_dims_unpadded_end)
{
    hoist__table t;
    char name63[64];
    memset(name63, 'n', 63);
    name63[63] = '\0';
    parse_ok("v_name_63.gguf", &t);
    ck_assert_str_eq(t.tensors[0].name, name63);
    hoist__table_free(&t);

    parse_ok("v_last_unpadded.gguf", &t);
    ck_assert_uint_eq(t.files[0].size, t.files[0].data_start + 64 + 12);
    hoist__table_free(&t);

    parse_ok("v_dims.gguf", &t);
    uint64_t ds = t.files[0].data_start;
    expect_tensor(&t, 0, "d1", HOIST_DTYPE_F32, 1, (int64_t[]){5}, ds, 20);
    expect_tensor(&t, 1, "d2", HOIST_DTYPE_F32, 2, (int64_t[]){2, 3}, ds + 32, 24);
    expect_tensor(&t, 2, "d3", HOIST_DTYPE_F16, 3, (int64_t[]){4, 3, 2}, ds + 64, 48);
    expect_tensor(&t, 3, "d4", HOIST_DTYPE_Q8_0, 4, (int64_t[]){3, 2, 1, 64}, ds + 128, 408);
    hoist__table_free(&t);
}
END_TEST

/* ---- trailing bytes: strict refuses, lenient warns ---- */

static char warned[1024];
static int nwarn;

static void capture_log(hoist_log_level level, const char *message, void *user)
{
    (void)user;
    if (level == HOIST_LOG_WARN) {
        snprintf(warned, sizeof warned, "%s", message);
        nwarn++;
    }
}

START_TEST(trailing_lenient)
{
    nwarn = 0;
    hoist_set_log_callback(capture_log, NULL, HOIST_LOG_DEBUG);
    hoist__table t;
    ck_assert_int_eq(parse_data("c24_trailing.gguf", 0, &t), HOIST_OK);
    ck_assert_uint_eq(t.ntensors, 2);
    ck_assert_uint_eq(t.files[0].size, t.files[0].data_start + 96 + 1);
    ck_assert_int_eq(nwarn, 1);
    ck_assert_ptr_nonnull(strstr(warned, "c24_trailing.gguf"));
    ck_assert_ptr_nonnull(strstr(warned, "1 trailing"));
    hoist__table_free(&t);
    ck_assert_int_eq(parse_data("c24_trailing_no_tensors.gguf", 0, &t), HOIST_OK);
    ck_assert_int_eq(nwarn, 2);
    hoist__table_free(&t);
    hoist_set_log_callback(NULL, NULL, HOIST_LOG_INFO);
}
END_TEST

/* ---- cases built at test time ---- */

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

static int parse_path(const char *path)
{
    hoist__table t;
    hoist__table_init(&t);
    int rc = hoist__gguf_parse(&t, path, 1);
    if (rc < 0) ck_assert_uint_eq(t.nfiles + t.ntensors + t.nmeta, 0);
    hoist__table_free(&t);
    return rc;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A 300 MiB string value in a sparse file: refused before anything that size is allocated. */
START_TEST(header_too_large)
{
    char *path = tu_path(dir, "big.gguf");
    unsigned char head[64] = "GGUF\3\0\0\0";
    size_t n = 8;
    put_u64(head + n, 0);
    put_u64(head + n + 8, 1);
    n += 16;
    put_u64(head + n, 1);
    head[n + 8] = 'k';
    head[n + 9] = 8; /* STRING */
    n += 13;
    put_u64(head + n, 300ull << 20);
    n += 8;
    tu_write(path, head, n);
    ck_assert_int_eq(truncate(path, (off_t)(n + (300ull << 20))), 0);
    uint64_t rss = tu_rss_bytes();
    ck_assert_int_eq(parse_path(path), HOIST_E_HEADER_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "metadata 'k'"));
    ck_assert_uint_lt(tu_rss_bytes(), rss + (64u << 20));
    free(path);
}
END_TEST

START_TEST(not_regular)
{
    char *d = tu_path(dir, "dir.gguf"), *fifo = tu_path(dir, "fifo.gguf");
    ck_assert_int_eq(mkdir(d, 0755), 0);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    ck_assert_int_eq(parse_path(d), HOIST_E_NOT_REGULAR);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "a directory"));
    ck_assert_int_eq(parse_path(fifo), HOIST_E_NOT_REGULAR);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "FIFO"));
    char *missing = tu_path(dir, "missing.gguf");
    ck_assert_int_eq(parse_path(missing), HOIST_E_OPEN);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "missing.gguf"));
    /* hoist_model_open picks the GGUF parser by name: the FIFO is refused, not read */
    hoist_model *m = (hoist_model *)1;
    ck_assert_int_eq(hoist_model_open(fifo, NULL, &m), HOIST_E_NOT_REGULAR);
    ck_assert_ptr_null(m);
    free(d);
    free(fifo);
    free(missing);
}
END_TEST

/* ---- reads through the I/O seam: 1 byte at a time with EINTR, then an I/O error ---- */

static int fault_mode; /* 0 none, 1 one byte + EINTR, 2 EIO past byte 100 */
static int eintr_next;

static ssize_t faulty_pread(int fd, void *buf, size_t n, off_t off)
{
    if (fault_mode == 1) {
        eintr_next = !eintr_next;
        if (eintr_next) {
            errno = EINTR;
            return -1;
        }
        return pread(fd, buf, n ? 1 : 0, off);
    }
    if (fault_mode == 2 && off + (off_t)n > 100) {
        errno = EIO;
        return -1;
    }
    return pread(fd, buf, n, off);
}

static void tables_equal(const hoist__table *a, const hoist__table *b)
{
    ck_assert_uint_eq(a->ntensors, b->ntensors);
    ck_assert_uint_eq(a->nmeta, b->nmeta);
    ck_assert_uint_eq(a->files[0].data_start, b->files[0].data_start);
    for (size_t i = 0; i < a->ntensors; i++) {
        ck_assert_str_eq(a->tensors[i].name, b->tensors[i].name);
        ck_assert_uint_eq(a->tensors[i].offset, b->tensors[i].offset);
        ck_assert_uint_eq(a->tensors[i].nbytes, b->tensors[i].nbytes);
    }
    for (size_t i = 0; i < a->nmeta; i++) {
        ck_assert_str_eq(a->meta[i].key, b->meta[i].key);
        ck_assert_str_eq(a->meta[i].value, b->meta[i].value);
    }
}

START_TEST(short_reads_and_errors)
{
    const char *files[] = {"v_value_types.gguf", "v_tensor_types.gguf"};
    hoist__io_hooks hooks = {.pread = faulty_pread};
    for (int f = 0; f < 2; f++) {
        hoist__table want, got;
        parse_ok(files[f], &want);
        fault_mode = 1;
        hoist__io_set_hooks(&hooks);
        int rc = parse_data(files[f], 1, &got);
        hoist__io_set_hooks(NULL);
        fault_mode = 0;
        ck_assert_msg(rc == HOIST_OK, "%s", hoist_last_error());
        tables_equal(&want, &got);
        hoist__table_free(&got);
        hoist__table_free(&want);
    }
    fault_mode = 2;
    hoist__io_set_hooks(&hooks);
    hoist__table t;
    int rc = parse_data("v_value_types.gguf", 1, &t);
    hoist__io_set_hooks(NULL);
    fault_mode = 0;
    ck_assert_int_eq(rc, HOIST_E_IO);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "v_value_types.gguf"));
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "Input/output error"));
    ck_assert_uint_eq(t.nfiles + t.ntensors + t.nmeta, 0);
    hoist__table_free(&t);
}
END_TEST

/* ---- every allocation failing in turn: a clean HOIST_E_NOMEM, nothing leaked ---- */

static int fail_at, alloc_calls;

static bool fail_kth(size_t bytes)
{
    (void)bytes;
    return ++alloc_calls == fail_at;
}

START_TEST(allocation_failures)
{
    const char *files[] = {"gguf/v_value_types.gguf", "gguf/v_tensor_types.gguf"};
    hoist__alloc_hooks hooks = {.fail = fail_kth};
    for (int f = 0; f < 2; f++) {
        char *path = tu_data(files[f]);
        int rc = HOIST_E_NOMEM, k;
        for (k = 1; rc == HOIST_E_NOMEM && k < 100000; k++) {
            int64_t base = hoist__alloc_live_bytes();
            hoist_model *m = NULL;
            alloc_calls = 0;
            fail_at = k;
            hoist__alloc_set_hooks(&hooks);
            rc = hoist_model_open(path, NULL, &m);
            hoist__alloc_set_hooks(NULL);
            ck_assert_msg(rc == HOIST_OK || rc == HOIST_E_NOMEM, "%s, allocation %d: %s: %s",
                          files[f], k, hoist_status_name(rc), hoist_last_error());
            if (rc == HOIST_E_NOMEM) {
                ck_assert_ptr_null(m);
                ck_assert_ptr_nonnull(strstr(hoist_last_error(), "out of memory"));
            }
            hoist_model_free(m);
            ck_assert_msg(hoist__alloc_live_bytes() == base, "%s, allocation %d: %lld bytes leaked",
                          files[f], k, (long long)(hoist__alloc_live_bytes() - base));
        }
        ck_assert_int_eq(rc, HOIST_OK);
        ck_assert_int_gt(k, 20); /* the sweep did go through the parser's allocations */
        free(path);
    }
}
END_TEST

/* ---- hoist_model_open: GGUF by magic, by name, and in a directory ---- */

static void copy_data(const char *name, const char *to)
{
    char rel[256];
    snprintf(rel, sizeof rel, "gguf/%s", name);
    char *from = tu_data(rel);
    size_t len;
    void *bytes = tu_read(from, &len);
    ck_assert_ptr_nonnull(bytes);
    tu_write(to, bytes, len);
    free(bytes);
    free(from);
}

START_TEST(model_open_detects_gguf)
{
    /* by magic, whatever the name */
    char *bin = tu_path(dir, "weights.bin");
    copy_data("v_dims.gguf", bin);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(bin, NULL, &m), HOIST_OK);
    ck_assert_uint_eq(hoist_model_tensor_count(m), 4);
    /* reported as what it is (0.1 called it safetensors) */
    ck_assert_int_eq(hoist_model_format(m), HOIST_FORMAT_GGUF);
    ck_assert_str_eq(hoist_format_name(hoist_model_format(m)), "gguf");
    size_t idx;
    hoist_tensor_info ti = HOIST_TENSOR_INFO_INIT;
    ck_assert_int_eq(hoist_model_find(m, "d4", &idx), HOIST_OK);
    ck_assert_int_eq(hoist_model_tensor(m, idx, &ti), HOIST_OK);
    ck_assert_int_eq(ti.dtype, HOIST_DTYPE_Q8_0);
    ck_assert_uint_eq(ti.ndim, 4);
    ck_assert(ti.shape[0] == 3 && ti.shape[1] == 2 && ti.shape[2] == 1 && ti.shape[3] == 64);
    ck_assert_uint_eq(ti.nbytes, 408);
    hoist_model_free(m);

    /* a directory with one .gguf file, then with model.gguf beside another */
    char *sub = tu_path(dir, "m");
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    char *one = tu_path(sub, "tiny-Q8_0.gguf");
    copy_data("v_version2.gguf", one);
    ck_assert_int_eq(hoist_model_open(sub, NULL, &m), HOIST_OK);
    ck_assert_uint_eq(hoist_model_tensor_count(m), 2);
    ck_assert_str_eq(hoist_model_file_path(m, 0), one);
    hoist_model_free(m);
    char *two = tu_path(sub, "other.gguf");
    copy_data("v_dims.gguf", two);
    ck_assert_int_eq(hoist_model_open(sub, NULL, &m), HOIST_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "model.gguf"));
    char *named = tu_path(sub, "model.gguf");
    copy_data("v_tensor_types.gguf", named);
    ck_assert_int_eq(hoist_model_open(sub, NULL, &m), HOIST_OK);
    ck_assert_uint_eq(hoist_model_tensor_count(m), NGGML);
    hoist_model_free(m);

    /* a bad GGUF reports the GGUF parser's error through hoist_model_open */
    char *bad = tu_data("gguf/c24_gap.gguf");
    m = (hoist_model *)1;
    ck_assert_int_eq(hoist_model_open(bad, NULL, &m), HOIST_E_LAYOUT);
    ck_assert_ptr_null(m);
    /* lenient open accepts trailing bytes */
    char *trailing = tu_data("gguf/c24_trailing.gguf");
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    ck_assert_int_eq(hoist_model_open(trailing, &oo, &m), HOIST_E_TRAILING_BYTES);
    oo.strict = 0;
    ck_assert_int_eq(hoist_model_open(trailing, &oo, &m), HOIST_OK);
    hoist_model_free(m);
    free(trailing);
    free(bad);
    free(named);
    free(two);
    free(one);
    free(sub);
    free(bin);
}
END_TEST

/* The parser records the file's identity: a GGUF replaced between open and load by another of the
 * same size and mtime is refused before anything is published (RELIABILITY 28). */
START_TEST(replaced_file_is_refused)
{
    char *a = tu_path(dir, "a.gguf"), *b = tu_path(dir, "b.gguf");
    copy_data("v_version2.gguf", a);
    size_t len;
    unsigned char *bytes = tu_read(a, &len);
    ck_assert_ptr_nonnull(bytes);
    bytes[len - 1] ^= 0xff; /* the last byte of tensor 'b' */
    tu_write(b, bytes, len);
    free(bytes);
    hoist_model *m = NULL;
    ck_assert_int_eq(hoist_model_open(a, NULL, &m), HOIST_OK);
    hoist_weights *w = NULL;
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_OK); /* the file as opened loads */
    hoist_weights_free(w);
    struct stat st;
    ck_assert_int_eq(stat(a, &st), 0);
    ck_assert_int_eq(rename(b, a), 0);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    ck_assert_int_eq(utimensat(AT_FDCWD, a, times, 0), 0);
    w = (hoist_weights *)1;
    ck_assert_int_eq(hoist_load(m, NULL, &w), HOIST_E_FILE_CHANGED);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "a.gguf"));
    hoist_model_free(m);
    free(a);
    free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gguf");
    TCase *files = tcase_create("files");
    tcase_add_loop_test(files, bad_file, 0, NBAD);
    tcase_add_loop_test(files, valid_file, 0, (int)(sizeof VALID / sizeof *VALID));
    tcase_add_test(files, every_file_is_tested);
    tcase_add_test(files, value_types);
    tcase_add_test(files, value_types_public);
    tcase_add_test(files, tensor_types);
    tcase_add_test(files, version2_and_layout);
    tcase_add_test(files, empty_and_no_tensors);
    tcase_add_test(files, alignments);
    tcase_add_test(files, names_dims_unpadded_end);
    tcase_add_test(files, trailing_lenient);
    tcase_add_test(files, short_reads_and_errors);
    tcase_add_test(files, allocation_failures);
    suite_add_tcase(s, files);
    TCase *fs = tcase_create("built");
    tcase_add_checked_fixture(fs, setup, teardown);
    tcase_add_test(fs, header_too_large);
    tcase_add_test(fs, not_regular);
    tcase_add_test(fs, model_open_detects_gguf);
    tcase_add_test(fs, replaced_file_is_refused);
    suite_add_tcase(s, fs);
    return tu_run_suite(s);
}
