/* image_internal.h - shared by the image-processing files (runtime/src/image/): a tensor seen as a stack of H x W
 * float planes on the host, and the 8-bit quantisation the Pillow/MATLAB-compatible paths use. */
#ifndef DPL_IMAGE_INTERNAL_H
#define DPL_IMAGE_INTERNAL_H

#include "internal.h"

typedef struct dpl_image_planes {
  dpl_device *dev;               /* where the result goes: the input's device */
  int ndim;
  int64_t shape[DPL_MAX_DIMS];
  int64_t planes, h, w;          /* planes = product of all but the last two dims */
  float *data;                   /* host copy, planes x h x w */
} dpl_image_planes;

/* Copies x (at least 2-D, non-empty) to the host; on error sets a message naming fn and returns nonzero. */
int dpl_image_planes_get(const char *fn, dpl_tensor *x, dpl_image_planes *im);
/* A new tensor of shape im->shape[:-2] + (h, w) on im->dev from planes x h x w host floats. */
dpl_tensor *dpl_image_planes_result(const dpl_image_planes *im, int64_t h, int64_t w, const float *data);
void dpl_image_planes_release(dpl_image_planes *im);
/* out[i] = round(255 clamp(in[i], 0, 1)), halves rounded up: the 8-bit image a [0, 1] float tensor stands for. */
void dpl_image_quantize(const float *in, uint8_t *out, size_t n);

#endif
