// The GRU recurrence loops of grutext.nn.fused, compiled at first use.
//
// Only the step loops live here; the GEMMs over all steps (input projections, weight and input
// gradients) stay in Python as single calls. Per step: one batched GEMM over the D directions
// (h @ W_hh^T forward, dgates @ W_hh backward) plus one fused elementwise pass.
//
// Layouts (T time, B batch, D directions, H hidden, S = T processing steps):
//   gi, dgi     (T, B, D, 3H)  time order, gates r z n (gi includes b_ih)
//   out, dout   (T, B, D, H)   time order, zeros past length
//   hprev       (D, S, B, H)   state before processing step s (direction 1 reads t = T-1-s)
//   gates       (D, S, B, 4H)  r, z, n, ghn (= W_hn h + b_hn) per step
//   dgh         (D, S, B, 3H)  gradient of W_hh h + b_hh per step
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
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

// Rows (d, b) of one step. Serial on purpose: once vectorised the elementwise pass is a few percent
// of a step, and an OpenMP region per step (next to MKL's own) measured slower on 2 cores.
template <typename F>
inline void for_rows(int64_t n, const F& f) { f(0, n); }

inline int64_t time_of(int64_t d, int64_t s, int64_t T) { return d == 0 ? s : T - 1 - s; }

// h @ W^T for all directions: h (D, B, H), w_t (D, H, 3H) in compute dtype -> out (D, B, 3H) fp32/fp64
// w_t is contiguous: a transposed view would be copied by bmm at every step. One direction uses
// mm, measured ~30% faster than a batch-of-one bmm at (64, 128) x (128, 384).
void recurrent_gemm(const at::Tensor& h, const at::Tensor& w_t, at::Tensor& out) {
  if (w_t.scalar_type() == h.scalar_type()) {
    if (h.size(0) == 1) {
      auto o = out.select(0, 0);
      at::mm_out(o, h.select(0, 0), w_t.select(0, 0));
    } else {
      at::bmm_out(out, h, w_t);
    }
  } else if (h.size(0) == 1) {  // bf16 GEMM, fp32 state: mm as above, then back to fp32 in out
    out.select(0, 0).copy_(at::mm(h.select(0, 0).to(w_t.scalar_type()), w_t.select(0, 0)));
  } else {
    out.copy_(at::bmm(h.to(w_t.scalar_type()), w_t));
  }
}

template <typename scalar_t>
void forward_impl(const at::Tensor& gi, const at::Tensor& w_t, const at::Tensor& b_hh, at::Tensor& hcur,
                  const int64_t* len, const at::Tensor& rec_mask, bool save, at::Tensor& out,
                  at::Tensor& hprev, at::Tensor& gates) {
  const int64_t T = gi.size(0), B = gi.size(1), D = gi.size(2), H = hcur.size(2);
  auto gh = at::empty({D, B, 3 * H}, hcur.options());  // (D, B, 3H)
  at::Tensor hin = rec_mask.defined() ? at::empty_like(hcur) : hcur;
  const scalar_t* gi_p = gi.data_ptr<scalar_t>();
  const scalar_t* bhh_p = b_hh.data_ptr<scalar_t>();
  scalar_t* gh_p = gh.data_ptr<scalar_t>();
  scalar_t* h_p = hcur.data_ptr<scalar_t>();
  scalar_t* out_p = out.data_ptr<scalar_t>();
  scalar_t* hprev_p = save ? hprev.data_ptr<scalar_t>() : nullptr;
  scalar_t* gates_p = save ? gates.data_ptr<scalar_t>() : nullptr;
  std::vector<scalar_t> scratch(4 * H);  // gates of a step when they are not kept
  for (int64_t s = 0; s < T; ++s) {
    if (rec_mask.defined()) at::mul_out(hin, hcur, rec_mask);  // variational dropout on the recurrent input
    recurrent_gemm(hin, w_t, gh);  // (D, B, 3H) = h @ W_hh^T, one GEMM for all directions
    for_rows(D * B, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t d = row / B, b = row % B, t = time_of(d, s, T);
        scalar_t* h = h_p + row * H;
        scalar_t* o = out_p + ((t * B + b) * D + d) * H;
        if (save) std::copy(h, h + H, hprev_p + ((d * T + s) * B + b) * H);
        if (t >= len[b]) {  // padding: the state is kept and the output is zero
          std::fill(o, o + H, scalar_t(0));
          continue;
        }
        const scalar_t* x = gi_p + ((t * B + b) * D + d) * 3 * H;
        const scalar_t* g = gh_p + row * 3 * H;
        const scalar_t* bh = bhh_p + d * 3 * H;
        scalar_t* sv = save ? gates_p + ((d * T + s) * B + b) * 4 * H : scratch.data();
#pragma GCC ivdep
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t r = sigmoid(x[j] + g[j] + bh[j]);                  // reset gate
          const scalar_t z = sigmoid(x[H + j] + g[H + j] + bh[H + j]);      // update gate
          const scalar_t ghn = g[2 * H + j] + bh[2 * H + j];               // W_hn h + b_hn
          const scalar_t n = tanh_(x[2 * H + j] + r * ghn);            // candidate, b_hn inside the reset product
          const scalar_t hn = n + z * (h[j] - n);                          // (1 - z) n + z h: update gate keeps the past
          h[j] = hn;
          o[j] = hn;
          sv[j] = r;
          sv[H + j] = z;
          sv[2 * H + j] = n;
          sv[3 * H + j] = ghn;
        }
      }
    });
  }
}

// -> out (T, B, D, H), h_n (D, B, H), hprev (D, S, B, H), gates (D, S, B, 4H) (empty when !save)
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_forward(
    const at::Tensor& gi, const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& h0,
    const at::Tensor& lengths, const c10::optional<at::Tensor>& rec_mask, bool save) {
  TORCH_CHECK(gi.dim() == 4 && gi.is_contiguous(), "gi must be contiguous (T, B, D, 3H)");
  const int64_t T = gi.size(0), B = gi.size(1), D = gi.size(2), H = h0.size(2);
  auto hcur = h0.contiguous().clone();                              // (D, B, H)
  auto w_t = w_hh.transpose(1, 2).contiguous();                     // (D, H, 3H), once per call
  auto bc = b_hh.contiguous();
  auto len = lengths.to(at::kLong).contiguous();
  auto out = at::empty({T, B, D, H}, h0.options());
  at::Tensor hprev, gates;
  if (save) {
    hprev = at::empty({D, T, B, H}, h0.options());
    gates = at::empty({D, T, B, 4 * H}, h0.options());
  }
  at::Tensor rm = rec_mask.has_value() ? rec_mask->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(h0.scalar_type(), "grutext_gru_forward", [&] {
    forward_impl<scalar_t>(gi, w_t, bc, hcur, len.data_ptr<int64_t>(), rm, save, out, hprev, gates);
  });
  if (!save) {
    hprev = at::empty({0}, h0.options());
    gates = at::empty({0}, h0.options());
  }
  return {out, hcur, hprev, gates};
}

template <typename scalar_t>
void backward_impl(const at::Tensor& dout, at::Tensor& dh, const at::Tensor& w_hh, const at::Tensor& hprev,
                   const at::Tensor& gates, const int64_t* len, const at::Tensor& rec_mask,
                   at::Tensor& dgi, at::Tensor& dgh) {
  const int64_t T = dout.size(0), B = dout.size(1), D = dout.size(2), H = dh.size(2);
  const scalar_t* dout_p = dout.data_ptr<scalar_t>();
  const scalar_t* hprev_p = hprev.data_ptr<scalar_t>();
  const scalar_t* gates_p = gates.data_ptr<scalar_t>();
  scalar_t* dh_p = dh.data_ptr<scalar_t>();
  scalar_t* dgi_p = dgi.data_ptr<scalar_t>();
  scalar_t* dgh_p = dgh.data_ptr<scalar_t>();
  const bool lowp = w_hh.scalar_type() != dh.scalar_type();
  for (int64_t s = T - 1; s >= 0; --s) {
    for_rows(D * B, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t d = row / B, b = row % B, t = time_of(d, s, T);
        scalar_t* g = dh_p + row * H;
        const scalar_t* go = dout_p + ((t * B + b) * D + d) * H;
        scalar_t* dx = dgi_p + ((t * B + b) * D + d) * 3 * H;
        scalar_t* dr = dgh_p + ((d * T + s) * B + b) * 3 * H;
        if (t >= len[b]) {  // padding: no gradient to the gates, dh passes through unchanged
          std::fill(dx, dx + 3 * H, scalar_t(0));
          std::fill(dr, dr + 3 * H, scalar_t(0));
          continue;
        }
        const scalar_t* sv = gates_p + ((d * T + s) * B + b) * 4 * H;
        const scalar_t* hp = hprev_p + ((d * T + s) * B + b) * H;
#pragma GCC ivdep
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t dht = g[j] + go[j];                     // dL/dh_t (carried + from the output)
          const scalar_t r = sv[j], z = sv[H + j], n = sv[2 * H + j], ghn = sv[3 * H + j];
          const scalar_t dn = dht * (scalar_t(1) - z) * (scalar_t(1) - n * n);  // through tanh
          const scalar_t dz = dht * (hp[j] - n) * z * (scalar_t(1) - z);         // through σ
          const scalar_t dr_ = dn * ghn * r * (scalar_t(1) - r);                // through σ
          dx[j] = dr_;
          dx[H + j] = dz;
          dx[2 * H + j] = dn;
          dr[j] = dr_;
          dr[H + j] = dz;
          dr[2 * H + j] = dn * r;  // the reset gate scales W_hn h + b_hn
          g[j] = dht * z;          // direct path of h_{t-1} through the update gate
        }
      }
    });
    // dh_{t-1} += dgh_s @ W_hh, one batched GEMM over the directions
    auto dgh_s = dgh.select(1, s);  // (D, B, 3H), batch stride S*B*3H
    if (!rec_mask.defined() && !lowp && D == 1) {  // one direction: addmm, as mm in the forward
      auto dh0 = dh.select(0, 0);
      dh0.addmm_(dgh_s.select(0, 0), w_hh.select(0, 0));
    } else if (!rec_mask.defined() && !lowp) {
      dh.baddbmm_(dgh_s, w_hh);
    } else if (D == 1) {
      auto g0 = dgh_s.select(0, 0);
      auto back = lowp ? at::mm(g0.to(w_hh.scalar_type()), w_hh.select(0, 0)).to(dh.scalar_type())
                       : at::mm(g0, w_hh.select(0, 0));  // (B, H)
      auto dh0 = dh.select(0, 0);
      if (rec_mask.defined()) dh0.addcmul_(back, rec_mask.select(0, 0)); else dh0.add_(back);
    } else {
      auto back = lowp ? at::bmm(dgh_s.to(w_hh.scalar_type()), w_hh).to(dh.scalar_type()) : at::bmm(dgh_s, w_hh);
      if (rec_mask.defined()) dh.addcmul_(back, rec_mask); else dh.add_(back);
    }
  }
  // steps past a sequence's length: dout there is zero by construction of out, nothing to add
}

// -> dgi (T, B, D, 3H), dgh (D, S, B, 3H), dh0 (D, B, H)
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_backward(
    const at::Tensor& dout, const at::Tensor& dh_n, const at::Tensor& w_hh, const at::Tensor& hprev,
    const at::Tensor& gates, const at::Tensor& lengths, const c10::optional<at::Tensor>& rec_mask) {
  const int64_t T = dout.size(0), B = dout.size(1), D = dout.size(2), H = dh_n.size(2);
  auto go = dout.contiguous();
  auto dh = dh_n.contiguous().clone();
  auto len = lengths.to(at::kLong).contiguous();
  auto dgi = at::empty({T, B, D, 3 * H}, dh.options());
  auto dgh = at::empty({D, T, B, 3 * H}, dh.options());
  at::Tensor rm = rec_mask.has_value() ? rec_mask->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(dh.scalar_type(), "grutext_gru_backward", [&] {
    backward_impl<scalar_t>(go, dh, w_hh.contiguous(), hprev, gates, len.data_ptr<int64_t>(), rm, dgi, dgh);
  });
  return {dgi, dgh, dh};
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
  m.def("forward(Tensor gi, Tensor w_hh, Tensor b_hh, Tensor h0, Tensor lengths, Tensor? rec_mask, bool save) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("backward(Tensor dout, Tensor dh_n, Tensor w_hh, Tensor hprev, Tensor gates, Tensor lengths, Tensor? rec_mask) -> (Tensor, Tensor, Tensor)");
  m.def("mingru_forward(Tensor y, Tensor h0, Tensor lengths, bool reverse) -> (Tensor, Tensor)");
  m.def("mingru_backward(Tensor dout, Tensor dh_last, Tensor y, Tensor out, Tensor h0, Tensor lengths, bool reverse) -> (Tensor, Tensor)");
  m.impl("forward", c10::DispatchKey::CPU, TORCH_FN(gru_forward));
  m.impl("mingru_forward", c10::DispatchKey::CPU, TORCH_FN(mingru_forward));
  m.impl("mingru_backward", c10::DispatchKey::CPU, TORCH_FN(mingru_backward));
  m.impl("backward", c10::DispatchKey::CPU, TORCH_FN(gru_backward));
}
