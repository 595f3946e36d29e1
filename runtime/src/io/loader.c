/* loader.c - decoding files on background threads, so the device is not left waiting for the next batch.
 *
 * A loader is a small pool of POSIX threads. A job is a list of files (images via dpl_image_load, or .npy via
 * dpl_npy_load) that the threads decode, in any order, into CPU tensors; the caller waits for the job and takes the
 * tensors one by one. LuaJIT has no threads of its own, so this is how the Lua dataset iterators prefetch: they
 * submit the next batch's files, process the current batch, then wait.
 *
 * Each file's error message is recorded in the job (dpl's error state is per thread), and reported by
 * dpl_load_job_wait / dpl_load_job_take on the caller's thread. */
#include "internal.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct load_item {
  char *path;
  dpl_tensor *result;             /* NULL until decoded, or on error */
  char *error;                    /* the decoder's message on error */
  int status;
} load_item;

struct dpl_load_job {
  dpl_loader *loader;
  int kind, channels;
  int n, next, done;              /* items claimed by workers so far; items finished */
  load_item *items;
  struct dpl_load_job *queue_next;
  pthread_cond_t finished;
};

struct dpl_loader {
  pthread_mutex_t lock;
  pthread_cond_t work;            /* signalled when a job is queued or the loader stops */
  pthread_t *threads;
  int nthreads;
  int stopping;
  int refs;                       /* the user's reference plus one per live job */
  dpl_device *cpu;
  dpl_load_job *head, *tail;      /* jobs with items not yet claimed, in submission order */
};

static void loader_unref_locked(dpl_loader *l, int *destroy) {
  if (--l->refs == 0) *destroy = 1;
}

static void loader_destroy(dpl_loader *l) {
  pthread_mutex_destroy(&l->lock);
  pthread_cond_destroy(&l->work);
  free(l->threads);
  free(l);
}

static void decode(dpl_loader *l, dpl_load_job *j, load_item *it) {
  dpl_clear_error();
  dpl_tensor *t;
  if (j->kind == DPL_LOAD_NPY) t = dpl_npy_load(l->cpu, it->path);
  else t = dpl_image_load(l->cpu, it->path, j->channels);
  it->result = t;
  if (!t) {
    it->status = dpl_last_status() ? dpl_last_status() : DPL_ERR_IO;
    it->error = strdup(dpl_last_error());
  }
}

static void *worker(void *arg) {
  dpl_loader *l = arg;
  pthread_mutex_lock(&l->lock);
  for (;;) {
    while (!l->head && !l->stopping) pthread_cond_wait(&l->work, &l->lock);
    if (!l->head) break;                       /* stopping and nothing left to do */
    dpl_load_job *j = l->head;
    load_item *it = &j->items[j->next++];
    if (j->next == j->n) {                     /* every item claimed: off the queue */
      l->head = j->queue_next;
      if (!l->head) l->tail = NULL;
    }
    pthread_mutex_unlock(&l->lock);
    decode(l, j, it);
    pthread_mutex_lock(&l->lock);
    if (++j->done == j->n) pthread_cond_broadcast(&j->finished);
  }
  pthread_mutex_unlock(&l->lock);
  return NULL;
}

dpl_loader *dpl_loader_new(int nthreads) {
  if (nthreads < 1 || nthreads > 256) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_loader_new: nthreads must be 1..256, got %d", nthreads);
    return NULL;
  }
  dpl_device *cpu = dpl_device_open("cpu");
  if (!cpu) { dpl_error_prefix("dpl_loader_new"); return NULL; }
  dpl_loader *l = calloc(1, sizeof *l);
  pthread_t *threads = calloc((size_t)nthreads, sizeof *threads);
  if (!l || !threads) {
    free(l);
    free(threads);
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "dpl_loader_new: out of host memory");
    return NULL;
  }
  pthread_mutex_init(&l->lock, NULL);
  pthread_cond_init(&l->work, NULL);
  l->threads = threads;
  l->cpu = cpu;
  l->refs = 1;
  for (int i = 0; i < nthreads; i++) {
    if (pthread_create(&l->threads[i], NULL, worker, l) != 0) {
      dpl_fail(DPL_ERR_DEVICE, "dpl_loader_new: cannot start thread %d of %d", i + 1, nthreads);
      l->nthreads = i;
      dpl_loader_free(l);
      return NULL;
    }
    l->nthreads = i + 1;
  }
  return l;
}

int dpl_loader_threads(const dpl_loader *l) { return l ? l->nthreads : 0; }

void dpl_loader_free(dpl_loader *l) {
  if (!l) return;
  /* queued work is finished first (jobs still owned by the caller must be completed so they can be waited for) */
  pthread_mutex_lock(&l->lock);
  l->stopping = 1;
  pthread_cond_broadcast(&l->work);
  pthread_mutex_unlock(&l->lock);
  for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i], NULL);
  l->nthreads = 0;
  int destroy = 0;
  pthread_mutex_lock(&l->lock);
  loader_unref_locked(l, &destroy);
  pthread_mutex_unlock(&l->lock);
  if (destroy) loader_destroy(l);
}

dpl_load_job *dpl_loader_submit(dpl_loader *l, int n, const char *const *paths, int kind, int channels) {
  if (!l || (n > 0 && !paths)) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_loader_submit: NULL argument"); return NULL; }
  if (n < 0) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_loader_submit: negative file count %d", n); return NULL; }
  if (kind != DPL_LOAD_IMAGE && kind != DPL_LOAD_NPY) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_loader_submit: kind must be DPL_LOAD_IMAGE (0) or DPL_LOAD_NPY (1), got %d", kind);
    return NULL;
  }
  if (kind == DPL_LOAD_IMAGE && channels != 0 && channels != 1 && channels != 3) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_loader_submit: channels must be 0, 1 or 3, got %d", channels);
    return NULL;
  }
  dpl_load_job *j = calloc(1, sizeof *j);
  load_item *items = calloc((size_t)(n ? n : 1), sizeof *items);
  if (!j || !items) goto oom;
  j->items = items;
  for (int i = 0; i < n; i++) {
    if (!paths[i]) {
      dpl_fail(DPL_ERR_ARGUMENT, "dpl_loader_submit: path %d is NULL", i);
      for (int k = 0; k < i; k++) free(items[k].path);
      free(items);
      free(j);
      return NULL;
    }
    if (!(items[i].path = strdup(paths[i]))) {
      for (int k = 0; k < i; k++) free(items[k].path);
      goto oom;
    }
  }
  j->loader = l;
  j->kind = kind;
  j->channels = channels;
  j->n = n;
  pthread_cond_init(&j->finished, NULL);
  pthread_mutex_lock(&l->lock);
  if (l->stopping || l->nthreads == 0) {
    pthread_mutex_unlock(&l->lock);
    for (int i = 0; i < n; i++) free(items[i].path);
    pthread_cond_destroy(&j->finished);
    free(items);
    free(j);
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_loader_submit: the loader has been closed");
    return NULL;
  }
  l->refs++;
  if (n > 0) {
    if (l->tail) l->tail->queue_next = j; else l->head = j;
    l->tail = j;
    pthread_cond_broadcast(&l->work);
  }
  pthread_mutex_unlock(&l->lock);
  return j;
oom:
  free(items);
  free(j);
  dpl_fail(DPL_ERR_OUT_OF_MEMORY, "dpl_loader_submit: out of host memory");
  return NULL;
}

int dpl_load_job_count(const dpl_load_job *j) { return j ? j->n : 0; }

int dpl_load_job_done(dpl_load_job *j) {
  if (!j) return 1;
  pthread_mutex_lock(&j->loader->lock);
  int done = j->done == j->n;
  pthread_mutex_unlock(&j->loader->lock);
  return done;
}

static void wait_locked(dpl_load_job *j) {
  while (j->done < j->n) pthread_cond_wait(&j->finished, &j->loader->lock);
}

int dpl_load_job_wait(dpl_load_job *j) {
  if (!j) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_load_job_wait: NULL job");
  pthread_mutex_lock(&j->loader->lock);
  wait_locked(j);
  pthread_mutex_unlock(&j->loader->lock);
  for (int i = 0; i < j->n; i++)
    if (j->items[i].error) return dpl_fail(j->items[i].status, "%s", j->items[i].error);
  return DPL_OK;
}

dpl_tensor *dpl_load_job_take(dpl_load_job *j, int index) {
  if (!j) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_load_job_take: NULL job"); return NULL; }
  if (index < 0 || index >= j->n) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_load_job_take: index %d out of range for a job of %d files", index, j->n);
    return NULL;
  }
  pthread_mutex_lock(&j->loader->lock);
  wait_locked(j);
  pthread_mutex_unlock(&j->loader->lock);
  load_item *it = &j->items[index];
  if (it->error) { dpl_fail(it->status, "%s", it->error); return NULL; }
  if (!it->result) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_load_job_take: file %d (%s) was already taken", index, it->path);
    return NULL;
  }
  dpl_tensor *t = it->result;
  it->result = NULL;
  return t;
}

void dpl_load_job_free(dpl_load_job *j) {
  if (!j) return;
  dpl_loader *l = j->loader;
  int destroy = 0;
  pthread_mutex_lock(&l->lock);
  wait_locked(j);                      /* workers may still hold pointers into the job */
  loader_unref_locked(l, &destroy);
  pthread_mutex_unlock(&l->lock);
  for (int i = 0; i < j->n; i++) {
    free(j->items[i].path);
    free(j->items[i].error);
    if (j->items[i].result) dpl_tensor_free(j->items[i].result);
  }
  pthread_cond_destroy(&j->finished);
  free(j->items);
  free(j);
  if (destroy) loader_destroy(l);
}
