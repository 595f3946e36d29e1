#version 450
// unary.comp - elementwise unary ops. OP follows dpl_unary_op in runtime/include/dpl.h; p0, p1 are its parameters.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "eltwise.glsl"
layout(constant_id = 1) const int OP = 0;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };

float apply(float x) {
  switch (OP) {
  case 0: return -x;
  case 1: return exp(x);
  case 2: return log(x);
  case 3: return sqrt(x);
  case 4: return abs(x);
  case 5: return x * x;
  case 6: return inversesqrt(x);
  case 7: return isnan(x) ? x : sign(x);
  case 8: return x > 0.0 ? x : 0.0;
  case 9: return 1.0 / (1.0 + exp(-x));
  case 10: return isnan(x) ? x : tanh(clamp(x, -15.0, 15.0));   // GLSL tanh may overflow to NaN for large |x|
  case 11: return isnan(x) ? x : min(max(x, pc.p0), pc.p1);
  case 12: return x * pc.p0 + pc.p1;
  case 13: return x * (1.0 / (1.0 + exp(-x)));   // silu
  }
  return 0.0;
}

void main() {
  uint i = flat_index();
  if (i >= pc.numel) return;
  y[operand_offset(0, i)] = apply(a[operand_offset(1, i)]);
}
