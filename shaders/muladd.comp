#version 450
// muladd.comp - y = x * a + b, all broadcast to y's shape (batch norm's per-channel scale and shift in one pass).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "eltwise.glsl"
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer A { float a[]; };
layout(std430, binding = 3) readonly buffer B { float b[]; };

void main() {
  uint i = flat_index();
  if (i >= pc.numel) return;
  // precise: the product rounded before the sum, as the CPU computes it (no fused multiply-add)
  precise float p = x[operand_offset(1, i)] * a[operand_offset(2, i)];
  y[operand_offset(0, i)] = p + b[operand_offset(3, i)];
}
