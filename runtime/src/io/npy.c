/* npy.c - NumPy .npy files (format versions 1.0, 2.0, 3.0): the one reader and writer for every .npy use in dpl.
 * Reads float32/64, signed and unsigned integers and booleans, little- or big-endian, C or Fortran order, into a
 * float32 tensor; writes float32 C-order files (atomically: a temporary file renamed into place). Malformed or
 * truncated files give an error naming the file and what is wrong. */
#include "internal.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct npy_header {
  char kind;        /* 'f', 'i', 'u', 'b' */
  int size;         /* bytes per element */
  int big_endian;
  int fortran;
  int ndim;
  int64_t shape[DPL_MAX_DIMS];
} npy_header;

/* The header is the repr() of a Python dict, {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, and is
 * parsed as that literal: quoted strings (either quote, backslash escapes), True/False, integers (with the L suffix
 * Python 2's numpy wrote), tuples; exactly the three keys, each once, in any order; nothing but spaces after the
 * closing brace. Anything else - a key given twice (Python would keep the last), an unknown key, a descr that is
 * not one plain type, a fortran_order that is not a bool, a shape that is not a tuple of integers - is refused. */
typedef struct lit {
  const char *p, *end, *path;
} lit;

static void lit_ws(lit *l) {
  while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r')) l->p++;
}

static int lit_char(lit *l, char c) {
  lit_ws(l);
  if (l->p < l->end && *l->p == c) { l->p++; return 1; }
  return 0;
}

/* a quoted string into out (cap bytes, NUL-terminated; longer strings are an error) */
static int lit_string(lit *l, char *out, size_t cap) {
  lit_ws(l);
  if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return -1;
  char q = *l->p++;
  size_t n = 0;
  while (l->p < l->end && *l->p != q) {
    char c = *l->p++;
    if (c == '\n') return -1;
    if (c == '\\') {
      if (l->p >= l->end) return -1;
      c = *l->p++;
      if (c == 'n') c = '\n';
      else if (c == 't') c = '\t';
      else if (c != '\\' && c != '\'' && c != '"') return -1;
    }
    if (n + 1 >= cap) return -1;
    out[n++] = c;
  }
  if (l->p >= l->end) return -1;
  l->p++;
  out[n] = 0;
  return 0;
}

/* a non-negative integer (no leading zeros, as Python 3; an L suffix as Python 2 wrote) */
static int lit_int(lit *l, int64_t *v) {
  lit_ws(l);
  const char *s = l->p;
  if (s >= l->end || *s < '0' || *s > '9') return -1;
  if (*s == '0' && s + 1 < l->end && s[1] >= '0' && s[1] <= '9') return -1;
  *v = 0;
  while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
    if (*v > ((INT64_C(1) << 62) - 9) / 10) return -1;
    *v = *v * 10 + (*l->p++ - '0');
  }
  if (l->p < l->end && (*l->p == 'L' || *l->p == 'l')) l->p++;
  return 0;
}

static int parse_shape(lit *l, npy_header *h) {
  if (!lit_char(l, '(')) return -1;
  h->ndim = 0;
  int trailing_comma = 0;
  while (!lit_char(l, ')')) {
    if (h->ndim && !trailing_comma) return -1;
    if (h->ndim >= DPL_MAX_DIMS) return -2;
    if (lit_int(l, &h->shape[h->ndim])) return -1;
    h->ndim++;
    trailing_comma = lit_char(l, ',');
  }
  if (h->ndim == 1 && !trailing_comma) return -1;   /* (3) is the number 3 in Python, not a tuple */
  return 0;
}

static int parse_header(const char *path, const char *dict, size_t len, npy_header *h) {
  lit l = {dict, dict + len, path};
  char key[64], descr[64];
  int have_descr = 0, have_fortran = 0, have_shape = 0;
  if (!lit_char(&l, '{')) return dpl_fail(DPL_ERR_IO, "%s: malformed .npy header (not a Python dict)", path);
  while (!lit_char(&l, '}')) {
    if (lit_string(&l, key, sizeof key)) return dpl_fail(DPL_ERR_IO, "%s: malformed .npy header (a key that is not a "
                                                         "short quoted string)", path);
    char shown[DPL_QUOTE_CAP];
    DPL_QUOTE(shown, key);
    if (!lit_char(&l, ':')) return dpl_fail(DPL_ERR_IO, "%s: malformed .npy header (no ':' after '%s')", path, shown);
    int *seen = !strcmp(key, "descr") ? &have_descr : !strcmp(key, "fortran_order") ? &have_fortran
                : !strcmp(key, "shape") ? &have_shape : NULL;
    if (!seen)
      return dpl_fail(DPL_ERR_IO, "%s: .npy header has the unexpected key '%s' (only descr, fortran_order, shape)",
                      path, shown);
    if (*seen) return dpl_fail(DPL_ERR_IO, "%s: .npy header has the key '%s' twice", path, shown);
    *seen = 1;
    if (seen == &have_descr) {
      if (lit_string(&l, descr, sizeof descr))
        return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: .npy descr is not a plain dtype string (structured arrays are not "
                        "supported)", path);
    } else if (seen == &have_fortran) {
      lit_ws(&l);
      if (l.end - l.p >= 4 && !memcmp(l.p, "True", 4)) { h->fortran = 1; l.p += 4; }
      else if (l.end - l.p >= 5 && !memcmp(l.p, "False", 5)) { h->fortran = 0; l.p += 5; }
      else return dpl_fail(DPL_ERR_IO, "%s: .npy fortran_order must be True or False", path);
      if (l.p < l.end && (isalnum((unsigned char)*l.p) || *l.p == '_'))
        return dpl_fail(DPL_ERR_IO, "%s: .npy fortran_order must be True or False", path);
    } else {
      int rc = parse_shape(&l, h);
      if (rc == -2) return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: more than %d dims", path, DPL_MAX_DIMS);
      if (rc) return dpl_fail(DPL_ERR_IO, "%s: malformed shape in .npy header (not a tuple of non-negative integers)", path);
    }
    if (!lit_char(&l, ',')) {
      if (!lit_char(&l, '}')) return dpl_fail(DPL_ERR_IO, "%s: malformed .npy header (expected ',' or '}')", path);
      break;
    }
  }
  lit_ws(&l);
  if (l.p != l.end) return dpl_fail(DPL_ERR_IO, "%s: malformed .npy header (bytes after the header's dict)", path);
  if (!have_descr || !have_fortran || !have_shape)
    return dpl_fail(DPL_ERR_IO, "%s: .npy header has no '%s'", path,
                    !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
  /* descr: byte order, kind, size - '<f4', '>i8', '|u1', '|b1' ('=' is native, little-endian here) */
  char shown[DPL_QUOTE_CAP];
  DPL_QUOTE(shown, descr);
  size_t dl = strlen(descr);
  int size = 0;
  int ok = dl >= 3 && dl <= 4 && strchr("<>|=", descr[0]) && strchr("fiub", descr[1]);
  for (size_t i = 2; ok && i < dl; i++) {
    if (descr[i] < '0' || descr[i] > '9') ok = 0;
    else size = size * 10 + (descr[i] - '0');
  }
  h->kind = dl >= 2 ? descr[1] : 0;
  h->size = size;
  h->big_endian = descr[0] == '>';
  ok = ok && ((h->kind == 'f' && (size == 4 || size == 8)) ||
              ((h->kind == 'i' || h->kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
              (h->kind == 'b' && size == 1)) && (descr[0] != '|' || size == 1);
  if (!ok) return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: unsupported dtype '%s' (float32/64, int, uint or bool)", path, shown);
  /* checked: the product of the nonzero sizes too, so (0, 2^40, 2^40) cannot overflow later arithmetic */
  if (dpl_shape_numel_checked(h->ndim, h->shape, INT64_C(1) << 40) < 0)
    return dpl_fail(DPL_ERR_IO, "%s: shape too large", path);
  return DPL_OK;
}

static double element(const unsigned char *p, const npy_header *h) {
  unsigned char b[8];
  for (int i = 0; i < h->size; i++) b[i] = h->big_endian ? p[h->size - 1 - i] : p[i];
  switch (h->kind) {
  case 'f':
    if (h->size == 4) { float f; memcpy(&f, b, 4); return f; }
    else { double v; memcpy(&v, b, 8); return v; }
  case 'i':
    switch (h->size) {
    case 1: return (int8_t)b[0];
    case 2: { int16_t v; memcpy(&v, b, 2); return v; }
    case 4: { int32_t v; memcpy(&v, b, 4); return v; }
    default: { int64_t v; memcpy(&v, b, 8); return (double)v; }
    }
  case 'u':
    switch (h->size) {
    case 1: return b[0];
    case 2: { uint16_t v; memcpy(&v, b, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, b, 4); return v; }
    default: { uint64_t v; memcpy(&v, b, 8); return (double)v; }
    }
  default: return b[0] != 0;
  }
}

dpl_tensor *dpl_npy_load(dpl_device *dev, const char *path) {
  if (!dev || !path) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_npy_load: NULL argument"); return NULL; }
  FILE *f = fopen(path, "rb");
  if (!f) { dpl_fail(DPL_ERR_IO, "%s: cannot open (%s)", path, strerror(errno)); return NULL; }
  unsigned char pre[12];
  dpl_tensor *t = NULL;
  char *dict = NULL;
  unsigned char *raw = NULL;
  float *vals = NULL;
  size_t got = fread(pre, 1, 10, f);
  if (got < 10 || memcmp(pre, "\x93NUMPY", 6) != 0) { dpl_fail(DPL_ERR_IO, "%s: not a .npy file", path); goto done; }
  uint32_t hlen;
  int major = pre[6];
  if (major == 1) {
    hlen = (uint32_t)pre[8] | ((uint32_t)pre[9] << 8);
  } else if (major == 2 || major == 3) {
    if (fread(pre + 10, 1, 2, f) != 2) { dpl_fail(DPL_ERR_IO, "%s: truncated .npy header", path); goto done; }
    hlen = (uint32_t)pre[8] | ((uint32_t)pre[9] << 8) | ((uint32_t)pre[10] << 16) | ((uint32_t)pre[11] << 24);
  } else {
    dpl_fail(DPL_ERR_UNSUPPORTED, "%s: .npy format version %d is not supported", path, major);
    goto done;
  }
  if (hlen == 0 || hlen > (1u << 20)) { dpl_fail(DPL_ERR_IO, "%s: invalid .npy header length %u", path, hlen); goto done; }
  dict = malloc(hlen + 1);
  if (!dict) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory reading the .npy header", path); goto done; }
  if (fread(dict, 1, hlen, f) != hlen) { dpl_fail(DPL_ERR_IO, "%s: truncated .npy header", path); goto done; }
  dict[hlen] = 0;
  npy_header h;
  if (parse_header(path, dict, hlen, &h)) goto done;
  int64_t n = dpl_shape_numel(h.ndim, h.shape);
  size_t bytes = (size_t)n * (size_t)h.size;
  /* the data must be all there, and nothing more than padding */
  long pos = ftell(f);
  fseek(f, 0, SEEK_END);
  long end = ftell(f);
  fseek(f, pos, SEEK_SET);
  if (end - pos < (long)bytes) {
    dpl_fail(DPL_ERR_IO, "%s: truncated: %lld data bytes expected, %ld present", path, (long long)bytes, end - pos);
    goto done;
  }
  raw = malloc(bytes ? bytes : 1);
  vals = malloc((size_t)(n ? n : 1) * sizeof(float));
  if (!raw || !vals) {
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory (%lld elements)", path, (long long)n);
    goto done;
  }
  if (fread(raw, 1, bytes, f) != bytes) { dpl_fail(DPL_ERR_IO, "%s: read error", path); goto done; }
  if (!h.fortran) {
    for (int64_t i = 0; i < n; i++) vals[i] = (float)element(raw + (size_t)i * (size_t)h.size, &h);
  } else {
    /* Fortran order: element (i0, i1, ...) is at i0 + s0 * (i1 + s1 * ...) */
    int64_t idx[DPL_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) {
      int64_t off = 0, mul = 1;
      for (int d = 0; d < h.ndim; d++) { off += idx[d] * mul; mul *= h.shape[d]; }
      vals[i] = (float)element(raw + (size_t)off * (size_t)h.size, &h);
      for (int d = h.ndim - 1; d >= 0; d--) { if (++idx[d] < h.shape[d]) break; idx[d] = 0; }
    }
  }
  t = dpl_tensor_from_host(dev, h.ndim, h.shape, vals);
  if (!t && dpl_last_status() == DPL_ERR_OUT_OF_MEMORY)
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory (%lld elements)", path, (long long)n);
done:
  fclose(f);
  free(dict);
  free(raw);
  free(vals);
  return t;
}

int dpl_npy_save(dpl_tensor *t, const char *path) {
  if (!t || !path) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_npy_save: NULL argument");
  int64_t n = dpl_tensor_numel(t);
  float *vals = malloc((size_t)(n ? n : 1) * sizeof(float));
  if (!vals) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "dpl_npy_save: %s: out of memory", path);
  int rc = dpl_tensor_to_host(t, vals);
  if (rc) { free(vals); return rc; }
  char dict[512], shape[300] = "";
  size_t used = 0;
  for (int d = 0; d < t->ndim; d++)
    used += (size_t)snprintf(shape + used, sizeof shape - used, "%lld,%s", (long long)t->shape[d],
                             (t->ndim > 1 && d < t->ndim - 1) ? " " : "");
  if (t->ndim > 1 && used > 0) shape[used - 1] = 0;   /* (2, 3) rather than (2, 3,) */
  int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
  int total = 10 + len + 1;
  int pad = (64 - total % 64) % 64;   /* header padded so the data starts 64-byte aligned */
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%.4000s.%d.tmp", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) { free(vals); return dpl_fail(DPL_ERR_IO, "%s: cannot write (%s)", path, strerror(errno)); }
  uint16_t hlen = (uint16_t)(len + pad + 1);
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
  int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)len, f) == (size_t)len;
  for (int i = 0; i < pad && ok; i++) ok = fputc(' ', f) != EOF;
  ok = ok && fputc('\n', f) != EOF && fwrite(vals, sizeof(float), (size_t)n, f) == (size_t)n;
  ok = (fclose(f) == 0) && ok;
  free(vals);
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return dpl_fail(DPL_ERR_IO, "%s: write failed (%s)", path, strerror(errno));
  }
  return DPL_OK;
}
