#version 450
// matmul.comp - batched C = alpha * A @ B + beta * C with arbitrary element strides (the portable variant).
// Each invocation computes a TM x TN register tile; a workgroup of 8x8 invocations covers (8*TM) x (8*TN) of C;
// gl_WorkGroupID.z is the batch index.
layout(local_size_x_id = 0) in;   // 64
layout(constant_id = 1) const uint TM = 4;
layout(constant_id = 2) const uint TN = 4;
layout(std430, binding = 0) buffer Cbuf { float c[]; };
layout(std430, binding = 1) readonly buffer Abuf { float a[]; };
layout(std430, binding = 2) readonly buffer Bbuf { float b[]; };
layout(push_constant) uniform Params {
  uint m, n, k, batch_base;
  uint a_off; int a_rs, a_cs, a_bs;
  uint b_off; int b_rs, b_cs, b_bs;
  uint c_off; int c_rs, c_cs, c_bs;
  float alpha, beta;
} pc;

void main() {
  uint lx = gl_LocalInvocationID.x % 8u, ly = gl_LocalInvocationID.x / 8u;
  uint row0 = (gl_WorkGroupID.y * 8u + ly) * TM;
  uint col0 = (gl_WorkGroupID.x * 8u + lx) * TN;
  int bi = int(gl_WorkGroupID.z);
  int abase = int(pc.a_off) + bi * pc.a_bs, bbase = int(pc.b_off) + bi * pc.b_bs, cbase = int(pc.c_off) + bi * pc.c_bs;
  float acc[TM][TN];
  for (uint i = 0; i < TM; i++) for (uint j = 0; j < TN; j++) acc[i][j] = 0.0;
  for (uint kk = 0; kk < pc.k; kk++) {
    float av[TM], bv[TN];
    for (uint i = 0; i < TM; i++) {
      uint r = min(row0 + i, pc.m - 1u);
      av[i] = a[abase + int(r) * pc.a_rs + int(kk) * pc.a_cs];
    }
    for (uint j = 0; j < TN; j++) {
      uint cidx = min(col0 + j, pc.n - 1u);
      bv[j] = b[bbase + int(kk) * pc.b_rs + int(cidx) * pc.b_cs];
    }
    for (uint i = 0; i < TM; i++) for (uint j = 0; j < TN; j++) acc[i][j] += av[i] * bv[j];
  }
  for (uint i = 0; i < TM; i++) {
    uint r = row0 + i;
    if (r >= pc.m) break;
    for (uint j = 0; j < TN; j++) {
      uint col = col0 + j;
      if (col >= pc.n) break;
      int idx = cbase + int(r) * pc.c_rs + int(col) * pc.c_cs;
      float prev = pc.beta != 0.0 ? pc.beta * c[idx] : 0.0;
      c[idx] = pc.alpha * acc[i][j] + prev;
    }
  }
}
