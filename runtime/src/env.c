/* env.c - reading the runtime's environment settings (the DPL_* switches and sizes the README lists). */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

bool dpl_env_is(const char *name, const char *value) {
  const char *e = getenv(name);
  return e && !strcmp(e, value);
}

size_t dpl_env_megabytes(const char *name, long default_mb) {
  const char *e = getenv(name);
  long mb = e && *e ? atol(e) : default_mb;
  return mb > 0 ? (size_t)mb << 20 : 0;
}

const char *dpl_env_string(const char *name) {
  const char *e = getenv(name);
  return e && *e ? e : NULL;
}
