/* The safetensors side of `hoist gen` (see gen_safetensors.h). */
#include "gen_safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap - b->len <= (size_t)n) ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

int gen_st_plan_headers(gen_plan *p)
{
    size_t ti = 0;
    for (uint32_t f = 0; f < p->nfiles; f++) {
        sbuf b = {0};
        sb_printf(&b, "%8s", ""); /* room for the length */
        sb_printf(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
        for (; ti < p->nt && p->t[ti].file == f; ti++) {
            const gen_tensor *t = &p->t[ti];
            sb_printf(&b, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu", t->name,
                      gen_dtype_st_name(t->dtype), (unsigned long long)t->shape[0]);
            if (t->ndim == 2) sb_printf(&b, ",%llu", (unsigned long long)t->shape[1]);
            sb_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)t->offset,
                      (unsigned long long)(t->offset + t->nbytes));
            p->file_data[f] = t->offset + t->nbytes;
        }
        sb_printf(&b, "}");
        while (!b.oom && b.len % 8) sb_printf(&b, " ");
        if (b.oom) {
            free(b.p);
            return -1;
        }
        uint64_t n = b.len - 8;
        for (int i = 0; i < 8; i++) b.p[i] = (char)(unsigned char)(n >> (8 * i));
        p->headers[f] = b.p;
        p->file_start[f] = b.len;
    }
    return 0;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const gen_tensor *x = *(const gen_tensor *const *)a, *y = *(const gen_tensor *const *)b;
    return strcmp(x->name, y->name);
}

int gen_st_write_index(FILE *f, const gen_plan *p)
{
    const gen_tensor **sorted = malloc(p->nt * sizeof *sorted);
    if (!sorted) {
        errno = ENOMEM;
        return -1;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < p->nt; i++) {
        sorted[i] = &p->t[i];
        total += p->t[i].nbytes;
    }
    qsort(sorted, p->nt, sizeof *sorted, cmp_tensor_name);
    fprintf(f, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n",
            (unsigned long long)total);
    char fname[64];
    for (size_t i = 0; i < p->nt; i++) {
        gen_file_name(sorted[i]->file, p->nfiles, fname, sizeof fname);
        fprintf(f, "    \"%s\": \"%s\"%s\n", sorted[i]->name, fname, i + 1 < p->nt ? "," : "");
    }
    fprintf(f, "  }\n}\n");
    free(sorted);
    return 0;
}
