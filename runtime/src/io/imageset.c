/* imageset.c - 8-bit image collections held in memory: SVHN format-2 .mat files and STL-10 binaries.
 *
 * Both store each image's planes column-major (MATLAB order): SVHN's X is a 32 x 32 x 3 x N uint8 array, STL-10's
 * files are N records of 3 x 96 x 96 bytes with each plane stored column by column. At open time the images are
 * rearranged into N x C x H x W row-major bytes, so a batch is a gather plus a /255 conversion.
 *
 * SVHN .mat files are MATLAB level 5: a 128-byte header, then data elements, here one miCOMPRESSED element (a zlib
 * stream) per variable, each inflating to a miMATRIX element (array flags, dimensions, name, real data). Labels:
 * SVHN's y holds 1..10 with 10 for the digit 0, mapped to 0..9 as torchvision does; STL-10's labels 1..10 map to
 * 0..9. */
#include "internal.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct dpl_image_set {
  int64_t n;
  int c, h, w;
  unsigned char *pixels;          /* n x c x h x w */
  int *labels;                    /* n labels in 0..9, or NULL (unlabeled) */
};

/* ---- MAT level 5 ------------------------------------------------------------------------------------------------- */
enum { MI_INT8 = 1, MI_UINT8 = 2, MI_INT16 = 3, MI_UINT16 = 4, MI_INT32 = 5, MI_UINT32 = 6, MI_SINGLE = 7,
       MI_DOUBLE = 9, MI_INT64 = 12, MI_UINT64 = 13, MI_MATRIX = 14, MI_COMPRESSED = 15 };

typedef struct mat_var {
  char name[64];
  int ndim;
  int64_t dims[8];
  int64_t count;                  /* elements: the product of dims */
  int type;                       /* miXXX type of the real data */
  const unsigned char *data;      /* points into the owning buffer */
  uint64_t nbytes;
} mat_var;

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static int type_size(int type) {
  switch (type) {
    case MI_INT8: case MI_UINT8: return 1;
    case MI_INT16: case MI_UINT16: return 2;
    case MI_INT32: case MI_UINT32: case MI_SINGLE: return 4;
    case MI_DOUBLE: case MI_INT64: case MI_UINT64: return 8;
    default: return 0;
  }
}

/* Reads one (sub)element tag at p (len bytes left): type, payload, and the bytes it occupies with padding. */
static int read_tag(const char *path, const unsigned char *p, uint64_t len, int *type, const unsigned char **data,
                    uint64_t *nbytes, uint64_t *used) {
  if (len < 8) return dpl_fail(DPL_ERR_IO, "%s: truncated MAT element", path);
  uint32_t w0 = rd32(p), w1 = rd32(p + 4);
  if (w0 >> 16) {                 /* small data element: size in the upper half, data in the second word */
    *type = (int)(w0 & 0xffff);
    *nbytes = w0 >> 16;
    if (*nbytes > 4) return dpl_fail(DPL_ERR_IO, "%s: malformed small MAT element", path);
    *data = p + 4;
    *used = 8;
    return DPL_OK;
  }
  *type = (int)w0;
  *nbytes = w1;
  *data = p + 8;
  *used = 8 + ((*nbytes + 7) & ~(uint64_t)7);
  if (8 + *nbytes > len) return dpl_fail(DPL_ERR_IO, "%s: truncated MAT element (%llu bytes declared)", path,
                                         (unsigned long long)*nbytes);
  if (*used > len) *used = len;  /* the last element may omit its padding */
  return DPL_OK;
}

/* Parses a miMATRIX payload into v (numeric arrays only). */
static int parse_matrix(const char *path, const unsigned char *p, uint64_t len, mat_var *v) {
  int type;
  const unsigned char *d;
  uint64_t nb, used;
  memset(v, 0, sizeof *v);
  /* array flags */
  if (read_tag(path, p, len, &type, &d, &nb, &used)) return DPL_ERR_IO;
  if (type != MI_UINT32 || nb < 8) return dpl_fail(DPL_ERR_IO, "%s: malformed MAT array flags", path);
  int cls = (int)(rd32(d) & 0xff);
  if (rd32(d) & 0x800) return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: complex MAT arrays are not supported", path);
  p += used; len -= used;
  /* dimensions */
  if (read_tag(path, p, len, &type, &d, &nb, &used)) return DPL_ERR_IO;
  if (type != MI_INT32 || nb % 4 || nb / 4 > 8 || nb == 0) return dpl_fail(DPL_ERR_IO, "%s: malformed MAT dimensions", path);
  v->ndim = (int)(nb / 4);
  for (int i = 0; i < v->ndim; i++) {
    int32_t dim;
    memcpy(&dim, d + 4 * i, 4);
    if (dim < 0) return dpl_fail(DPL_ERR_IO, "%s: negative MAT dimension", path);
    v->dims[i] = dim;
  }
  /* checked: the product of declared dimensions can wrap (2^30 x 2^30 x 3 x 16 is 0 mod 2^64) */
  int64_t count = dpl_shape_numel_checked(v->ndim, v->dims, INT64_C(1) << 40);
  if (count < 0) return dpl_fail(DPL_ERR_IO, "%s: MAT dimensions too large", path);
  v->count = count;
  p += used; len -= used;
  /* name */
  if (read_tag(path, p, len, &type, &d, &nb, &used)) return DPL_ERR_IO;
  if (type != MI_INT8) return dpl_fail(DPL_ERR_IO, "%s: malformed MAT array name", path);
  size_t n = nb < sizeof v->name - 1 ? (size_t)nb : sizeof v->name - 1;
  memcpy(v->name, d, n);
  v->name[n] = 0;
  p += used; len -= used;
  if (cls < 6 || cls > 15) {     /* 6 double ... 15 uint64: numeric classes */
    v->type = 0;                 /* cell, struct, char, sparse...: recorded by name, not readable here */
    return DPL_OK;
  }
  /* real part */
  if (read_tag(path, p, len, &type, &d, &nb, &used)) return DPL_ERR_IO;
  int ts = type_size(type);
  if (!ts || nb != (uint64_t)count * (uint64_t)ts) {
    char name[DPL_QUOTE_CAP];
    return dpl_fail(DPL_ERR_IO, "%s: MAT variable '%s': %llu data bytes of type %d for %lld elements", path,
                    DPL_QUOTE(name, v->name), (unsigned long long)nb, type, (long long)count);
  }
  v->type = type;
  v->data = d;
  v->nbytes = nb;
  return DPL_OK;
}

static double value_at(const mat_var *v, int64_t i) {
  const unsigned char *p = v->data + (size_t)i * (size_t)type_size(v->type);
  switch (v->type) {
    case MI_INT8: return *(const int8_t *)p;
    case MI_UINT8: return *p;
    case MI_INT16: { int16_t x; memcpy(&x, p, 2); return x; }
    case MI_UINT16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case MI_INT32: { int32_t x; memcpy(&x, p, 4); return x; }
    case MI_UINT32: { uint32_t x; memcpy(&x, p, 4); return x; }
    case MI_SINGLE: { float x; memcpy(&x, p, 4); return x; }
    case MI_DOUBLE: { double x; memcpy(&x, p, 8); return x; }
    case MI_INT64: { int64_t x; memcpy(&x, p, 8); return (double)x; }
    case MI_UINT64: { uint64_t x; memcpy(&x, p, 8); return (double)x; }
    default: return 0;
  }
}

/* Inflates a miCOMPRESSED payload (a zlib stream holding one data element) into a new buffer. The buffer grows with
 * the output actually produced, up to the size the inner element's tag declares: a small file cannot reserve
 * gigabytes up front, and a stream that runs past its declared element is refused. */
static unsigned char *inflate_all(const char *path, const unsigned char *src, uint64_t n, uint64_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit(&z) != Z_OK) { dpl_fail(DPL_ERR_IO, "%s: zlib initialisation failed", path); return NULL; }
  uint64_t limit = 8, cap = 0, len = 0;    /* limit: the tag first, then the element it declares */
  int have_tag = 0;
  unsigned char *buf = NULL;
  int rc = Z_OK;
  z.next_in = (unsigned char *)src;
  z.avail_in = 0;
  uint64_t fed = 0;
  const char *problem = NULL;
  while (rc != Z_STREAM_END) {
    if (!have_tag && len >= 8) {
      uint32_t w0 = rd32(buf), w1 = rd32(buf + 4);
      limit = w0 >> 16 ? 8 : 8 + (((uint64_t)w1 + 7) & ~(uint64_t)7);   /* small element, or tag + padded data */
      have_tag = 1;
    }
    if (len == limit) {
      /* full: the stream must end here (an inflate with no room left tells whether any output remains) */
      unsigned char probe;
      z.next_out = &probe;
      z.avail_out = 1;
      if (z.avail_in == 0 && fed < n) {
        uint64_t chunk = n - fed > (1u << 30) ? (1u << 30) : n - fed;
        z.next_in = (unsigned char *)src + fed;
        z.avail_in = (uInt)chunk;
        fed += chunk;
      }
      rc = inflate(&z, Z_NO_FLUSH);
      if (z.avail_out == 0) { problem = "it inflates past the size its element declares"; break; }
      if (rc == Z_STREAM_END) break;
      if (rc == Z_BUF_ERROR && z.avail_in == 0 && fed >= n) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) break;
      continue;
    }
    if (len == cap) {
      uint64_t want = cap ? cap * 2 : 1 << 16;
      if (want > limit) want = limit;
      unsigned char *grown = realloc(buf, want);
      if (!grown) {
        free(buf);
        inflateEnd(&z);
        dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory inflating a MAT element (%llu bytes)", path,
                 (unsigned long long)want);
        return NULL;
      }
      buf = grown;
      cap = want;
    }
    if (z.avail_in == 0 && fed < n) {
      uint64_t chunk = n - fed > (1u << 30) ? (1u << 30) : n - fed;
      z.next_in = (unsigned char *)src + fed;
      z.avail_in = (uInt)chunk;
      fed += chunk;
    }
    uint64_t room = cap - len > (1u << 30) ? (1u << 30) : cap - len;
    z.next_out = buf + len;
    z.avail_out = (uInt)room;
    rc = inflate(&z, Z_NO_FLUSH);
    len += room - z.avail_out;
    if (rc == Z_BUF_ERROR && z.avail_in == 0 && fed >= n) break;   /* input ended before the stream did */
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) break;
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END || problem) {
    free(buf);
    dpl_fail(DPL_ERR_IO, "%s: corrupt or truncated compressed MAT element (%s)", path,
             problem ? problem : z.msg ? z.msg : "truncated");
    return NULL;
  }
  *out_len = len;
  return buf;
}

static unsigned char *read_file(const char *path, uint64_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) { dpl_fail(DPL_ERR_IO, "%s: cannot open (%s)", path, strerror(errno)); return NULL; }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
  if (!buf) { fclose(f); dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory reading the file", path); return NULL; }
  if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    free(buf);
    dpl_fail(DPL_ERR_IO, "%s: read error", path);
    return NULL;
  }
  fclose(f);
  *len = (uint64_t)size;
  return buf;
}

/* Finds variables X and y in an SVHN .mat file; buffers holding their data are returned in bufs (to free). */
static int svhn_read(const char *path, mat_var *x, mat_var *y, unsigned char **bufs, int *nbufs) {
  uint64_t len;
  unsigned char *file = read_file(path, &len);
  if (!file) return DPL_ERR_IO;
  bufs[(*nbufs)++] = file;
  if (len < 128) return dpl_fail(DPL_ERR_IO, "%s: not a MATLAB 5 .mat file (%llu bytes)", path, (unsigned long long)len);
  if (!memcmp(file, "MATLAB 7.3", 10) || !memcmp(file, "\x89HDF", 4))
    return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: a MATLAB 7.3 (HDF5) file; SVHN format 2 files are MATLAB 5", path);
  if (memcmp(file, "MATLAB 5.0 MAT-file", 19))
    return dpl_fail(DPL_ERR_IO, "%s: not a MATLAB 5 .mat file (no 'MATLAB 5.0 MAT-file' header)", path);
  if (file[126] == 'M' && file[127] == 'I')
    return dpl_fail(DPL_ERR_UNSUPPORTED, "%s: big-endian .mat files are not supported", path);
  if (file[126] != 'I' || file[127] != 'M') return dpl_fail(DPL_ERR_IO, "%s: bad .mat endian indicator", path);
  int have_x = 0, have_y = 0;
  uint64_t pos = 128;
  while (pos + 8 <= len && !(have_x && have_y)) {
    int type;
    const unsigned char *d;
    uint64_t nb, used;
    if (read_tag(path, file + pos, len - pos, &type, &d, &nb, &used)) return DPL_ERR_IO;
    const unsigned char *payload = d;
    uint64_t plen = nb;
    if (type == MI_COMPRESSED) {
      uint64_t ilen;
      unsigned char *inner = inflate_all(path, d, nb, &ilen);
      if (!inner) return DPL_ERR_IO;
      bufs[(*nbufs)++] = inner;
      const unsigned char *id;
      uint64_t inb, iused;
      if (read_tag(path, inner, ilen, &type, &id, &inb, &iused)) return DPL_ERR_IO;
      payload = id;
      plen = inb;
      used = nb + 8;               /* compressed elements are not padded */
    }
    if (type == MI_MATRIX) {
      mat_var v;
      if (parse_matrix(path, payload, plen, &v)) return DPL_ERR_IO;
      if (!strcmp(v.name, "X")) { *x = v; have_x = 1; }
      else if (!strcmp(v.name, "y")) { *y = v; have_y = 1; }
    }
    pos += used;
    if (*nbufs >= 30) break;
  }
  /* when both variables came from compressed elements, the raw file is no longer needed: free it before the caller
     makes its copy of the images (SVHN's extra split is 1.3 GB compressed) */
  uintptr_t lo = (uintptr_t)file, hi = lo + (uintptr_t)len, xd = (uintptr_t)x->data, yd = (uintptr_t)y->data;
  if (have_x && have_y && (xd < lo || xd >= hi) && (yd < lo || yd >= hi)) {
    free(file);
    bufs[0] = NULL;
  }
  if (!have_x || !have_y)
    return dpl_fail(DPL_ERR_IO, "%s: expected the variables X (32x32x3xN uint8) and y (Nx1) of an SVHN format-2 file; "
                    "found %s", path, have_x ? "X only" : (have_y ? "y only" : "neither"));
  return DPL_OK;
}

dpl_image_set *dpl_svhn_open(const char *path) {
  if (!path) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_svhn_open: NULL path"); return NULL; }
  unsigned char *bufs[32];
  int nbufs = 0;
  mat_var x = {0}, y = {0};
  dpl_image_set *s = NULL;
  if (svhn_read(path, &x, &y, bufs, &nbufs)) goto done;
  if (x.type == 0 || x.ndim != 4 || x.dims[2] != 3 || x.dims[0] <= 0 || x.dims[1] <= 0) {
    dpl_fail(DPL_ERR_IO, "%s: X must be a numeric H x W x 3 x N array (SVHN format 2)", path);
    goto done;
  }
  int64_t n = x.dims[3];
  if (y.type == 0 || y.count != n) {
    dpl_fail(DPL_ERR_IO, "%s: y must hold one label per image (%lld images)", path, (long long)n);
    goto done;
  }
  s = calloc(1, sizeof *s);
  int h = (int)x.dims[0], w = (int)x.dims[1];
  size_t per = (size_t)3 * (size_t)h * (size_t)w;
  if (s) {
    s->pixels = malloc(per * (size_t)(n ? n : 1));
    s->labels = malloc(sizeof(int) * (size_t)(n ? n : 1));
  }
  if (!s || !s->pixels || !s->labels) {
    dpl_image_set_free(s);
    s = NULL;
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld images", path, (long long)n);
    goto done;
  }
  s->n = n; s->c = 3; s->h = h; s->w = w;
  for (int64_t i = 0; i < n; i++) {
    double label = value_at(&y, i);
    if (label < 1 || label > 10 || label != (int)label) {
      dpl_fail(DPL_ERR_IO, "%s: label %lld is %g, expected 1..10", path, (long long)i, label);
      dpl_image_set_free(s);
      s = NULL;
      goto done;
    }
    s->labels[i] = (int)label % 10;
  }
  /* X(r, c, ch, i) sits at r + h (c + w (ch + 3 i)) */
  for (int64_t i = 0; i < n; i++)
    for (int ch = 0; ch < 3; ch++)
      for (int c = 0; c < w; c++)
        for (int r = 0; r < h; r++) {
          int64_t src = r + (int64_t)h * (c + (int64_t)w * (ch + 3 * i));
          double v = x.type == MI_UINT8 ? x.data[src] : value_at(&x, src);
          s->pixels[(size_t)i * per + ((size_t)ch * h + r) * w + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
done:
  for (int i = 0; i < nbufs; i++) free(bufs[i]);
  return s;
}

/* ---- STL-10 ------------------------------------------------------------------------------------------------------ */
dpl_image_set *dpl_stl10_open(const char *x_path, const char *y_path) {
  if (!x_path) { dpl_fail(DPL_ERR_ARGUMENT, "dpl_stl10_open: NULL path"); return NULL; }
  enum { SIDE = 96, PER = 3 * 96 * 96 };
  FILE *f = fopen(x_path, "rb");
  if (!f) { dpl_fail(DPL_ERR_IO, "%s: cannot open (%s)", x_path, strerror(errno)); return NULL; }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint64_t len = size > 0 ? (uint64_t)size : 0;
  if (len == 0 || len % PER) {
    fclose(f);
    dpl_fail(DPL_ERR_IO, "%s: %llu bytes is not a whole number of STL-10 images (3 x 96 x 96 = %d bytes each)", x_path,
             (unsigned long long)len, PER);
    return NULL;
  }
  int64_t n = (int64_t)(len / PER);
  /* read one record at a time straight into place: the memory is the images once, not the file plus a copy */
  unsigned char *rec = malloc(PER);
  dpl_image_set *s = calloc(1, sizeof *s);
  if (!rec || !s || !(s->pixels = malloc((size_t)len))) {
    fclose(f);
    free(rec);
    dpl_image_set_free(s);
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld images", x_path, (long long)n);
    return NULL;
  }
  s->n = n; s->c = 3; s->h = SIDE; s->w = SIDE;
  for (int64_t i = 0; i < n; i++) {        /* plane stored column by column: (ch, col, row) -> (ch, row, col) */
    if (fread(rec, 1, PER, f) != PER) {
      fclose(f);
      free(rec);
      dpl_image_set_free(s);
      dpl_fail(DPL_ERR_IO, "%s: read error", x_path);
      return NULL;
    }
    unsigned char *dst = s->pixels + (size_t)i * PER;
    for (int ch = 0; ch < 3; ch++)
      for (int col = 0; col < SIDE; col++)
        for (int row = 0; row < SIDE; row++)
          dst[((size_t)ch * SIDE + row) * SIDE + col] = rec[((size_t)ch * SIDE + col) * SIDE + row];
  }
  fclose(f);
  free(rec);
  if (y_path) {
    uint64_t ylen;
    unsigned char *y = read_file(y_path, &ylen);
    if (!y) { dpl_image_set_free(s); return NULL; }
    if ((int64_t)ylen != n) {
      dpl_fail(DPL_ERR_IO, "%s: %llu labels for the %lld images of %s", y_path, (unsigned long long)ylen, (long long)n,
               x_path);
      free(y);
      dpl_image_set_free(s);
      return NULL;
    }
    s->labels = malloc(sizeof(int) * (size_t)n);
    for (int64_t i = 0; s->labels && i < n; i++) {
      if (y[i] < 1 || y[i] > 10) {
        dpl_fail(DPL_ERR_IO, "%s: label %lld is %d, expected 1..10", y_path, (long long)i, y[i]);
        free(y);
        dpl_image_set_free(s);
        return NULL;
      }
      s->labels[i] = y[i] - 1;
    }
    free(y);
    if (!s->labels) { dpl_image_set_free(s); dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", y_path); return NULL; }
  }
  return s;
}

/* ---- access -------------------------------------------------------------------------------------------------- */
int64_t dpl_image_set_count(const dpl_image_set *s) { return s ? s->n : 0; }

int dpl_image_set_shape(const dpl_image_set *s, int64_t *chw) {
  if (!s || !chw) return dpl_fail(DPL_ERR_ARGUMENT, "dpl_image_set_shape: NULL argument");
  chw[0] = s->c; chw[1] = s->h; chw[2] = s->w;
  return DPL_OK;
}

int dpl_image_set_label(const dpl_image_set *s, int64_t index) {
  if (!s || !s->labels || index < 0 || index >= s->n) return -1;
  return s->labels[index];
}

dpl_tensor *dpl_image_set_batch(dpl_image_set *s, dpl_device *dev, int n, const int64_t *indices) {
  if (!s || !dev || (n > 0 && !indices) || n < 0) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_image_set_batch: bad argument");
    return NULL;
  }
  size_t per = (size_t)s->c * (size_t)s->h * (size_t)s->w;   /* at most 2^40: checked when the set was read */
  if (n && per > SIZE_MAX / sizeof(float) / (size_t)n) {
    dpl_fail(DPL_ERR_ARGUMENT, "dpl_image_set_batch: a batch of %d images is too large", n);
    return NULL;
  }
  float *buf = malloc(sizeof(float) * per * (size_t)(n ? n : 1));
  if (!buf) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "dpl_image_set_batch: out of host memory"); return NULL; }
  for (int k = 0; k < n; k++) {
    if (indices[k] < 0 || indices[k] >= s->n) {
      free(buf);
      dpl_fail(DPL_ERR_ARGUMENT, "dpl_image_set_batch: index %lld out of range for %lld images", (long long)indices[k],
               (long long)s->n);
      return NULL;
    }
    const unsigned char *src = s->pixels + (size_t)indices[k] * per;
    for (size_t j = 0; j < per; j++) buf[(size_t)k * per + j] = (float)src[j] / 255.0f;
  }
  int64_t shape[4] = {n, s->c, s->h, s->w};
  dpl_tensor *t = dpl_tensor_from_host(dev, 4, shape, buf);
  free(buf);
  return t;
}

void dpl_image_set_free(dpl_image_set *s) {
  if (!s) return;
  free(s->pixels);
  free(s->labels);
  free(s);
}
