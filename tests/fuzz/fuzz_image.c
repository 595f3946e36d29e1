/* fuzz_image.c - libFuzzer target for the image readers (runtime/src/io/image.c: PNG through libpng, JPEG through
 * libjpeg-turbo, TIFF through libtiff; the format is chosen from the first bytes): each input is written to a file in
 * /dev/shm and loaded in every channel mode on the CPU device. A crash, a sanitizer report, a leak or a hang is a bug;
 * an error naming the file is the expected outcome for most inputs. Not part of the CMake build - built by hand with
 * Debian's clang:
 *
 *   cmake -B build -S . && cmake --build build          # for build/generated/shaders.c (the embedded SPIR-V)
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fopenmp \
 *     -Iruntime/include -Iruntime/src -Ibuild/generated -DVK_NO_PROTOTYPES -DDPL_VERSION_STRING='"fuzz"' \
 *     tests/fuzz/fuzz_image.c runtime/src/*.c runtime/src/cpu/*.c runtime/src/ops/*.c runtime/src/io/*.c \
 *     runtime/src/image/*.c runtime/src/vulkan/*.c build/generated/shaders.c /usr/include/volk.c \
 *     -lopenblas -lpng16 -ltiff -ljpeg -lm -ldl -lpthread -o /tmp/fuzz_image
 *   mkdir -p /tmp/fuzz_image_corpus
 *   DPL_QUIET=1 OMP_NUM_THREADS=1 /tmp/fuzz_image -max_total_time=300 -max_len=16384 -timeout=10 -rss_limit_mb=4096 \
 *     -artifact_prefix=/tmp/ /tmp/fuzz_image_corpus tests/fuzz/corpus_image
 *
 * tests/fuzz/corpus_image holds small seeds (a PNG of each colour type, JPEGs, TIFFs). */
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
    fprintf(stderr, "fuzz_image: cannot open the CPU device: %s\n", dpl_last_error());
    abort();
  }
  snprintf(path, sizeof path, "/dev/shm/fuzz_image_%d.img", (int)getpid());
  atexit(remove_input);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *fp = fopen(path, "wb");
  if (!fp) abort();
  if (size && fwrite(data, 1, size, fp) != size) abort();
  fclose(fp);
  static const int modes[3] = {0, 1, 3};
  for (int m = 0; m < 3; m++) {
    dpl_tensor *t = dpl_image_load(cpu, path, modes[m]);
    if (!t) {
      if (!strstr(dpl_last_error(), path)) {   /* every error names the file */
        fprintf(stderr, "error without the file name: %s\n", dpl_last_error());
        abort();
      }
      dpl_clear_error();
      return 0;
    }
    int64_t c = dpl_tensor_size(t, 0);
    if (dpl_tensor_ndim(t) != 3 || c < 1 || c > 4 || (modes[m] && c != modes[m])) abort();
    dpl_tensor_free(t);
  }
  return 0;
}
