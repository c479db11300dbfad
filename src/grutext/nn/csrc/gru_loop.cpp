// The GRU recurrence loops of grutext.nn.fused, compiled at first use.
//
// Only the step loops live here; the GEMMs over all steps (input projections, weight and input
// gradients) stay in Python as single calls. Per step and (direction, batch chunk) item: one
// GEMM (h @ W_hh^T forward, dgates @ W_hh backward) plus one fused elementwise pass. Items run
// in parallel, each walking all its steps (see for_items).
//
// Layouts (T time, B batch, D directions, H hidden), all in time order: processing step s of
// direction 1 is t = T-1-s.
//   gi, dgi     (T, B, D, 3H)  gates r z n (gi: W_ih x, the loop adds b_ih); in the GEMM dtype
//   out, dout   (T, B, D, H)   zeros past length; out also gives each step's previous state (dout: any
//                              strides on T and B)
//   gates       (T, B, D, 4H)  r, z, n, ghn (= W_hn h + b_hn)
//   dghn        (T, B, D, H)   gradient of W_hn h + b_hn (r, z rows of W_hh h + b_hh: = dgi's); GEMM dtype
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

// Transcendentals. double: libm (the reference precision). float: branch-free polynomial forms
// that the compiler vectorises (scalar libm expf/tanhf would dominate the step time).
inline double exp_(double x) { return std::exp(x); }
inline double tanh_(double x) { return std::tanh(x); }

inline float exp_(float x) {  // Cephes expf: 2^k * p(r), |rel err| < 2e-7
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float k = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;  // 2^k
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline float tanh_(float x) {  // tanh = sign(x) (1 - e) / (1 + e), e = exp(-2|x|); series near 0
  const float a = std::fabs(x);
  const float e = exp_(-2.0f * a);
  const float big = (1.0f - e) / (1.0f + e);
  const float x2 = x * x;  // |x| < 0.0625: x - x^3/3 + 2x^5/15 (no cancellation)
  const float small = a * (1.0f + x2 * (-0.333333333f + x2 * 0.133333333f));
  return std::copysign(a < 0.0625f ? small : big, x);
}

template <typename T>
inline T sigmoid(T x) { return T(1) / (T(1) + exp_(-x)); }

inline int64_t time_of(int64_t d, int64_t s, int64_t T) { return d == 0 ? s : T - 1 - s; }

// ---------------------------------------------------------------------------------------------
// BLAS. The step GEMMs call the BLAS that torch itself links (MKL in the x86 wheels) directly:
// an ATen op costs microseconds of dispatch per call, a sizeable share of a 30-100 us step, and
// inside our own parallel region (below) each thread runs its GEMMs single-threaded on its own
// rows. The symbols are weak: where torch's library does not export them, ATen ops are used.
extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
}

// GRUTEXT_DIRECT_BLAS=0: ATen ops only, for comparisons; 1 (default): direct BLAS where available.
int direct_blas() {
  static const int v = [] {
    const char* e = std::getenv("GRUTEXT_DIRECT_BLAS");
    return e ? std::atoi(e) : 1;
  }();
  return v;
}

template <typename T>
void gemm_aten(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* Bm, int64_t ldb, T beta, T* C,
               int64_t ldc) {
  const auto opt = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  auto a = at::from_blob(const_cast<T*>(A), {M, K}, {lda, 1}, opt);
  auto b = at::from_blob(const_cast<T*>(Bm), {K, N}, {ldb, 1}, opt);
  auto c = at::from_blob(C, {M, N}, {ldc, 1}, opt);
  if (beta == T(0)) at::mm_out(c, a, b); else c.addmm_(a, b, beta);
}

// Row-major C (M, N; row stride ldc) = A (M, K; lda) @ B (K, N; ldb) + beta C. Column-major BLAS
// computes the same product transposed: C^T = B^T A^T.
inline void gemm_rm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bm, int64_t ldb,
                    float beta, float* C, int64_t ldc) {
  if (sgemm_ && direct_blas()) {
    const int m = N, n = M, k = K, la = ldb, lb = lda, lc = ldc;
    const float one = 1.0f;
    sgemm_("N", "N", &m, &n, &k, &one, Bm, &la, A, &lb, &beta, C, &lc);
  } else {
    gemm_aten<float>(M, N, K, A, lda, Bm, ldb, beta, C, ldc);
  }
}
inline void gemm_rm(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* Bm, int64_t ldb,
                    double beta, double* C, int64_t ldc) {
  if (dgemm_ && direct_blas()) {
    const int m = N, n = M, k = K, la = ldb, lb = lda, lc = ldc;
    const double one = 1.0;
    dgemm_("N", "N", &m, &n, &k, &one, Bm, &la, A, &lb, &beta, C, &lc);
  } else {
    gemm_aten<double>(M, N, K, A, lda, Bm, ldb, beta, C, ldc);
  }
}
// bf16 operands and result through ATen's mm (oneDNN). The product is written straight into C (no
// conversion op); the loops read it back as fp32. MKL's own bf16 GEMM (cblas_gemm_bf16bf16f32)
// measured slower here on an AVX-512-BF16 AMD CPU at H=256.
inline void gemm_rm(int64_t M, int64_t N, int64_t K, const c10::BFloat16* A, int64_t lda, const c10::BFloat16* Bm,
                    int64_t ldb, float beta, c10::BFloat16* C, int64_t ldc) {
  TORCH_CHECK(beta == 0.0f, "bf16 step GEMMs overwrite their output");
  const auto bf = at::TensorOptions().dtype(at::kBFloat16);
  auto a = at::from_blob(const_cast<c10::BFloat16*>(A), {M, K}, {lda, 1}, bf);
  auto b = at::from_blob(const_cast<c10::BFloat16*>(Bm), {K, N}, {ldb, 1}, bf);
  auto c = at::from_blob(C, {M, N}, {ldc, 1}, bf);
  at::mm_out(c, a, b);
}

// ---------------------------------------------------------------------------------------------
// Parallel work. The batch rows of a GRU are independent sequences, and so are its two
// directions, so each call splits its (direction, batch chunk) items across the threads once:
// every worker runs the whole time loop for its items with its own single-threaded GEMMs and
// never waits for another. Torch's per-op parallelism would instead fork and join inside every
// step's GEMM and leave the elementwise pass on one core.

inline int64_t batch_chunks(int64_t D, int64_t B) {
#if AT_PARALLEL_OPENMP && defined(_OPENMP)
  if (at::in_parallel_region()) return 1;
  const int64_t P = at::get_num_threads();
  // at least 8 rows a chunk: below that the per-step GEMM is too thin to pay for its own thread
  return std::max<int64_t>(1, std::min<int64_t>((P + D - 1) / D, B / 8));
#else
  return 1;
#endif
}

// work(d, b0, b1, item) for every (direction, batch chunk) item, in parallel
template <typename F>
void for_items(int64_t D, int64_t B, int64_t nbc, const F& work) {
  at::parallel_for(0, D * nbc, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t d = i / nbc, c = i % nbc;
      work(d, c * B / nbc, (c + 1) * B / nbc, i);
    }
  });
}

template <typename T> struct AccOf { using type = T; };
template <> struct AccOf<float> { using type = double; };

// state dtype scalar_t (fp32/fp64); GEMM dtype cd_t (scalar_t, or BFloat16 with fp32 state)
template <typename scalar_t, typename cd_t>
void forward_impl(const at::Tensor& gi, const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                  const at::Tensor& b_hh, const at::Tensor& h0, const int64_t* len, const at::Tensor& rec_mask,
                  bool save, at::Tensor& out, at::Tensor& h_n, at::Tensor& gates) {
  const int64_t T = gi.size(0), B = gi.size(1), D = h0.size(0), H = h0.size(2), G = 3 * H;
  constexpr bool same = std::is_same<scalar_t, cd_t>::value;
  const bool masked = rec_mask.defined();
  const bool sep = masked || !same;  // the GEMM input is a separate buffer (masked and/or bf16)
  auto w_t = w_hh.transpose(1, 2).contiguous();  // (D, H, 3H): h @ W_hh^T reads it row-major
  const cd_t* w_p = w_t.data_ptr<cd_t>();
  // gi (T, B, D, 3H): the input projections precomputed (bf16 path: the bf16 product, read as is);
  // or x (T, B, In) with wih (D, 3H, In): each step projects its own rows (gi then never leaves cache)
  const bool project = gi.dim() == 3;
  const int64_t In = project ? gi.size(2) : 0;
  // x may be a strided view (batch_first callers: (B, T, In) storage): rows are read in place
  const int64_t xst = project ? gi.stride(0) : 0, xsb = project ? gi.stride(1) : 0;
  at::Tensor wih_t = project ? w_ih.transpose(1, 2).contiguous() : at::Tensor();  // (D, In, 3H)
  const cd_t* gi_p = gi.data_ptr<cd_t>();
  const cd_t* wih_p = project ? wih_t.data_ptr<cd_t>() : nullptr;
  const scalar_t* bih_p = b_ih.data_ptr<scalar_t>();
  const scalar_t* bhh_p = b_hh.data_ptr<scalar_t>();
  const scalar_t* h0_p = h0.data_ptr<scalar_t>();
  const scalar_t* m_p = masked ? rec_mask.data_ptr<scalar_t>() : nullptr;
  scalar_t* out_p = out.data_ptr<scalar_t>();
  scalar_t* hn_p = h_n.data_ptr<scalar_t>();
  scalar_t* gates_p = save ? gates.data_ptr<scalar_t>() : nullptr;
  for_items(D, B, batch_chunks(D, B), [&](int64_t d, int64_t b0, int64_t b1, int64_t) {
    const int64_t Bc = b1 - b0;
    int64_t lmax = 0;
    for (int64_t b = b0; b < b1; ++b) lmax = std::max(lmax, len[b]);
    scalar_t* h = hn_p + (d * B + b0) * H;  // the state of my rows, updated in place; ends as h_n
    std::copy(h0_p + (d * B + b0) * H, h0_p + (d * B + b1) * H, h);
    std::vector<cd_t> gin(sep ? Bc * H : 0);  // the GEMM's input: (masked) state in the GEMM dtype
    const scalar_t* m = masked ? m_p + (d * B + b0) * H : nullptr;
    auto to_gemm_input = [&](int64_t i) {
      for (int64_t j = 0; j < H; ++j) gin[i * H + j] = cd_t(m ? h[i * H + j] * m[i * H + j] : h[i * H + j]);
    };
    if (sep)
      for (int64_t i = 0; i < Bc; ++i) to_gemm_input(i);
    std::vector<cd_t> gh(Bc * G);         // this step's W_hh h for my rows (bf16 path: rounded to bf16)
    std::vector<cd_t> gil(project ? Bc * G : 0);  // this step's W_ih x for my rows
    std::vector<scalar_t> scratch(4 * H);  // gates of a step when they are not kept
    // biases: r and z see b_ih + b_hh; n sees b_in outside and b_hn inside the reset product
    std::vector<scalar_t> bias(4 * H);  // [b_ir + b_hr | b_iz + b_hz | b_in | b_hn]
    for (int64_t j = 0; j < 2 * H; ++j) bias[j] = bih_p[d * G + j] + bhh_p[d * G + j];
    for (int64_t j = 0; j < H; ++j) {
      bias[2 * H + j] = bih_p[d * G + 2 * H + j];
      bias[3 * H + j] = bhh_p[d * G + 2 * H + j];
    }
    const scalar_t* bs = bias.data();
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = time_of(d, s, T);
      if (t < lmax)  // else every row of mine is padding at t: no GEMM
        gemm_rm(Bc, G, H, sep ? reinterpret_cast<const cd_t*>(gin.data()) : reinterpret_cast<const cd_t*>(h), H,
                w_p + d * H * G, G, scalar_t(0), gh.data(), G);
      if (project && t < lmax)
        gemm_rm(Bc, G, In, gi_p + t * xst + b0 * xsb, xsb, wih_p + d * In * G, G, scalar_t(0), gil.data(), G);
      for (int64_t i = 0; i < Bc; ++i) {
        const int64_t b = b0 + i;
        scalar_t* o = out_p + ((t * B + b) * D + d) * H;
        if (t >= len[b]) {  // padding: the state is kept and the output is zero
          std::fill(o, o + H, scalar_t(0));
          continue;
        }
        const cd_t* x = project ? gil.data() + i * G : gi_p + ((t * B + b) * D + d) * G;
        const cd_t* g = gh.data() + i * G;
        scalar_t* hr = h + i * H;
        scalar_t* sv = save ? gates_p + ((t * B + b) * D + d) * 4 * H : scratch.data();
#pragma GCC ivdep
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t r = sigmoid(scalar_t(x[j]) + scalar_t(g[j]) + bs[j]);              // reset gate
          const scalar_t z = sigmoid(scalar_t(x[H + j]) + scalar_t(g[H + j]) + bs[H + j]);  // update gate
          const scalar_t ghn = scalar_t(g[2 * H + j]) + bs[3 * H + j];                      // W_hn h + b_hn
          const scalar_t n = tanh_(scalar_t(x[2 * H + j]) + bs[2 * H + j] + r * ghn);  // candidate, b_hn inside the reset product
          const scalar_t v = n + z * (hr[j] - n);                           // (1 - z) n + z h: update gate keeps the past
          hr[j] = v;
          o[j] = v;
          sv[j] = r;
          sv[H + j] = z;
          sv[2 * H + j] = n;
          sv[3 * H + j] = ghn;
        }
        if (sep) to_gemm_input(i);
      }
    }
  });
}

// -> out (T, B, D, H) zeros past length, h_n (D, B, H), gates (T, B, D, 4H) (empty when !save)
// gi: W_ih x without its bias (T, B, D, 3H), or x itself (T, B, In) with w_ih (D, 3H, In): then
// the loop projects each step's rows itself. Either way in the GEMM dtype; the loop adds b_ih.
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_forward(
    const at::Tensor& gi, const c10::optional<at::Tensor>& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
    const at::Tensor& b_hh, const at::Tensor& h0, const at::Tensor& lengths, const c10::optional<at::Tensor>& rec_mask,
    bool save) {
  TORCH_CHECK((gi.dim() == 4 && gi.is_contiguous()) ||
                  (gi.dim() == 3 && w_ih.has_value() && gi.stride(2) == 1 && gi.stride(1) >= gi.size(2)),
              "gi must be contiguous (T, B, D, 3H), or x (T, B, In) with w_ih and rows of contiguous features");
  TORCH_CHECK(!w_ih.has_value() || w_ih->scalar_type() == w_hh.scalar_type(), "w_ih must be in the GEMM dtype");
  const int64_t T = gi.size(0), B = gi.size(1), D = h0.size(0), H = h0.size(2);
  at::Tensor wi = w_ih.has_value() ? *w_ih : at::Tensor();
  auto hc = h0.contiguous();
  auto bic = b_ih.contiguous();
  auto bc = b_hh.contiguous();
  auto len = lengths.to(at::kLong).contiguous();
  auto out = at::empty({T, B, D, H}, h0.options());
  auto h_n = at::empty({D, B, H}, h0.options());
  auto gates = save ? at::empty({T, B, D, 4 * H}, h0.options()) : at::empty({0}, h0.options());
  at::Tensor rm = rec_mask.has_value() ? rec_mask->contiguous() : at::Tensor();
  const int64_t* lp = len.data_ptr<int64_t>();
  if (w_hh.scalar_type() == at::kBFloat16) {
    TORCH_CHECK(h0.scalar_type() == at::kFloat && gi.scalar_type() == at::kBFloat16,
                "bf16 GEMMs need fp32 state and a bf16 input projection");
    forward_impl<float, c10::BFloat16>(gi, wi, w_hh, bic, bc, hc, lp, rm, save, out, h_n, gates);
  } else {
    AT_DISPATCH_FLOATING_TYPES(h0.scalar_type(), "grutext_gru_forward", [&] {
      forward_impl<scalar_t, scalar_t>(gi, wi, w_hh, bic, bc, hc, lp, rm, save, out, h_n, gates);
    });
  }
  return {out, h_n, gates};
}

template <typename scalar_t, typename cd_t>
void backward_impl(const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& w_hh, const at::Tensor& out,
                   const at::Tensor& h0, const at::Tensor& gates, const int64_t* len, const at::Tensor& rec_mask,
                   at::Tensor& dgi, at::Tensor& dghn, at::Tensor& dh0, at::Tensor& dbias) {
  using acc_t = typename AccOf<scalar_t>::type;
  const int64_t T = dout.size(0), B = dout.size(1), D = dh_n.size(0), H = dh_n.size(2), G = 3 * H;
  const bool masked = rec_mask.defined();
  const scalar_t* dout_p = dout.data_ptr<scalar_t>();  // (T, B, D*H), any strides on T and B
  const int64_t ost = dout.stride(0), osb = dout.stride(1);
  const scalar_t* out_p = out.data_ptr<scalar_t>();
  const scalar_t* h0_p = h0.data_ptr<scalar_t>();
  const scalar_t* gates_p = gates.data_ptr<scalar_t>();
  const cd_t* w_p = w_hh.data_ptr<cd_t>();
  const scalar_t* m_p = masked ? rec_mask.data_ptr<scalar_t>() : nullptr;
  scalar_t* dh_p = dh0.data_ptr<scalar_t>();
  cd_t* dgi_p = dgi.data_ptr<cd_t>();  // in the GEMM dtype: only GEMMs read them (biases are summed here)
  cd_t* dghn_p = dghn.data_ptr<cd_t>();
  const int64_t nbc = batch_chunks(D, B);
  std::vector<acc_t> acc(D * nbc * 4 * H, acc_t(0));  // per item: the b_ih (3H) and b_hn (H) gradients of its rows
  for_items(D, B, nbc, [&](int64_t d, int64_t b0, int64_t b1, int64_t item) {
    const int64_t Bc = b1 - b0;
    int64_t lmax = 0;
    for (int64_t b = b0; b < b1; ++b) lmax = std::max(lmax, len[b]);
    scalar_t* dh = dh_p + (d * B + b0) * H;  // the carried dL/dh of my rows, ends as dL/dh0
    std::copy(dh_n.data_ptr<scalar_t>() + (d * B + b0) * H, dh_n.data_ptr<scalar_t>() + (d * B + b1) * H, dh);
    // this step's gradient of W_hh h + b_hh for my rows, in the GEMM dtype. It stays in cache for
    // the step's GEMM; only its n part goes out (for dW_hh): its r and z parts equal dgi's.
    std::vector<cd_t> sg(Bc * G);
    constexpr bool same = std::is_same<scalar_t, cd_t>::value;
    std::vector<cd_t> tmp(masked || !same ? Bc * H : 0);  // the step GEMM's product when it cannot accumulate into dh
    std::vector<scalar_t> step_db(4 * H);  // this step's bias gradients (over <= B rows, then acc_t)
    acc_t* ac = acc.data() + item * 4 * H;
    const cd_t* w = w_p + d * G * H;  // W_hh (3H, H) of direction d
    const scalar_t* m = masked ? m_p + (d * B + b0) * H : nullptr;
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = time_of(d, s, T);
      cd_t* dgi_row0 = dgi_p + ((t * B + b0) * D + d) * G;  // my rows at t: stride D*3H
      cd_t* dghn_row0 = dghn_p + ((t * B + b0) * D + d) * H;  // stride D*H
      if (t >= lmax) {  // every row of mine is padding at t: no gradient to the gates, dh passes through
        for (int64_t i = 0; i < Bc; ++i) {
          std::fill(dgi_row0 + i * D * G, dgi_row0 + i * D * G + G, cd_t(0));
          std::fill(dghn_row0 + i * D * H, dghn_row0 + i * D * H + H, cd_t(0));
        }
        continue;
      }
      std::fill(step_db.begin(), step_db.end(), scalar_t(0));
      scalar_t* si = step_db.data();  // b_ih: r z n
      scalar_t* sn = si + G;          // b_hn
      for (int64_t i = 0; i < Bc; ++i) {
        const int64_t b = b0 + i;
        cd_t* dx = dgi_row0 + i * D * G;
        cd_t* dn_out = dghn_row0 + i * D * H;
        cd_t* dr = sg.data() + i * G;
        if (t >= len[b]) {  // padding: no gradient to the gates, dh passes through unchanged
          std::fill(dx, dx + G, cd_t(0));
          std::fill(dn_out, dn_out + H, cd_t(0));
          std::fill(dr, dr + G, cd_t(0));
          continue;
        }
        // the state before this step: the previous step's output, or h0 at the sequence's first step
        const bool first = d == 0 ? t == 0 : t + 1 >= len[b];
        const scalar_t* hp = first ? h0_p + (d * B + b) * H : out_p + (((d == 0 ? t - 1 : t + 1) * B + b) * D + d) * H;
        scalar_t* g = dh + i * H;
        const scalar_t* go = dout_p + t * ost + b * osb + d * H;
        const scalar_t* sv = gates_p + ((t * B + b) * D + d) * 4 * H;
#pragma GCC ivdep
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t dht = g[j] + go[j];  // dL/dh_t (carried + from the output)
          const scalar_t r = sv[j], z = sv[H + j], n = sv[2 * H + j], ghn = sv[3 * H + j];
          const scalar_t dn = dht * (scalar_t(1) - z) * (scalar_t(1) - n * n);  // through tanh
          const scalar_t dz = dht * (hp[j] - n) * z * (scalar_t(1) - z);         // through σ
          const scalar_t dr_ = dn * ghn * r * (scalar_t(1) - r);                // through σ
          const scalar_t dnr = dn * r;  // the reset gate scales W_hn h + b_hn
          dx[j] = cd_t(dr_);
          dx[H + j] = cd_t(dz);
          dx[2 * H + j] = cd_t(dn);
          dr[j] = cd_t(dr_);
          dr[H + j] = cd_t(dz);
          dr[2 * H + j] = cd_t(dnr);
          dn_out[j] = cd_t(dnr);
          si[j] += dr_;
          si[H + j] += dz;
          si[2 * H + j] += dn;
          sn[j] += dnr;
          g[j] = dht * z;  // direct path of h_{t-1} through the update gate
        }
      }
      for (int64_t k = 0; k < 4 * H; ++k) ac[k] += acc_t(step_db[k]);
      // dh_{t-1} += dgh_t @ W_hh for my rows: (Bc, 3H) @ (3H, H)
      if (tmp.empty()) {
        gemm_rm(Bc, H, G, sg.data(), G, w, H, scalar_t(1), reinterpret_cast<cd_t*>(dh), H);
      } else {
        gemm_rm(Bc, H, G, sg.data(), G, w, H, scalar_t(0), tmp.data(), H);
        if (m) {
          for (int64_t k = 0; k < Bc * H; ++k) dh[k] += scalar_t(tmp[k]) * m[k];
        } else {
          for (int64_t k = 0; k < Bc * H; ++k) dh[k] += scalar_t(tmp[k]);
        }
      }
    }
  });
  scalar_t* db_p = dbias.data_ptr<scalar_t>();  // (2, D, 3H): b_ih, b_hh (b_hr, b_hz equal b_ir, b_iz's)
  for (int64_t d = 0; d < D; ++d)
    for (int64_t j = 0; j < 4 * H; ++j) {
      acc_t v = 0;
      for (int64_t c = 0; c < nbc; ++c) v += acc[(d * nbc + c) * 4 * H + j];
      if (j < G) db_p[d * G + j] = scalar_t(v);
      if (j < 2 * H) db_p[(D + d) * G + j] = scalar_t(v);
      if (j >= G) db_p[(D + d) * G + 2 * H + (j - G)] = scalar_t(v);
    }
  // steps past a sequence's length: dout there is zero by construction of out, nothing to add
}

// -> dgi (T, B, D, 3H), dghn (T, B, D, H) (the gradient of W_hn h + b_hn; those of the r and z
//    rows of W_hh h + b_hh equal dgi's), dh0 (D, B, H),
//    dbias (2, D, 3H): the gradients of b_ih and b_hh
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_backward(
    const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& w_hh, const at::Tensor& out,
    const at::Tensor& h0, const at::Tensor& gates, const at::Tensor& lengths, const c10::optional<at::Tensor>& rec_mask) {
  // dout (T, B, D*H): strided views are read in place when the features are contiguous
  const int64_t T = dout.size(0), B = dout.size(1), D = dh_n.size(0), H = dh_n.size(2);
  TORCH_CHECK(dout.dim() == 3 && dout.size(2) == D * H, "dout must be (T, B, D*H)");
  auto go = dout.stride(2) == 1 && dout.stride(1) >= D * H && dout.stride(0) >= D * H ? dout : dout.contiguous();
  auto dhn = dh_n.contiguous();
  auto oc = out.contiguous();
  auto hc = h0.contiguous();
  auto gc = gates.contiguous();
  auto wc = w_hh.contiguous();
  auto len = lengths.to(at::kLong).contiguous();
  auto dgi = at::empty({T, B, D, 3 * H}, dhn.options().dtype(w_hh.scalar_type()));  // GEMM dtype
  auto dghn = at::empty({T, B, D, H}, dhn.options().dtype(w_hh.scalar_type()));
  auto dh0 = at::empty({D, B, H}, dhn.options());
  auto dbias = at::empty({2, D, 3 * H}, dhn.options());
  at::Tensor rm = rec_mask.has_value() ? rec_mask->contiguous() : at::Tensor();
  const int64_t* lp = len.data_ptr<int64_t>();
  if (w_hh.scalar_type() == at::kBFloat16) {
    TORCH_CHECK(dh_n.scalar_type() == at::kFloat, "bf16 GEMMs need fp32 state");
    backward_impl<float, c10::BFloat16>(go, dhn, wc, oc, hc, gc, lp, rm, dgi, dghn, dh0, dbias);
  } else {
    AT_DISPATCH_FLOATING_TYPES(dhn.scalar_type(), "grutext_gru_backward", [&] {
      backward_impl<scalar_t, scalar_t>(go, dhn, wc, oc, hc, gc, lp, rm, dgi, dghn, dh0, dbias);
    });
  }
  return {dgi, dghn, dh0, dbias};
}

// ---------------------------------------------------------------------------------------------
// minGRU's linear recurrence (Feng et al. 2024), fused with its gate activations:
//   z_t = σ(k_t), h̃_t = g(v_t) (g(v) = v + 0.5 if v >= 0 else σ(v)), h_t = (1 - z_t) h_{t-1} + z_t h̃_t
// y (T, B, 2H) holds [k | v] per step (the input projection, one GEMM in Python). Every (b, j)
// is an independent scalar recurrence, so the batch rows are split across threads once and each
// walks its own time loop: no synchronisation per step, and the inner loop over j vectorises.
// reverse: the sequence is read from its last real token (t = len-1) down to t = 0, so the
// backward direction needs no gather; positions past a length get zeros and keep the state.

template <typename T>
inline T g_act(T v) { return v >= T(0) ? v + T(0.5) : sigmoid(v); }
template <typename T>
inline T g_grad(T v) {
  if (v >= T(0)) return T(1);
  const T s = sigmoid(v);
  return s * (T(1) - s);
}

template <typename scalar_t>
void mingru_forward_impl(const scalar_t* y, const scalar_t* h0, const int64_t* len, scalar_t* out,
                         scalar_t* hlast, int64_t T, int64_t B, int64_t H, bool reverse) {
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t L = std::min<int64_t>(std::max<int64_t>(len[b], 0), T);
      scalar_t* h = hlast + b * H;
      std::copy(h0 + b * H, h0 + (b + 1) * H, h);
      for (int64_t s = 0; s < L; ++s) {
        const int64_t t = reverse ? L - 1 - s : s;
        const scalar_t* k = y + (t * B + b) * 2 * H;
        const scalar_t* v = k + H;
        scalar_t* o = out + (t * B + b) * H;
#pragma GCC ivdep
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t z = sigmoid(k[j]);            // update gate, from x_t only
          const scalar_t hn = h[j] + z * (g_act(v[j]) - h[j]);  // (1 - z) h + z h̃
          h[j] = hn;
          o[j] = hn;
        }
      }
      for (int64_t t = L; t < T; ++t) std::fill(out + (t * B + b) * H, out + (t * B + b + 1) * H, scalar_t(0));
    }
  });
}

template <typename scalar_t>
void mingru_backward_impl(const scalar_t* dout, const scalar_t* dhlast, const scalar_t* y, const scalar_t* out,
                          const scalar_t* h0, const int64_t* len, scalar_t* dy, scalar_t* dh0,
                          int64_t T, int64_t B, int64_t H, bool reverse) {
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t L = std::min<int64_t>(std::max<int64_t>(len[b], 0), T);
      scalar_t* g = dh0 + b * H;  // the carried dL/dh, ends as dL/dh0
      std::copy(dhlast + b * H, dhlast + (b + 1) * H, g);
      for (int64_t t = L; t < T; ++t) std::fill(dy + (t * B + b) * 2 * H, dy + (t * B + b + 1) * 2 * H, scalar_t(0));
      for (int64_t s = L - 1; s >= 0; --s) {
        const int64_t t = reverse ? L - 1 - s : s;
        const int64_t tp = reverse ? t + 1 : t - 1;  // the step processed before t
        const scalar_t* hp = s == 0 ? h0 + b * H : out + (tp * B + b) * H;
        const scalar_t* k = y + (t * B + b) * 2 * H;
        const scalar_t* v = k + H;
        const scalar_t* go = dout + (t * B + b) * H;
        scalar_t* dk = dy + (t * B + b) * 2 * H;
        scalar_t* dv = dk + H;
#pragma GCC ivdep
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t dh = g[j] + go[j];  // dL/dh_t: carried + from the output
          const scalar_t z = sigmoid(k[j]);
          dk[j] = dh * (g_act(v[j]) - hp[j]) * z * (scalar_t(1) - z);  // through σ
          dv[j] = dh * z * g_grad(v[j]);
          g[j] = dh * (scalar_t(1) - z);  // h_{t-1} reaches h_t through 1 - z
        }
      }
    }
  });
}

// -> out (T, B, H) zeros past length, h_last (B, H)
std::tuple<at::Tensor, at::Tensor> mingru_forward(const at::Tensor& y, const at::Tensor& h0, const at::Tensor& lengths,
                                                  bool reverse) {
  TORCH_CHECK(y.dim() == 3 && y.size(2) == 2 * h0.size(1), "y must be (T, B, 2H)");
  const int64_t T = y.size(0), B = y.size(1), H = h0.size(1);
  auto yc = y.contiguous();
  auto hc = h0.contiguous();
  auto len = lengths.to(at::kLong).contiguous();
  auto out = at::empty({T, B, H}, y.options());
  auto hlast = at::empty({B, H}, y.options());
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "grutext_mingru_forward", [&] {
    mingru_forward_impl<scalar_t>(yc.data_ptr<scalar_t>(), hc.data_ptr<scalar_t>(), len.data_ptr<int64_t>(),
                                  out.data_ptr<scalar_t>(), hlast.data_ptr<scalar_t>(), T, B, H, reverse);
  });
  return {out, hlast};
}

// -> dy (T, B, 2H), dh0 (B, H)
std::tuple<at::Tensor, at::Tensor> mingru_backward(const at::Tensor& dout, const at::Tensor& dhlast, const at::Tensor& y,
                                                   const at::Tensor& out, const at::Tensor& h0,
                                                   const at::Tensor& lengths, bool reverse) {
  const int64_t T = y.size(0), B = y.size(1), H = h0.size(1);
  auto go = dout.contiguous();
  auto gl = dhlast.contiguous();
  auto yc = y.contiguous();
  auto oc = out.contiguous();
  auto hc = h0.contiguous();
  auto len = lengths.to(at::kLong).contiguous();
  auto dy = at::empty({T, B, 2 * H}, y.options());
  auto dh0 = at::empty({B, H}, y.options());
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "grutext_mingru_backward", [&] {
    mingru_backward_impl<scalar_t>(go.data_ptr<scalar_t>(), gl.data_ptr<scalar_t>(), yc.data_ptr<scalar_t>(),
                                   oc.data_ptr<scalar_t>(), hc.data_ptr<scalar_t>(), len.data_ptr<int64_t>(),
                                   dy.data_ptr<scalar_t>(), dh0.data_ptr<scalar_t>(), T, B, H, reverse);
  });
  return {dy, dh0};
}

}  // namespace

TORCH_LIBRARY(grutext_gru, m) {
  m.def("forward(Tensor gi, Tensor? w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, Tensor h0, Tensor lengths, Tensor? rec_mask, bool save) -> (Tensor, Tensor, Tensor)");
  m.def("backward(Tensor dout, Tensor dh_n, Tensor w_hh, Tensor out, Tensor h0, Tensor gates, Tensor lengths, Tensor? rec_mask) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("mingru_forward(Tensor y, Tensor h0, Tensor lengths, bool reverse) -> (Tensor, Tensor)");
  m.def("mingru_backward(Tensor dout, Tensor dh_last, Tensor y, Tensor out, Tensor h0, Tensor lengths, bool reverse) -> (Tensor, Tensor)");
  m.impl("forward", c10::DispatchKey::CPU, TORCH_FN(gru_forward));
  m.impl("mingru_forward", c10::DispatchKey::CPU, TORCH_FN(mingru_forward));
  m.impl("mingru_backward", c10::DispatchKey::CPU, TORCH_FN(mingru_backward));
  m.impl("backward", c10::DispatchKey::CPU, TORCH_FN(gru_backward));
}
