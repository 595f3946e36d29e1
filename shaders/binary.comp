#version 450
// binary.comp - elementwise binary ops with broadcasting. OP is a dpl_binary_op of runtime/include/dpl.h (names from
// the generated dpl_ops.glsl; the build fails while an op of the enum has no case here).
// MODE 0: y = a (op) b; 1: y = a (op) p0; 2: y = p0 (op) a (binding 2 is then bound to a and unused).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
#include "eltwise.glsl"
#include "dpl_ops.glsl"
layout(constant_id = 1) const int OP = 0;
layout(constant_id = 2) const int MODE = 0;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };

// pow as C's powf for the cases that matter: negative bases with integral exponents
float pow_c(float x, float e) {
  if (e == 0.0) return 1.0;
  if (x >= 0.0) return (x == 0.0 && e < 0.0) ? 1.0 / 0.0 : pow(x, e);
  if (e != floor(e)) return 0.0 / 0.0;
  float r = pow(-x, e);
  return mod(e, 2.0) == 1.0 ? -r : r;
}

float apply(float x, float z) {
  switch (OP) {
  case DPL_ADD: return x + z;
  case DPL_SUB: return x - z;
  case DPL_MUL: return x * z;
  case DPL_DIV: return x / z;
  case DPL_POW: return pow_c(x, z);
  case DPL_MAXIMUM: return (isnan(x) || isnan(z)) ? x + z : max(x, z);
  case DPL_MINIMUM: return (isnan(x) || isnan(z)) ? x + z : min(x, z);
  case DPL_EQ: return float(x == z);
  case DPL_NE: return float(x != z);
  case DPL_LT: return float(x < z);
  case DPL_LE: return float(x <= z);
  case DPL_GT: return float(x > z);
  case DPL_GE: return float(x >= z);
  case DPL_RELU_GRAD: return z > 0 ? x : 0.0;
  }
  return uintBitsToFloat(0x7fc00000u);   // not reached: the runtime rejects unknown ops before dispatching
}

void main() {
  uint i = flat_index();
  if (i >= pc.numel) return;
  float x = a[operand_offset(1, i)];
  float r;
  if (MODE == 0) r = apply(x, b[operand_offset(2, i)]);
  else if (MODE == 1) r = apply(x, pc.p0);
  else r = apply(pc.p0, x);
  y[operand_offset(0, i)] = r;
}
