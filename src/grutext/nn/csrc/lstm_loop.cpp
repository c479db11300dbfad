// The LSTM and Elman RNN recurrence loops of grutext.nn.fused_cells, compiled at first use.
//
// The same design as gru_loop.cpp: only the step loops live here; the GEMMs over all steps
// (input and weight gradients) stay in Python as single calls. Per step and (direction, batch
// chunk) item: the input projection x_t @ W_ih^T and the recurrent h @ W_hh^T (two GEMMs into
// one buffer) plus one fused elementwise pass (activations, state update, length mask, output
// write); backward: one fused elementwise pass and one GEMM dgates @ W_hh. Items run in
// parallel, each walking all its steps with single-threaded BLAS calls (see for_items).
//
// Layouts (T time, B batch, D directions, H hidden, G = 4H for the LSTM, H for the RNN), time
// order: processing step s of direction 1 reads t = len-1-s of each row, so the reverse
// direction starts at each sequence's last real token; positions t >= len keep the state and
// write zeros.
//   x           (T, B, In)      any strides on T and B, contiguous features
//   out, dout   (T, B, D, H)    zeros past length; out also gives each step's previous state (dout: any
//                               strides on T and B)
//   gates       (T, B, D, 5H)   LSTM: i, f, g, o (after their activations) and the cell c
//   dg          (T, B, D, G)    the gradient of the pre-activations W_ih x + b_ih + W_hh h + b_hh
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <vector>

namespace {

// Transcendentals: as gru_loop.cpp (double: libm; float: vectorisable polynomial forms).
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
  const float x2 = x * x;
  const float small = a * (1.0f + x2 * (-0.333333333f + x2 * 0.133333333f));
  return std::copysign(a < 0.0625f ? small : big, x);
}

template <typename T>
inline T sigmoid(T x) { return T(1) / (T(1) + exp_(-x)); }

// the input position read at processing step s of direction d, for a row of length L
inline int64_t time_of(int64_t d, int64_t s, int64_t L) { return d == 0 ? s : L - 1 - s; }

// ---------------------------------------------------------------------------------------------
// BLAS: the library torch links (weak symbols; ATen ops where it does not export them).
extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
}

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

// Row-major C (M, N; ldc) = A (M, K; lda) @ B (K, N; ldb) + beta C (column-major BLAS: C^T = B^T A^T).
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

// ---------------------------------------------------------------------------------------------
// Parallel work: (direction, batch chunk) items split across the threads once (see gru_loop.cpp).

inline int64_t batch_chunks(int64_t D, int64_t B) {
#if AT_PARALLEL_OPENMP && defined(_OPENMP)
  if (at::in_parallel_region()) return 1;
  const int64_t P = at::get_num_threads();
  return std::max<int64_t>(1, std::min<int64_t>((P + D - 1) / D, B / 8));
#else
  return 1;
#endif
}

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

// Rows of a chunk are processed in lockstep per step s; row b reads t = time_of(d, s, len[b]).
// Forward rows are contiguous in x at fixed t; reverse rows are not (each has its own t), so
// the step's inputs are gathered into a buffer first (a copy of Bc*In values, small next to the GEMM).
template <typename scalar_t>
struct StepInput {
  std::vector<scalar_t> buf;
  const scalar_t* rows(const scalar_t* x, int64_t xst, int64_t xsb, int64_t In, int64_t d, int64_t s, int64_t b0,
                       int64_t Bc, const int64_t* len, int64_t* ld) {
    if (d == 0) {
      *ld = xsb;
      return x + s * xst + b0 * xsb;
    }
    buf.resize(Bc * In);
    for (int64_t i = 0; i < Bc; ++i) {
      const int64_t b = b0 + i;
      if (s < len[b]) {
        const scalar_t* src = x + time_of(1, s, len[b]) * xst + b * xsb;
        std::copy(src, src + In, buf.data() + i * In);
      } else {
        std::fill(buf.data() + i * In, buf.data() + (i + 1) * In, scalar_t(0));
      }
    }
    *ld = In;
    return buf.data();
  }
};

// ---------------------------------------------------------------------------------------------
// LSTM: i, f, g, o = σ, σ, tanh, σ of the pre-activations; c' = f c + i g; h' = o tanh(c')

template <typename scalar_t>
void lstm_forward_impl(const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& bias,
                       const at::Tensor& h0, const at::Tensor& c0, const int64_t* len, bool save, at::Tensor& out,
                       at::Tensor& h_n, at::Tensor& c_n, at::Tensor& gates) {
  const int64_t T = x.size(0), B = x.size(1), In = x.size(2), D = h0.size(0), H = h0.size(2), G = 4 * H;
  const int64_t xst = x.stride(0), xsb = x.stride(1);
  auto wih_t = w_ih.transpose(1, 2).contiguous();  // (D, In, 4H)
  auto whh_t = w_hh.transpose(1, 2).contiguous();  // (D, H, 4H)
  const scalar_t* x_p = x.data_ptr<scalar_t>();
  const scalar_t* wih_p = wih_t.data_ptr<scalar_t>();
  const scalar_t* whh_p = whh_t.data_ptr<scalar_t>();
  const scalar_t* b_p = bias.data_ptr<scalar_t>();
  const scalar_t* h0_p = h0.data_ptr<scalar_t>();
  const scalar_t* c0_p = c0.data_ptr<scalar_t>();
  scalar_t* out_p = out.data_ptr<scalar_t>();
  scalar_t* hn_p = h_n.data_ptr<scalar_t>();
  scalar_t* cn_p = c_n.data_ptr<scalar_t>();
  scalar_t* gates_p = save ? gates.data_ptr<scalar_t>() : nullptr;
  out.zero_();  // padding positions stay zero
  for_items(D, B, batch_chunks(D, B), [&](int64_t d, int64_t b0, int64_t b1, int64_t) {
    const int64_t Bc = b1 - b0;
    int64_t lmax = 0;
    for (int64_t b = b0; b < b1; ++b) lmax = std::max(lmax, len[b]);
    scalar_t* h = hn_p + (d * B + b0) * H;  // the state of my rows, updated in place; ends as h_n
    scalar_t* c = cn_p + (d * B + b0) * H;
    std::copy(h0_p + (d * B + b0) * H, h0_p + (d * B + b1) * H, h);
    std::copy(c0_p + (d * B + b0) * H, c0_p + (d * B + b1) * H, c);
    std::vector<scalar_t> pre(Bc * G);      // this step's pre-activations for my rows
    std::vector<scalar_t> scratch(5 * H);   // gates of a step when they are not kept
    StepInput<scalar_t> in;
    const scalar_t* bs = b_p + d * G;  // b_ih + b_hh
    for (int64_t s = 0; s < lmax; ++s) {
      int64_t ldx;
      const scalar_t* xr = in.rows(x_p, xst, xsb, In, d, s, b0, Bc, len, &ldx);
      gemm_rm(Bc, G, In, xr, ldx, wih_p + d * In * G, G, scalar_t(0), pre.data(), G);
      gemm_rm(Bc, G, H, h, H, whh_p + d * H * G, G, scalar_t(1), pre.data(), G);
      for (int64_t i = 0; i < Bc; ++i) {
        const int64_t b = b0 + i;
        if (s >= len[b]) continue;  // padding: the state is kept (the output there is zero)
        const int64_t t = time_of(d, s, len[b]);
        scalar_t* o = out_p + ((t * B + b) * D + d) * H;
        const scalar_t* p = pre.data() + i * G;
        scalar_t* hr = h + i * H;
        scalar_t* cr = c + i * H;
        scalar_t* sv = save ? gates_p + ((t * B + b) * D + d) * 5 * H : scratch.data();
#pragma GCC ivdep
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t ig = sigmoid(p[j] + bs[j]);                  // input gate
          const scalar_t fg = sigmoid(p[H + j] + bs[H + j]);          // forget gate
          const scalar_t gg = tanh_(p[2 * H + j] + bs[2 * H + j]);    // candidate cell
          const scalar_t og = sigmoid(p[3 * H + j] + bs[3 * H + j]);  // output gate
          const scalar_t cv = fg * cr[j] + ig * gg;  // forget gate keeps the old cell, input gate writes the new
          const scalar_t hv = og * tanh_(cv);        // output gate exposes the cell
          cr[j] = cv;
          hr[j] = hv;
          o[j] = hv;
          sv[j] = ig;
          sv[H + j] = fg;
          sv[2 * H + j] = gg;
          sv[3 * H + j] = og;
          sv[4 * H + j] = cv;
        }
      }
    }
  });
}

// -> out (T, B, D, H) zeros past length, h_n, c_n (D, B, H), gates (T, B, D, 5H) (empty when !save)
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lstm_forward(
    const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& bias, const at::Tensor& h0,
    const at::Tensor& c0, const at::Tensor& lengths, bool save) {
  TORCH_CHECK(x.dim() == 3 && x.stride(2) == 1 && x.stride(1) >= x.size(2), "x must be (T, B, In), contiguous features");
  const int64_t T = x.size(0), B = x.size(1), D = h0.size(0), H = h0.size(2);
  TORCH_CHECK(w_hh.size(1) == 4 * H && bias.size(1) == 4 * H, "LSTM weights must have 4H rows");
  auto len = lengths.to(at::kLong).contiguous();
  auto hc = h0.contiguous(), cc = c0.contiguous(), bc = bias.contiguous();
  auto out = at::empty({T, B, D, H}, h0.options());
  auto h_n = at::empty({D, B, H}, h0.options());
  auto c_n = at::empty({D, B, H}, h0.options());
  auto gates = save ? at::empty({T, B, D, 5 * H}, h0.options()) : at::empty({0}, h0.options());
  AT_DISPATCH_FLOATING_TYPES(h0.scalar_type(), "grutext_lstm_forward", [&] {
    lstm_forward_impl<scalar_t>(x, w_ih, w_hh, bc, hc, cc, len.data_ptr<int64_t>(), save, out, h_n, c_n, gates);
  });
  return {out, h_n, c_n, gates};
}

template <typename scalar_t>
void lstm_backward_impl(const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& dc_n,
                        const at::Tensor& w_hh, const at::Tensor& c0, const at::Tensor& gates, const int64_t* len,
                        at::Tensor& dg, at::Tensor& dh0, at::Tensor& dc0, at::Tensor& dbias) {
  using acc_t = typename AccOf<scalar_t>::type;
  const int64_t T = dout.size(0), B = dout.size(1), D = dh_n.size(0), H = dh_n.size(2), G = 4 * H;
  const scalar_t* dout_p = dout.data_ptr<scalar_t>();
  const int64_t ost = dout.stride(0), osb = dout.stride(1);
  const scalar_t* c0_p = c0.data_ptr<scalar_t>();
  const scalar_t* gates_p = gates.data_ptr<scalar_t>();
  const scalar_t* w_p = w_hh.data_ptr<scalar_t>();  // (D, 4H, H)
  scalar_t* dh_p = dh0.data_ptr<scalar_t>();
  scalar_t* dc_p = dc0.data_ptr<scalar_t>();
  scalar_t* dg_p = dg.data_ptr<scalar_t>();
  dg.zero_();  // padding positions: no gradient to the gates
  const int64_t nbc = batch_chunks(D, B);
  std::vector<acc_t> acc(D * nbc * G, acc_t(0));  // per item: the bias gradient of its rows
  for_items(D, B, nbc, [&](int64_t d, int64_t b0, int64_t b1, int64_t item) {
    const int64_t Bc = b1 - b0;
    int64_t lmax = 0;
    for (int64_t b = b0; b < b1; ++b) lmax = std::max(lmax, len[b]);
    scalar_t* dh = dh_p + (d * B + b0) * H;  // the carried dL/dh of my rows, ends as dL/dh0
    scalar_t* dc = dc_p + (d * B + b0) * H;  // the carried dL/dc
    std::copy(dh_n.data_ptr<scalar_t>() + (d * B + b0) * H, dh_n.data_ptr<scalar_t>() + (d * B + b1) * H, dh);
    std::copy(dc_n.data_ptr<scalar_t>() + (d * B + b0) * H, dc_n.data_ptr<scalar_t>() + (d * B + b1) * H, dc);
    std::vector<scalar_t> sg(Bc * G);   // this step's dgates for my rows (the step GEMM's input)
    std::vector<scalar_t> step_db(G);
    acc_t* ac = acc.data() + item * G;
    const scalar_t* w = w_p + d * G * H;
    for (int64_t s = lmax - 1; s >= 0; --s) {
      std::fill(step_db.begin(), step_db.end(), scalar_t(0));
      for (int64_t i = 0; i < Bc; ++i) {
        const int64_t b = b0 + i;
        scalar_t* gr = sg.data() + i * G;
        if (s >= len[b]) {  // padding: dh and dc pass through unchanged
          std::fill(gr, gr + G, scalar_t(0));
          continue;
        }
        const int64_t t = time_of(d, s, len[b]);
        // the cell before this step: the previous step's, or c0 at the sequence's first step
        const scalar_t* cp =
            s == 0 ? c0_p + (d * B + b) * H : gates_p + (((d == 0 ? t - 1 : t + 1) * B + b) * D + d) * 5 * H + 4 * H;
        const scalar_t* sv = gates_p + ((t * B + b) * D + d) * 5 * H;
        const scalar_t* go = dout_p + t * ost + b * osb + d * H;
        scalar_t* dgo = dg_p + ((t * B + b) * D + d) * G;
        scalar_t* dhr = dh + i * H;
        scalar_t* dcr = dc + i * H;
        scalar_t* sd = step_db.data();
#pragma GCC ivdep
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t ig = sv[j], fg = sv[H + j], gg = sv[2 * H + j], og = sv[3 * H + j], cv = sv[4 * H + j];
          const scalar_t tc = tanh_(cv);
          const scalar_t dht = dhr[j] + go[j];                                // dL/dh_t: carried + from the output
          const scalar_t dct = dcr[j] + dht * og * (scalar_t(1) - tc * tc);  // dL/dc_t
          const scalar_t di = dct * gg * ig * (scalar_t(1) - ig);
          const scalar_t df = dct * cp[j] * fg * (scalar_t(1) - fg);
          const scalar_t dgg = dct * ig * (scalar_t(1) - gg * gg);
          const scalar_t dog = dht * tc * og * (scalar_t(1) - og);
          gr[j] = di;
          gr[H + j] = df;
          gr[2 * H + j] = dgg;
          gr[3 * H + j] = dog;
          dgo[j] = di;
          dgo[H + j] = df;
          dgo[2 * H + j] = dgg;
          dgo[3 * H + j] = dog;
          sd[j] += di;
          sd[H + j] += df;
          sd[2 * H + j] += dgg;
          sd[3 * H + j] += dog;
          dcr[j] = dct * fg;  // the forget gate carries the cell back
          dhr[j] = scalar_t(0);  // the recurrent part is added by the GEMM below
        }
      }
      for (int64_t k = 0; k < G; ++k) ac[k] += acc_t(step_db[k]);
      // dh_{prev} += dgates @ W_hh: (Bc, 4H) @ (4H, H). Active rows had dh set to 0 above; rows
      // past their length have zero dgates, so their carried dh passes through unchanged
      gemm_rm(Bc, H, G, sg.data(), G, w, H, scalar_t(1), dh, H);
    }
  });
  scalar_t* db_p = dbias.data_ptr<scalar_t>();  // (D, 4H): the gradient of b_ih, equal to b_hh's
  for (int64_t d = 0; d < D; ++d)
    for (int64_t j = 0; j < G; ++j) {
      acc_t v = 0;
      for (int64_t c = 0; c < nbc; ++c) v += acc[(d * nbc + c) * G + j];
      db_p[d * G + j] = scalar_t(v);
    }
}

// -> dg (T, B, D, 4H), dh0, dc0 (D, B, H), dbias (D, 4H)
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lstm_backward(
    const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& dc_n, const at::Tensor& w_hh,
    const at::Tensor& c0, const at::Tensor& gates, const at::Tensor& lengths) {
  const int64_t T = dout.size(0), B = dout.size(1), D = dh_n.size(0), H = dh_n.size(2);
  TORCH_CHECK(dout.dim() == 3 && dout.size(2) == D * H, "dout must be (T, B, D*H)");
  auto go = dout.stride(2) == 1 && dout.stride(1) >= D * H && dout.stride(0) >= D * H ? dout : dout.contiguous();
  auto dhn = dh_n.contiguous(), dcn = dc_n.contiguous(), cc = c0.contiguous(), gc = gates.contiguous();
  auto wc = w_hh.contiguous();
  auto len = lengths.to(at::kLong).contiguous();
  auto dg = at::empty({T, B, D, 4 * H}, dhn.options());
  auto dh0 = at::empty({D, B, H}, dhn.options());
  auto dc0 = at::empty({D, B, H}, dhn.options());
  auto dbias = at::empty({D, 4 * H}, dhn.options());
  AT_DISPATCH_FLOATING_TYPES(dhn.scalar_type(), "grutext_lstm_backward", [&] {
    lstm_backward_impl<scalar_t>(go, dhn, dcn, wc, cc, gc, len.data_ptr<int64_t>(), dg, dh0, dc0, dbias);
  });
  return {dg, dh0, dc0, dbias};
}

// ---------------------------------------------------------------------------------------------
// Elman RNN: h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu

template <typename scalar_t>
void rnn_forward_impl(const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& bias,
                      const at::Tensor& h0, const int64_t* len, bool relu, at::Tensor& out, at::Tensor& h_n) {
  const int64_t T = x.size(0), B = x.size(1), In = x.size(2), D = h0.size(0), H = h0.size(2);
  (void)T;
  const int64_t xst = x.stride(0), xsb = x.stride(1);
  auto wih_t = w_ih.transpose(1, 2).contiguous();  // (D, In, H)
  auto whh_t = w_hh.transpose(1, 2).contiguous();  // (D, H, H)
  const scalar_t* x_p = x.data_ptr<scalar_t>();
  const scalar_t* wih_p = wih_t.data_ptr<scalar_t>();
  const scalar_t* whh_p = whh_t.data_ptr<scalar_t>();
  const scalar_t* b_p = bias.data_ptr<scalar_t>();
  const scalar_t* h0_p = h0.data_ptr<scalar_t>();
  scalar_t* out_p = out.data_ptr<scalar_t>();
  scalar_t* hn_p = h_n.data_ptr<scalar_t>();
  out.zero_();
  for_items(D, B, batch_chunks(D, B), [&](int64_t d, int64_t b0, int64_t b1, int64_t) {
    const int64_t Bc = b1 - b0;
    int64_t lmax = 0;
    for (int64_t b = b0; b < b1; ++b) lmax = std::max(lmax, len[b]);
    scalar_t* h = hn_p + (d * B + b0) * H;
    std::copy(h0_p + (d * B + b0) * H, h0_p + (d * B + b1) * H, h);
    std::vector<scalar_t> pre(Bc * H);
    StepInput<scalar_t> in;
    const scalar_t* bs = b_p + d * H;
    for (int64_t s = 0; s < lmax; ++s) {
      int64_t ldx;
      const scalar_t* xr = in.rows(x_p, xst, xsb, In, d, s, b0, Bc, len, &ldx);
      gemm_rm(Bc, H, In, xr, ldx, wih_p + d * In * H, H, scalar_t(0), pre.data(), H);
      gemm_rm(Bc, H, H, h, H, whh_p + d * H * H, H, scalar_t(1), pre.data(), H);
      for (int64_t i = 0; i < Bc; ++i) {
        const int64_t b = b0 + i;
        if (s >= len[b]) continue;
        const int64_t t = time_of(d, s, len[b]);
        scalar_t* o = out_p + ((t * B + b) * D + d) * H;
        const scalar_t* p = pre.data() + i * H;
        scalar_t* hr = h + i * H;
        if (relu) {
#pragma GCC ivdep
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t v = std::max(p[j] + bs[j], scalar_t(0));
            hr[j] = v;
            o[j] = v;
          }
        } else {
#pragma GCC ivdep
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t v = tanh_(p[j] + bs[j]);
            hr[j] = v;
            o[j] = v;
          }
        }
      }
    }
  });
}

// -> out (T, B, D, H) zeros past length, h_n (D, B, H)
std::tuple<at::Tensor, at::Tensor> rnn_forward(const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh,
                                               const at::Tensor& bias, const at::Tensor& h0, const at::Tensor& lengths,
                                               bool relu) {
  TORCH_CHECK(x.dim() == 3 && x.stride(2) == 1 && x.stride(1) >= x.size(2), "x must be (T, B, In), contiguous features");
  const int64_t T = x.size(0), B = x.size(1), D = h0.size(0), H = h0.size(2);
  auto len = lengths.to(at::kLong).contiguous();
  auto hc = h0.contiguous(), bc = bias.contiguous();
  auto out = at::empty({T, B, D, H}, h0.options());
  auto h_n = at::empty({D, B, H}, h0.options());
  AT_DISPATCH_FLOATING_TYPES(h0.scalar_type(), "grutext_rnn_forward", [&] {
    rnn_forward_impl<scalar_t>(x, w_ih, w_hh, bc, hc, len.data_ptr<int64_t>(), relu, out, h_n);
  });
  return {out, h_n};
}

template <typename scalar_t>
void rnn_backward_impl(const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& w_hh, const at::Tensor& out,
                       const int64_t* len, bool relu, at::Tensor& dg, at::Tensor& dh0, at::Tensor& dbias) {
  using acc_t = typename AccOf<scalar_t>::type;
  const int64_t B = dout.size(1), D = dh_n.size(0), H = dh_n.size(2);
  const scalar_t* dout_p = dout.data_ptr<scalar_t>();
  const int64_t ost = dout.stride(0), osb = dout.stride(1);
  const scalar_t* out_p = out.data_ptr<scalar_t>();
  const scalar_t* w_p = w_hh.data_ptr<scalar_t>();  // (D, H, H)
  scalar_t* dh_p = dh0.data_ptr<scalar_t>();
  scalar_t* dg_p = dg.data_ptr<scalar_t>();
  dg.zero_();
  const int64_t nbc = batch_chunks(D, B);
  std::vector<acc_t> acc(D * nbc * H, acc_t(0));
  for_items(D, B, nbc, [&](int64_t d, int64_t b0, int64_t b1, int64_t item) {
    const int64_t Bc = b1 - b0;
    int64_t lmax = 0;
    for (int64_t b = b0; b < b1; ++b) lmax = std::max(lmax, len[b]);
    scalar_t* dh = dh_p + (d * B + b0) * H;
    std::copy(dh_n.data_ptr<scalar_t>() + (d * B + b0) * H, dh_n.data_ptr<scalar_t>() + (d * B + b1) * H, dh);
    std::vector<scalar_t> sg(Bc * H);
    std::vector<scalar_t> step_db(H);
    acc_t* ac = acc.data() + item * H;
    const scalar_t* w = w_p + d * H * H;
    for (int64_t s = lmax - 1; s >= 0; --s) {
      std::fill(step_db.begin(), step_db.end(), scalar_t(0));
      for (int64_t i = 0; i < Bc; ++i) {
        const int64_t b = b0 + i;
        scalar_t* gr = sg.data() + i * H;
        if (s >= len[b]) {
          std::fill(gr, gr + H, scalar_t(0));
          continue;
        }
        const int64_t t = time_of(d, s, len[b]);
        const scalar_t* hv = out_p + ((t * B + b) * D + d) * H;
        const scalar_t* go = dout_p + t * ost + b * osb + d * H;
        scalar_t* dgo = dg_p + ((t * B + b) * D + d) * H;
        scalar_t* dhr = dh + i * H;
        scalar_t* sd = step_db.data();
#pragma GCC ivdep
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t dht = dhr[j] + go[j];
          const scalar_t dp = relu ? (hv[j] > scalar_t(0) ? dht : scalar_t(0)) : dht * (scalar_t(1) - hv[j] * hv[j]);
          gr[j] = dp;
          dgo[j] = dp;
          sd[j] += dp;
          dhr[j] = scalar_t(0);
        }
      }
      for (int64_t k = 0; k < H; ++k) ac[k] += acc_t(step_db[k]);
      gemm_rm(Bc, H, H, sg.data(), H, w, H, scalar_t(1), dh, H);
    }
  });
  scalar_t* db_p = dbias.data_ptr<scalar_t>();
  for (int64_t d = 0; d < D; ++d)
    for (int64_t j = 0; j < H; ++j) {
      acc_t v = 0;
      for (int64_t c = 0; c < nbc; ++c) v += acc[(d * nbc + c) * H + j];
      db_p[d * H + j] = scalar_t(v);
    }
}

// -> dg (T, B, D, H), dh0 (D, B, H), dbias (D, H)
std::tuple<at::Tensor, at::Tensor, at::Tensor> rnn_backward(const at::Tensor& dout, const at::Tensor& dh_n,
                                                            const at::Tensor& w_hh, const at::Tensor& out,
                                                            const at::Tensor& lengths, bool relu) {
  const int64_t T = dout.size(0), B = dout.size(1), D = dh_n.size(0), H = dh_n.size(2);
  TORCH_CHECK(dout.dim() == 3 && dout.size(2) == D * H, "dout must be (T, B, D*H)");
  auto go = dout.stride(2) == 1 && dout.stride(1) >= D * H && dout.stride(0) >= D * H ? dout : dout.contiguous();
  auto dhn = dh_n.contiguous(), oc = out.contiguous(), wc = w_hh.contiguous();
  auto len = lengths.to(at::kLong).contiguous();
  auto dg = at::empty({T, B, D, H}, dhn.options());
  auto dh0 = at::empty({D, B, H}, dhn.options());
  auto dbias = at::empty({D, H}, dhn.options());
  AT_DISPATCH_FLOATING_TYPES(dhn.scalar_type(), "grutext_rnn_backward", [&] {
    rnn_backward_impl<scalar_t>(go, dhn, wc, oc, len.data_ptr<int64_t>(), relu, dg, dh0, dbias);
  });
  return {dg, dh0, dbias};
}

}  // namespace

TORCH_LIBRARY(grutext_cells, m) {
  m.def("lstm_forward(Tensor x, Tensor w_ih, Tensor w_hh, Tensor bias, Tensor h0, Tensor c0, Tensor lengths, bool save) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("lstm_backward(Tensor dout, Tensor dh_n, Tensor dc_n, Tensor w_hh, Tensor c0, Tensor gates, Tensor lengths) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("rnn_forward(Tensor x, Tensor w_ih, Tensor w_hh, Tensor bias, Tensor h0, Tensor lengths, bool relu) -> (Tensor, Tensor)");
  m.def("rnn_backward(Tensor dout, Tensor dh_n, Tensor w_hh, Tensor out, Tensor lengths, bool relu) -> (Tensor, Tensor, Tensor)");
  m.impl("lstm_forward", c10::DispatchKey::CPU, TORCH_FN(lstm_forward));
  m.impl("lstm_backward", c10::DispatchKey::CPU, TORCH_FN(lstm_backward));
  m.impl("rnn_forward", c10::DispatchKey::CPU, TORCH_FN(rnn_forward));
  m.impl("rnn_backward", c10::DispatchKey::CPU, TORCH_FN(rnn_backward));
}
