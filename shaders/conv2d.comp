#version 450
// conv2d.comp - forward 2-D convolution, direct (implicit GEMM): each invocation computes a register tile of TO output
// channels (of one group) x TP consecutive output pixels (flattened over the images of the dispatch), summing over
// the group's input channels and the kernel taps; the bias is added on the way out.
// Bindings: 0 output, 1 input (A), 2 weight (B), 3 bias.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TO = 16;
layout(constant_id = 2) const uint TP = 8;
layout(std430, binding = 0) writeonly buffer Out { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
#include "conv2d.glsl"
#include "activation.glsl"

void main() {
  uint cg = pc.c / pc.groups, og = pc.o / pc.groups;
  uint hw = pc.h * pc.w, ohw = pc.oh * pc.ow, kk = pc.kh * pc.kw, ksz = cg * kk;
  uint npix = pc.n * ohw;
  uint ptiles = (npix + TP - 1) / TP, otiles = (og + TO - 1) / TO;
  uint id = conv_flat_index();
  if (id >= ptiles * otiles * pc.groups) return;
  uint pt = id % ptiles, rest = id / ptiles;
  uint ot = rest % otiles, g = rest / otiles;

  int iy0[TP], ix0[TP];
  uint xbase[TP];
  for (uint j = 0; j < TP; j++) {
    uint p = min(pt * TP + j, npix - 1u);
    uint img = p / ohw, r = p % ohw;
    iy0[j] = int((r / pc.ow) * pc.sh) - int(pc.ph);
    ix0[j] = int((r % pc.ow) * pc.sw) - int(pc.pw);
    xbase[j] = pc.a_off + (img * pc.c + g * cg) * hw;
  }
  uint wbase[TO];
  for (uint i = 0; i < TO; i++) wbase[i] = pc.b_off + (g * og + min(ot * TO + i, og - 1u)) * ksz;

  float acc[TO][TP];
  for (uint i = 0; i < TO; i++) for (uint j = 0; j < TP; j++) acc[i][j] = 0.0;
  // taps outside, channels inside: the bounds checks are done once per tap, not per multiply-add
  for (uint ky = 0; ky < pc.kh; ky++) {
    for (uint kx = 0; kx < pc.kw; kx++) {
      uint off[TP];
      bool ok[TP];
      for (uint j = 0; j < TP; j++) {
        int iy = iy0[j] + int(ky * pc.dh), ix = ix0[j] + int(kx * pc.dw);
        ok[j] = iy >= 0 && iy < int(pc.h) && ix >= 0 && ix < int(pc.w);
        off[j] = ok[j] ? xbase[j] + uint(iy) * pc.w + uint(ix) : xbase[j];
      }
      uint k = ky * pc.kw + kx;
      for (uint ci = 0; ci < cg; ci++, k += kk) {
        float xv[TP], wv[TO];
        for (uint j = 0; j < TP; j++) {
          float v = LOAD_A(off[j] + ci * hw);
          xv[j] = ok[j] ? v : 0.0;
        }
        for (uint i = 0; i < TO; i++) wv[i] = LOAD_B(wbase[i] + k);
        for (uint i = 0; i < TO; i++) for (uint j = 0; j < TP; j++) acc[i][j] += wv[i] * xv[j];
      }
    }
  }

  for (uint i = 0; i < TO; i++) {
    if (ot * TO + i >= og) break;
    uint o = g * og + ot * TO + i;
    float b = (pc.flags & 1u) != 0u ? bias[pc.bias_off + o] : 0.0;
    uint act = (pc.flags >> 8) & 255u;
    for (uint j = 0; j < TP; j++) {
      uint p = pt * TP + j;
      if (p >= npix) break;
      uint img = p / ohw, r = p % ohw;
      y[pc.out_off + (img * pc.o + o) * ohw + r] = activate(acc[i][j] + b, act);
    }
  }
}
