/* Sharded safetensors (model.safetensors.index.json): docs/RELIABILITY.md case 15. One directory per
 * failure mode in tests/data/safetensors/index_NAME; symlink escapes are built at test time. */
#include "testutil.h"

#include "formats/table.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX "model.safetensors.index.json"
#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"

static char *index_of(const char *dirname)
{
    char rel[256];
    snprintf(rel, sizeof rel, "safetensors/%s/" INDEX, dirname);
    return tu_data(rel);
}

static int parse_dir(const char *dirname, int strict, hoist__table *t)
{
    char *path = index_of(dirname);
    hoist__table_init(t);
    int rc = hoist__safetensors_index_parse(t, path, strict);
    free(path);
    return rc;
}

static void check_good_table(hoist__table *t)
{
    ck_assert_uint_eq(t->nfiles, 2);
    ck_assert_ptr_nonnull(strstr(t->files[0].path, SHARD1));
    ck_assert_ptr_nonnull(strstr(t->files[1].path, SHARD2));
    ck_assert_uint_eq(t->ntensors, 4);
    /* __metadata__ of every shard, first value of each key kept */
    ck_assert_uint_eq(t->nmeta, 3);
    ck_assert_str_eq(t->meta[0].key, "format");
    ck_assert_str_eq(t->meta[0].value, "pt");
    ck_assert_str_eq(t->meta[1].key, "shard");
    ck_assert_str_eq(t->meta[1].value, "1");
    ck_assert_str_eq(t->meta[2].key, "extra");
    ck_assert_str_eq(t->meta[2].value, "x");
    ck_assert_int_eq(hoist__table_finish(t), HOIST_OK);
    ck_assert_uint_eq(t->total_bytes, 38);
    static const struct {
        const char *name;
        uint32_t file;
        hoist_dtype dtype;
        uint64_t rel, nbytes;
    } want[] = {
        {"model.embed.weight", 0, HOIST_DTYPE_F32, 0, 16},
        {"model.norm.weight", 0, HOIST_DTYPE_F32, 16, 8},
        {"lm_head.weight", 1, HOIST_DTYPE_F16, 0, 8},
        {"model.layers.0.w", 1, HOIST_DTYPE_BF16, 8, 6},
    };
    for (size_t i = 0; i < 4; i++) {
        long k = hoist__table_find(t, want[i].name);
        ck_assert_int_ge(k, 0);
        const hoist__tensor *x = &t->tensors[k];
        ck_assert_uint_eq(x->file, want[i].file);
        ck_assert_int_eq(x->dtype, want[i].dtype);
        ck_assert_uint_eq(x->offset, t->files[x->file].data_start + want[i].rel);
        ck_assert_uint_eq(x->nbytes, want[i].nbytes);
    }
}

START_TEST(good)
{
    hoist__table t;
    ck_assert_int_eq(parse_dir("index_good", 1, &t), HOIST_OK);
    check_good_table(&t);
    hoist__table_free(&t);
}
END_TEST

/* An index named without a directory resolves shards against the current one. */
START_TEST(relative_index)
{
    char *dir = tu_data("safetensors/index_good");
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(dir), 0);
    hoist__table t;
    hoist__table_init(&t);
    int rc = hoist__safetensors_index_parse(&t, INDEX, 1);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rc == HOIST_OK, "%s", hoist_last_error());
    ck_assert_str_eq(t.files[0].path, SHARD1);
    check_good_table(&t);
    hoist__table_free(&t);
    free(dir);
}
END_TEST

typedef struct bad_case {
    const char *dir;
    int status;
    const char *want1, *want2; /* substrings the message must hold, or NULL */
} bad_case;

static const bad_case BAD[] = {
    {"index_missing_shard", HOIST_E_MISSING_SHARD, SHARD2, "missing"},
    {"index_absent_tensor", HOIST_E_BAD_INDEX, "'ghost'", SHARD1},
    {"index_unlisted_tensor", HOIST_E_BAD_INDEX, "'model.layers.0.w'", SHARD2},
    {"index_wrong_shard", HOIST_E_BAD_INDEX, "'model.norm.weight'", SHARD2},
    {"index_dotdot", HOIST_E_PATH_ESCAPE, "../" SHARD1, NULL},
    {"index_dotdot_nested", HOIST_E_PATH_ESCAPE, "sub/../../" SHARD1, NULL},
    {"index_absolute", HOIST_E_PATH_ESCAPE, "/etc/hostname", NULL},
    {"index_duplicate_tensor", HOIST_E_DUPLICATE_KEY, "'model.norm.weight'", SHARD2},
    {"index_duplicate_key", HOIST_E_DUPLICATE_KEY, "lm_head.weight", NULL},
    {"index_no_weight_map", HOIST_E_BAD_INDEX, "weight_map", NULL},
    {"index_weight_map_array", HOIST_E_BAD_INDEX, "weight_map", NULL},
    {"index_weight_map_number", HOIST_E_BAD_INDEX, "'model.norm.weight'", NULL},
    {"index_empty_shard_name", HOIST_E_BAD_INDEX, "'model.norm.weight'", NULL},
    {"index_metadata_string", HOIST_E_BAD_INDEX, "metadata", NULL},
    {"index_not_object", HOIST_E_BAD_INDEX, "array", NULL},
    {"index_bad_json", HOIST_E_BAD_JSON, NULL, NULL},
    /* a bad shard's own status and message, naming the shard */
    {"index_bad_shard", HOIST_E_TRUNCATED_HEADER, SHARD2, NULL},
};
#define NBAD ((int)(sizeof BAD / sizeof BAD[0]))

START_TEST(bad_dir)
{
    const bad_case *c = &BAD[_i];
    hoist__table t;
    int rc = parse_dir(c->dir, 1, &t);
    const char *msg = hoist_last_error();
    ck_assert_msg(rc == c->status, "%s: got %s, want %s (%s)", c->dir, hoist_status_name(rc),
                  hoist_status_name(c->status), msg);
    ck_assert_msg(strstr(msg, c->dir) != NULL, "%s: message does not name the index: %s", c->dir,
                  msg);
    if (c->want1)
        ck_assert_msg(strstr(msg, c->want1) != NULL, "%s: message lacks \"%s\": %s", c->dir,
                      c->want1, msg);
    if (c->want2)
        ck_assert_msg(strstr(msg, c->want2) != NULL, "%s: message lacks \"%s\": %s", c->dir,
                      c->want2, msg);
    hoist__table_free(&t);
}
END_TEST

/* Copies a file from the good index directory into dir/name. */
static void copy_good(const char *src, const char *dir, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "safetensors/index_good/%s", src);
    char *from = tu_data(rel);
    size_t len = 0;
    void *buf = tu_read(from, &len);
    ck_assert_ptr_nonnull(buf);
    char *to = tu_path(dir, name);
    tu_write(to, buf, len);
    free(to);
    free(buf);
    free(from);
}

static int parse_index_in(const char *dir, int strict)
{
    char *path = tu_path(dir, INDEX);
    hoist__table t;
    hoist__table_init(&t);
    int rc = hoist__safetensors_index_parse(&t, path, strict);
    if (rc == HOIST_OK) check_good_table(&t);
    hoist__table_free(&t);
    free(path);
    return rc;
}

/* docs/PATHS.md: the shard's name must stay inside the model directory, but the shard file itself
 * may be a symbolic link to anywhere (the Hugging Face hub cache links every snapshot file to
 * ../../blobs/<hash>); a directory on the shard's path may not be one. */
START_TEST(symlinks)
{
    char *root = tu_mkdtemp();
    char *model = tu_path(root, "model");
    char *outside = tu_path(root, "outside");
    char *inner = tu_path(model, "blobs");
    ck_assert_int_eq(mkdir(model, 0755), 0);
    ck_assert_int_eq(mkdir(outside, 0755), 0);
    ck_assert_int_eq(mkdir(inner, 0755), 0);
    copy_good(INDEX, model, INDEX);
    copy_good(SHARD1, model, SHARD1);
    copy_good(SHARD2, outside, SHARD2);
    copy_good(SHARD2, inner, SHARD2);
    char *link = tu_path(model, SHARD2);

    /* the shard file a link out of the directory, relative and absolute: followed */
    ck_assert_int_eq(symlink("../outside/" SHARD2, link), 0);
    ck_assert_msg(parse_index_in(model, 1) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_int_eq(unlink(link), 0);
    char *abs_target = tu_path(outside, SHARD2);
    ck_assert_int_eq(symlink(abs_target, link), 0);
    ck_assert_msg(parse_index_in(model, 1) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_int_eq(unlink(link), 0);

    /* a symlink to a file inside the model directory */
    ck_assert_int_eq(symlink("blobs/" SHARD2, link), 0);
    ck_assert_int_eq(parse_index_in(model, 1), HOIST_OK);
    ck_assert_int_eq(unlink(link), 0);

    /* dangling symlink: the shard is missing */
    ck_assert_int_eq(symlink("blobs/nothing.safetensors", link), 0);
    ck_assert_int_eq(parse_index_in(model, 1), HOIST_E_MISSING_SHARD);
    ck_assert_int_eq(unlink(link), 0);

    /* a shard that is a directory */
    ck_assert_int_eq(mkdir(link, 0755), 0);
    ck_assert_int_eq(parse_index_in(model, 1), HOIST_E_NOT_REGULAR);
    ck_assert_int_eq(rmdir(link), 0);

    /* the model directory reached through a symlink is fine */
    copy_good(SHARD2, model, SHARD2);
    char *alias = tu_path(root, "alias");
    ck_assert_int_eq(symlink("model", alias), 0);
    ck_assert_int_eq(parse_index_in(alias, 1), HOIST_OK);

    free(alias);
    free(abs_target);
    free(link);
    free(inner);
    free(outside);
    free(model);
    tu_rmtree(root);
}
END_TEST

/* Writes an index mapping every tensor of the good model to `shard1` and `shard2`. */
static void write_index(const char *dir, const char *shard1, const char *shard2)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"weight_map\": {\"model.embed.weight\": \"%s\", \"model.norm.weight\": \"%s\", "
             "\"lm_head.weight\": \"%s\", \"model.layers.0.w\": \"%s\"}}",
             shard1, shard1, shard2, shard2);
    char *path = tu_path(dir, INDEX);
    tu_write(path, text, strlen(text));
    free(path);
}

/* A directory on a shard's path is opened without following a link: one that is a link (which
 * could lead anywhere) is refused, even to a directory inside the model; a real one is fine. Names
 * with an empty component are refused before anything is opened. */
START_TEST(directory_links_and_empty_components)
{
    char *root = tu_mkdtemp();
    char *model = tu_path(root, "model"), *sub = tu_path(model, "sub");
    char *outside = tu_path(root, "outside"), *alias = tu_path(model, "alias");
    ck_assert_int_eq(mkdir(model, 0755), 0);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(mkdir(outside, 0755), 0);
    copy_good(SHARD1, sub, SHARD1);
    copy_good(SHARD2, sub, SHARD2);
    copy_good(SHARD2, outside, SHARD2);

    write_index(model, "sub/" SHARD1, "sub/" SHARD2);
    ck_assert_msg(parse_index_in(model, 1) == HOIST_OK, "%s", hoist_last_error());

    ck_assert_int_eq(symlink("../outside", alias), 0);
    write_index(model, "sub/" SHARD1, "alias/" SHARD2);
    ck_assert_int_eq(parse_index_in(model, 1), HOIST_E_PATH_ESCAPE);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "'alias'"));
    ck_assert_int_eq(unlink(alias), 0);
    ck_assert_int_eq(symlink("sub", alias), 0);
    ck_assert_int_eq(parse_index_in(model, 1), HOIST_E_PATH_ESCAPE);

    static const char *const empty[] = {"sub//" SHARD2, "sub/" SHARD2 "/", "/" SHARD2};
    for (int i = 0; i < 3; i++) {
        write_index(model, "sub/" SHARD1, empty[i]);
        int rc = parse_index_in(model, 1);
        ck_assert_msg(rc == (i == 2 ? HOIST_E_PATH_ESCAPE : HOIST_E_BAD_INDEX), "%s: %s: %s",
                      empty[i], hoist_status_name(rc), hoist_last_error());
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), empty[i]));
    }
    free(alias);
    free(outside);
    free(sub);
    free(model);
    tu_rmtree(root);
}
END_TEST

/* strict is passed to every shard: trailing bytes in one shard. */
START_TEST(strict_passes_through)
{
    char *dir = tu_mkdtemp();
    copy_good(INDEX, dir, INDEX);
    copy_good(SHARD1, dir, SHARD1);
    char rel[256];
    snprintf(rel, sizeof rel, "safetensors/index_good/%s", SHARD2);
    char *from = tu_data(rel);
    size_t len = 0;
    char *buf = tu_read(from, &len);
    ck_assert_ptr_nonnull(buf);
    char *grown = malloc(len + 5);
    memcpy(grown, buf, len);
    memset(grown + len, 0, 5);
    char *to = tu_path(dir, SHARD2);
    tu_write(to, grown, len + 5);
    ck_assert_int_eq(parse_index_in(dir, 1), HOIST_E_TRAILING_BYTES);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), SHARD2));
    ck_assert_int_eq(parse_index_in(dir, 0), HOIST_OK);
    free(to);
    free(grown);
    free(buf);
    free(from);
    tu_rmtree(dir);
}
END_TEST

START_TEST(index_file_errors)
{
    hoist__table t;
    hoist__table_init(&t);
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, INDEX);
    ck_assert_int_eq(hoist__safetensors_index_parse(&t, path, 1), HOIST_E_OPEN);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), path));
    ck_assert_int_eq(hoist__safetensors_index_parse(&t, dir, 1), HOIST_E_NOT_REGULAR);
    /* an empty weight_map is an empty model */
    tu_write(path, "{\"weight_map\": {}}", 18);
    ck_assert_int_eq(hoist__safetensors_index_parse(&t, path, 1), HOIST_OK);
    ck_assert_uint_eq(t.nfiles, 0);
    ck_assert_uint_eq(t.ntensors, 0);
    ck_assert_int_eq(hoist__safetensors_index_parse(NULL, path, 1), HOIST_E_INVALID_ARG);
    hoist__table_free(&t);
    free(path);
    tu_rmtree(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("safetensors_index");
    TCase *tc = tcase_create("index");
    tcase_add_test(tc, good);
    tcase_add_test(tc, relative_index);
    tcase_add_loop_test(tc, bad_dir, 0, NBAD);
    tcase_add_test(tc, symlinks);
    tcase_add_test(tc, directory_links_and_empty_components);
    tcase_add_test(tc, strict_passes_through);
    tcase_add_test(tc, index_file_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
