/* fuzz_npy.c - libFuzzer harness of the .npy reader (runtime/src/io/npy.c): each input is loaded on the CPU; a
 * loaded array's element count must match the header's shape product, which the reader bounds by the data present. */
#define FUZZ_TAG "npy"
#define FUZZ_SUFFIX ".npy"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write(fuzz_path, data, size);
  dpl_tensor *t = dpl_npy_load(fuzz_cpu, fuzz_path);
  if (t) {
    if (dpl_tensor_numel(t) > (int64_t)size) abort();   /* every element has at least one byte in the file */
    dpl_tensor_free(t);
  } else {
    fuzz_check_error(fuzz_path);
  }
  fuzz_remove(fuzz_path);
  return 0;
}
