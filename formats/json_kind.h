/* Names of JSON value types for error messages ("expected an array, got a string"). */
#ifndef HOIST_JSON_KIND_H
#define HOIST_JSON_KIND_H

#include <errno.h>
#include <jansson.h>

static inline const char *hoist__json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* json_loadb that tells a document jansson could not hold from a bad one. On an allocation
 * failure jansson at times reports out-of-memory, at times a syntax error, and at times drops
 * characters from a string and succeeds; errno, cleared before the call, is the one witness (a
 * failed malloc sets ENOMEM, parsing sets nothing but ERANGE). *oom set: NULL, nothing held. */
static inline json_t *hoist__json_loadb(const char *buf, size_t n, size_t flags, json_error_t *e,
                                        int *oom)
{
    errno = 0;
    json_t *root = json_loadb(buf, n, flags, e);
    *oom = errno == ENOMEM ||
           (!root && (json_error_code(e) == json_error_out_of_memory || e->text[0] == '\0'));
    if (*oom) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

#endif
