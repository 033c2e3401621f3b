/* Status names and strings (from the X-macro), the per-thread last error, and logging. */
#include "core/core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define HOIST_ERR_MAX 1024

static _Thread_local char last_error[HOIST_ERR_MAX];

const char *hoist_strerror(int status)
{
    switch (status) {
#define X(name, value, desc) \
    case value: return desc;
        HOIST_STATUS_LIST(X)
#undef X
    }
    return "unknown status";
}

const char *hoist_status_name(int status)
{
    switch (status) {
#define X(name, value, desc) \
    case value: return #name;
        HOIST_STATUS_LIST(X)
#undef X
    }
    return "HOIST_E_UNKNOWN";
}

const char *hoist_last_error(void) { return last_error; }

void hoist__err_clear(void) { last_error[0] = '\0'; }

int hoist__err(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

int hoist__err_prefix(int status, const char *fmt, ...)
{
    char prefix[HOIST_ERR_MAX], old[HOIST_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    /* prefix, ": ", old message; each part cut to what still fits */
    size_t n = strnlen(prefix, sizeof last_error - 1);
    memcpy(last_error, prefix, n);
    size_t room = sizeof last_error - 1 - n;
    size_t sep = room < 2 ? room : 2, m = strnlen(old, room - sep);
    memcpy(last_error + n, ": ", sep);
    memcpy(last_error + n + sep, old, m);
    last_error[n + sep + m] = '\0';
    return status;
}

/* ---- logging ---- */

static _Atomic(hoist_log_fn) log_fn;
static void *_Atomic log_user;
static _Atomic int log_max = HOIST_LOG_INFO;

void hoist_set_log_callback(hoist_log_fn fn, void *user, hoist_log_level max_level)
{
    atomic_store(&log_user, user);
    atomic_store(&log_max, (int)max_level);
    atomic_store(&log_fn, fn);
}

void hoist__log(hoist_log_level level, const char *fmt, ...)
{
    hoist_log_fn fn = atomic_load(&log_fn);
    if (!fn || (int)level > atomic_load(&log_max)) return;
    char line[HOIST_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fn(level, line, atomic_load(&log_user));
}
