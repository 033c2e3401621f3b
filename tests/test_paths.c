/* docs/PATHS.md: the Hugging Face hub cache layout (models--org--name/{blobs, refs/main,
 * snapshots/<rev>}, every snapshot file a link to ../../blobs/<hash>) opened from the snapshot
 * folder, from the repo folder and by model id; shard names that leave the directory refused all
 * the same; and a file whose name is swapped after the model was opened caught by the identity
 * recorded at open before a byte of the other file is read. */
#include "source_test_common.h"

#include <dirent.h>
#include <sys/stat.h>

#define ORG "acme"
#define NAME "tiny-llama"
#define REPO "models--" ORG "--" NAME
#define REV "0123456789abcdef0123456789abcdef01234567"

static const hoist_path PATHS[] = {HOIST_PATH_MMAP, HOIST_PATH_STREAM, HOIST_PATH_URING};
#define NPATHS 3

static char *root; /* the hub cache: root/REPO */

static void setup(void) { root = tu_mkdtemp(); }
static void teardown(void) { tu_rmtree(root); }

/* root/gen-<tag>: a model from `hoist gen` (sharded when shard is set). */
static char *gen_model(const char *tag, int sharded)
{
    char name[64], args[1024];
    snprintf(name, sizeof name, "gen-%s", tag);
    char *out = tu_path(root, name);
    snprintf(args, sizeof args, "gen '%s' --preset tiny --quiet%s", out,
             sharded ? " --shard-size 64K" : "");
    ck_assert_int_eq(tu_run_cli(args), 0);
    return out;
}

/* Moves every file of src into REPO/blobs/<hash> and links it from REPO/snapshots/REV/<name> as
 * ../../blobs/<hash>, the way huggingface_hub lays out its cache; refs/main names REV. Returns
 * the snapshot folder. */
static char *make_hub(const char *src)
{
    char *repo = tu_path(root, REPO), *blobs = tu_path(repo, "blobs");
    char *refs = tu_path(repo, "refs"), *snaps = tu_path(repo, "snapshots");
    char *snap = tu_path(snaps, REV), *ref = tu_path(refs, "main");
    ck_assert_int_eq(mkdir(repo, 0755), 0);
    ck_assert_int_eq(mkdir(blobs, 0755), 0);
    ck_assert_int_eq(mkdir(refs, 0755), 0);
    ck_assert_int_eq(mkdir(snaps, 0755), 0);
    ck_assert_int_eq(mkdir(snap, 0755), 0);
    tu_write(ref, REV, strlen(REV)); /* the hub writes it without a newline */
    DIR *d = opendir(src);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    unsigned n = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char hash[65], target[128];
        snprintf(hash, sizeof hash, "%08x%056x", 0x5eed0000u + n++, 0u);
        char *from = tu_path(src, de->d_name), *to = tu_path(blobs, hash);
        char *link = tu_path(snap, de->d_name);
        ck_assert_int_eq(rename(from, to), 0);
        snprintf(target, sizeof target, "../../blobs/%s", hash);
        ck_assert_int_eq(symlink(target, link), 0);
        free(from);
        free(to);
        free(link);
    }
    closedir(d);
    free(repo);
    free(blobs);
    free(refs);
    free(snaps);
    free(ref);
    return snap;
}

/* Every file of m is named inside the snapshot folder (the names the loader reopens and
 * rechecks), and every path loads the model byte for byte. */
static void check_model(hoist_model *m, size_t nfiles)
{
    ck_assert_uint_eq(hoist_model_file_count(m), nfiles);
    for (size_t i = 0; i < nfiles; i++)
        ck_assert_msg(strstr(hoist_model_file_path(m, i), REPO "/snapshots/" REV "/") != NULL,
                      "%s", hoist_model_file_path(m, i));
    for (int p = 0; p < NPATHS; p++) {
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = PATHS[p];
        hoist_weights *w = NULL;
        int rc = hoist_load(m, &o, &w);
        ck_assert_msg(rc == HOIST_OK, "%s: %s: %s", hoist_path_name(PATHS[p]),
                      hoist_status_name(rc), hoist_last_error());
        tu_assert_weights_match_files(m, w);
        hoist_weights_free(w);
    }
}

START_TEST(test_snapshot_sharded)
{
    char *src = gen_model("sharded", 1);
    char *snap = make_hub(src);
    hoist_model *m = tu_open_ok(snap);
    check_model(m, 5);
    ck_assert_uint_eq(hoist_model_tensor_count(m), 21);
    hoist_model_free(m);
    /* the index named by its own path (itself a link) reads its shards beside it */
    char *index = tu_path(snap, "model.safetensors.index.json");
    m = tu_open_ok(index);
    check_model(m, 5);
    hoist_model_free(m);
    free(index);
    free(snap);
    free(src);
}
END_TEST

/* The repo folder: refs/main names the snapshot. Single-file and sharded. */
START_TEST(test_repo_folder)
{
    for (int sharded = 0; sharded < 2; sharded++) {
        char *src = gen_model(sharded ? "s" : "single", sharded);
        char *snap = make_hub(src);
        hoist_model *m = tu_open_ok(snap);
        check_model(m, sharded ? 5 : 1);
        hoist_model_free(m);
        char *repo = tu_path(root, REPO);
        m = tu_open_ok(repo);
        check_model(m, sharded ? 5 : 1);
        hoist_model_free(m);
        tu_rmtree(repo);
        free(snap);
        free(src);
    }
}
END_TEST

/* refs/main that does not name one snapshot folder is refused, naming the repo. */
START_TEST(test_repo_bad_ref)
{
    char *src = gen_model("single", 0);
    char *snap = make_hub(src);
    char *repo = tu_path(root, REPO), *ref = tu_path(repo, "refs/main");
    static const char *const refs[] = {"../../gen-single", "", "deadbeef", "a/b", "..\n"};
    for (int i = 0; i < 5; i++) {
        tu_write(ref, refs[i], strlen(refs[i]));
        hoist_model *m = (hoist_model *)1;
        int rc = hoist_model_open(repo, NULL, &m);
        ck_assert_msg(rc == HOIST_E_NOT_FOUND, "'%s': %s: %s", refs[i], hoist_status_name(rc),
                      hoist_last_error());
        ck_assert_ptr_null(m);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), REPO));
        ck_assert_msg(strstr(hoist_last_error(), "refs/main"), "%s", hoist_last_error());
    }
    free(ref);
    free(repo);
    free(snap);
    free(src);
}
END_TEST

/* org/name, where no such path exists, is looked up in HF_HUB_CACHE, else HF_HOME/hub; an
 * existing path of the same name wins. */
START_TEST(test_model_id)
{
    char *src = gen_model("sharded", 1);
    char *snap = make_hub(src);
    char *cwd = tu_path(root, "elsewhere");
    ck_assert_int_eq(mkdir(cwd, 0755), 0);
    ck_assert_int_eq(chdir(cwd), 0);

    ck_assert_int_eq(setenv("HF_HUB_CACHE", root, 1), 0);
    hoist_model *m = tu_open_ok(ORG "/" NAME);
    check_model(m, 5);
    hoist_model_free(m);

    /* HF_HOME/hub: a second cache whose hub/ is a link to the first */
    char *home = tu_path(root, "hf-home"), *hub = tu_path(home, "hub");
    ck_assert_int_eq(mkdir(home, 0755), 0);
    ck_assert_int_eq(symlink(root, hub), 0);
    ck_assert_int_eq(unsetenv("HF_HUB_CACHE"), 0);
    ck_assert_int_eq(setenv("HF_HOME", home, 1), 0);
    m = tu_open_ok(ORG "/" NAME);
    check_model(m, 5);
    hoist_model_free(m);

    /* a model id the cache lacks */
    m = (hoist_model *)1;
    ck_assert_int_eq(hoist_model_open(ORG "/other", NULL, &m), HOIST_E_OPEN);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "models--" ORG "--other"));
    ck_assert_ptr_null(m);

    /* a folder of that name here is what PATH means */
    ck_assert_int_eq(mkdir(ORG, 0755), 0);
    ck_assert_int_eq(mkdir(ORG "/" NAME, 0755), 0);
    ck_assert_int_eq(hoist_model_open(ORG "/" NAME, NULL, &m), HOIST_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "directory holds none"));

    free(hub);
    free(home);
    free(cwd);
    free(snap);
    free(src);
}
END_TEST

/* Shard names that leave the snapshot folder are refused though the blob they name exists:
 * only the file a name ends at may be a link that leads out. */
START_TEST(test_escapes_refused)
{
    char *src = gen_model("sharded", 1);
    char *snap = make_hub(src);
    char *index = tu_path(snap, "model.safetensors.index.json");
    size_t len = 0;
    char *raw = tu_read(index, &len), *text = calloc(1, len + 1);
    ck_assert_ptr_nonnull(raw);
    memcpy(text, raw, len); /* NUL-terminated */
    free(raw);
    char *blob = realpath(index, NULL); /* any blob: the index's own */
    ck_assert_ptr_nonnull(blob);
    const char *hash = strrchr(blob, '/') + 1;
    char rel[256];
    snprintf(rel, sizeof rel, "../../blobs/%s", hash);
    const char *names[] = {rel, blob};
    for (int i = 0; i < 2; i++) {
        /* the first shard's name replaced wherever it appears */
        const char *shard = "model-00001-of-00005.safetensors";
        size_t cap = len * 4 + 1024, n = 0;
        char *out = malloc(cap);
        for (const char *p = text; *p;) {
            const char *hit = strstr(p, shard);
            size_t k = hit ? (size_t)(hit - p) : strlen(p);
            memcpy(out + n, p, k);
            n += k;
            if (!hit) break;
            n += (size_t)snprintf(out + n, cap - n, "%s", names[i]);
            p = hit + strlen(shard);
        }
        ck_assert_int_eq(unlink(index), 0); /* the link, not the blob */
        tu_write(index, out, n);
        hoist_model *m = (hoist_model *)1;
        int rc = hoist_model_open(snap, NULL, &m);
        ck_assert_msg(rc == HOIST_E_PATH_ESCAPE, "%s: %s: %s", names[i], hoist_status_name(rc),
                      hoist_last_error());
        ck_assert_ptr_null(m);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), names[i]));
        free(out);
    }
    free(blob);
    free(text);
    free(index);
    free(snap);
    free(src);
}
END_TEST

/* ---- a name swapped after the model was opened ---- */

static char *swap_from, *swap_to;

/* Stands for the name being re-pointed (rename, a link changed) between the model's open and the
 * load's: the loader's open of swap_from finds swap_to. */
static int swap_open(const char *path, int flags)
{
    if (swap_from && strcmp(path, swap_from) == 0) path = swap_to;
    return open(path, flags);
}

/* In a plain model folder and in a hub snapshot (whose names are links already). */
static void check_swapped_name_caught(const char *model_dir, int hub)
{
    hoist_model *m = tu_open_ok(model_dir);
    /* another file of the same size (a byte of tensor data changed) */
    swap_from = strdup(hoist_model_file_path(m, 2));
    swap_to = tu_path(root, "impostor.safetensors");
    size_t len = 0;
    unsigned char *bytes = tu_read(swap_from, &len);
    ck_assert_ptr_nonnull(bytes);
    bytes[len - 1] ^= 0xff;
    tu_write(swap_to, bytes, len);
    free(bytes);
    hoist__io_set_hooks(&(hoist__io_hooks){.open = swap_open});
    for (int p = 0; p < NPATHS; p++) {
        hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
        o.path = PATHS[p];
        hoist_weights *w = (hoist_weights *)1;
        int rc = hoist_load(m, &o, &w);
        ck_assert_msg(rc == HOIST_E_FILE_CHANGED, "%s: %s: %s", hoist_path_name(PATHS[p]),
                      hoist_status_name(rc), hoist_last_error());
        ck_assert_ptr_null(w);
        ck_assert_ptr_nonnull(strstr(hoist_last_error(), "model-00003-of-00005.safetensors"));
    }
    hoist__io_set_hooks(NULL);
    if (hub) check_model(m, 5); /* the name back: loads */
    hoist_model_free(m);
    unlink(swap_to);
    free(swap_from);
    free(swap_to);
    swap_from = swap_to = NULL;
}

START_TEST(test_swapped_name_caught)
{
    char *src = gen_model("sharded", 1);
    check_swapped_name_caught(src, 0);
    char *snap = make_hub(src);
    check_swapped_name_caught(snap, 1);
    free(snap);
    free(src);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("paths");
    TCase *tc = tcase_create("hub");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_snapshot_sharded);
    tcase_add_test(tc, test_repo_folder);
    tcase_add_test(tc, test_repo_bad_ref);
    tcase_add_test(tc, test_model_id);
    tcase_add_test(tc, test_escapes_refused);
    tcase_add_test(tc, test_swapped_name_caught);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
