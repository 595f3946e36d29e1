/* error.c - the thread-local "last error" that every public function reports through. */
#include "internal.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[1024];
static _Thread_local int last_status;

int dpl_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
  last_status = status;
  return status;
}

void dpl_error_prefix(const char *fn) {
  size_t n = strlen(fn);
  if (strncmp(last_message, fn, n) == 0 && last_message[n] == ':') return;
  char tmp[sizeof last_message + 128];
  snprintf(tmp, sizeof tmp, "%.100s: %s", fn, last_message);
  snprintf(last_message, sizeof last_message, "%.1023s", tmp);
}

const char *dpl_last_error(void) { return last_message; }
int dpl_last_status(void) { return last_status; }
void dpl_clear_error(void) { last_message[0] = 0; last_status = DPL_OK; }
const char *dpl_version(void) { return DPL_VERSION_STRING; }

const char *dpl_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t used = 0;
  used += snprintf(buf + used, n - used, "[");
  for (int i = 0; i < ndim && used < n; i++)
    used += snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (used < n) snprintf(buf + used, n - used, "]");
  return buf;
}

const char *dpl_quote(char *buf, size_t cap, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (!cap) return buf;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    int plain = c >= 32 && c < 127 && c != '\'' && c != '\\';
    size_t need = plain ? 1 : 4;
    if (o + need + 4 > cap) {                /* room for "..." and the NUL */
      if (o + 4 <= cap) { memcpy(buf + o, "...", 3); o += 3; }
      break;
    }
    if (plain) buf[o++] = (char)c;
    else { buf[o++] = '\\'; buf[o++] = 'x'; buf[o++] = hex[c >> 4]; buf[o++] = hex[c & 15]; }
  }
  buf[o < cap ? o : cap - 1] = 0;
  return buf;
}
