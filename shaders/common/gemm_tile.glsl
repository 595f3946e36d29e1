// gemm_tile.glsl - the workgroup-tiled matrix product shared by matmul_tiled.comp and conv2d_tiled.comp (the GPU
// kernels; docs/vulkan.md). A workgroup computes a BM x BN block of C = A B (A: m x k, B: k x n) walking k in slices
// of BK: each slice of A (BM x BK) and B (BK x BN) is staged in shared memory by all threads together, 4 elements at
// a time (the includer's loaders return them as a vec4, from one vector load where the layout allows), then every
// thread accumulates its TM x TN register block from shared memory. Threads: (BM / TM) x (BN / TN).
//
// The includer defines, before including:
//   vec4 load_a4(uint z, uint row, uint k)   A[row][k .. k + 3], zero outside m x k
//   vec4 load_b4(uint z, uint k, uint col)   B[k][col .. col + 3], zero outside k x n
// and after it calls gemm_tile(z, row0, col0, k0, k1) for its block and stores acc (acc[i * TN + j] is row
// row0 + tile_row() * TM + i, column col0 + tile_col() * TN + j).
// HALF_TILES (the *_half shader variants, --precision fp16): the shared tiles hold float16 (half the shared memory
// and its traffic); the products are accumulated in float32.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;
// padding of a shared row (in floats), so that threads reading a column do not all hit one bank
layout(constant_id = 6) const uint PAD = 4;

#ifdef HALF_TILES   // the includer enables GL_EXT_shader_explicit_arithmetic_types_float16
#define TILE_T float16_t
#else
#define TILE_T float
#endif
shared TILE_T As[BK * (BM + PAD)];   // k-major: As[kk * (BM + PAD) + row]
shared TILE_T Bs[BK * (BN + PAD)];   // Bs[kk * (BN + PAD) + col]

vec4 load_a4(uint z, uint row, uint k);
vec4 load_b4(uint z, uint k, uint col);

float acc[TM * TN];
uint tile_row() { return gl_LocalInvocationID.x / (BN / TN); }
uint tile_col() { return gl_LocalInvocationID.x % (BN / TN); }

// acc[i * TN + j] = sum over k in [k0, k1) of A[row0 + tile_row() * TM + i][k] B[k][col0 + tile_col() * TN + j]
void gemm_tile(uint z, uint row0, uint col0, uint k0, uint k1) {
  uint tid = gl_LocalInvocationID.x, nthreads = (BM / TM) * (BN / TN);
  uint tr = tile_row(), tc = tile_col();
  for (uint i = 0u; i < TM * TN; i++) acc[i] = 0.0;
  for (uint kb = k0; kb < k1; kb += BK) {
    // stage A (BM rows x BK/4 quads along k) and B (BK rows x BN/4 quads along n)
    for (uint q = tid; q < BM * (BK / 4u); q += nthreads) {
      uint r = q / (BK / 4u), kq = (q % (BK / 4u)) * 4u;
      vec4 v = kb + kq < k1 ? load_a4(z, row0 + r, kb + kq) : vec4(0.0);
      // a quad may straddle k1 (k1 not a multiple of 4): what lies past k1 belongs to the next split, not here
      for (uint e = 0u; e < 4u; e++) As[(kq + e) * (BM + PAD) + r] = TILE_T(kb + kq + e < k1 ? v[e] : 0.0);
    }
    for (uint q = tid; q < BK * (BN / 4u); q += nthreads) {
      uint kr = q / (BN / 4u), cq = (q % (BN / 4u)) * 4u;
      vec4 v = kb + kr < k1 ? load_b4(z, kb + kr, col0 + cq) : vec4(0.0);
      for (uint e = 0u; e < 4u; e++) Bs[kr * (BN + PAD) + cq + e] = TILE_T(v[e]);
    }
    barrier();
    for (uint kk = 0u; kk < BK; kk++) {
      float a[TM], b[TN];
      for (uint i = 0u; i < TM; i++) a[i] = float(As[kk * (BM + PAD) + tr * TM + i]);
      for (uint j = 0u; j < TN; j++) b[j] = float(Bs[kk * (BN + PAD) + tc * TN + j]);
      for (uint i = 0u; i < TM; i++)
        for (uint j = 0u; j < TN; j++) acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]);
    }
    barrier();
  }
}
