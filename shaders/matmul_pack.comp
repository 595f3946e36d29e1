#version 450
// matmul_pack.comp - copies a batch of strided rows x cols matrices into the packed operand layout of
// matmul_texel.comp: each row becomes cols4 = ceil(cols / 4) vec4s (zero-padded past cols), rows dst_rs vec4s apart,
// batches dst_bs vec4s apart (the host may pack a wide matrix in column blocks, so dst_rs >= cols4). The source is
// read through an r32f storage texel buffer, the destination written through an rgba32f one. One invocation writes
// one vec4. A workgroup covers 16 rows x 4 vec4s (16 source columns), so that its reads and writes stay within a few
// cache lines whichever source dim is contiguous (reading a transposed matrix column by column, with a power-of-two
// stride, thrashes the caches); gl_WorkGroupID.x/y/z index column blocks, row blocks and batches.
layout(local_size_x = 64) in;
layout(binding = 0, rgba32f) uniform writeonly imageBuffer Dst;
layout(binding = 1, r32f) uniform readonly imageBuffer Src;
layout(push_constant) uniform Params {
  int rows, cols, cols4;
  int src_off, src_rs, src_cs, src_bs;
  int dst_off, dst_rs, dst_bs;
} pc;

void main() {
  int l = int(gl_LocalInvocationID.x);
  int r = int(gl_WorkGroupID.y) * 16 + l % 16, q = int(gl_WorkGroupID.x) * 4 + l / 16;
  if (r >= pc.rows || q >= pc.cols4) return;
  int z = int(gl_WorkGroupID.z);
  int base = pc.src_off + z * pc.src_bs + r * pc.src_rs;
  vec4 v;
  for (int e = 0; e < 4; e++) {
    int col = q * 4 + e;
    float x = imageLoad(Src, base + min(col, pc.cols - 1) * pc.src_cs).x;
    v[e] = col < pc.cols ? x : 0.0;
  }
  imageStore(Dst, pc.dst_off + z * pc.dst_bs + r * pc.dst_rs + q, v);
}
