/* The report of a group load: per rank, then the aggregate. A rank's GB/s counts the bytes it
 * placed itself (its slices, its part of what is shared); the aggregate counts every rank's
 * over the group's wall time, the figure the devices' links reached together. */
#include "group_report.h"
#include "cli_util.h"

static double gbps(uint64_t bytes, double s) { return s > 0 ? (double)bytes / s / 1e9 : 0; }

void cli_group_report(FILE *f, hoist_weights *const *w, const int *devices, size_t n,
                      double wall, int csv, int run, int repeat)
{
    uint64_t placed = 0, read = 0, received = 0, held = 0;
    for (size_t i = 0; i < n; i++) {
        hoist_load_stats s = HOIST_LOAD_STATS_INIT;
        if (hoist_weights_stats(w[i], &s) < 0) continue;
        char dn[HOIST_DEVICE_NAME_MAX], a[32], b[32];
        hoist_device_name(devices[i], dn, sizeof dn);
        placed += s.bytes;
        read += s.read_bytes;
        received += s.exchange_bytes;
        held += s.arena_bytes;
        if (csv) {
            fprintf(f, "%zu,%s,%.4f,%.3f,%llu,%llu,%.4f,%llu\n", i, dn, s.seconds,
                    gbps(s.bytes, s.seconds), (unsigned long long)s.bytes,
                    (unsigned long long)s.read_bytes, s.exchange_seconds,
                    (unsigned long long)s.exchange_bytes);
            continue;
        }
        if (repeat > 1 && i == 0) fprintf(f, "run %d:\n", run + 1);
        fprintf(f, "  rank %zu %-8s path %s: %.3f s, %.2f GB/s of its own reads (%s, %s asked of "
                   "storage)",
                i, dn, s.path, s.seconds, gbps(s.bytes, s.seconds),
                cli_fmt_bytes(s.bytes, a, sizeof a), cli_fmt_bytes(s.read_bytes, b, sizeof b));
        if (s.exchange_bytes || s.exchange_seconds > 0)
            fprintf(f, "; exchange %.3f s, %s in", s.exchange_seconds,
                    cli_fmt_bytes(s.exchange_bytes, a, sizeof a));
        fprintf(f, "\n");
    }
    char a[32], b[32], c[32];
    if (csv) {
        fprintf(f, "all,%zu devices,%.4f,%.3f,%llu,%llu,,%llu\n", n, wall, gbps(placed, wall),
                (unsigned long long)placed, (unsigned long long)read,
                (unsigned long long)received);
        return;
    }
    fprintf(f, "  all %zu devices: %.3f s, %.2f GB/s read together (%s from storage), %s "
               "exchanged, %s held in all\n",
            n, wall, gbps(placed, wall), cli_fmt_bytes(read, a, sizeof a),
            cli_fmt_bytes(received, b, sizeof b), cli_fmt_bytes(held, c, sizeof c));
}
