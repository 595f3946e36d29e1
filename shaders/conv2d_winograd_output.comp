#version 450
// conv2d_winograd_output.comp - Winograd F(4x4, 3x3) output transform y = A^T m A, plus bias and activation
// (runtime/src/vulkan/conv_winograd.c). The transformed product M holds, for position xi, output channel oc and tile
// t, M[m_off + xi * xs + oc * os + t * ts] (in floats), with either the tiles (ts == 1) or the channels (os == 1)
// contiguous and padded to a multiple of 4. One invocation reads the 36 positions of a quad along that contiguous
// axis as vec4s (QUAD_TILES: 4 consecutive tiles of one channel, else 4 channels of one tile) and writes their up to
// 4 x 16 outputs; with VEC4_STORE (the host checks ow % 4 == 0) each output row of a tile is one vec4 store.
// Bindings: 0 y (r32f, or rgba32f with VEC4_STORE; written), 1 M (rgba32f), 2 bias (r32f; any buffer when none).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool QUAD_TILES = true;
#ifdef VEC4_STORE
layout(binding = 0, rgba32f) uniform writeonly imageBuffer Y;
#else
layout(binding = 0, r32f) uniform writeonly imageBuffer Y;
#endif
layout(binding = 1, rgba32f) uniform readonly imageBuffer M;
layout(binding = 2, r32f) uniform readonly imageBuffer Bias;
layout(push_constant) uniform Params {
  uint tiles, o, oh, ow;
  uint th, tw, m_off, y_off, bias_off;
  uint xs, os, ts;
  uint flags;   // bit 0: add the bias; bits 8..15: the activation (activation.glsl)
} pc;
#include "activation.glsl"

void main() {
  uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  uint quads = QUAD_TILES ? (pc.tiles + 3u) / 4u : (pc.o + 3u) / 4u;
  uint others = QUAD_TILES ? pc.o : pc.tiles;
  if (id >= quads * others) return;
  uint t0, o0;
  if (QUAD_TILES) { t0 = (id % quads) * 4u; o0 = id / quads; }
  else { o0 = (id % quads) * 4u; t0 = id / quads; }
  vec4 m[36];
  uint mb = (pc.m_off + o0 * pc.os + t0 * pc.ts) / 4u;
  for (uint q = 0u; q < 36u; q++) m[q] = imageLoad(M, int(mb + q * (pc.xs / 4u)));
  uint act = (pc.flags >> 8) & 255u;
  for (uint lane = 0u; lane < 4u; lane++) {
    uint t = QUAD_TILES ? t0 + lane : t0, oc = QUAD_TILES ? o0 : o0 + lane;
    if (t >= pc.tiles || oc >= pc.o) break;
    uint img = t / (pc.th * pc.tw), r = t % (pc.th * pc.tw);
    uint y0 = (r / pc.tw) * 4u, x0 = (r % pc.tw) * 4u;
    // A^T applied to the columns (6 -> 4 rows), then to the rows (6 -> 4 columns)
    float s[4][6];
    for (uint j = 0u; j < 6u; j++) {
      float m0 = m[j][lane], m1 = m[6u + j][lane], m2 = m[12u + j][lane];
      float m3 = m[18u + j][lane], m4 = m[24u + j][lane], m5 = m[30u + j][lane];
      float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
      s[0][j] = m0 + a + c;
      s[1][j] = b + 2.0 * d;
      s[2][j] = a + 4.0 * c;
      s[3][j] = b + 8.0 * d + m5;
    }
    float bias = (pc.flags & 1u) != 0u ? imageLoad(Bias, int(pc.bias_off + oc)).x : 0.0;
    uint ybase = pc.y_off + (img * pc.o + oc) * pc.oh * pc.ow;
    for (uint i = 0u; i < 4u; i++) {
      if (y0 + i >= pc.oh) break;
      float m0 = s[i][0], m1 = s[i][1], m2 = s[i][2], m3 = s[i][3], m4 = s[i][4], m5 = s[i][5];
      float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
      vec4 u = vec4(m0 + a + c, b + 2.0 * d, a + 4.0 * c, b + 8.0 * d + m5) + bias;
      u = vec4(activate(u.x, act), activate(u.y, act), activate(u.z, act), activate(u.w, act));
      uint row = ybase + (y0 + i) * pc.ow + x0;
#ifdef VEC4_STORE
      imageStore(Y, int(row / 4u), u);   // ow % 4 == 0: the tile's row is whole and on a vec4 bound
#else
      for (uint j = 0u; j < 4u; j++)
        if (x0 + j < pc.ow) imageStore(Y, int(row + j), vec4(u[j]));
#endif
    }
  }
}
