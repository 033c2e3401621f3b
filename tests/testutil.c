#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <execinfo.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = tu_path(base && *base ? base : "/tmp", "hoist-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    return tmpl;
}

void tu_rmtree(char *path)
{
    if (!path) return;
    char *cmd = malloc(strlen(path) + 16);
    sprintf(cmd, "rm -rf '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    free(path);
}

char *tu_path(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    ck_assert_ptr_nonnull(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

void tu_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    if (len) ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

void tu_write_safetensors(const char *path, const char *header, const void *data, size_t data_len)
{
    size_t hlen = strlen(header);
    size_t total = 8 + hlen + data_len;
    unsigned char *buf = malloc(total ? total : 1);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    if (data_len) memcpy(buf + 8 + hlen, data, data_len);
    tu_write(path, buf, total);
    free(buf);
}

void tu_write_f32_model(const char *mdir, const tu_f32_tensor *t, int n, const char *config)
{
    char header[8192] = "{";
    size_t off = 0, total = 0;
    for (int i = 0; i < n; i++) total += (size_t)t[i].rows * (t[i].cols ? t[i].cols : 1) * 4;
    float *data = malloc(total ? total : 1);
    ck_assert_ptr_nonnull(data);
    uint32_t lcg = 12345;
    for (int i = 0; i < n; i++) {
        size_t count = (size_t)t[i].rows * (t[i].cols ? t[i].cols : 1), bytes = count * 4;
        float *dst = data + off / 4;
        for (size_t k = 0; k < count; k++) {
            lcg = lcg * 1664525u + 1013904223u;
            dst[k] = t[i].data ? t[i].data[k] : ((float)(lcg >> 8) / 16777216.0f - 0.5f) * 0.8f;
        }
        char shape[32];
        if (t[i].cols)
            snprintf(shape, sizeof shape, "[%d, %d]", t[i].rows, t[i].cols);
        else
            snprintf(shape, sizeof shape, "[%d]", t[i].rows);
        size_t used = strlen(header);
        int w = snprintf(header + used, sizeof header - used,
                         "%s\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                         i ? "," : "", t[i].name, shape, off, off + bytes);
        ck_assert_msg(w > 0 && (size_t)w < sizeof header - used - 1, "header of %d tensors", n);
        off += bytes;
    }
    strcat(header, "}");
    char *p = tu_path(mdir, "model.safetensors");
    tu_write_safetensors(p, header, data, total);
    free(p);
    free(data);
    if (!config) return;
    p = tu_path(mdir, "config.json");
    tu_write(p, config, strlen(config));
    free(p);
}

void tu_write_biased_llama(const char *mdir, int hidden, int intermediate)
{
    ck_assert_msg(mkdir(mdir, 0755) == 0 || errno == EEXIST, "mkdir %s", mdir);
    const int h = hidden, kv = hidden / 2, in = intermediate;
    const tu_f32_tensor t[] = {
        {"model.embed_tokens.weight", 300, h, NULL},
        {"model.layers.0.input_layernorm.weight", h, 0, NULL},
        {"model.layers.0.self_attn.q_proj.weight", h, h, NULL},
        {"model.layers.0.self_attn.q_proj.bias", h, 0, NULL},
        {"model.layers.0.self_attn.k_proj.weight", kv, h, NULL},
        {"model.layers.0.self_attn.k_proj.bias", kv, 0, NULL},
        {"model.layers.0.self_attn.v_proj.weight", kv, h, NULL},
        {"model.layers.0.self_attn.v_proj.bias", kv, 0, NULL},
        {"model.layers.0.self_attn.o_proj.weight", h, h, NULL},
        {"model.layers.0.self_attn.o_proj.bias", h, 0, NULL},
        {"model.layers.0.post_attention_layernorm.weight", h, 0, NULL},
        {"model.layers.0.mlp.gate_proj.weight", in, h, NULL},
        {"model.layers.0.mlp.gate_proj.bias", in, 0, NULL},
        {"model.layers.0.mlp.up_proj.weight", in, h, NULL},
        {"model.layers.0.mlp.up_proj.bias", in, 0, NULL},
        {"model.layers.0.mlp.down_proj.weight", h, in, NULL},
        {"model.layers.0.mlp.down_proj.bias", h, 0, NULL},
        {"model.norm.weight", h, 0, NULL},
        {"lm_head.weight", 300, h, NULL},
    };
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"llama\", \"hidden_size\": %d, \"intermediate_size\": %d, "
             "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
             "\"num_key_value_heads\": 1, \"vocab_size\": 300, \"rms_norm_eps\": 1e-5, "
             "\"rope_theta\": 100.0, \"attention_bias\": true, \"mlp_bias\": true}",
             h, in);
    tu_write_f32_model(mdir, t, (int)(sizeof t / sizeof *t), cfg);
}

void *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf && len) *len = (size_t)n;
    return buf;
}

/* The build tree's paths are compiled in; HOIST_CLI and HOIST_TEST_DATA in the environment
 * override them where the tree travelled (the device machine). */
static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

void tu_gen_packed(const char *dir, const char *dtype, const char *gen_flags,
                   const char *pack_flags, char *mdir, char *out)
{
    char args[2048];
    snprintf(mdir, 512, "%s/%s", dir, dtype);
    snprintf(out, 512, "%s/%s.hoist", dir, dtype);
    snprintf(args, sizeof args, "gen '%s' %s --dtype %s --quiet", mdir, gen_flags, dtype);
    ck_assert_msg(tu_run_cli(args) == 0, "hoist %s", args);
    snprintf(args, sizeof args, "pack '%s' '%s' %s > /dev/null", mdir, out, pack_flags);
    ck_assert_msg(tu_run_cli(args) == 0, "hoist %s", args);
}

hoist_model *tu_open_ok(const char *path)
{
    hoist_model *m = NULL;
    int rc = hoist_model_open(path, NULL, &m);
    ck_assert_msg(rc == HOIST_OK, "%s: %s: %s", path, hoist_status_name(rc), hoist_last_error());
    return m;
}

int tu_run_cli(const char *args)
{
    const char *cli = env_or("HOIST_CLI", HOIST_CLI);
    char *cmd = malloc(strlen(cli) + strlen(args) + 8);
    sprintf(cmd, "'%s' %s", cli, args);
    int rc = system(cmd);
    free(cmd);
    if (rc == -1 || !WIFEXITED(rc)) return -1;
    return WEXITSTATUS(rc);
}

static char *read_text(const char *path)
{
    size_t len = 0;
    char *text = tu_read(path, &len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    text = realloc(text, len + 1);
    ck_assert_ptr_nonnull(text);
    text[len] = '\0';
    return text;
}

/* A new empty file under $TMPDIR (or /tmp); its malloc'd path. */
static char *temp_file(void)
{
    const char *base = getenv("TMPDIR");
    char *path = tu_path(base && *base ? base : "/tmp", "hoist-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemp %s", path);
    close(fd);
    return path;
}

int tu_run_cli_capture(const char *args, char **out, char **err)
{
    char *out_path = temp_file(), *err_path = temp_file();
    char *cmd = malloc(strlen(args) + strlen(out_path) + strlen(err_path) + 16);
    ck_assert_ptr_nonnull(cmd);
    sprintf(cmd, "%s > '%s' 2> '%s'", args, out_path, err_path);
    int rc = tu_run_cli(cmd);
    if (out) *out = read_text(out_path);
    if (err) *err = read_text(err_path);
    unlink(out_path);
    unlink(err_path);
    free(cmd);
    free(out_path);
    free(err_path);
    return rc;
}

char *tu_data(const char *relpath) { return tu_path(env_or("HOIST_TEST_DATA", HOIST_TEST_DATA), relpath); }

static int run_suite(Suite *s, int fork)
{
    SRunner *sr = srunner_create(s);
    if (!fork) srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

uint64_t tu_write_odd_model(const char *path, int count, uint32_t seed)
{
    /* sizes cycle through awkward element counts; dtypes cycle through the whole list */
    static const uint64_t elems[] = {1, 3, 7, 4097, 65537, 2, 255, 1u << 20, 131071, 9};
    size_t hcap = 256 + (size_t)count * 160, hlen = 0;
    char *header = malloc(hcap);
    ck_assert_ptr_nonnull(header);
    uint64_t off = 0;
    hlen += (size_t)snprintf(header + hlen, hcap - hlen, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < count; i++) {
        hoist_dtype dt = (hoist_dtype)(i % (HOIST_DTYPE_U64 + 1)); /* the safetensors dtypes */
        uint64_t n = elems[i % 10] * 2; /* even, so 4- and 6-bit dtypes fill whole bytes */
        if (hoist_dtype_bits(dt) == 6) n = elems[i % 10] * 4;
        uint64_t bytes = n * hoist_dtype_bits(dt) / 8;
        hlen += (size_t)snprintf(header + hlen, hcap - hlen,
                                 ",\"t%03d\":{\"dtype\":\"%s\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}",
                                 i, hoist_dtype_name(dt), (unsigned long long)n,
                                 (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    hlen += (size_t)snprintf(header + hlen, hcap - hlen, "}");
    ck_assert_uint_lt(hlen, hcap);
    unsigned char *data = malloc(off ? off : 1);
    ck_assert_ptr_nonnull(data);
    uint32_t x = seed ? seed : 1;
    for (uint64_t i = 0; i < off; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    tu_write_safetensors(path, header, data, off);
    free(header);
    free(data);
    return off;
}

void tu_assert_weights_match_files(const hoist_model *m, const hoist_weights *w)
{
    size_t n = hoist_model_tensor_count(m);
    ck_assert_uint_eq(hoist_weights_count(w), n);
    int *fds = calloc(hoist_model_file_count(m) + 1, sizeof *fds);
    for (size_t f = 0; f < hoist_model_file_count(m); f++) {
        fds[f] = open(hoist_model_file_path(m, f), O_RDONLY);
        ck_assert_int_ge(fds[f], 0);
    }
    for (size_t i = 0; i < n; i++) {
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        hoist_view v = HOIST_VIEW_INIT;
        ck_assert_int_eq(hoist_model_tensor(m, i, &t), HOIST_OK);
        ck_assert_int_eq(hoist_weights_view(w, i, &v), HOIST_OK);
        ck_assert_str_eq(v.name, t.name);
        ck_assert_uint_eq(v.nbytes, t.nbytes);
        ck_assert_uint_eq((uintptr_t)v.data % 64, 0);
        unsigned char *want = malloc(t.nbytes + 1), *got = malloc(t.nbytes + 1);
        ck_assert(want && got);
        ck_assert_int_eq(pread(fds[t.file], want, t.nbytes, (off_t)t.offset), (ssize_t)t.nbytes);
        ck_assert_int_eq(hoist_weights_read(w, i, 0, got, t.nbytes), HOIST_OK);
        ck_assert_msg(memcmp(want, got, t.nbytes) == 0, "tensor %s differs from its file", t.name);
        free(want);
        free(got);
    }
    for (size_t f = 0; f < hoist_model_file_count(m); f++) close(fds[f]);
    free(fds);
}

uint64_t tu_status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t n = strlen(field);
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':' &&
            sscanf(line + n + 1, "%llu", &kb) == 1)
            break;
    if (f) fclose(f);
    return (uint64_t)kb * 1024;
}

uint64_t tu_rss_bytes(void) { return tu_status_bytes("VmRSS"); }

int tu_run_suite(Suite *s) { return run_suite(s, 1); }

#ifndef __SANITIZE_ADDRESS__ /* ASan reports SIGBUS itself */
/* Without a process per test a SIGBUS kills the whole run without naming where: say where, then
 * die of it as before. The loader's own guard passes on only the SIGBUS that is not its own. */
static void report_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    static const char head[] = "\n*** SIGBUS outside the loader's guards; backtrace:\n";
    if (write(2, head, sizeof head - 1) < 0) _exit(128 + sig);
    void *frames[64];
    backtrace_symbols_fd(frames, backtrace(frames, 64), 2);
    char line[64];
    int n = snprintf(line, sizeof line, "*** fault address %p\n", si ? si->si_addr : NULL);
    if (n > 0 && write(2, line, (size_t)n) < 0) _exit(128 + sig);
    signal(sig, SIG_DFL);
    raise(sig);
}
#endif

int tu_run_suite_nofork(Suite *s)
{
#ifndef __SANITIZE_ADDRESS__ /* ASan reports SIGBUS itself */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = report_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGBUS, &sa, NULL);
#endif
    return run_suite(s, 0);
}
