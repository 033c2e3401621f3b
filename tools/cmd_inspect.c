/* hoist inspect: the tensor table of a model, its shards, totals, dtype histogram and metadata
 * (GGUF's typed: arrays shown by their first elements). */
#include "cli_util.h"

#include "hoist.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: hoist inspect PATH [--json] [--lenient]\n\n"
               "PATH is a .safetensors or .gguf file, a packed container, a model directory or a\n"
               "model.safetensors.index.json.\n"
               "  --json     machine-readable output\n"
               "  --lenient  accept trailing bytes after the data section (with a warning)\n"
               "  --help     this text\n");
}

enum { OPT_JSON = 256, OPT_LENIENT };

static const struct option options[] = {
    {"help", no_argument, NULL, 'h'},
    {"json", no_argument, NULL, OPT_JSON},
    {"lenient", no_argument, NULL, OPT_LENIENT},
    {0},
};

/* CLI_CONTINUE with *path, *json and oo set; else the exit status. */
static int parse(int argc, char **argv, const char **path, int *json, hoist_open_options *oo)
{
    cli_parser p;
    cli_parser_init(&p, "inspect", argc, argv, options, "h");
    for (int c; (c = cli_next_option(&p)) != -1;) {
        if (c == 'h') {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (c == OPT_JSON) {
            *json = 1;
        } else if (c == OPT_LENIENT) {
            oo->strict = 0;
        } else {
            return cli_bad_option(&p, c);
        }
    }
    *path = p.operand[0];
    return cli_operands(&p, 1, 1, (const char *const[]){"PATH"});
}

static uint64_t elements(const hoist_tensor_info *t)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
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
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        hoist_model_tensor(m, i, &t);
        h->tensors[t.dtype]++;
        h->bytes[t.dtype] += t.nbytes;
        h->params += elements(&t);
    }
}

/* ---- metadata values ---- */

#define META_HEAD 8     /* array elements shown */
#define META_STR_MAX 96 /* bytes of a string shown in the table */

/* Element i of a number or bool array, as a JSON value. */
static json_t *elem_json(hoist_meta_type type, const void *array, uint64_t i)
{
    const unsigned char *p = (const unsigned char *)array + i * hoist_meta_type_size(type);
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
    } x;
    memcpy(&x, p, hoist_meta_type_size(type));
    switch (type) {
    case HOIST_META_U8: return json_integer(x.u8);
    case HOIST_META_I8: return json_integer(x.i8);
    case HOIST_META_U16: return json_integer(x.u16);
    case HOIST_META_I16: return json_integer(x.i16);
    case HOIST_META_U32: return json_integer(x.u32);
    case HOIST_META_I32: return json_integer(x.i32);
    case HOIST_META_F32: return json_real(x.f32);
    case HOIST_META_BOOL: return json_boolean(x.u8);
    case HOIST_META_U64:
        return x.u64 > INT64_MAX ? json_real((double)x.u64) : json_integer((json_int_t)x.u64);
    case HOIST_META_I64: return json_integer(x.i64);
    case HOIST_META_F64: return json_real(x.f64);
    default: return json_null();
    }
}

/* A JSON string of s; strings that are not UTF-8 are described instead. */
static json_t *str_json(const char *s, uint64_t len)
{
    json_t *j = json_stringn(s, len);
    if (j) return j;
    char note[64];
    snprintf(note, sizeof note, "<%llu bytes, not UTF-8>", (unsigned long long)len);
    return json_string(note);
}

/* Scalars as JSON values; an array as {"array": elem type, "count": n, "head": [...]}. */
static json_t *meta_json(const hoist_meta_value *v)
{
    if (v->type == HOIST_META_STRING) return str_json(v->str, v->str_len);
    if (v->type != HOIST_META_ARRAY) {
        if (v->type == HOIST_META_F32 || v->type == HOIST_META_F64) return json_real(v->num.f);
        if (v->type == HOIST_META_BOOL) return json_boolean(v->num.u);
        bool is_signed = v->type == HOIST_META_I8 || v->type == HOIST_META_I16 ||
                         v->type == HOIST_META_I32 || v->type == HOIST_META_I64;
        if (!is_signed && v->num.u > INT64_MAX) return json_real((double)v->num.u);
        return json_integer(is_signed ? (json_int_t)v->num.i : (json_int_t)v->num.u);
    }
    json_t *head = json_array();
    for (uint64_t i = 0; i < v->count && i < META_HEAD; i++) {
        if (v->elem_type == HOIST_META_STRING)
            json_array_append_new(head, str_json(((const char *const *)v->array)[i],
                                                 v->str_lens[i]));
        else
            json_array_append_new(head, elem_json(v->elem_type, v->array, i));
    }
    return json_pack("{s:s, s:I, s:o}", "array", hoist_meta_type_name(v->elem_type), "count",
                     (json_int_t)v->count, "head", head);
}

/* A string in double quotes, control characters escaped, cut after META_STR_MAX bytes. */
static void print_str(const char *s, uint64_t len)
{
    putchar('"');
    for (uint64_t i = 0; i < len && i < META_STR_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            printf("\\n");
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (len > META_STR_MAX) printf("... (%llu bytes)", (unsigned long long)len);
}

static void print_meta_value(const hoist_meta_value *v)
{
    if (v->type == HOIST_META_STRING) {
        print_str(v->str, v->str_len);
        return;
    }
    if (v->type != HOIST_META_ARRAY) {
        printf("%s", v->text);
        return;
    }
    printf("[");
    for (uint64_t i = 0; i < v->count && i < META_HEAD; i++) {
        if (i) printf(", ");
        if (v->elem_type == HOIST_META_STRING) {
            print_str(((const char *const *)v->array)[i], v->str_lens[i]);
        } else if (v->elem_type == HOIST_META_U64) {
            uint64_t x;
            memcpy(&x, (const uint64_t *)v->array + i, sizeof x);
            printf("%llu", (unsigned long long)x);
        } else {
            json_t *j = elem_json(v->elem_type, v->array, i);
            char *t = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
            printf("%s", t ? t : "?");
            free(t);
            json_decref(j);
        }
    }
    printf("%s]", v->count > META_HEAD ? ", ..." : "");
}

static int print_json(const hoist_model *m)
{
    histogram h;
    tally(m, &h);
    json_t *root = json_object(), *files = json_array(), *tensors = json_array();
    json_t *dtypes = json_object(), *meta = json_object(), *meta_types = json_object();
    for (size_t i = 0; i < hoist_model_file_count(m); i++)
        json_array_append_new(files, json_pack("{s:s, s:I}", "path", hoist_model_file_path(m, i),
                                               "size", (json_int_t)hoist_model_file_size(m, i)));
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        hoist_model_tensor(m, i, &t);
        json_t *shape = json_array();
        for (uint32_t d = 0; d < t.ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t.shape[d]));
        json_t *e = json_pack("{s:s, s:s, s:o, s:I, s:s, s:I}", "name", t.name, "dtype",
                              hoist_dtype_name(t.dtype), "shape", shape, "bytes",
                              (json_int_t)t.nbytes, "file",
                              base_name(hoist_model_file_path(m, t.file)), "offset",
                              (json_int_t)t.offset);
        hoist_tensor_packing tp = HOIST_TENSOR_PACKING_INIT;
        if (hoist_model_tensor_packing(m, i, &tp) == HOIST_OK) {
            char hx[17];
            snprintf(hx, sizeof hx, "%016llx", (unsigned long long)tp.xxh3);
            json_object_set_new(e, "stored_bytes", json_integer((json_int_t)tp.stored_bytes));
            json_object_set_new(e, "chunks", json_integer((json_int_t)tp.chunks));
            json_object_set_new(e, "filter", json_string(hoist_filter_name(tp.filter)));
            json_object_set_new(e, "xxh3", json_string(hx));
        }
        json_array_append_new(tensors, e);
    }
    for (int d = 0; d < HOIST_DTYPE_COUNT; d++)
        if (h.tensors[d])
            json_object_set_new(dtypes, hoist_dtype_name((hoist_dtype)d),
                                json_pack("{s:I, s:I}", "tensors", (json_int_t)h.tensors[d],
                                          "bytes", (json_int_t)h.bytes[d]));
    for (size_t i = 0; i < hoist_model_metadata_count(m); i++) {
        const char *k;
        hoist_meta_value v = HOIST_META_VALUE_INIT;
        hoist_model_metadata_value(m, i, &k, &v);
        json_object_set_new(meta, k, meta_json(&v));
        json_object_set_new(meta_types, k, json_string(hoist_meta_type_name(v.type)));
    }
    json_object_set_new(root, "format", json_string(hoist_format_name(hoist_model_format(m))));
    hoist_packed_info pi = HOIST_PACKED_INFO_INIT;
    if (hoist_model_packed_info(m, &pi) == HOIST_OK)
        json_object_set_new(root, "packed",
                            json_pack("{s:i, s:I, s:I, s:I}", "version", (int)pi.version,
                                      "chunk_bytes", (json_int_t)pi.chunk_bytes, "chunks",
                                      (json_int_t)pi.chunks, "stored_bytes",
                                      (json_int_t)pi.stored_bytes));
    json_object_set_new(root, "files", files);
    json_object_set_new(root, "tensors", tensors);
    json_object_set_new(root, "total_bytes", json_integer((json_int_t)hoist_model_total_bytes(m)));
    json_object_set_new(root, "parameters", json_integer((json_int_t)h.params));
    json_object_set_new(root, "dtypes", dtypes);
    json_object_set_new(root, "metadata", meta);
    json_object_set_new(root, "metadata_types", meta_types);
    int rc = json_dumpf(root, stdout, JSON_INDENT(2)) == 0 ? 0 : 1;
    printf("\n");
    json_decref(root);
    return rc;
}

static void print_table(const hoist_model *m)
{
    char b1[32], shape[160];
    size_t nfiles = hoist_model_file_count(m);
    int packed = hoist_model_format(m) == HOIST_FORMAT_PACKED;
    printf("%-60s %-8s %-22s %14s  %s\n", "tensor", "dtype", "shape", "bytes",
           packed ? "stored  filter" : "file");
    for (size_t i = 0; i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        hoist_tensor_packing tp = HOIST_TENSOR_PACKING_INIT;
        hoist_model_tensor(m, i, &t);
        shape_text(&t, shape, sizeof shape);
        printf("%-60s %-8s %-22s %14llu  ", t.name, hoist_dtype_name(t.dtype), shape,
               (unsigned long long)t.nbytes);
        if (packed && hoist_model_tensor_packing(m, i, &tp) == HOIST_OK)
            printf("%llu (%.1f%%)  %s\n", (unsigned long long)tp.stored_bytes,
                   t.nbytes ? 100.0 * (double)tp.stored_bytes / (double)t.nbytes : 0.0,
                   hoist_filter_name(tp.filter));
        else
            printf("%s\n", base_name(hoist_model_file_path(m, t.file)));
    }
    histogram h;
    tally(m, &h);
    printf("\nfiles: %zu\n", nfiles);
    for (size_t i = 0; i < nfiles; i++)
        printf("  %s  %s\n", hoist_model_file_path(m, i),
               cli_fmt_bytes(hoist_model_file_size(m, i), b1, sizeof b1));
    hoist_packed_info pi = HOIST_PACKED_INFO_INIT;
    if (hoist_model_packed_info(m, &pi) == HOIST_OK) {
        char b2[32];
        uint64_t total = hoist_model_total_bytes(m);
        printf("packed (version %u): %llu chunks of %s, %s stored, %.1f%% of the tensor bytes\n",
               pi.version, (unsigned long long)pi.chunks, cli_fmt_bytes(pi.chunk_bytes, b1, sizeof b1),
               cli_fmt_bytes(pi.stored_bytes, b2, sizeof b2),
               total ? 100.0 * (double)pi.stored_bytes / (double)total : 0.0);
    }
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
            const char *k;
            hoist_meta_value v = HOIST_META_VALUE_INIT;
            hoist_model_metadata_value(m, i, &k, &v);
            if (v.type == HOIST_META_ARRAY)
                printf("  %-40s %-14s = ", k, v.text);
            else
                printf("  %-40s %-14s = ", k, hoist_meta_type_name(v.type));
            print_meta_value(&v);
            printf("\n");
        }
    }
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    hoist_open_options oo = HOIST_OPEN_OPTIONS_DEFAULT;
    int rc = parse(argc, argv, &path, &json, &oo);
    if (rc != CLI_CONTINUE) return rc;
    hoist_model *m;
    rc = hoist_model_open(path, &oo, &m);
    if (rc < 0) return cli_fail("inspect", rc);
    int exit_code = 0;
    if (json)
        exit_code = print_json(m);
    else
        print_table(m);
    hoist_model_free(m);
    return exit_code;
}
