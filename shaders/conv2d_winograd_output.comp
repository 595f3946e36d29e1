#version 450
// conv2d_winograd_output.comp - Winograd F(4x4, 3x3) output transform y = A^T m A, plus bias and activation
// (runtime/src/vulkan/conv_winograd.c). The transformed product M is stored per position xi and output channel as
// rows of `stride` >= tiles floats: M[(xi * o + oc) * stride + t]. One invocation: one tile of one output channel, up
// to 16 outputs (fewer at the right and bottom edges).
// Bindings: 0 y (r32f, written), 1 M (r32f), 2 bias (r32f; any buffer when there is none).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(binding = 0, r32f) uniform writeonly imageBuffer Y;
layout(binding = 1, r32f) uniform readonly imageBuffer M;
layout(binding = 2, r32f) uniform readonly imageBuffer Bias;
layout(push_constant) uniform Params {
  uint tiles, o, oh, ow;
  uint th, tw, m_off, y_off, bias_off, stride;
  uint flags;   // bit 0: add the bias; bits 8..15: the activation (runtime/src/vulkan/conv_winograd.c)
} pc;
#include "activation.glsl"

void main() {
  uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (id >= pc.tiles * pc.o) return;
  uint t = id % pc.tiles, oc = id / pc.tiles;
  uint img = t / (pc.th * pc.tw), r = t % (pc.th * pc.tw);
  uint y0 = (r / pc.tw) * 4u, x0 = (r % pc.tw) * 4u;
  float m[36];
  uint mb = pc.m_off + oc * pc.stride + t, xi_stride = pc.o * pc.stride;
  for (uint q = 0u; q < 36u; q++) m[q] = imageLoad(M, int(mb + q * xi_stride)).x;
  // A^T applied to the columns (6 -> 4 rows), then to the rows (6 -> 4 columns)
  float s[4][6];
  for (uint j = 0u; j < 6u; j++) {
    float m0 = m[j], m1 = m[6u + j], m2 = m[12u + j], m3 = m[18u + j], m4 = m[24u + j], m5 = m[30u + j];
    float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    s[0][j] = m0 + a + c;
    s[1][j] = b + 2.0 * d;
    s[2][j] = a + 4.0 * c;
    s[3][j] = b + 8.0 * d + m5;
  }
  float bias = (pc.flags & 1u) != 0u ? imageLoad(Bias, int(pc.bias_off + oc)).x : 0.0;
  uint act = (pc.flags >> 8) & 255u;
  uint ybase = pc.y_off + (img * pc.o + oc) * pc.oh * pc.ow;
  for (uint i = 0u; i < 4u; i++) {
    if (y0 + i >= pc.oh) break;
    float m0 = s[i][0], m1 = s[i][1], m2 = s[i][2], m3 = s[i][3], m4 = s[i][4], m5 = s[i][5];
    float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    float u[4];
    u[0] = m0 + a + c;
    u[1] = b + 2.0 * d;
    u[2] = a + 4.0 * c;
    u[3] = b + 8.0 * d + m5;
    uint row = ybase + (y0 + i) * pc.ow + x0;
    for (uint j = 0u; j < 4u; j++)
      if (x0 + j < pc.ow) imageStore(Y, int(row + j), vec4(activate(u[j] + bias, act)));
  }
}
