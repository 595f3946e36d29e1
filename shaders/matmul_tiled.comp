#version 450
// matmul_tiled.comp - batched C = alpha * A @ B + beta * C with any element strides, in shared-memory workgroup tiles
// (common/gemm_tile.glsl): the GEMM for GPUs (runtime/src/vulkan/gemm_tiled.c). A_VEC / B_VEC (specialization
// constants, set by the host when A's rows or B's rows are contiguous and on vec4 bounds) read 4 elements with one
// vector load. gl_WorkGroupID.x/y/z: column blocks, row blocks, batches.
// Bindings: 0 C, 1 A, 2 B (each also seen as vec4s).
#extension GL_GOOGLE_include_directive : require
#ifdef HALF_TILES
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
layout(constant_id = 7) const bool A_VEC = false;
layout(constant_id = 8) const bool B_VEC = false;
layout(std430, binding = 0) buffer Cbuf { float c[]; };
layout(std430, binding = 1) readonly buffer Abuf { float a[]; };
layout(std430, binding = 1) readonly buffer Abuf4 { vec4 a4[]; };
layout(std430, binding = 2) readonly buffer Bbuf { float b[]; };
layout(std430, binding = 2) readonly buffer Bbuf4 { vec4 b4[]; };
layout(push_constant) uniform Params {
  uint m, n, k;
  uint a_off; int a_rs, a_cs, a_bs;
  uint b_off; int b_rs, b_cs, b_bs;
  uint c_off; int c_rs, c_cs, c_bs;
  float alpha, beta;
} pc;
#include "gemm_tile.glsl"

vec4 load_a4(uint z, uint row, uint k) {
  if (row >= pc.m) return vec4(0.0);
  int base = int(pc.a_off) + int(z) * pc.a_bs + int(row) * pc.a_rs;
  if (A_VEC && k + 3u < pc.k) return a4[(base + int(k)) / 4];   // a_cs == 1, base and k on vec4 bounds
  vec4 v;
  for (uint e = 0u; e < 4u; e++) v[e] = k + e < pc.k ? a[base + int(k + e) * pc.a_cs] : 0.0;
  return v;
}

vec4 load_b4(uint z, uint k, uint col) {
  if (k >= pc.k) return vec4(0.0);
  int base = int(pc.b_off) + int(z) * pc.b_bs + int(k) * pc.b_rs;
  if (B_VEC && col + 3u < pc.n) return b4[(base + int(col)) / 4];   // b_cs == 1, base and col on vec4 bounds
  vec4 v;
  for (uint e = 0u; e < 4u; e++) v[e] = col + e < pc.n ? b[base + int(col + e) * pc.b_cs] : 0.0;
  return v;
}

void main() {
  uint z = gl_WorkGroupID.z, row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN;
  gemm_tile(z, row0, col0, 0u, pc.k);
  uint r0 = row0 + tile_row() * TM, c0 = col0 + tile_col() * TN;
  int cbase = int(pc.c_off) + int(z) * pc.c_bs;
  for (uint i = 0u; i < TM; i++) {
    if (r0 + i >= pc.m) break;
    for (uint j = 0u; j < TN; j++) {
      if (c0 + j >= pc.n) break;
      int idx = cbase + int(r0 + i) * pc.c_rs + int(c0 + j) * pc.c_cs;
      float prev = pc.beta != 0.0 ? pc.beta * c[idx] : 0.0;   // C may hold NaNs when beta is 0: never read it
      c[idx] = pc.alpha * acc[i * TN + j] + prev;
    }
  }
}
