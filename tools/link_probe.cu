// link_probe: what keeps a staged host-to-device load below the pinned-copy ceiling.
//
// hoist's loads copy the model through pinned slots of a few MiB (a CPU memcpy into a slot, then
// an asynchronous copy of the slot to the device, many workers at once), and reach 85-87% of the
// ceiling that one 1 GiB pinned copy measures. Two causes are possible, and they call for
// different cures: the copy engines may move small pieces slower than one large one, or the
// CPUs' copies may take the host memory bandwidth the DMA needs. This program measures each part
// on its own, with the CUDA runtime alone (no hoist code), so the answer does not depend on the
// loader:
//
//   single     one copy of BYTES from pinned memory: the ceiling hoist reports
//   pieces     the same bytes in pieces of P, round-robin over S streams, all queued before one
//              wait: the DMA alone at a load's granularity
//   slots      pieces from a ring of 3 pinned slots per stream, as the staging slots are reused
//              (the CPU caches may still hold them): DMA only, no CPU copy
//   contended  pieces of 2 MiB over 16 streams while T threads memcpy between buffers of their own
//   staged     the whole staging loop on anonymous memory: T threads each memcpy 2 MiB windows of
//              a pre-faulted pageable source into their 3 pinned slots and queue each slot's copy
//
// Every figure is the median of 5 timed passes after a warm-up, in 1e9 bytes per second. Output:
// CSV on stdout (test,piece,streams,threads,gbps). docs/BENCHMARKS.md records the runs.
//
//   link_probe [DEVICE [BYTES_MIB]]        (defaults: 0, 1024)
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr int REPEAT = 5;
constexpr int SLOTS = 3;
constexpr size_t MIB = 1u << 20;

void check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return;
    std::fprintf(stderr, "link_probe: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
}

double now()
{
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// The median of REPEAT timed runs of f (after one untimed run), as GB/s of `bytes`.
template <typename F> double median_gbps(size_t bytes, F f)
{
    std::vector<double> t;
    for (int i = -1; i < REPEAT; i++) {
        double t0 = now();
        f();
        if (i >= 0) t.push_back(now() - t0);
    }
    std::sort(t.begin(), t.end());
    return (double)bytes / t[REPEAT / 2] / 1e9;
}

struct probe {
    size_t bytes;
    char *pinned, *dev;
    std::vector<cudaStream_t> streams;

    void sync()
    {
        for (cudaStream_t s : streams) check(cudaStreamSynchronize(s), "stream sync");
    }

    // `bytes` in pieces over the first `ns` streams; src_of(i) gives piece i's source.
    template <typename Src> void pieces(size_t piece, int ns, Src src_of)
    {
        size_t n = (bytes + piece - 1) / piece;
        for (size_t i = 0; i < n; i++) {
            size_t len = std::min(piece, bytes - i * piece);
            check(cudaMemcpyAsync(dev + i * piece, src_of(i), len, cudaMemcpyHostToDevice,
                                  streams[i % ns]),
                  "cudaMemcpyAsync");
        }
        sync();
    }
};

void row(const char *test, size_t piece, int streams, int threads, double gbps)
{
    std::printf("%s,%zu,%d,%d,%.2f\n", test, piece, streams, threads, gbps);
    std::fflush(stdout);
}

// T threads copying between buffers of their own until told to stop.
struct copiers {
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    std::vector<char *> bufs;

    void start(int t, size_t each)
    {
        for (int i = 0; i < t; i++) {
            char *b = (char *)std::malloc(2 * each);
            std::memset(b, 1, 2 * each);
            bufs.push_back(b);
            threads.emplace_back([this, b, each] {
                while (!stop.load(std::memory_order_relaxed)) std::memcpy(b + each, b, each);
            });
        }
    }
    ~copiers()
    {
        stop = true;
        for (auto &t : threads) t.join();
        for (char *b : bufs) std::free(b);
    }
};

// The staging loop of hoist's mmap path on anonymous memory: windows of `src` taken from one
// cursor, each memcpy'd into the worker's next pinned slot (after that slot's previous copy is
// done) and copied to the device on the worker's stream.
double staged(probe &p, const char *src, int t, size_t window)
{
    std::vector<char *> slots(t * SLOTS);
    std::vector<cudaEvent_t> ev(t * SLOTS);
    for (int i = 0; i < t * SLOTS; i++) {
        check(cudaHostAlloc((void **)&slots[i], window, cudaHostAllocDefault), "cudaHostAlloc");
        std::memset(slots[i], 0, window);
        check(cudaEventCreateWithFlags(&ev[i], cudaEventDisableTiming), "cudaEventCreate");
    }
    size_t n = (p.bytes + window - 1) / window;
    double g = median_gbps(p.bytes, [&] {
        std::atomic<size_t> next{0};
        std::vector<std::thread> th;
        for (int w = 0; w < t; w++)
            th.emplace_back([&, w] {
                std::vector<bool> busy(SLOTS, false);
                unsigned k = 0;
                for (size_t i; (i = next.fetch_add(1)) < n; k = (k + 1) % SLOTS) {
                    size_t len = std::min(window, p.bytes - i * window);
                    int s = w * SLOTS + (int)k;
                    if (busy[k]) check(cudaEventSynchronize(ev[s]), "event sync");
                    std::memcpy(slots[s], src + i * window, len);
                    check(cudaMemcpyAsync(p.dev + i * window, slots[s], len,
                                          cudaMemcpyHostToDevice, p.streams[w]),
                          "cudaMemcpyAsync");
                    check(cudaEventRecord(ev[s], p.streams[w]), "event record");
                    busy[k] = true;
                }
                check(cudaStreamSynchronize(p.streams[w]), "stream sync");
            });
        for (auto &x : th) x.join();
    });
    for (int i = 0; i < t * SLOTS; i++) {
        cudaFreeHost(slots[i]);
        cudaEventDestroy(ev[i]);
    }
    return g;
}

} // namespace

int main(int argc, char **argv)
{
    int device = argc > 1 ? std::atoi(argv[1]) : 0;
    size_t mib = argc > 2 ? (size_t)std::strtoull(argv[2], nullptr, 10) : 1024;
    if (mib < 64 || mib > 16384) {
        std::fprintf(stderr, "usage: link_probe [DEVICE [BYTES_MIB: 64-16384]]\n");
        return 2;
    }
    check(cudaSetDevice(device), "cudaSetDevice");
    probe p{mib * MIB, nullptr, nullptr, {}};
    check(cudaHostAlloc((void **)&p.pinned, p.bytes, cudaHostAllocDefault), "cudaHostAlloc");
    std::memset(p.pinned, 0x5a, p.bytes);
    check(cudaMalloc((void **)&p.dev, p.bytes), "cudaMalloc");
    p.streams.resize(16);
    for (auto &s : p.streams) check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
    int cores = (int)std::thread::hardware_concurrency();
    std::printf("test,piece,streams,threads,gbps\n");

    row("single", p.bytes, 1, 0, median_gbps(p.bytes, [&] { p.pieces(p.bytes, 1, [&](size_t) {
            return p.pinned; }); }));
    for (size_t piece : {256 * 1024ul, MIB, 2 * MIB, 4 * MIB, 8 * MIB, 16 * MIB})
        for (int ns : {1, 4, 16})
            row("pieces", piece, ns, 0, median_gbps(p.bytes, [&] {
                    p.pieces(piece, ns, [&](size_t i) { return p.pinned + i * piece; });
                }));
    constexpr size_t ring = 16 * SLOTS; // piece i comes from slot i % ring, as workers reuse them
    for (size_t piece : {MIB, 2 * MIB, 4 * MIB, 8 * MIB})
        if (ring * piece <= p.bytes)
            row("slots", piece, 16, 0, median_gbps(p.bytes, [&] {
                    p.pieces(piece, 16, [&](size_t i) { return p.pinned + (i % ring) * piece; });
                }));
    for (int t : {4, 8, 12, 16}) {
        if (t > cores) break;
        copiers c;
        c.start(t, 64 * MIB);
        row("contended", 2 * MIB, 16, t, median_gbps(p.bytes, [&] {
                p.pieces(2 * MIB, 16, [&](size_t i) { return p.pinned + i * 2 * MIB; });
            }));
    }
    char *src = (char *)std::malloc(p.bytes);
    std::memset(src, 0x3c, p.bytes);
    for (size_t window : {MIB, 2 * MIB, 4 * MIB, 8 * MIB})
        for (int t : {8, 12, 16})
            if (t <= cores) row("staged", window, t, t, staged(p, src, t, window));
    std::free(src);
    for (auto s : p.streams) cudaStreamDestroy(s);
    cudaFree(p.dev);
    cudaFreeHost(p.pinned);
    return 0;
}
