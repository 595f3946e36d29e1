#version 450
// matmul_pack.comp - copies a batch of strided rows x cols matrices into the packed operand layout of
// matmul_texel.comp: each row becomes cols4 = ceil(cols / 4) vec4s (zero-padded), rows contiguous, batches dst_bs
// vec4s apart. The source is read through an r32f storage texel buffer, the destination written through rgba32f.
// One invocation writes one vec4; invocations are flattened over gl_WorkGroupID.x/y, gl_WorkGroupID.z is the batch.
layout(local_size_x = 64) in;
layout(binding = 0, rgba32f) uniform writeonly imageBuffer Dst;
layout(binding = 1, r32f) uniform readonly imageBuffer Src;
layout(push_constant) uniform Params {
  int rows, cols, cols4;
  int src_off, src_rs, src_cs, src_bs;
  int dst_off, dst_bs;
} pc;

void main() {
  int i = int(gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x);
  if (i >= pc.rows * pc.cols4) return;
  int r = i / pc.cols4, q = i - r * pc.cols4;
  int z = int(gl_WorkGroupID.z);
  int base = pc.src_off + z * pc.src_bs + r * pc.src_rs;
  vec4 v;
  for (int e = 0; e < 4; e++) {
    int col = q * 4 + e;
    float x = imageLoad(Src, base + min(col, pc.cols - 1) * pc.src_cs).x;
    v[e] = col < pc.cols ? x : 0.0;
  }
  imageStore(Dst, pc.dst_off + z * pc.dst_bs + i, v);
}
