#version 450
// random.comp - Philox4x32-10 random numbers, the GLSL twin of runtime/src/random.c (same counter, key and
// conversion, so both backends produce the same values). DIST 0: uniform [a, b); 1: normal (mean a, std b).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int DIST = 0;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Params {
  uint n, out_off, seed_lo, seed_hi, offset_lo, offset_hi;
  float a, b;
} pc;

uvec4 philox(uvec4 c, uvec2 k) {
  for (int round = 0; round < 10; round++) {
    uint hi0, lo0, hi1, lo1;
    umulExtended(0xD2511F53u, c.x, hi0, lo0);
    umulExtended(0xCD9E8D57u, c.z, hi1, lo1);
    c = uvec4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k += uvec2(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}

float unit24(uint w) { return float(w >> 8) * (1.0 / 16777216.0); }

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  if (i >= pc.n) return;
  uint lo = pc.offset_lo + i;
  uint hi = pc.offset_hi + (lo < i ? 1u : 0u);
  uvec4 w = philox(uvec4(lo, hi, 0u, 0u), uvec2(pc.seed_lo, pc.seed_hi));
  float v;
  if (DIST == 0) {
    v = pc.a + (pc.b - pc.a) * unit24(w.x);
  } else {
    float u1 = unit24(w.x) + 1.0 / 16777216.0, u2 = unit24(w.y);
    v = pc.a + pc.b * sqrt(-2.0 * log(u1)) * cos(6.28318530717958647692 * u2);
  }
  y[pc.out_off + i] = v;
}
