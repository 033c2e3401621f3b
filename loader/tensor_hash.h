/* Per-tensor hashes checked during a load (HOIST_VERIFY_MANIFEST and every packed load): each
 * tensor's XXH3-64 over its bytes in order, compared with the one recorded (the manifest's, the
 * container's) when its last byte has passed.
 *
 * XXH3 is a streaming hash, not one whose pieces can be combined afterwards, so a tensor's bytes
 * must reach its hash in order, while the windows holding them are checked by workers in any
 * order. The scheme:
 *  - a tensor whose bytes all lie in one window is hashed in one call by the worker that has the
 *    window: no state, no coordination (most tensors);
 *  - a tensor that crosses a window boundary gets a running state (allocated when its first byte
 *    arrives, released at its last) and a cursor: the bytes fed so far. The worker holding the
 *    piece that starts at the cursor feeds it and moves the cursor on; a worker whose piece starts
 *    further on waits for the cursor to reach it. The bytes are hashed in place in the worker's
 *    buffer, never copied, so the memory this takes is one state per tensor in flight.
 * Waiting is safe because of the pipeline's order (transform.h): windows are handed out in
 * increasing order, each worker finishes its window before it takes another, and a tensor's
 * earlier bytes lie in earlier windows; so a worker only ever waits for windows handed out before
 * its own, whose workers never wait for it, and the lowest unfinished window always progresses.
 * A failure anywhere (ld->failed) ends every wait. The chunk hashes each window is checked against
 * first say where bytes differ from what was recorded; the tensor hashes catch a record that
 * contradicts its own chunks (a hand-edited or inconsistent manifest or container). */
#ifndef HOIST_TENSOR_HASH_H
#define HOIST_TENSOR_HASH_H

#include "loader/load_ctx.h"

#include <pthread.h>
#include <stdint.h>

typedef struct hoist__tensor_hashes {
    hoist__load *ld;
    const uint64_t *want; /* per table tensor: the recorded hash (borrowed) */
    const char *source;   /* whose record, for messages ("the manifest PATH", "the container") */
    int file_offsets;     /* 1: tensor offsets are file offsets (messages say where) */
    uint64_t *done;       /* per tensor: bytes fed in order so far */
    void **run;           /* per tensor: its running XXH3 state while it is in flight, or NULL */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int sync_ready;
    /* running states: `reserve` of them counted against the budget at start, any beyond that
     * counted as they are taken (live: how many exist now; under lock) */
    size_t reserve, live;
} hoist__tensor_hashes;

/* Host bytes of the per-tensor bookkeeping for n tensors, and of one running state (a transform
 * counts one per worker in its worker_bytes: hoist__tensor_hashes_start takes them). */
uint64_t hoist__tensor_hashes_bytes(size_t n);
uint64_t hoist__tensor_hashes_state_bytes(void);
/* want: per table tensor index, the recorded hash; source names the record in messages. */
int hoist__tensor_hashes_init(hoist__tensor_hashes *h, hoist__load *ld, const uint64_t *want,
                              const char *source, int file_offsets);
/* After the plan, with the worker count: takes one running state per worker, and one more, from
 * the budget. With the pipeline's order (above) a tensor is in flight only while a window that
 * holds its next bytes is being worked on or is the next to be handed out, so that many suffice;
 * more are taken from the budget if ever needed. */
int hoist__tensor_hashes_start(hoist__tensor_hashes *h, unsigned workers);
void hoist__tensor_hashes_free(hoist__tensor_hashes *h);
/* Bytes [off, off + len) of tensor ti, from any worker. HOIST_E_INTEGRITY naming the file and
 * tensor when its last byte makes a hash that differs from the record; HOIST_E_ABORTED (message
 * set) when the load failed elsewhere while this waited its turn. */
int hoist__tensor_hashes_feed(hoist__tensor_hashes *h, size_t ti, uint64_t off,
                              const uint8_t *data, uint64_t len);
/* Tensor ti's hash is already known to be `got` (a packed tensor of one chunk: its chunk's hash,
 * just checked); compares it with the record. */
int hoist__tensor_hashes_check(const hoist__tensor_hashes *h, size_t ti, uint64_t got);
/* Feeds bytes [lo, lo + len) of file `file` (held at data) to the tensors they belong to. */
int hoist__tensor_hashes_feed_file(hoist__tensor_hashes *h, uint32_t file, uint64_t lo,
                                   const uint8_t *data, uint64_t len);

#endif
