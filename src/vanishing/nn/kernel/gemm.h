// The per-step product of the time loops, C (n, N) (+)= A (n, K) op(W) with W fixed for the
// whole loop, through the fastest GEMM this CPU has (included by bptt.cpp).
//
// Backends (`Gemm`): the Fortran BLAS that torch links (sgemm_ / dgemm_ of MKL in the x86
// wheels, found at load time), MKL's packed GEMM (W packed once per loop), oneDNN through the
// dispatcher (`mkldnn::_linear_pointwise` with W prepacked by to_mkldnn(): a private op, looked
// up at load and skipped if absent), and ATen's mm (where no BLAS symbol is found, or a size
// does not fit the BLAS's int). `kAuto` picks per call size from a table that kernel/__init__.py
// fills at load from a short measurement of each backend (`gemm_time`); float64 always takes
// the BLAS. The tuning knobs are atomics: a loop may run while another thread changes them.

#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace {

using at::Tensor;

enum class Gemm : int64_t { kAten = 0, kBlas = 1, kMklPacked = 2, kOneDnn = 3, kAuto = 4 };

template <typename scalar_t>
using fortran_gemm = void (*)(const char*, const char*, const int*, const int*, const int*,
                              const scalar_t*, const scalar_t*, const int*, const scalar_t*,
                              const int*, const scalar_t*, scalar_t*, const int*);
using set_threads_fn = int (*)(int);
// MKL's packed GEMM (cblas, row-major): get_size(identifier, m, n, k), pack(layout,
// identifier, trans, m, n, k, alpha, src, ld, dest), compute(layout, transa, transb, m, n, k,
// a, lda, b, ldb, beta, c, ldc).
using pack_size_fn = size_t (*)(int, int, int, int);
using pack_fn = void (*)(int, int, int, int, int, int, float, const float*, int, float*);
using compute_fn = void (*)(int, int, int, int, int, int, const float*, int, const float*, int,
                            float, float*, int);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kBMatrix = 162, kPacked = 151;

// mkldnn::_linear_pointwise(Tensor X, Tensor W, Tensor? B, str attr, Scalar?[] scalars,
// str? algorithm) -> Tensor: Y = X W^T (+ B), W (out, in).
using LinearPointwise = Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&,
                               c10::string_view, c10::List<std::optional<c10::Scalar>>,
                               std::optional<c10::string_view>);
constexpr const char* kOneDnnOp = "mkldnn::_linear_pointwise";

struct Blas {
  fortran_gemm<float> sgemm = nullptr;
  fortran_gemm<double> dgemm = nullptr;
  set_threads_fn mkl_set_threads_local = nullptr;  // MKL_Set_Num_Threads_Local, if MKL
  pack_size_fn pack_size = nullptr;                // cblas_sgemm_pack_get_size, if MKL
  pack_fn pack = nullptr;                          // cblas_sgemm_pack
  compute_fn compute = nullptr;                    // cblas_sgemm_compute
  std::optional<c10::TypedOperatorHandle<LinearPointwise>> onednn;  // set by find_onednn
  std::mutex onednn_mutex;  // guards `onednn` while find_onednn changes it

  // The GEMM the loops use: a Gemm value (kAuto: by `choice`).
  std::atomic<int64_t> gemm{static_cast<int64_t>(Gemm::kAuto)};
  // kAuto's table, from the load-time measurement: a call of f flops uses choice_gemm[k] for
  // the first k with f <= choice_flops[k] (the last entry: any size). Until it is set: BLAS.
  static constexpr int kChoices = 8;
  std::array<std::atomic<int64_t>, kChoices> choice_flops{};
  std::array<std::atomic<int64_t>, kChoices> choice_gemm{};
  // A time loop whose per-step GEMM has fewer flops than this runs the BLAS on one thread
  // when the loop itself runs on one block of rows (see RowBlocks).
  std::atomic<int64_t> parallel_gemm_flops{1 << 20};
  // Batch rows of the elementwise pass run in parallel in chunks of at least this many
  // elements (one block of rows only; the blocks of RowBlocks are already in parallel).
  std::atomic<int64_t> elementwise_grain{32768};
  // RowBlocks: each thread takes a block of at least this many rows (0: never split).
  std::atomic<int64_t> split_rows{4};
  // The LSTM forward computes the input term in its step GEMM (InputTerm in bptt.cpp) when
  // the input size is at most this (else one all-steps GEMM before the loop).
  std::atomic<int64_t> fused_input_max{64};
  // Buffers of at least this many bytes are backed by transparent huge pages where the
  // kernel allows it (madvise; 0: never), see huge_pages in bptt.cpp.
  std::atomic<int64_t> huge_page_bytes{4 << 20};

  Blas() {
    // libtorch_cpu is loaded (we link against it); its BLAS (MKL in the x86 wheels) is
    // searched through its handle and then globally.
    void* handle = dlopen("libtorch_cpu.so", RTLD_LAZY | RTLD_NOLOAD);
    for (void* h : {handle, RTLD_DEFAULT}) {
      if (h == nullptr) continue;
      find(h, sgemm, "sgemm_"), find(h, dgemm, "dgemm_");
      find(h, mkl_set_threads_local, "MKL_Set_Num_Threads_Local");
      find(h, pack_size, "cblas_sgemm_pack_get_size"), find(h, pack, "cblas_sgemm_pack");
      find(h, compute, "cblas_sgemm_compute");
    }
    for (auto& c : choice_gemm) c.store(static_cast<int64_t>(Gemm::kBlas));
    for (auto& c : choice_flops) c.store(std::numeric_limits<int64_t>::max());
  }

  template <typename F>
  static void find(void* handle, F& f, const char* name) {
    if (f == nullptr) f = reinterpret_cast<F>(dlsym(handle, name));
  }

  bool has(Gemm g) {
    switch (g) {
      case Gemm::kAten: return true;
      case Gemm::kBlas: return sgemm != nullptr && dgemm != nullptr;
      case Gemm::kMklPacked: return pack_size != nullptr && pack != nullptr && compute != nullptr;
      case Gemm::kOneDnn: {
        std::lock_guard<std::mutex> lock(onednn_mutex);
        return onednn.has_value();
      }
      default: return false;
    }
  }
};

Blas& blas() {
  static Blas b;  // thread-safe initialisation (C++11)
  return b;
}

// Looks the oneDNN operator up by name (kOneDnnOp at load; a test passes a missing name to
// check the fallback). Returns whether it was found; absent, kOneDnn falls back to the BLAS.
bool find_onednn(const std::string& name) {
  auto handle = c10::Dispatcher::singleton().findSchema({name, ""});
  std::lock_guard<std::mutex> lock(blas().onednn_mutex);
  blas().onednn.reset();
  if (handle.has_value() && at::hasMKLDNN()) blas().onednn = handle->typed<LinearPointwise>();
  return blas().onednn.has_value();
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

// C (M, N) = alpha op(A) op(B) + beta C, row-major, through the Fortran BLAS (use_blas) or
// ATen. Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, hence the swap.
template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, scalar_t alpha,
          const scalar_t* A, int64_t lda, const scalar_t* B, int64_t ldb, scalar_t beta,
          scalar_t* C, int64_t ldc, bool use_blas = true) {
  fortran_gemm<scalar_t> f;
  if constexpr (std::is_same_v<scalar_t, float>) {
    f = blas().sgemm;
  } else {
    f = blas().dgemm;
  }
  if (use_blas && f != nullptr && fits_blas_int({M, N, K, lda, ldb, ldc})) {
    const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    const int64_t m = N, n = M, k = K, la = ldb, lb = lda, lc = ldc;
    auto p = [](const int64_t& v) { return reinterpret_cast<const int*>(&v); };
    f(&tb, &ta, p(m), p(n), p(k), &alpha, B, p(la), A, p(lb), &beta, C, p(lc));
    return;
  }
  // ATen: same product through the dispatcher (a few microseconds per call).
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

// The backend for a call of `flops` flops in dtype scalar_t: the forced one if set, else
// kAuto's table; a backend this process lacks (or float64 and a float32-only one) falls
// back to the BLAS.
template <typename scalar_t>
Gemm choose_gemm(int64_t flops) {
  Blas& b = blas();
  Gemm g = static_cast<Gemm>(b.gemm.load(std::memory_order_relaxed));
  if (g == Gemm::kAuto) {
    g = Gemm::kBlas;
    for (int k = 0; k < Blas::kChoices; ++k) {
      if (flops <= b.choice_flops[k].load(std::memory_order_relaxed)) {
        g = static_cast<Gemm>(b.choice_gemm[k].load(std::memory_order_relaxed));
        break;
      }
    }
  }
  const bool float_only = g == Gemm::kMklPacked || g == Gemm::kOneDnn;
  if ((float_only && !std::is_same_v<scalar_t, float>) || !b.has(g)) g = Gemm::kBlas;
  return g;
}

// The recurrent product of one time loop: C (n, N) = A (n, K) op(W) (+ C if accumulate),
// op(W) = W^T for W (N, K) if trans_w, else W (K, N); A and C rows contiguous (lda = K,
// ldc = N). `rows` is the row count of a typical call (one block of RowBlocks), which the
// choice of backend and MKL's packing are made for. Built once per loop, before its threads
// start; calls from several threads at once are safe (W and its packed forms are read-only).
template <typename scalar_t>
class StepGemm {
 public:
  StepGemm(const scalar_t* W, int64_t N, int64_t K, bool trans_w, int64_t rows,
           std::optional<Gemm> backend = std::nullopt)
      : W_(W), N_(N), K_(K), trans_w_(trans_w), rows_(rows),
        backend_(backend.value_or(choose_gemm<scalar_t>(2 * rows * N * K))) {
    if (!fits_blas_int({rows, N, K})) backend_ = Gemm::kAten;
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (backend_ == Gemm::kMklPacked) {  // op(W) packed once: the B matrix of every call
        const int m = rows, n = N, k = K;
        const size_t bytes = blas().pack_size(kBMatrix, m, n, k);
        packed_ = at::empty({static_cast<int64_t>(bytes / sizeof(float)) + 16}, at::kFloat);
        blas().pack(kRowMajor, kBMatrix, trans_w ? kTrans : kNoTrans, m, n, k, 1.0f, W,
                    trans_w ? k : n, packed_.data_ptr<float>());
      } else if (backend_ == Gemm::kOneDnn) {  // W as (out = N, in = K), oneDNN's layout
        Tensor w = at::from_blob(const_cast<float*>(W), trans_w ? at::IntArrayRef{N, K}
                                                                : at::IntArrayRef{K, N},
                                 at::kFloat);
        packed_ = (trans_w ? w : w.t()).contiguous().to_mkldnn();
        std::lock_guard<std::mutex> lock(blas().onednn_mutex);
        onednn_ = blas().onednn;
        if (!onednn_.has_value()) backend_ = Gemm::kBlas;
      }
    }
  }

  Gemm backend() const { return backend_; }

  void operator()(int64_t n, const scalar_t* A, scalar_t* C, bool accumulate) const {
    if (n <= 0) return;
    const scalar_t beta = accumulate ? 1 : 0;
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (backend_ == Gemm::kMklPacked && n == rows_) {  // packed for `rows` rows only
        blas().compute(kRowMajor, kNoTrans, kPacked, n, N_, K_, A, K_,
                       packed_.data_ptr<float>(), N_, beta, C, N_);
        return;
      }
      if (backend_ == Gemm::kOneDnn) {
        const Tensor x = at::from_blob(const_cast<float*>(A), {n, K_}, at::kFloat);
        const Tensor y = onednn_->call(x, packed_, std::nullopt, "none",
                                       c10::List<std::optional<c10::Scalar>>(), "");  // (n, N)
        const float* yp = y.data_ptr<float>();
        if (accumulate) {
          for (int64_t i = 0; i < n * N_; ++i) C[i] += yp[i];
        } else {
          std::copy(yp, yp + n * N_, C);
        }
        return;
      }
    }
    gemm<scalar_t>(false, trans_w_, n, N_, K_, 1, A, K_, W_, trans_w_ ? K_ : N_, beta, C, N_,
                   backend_ != Gemm::kAten);
  }

 private:
  const scalar_t* W_;
  int64_t N_, K_;
  bool trans_w_;
  int64_t rows_;
  Gemm backend_;
  Tensor packed_;  // MKL's packed op(W), or oneDNN's W (mkldnn layout)
  std::optional<c10::TypedOperatorHandle<LinearPointwise>> onednn_;
};

// MKL on one thread in the calling thread while this lives (each block of RowBlocks).
class OneGemmThread {
 public:
  OneGemmThread() {
    if (blas().mkl_set_threads_local != nullptr) previous_ = blas().mkl_set_threads_local(1);
  }
  ~OneGemmThread() {
    if (blas().mkl_set_threads_local != nullptr) blas().mkl_set_threads_local(previous_);
  }
  OneGemmThread(const OneGemmThread&) = delete;
  OneGemmThread& operator=(const OneGemmThread&) = delete;

 private:
  int previous_ = 0;
};

// The batch rows are independent through a whole time loop: row b of step t reads row b of
// step t-1 only (W_hh is shared and read-only). So with enough rows each thread runs the
// whole loop on its own block of rows, with a one-thread GEMM: no synchronisation per step,
// and a core taken by another process delays its own block only. With few rows (fewer than
// split_rows per thread) or one thread, one block runs on the calling thread, its GEMM on
// all threads where a step has at least parallel_gemm_flops (waking the other threads every
// step costs more than it saves below that).
class RowBlocks {
 public:
  RowBlocks(int64_t B, int64_t step_flops) : B_(B), step_flops_(step_flops) {
    const int64_t min_rows = blas().split_rows.load(std::memory_order_relaxed);
    const int64_t threads = at::get_num_threads();
    count_ = min_rows > 0 && !at::in_parallel_region()
                 ? std::max<int64_t>(1, std::min(threads, B / min_rows))
                 : 1;
    rows_ = (B + count_ - 1) / count_;
  }

  int64_t rows() const { return rows_; }  // rows of a block (the last may have fewer)
  int64_t count() const { return count_; }

  // loop(b0, b1) runs the whole time loop on rows b0 .. b1-1.
  template <typename F>
  void run(const F& loop) const {
    if (count_ == 1) {
      const bool one_thread = step_flops_ < blas().parallel_gemm_flops.load();
      std::optional<OneGemmThread> guard;
      if (one_thread) guard.emplace();
      loop(int64_t{0}, B_);
      return;
    }
    at::parallel_for(0, B_, rows_, [&](int64_t b0, int64_t b1) {
      OneGemmThread guard;
      loop(b0, b1);
    });
  }

 private:
  int64_t B_, step_flops_, count_, rows_;
};

// Median microseconds of one call of backend g (float32) on a (rows, K) x op(W) product, with
// every thread running its own calls at once, as the blocks of RowBlocks do (`threads`
// blocks; 1: the calling thread). For kernel/__init__.py's choice at load.
double gemm_time(Gemm g, int64_t rows, int64_t N, int64_t K, bool trans_w, int64_t threads,
                 int64_t repeats) {
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(threads, at::get_num_threads()));
  Tensor W = at::randn({trans_w ? N : K, trans_w ? K : N});
  Tensor A = at::randn({blocks, rows, K}), C = at::zeros({blocks, rows, N});
  const StepGemm<float> step(W.data_ptr<float>(), N, K, trans_w, rows, g);
  std::vector<double> seconds(repeats);
  auto run = [&](int64_t block) {
    OneGemmThread guard;
    const float* a = A.data_ptr<float>() + block * rows * K;
    float* c = C.data_ptr<float>() + block * rows * N;
    for (int k = 0; k < 3; ++k) step(rows, a, c, false);  // warm-up
    for (int64_t r = 0; r < repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      step(rows, a, c, false);
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      if (block == 0) seconds[r] = took.count();
    }
  };
  if (blocks == 1) {
    run(0);
  } else {
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) run(b);
    });
  }
  std::nth_element(seconds.begin(), seconds.begin() + repeats / 2, seconds.end());
  return 1e6 * seconds[repeats / 2];
}

}  // namespace
