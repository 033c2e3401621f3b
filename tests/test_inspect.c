/* tools/cmd_inspect.c: `hoist inspect --json` on a sharded model lists every tensor once, with
 * the shard the index names for it. */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
