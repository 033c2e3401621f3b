/* hoist inspect: the tensor table of a model, its shards, totals and dtype histogram. */
#include "cli_util.h"

#include "hoist.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: hoist inspect PATH [--json] [--lenient]\n\n"
               "PATH is a .safetensors file, a model directory or a model.safetensors.index.json.\n"
               "  --json     machine-readable output\n"
               "  --lenient  accept trailing bytes after the data section (with a warning)\n");
}

static uint64_t elements(const hoist_tensor_info *t)
{
    unsigned bits = hoist_dtype_bits(t->dtype);
    return bits ? t->nbytes * 8 / bits : 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void shape_text(const hoist_tensor_info *t, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (uint32_t d = 0; d < t->ndim && n < len; d++)
        n += (size_t)snprintf(buf + n, len - n, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

typedef struct histogram {
    uint64_t tensors[HOIST_DTYPE_COUNT], bytes[HOIST_DTYPE_COUNT];
    uint64_t params;
} histogram;

static void tally(const hoist_model *m, histogram *h)
{
    memset(h, 0, sizeof *h);
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info t;
        hoist_model_tensor(m, i, &t);
        h->tensors[t.dtype]++;
        h->bytes[t.dtype] += t.nbytes;
        h->params += elements(&t);
    }
}

static int print_json(const hoist_model *m)
{
    histogram h;
    tally(m, &h);
    json_t *root = json_object(), *files = json_array(), *tensors = json_array();
    json_t *dtypes = json_object(), *meta = json_object();
    for (size_t i = 0; i < hoist_model_file_count(m); i++)
        json_array_append_new(files, json_pack("{s:s, s:I}", "path", hoist_model_file_path(m, i),
                                               "size", (json_int_t)hoist_model_file_size(m, i)));
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info t;
        hoist_model_tensor(m, i, &t);
        json_t *shape = json_array();
        for (uint32_t d = 0; d < t.ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t.shape[d]));
        json_array_append_new(
            tensors, json_pack("{s:s, s:s, s:o, s:I, s:s, s:I}", "name", t.name, "dtype",
                               hoist_dtype_name(t.dtype), "shape", shape, "bytes",
                               (json_int_t)t.nbytes, "file",
                               base_name(hoist_model_file_path(m, t.file)), "offset",
                               (json_int_t)t.offset));
    }
    for (int d = 0; d < HOIST_DTYPE_COUNT; d++)
        if (h.tensors[d])
            json_object_set_new(dtypes, hoist_dtype_name((hoist_dtype)d),
                                json_pack("{s:I, s:I}", "tensors", (json_int_t)h.tensors[d],
                                          "bytes", (json_int_t)h.bytes[d]));
    for (size_t i = 0; i < hoist_model_metadata_count(m); i++) {
        const char *k, *v;
        hoist_model_metadata(m, i, &k, &v);
        json_object_set_new(meta, k, json_string(v));
    }
    json_object_set_new(root, "files", files);
    json_object_set_new(root, "tensors", tensors);
    json_object_set_new(root, "total_bytes", json_integer((json_int_t)hoist_model_total_bytes(m)));
    json_object_set_new(root, "parameters", json_integer((json_int_t)h.params));
    json_object_set_new(root, "dtypes", dtypes);
    json_object_set_new(root, "metadata", meta);
    int rc = json_dumpf(root, stdout, JSON_INDENT(2)) == 0 ? 0 : 1;
    printf("\n");
    json_decref(root);
    return rc;
}

static void print_table(const hoist_model *m)
{
    char b1[32], shape[160];
    size_t nfiles = hoist_model_file_count(m);
    printf("%-60s %-8s %-22s %14s  %s\n", "tensor", "dtype", "shape", "bytes", "file");
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info t;
        hoist_model_tensor(m, i, &t);
        shape_text(&t, shape, sizeof shape);
        printf("%-60s %-8s %-22s %14llu  %s\n", t.name, hoist_dtype_name(t.dtype), shape,
               (unsigned long long)t.nbytes, base_name(hoist_model_file_path(m, t.file)));
    }
    histogram h;
    tally(m, &h);
    printf("\nfiles: %zu\n", nfiles);
    for (size_t i = 0; i < nfiles; i++)
        printf("  %s  %s\n", hoist_model_file_path(m, i),
               cli_fmt_bytes(hoist_model_file_size(m, i), b1, sizeof b1));
    printf("tensors: %zu\nparameters: %llu (%.3f B)\ntensor bytes: %llu (%s)\n",
           hoist_model_tensor_count(m), (unsigned long long)h.params, (double)h.params / 1e9,
           (unsigned long long)hoist_model_total_bytes(m),
           cli_fmt_bytes(hoist_model_total_bytes(m), b1, sizeof b1));
    printf("dtypes:\n");
    for (int d = 0; d < HOIST_DTYPE_COUNT; d++)
        if (h.tensors[d])
            printf("  %-12s %6llu tensors %14s\n", hoist_dtype_name((hoist_dtype)d),
                   (unsigned long long)h.tensors[d], cli_fmt_bytes(h.bytes[d], b1, sizeof b1));
    if (hoist_model_metadata_count(m)) {
        printf("metadata:\n");
        for (size_t i = 0; i < hoist_model_metadata_count(m); i++) {
            const char *k, *v;
            hoist_model_metadata(m, i, &k, &v);
            printf("  %s = %s\n", k, v);
        }
    }
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--lenient") == 0)
            oo.strict = 0;
        else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || path) {
            cli_error("inspect", "unexpected argument '%s'", argv[i]);
            usage(stderr);
            return 2;
        } else
            path = argv[i];
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    hoist_model *m;
    int rc = hoist_model_open(path, &oo, &m);
    if (rc < 0) return cli_fail("inspect", rc);
    int exit_code = 0;
    if (json)
        exit_code = print_json(m);
    else
        print_table(m);
    hoist_model_free(m);
    return exit_code;
}
