/* matlab_resize.c - MATLAB's imresize(A, scale, 'bicubic') (Image Processing Toolbox imresize.m), the resize every
 * super-resolution paper uses to make and upscale test images.
 *
 * Per dimension (rows first when both scales are equal; otherwise the dimension with the smaller scale first, as
 * imresize's sort(scale)): output index i (1-based) maps to u = i / scale + 0.5 (1 - 1 / scale); the cubic kernel
 * (a = -0.5) is stretched to scale * cubic(scale * x) with width 4 / scale when shrinking (antialiasing); the
 * ceil(width) + 2 taps from floor(u - width / 2) get weights normalised to sum 1. Indices outside the image are
 * clamped (the edge pixel replicated), as imresize.m's contributions() does ("Clamp out-of-range indices"); this is
 * what reproduces all 19 Set5/Set14 *_LR.png files of SelfExSR from their *_HR.png bit for bit.
 * `symmetric` mirrors them instead (... 2 1 | 1 2 ... n | n n-1 ...), as some ports of imresize do. Sums are in
 * double. With `uint8` the input is the
 * 8-bit image round(255 x) and each pass rounds to uint8 (half away from zero, saturating), as imresize does for
 * uint8 arrays (imresizemex returns the input class after every dimension). */
#include "image_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double cubic(double x) {
  double ax = fabs(x), ax2 = ax * ax, ax3 = ax2 * ax;
  if (ax <= 1) return 1.5 * ax3 - 2.5 * ax2 + 1;
  if (ax <= 2) return -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2;
  return 0;
}

typedef struct contributions {
  int taps;
  int *index;      /* out_len x taps, 0-based input indices after mirroring */
  double *weight;  /* out_len x taps */
} contributions;

static int make_contributions(int in_len, int out_len, double scale, int symmetric, contributions *c) {
  double width = 4.0;
  int shrink = scale < 1.0;
  if (shrink) width /= scale;
  int taps = (int)ceil(width) + 2;
  c->taps = taps;
  c->index = malloc((size_t)out_len * (size_t)taps * sizeof(int));
  c->weight = malloc((size_t)out_len * (size_t)taps * sizeof(double));
  if (!c->index || !c->weight) return 0;
  for (int i = 0; i < out_len; i++) {
    double u = (i + 1) / scale + 0.5 * (1.0 - 1.0 / scale);
    double left = floor(u - width / 2.0);
    double sum = 0;
    for (int j = 0; j < taps; j++) {
      double idx = left + j;              /* 1-based */
      double wgt = shrink ? scale * cubic(scale * (u - idx)) : cubic(u - idx);
      c->weight[(size_t)i * (size_t)taps + (size_t)j] = wgt;
      sum += wgt;
      int at;
      if (symmetric) {   /* mirror into [1, in_len] with period 2 in_len: aux = [1..n, n..1] */
        long long period = 2LL * in_len, m = ((long long)idx - 1) % period;
        if (m < 0) m += period;
        at = (int)(m < in_len ? m : period - 1 - m);
      } else {           /* "Clamp out-of-range indices; has the effect of replicating end-points." */
        at = idx < 1 ? 0 : (idx > in_len ? in_len - 1 : (int)idx - 1);
      }
      c->index[(size_t)i * (size_t)taps + (size_t)j] = at;
    }
    for (int j = 0; j < taps; j++) c->weight[(size_t)i * (size_t)taps + (size_t)j] /= sum;
  }
  return 1;
}

static double round_u8(double v) {
  if (!(v > 0)) return 0;   /* also NaN */
  if (v >= 255) return 255;
  return floor(v + 0.5);    /* MATLAB's round: half away from zero (v > 0 here) */
}

/* Resizes along one axis of a (rows x cols) double plane: axis 0 changes the row count, axis 1 the column count. */
static void resize_axis(const double *in, int rows, int cols, int axis, const contributions *c, int out_len, int uint8,
                        double *out) {
  int taps = c->taps;
  if (axis == 0) {
    for (int i = 0; i < out_len; i++)
      for (int x = 0; x < cols; x++) {
        double s = 0;
        for (int j = 0; j < taps; j++)
          s += c->weight[(size_t)i * (size_t)taps + (size_t)j] * in[(size_t)c->index[(size_t)i * (size_t)taps + (size_t)j] * (size_t)cols + (size_t)x];
        out[(size_t)i * (size_t)cols + (size_t)x] = uint8 ? round_u8(s) : s;
      }
  } else {
    for (int y = 0; y < rows; y++)
      for (int i = 0; i < out_len; i++) {
        double s = 0;
        for (int j = 0; j < taps; j++)
          s += c->weight[(size_t)i * (size_t)taps + (size_t)j] * in[(size_t)y * (size_t)cols + (size_t)c->index[(size_t)i * (size_t)taps + (size_t)j]];
        out[(size_t)y * (size_t)out_len + (size_t)i] = uint8 ? round_u8(s) : s;
      }
  }
}

dpl_tensor *dpl_image_resize_matlab(dpl_tensor *x, int64_t out_h, int64_t out_w, double scale, int symmetric,
                                     int uint8) {
  const char *fn = "dpl_image_resize_matlab";
  dpl_image_planes im;
  if (dpl_image_planes_get(fn, x, &im)) return NULL;
  double sh, sw;
  if (scale > 0) {          /* imresize(A, scale): output ceil(scale * size), kernel from the given scale */
    sh = sw = scale;
    out_h = (int64_t)ceil(scale * (double)im.h);
    out_w = (int64_t)ceil(scale * (double)im.w);
  } else {                  /* imresize(A, [out_h out_w]) */
    sh = (double)out_h / (double)im.h;
    sw = (double)out_w / (double)im.w;
  }
  if (out_h < 1 || out_w < 1 || out_h > (1 << 16) || out_w > (1 << 16)) {
    dpl_fail(DPL_ERR_ARGUMENT, "%s: invalid output size %lld x %lld (scale %g)", fn, (long long)out_h,
             (long long)out_w, scale);
    dpl_image_planes_release(&im);
    return NULL;
  }
  int h = (int)im.h, w = (int)im.w, oh = (int)out_h, ow = (int)out_w;
  contributions ch = {0}, cw = {0};
  size_t in_plane = (size_t)h * (size_t)w, out_plane = (size_t)oh * (size_t)ow;
  size_t big = (size_t)(h > oh ? h : oh) * (size_t)(w > ow ? w : ow);
  double *a = malloc(big * sizeof(double)), *b = malloc(big * sizeof(double));
  float *out = malloc(out_plane * (size_t)im.planes * sizeof(float));
  uint8_t *q = uint8 ? malloc(in_plane) : NULL;
  dpl_tensor *result = NULL;
  if (!a || !b || !out || (uint8 && !q) || !make_contributions(h, oh, sh, symmetric, &ch) ||
      !make_contributions(w, ow, sw, symmetric, &cw)) {
    dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    goto done;
  }
  int rows_first = sh <= sw;   /* sort([sh sw]) is stable: rows first on ties */
  for (int64_t k = 0; k < im.planes; k++) {
    const float *src = im.data + (size_t)k * in_plane;
    if (uint8) {
      dpl_image_quantize(src, q, in_plane);
      for (size_t i = 0; i < in_plane; i++) a[i] = q[i];
    } else {
      for (size_t i = 0; i < in_plane; i++) a[i] = src[i];
    }
    if (rows_first) {
      resize_axis(a, h, w, 0, &ch, oh, uint8, b);
      resize_axis(b, oh, w, 1, &cw, ow, uint8, a);
    } else {
      resize_axis(a, h, w, 1, &cw, ow, uint8, b);
      resize_axis(b, h, ow, 0, &ch, oh, uint8, a);
    }
    float *dst = out + (size_t)k * out_plane;
    for (size_t i = 0; i < out_plane; i++) dst[i] = uint8 ? (float)a[i] / 255.0f : (float)a[i];
  }
  result = dpl_image_planes_result(&im, oh, ow, out);
done:
  free(ch.index); free(ch.weight); free(cw.index); free(cw.weight);
  free(a); free(b); free(out); free(q);
  dpl_image_planes_release(&im);
  return result;
}
