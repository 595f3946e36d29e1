#version 450
// conv2d_backward_input.comp - gradient of conv2d with respect to its input, as a gather: each invocation computes a
// register tile of TC input channels (of one group) x TP consecutive input pixels (flattened over the images of the
// dispatch) by summing grad_output * weight over the group's output channels and the taps whose (strided) output
// position exists.
// Bindings: 0 grad_input, 1 grad_output (A), 2 weight (B).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TC = 8;
layout(constant_id = 2) const uint TP = 16;
layout(std430, binding = 0) writeonly buffer Out { float gx[]; };
#include "conv2d.glsl"

void main() {
  uint cg = pc.c / pc.groups, og = pc.o / pc.groups;
  uint hw = pc.h * pc.w, ohw = pc.oh * pc.ow, kk = pc.kh * pc.kw, ksz = cg * kk;
  uint npix = pc.n * hw;
  uint ptiles = (npix + TP - 1) / TP, ctiles = (cg + TC - 1) / TC;
  uint id = conv_flat_index();
  if (id >= ptiles * ctiles * pc.groups) return;
  uint pt = id % ptiles, rest = id / ptiles;
  uint ct = rest % ctiles, g = rest / ctiles;

  int ty0[TP], tx0[TP];
  uint gbase[TP];
  for (uint j = 0; j < TP; j++) {
    uint p = min(pt * TP + j, npix - 1u);
    uint img = p / hw, r = p % hw;
    ty0[j] = int(r / pc.w) + int(pc.ph);
    tx0[j] = int(r % pc.w) + int(pc.pw);
    gbase[j] = pc.a_off + (img * pc.o + g * og) * ohw;
  }
  uint wbase[TC];
  for (uint i = 0; i < TC; i++) wbase[i] = pc.b_off + g * og * ksz + min(ct * TC + i, cg - 1u) * kk;

  float acc[TC][TP];
  for (uint i = 0; i < TC; i++) for (uint j = 0; j < TP; j++) acc[i][j] = 0.0;
  for (uint ky = 0; ky < pc.kh; ky++) {
    bool rowok[TP];
    uint rowoff[TP];
    for (uint j = 0; j < TP; j++) {
      int ty = ty0[j] - int(ky * pc.dh);
      uint uty = uint(max(ty, 0));
      rowok[j] = ty >= 0 && uty % pc.sh == 0u && uty / pc.sh < pc.oh;
      rowoff[j] = gbase[j] + (uty / pc.sh) * pc.ow;
    }
    for (uint kx = 0; kx < pc.kw; kx++) {
      bool ok[TP];
      uint off[TP];
      bool any = false;
      for (uint j = 0; j < TP; j++) {
        int tx = tx0[j] - int(kx * pc.dw);
        uint utx = uint(max(tx, 0));
        ok[j] = rowok[j] && tx >= 0 && utx % pc.sw == 0u && utx / pc.sw < pc.ow;
        off[j] = ok[j] ? rowoff[j] + utx / pc.sw : gbase[j];
        any = any || ok[j];
      }
      if (!any) continue;
      uint wk = ky * pc.kw + kx;
      for (uint ol = 0; ol < og; ol++) {
        float gv[TP], wv[TC];
        for (uint j = 0; j < TP; j++) {
          float v = LOAD_A(off[j] + ol * ohw);
          gv[j] = ok[j] ? v : 0.0;
        }
        for (uint i = 0; i < TC; i++) wv[i] = LOAD_B(wbase[i] + ol * ksz + wk);
        for (uint i = 0; i < TC; i++) for (uint j = 0; j < TP; j++) acc[i][j] += wv[i] * gv[j];
      }
    }
  }

  for (uint i = 0; i < TC; i++) {
    if (ct * TC + i >= cg) break;
    uint c = g * cg + ct * TC + i;
    for (uint j = 0; j < TP; j++) {
      uint p = pt * TP + j;
      if (p >= npix) break;
      uint img = p / hw, r = p % hw;
      gx[pc.out_off + (img * pc.c + c) * hw + r] = acc[i][j];
    }
  }
}
