#version 450
// conv2d_winograd_input.comp - Winograd F(4x4, 3x3) input transform V = B^T d B (runtime/src/vulkan/conv_winograd.c).
// The output is tiled in 4 x 4 blocks (th x tw tiles per image, tiles numbered over the images of the dispatch); tile
// t reads the 6 x 6 input patch at (4 ty - pad_h, 4 tx - pad_w), zero outside the image. V is the B operand of the
// transformed product, stored transposed: for each of the 36 positions xi, one line per tile of c4 vec4s along the
// channels (zero past c), V[v_off + (xi * lines + t) * c4 + q] (lines >= tiles: the host pads them). One invocation: one tile and 4 channels, the transform done
// on vec4s (one lane per channel), written as 36 vec4 stores.
// Bindings: 0 V (rgba32f, written), 1 x (r32f).
layout(local_size_x = 64) in;
layout(binding = 0, rgba32f) uniform writeonly imageBuffer V;
layout(binding = 1, r32f) uniform readonly imageBuffer X;
layout(push_constant) uniform Params {
  uint tiles, c, h, w, c4;
  uint th, tw, x_off;
  int pad_h, pad_w;
  uint lines, v_off;
} pc;

void main() {
  uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (id >= pc.tiles * pc.c4) return;
  uint q = id % pc.c4, t = id / pc.c4;
  uint img = t / (pc.th * pc.tw), r = t % (pc.th * pc.tw);
  int y0 = int(r / pc.tw) * 4 - pc.pad_h, x0 = int(r % pc.tw) * 4 - pc.pad_w;
  uint hw = pc.h * pc.w;
  uint cbase[4];
  bool cok[4];
  for (uint e = 0u; e < 4u; e++) {
    uint ch = q * 4u + e;
    cok[e] = ch < pc.c;
    cbase[e] = pc.x_off + (img * pc.c + min(ch, pc.c - 1u)) * hw;
  }
  vec4 d[6][6];
  for (uint i = 0u; i < 6u; i++) {
    int y = y0 + int(i);
    bool yok = y >= 0 && y < int(pc.h);
    uint yoff = uint(clamp(y, 0, int(pc.h) - 1)) * pc.w;
    for (uint j = 0u; j < 6u; j++) {
      int x = x0 + int(j);
      bool ok = yok && x >= 0 && x < int(pc.w);
      uint off = yoff + uint(clamp(x, 0, int(pc.w) - 1));
      vec4 v;
      for (uint e = 0u; e < 4u; e++) {
        float s = imageLoad(X, int(cbase[e] + off)).x;
        v[e] = ok && cok[e] ? s : 0.0;
      }
      d[i][j] = v;
    }
  }
  // B^T applied to the columns, then to the rows
  vec4 s[6][6];
  for (uint j = 0u; j < 6u; j++) {
    vec4 d0 = d[0][j], d1 = d[1][j], d2 = d[2][j], d3 = d[3][j], d4 = d[4][j], d5 = d[5][j];
    s[0][j] = 4.0 * d0 - 5.0 * d2 + d4;
    s[1][j] = -4.0 * (d1 + d2) + d3 + d4;
    s[2][j] = 4.0 * (d1 - d2) - d3 + d4;
    s[3][j] = 2.0 * (d3 - d1) - d2 + d4;
    s[4][j] = 2.0 * (d1 - d3) - d2 + d4;
    s[5][j] = 4.0 * d1 - 5.0 * d3 + d5;
  }
  uint stride = pc.lines * pc.c4, base = pc.v_off + t * pc.c4 + q;
  for (uint i = 0u; i < 6u; i++) {
    vec4 d0 = s[i][0], d1 = s[i][1], d2 = s[i][2], d3 = s[i][3], d4 = s[i][4], d5 = s[i][5];
    vec4 u[6];
    u[0] = 4.0 * d0 - 5.0 * d2 + d4;
    u[1] = -4.0 * (d1 + d2) + d3 + d4;
    u[2] = 4.0 * (d1 - d2) - d3 + d4;
    u[3] = 2.0 * (d3 - d1) - d2 + d4;
    u[4] = 2.0 * (d1 - d3) - d2 + d4;
    u[5] = 4.0 * d1 - 5.0 * d3 + d5;
    for (uint j = 0u; j < 6u; j++) imageStore(V, int((i * 6u + j) * stride + base), u[j]);
  }
}
