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
// Variable lengths (nn/packing.py): with batch_sizes (T,), the batch is sorted by decreasing
// length and step t runs on its first n = batch_sizes[t] rows only (GEMM and elementwise);
// the loops zero the other rows of the step's outputs (ended sequences), and the rows
// n .. B-1 of dh_next, dc_next keep dh_n, dc_n until the backward loop reaches those
// sequences' last steps.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <dlfcn.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <initializer_list>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using at::Tensor;

// ---------------------------------------------------------------------------------------
// GEMM: C (M, N) = alpha op(A) op(B) + beta C, row-major, through Fortran BLAS.
// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, hence the swap below.

template <typename scalar_t>
using fortran_gemm = void (*)(const char*, const char*, const int*, const int*, const int*,
                              const scalar_t*, const scalar_t*, const int*, const scalar_t*,
                              const int*, const scalar_t*, scalar_t*, const int*);

using set_threads_fn = int (*)(int);

struct Blas {
  fortran_gemm<float> sgemm = nullptr;
  fortran_gemm<double> dgemm = nullptr;
  set_threads_fn mkl_set_threads_local = nullptr;  // MKL_Set_Num_Threads_Local, if MKL
  // false: ATen's mm (for measurement, and where no symbol is found)
  std::atomic<bool> use_raw{true};
  // A time loop whose per-step GEMM has fewer flops than this runs the BLAS on one thread:
  // below it, waking a second thread every step costs more than it saves. Measured on 2
  // cores: at B = 64, H = 64 (2.1 MFLOP a step) two threads are ~15 % faster than one; at
  // H = 16 (33 kFLOP) one thread is. Re-tune with kernel.config("parallel_gemm_flops", n).
  std::atomic<int64_t> parallel_gemm_flops{1 << 20};
  // Batch rows of the elementwise pass run in parallel in chunks of at least this many elements.
  std::atomic<int64_t> elementwise_grain{32768};

  Blas() {
    // libtorch_cpu is loaded (we link against it); its BLAS (MKL in the x86 wheels) is
    // searched through its handle and then globally.
    void* handle = dlopen("libtorch_cpu.so", RTLD_LAZY | RTLD_NOLOAD);
    for (void* h : {handle, RTLD_DEFAULT}) {
      if (h == nullptr) continue;
      if (sgemm == nullptr) sgemm = reinterpret_cast<fortran_gemm<float>>(dlsym(h, "sgemm_"));
      if (dgemm == nullptr) dgemm = reinterpret_cast<fortran_gemm<double>>(dlsym(h, "dgemm_"));
      if (mkl_set_threads_local == nullptr)
        mkl_set_threads_local =
            reinterpret_cast<set_threads_fn>(dlsym(h, "MKL_Set_Num_Threads_Local"));
    }
  }
};

Blas& blas() {
  static Blas b;  // thread-safe initialisation (C++11)
  return b;
}

template <typename scalar_t>
fortran_gemm<scalar_t> raw_gemm() {
  const bool use_raw = blas().use_raw.load(std::memory_order_relaxed);
  if constexpr (std::is_same_v<scalar_t, float>) {
    return use_raw ? blas().sgemm : nullptr;
  } else {
    return use_raw ? blas().dgemm : nullptr;
  }
}

// The Fortran BLAS takes its sizes as pointers to its integer type: 32-bit (LP64, torch's
// MKL and OpenBLAS) or 64-bit (ILP64). Each size is stored in an int64_t: on a little-endian
// CPU its first 4 bytes are the same value as an int32, so both widths read it right once
// it fits in 32 bits (checked below; larger sizes go to ATen, which takes int64 sizes).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the BLAS size passing needs a little-endian CPU");

inline bool fits_blas_int(std::initializer_list<int64_t> sizes) {
  for (int64_t v : sizes) {
    if (v < 0 || v > std::numeric_limits<int32_t>::max()) return false;
  }
  return true;
}

template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, scalar_t alpha,
          const scalar_t* A, int64_t lda, const scalar_t* B, int64_t ldb, scalar_t beta,
          scalar_t* C, int64_t ldc) {
  auto f = raw_gemm<scalar_t>();
  if (f != nullptr && fits_blas_int({M, N, K, lda, ldb, ldc})) {
    const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    const int64_t m = N, n = M, k = K, la = ldb, lb = lda, lc = ldc;
    auto p = [](const int64_t& v) { return reinterpret_cast<const int*>(&v); };
    f(&tb, &ta, p(m), p(n), p(k), &alpha, B, p(la), A, p(lb), &beta, C, p(lc));
    return;
  }
  // ATen fallback: same product through the dispatcher (a few microseconds per call).
  auto opt = at::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value);
  auto mat = [&](const scalar_t* p, int64_t rows, int64_t cols, int64_t ld, bool t) {
    Tensor m = at::from_blob(const_cast<scalar_t*>(p), {t ? cols : rows, t ? rows : cols},
                             {ld, 1}, opt);
    return t ? m.t() : m;
  };
  Tensor a = mat(A, M, K, lda, trans_a), b = mat(B, K, N, ldb, trans_b);
  Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, opt);
  if (beta == scalar_t(0)) {
    at::mm_out(c, a, b);
  } else {
    c.addmm_(a, b, beta, alpha);
  }
}

// One BLAS thread for the duration of a time loop with small per-step GEMMs (MKL only).
class SmallGemmThreads {
 public:
  explicit SmallGemmThreads(int64_t step_flops) {
    const int64_t threshold = blas().parallel_gemm_flops.load(std::memory_order_relaxed);
    if (step_flops < threshold && blas().mkl_set_threads_local != nullptr) {
      previous_ = blas().mkl_set_threads_local(1);
      active_ = true;
    }
  }
  ~SmallGemmThreads() {
    if (active_) blas().mkl_set_threads_local(previous_);
  }
  SmallGemmThreads(const SmallGemmThreads&) = delete;
  SmallGemmThreads& operator=(const SmallGemmThreads&) = delete;

 private:
  bool active_ = false;
  int previous_ = 0;
};

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

// Batch rows in parallel once a step has enough elements to pay for the threads.
template <typename F>
inline void over_batch(int64_t B, int64_t row_elems, const F& body) {
  const int64_t min_elems = blas().elementwise_grain.load(std::memory_order_relaxed);
  const int64_t grain = std::max<int64_t>(1, min_elems / std::max<int64_t>(1, row_elems));
  at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) body(b);
  });
}

// The rows that run at step t: batch_sizes[t] of a variable-length batch, or all B.
struct Rows {
  const int64_t* batch_sizes;  // (T,) or nullptr
  int64_t B;
  int64_t operator()(int64_t t) const { return batch_sizes ? batch_sizes[t] : B; }
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

// Rows n .. B-1 of one step's (B, width) buffer: the ended sequences' steps are zero.
template <typename scalar_t>
inline void zero_ended(scalar_t* step, int64_t n, int64_t B, int64_t width) {
  if (n < B) std::fill(step + n * width, step + B * width, scalar_t(0));
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
// LSTM forward, t = 1 .. T:
//   [z_i, z_f, z_g, z_o] = (W_ih x_t + b) + h_{t-1} W_hh^T        gates_t (B, 4H)
//   i = sigma(z_i)  f = sigma(z_f)  g = tanh(z_g)  o = sigma(z_o)  (written over gates_t)
//   c_t = f * c_{t-1} + i * g        h_t = o * tanh(c_t)            (B, H)

template <typename scalar_t>
void lstm_forward_loop(Tensor& gates, Tensor& hs, Tensor& cs, const Tensor& W_hh, Rows rows) {
  const int64_t T = gates.size(0), B = gates.size(1), H = hs.size(2), G = 4 * H;
  scalar_t* z = gates.data_ptr<scalar_t>();
  scalar_t* h = hs.data_ptr<scalar_t>();
  scalar_t* c = cs.data_ptr<scalar_t>();
  const scalar_t* W = W_hh.data_ptr<scalar_t>();
  SmallGemmThreads threads(2 * B * G * H);
  for (int64_t t = 0; t < T; ++t) {
    scalar_t* z_t = z + t * B * G;            // (B, 4H) holds W_ih x_t + b on entry
    const scalar_t* h_prev = h + t * B * H;   // (B, H) h_{t-1}
    const scalar_t* c_prev = c + t * B * H;   // (B, H) c_{t-1}
    scalar_t* h_t = h + (t + 1) * B * H;      // (B, H)
    scalar_t* c_t = c + (t + 1) * B * H;      // (B, H)
    const int64_t n_rows = rows(t);           // rows 0 .. n_rows-1 run
    gemm<scalar_t>(false, true, n_rows, G, H, 1, h_prev, H, W, H, 1, z_t, G);  // += h W_hh^T
    over_batch(n_rows, G, [&](int64_t b) {
      scalar_t* zi = z_t + b * G;
      scalar_t *zf = zi + H, *zg = zi + 2 * H, *zo = zi + 3 * H;
      const scalar_t* cp = c_prev + b * H;
      scalar_t *cb = c_t + b * H, *hb = h_t + b * H;
      over_row<scalar_t>(H, [&](int64_t j, int64_t n) {
        auto i = sigmoid(load(zi + j, n)), f = sigmoid(load(zf + j, n));
        auto g = tanh(load(zg + j, n)), o = sigmoid(load(zo + j, n));
        auto c_new = f * load(cp + j, n) + i * g;
        store(i, zi + j, n), store(f, zf + j, n), store(g, zg + j, n), store(o, zo + j, n);
        store(c_new, cb + j, n);
        store(o * tanh(c_new), hb + j, n);
      });
    });
    zero_ended(z_t, n_rows, B, G), zero_ended(h_t, n_rows, B, H), zero_ended(c_t, n_rows, B, H);
  }
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
  const scalar_t* W = W_hh.data_ptr<scalar_t>();
  scalar_t *dhn = dh_next.data_ptr<scalar_t>(), *dcn = dc_next.data_ptr<scalar_t>();
  scalar_t *dh_p = dh.data_ptr<scalar_t>(), *dc_p = dc.data_ptr<scalar_t>();
  scalar_t* dz_p = dz.data_ptr<scalar_t>();
  SmallGemmThreads threads(2 * B * G * H);
  for (int64_t t = T - 1; t >= 0; --t) {  // step t+1 of the equations
    const scalar_t* a_t = a + t * B * G;        // (B, 4H) [i, f, g, o]
    const scalar_t* c_prev = c + t * B * H;     // (B, H) c_{t-1}
    const scalar_t* c_t = c + (t + 1) * B * H;  // (B, H) c_t
    const scalar_t* dout_t = dout_p + t * B * H;
    scalar_t *dh_t = dh_p + t * B * H, *dc_t = dc_p + t * B * H, *dz_t = dz_p + t * B * G;
    const int64_t n_rows = rows(t);  // rows 0 .. n_rows-1 run
    over_batch(n_rows, G, [&](int64_t b) {
      const scalar_t* ib = a_t + b * G;
      const scalar_t *fb = ib + H, *gb = ib + 2 * H, *ob = ib + 3 * H;
      const scalar_t *cpb = c_prev + b * H, *cb = c_t + b * H, *dob = dout_t + b * H;
      scalar_t *dhnb = dhn + b * H, *dcnb = dcn + b * H, *dhb = dh_t + b * H, *dcb = dc_t + b * H;
      scalar_t* dzb = dz_t + b * G;
      over_row<scalar_t>(H, [&](int64_t j, int64_t n) {
        auto i = load(ib + j, n), f = load(fb + j, n), g = load(gb + j, n), o = load(ob + j, n);
        const auto k = lstm_local_factors(i, f, g, o, load(cpb + j, n), tanh(load(cb + j, n)));
        auto dh_v = load(dob + j, n) + load(dhnb + j, n);
        auto dc_v = load(dcnb + j, n) + dh_v * k.dc_dh;
        store(dh_v, dhb + j, n), store(dc_v, dcb + j, n);
        store(dc_v * k.dz_i, dzb + j, n);
        store(dc_v * k.dz_f, dzb + H + j, n);
        store(dc_v * k.dz_g, dzb + 2 * H + j, n);
        store(dh_v * k.dz_o, dzb + 3 * H + j, n);
        store(dc_v * f, dcnb + j, n);
      });
    });
    gemm<scalar_t>(false, false, n_rows, H, G, 1, dz_t, G, W, H, 0, dhn, H);  // dz_t W_hh
    zero_ended(dh_t, n_rows, B, H), zero_ended(dc_t, n_rows, B, H), zero_ended(dz_t, n_rows, B, G);
  }
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
  const scalar_t* W = W_hh.data_ptr<scalar_t>();
  SmallGemmThreads threads(2 * B * H * H);
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* h_prev = h + t * B * H;  // (B, H) h_{t-1}
    scalar_t* z_t = h + (t + 1) * B * H;     // (B, H) z_t, then h_t
    const int64_t n_rows = rows(t);          // rows 0 .. n_rows-1 run
    gemm<scalar_t>(false, true, n_rows, H, H, 1, h_prev, H, W, H, 1, z_t, H);  // += h W_hh^T
    over_batch(n_rows, H, [&](int64_t b) {
      scalar_t* zb = z_t + b * H;
      over_row<scalar_t>(H, [&](int64_t j, int64_t n) {
        store(activation(act, load(zb + j, n)), zb + j, n);
      });
    });
    zero_ended(z_t, n_rows, B, H);
  }
}

// RNN backward, t = T .. 1, from dh_next = dL/dh_T:
//   dh_t = dout_t + dh_next,  dz_t = dh_t * act'(z_t),  dh_next = dz_t W_hh     (B, H) each
// act'(z_t) through h_t: tanh 1 - h^2, sigmoid h (1 - h), relu [h > 0].

template <typename scalar_t>
void rnn_backward_loop(const Tensor& dout, Tensor& dh_next, const Tensor& hs, const Tensor& W_hh,
                       Act act, Tensor& dh, Tensor& dz, Rows rows) {
  const int64_t T = hs.size(0) - 1, B = hs.size(1), H = hs.size(2);
  const scalar_t *h = hs.data_ptr<scalar_t>(), *dout_p = dout.data_ptr<scalar_t>();
  const scalar_t* W = W_hh.data_ptr<scalar_t>();
  scalar_t* dhn = dh_next.data_ptr<scalar_t>();
  scalar_t *dh_p = dh.data_ptr<scalar_t>(), *dz_p = dz.data_ptr<scalar_t>();
  SmallGemmThreads threads(2 * B * H * H);
  for (int64_t t = T - 1; t >= 0; --t) {
    const scalar_t* h_t = h + (t + 1) * B * H;
    const scalar_t* dout_t = dout_p + t * B * H;
    scalar_t *dh_t = dh_p + t * B * H, *dz_t = dz_p + t * B * H;
    const int64_t n_rows = rows(t);  // rows 0 .. n_rows-1 run
    over_batch(n_rows, H, [&](int64_t b) {
      const int64_t o = b * H;
      over_row<scalar_t>(H, [&](int64_t j, int64_t n) {
        auto dh_v = load(dout_t + o + j, n) + load(dhn + o + j, n);
        store(dh_v, dh_t + o + j, n);
        store(dh_v * activation_grad(act, load(h_t + o + j, n)), dz_t + o + j, n);
      });
    });
    gemm<scalar_t>(false, false, n_rows, H, H, 1, dz_t, H, W, H, 0, dhn, H);  // dz_t W_hh
    zero_ended(dh_t, n_rows, B, H), zero_ended(dz_t, n_rows, B, H);
  }
}

// ---------------------------------------------------------------------------------------
// Operators (torch.ops.vanishing_bptt.*); the checks make a misuse an error, not a crash.

bool is_real(const Tensor& t) {
  return t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble;
}

void lstm_forward(Tensor gates, Tensor hs, Tensor cs, const Tensor& W_hh,
                  const std::optional<Tensor>& batch_sizes) {
  TORCH_CHECK(is_real(gates), "lstm_forward: float32 or float64 only");
  check({{&gates, "gates"}, {&hs, "hs"}, {&cs, "cs"}, {&W_hh, "W_hh"}}, gates);
  const int64_t T = gates.size(0), B = gates.size(1), H = hs.size(2);
  TORCH_CHECK(hs.sizes() == at::IntArrayRef({T + 1, B, H}) && cs.sizes() == hs.sizes() &&
                  gates.size(2) == 4 * H && W_hh.sizes() == at::IntArrayRef({4 * H, H}),
              "lstm_forward: inconsistent shapes");
  const Rows rows = active_rows(batch_sizes, T, B, "lstm_forward");
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_forward",
                             [&] { lstm_forward_loop<scalar_t>(gates, hs, cs, W_hh, rows); });
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
                  dc.sizes() == dout.sizes() && dz.sizes() == gates.sizes() &&
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
                  dz.sizes() == dout.sizes() && dh_next.sizes() == at::IntArrayRef({B, H}) &&
                  W_hh.sizes() == at::IntArrayRef({H, H}),
              "rnn_backward: inconsistent shapes");
  const Act act = parse_act(nonlinearity);
  const Rows rows = active_rows(batch_sizes, T, B, "rnn_backward");
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "rnn_backward", [&] {
    rnn_backward_loop<scalar_t>(dout, dh_next, hs, W_hh, act, dh, dz, rows);
  });
  return dh_next;
}

// lstm_local_factors over every step at once, for the test that holds it equal to nn/lstm.py's:
// gates (T, B, 4H) activations, cs (T+1, B, H) -> (dc_dh (T, B, H), dz (T, B, 4H)).
std::tuple<Tensor, Tensor> lstm_local_factors_op(const Tensor& gates_in, const Tensor& cs_in) {
  TORCH_CHECK(is_real(gates_in), "lstm_local_factors: float32 or float64 only");
  const Tensor gates = gates_in.contiguous(), cs = cs_in.contiguous();
  check({{&gates, "gates"}, {&cs, "cs"}}, gates);
  const int64_t T = gates.size(0), B = gates.size(1), H = cs.size(2), G = 4 * H;
  TORCH_CHECK(cs.sizes() == at::IntArrayRef({T + 1, B, H}) && gates.size(2) == G,
              "lstm_local_factors: inconsistent shapes");
  Tensor dc_dh = at::empty({T, B, H}, gates.options()), dz = at::empty_like(gates);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_local_factors", [&] {
    const scalar_t *a = gates.data_ptr<scalar_t>(), *c = cs.data_ptr<scalar_t>();
    scalar_t *k_p = dc_dh.data_ptr<scalar_t>(), *dz_p = dz.data_ptr<scalar_t>();
    for (int64_t r = 0; r < T * B; ++r) {  // row r: step r / B, sequence r % B
      const scalar_t *ib = a + r * G, *cpb = c + r * H, *cb = c + (r + B) * H;
      scalar_t *kb = k_p + r * H, *dzb = dz_p + r * G;
      over_row<scalar_t>(H, [&](int64_t j, int64_t n) {
        const auto k = lstm_local_factors(load(ib + j, n), load(ib + H + j, n),
                                          load(ib + 2 * H + j, n), load(ib + 3 * H + j, n),
                                          load(cpb + j, n), tanh(load(cb + j, n)));
        store(k.dc_dh, kb + j, n);
        store(k.dz_i, dzb + j, n), store(k.dz_f, dzb + H + j, n);
        store(k.dz_g, dzb + 2 * H + j, n), store(k.dz_o, dzb + 3 * H + j, n);
      });
    }
  });
  return {dc_dh, dz};
}

// The names of the kernel's nonlinearity table, for the test that holds it equal to Python's.
std::vector<std::string> nonlinearities() {
  std::vector<std::string> names;
  for (const auto& entry : kNonlinearities) names.emplace_back(entry.first);
  return names;
}

// Tuning knobs, for measurements: "blas" 1 calls sgemm_/dgemm_ directly, 0 ATen's mm;
// "parallel_gemm_flops" and "elementwise_grain" as in Blas. value < 0 only reads. Returns the
// value in effect ("blas" reads 0 where the BLAS symbols were not found).
int64_t config(const std::string& key, int64_t value) {
  Blas& b = blas();
  if (key == "blas") {
    if (value >= 0) b.use_raw.store(value != 0);
    return b.use_raw.load() && b.sgemm != nullptr && b.dgemm != nullptr;
  }
  std::atomic<int64_t>* field = key == "parallel_gemm_flops" ? &b.parallel_gemm_flops
                                : key == "elementwise_grain" ? &b.elementwise_grain
                                                             : nullptr;
  TORCH_CHECK(field != nullptr, "unknown kernel setting ", key,
              "; expected blas, parallel_gemm_flops or elementwise_grain");
  if (value >= 0) field->store(value);
  return field->load();
}

}  // namespace

TORCH_LIBRARY(vanishing_bptt, m) {
  m.def(
      "lstm_forward(Tensor(a!) gates, Tensor(b!) hs, Tensor(c!) cs, Tensor W_hh, "
      "Tensor? batch_sizes) -> ()",
      &lstm_forward);
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
  m.def("lstm_local_factors(Tensor gates, Tensor cs) -> (Tensor, Tensor)", &lstm_local_factors_op);
  m.def("nonlinearities() -> str[]", &nonlinearities);
}
