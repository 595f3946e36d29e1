// conv2d.glsl - push constants and helpers shared by conv2d.comp, conv2d_backward_input.comp,
// conv2d_backward_weight.comp and conv2d_tiled.comp (host side: runtime/src/vulkan/conv_vulkan.c and conv_tiled.c,
// struct conv_params). All tensors are contiguous NCHW / OIHW; the *_off fields are element offsets of each tensor
// within its binding. Bindings 1 and 2 are the two operands read (which ones depends on the op: see each shader);
// with CONV_OWN_BINDINGS defined the includer declares them itself.
layout(push_constant) uniform ConvParams {
  uint n, c, h, w;          // images in this dispatch, input channels, input height and width
  uint o, oh, ow, groups;   // output channels, output height and width, groups
  uint kh, kw, sh, sw;      // kernel size, stride
  uint ph, pw, dh, dw;      // padding, dilation
  uint out_off, a_off, b_off, bias_off;
  uint flags;               // bit 0: add bias (forward); bit 1: add to the output's values (backward weight);
                            // bits 8..15: the activation (forward; activation.glsl)
  uint row0, row1;          // backward weight: the output rows [row0, row1) of each image summed by this dispatch
  uint splits, kchunk;      // conv2d_tiled.comp, backward weight: the pixel sum split in `splits` slices of kchunk
} pc;

// Reads go through r32f storage texel buffers (imageLoad: inlined and branch-free on llvmpipe) in the *_texel
// variants, through plain SSBOs otherwise.
#ifdef CONV_OWN_BINDINGS
#elif defined(TEXEL)
layout(binding = 1, r32f) uniform readonly imageBuffer SrcA;
layout(binding = 2, r32f) uniform readonly imageBuffer SrcB;
#define LOAD_A(i) imageLoad(SrcA, int(i)).x
#define LOAD_B(i) imageLoad(SrcB, int(i)).x
#else
layout(std430, binding = 1) readonly buffer SrcABuf { float src_a[]; };
layout(std430, binding = 2) readonly buffer SrcBBuf { float src_b[]; };
#define LOAD_A(i) src_a[i]
#define LOAD_B(i) src_b[i]
#endif

// flat index of this invocation in a 2-D grid of 1-D workgroups (the x count is capped at 65535)
uint conv_flat_index() {
  return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}
