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

static int hex4(const char *p, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    *v = *v << 4 | (unsigned)d;
  }
  return 0;
}

/* A JSON string into a new NUL-terminated buffer (*len bytes, UTF-8; \uXXXX escapes and surrogate pairs decoded).
 * Raw control characters are invalid JSON and refused; so is a NUL (raw or \u0000), which no name or value of a
 * safetensors header may hold: it would silently cut the string short. */
static int parse_string(json *j, char **out) {
  if (expect(j, '"')) return dpl_last_status();
  size_t cap = 32, n = 0;
  char *s = malloc(cap);
  if (!s) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", j->path);
  const char *bad = NULL;
  while (j->p < j->end && *j->p != '"') {
    unsigned char enc[4];
    int k = 1;
    unsigned char c = (unsigned char)*j->p++;
    if (c < 0x20) { bad = c ? "a control character in a header string" : "a NUL byte in a header string"; break; }
    enc[0] = c;
    if (c == '\\') {
      if (j->p >= j->end) break;
      char e = *j->p++;
      switch (e) {
      case 'n': enc[0] = '\n'; break;
      case 't': enc[0] = '\t'; break;
      case 'r': enc[0] = '\r'; break;
      case 'b': enc[0] = '\b'; break;
      case 'f': enc[0] = '\f'; break;
      case '"': case '\\': case '/': enc[0] = (unsigned char)e; break;
      case 'u': {
        unsigned v, lo;
        if (j->end - j->p < 4 || hex4(j->p, &v)) { bad = "a bad \\u escape in a header string"; break; }
        j->p += 4;
        if (v >= 0xd800 && v < 0xdc00) {            /* a surrogate pair */
          if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &lo) || lo < 0xdc00 ||
              lo >= 0xe000) { bad = "an unpaired surrogate in a header string"; break; }
          j->p += 6;
          v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
        } else if (v >= 0xdc00 && v < 0xe000) { bad = "an unpaired surrogate in a header string"; break; }
        if (v == 0) { bad = "a NUL (\\u0000) in a header string"; break; }
        if (v < 0x80) enc[0] = (unsigned char)v;
        else if (v < 0x800) { enc[0] = (unsigned char)(0xc0 | v >> 6); enc[1] = (unsigned char)(0x80 | (v & 63)); k = 2; }
        else if (v < 0x10000) {
          enc[0] = (unsigned char)(0xe0 | v >> 12); enc[1] = (unsigned char)(0x80 | (v >> 6 & 63));
          enc[2] = (unsigned char)(0x80 | (v & 63)); k = 3;
        } else {
          enc[0] = (unsigned char)(0xf0 | v >> 18); enc[1] = (unsigned char)(0x80 | (v >> 12 & 63));
          enc[2] = (unsigned char)(0x80 | (v >> 6 & 63)); enc[3] = (unsigned char)(0x80 | (v & 63)); k = 4;
        }
        break;
      }
      default: bad = "an unknown escape in a header string";
      }
      if (bad) break;
    }
    if (n + (size_t)k + 1 > cap) {
      cap *= 2;
      char *t = realloc(s, cap);
      if (!t) { free(s); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", j->path); }
      s = t;
    }
    memcpy(s + n, enc, (size_t)k);
    n += (size_t)k;
  }
  if (bad) { free(s); return dpl_fail(DPL_ERR_IO, "%s: malformed safetensors header (%s)", j->path, bad); }
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

static int parse_metadata(dpl_tensor_file *f, json *j, int *seen) {
  if ((*seen)++) return dpl_fail(DPL_ERR_IO, "%s: the safetensors header has __metadata__ twice", f->path);
  if (expect(j, '{')) return dpl_last_status();
  if (peek(j, '}')) { j->p++; return DPL_OK; }
  while (1) {
    char *k = NULL, *v = NULL;
    if (parse_string(j, &k)) return dpl_last_status();
    if (expect(j, ':') || parse_string(j, &v)) { free(k); return dpl_last_status(); }
    for (int i = 0; i < f->nmeta; i++)
      if (!strcmp(f->meta_keys[i], k)) {
        char shown[DPL_QUOTE_CAP];
        DPL_QUOTE(shown, k);
        free(k);
        free(v);
        return dpl_fail(DPL_ERR_IO, "%s: metadata key '%s' appears twice in the safetensors header", f->path, shown);
      }
    char **nk = realloc(f->meta_keys, sizeof(char *) * (size_t)(f->nmeta + 1));
    if (nk) f->meta_keys = nk;
    char **nv = realloc(f->meta_values, sizeof(char *) * (size_t)(f->nmeta + 1));
    if (nv) f->meta_values = nv;
    if (!nk || !nv) { free(k); free(v); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path); }
    f->meta_keys[f->nmeta] = k;
    f->meta_values[f->nmeta] = v;
    f->nmeta++;
    if (peek(j, ',')) { j->p++; continue; }
    return expect(j, '}');
  }
}

/* data_offsets of an entry, relative to the data section, kept for the coverage check */
typedef struct span { uint64_t begin, end; int entry; } span;

static int parse_tensor(dpl_tensor_file *f, json *j, const char *name, uint64_t data_start, span *sp) {
  tf_entry *e = tf_add(f, name);
  if (!e) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
  char shown[DPL_QUOTE_CAP];
  DPL_QUOTE(shown, name);
  int have_dtype = 0, have_shape = 0, have_offsets = 0;
  uint64_t offsets[2] = {0, 0};
  if (expect(j, '{')) return dpl_last_status();
  while (!peek(j, '}')) {
    char *key = NULL;
    if (parse_string(j, &key) || expect(j, ':')) { free(key); return dpl_last_status(); }
    int rc = DPL_OK, *seen = NULL;
    if (!strcmp(key, "dtype")) {
      seen = &have_dtype;
      char *v = NULL;
      if (!have_dtype) rc = parse_string(j, &v);
      if (!rc && !have_dtype && !dtype_of(v, &e->dtype)) {
        char dt[64];
        rc = dpl_fail(DPL_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype '%s'", f->path, shown,
                      DPL_QUOTE(dt, v));
      }
      free(v);
    } else if (!strcmp(key, "shape")) {
      seen = &have_shape;
      uint64_t dims[DPL_MAX_DIMS];
      if (!have_shape) rc = parse_uint_array(j, dims, DPL_MAX_DIMS, &e->ndim);
      for (int d = 0; !rc && d < e->ndim; d++) {
        if (dims[d] > (1ull << 40)) rc = dpl_fail(DPL_ERR_IO, "%s: tensor '%s' is too large", f->path, shown);
        else e->shape[d] = (int64_t)dims[d];
      }
    } else if (!strcmp(key, "data_offsets")) {
      seen = &have_offsets;
      int n = 0;
      if (!have_offsets) rc = parse_uint_array(j, offsets, 2, &n);
      if (!rc && n != 2) rc = dpl_fail(DPL_ERR_IO, "%s: tensor '%s': data_offsets needs 2 values", f->path, shown);
    } else {
      char k[64];
      rc = dpl_fail(DPL_ERR_IO, "%s: tensor '%s': unexpected field '%s'", f->path, shown, DPL_QUOTE(k, key));
    }
    if (!rc && *seen) rc = dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has field '%s' twice", f->path, shown, key);
    if (seen) *seen = 1;
    free(key);
    if (rc) return rc;
    if (peek(j, ',')) j->p++;
    else break;
  }
  if (expect(j, '}')) return dpl_last_status();
  if (!have_dtype || !have_shape || !have_offsets)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' lacks dtype, shape or data_offsets", f->path, shown);
  /* checked before any product of the sizes is formed */
  int64_t numel = dpl_shape_numel_checked(e->ndim, e->shape, INT64_C(1) << 40);
  if (numel < 0) return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' is too large", f->path, shown);
  int64_t stride = 1;
  for (int d = e->ndim - 1; d >= 0; d--) { e->stride[d] = stride; stride *= e->shape[d] > 0 ? e->shape[d] : 1; }
  if (offsets[1] < offsets[0])
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s': its data offsets [%llu, %llu) are reversed", f->path, shown,
                    (unsigned long long)offsets[0], (unsigned long long)offsets[1]);
  if (offsets[1] > f->file_size - data_start)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s' has data offsets [%llu, %llu) outside the file (truncated?)", f->path,
                    shown, (unsigned long long)offsets[0], (unsigned long long)offsets[1]);
  e->data_offset = data_start + offsets[0];
  e->data_bytes = offsets[1] - offsets[0];
  if ((uint64_t)numel * (uint64_t)tf_element_size(e->dtype) != e->data_bytes)
    return dpl_fail(DPL_ERR_IO, "%s: tensor '%s': shape and data_offsets disagree", f->path, shown);
  *sp = (span){offsets[0], offsets[1], f->n - 1};
  return tf_check_entry(f, e);
}

static int by_begin(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

static _Thread_local const tf_entry *sorted_entries_base;
static int by_name(const void *a, const void *b) {
  return strcmp(sorted_entries_base[*(const int *)a].name, sorted_entries_base[*(const int *)b].name);
}

/* The format's rules on the whole index (as the reference implementation checks them): every name once, and the
 * tensors' byte ranges tile the data section exactly - no overlap (two tensors sharing bytes), no hole, nothing
 * after the last tensor. */
static int check_index(dpl_tensor_file *f, span *spans, uint64_t data_bytes) {
  char a[DPL_QUOTE_CAP], b[DPL_QUOTE_CAP];
  int n = f->n, rc = DPL_OK;
  int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
  if (!order) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
  for (int i = 0; i < n; i++) order[i] = i;
  sorted_entries_base = f->entries;    /* qsort has no context argument */
  qsort(order, (size_t)n, sizeof(int), by_name);
  for (int i = 1; i < n && !rc; i++)
    if (!strcmp(f->entries[order[i]].name, f->entries[order[i - 1]].name))
      rc = dpl_fail(DPL_ERR_IO, "%s: tensor name '%s' appears twice in the safetensors header", f->path,
                    DPL_QUOTE(a, f->entries[order[i]].name));
  free(order);
  if (rc) return rc;
  qsort(spans, (size_t)n, sizeof(span), by_begin);
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    if (spans[i].begin < at)
      return dpl_fail(DPL_ERR_IO, "%s: tensors '%s' and '%s' overlap in the data section (safetensors forbids "
                      "shared bytes)", f->path, DPL_QUOTE(a, f->entries[spans[i - 1].entry].name),
                      DPL_QUOTE(b, f->entries[spans[i].entry].name));
    if (spans[i].begin > at)
      return dpl_fail(DPL_ERR_IO, "%s: %llu bytes before tensor '%s' belong to no tensor (a hole in the data section)",
                      f->path, (unsigned long long)(spans[i].begin - at), DPL_QUOTE(a, f->entries[spans[i].entry].name));
    at = spans[i].end;
  }
  if (at != data_bytes)
    return dpl_fail(DPL_ERR_IO, "%s: %llu bytes after the last tensor belong to no tensor", f->path,
                    (unsigned long long)(data_bytes - at));
  return DPL_OK;
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
  if (!text) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory reading the header", f->path);
  if (fread(text, 1, hlen, f->file) != hlen) { free(text); return dpl_fail(DPL_ERR_IO, "%s: truncated header", f->path); }
  f->format = "safetensors";
  json j = {text, text + hlen, f->path};
  span *spans = NULL;
  size_t nspans = 0, capspans = 0;
  int seen_metadata = 0;
  int rc = expect(&j, '{');
  if (!rc && peek(&j, '}')) j.p++;
  else
    while (!rc) {
      char *name = NULL;
      rc = parse_string(&j, &name);
      if (!rc) rc = expect(&j, ':');
      if (!rc && strcmp(name, "__metadata__") && nspans == capspans) {
        size_t cap = capspans ? 2 * capspans : 64;
        span *grown = realloc(spans, cap * sizeof *spans);
        if (!grown) rc = dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
        else { spans = grown; capspans = cap; }
      }
      if (!rc) rc = !strcmp(name, "__metadata__") ? parse_metadata(f, &j, &seen_metadata)
                                                  : parse_tensor(f, &j, name, 8 + hlen, &spans[nspans++]);
      free(name);
      if (rc) break;
      if (peek(&j, ',')) { j.p++; continue; }
      rc = expect(&j, '}');
      break;
    }
  if (!rc) {
    skip_ws(&j);     /* the writer pads the header with spaces; anything else after the object is not JSON */
    if (j.p != j.end) rc = dpl_fail(DPL_ERR_IO, "%s: malformed safetensors header (bytes after the JSON object)", f->path);
  }
  if (!rc) rc = check_index(f, spans, f->file_size - 8 - hlen);
  free(spans);
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
  if (oom) { free(h.s); return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", path); }
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
