/* What the inference tests share: a generated model opened, its geometry read and its weights
 * loaded, and all of it given back. */
#ifndef HOIST_INFER_TEST_COMMON_H
#define HOIST_INFER_TEST_COMMON_H

#include "testutil.h"

#include <stdbool.h>

typedef struct loaded {
    hoist_model *m;
    hoist_weights *w;
    hoist_geometry g;
} loaded;

/* mdir's model with its weights on the host (host) or on the load's default device. */
static inline loaded it_load(const char *mdir, bool host)
{
    loaded l = {.g = HOIST_GEOMETRY_INIT};
    ck_assert_msg(hoist_model_open(mdir, NULL, &l.m) == HOIST_OK, "%s", hoist_last_error());
    ck_assert_msg(hoist_model_geometry(l.m, &l.g) == HOIST_OK, "%s", hoist_last_error());
    hoist_load_options o = HOIST_LOAD_OPTIONS_DEFAULT;
    if (host) o.device = HOIST_DEVICE_HOST;
    ck_assert_msg(hoist_load(l.m, &o, &l.w) == HOIST_OK, "%s", hoist_last_error());
    return l;
}

static inline void it_unload(loaded *l)
{
    hoist_weights_free(l->w);
    hoist_model_free(l->m);
}

#endif
