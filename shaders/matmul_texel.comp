#version 450
// matmul_texel.comp - batched C = alpha * A @ B + beta * C shaped for CPU Vulkan drivers (lavapipe/llvmpipe), see
// shared/spec/lavapipe.md: no shared memory, no barriers, one subgroup (8 invocations) per workgroup, a large register
// tile per invocation, and operands read as vec4s with imageLoad from rgba32f storage texel buffers (inlined and
// branch-free there, unlike SSBO loads).
//
// Operand layouts (vec4 = 4 consecutive k):
//   A: m rows of k4 vec4s, row r of batch z at a_off + z * a_bs + r * a_rs (in vec4s)
//   B: stored transposed, n rows (one per output column) of k4 vec4s, at b_off + z * b_bs + col * b_rs
//   k is padded with zeros up to 4 * k4 in both operands; rows/columns beyond m/n are clamped, never read past.
// C is a plain SSBO with any element strides (written once per output, so its load/store cost does not matter).
// Invocation l of a workgroup computes a TM x TN tile: workgroups are LM x LN invocations (LM * LN = 8), covering
// (LM * TM) rows x (LN * TN) columns of C; gl_WorkGroupID.z is the batch index.
#extension GL_EXT_control_flow_attributes : require
#ifndef TM
#define TM 16
#endif
#ifndef TN
#define TN 8
#endif
#ifndef LN
#define LN 8
#endif
#define LM (8 / LN)
layout(local_size_x = 8) in;
layout(std430, binding = 0) buffer Cbuf { float c[]; };
layout(binding = 1, rgba32f) uniform readonly imageBuffer A;
layout(binding = 2, rgba32f) uniform readonly imageBuffer B;
layout(push_constant) uniform Params {
  int m, n, k4;
  int a_off, a_rs, a_bs;
  int b_off, b_rs, b_bs;
  int c_off, c_rs, c_cs, c_bs;
  float alpha, beta;
} pc;

void main() {
  int lane = int(gl_LocalInvocationID.x);
  int row0 = (int(gl_WorkGroupID.y) * LM + lane / LN) * TM;
  int col0 = (int(gl_WorkGroupID.x) * LN + lane % LN) * TN;
  int z = int(gl_WorkGroupID.z);
  int ai[TM], bi[TN];
  [[unroll]] for (int i = 0; i < TM; i++) ai[i] = pc.a_off + z * pc.a_bs + min(row0 + i, pc.m - 1) * pc.a_rs;
  [[unroll]] for (int j = 0; j < TN; j++) bi[j] = pc.b_off + z * pc.b_bs + min(col0 + j, pc.n - 1) * pc.b_rs;
  float acc[TM][TN];
  [[unroll]] for (int i = 0; i < TM; i++) [[unroll]] for (int j = 0; j < TN; j++) acc[i][j] = 0.0;
  for (int kk = 0; kk < pc.k4; kk++) {
    vec4 bv[TN];
    [[unroll]] for (int j = 0; j < TN; j++) bv[j] = imageLoad(B, bi[j] + kk);
    [[unroll]] for (int i = 0; i < TM; i++) {
      vec4 av = imageLoad(A, ai[i] + kk);
      [[unroll]] for (int j = 0; j < TN; j++) acc[i][j] += dot(av, bv[j]);
    }
  }
  int cb = pc.c_off + z * pc.c_bs;
  [[unroll]] for (int i = 0; i < TM; i++) {
    int r = row0 + i;
    if (r < pc.m) {
      [[unroll]] for (int j = 0; j < TN; j++) {
        int col = col0 + j;
        if (col < pc.n) {
          int idx = cb + r * pc.c_rs + col * pc.c_cs;
          float prev = pc.beta != 0.0 ? pc.beta * c[idx] : 0.0;
          c[idx] = pc.alpha * acc[i][j] + prev;
        }
      }
    }
  }
}
