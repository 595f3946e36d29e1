/* test_loader.c - the background file loader (runtime/src/io/loader.c) under load: many jobs in flight on several
 * threads, images and .npy files mixed, results checked against loading on the calling thread, jobs outliving their
 * loader, per-file errors, and the CPU device's byte count back to where it started (its counters are updated from
 * the worker threads). Decodes the LPIPS example patches of $DPL_SHARED/data/BAPPS/imgs; without them, three 64 x 64
 * PNGs it writes itself (what is tested is the loader's threading, not the pictures). */
#include "dpl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (cond) { passed++; }                               \
    else {                                                \
      failed++;                                           \
      printf("FAIL   %s:%d: ", __FILE__, __LINE__);       \
      printf(__VA_ARGS__);                                \
      printf("\n");                                       \
    }                                                     \
  } while (0)

enum { JOBS = 40, FILES = 24 };

static int same(dpl_tensor *a, dpl_tensor *b) {
  if (!a || !b || dpl_tensor_numel(a) != dpl_tensor_numel(b)) return 0;
  int64_t n = dpl_tensor_numel(a);
  float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
  int ok = x && y && dpl_tensor_to_host(a, x) == DPL_OK && dpl_tensor_to_host(b, y) == DPL_OK &&
           memcmp(x, y, sizeof(float) * (size_t)n) == 0;
  free(x);
  free(y);
  return ok;
}

int main(void) {
  const char *shared = getenv("DPL_SHARED");
  if (!shared) shared = "../shared";
  int own_images = 0;
  {   /* the LPIPS example patches of the reference data, else PNGs written here */
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/data/BAPPS/imgs/ex_ref.png", shared);
    FILE *f = fopen(probe, "rb");
    if (f) fclose(f);
    own_images = !f;
  }
  char img[3][1024], npy[3][1024];
  const char *names[3] = {"ex_ref", "ex_p0", "ex_p1"};
  dpl_device *cpu = dpl_device_open("cpu");
  if (own_images) printf("note   test_loader: no data/BAPPS/imgs in %s: decoding 3 PNGs written here\n", shared);
  for (int i = 0; own_images && i < 3; i++) {   /* seeded uniform noise: every byte value, nothing compressible */
    snprintf(img[i], sizeof img[i], "/tmp/dpl_test_loader_%d_%d.png", (int)getpid(), i);
    int64_t shape[3] = {3, 64, 64};
    dpl_tensor *t = dpl_tensor_random(cpu, 3, shape, 1, 0, 1, 7, 1000 + (uint64_t)i);
    CHECK(t && dpl_image_save(t, img[i]) == DPL_OK, "write %s: %s", img[i], dpl_last_error());
    dpl_tensor_free(t);
  }
  int64_t bytes0 = dpl_device_stat(cpu, "bytes");
  dpl_tensor *want_img[3], *want_npy[3];
  for (int i = 0; i < 3; i++) {
    if (!own_images) snprintf(img[i], sizeof img[i], "%s/data/BAPPS/imgs/%s.png", shared, names[i]);
    snprintf(npy[i], sizeof npy[i], "/tmp/dpl_test_loader_%d_%d.npy", (int)getpid(), i);
    want_img[i] = dpl_image_load(cpu, img[i], 3);
    CHECK(want_img[i] != NULL, "load %s: %s", img[i], dpl_last_error());
    int64_t shape[2] = {i + 1, 5};
    want_npy[i] = dpl_tensor_random(cpu, 2, shape, 1, 0, 1, 7, (uint64_t)i * 100);
    CHECK(dpl_npy_save(want_npy[i], npy[i]) == DPL_OK, "save %s", npy[i]);
  }
  if (failed) { printf("%d passed, %d failed\n", passed, failed); return 1; }

  /* many jobs in flight at once on 6 threads */
  dpl_loader *l = dpl_loader_new(6);
  CHECK(l && dpl_loader_threads(l) == 6, "loader with 6 threads");
  dpl_load_job *jobs[JOBS];
  for (int j = 0; j < JOBS; j++) {
    const char *paths[FILES];
    for (int k = 0; k < FILES; k++) paths[k] = (j % 2 ? npy : img)[(j + k) % 3];
    jobs[j] = dpl_loader_submit(l, FILES, paths, j % 2 ? DPL_LOAD_NPY : DPL_LOAD_IMAGE, 3);
    CHECK(jobs[j] != NULL, "submit %d: %s", j, dpl_last_error());
  }
  /* the loader goes first: queued files are still finished, and the jobs stay valid */
  dpl_loader_free(l);
  int mismatches = 0;
  for (int j = JOBS - 1; j >= 0; j--) {
    if (!jobs[j]) continue;
    CHECK(dpl_load_job_wait(jobs[j]) == DPL_OK && dpl_load_job_done(jobs[j]), "job %d: %s", j, dpl_last_error());
    for (int k = 0; k < FILES; k += (j % 3) + 1) {   /* leave some tensors untaken: freed with the job */
      dpl_tensor *t = dpl_load_job_take(jobs[j], k);
      if (!same(t, (j % 2 ? want_npy : want_img)[(j + k) % 3])) mismatches++;
      dpl_tensor_free(t);
    }
    dpl_load_job_free(jobs[j]);
  }
  CHECK(mismatches == 0, "%d decoded files differ from loading on the calling thread", mismatches);

  /* errors are per file and name it; an empty job is done at once */
  l = dpl_loader_new(2);
  const char *mixed[3] = {img[0], "/nonexistent/x.png", img[1]};
  dpl_load_job *e = dpl_loader_submit(l, 3, mixed, DPL_LOAD_IMAGE, 3);
  CHECK(dpl_load_job_wait(e) != DPL_OK && strstr(dpl_last_error(), "/nonexistent/x.png"), "error: %s", dpl_last_error());
  dpl_tensor *ok0 = dpl_load_job_take(e, 0);
  CHECK(same(ok0, want_img[0]), "the good file of a failing job");
  dpl_tensor_free(ok0);
  CHECK(!dpl_load_job_take(e, 1) && strstr(dpl_last_error(), "x.png"), "take of the failed file: %s", dpl_last_error());
  CHECK(!dpl_load_job_take(e, 0) && strstr(dpl_last_error(), "already taken"), "second take: %s", dpl_last_error());
  dpl_load_job_free(e);
  dpl_load_job *empty = dpl_loader_submit(l, 0, NULL, DPL_LOAD_IMAGE, 3);
  CHECK(empty && dpl_load_job_done(empty) && dpl_load_job_wait(empty) == DPL_OK, "empty job");
  dpl_load_job_free(empty);
  CHECK(!dpl_loader_submit(l, 1, mixed, 7, 3) && strstr(dpl_last_error(), "kind"), "bad kind: %s", dpl_last_error());
  CHECK(!dpl_loader_submit(l, 1, mixed, DPL_LOAD_IMAGE, 2) && strstr(dpl_last_error(), "channels"), "bad channels");
  dpl_loader_free(l);
  CHECK(!dpl_loader_new(0), "zero threads refused");

  for (int i = 0; i < 3; i++) {
    dpl_tensor_free(want_img[i]);
    dpl_tensor_free(want_npy[i]);
    remove(npy[i]);
  }
  int64_t bytes1 = dpl_device_stat(cpu, "bytes");
  CHECK(bytes1 == bytes0, "CPU bytes back to %lld, got %lld", (long long)bytes0, (long long)bytes1);
  /* shutdown with files still queued: they fail (nobody waits forever) and the threads are stopped before the CPU
     device goes. Nothing created before the shutdown may be freed after it, so the job and loader are left. */
  dpl_loader *late = dpl_loader_new(1);
  const char *many[200];
  for (int k = 0; k < 200; k++) many[k] = img[k % 3];
  dpl_load_job *pending = dpl_loader_submit(late, 200, many, DPL_LOAD_IMAGE, 3);
  dpl_shutdown();
  int rc = dpl_load_job_wait(pending);
  CHECK(rc == DPL_OK || strstr(dpl_last_error(), "shut down"), "after shutdown: %s", dpl_last_error());
  CHECK(!dpl_loader_submit(late, 1, many, DPL_LOAD_IMAGE, 3) && strstr(dpl_last_error(), "closed"),
        "submit after shutdown: %s", dpl_last_error());
  for (int i = 0; own_images && i < 3; i++) remove(img[i]);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
