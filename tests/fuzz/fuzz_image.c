/* fuzz_image.c - libFuzzer harness of the image readers (runtime/src/io/image.c: PNG through libpng, JPEG through
 * libjpeg-turbo, TIFF through libtiff; the format is chosen from the first bytes). Built three times, as fuzz_png,
 * fuzz_jpeg and fuzz_tiff, which differ only in their seeds. Each input is loaded in every channel mode on the CPU.
 * The pixel limit is lowered to 4 Mpixels (DPL_MAX_IMAGE_PIXELS, docs/robustness.md): images the policy accepts
 * then stay small, so a finding is a bug, not a large legitimate image. */
#define FUZZ_TAG "image"
#define FUZZ_SUFFIX ".img"
#define FUZZ_ENV_NAME "DPL_MAX_IMAGE_PIXELS"
#define FUZZ_ENV_VALUE "4194304"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write(fuzz_path, data, size);
  static const int modes[3] = {0, 1, 3};
  for (int m = 0; m < 3; m++) {
    dpl_tensor *t = dpl_image_load(fuzz_cpu, fuzz_path, modes[m]);
    if (!t) {
      fuzz_check_error(fuzz_path);
      break;
    }
    int64_t c = dpl_tensor_size(t, 0);
    if (dpl_tensor_ndim(t) != 3 || c < 1 || c > 4 || (modes[m] && c != modes[m])) abort();
    dpl_tensor_free(t);
  }
  fuzz_remove(fuzz_path);
  return 0;
}
