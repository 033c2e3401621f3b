/* Helpers for the unit tests: temporary directories, files, and the CLI. */
#ifndef HOIST_TESTUTIL_H
#define HOIST_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "hoist.h"

/* Exit code ctest shows as "skipped". */
#define TU_SKIP 77

/* A hoist_plan_device initializer with its size set. */
#define TU_PLAN_DEVICE(dev, free, reserve)                                                        \
    {.size = sizeof(hoist_plan_device), .device = (dev), .free_bytes = (free),                  \
     .reserve_bytes = (reserve)}

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a malloc'd path. Aborts the test on
 * failure. */
char *tu_mkdtemp(void);
/* Removes a directory tree (rm -rf); NULL is a no-op. Frees path. */
void tu_rmtree(char *path);
/* Joins dir and name into a static-free malloc'd path. */
char *tu_path(const char *dir, const char *name);
/* Writes len bytes to path (created or truncated). Fails the test on error. */
void tu_write(const char *path, const void *data, size_t len);
/* Writes a safetensors file: 8-byte little-endian header length, the header text as given
 * (no padding added), then data_len bytes of data. */
void tu_write_safetensors(const char *path, const char *header, const void *data, size_t data_len);
/* An F32 tensor of tu_write_f32_model: rows x cols (cols 0: a vector of rows); data NULL takes
 * the next values of one reproducible stream in [-0.4, 0.4) that runs through the file. */
typedef struct tu_f32_tensor {
    const char *name;
    int rows, cols;
    const float *data;
} tu_f32_tensor;
/* Writes <mdir>/model.safetensors with the n tensors in order, and <mdir>/config.json with
 * config (NULL: none). Fails the test on error. */
void tu_write_f32_model(const char *mdir, const tu_f32_tensor *t, int n, const char *config);
/* Creates mdir and writes a one-layer F32 Llama into it with every bias Llama's attention_bias
 * and mlp_bias add (q, k, v, o, gate, up, down; each in its own tensor, between the weights):
 * two heads of hidden / 2, one kv head, vocab 300. Fails the test on error. */
void tu_write_biased_llama(const char *mdir, int hidden, int intermediate);
/* Reads a whole file into a malloc'd buffer; *len receives its size. NULL on failure. */
void *tu_read(const char *path, size_t *len);
/* Runs the hoist CLI with the given argument string (passed through /bin/sh); returns its exit
 * status, or -1 if it did not exit normally. */
int tu_run_cli(const char *args);
/* tu_run_cli with the command's stdout and stderr captured: *out and *err (either may be NULL)
 * receive them, malloc'd and NUL-terminated. args must not redirect them itself. */
int tu_run_cli_capture(const char *args, char **out, char **err);
/* `hoist gen <dir>/<dtype> <gen_flags> --dtype <dtype>`, then `hoist pack` of it into
 * <dir>/<dtype>.hoist with pack_flags; the two paths land in mdir and out (512 bytes each). */
void tu_gen_packed(const char *dir, const char *dtype, const char *gen_flags,
                   const char *pack_flags, char *mdir, char *out);
/* hoist_model_open(path) with default options; fails the test, naming the path, the status and
 * hoist's message, when it does not open. The caller frees the model. */
hoist_model *tu_open_ok(const char *path);
/* Path of a file in tests/data (malloc'd). */
char *tu_data(const char *relpath);
/* Writes a single-file safetensors model with `count` U8/BF16/F32/... tensors of odd sizes
 * (1, 3, 7, 4097, 65537 ... bytes) filled with a deterministic pattern from seed; returns the
 * number of data bytes. Every safetensors dtype (BOOL to U64) appears at least once. */
uint64_t tu_write_odd_model(const char *path, int count, uint32_t seed);
/* Asserts that every tensor of w holds exactly the bytes of its file range. */
void tu_assert_weights_match_files(const hoist_model *m, const hoist_weights *w);
/* A "Name: N kB" field of /proc/self/status in bytes (VmHWM, RssFile...); 0 when absent. */
uint64_t tu_status_bytes(const char *field);
/* Current resident set size of this process, in bytes (VmRSS of /proc/self/status). */
uint64_t tu_rss_bytes(void);

/* Runs a Check suite; returns the process exit code (0 when every test passed). */
int tu_run_suite(Suite *s);
/* The same without forking a process per test: CUDA does not survive fork() once initialised. */
int tu_run_suite_nofork(Suite *s);

#endif
