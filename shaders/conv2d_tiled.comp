#version 450
// conv2d_tiled.comp - 2-D convolution and its gradients as implicit GEMMs in shared-memory workgroup tiles
// (common/gemm_tile.glsl): the convolution kernels for GPUs (runtime/src/vulkan/conv_tiled.c). MODE picks the
// product; per group g (gl_WorkGroupID.z), with kk = kh * kw and the images of the dispatch flattened with their
// pixels:
//   MODE 0, forward:       y[o][p]   = sum_r  w[o][r] * x~[r][p]      o < O/g, p < n*oh*ow, r = (c, ky, kx) < C/g*kk
//   MODE 1, input grad:    gx[c][q]  = sum_r  w[o][c][ky][kx] * gy~[r][q]   q < n*h*w, r = (o, ky, kx) < O/g*kk
//   MODE 2, weight grad:   gw[o][r]  = sum_p  gy[o][p] * x~[r][p]    (z = g * splits + s: pixels split in slices)
// where x~ and gy~ gather the input (zero outside the image) and grad_output (zero where the strided position does
// not exist). The GEMM's A is always binding 2 (w, w, gy), its B binding 1 (x, gy, x). VEC_A: A's quads are one
// vector load (forward: the weight rows; weight grad: grad_output rows within an image), set by the host when aligned.
// Bindings: 0 output (y, gx, gw, or the weight gradient's per-slice partial sums), 1 and 2 as above, 3 bias (forward).
#extension GL_GOOGLE_include_directive : require
#ifdef HALF_TILES
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#define CONV_OWN_BINDINGS
layout(constant_id = 7) const uint MODE = 0;
layout(constant_id = 8) const bool VEC_A = false;
layout(std430, binding = 0) buffer Out { float outv[]; };
layout(std430, binding = 1) readonly buffer SrcB { float src_b[]; };
layout(std430, binding = 2) readonly buffer SrcA { float src_a[]; };
layout(std430, binding = 2) readonly buffer SrcA4 { vec4 src_a4[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
#include "conv2d.glsl"
#include "activation.glsl"
#include "gemm_tile.glsl"

uint cg() { return pc.c / pc.groups; }
uint og() { return pc.o / pc.groups; }
uint kk() { return pc.kh * pc.kw; }

// the GEMM's sizes for this mode
uint gemm_m() { return MODE == 1u ? cg() : og(); }
uint gemm_n() { return MODE == 0u ? pc.n * pc.oh * pc.ow : MODE == 1u ? pc.n * pc.h * pc.w : cg() * kk(); }
uint gemm_k() { return MODE == 0u ? cg() * kk() : MODE == 1u ? og() * kk() : pc.n * pc.oh * pc.ow; }

// x~: input element of channel c of group g at tap (ky, kx) for output pixel p (flattened over the images)
float x_tap(uint g, uint c, uint ky, uint kx, uint p) {
  uint ohw = pc.oh * pc.ow, img = p / ohw, pix = p % ohw;
  int iy = int((pix / pc.ow) * pc.sh + ky * pc.dh) - int(pc.ph);
  int ix = int((pix % pc.ow) * pc.sw + kx * pc.dw) - int(pc.pw);
  if (iy < 0 || iy >= int(pc.h) || ix < 0 || ix >= int(pc.w)) return 0.0;
  return src_b[pc.a_off + ((img * pc.c + g * cg() + c) * pc.h + uint(iy)) * pc.w + uint(ix)];
}

vec4 load_a4(uint z, uint row, uint k) {
  uint K = gemm_k(), g = MODE == 2u ? z / pc.splits : z;
  if (row >= gemm_m()) return vec4(0.0);
  vec4 v = vec4(0.0);
  if (MODE == 0u) {   // w[g*og + row][k]
    uint base = pc.b_off + (g * og() + row) * K;
    if (VEC_A && k + 3u < K) return src_a4[(base + k) / 4u];
    for (uint e = 0u; e < 4u; e++) if (k + e < K) v[e] = src_a[base + k + e];
  } else if (MODE == 1u) {   // w[g*og + o][row][t] for k = (o, t)
    for (uint e = 0u; e < 4u; e++) {
      uint r = k + e;
      if (r < K) v[e] = src_a[pc.b_off + ((g * og() + r / kk()) * cg() + row) * kk() + r % kk()];
    }
  } else {   // gy[img][g*og + row][pix] for k = p = (img, pix)
    uint ohw = pc.oh * pc.ow;
    uint img = k / ohw, pix = k % ohw;
    uint base = pc.b_off + (img * pc.o + g * og() + row) * ohw;
    if (VEC_A && k + 3u < K) return src_a4[(base + pix) / 4u];   // ohw % 4 == 0: the quad stays in one image
    for (uint e = 0u; e < 4u; e++) {
      uint p = k + e;
      if (p < K) v[e] = src_a[pc.b_off + ((p / ohw) * pc.o + g * og() + row) * ohw + p % ohw];
    }
  }
  return v;
}

vec4 load_b4(uint z, uint k, uint col) {
  uint K = gemm_k(), N = gemm_n(), g = MODE == 2u ? z / pc.splits : z;
  vec4 v = vec4(0.0);
  if (k >= K) return v;
  if (MODE == 0u) {   // x~[k = (c, ky, kx)][col = p]
    uint c = k / kk(), t = k % kk(), ky = t / pc.kw, kx = t % pc.kw;
    for (uint e = 0u; e < 4u; e++) if (col + e < N) v[e] = x_tap(g, c, ky, kx, col + e);
  } else if (MODE == 1u) {   // gy~[k = (o, ky, kx)][col = q]: the output position that tap (ky, kx) of q came from
    uint o = k / kk(), t = k % kk(), ky = t / pc.kw, kx = t % pc.kw, hw = pc.h * pc.w;
    for (uint e = 0u; e < 4u; e++) {
      uint q = col + e;
      if (q >= N) break;
      uint img = q / hw, pix = q % hw;
      int ty = int(pix / pc.w + pc.ph) - int(ky * pc.dh), tx = int(pix % pc.w + pc.pw) - int(kx * pc.dw);
      if (ty < 0 || tx < 0 || uint(ty) % pc.sh != 0u || uint(tx) % pc.sw != 0u) continue;
      uint oy = uint(ty) / pc.sh, ox = uint(tx) / pc.sw;
      if (oy >= pc.oh || ox >= pc.ow) continue;
      v[e] = src_b[pc.a_off + ((img * pc.o + g * og() + o) * pc.oh + oy) * pc.ow + ox];
    }
  } else {   // x~[col = (c, ky, kx)][k = p]
    for (uint e = 0u; e < 4u; e++) {
      uint r = col + e;
      if (r >= N) break;
      uint c = r / kk(), t = r % kk();
      v[e] = x_tap(g, c, t / pc.kw, t % pc.kw, k);
    }
  }
  return v;
}

void main() {
  uint z = gl_WorkGroupID.z, row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN;
  uint K = gemm_k(), M = gemm_m(), N = gemm_n();
  uint g = MODE == 2u ? z / pc.splits : z, s = MODE == 2u ? z % pc.splits : 0u;
  uint k0 = MODE == 2u ? s * pc.kchunk : 0u, k1 = MODE == 2u ? min(K, k0 + pc.kchunk) : K;
  gemm_tile(z, row0, col0, k0, k1);
  uint r0 = row0 + tile_row() * TM, c0 = col0 + tile_col() * TN;
  uint act = (pc.flags >> 8) & 255u;
  bool accumulate = (pc.flags & 2u) != 0u;
  for (uint i = 0u; i < TM; i++) {
    uint row = r0 + i;
    if (row >= M) break;
    for (uint j = 0u; j < TN; j++) {
      uint col = c0 + j;
      if (col >= N) break;
      float v = acc[i * TN + j];
      if (MODE == 0u) {
        uint o = g * og() + row, ohw = pc.oh * pc.ow;
        if ((pc.flags & 1u) != 0u) v += bias[pc.bias_off + o];
        outv[pc.out_off + ((col / ohw) * pc.o + o) * ohw + col % ohw] = activate(v, act);
      } else if (MODE == 1u) {
        uint hw = pc.h * pc.w;
        outv[pc.out_off + ((col / hw) * pc.c + g * cg() + row) * hw + col % hw] = v;
      } else {
        uint idx = pc.out_off + s * pc.o * N + (g * og() + row) * N + col;
        outv[idx] = accumulate ? outv[idx] + v : v;
      }
    }
  }
}
