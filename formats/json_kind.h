/* Names of JSON value types for error messages ("expected an array, got a string"). */
#ifndef HOIST_JSON_KIND_H
#define HOIST_JSON_KIND_H

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

#endif
