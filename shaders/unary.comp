#version 450
// unary.comp - elementwise unary ops. OP is a dpl_unary_op of runtime/include/dpl.h (its DPL_* names come from the
// generated dpl_ops.glsl; the build fails while an op of the enum has no case here); p0, p1 are its parameters.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "eltwise.glsl"
#include "dpl_ops.glsl"
layout(constant_id = 1) const int OP = 0;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };

float apply(float x) {
  switch (OP) {
  case DPL_NEG: return -x;
  case DPL_EXP: return exp(x);
  case DPL_LOG: return log(x);
  case DPL_SQRT: return sqrt(x);
  case DPL_ABS: return abs(x);
  case DPL_SQUARE: return x * x;
  case DPL_RSQRT: return inversesqrt(x);
  case DPL_SIGN: return isnan(x) ? x : sign(x);
  case DPL_RELU: return x > 0.0 ? x : 0.0;
  case DPL_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case DPL_TANH: return isnan(x) ? x : tanh(clamp(x, -15.0, 15.0));   // GLSL tanh may overflow to NaN for large |x|
  case DPL_CLAMP: return isnan(x) ? x : min(max(x, pc.p0), pc.p1);
  case DPL_AFFINE: return x * pc.p0 + pc.p1;
  case DPL_SILU: return x * (1.0 / (1.0 + exp(-x)));   // silu
  }
  return uintBitsToFloat(0x7fc00000u);   // not reached: the runtime rejects unknown ops before dispatching
}

void main() {
  uint i = flat_index();
  if (i >= pc.numel) return;
  y[operand_offset(0, i)] = apply(a[operand_offset(1, i)]);
}
