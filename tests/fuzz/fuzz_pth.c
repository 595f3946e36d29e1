/* fuzz_pth.c - libFuzzer target for the tensor file readers (PyTorch zip and legacy checkpoints through the safe
 * unpickler in runtime/src/io/pth.c; safetensors too, since the format is chosen from the first bytes): each input is
 * written to a file in /dev/shm, opened with dpl_tensor_file_open, its index queried, and every tensor loaded on the
 * CPU device. A crash, a sanitizer report, a leak or a hang is a bug; an error return is the expected outcome for
 * almost every input. Not part of the CMake build - built by hand with Debian's clang (apt-get install clang):
 *
 *   cmake -B build -S . && cmake --build build          # for build/generated/shaders.c (the embedded SPIR-V)
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fopenmp \
 *     -Iruntime/include -Iruntime/src -Ibuild/generated -DVK_NO_PROTOTYPES -DDPL_VERSION_STRING='"fuzz"' \
 *     tests/fuzz/fuzz_pth.c runtime/src/*.c runtime/src/cpu/*.c runtime/src/ops/*.c runtime/src/io/*.c \
 *     runtime/src/vulkan/*.c build/generated/shaders.c /usr/include/volk.c \
 *     -lopenblas -lm -ldl -lpthread -o /tmp/fuzz_pth
 *   mkdir -p /tmp/fuzz_pth_corpus
 *   DPL_QUIET=1 OMP_NUM_THREADS=1 /tmp/fuzz_pth -max_total_time=300 -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
 *     -dict=tests/fuzz/pth.dict -artifact_prefix=/tmp/ \
 *     /tmp/fuzz_pth_corpus tests/fuzz/corpus_pth
 *
 * (the first corpus directory receives the new inputs; tests/fuzz/corpus_pth holds the small seeds, written by
 * `tests/ref/make_pth.py OUT "" tests/fuzz/corpus_pth`). Tensors of more than 2^22 elements are not loaded: the
 * reader refuses tensors with more than 16x (and 2^24) the elements they store (zero-stride bombs), but a legitimate
 * 2^24-element tensor described by a few hundred bytes still only measures the machine's memory. */
#include "dpl.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dpl_device *cpu;
static char path[64];

static void remove_input(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  cpu = dpl_device_open("cpu");
  if (!cpu) {
    fprintf(stderr, "fuzz_pth: cannot open the CPU device: %s\n", dpl_last_error());
    abort();
  }
  snprintf(path, sizeof path, "/dev/shm/fuzz_pth_%d.pth", (int)getpid());
  atexit(remove_input);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *fp = fopen(path, "wb");
  if (!fp) abort();
  if (size && fwrite(data, 1, size, fp) != size) abort();
  fclose(fp);
  dpl_tensor_file *f = dpl_tensor_file_open(path);
  if (!f) {
    /* every error names the file */
    if (!strstr(dpl_last_error(), path)) {
      fprintf(stderr, "error without the file name: %s\n", dpl_last_error());
      abort();
    }
    dpl_clear_error();
    return 0;
  }
  (void)dpl_tensor_file_format(f);
  int n = dpl_tensor_file_count(f);
  for (int i = 0; i < n; i++) {
    int64_t shape[DPL_MAX_DIMS];
    const char *name = dpl_tensor_file_name(f, i);
    if (!name || dpl_tensor_file_find(f, name) < 0) abort();
    (void)dpl_tensor_file_dtype(f, i);
    int nd = dpl_tensor_file_shape(f, i, shape);
    if (nd < 0 || nd > DPL_MAX_DIMS) abort();
    int64_t numel = 1;
    int big = 0;
    for (int d = 0; d < nd; d++) {
      if (shape[d] == 0) { numel = 0; big = 0; break; }
      if (shape[d] > (1 << 22) || numel * shape[d] > (1 << 22)) big = 1;
      else numel *= shape[d];
    }
    if (big) continue;
    dpl_tensor *t = dpl_tensor_file_load(f, cpu, i);
    if (t) {
      if (dpl_tensor_numel(t) != numel) abort();
      dpl_tensor_free(t);
    } else {
      dpl_clear_error();
    }
  }
  dpl_tensor_file_close(f);
  return 0;
}
