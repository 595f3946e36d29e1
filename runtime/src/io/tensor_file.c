/* tensor_file.c - opening a tensor file (format chosen from its first bytes), the index queries, and loading one
 * tensor: reading the bytes its view covers and converting them to float32. */
#include "tensor_file.h"
#include <errno.h>
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
  e->name = strdup(name);
  if (!e->name) return NULL;
  f->n++;
  return e;
}

int tf_check_entry(dpl_tensor_file *f, const tf_entry *e) {
  /* every bound below keeps the arithmetic far from overflow: sizes, strides and the offset are at most 2^40, each
   * dim's reach (size - 1) * stride at most 2^40, so the last element index is below 2^44 */
  const int64_t lim = 1ll << 40;
  int es = tf_element_size(e->dtype);
  if (es == 0) return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has an unknown element type", f->path, e->name);
  if (e->ndim < 0 || e->ndim > DPL_MAX_DIMS)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has %d dims", f->path, e->name, e->ndim);
  int64_t reach = 0, n = 1;
  for (int d = 0; d < e->ndim; d++) {
    if (e->shape[d] < 0 || e->shape[d] > lim || e->stride[d] < 0 || e->stride[d] > lim)
      return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has an invalid size or stride", f->path, e->name);
    if (e->shape[d] == 0) n = 0;
    else if (n > 0 && e->shape[d] > lim / n)
      return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' is too large", f->path, e->name);
    else n *= e->shape[d];
    if (e->shape[d] > 1 && e->stride[d] > 0) {
      if (e->shape[d] - 1 > lim / e->stride[d])
        return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has an invalid size or stride", f->path, e->name);
      reach += (e->shape[d] - 1) * e->stride[d];
    }
  }
  if (n == 0) return DPL_OK;
  /* zero or overlapping strides let a few stored bytes describe terabytes of elements, and loading makes a dense
   * float32 copy: refuse tensors with more than 16x as many elements as the data they read (and more than 2^24) */
  if (n > (1ll << 24) && n / 16 > reach + 1)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has %lld elements over only %lld stored ones (zero or overlapping "
                    "strides); refusing to expand it", f->path, e->name, (long long)n, (long long)(reach + 1));
  if (e->storage_offset < 0 || e->storage_offset > lim ||
      (uint64_t)(e->storage_offset + reach + 1) * (uint64_t)es > e->data_bytes || e->data_offset > f->file_size ||
      e->data_bytes > f->file_size - e->data_offset)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' lies outside its data (file truncated or corrupt)", f->path, e->name);
  return DPL_OK;
}

dpl_tensor_file *dpl_tensor_file_open(const char *path) {
  if (!path) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_file_open: NULL path"); return NULL; }
  dpl_tensor_file *f = calloc(1, sizeof *f);
  if (!f) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of memory"); return NULL; }
  f->path = strdup(path);
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

dpl_tensor *dpl_tensor_file_load(dpl_tensor_file *f, dpl_device *dev, int i) {
  if (!f || !dev || i < 0 || i >= f->n) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_tensor_file_load: bad file, device or index %d", i);
    return NULL;
  }
  const tf_entry *e = &f->entries[i];
  if (tf_check_entry(f, e)) return NULL;
  int64_t n = dpl_shape_numel(e->ndim, e->shape);
  int es = tf_element_size(e->dtype);
  int64_t hi = e->storage_offset;
  for (int d = 0; d < e->ndim; d++) if (e->shape[d] > 0) hi += (e->shape[d] - 1) * e->stride[d];
  size_t span = n ? (size_t)(hi - e->storage_offset + 1) * (size_t)es : 0;
  unsigned char *raw = malloc(span ? span : 1);
  float *vals = malloc((size_t)(n ? n : 1) * sizeof(float));
  dpl_tensor *t = NULL;
  if (!raw || !vals) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory reading '%s'", f->path, e->name); goto done; }
  if (span) {
    if (fseek(f->file, (long)(e->data_offset + (uint64_t)e->storage_offset * (uint64_t)es), SEEK_SET) != 0 ||
        fread(raw, 1, span, f->file) != span) {
      dpl_fail(DPL_ERR_IO, "%s: cannot read tensor '%s' (file truncated?)", f->path, e->name);
      goto done;
    }
  }
  int64_t idx[DPL_MAX_DIMS] = {0};
  for (int64_t k = 0; k < n; k++) {
    int64_t off = 0;
    for (int d = 0; d < e->ndim; d++) off += idx[d] * e->stride[d];
    vals[k] = convert(raw + (size_t)off * (size_t)es, e->dtype, e->big_endian);
    for (int d = e->ndim - 1; d >= 0; d--) { if (++idx[d] < e->shape[d]) break; idx[d] = 0; }
  }
  t = dpl_tensor_from_host(dev, e->ndim, e->shape, vals);
done:
  free(raw);
  free(vals);
  return t;
}
