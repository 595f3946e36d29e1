#version 450
// matmul_texel.comp - batched C = alpha * A @ B + beta * C shaped for CPU Vulkan drivers (lavapipe/llvmpipe), see
// docs/vulkan.md: no shared memory, no barriers, one subgroup (8 invocations) per workgroup, a large register
// tile per invocation, and operands read as vec4s with imageLoad from rgba32f storage texel buffers (inlined and
// branch-free there, unlike SSBO loads). runtime/src/vulkan/gemm_texel.c prepares the operands and picks the variant.
//
// Operand layouts (a vec4 holds 4 consecutive k; offsets and strides in vec4s):
//   A: m lines of k4 vec4s, line r of batch z at a_off + z * a_bs + r * a_rs
//   B: stored transposed, n lines (one per output column) of k4 vec4s, at b_off + z * b_bs + col * b_rs
//   k is zero-padded up to 4 * k4 in both; rows and columns past m and n are clamped, never read past.
// C: an r32f texel buffer with any element strides; with C_VEC4 an rgba32f one written a vec4 (4 columns) at a time,
// offsets and strides in vec4s (the host checks that columns are contiguous and n, rows and batches align to 4).
// Invocation l of a workgroup computes a TM x TN tile; workgroups are LM x LN invocations (LM * LN = 8) covering
// (LM * TM) rows x (LN * TN) columns of C. gl_WorkGroupID.x/y/z index row blocks, column blocks and batches: llvmpipe
// runs workgroups in x-fastest order, so consecutive ones reuse the same B columns (the wider side) from cache.
//
// Defines: TM, TN (4, 8, 16 or 32), LN (1, 2, 4 or 8), KU (1, 2 or 4: vec4s along k summed per accumulator update).
// Measured on a 2-core AVX-512 VM (llvmpipe 256-bit): 16 x 16, LN 8, KU 2 was best (8 x 16, 16 x 8, KU 4 and LN 4
// within noise of it; smaller tiles and NVEC-style layouts vectorized along m and n were slower).
#ifndef TM
#define TM 16
#endif
#ifndef TN
#define TN 16
#endif
#ifndef LN
#define LN 8
#endif
#ifndef KU
#define KU 2
#endif
#define LM (8 / LN)
#if TN == 4
#define TN4 1
#elif TN == 8
#define TN4 2
#elif TN == 16
#define TN4 4
#else
#define TN4 8
#endif
layout(local_size_x = 8) in;
#ifdef C_VEC4
layout(binding = 0, rgba32f) uniform coherent imageBuffer C;
#else
layout(binding = 0, r32f) uniform coherent imageBuffer C;
#endif
layout(binding = 1, rgba32f) uniform readonly imageBuffer A;
layout(binding = 2, rgba32f) uniform readonly imageBuffer B;
layout(push_constant) uniform Params {
  int m, n, k4;
  int a_off, a_rs, a_bs;
  int b_off, b_rs, b_bs;
  int c_off, c_rs, c_cs, c_bs;
  float alpha, beta;
} pc;

// Loops over the register tile are spelled out with these macros: NIR does not always unroll loops, and a tile
// indexed by a loop variable would live in scratch memory. X(i, j) gets constant expressions.
#define REP1(X, i, o) X(i, o)
#define REP2(X, i, o) REP1(X, i, o) REP1(X, i, o + 1)
#define REP4(X, i, o) REP2(X, i, o) REP2(X, i, o + 2)
#define REP8(X, i, o) REP4(X, i, o) REP4(X, i, o + 4)
#define REP16(X, i, o) REP8(X, i, o) REP8(X, i, o + 8)
#define REP32(X, i, o) REP16(X, i, o) REP16(X, i, o + 16)
#define IREP1(X, i, o) X(i, o)
#define IREP2(X, i, o) IREP1(X, i, o) IREP1(X, i, o + 1)
#define IREP4(X, i, o) IREP2(X, i, o) IREP2(X, i, o + 2)
#define IREP8(X, i, o) IREP4(X, i, o) IREP4(X, i, o + 4)
#define IREP16(X, i, o) IREP8(X, i, o) IREP8(X, i, o + 8)
#define IREP32(X, i, o) IREP16(X, i, o) IREP16(X, i, o + 16)
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
// an outer repetition (REPM) may contain an inner one (REPN), never the reverse
#define REPM(X, i) CAT(REP, TM)(X, i, 0)
#define REPN(X, i) CAT(IREP, TN)(X, i, 0)

void main() {
  int lane = int(gl_LocalInvocationID.x);
  int row0 = (int(gl_WorkGroupID.x) * LM + lane / LN) * TM;
  int col0 = (int(gl_WorkGroupID.y) * LN + lane % LN) * TN;
  int z = int(gl_WorkGroupID.z);
  int m = pc.m, n = pc.n;
  float alpha = pc.alpha, beta = pc.beta;

  // Rows past m read row m - 1 and columns past n read column n - 1 (their results are not stored).
  int ai[TM], bi[TN];
#define AIDX(_, i) ai[i] = pc.a_off + z * pc.a_bs + min(row0 + i, m - 1) * pc.a_rs;
#define BIDX(_, j) bi[j] = pc.b_off + z * pc.b_bs + min(col0 + j, n - 1) * pc.b_rs;
#define BLOAD(j, q) imageLoad(B, bi[j] + kk + q)
  REPM(AIDX, 0)
  REPN(BIDX, 0)
  float acc[TM][TN];
#define ZERO(i, j) acc[i][j] = 0.0;
#define ZROW(_, i) REPN(ZERO, i)
  REPM(ZROW, 0)

  // Each accumulator update inside llvmpipe's loops is a masked load/blend/store: KU vec4s along k are summed first.
  int kk = 0;
#if KU >= 2
  for (; kk + KU <= pc.k4; kk += KU) {
    vec4 bv[TN], bw[TN];
#define LOADB2(_, j) bv[j] = BLOAD(j, 0); bw[j] = BLOAD(j, 1);
    REPN(LOADB2, 0)
#if KU == 4
    vec4 bx[TN], by[TN];
#define LOADB4(_, j) bx[j] = BLOAD(j, 2); by[j] = BLOAD(j, 3);
    REPN(LOADB4, 0)
#define DOTU(i, j) acc[i][j] += (dot(av, bv[j]) + dot(aw, bw[j])) + (dot(ax, bx[j]) + dot(ay, by[j]));
#define AROWU(_, i) { vec4 av = imageLoad(A, ai[i] + kk), aw = imageLoad(A, ai[i] + kk + 1), \
                      ax = imageLoad(A, ai[i] + kk + 2), ay = imageLoad(A, ai[i] + kk + 3); REPN(DOTU, i) }
#else
#define DOTU(i, j) acc[i][j] += dot(av, bv[j]) + dot(aw, bw[j]);
#define AROWU(_, i) { vec4 av = imageLoad(A, ai[i] + kk), aw = imageLoad(A, ai[i] + kk + 1); REPN(DOTU, i) }
#endif
    REPM(AROWU, 0)
  }
#endif
  for (; kk < pc.k4; kk++) {
    vec4 bv[TN];
#define LOADB(_, j) bv[j] = BLOAD(j, 0);
    REPN(LOADB, 0)
#define DOT(i, j) acc[i][j] += dot(av, bv[j]);
#define AROW(_, i) { vec4 av = imageLoad(A, ai[i] + kk); REPN(DOT, i) }
    REPM(AROW, 0)
  }

  // Stores: each element of C once. (Every store is a per-lane loop in llvmpipe, ~20 cycles per store: it matters
  // for small k, hence the vec4 stores of C_VEC4.)
  int cb = pc.c_off + z * pc.c_bs;
#ifdef C_VEC4
  int crow[TM];
#define CROW4(_, i) crow[i] = cb + (row0 + i) * pc.c_rs + col0 / 4;
  REPM(CROW4, 0)
#define V4(i, q) vec4(acc[i][4 * (q)], acc[i][4 * (q) + 1], acc[i][4 * (q) + 2], acc[i][4 * (q) + 3])
#define STORE4(i, q) if (row0 + i < m && col0 + 4 * (q) < n) imageStore(C, crow[i] + (q), alpha * V4(i, q));
#define STORE4B(i, q) if (row0 + i < m && col0 + 4 * (q) < n) \
    imageStore(C, crow[i] + (q), alpha * V4(i, q) + beta * imageLoad(C, crow[i] + (q)));
#define Q4(X, i) CAT(IREP, TN4)(X, i, 0)
#define SROW4(_, i) Q4(STORE4, i)
#define SROW4B(_, i) Q4(STORE4B, i)
  if (beta == 0.0) {
    REPM(SROW4, 0)
  } else {
    REPM(SROW4B, 0)
  }
#else
  int crow[TM];
#define CROW(_, i) crow[i] = cb + (row0 + i) * pc.c_rs;
  REPM(CROW, 0)
  int ccol[TN];
#define CCOL(_, j) ccol[j] = (col0 + j) * pc.c_cs;
  REPN(CCOL, 0)
#define STORE(i, j) if (row0 + i < m && col0 + j < n) imageStore(C, crow[i] + ccol[j], vec4(alpha * acc[i][j]));
#define STOREB(i, j) if (row0 + i < m && col0 + j < n) \
    imageStore(C, crow[i] + ccol[j], vec4(alpha * acc[i][j] + beta * imageLoad(C, crow[i] + ccol[j]).x));
#define SROW(_, i) REPN(STORE, i)
#define SROWB(_, i) REPN(STOREB, i)
  if (beta == 0.0) {   // C may hold NaNs then: never read it
    REPM(SROW, 0)
  } else {
    REPM(SROWB, 0)
  }
#endif
}
