/* fuzz_mat.c - libFuzzer harness of the SVHN reader (runtime/src/io/imageset.c: MATLAB 5 .mat files, zlib-compressed
 * elements): each input is opened; an opened set's count, shape, labels and a batch of its first and last images
 * are read. */
#define FUZZ_TAG "mat"
#define FUZZ_SUFFIX ".mat"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write(fuzz_path, data, size);
  dpl_image_set *s = dpl_svhn_open(fuzz_path);
  if (!s) {
    fuzz_check_error(fuzz_path);
  } else {
    int64_t n = dpl_image_set_count(s), chw[3];
    if (n < 0 || dpl_image_set_shape(s, chw) || chw[0] != 3) abort();
    for (int64_t i = 0; i < n; i++) {
      int label = dpl_image_set_label(s, i);
      if (label < 0 || label > 9) abort();
    }
    if (n > 0 && chw[1] * chw[2] <= 4096) {
      int64_t idx[2] = {0, n - 1};
      dpl_tensor *b = dpl_image_set_batch(s, fuzz_cpu, 2, idx);
      if (!b) abort();
      dpl_tensor_free(b);
    }
    dpl_image_set_free(s);
  }
  fuzz_remove(fuzz_path);
  return 0;
}
