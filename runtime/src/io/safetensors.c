/* safetensors.c - the safetensors format (an 8-byte little-endian header length, a JSON header mapping names to
 * {dtype, shape, data_offsets}, then the raw little-endian data): a reader that validates every field against the
 * file, and a float32 writer used for checkpoints. The JSON reader below takes only what a safetensors header holds
 * (objects, arrays, strings, non-negative integers) and rejects anything else. */
#include "tensor_file.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_HEADER = 100 << 20 };

typedef struct json {
  const char *p, *end;
  const char *path;
} json;

static void skip_ws(json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static int expect(json *j, char c) {
  skip_ws(j);
  if (j->p >= j->end || *j->p != c)
    return dpl_fail(DPL_ERR_IO, "%s: malformed safetensors header (expected '%c')", j->path, c);
  j->p++;
  return DPL_OK;
}

static int peek(json *j, char c) {
  skip_ws(j);
  return j->p < j->end && *j->p == c;
}

/* a JSON string into a new buffer (escapes: \" \\ \/ \n \t \r \b \f and \u00XX) */
static int parse_string(json *j, char **out) {
  if (expect(j, '"')) return dpl_last_status();
  size_t cap = 32, n = 0;
  char *s = malloc(cap);
  if (!s) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of memory");
  while (j->p < j->end && *j->p != '"') {
    char c = *j->p++;
    if (c == '\\') {
      if (j->p >= j->end) break;
      char e = *j->p++;
      switch (e) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'u': {
        if (j->end - j->p < 4) { free(s); return dpl_fail(DPL_ERR_IO, "%s: bad escape in header", j->path); }
        char hex[5] = {j->p[0], j->p[1], j->p[2], j->p[3], 0};
        long v = strtol(hex, NULL, 16);
        j->p += 4;
        c = v < 128 ? (char)v : '?';
        break;
      }
      default: c = e;
      }
    }
    if (n + 2 > cap) {
      cap *= 2;
      char *t = realloc(s, cap);
      if (!t) { free(s); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of memory"); }
      s = t;
    }
    s[n++] = c;
  }
  if (j->p >= j->end) { free(s); return dpl_fail(DPL_ERR_IO, "%s: unterminated string in header", j->path); }
  j->p++;
  s[n] = 0;
  *out = s;
  return DPL_OK;
}

static int parse_uint(json *j, uint64_t *out) {
  skip_ws(j);
  if (j->p >= j->end || *j->p < '0' || *j->p > '9')
    return dpl_fail(DPL_ERR_IO, "%s: expected a non-negative integer in the header", j->path);
  uint64_t v = 0;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
    if (v > (UINT64_MAX - 9) / 10) return dpl_fail(DPL_ERR_IO, "%s: integer too large in header", j->path);
    v = v * 10 + (uint64_t)(*j->p++ - '0');
  }
  *out = v;
  return DPL_OK;
}

static int parse_uint_array(json *j, uint64_t *vals, int max, int *n) {
  if (expect(j, '[')) return dpl_last_status();
  *n = 0;
  if (peek(j, ']')) { j->p++; return DPL_OK; }
  while (1) {
    if (*n >= max) return dpl_fail(DPL_ERR_IO, "%s: too many values in a header array", j->path);
    if (parse_uint(j, &vals[(*n)++])) return dpl_last_status();
    if (peek(j, ',')) { j->p++; continue; }
    return expect(j, ']');
  }
}

static int dtype_of(const char *s, tf_dtype *t) {
  static const struct { const char *name; tf_dtype t; } map[] = {
      {"F32", TF_F32}, {"F64", TF_F64}, {"F16", TF_F16}, {"BF16", TF_BF16}, {"I64", TF_I64},
      {"I32", TF_I32}, {"I16", TF_I16}, {"I8", TF_I8}, {"U8", TF_U8}, {"BOOL", TF_BOOL}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (!strcmp(s, map[i].name)) { *t = map[i].t; return 1; }
  return 0;
}

static int parse_metadata(dpl_tensor_file *f, json *j) {
  if (expect(j, '{')) return dpl_last_status();
  if (peek(j, '}')) { j->p++; return DPL_OK; }
  while (1) {
    char *k = NULL, *v = NULL;
    if (parse_string(j, &k)) return dpl_last_status();
    if (expect(j, ':') || parse_string(j, &v)) { free(k); return dpl_last_status(); }
    char **nk = realloc(f->meta_keys, sizeof(char *) * (size_t)(f->nmeta + 1));
    if (nk) f->meta_keys = nk;
    char **nv = realloc(f->meta_values, sizeof(char *) * (size_t)(f->nmeta + 1));
    if (nv) f->meta_values = nv;
    if (!nk || !nv) { free(k); free(v); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of memory"); }
    f->meta_keys[f->nmeta] = k;
    f->meta_values[f->nmeta] = v;
    f->nmeta++;
    if (peek(j, ',')) { j->p++; continue; }
    return expect(j, '}');
  }
}

static int parse_tensor(dpl_tensor_file *f, json *j, const char *name, uint64_t data_start) {
  tf_entry *e = tf_add(f, name);
  if (!e) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of memory");
  int have_dtype = 0, have_shape = 0, have_offsets = 0;
  uint64_t offsets[2] = {0, 0};
  if (expect(j, '{')) return dpl_last_status();
  while (!peek(j, '}')) {
    char *key = NULL;
    if (parse_string(j, &key) || expect(j, ':')) { free(key); return dpl_last_status(); }
    int rc = DPL_OK;
    if (!strcmp(key, "dtype")) {
      char *v = NULL;
      rc = parse_string(j, &v);
      if (!rc && !dtype_of(v, &e->dtype))
        rc = dpl_fail(DPL_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype %s", f->path, name, v);
      free(v);
      have_dtype = 1;
    } else if (!strcmp(key, "shape")) {
      uint64_t dims[DPL_MAX_DIMS];
      rc = parse_uint_array(j, dims, DPL_MAX_DIMS, &e->ndim);
      for (int d = 0; d < e->ndim; d++) e->shape[d] = (int64_t)(dims[d] > (1ull << 40) ? (1ull << 41) : dims[d]);
      have_shape = 1;
    } else if (!strcmp(key, "data_offsets")) {
      int n = 0;
      rc = parse_uint_array(j, offsets, 2, &n);
      if (!rc && n != 2) rc = dpl_fail(DPL_ERR_IO, "%s: tensor '%s': data_offsets needs 2 values", f->path, name);
      have_offsets = 1;
    } else {
      rc = dpl_fail(DPL_ERR_IO, "%s: tensor '%s': unexpected field '%s'", f->path, name, key);
    }
    free(key);
    if (rc) return rc;
    if (peek(j, ',')) j->p++;
    else break;
  }
  if (expect(j, '}')) return dpl_last_status();
  if (!have_dtype || !have_shape || !have_offsets)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' lacks dtype, shape or data_offsets", f->path, name);
  int64_t stride = 1;
  for (int d = e->ndim - 1; d >= 0; d--) { e->stride[d] = stride; stride *= e->shape[d] > 0 ? e->shape[d] : 1; }
  if (offsets[1] < offsets[0] || offsets[1] > f->file_size - data_start)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has data offsets [%llu, %llu) outside the file (truncated?)", f->path,
                    name, (unsigned long long)offsets[0], (unsigned long long)offsets[1]);
  e->data_offset = data_start + offsets[0];
  e->data_bytes = offsets[1] - offsets[0];
  int64_t numel = dpl_shape_numel(e->ndim, e->shape);
  if (numel < 0 || (uint64_t)numel * (uint64_t)tf_element_size(e->dtype) != e->data_bytes)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s': shape and data_offsets disagree", f->path, name);
  return tf_check_entry(f, e);
}

int dpl_safetensors_parse(dpl_tensor_file *f) {
  unsigned char lenbuf[8];
  if (fread(lenbuf, 1, 8, f->file) != 8) return dpl_fail(DPL_ERR_IO, "%s: not a tensor file", f->path);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenbuf[i];
  if (hlen < 2 || hlen > MAX_HEADER || hlen > f->file_size - 8)
    return dpl_fail(DPL_ERR_IO, "%s: not a recognised tensor file (neither a PyTorch checkpoint nor safetensors)",
                    f->path);
  char *text = malloc(hlen);
  if (!text) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of memory");
  if (fread(text, 1, hlen, f->file) != hlen) { free(text); return dpl_fail(DPL_ERR_IO, "%s: truncated header", f->path); }
  f->format = "safetensors";
  json j = {text, text + hlen, f->path};
  int rc = expect(&j, '{');
  if (!rc && peek(&j, '}')) j.p++;
  else
    while (!rc) {
      char *name = NULL;
      rc = parse_string(&j, &name);
      if (!rc) rc = expect(&j, ':');
      if (!rc) rc = !strcmp(name, "__metadata__") ? parse_metadata(f, &j) : parse_tensor(f, &j, name, 8 + hlen);
      free(name);
      if (rc) break;
      if (peek(&j, ',')) { j.p++; continue; }
      rc = expect(&j, '}');
      break;
    }
  free(text);
  return rc;
}

/* ---- writer ------------------------------------------------------------------------------------------------------ */
typedef struct buf { char *s; size_t n, cap; } buf;

static int put(buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + n + 1) cap *= 2;
    char *t = realloc(b->s, cap);
    if (!t) return -1;
    b->s = t;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
  return 0;
}

static int put_json_string(buf *b, const char *s) {
  if (put(b, "\"", 1)) return -1;
  for (; *s; s++) {
    char esc[8];
    if (*s == '"' || *s == '\\') { esc[0] = '\\'; esc[1] = *s; if (put(b, esc, 2)) return -1; }
    else if ((unsigned char)*s < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)*s); if (put(b, esc, 6)) return -1; }
    else if (put(b, s, 1)) return -1;
  }
  return put(b, "\"", 1);
}

int dpl_safetensors_save(const char *path, int n, const char *const *names, dpl_tensor *const *tensors, int nmeta,
                         const char *const *meta_keys, const char *const *meta_values) {
  if (!path || n < 0 || (n > 0 && (!names || !tensors)))
    return dpl_fail(DPL_ERR_ARGUMENT, "dpl_safetensors_save: bad arguments");
  buf h = {0};
  char tmpbuf[256];
  int oom = put(&h, "{", 1);
  if (nmeta > 0) {
    oom |= put(&h, "\"__metadata__\":{", 16);
    for (int i = 0; i < nmeta; i++) {
      if (i) oom |= put(&h, ",", 1);
      oom |= put_json_string(&h, meta_keys[i]) | put(&h, ":", 1) | put_json_string(&h, meta_values[i]);
    }
    oom |= put(&h, "}", 1);
  }
  uint64_t offset = 0;
  for (int i = 0; i < n; i++) {
    if (!tensors[i] || !names[i]) { free(h.s); return dpl_fail(DPL_ERR_ARGUMENT, "dpl_safetensors_save: NULL entry %d", i); }
    if (i || nmeta > 0) oom |= put(&h, ",", 1);
    oom |= put_json_string(&h, names[i]);
    oom |= put(&h, ":{\"dtype\":\"F32\",\"shape\":[", 25);
    for (int d = 0; d < tensors[i]->ndim; d++) {
      int len = snprintf(tmpbuf, sizeof tmpbuf, d ? ",%lld" : "%lld", (long long)tensors[i]->shape[d]);
      oom |= put(&h, tmpbuf, (size_t)len);
    }
    uint64_t bytes = (uint64_t)dpl_tensor_numel(tensors[i]) * 4;
    int len = snprintf(tmpbuf, sizeof tmpbuf, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                       (unsigned long long)(offset + bytes));
    oom |= put(&h, tmpbuf, (size_t)len);
    offset += bytes;
  }
  oom |= put(&h, "}", 1);
  while (!oom && h.n % 8) oom |= put(&h, " ", 1);   /* data 8-byte aligned, as the format recommends */
  if (oom) { free(h.s); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "out of memory"); }
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%.4000s.%d.tmp", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) { free(h.s); return dpl_fail(DPL_ERR_IO, "%s: cannot write (%s)", path, strerror(errno)); }
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
  int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.s, 1, h.n, f) == h.n;
  free(h.s);
  for (int i = 0; i < n && ok; i++) {
    int64_t numel = dpl_tensor_numel(tensors[i]);
    float *vals = malloc((size_t)(numel ? numel : 1) * sizeof(float));
    if (!vals) { ok = 0; break; }
    ok = dpl_tensor_to_host(tensors[i], vals) == DPL_OK && fwrite(vals, sizeof(float), (size_t)numel, f) == (size_t)numel;
    free(vals);
  }
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return dpl_fail(DPL_ERR_IO, "%s: write failed%s%s", path, errno ? ": " : "", errno ? strerror(errno) : "");
  }
  return DPL_OK;
}
