// The Lanczos norm estimates of gradflow/terms.py in one pass (included by bptt.cpp, after its
// vector helpers load / store / over_row and `check`).
//
// lstm_term_norms: for each item n (a step of a sequence) the largest singular value of four
// H x H operators, by Golub-Kahan-Lanczos (spectral.lanczos_norm's algorithm: k steps, no
// reorthogonalisation, divisions by a norm clamped to the smallest normal number):
//   M_g = diag(alpha_g) U_g diag(beta)   g = i, f, g (the article's C, A, D)
//   J   = diag(f) + sum_g M_g            (their sum with B = diag(f))
// from one start vector per operator, the same for every item. The items are independent:
// each thread runs all k steps on its own block of rows sized to stay in cache, with
// one-thread GEMMs per gate (no synchronisation between steps). Each step is
//   u = M v - beta_{j-1} u_prev,  alpha_j = |u|,  u /= alpha_j
//   w = M^T u - alpha_j v,        beta_j = |w|,   v = w / beta_j
// and the estimate is sqrt(lambda_max(B_k^T B_k)), B_k upper bidiagonal (alpha, beta).
//
// tridiagonal_max: lambda_max of symmetric tridiagonal matrices (diagonal d, off-diagonal e)
// by Laguerre's method on the characteristic polynomial, one matrix per vector lane. The
// polynomial's roots are real, so from the Gershgorin upper bound the iterates decrease
// monotonically to the largest root (cubically for a simple root), and G = sum 1/(x - lambda_i)
// bounds the distance: x - lambda_max <= k / G. The derivatives come from the LDL^T pivots
// q_j of T - x I (q_j < 0 for all j exactly when x is above every eigenvalue).

#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "gemm.h"

namespace {

// The eigenvalue is returned once k / G <= kLaguerreRelative |x| + kLaguerreAbsolute ||T||:
// within 1e-12 relative, or at the rounding level of T's entries.
constexpr double kLaguerreRelative = 1e-12;
constexpr double kLaguerreAbsolute = 1e-15;
constexpr int kLaguerreMaxSteps = 200;  // a cluster of eigenvalues converges linearly

// lambda_max of n matrices: d (n, k), e (n, k-1) row-major, into out (n,). Lanes beyond n
// hold the zero matrix.
inline void tridiagonal_max(const double* d, const double* e, int64_t n, int64_t k,
                            double* out) {
  using V = Vec<double>;
  constexpr int64_t L = V::size();
  const V zero(0), one(1), all = zero == zero, tiny(std::numeric_limits<double>::min());
  std::vector<V> dv(k), e2v(std::max<int64_t>(k - 1, 0));
  alignas(64) double lane[L];
  for (int64_t i0 = 0; i0 < n; i0 += L) {
    const int64_t m = std::min(L, n - i0);
    auto gather = [&](const double* x, int64_t width, int64_t j) {
      for (int64_t l = 0; l < L; ++l) lane[l] = l < m ? x[(i0 + l) * width + j] : 0.0;
      return V::loadu(lane);
    };
    V lo = zero, hi = zero, scale = zero;  // max d, max (d + r), max (|d| + r): r Gershgorin
    for (int64_t j = 0; j < k; ++j) {
      dv[j] = gather(d, k, j);
      const V left = j > 0 ? gather(e, k - 1, j - 1).abs() : zero;
      const V right = j + 1 < k ? gather(e, k - 1, j).abs() : zero;
      if (j + 1 < k) e2v[j] = at::vec::maximum(right * right, tiny);  // a 0 pivot: -inf
      const V r = left + right;
      lo = j == 0 ? dv[0] : at::vec::maximum(lo, dv[j]);
      hi = j == 0 ? dv[0] + r : at::vec::maximum(hi, dv[j] + r);
      scale = at::vec::maximum(scale, dv[j].abs() + r);
    }
    V x = hi;
    V done = (hi <= lo) | (hi - hi != zero);  // the bound is the eigenvalue, or not finite
    const V kv(static_cast<double>(k)), k1(static_cast<double>(k - 1));
    for (int step = 0; step < kLaguerreMaxSteps && done.zero_mask() != 0; ++step) {
      // q_j = d_j - x - e_{j-1}^2 / q_{j-1}; G = sum q_j' / q_j, H2 = sum (q_j'/q_j)^2 - q_j''/q_j
      V q = dv[0] - x, inv = one / q, dq = V(-1), ddq = zero;
      V G = dq * inv, H2 = G * G;
      V above = q < zero;
      for (int64_t j = 1; j < k; ++j) {
        const V r = e2v[j - 1] * inv, ri = r * inv;  // e^2 / q, e^2 / q^2
        ddq = ri * (ddq - V(2) * dq * dq * inv);      // e^2 (q''/q^2 - 2 q'^2/q^3)
        dq = at::vec::fmadd(ri, dq, V(-1));           // -1 + e^2 q' / q^2
        q = (dv[j] - x) - r;
        inv = one / q;
        const V t = dq * inv;
        G = G + t;
        H2 = H2 + t * t - ddq * inv;
        above = above & (q < zero);
      }
      const V root = at::vec::maximum(k1 * (kv * H2 - G * G), zero).sqrt();
      const V x_new = x - kv / (G + root);
      const V bound = kv / G;  // >= x - lambda_max while x is above every eigenvalue
      const V ok = above & (G > zero) & (x_new <= x) & (x_new == x_new);
      const V small = bound <= at::vec::fmadd(V(kLaguerreRelative), x.abs(),
                                              V(kLaguerreAbsolute) * scale);
      x = V::blendv(x, V::blendv(x, x_new, ok), done == zero);
      done = V::blendv(all, done | small, ok);  // a failed step: x is at the eigenvalue
    }
    x.store(lane);
    for (int64_t l = 0; l < m; ++l) out[i0 + l] = lane[l];
  }
}

// ---------------------------------------------------------------------------------------
// Golub-Kahan-Lanczos on the four operators of one block of rows.

template <typename scalar_t>
inline scalar_t sum_lanes(const Vec<scalar_t>& v) {
  alignas(64) scalar_t lanes[Vec<scalar_t>::size()];
  v.store(lanes);
  scalar_t s = 0;
  for (int64_t l = 0; l < Vec<scalar_t>::size(); ++l) s += lanes[l];
  return s;
}

// x . y over a row of H.
template <typename scalar_t>
inline double dot_row(const scalar_t* x, const scalar_t* y, int64_t H) {
  Vec<scalar_t> s(0);
  over_row<scalar_t>(H, [&](int64_t c, int64_t m) {
    s = at::vec::fmadd(load(x + c, m), load(y + c, m), s);
  });
  return sum_lanes(s);
}

// The factors of items n0 .. n0+n-1 and the Lanczos vectors of a block of rows, operator o =
// 0, 1, 2 (gates i, f, g) and 3 (the total) at offset o n H of v, u, u_prev.
template <typename scalar_t>
struct TermBlock {
  const scalar_t *f, *alpha, *beta, *U;  // (n, H), (n, 3, H), (n, H), (3H, H) [U_i; U_f; U_g]
  int64_t n, H;
  scalar_t *v, *u, *u_prev;  // (4, n, H) each
  scalar_t *in, *out;        // (6 n H) each: the GEMMs' inputs and outputs (gates, then total)
  int64_t f_row, alpha_row;  // elements from one item's row of f, alpha to the next's
};

// Every vector of the block is (n, H) per operator; each GEMM is one call for the block.
// a (4, n, k), b (4, n, k-1): the bidiagonals, in double.
template <typename scalar_t>
void term_lanczos_block(const TermBlock<scalar_t>& s, const scalar_t* start, int64_t k,
                        double* a, double* b) {
  const int64_t n = s.n, H = s.H, nH = n * H;
  const scalar_t tiny = std::numeric_limits<scalar_t>::min();
  scalar_t *v = s.v, *u = s.u, *u_prev = s.u_prev;
  scalar_t *in_t = s.in + 3 * nH, *out_t = s.out + 3 * nH;  // the total's (n, 3H) / (n, H)
  for (int64_t o = 0; o < 4; ++o) {
    for (int64_t r = 0; r < n; ++r) std::copy(start + o * H, start + (o + 1) * H, v + o * nH + r * H);
  }
  for (int64_t j = 0; j < k; ++j) {
    // X = beta v for each operator, then M_g: (n, H) U_g^T; the total: (n, H) U^T (n, 3H)
    for (int64_t r = 0; r < n; ++r) {
      const scalar_t* br = s.beta + r * H;
      for (int64_t o = 0; o < 4; ++o) {
        const scalar_t* vr = v + o * nH + r * H;
        scalar_t* xr = (o < 3 ? s.in + o * nH : in_t) + r * H;
        over_row<scalar_t>(H, [&](int64_t c, int64_t m) {
          store(load(br + c, m) * load(vr + c, m), xr + c, m);
        });
      }
    }
    for (int64_t g = 0; g < 3; ++g) {
      gemm<scalar_t>(false, true, n, H, H, 1, s.in + g * nH, H, s.U + g * H * H, H, 0,
                     s.out + g * nH, H);
    }
    gemm<scalar_t>(false, true, n, 3 * H, H, 1, in_t, H, s.U, H, 0, out_t, 3 * H);
    // u = M v - beta_{j-1} u_prev, alpha_j = |u|
    const bool last = j == k - 1;
    for (int64_t r = 0; r < n; ++r) {
      const scalar_t *fr = s.f + r * s.f_row, *ar = s.alpha + r * s.alpha_row;
      for (int64_t o = 0; o < 4; ++o) {
        const scalar_t* yr = o < 3 ? s.out + o * nH + r * H : out_t + r * 3 * H;
        const scalar_t* pr = u_prev + o * nH + r * H;
        scalar_t* ur = u + o * nH + r * H;
        const scalar_t bp = j > 0 ? static_cast<scalar_t>(b[(o * n + r) * (k - 1) + j - 1]) : 0;
        Vec<scalar_t> ss(0);
        over_row<scalar_t>(H, [&](int64_t c, int64_t m) {
          Vec<scalar_t> x;
          if (o < 3) {
            x = load(ar + o * H + c, m) * load(yr + c, m);
          } else {
            x = load(fr + c, m) * load(v + 3 * nH + r * H + c, m) +
                load(ar + c, m) * load(yr + c, m) + load(ar + H + c, m) * load(yr + H + c, m) +
                load(ar + 2 * H + c, m) * load(yr + 2 * H + c, m);
          }
          if (j > 0) x = x - Vec<scalar_t>(bp) * load(pr + c, m);
          ss = at::vec::fmadd(x, x, ss);
          store(x, ur + c, m);
        });
        const scalar_t alpha_j = std::sqrt(sum_lanes(ss));
        a[(o * n + r) * k + j] = alpha_j;
        if (last) continue;
        // u /= alpha_j, then M^T's GEMM inputs: alpha_g u (gates), [alpha_g u]_g (total)
        const Vec<scalar_t> scale(scalar_t(1) / std::max(alpha_j, tiny));
        scalar_t* xr = o < 3 ? s.in + o * nH + r * H : in_t + r * 3 * H;
        over_row<scalar_t>(H, [&](int64_t c, int64_t m) {
          const auto x = load(ur + c, m) * scale;
          store(x, ur + c, m);
          if (o < 3) {
            store(load(ar + o * H + c, m) * x, xr + c, m);
          } else {
            for (int64_t g = 0; g < 3; ++g) store(load(ar + g * H + c, m) * x, xr + g * H + c, m);
          }
        });
      }
    }
    if (last) break;
    // M_g^T: (n, H) U_g; the total: (n, 3H) U (n, H)
    for (int64_t g = 0; g < 3; ++g) {
      gemm<scalar_t>(false, false, n, H, H, 1, s.in + g * nH, H, s.U + g * H * H, H, 0,
                     s.out + g * nH, H);
    }
    gemm<scalar_t>(false, false, n, H, 3 * H, 1, in_t, 3 * H, s.U, H, 0, out_t, H);
    // w = M^T u - alpha_j v, beta_j = |w|, v = w / beta_j
    for (int64_t r = 0; r < n; ++r) {
      const scalar_t *fr = s.f + r * s.f_row, *br = s.beta + r * H;
      for (int64_t o = 0; o < 4; ++o) {
        const scalar_t* zr = (o < 3 ? s.out + o * nH : out_t) + r * H;
        const scalar_t* ur = u + o * nH + r * H;
        scalar_t* vr = v + o * nH + r * H;
        const Vec<scalar_t> alpha_j(static_cast<scalar_t>(a[(o * n + r) * k + j]));
        Vec<scalar_t> ss(0);
        over_row<scalar_t>(H, [&](int64_t c, int64_t m) {
          Vec<scalar_t> w = load(br + c, m) * load(zr + c, m);
          if (o == 3) w = w + load(fr + c, m) * load(ur + c, m);
          w = w - alpha_j * load(vr + c, m);
          ss = at::vec::fmadd(w, w, ss);
          store(w, vr + c, m);
        });
        const scalar_t beta_j = std::sqrt(sum_lanes(ss));
        b[(o * n + r) * (k - 1) + j] = beta_j;
        const Vec<scalar_t> scale(scalar_t(1) / std::max(beta_j, tiny));
        over_row<scalar_t>(H, [&](int64_t c, int64_t m) { store(load(vr + c, m) * scale, vr + c, m); });
      }
    }
    std::swap(u, u_prev);
  }
}

// Rows per block: every vector of a block (about 24 n H values, plus its factors 5 n H) in
// half of a 2 MiB L2, at least 8 rows, and enough blocks for every thread.
inline int64_t term_block_rows(int64_t N, int64_t H, int64_t bytes) {
  const int64_t fit = (1 << 20) / std::max<int64_t>(1, 29 * H * bytes);
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t share = (N + threads - 1) / threads;
  return std::max<int64_t>(1, std::min({std::max<int64_t>(8, fit), int64_t{256}, share}));
}

// (4, N) float64: sigma_max(B_k) of M_i, M_f, M_g and J for every item (see the top).
template <typename scalar_t>
void lstm_term_norms_loop(const Tensor& f, const Tensor& alpha, const Tensor& beta,
                          const Tensor& U, const Tensor& start, int64_t k, Tensor& out) {
  const int64_t N = f.size(0), H = f.size(1);
  const scalar_t *f_p = f.data_ptr<scalar_t>(), *alpha_p = alpha.data_ptr<scalar_t>();
  const int64_t f_row = f.stride(0), alpha_row = alpha.stride(0);  // rows may be spaced
  const scalar_t *beta_p = beta.data_ptr<scalar_t>(), *U_p = U.data_ptr<scalar_t>();
  // the start vectors, normalised as lanczos_norm does (in the input dtype)
  std::vector<scalar_t> v0(start.data_ptr<scalar_t>(), start.data_ptr<scalar_t>() + 4 * H);
  for (int64_t o = 0; o < 4; ++o) {
    scalar_t ss = 0;
    for (int64_t c = 0; c < H; ++c) ss += v0[o * H + c] * v0[o * H + c];
    const scalar_t norm = std::max(std::sqrt(ss), std::numeric_limits<scalar_t>::min());
    for (int64_t c = 0; c < H; ++c) v0[o * H + c] /= norm;
  }
  double* out_p = out.data_ptr<double>();
  const int64_t rows = term_block_rows(N, H, sizeof(scalar_t));
  const int64_t blocks = (N + rows - 1) / rows;
  at::parallel_for(0, blocks, 1, [&](int64_t i0, int64_t i1) {
    OneGemmThread guard;
    std::vector<scalar_t> work(24 * rows * H);
    std::vector<double> a(4 * rows * k), b(4 * rows * std::max<int64_t>(k - 1, 1));
    std::vector<double> d(4 * rows * k), e(4 * rows * std::max<int64_t>(k - 1, 1));
    std::vector<double> lam(4 * rows);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n0 = i * rows, n = std::min(rows, N - n0), nH = n * H;
      scalar_t* w = work.data();
      const TermBlock<scalar_t> s{f_p + n0 * f_row, alpha_p + n0 * alpha_row, beta_p + n0 * H,
                                  U_p, n, H, w, w + 4 * nH, w + 8 * nH, w + 12 * nH,
                                  w + 18 * nH, f_row, alpha_row};
      term_lanczos_block<scalar_t>(s, v0.data(), k, a.data(), b.data());
      if (k == 1) {
        for (int64_t o = 0; o < 4; ++o) {
          for (int64_t r = 0; r < n; ++r) out_p[o * N + n0 + r] = a[o * n + r];
        }
        continue;
      }
      // B_k^T B_k: diagonal alpha_j^2 + beta_{j-1}^2, off-diagonal alpha_j beta_j
      for (int64_t q = 0; q < 4 * n; ++q) {
        for (int64_t j = 0; j < k; ++j) {
          const double aj = a[q * k + j];
          d[q * k + j] = aj * aj + (j > 0 ? b[q * (k - 1) + j - 1] * b[q * (k - 1) + j - 1] : 0.0);
          if (j + 1 < k) e[q * (k - 1) + j] = aj * b[q * (k - 1) + j];
        }
      }
      tridiagonal_max(d.data(), e.data(), 4 * n, k, lam.data());
      for (int64_t o = 0; o < 4; ++o) {
        for (int64_t r = 0; r < n; ++r) {
          out_p[o * N + n0 + r] = std::sqrt(std::max(lam[o * n + r], 0.0));
        }
      }
    }
  });
}

// Householder reduction of one symmetric m x m matrix A (row-major, overwritten) to the
// tridiagonal d (m), e (m-1) with the same eigenvalues (Golub & Van Loan, alg. 8.3.1):
// step j reflects rows/columns j+1 .. m-1 so that column j is zero below its subdiagonal.
inline void householder_tridiagonal(double* A, int64_t m, double* d, double* e,
                                    double* v, double* p) {
  for (int64_t j = 0; j + 2 < m; ++j) {
    const int64_t n = m - j - 1;  // the trailing block, rows j+1 .. m-1
    double norm2 = 0;
    for (int64_t r = 0; r < n; ++r) {
      v[r] = A[(j + 1 + r) * m + j];
      norm2 += v[r] * v[r];
    }
    const double norm = std::sqrt(norm2);
    const double alpha = v[0] > 0 ? -norm : norm;  // the new subdiagonal entry
    v[0] -= alpha;
    const double vv = norm2 - 2 * alpha * (v[0] + alpha) + alpha * alpha;  // |v|^2
    d[j] = A[j * m + j];
    e[j] = alpha;
    if (!(vv > 0)) {  // the column is already zero below the subdiagonal
      e[j] = A[(j + 1) * m + j];
      continue;
    }
    // A22 <- H A22 H with H = I - 2 v v^T / vv: p = 2 A22 v / vv, w = p - (v^T p / vv) v,
    // A22 -= v w^T + w v^T
    double vp = 0;
    for (int64_t r = 0; r < n; ++r) {
      const double* row = A + (j + 1 + r) * m + (j + 1);
      double s = 0;
      for (int64_t c = 0; c < n; ++c) s += row[c] * v[c];
      p[r] = 2 * s / vv;
      vp += v[r] * p[r];
    }
    const double K = vp / vv;
    for (int64_t r = 0; r < n; ++r) p[r] -= K * v[r];  // w
    for (int64_t r = 0; r < n; ++r) {
      double* row = A + (j + 1 + r) * m + (j + 1);
      for (int64_t c = 0; c < n; ++c) row[c] -= v[r] * p[c] + p[r] * v[c];
    }
  }
  if (m >= 2) {
    d[m - 2] = A[(m - 2) * m + (m - 2)];
    e[m - 2] = A[(m - 1) * m + (m - 2)];
  }
  d[m - 1] = A[(m - 1) * m + (m - 1)];
}

// ---------------------------------------------------------------------------------------
// Operators.

// f (N, H) and alpha (N, 3, H) may be views whose item rows are spaced (slices of the
// LSTM's gates and dz, as gradflow's steps hold them): each row contiguous, any row stride.
Tensor lstm_term_norms(const Tensor& f_in, const Tensor& alpha_in, const Tensor& beta,
                       const Tensor& U, const Tensor& start, int64_t iterations) {
  TORCH_CHECK(f_in.scalar_type() == at::kFloat || f_in.scalar_type() == at::kDouble,
              "lstm_term_norms: float32 or float64 only, got ", f_in.scalar_type());
  TORCH_CHECK(f_in.dim() == 2 && alpha_in.dim() == 3,
              "lstm_term_norms: expected f (N, H), alpha (N, 3, H), got f ", f_in.sizes(),
              ", alpha ", alpha_in.sizes());
  const bool f_rows = f_in.stride(1) == 1 && f_in.stride(0) >= f_in.size(1);
  const bool alpha_rows = alpha_in.stride(2) == 1 && alpha_in.stride(1) == alpha_in.size(2) &&
                          alpha_in.stride(0) >= 3 * alpha_in.size(2);
  const Tensor f = f_rows ? f_in : f_in.contiguous();
  const Tensor alpha = alpha_rows ? alpha_in : alpha_in.contiguous();
  check({{&beta, "beta"}, {&U, "U"}, {&start, "start"}}, f);
  TORCH_CHECK(f.device().is_cpu() && alpha.device().is_cpu() &&
                  alpha.scalar_type() == f.scalar_type(),
              "lstm_term_norms: f and alpha must be CPU tensors of one dtype");
  const int64_t N = f.size(0), H = f.size(1);
  TORCH_CHECK(H >= 1, "lstm_term_norms: H must be at least 1");
  TORCH_CHECK(alpha.sizes() == at::IntArrayRef({N, 3, H}) && beta.sizes() == f.sizes() &&
                  U.sizes() == at::IntArrayRef({3 * H, H}) &&
                  start.sizes() == at::IntArrayRef({4, H}),
              "lstm_term_norms: expected f (N, H), alpha (N, 3, H), beta (N, H), U (3H, H), "
              "start (4, H), got f ", f.sizes(), ", alpha ", alpha.sizes(), ", beta ",
              beta.sizes(), ", U ", U.sizes(), ", start ", start.sizes());
  TORCH_CHECK(iterations >= 1, "lstm_term_norms: iterations must be >= 1, got ", iterations);
  const int64_t k = std::min(iterations, H);  // the Krylov space has at most H dimensions
  Tensor out = at::empty({4, N}, f.options().dtype(at::kDouble));
  if (N == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "lstm_term_norms", [&] {
    lstm_term_norms_loop<scalar_t>(f, alpha, beta, U, start, k, out);
  });
  return out;
}

Tensor tridiagonal_max_eigenvalue(const Tensor& d, const Tensor& e) {
  TORCH_CHECK(d.scalar_type() == at::kDouble, "tridiagonal_max_eigenvalue: float64 only, got ",
              d.scalar_type());
  check({{&d, "d"}, {&e, "e"}}, d);
  TORCH_CHECK(d.dim() == 2 && d.size(1) >= 1 && e.dim() == 2 && e.size(0) == d.size(0) &&
                  e.size(1) == d.size(1) - 1,
              "tridiagonal_max_eigenvalue: expected d (N, k), e (N, k-1) with k >= 1, got d ",
              d.sizes(), ", e ", e.sizes());
  const int64_t N = d.size(0), k = d.size(1);
  Tensor out = at::empty({N}, d.options());
  const double *d_p = d.data_ptr<double>(), *e_p = e.data_ptr<double>();
  double* out_p = out.data_ptr<double>();
  constexpr int64_t L = Vec<double>::size();
  const int64_t groups = (N + L - 1) / L;
  at::parallel_for(0, groups, std::max<int64_t>(1, 4096 / (L * k)), [&](int64_t g0, int64_t g1) {
    const int64_t n0 = g0 * L, n = std::min(g1 * L, N) - n0;
    tridiagonal_max(d_p + n0 * k, e_p + n0 * (k - 1), n, k, out_p + n0);
  });
  return out;
}

}  // namespace

namespace {

// (N,) float64: the largest eigenvalue of each Gram Y_i Y_i^T, Y (N, m, H) float32/float64
// (formed in double), by Householder reduction and tridiagonal_max.
Tensor gram_max_eigenvalue(const Tensor& Y) {
  TORCH_CHECK(Y.scalar_type() == at::kFloat || Y.scalar_type() == at::kDouble,
              "gram_max_eigenvalue: float32 or float64 only, got ", Y.scalar_type());
  check({{&Y, "Y"}}, Y);
  TORCH_CHECK(Y.dim() == 3 && Y.size(1) >= 1,
              "gram_max_eigenvalue: expected Y (N, m, H) with m >= 1, got ", Y.sizes());
  const int64_t N = Y.size(0), m = Y.size(1), H = Y.size(2);
  const auto f64 = Y.options().dtype(at::kDouble);
  Tensor work = at::empty({N, m, m}, f64);  // the Grams, reduced in place
  Tensor d = at::empty({N, m}, f64), e = at::empty({N, std::max<int64_t>(m - 1, 0)}, f64);
  Tensor out = at::empty({N}, f64);
  double *w = work.data_ptr<double>(), *d_p = d.data_ptr<double>(), *e_p = e.data_ptr<double>();
  double* out_p = out.data_ptr<double>();
  constexpr int64_t L = Vec<double>::size();
  const int64_t groups = (N + L - 1) / L;
  const int64_t grain = std::max<int64_t>(1, 4096 / (L * m * (m + H)));
  AT_DISPATCH_FLOATING_TYPES(Y.scalar_type(), "gram_max_eigenvalue", [&] {
    const scalar_t* y = Y.data_ptr<scalar_t>();
    at::parallel_for(0, groups, grain, [&](int64_t g0, int64_t g1) {
      std::vector<double> v(m), p(m), rows(m * H);  // rows: Y_i in double
      const int64_t n0 = g0 * L, n1 = std::min(g1 * L, N);
      for (int64_t i = n0; i < n1; ++i) {
        const scalar_t* Yi = y + i * m * H;
        for (int64_t j = 0; j < m * H; ++j) rows[j] = static_cast<double>(Yi[j]);
        double* A = w + i * m * m;
        for (int64_t r = 0; r < m; ++r) {
          for (int64_t c = 0; c <= r; ++c) {
            A[r * m + c] = A[c * m + r] = dot_row(rows.data() + r * H, rows.data() + c * H, H);
          }
        }
        householder_tridiagonal(A, m, d_p + i * m, e_p + i * (m - 1), v.data(), p.data());
      }
      tridiagonal_max(d_p + n0 * m, e_p + n0 * (m - 1), n1 - n0, m, out_p + n0);
    });
  });
  return out;
}

}  // namespace
