/* pil_resample.c - Pillow's Image.resize (libImaging/Resample.c, ImagingResample) and GaussianBlur
 * (libImaging/BoxBlur.c) re-implemented so results are bit-identical to Pillow 9.x, and so to torchvision's PIL
 * transforms (Resize on PIL images, GaussianBlur via ImageFilter).
 *
 * Pillow works on 8-bit images with fixed-point arithmetic and rounds to 8 bits after each pass; the `uint8` flag
 * selects that path: the input is quantised to round(255 x), the result is k / 255. Without the flag the float path
 * is used (Pillow's mode "F": double-precision weights and sums, no rounding). Both run on the host; tensors on a
 * Vulkan device are copied down and the result goes back to the input's device. */
#include "image_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- filters (Resample.c) -------------------------------------------------------------------------------------- */
static double filter_box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
static double filter_bilinear(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}
static double filter_bicubic(double x) {
  const double a = -0.5;   /* Pillow's (and torchvision's antialiased) bicubic */
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
static double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return sin(x) / x;
}
static double filter_lanczos(double x) {
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

typedef struct resample_filter {
  double (*fn)(double);
  double support;
} resample_filter;

static int get_filter(int filter, resample_filter *f) {
  switch (filter) {
  case DPL_RESAMPLE_BOX: *f = (resample_filter){filter_box, 0.5}; return 1;
  case DPL_RESAMPLE_BILINEAR: *f = (resample_filter){filter_bilinear, 1.0}; return 1;
  case DPL_RESAMPLE_BICUBIC: *f = (resample_filter){filter_bicubic, 2.0}; return 1;
  case DPL_RESAMPLE_LANCZOS: *f = (resample_filter){filter_lanczos, 3.0}; return 1;
  default: return 0;
  }
}

/* precompute_coeffs: for each output index, the first input index (bounds[2i]), the count (bounds[2i+1]) and ksize
   normalised weights. Returns ksize, or 0 when out of memory. */
static int precompute_coeffs(int in_size, int out_size, const resample_filter *f, int **boundsp, double **kkp) {
  double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
  double support = f->support * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  double *kk = malloc((size_t)out_size * (size_t)ksize * sizeof(double));
  int *bounds = malloc((size_t)out_size * 2 * sizeof(int));
  if (!kk || !bounds) { free(kk); free(bounds); return 0; }
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);   /* "Round the value", as Pillow: truncation after + 0.5 */
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double *k = kk + (size_t)xx * (size_t)ksize;
    int x;
    for (x = 0; x < xmax; x++) {
      double w = f->fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (x = 0; x < xmax; x++)
      if (ww != 0.0) k[x] /= ww;
    for (; x < ksize; x++) k[x] = 0;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  *boundsp = bounds;
  *kkp = kk;
  return ksize;
}

enum { PRECISION_BITS = 32 - 8 - 2 };

static int32_t *fixed_coeffs(const double *kk, size_t n) {
  int32_t *out = malloc((n ? n : 1) * sizeof(int32_t));
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++)
    out[i] = kk[i] < 0 ? (int32_t)(-0.5 + kk[i] * (1 << PRECISION_BITS)) : (int32_t)(0.5 + kk[i] * (1 << PRECISION_BITS));
  return out;
}

static inline uint8_t clip8(int64_t in) {
  if (in >= ((int64_t)1 << PRECISION_BITS << 8)) return 255;
  if (in <= 0) return 0;
  return (uint8_t)(in >> PRECISION_BITS);
}

/* One plane: in (h x w) -> out (oh x ow). Horizontal pass first (on the rows the vertical pass needs), then vertical,
   each only when the size changes, as ImagingResampleInner. */
typedef struct resample_plan {
  int w, h, ow, oh, ksize_h, ksize_v;
  int *bounds_h, *bounds_v;
  double *kk_h, *kk_v;
  int32_t *fk_h, *fk_v;
  int need_h, need_v, ybox_first, ybox_last;
} resample_plan;

static void plan_free(resample_plan *p) {
  free(p->bounds_h); free(p->bounds_v); free(p->kk_h); free(p->kk_v); free(p->fk_h); free(p->fk_v);
}

static int plan_make(resample_plan *p, int w, int h, int ow, int oh, const resample_filter *f) {
  memset(p, 0, sizeof *p);
  p->w = w; p->h = h; p->ow = ow; p->oh = oh;
  p->need_h = ow != w;
  p->need_v = oh != h;
  p->ksize_h = precompute_coeffs(w, ow, f, &p->bounds_h, &p->kk_h);
  p->ksize_v = precompute_coeffs(h, oh, f, &p->bounds_v, &p->kk_v);
  if (!p->ksize_h || !p->ksize_v) return 0;
  p->fk_h = fixed_coeffs(p->kk_h, (size_t)ow * (size_t)p->ksize_h);
  p->fk_v = fixed_coeffs(p->kk_v, (size_t)oh * (size_t)p->ksize_v);
  if (!p->fk_h || !p->fk_v) return 0;
  p->ybox_first = p->bounds_v[0];
  p->ybox_last = p->bounds_v[oh * 2 - 2] + p->bounds_v[oh * 2 - 1];
  return 1;
}

static void resample_plane_u8(const resample_plan *p, const uint8_t *in, uint8_t *tmp, uint8_t *out) {
  const uint8_t *src = in;
  int src_w = p->w, row0 = 0;    /* row0: the source row that src's first row stands for */
  if (p->need_h) {
    int rows = p->need_v ? p->ybox_last - p->ybox_first : p->h;
    int first = p->need_v ? p->ybox_first : 0;
    for (int y = 0; y < rows; y++) {
      const uint8_t *line = in + (size_t)(y + first) * (size_t)p->w;
      for (int xx = 0; xx < p->ow; xx++) {
        int xmin = p->bounds_h[xx * 2], xmax = p->bounds_h[xx * 2 + 1];
        const int32_t *k = p->fk_h + (size_t)xx * (size_t)p->ksize_h;
        int64_t ss = 1 << (PRECISION_BITS - 1);
        for (int x = 0; x < xmax; x++) ss += (int64_t)line[x + xmin] * k[x];
        (p->need_v ? tmp : out)[(size_t)y * (size_t)p->ow + (size_t)xx] = clip8(ss);
      }
    }
    if (!p->need_v) return;
    src = tmp;
    src_w = p->ow;
    row0 = first;
  }
  if (p->need_v) {
    for (int yy = 0; yy < p->oh; yy++) {
      int ymin = p->bounds_v[yy * 2] - row0, ymax = p->bounds_v[yy * 2 + 1];
      const int32_t *k = p->fk_v + (size_t)yy * (size_t)p->ksize_v;
      for (int xx = 0; xx < src_w; xx++) {
        int64_t ss = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < ymax; y++) ss += (int64_t)src[(size_t)(y + ymin) * (size_t)src_w + (size_t)xx] * k[y];
        out[(size_t)yy * (size_t)p->ow + (size_t)xx] = clip8(ss);
      }
    }
  } else if (!p->need_h) {
    memcpy(out, in, (size_t)p->w * (size_t)p->h);
  }
}

static void resample_plane_f32(const resample_plan *p, const float *in, float *tmp, float *out) {
  const float *src = in;
  if (p->need_h) {
    float *dst = p->need_v ? tmp : out;
    for (int y = 0; y < p->h; y++)
      for (int xx = 0; xx < p->ow; xx++) {
        int xmin = p->bounds_h[xx * 2], xmax = p->bounds_h[xx * 2 + 1];
        const double *k = p->kk_h + (size_t)xx * (size_t)p->ksize_h;
        double ss = 0.0;
        for (int x = 0; x < xmax; x++) ss += in[(size_t)y * (size_t)p->w + (size_t)(x + xmin)] * k[x];
        dst[(size_t)y * (size_t)p->ow + (size_t)xx] = (float)ss;
      }
    if (!p->need_v) return;
    src = tmp;
  }
  if (p->need_v) {
    int src_w = p->need_h ? p->ow : p->w;
    for (int yy = 0; yy < p->oh; yy++) {
      int ymin = p->bounds_v[yy * 2], ymax = p->bounds_v[yy * 2 + 1];
      const double *k = p->kk_v + (size_t)yy * (size_t)p->ksize_v;
      for (int xx = 0; xx < src_w; xx++) {
        double ss = 0.0;
        for (int y = 0; y < ymax; y++) ss += src[(size_t)(y + ymin) * (size_t)src_w + (size_t)xx] * k[y];
        out[(size_t)yy * (size_t)p->ow + (size_t)xx] = (float)ss;
      }
    }
  } else if (!p->need_h) {
    memcpy(out, in, (size_t)p->w * (size_t)p->h * sizeof(float));
  }
}

dpl_tensor *dpl_image_resize_pil(dpl_tensor *x, int64_t out_h, int64_t out_w, int filter, int uint8) {
  const char *fn = "dpl_image_resize_pil";
  dpl_image_planes im;
  resample_filter f;
  if (!get_filter(filter, &f)) {
    dpl_fail(DPL_ERR_ARGUMENT, "%s: unknown filter %d (box 4, bilinear 2, bicubic 3, lanczos 1)", fn, filter);
    return NULL;
  }
  if (out_h < 1 || out_w < 1 || out_h > (1 << 16) || out_w > (1 << 16)) {
    dpl_fail(DPL_ERR_ARGUMENT, "%s: invalid output size %lld x %lld", fn, (long long)out_h, (long long)out_w);
    return NULL;
  }
  if (dpl_image_planes_get(fn, x, &im)) return NULL;
  resample_plan p;
  dpl_tensor *result = NULL;
  size_t in_plane = (size_t)im.h * (size_t)im.w, out_plane = (size_t)out_h * (size_t)out_w;
  float *out = malloc(out_plane * (size_t)im.planes * sizeof(float));
  size_t tmp_elems = (size_t)im.h * (size_t)out_w;
  void *tmp = malloc(tmp_elems * sizeof(float) + 1);
  uint8_t *in8 = uint8 ? malloc(in_plane + 1) : NULL, *out8 = uint8 ? malloc(out_plane + 1) : NULL;
  if (!plan_make(&p, (int)im.w, (int)im.h, (int)out_w, (int)out_h, &f) || !out || !tmp || (uint8 && (!in8 || !out8))) {
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    goto done;
  }
  for (int64_t k = 0; k < im.planes; k++) {
    const float *src = im.data + (size_t)k * in_plane;
    float *dst = out + (size_t)k * out_plane;
    if (uint8) {
      dpl_image_quantize(src, in8, in_plane);
      resample_plane_u8(&p, in8, tmp, out8);
      for (size_t i = 0; i < out_plane; i++) dst[i] = (float)out8[i] / 255.0f;
    } else {
      resample_plane_f32(&p, src, tmp, dst);
    }
  }
  result = dpl_image_planes_result(&im, out_h, out_w, out);
done:
  plan_free(&p);
  free(out); free(tmp); free(in8); free(out8);
  dpl_image_planes_release(&im);
  return result;
}

/* ---- GaussianBlur (BoxBlur.c) ---------------------------------------------------------------------------------- */
/* Pillow's box radius for `passes` extended box blurs with total variance radius^2 (Gwosdek et al. 2011), in the
   same float/double mix as Pillow so the result is the same float. */
static float gaussian_box_radius(float radius, int passes) {
  float sigma2, L, l, a;
  sigma2 = radius * radius / passes;
  L = (float)sqrt(12.0 * sigma2 + 1.0);
  l = (float)floor((L - 1.0) / 2.0);
  a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  return l + a;
}

/* One pass of ImagingLineBoxBlur8 on a line of n samples with the given stride: out[x] = (sum of in[x-r..x+r] * ww +
   (in[x-r-1] + in[x+r+1]) * fw + 2^23) >> 24, indices clamped to the line (edges replicated). */
static void box_line_u8(const uint8_t *in, uint8_t *out, int n, int r, uint32_t ww, uint32_t fw) {
  int last = n - 1;
#define AT(i) in[(i) < 0 ? 0 : ((i) > last ? last : (i))]
  uint32_t acc = 0;
  for (int i = -r; i <= r; i++) acc += AT(i);
  for (int x = 0; x < n; x++) {
    uint32_t bulk = acc * ww + ((uint32_t)AT(x - r - 1) + AT(x + r + 1)) * fw;
    out[x] = (uint8_t)((bulk + (1u << 23)) >> 24);
    acc += (uint32_t)AT(x + r + 1) - AT(x - r);
  }
#undef AT
}

static void box_line_f32(const float *in, float *out, int n, int r, double ww, double fw) {
  int last = n - 1;
#define AT(i) in[(i) < 0 ? 0 : ((i) > last ? last : (i))]
  for (int x = 0; x < n; x++) {
    double acc = 0.0;
    for (int i = -r; i <= r; i++) acc += AT(x + i);
    out[x] = (float)(acc * ww + ((double)AT(x - r - 1) + AT(x + r + 1)) * fw);
  }
#undef AT
}

dpl_tensor *dpl_image_gaussian_blur_pil(dpl_tensor *x, float radius, int uint8) {
  const char *fn = "dpl_image_gaussian_blur_pil";
  if (!(radius >= 0.0f) || radius > 1000.0f) {
    dpl_fail(DPL_ERR_ARGUMENT, "%s: radius must be in [0, 1000], got %g", fn, (double)radius);
    return NULL;
  }
  dpl_image_planes im;
  if (dpl_image_planes_get(fn, x, &im)) return NULL;
  const int passes = 3;
  float box = gaussian_box_radius(radius, passes);
  int r = (int)box;
  /* Pillow: UINT32 ww = (UINT32)(1 << 24) / (floatRadius * 2 + 1), a float division truncated to an integer */
  uint32_t ww = (uint32_t)((float)(1u << 24) / (box * 2 + 1));
  uint32_t fw = ((1u << 24) - (uint32_t)(r * 2 + 1) * ww) / 2;
  double wwf = 1.0 / (box * 2.0 + 1.0), fwf = (1.0 - (r * 2 + 1) * wwf) / 2.0;
  int w = (int)im.w, h = (int)im.h, n = w > h ? w : h;
  size_t plane = (size_t)w * (size_t)h;
  dpl_tensor *result = NULL;
  float *out = malloc(plane * (size_t)im.planes * sizeof(float));
  float *bufa = malloc(plane * sizeof(float)), *line_in = malloc((size_t)n * sizeof(float)), *line_out = malloc((size_t)n * sizeof(float));
  if (!out || !bufa || !line_in || !line_out) { dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", fn); goto done; }
  for (int64_t k = 0; k < im.planes; k++) {
    const float *src = im.data + (size_t)k * plane;
    float *dst = out + (size_t)k * plane;
    if (box == 0.0f) { memcpy(dst, src, plane * sizeof(float)); continue; }
    if (uint8) {
      uint8_t *a = (uint8_t *)bufa, *li = (uint8_t *)line_in, *lo = (uint8_t *)line_out;
      dpl_image_quantize(src, a, plane);
      /* all horizontal passes, then all vertical passes, each rounded to 8 bits (Pillow transposes between) */
      for (int y = 0; y < h; y++)
        for (int pass = 0; pass < passes; pass++) {
          box_line_u8(a + (size_t)y * (size_t)w, lo, w, r, ww, fw);
          memcpy(a + (size_t)y * (size_t)w, lo, (size_t)w);
        }
      for (int xcol = 0; xcol < w; xcol++) {
        for (int y = 0; y < h; y++) li[y] = a[(size_t)y * (size_t)w + (size_t)xcol];
        for (int pass = 0; pass < passes; pass++) {
          box_line_u8(li, lo, h, r, ww, fw);
          memcpy(li, lo, (size_t)h);
        }
        for (int y = 0; y < h; y++) a[(size_t)y * (size_t)w + (size_t)xcol] = li[y];
      }
      for (size_t i = 0; i < plane; i++) dst[i] = (float)a[i] / 255.0f;
    } else {
      memcpy(dst, src, plane * sizeof(float));
      for (int y = 0; y < h; y++)
        for (int pass = 0; pass < passes; pass++) {
          box_line_f32(dst + (size_t)y * (size_t)w, line_out, w, r, wwf, fwf);
          memcpy(dst + (size_t)y * (size_t)w, line_out, (size_t)w * sizeof(float));
        }
      for (int xcol = 0; xcol < w; xcol++) {
        for (int y = 0; y < h; y++) line_in[y] = dst[(size_t)y * (size_t)w + (size_t)xcol];
        for (int pass = 0; pass < passes; pass++) {
          box_line_f32(line_in, line_out, h, r, wwf, fwf);
          memcpy(line_in, line_out, (size_t)h * sizeof(float));
        }
        for (int y = 0; y < h; y++) dst[(size_t)y * (size_t)w + (size_t)xcol] = line_in[y];
      }
    }
  }
  result = dpl_image_planes_result(&im, im.h, im.w, out);
done:
  free(out); free(bufa); free(line_in); free(line_out);
  dpl_image_planes_release(&im);
  return result;
}
