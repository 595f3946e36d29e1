#version 450
// where.comp - y = cond != 0 ? a : b, all broadcast to y's shape.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "eltwise.glsl"
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer C { float c[]; };
layout(std430, binding = 2) readonly buffer A { float a[]; };
layout(std430, binding = 3) readonly buffer B { float b[]; };

void main() {
  uint i = flat_index();
  if (i >= pc.numel) return;
  y[operand_offset(0, i)] = c[operand_offset(1, i)] != 0.0 ? a[operand_offset(2, i)] : b[operand_offset(3, i)];
}
