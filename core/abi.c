/* The size-prefixed structs of the public ABI: see core/abi.h. */
#include "core/abi.h"

#include <string.h>

#define HOIST__END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Every sized struct starts with its size_t size, so that the helpers can read it without knowing
 * the type, and its first layout ends inside it. */
#define X(type, last, init)                                                                       \
    _Static_assert(offsetof(type, size) == 0 && sizeof(((type *)0)->size) == sizeof(size_t),     \
                   #type " must start with size_t size");                                         \
    _Static_assert(HOIST__END(type, last) <= sizeof(type), #type ": first layout past its end");  \
    const hoist__sized hoist__sized_##type = {#type, init, HOIST__END(type, last), sizeof(type)};
HOIST__SIZED_STRUCTS(X)
#undef X

static size_t size_of(const void *s)
{
    size_t n;
    memcpy(&n, s, sizeof n);
    return n;
}

static int check_size(const hoist__sized *k, size_t size, const char *fn, const char *element)
{
    RETURN_IF(size < k->min, HOIST_E_INVALID_ARG,
              "%s: %s%s.size is %zu; initialise it with %s (sizeof(%s), at least %zu)", fn,
              k->name, element, size, k->init, k->name, k->min);
    return HOIST_OK;
}

int hoist__struct_check(const hoist__sized *k, const void *caller, const char *fn)
{
    return check_size(k, size_of(caller), fn, "");
}

/* dst = defaults, then the caller's first min(size, ours) bytes past the size field. */
static void copy_in(const hoist__sized *k, void *dst, const void *caller, size_t size,
                    const void *defaults)
{
    if (defaults)
        memcpy(dst, defaults, k->ours);
    else
        memset(dst, 0, k->ours);
    if (caller) {
        size_t n = size < k->ours ? size : k->ours;
        memcpy((char *)dst + sizeof(size_t), (const char *)caller + sizeof(size_t),
               n - sizeof(size_t));
    }
    memcpy(dst, &k->ours, sizeof k->ours);
}

int hoist__struct_in(const hoist__sized *k, void *dst, const void *caller, const void *defaults,
                     const char *fn)
{
    copy_in(k, dst, NULL, 0, defaults);
    if (!caller) return HOIST_OK;
    size_t size = size_of(caller);
    RETURN_IF_ERR(check_size(k, size, fn, ""));
    copy_in(k, dst, caller, size, defaults);
    return HOIST_OK;
}

int hoist__struct_in_at(const hoist__sized *k, void *dst, const void *array, size_t i,
                        const void *defaults, const char *fn)
{
    copy_in(k, dst, NULL, 0, defaults);
    size_t stride = size_of(array);
    RETURN_IF_ERR(check_size(k, stride, fn, "[0]"));
    const char *e = (const char *)array + i * stride;
    size_t size = size_of(e);
    RETURN_IF(size != stride, HOIST_E_INVALID_ARG,
              "%s: %s[%zu].size is %zu but element 0's is %zu: every element of the array "
              "carries the same size (initialise each with %s)",
              fn, k->name, i, size, stride, k->init);
    copy_in(k, dst, e, size, defaults);
    return HOIST_OK;
}

void hoist__struct_out(const hoist__sized *k, void *caller, const void *src)
{
    size_t size = size_of(caller), n = size < k->ours ? size : k->ours;
    memcpy((char *)caller + sizeof(size_t), (const char *)src + sizeof(size_t),
           n - sizeof(size_t));
}

void hoist__struct_zero(const hoist__sized *k, void *caller)
{
    size_t size = size_of(caller), n = size < k->ours ? size : k->ours;
    memset((char *)caller + sizeof(size_t), 0, n - sizeof(size_t));
}
