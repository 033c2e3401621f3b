/* safetensors parser: docs/RELIABILITY.md cases 1-14, one handcrafted file per failure mode
 * (tests/data/safetensors, see tests/data/README.md), plus cases built at test time. */
#include "testutil.h"

#include "formats/table.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parses tests/data/safetensors/name into t (initialised here); returns the status. */
static int parse_data(const char *name, int strict, hoist__table *t)
{
    char rel[256];
    snprintf(rel, sizeof rel, "safetensors/%s", name);
    char *path = tu_data(rel);
    hoist__table_init(t);
    int rc = hoist__safetensors_parse(t, path, strict);
    free(path);
    return rc;
}

/* data_start of a file in tests/data/safetensors: 8 + its header length. */
static uint64_t data_start_of(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "safetensors/%s", name);
    char *path = tu_data(rel);
    size_t len = 0;
    unsigned char *buf = tu_read(path, &len);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_ge(len, 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    free(buf);
    free(path);
    return 8 + n;
}

/* ---- every bad file: exact status, message naming the file (and what else it must name) ---- */

typedef struct bad_case {
    const char *file;
    int strict;
    int status;
    const char *want; /* a further substring of the message, or NULL */
} bad_case;

static const bad_case BAD[] = {
    /* 1 */
    {"c01_empty.safetensors", 1, HOIST_E_TRUNCATED_HEADER, "0 bytes"},
    {"c01_one_byte.safetensors", 1, HOIST_E_TRUNCATED_HEADER, "1 bytes"},
    {"c01_seven_bytes.safetensors", 1, HOIST_E_TRUNCATED_HEADER, "7 bytes"},
    /* 2 */
    {"c02_len_100000001.safetensors", 1, HOIST_E_HEADER_TOO_LARGE, "100000001"},
    {"c02_len_u64_max.safetensors", 1, HOIST_E_HEADER_TOO_LARGE, "18446744073709551615"},
    {"c02_len_2pow63.safetensors", 1, HOIST_E_HEADER_TOO_LARGE, "9223372036854775808"},
    /* 3 */
    {"c03_len_past_eof.safetensors", 1, HOIST_E_BAD_HEADER_LEN, "64"},
    {"c03_len_one_past.safetensors", 1, HOIST_E_BAD_HEADER_LEN, NULL},
    {"c03_len_at_limit.safetensors", 1, HOIST_E_BAD_HEADER_LEN, "100000000"},
    /* 4 */
    {"c04_not_utf8.safetensors", 1, HOIST_E_BAD_JSON, "UTF-8"},
    {"c04_overlong_utf8.safetensors", 1, HOIST_E_BAD_JSON, "UTF-8"},
    {"c04_lone_surrogate.safetensors", 1, HOIST_E_BAD_JSON, NULL},
    {"c04_truncated_json.safetensors", 1, HOIST_E_BAD_JSON, "truncated"},
    {"c04_empty_header.safetensors", 1, HOIST_E_BAD_JSON, NULL},
    {"c04_top_array.safetensors", 1, HOIST_E_BAD_JSON, "JSON array, not an object"},
    {"c04_top_string.safetensors", 1, HOIST_E_BAD_JSON, "JSON string, not an object"},
    {"c04_top_number.safetensors", 1, HOIST_E_BAD_JSON, "JSON integer, not an object"},
    {"c04_trailing_garbage.safetensors", 1, HOIST_E_BAD_JSON, NULL},
    {"c04_nul_byte.safetensors", 1, HOIST_E_BAD_JSON, NULL},
    {"c04_nul_escape.safetensors", 1, HOIST_E_BAD_JSON, NULL},
    /* 5 */
    {"c05_dup_tensor.safetensors", 1, HOIST_E_DUPLICATE_KEY, "\"a\""},
    {"c05_dup_metadata_key.safetensors", 1, HOIST_E_DUPLICATE_KEY, "\"k\""},
    {"c05_dup_metadata_object.safetensors", 1, HOIST_E_DUPLICATE_KEY, "__metadata__"},
    /* 6 */
    {"c06_meta_number.safetensors", 1, HOIST_E_BAD_METADATA, "'k'"},
    {"c06_meta_object.safetensors", 1, HOIST_E_BAD_METADATA, "'k'"},
    {"c06_meta_null_value.safetensors", 1, HOIST_E_BAD_METADATA, "'k'"},
    {"c06_meta_array_value.safetensors", 1, HOIST_E_BAD_METADATA, "'k'"},
    {"c06_meta_bool_value.safetensors", 1, HOIST_E_BAD_METADATA, "'k'"},
    {"c06_meta_not_object.safetensors", 1, HOIST_E_BAD_METADATA, "__metadata__"},
    {"c06_meta_array.safetensors", 1, HOIST_E_BAD_METADATA, "__metadata__"},
    /* 7 */
    {"c07_dtype_unknown.safetensors", 1, HOIST_E_BAD_DTYPE, "F128"},
    {"c07_dtype_lowercase.safetensors", 1, HOIST_E_BAD_DTYPE, "f32"},
    {"c07_dtype_empty.safetensors", 1, HOIST_E_BAD_DTYPE, "'a'"},
    {"c07_dtype_float32.safetensors", 1, HOIST_E_BAD_DTYPE, "float32"},
    {"c07_dtype_ggml_name.safetensors", 1, HOIST_E_BAD_DTYPE, "Q8_0"},
    {"c07_dtype_number.safetensors", 1, HOIST_E_BAD_TENSOR, "'a'"},
    {"c07_dtype_null.safetensors", 1, HOIST_E_BAD_TENSOR, "'a'"},
    {"c07_missing_dtype.safetensors", 1, HOIST_E_BAD_TENSOR, "dtype"},
    {"c07_missing_shape.safetensors", 1, HOIST_E_BAD_TENSOR, "shape"},
    {"c07_missing_offsets.safetensors", 1, HOIST_E_BAD_TENSOR, "data_offsets"},
    {"c07_shape_string.safetensors", 1, HOIST_E_BAD_TENSOR, "shape"},
    {"c07_shape_elem_string.safetensors", 1, HOIST_E_BAD_TENSOR, "shape[0]"},
    {"c07_shape_elem_real.safetensors", 1, HOIST_E_BAD_TENSOR, "shape[0]"},
    {"c07_shape_elem_bool.safetensors", 1, HOIST_E_BAD_TENSOR, "shape[0]"},
    {"c07_shape_negative.safetensors", 1, HOIST_E_BAD_TENSOR, "negative"},
    {"c07_shape_nine_dims.safetensors", 1, HOIST_E_BAD_TENSOR, "9 dimensions"},
    {"c07_offsets_string.safetensors", 1, HOIST_E_BAD_TENSOR, "data_offsets"},
    {"c07_offsets_three.safetensors", 1, HOIST_E_BAD_TENSOR, "data_offsets"},
    {"c07_offsets_one.safetensors", 1, HOIST_E_BAD_TENSOR, "data_offsets"},
    {"c07_offsets_elem_string.safetensors", 1, HOIST_E_BAD_TENSOR, "data_offsets[1]"},
    {"c07_offsets_object.safetensors", 1, HOIST_E_BAD_TENSOR, "data_offsets"},
    {"c07_unknown_field.safetensors", 1, HOIST_E_BAD_TENSOR, "unknown field 'x'"},
    {"c07_entry_array.safetensors", 1, HOIST_E_BAD_TENSOR, "'a'"},
    {"c07_entry_null.safetensors", 1, HOIST_E_BAD_TENSOR, "'a'"},
    {"c07_empty_name.safetensors", 1, HOIST_E_BAD_TENSOR, "empty name"},
    /* 8 */
    {"c08_offset_negative.safetensors", 1, HOIST_E_BAD_OFFSETS, "data_offsets[0]"},
    {"c08_offset_end_negative.safetensors", 1, HOIST_E_BAD_OFFSETS, "data_offsets[1]"},
    {"c08_offset_fractional.safetensors", 1, HOIST_E_BAD_OFFSETS, "not an integer"},
    {"c08_offset_fraction_half.safetensors", 1, HOIST_E_BAD_OFFSETS, "3.5"},
    {"c08_offset_exponent.safetensors", 1, HOIST_E_BAD_OFFSETS, "not an integer"},
    {"c08_offset_above_2pow64.safetensors", 1, HOIST_E_BAD_OFFSETS, "tensor 'a'"},
    {"c08_offset_2pow64_wraps.safetensors", 1, HOIST_E_BAD_OFFSETS, "tensor 'a'"},
    {"c08_offset_2pow63.safetensors", 1, HOIST_E_BAD_OFFSETS, "tensor 'a'"},
    {"c08_offset_real_overflow.safetensors", 1, HOIST_E_BAD_OFFSETS, "tensor 'a'"},
    {"c08_begin_after_end.safetensors", 1, HOIST_E_BAD_OFFSETS, "[8, 4]"},
    /* 9 */
    {"c09_not_at_zero.safetensors", 1, HOIST_E_LAYOUT, "tensor 'a' at byte"},
    {"c09_gap.safetensors", 1, HOIST_E_LAYOUT, "tensor 'b' at byte"},
    {"c09_overlap.safetensors", 1, HOIST_E_LAYOUT, "overlaps tensor 'a'"},
    {"c09_same_range.safetensors", 1, HOIST_E_LAYOUT, "overlaps tensor 'a'"},
    {"c09_zero_size_astray.safetensors", 1, HOIST_E_LAYOUT, "tensor 'z'"},
    /* 10 */
    {"c10_truncated.safetensors", 1, HOIST_E_TRUNCATED, "tensor 'a' at byte"},
    {"c10_truncated_no_data.safetensors", 1, HOIST_E_TRUNCATED, "tensor 'a' at byte"},
    {"c10_trailing.safetensors", 1, HOIST_E_TRAILING_BYTES, "1 trailing"},
    {"c10_trailing_empty.safetensors", 1, HOIST_E_TRAILING_BYTES, "3 trailing"},
    /* 11 */
    {"c11_shape_overflow.safetensors", 1, HOIST_E_OVERFLOW, "tensor 'a'"},
    {"c11_bits_overflow.safetensors", 1, HOIST_E_OVERFLOW, "tensor 'a'"},
    {"c11_dim_2pow63.safetensors", 1, HOIST_E_OVERFLOW, "tensor 'a'"},
    /* 12 */
    {"c12_short_by_one.safetensors", 1, HOIST_E_SIZE_MISMATCH, "[0, 15]"},
    {"c12_long_by_one.safetensors", 1, HOIST_E_SIZE_MISMATCH, "[0, 17]"},
    {"c12_second_tensor.safetensors", 1, HOIST_E_SIZE_MISMATCH, "tensor 'b' at byte"},
    /* 13 */
    {"c13_f4_odd.safetensors", 1, HOIST_E_SIZE_MISMATCH, "tensor 'a'"},
    {"c13_f6_e2m3_one.safetensors", 1, HOIST_E_SIZE_MISMATCH, "tensor 'a'"},
    {"c13_f6_e3m2_six.safetensors", 1, HOIST_E_SIZE_MISMATCH, "tensor 'a'"},
};
#define NBAD ((int)(sizeof BAD / sizeof BAD[0]))

START_TEST(bad_file)
{
    const bad_case *c = &BAD[_i];
    hoist__table t;
    int rc = parse_data(c->file, c->strict, &t);
    const char *msg = hoist_last_error();
    ck_assert_msg(rc == c->status, "%s: got %s, want %s (%s)", c->file, hoist_status_name(rc),
                  hoist_status_name(c->status), msg);
    ck_assert_msg(strstr(msg, c->file) != NULL, "%s: message does not name the file: %s", c->file,
                  msg);
    if (c->want)
        ck_assert_msg(strstr(msg, c->want) != NULL, "%s: message lacks \"%s\": %s", c->file,
                      c->want, msg);
    /* nothing published for a bad file: no file and no tensors in the table */
    ck_assert_uint_eq(t.nfiles, 0);
    ck_assert_uint_eq(t.ntensors, 0);
    hoist__table_free(&t);
}
END_TEST

/* ---- valid files ---- */

static void expect_tensor(const hoist__table *t, size_t i, const char *name, hoist_dtype dtype,
                          uint32_t ndim, const int64_t *shape, uint64_t offset, uint64_t nbytes)
{
    ck_assert_uint_lt(i, t->ntensors);
    const hoist__tensor *x = &t->tensors[i];
    ck_assert_str_eq(x->name, name);
    ck_assert_msg(x->dtype == dtype, "%s: dtype %s, want %s", name, hoist_dtype_name(x->dtype),
                  hoist_dtype_name(dtype));
    ck_assert_uint_eq(x->ndim, ndim);
    for (uint32_t d = 0; d < ndim; d++) ck_assert_int_eq(x->shape[d], shape[d]);
    ck_assert_uint_eq(x->offset, offset);
    ck_assert_uint_eq(x->nbytes, nbytes);
    ck_assert_uint_eq(x->file, 0);
}

START_TEST(empty_header)
{
    hoist__table t;
    ck_assert_int_eq(parse_data("v14_empty_header.safetensors", 1, &t), HOIST_OK);
    ck_assert_uint_eq(t.nfiles, 1);
    ck_assert_uint_eq(t.ntensors, 0);
    ck_assert_uint_eq(t.nmeta, 0);
    ck_assert_uint_eq(t.files[0].data_start, 10);
    ck_assert_uint_eq(t.files[0].size, 10);
    ck_assert_ptr_nonnull(strstr(t.files[0].path, "v14_empty_header.safetensors"));
    ck_assert_int_eq(hoist__table_finish(&t), HOIST_OK);
    ck_assert_uint_eq(t.total_bytes, 0);
    hoist__table_free(&t);
}
END_TEST

START_TEST(only_metadata)
{
    hoist__table t;
    ck_assert_int_eq(parse_data("v14_only_metadata.safetensors", 1, &t), HOIST_OK);
    ck_assert_uint_eq(t.ntensors, 0);
    ck_assert_uint_eq(t.nmeta, 1);
    ck_assert_str_eq(t.meta[0].key, "format");
    ck_assert_str_eq(t.meta[0].value, "pt");
    hoist__table_free(&t);
}
END_TEST

START_TEST(metadata_null)
{
    hoist__table t;
    ck_assert_int_eq(parse_data("v14_metadata_null.safetensors", 1, &t), HOIST_OK);
    ck_assert_uint_eq(t.ntensors, 1);
    ck_assert_uint_eq(t.nmeta, 0);
    hoist__table_free(&t);
}
END_TEST

START_TEST(metadata_order)
{
    hoist__table t;
    ck_assert_int_eq(parse_data("v14_metadata_order.safetensors", 1, &t), HOIST_OK);
    ck_assert_uint_eq(t.nmeta, 4);
    const char *keys[] = {"z", "a", "m", "b"}, *vals[] = {"1", "2", "", "\xc3\xa9\n"};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(t.meta[i].key, keys[i]);
        ck_assert_str_eq(t.meta[i].value, vals[i]);
    }
    ck_assert_uint_eq(t.ntensors, 1);
    hoist__table_free(&t);
}
END_TEST

START_TEST(zero_size)
{
    hoist__table t;
    const char *f = "v14_zero_size.safetensors";
    ck_assert_int_eq(parse_data(f, 1, &t), HOIST_OK);
    uint64_t ds = data_start_of(f);
    ck_assert_uint_eq(t.ntensors, 5);
    /* sorted by (begin, end, name) */
    expect_tensor(&t, 0, "a", HOIST_DTYPE_F32, 1, (int64_t[]){2}, ds + 0, 8);
    expect_tensor(&t, 1, "w", HOIST_DTYPE_F32, 2, (int64_t[]){3, 0}, ds + 8, 0);
    expect_tensor(&t, 2, "z", HOIST_DTYPE_F32, 1, (int64_t[]){0}, ds + 8, 0);
    expect_tensor(&t, 3, "b", HOIST_DTYPE_F16, 1, (int64_t[]){2}, ds + 8, 4);
    expect_tensor(&t, 4, "e", HOIST_DTYPE_U8, 1, (int64_t[]){0}, ds + 12, 0);
    ck_assert_uint_eq(t.files[0].size, ds + 12);
    ck_assert_int_eq(hoist__table_finish(&t), HOIST_OK);
    ck_assert_uint_eq(t.total_bytes, 12);
    ck_assert_int_ge(hoist__table_find(&t, "e"), 0);
    hoist__table_free(&t);
}
END_TEST

START_TEST(all_zero_size)
{
    hoist__table t;
    const char *f = "v14_all_zero_size.safetensors";
    ck_assert_int_eq(parse_data(f, 1, &t), HOIST_OK);
    uint64_t ds = data_start_of(f);
    ck_assert_uint_eq(t.ntensors, 3);
    expect_tensor(&t, 0, "h", HOIST_DTYPE_F64, 3, (int64_t[]){0, 1ll << 32, 1ll << 32}, ds, 0);
    expect_tensor(&t, 1, "x", HOIST_DTYPE_U8, 1, (int64_t[]){0}, ds, 0);
    expect_tensor(&t, 2, "y", HOIST_DTYPE_F32, 2, (int64_t[]){0, 5}, ds, 0);
    hoist__table_free(&t);
}
END_TEST

START_TEST(scalar)
{
    hoist__table t;
    const char *f = "v14_scalar.safetensors";
    ck_assert_int_eq(parse_data(f, 1, &t), HOIST_OK);
    uint64_t ds = data_start_of(f);
    ck_assert_uint_eq(t.ntensors, 2);
    expect_tensor(&t, 0, "s", HOIST_DTYPE_F32, 0, NULL, ds, 4);
    expect_tensor(&t, 1, "u", HOIST_DTYPE_BF16, 0, NULL, ds + 4, 2);
    hoist__table_free(&t);
}
END_TEST

START_TEST(padded_header)
{
    hoist__table t;
    const char *f = "v14_padded_header.safetensors";
    ck_assert_int_eq(parse_data(f, 1, &t), HOIST_OK);
    uint64_t ds = data_start_of(f);
    ck_assert_uint_eq(ds % 8, 0);
    expect_tensor(&t, 0, "a", HOIST_DTYPE_F32, 1, (int64_t[]){1}, ds, 4);
    hoist__table_free(&t);
}
END_TEST

START_TEST(unicode_names)
{
    hoist__table t;
    const char *f = "v14_unicode_names.safetensors";
    ck_assert_int_eq(parse_data(f, 1, &t), HOIST_OK);
    uint64_t ds = data_start_of(f);
    expect_tensor(&t, 0, "\xe6\xa8\xa1\xe5\x9e\x8b.\xc3\x9f", HOIST_DTYPE_U8, 1, (int64_t[]){2},
                  ds, 2);
    expect_tensor(&t, 1, "\xc3\xa9", HOIST_DTYPE_I8, 1, (int64_t[]){1}, ds + 2, 1);
    hoist__table_free(&t);
}
END_TEST

START_TEST(sub_byte)
{
    hoist__table t;
    const char *f = "v14_sub_byte.safetensors";
    ck_assert_int_eq(parse_data(f, 1, &t), HOIST_OK);
    uint64_t ds = data_start_of(f);
    expect_tensor(&t, 0, "f4", HOIST_DTYPE_F4, 1, (int64_t[]){2}, ds, 1);
    expect_tensor(&t, 1, "e2", HOIST_DTYPE_F6_E2M3, 1, (int64_t[]){4}, ds + 1, 3);
    expect_tensor(&t, 2, "e3", HOIST_DTYPE_F6_E3M2, 2, (int64_t[]){2, 4}, ds + 4, 6);
    hoist__table_free(&t);
}
END_TEST

/* Every dtype of the reference list, shape [4, 2]: byte sizes computed here independently. */
START_TEST(all_dtypes)
{
    static const struct {
        const char *name;
        hoist_dtype dtype;
        uint64_t bytes; /* for 8 elements */
    } want[] = {
        {"BOOL", HOIST_DTYPE_BOOL, 8},          {"F4", HOIST_DTYPE_F4, 4},
        {"F6_E2M3", HOIST_DTYPE_F6_E2M3, 6},    {"F6_E3M2", HOIST_DTYPE_F6_E3M2, 6},
        {"U8", HOIST_DTYPE_U8, 8},              {"I8", HOIST_DTYPE_I8, 8},
        {"F8_E5M2", HOIST_DTYPE_F8_E5M2, 8},    {"F8_E4M3", HOIST_DTYPE_F8_E4M3, 8},
        {"F8_E8M0", HOIST_DTYPE_F8_E8M0, 8},    {"F8_E4M3FNUZ", HOIST_DTYPE_F8_E4M3FNUZ, 8},
        {"F8_E5M2FNUZ", HOIST_DTYPE_F8_E5M2FNUZ, 8}, {"I16", HOIST_DTYPE_I16, 16},
        {"U16", HOIST_DTYPE_U16, 16},           {"F16", HOIST_DTYPE_F16, 16},
        {"BF16", HOIST_DTYPE_BF16, 16},         {"I32", HOIST_DTYPE_I32, 32},
        {"U32", HOIST_DTYPE_U32, 32},           {"F32", HOIST_DTYPE_F32, 32},
        {"C64", HOIST_DTYPE_C64, 64},           {"F64", HOIST_DTYPE_F64, 64},
        {"I64", HOIST_DTYPE_I64, 64},           {"U64", HOIST_DTYPE_U64, 64},
    };
    ck_assert_int_eq((int)(sizeof want / sizeof want[0]), 22);
    ck_assert_int_eq(HOIST_DTYPE_U64, 21); /* the last safetensors dtype */
    hoist__table t;
    const char *f = "v14_all_dtypes.safetensors";
    ck_assert_int_eq(parse_data(f, 1, &t), HOIST_OK);
    uint64_t ds = data_start_of(f), off = ds;
    ck_assert_uint_eq(t.ntensors, 22);
    for (size_t i = 0; i < 22; i++) {
        char name[32];
        snprintf(name, sizeof name, "t_%s", want[i].name);
        expect_tensor(&t, i, name, want[i].dtype, 2, (int64_t[]){4, 2}, off, want[i].bytes);
        ck_assert_str_eq(hoist_dtype_name(t.tensors[i].dtype), want[i].name);
        off += want[i].bytes;
    }
    ck_assert_uint_eq(t.files[0].size, off);
    hoist__table_free(&t);
}
END_TEST

/* File size and mtime come from fstat. */
START_TEST(file_record)
{
    hoist__table t;
    const char *f = "v14_scalar.safetensors";
    ck_assert_int_eq(parse_data(f, 1, &t), HOIST_OK);
    char *path = tu_data("safetensors/v14_scalar.safetensors");
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(t.files[0].size, (uint64_t)st.st_size);
    ck_assert_int_eq(t.files[0].mtime_ns,
                     (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    ck_assert_uint_eq(t.files[0].data_start, data_start_of(f));
    /* a second file appends with file index 1 */
    ck_assert_int_eq(hoist__safetensors_parse(&t, path, 1), HOIST_OK);
    ck_assert_uint_eq(t.nfiles, 2);
    ck_assert_uint_eq(t.ntensors, 4);
    ck_assert_uint_eq(t.tensors[2].file, 1);
    /* the same names twice: the table's finish step refuses them */
    ck_assert_int_eq(hoist__table_finish(&t), HOIST_E_DUPLICATE_KEY);
    free(path);
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
    warned[0] = '\0';
    nwarn = 0;
    hoist_set_log_callback(capture_log, NULL, HOIST_LOG_DEBUG);
    hoist__table t;
    const char *f = "c10_trailing.safetensors";
    ck_assert_int_eq(parse_data(f, 0, &t), HOIST_OK);
    uint64_t ds = data_start_of(f);
    ck_assert_uint_eq(t.ntensors, 1);
    expect_tensor(&t, 0, "a", HOIST_DTYPE_F32, 1, (int64_t[]){4}, ds, 16);
    ck_assert_uint_eq(t.files[0].size, ds + 17);
    ck_assert_int_eq(nwarn, 1);
    ck_assert_ptr_nonnull(strstr(warned, f));
    ck_assert_ptr_nonnull(strstr(warned, "1 trailing"));
    hoist__table_free(&t);

    nwarn = 0;
    ck_assert_int_eq(parse_data("c10_trailing_empty.safetensors", 0, &t), HOIST_OK);
    ck_assert_uint_eq(t.ntensors, 0);
    ck_assert_int_eq(nwarn, 1);
    ck_assert_ptr_nonnull(strstr(warned, "3 trailing"));
    hoist__table_free(&t);

    /* strict: refused, no warning */
    nwarn = 0;
    ck_assert_int_eq(parse_data(f, 1, &t), HOIST_E_TRAILING_BYTES);
    ck_assert_int_eq(nwarn, 0);
    hoist__table_free(&t);
    hoist_set_log_callback(NULL, NULL, HOIST_LOG_INFO);
}
END_TEST

/* ---- cases built at test time ---- */

static int parse_path(const char *path, int strict)
{
    hoist__table t;
    hoist__table_init(&t);
    int rc = hoist__safetensors_parse(&t, path, strict);
    if (rc < 0) {
        ck_assert_uint_eq(t.nfiles, 0);
        ck_assert_uint_eq(t.ntensors, 0);
    }
    hoist__table_free(&t);
    return rc;
}

static void expect_status(const char *path, int want, const char *substr)
{
    int rc = parse_path(path, 1);
    const char *msg = hoist_last_error();
    ck_assert_msg(rc == want, "%s: got %s, want %s (%s)", path, hoist_status_name(rc),
                  hoist_status_name(want), msg);
    if (want != HOIST_OK) {
        ck_assert_msg(strstr(msg, path) != NULL, "message does not name %s: %s", path, msg);
        if (substr)
            ck_assert_msg(strstr(msg, substr) != NULL, "message lacks \"%s\": %s", substr, msg);
    }
}

/* 100k levels of nesting: refused by the parser's depth limit, no stack overflow. */
START_TEST(deep_nesting)
{
    char *dir = tu_mkdtemp();
    const size_t levels = 100000;
    for (int kind = 0; kind < 3; kind++) {
        static const char *open_tok[] = {"[", "{\"a\":", "{\"__metadata__\":"};
        size_t tl = strlen(open_tok[kind]);
        char *h = malloc(levels * tl + 1);
        ck_assert_ptr_nonnull(h);
        for (size_t i = 0; i < levels; i++) memcpy(h + i * tl, open_tok[kind], tl);
        h[levels * tl] = '\0';
        char *path = tu_path(dir, "deep.safetensors");
        tu_write_safetensors(path, h, NULL, 0);
        expect_status(path, HOIST_E_BAD_JSON, "deep");
        /* closed properly, too */
        size_t cl = levels * tl + levels;
        char *h2 = malloc(cl + 1);
        ck_assert_ptr_nonnull(h2);
        memcpy(h2, h, levels * tl);
        memset(h2 + levels * tl, kind == 0 ? ']' : '}', levels);
        h2[cl] = '\0';
        tu_write_safetensors(path, h2, NULL, 0);
        expect_status(path, HOIST_E_BAD_JSON, "deep");
        free(h2);
        free(path);
        free(h);
    }
    tu_rmtree(dir);
}
END_TEST

/* Names of HOIST_MAX_NAME bytes are fine; one more is refused. */
START_TEST(long_names)
{
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "names.safetensors");
    for (size_t len = HOIST_MAX_NAME; len <= HOIST_MAX_NAME + 1; len++) {
        char *name = malloc(len + 1);
        memset(name, 'n', len);
        name[len] = '\0';
        char *h = malloc(len + 128);
        sprintf(h, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", name);
        tu_write_safetensors(path, h, "xy", 2);
        if (len == HOIST_MAX_NAME) {
            hoist__table t;
            hoist__table_init(&t);
            ck_assert_int_eq(hoist__safetensors_parse(&t, path, 1), HOIST_OK);
            ck_assert_uint_eq(t.ntensors, 1);
            ck_assert_str_eq(t.tensors[0].name, name);
            hoist__table_free(&t);
        } else {
            expect_status(path, HOIST_E_BAD_TENSOR, "4097 bytes");
        }
        free(h);
        free(name);
    }
    free(path);
    tu_rmtree(dir);
}
END_TEST

START_TEST(not_regular)
{
    expect_status("/dev/zero", HOIST_E_NOT_REGULAR, "character device");
    expect_status("/dev/null", HOIST_E_NOT_REGULAR, "character device");
    char *dir = tu_mkdtemp();
    expect_status(dir, HOIST_E_NOT_REGULAR, "directory");
    char *fifo = tu_path(dir, "fifo.safetensors");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    /* must not block waiting for a writer */
    expect_status(fifo, HOIST_E_NOT_REGULAR, "FIFO");
    free(fifo);
    tu_rmtree(dir);
}
END_TEST

START_TEST(open_errors)
{
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "missing.safetensors");
    expect_status(path, HOIST_E_OPEN, strerror(ENOENT));
    if (geteuid() != 0) { /* root reads anything */
        tu_write_safetensors(path, "{}", NULL, 0);
        ck_assert_int_eq(chmod(path, 0), 0);
        expect_status(path, HOIST_E_OPEN, strerror(EACCES));
    }
    free(path);
    tu_rmtree(dir);
    ck_assert_int_eq(hoist__safetensors_parse(NULL, "x", 1), HOIST_E_INVALID_ARG);
}
END_TEST

/* A header of many tensors parses, and in offset order whatever the JSON order. */
START_TEST(many_tensors)
{
    const size_t n = 20000;
    char *h = malloc(n * 96 + 16), *p = h;
    p += sprintf(p, "{");
    for (size_t i = 0; i < n; i++) {
        size_t j = n - 1 - i; /* reverse order in the JSON */
        p += sprintf(p, "%s\"t%zu\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[%zu,%zu]}",
                     i ? "," : "", j, j * 4, j * 4 + 4);
    }
    sprintf(p, "}");
    char *data = calloc(n, 4);
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "many.safetensors");
    tu_write_safetensors(path, h, data, n * 4);
    hoist__table t;
    hoist__table_init(&t);
    ck_assert_int_eq(hoist__safetensors_parse(&t, path, 1), HOIST_OK);
    ck_assert_uint_eq(t.ntensors, n);
    uint64_t ds = 8 + strlen(h);
    for (size_t i = 0; i < n; i++) ck_assert_uint_eq(t.tensors[i].offset, ds + 4 * i);
    ck_assert_str_eq(t.tensors[n - 1].name, "t19999");
    ck_assert_int_eq(hoist__table_finish(&t), HOIST_OK);
    ck_assert_uint_eq(t.total_bytes, 4 * n);
    hoist__table_free(&t);
    free(path);
    tu_rmtree(dir);
    free(data);
    free(h);
}
END_TEST

/* Every committed file is exercised: a bad file in BAD[], a valid one (v14_*) by a test above. */
START_TEST(every_file_tested)
{
    static const char *valid[] = {
        "v14_empty_header.safetensors", "v14_only_metadata.safetensors",
        "v14_metadata_null.safetensors", "v14_metadata_order.safetensors",
        "v14_zero_size.safetensors",    "v14_all_zero_size.safetensors",
        "v14_scalar.safetensors",       "v14_padded_header.safetensors",
        "v14_unicode_names.safetensors", "v14_sub_byte.safetensors",
        "v14_all_dtypes.safetensors",
    };
    char *dirpath = tu_data("safetensors");
    DIR *d = opendir(dirpath);
    ck_assert_ptr_nonnull(d);
    int seen = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        if (n < 12 || strcmp(e->d_name + n - 12, ".safetensors") != 0) continue;
        int found = 0;
        for (int i = 0; i < NBAD && !found; i++) found = strcmp(BAD[i].file, e->d_name) == 0;
        for (size_t i = 0; i < sizeof valid / sizeof valid[0] && !found; i++)
            found = strcmp(valid[i], e->d_name) == 0;
        ck_assert_msg(found, "%s is in tests/data/safetensors but no test parses it", e->d_name);
        seen++;
    }
    closedir(d);
    free(dirpath);
    ck_assert_int_eq(seen, NBAD + (int)(sizeof valid / sizeof valid[0]));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("bad");
    tcase_add_loop_test(tc, bad_file, 0, NBAD);
    suite_add_tcase(s, tc);

    tc = tcase_create("valid");
    tcase_add_test(tc, empty_header);
    tcase_add_test(tc, only_metadata);
    tcase_add_test(tc, metadata_null);
    tcase_add_test(tc, metadata_order);
    tcase_add_test(tc, zero_size);
    tcase_add_test(tc, all_zero_size);
    tcase_add_test(tc, scalar);
    tcase_add_test(tc, padded_header);
    tcase_add_test(tc, unicode_names);
    tcase_add_test(tc, sub_byte);
    tcase_add_test(tc, all_dtypes);
    tcase_add_test(tc, file_record);
    tcase_add_test(tc, trailing_lenient);
    tcase_add_test(tc, every_file_tested);
    suite_add_tcase(s, tc);

    tc = tcase_create("generated");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, deep_nesting);
    tcase_add_test(tc, long_names);
    tcase_add_test(tc, not_regular);
    tcase_add_test(tc, open_errors);
    tcase_add_test(tc, many_tensors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
