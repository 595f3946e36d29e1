/* gemm_cpu.c - the CPU backend's one thread pool: OpenMP. OpenBLAS runs single-threaded inside our threads, and a
 * large product is split over the OpenMP threads here. Two pools (OpenBLAS's pthreads and OpenMP's) on the same cores
 * fight: each pool's idle threads spin for a while after their work, so an OpenMP loop right after an sgemm (im2col,
 * ReLU, pooling) waits for a core that an idle OpenBLAS thread is spinning on, and the other way round; on a 2-core
 * machine that cost 8 ms per op (an OS time slice) and made VGG-16 3x slower. */
#include "cpu.h"
#include <cblas.h>
#include <omp.h>

enum { GEMM_PAR_MIN = 1 << 18 };      /* m*n*k below which one thread is faster */
enum { GEMM_ALIGN = 16 };             /* split points fall on multiples of this (the kernels' panel widths) */

void dpl_cpu_blas_init(void) { openblas_set_num_threads(1); }

int dpl_cpu_threads(void) { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

/* The part [lo, hi) of [0, n) that thread t of nt takes, cut at multiples of GEMM_ALIGN. */
static void split(int64_t n, int t, int nt, int64_t *lo, int64_t *hi) {
  int64_t blocks = (n + GEMM_ALIGN - 1) / GEMM_ALIGN;
  *lo = blocks * t / nt * GEMM_ALIGN;
  *hi = blocks * (t + 1) / nt * GEMM_ALIGN;
  if (*lo > n) *lo = n;
  if (*hi > n) *hi = n;
}

void dpl_cpu_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  int nt = dpl_cpu_threads();
  if (nt < 2 || m * n * k < GEMM_PAR_MIN) {
    cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    return;
  }
  bool by_cols = n >= m;           /* split the larger side: each thread packs its share of it once */
  #pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    int64_t lo, hi;
    split(by_cols ? n : m, t, T, &lo, &hi);
    if (hi > lo) {
      if (by_cols)
        cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)(hi - lo), (int)k, alpha, A, (int)lda,
                    trans_b ? B + lo * ldb : B + lo, (int)ldb, beta, C + lo, (int)ldc);
      else
        cblas_sgemm(CblasRowMajor, ta, tb, (int)(hi - lo), (int)n, (int)k, alpha, trans_a ? A + lo : A + lo * lda,
                    (int)lda, B, (int)ldb, beta, C + lo * ldc, (int)ldc);
    }
  }
}
