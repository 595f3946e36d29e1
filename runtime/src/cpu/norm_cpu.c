/* norm_cpu.c - batch normalization with the batch's statistics on the CPU. One channel at a time, every pass over it
 * together: the channel's N planes (a few hundred KB in a training step) stay in the cache between the passes, so the
 * tensor is read from memory about once per direction. The threads take channels; sums are in double, the statistics
 * in two passes (the mean, then the squared deviations), as PyTorch's CPU kernels. */
#include "cpu.h"
#include <math.h>
#include <omp.h>

enum { PAR_MIN = 32768 };   /* elements below which one thread does it all */

static const float *f32(const dpl_tensor *t) { return t ? t->storage->host + t->offset : NULL; }
static float *f32w(const dpl_tensor *t) { return t ? t->storage->host + t->offset : NULL; }

static double plane_sum(const float *p, int64_t hw) {
  double s = 0;
  #pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < hw; i++) s += p[i];
  return s;
}

static double plane_sq_dev(const float *p, int64_t hw, double mean) {
  double s = 0;
  #pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < hw; i++) { double d = p[i] - mean; s += d * d; }
  return s;
}

int dpl_cpu_batch_norm_forward(dpl_device *dev, const dpl_batch_norm_args *a) {
  DPL_UNUSED(dev);
  const float *x = f32(a->x), *w = f32(a->weight), *b = f32(a->bias);
  float *y = f32w(a->y), *mean = f32w(a->mean), *var = f32w(a->var);
  const int64_t n = a->n, C = a->c, hw = a->hw;
  const double cnt = (double)(n * hw);
  #pragma omp parallel for if (n * C * hw >= PAR_MIN && C > 1) schedule(dynamic, 1)
  for (int64_t c = 0; c < C; c++) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) s += plane_sum(x + (i * C + c) * hw, hw);
    double m = s / cnt;
    for (int64_t i = 0; i < n; i++) q += plane_sq_dev(x + (i * C + c) * hw, hw, m);
    double v = q / cnt, invstd = 1.0 / sqrt(v + (double)a->eps);
    /* y = x alpha + beta, as PyTorch's CPU kernel */
    float alpha = (float)(invstd * (w ? w[c] : 1.0f));
    float beta = (float)((b ? b[c] : 0.0f) - m * (double)alpha);
    for (int64_t i = 0; i < n; i++) {
      const float *p = x + (i * C + c) * hw;
      float *o = y + (i * C + c) * hw;
      #pragma omp simd
      for (int64_t j = 0; j < hw; j++) o[j] = p[j] * alpha + beta;
    }
    mean[c] = (float)m;
    var[c] = (float)v;
  }
  return DPL_OK;
}

int dpl_cpu_batch_norm_backward(dpl_device *dev, const dpl_batch_norm_args *a) {
  DPL_UNUSED(dev);
  const float *x = f32(a->x), *g = f32(a->g), *w = f32(a->weight), *mean = f32(a->mean), *var = f32(a->var);
  float *gx = f32w(a->y), *gw = f32w(a->grad_weight), *gb = f32w(a->grad_bias);
  const int64_t n = a->n, C = a->c, hw = a->hw;
  const double cnt = (double)(n * hw);
  #pragma omp parallel for if (n * C * hw >= PAR_MIN && C > 1) schedule(dynamic, 1)
  for (int64_t c = 0; c < C; c++) {
    const float m = mean[c];
    const double invstd = 1.0 / sqrt((double)var[c] + (double)a->eps);
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < n; i++) {
      const float *pg = g + (i * C + c) * hw, *px = x + (i * C + c) * hw;
      #pragma omp simd reduction(+ : sg, sgx)
      for (int64_t j = 0; j < hw; j++) { sg += pg[j]; sgx += (double)pg[j] * (px[j] - m); }
    }
    gw[c] = (float)(sgx * invstd);
    gb[c] = (float)sg;
    if (!gx) continue;
    /* gx = (g - mean(g) - (x - mean) k) invstd weight with k = sum(g (x - mean)) invstd^2 / n, as PyTorch */
    const float k = (float)(sgx * invstd * invstd / cnt), gmean = (float)(sg / cnt);
    const float scale = (float)(invstd * (w ? w[c] : 1.0f));
    for (int64_t i = 0; i < n; i++) {
      const float *pg = g + (i * C + c) * hw, *px = x + (i * C + c) * hw;
      float *o = gx + (i * C + c) * hw;
      #pragma omp simd
      for (int64_t j = 0; j < hw; j++) o[j] = (pg[j] - gmean - (px[j] - m) * k) * scale;
    }
  }
  return DPL_OK;
}
