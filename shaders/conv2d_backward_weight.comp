#version 450
// conv2d_backward_weight.comp - gradient of conv2d with respect to its weight: each invocation computes a register
// tile of TO output channels (of one group) x TK consecutive taps (flattened (c, ky, kx) of the group's weight rows)
// by summing grad_output * input over the output rows [row0, row1) of every image of the dispatch. With flag bit 1
// the result is added to what the output holds (the host splits large batches and, on CPU drivers, whose loop
// limiter cuts an invocation's loops after about 65535 iterations in all, large images over several dispatches).
// Bindings: 0 grad_weight, 1 input (A), 2 grad_output (B).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TO = 8;
layout(constant_id = 2) const uint TK = 16;
layout(std430, binding = 0) buffer Out { float gw[]; };
#include "conv2d.glsl"

void main() {
  uint cg = pc.c / pc.groups, og = pc.o / pc.groups;
  uint hw = pc.h * pc.w, ohw = pc.oh * pc.ow, kk = pc.kh * pc.kw, ksz = cg * kk;
  uint ktiles = (ksz + TK - 1) / TK, otiles = (og + TO - 1) / TO;
  uint id = conv_flat_index();
  if (id >= ktiles * otiles * pc.groups) return;
  uint kt = id % ktiles, rest = id / ktiles;
  uint ot = rest % otiles, g = rest / otiles;

  uint xoff[TK];
  int dy[TK], dx[TK];
  for (uint j = 0; j < TK; j++) {
    uint t = min(kt * TK + j, ksz - 1u);
    uint cl = t / kk, ky = (t / pc.kw) % pc.kh, kx = t % pc.kw;
    xoff[j] = (g * cg + cl) * hw;
    dy[j] = int(ky * pc.dh) - int(pc.ph);
    dx[j] = int(kx * pc.dw) - int(pc.pw);
  }
  uint goff[TO];
  for (uint i = 0; i < TO; i++) goff[i] = (g * og + min(ot * TO + i, og - 1u)) * ohw;

  float acc[TO][TK];
  for (uint i = 0; i < TO; i++) for (uint j = 0; j < TK; j++) acc[i][j] = 0.0;
  for (uint img = 0; img < pc.n; img++) {
    uint xb = pc.a_off + img * pc.c * hw, gb = pc.b_off + img * pc.o * ohw;
    for (uint oy = pc.row0; oy < pc.row1; oy++) {
      bool rowok[TK];
      int rowoff[TK];
      for (uint j = 0; j < TK; j++) {
        int iy = int(oy * pc.sh) + dy[j];
        rowok[j] = iy >= 0 && iy < int(pc.h);
        rowoff[j] = int(xb + xoff[j]) + iy * int(pc.w);
      }
      uint grow = gb + oy * pc.ow;
      for (uint ox = 0; ox < pc.ow; ox++) {
        float xv[TK], gv[TO];
        for (uint j = 0; j < TK; j++) {
          int ix = int(ox * pc.sw) + dx[j];
          bool ok = rowok[j] && ix >= 0 && ix < int(pc.w);
          float v = LOAD_A(ok ? uint(rowoff[j] + ix) : pc.a_off);
          xv[j] = ok ? v : 0.0;
        }
        for (uint i = 0; i < TO; i++) gv[i] = LOAD_B(grow + goff[i] + ox);
        for (uint i = 0; i < TO; i++) for (uint j = 0; j < TK; j++) acc[i][j] += gv[i] * xv[j];
      }
    }
  }

  bool accumulate = (pc.flags & 2u) != 0u;
  for (uint i = 0; i < TO; i++) {
    if (ot * TO + i >= og) break;
    uint o = g * og + ot * TO + i;
    for (uint j = 0; j < TK; j++) {
      uint t = kt * TK + j;
      if (t >= ksz) break;
      uint idx = pc.out_off + o * ksz + t;
      gw[idx] = accumulate ? gw[idx] + acc[i][j] : acc[i][j];
    }
  }
}
