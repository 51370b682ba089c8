// The two time loops of gradflow's product-norm estimate (spectral.py's _forward_bases and
// _sweep_back) in one pass each (included by bptt.cpp, after its vector helpers load / store /
// over_row, `check` and lanczos.h's sum_lanes, dot_row).
//
// The step Jacobians come as factors (gradflow/steps.py), G gates of W (G H, H):
//   LSTM (G = 3): J y = f*y + sum_g a_g * (U_g (b*y)),   J^T z = f*z + b * sum_g U_g^T (a_g*z)
//   RNN  (G = 1): J y = a * (W y),                        J^T z = W^T (a*z)
// a (T, B, G, H), f and b (T, B, H) (absent for the RNN). Each step is one GEMM on the block's
// rows, (rows, H) x (H, G H) or (rows, G H) x (G H, H), and one fused elementwise pass.
//
// The sequences are independent through both loops (every row of sequence b reads only
// sequence b's factors; the normalisations are per sequence), so each thread runs the whole
// loop on its own block of sequences with a one-thread GEMM, as lanczos.h does.
//
// sweep_forward: subspace iteration of the n bases Z (n, k, B, H): basis j runs from
// processing index starts[j] (non-increasing, so the bases under way are a leading set),
// Z[j] = J_s Z[j] at every index s >= starts[j] (a sequence's padding indices s < first[b]
// leave its bases unchanged), and each (basis, sequence) k x H block is re-orthonormalised by
// `orthonormalise` where (T - 1 - s) % qr_every == 0. joint: at the end, the first min(n k, H)
// rows of each sequence orthonormalised together (what spectral._forward_bases returns).
//
// sweep_back: y = J^T y for lags 1 .. T-1 (processing index T - lag) from Q (m, B, H),
// keeping the first rows_g rows in group g (lags first_g .. last_g); after each step every
// sequence's (rows, H) block is divided by its Frobenius norm (clamped at the smallest normal
// number), stored as block (lag - first_g, b) of its group, the norm in scale (T-1, B).
//
// orthonormalise: Gram-Schmidt, each vector twice against the ones before it (modified
// Gram-Schmidt), so every leading set of the k rows keeps its span. A row whose residual is at
// most sqrt(eps) of its own norm (or zero) depends on the rows before it (its direction would
// be rounding): it is replaced by
// the first unit vector e_c (c = 0, 1, ..) whose residual against the rows before has a
// squared norm above (H - i) / (2 H), half their mean (so one has), so the output stays
// finite and orthonormal. spectral._orthonormal applies the
// same rule.

#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "gemm.h"

namespace {

// y -= d x on a row of H.
template <typename scalar_t>
inline void axpy_row(scalar_t d, const scalar_t* x, scalar_t* y, int64_t H) {
  const Vec<scalar_t> dv(d);
  over_row<scalar_t>(H, [&](int64_t c, int64_t m) {
    store(load(y + c, m) - dv * load(x + c, m), y + c, m);
  });
}

// y against the rows q_0 .. q_{i-1} (stride apart), twice; returns |y|.
template <typename scalar_t>
inline double orthogonalise(const scalar_t* q, int64_t i, int64_t stride, scalar_t* y, int64_t H) {
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t j = 0; j < i; ++j) {
      const scalar_t* qj = q + j * stride;
      axpy_row<scalar_t>(static_cast<scalar_t>(dot_row(qj, y, H)), qj, y, H);
    }
  }
  return std::sqrt(dot_row(y, y, H));
}

// The k rows x_0 .. x_{k-1} (stride apart, H each) in place, as at the top.
template <typename scalar_t>
void orthonormalise(scalar_t* x, int64_t k, int64_t stride, int64_t H) {
  const double tol = std::sqrt(std::numeric_limits<scalar_t>::epsilon());
  for (int64_t i = 0; i < k; ++i) {
    scalar_t* y = x + i * stride;
    const double norm = std::sqrt(dot_row(y, y, H));
    double r = orthogonalise(x, i, stride, y, H);
    if (!(r > tol * norm)) {  // dependent (NaN propagates: the comparison is false, too)
      // the first e_c whose residual's square exceeds half the mean (H - i) / H of them
      const double enough = std::sqrt(0.5 * static_cast<double>(H - i) / static_cast<double>(H));
      if (r == r && norm == norm) {
        for (int64_t c = 0; c < H; ++c) {
          std::fill(y, y + H, scalar_t(0));
          y[c] = 1;
          r = orthogonalise(x, i, stride, y, H);
          if (r > enough) break;
        }
      }
    }
    const Vec<scalar_t> inv(static_cast<scalar_t>(1.0 / r));
    over_row<scalar_t>(H, [&](int64_t c, int64_t m) { store(load(y + c, m) * inv, y + c, m); });
  }
}

// The factors of a sweep. a (T, B, G, H); f, b (T, B, H) or nullptr (RNN); W (G H, H).
template <typename scalar_t>
struct Factors {
  const scalar_t *a, *f, *b, *W;
  int64_t T, B, G, H;
  int64_t a_row;         // elements between the rows (s, seq) of a (a may be a view: LSTM dz)
  const int64_t* first;  // (B,) the first real index of each sequence, or nullptr
  const scalar_t* at(const scalar_t* p, int64_t s, int64_t seq, int64_t width) const {
    return p + (s * B + seq) * width;
  }
  const scalar_t* at_a(int64_t s, int64_t seq) const { return a + (s * B + seq) * a_row; }
  bool real(int64_t s, int64_t seq) const { return first == nullptr || s >= first[seq]; }
};

// Y (R, nb, H) -> J_s Y (or J_s^T Y if transpose) in place, sequences b0 .. b0+nb-1; row q
// of each (nb, H) slab is sequence b0 + q. in (R nb, G H), out (R nb, G H): work buffers.
// ss (nb): the sum of squares of each sequence's rows after the step (if not nullptr).
template <typename scalar_t>
void step(const Factors<scalar_t>& F, int64_t s, bool transpose, int64_t b0, int64_t nb,
          int64_t R, scalar_t* Y, scalar_t* in, scalar_t* out, double* ss) {
  const int64_t H = F.H, G = F.G, GH = G * H, rows = R * nb;
  const bool lstm = F.f != nullptr;
  if (!transpose) {
    // in = b * y (LSTM); out = in U^T (rows, G H)
    const scalar_t* x = Y;
    if (lstm) {
      for (int64_t r = 0; r < rows; ++r) {
        const scalar_t *br = F.at(F.b, s, b0 + r % nb, H), *yr = Y + r * H;
        scalar_t* xr = in + r * H;
        over_row<scalar_t>(H, [&](int64_t c, int64_t m) {
          store(load(br + c, m) * load(yr + c, m), xr + c, m);
        });
      }
      x = in;
    }
    gemm<scalar_t>(false, true, rows, GH, H, 1, x, H, F.W, H, 0, out, GH);
  } else {
    // in = [a_g * z]_g (rows, G H); out = in W (rows, H)
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t *ar = F.at_a(s, b0 + r % nb), *zr = Y + r * H;
      scalar_t* xr = in + r * GH;
      for (int64_t g = 0; g < G; ++g) {
        over_row<scalar_t>(H, [&](int64_t c, int64_t m) {
          store(load(ar + g * H + c, m) * load(zr + c, m), xr + g * H + c, m);
        });
      }
    }
    gemm<scalar_t>(false, false, rows, H, GH, 1, in, GH, F.W, H, 0, out, H);
  }
  if (ss != nullptr) std::fill(ss, ss + nb, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t q = r % nb, seq = b0 + q;
    scalar_t* yr = Y + r * H;
    if (!F.real(s, seq)) {  // padding: unchanged
      if (ss != nullptr) ss[q] += dot_row(yr, yr, H);
      continue;
    }
    const scalar_t* fr = lstm ? F.at(F.f, s, seq, H) : nullptr;
    Vec<scalar_t> acc(0);
    if (!transpose) {
      const scalar_t *ar = F.at_a(s, seq), *orow = out + r * GH;
      over_row<scalar_t>(H, [&](int64_t c, int64_t m) {
        Vec<scalar_t> v = load(ar + c, m) * load(orow + c, m);
        for (int64_t g = 1; g < G; ++g) {
          v = at::vec::fmadd(load(ar + g * H + c, m), load(orow + g * H + c, m), v);
        }
        if (lstm) v = at::vec::fmadd(load(fr + c, m), load(yr + c, m), v);
        acc = at::vec::fmadd(v, v, acc);
        store(v, yr + c, m);
      });
    } else {
      const scalar_t* orow = out + r * H;
      const scalar_t* br = lstm ? F.at(F.b, s, seq, H) : nullptr;
      over_row<scalar_t>(H, [&](int64_t c, int64_t m) {
        Vec<scalar_t> v = load(orow + c, m);
        if (lstm) v = at::vec::fmadd(load(fr + c, m), load(yr + c, m), load(br + c, m) * v);
        acc = at::vec::fmadd(v, v, acc);
        store(v, yr + c, m);
      });
    }
    if (ss != nullptr) ss[q] += sum_lanes(acc);
  }
}

// Sequences per block: a block's buffers (rows (2 + 2 G) H values a sequence) within
// kSweepBlockBytes, and a number of blocks that is a multiple of the threads (each thread
// takes as many sequences: parallel_for hands out the blocks in equal runs).
constexpr int64_t kSweepBlockBytes = 2 << 20;  // half of a 4 MiB L2 (best of 1, 2, 4, 8 MiB)

inline int64_t sweep_block(int64_t B, int64_t rows_per_seq, int64_t G, int64_t H, int64_t bytes) {
  const int64_t per_seq = std::max<int64_t>(1, rows_per_seq * (2 + 2 * G) * H * bytes);
  const int64_t fit = std::max<int64_t>(1, kSweepBlockBytes / per_seq);
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  int64_t blocks = (B + fit - 1) / fit;
  blocks = std::min(B, (blocks + threads - 1) / threads * threads);
  return (B + blocks - 1) / blocks;
}

// Zout: (n, k, B, H), or with joint the first p = min(n k, H) rows of the joint
// orthonormalisation (p, B, H).
template <typename scalar_t>
void sweep_forward_loop(const Factors<scalar_t>& F, const scalar_t* Z0, scalar_t* Zout, int64_t n,
                        int64_t k, const std::vector<int64_t>& starts, int64_t qr_every,
                        bool joint) {
  const int64_t T = F.T, B = F.B, H = F.H, G = F.G;
  const int64_t nb_max = sweep_block(B, n * k, G, H, sizeof(scalar_t));
  const int64_t blocks = (B + nb_max - 1) / nb_max;
  at::parallel_for(0, blocks, 1, [&](int64_t i0, int64_t i1) {
    OneGemmThread guard;
    const int64_t rows = n * k * nb_max;
    std::vector<scalar_t> Y(rows * H), in(rows * G * H), out(rows * G * H);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b0 = i * nb_max, nb = std::min(nb_max, B - b0);
      // Y (n, k, nb, H) <- Z0[:, :, b0:b0+nb]
      for (int64_t r = 0; r < n * k; ++r) {
        std::copy(Z0 + (r * B + b0) * H, Z0 + (r * B + b0 + nb) * H, Y.data() + r * nb * H);
      }
      for (int64_t s = 0; s < T; ++s) {
        int64_t active = 0;
        while (active < n && s >= starts[active]) ++active;
        if (active == 0) continue;
        step<scalar_t>(F, s, false, b0, nb, active * k, Y.data(), in.data(), out.data(), nullptr);
        if ((T - 1 - s) % qr_every == 0) {
          for (int64_t j = 0; j < active; ++j) {
            for (int64_t q = 0; q < nb; ++q) {
              orthonormalise<scalar_t>(Y.data() + (j * k * nb + q) * H, k, nb * H, H);
            }
          }
        }
      }
      const int64_t p = joint ? std::min(n * k, H) : n * k;
      if (joint) {
        for (int64_t q = 0; q < nb; ++q) orthonormalise<scalar_t>(Y.data() + q * H, p, nb * H, H);
      }
      for (int64_t r = 0; r < p; ++r) {
        std::copy(Y.data() + r * nb * H, Y.data() + (r + 1) * nb * H, Zout + (r * B + b0) * H);
      }
    }
  });
}

struct Group {
  int64_t first, last, rows, offset;  // lags first .. last, rows kept, offset in the output
};

template <typename scalar_t>
void sweep_back_loop(const Factors<scalar_t>& F, const scalar_t* Q, int64_t m,
                     const std::vector<Group>& groups, scalar_t* Yout, scalar_t* scale) {
  const int64_t T = F.T, B = F.B, H = F.H, G = F.G;
  const int64_t nb_max = sweep_block(B, m, G, H, sizeof(scalar_t));
  const int64_t blocks = (B + nb_max - 1) / nb_max;
  const double tiny = std::numeric_limits<scalar_t>::min();
  at::parallel_for(0, blocks, 1, [&](int64_t i0, int64_t i1) {
    OneGemmThread guard;
    std::vector<scalar_t> Y(m * nb_max * H), in(m * nb_max * G * H), out(m * nb_max * G * H);
    std::vector<double> ss(nb_max);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b0 = i * nb_max, nb = std::min(nb_max, B - b0);
      for (int64_t r = 0; r < m; ++r) {
        std::copy(Q + (r * B + b0) * H, Q + (r * B + b0 + nb) * H, Y.data() + r * nb * H);
      }
      for (const Group& g : groups) {
        for (int64_t lag = g.first; lag <= g.last; ++lag) {
          step<scalar_t>(F, T - lag, true, b0, nb, g.rows, Y.data(), in.data(), out.data(),
                         ss.data());
          for (int64_t q = 0; q < nb; ++q) {
            const scalar_t norm = static_cast<scalar_t>(std::sqrt(ss[q]));
            scale[(lag - 1) * B + b0 + q] = norm;
            const Vec<scalar_t> inv(scalar_t(1) / std::max<scalar_t>(norm, tiny));
            // block (lag - first, b) of the group: (rows, H)
            scalar_t* dst = Yout + g.offset + ((lag - g.first) * B + b0 + q) * g.rows * H;
            for (int64_t r = 0; r < g.rows; ++r) {
              scalar_t* yr = Y.data() + (r * nb + q) * H;
              over_row<scalar_t>(H, [&](int64_t c, int64_t w) {
                const auto v = load(yr + c, w) * inv;
                store(v, yr + c, w);
                store(v, dst + r * H + c, w);
              });
            }
          }
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// Operators.

// a (T, B, [G,] H) contiguous, or with each (s, seq) row of G H contiguous and the rows
// evenly spaced (LSTM's alpha, a slice of dz (T, B, 4H)).
inline bool spaced_rows(const Tensor& a) {
  if (a.is_contiguous()) return true;
  const int64_t G = a.dim() == 4 ? a.size(2) : 1, H = a.size(-1), B = a.size(1);
  return a.stride(-1) == 1 && (G == 1 || a.stride(2) == H) && a.stride(1) >= G * H &&
         a.stride(0) == B * a.stride(1);
}

// The factors' checks: a (T, B, G, H) or (T, B, H) with G = 1, W (G H, H); f and b both or
// neither, (T, B, H); first (B,) int64 or absent. like: the vectors (..., B, H).
template <typename scalar_t>
Factors<scalar_t> factors(const char* op, const Tensor& like, const Tensor& a, const Tensor& W,
                          const std::optional<Tensor>& f, const std::optional<Tensor>& b,
                          const std::optional<Tensor>& first) {
  TORCH_CHECK(a.dim() == 3 || a.dim() == 4, op, ": a must be (T, B, H) or (T, B, G, H), got ",
              a.sizes());
  const int64_t T = a.size(0), B = a.size(1), G = a.dim() == 4 ? a.size(2) : 1, H = a.size(-1);
  TORCH_CHECK(W.dim() == 2 && W.size(0) == G * H && W.size(1) == H, op, ": W must be (", G * H,
              ", ", H, ") for a ", a.sizes(), ", got ", W.sizes());
  TORCH_CHECK(f.has_value() == b.has_value(), op,
              ": f and beta come together (LSTM) or not at all");
  TORCH_CHECK(like.size(-2) == B && like.size(-1) == H, op, ": the vectors must be (..., ", B, ", ",
              H, ") like the factors, got ", like.sizes());
  TORCH_CHECK(T >= 1 && B >= 1 && H >= 1, op, ": empty factors ", a.sizes());
  check({{&W, "W"}}, like);
  // a: each (s, seq) row of G H contiguous, the rows evenly spaced (a slice of LSTM's dz is)
  TORCH_CHECK(a.device().is_cpu() && a.scalar_type() == like.scalar_type(), op,
              ": a must be a CPU tensor of dtype ", like.scalar_type());
  TORCH_CHECK(spaced_rows(a), op, ": a must have contiguous rows of G H evenly spaced, got "
              "strides ", a.strides());
  const int64_t a_row = a.is_contiguous() ? G * H : a.stride(1);
  if (f.has_value()) {
    check({{&*f, "f"}, {&*b, "beta"}}, like);
    TORCH_CHECK(f->sizes() == at::IntArrayRef({T, B, H}) && b->sizes() == f->sizes(), op,
                ": f and beta must be (", T, ", ", B, ", ", H, "), got ", f->sizes(), " and ",
                b->sizes());
  }
  const int64_t* first_p = nullptr;
  if (first.has_value()) {
    TORCH_CHECK(first->device().is_cpu() && first->scalar_type() == at::kLong &&
                    first->dim() == 1 && first->size(0) == B && first->is_contiguous(),
                op, ": first must be a contiguous CPU int64 tensor of shape (", B, ")");
    first_p = first->data_ptr<int64_t>();
  }
  return {a.data_ptr<scalar_t>(),
          f.has_value() ? f->data_ptr<scalar_t>() : nullptr,
          b.has_value() ? b->data_ptr<scalar_t>() : nullptr,
          W.data_ptr<scalar_t>(),
          T, B, G, H, a_row, first_p};
}

Tensor sweep_forward(const Tensor& Z, const Tensor& a, const Tensor& W,
                     const std::optional<Tensor>& f, const std::optional<Tensor>& beta,
                     std::vector<int64_t> starts, int64_t qr_every,
                     const std::optional<Tensor>& first, bool joint) {
  TORCH_CHECK(Z.scalar_type() == at::kFloat || Z.scalar_type() == at::kDouble,
              "sweep_forward: float32 or float64 only, got ", Z.scalar_type());
  TORCH_CHECK(Z.dim() == 4, "sweep_forward: Z must be (n, k, B, H), got ", Z.sizes());
  check({{&Z, "Z"}}, Z);
  const int64_t n = Z.size(0), k = Z.size(1);
  TORCH_CHECK(static_cast<int64_t>(starts.size()) == n, "sweep_forward: ", n,
              " bases need as many starts, got ", starts.size());
  for (size_t j = 0; j < starts.size(); ++j) {
    TORCH_CHECK(starts[j] >= 0 && (j == 0 || starts[j] >= starts[j - 1]),
                "sweep_forward: starts must be non-negative and non-decreasing (longest basis "
                "first), got ", at::IntArrayRef(starts));
  }
  TORCH_CHECK(qr_every >= 1, "sweep_forward: qr_every must be >= 1, got ", qr_every);
  TORCH_CHECK(k <= Z.size(3), "sweep_forward: at most H = ", Z.size(3),
              " vectors per basis, got ", k);
  Tensor out = joint ? at::empty({std::min(n * k, Z.size(3)), Z.size(2), Z.size(3)}, Z.options())
                     : at::empty_like(Z);
  const Tensor a_rows = a.dim() >= 3 && !spaced_rows(a) ? a.contiguous() : a;
  AT_DISPATCH_FLOATING_TYPES(Z.scalar_type(), "sweep_forward", [&] {
    const auto F = factors<scalar_t>("sweep_forward", Z, a_rows, W, f, beta, first);
    if (n * k > 0) {
      sweep_forward_loop<scalar_t>(F, Z.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), n, k,
                                   starts, qr_every, joint);
    }
  });
  return out;
}

// Returns (Y, scale): Y flat, group g's (last - first + 1, B, rows, H) blocks one after the
// other; scale (T-1, B).
std::tuple<Tensor, Tensor> sweep_back(const Tensor& Q, const Tensor& a, const Tensor& W,
                                      const std::optional<Tensor>& f,
                                      const std::optional<Tensor>& beta,
                                      std::vector<int64_t> firsts, std::vector<int64_t> lasts,
                                      std::vector<int64_t> rows) {
  TORCH_CHECK(Q.scalar_type() == at::kFloat || Q.scalar_type() == at::kDouble,
              "sweep_back: float32 or float64 only, got ", Q.scalar_type());
  TORCH_CHECK(Q.dim() == 3, "sweep_back: Q must be (m, B, H), got ", Q.sizes());
  check({{&Q, "Q"}}, Q);
  const int64_t m = Q.size(0), T = a.dim() >= 1 ? a.size(0) : 0;
  TORCH_CHECK(firsts.size() == lasts.size() && firsts.size() == rows.size(),
              "sweep_back: firsts, lasts and rows must have one entry per group");
  std::vector<Group> groups;
  int64_t offset = 0, next = 1;
  for (size_t g = 0; g < firsts.size(); ++g) {
    TORCH_CHECK(firsts[g] == next && lasts[g] >= firsts[g] && lasts[g] <= T - 1,
                "sweep_back: the groups must cover the lags 1 .. T-1 = ", T - 1,
                " in order, got firsts ", at::IntArrayRef(firsts), ", lasts ",
                at::IntArrayRef(lasts));
    TORCH_CHECK(rows[g] >= 1 && rows[g] <= (g == 0 ? m : rows[g - 1]),
                "sweep_back: rows must be non-increasing in 1 .. m = ", m, ", got ",
                at::IntArrayRef(rows));
    groups.push_back({firsts[g], lasts[g], rows[g], offset});
    offset += (lasts[g] - firsts[g] + 1) * Q.size(1) * rows[g] * Q.size(2);
    next = lasts[g] + 1;
  }
  TORCH_CHECK(next == T || T <= 1, "sweep_back: the groups must cover the lags 1 .. T-1 = ", T - 1,
              ", they end at ", next - 1);
  Tensor Y = at::empty({offset}, Q.options());
  Tensor scale = at::empty({std::max<int64_t>(T - 1, 0), Q.size(1)}, Q.options());
  const Tensor a_rows = a.dim() >= 3 && !spaced_rows(a) ? a.contiguous() : a;
  AT_DISPATCH_FLOATING_TYPES(Q.scalar_type(), "sweep_back", [&] {
    const auto F = factors<scalar_t>("sweep_back", Q, a_rows, W, f, beta, std::nullopt);
    if (!groups.empty()) {
      sweep_back_loop<scalar_t>(F, Q.data_ptr<scalar_t>(), m, groups, Y.data_ptr<scalar_t>(),
                                scale.data_ptr<scalar_t>());
    }
  });
  return {Y, scale};
}

}  // namespace
