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

static const char *find_key(const char *dict, const char *key) {
  char quoted[32];
  snprintf(quoted, sizeof quoted, "'%s'", key);
  const char *p = strstr(dict, quoted);
  if (!p) {
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    p = strstr(dict, quoted);
  }
  if (!p) return NULL;
  p += strlen(quoted);
  while (*p == ' ') p++;
  if (*p != ':') return NULL;
  p++;
  while (*p == ' ') p++;
  return p;
}

static int parse_header(const char *path, const char *dict, npy_header *h) {
  const char *d = find_key(dict, "descr");
  if (!d || (*d != '\'' && *d != '"'))
    return dpl_fail(DPL_ERR_IO, "%s: .npy header has no 'descr'", path);
  char q = *d++;
  char descr[16];
  int n = 0;
  while (*d && *d != q && n < 15) descr[n++] = *d++;
  descr[n] = 0;
  if (n < 3 || (descr[0] != '<' && descr[0] != '>' && descr[0] != '|' && descr[0] != '='))
    return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: unsupported dtype '%s'", path, descr);
  h->big_endian = descr[0] == '>';
  h->kind = descr[1];
  h->size = atoi(descr + 2);
  int ok = (h->kind == 'f' && (h->size == 4 || h->size == 8)) ||
           ((h->kind == 'i' || h->kind == 'u') && (h->size == 1 || h->size == 2 || h->size == 4 || h->size == 8)) ||
           (h->kind == 'b' && h->size == 1);
  if (!ok) return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: unsupported dtype '%s' (float, int, uint or bool)", path, descr);
  const char *f = find_key(dict, "fortran_order");
  if (!f) return dpl_fail(DPL_ERR_IO, "%s: .npy header has no 'fortran_order'", path);
  h->fortran = strncmp(f, "True", 4) == 0;
  const char *s = find_key(dict, "shape");
  if (!s || *s != '(') return dpl_fail(DPL_ERR_IO, "%s: .npy header has no 'shape'", path);
  s++;
  h->ndim = 0;
  while (1) {
    while (*s == ' ' || *s == ',') s++;
    if (*s == ')') break;
    if (!isdigit((unsigned char)*s)) return dpl_fail(DPL_ERR_IO, "%s: malformed shape in .npy header", path);
    if (h->ndim >= DPL_MAX_DIMS) return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: more than %d dims", path, DPL_MAX_DIMS);
    char *end;
    long long v = strtoll(s, &end, 10);
    if (v < 0 || v > (1ll << 40)) return dpl_fail(DPL_ERR_IO, "%s: invalid size in shape", path);
    h->shape[h->ndim++] = v;
    if (v > 0 && dpl_shape_numel(h->ndim - 1, h->shape) > (1ll << 40) / v)
      return dpl_fail(DPL_ERR_IO, "%s: shape too large", path);
    s = end;
  }
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
  if (!dict || fread(dict, 1, hlen, f) != hlen) { dpl_fail(DPL_ERR_IO, "%s: truncated .npy header", path); goto done; }
  dict[hlen] = 0;
  npy_header h;
  if (parse_header(path, dict, &h)) goto done;
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
  if (!raw || !vals) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", path); goto done; }
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
  if (!vals) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "dpl_npy_save: out of memory");
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
