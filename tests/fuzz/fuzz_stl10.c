/* fuzz_stl10.c - libFuzzer harness of the STL-10 reader (runtime/src/io/imageset.c). An input is split in two
 * files: byte 0 = k, the next k bytes the label file (none when k = 0: the unlabeled split), the rest the image
 * file (3 x 96 x 96 bytes per image). */
#define FUZZ_TAG "stl10"
#define FUZZ_SUFFIX "_X.bin"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *images = fuzz_path;
  static char labels[256];
  if (!labels[0]) snprintf(labels, sizeof labels, "%s.labels", fuzz_path);
  if (size < 1) return 0;
  size_t k = data[0] < size - 1 ? data[0] : size - 1;
  if (k) fuzz_write(labels, data + 1, k);
  fuzz_write(images, data + 1 + k, size - 1 - k);
  dpl_image_set *s = dpl_stl10_open(images, k ? labels : NULL);
  if (!s) {
    const char *msg = dpl_last_error();
    fuzz_check_error(strstr(msg, labels) ? labels : images);
  } else {
    int64_t n = dpl_image_set_count(s);
    if (n < 1 || (int64_t)(size - 1 - k) != n * 3 * 96 * 96) abort();
    for (int64_t i = 0; i < n; i++) {
      int label = dpl_image_set_label(s, i);
      if (k ? (label < 0 || label > 9) : label != -1) abort();
    }
    int64_t idx[1] = {n - 1};
    dpl_tensor *b = dpl_image_set_batch(s, fuzz_cpu, 1, idx);
    if (!b) abort();
    dpl_tensor_free(b);
    dpl_image_set_free(s);
  }
  fuzz_remove(images);
  fuzz_remove(labels);
  return 0;
}
