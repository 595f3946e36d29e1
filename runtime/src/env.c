/* env.c - reading the runtime's environment settings (the DPL_* switches and sizes the README lists). Every reader
 * looks at the environment on each call, so tests can flip a setting with setenv between ops. */
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

bool dpl_env_present(const char *name) { return getenv(name) != NULL; }

bool dpl_env_flag(const char *name) {
  const char *e = getenv(name);
  return e && *e && strcmp(e, "0") != 0;
}

long long dpl_env_int(const char *name, long long default_value) {
  const char *e = getenv(name);
  return e && *e ? atoll(e) : default_value;
}
