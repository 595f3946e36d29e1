#version 450
// batch_norm.comp - batch normalization with the batch's statistics (runtime/src/ops/norm.c) on an n x C x hw tensor,
// in four parts (the shader itself is STATS; batch_norm.variants adds the other three):
//   STATS       one workgroup per channel: mean, then the biased variance from the squared deviations (two passes)
//   APPLY       one invocation per element: y = (x - mean) alpha + bias, alpha = weight / sqrt(var + eps) (as
//               PyTorch's CUDA kernel; x alpha + (bias - mean alpha) loses the digits of a mean far from zero)
//   GRAD_SUMS   one workgroup per channel: grad_bias = sum(g), grad_weight = sum(g (x - mean)) / sqrt(var + eps)
//   GRAD_INPUT  one invocation per element: gx = (g - sum(g) / count - (x - mean) k) alpha, k = grad_weight invstd / count
// The host (vulkan/ops_vulkan.c) hands work whose loops or bindings would be too long to the composed form instead.
// Weight and bias are optional (push constants has_weight, has_bias; their bindings then alias another buffer).
#extension GL_GOOGLE_include_directive : require
#if !defined(APPLY) && !defined(GRAD_SUMS) && !defined(GRAD_INPUT)
#define STATS 1
#endif
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint WG = 256;

layout(push_constant) uniform Params {
  uint n, c, hw, has_weight;
  uint has_bias, x_off, g_off, y_off;
  uint mean_off, var_off, w_off, b_off;
  uint gw_off, gb_off;
  float eps;
} pc;

// element i of channel ch's n planes, as an offset into an n x C x hw tensor
uint at(uint ch, uint i) { return (i / pc.hw) * pc.c * pc.hw + ch * pc.hw + i % pc.hw; }
uint channel_of(uint e) { return (e / pc.hw) % pc.c; }
uint group_index() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }
uint flat_index() { return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x; }

#if defined(STATS) || defined(GRAD_SUMS)
shared float s_a[WG];
shared float s_b[WG];
// the workgroup's sums of a and b (every invocation gets them)
vec2 wg_sum2(float a, float b) {
  uint t = gl_LocalInvocationID.x;
  s_a[t] = a;
  s_b[t] = b;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (t < s) { s_a[t] += s_a[t + s]; s_b[t] += s_b[t + s]; }
    barrier();
  }
  vec2 r = vec2(s_a[0], s_b[0]);
  barrier();
  return r;
}
#endif

#ifdef STATS
layout(std430, binding = 0) writeonly buffer Mean { float mean[]; };
layout(std430, binding = 1) writeonly buffer Var { float var_[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
void main() {
  uint ch = group_index();
  if (ch >= pc.c) return;   // uniform across the workgroup
  uint count = pc.n * pc.hw, t = gl_LocalInvocationID.x;
  float s = 0.0;
  for (uint i = t; i < count; i += WG) s += x[pc.x_off + at(ch, i)];
  float m = wg_sum2(s, 0.0).x / float(count);
  float q = 0.0;
  for (uint i = t; i < count; i += WG) { float d = x[pc.x_off + at(ch, i)] - m; q += d * d; }
  float v = wg_sum2(q, 0.0).x / float(count);
  if (t == 0) { mean[pc.mean_off + ch] = m; var_[pc.var_off + ch] = v; }
}
#endif

#ifdef APPLY
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer Mean { float mean[]; };
layout(std430, binding = 3) readonly buffer Var { float var_[]; };
layout(std430, binding = 4) readonly buffer W { float w[]; };
layout(std430, binding = 5) readonly buffer B { float b[]; };
void main() {
  uint e = flat_index();
  if (e >= pc.n * pc.c * pc.hw) return;
  uint ch = channel_of(e);
  float alpha = inversesqrt(var_[pc.var_off + ch] + pc.eps) * (pc.has_weight != 0 ? w[pc.w_off + ch] : 1.0);
  precise float p = (x[pc.x_off + e] - mean[pc.mean_off + ch]) * alpha;
  y[pc.y_off + e] = p + (pc.has_bias != 0 ? b[pc.b_off + ch] : 0.0);
}
#endif

#ifdef GRAD_SUMS
layout(std430, binding = 0) writeonly buffer GW { float gw[]; };
layout(std430, binding = 1) writeonly buffer GB { float gb[]; };
layout(std430, binding = 2) readonly buffer X { float x[]; };
layout(std430, binding = 3) readonly buffer G { float g[]; };
layout(std430, binding = 4) readonly buffer Mean { float mean[]; };
layout(std430, binding = 5) readonly buffer Var { float var_[]; };
void main() {
  uint ch = group_index();
  if (ch >= pc.c) return;
  uint count = pc.n * pc.hw, t = gl_LocalInvocationID.x;
  float m = mean[pc.mean_off + ch];
  float sg = 0.0, sgx = 0.0;
  for (uint i = t; i < count; i += WG) {
    uint o = at(ch, i);
    float gv = g[pc.g_off + o];
    sg += gv;
    sgx += gv * (x[pc.x_off + o] - m);
  }
  vec2 s = wg_sum2(sg, sgx);
  if (t == 0) {
    gw[pc.gw_off + ch] = s.y * inversesqrt(var_[pc.var_off + ch] + pc.eps);
    gb[pc.gb_off + ch] = s.x;
  }
}
#endif

#ifdef GRAD_INPUT
layout(std430, binding = 0) writeonly buffer GX { float gx[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer G { float g[]; };
layout(std430, binding = 3) readonly buffer Mean { float mean[]; };
layout(std430, binding = 4) readonly buffer Var { float var_[]; };
layout(std430, binding = 5) readonly buffer W { float w[]; };
layout(std430, binding = 6) readonly buffer GW { float gw[]; };
layout(std430, binding = 7) readonly buffer GB { float gb[]; };
void main() {
  uint e = flat_index();
  if (e >= pc.n * pc.c * pc.hw) return;
  uint ch = channel_of(e);
  float count = float(pc.n * pc.hw);
  float invstd = inversesqrt(var_[pc.var_off + ch] + pc.eps);
  float alpha = invstd * (pc.has_weight != 0 ? w[pc.w_off + ch] : 1.0);
  float k = gw[pc.gw_off + ch] * invstd / count, gmean = gb[pc.gb_off + ch] / count;
  gx[pc.y_off + e] = (g[pc.g_off + e] - gmean - (x[pc.x_off + e] - mean[pc.mean_off + ch]) * k) * alpha;
}
#endif
