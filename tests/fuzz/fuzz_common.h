/* fuzz_common.h - what every libFuzzer harness of tests/fuzz shares: the CPU device, a temporary file per process
 * (the readers take paths) and the invariants of a refused input - the message names the file and holds no
 * control bytes (issue 18 item 11). Built by CMake with -DDPL_FUZZ=ON (clang); run by bench/fuzz.sh; see
 * docs/robustness.md. */
#ifndef DPL_FUZZ_COMMON_H
#define DPL_FUZZ_COMMON_H

#include "dpl.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dpl_device *fuzz_cpu;
static char fuzz_path[256];   /* the input, written to a file: "<dir>/fuzz_<FUZZ_TAG>_<pid><FUZZ_SUFFIX>" */

static void fuzz_remove(const char *path) { unlink(path); }

/* A harness defines FUZZ_TAG and FUZZ_SUFFIX before including this header (and FUZZ_ENV_NAME / FUZZ_ENV_VALUE for a
 * setting of its own); this opens the CPU device and names the file, in /dev/shm when it exists. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
#ifdef FUZZ_ENV_NAME
  setenv(FUZZ_ENV_NAME, FUZZ_ENV_VALUE, 0);
#endif
  fuzz_cpu = dpl_device_open("cpu");
  if (!fuzz_cpu) {
    fprintf(stderr, "fuzz: cannot open the CPU device: %s\n", dpl_last_error());
    abort();
  }
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  snprintf(fuzz_path, sizeof fuzz_path, "%s/fuzz_%s_%d%s", dir, FUZZ_TAG, (int)getpid(), FUZZ_SUFFIX);
  return 0;
}

static void fuzz_write(const char *path, const uint8_t *data, size_t size) {
  FILE *fp = fopen(path, "wb");
  if (!fp) abort();
  if (size && fwrite(data, 1, size, fp) != size) abort();
  fclose(fp);
}

/* After a failed call: the error must name `path` and be one printable line; then it is cleared. */
static void fuzz_check_error(const char *path) {
  const char *msg = dpl_last_error();
  if (!strstr(msg, path)) {
    fprintf(stderr, "fuzz: an error without the file name: %s\n", msg);
    abort();
  }
  for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
    if (*p < 32 || *p == 127) {
      fprintf(stderr, "fuzz: a control byte 0x%02x in the message: %s\n", *p, msg);
      abort();
    }
  dpl_clear_error();
}

#endif
