// eltwise.glsl - push constants and strided indexing shared by the elementwise shaders (copy, fill, binary, unary,
// where). The host coalesces dims first (runtime/src/tensor.c: dpl_iter_build), so most ops arrive here with one or
// two dims; up to 4 dims and 4 operands fit the 128-byte push-constant block. Operand 0 is the output.
layout(push_constant) uniform EltwiseParams {
  uint numel;
  uint ndim;
  float p0;
  float p1;
  uint shape[4];
  uint offset[4];
  int stride[16];   // stride[operand * 4 + dim], in elements
} pc;

// flat index of this invocation in a 2-D grid of 1-D workgroups (the x count is capped at 65535)
uint flat_index() {
  return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}

// element offset of operand `op` for flat index i (row-major over pc.shape)
uint operand_offset(uint op, uint i) {
  int off = int(pc.offset[op]);
  for (int d = int(pc.ndim) - 1; d >= 0; d--) {
    uint s = pc.shape[d];
    uint idx = i % s;
    i /= s;
    off += int(idx) * pc.stride[op * 4 + d];
  }
  return uint(off);
}
