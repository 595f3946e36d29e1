/* tensor_file.c - opening a tensor file (format chosen from its first bytes), the index queries, and loading one
 * tensor: reading the bytes its view covers and converting them to float32. */
#include "tensor_file.h"
#include <zlib.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int tf_element_size(tf_dtype t) {
  static const int sizes[TF_DTYPE_COUNT] = {4, 8, 2, 2, 8, 4, 2, 1, 1, 1};
  return t >= 0 && t < TF_DTYPE_COUNT ? sizes[t] : 0;
}

const char *tf_dtype_name(tf_dtype t) {
  static const char *names[TF_DTYPE_COUNT] = {"float32", "float64", "float16", "bfloat16", "int64", "int32",
                                              "int16", "int8", "uint8", "bool"};
  return t >= 0 && t < TF_DTYPE_COUNT ? names[t] : "?";
}

tf_entry *tf_add(dpl_tensor_file *f, const char *name) {
  if (f->n == f->cap) {
    int cap = f->cap ? 2 * f->cap : 64;
    tf_entry *e = realloc(f->entries, sizeof *e * (size_t)cap);
    if (!e) return NULL;
    f->entries = e;
    f->cap = cap;
  }
  tf_entry *e = &f->entries[f->n];
  memset(e, 0, sizeof *e);
  e->group = -1;
  e->shared = -1;
  e->crc_member = -1;
  e->name = strdup(name);
  if (!e->name) return NULL;
  f->n++;
  return e;
}

int tf_check_entry(dpl_tensor_file *f, const tf_entry *e) {
  /* every bound below keeps the arithmetic far from overflow: sizes, strides and the offset are at most 2^40, the
   * product of the nonzero sizes too, each dim's reach (size - 1) * stride at most 2^40, so the last element index
   * is below 2^44 */
  const int64_t lim = 1ll << 40;
  char name[DPL_QUOTE_CAP];
  DPL_QUOTE(name, e->name);
  int es = tf_element_size(e->dtype);
  if (es == 0) return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has an unknown element type", f->path, name);
  if (e->ndim < 0 || e->ndim > DPL_MAX_DIMS)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has %d dims", f->path, name, e->ndim);
  int64_t reach = 0;
  for (int d = 0; d < e->ndim; d++) {
    if (e->shape[d] < 0 || e->shape[d] > lim || e->stride[d] < 0 || e->stride[d] > lim)
      return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has an invalid size or stride", f->path, name);
    if (e->shape[d] > 1 && e->stride[d] > 0) {
      if (e->shape[d] - 1 > lim / e->stride[d])
        return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has an invalid size or stride", f->path, name);
      reach += (e->shape[d] - 1) * e->stride[d];
    }
  }
  int64_t n = dpl_shape_numel_checked(e->ndim, e->shape, lim);
  if (n < 0) return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' is too large", f->path, name);
  if (n == 0) return DPL_OK;
  /* zero or overlapping strides let a few stored bytes describe terabytes of elements, and loading makes a dense
   * float32 copy: refuse tensors with more than 16x as many elements as the data they read (and more than 2^24) */
  if (n > (1ll << 24) && n / 16 > reach + 1)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has %lld elements over only %lld stored ones (zero or overlapping "
                    "strides); refusing to expand it", f->path, name, (long long)n, (long long)(reach + 1));
  if (e->storage_offset < 0 || e->storage_offset > lim ||
      (uint64_t)(e->storage_offset + reach + 1) * (uint64_t)es > e->data_bytes || e->data_offset > f->file_size ||
      e->data_bytes > f->file_size - e->data_offset)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' lies outside its data (file truncated or corrupt)", f->path, name);
  return DPL_OK;
}

/* what: the member, already quoted */
static int crc_mismatch(dpl_tensor_file *f, uint32_t got, uint32_t expected, const char *what) {
  return dpl_fail(DPL_ERR_IO, "%s: CRC-32 mismatch in %s (%08x, the archive says %08x): the file was modified or "
                  "damaged after it was written", f->path, what, got, expected);
}

/* the CRC-32 of bytes [off, off + size) of the file */
static int file_crc(dpl_tensor_file *f, uint64_t off, uint64_t size, uint32_t *out) {
  enum { CHUNK = 1 << 20 };
  unsigned char *buf = malloc(CHUNK);
  if (!buf) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
  uLong crc = crc32(0, Z_NULL, 0);
  int rc = DPL_OK;
  if (off > (uint64_t)LONG_MAX || fseek(f->file, (long)off, SEEK_SET) != 0)
    rc = dpl_fail(DPL_ERR_IO, "%s: cannot read a zip member", f->path);
  for (uint64_t done = 0; !rc && done < size;) {
    size_t n = size - done < CHUNK ? (size_t)(size - done) : CHUNK;
    if (fread(buf, 1, n, f->file) != n) rc = dpl_fail(DPL_ERR_IO, "%s: cannot read a zip member (truncated?)", f->path);
    else crc = crc32(crc, buf, (uInt)n);
    done += n;
  }
  free(buf);
  *out = (uint32_t)crc;
  return rc;
}

int tf_check_crc(dpl_tensor_file *f, uint64_t off, uint64_t size, uint32_t expected, const char *what) {
  uint32_t crc;
  int rc = file_crc(f, off, size, &crc);
  if (!rc && crc != expected) {
    char shown[DPL_QUOTE_CAP], member[DPL_QUOTE_CAP + 16];
    snprintf(member, sizeof member, "zip member '%s'", DPL_QUOTE(shown, what));
    rc = crc_mismatch(f, crc, expected, member);
  }
  return rc;
}

/* The CRC-32 of the zip member an entry reads, checked once per member: from the bytes already read when they are
 * the whole member (raw, else NULL), else by reading the member. */
static int check_member(dpl_tensor_file *f, const tf_entry *e, const char *name, const unsigned char *raw,
                        uint64_t raw_offset, uint64_t raw_bytes) {
  if (e->crc_member < 0 || e->crc_member >= f->nmembers || f->crc_checked[e->crc_member]) return DPL_OK;
  char what[DPL_QUOTE_CAP + 40];
  snprintf(what, sizeof what, "the zip member holding tensor '%s'", name);
  int rc;
  if (raw && raw_offset == e->group_offset && raw_bytes == e->group_bytes) {
    uLong crc = crc32(0, Z_NULL, 0);
    for (uint64_t done = 0; done < raw_bytes;) {       /* zlib's crc32 takes at most 4 GiB at a time */
      uInt n = raw_bytes - done > (1u << 30) ? 1u << 30 : (uInt)(raw_bytes - done);
      crc = crc32(crc, raw + done, n);
      done += n;
    }
    rc = (uint32_t)crc == e->crc ? DPL_OK : crc_mismatch(f, (uint32_t)crc, e->crc, what);
  } else {
    uint32_t crc;
    rc = file_crc(f, e->group_offset, e->group_bytes, &crc);
    if (!rc && crc != e->crc) rc = crc_mismatch(f, crc, e->crc, what);
  }
  if (!rc) f->crc_checked[e->crc_member] = 1;
  return rc;
}

typedef struct group_ref { int64_t group; int entry; } group_ref;

static int by_group(const void *a, const void *b) {
  const group_ref *x = a, *y = b;
  if (x->group != y->group) return x->group < y->group ? -1 : 1;
  return x->entry - y->entry;
}

int tf_finish(dpl_tensor_file *f) {
  int n = f->n, ngroups = 0;
  group_ref *refs = malloc(sizeof *refs * (size_t)(n ? n : 1));
  if (!refs) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
  int nrefs = 0;
  for (int i = 0; i < n; i++)
    if (f->entries[i].group >= 0) refs[nrefs++] = (group_ref){f->entries[i].group, i};
  qsort(refs, (size_t)nrefs, sizeof *refs, by_group);
  for (int a = 0, b; a < nrefs; a = b) {
    for (b = a + 1; b < nrefs && refs[b].group == refs[a].group; b++) {}
    if (b - a < 2) continue;           /* one entry: read on its own, as a dense copy of just what it views */
    for (int k = a; k < b; k++) f->entries[refs[k].entry].shared = ngroups;
    ngroups++;
  }
  free(refs);
  f->shared = calloc((size_t)(ngroups ? ngroups : 1), sizeof *f->shared);
  if (!f->shared) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
  f->nshared = ngroups;
  f->crc_checked = calloc((size_t)(f->nmembers ? f->nmembers : 1), 1);
  if (!f->crc_checked) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
  return DPL_OK;
}

dpl_tensor_file *dpl_tensor_file_open(const char *path) {
  if (!path) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_file_open: NULL path"); return NULL; }
  dpl_tensor_file *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    return NULL;
  }
  f->file = fopen(path, "rb");
  if (!f->file) {
    dpl_fail(DPL_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    dpl_tensor_file_close(f);
    return NULL;
  }
  fseek(f->file, 0, SEEK_END);
  long size = ftell(f->file);
  fseek(f->file, 0, SEEK_SET);
  f->file_size = size > 0 ? (uint64_t)size : 0;
  unsigned char magic[8] = {0};
  size_t got = fread(magic, 1, 8, f->file);
  fseek(f->file, 0, SEEK_SET);
  int rc;
  if (got >= 4 && memcmp(magic, "PK\x03\x04", 4) == 0) rc = dpl_pth_parse(f);
  else if (got >= 2 && magic[0] == 0x80 && magic[1] <= 5) rc = dpl_pth_parse(f);   /* a pickle: legacy torch.save */
  else if (got == 8) rc = dpl_safetensors_parse(f);
  else rc = dpl_fail(DPL_ERR_IO, "%s: not a tensor file (too short)", path);
  if (!rc) rc = tf_finish(f);
  if (rc) { dpl_tensor_file_close(f); return NULL; }
  return f;
}

void dpl_tensor_file_close(dpl_tensor_file *f) {
  if (!f) return;
  if (f->file) fclose(f->file);
  for (int i = 0; i < f->n; i++) free(f->entries[i].name);
  free(f->entries);
  for (int i = 0; i < f->nmeta; i++) { free(f->meta_keys[i]); free(f->meta_values[i]); }
  free(f->meta_keys);
  free(f->meta_values);
  for (int i = 0; i < f->nshared; i++) dpl_tensor_free(f->shared[i].storage);
  free(f->shared);
  free(f->crc_checked);
  free(f->path);
  free(f);
}

const char *dpl_tensor_file_format(const dpl_tensor_file *f) { return f && f->format ? f->format : ""; }
int dpl_tensor_file_count(const dpl_tensor_file *f) { return f ? f->n : 0; }
const char *dpl_tensor_file_name(const dpl_tensor_file *f, int i) {
  return f && i >= 0 && i < f->n ? f->entries[i].name : NULL;
}
int dpl_tensor_file_find(const dpl_tensor_file *f, const char *name) {
  if (!f || !name) return -1;
  for (int i = 0; i < f->n; i++) if (!strcmp(f->entries[i].name, name)) return i;
  return -1;
}
int dpl_tensor_file_shape(const dpl_tensor_file *f, int i, int64_t *shape) {
  if (!f || i < 0 || i >= f->n) return -1;
  for (int d = 0; d < f->entries[i].ndim; d++) shape[d] = f->entries[i].shape[d];
  return f->entries[i].ndim;
}
const char *dpl_tensor_file_dtype(const dpl_tensor_file *f, int i) {
  return f && i >= 0 && i < f->n ? tf_dtype_name(f->entries[i].dtype) : "";
}
const char *dpl_tensor_file_metadata(const dpl_tensor_file *f, const char *key) {
  if (!f || !key) return "";
  for (int i = 0; i < f->nmeta; i++) if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
  return "";
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else { float v = ldexpf((float)man, -24); return sign ? -v : v; }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 112) << 23) | (man << 13);
  float out;
  memcpy(&out, &bits, 4);
  return out;
}

static float convert(const unsigned char *p, tf_dtype t, int big_endian) {
  unsigned char b[8];
  int es = tf_element_size(t);
  for (int i = 0; i < es; i++) b[i] = big_endian ? p[es - 1 - i] : p[i];
  switch (t) {
  case TF_F32: { float v; memcpy(&v, b, 4); return v; }
  case TF_F64: { double v; memcpy(&v, b, 8); return (float)v; }
  case TF_F16: { uint16_t v; memcpy(&v, b, 2); return half_to_float(v); }
  case TF_BF16: { uint32_t v = (uint32_t)b[0] << 16 | (uint32_t)b[1] << 24; float f; memcpy(&f, &v, 4); return f; }
  case TF_I64: { int64_t v; memcpy(&v, b, 8); return (float)v; }
  case TF_I32: { int32_t v; memcpy(&v, b, 4); return (float)v; }
  case TF_I16: { int16_t v; memcpy(&v, b, 2); return (float)v; }
  case TF_I8: return (float)(int8_t)b[0];
  case TF_U8: return (float)b[0];
  case TF_BOOL: return b[0] ? 1.0f : 0.0f;
  default: return NAN;
  }
}

/* Reads n elements of type t at byte offset `off` of the file and converts them to float32 (the caller frees). */
static float *read_elements(dpl_tensor_file *f, const tf_entry *e, uint64_t off, int64_t n, const char *name) {
  int es = tf_element_size(e->dtype);
  size_t bytes = (size_t)n * (size_t)es;
  unsigned char *raw = malloc(bytes ? bytes : 1);
  float *vals = raw ? malloc((size_t)(n ? n : 1) * sizeof(float)) : NULL;
  if (!vals) {
    free(raw);
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory reading tensor '%s' (%llu bytes)", f->path, name,
             (unsigned long long)bytes);
    return NULL;
  }
  if (bytes && (off > (uint64_t)LONG_MAX || fseek(f->file, (long)off, SEEK_SET) != 0 ||
                fread(raw, 1, bytes, f->file) != bytes)) {
    free(raw);
    free(vals);
    dpl_fail(DPL_ERR_IO, "%s: cannot read tensor '%s' (file truncated?)", f->path, name);
    return NULL;
  }
  if (check_member(f, e, name, raw, off, bytes)) {
    free(raw);
    free(vals);
    return NULL;
  }
  for (int64_t k = 0; k < n; k++) vals[k] = convert(raw + (size_t)k * (size_t)es, e->dtype, e->big_endian);
  free(raw);
  return vals;
}

/* An entry whose storage other entries view too: the storage is read once (per device) into a 1-D float32 tensor,
 * and the entry is a view of it - 4096 aliases of one 4 MB storage cost 4 MB, not 4096 copies. */
static dpl_tensor *load_shared(dpl_tensor_file *f, dpl_device *dev, const tf_entry *e, const char *name) {
  tf_shared *sh = &f->shared[e->shared];
  int es = tf_element_size(e->dtype);
  if (!sh->storage || sh->dev != dev) {
    dpl_tensor_free(sh->storage);
    sh->storage = NULL;
    int64_t n = (int64_t)(e->group_bytes / (uint64_t)es);
    float *vals = read_elements(f, e, e->group_offset, n, name);
    if (!vals) return NULL;
    sh->storage = dpl_tensor_from_host(dev, 1, &n, vals);
    free(vals);
    if (!sh->storage) {
      if (dpl_last_status() == DPL_ERR_OUT_OF_MEMORY)
        dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory loading the storage of tensor '%s' (%lld elements)",
                 f->path, name, (long long)n);
      return NULL;
    }
    sh->dev = dev;
  }
  int64_t first = (int64_t)((e->data_offset - e->group_offset) / (uint64_t)es) + e->storage_offset;
  return dpl_tensor_as_strided(sh->storage, first, e->ndim, e->shape, e->stride);
}

dpl_tensor *dpl_tensor_file_load(dpl_tensor_file *f, dpl_device *dev, int i) {
  if (!f || !dev || i < 0 || i >= f->n) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_file_load: bad file, device or index %d", i);
    return NULL;
  }
  const tf_entry *e = &f->entries[i];
  if (tf_check_entry(f, e)) return NULL;
  char name[DPL_QUOTE_CAP];
  DPL_QUOTE(name, e->name);
  if (e->shared >= 0) return load_shared(f, dev, e, name);
  int64_t n = dpl_shape_numel(e->ndim, e->shape);   /* bounded by tf_check_entry */
  int es = tf_element_size(e->dtype);
  int64_t hi = e->storage_offset;
  for (int d = 0; d < e->ndim; d++) if (e->shape[d] > 0) hi += (e->shape[d] - 1) * e->stride[d];
  int64_t span = n ? hi - e->storage_offset + 1 : 0;
  float *stored = read_elements(f, e, e->data_offset + (uint64_t)e->storage_offset * (uint64_t)es, span, name);
  float *vals = stored ? malloc((size_t)(n ? n : 1) * sizeof(float)) : NULL;
  dpl_tensor *t = NULL;
  if (stored && !vals)
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory reading tensor '%s' (%lld elements)", f->path, name, (long long)n);
  if (vals) {
    int64_t idx[DPL_MAX_DIMS] = {0};
    for (int64_t k = 0; k < n; k++) {
      int64_t off = 0;
      for (int d = 0; d < e->ndim; d++) off += idx[d] * e->stride[d];
      vals[k] = stored[off];
      for (int d = e->ndim - 1; d >= 0; d--) { if (++idx[d] < e->shape[d]) break; idx[d] = 0; }
    }
    t = dpl_tensor_from_host(dev, e->ndim, e->shape, vals);
    if (!t && dpl_last_status() == DPL_ERR_OUT_OF_MEMORY)
      dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory loading tensor '%s' (%lld elements)", f->path, name,
               (long long)n);
  }
  free(stored);
  free(vals);
  return t;
}
