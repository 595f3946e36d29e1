/* host_cache.c - a cache of large freed host blocks for the CPU backend (tensor storages, conv column buffers).
 * glibc returns large blocks to the OS on free (mmap / heap trimming), so every new activation of a forward pass paid
 * for fresh pages: the kernel zeroing them was a quarter of a VGG-16 training step. A network allocates the same sizes
 * pass after pass, so freed blocks are kept here, by exact (page-rounded) size, up to DPL_CPU_CACHE_MB in all (default
 * a quarter of the memory, 1 to 8 GB; 0 turns the cache off), the oldest given back first. Blocks below BLOCK_MIN go straight to malloc. */
#include "cpu.h"
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

enum { BLOCK_MIN = 256 << 10 };       /* smaller blocks stay in malloc's heap anyway */
enum { SLOTS = 256 };
enum { PAGE = 4096 };

typedef struct slot { void *p; size_t bytes; uint64_t age; } slot;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static slot slots[SLOTS];
static size_t cached, cap = (size_t)-1;
static uint64_t clock_;

/* Default: a quarter of the machine's memory, between 1 and 8 GB. A training step churns through more than 1 GB of
 * activations and gradients (the super-resolution step at 288 x 288: ~4 GB), and every block the cache cannot hold
 * is a fresh mmap whose pages the kernel faults in and zeroes again (2x the system time at 1 GB); cached blocks are
 * memory the process already held at its peak, and they are given back when an allocation fails. */
static long default_mb(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  long mb = pages > 0 && page > 0 ? (long)((double)pages * (double)page / 4 / (1 << 20)) : 1024;
  return mb < 1024 ? 1024 : mb > 8192 ? 8192 : mb;
}

static size_t capacity(void) {
  if (cap == (size_t)-1) cap = dpl_env_megabytes("DPL_CPU_CACHE_MB", default_mb());
  return cap;
}

static size_t rounded(size_t bytes) {
  return bytes >= BLOCK_MIN ? (bytes + PAGE - 1) & ~(size_t)(PAGE - 1) : (bytes + 63) & ~(size_t)63;
}

/* drops the oldest cached block; caller holds the lock; 0 when none is left */
static int evict_oldest(void) {
  int old = -1;
  for (int i = 0; i < SLOTS; i++)
    if (slots[i].p && (old < 0 || slots[i].age < slots[old].age)) old = i;
  if (old < 0) return 0;
  free(slots[old].p);
  cached -= slots[old].bytes;
  slots[old].p = NULL;
  return 1;
}

void *dpl_host_alloc(size_t bytes) {
  size_t b = rounded(bytes ? bytes : 1);
  if (b >= BLOCK_MIN && capacity() > 0) {
    pthread_mutex_lock(&lock);
    int best = -1;
    for (int i = 0; i < SLOTS; i++)
      if (slots[i].p && slots[i].bytes == b && (best < 0 || slots[i].age > slots[best].age)) best = i;
    void *p = NULL;
    if (best >= 0) {
      p = slots[best].p;
      slots[best].p = NULL;
      cached -= b;
    }
    pthread_mutex_unlock(&lock);
    if (p) return p;
  }
  void *p = aligned_alloc(64, b);
  if (!p && cached > 0) {            /* memory is short: give the cache back and try once more */
    dpl_host_cache_release();
    p = aligned_alloc(64, b);
  }
  return p;
}

void dpl_host_free(void *p, size_t bytes) {
  if (!p) return;
  size_t b = rounded(bytes ? bytes : 1);
  if (b < BLOCK_MIN || b > capacity()) { free(p); return; }
  pthread_mutex_lock(&lock);
  while (cached + b > cap && evict_oldest()) {}
  int free_slot = -1;
  for (int i = 0; i < SLOTS && free_slot < 0; i++)
    if (!slots[i].p) free_slot = i;
  if (free_slot < 0) {
    evict_oldest();
    for (int i = 0; i < SLOTS && free_slot < 0; i++)
      if (!slots[i].p) free_slot = i;
  }
  slots[free_slot] = (slot){p, b, ++clock_};
  cached += b;
  pthread_mutex_unlock(&lock);
}

void dpl_host_cache_release(void) {
  pthread_mutex_lock(&lock);
  while (evict_oldest()) {}
  pthread_mutex_unlock(&lock);
}
