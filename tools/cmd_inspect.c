/* hoist inspect: the tensor table of a model, its shards, totals, dtype histogram and metadata
 * (GGUF's typed: arrays shown by their first elements). */
#include "cli_util.h"

#include "hoist.h"

#include <jansson.h>
#include <math.h>
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

/* ---- JSON values (docs/JSON.md) ----
 *
 * Every byte string (tensor names, paths, metadata keys and string values) is emitted, never
 * dropped: as itself when it is UTF-8, else as its lossy form (each byte that does not start a
 * valid sequence replaced by U+FFFD) beside the exact bytes in hex (a "..._hex" member, or
 * "metadata_hex" for metadata). Numbers JSON cannot carry exactly in this encoder are strings:
 * non-finite floats "nan", "inf", "-inf"; u64 values above INT64_MAX in decimal. A value that
 * cannot be built (out of memory) fails the command rather than go missing. */

static int json_failed; /* an allocation failed while building the document */

static json_t *checked(json_t *v)
{
    if (!v) json_failed = 1;
    return v;
}

static void arr_add(json_t *arr, json_t *v)
{
    if (!v || json_array_append_new(arr, v) != 0) json_failed = 1;
}

static void obj_set(json_t *obj, const char *key, json_t *v)
{
    if (!v || json_object_set_new(obj, key, v) != 0) json_failed = 1;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: shortest form, no surrogates, at most
 * U+10FFFF), or 0. n > 0 bytes are left. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (!len || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && s[1] < 0xa0) return 0; /* overlong */
    if (c == 0xed && s[1] > 0x9f) return 0; /* surrogate */
    if (c == 0xf0 && s[1] < 0x90) return 0; /* overlong */
    if (c == 0xf4 && s[1] > 0x8f) return 0; /* past U+10FFFF */
    return len;
}

static bool utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = utf8_seq((const unsigned char *)s + i, n - i))) return false;
    return true;
}

/* s with every byte that does not start a valid sequence replaced by U+FFFD (malloc'd, NUL
 * terminated, *out_len bytes). */
static char *utf8_lossy(const char *s, size_t n, size_t *out_len)
{
    char *o = malloc(n * 3 + 1);
    if (!o) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k) {
            memcpy(o + w, s + i, k);
            w += k;
            i += k;
        } else {
            memcpy(o + w, "\xef\xbf\xbd", 3);
            w += 3;
            i++;
        }
    }
    o[w] = '\0';
    *out_len = w;
    return o;
}

static json_t *hex_json(const char *s, size_t n)
{
    char *h = malloc(n * 2 + 1);
    if (!h) return checked(NULL);
    for (size_t i = 0; i < n; i++) snprintf(h + 2 * i, 3, "%02x", (unsigned char)s[i]);
    h[2 * n] = '\0';
    json_t *j = json_stringn(h, n * 2);
    free(h);
    return checked(j);
}

/* s as a JSON string: itself when UTF-8, else its lossy form (*exact set to 0 then). */
static json_t *bytes_json(const char *s, size_t n, bool *exact)
{
    if (exact) *exact = true;
    if (utf8_valid(s, n)) return checked(json_stringn(s, n));
    if (exact) *exact = false;
    size_t len;
    char *l = utf8_lossy(s, n, &len);
    json_t *j = l ? json_stringn(l, len) : NULL;
    free(l);
    return checked(j);
}

/* obj[key] = s; and obj[key + "_hex"] = its bytes when s is not UTF-8. */
static void set_bytes(json_t *obj, const char *key, const char *s, size_t n)
{
    bool exact;
    obj_set(obj, key, bytes_json(s, n, &exact));
    if (exact) return;
    char hk[64];
    snprintf(hk, sizeof hk, "%s_hex", key);
    obj_set(obj, hk, hex_json(s, n));
}

static json_t *u64_json(uint64_t v)
{
    if (v <= INT64_MAX) return checked(json_integer((json_int_t)v));
    char d[24];
    snprintf(d, sizeof d, "%llu", (unsigned long long)v);
    return checked(json_string(d));
}

static json_t *float_json(double f)
{
    if (isnan(f)) return checked(json_string("nan"));
    if (isinf(f)) return checked(json_string(f > 0 ? "inf" : "-inf"));
    return checked(json_real(f));
}

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
    case HOIST_META_U8: return checked(json_integer(x.u8));
    case HOIST_META_I8: return checked(json_integer(x.i8));
    case HOIST_META_U16: return checked(json_integer(x.u16));
    case HOIST_META_I16: return checked(json_integer(x.i16));
    case HOIST_META_U32: return checked(json_integer(x.u32));
    case HOIST_META_I32: return checked(json_integer(x.i32));
    case HOIST_META_F32: return float_json(x.f32);
    case HOIST_META_BOOL: return checked(json_boolean(x.u8));
    case HOIST_META_U64: return u64_json(x.u64);
    case HOIST_META_I64: return checked(json_integer(x.i64));
    case HOIST_META_F64: return float_json(x.f64);
    default: return checked(json_null());
    }
}

/* Element i of a number or bool array as text, for the table. */
static void print_elem(hoist_meta_type type, const void *array, uint64_t i)
{
    const unsigned char *p = (const unsigned char *)array + i * hoist_meta_type_size(type);
    if (type == HOIST_META_F32 || type == HOIST_META_F64) {
        double d;
        if (type == HOIST_META_F32) {
            float f;
            memcpy(&f, p, sizeof f);
            d = f;
        } else {
            memcpy(&d, p, sizeof d);
        }
        printf(type == HOIST_META_F32 ? "%.9g" : "%.17g", d);
        return;
    }
    json_t *j = elem_json(type, array, i);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    printf("%s", t ? t : "?");
    free(t);
    json_decref(j);
}

/* Scalars as JSON values; an array as {"array": elem type, "count": n, "head": [...]}, with
 * "head_hex" beside "head" (null for the UTF-8 elements) when a string element is not UTF-8.
 * *hex receives the bytes of a STRING value that is not UTF-8 (NULL otherwise). */
static json_t *meta_json(const hoist_meta_value *v, json_t **hex)
{
    *hex = NULL;
    if (v->type == HOIST_META_STRING) {
        bool exact;
        json_t *j = bytes_json(v->str, v->str_len, &exact);
        if (!exact) *hex = hex_json(v->str, v->str_len);
        return j;
    }
    if (v->type != HOIST_META_ARRAY) {
        if (v->type == HOIST_META_F32 || v->type == HOIST_META_F64) return float_json(v->num.f);
        if (v->type == HOIST_META_BOOL) return checked(json_boolean(v->num.u));
        bool is_signed = v->type == HOIST_META_I8 || v->type == HOIST_META_I16 ||
                         v->type == HOIST_META_I32 || v->type == HOIST_META_I64;
        return is_signed ? checked(json_integer((json_int_t)v->num.i)) : u64_json(v->num.u);
    }
    json_t *head = checked(json_array()), *head_hex = checked(json_array());
    bool any_hex = false;
    for (uint64_t i = 0; head && head_hex && i < v->count && i < META_HEAD; i++) {
        if (v->elem_type == HOIST_META_STRING) {
            const char *e = ((const char *const *)v->array)[i];
            bool exact;
            arr_add(head, bytes_json(e, v->str_lens[i], &exact));
            arr_add(head_hex, exact ? checked(json_null()) : hex_json(e, v->str_lens[i]));
            any_hex |= !exact;
        } else {
            arr_add(head, elem_json(v->elem_type, v->array, i));
        }
    }
    json_t *o = checked(json_object());
    if (o) {
        obj_set(o, "array", checked(json_string(hoist_meta_type_name(v->elem_type))));
        obj_set(o, "count", u64_json(v->count));
        obj_set(o, "head", head);
        head = NULL;
        if (any_hex) {
            obj_set(o, "head_hex", head_hex);
            head_hex = NULL;
        }
    }
    json_decref(head);
    json_decref(head_hex);
    return o;
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
            print_elem(v->elem_type, v->array, i);
        }
    }
    printf("%s]", v->count > META_HEAD ? ", ..." : "");
}

/* The JSON key of each metadata entry (malloc'd, in *keys): the key itself when it is UTF-8;
 * else its lossy form, numbered ("#2", "#3", ...) where that is some other entry's key already,
 * so that no entry overwrites another. The UTF-8 keys are taken first: they are always their own
 * key. */
static char **metadata_keys(const hoist_model *m)
{
    size_t n = hoist_model_metadata_count(m);
    char **keys = calloc(n ? n : 1, sizeof *keys);
    json_t *taken = json_object();
    if (!keys || !taken) goto fail;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        hoist_model_metadata(m, i, &k, NULL);
        if (!utf8_valid(k, strlen(k))) continue;
        if (!(keys[i] = strdup(k)) || json_object_set_new(taken, k, json_true()) != 0) goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k;
        hoist_model_metadata(m, i, &k, NULL);
        if (keys[i]) continue;
        size_t len;
        char *lossy = utf8_lossy(k, strlen(k), &len);
        if (!lossy) goto fail;
        char *key = malloc(len + 24);
        if (!key) {
            free(lossy);
            goto fail;
        }
        snprintf(key, len + 24, "%s", lossy);
        for (unsigned c = 2; json_object_get(taken, key); c++)
            snprintf(key, len + 24, "%s#%u", lossy, c);
        free(lossy);
        keys[i] = key;
        if (json_object_set_new(taken, key, json_true()) != 0) goto fail;
    }
    json_decref(taken);
    return keys;
fail:
    for (size_t i = 0; keys && i < n; i++) free(keys[i]);
    free(keys);
    json_decref(taken);
    return NULL;
}

static int print_json(const hoist_model *m)
{
    histogram h;
    tally(m, &h);
    json_failed = 0;
    json_t *root = checked(json_object()), *files = checked(json_array());
    json_t *tensors = checked(json_array()), *dtypes = checked(json_object());
    json_t *meta = checked(json_object()), *meta_types = checked(json_object());
    json_t *meta_hex = checked(json_object());
    size_t nmeta = hoist_model_metadata_count(m);
    char **keys = metadata_keys(m);
    if (!keys) json_failed = 1;
    for (size_t i = 0; !json_failed && i < hoist_model_file_count(m); i++) {
        const char *path = hoist_model_file_path(m, i);
        json_t *f = checked(json_object());
        if (!f) break;
        set_bytes(f, "path", path, strlen(path));
        obj_set(f, "size", u64_json(hoist_model_file_size(m, i)));
        arr_add(files, f);
    }
    for (size_t i = 0; !json_failed && i < hoist_model_tensor_count(m); i++) {
        hoist_tensor_info t = HOIST_TENSOR_INFO_INIT;
        hoist_model_tensor(m, i, &t);
        json_t *shape = checked(json_array()), *e = checked(json_object());
        if (!shape || !e) {
            json_decref(shape);
            json_decref(e);
            break;
        }
        for (uint32_t d = 0; d < t.ndim; d++)
            arr_add(shape, checked(json_integer((json_int_t)t.shape[d])));
        const char *file = base_name(hoist_model_file_path(m, t.file));
        set_bytes(e, "name", t.name, strlen(t.name));
        obj_set(e, "dtype", checked(json_string(hoist_dtype_name(t.dtype))));
        obj_set(e, "shape", shape);
        obj_set(e, "bytes", u64_json(t.nbytes));
        set_bytes(e, "file", file, strlen(file));
        obj_set(e, "offset", u64_json(t.offset));
        hoist_tensor_packing tp = HOIST_TENSOR_PACKING_INIT;
        if (hoist_model_tensor_packing(m, i, &tp) == HOIST_OK) {
            char hx[17];
            snprintf(hx, sizeof hx, "%016llx", (unsigned long long)tp.xxh3);
            obj_set(e, "stored_bytes", u64_json(tp.stored_bytes));
            obj_set(e, "chunks", u64_json(tp.chunks));
            obj_set(e, "filter", checked(json_string(hoist_filter_name(tp.filter))));
            obj_set(e, "gpu_chunks", u64_json(tp.gpu_chunks));
            obj_set(e, "xxh3", checked(json_string(hx)));
        }
        arr_add(tensors, e);
    }
    for (int d = 0; !json_failed && d < HOIST_DTYPE_COUNT; d++) {
        if (!h.tensors[d]) continue;
        json_t *o = checked(json_object());
        if (!o) break;
        obj_set(o, "tensors", u64_json(h.tensors[d]));
        obj_set(o, "bytes", u64_json(h.bytes[d]));
        obj_set(dtypes, hoist_dtype_name((hoist_dtype)d), o);
    }
    for (size_t i = 0; !json_failed && i < nmeta; i++) {
        const char *k;
        hoist_meta_value v = HOIST_META_VALUE_INIT;
        hoist_model_metadata_value(m, i, &k, &v);
        json_t *value_hex;
        obj_set(meta, keys[i], meta_json(&v, &value_hex));
        obj_set(meta_types, keys[i], checked(json_string(hoist_meta_type_name(v.type))));
        bool key_exact = utf8_valid(k, strlen(k));
        if (key_exact && !value_hex) continue;
        json_t *x = checked(json_object());
        if (x && !key_exact) obj_set(x, "key_hex", hex_json(k, strlen(k)));
        if (x && value_hex) obj_set(x, "value_hex", value_hex);
        else json_decref(value_hex);
        obj_set(meta_hex, keys[i], x);
    }
    obj_set(root, "format", checked(json_string(hoist_format_name(hoist_model_format(m)))));
    hoist_packed_info pi = HOIST_PACKED_INFO_INIT;
    if (hoist_model_packed_info(m, &pi) == HOIST_OK) {
        json_t *o = checked(json_object());
        if (o) {
            obj_set(o, "version", checked(json_integer((json_int_t)pi.version)));
            obj_set(o, "chunk_bytes", u64_json(pi.chunk_bytes));
            obj_set(o, "chunks", u64_json(pi.chunks));
            obj_set(o, "stored_bytes", u64_json(pi.stored_bytes));
        }
        obj_set(root, "packed", o);
    }
    obj_set(root, "files", files);
    obj_set(root, "tensors", tensors);
    obj_set(root, "total_bytes", u64_json(hoist_model_total_bytes(m)));
    obj_set(root, "parameters", u64_json(h.params));
    obj_set(root, "dtypes", dtypes);
    obj_set(root, "metadata", meta);
    obj_set(root, "metadata_types", meta_types);
    if (json_object_size(meta_hex))
        obj_set(root, "metadata_hex", meta_hex);
    else
        json_decref(meta_hex);
    for (size_t i = 0; keys && i < nmeta; i++) free(keys[i]);
    free(keys);
    int rc = 0;
    if (json_failed) {
        cli_error("inspect", "out of memory building the JSON document");
        rc = 1;
    } else if (json_dumpf(root, stdout, JSON_INDENT(2)) != 0) {
        rc = 1;
    } else {
        printf("\n");
    }
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
                   tp.gpu_chunks ? "gpu codec" : hoist_filter_name(tp.filter));
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
