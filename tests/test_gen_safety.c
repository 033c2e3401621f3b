/* `hoist gen` only adds to its folder (tools/gen_outdir.c): it never writes through a symlink,
 * and without --force never replaces or removes a file, refusing with the file's name; with
 * --force it replaces files by renaming over them, leaving what a symlink pointed to alone. */
#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static void setup(void) { dir = tu_mkdtemp(); }
static void teardown(void)
{
    tu_rmtree(dir);
    dir = NULL;
}

static const char VICTIM[] = "not gen's to write\n";

/* dir/m holding the given file, with dir/victim.txt beside it. */
static char *model_dir(void)
{
    char *m = tu_path(dir, "m");
    ck_assert_int_eq(mkdir(m, 0755), 0);
    char *victim = tu_path(dir, "victim.txt");
    tu_write(victim, VICTIM, sizeof VICTIM - 1);
    free(victim);
    return m;
}

static void link_to_victim(const char *m, const char *name)
{
    char *link = tu_path(m, name);
    ck_assert_int_eq(symlink("../victim.txt", link), 0);
    free(link);
}

static void assert_victim_untouched(void)
{
    char *victim = tu_path(dir, "victim.txt");
    size_t len;
    char *text = tu_read(victim, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, sizeof VICTIM - 1);
    ck_assert(memcmp(text, VICTIM, len) == 0);
    free(text);
    free(victim);
}

static void assert_symlink(const char *m, const char *name)
{
    char *p = tu_path(m, name);
    struct stat st;
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert_msg(S_ISLNK(st.st_mode), "%s is no longer the symlink", p);
    free(p);
}

static void assert_regular(const char *m, const char *name)
{
    char *p = tu_path(m, name);
    struct stat st;
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert_msg(S_ISREG(st.st_mode), "%s is not a regular file", p);
    free(p);
}

static void assert_missing(const char *m, const char *name)
{
    char *p = tu_path(m, name);
    struct stat st;
    ck_assert_msg(lstat(p, &st) != 0, "%s exists", p);
    free(p);
}

static void assert_content(const char *m, const char *name, const char *want)
{
    char *p = tu_path(m, name);
    size_t len;
    char *text = tu_read(p, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(len == strlen(want) && memcmp(text, want, len) == 0, "%s was changed", p);
    free(text);
    free(p);
}

/* The names in m, sorted and joined by spaces (dot files included). */
static void listing(const char *m, char *buf, size_t len)
{
    struct dirent **names;
    int n = scandir(m, &names, NULL, alphasort);
    ck_assert_int_ge(n, 0);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *s = names[i]->d_name;
        if (strcmp(s, ".") && strcmp(s, ".."))
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", *buf ? " " : "", s);
        free(names[i]);
    }
    free(names);
}

static int gen(const char *m, const char *flags, char **err)
{
    char args[1024];
    snprintf(args, sizeof args, "gen '%s' --preset tiny --quiet %s", m, flags);
    return tu_run_cli_capture(args, NULL, err);
}

/* config.json -> ../victim.txt: gen refuses, and neither the link nor its target changes. */
START_TEST(test_symlinked_config_is_not_followed)
{
    char *m = model_dir(), *err;
    link_to_victim(m, "config.json");
    ck_assert_int_eq(gen(m, "", &err), 1);
    ck_assert_msg(strstr(err, "config.json"), "the refusal does not name config.json: %s", err);
    free(err);
    assert_victim_untouched();
    assert_symlink(m, "config.json");
    char names[512];
    listing(m, names, sizeof names);
    ck_assert_str_eq(names, "config.json"); /* no weights, no temporaries */
    free(m);
}
END_TEST

/* Any file of a checkpoint already there stops gen, named, before it writes anything. */
START_TEST(test_existing_files_are_kept)
{
    static const char *const existing[] = {"config.json", "model.safetensors.index.json",
                                           "model.safetensors", "model-00001-of-00002.safetensors"};
    const char *name = existing[_i];
    char *m = model_dir(), *err;
    char *p = tu_path(m, name);
    tu_write(p, "keep\n", 5);
    free(p);
    ck_assert_int_eq(gen(m, "", &err), 1);
    ck_assert_msg(strstr(err, name) && strstr(err, "--force"), "'%s' not named in: %s", name,
                  err);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
    free(err);
    assert_content(m, name, "keep\n");
    char names[512];
    listing(m, names, sizeof names);
    ck_assert_str_eq(names, name);
    free(m);
}
END_TEST

/* GGUF writes model.gguf alone: a config.json beside it is none of its business. */
START_TEST(test_gguf_leaves_other_files)
{
    char *m = model_dir(), *err;
    char *p = tu_path(m, "config.json");
    tu_write(p, "keep\n", 5);
    free(p);
    ck_assert_int_eq(gen(m, "--format gguf", &err), 0);
    free(err);
    assert_content(m, "config.json", "keep\n");
    assert_regular(m, "model.gguf");
    ck_assert_int_eq(gen(m, "--format gguf --seed 1", &err), 1);
    ck_assert_msg(strstr(err, "model.gguf"), "%s", err);
    free(err);
    free(m);
}
END_TEST

/* --force renames over the links: the files become gen's, the targets stay as they were. */
START_TEST(test_force_replaces_links_not_targets)
{
    char *m = model_dir(), *err;
    link_to_victim(m, "config.json");
    link_to_victim(m, "model.safetensors");
    ck_assert_int_eq(gen(m, "--force", &err), 0);
    free(err);
    assert_victim_untouched();
    assert_regular(m, "config.json");
    assert_regular(m, "model.safetensors");
    char *cfg = tu_path(m, "config.json");
    json_error_t jerr;
    json_t *c = json_load_file(cfg, 0, &jerr);
    ck_assert_msg(c != NULL, "config.json: %s", jerr.text);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "hidden_size")), 64);
    json_decref(c);
    free(cfg);
    hoist_model *model;
    ck_assert_int_eq(hoist_model_open(m, NULL, &model), HOIST_OK);
    hoist_model_free(model);
    char names[512];
    listing(m, names, sizeof names);
    ck_assert_str_eq(names, "config.json model.safetensors");
    free(m);
}
END_TEST

/* --force replaces a sharded checkpoint with a single file: the old index and shards go, or the
 * index would still send a loader to the old shards. And back again. */
START_TEST(test_force_removes_what_it_replaced)
{
    char *m = model_dir(), *err;
    char names[1024];
    ck_assert_int_eq(gen(m, "--shard-size 96K", &err), 0);
    free(err);
    listing(m, names, sizeof names);
    ck_assert_str_eq(names, "config.json model-00001-of-00003.safetensors "
                            "model-00002-of-00003.safetensors model-00003-of-00003.safetensors "
                            "model.safetensors.index.json");
    ck_assert_int_eq(gen(m, "--force --seed 3", &err), 0);
    free(err);
    listing(m, names, sizeof names);
    ck_assert_str_eq(names, "config.json model.safetensors");
    ck_assert_int_eq(gen(m, "--force --shard-size 128K", &err), 0);
    free(err);
    listing(m, names, sizeof names);
    ck_assert_str_eq(names, "config.json model-00001-of-00002.safetensors "
                            "model-00002-of-00002.safetensors model.safetensors.index.json");
    hoist_model *model;
    ck_assert_int_eq(hoist_model_open(m, NULL, &model), HOIST_OK);
    ck_assert_uint_eq(hoist_model_file_count(model), 2);
    hoist_model_free(model);
    assert_missing(m, "model.safetensors");
    free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gen_safety");
    TCase *tc = tcase_create("outdir");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_symlinked_config_is_not_followed);
    tcase_add_loop_test(tc, test_existing_files_are_kept, 0, 4);
    tcase_add_test(tc, test_gguf_leaves_other_files);
    tcase_add_test(tc, test_force_replaces_links_not_targets);
    tcase_add_test(tc, test_force_removes_what_it_replaced);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
