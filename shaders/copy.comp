#version 450
// copy.comp - strided copy (dst = src, src broadcast by stride 0); the `fill` variant writes the constant pc.p0.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "eltwise.glsl"
layout(std430, binding = 0) writeonly buffer Dst { float dst[]; };
#ifndef FILL
layout(std430, binding = 1) readonly buffer Src { float src[]; };
#endif

void main() {
  uint i = flat_index();
  if (i >= pc.numel) return;
#ifdef FILL
  dst[operand_offset(0, i)] = pc.p0;
#else
  dst[operand_offset(0, i)] = src[operand_offset(1, i)];
#endif
}
