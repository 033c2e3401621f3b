/* Picks the backend that owns a device id, and the public device queries. */
#include "gpu/gpu.h"
#include "core/abi.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hoist__gpu_for_device(int device, const hoist__gpu_ops **out)
{
    if (device == HOIST_DEVICE_HOST) {
        *out = &hoist__gpu_host;
        return HOIST_OK;
    }
    const hoist__gpu_ops *cuda = hoist__gpu_cuda();
    RETURN_IF(!cuda, HOIST_E_NO_DEVICE, "device cuda:%d: this build of hoist has no CUDA backend",
              device);
    int n = 0;
    RETURN_IF_ERR(cuda->device_count(&n));
    RETURN_IF(device < 0 || device >= n, HOIST_E_NO_DEVICE,
              "device cuda:%d: not present (%d CUDA device%s found)", device, n, n == 1 ? "" : "s");
    *out = cuda;
    return HOIST_OK;
}

int hoist_device_count(void)
{
    const hoist__gpu_ops *cuda = hoist__gpu_cuda();
    int n = 0;
    if (!cuda || cuda->device_count(&n) < 0) n = 0;
    hoist__err_clear();
    return n;
}

int hoist_device_info_get(int device, hoist_device_info *out)
{
    RETURN_IF(!out, HOIST_E_INVALID_ARG, "hoist_device_info_get: out is NULL");
    RETURN_IF_ERR(HOIST__CHECK(hoist_device_info, out));
    const hoist__gpu_ops *ops = NULL;
    RETURN_IF_ERR(hoist__gpu_for_device(device, &ops));
    hoist_device_info info = HOIST_DEVICE_INFO_INIT;
    RETURN_IF_ERR(ops->device_info(device, &info));
    HOIST__OUT(hoist_device_info, out, &info);
    hoist__err_clear();
    return HOIST_OK;
}

int hoist_device_parse(const char *text, int *device)
{
    RETURN_IF(!text || !device, HOIST_E_INVALID_ARG, "hoist_device_parse: NULL argument");
    if (strcmp(text, "host") == 0 || strcmp(text, "cpu") == 0) {
        *device = HOIST_DEVICE_HOST;
        return HOIST_OK;
    }
    if (strcmp(text, "cuda") == 0) {
        *device = 0;
        return HOIST_OK;
    }
    if (strncmp(text, "cuda:", 5) == 0 && text[5] >= '0' && text[5] <= '9') {
        char *end;
        long v = strtol(text + 5, &end, 10);
        if (*end == '\0' && v >= 0 && v < 1024) {
            *device = (int)v;
            return HOIST_OK;
        }
    }
    return hoist__err(HOIST_E_INVALID_ARG,
                      "device '%s': expected host, cpu, cuda or cuda:N", text);
}

const char *hoist_device_name(int device, char *buf, size_t n)
{
    if (!buf || !n) return "";
    if (device == HOIST_DEVICE_HOST)
        snprintf(buf, n, "host");
    else if (device >= 0)
        snprintf(buf, n, "cuda:%d", device);
    else
        snprintf(buf, n, "device(%d)", device);
    return buf;
}
