/* test_runtime.c - C unit tests of the runtime through its public API: tensors and views, error reporting, and the
 * Vulkan execution model (ops are recorded and submitted only when the host reads, barriers only on hazards, memory
 * freed while the GPU may still use it is not reused too early). Prints one line per check and a closing count. */
#include "dpl.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static float read1(dpl_tensor *t) {
  float v = NAN;
  if (dpl_tensor_item(t, &v) != DPL_OK) printf("       item failed: %s\n", dpl_last_error());
  return v;
}

static void test_views(dpl_device *dev) {
  const char *name = dpl_device_spec(dev);
  int64_t shape[3] = {2, 3, 4};
  dpl_tensor *a = dpl_tensor_arange(dev, 0, 24, 1);
  dpl_tensor *b = dpl_tensor_view(a, 3, shape);
  CHECK(b && dpl_tensor_ndim(b) == 3 && dpl_tensor_stride(b, 0) == 12, "%s: view strides", name);
  dpl_tensor *t = dpl_tensor_transpose(b, 0, 2);
  CHECK(t && !dpl_tensor_is_contiguous(t) && dpl_tensor_size(t, 0) == 4, "%s: transpose", name);
  dpl_tensor *c = dpl_tensor_contiguous(t);
  float host[24];
  CHECK(dpl_tensor_to_host(c, host) == DPL_OK, "%s: to_host", name);
  /* c[i][j][k] = b[k][j][i] = 12k + 4j + i */
  CHECK(host[1] == 12 && host[2] == 4 && host[3] == 16 && host[6] == 1, "%s: transposed values %g %g %g", name, host[1], host[2], host[6]);
  int64_t bad[2] = {5, 5};
  dpl_tensor *v = dpl_tensor_view(t, 2, bad);
  CHECK(!v && strstr(dpl_last_error(), "dpl_tensor_view") && strstr(dpl_last_error(), "[5, 5]"),
        "%s: bad view error: %s", name, dpl_last_error());
  int64_t flat[1] = {-1};
  v = dpl_tensor_view(t, 1, flat);   /* not viewable: needs reshape */
  CHECK(!v && strstr(dpl_last_error(), "reshape"), "%s: non-viewable error: %s", name, dpl_last_error());
  dpl_tensor *r = dpl_tensor_reshape(t, 1, flat);
  CHECK(r && dpl_tensor_numel(r) == 24, "%s: reshape copies", name);
  dpl_tensor_free(r);
  dpl_tensor_free(c);
  dpl_tensor_free(t);
  dpl_tensor_free(b);
  dpl_tensor_free(a);
}

static void test_errors(dpl_device *dev) {
  const char *name = dpl_device_spec(dev);
  int64_t s1[2] = {2, 3}, s2[2] = {4, 3};
  dpl_tensor *a = dpl_tensor_full(dev, 2, s1, 1), *b = dpl_tensor_full(dev, 2, s2, 1);
  dpl_tensor *c = dpl_binary(DPL_ADD, a, b);
  CHECK(!c && strstr(dpl_last_error(), "add") && strstr(dpl_last_error(), "[2, 3]") && strstr(dpl_last_error(), "[4, 3]"),
        "%s: broadcast error: %s", name, dpl_last_error());
  c = dpl_matmul(a, b);
  CHECK(!c && strstr(dpl_last_error(), "matmul"), "%s: matmul error: %s", name, dpl_last_error());
  int64_t neg[2] = {2, -1};
  CHECK(!dpl_tensor_empty(dev, 2, neg) && strstr(dpl_last_error(), "negative"), "%s: negative size: %s", name,
        dpl_last_error());
  CHECK(!dpl_binary(99, a, a) && dpl_last_status() == DPL_ERR_ARGUMENT, "%s: unknown op", name);
  /* every entry point rejects an op code just past its enum (the _COUNT sentinel) and a negative one, naming it */
  int dims[1] = {0};
  for (int op = -1; op <= 0; op++) {
    int bad_b = op < 0 ? -1 : DPL_BINARY_COUNT, bad_u = op < 0 ? -1 : DPL_UNARY_COUNT;
    int bad_r = op < 0 ? -1 : DPL_REDUCE_COUNT;
    CHECK(!dpl_binary(bad_b, a, a) && strstr(dpl_last_error(), "unknown op"), "%s: binary op %d: %s", name, bad_b,
          dpl_last_error());
    CHECK(!dpl_binary_scalar(bad_b, a, 1.0f, 0) && strstr(dpl_last_error(), "unknown op"), "%s: binary_scalar op %d",
          name, bad_b);
    CHECK(dpl_binary_into(bad_b, a, a, a) == DPL_ERR_ARGUMENT, "%s: binary_into op %d", name, bad_b);
    CHECK(dpl_binary_scalar_into(bad_b, a, a, 1.0f, 1) == DPL_ERR_ARGUMENT, "%s: binary_scalar_into op %d", name,
          bad_b);
    CHECK(!dpl_unary(bad_u, a, 0, 0) && strstr(dpl_last_error(), "unknown op"), "%s: unary op %d: %s", name, bad_u,
          dpl_last_error());
    CHECK(dpl_unary_into(bad_u, a, a, 0, 0) == DPL_ERR_ARGUMENT, "%s: unary_into op %d", name, bad_u);
    CHECK(!dpl_reduce(bad_r, a, 1, dims, 0, 0) && strstr(dpl_last_error(), "unknown op"), "%s: reduce op %d: %s", name,
          bad_r, dpl_last_error());
  }
  /* and the last op of each enum is accepted (the sentinels sit right after them) */
  dpl_tensor *ok = dpl_binary(DPL_BINARY_COUNT - 1, a, a);
  CHECK(ok != NULL, "%s: binary op %d: %s", name, DPL_BINARY_COUNT - 1, dpl_last_error());
  dpl_tensor_free(ok);
  ok = dpl_unary(DPL_UNARY_COUNT - 1, a, 0, 0);
  CHECK(ok != NULL, "%s: unary op %d: %s", name, DPL_UNARY_COUNT - 1, dpl_last_error());
  dpl_tensor_free(ok);
  ok = dpl_reduce(DPL_REDUCE_COUNT - 1, a, 1, dims, 0, 0);
  CHECK(ok != NULL, "%s: reduce op %d: %s", name, DPL_REDUCE_COUNT - 1, dpl_last_error());
  dpl_tensor_free(ok);
  CHECK(!dpl_tensor_narrow(a, 1, 2, 5), "%s: narrow out of range", name);
  CHECK(!dpl_binary(DPL_ADD, NULL, a), "%s: NULL tensor", name);
  dpl_tensor_free(a);
  dpl_tensor_free(b);
}

/* The Vulkan execution model: nothing is submitted until the host reads; barriers only where data conflicts. */
static void test_recording(dpl_device *dev) {
  int64_t shape[1] = {1000};
  dpl_tensor *x = dpl_tensor_full(dev, 1, shape, 1.0f);
  CHECK(dpl_device_synchronize(dev) == DPL_OK, "synchronize");
  int64_t submits0 = dpl_device_stat(dev, "submits"), barriers0 = dpl_device_stat(dev, "barriers");
  /* 50 independent ops reading x: no hazards between them */
  dpl_tensor *outs[50];
  for (int i = 0; i < 50; i++) outs[i] = dpl_binary_scalar(DPL_ADD, x, (float)i, 0);
  CHECK(dpl_device_stat(dev, "submits") == submits0, "independent ops are recorded, not submitted (%lld submits)",
        (long long)(dpl_device_stat(dev, "submits") - submits0));
  CHECK(dpl_device_stat(dev, "barriers") == barriers0, "independent ops need no barrier (%lld barriers)",
        (long long)(dpl_device_stat(dev, "barriers") - barriers0));
  /* a chain: each op reads the previous output, so each needs one barrier */
  dpl_tensor *y = dpl_tensor_ref(x);
  for (int i = 0; i < 20; i++) {
    dpl_tensor *z = dpl_binary_scalar(DPL_ADD, y, 1.0f, 0);
    dpl_tensor_free(y);   /* freed while the GPU may still read it: must not be reused too early */
    y = z;
  }
  int64_t chain_barriers = dpl_device_stat(dev, "barriers") - barriers0;
  CHECK(chain_barriers >= 19 && chain_barriers <= 21, "a chain of 20 dependent ops has ~20 barriers (%lld)",
        (long long)chain_barriers);
  dpl_tensor *s = dpl_reduce(DPL_SUM, y, 0, NULL, 0, 0);
  float v = read1(s);
  CHECK(v == 21000.0f, "chain result %g, expected 21000", v);
  CHECK(dpl_device_stat(dev, "submits") - submits0 == 1, "one submit for the whole batch (%lld)",
        (long long)(dpl_device_stat(dev, "submits") - submits0));
  float h[1000];
  dpl_tensor_to_host(outs[49], h);
  CHECK(h[0] == 50.0f && h[999] == 50.0f, "independent op result %g", h[0]);
  for (int i = 0; i < 50; i++) dpl_tensor_free(outs[i]);
  dpl_tensor_free(s);
  dpl_tensor_free(y);
  dpl_tensor_free(x);
  CHECK(dpl_device_stat(dev, "pipelines") > 0 && dpl_device_stat(dev, "pipelines") < 20, "pipelines are cached (%lld)",
        (long long)dpl_device_stat(dev, "pipelines"));
}

/* Host writes into memory the GPU is still reading wait for the GPU first. */
static void test_host_write_hazard(dpl_device *dev) {
  int64_t shape[1] = {256};
  float ones[256], twos[256], out[256];
  for (int i = 0; i < 256; i++) { ones[i] = 1; twos[i] = 2; }
  dpl_tensor *x = dpl_tensor_from_host(dev, 1, shape, ones);
  dpl_tensor *y = dpl_binary_scalar(DPL_MUL, x, 3.0f, 0);   /* recorded: reads x later */
  dpl_tensor_from_host_(x, twos);                           /* must not change what y sees */
  dpl_tensor_to_host(y, out);
  CHECK(out[0] == 3.0f && out[255] == 3.0f, "write-after-read hazard: y = %g, expected 3", out[0]);
  dpl_tensor_free(y);
  dpl_tensor_free(x);
}

int main(void) {
  dpl_device *cpu = dpl_device_open("cpu");
  CHECK(cpu != NULL, "cpu device");
  test_views(cpu);
  test_errors(cpu);
  CHECK(!dpl_device_open("gpu") && strstr(dpl_last_error(), "unknown device"), "unknown device: %s", dpl_last_error());
  CHECK(!dpl_device_open("vulkan:99"), "missing vulkan device");
  if (dpl_vulkan_device_count() > 0) {
    dpl_device *vk = dpl_device_open("vulkan");
    CHECK(vk != NULL, "vulkan device: %s", dpl_last_error());
    if (vk) {
      test_views(vk);
      test_errors(vk);
      test_recording(vk);
      test_host_write_hazard(vk);
    }
  } else {
    printf("skip   vulkan checks: %s\n", dpl_vulkan_unavailable_reason());
  }
  dpl_shutdown();
  int64_t vmsgs = dpl_validation_message_count();
  CHECK(vmsgs == 0, "validation layer messages: %lld", (long long)vmsgs);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
