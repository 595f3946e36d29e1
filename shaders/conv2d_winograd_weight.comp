#version 450
// conv2d_winograd_weight.comp - Winograd F(4x4, 3x3) weight transform U = G g G^T (runtime/src/vulkan/conv_winograd.c).
// U is the A operand of the transformed product: for each of the 36 positions xi, `rows` lines of k4 vec4s along the
// reduction channels (zero past `k`), U[(xi * rows + r) * k4 + q]. With `flip` set the source is read as the weight
// of the equivalent forward convolution of a stride-1 input gradient: w'[r][k][ky][kx] = w[k][r][2 - ky][2 - kx].
// One invocation: one line r and 4 reduction channels, the transform done on vec4s (one lane per channel).
// Bindings: 0 U (rgba32f, written), 1 w (r32f).
layout(local_size_x = 64) in;
layout(binding = 0, rgba32f) uniform writeonly imageBuffer U;
layout(binding = 1, r32f) uniform readonly imageBuffer W;
layout(push_constant) uniform Params {
  uint rows, k, k4, w_off, flip;
} pc;

void main() {
  uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (id >= pc.rows * pc.k4) return;
  uint q = id % pc.k4, r = id / pc.k4;
  vec4 g[3][3];
  for (uint ky = 0u; ky < 3u; ky++)
    for (uint kx = 0u; kx < 3u; kx++) {
      vec4 v;
      for (uint e = 0u; e < 4u; e++) {
        uint kc = min(q * 4u + e, pc.k - 1u);
        uint idx = pc.flip != 0u ? ((kc * pc.rows + r) * 3u + (2u - ky)) * 3u + (2u - kx)
                                 : ((r * pc.k + kc) * 3u + ky) * 3u + kx;
        float x = imageLoad(W, int(pc.w_off + idx)).x;
        v[e] = q * 4u + e < pc.k ? x : 0.0;
      }
      g[ky][kx] = v;
    }
  // G (6 x 3) applied to the columns, then to the rows
  vec4 t[6][3];
  for (uint j = 0u; j < 3u; j++) {
    vec4 a = g[0][j], b = g[1][j], c = g[2][j];
    t[0][j] = a * 0.25;
    t[1][j] = (a + b + c) * (-1.0 / 6.0);
    t[2][j] = (a - b + c) * (-1.0 / 6.0);
    t[3][j] = a * (1.0 / 24.0) + b * (1.0 / 12.0) + c * (1.0 / 6.0);
    t[4][j] = a * (1.0 / 24.0) - b * (1.0 / 12.0) + c * (1.0 / 6.0);
    t[5][j] = c;
  }
  uint stride = pc.rows * pc.k4, base = r * pc.k4 + q;
  for (uint i = 0u; i < 6u; i++) {
    vec4 a = t[i][0], b = t[i][1], c = t[i][2];
    vec4 u[6];
    u[0] = a * 0.25;
    u[1] = (a + b + c) * (-1.0 / 6.0);
    u[2] = (a - b + c) * (-1.0 / 6.0);
    u[3] = a * (1.0 / 24.0) + b * (1.0 / 12.0) + c * (1.0 / 6.0);
    u[4] = a * (1.0 / 24.0) - b * (1.0 / 12.0) + c * (1.0 / 6.0);
    u[5] = c;
    for (uint j = 0u; j < 6u; j++) imageStore(U, int((i * 6u + j) * stride + base), u[j]);
  }
}
