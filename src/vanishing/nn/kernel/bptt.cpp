// Compiled time loops of nn/rnn.py and nn/lstm.py: same equations, same buffers, same names.
//
// Python (kernel/__init__.py) allocates every buffer and does the all-steps GEMMs (input
// projection W_ih x_t + b before the loop, weight gradients after it); these functions run
// the sequential part, t = 1 .. T forward and t = T .. 1 backward, in place. Per step: one
// GEMM through the BLAS that torch links (sgemm_/dgemm_, found at load time; ATen's addmm
// if absent, or if a size does not fit the BLAS's int), then one fused, vectorised
// elementwise pass over the batch rows. The tuning knobs (`config`) are atomics: a loop may
// run on one thread while another thread changes them.
//
// Layout, all row-major and contiguous, axes (T, B, H) as in the reference:
//   hs, cs (T+1, B, H): h_0 .. h_T, c_0 .. c_T      gates (T, B, 4H): [i, f, g, o]
//   W_hh (4H, H) for the LSTM, (H, H) for the RNN   dh, dc (T, B, H), dz (T, B, G)
//   (dz (1, B, G) when no weight gradient or dx is asked for: one step's buffer, reused)
// Variable lengths (nn/packing.py): with batch_sizes (T,), the batch is sorted by decreasing
// length and step t runs on its first n = batch_sizes[t] rows only (GEMM and elementwise);
// the loops zero the other rows of the step's outputs (ended sequences), and the rows
// n .. B-1 of dh_next, dc_next keep dh_n, dc_n until the backward loop reaches those
// sequences' last steps.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <sys/mman.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gemm.h"

namespace {

// ---------------------------------------------------------------------------------------
// Elementwise helpers on at::vec::Vectorized (Sleef exp / tanh, 1 ulp: as torch's own
// sigmoid_ / tanh_ kernels). A row of n < Vec::size() elements is loaded and stored partially.

template <typename scalar_t>
using Vec = at::vec::Vectorized<scalar_t>;

template <typename scalar_t>
inline Vec<scalar_t> load(const scalar_t* p, int64_t n) {
  return n == Vec<scalar_t>::size() ? Vec<scalar_t>::loadu(p) : Vec<scalar_t>::loadu(p, n);
}

template <typename scalar_t>
inline void store(const Vec<scalar_t>& v, scalar_t* p, int64_t n) {
  if (n == Vec<scalar_t>::size()) {
    v.store(p);
  } else {
    v.store(p, n);
  }
}

template <typename scalar_t>
inline Vec<scalar_t> sigmoid(const Vec<scalar_t>& z) {
  const Vec<scalar_t> one(1);
  return one / (one + z.neg().exp());  // 1 / (1 + e^-z), as torch's sigmoid kernel
}

// tanh in float64: Sleef's, as torch's tanh_ (the reference to 1e-12 needs full accuracy).
inline Vec<double> tanh(const Vec<double>& x) {
  return x.tanh();
}

// tanh in float32, as torch.tanh computes it (MKL's vsTanh, ~1 ulp) to within a few ulp,
// saturating to exactly +-1 at the same point:
// - |x| < 3: Eigen's rational approximation p(x) / q(x) (odd degree 13 over even degree 6),
//   x itself where |x| < 4e-4;
// - |x| >= 3 (only for the vectors with such a lane): 1 - 2 / (1 + e^{2|x|}) with the sign
//   of x, and exactly +-1 from |x| >= 9.01084041595459, the smallest float at which
//   torch.tanh rounds to 1 (measured at every CPU capability: DEFAULT, AVX2, AVX512).
// Near saturation tanh' = 1 - tanh^2 is a small difference of numbers near 1: the rational
// approximation's 6 ulp there would be 2 % of tanh' at |x| = 5, 13 % at 7, and it never
// reached 1, so a saturated unit passed 4.8e-7 instead of 0. Below 3 its relative error in
// tanh' is at most 3.4e-5 (measured against float64). NaN propagates. Sleef's tanhf for
// every lane cost 15 - 18 % of a whole LSTM forward + backward at H = 16 .. 32, and it
// saturates earlier than torch (from 8.66).
constexpr float kTanhOne = 9.01084041595459f;

inline Vec<float> tanh(const Vec<float>& x_in) {
  using V = Vec<float>;
  const V one(1.0f), a = x_in.abs();
  const V x = at::vec::clamp(x_in, V(-3.0f), V(3.0f));
  const V x2 = x * x;
  V p = at::vec::fmadd(x2, V(-2.76076847742355e-16f), V(2.00018790482477e-13f));
  p = at::vec::fmadd(x2, p, V(-8.60467152213735e-11f));
  p = at::vec::fmadd(x2, p, V(5.12229709037114e-08f));
  p = at::vec::fmadd(x2, p, V(1.48572235717979e-05f));
  p = at::vec::fmadd(x2, p, V(6.37261928875436e-04f));
  p = at::vec::fmadd(x2, p, V(4.89352455891786e-03f));
  p = x * p;
  V q = at::vec::fmadd(x2, V(1.19825839466702e-06f), V(1.18534705686654e-04f));
  q = at::vec::fmadd(x2, q, V(2.26843463243900e-03f));
  q = at::vec::fmadd(x2, q, V(4.89352518554385e-03f));
  const V r = V::blendv(p / q, x_in, a < V(4e-4f));
  const V tail = a >= V(3.0f);  // all-ones lanes where |x| >= 3
  constexpr int kNoLane = (1 << V::size()) - 1;
  if (tail.zero_mask() == kNoLane) return r;
  V t = one - V(2.0f) / (one + (a + a).exp());  // |tanh(x)|
  t = V::blendv(t, one, a >= V(kTanhOne));
  t = V::blendv(t, t.neg(), x_in < V(0.0f));
  return V::blendv(r, t, tail);
}

// Runs body(j, n) over one row of H elements in chunks of n <= Vec::size().
template <typename scalar_t, typename F>
inline void over_row(int64_t H, const F& body) {
  constexpr int64_t L = Vec<scalar_t>::size();
  int64_t j = 0;
  for (; j + L <= H; j += L) body(j, L);
  if (j < H) body(j, H - j);
}

// Rows b0 .. b1-1 of a step, in parallel once the step has enough elements to pay for the
// threads (inside a block of RowBlocks, already on its own thread: in order).
template <typename F>
inline void over_batch(int64_t b0, int64_t b1, int64_t row_elems, const F& body) {
  const int64_t min_elems = blas().elementwise_grain.load(std::memory_order_relaxed);
  const int64_t grain = std::max<int64_t>(1, min_elems / std::max<int64_t>(1, row_elems));
  at::parallel_for(b0, b1, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t b = r0; b < r1; ++b) body(b);
  });
}

// The rows that run at step t: batch_sizes[t] of a variable-length batch, or all B.
struct Rows {
  const int64_t* batch_sizes;  // (T,) or nullptr
  int64_t B;
  int64_t operator()(int64_t t) const { return batch_sizes ? batch_sizes[t] : B; }
  // The rows of block b0 .. b1-1 that run at step t are b0 .. end(t, b0, b1) - 1.
  int64_t end(int64_t t, int64_t b0, int64_t b1) const {
    return std::clamp((*this)(t), b0, b1);
  }
};

Rows active_rows(const std::optional<Tensor>& batch_sizes, int64_t T, int64_t B,
                 const char* op) {
  if (!batch_sizes.has_value()) return {nullptr, B};
  const Tensor& s = *batch_sizes;
  TORCH_CHECK(s.device().is_cpu() && s.scalar_type() == at::kLong && s.dim() == 1 &&
                  s.size(0) == T && s.is_contiguous(),
              op, ": batch_sizes must be a contiguous CPU int64 tensor of shape (T,)");
  const int64_t* n = s.data_ptr<int64_t>();
  for (int64_t t = 0; t < T; ++t) {
    TORCH_CHECK(n[t] >= 1 && n[t] <= (t == 0 ? B : n[t - 1]), op,
                ": batch_sizes must be non-increasing and in [1, B]");
  }
  return {n, B};
}

// Rows n .. b1-1 of one step's (B, width) buffer: the ended sequences' steps are zero.
template <typename scalar_t>
inline void zero_ended(scalar_t* step, int64_t n, int64_t b1, int64_t width) {
  if (n < b1) std::fill(step + n * width, step + b1 * width, scalar_t(0));
}

using Named = std::pair<const Tensor*, const char*>;

// Every tensor on the CPU, contiguous, of like's dtype.
void check(std::initializer_list<Named> tensors, const Tensor& like) {
  for (const auto& [t, name] : tensors) {
    TORCH_CHECK(t->device().is_cpu(), name, " must be a CPU tensor");
    TORCH_CHECK(t->is_contiguous(), name, " must be contiguous");
    TORCH_CHECK(t->scalar_type() == like.scalar_type(), name, " has dtype ", t->scalar_type(),
                ", expected ", like.scalar_type());
  }
}

// Asks the OS to back a fresh buffer of at least huge_page_bytes with 2 MiB pages (Linux
// transparent huge pages, madvise mode): a new (T, B, 4H) buffer is otherwise faulted in one
// 4 KiB page at a time on first touch, which cost more than the whole LSTM time loop at
// (B, T, H) = (1000, 100, 64) (31 ms against 21 ms, measured). Only the 2 MiB-aligned
// interior of the buffer is advised; a hint, so a refusal (or another OS) changes nothing.
void huge_pages(const Tensor& t) {
#ifdef MADV_HUGEPAGE
  const int64_t min_bytes = blas().huge_page_bytes.load(std::memory_order_relaxed);
  const int64_t bytes = static_cast<int64_t>(t.nbytes());
  if (min_bytes <= 0 || bytes < min_bytes || !t.device().is_cpu()) return;
  constexpr uintptr_t kPage = uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t first = (begin + kPage - 1) & ~(kPage - 1), last = (begin + bytes) & ~(kPage - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
}

// ---------------------------------------------------------------------------------------
// lstm_local_factors of nn/lstm.py, for n <= Vec::size() units of one step and sequence: the
// factors of the backward step that depend on the forward pass only,
//   dc_dh = o tanh'(c_t)                        from dL/dh_t to dL/dc_t
//   dz    = [g sigma'(z_i), c_{t-1} sigma'(z_f), i tanh'(z_g), tanh(c_t) sigma'(z_o)]
// (the first three from dL/dc_t, the last from dL/dh_t, to dL/dz_t). tanh_c = tanh(c_t).

template <typename scalar_t>
struct LocalFactors {
  Vec<scalar_t> dc_dh, dz_i, dz_f, dz_g, dz_o;
};

template <typename scalar_t>
inline LocalFactors<scalar_t> lstm_local_factors(const Vec<scalar_t>& i, const Vec<scalar_t>& f,
                                                 const Vec<scalar_t>& g, const Vec<scalar_t>& o,
                                                 const Vec<scalar_t>& c_prev,
                                                 const Vec<scalar_t>& tanh_c) {
  const Vec<scalar_t> one(1);
  return {o * (one - tanh_c * tanh_c), g * (i * (one - i)), c_prev * (f * (one - f)),
          i * (one - g * g), tanh_c * (o * (one - o))};
}

// ---------------------------------------------------------------------------------------
// One LSTM cell update for units j .. j+m-1 (m <= Vec::size()) of one sequence, from its
// pre-activations z (4H) [z_i, z_f, z_g, z_o], a bias b (4H) and c_prev (H):
//   i, f, o = sigma(z_. + b_.)   g = tanh(z_g + b_g)   c = f c_prev + i g   h = o tanh(c)

template <typename scalar_t>
struct CellStep {
  Vec<scalar_t> i, f, g, o, c, h;
};

template <typename scalar_t>
inline CellStep<scalar_t> lstm_cell(const scalar_t* z, const scalar_t* b, const scalar_t* c_prev,
                                    int64_t H, int64_t j, int64_t m) {
  const auto i = sigmoid(load(z + j, m) + load(b + j, m));
  const auto f = sigmoid(load(z + H + j, m) + load(b + H + j, m));
  const auto g = tanh(load(z + 2 * H + j, m) + load(b + 2 * H + j, m));
  const auto o = sigmoid(load(z + 3 * H + j, m) + load(b + 3 * H + j, m));
  const auto c = f * load(c_prev + j, m) + i * g;
  return {i, f, g, o, c, o * tanh(c)};
}

// ---------------------------------------------------------------------------------------
// LSTM forward, t = 1 .. T:
//   [z_i, z_f, z_g, z_o] = (W_ih x_t + b) + h_{t-1} W_hh^T        gates_t (B, 4H)
//   i = sigma(z_i)  f = sigma(z_f)  g = tanh(z_g)  o = sigma(z_o)  (written over gates_t)
//   c_t = f * c_{t-1} + i * g        h_t = o * tanh(c_t)            (B, H)
// The input term either fills gates before the loop (one all-steps GEMM in Python), or, with
// `in.x` (a small input size), comes from the step's GEMM over xh_t = [x_t, h_{t-1}] (B, I+H)
// and W_cat = [W_ih, W_hh] (4H, I+H), the bias added in the elementwise pass: each gate
// element is then written once and read once while the step is still in cache, instead of
// a separate pass over the whole (T, B, 4H) buffer.

template <typename scalar_t>
struct InputTerm {
  const scalar_t* x = nullptr;      // (T, B, I), or nullptr: gates hold W_ih x_t + b on entry
  const scalar_t* W_cat = nullptr;  // (4H, I+H) [W_ih, W_hh]
  const scalar_t* b = nullptr;      // (4H,) b_ih + b_hh (zeros without a bias)
  int64_t I = 0;
};

template <typename scalar_t>
void lstm_forward_loop(Tensor& gates, Tensor& hs, Tensor& cs, const Tensor& W_hh, Rows rows,
                       const InputTerm<scalar_t>& in) {
  const int64_t T = gates.size(0), B = gates.size(1), H = hs.size(2), G = 4 * H;
  const bool fused = in.x != nullptr;
  const int64_t I = in.I, K = fused ? I + H : H;  // K: the step GEMM's inner size
  scalar_t* z = gates.data_ptr<scalar_t>();
  scalar_t* h = hs.data_ptr<scalar_t>();
  scalar_t* c = cs.data_ptr<scalar_t>();
  const std::vector<scalar_t> no_bias(fused ? 0 : G, scalar_t(0));
  const scalar_t* bias = fused ? in.b : no_bias.data();  // (4H,) added to z_t
  const RowBlocks blocks(B, 2 * B * G * K);
  const StepGemm<scalar_t> step_gemm(fused ? in.W_cat : W_hh.data_ptr<scalar_t>(), G, K, true,
                                     blocks.rows());
  blocks.run([&](int64_t b0, int64_t b1) {
    // fused: rows b0 .. b1-1 of xh_t = [x_t, h_{t-1}] (b1-b0, I+H), row b at (b - b0) * K
    std::vector<scalar_t> xh(fused ? (b1 - b0) * K : 0);
    for (int64_t b = b0; fused && b < b1; ++b) {
      std::copy(h + b * H, h + (b + 1) * H, xh.data() + (b - b0) * K + I);  // h_0
    }
    for (int64_t t = 0; t < T; ++t) {
      scalar_t* z_t = z + t * B * G;            // (B, 4H) holds W_ih x_t + b on entry if !fused
      const scalar_t* h_prev = h + t * B * H;   // (B, H) h_{t-1}
      const scalar_t* c_prev = c + t * B * H;   // (B, H) c_{t-1}
      scalar_t* h_t = h + (t + 1) * B * H;      // (B, H)
      scalar_t* c_t = c + (t + 1) * B * H;      // (B, H)
      const int64_t n = rows.end(t, b0, b1);    // rows b0 .. n-1 run
      if (fused) {
        const scalar_t* x_t = in.x + t * B * I;  // (B, I)
        for (int64_t b = b0; b < n; ++b) {
          std::copy(x_t + b * I, x_t + (b + 1) * I, xh.data() + (b - b0) * K);
        }
        step_gemm(n - b0, xh.data(), z_t + b0 * G, false);  // z_t = [x_t, h_{t-1}] W_cat^T
      } else {
        step_gemm(n - b0, h_prev + b0 * H, z_t + b0 * G, true);  // z_t += h_{t-1} W_hh^T
      }
      over_batch(b0, n, G, [&](int64_t b) {
        scalar_t* zb = z_t + b * G;  // (4H) [z_i, z_f, z_g, z_o], then [i, f, g, o]
        const scalar_t* cp = c_prev + b * H;
        scalar_t *cb = c_t + b * H, *hb = h_t + b * H;
        scalar_t* h_next = fused ? xh.data() + (b - b0) * K + I : nullptr;  // h_t for t+1
        over_row<scalar_t>(H, [&](int64_t j, int64_t m) {
          const auto s = lstm_cell(zb, bias, cp, H, j, m);
          store(s.i, zb + j, m), store(s.f, zb + H + j, m);
          store(s.g, zb + 2 * H + j, m), store(s.o, zb + 3 * H + j, m);
          store(s.c, cb + j, m), store(s.h, hb + j, m);
          if (h_next != nullptr) store(s.h, h_next + j, m);
        });
      });
      zero_ended(z_t, n, b1, G), zero_ended(h_t, n, b1, H), zero_ended(c_t, n, b1, H);
    }
  });
}

// LSTM forward for inference (no gradient, nothing recorded): the same equations, keeping
// only what the caller gets back, out (T, B, H) = h_1 .. h_T and h_n, c_n (B, H), each row's
// state at its own last step. One GEMM per step over xh_t = [x_t, h_{t-1}] (B, I+H) and
// W_cat = [W_ih, W_hh] (4H, I+H):
//   z_t = xh_t W_cat^T + b        in a (B, 4H) scratch, then as lstm_forward_loop.
// Neither the gates nor c_t of every step nor the all-steps input projection are stored.
// On entry h_n, c_n hold h_0, c_0; the rows of an ended sequence are not touched again.

template <typename scalar_t>
void lstm_inference_loop(const Tensor& x, const Tensor& W_cat, const Tensor& bias, Tensor& out,
                         Tensor& h_n, Tensor& c_n, Rows rows) {
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = out.size(2), G = 4 * H;
  const int64_t K = I + H;
  const scalar_t *x_p = x.data_ptr<scalar_t>(), *b_p = bias.data_ptr<scalar_t>();
  scalar_t *out_p = out.data_ptr<scalar_t>(), *h_p = h_n.data_ptr<scalar_t>();
  scalar_t* c = c_n.data_ptr<scalar_t>();  // (B, H) c_{t-1}, then c_t
  const RowBlocks blocks(B, 2 * B * G * K);
  const StepGemm<scalar_t> xh_W_catT(W_cat.data_ptr<scalar_t>(), G, K, true, blocks.rows());
  blocks.run([&](int64_t b0, int64_t b1) {
    std::vector<scalar_t> xh_buf((b1 - b0) * K), z_buf((b1 - b0) * G);
    scalar_t *xh = xh_buf.data() - b0 * K, *z = z_buf.data() - b0 * G;  // indexed by row b
    for (int64_t b = b0; b < b1; ++b) std::copy(h_p + b * H, h_p + (b + 1) * H, xh + b * K + I);
    for (int64_t t = 0; t < T; ++t) {
      const scalar_t* x_t = x_p + t * B * I;  // (B, I)
      scalar_t* h_t = out_p + t * B * H;      // (B, H)
      const int64_t n = rows.end(t, b0, b1);  // rows b0 .. n-1 run
      for (int64_t b = b0; b < n; ++b) std::copy(x_t + b * I, x_t + (b + 1) * I, xh + b * K);
      xh_W_catT(n - b0, xh + b0 * K, z + b0 * G, false);  // z_t = [x_t, h_{t-1}] W_cat^T
      over_batch(b0, n, G, [&](int64_t b) {
        const scalar_t* zb = z + b * G;  // (4H) [z_i, z_f, z_g, z_o] without the bias
        scalar_t *cb = c + b * H, *hb = h_t + b * H, *h_next = xh + b * K + I;
        over_row<scalar_t>(H, [&](int64_t j, int64_t m) {
          const auto s = lstm_cell(zb, b_p, cb, H, j, m);
          store(s.c, cb + j, m), store(s.h, hb + j, m), store(s.h, h_next + j, m);
        });
      });
      zero_ended(h_t, n, b1, H);
    }
    for (int64_t b = b0; b < b1; ++b) std::copy(xh + b * K + I, xh + (b + 1) * K, h_p + b * H);
  });
}

// LSTM backward, t = T .. 1, from dh_next = dL/dh_T and dc_next = dL/dc_T:
//   dh_t = dout_t + dh_next                              dL/dh_t            (B, H)
//   dc_t = dc_next + dh_t * o * (1 - tanh^2(c_t))        dL/dc_t            (B, H)
//   dz_i = dc_t g i (1-i)   dz_f = dc_t c_{t-1} f (1-f)
//   dz_g = dc_t i (1-g^2)   dz_o = dh_t tanh(c_t) o (1-o)                   dz_t (B, 4H)
//   dc_next = dc_t * f      dh_next = dz_t W_hh                            (B, H) each
// Returns (dh_0, dc_0) = the last dh_next, dc_next.

template <typename scalar_t>
void lstm_backward_loop(const Tensor& dout, Tensor& dh_next, Tensor& dc_next, const Tensor& cs,
                        const Tensor& gates, const Tensor& W_hh, Tensor& dh, Tensor& dc,
                        Tensor& dz, Rows rows) {
  const int64_t T = gates.size(0), B = gates.size(1), H = cs.size(2), G = 4 * H;
  const scalar_t* dout_p = dout.data_ptr<scalar_t>();
  const scalar_t* c = cs.data_ptr<scalar_t>();
  const scalar_t* a = gates.data_ptr<scalar_t>();
  scalar_t *dhn = dh_next.data_ptr<scalar_t>(), *dcn = dc_next.data_ptr<scalar_t>();
  scalar_t *dh_p = dh.data_ptr<scalar_t>(), *dc_p = dc.data_ptr<scalar_t>();
  scalar_t* dz_p = dz.data_ptr<scalar_t>();
  const int64_t dz_step = dz.size(0) == T ? B * G : 0;  // one step's buffer, reused: no dW
  const RowBlocks blocks(B, 2 * B * G * H);
  const StepGemm<scalar_t> dz_W_hh(W_hh.data_ptr<scalar_t>(), H, G, false, blocks.rows());
  blocks.run([&](int64_t b0, int64_t b1) {
    for (int64_t t = T - 1; t >= 0; --t) {  // step t+1 of the equations
      const scalar_t* a_t = a + t * B * G;        // (B, 4H) [i, f, g, o]
      const scalar_t* c_prev = c + t * B * H;     // (B, H) c_{t-1}
      const scalar_t* c_t = c + (t + 1) * B * H;  // (B, H) c_t
      const scalar_t* dout_t = dout_p + t * B * H;
      scalar_t *dh_t = dh_p + t * B * H, *dc_t = dc_p + t * B * H, *dz_t = dz_p + t * dz_step;
      const int64_t n = rows.end(t, b0, b1);  // rows b0 .. n-1 run
      over_batch(b0, n, G, [&](int64_t b) {
        const scalar_t* ib = a_t + b * G;
        const scalar_t *fb = ib + H, *gb = ib + 2 * H, *ob = ib + 3 * H;
        const scalar_t *cpb = c_prev + b * H, *cb = c_t + b * H, *dob = dout_t + b * H;
        scalar_t *dhnb = dhn + b * H, *dcnb = dcn + b * H;
        scalar_t *dhb = dh_t + b * H, *dcb = dc_t + b * H, *dzb = dz_t + b * G;
        over_row<scalar_t>(H, [&](int64_t j, int64_t m) {
          auto i = load(ib + j, m), f = load(fb + j, m), g = load(gb + j, m);
          auto o = load(ob + j, m);
          const auto k = lstm_local_factors(i, f, g, o, load(cpb + j, m), tanh(load(cb + j, m)));
          auto dh_v = load(dob + j, m) + load(dhnb + j, m);
          auto dc_v = load(dcnb + j, m) + dh_v * k.dc_dh;
          store(dh_v, dhb + j, m), store(dc_v, dcb + j, m);
          store(dc_v * k.dz_i, dzb + j, m);
          store(dc_v * k.dz_f, dzb + H + j, m);
          store(dc_v * k.dz_g, dzb + 2 * H + j, m);
          store(dh_v * k.dz_o, dzb + 3 * H + j, m);
          store(dc_v * f, dcnb + j, m);
        });
      });
      dz_W_hh(n - b0, dz_t + b0 * G, dhn + b0 * H, false);  // dh_next = dz_t W_hh
      zero_ended(dh_t, n, b1, H), zero_ended(dc_t, n, b1, H), zero_ended(dz_t, n, b1, G);
    }
  });
}

// ---------------------------------------------------------------------------------------
// RNN forward, t = 1 .. T:   z_t = (W_in x_t + b) + h_{t-1} W_hh^T,   h_t = act(z_t)
// hs[1:] holds W_in x_t + b on entry and h_t on exit.

// The nonlinearity table of nn/activations.py, mirrored under the same names (a test holds
// the two equal): act(z), and act'(z) written through h = act(z).
enum class Act { kTanh, kRelu, kSigmoid };
constexpr std::array<std::pair<const char*, Act>, 3> kNonlinearities{
    {{"tanh", Act::kTanh}, {"relu", Act::kRelu}, {"sigmoid", Act::kSigmoid}}};

Act parse_act(const std::string& name) {
  for (const auto& [known, act] : kNonlinearities) {
    if (name == known) return act;
  }
  TORCH_CHECK(false, "Unknown nonlinearity ", name);
  return Act::kTanh;  // not reached
}

template <typename scalar_t>
inline Vec<scalar_t> activation(Act act, const Vec<scalar_t>& z) {
  if (act == Act::kTanh) return tanh(z);
  if (act == Act::kSigmoid) return sigmoid(z);
  return at::vec::clamp_min(z, Vec<scalar_t>(0));  // relu, NaN-propagating as torch's
}

template <typename scalar_t>
inline Vec<scalar_t> activation_grad(Act act, const Vec<scalar_t>& h) {
  const Vec<scalar_t> one(1), zero(0);
  if (act == Act::kTanh) return one - h * h;
  if (act == Act::kSigmoid) return h * (one - h);
  return Vec<scalar_t>::blendv(zero, one, h > zero);  // relu: [h > 0]
}

template <typename scalar_t>
void rnn_forward_loop(Tensor& hs, const Tensor& W_hh, Act act, Rows rows) {
  const int64_t T = hs.size(0) - 1, B = hs.size(1), H = hs.size(2);
  scalar_t* h = hs.data_ptr<scalar_t>();
  const RowBlocks blocks(B, 2 * B * H * H);
  const StepGemm<scalar_t> h_W_hhT(W_hh.data_ptr<scalar_t>(), H, H, true, blocks.rows());
  blocks.run([&](int64_t b0, int64_t b1) {
    for (int64_t t = 0; t < T; ++t) {
      const scalar_t* h_prev = h + t * B * H;  // (B, H) h_{t-1}
      scalar_t* z_t = h + (t + 1) * B * H;     // (B, H) z_t, then h_t
      const int64_t n = rows.end(t, b0, b1);   // rows b0 .. n-1 run
      h_W_hhT(n - b0, h_prev + b0 * H, z_t + b0 * H, true);  // z_t += h_{t-1} W_hh^T
      over_batch(b0, n, H, [&](int64_t b) {
        scalar_t* zb = z_t + b * H;
        over_row<scalar_t>(H, [&](int64_t j, int64_t m) {
          store(activation(act, load(zb + j, m)), zb + j, m);
        });
      });
      zero_ended(z_t, n, b1, H);
    }
  });
}

// RNN backward, t = T .. 1, from dh_next = dL/dh_T:
//   dh_t = dout_t + dh_next,  dz_t = dh_t * act'(z_t),  dh_next = dz_t W_hh     (B, H) each
// act'(z_t) through h_t: tanh 1 - h^2, sigmoid h (1 - h), relu [h > 0].

template <typename scalar_t>
void rnn_backward_loop(const Tensor& dout, Tensor& dh_next, const Tensor& hs, const Tensor& W_hh,
                       Act act, Tensor& dh, Tensor& dz, Rows rows) {
  const int64_t T = hs.size(0) - 1, B = hs.size(1), H = hs.size(2);
  const scalar_t *h = hs.data_ptr<scalar_t>(), *dout_p = dout.data_ptr<scalar_t>();
  scalar_t* dhn = dh_next.data_ptr<scalar_t>();
  scalar_t *dh_p = dh.data_ptr<scalar_t>(), *dz_p = dz.data_ptr<scalar_t>();
  const int64_t dz_step = dz.size(0) == T ? B * H : 0;  // one step's buffer, reused: no dW
  const RowBlocks blocks(B, 2 * B * H * H);
  const StepGemm<scalar_t> dz_W_hh(W_hh.data_ptr<scalar_t>(), H, H, false, blocks.rows());
  blocks.run([&](int64_t b0, int64_t b1) {
    for (int64_t t = T - 1; t >= 0; --t) {
      const scalar_t* h_t = h + (t + 1) * B * H;
      const scalar_t* dout_t = dout_p + t * B * H;
      scalar_t *dh_t = dh_p + t * B * H, *dz_t = dz_p + t * dz_step;
      const int64_t n = rows.end(t, b0, b1);  // rows b0 .. n-1 run
      over_batch(b0, n, H, [&](int64_t b) {
        const int64_t o = b * H;
        over_row<scalar_t>(H, [&](int64_t j, int64_t m) {
          auto dh_v = load(dout_t + o + j, m) + load(dhn + o + j, m);
          store(dh_v, dh_t + o + j, m);
          store(dh_v * activation_grad(act, load(h_t + o + j, m)), dz_t + o + j, m);
        });
      });
      dz_W_hh(n - b0, dz_t + b0 * H, dhn + b0 * H, false);  // dh_next = dz_t W_hh
      zero_ended(dh_t, n, b1, H), zero_ended(dz_t, n, b1, H);
    }
  });
}

}  // namespace

// gradflow's Lanczos norms of the LSTM terms and the tridiagonal eigenvalue (uses the helpers
// above).
#include "lanczos.h"
// gradflow's forward bases and backward sweep of the product-norm estimate.
#include "sweeps.h"

namespace {

// ---------------------------------------------------------------------------------------
// Operators (torch.ops.<VANISHING_LIBRARY>.*); the checks make a misuse an error, not a crash.

bool is_real(const Tensor& t) {
  return t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble;
}

// With x, W_ih (and b, or None: no bias) the input term is computed in the loop and gates
// need no content on entry; without x, gates hold W_ih x_t + b.
void lstm_forward(Tensor gates, Tensor hs, Tensor cs, const Tensor& W_hh,
                  const std::optional<Tensor>& batch_sizes, const std::optional<Tensor>& x,
                  const std::optional<Tensor>& W_ih, const std::optional<Tensor>& b) {
  TORCH_CHECK(is_real(gates), "lstm_forward: float32 or float64 only");
  check({{&gates, "gates"}, {&hs, "hs"}, {&cs, "cs"}, {&W_hh, "W_hh"}}, gates);
  const int64_t T = gates.size(0), B = gates.size(1), H = hs.size(2);
  TORCH_CHECK(hs.sizes() == at::IntArrayRef({T + 1, B, H}) && cs.sizes() == hs.sizes() &&
                  gates.size(2) == 4 * H && W_hh.sizes() == at::IntArrayRef({4 * H, H}),
              "lstm_forward: inconsistent shapes");
  TORCH_CHECK(x.has_value() == W_ih.has_value() && (x.has_value() || !b.has_value()),
              "lstm_forward: x and W_ih (and b) come together");
  Tensor W_cat, bias;  // (4H, I+H), (4H,) for the input term in the loop
  if (x.has_value()) {
    check({{&*x, "x"}, {&*W_ih, "W_ih"}}, gates);
    TORCH_CHECK(x->dim() == 3 && x->size(0) == T && x->size(1) == B && W_ih->dim() == 2 &&
                    W_ih->size(0) == 4 * H && W_ih->size(1) == x->size(2) &&
                    (!b.has_value() || b->sizes() == at::IntArrayRef({4 * H})),
                "lstm_forward: inconsistent shapes");
    W_cat = at::cat({*W_ih, W_hh}, 1);
    bias = b.has_value() ? b->contiguous() : at::zeros({4 * H}, gates.options());
    check({{&bias, "b"}}, gates);
  }
  const Rows rows = active_rows(batch_sizes, T, B, "lstm_forward");
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_forward", [&] {
    InputTerm<scalar_t> in;
    if (x.has_value()) {
      in = {x->data_ptr<scalar_t>(), W_cat.data_ptr<scalar_t>(), bias.data_ptr<scalar_t>(),
            x->size(2)};
    }
    lstm_forward_loop<scalar_t>(gates, hs, cs, W_hh, rows, in);
  });
}

// (out (T, B, H), h_n, c_n (B, H)) of lstm_inference_loop; b (4H,) = b_ih + b_hh or None.
std::tuple<Tensor, Tensor, Tensor> lstm_inference(const Tensor& x, const Tensor& h0,
                                                  const Tensor& c0, const Tensor& W_ih,
                                                  const Tensor& W_hh,
                                                  const std::optional<Tensor>& b,
                                                  const std::optional<Tensor>& batch_sizes) {
  TORCH_CHECK(is_real(x), "lstm_inference: float32 or float64 only");
  check({{&x, "x"}, {&W_ih, "W_ih"}, {&W_hh, "W_hh"}}, x);
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), H = W_hh.size(1);
  TORCH_CHECK(W_ih.sizes() == at::IntArrayRef({4 * H, I}) &&
                  W_hh.sizes() == at::IntArrayRef({4 * H, H}) &&
                  h0.sizes() == at::IntArrayRef({B, H}) && c0.sizes() == h0.sizes() &&
                  (!b.has_value() || b->sizes() == at::IntArrayRef({4 * H})),
              "lstm_inference: inconsistent shapes");
  Tensor h_n = h0.clone(at::MemoryFormat::Contiguous);  // (B, H) h_0, then each row's h_n
  Tensor c_n = c0.clone(at::MemoryFormat::Contiguous);  // (B, H) c_0, then each row's c_n
  const Tensor bias = b.has_value() ? b->contiguous() : at::zeros({4 * H}, x.options());
  check({{&h_n, "h0"}, {&c_n, "c0"}, {&bias, "b"}}, x);
  const Tensor W_cat = at::cat({W_ih, W_hh}, 1);  // (4H, I+H) [W_ih, W_hh]
  Tensor out = at::empty({T, B, H}, x.options());  // (T, B, H) h_1 .. h_T
  huge_pages(out);
  const Rows rows = active_rows(batch_sizes, T, B, "lstm_inference");
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_inference", [&] {
    lstm_inference_loop<scalar_t>(x, W_cat, bias, out, h_n, c_n, rows);
  });
  return {out, h_n, c_n};
}

std::tuple<Tensor, Tensor> lstm_backward(const Tensor& dout, const Tensor& dh_n,
                                         const Tensor& dc_n, const Tensor& cs,
                                         const Tensor& gates, const Tensor& W_hh, Tensor dh,
                                         Tensor dc, Tensor dz,
                                         const std::optional<Tensor>& batch_sizes) {
  TORCH_CHECK(is_real(gates), "lstm_backward: float32 or float64 only");
  Tensor dh_next = dh_n.clone(at::MemoryFormat::Contiguous);  // (B, H) becomes dL/dh_0
  Tensor dc_next = dc_n.clone(at::MemoryFormat::Contiguous);  // (B, H) becomes dL/dc_0
  check({{&dout, "dout"}, {&dh_next, "dh_n"}, {&dc_next, "dc_n"}, {&cs, "cs"}, {&W_hh, "W_hh"},
         {&dh, "dh"}, {&dc, "dc"}, {&dz, "dz"}},
        gates);
  const int64_t T = gates.size(0), B = gates.size(1), H = cs.size(2);
  TORCH_CHECK(cs.sizes() == at::IntArrayRef({T + 1, B, H}) && gates.size(2) == 4 * H &&
                  dout.sizes() == at::IntArrayRef({T, B, H}) && dh.sizes() == dout.sizes() &&
                  dc.sizes() == dout.sizes() &&
                  (dz.sizes() == gates.sizes() || dz.sizes() == at::IntArrayRef({1, B, 4 * H})) &&
                  dh_next.sizes() == at::IntArrayRef({B, H}) &&
                  dc_next.sizes() == dh_next.sizes() &&
                  W_hh.sizes() == at::IntArrayRef({4 * H, H}),
              "lstm_backward: inconsistent shapes");
  const Rows rows = active_rows(batch_sizes, T, B, "lstm_backward");
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward", [&] {
    lstm_backward_loop<scalar_t>(dout, dh_next, dc_next, cs, gates, W_hh, dh, dc, dz, rows);
  });
  return {dh_next, dc_next};
}

void rnn_forward(Tensor hs, const Tensor& W_hh, const std::string& nonlinearity,
                 const std::optional<Tensor>& batch_sizes) {
  TORCH_CHECK(is_real(hs), "rnn_forward: float32 or float64 only");
  check({{&hs, "hs"}, {&W_hh, "W_hh"}}, hs);
  const int64_t T = hs.size(0) - 1, B = hs.size(1), H = hs.size(2);
  TORCH_CHECK(W_hh.sizes() == at::IntArrayRef({H, H}), "rnn_forward: inconsistent shapes");
  const Act act = parse_act(nonlinearity);
  const Rows rows = active_rows(batch_sizes, T, B, "rnn_forward");
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnn_forward",
                             [&] { rnn_forward_loop<scalar_t>(hs, W_hh, act, rows); });
}

Tensor rnn_backward(const Tensor& dout, const Tensor& dh_n, const Tensor& hs, const Tensor& W_hh,
                    const std::string& nonlinearity, Tensor dh, Tensor dz,
                    const std::optional<Tensor>& batch_sizes) {
  TORCH_CHECK(is_real(hs), "rnn_backward: float32 or float64 only");
  Tensor dh_next = dh_n.clone(at::MemoryFormat::Contiguous);  // (B, H) becomes dL/dh_0
  check({{&dout, "dout"}, {&dh_next, "dh_n"}, {&hs, "hs"}, {&W_hh, "W_hh"}, {&dh, "dh"},
         {&dz, "dz"}},
        hs);
  const int64_t T = hs.size(0) - 1, B = hs.size(1), H = hs.size(2);
  TORCH_CHECK(dout.sizes() == at::IntArrayRef({T, B, H}) && dh.sizes() == dout.sizes() &&
                  (dz.sizes() == dout.sizes() || dz.sizes() == at::IntArrayRef({1, B, H})) &&
                  dh_next.sizes() == at::IntArrayRef({B, H}) &&
                  W_hh.sizes() == at::IntArrayRef({H, H}),
              "rnn_backward: inconsistent shapes");
  const Act act = parse_act(nonlinearity);
  const Rows rows = active_rows(batch_sizes, T, B, "rnn_backward");
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnn_backward", [&] {
    rnn_backward_loop<scalar_t>(dout, dh_next, hs, W_hh, act, dh, dz, rows);
  });
  return dh_next;
}

// lstm_local_factors over every step and sequence at once (gradflow's step factors, and the
// test that holds it equal to nn/lstm.py's): i, f, g, o, c (T, B, H) activations and c_t,
// each with unit stride along H (views of a (T, B, 4H) gates buffer are fine), c0 (B, H)
// c_0 -> (dc_dh (T, B, H), dz (T, B, 4H)), c_{t-1} being c0 at t = 0. Rows in parallel.
std::tuple<Tensor, Tensor> lstm_local_factors_op(const Tensor& i_in, const Tensor& f_in,
                                                 const Tensor& g_in, const Tensor& o_in,
                                                 const Tensor& c0_in, const Tensor& c_in) {
  TORCH_CHECK(is_real(c_in), "lstm_local_factors: float32 or float64 only");
  TORCH_CHECK(c_in.dim() == 3, "lstm_local_factors: c must be (T, B, H)");
  const int64_t T = c_in.size(0), B = c_in.size(1), H = c_in.size(2), G = 4 * H;
  auto rows_of = [&](const Tensor& t, const char* name) {  // unit stride along H
    TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == c_in.scalar_type() &&
                    t.sizes() == c_in.sizes(),
                "lstm_local_factors: ", name, " must be a CPU (T, B, H) tensor of c's dtype");
    return t.stride(2) == 1 ? t : t.contiguous();
  };
  const std::array<Tensor, 5> in{rows_of(i_in, "i"), rows_of(f_in, "f"), rows_of(g_in, "g"),
                                 rows_of(o_in, "o"), rows_of(c_in, "c")};
  const Tensor c0 = c0_in.contiguous();
  check({{&c0, "c0"}}, c_in);
  TORCH_CHECK(c0.sizes() == at::IntArrayRef({B, H}), "lstm_local_factors: c0 must be (B, H)");
  Tensor dc_dh = at::empty({T, B, H}, c_in.options()), dz = at::empty({T, B, G}, c_in.options());
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, G));
  AT_DISPATCH_FLOATING_TYPES(c_in.scalar_type(), "lstm_local_factors", [&] {
    std::array<const scalar_t*, 5> p;  // i, f, g, o, c
    for (size_t k = 0; k < in.size(); ++k) p[k] = in[k].data_ptr<scalar_t>();
    const scalar_t* c0_p = c0.data_ptr<scalar_t>();
    scalar_t *k_p = dc_dh.data_ptr<scalar_t>(), *dz_p = dz.data_ptr<scalar_t>();
    auto at_row = [&](size_t k, int64_t t, int64_t b) {  // row (t, b) of input k
      return p[k] + t * in[k].stride(0) + b * in[k].stride(1);
    };
    at::parallel_for(0, T * B, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {  // row r: step r / B, sequence r % B
        const int64_t t = r / B, b = r % B;
        const scalar_t *ib = at_row(0, t, b), *fb = at_row(1, t, b), *gb = at_row(2, t, b);
        const scalar_t *ob = at_row(3, t, b), *cb = at_row(4, t, b);
        const scalar_t* cpb = t == 0 ? c0_p + b * H : at_row(4, t - 1, b);
        scalar_t *kb = k_p + r * H, *dzb = dz_p + r * G;
        over_row<scalar_t>(H, [&](int64_t j, int64_t n) {
          const auto k = lstm_local_factors(load(ib + j, n), load(fb + j, n), load(gb + j, n),
                                            load(ob + j, n), load(cpb + j, n),
                                            tanh(load(cb + j, n)));
          store(k.dc_dh, kb + j, n);
          store(k.dz_i, dzb + j, n), store(k.dz_f, dzb + H + j, n);
          store(k.dz_g, dzb + 2 * H + j, n), store(k.dz_o, dzb + 3 * H + j, n);
        });
      }
    });
  });
  return {dc_dh, dz};
}

// Lanes of the vectors this build runs (16 floats for the AVX-512 variant, 8 for AVX2 and
// generic), so a test can tell which instructions a loaded variant executes.
int64_t vector_width(bool float64) {
  return float64 ? Vec<double>::size() : Vec<float>::size();
}

// The names of the kernel's nonlinearity table, for the test that holds it equal to Python's.
std::vector<std::string> nonlinearities() {
  std::vector<std::string> names;
  for (const auto& entry : kNonlinearities) names.emplace_back(entry.first);
  return names;
}

// Tuning knobs (gemm.h's Blas), for measurements and tests; value < 0 only reads. Returns the
// value in effect. "gemm": the GEMM of the loops, 0 ATen's mm, 1 the BLAS (sgemm_/dgemm_),
// 2 MKL's packed GEMM, 3 oneDNN, 4 auto (the load-time choice); "parallel_gemm_flops",
// "elementwise_grain", "split_rows", "fused_input_max", "huge_page_bytes" as in Blas.
int64_t config(const std::string& key, int64_t value) {
  Blas& b = blas();
  std::atomic<int64_t>* field = key == "gemm"                  ? &b.gemm
                                : key == "parallel_gemm_flops" ? &b.parallel_gemm_flops
                                : key == "elementwise_grain"   ? &b.elementwise_grain
                                : key == "split_rows"          ? &b.split_rows
                                : key == "fused_input_max"     ? &b.fused_input_max
                                : key == "huge_page_bytes"     ? &b.huge_page_bytes
                                                               : nullptr;
  TORCH_CHECK(field != nullptr, "unknown kernel setting ", key,
              "; expected gemm, parallel_gemm_flops, elementwise_grain, split_rows, "
              "fused_input_max or huge_page_bytes");
  if (key == "gemm") TORCH_CHECK(value <= 4, "gemm: expected 0 .. 4, got ", value);
  if (value >= 0) field->store(value);
  return field->load();
}

// Whether this process has GEMM backend g (0 .. 3 as in config).
bool gemm_available(int64_t g) {
  return blas().has(static_cast<Gemm>(g));
}

// kAuto's table: a call of f flops uses gemms[k] for the first k with f <= flops[k].
void set_gemm_choice(std::vector<int64_t> flops, std::vector<int64_t> gemms) {
  TORCH_CHECK(flops.size() == gemms.size() && !flops.empty() && flops.size() <= Blas::kChoices,
              "set_gemm_choice: 1 .. ", Blas::kChoices, " entries of (flops, gemm)");
  Blas& b = blas();
  for (size_t k = 0; k < Blas::kChoices; ++k) {
    const bool given = k < flops.size();
    b.choice_gemm[k].store(given ? gemms[k] : gemms.back());
    b.choice_flops[k].store(given && k + 1 < flops.size() ? flops[k]
                                                          : std::numeric_limits<int64_t>::max());
  }
}

// The backend a loop uses for a float32 call of (rows, K) x (K, N) (as config's numbers).
int64_t gemm_for(int64_t rows, int64_t N, int64_t K) {
  return static_cast<int64_t>(choose_gemm<float>(2 * rows * N * K));
}

double gemm_time_op(int64_t g, int64_t rows, int64_t N, int64_t K, bool trans_w, int64_t threads,
                    int64_t repeats) {
  TORCH_CHECK(g >= 0 && g <= 3 && blas().has(static_cast<Gemm>(g)), "gemm_time: backend ", g,
              " is not available");
  TORCH_CHECK(rows > 0 && N > 0 && K > 0 && repeats > 0, "gemm_time: sizes must be positive");
  return gemm_time(static_cast<Gemm>(g), rows, N, K, trans_w, threads, repeats);
}

}  // namespace

// The library's name includes the variant (and a hash of the sources): several variants can
// be loaded in one process (the tests run each one the CPU supports).
#ifndef VANISHING_LIBRARY
#define VANISHING_LIBRARY vanishing_bptt
#endif
#define VANISHING_TORCH_LIBRARY(name, m) TORCH_LIBRARY(name, m)

VANISHING_TORCH_LIBRARY(VANISHING_LIBRARY, m) {
  m.def(
      "lstm_forward(Tensor(a!) gates, Tensor(b!) hs, Tensor(c!) cs, Tensor W_hh, "
      "Tensor? batch_sizes, Tensor? x, Tensor? W_ih, Tensor? b) -> ()",
      &lstm_forward);
  m.def(
      "lstm_inference(Tensor x, Tensor h0, Tensor c0, Tensor W_ih, Tensor W_hh, Tensor? b, "
      "Tensor? batch_sizes) -> (Tensor, Tensor, Tensor)",
      &lstm_inference);
  m.def(
      "lstm_backward(Tensor dout, Tensor dh_n, Tensor dc_n, Tensor cs, Tensor gates, "
      "Tensor W_hh, Tensor(a!) dh, Tensor(b!) dc, Tensor(c!) dz, Tensor? batch_sizes) -> "
      "(Tensor, Tensor)",
      &lstm_backward);
  m.def(
      "rnn_forward(Tensor(a!) hs, Tensor W_hh, str nonlinearity, Tensor? batch_sizes) -> ()",
      &rnn_forward);
  m.def(
      "rnn_backward(Tensor dout, Tensor dh_n, Tensor hs, Tensor W_hh, str nonlinearity, "
      "Tensor(a!) dh, Tensor(b!) dz, Tensor? batch_sizes) -> Tensor",
      &rnn_backward);
  m.def("config(str key, int value) -> int", &config);
  m.def("find_onednn(str name) -> bool", &find_onednn);
  m.def("gemm_available(int gemm) -> bool", &gemm_available);
  m.def("set_gemm_choice(int[] flops, int[] gemms) -> ()", &set_gemm_choice);
  m.def("gemm_for(int rows, int N, int K) -> int", &gemm_for);
  m.def(
      "gemm_time(int gemm, int rows, int N, int K, bool trans_w, int threads, int repeats) "
      "-> float",
      &gemm_time_op);
  m.def(
      "lstm_local_factors(Tensor i, Tensor f, Tensor g, Tensor o, Tensor c0, Tensor c) -> "
      "(Tensor, Tensor)",
      &lstm_local_factors_op);
  m.def("nonlinearities() -> str[]", &nonlinearities);
  m.def("vector_width(bool float64) -> int", &vector_width);
  m.def("huge_pages(Tensor t) -> ()", &huge_pages);
  m.def(
      "lstm_term_norms(Tensor f, Tensor alpha, Tensor beta, Tensor U, Tensor start, "
      "int iterations) -> Tensor",
      &lstm_term_norms);
  m.def("tridiagonal_max_eigenvalue(Tensor d, Tensor e) -> Tensor", &tridiagonal_max_eigenvalue);
  m.def("gram_max_eigenvalue(Tensor Y) -> Tensor", &gram_max_eigenvalue);
  m.def(
      "sweep_forward(Tensor Z, Tensor a, Tensor W, Tensor? f, Tensor? beta, int[] starts, "
      "int qr_every, Tensor? first, bool joint) -> Tensor",
      &sweep_forward);
  m.def(
      "sweep_back(Tensor Q, Tensor a, Tensor W, Tensor? f, Tensor? beta, int[] firsts, "
      "int[] lasts, int[] rows) -> (Tensor, Tensor)",
      &sweep_back);
}
