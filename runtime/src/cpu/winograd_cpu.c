/* winograd_cpu.c - 3x3, stride-1 convolutions on the CPU by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray,
 * "Fast Algorithms for Convolutional Neural Networks", 2016), the way ncnn and NNPACK run VGG- and ResNet-style layers.
 *
 * Every 2x2 output tile is A^T [U .* V] A, with V = B^T d B from the tile's 4x4 input patch d and U = G g G^T from the
 * 3x3 kernel g: 16 products per tile instead of 36, so 2.25x fewer multiply-adds than im2col + sgemm. Summed over
 * input channels, the element-wise products become 16 independent GEMMs, one per position xi of the 4x4 transform:
 *     M[xi] (out channels x tiles) = U[xi] (out x in channels) @ V[xi] (in channels x tiles).
 * The transforms only add and halve (B, A: 0 and +-1; G: 0, 1/2, 1), so the result matches the direct sum to a few
 * float rounding steps (the tests compare both paths and PyTorch).
 *
 * Tiles of all images are numbered together (image, tile row, tile column), so a batch of small images fills the
 * GEMMs like one large image. Work goes in blocks of whole tile rows that keep V and M about cache-sized; in each
 * block the threads split the input transform over channels, the 16 GEMMs over xi (single-threaded OpenBLAS each) and
 * the output transform over output channels.
 *
 * The input gradient of a 3x3 stride-1 convolution with padding p is the same kind of convolution of the output
 * gradient with padding 2 - p and the kernels transposed (in <-> out) and rotated by 180 degrees: the same code. */
#include "cpu.h"
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { BLOCK_FLOATS = 1 << 19 };   /* floats of V (or M) per block: 2 MiB, half the L2 cache of one core here */
enum { BLOCK_MIN_TILES = 256 };    /* GEMMs narrower than this pay more for packing the weights than they gain */

/* One Winograd convolution: y (n x o x oh x ow) = conv3x3(x (n x c x h x w), U) + bias, padding ph, pw. */
typedef struct wino {
  int64_t n, c, h, w, o, oh, ow, ph, pw;
  int64_t th, tw;                  /* tile rows and columns per image */
  int64_t rows_per_block;          /* tile rows per block (of all n * th) */
} wino;

/* DPL_CPU_WINOGRAD=0 turns the Winograd path off (A/B timing; the tests compare both paths). Read on every call. */
static bool enabled(void) {
  return !dpl_env_is("DPL_CPU_WINOGRAD", "0");
}

/* Worth it: enough channels for the GEMMs, and 2x2 tiles that do not waste much on a ragged edge (a 3x3 output needs
 * 4 tiles, 16 outputs for 9). */
static bool worth_it(int64_t c, int64_t o, int64_t oh, int64_t ow) {
  int64_t th = (oh + 1) / 2, tw = (ow + 1) / 2;
  return c >= 8 && o >= 8 && 4 * th * tw * 2 <= 3 * oh * ow;
}

static bool plain3x3(const dpl_conv2d_args *a) {
  return a->kh == 3 && a->kw == 3 && a->stride_h == 1 && a->stride_w == 1 && a->dil_h == 1 && a->dil_w == 1 &&
         a->groups == 1;
}

bool dpl_cpu_winograd_forward_applies(const dpl_conv2d_args *a) {
  return enabled() && plain3x3(a) && worth_it(a->c, a->o, a->oh, a->ow);
}

bool dpl_cpu_winograd_backward_input_applies(const dpl_conv2d_args *a) {
  return enabled() && plain3x3(a) && a->pad_h <= 2 && a->pad_w <= 2 && worth_it(a->o, a->c, a->h, a->w);
}

enum { LANES = 16 };   /* kernels transformed together: one AVX-512 vector of each U entry */

/* u[xi][i] = (G g_i G^T)[xi] for the n <= LANES kernels g[k][i]; G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] */
static void kernel_transform(const float g[9][LANES], float u[16][LANES]) {
  float t[4][3][LANES];
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < LANES; i++) {
      t[0][j][i] = g[j][i];
      t[1][j][i] = 0.5f * (g[j][i] + g[3 + j][i] + g[6 + j][i]);
      t[2][j][i] = 0.5f * (g[j][i] - g[3 + j][i] + g[6 + j][i]);
      t[3][j][i] = g[6 + j][i];
    }
  for (int r = 0; r < 4; r++)
    for (int i = 0; i < LANES; i++) {
      u[4 * r + 0][i] = t[r][0][i];
      u[4 * r + 1][i] = 0.5f * (t[r][0][i] + t[r][1][i] + t[r][2][i]);
      u[4 * r + 2][i] = 0.5f * (t[r][0][i] - t[r][1][i] + t[r][2][i]);
      u[4 * r + 3][i] = t[r][2][i];
    }
}

/* U[xi] (rows x cols, xi = 0..15) from the weights W (o x c x 3 x 3). forward: rows = o, cols = c, U[xi][o][c] =
 * W[o][c] transformed; transposed: rows = c, cols = o, U[xi][c][o] = W[o][c] rotated by 180 degrees, transformed.
 * LANES consecutive entries of a row are transformed together, so each U[xi] row is written in whole vectors. */
static void transform_weights(const float *W, int64_t o, int64_t c, bool transposed, float *U, int threads) {
  const int64_t rows = transposed ? c : o, cols = transposed ? o : c, plane = o * c;
  #pragma omp parallel for if (plane >= 4096) num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j0 = 0; j0 < cols; j0 += LANES) {
      const int64_t n = cols - j0 < LANES ? cols - j0 : LANES;
      float g[9][LANES] = {{0}}, u[16][LANES];
      for (int64_t i = 0; i < n; i++) {
        const float *k = transposed ? W + ((j0 + i) * c + r) * 9 : W + (r * c + j0 + i) * 9;
        for (int e = 0; e < 9; e++) g[e][i] = transposed ? k[8 - e] : k[e];
      }
      kernel_transform(g, u);
      for (int xi = 0; xi < 16; xi++) memcpy(U + xi * plane + r * cols + j0, u[xi], sizeof(float) * (size_t)n);
    }
}

/* V[xi][ch][t] for one channel and the tile rows [r0, r1) of the block (tile t = (r - r0) * tw + tx). `pad` holds
 * 8 rows of L = 2 * tw + 2 floats: the 4 input rows of a tile row with their zero padding, then B^T applied down
 * the columns; B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] is then applied along each row, tile by tile. */
static void input_transform(const wino *g, const float *restrict X, int64_t ch, int64_t r0, int64_t r1,
                            float *restrict V, int64_t ldv, float *restrict pad) {
  const int64_t L = 2 * g->tw + 2, plane = ldv * g->c, tw = g->tw;
  float *restrict d = pad, *restrict e = pad + 4 * L;
  for (int64_t r = r0; r < r1; r++) {
    int64_t img = r / g->th, ty = r % g->th;
    const float *x = X + (img * g->c + ch) * g->h * g->w;
    for (int i = 0; i < 4; i++) {
      float *p = d + i * L;
      int64_t iy = 2 * ty - g->ph + i;
      memset(p, 0, sizeof(float) * (size_t)L);
      if (iy < 0 || iy >= g->h) continue;
      int64_t n = g->w;   /* input column ix lands at pad position ix + pw */
      if (g->pw + n > L) n = L - g->pw;
      if (n > 0) memcpy(p + g->pw, x + iy * g->w, sizeof(float) * (size_t)n);
    }
    for (int64_t k = 0; k < L; k++) {
      e[k] = d[k] - d[2 * L + k];
      e[L + k] = d[L + k] + d[2 * L + k];
      e[2 * L + k] = d[2 * L + k] - d[L + k];
      e[3 * L + k] = d[L + k] - d[3 * L + k];
    }
    float *v = V + ch * ldv + (r - r0) * tw;
    for (int i = 0; i < 4; i++) {
      const float *restrict a = e + i * L;
      float *restrict v0 = v + (4 * i) * plane, *restrict v1 = v0 + plane, *restrict v2 = v1 + plane,
                      *restrict v3 = v2 + plane;
      for (int64_t tx = 0; tx < tw; tx++) {
        v0[tx] = a[2 * tx] - a[2 * tx + 2];
        v1[tx] = a[2 * tx + 1] + a[2 * tx + 2];
        v2[tx] = a[2 * tx + 2] - a[2 * tx + 1];
        v3[tx] = a[2 * tx + 1] - a[2 * tx + 3];
      }
    }
  }
}

/* Y's output channel oc for the tile rows [r0, r1) from M[xi][oc][t], y = A^T m A with A^T = [1 1 1 0; 0 1 -1 -1],
 * plus the bias. `row` holds 8 rows of 2 * tw floats: A^T applied down the columns (4 x 2 rows), then the 2 output
 * rows. */
static void output_transform(const wino *g, const float *restrict M, int64_t ldm, int64_t oc, float bias, int64_t r0,
                             int64_t r1, float *restrict Y, float *restrict row) {
  const int64_t tw = g->tw, plane = ldm * g->o;
  float *restrict s = row, *restrict y0 = row + 8 * tw, *restrict y1 = y0 + 2 * tw;
  for (int64_t r = r0; r < r1; r++) {
    int64_t img = r / g->th, ty = r % g->th;
    const float *m = M + oc * ldm + (r - r0) * tw;
    for (int k = 0; k < 4; k++) {
      const float *restrict m0 = m + k * plane, *restrict m1 = m0 + 4 * plane, *restrict m2 = m1 + 4 * plane,
                  *restrict m3 = m2 + 4 * plane;
      float *restrict s0 = s + k * tw, *restrict s1 = s + (4 + k) * tw;
      for (int64_t tx = 0; tx < tw; tx++) {
        s0[tx] = m0[tx] + m1[tx] + m2[tx];
        s1[tx] = m1[tx] - m2[tx] - m3[tx];
      }
    }
    for (int h = 0; h < 2; h++) {
      const float *restrict a0 = s + 4 * h * tw, *restrict a1 = a0 + tw, *restrict a2 = a1 + tw, *restrict a3 = a2 + tw;
      float *restrict yr = h ? y1 : y0;
      for (int64_t tx = 0; tx < tw; tx++) {
        yr[2 * tx] = a0[tx] + a1[tx] + a2[tx] + bias;
        yr[2 * tx + 1] = a1[tx] - a2[tx] - a3[tx] + bias;
      }
    }
    float *y = Y + (img * g->o + oc) * g->oh * g->ow;
    for (int h = 0; h < 2; h++) {
      int64_t oy = 2 * ty + h;
      if (oy < g->oh) memcpy(y + oy * g->ow, h ? y1 : y0, sizeof(float) * (size_t)g->ow);
    }
  }
}

/* y = conv3x3(x, U) + bias with the geometry g; U: [16][o][c] */
static int run(wino *g, const float *X, const float *U, const float *bias, float *Y) {
  g->th = (g->oh + 1) / 2;
  g->tw = (g->ow + 1) / 2;
  int64_t widest = g->c > g->o ? g->c : g->o;
  int64_t tiles = BLOCK_FLOATS / (16 * widest);
  if (tiles < BLOCK_MIN_TILES) tiles = BLOCK_MIN_TILES;
  g->rows_per_block = tiles / g->tw > 0 ? tiles / g->tw : 1;
  const int64_t all_rows = g->n * g->th;
  if (g->rows_per_block > all_rows) g->rows_per_block = all_rows;
  const int64_t ld = g->rows_per_block * g->tw;   /* tiles in a full block: the row length of V and M */
  const int threads = dpl_cpu_threads();
  const size_t v_floats = (size_t)(16 * g->c * ld), m_floats = (size_t)(16 * g->o * ld);
  const size_t scratch_floats = (size_t)(16 * g->tw + 16);   /* per thread: input_transform's or output_transform's rows */
  float *V = dpl_host_alloc(sizeof(float) * v_floats);
  float *M = dpl_host_alloc(sizeof(float) * m_floats);
  float *scratch = dpl_host_alloc(sizeof(float) * scratch_floats * (size_t)threads);
  if (!V || !M || !scratch) {
    dpl_host_free(V, sizeof(float) * v_floats);
    dpl_host_free(M, sizeof(float) * m_floats);
    dpl_host_free(scratch, sizeof(float) * scratch_floats * (size_t)threads);
    return dpl_fail(DPL_ERR_OUT_OF_MEMORY, "conv2d: out of host memory for the Winograd buffers");
  }
  #pragma omp parallel num_threads(threads)
  {
    float *mine = scratch + scratch_floats * (size_t)omp_get_thread_num();
    for (int64_t r0 = 0; r0 < all_rows; r0 += g->rows_per_block) {
      const int64_t r1 = r0 + g->rows_per_block < all_rows ? r0 + g->rows_per_block : all_rows;
      const int64_t nt = (r1 - r0) * g->tw;   /* tiles in this block (the last may be short) */
      #pragma omp for schedule(static)
      for (int64_t ch = 0; ch < g->c; ch++) input_transform(g, X, ch, r0, r1, V, ld, mine);
      #pragma omp for schedule(static)
      for (int xi = 0; xi < 16; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->o, (int)nt, (int)g->c, 1.0f,
                    U + (size_t)xi * (size_t)(g->o * g->c), (int)g->c, V + (size_t)xi * (size_t)(g->c * ld), (int)ld,
                    0.0f, M + (size_t)xi * (size_t)(g->o * ld), (int)ld);
      #pragma omp for schedule(static)
      for (int64_t oc = 0; oc < g->o; oc++)
        output_transform(g, M, ld, oc, bias ? bias[oc] : 0.0f, r0, r1, Y, mine);
    }
  }
  dpl_host_free(V, sizeof(float) * v_floats);
  dpl_host_free(M, sizeof(float) * m_floats);
  dpl_host_free(scratch, sizeof(float) * scratch_floats * (size_t)threads);
  return DPL_OK;
}

/* ---- the transformed kernels, cached per weight tensor (cpu/kernel_cache.c) ---------------------------------- */
typedef struct wino_call {
  wino *g;
  const float *X, *bias;
  float *Y;
  int64_t wo, wc;                  /* the weights: wo x wc x 3 x 3 */
  bool transposed;
} wino_call;

static void derive_u(const float *W, float *U, void *ctx) {
  const wino_call *c = ctx;
  transform_weights(W, c->wo, c->wc, c->transposed, U, dpl_cpu_threads());
}

static int use_u(const float *U, void *ctx) {
  const wino_call *c = ctx;
  return run(c->g, c->X, U, c->bias, c->Y);
}

/* y = conv3x3(x, the weights wt transformed) + bias. The weights are o' x c' x 3 x 3 with o' = g->o (forward) or
 * o' = g->c (transposed: the input gradient). */
static int with_weights(wino *g, const float *X, const dpl_tensor *wt, bool transposed, const float *bias, float *Y) {
  wino_call c = {.g = g, .X = X, .bias = bias, .Y = Y, .wo = transposed ? g->c : g->o, .wc = transposed ? g->o : g->c,
                 .transposed = transposed};
  return dpl_cpu_with_derived(wt, transposed ? DPL_DERIVED_WINOGRAD_T : DPL_DERIVED_WINOGRAD, 0,
                              16 * (size_t)(c.wo * c.wc), derive_u, use_u, &c);
}

int dpl_cpu_winograd_forward(const dpl_conv2d_args *a) {
  wino g = {.n = a->n, .c = a->c, .h = a->h, .w = a->w, .o = a->o, .oh = a->oh, .ow = a->ow,
            .ph = a->pad_h, .pw = a->pad_w};
  const float *X = a->input->storage->host + a->input->offset;
  const float *B = a->bias ? a->bias->storage->host + a->bias->offset : NULL;
  float *Y = a->output->storage->host + a->output->offset;
  return with_weights(&g, X, a->weight, false, B, Y);
}

/* grad input (n x c x h x w) = conv3x3(grad output (n x o x oh x ow), W transposed and rotated, padding 2 - p) */
int dpl_cpu_winograd_backward_input(const dpl_conv2d_args *a) {
  wino g = {.n = a->n, .c = a->o, .h = a->oh, .w = a->ow, .o = a->c, .oh = a->h, .ow = a->w,
            .ph = 2 - a->pad_h, .pw = 2 - a->pad_w};
  const float *GY = a->output->storage->host + a->output->offset;
  float *GX = a->input->storage->host + a->input->offset;
  return with_weights(&g, GY, a->weight, true, NULL, GX);
}
