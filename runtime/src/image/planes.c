/* planes.c - host copies of image tensors for the image-processing functions (see image_internal.h). */
#include "image_internal.h"
#include <stdlib.h>

int dpl_image_planes_get(const char *fn, dpl_tensor *x, dpl_image_planes *im) {
  im->data = NULL;
  if (!x) return dpl_fail(DPL_ERR_ARGUMENT, "%s: NULL tensor", fn);
  im->dev = dpl_tensor_device(x);
  im->ndim = dpl_tensor_ndim(x);
  char buf[160];
  for (int d = 0; d < im->ndim; d++) im->shape[d] = dpl_tensor_size(x, d);
  if (im->ndim < 2 || dpl_tensor_numel(x) == 0)
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: expected a non-empty (..., H, W) image tensor, got shape %s", fn,
                    dpl_shape_str(buf, sizeof buf, im->ndim, im->shape));
  im->h = im->shape[im->ndim - 2];
  im->w = im->shape[im->ndim - 1];
  if (im->h > (1 << 16) || im->w > (1 << 16))
    return dpl_fail(DPL_ERR_ARGUMENT, "%s: image too large: %s", fn, dpl_shape_str(buf, sizeof buf, im->ndim, im->shape));
  im->planes = dpl_tensor_numel(x) / (im->h * im->w);
  im->data = malloc((size_t)dpl_tensor_numel(x) * sizeof(float));
  if (!im->data) return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  int rc = dpl_tensor_to_host(x, im->data);
  if (rc) {
    free(im->data);
    im->data = NULL;
    dpl_error_prefix(fn);
  }
  return rc;
}

dpl_tensor *dpl_image_planes_result(const dpl_image_planes *im, int64_t h, int64_t w, const float *data) {
  int64_t shape[DPL_MAX_DIMS];
  for (int d = 0; d < im->ndim; d++) shape[d] = im->shape[d];
  shape[im->ndim - 2] = h;
  shape[im->ndim - 1] = w;
  return dpl_tensor_from_host(im->dev, im->ndim, shape, data);
}

void dpl_image_planes_release(dpl_image_planes *im) {
  free(im->data);
  im->data = NULL;
}

void dpl_image_quantize(const float *in, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float v = in[i] * 255.0f;
    v = v > 255.0f ? 255.0f : (v >= 0.0f ? v : 0.0f);   /* NaN -> 0 */
    out[i] = (uint8_t)(v + 0.5f);
  }
}
