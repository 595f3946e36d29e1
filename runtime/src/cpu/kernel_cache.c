/* kernel_cache.c - data derived from weight tensors, kept between calls on the CPU: Winograd-transformed kernels
 * (winograd_cpu.c), channels-last weight layouts (conv_fold_cpu.c) and oneDNN's blocked layouts (dnnl_cpu.c).
 *
 * A frozen loss network runs the same weights pass after pass, and deriving (transforming 512 x 512 kernels, or
 * permuting AlexNet's) costs a sizeable part of a layer. An entry is keyed by the weights' storage (its id, never
 * reused, and the offset), a kind and a size, and is valid for the storage's version: every op that writes a storage
 * bumps its version first (dpl_storage_written), so weights changed in any way (an optimizer step, copy_,
 * load_state_dict) can never meet stale derived data. An entry whose weights keep changing (training) stops being
 * cached. The budget is DPL_CPU_KERNEL_CACHE_MB (default 512, 0 turns the cache off), least recently used dropped
 * first. The lock is held while cached data is in use. */
#include "cpu.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { CACHE_SLOTS = 256, VOLATILE_AFTER = 2 };

typedef struct kentry {
  uint64_t storage_id, version;    /* storage_id 0: a free slot */
  int64_t offset;
  int kind;
  uint64_t variant;
  size_t floats;
  bool is_volatile;
  int changes;
  float *data;                     /* NULL for a volatile marker */
  size_t bytes;
  uint64_t used;
} kentry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static kentry cache[CACHE_SLOTS];
static size_t cached_bytes, cap = (size_t)-1;
static uint64_t tick;

static size_t capacity(void) {
  if (cap == (size_t)-1) cap = dpl_env_megabytes("DPL_CPU_KERNEL_CACHE_MB", 512);
  return cap;
}

static void entry_drop(kentry *e) {
  free(e->data);
  cached_bytes -= e->bytes;
  e->data = NULL;
  e->bytes = 0;
}

static void entry_free(kentry *e) {
  entry_drop(e);
  e->storage_id = 0;
}

/* a slot for a new entry of `bytes` (the least recently used ones dropped to make room), or NULL */
static kentry *claim(size_t bytes) {
  if (bytes > capacity()) return NULL;
  while (cached_bytes + bytes > capacity()) {
    kentry *lru = NULL;
    for (int i = 0; i < CACHE_SLOTS; i++)
      if (cache[i].bytes && (!lru || cache[i].used < lru->used)) lru = &cache[i];
    if (!lru) break;
    entry_free(lru);
  }
  for (int i = 0; i < CACHE_SLOTS; i++)
    if (!cache[i].storage_id) return &cache[i];
  kentry *old = NULL;   /* all slots taken: the least recently used goes */
  for (int i = 0; i < CACHE_SLOTS; i++)
    if (!old || cache[i].used < old->used) old = &cache[i];
  entry_free(old);
  return old;
}

void dpl_cpu_kernel_cache_release(void) {
  pthread_mutex_lock(&lock);
  for (int i = 0; i < CACHE_SLOTS; i++) entry_free(&cache[i]);
  pthread_mutex_unlock(&lock);
}

int dpl_cpu_with_derived(const dpl_tensor *w, int kind, uint64_t variant, size_t floats, dpl_derive_fn derive,
                         dpl_use_fn use, void *ctx) {
  const float *W = w->storage->host + w->offset;
  const size_t bytes = sizeof(float) * floats;
  const uint64_t id = w->storage->id, version = __atomic_load_n(&w->storage->version, __ATOMIC_RELAXED);
  if (capacity() > 0) {
    pthread_mutex_lock(&lock);
    kentry *e = NULL;
    for (int i = 0; i < CACHE_SLOTS && !e; i++)
      if (cache[i].storage_id == id && cache[i].offset == w->offset && cache[i].kind == kind &&
          cache[i].variant == variant && cache[i].floats == floats)
        e = &cache[i];
    if (e && !e->is_volatile && e->version == version) {
      e->used = ++tick;
      int rc = use(e->data, ctx);
      pthread_mutex_unlock(&lock);
      return rc;
    }
    if (e && !e->is_volatile && ++e->changes >= VOLATILE_AFTER) {   /* trained weights: stop caching them */
      entry_drop(e);
      e->is_volatile = true;
    }
    if (!e && (e = claim(bytes)) != NULL) {
      *e = (kentry){.storage_id = id, .offset = w->offset, .kind = kind, .variant = variant,
                    .floats = floats};
      e->data = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
      if (e->data) {
        e->bytes = bytes;
        cached_bytes += bytes;
      } else {
        e->storage_id = 0;
        e = NULL;
      }
    }
    if (e && !e->is_volatile) {
      derive(W, e->data, ctx);
      e->version = version;
      e->used = ++tick;
      int rc = use(e->data, ctx);
      pthread_mutex_unlock(&lock);
      return rc;
    }
    if (e) e->used = ++tick;
    pthread_mutex_unlock(&lock);
  }
  float *tmp = dpl_host_alloc(bytes);
  if (!tmp) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "conv2d: out of host memory for the derived kernels");
  derive(W, tmp, ctx);
  int rc = use(tmp, ctx);
  dpl_host_free(tmp, bytes);
  return rc;
}
