/* fuzz_tensor_file.c - libFuzzer harness of the tensor file readers (runtime/src/io/pth.c: PyTorch zip and legacy
 * checkpoints through the safe unpickler; safetensors.c; the format is chosen from the first bytes). Built twice,
 * as fuzz_pth and fuzz_safetensors, which differ only in their seeds (tests/fuzz/corpus/<reader>) and dictionary.
 * Each input is opened, its index queried, and every tensor loaded on the CPU; a crash, a sanitizer report, a leak,
 * a hang, or an error that does not name the file is a finding. Tensors of more than 2^22 elements are not loaded:
 * a few hundred bytes can legitimately describe a 2^24-element tensor (zero-stride expansions beyond 16x their
 * stored data are refused by the reader), which would only measure the machine's memory. */
#define FUZZ_TAG "tensor_file"
#define FUZZ_SUFFIX ".bin"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write(fuzz_path, data, size);
  dpl_tensor_file *f = dpl_tensor_file_open(fuzz_path);
  if (!f) {
    fuzz_check_error(fuzz_path);
    fuzz_remove(fuzz_path);
    return 0;
  }
  (void)dpl_tensor_file_format(f);
  (void)dpl_tensor_file_metadata(f, "format");
  int n = dpl_tensor_file_count(f);
  for (int i = 0; i < n; i++) {
    int64_t shape[DPL_MAX_DIMS];
    const char *name = dpl_tensor_file_name(f, i);
    if (!name || dpl_tensor_file_find(f, name) != i) abort();   /* names are unique */
    (void)dpl_tensor_file_dtype(f, i);
    int nd = dpl_tensor_file_shape(f, i, shape);
    if (nd < 0 || nd > DPL_MAX_DIMS) abort();
    int64_t numel = 1;
    int big = 0;
    for (int d = 0; d < nd; d++) {
      if (shape[d] < 0) abort();
      if (shape[d] == 0) { numel = 0; big = 0; break; }
      if (shape[d] > (1 << 22) || numel * shape[d] > (1 << 22)) big = 1;
      else numel *= shape[d];
    }
    if (big) continue;
    dpl_tensor *t = dpl_tensor_file_load(f, fuzz_cpu, i);
    if (t) {
      if (dpl_tensor_numel(t) != numel) abort();
      dpl_tensor_free(t);
    } else {
      fuzz_check_error(fuzz_path);
    }
  }
  dpl_tensor_file_close(f);
  fuzz_remove(fuzz_path);
  return 0;
}
