/* random.c - Philox4x32-10, the counter-based generator behind dpl_tensor_random (Salmon et al., SC'11).
 * Element i of a random tensor uses counter (i_lo, i_hi, 0, 0) and key (seed_lo, seed_hi), so any backend computes
 * the same value for the same element independently. shaders/random.comp is the GLSL twin of this file. */
#include "internal.h"
#include <math.h>

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  *lo = (uint32_t)p;
}

void dpl_philox4x32(uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(0xD2511F53u, c0, &hi0, &lo0);
    mulhilo(0xCD9E8D57u, c2, &hi1, &lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* uniform in [0,1) from the top 24 bits: exact in float on every backend */
static inline float unit24(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

float dpl_random_value(int dist, float a, float b, uint64_t seed, uint64_t index) {
  uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), 0, 0}, key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  uint32_t w[4];
  dpl_philox4x32(ctr, key, w);
  if (dist == 0) return a + (b - a) * unit24(w[0]);
  /* Box-Muller with u1 in (0,1] */
  float u1 = unit24(w[0]) + (1.0f / 16777216.0f), u2 = unit24(w[1]);
  float r = sqrtf(-2.0f * logf(u1));
  return a + b * r * cosf(6.28318530717958647692f * u2);
}
