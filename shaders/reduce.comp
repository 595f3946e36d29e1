#version 450
// reduce.comp - reduction of the middle dim of a contiguous (outer, r, inner) tensor into (outer, inner).
// OP is a dpl_reduce_op of runtime/include/dpl.h (names from the generated dpl_ops.glsl). MODE 0: one invocation per
// output (short r); MODE 1: one workgroup of WG invocations per output, combined through shared memory (long r).
// Indices (argmax/argmin) are returned as floats.
#extension GL_GOOGLE_include_directive : require
#include "dpl_ops.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int OP = 0;
layout(constant_id = 2) const int MODE = 0;
layout(constant_id = 3) const uint WG = 64;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform Params {
  uint outer, r, inner, in_off, out_off, unbiased;
} pc;

shared float s_val[WG];
shared uint s_idx[WG];

bool better(float v, uint iv, float best, uint ib) {   // v replaces best?
  if (isnan(best)) return isnan(v) && iv < ib;
  if (isnan(v)) return true;
  bool want_max = OP == DPL_MAX || OP == DPL_ARGMAX;
  if (v == best) return iv < ib;
  return want_max ? v > best : v < best;
}

uint output_index() {
  return MODE == 0 ? gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x
                   : gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
}

// sum over this invocation's share of the row, of (x - shift)^pw (pw 1 or 2)
float partial_sum(uint base, uint first, uint step, float shift, bool squared) {
  float acc = 0.0;
  for (uint i = first; i < pc.r; i += step) {
    float v = x[base + i * pc.inner] - shift;
    acc += squared ? v * v : v;
  }
  return acc;
}

float wg_sum(float v, uint t) {
  s_val[t] = v;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (t < s) s_val[t] += s_val[t + s];
    barrier();
  }
  float total = s_val[0];
  barrier();
  return total;
}

void main() {
  uint o = output_index();
  if (o >= pc.outer * pc.inner) return;   // uniform across a workgroup in MODE 1
  uint base = pc.in_off + (o / pc.inner) * pc.r * pc.inner + (o % pc.inner);
  uint t = MODE == 0 ? 0 : gl_LocalInvocationID.x;
  uint step = MODE == 0 ? 1 : WG;
  float result;
  if (OP == DPL_SUM || OP == DPL_MEAN || OP == DPL_VAR) {
    float s = partial_sum(base, t, step, 0.0, false);
    if (MODE == 1) s = wg_sum(s, t);
    if (OP == DPL_SUM) result = s;
    else {
      float mean = s / float(pc.r);
      if (OP == DPL_MEAN) result = mean;
      else {
        float q = partial_sum(base, t, step, mean, true);
        if (MODE == 1) q = wg_sum(q, t);
        float div = pc.unbiased != 0 ? float(pc.r) - 1.0 : float(pc.r);
        result = div > 0.0 ? q / div : 0.0 / 0.0;
      }
    }
  } else {   // DPL_MAX, DPL_MIN, DPL_ARGMAX, DPL_ARGMIN
    float best = 0.0;
    uint at = 0xffffffffu;
    for (uint i = t; i < pc.r; i += step) {
      float v = x[base + i * pc.inner];
      if (at == 0xffffffffu || better(v, i, best, at)) { best = v; at = i; }
    }
    if (MODE == 1) {
      s_val[t] = best;
      s_idx[t] = at;
      barrier();
      for (uint s = WG / 2; s > 0; s >>= 1) {
        if (t < s && s_idx[t + s] != 0xffffffffu &&
            (s_idx[t] == 0xffffffffu || better(s_val[t + s], s_idx[t + s], s_val[t], s_idx[t]))) {
          s_val[t] = s_val[t + s];
          s_idx[t] = s_idx[t + s];
        }
        barrier();
      }
      best = s_val[0];
      at = s_idx[0];
    }
    result = (OP == DPL_MAX || OP == DPL_MIN) ? best : float(at);
  }
  if (t == 0) y[pc.out_off + o] = result;
}
