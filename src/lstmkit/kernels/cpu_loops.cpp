// The per-step loops of kernels/cpu.py in C++: one GEMM and one fused pass over the batch per
// step, instead of a GEMM and 8 (forward) or 4 (backward) torch ops called from Python.
//
// The buffers and their meaning are those of cpu.py (see _Saved there): G (T, B, 4H) receives
// the gates i, f, s = sigmoid(2 z_g), o (the candidate-gate columns of W, U and b come doubled,
// so that tanh(z_g) = 2 s - 1); X (T, B, I) holds the inputs and WU (I + H, 4H) the kernel
// stacked on the recurrent kernel, both in the GEMM dtype; C2 (T+1, B, H) the doubled
// cell states; S (T, B, H) sigmoid(2 c), so that tanh(c) = 2 S - 1; Hs (T+1, B, H) the hidden
// states in float32 and Hg the same in the GEMM dtype (the same tensor when that is float32).
// The headers of the three things used (tensors, at::empty, at::mm_out), not ATen/ATen.h:
// parsing every operator's declaration took most of the build.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

namespace {

// Runs body(b0, b1) on contiguous chunks of the batch rows, one per intra-op thread. Rows are
// independent through the whole recurrence, so each thread runs every step of its rows with
// no synchronisation; a GEMM called inside runs on its caller's thread. The bodies capture
// their pointers by value: captured by reference, they would be reloaded after every store,
// and the inner loops would not vectorise.
template <typename F>
inline void by_rows(int64_t rows, const F& body) {
  at::parallel_for(0, rows, 1, body);
}

// Conversions to and from the GEMM dtype that the compiler can vectorise: bf16 rounds to
// nearest even by integer arithmetic (c10's conversion, with its NaN test, stays scalar).
template <typename gemm_t, typename state_t>
inline gemm_t to_gemm(state_t v) { return static_cast<gemm_t>(v); }

template <>
inline c10::BFloat16 to_gemm<c10::BFloat16, float>(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  const bool nan = (u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu);
  u = nan ? 0x7fc00000u : u + 0x7fffu + ((u >> 16) & 1u);
  return c10::BFloat16(static_cast<uint16_t>(u >> 16), c10::BFloat16::from_bits());
}

template <typename state_t, typename gemm_t>
inline state_t from_gemm(gemm_t v) { return static_cast<state_t>(v); }

template <>
inline float from_gemm<float, c10::BFloat16>(c10::BFloat16 v) {
  const uint32_t u = static_cast<uint32_t>(v.x) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

template <typename T>
inline T sigmoid(T x) {
  const T e = std::exp(-std::fabs(x));  // in (0, 1]: never overflows
  const T r = T(1) / (T(1) + e);
  return x >= T(0) ? r : e * r;
}

// The same in double: with layer norm, whose normalisations amplify rounding along a long
// sequence, float's fast vector exp put the gradients 6x further from float64's than torch's
// own float kernels (3.8e-5 against 6e-6 at T=63); in double, 1.1e-5, and the tests' 1e-5
// agreement with the reference holds.
template <typename T>
inline T sigmoid_precise(T x) {
  return T(sigmoid<double>(double(x)));
}

// All T steps of the forward. Per step and thread: gather [x_t, h_{t-1} (* dropout)] of its
// rows, one GEMM against WU, then vectorised passes: the gates (bias and peepholes added) with
// the doubled c_new; the cell state (zoneout, masks) and o tanh(c_new); with a projection
// (Sak et al. 2014) one more GEMM of the latter against it; then the hidden state (zoneout,
// masks) of size P (the projection's, or H).
template <typename state_t, typename gemm_t>
void forward_steps_impl(const at::Tensor& G, const at::Tensor& X, const at::Tensor& WU,
                        const std::optional<at::Tensor>& bias, const at::Tensor& Hs,
                        const at::Tensor& Hg, const at::Tensor& C2, const at::Tensor& S,
                        const std::optional<at::Tensor>& drop,
                        const std::optional<at::Tensor>& steps,
                        const std::optional<at::Tensor>& O,
                        const std::optional<at::Tensor>& keep_c,
                        const std::optional<at::Tensor>& keep_h, double rate_c, double rate_h,
                        const std::optional<at::Tensor>& peephole,
                        const std::optional<at::Tensor>& Cn,
                        const std::optional<at::Tensor>& projection) {
  const int64_t T = G.size(0), B = G.size(1), H4 = G.size(2), H = H4 / 4, I = X.size(2);
  const int64_t P = Hs.size(2);  // the hidden state's size
  state_t* g = G.data_ptr<state_t>();
  const gemm_t* x = X.data_ptr<gemm_t>();
  const state_t* bias_ = bias ? bias->data_ptr<state_t>() : nullptr;
  state_t* hs = Hs.data_ptr<state_t>();
  gemm_t* hg = Hg.data_ptr<gemm_t>();
  state_t* c2 = C2.data_ptr<state_t>();
  state_t* s = S.data_ptr<state_t>();
  const state_t* dropout = drop ? drop->data_ptr<state_t>() : nullptr;  // (B, P) on h_{t-1}
  const state_t* real = steps ? steps->data_ptr<state_t>() : nullptr;  // (B, T) 1: a real step
  state_t* out = O ? O->data_ptr<state_t>() : nullptr;                   // (T, B, P) outputs
  // zoneout: 1 where the old value is kept (B, T, H or P), or the rate (its expectation)
  const state_t* kc_ = keep_c ? keep_c->data_ptr<state_t>() : nullptr;
  const state_t* kh_ = keep_h ? keep_h->data_ptr<state_t>() : nullptr;
  // peepholes (Gers & Schmidhuber 2000), rows i, f, o of (3, H); zeros without them
  std::vector<state_t> no_peephole(peephole ? 0 : 3 * H, state_t(0));
  const state_t* pi = peephole ? peephole->data_ptr<state_t>() : no_peephole.data();
  const state_t *pf = pi + H, *po = pi + 2 * H;
  state_t* cnew = Cn ? Cn->data_ptr<state_t>() : nullptr;  // (T, B, H) doubled c_new, if asked
  const bool separate = Hg.data_ptr() != Hs.data_ptr();
  std::vector<state_t> no_bias(bias_ ? 0 : H4, state_t(0));
  const state_t* bi = bias_ ? bias_ : no_bias.data();  // the bias, blocks i, f, g, o of H
  const state_t *bf = bi + H, *bg = bi + 2 * H, *bo = bi + 3 * H;
  const bool projected = projection.has_value();
  by_rows(B, [=](int64_t b0, int64_t b1) {  // by value: no reloads in the loops
    const int64_t rows = b1 - b0;
    auto xh = at::empty({rows, I + P}, WU.options());  // [x_t, h_{t-1} (* dropout)] of the rows
    auto zu = at::empty({rows, H4}, WU.options());
    auto og = at::empty({projected ? rows : 0, H}, WU.options());  // o tanh(c_new), to project
    auto hp = at::empty({projected ? rows : 0, P}, WU.options());  // its projection
    gemm_t* in = xh.data_ptr<gemm_t>();
    const gemm_t* u = zu.data_ptr<gemm_t>();
    gemm_t* ogp = og.data_ptr<gemm_t>();
    const gemm_t* hpp = hp.data_ptr<gemm_t>();
    std::vector<state_t> unused_c(cnew ? 0 : H);  // where c_new goes when nobody needs it
    std::vector<state_t> h_new(rows * H);          // o tanh(c_new) of the rows
    const std::vector<state_t> all_c(H, state_t(rate_c)), all_h(P, state_t(rate_h));
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t b = b0; b < b1; ++b) {
        gemm_t* row = in + (b - b0) * (I + P);
        std::memcpy(row, x + (t * B + b) * I, I * sizeof(gemm_t));
        if (dropout) {
          const state_t* h = hs + (t * B + b) * P;
          const state_t* mk = dropout + b * P;
#pragma omp simd
          for (int64_t k = 0; k < P; ++k) row[I + k] = to_gemm<gemm_t>(h[k] * mk[k]);
        } else {
          std::memcpy(row + I, hg + (t * B + b) * P, P * sizeof(gemm_t));
        }
      }
      at::mm_out(zu, xh, WU);  // x_t W + h_{t-1} U in one GEMM
      for (int64_t b = b0; b < b1; ++b) {
        state_t* z = g + (t * B + b) * H4;
        const gemm_t* zb = u + (b - b0) * H4;
        const state_t* cp = c2 + (t * B + b) * H;
        state_t* cn = c2 + ((t + 1) * B + b) * H;
        state_t* st = s + (t * B + b) * H;
        state_t* cw = cnew ? cnew + (t * B + b) * H : unused_c.data();
        state_t* hw = h_new.data() + (b - b0) * H;
        // a masked step (Keras): the states carry over and the output repeats the previous
        // one (0 before the first real step); its gates are computed all the same, so that
        // every saved value is finite
        const state_t m = !real || real[b * T + t] != state_t(0) ? state_t(1) : state_t(0);
        const state_t* kct = kc_ ? kc_ + (b * T + t) * H : all_c.data();
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {  // the gates, with the doubled c_new
          const state_t c_prev = state_t(0.5) * cp[k];
          const state_t i = sigmoid<state_t>(from_gemm<state_t>(zb[k]) + bi[k] + pi[k] * c_prev);
          const state_t f =
              sigmoid<state_t>(from_gemm<state_t>(zb[H + k]) + bf[k] + pf[k] * c_prev);
          const state_t sg = sigmoid<state_t>(from_gemm<state_t>(zb[2 * H + k]) + bg[k]);
          const state_t c = f * cp[k] + state_t(4) * i * sg - state_t(2) * i;  // 2c, doubled
          z[k] = i;
          z[H + k] = f;
          z[2 * H + k] = sg;
          const state_t zo = from_gemm<state_t>(zb[3 * H + k]) + bo[k] + po[k] * state_t(0.5) * c;
          z[3 * H + k] = sigmoid<state_t>(zo);
          cw[k] = c;
        }
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {  // the cell state: zoned out, carried where masked
          const state_t c = cw[k];
          const state_t sc = sigmoid<state_t>(c);  // tanh(c) = 2 sigmoid(2c) - 1
          st[k] = sc;
          hw[k] = z[3 * H + k] * (state_t(2) * sc - state_t(1));
          const state_t kc = kct[k];
          const state_t cz = kc * cp[k] + (state_t(1) - kc) * c;  // zoneout (Krueger et al.)
          cn[k] = m * cz + (state_t(1) - m) * cp[k];
        }
        if (projected) {
          gemm_t* o_row = ogp + (b - b0) * H;
#pragma omp simd
          for (int64_t k = 0; k < H; ++k) o_row[k] = to_gemm<gemm_t>(hw[k]);
        }
      }
      if (projected) at::mm_out(hp, og, *projection);
      for (int64_t b = b0; b < b1; ++b) {
        const state_t* hprev = hs + (t * B + b) * P;
        state_t* hn = hs + ((t + 1) * B + b) * P;
        const state_t* hw = h_new.data() + (b - b0) * H;
        const gemm_t* hq = hpp + (b - b0) * P;
        const bool step = !real || real[b * T + t] != state_t(0);
        const state_t m = step ? state_t(1) : state_t(0);
        const state_t* kht = kh_ ? kh_ + (b * T + t) * P : all_h.data();
#pragma omp simd
        for (int64_t k = 0; k < P; ++k) {  // the hidden state: zoned out, carried where masked
          const state_t h = projected ? from_gemm<state_t>(hq[k]) : hw[k];
          const state_t kh = kht[k];
          const state_t hz = kh * hprev[k] + (state_t(1) - kh) * h;
          hn[k] = m * hz + (state_t(1) - m) * hprev[k];
        }
        if (out) {
          state_t* ot = out + (t * B + b) * P;
          const state_t* before = t ? out + ((t - 1) * B + b) * P : nullptr;
          for (int64_t k = 0; k < P; ++k) ot[k] = step ? hn[k] : (before ? before[k] : state_t(0));
        }
        if (separate) {
          gemm_t* hgn = hg + ((t + 1) * B + b) * P;
#pragma omp simd
          for (int64_t k = 0; k < P; ++k) hgn[k] = to_gemm<gemm_t>(hn[k]);
        }
      }
    }
  });
}

void forward_steps(const at::Tensor& G, const at::Tensor& X, const at::Tensor& WU,
                   const std::optional<at::Tensor>& bias, const at::Tensor& Hs,
                   const at::Tensor& Hg, const at::Tensor& C2, const at::Tensor& S,
                   const std::optional<at::Tensor>& drop, const std::optional<at::Tensor>& steps,
                   const std::optional<at::Tensor>& O, const std::optional<at::Tensor>& keep_c,
                   const std::optional<at::Tensor>& keep_h, double rate_c, double rate_h,
                   const std::optional<at::Tensor>& peephole, const std::optional<at::Tensor>& Cn,
                   const std::optional<at::Tensor>& projection) {
  if (G.scalar_type() == at::kDouble) {
    forward_steps_impl<double, double>(G, X, WU, bias, Hs, Hg, C2, S, drop, steps, O, keep_c,
                                       keep_h, rate_c, rate_h, peephole, Cn, projection);
  } else if (WU.scalar_type() == at::kBFloat16) {
    forward_steps_impl<float, c10::BFloat16>(G, X, WU, bias, Hs, Hg, C2, S, drop, steps, O,
                                             keep_c, keep_h, rate_c, rate_h, peephole, Cn,
                                             projection);
  } else {
    forward_steps_impl<float, float>(G, X, WU, bias, Hs, Hg, C2, S, drop, steps, O, keep_c,
                                     keep_h, rate_c, rate_h, peephole, Cn, projection);
  }
}

// One block of the backward, steps t0 + n - 1 down to t0 (j = n - 1 .. 0 within the block).
// Per row, dh and dc hold the gradients of the carried states h_t and c_t, dout that of the
// output o_t (they differ where steps are masked or zoned out). A step t of the forward made,
// with m = 1 for a real step (0 where masked) and k_c, k_h the zoneout keep values (0 without):
//   c_t = m (k_c c_{t-1} + (1 - k_c) c_new) + (1 - m) c_{t-1}, likewise h_t from h_new;
//   o_t = m (k_h h_{t-1} + (1 - k_h) h_new) + (1 - m) o_{t-1}
// and the peepholes p_i, p_f see c_{t-1}, p_o sees c_new (all zero without peepholes);
// so, going back, with dh and dout first completed by what step t + 1 sends,
//   dh += (dz_{t+1} U^T) * dropout  (dz_{t+1}: dZ[j + 1], or rec at j = n-1);  dout += d out_t
//   dhz = m (dh + dout);  dh_new = (1 - k_h) dhz;  dcz = m dc
//   dz_o = dh_new tanh(c_new) sigma'_o
//   dc_new = (1 - k_c) dcz + dh_new o (1 - tanh(c_new)^2) + dz_o p_o
//   (dz_i, dz_f, dz_g) = sigma' * dc_new (g~, c_{t-1}, i 4 s (1 - s))
//   and what goes on to step t - 1 besides the GEMM:
//   dc = dc_new f + (1 - m) dc + k_c dcz + dz_i p_i + dz_f p_f;  dh = (1 - m) dh + k_h dhz;
//   dout = (1 - m) dout
// where sigma' = sigma (1 - sigma) of each gate and g~ = 2 s - 1 = tanh(z_g), from the saved G,
// C2 and S. At t = T - 1, dh holds the gradient of h_T as given. After t = 0, dh and dc hold
// what h_0 and c_0 get besides dz_0 U^T. dZ (n, B, 4H) receives dz; d_bias (4H), if given, gets
// the sum of dz over the block (before rounding dz to the GEMM dtype).
template <typename state_t, typename gemm_t>
void backward_steps_impl(const at::Tensor& dZ, const at::Tensor& G, const at::Tensor& C2,
                         const at::Tensor& S, const at::Tensor& dh, const at::Tensor& dc,
                         const at::Tensor& dout, const at::Tensor& U_t,
                         const std::optional<at::Tensor>& rec,
                         const std::optional<at::Tensor>& d_out,
                         const std::optional<at::Tensor>& drop,
                         const std::optional<at::Tensor>& steps,
                         const std::optional<at::Tensor>& keep_c,
                         const std::optional<at::Tensor>& keep_h, double rate_c, double rate_h,
                         const std::optional<at::Tensor>& peephole,
                         const std::optional<at::Tensor>& Cn,
                         const std::optional<at::Tensor>& d_bias,
                         const std::optional<at::Tensor>& d_peephole,
                         const std::optional<at::Tensor>& projection_t,
                         const std::optional<at::Tensor>& DHN, int64_t t0, int64_t n) {
  const int64_t B = dh.size(0), P = dh.size(1), H4 = G.size(2), H = H4 / 4, T = G.size(0);
  std::vector<state_t> no_peephole(peephole ? 0 : 3 * H, state_t(0));
  const state_t* pi = peephole ? peephole->data_ptr<state_t>() : no_peephole.data();
  const state_t *pf = pi + H, *po = pi + 2 * H;
  const state_t* cnew = Cn ? Cn->data_ptr<state_t>() : nullptr;  // doubled c_new
  gemm_t* dz = dZ.data_ptr<gemm_t>();
  const state_t* g = G.data_ptr<state_t>();
  const state_t* c2 = C2.data_ptr<state_t>();
  const state_t* s = S.data_ptr<state_t>();
  state_t* dhp = dh.data_ptr<state_t>();
  state_t* dcp = dc.data_ptr<state_t>();
  state_t* dop = dout.data_ptr<state_t>();
  const state_t* given = d_out ? d_out->data_ptr<state_t>() : nullptr;  // (B, T, P)
  const state_t* dropout = drop ? drop->data_ptr<state_t>() : nullptr;  // (B, P) on h_{t-1}
  const state_t* real = steps ? steps->data_ptr<state_t>() : nullptr;  // (B, T)
  const state_t* kc_ = keep_c ? keep_c->data_ptr<state_t>() : nullptr;  // (B, T, H)
  const state_t* kh_ = keep_h ? keep_h->data_ptr<state_t>() : nullptr;  // (B, T, P)
  state_t* dhn_saved = DHN ? DHN->data_ptr<state_t>() : nullptr;  // (n, B, P) for d projection
  const bool projected = projection_t.has_value();
  std::mutex sum_lock;
  by_rows(B, [=, &sum_lock](int64_t b0, int64_t b1) {
    const int64_t rows = b1 - b0;
    auto back = at::empty({rows, P}, U_t.options());
    const gemm_t* bk = back.data_ptr<gemm_t>();
    std::vector<state_t> dh_new(rows * P);  // the gradient of h_new (projected, if so)
    std::vector<state_t> dm_row(projected ? H : 0);  // that of o tanh(c_new), one row
    auto dhg = at::empty({projected ? rows : 0, P}, U_t.options());  // the same, to project
    auto dmg = at::empty({projected ? rows : 0, H}, U_t.options());  // that of o tanh(c_new)
    gemm_t* dhgp = dhg.data_ptr<gemm_t>();
    const gemm_t* dmp = dmg.data_ptr<gemm_t>();
    std::vector<state_t> db(d_bias ? H4 : 0, state_t(0));  // this thread's share, unrounded
    std::vector<state_t> dp(d_peephole ? 3 * H : 0, state_t(0));
    const std::vector<state_t> all_c(H, state_t(rate_c)), all_h(P, state_t(rate_h));
    std::vector<state_t> unused_c(cnew ? 0 : H, state_t(0));
    for (int64_t j = n - 1; j >= 0; --j) {
      const int64_t t = t0 + j;
      const bool has_next = j < n - 1 || rec.has_value();  // a step after t
      if (has_next) {
        at::mm_out(back, (j < n - 1 ? dZ[j + 1] : *rec).narrow(0, b0, rows), U_t);
      }
      for (int64_t b = b0; b < b1; ++b) {  // the hidden state's gradients, size P
        state_t* dhb = dhp + b * P;
        state_t* dob = dop + b * P;
        state_t* dn = dh_new.data() + (b - b0) * P;
        const state_t* o_given = given ? given + (b * T + t) * P : nullptr;
        if (has_next) {
          const gemm_t* r = bk + (b - b0) * P;
          const state_t* mk = dropout ? dropout + b * P : nullptr;
#pragma omp simd
          for (int64_t k = 0; k < P; ++k) {
            const state_t v = from_gemm<state_t>(r[k]);
            dhb[k] += mk ? v * mk[k] : v;
          }
        }
        if (o_given) {
#pragma omp simd
          for (int64_t k = 0; k < P; ++k) dob[k] += o_given[k];
        }
        const state_t m = real ? real[b * T + t] : state_t(1);
        const state_t* kht = kh_ ? kh_ + (b * T + t) * P : all_h.data();
#pragma omp simd
        for (int64_t k = 0; k < P; ++k) {
          const state_t kh = kht[k];
          const state_t dhz = m * (dhb[k] + dob[k]);
          dn[k] = (state_t(1) - kh) * dhz;
          dhb[k] = (state_t(1) - m) * dhb[k] + kh * dhz;
          dob[k] = (state_t(1) - m) * dob[k];
        }
        if (dhn_saved) std::memcpy(dhn_saved + (j * B + b) * P, dn, P * sizeof(state_t));
        if (projected) {
          gemm_t* row = dhgp + (b - b0) * P;
#pragma omp simd
          for (int64_t k = 0; k < P; ++k) row[k] = to_gemm<gemm_t>(dn[k]);
        }
      }
      if (projected) at::mm_out(dmg, dhg, *projection_t);  // back through the projection
      for (int64_t b = b0; b < b1; ++b) {  // the gates' gradients, size H
        state_t* dcb = dcp + b * H;
        const state_t* dm = dh_new.data() + (b - b0) * P;  // without a projection, P = H
        if (projected) {
          const gemm_t* dmr = dmp + (b - b0) * H;
#pragma omp simd
          for (int64_t k = 0; k < H; ++k) dm_row[k] = from_gemm<state_t>(dmr[k]);
          dm = dm_row.data();
        }
        const state_t m = real ? real[b * T + t] : state_t(1);
        const state_t* kct = kc_ ? kc_ + (b * T + t) * H : all_c.data();
        const state_t* gt = g + (t * B + b) * H4;  // i, f, s = sigmoid(2 z_g), o
        const state_t* cp = c2 + (t * B + b) * H;   // 2 c_{t-1}
        const state_t* st = s + (t * B + b) * H;    // sigmoid(2 c_new)
        const state_t* cw = cnew ? cnew + (t * B + b) * H : unused_c.data();
        gemm_t* out = dz + (j * B + b) * H4;
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          const state_t i = gt[k], f = gt[H + k], sg = gt[2 * H + k], o = gt[3 * H + k];
          const state_t kc = kct[k];
          const state_t tanh_c = state_t(2) * st[k] - state_t(1);
          const state_t dcz = m * dcb[k];
          const state_t d_o = dm[k] * tanh_c * o * (state_t(1) - o);
          const state_t c = (state_t(1) - kc) * dcz +
                            dm[k] * o * (state_t(1) - tanh_c * tanh_c) + d_o * po[k];
          const state_t di = c * (state_t(2) * sg - state_t(1)) * i * (state_t(1) - i);
          const state_t df = c * state_t(0.5) * cp[k] * f * (state_t(1) - f);
          const state_t dg = c * state_t(4) * i * sg * (state_t(1) - sg);
          out[k] = to_gemm<gemm_t>(di);
          out[H + k] = to_gemm<gemm_t>(df);
          out[2 * H + k] = to_gemm<gemm_t>(dg);
          out[3 * H + k] = to_gemm<gemm_t>(d_o);
          dcb[k] = c * f + (state_t(1) - m) * dcb[k] + kc * dcz + di * pi[k] + df * pf[k];
          if (d_bias) {
            db[k] += di;
            db[H + k] += df;
            db[2 * H + k] += dg;
            db[3 * H + k] += d_o;
          }
          if (d_peephole) {  // c_{t-1} = cp / 2, c_new = cw / 2
            dp[k] += di * state_t(0.5) * cp[k];
            dp[H + k] += df * state_t(0.5) * cp[k];
            dp[2 * H + k] += d_o * state_t(0.5) * cw[k];
          }
        }
      }
    }
    std::lock_guard<std::mutex> guard(sum_lock);
    if (d_bias) {
      state_t* total = d_bias->data_ptr<state_t>();
      for (int64_t k = 0; k < H4; ++k) total[k] += db[k];
    }
    if (d_peephole) {
      state_t* total = d_peephole->data_ptr<state_t>();
      for (int64_t k = 0; k < 3 * H; ++k) total[k] += dp[k];
    }
  });
}

void backward_steps(const at::Tensor& dZ, const at::Tensor& G, const at::Tensor& C2,
                    const at::Tensor& S, const at::Tensor& dh, const at::Tensor& dc,
                    const at::Tensor& dout, const at::Tensor& U_t,
                    const std::optional<at::Tensor>& rec, const std::optional<at::Tensor>& d_out,
                    const std::optional<at::Tensor>& drop, const std::optional<at::Tensor>& steps,
                    const std::optional<at::Tensor>& keep_c,
                    const std::optional<at::Tensor>& keep_h, double rate_c, double rate_h,
                    const std::optional<at::Tensor>& peephole, const std::optional<at::Tensor>& Cn,
                    const std::optional<at::Tensor>& d_bias,
                    const std::optional<at::Tensor>& d_peephole,
                    const std::optional<at::Tensor>& projection_t,
                    const std::optional<at::Tensor>& DHN, int64_t t0, int64_t n) {
  if (G.scalar_type() == at::kDouble) {
    backward_steps_impl<double, double>(dZ, G, C2, S, dh, dc, dout, U_t, rec, d_out, drop, steps,
                                        keep_c, keep_h, rate_c, rate_h, peephole, Cn, d_bias,
                                        d_peephole, projection_t, DHN, t0, n);
  } else if (U_t.scalar_type() == at::kBFloat16) {
    backward_steps_impl<float, c10::BFloat16>(dZ, G, C2, S, dh, dc, dout, U_t, rec, d_out, drop,
                                              steps, keep_c, keep_h, rate_c, rate_h, peephole,
                                              Cn, d_bias, d_peephole, projection_t, DHN, t0, n);
  } else {
    backward_steps_impl<float, float>(dZ, G, C2, S, dh, dc, dout, U_t, rec, d_out, drop, steps,
                                      keep_c, keep_h, rate_c, rate_h, peephole, Cn, d_bias,
                                      d_peephole, projection_t, DHN, t0, n);
  }
}

// Layer norm (Ba et al. 2016) over ``n`` values: their mean and 1 / sqrt(var + eps). The sums
// run in double: a long sequence carries the rounding of every step's norms.
template <typename T>
inline void moments(const T* x, int64_t n, double eps, T& mean, T& rstd) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t k = 0; k < n; ++k) sum += double(x[k]);
  const double mu = sum / double(n);
  double var = 0;
#pragma omp simd reduction(+ : var)
  for (int64_t k = 0; k < n; ++k) var += (double(x[k]) - mu) * (double(x[k]) - mu);
  mean = T(mu);
  rstd = T(1.0 / std::sqrt(var / double(n) + eps));
}

// The input gradient of y = LN(x) w: dx = rstd (g - mean(g) - x^ mean(g x^)), g = dy w.
template <typename T>
inline void norm_backward(const T* dy, const T* x, const T* w, T mean, T rstd, int64_t n, T* dx) {
  double sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
  for (int64_t k = 0; k < n; ++k) {
    const double g = double(dy[k]) * double(w[k]);
    sum_g += g;
    sum_gx += g * (double(x[k]) - double(mean)) * double(rstd);
  }
  const T mg = T(sum_g / double(n)), mgx = T(sum_gx / double(n));
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) {
    dx[k] = rstd * (dy[k] * w[k] - mg - (x[k] - mean) * rstd * mgx);
  }
}

// The forward with layer norm (float32 or float64 GEMMs; no masks, zoneout or peepholes):
// G holds LN(x W) g_x + b on entry; per step h U is normalised (saved in HU, its mean and
// 1/sigma in h_mean, h_rstd) and added with g_h, and the doubled cell state is normalised
// before the output tanh (eps 4 eps: LN(2c, 4 eps) = LN(c, eps)), with gains 2 g_c and 2 b_c.
template <typename V>
void forward_steps_ln_impl(const at::Tensor& G, const at::Tensor& Hs, const at::Tensor& C2,
                           const at::Tensor& S, const at::Tensor& U,
                           const std::optional<at::Tensor>& drop, const at::Tensor& HU,
                           const at::Tensor& gain_h, const at::Tensor& gain_c2,
                           const at::Tensor& shift_c2, const at::Tensor& h_mean,
                           const at::Tensor& h_rstd, const at::Tensor& c_mean,
                           const at::Tensor& c_rstd, double eps) {
  const int64_t steps = G.size(0), B = G.size(1), H4 = G.size(2), H = H4 / 4;
  V* g = G.data_ptr<V>();
  V* hs = Hs.data_ptr<V>();
  V* c2 = C2.data_ptr<V>();
  V* s = S.data_ptr<V>();
  V* hu_saved = HU.data_ptr<V>();
  const V* gh = gain_h.data_ptr<V>();
  const V* gc = gain_c2.data_ptr<V>();
  const V* bc = shift_c2.data_ptr<V>();
  V *hm = h_mean.data_ptr<V>(), *hr = h_rstd.data_ptr<V>();
  V *cm = c_mean.data_ptr<V>(), *cr = c_rstd.data_ptr<V>();
  const V* dropout = drop ? drop->data_ptr<V>() : nullptr;
  by_rows(B, [=](int64_t b0, int64_t b1) {
    const int64_t rows = b1 - b0;
    auto h_in = at::empty({rows, H}, U.options());
    auto zu = at::empty({rows, H4}, U.options());
    V* hin = h_in.data_ptr<V>();
    const V* u = zu.data_ptr<V>();
    for (int64_t t = 0; t < steps; ++t) {
      if (dropout) {
#pragma omp simd
        for (int64_t k = 0; k < rows * H; ++k) {
          hin[k] = hs[(t * B + b0) * H + k] * dropout[b0 * H + k];
        }
        at::mm_out(zu, h_in, U);
      } else {
        at::mm_out(zu, Hs[t].narrow(0, b0, rows), U);
      }
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        const V* hu = u + (b - b0) * H4;
        V* hus = hu_saved + row * H4;
        std::memcpy(hus, hu, H4 * sizeof(V));
        V mean, rstd;
        moments(hu, H4, eps, mean, rstd);
        hm[row] = mean;
        hr[row] = rstd;
        V* z = g + row * H4;
#pragma omp simd
        for (int64_t j = 0; j < H4; ++j) {
          z[j] = sigmoid_precise<V>(z[j] + (hu[j] - mean) * rstd * gh[j]);
        }
        const V* cp = c2 + row * H;
        V* cn = c2 + (row + B) * H;
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          const V i = z[k], f = z[H + k], sg = z[2 * H + k];
          cn[k] = f * cp[k] + V(4) * i * sg - V(2) * i;  // 2c, doubled
        }
        moments(cn, H, 4 * eps, mean, rstd);
        cm[row] = mean;
        cr[row] = rstd;
        V* st = s + row * H;
        V* hn = hs + (row + B) * H;
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          // tanh of the normalised cell: 2 sc - 1
          const V sc = sigmoid_precise<V>((cn[k] - mean) * rstd * gc[k] + bc[k]);
          st[k] = sc;
          hn[k] = z[3 * H + k] * (V(2) * sc - V(1));
        }
      }
    }
  });
}

void forward_steps_ln(const at::Tensor& G, const at::Tensor& Hs, const at::Tensor& C2,
                      const at::Tensor& S, const at::Tensor& U,
                      const std::optional<at::Tensor>& drop, const at::Tensor& HU,
                      const at::Tensor& gain_h, const at::Tensor& gain_c2,
                      const at::Tensor& shift_c2, const at::Tensor& h_mean,
                      const at::Tensor& h_rstd, const at::Tensor& c_mean,
                      const at::Tensor& c_rstd, double eps) {
  if (G.scalar_type() == at::kDouble) {
    forward_steps_ln_impl<double>(G, Hs, C2, S, U, drop, HU, gain_h, gain_c2, shift_c2, h_mean,
                                  h_rstd, c_mean, c_rstd, eps);
  } else {
    forward_steps_ln_impl<float>(G, Hs, C2, S, U, drop, HU, gain_h, gain_c2, shift_c2, h_mean,
                                 h_rstd, c_mean, c_rstd, eps);
  }
}

// The backward of one block with layer norm: as backward_steps without masks, zoneout or
// peepholes, plus the norms' input gradients. DY (n, B, H) receives the gradient of the output
// tanh's argument, R (n, B, 4H) that of h U (what the next GEMM, and dU, take instead of dz).
template <typename V>
void backward_steps_ln_impl(const at::Tensor& dZ, const at::Tensor& R, const at::Tensor& DY,
                            const at::Tensor& G, const at::Tensor& C2, const at::Tensor& S,
                            const at::Tensor& HU, const at::Tensor& h_mean,
                            const at::Tensor& h_rstd, const at::Tensor& c_mean,
                            const at::Tensor& c_rstd, const at::Tensor& gain_h,
                            const at::Tensor& gain_c2, const at::Tensor& dh, const at::Tensor& dc,
                            const at::Tensor& dout, const at::Tensor& U_t,
                            const std::optional<at::Tensor>& rec,
                            const std::optional<at::Tensor>& d_out,
                            const std::optional<at::Tensor>& drop, int64_t t0, int64_t n) {
  const int64_t B = dh.size(0), H = dh.size(1), H4 = 4 * H, steps = G.size(0);
  V* dz = dZ.data_ptr<V>();
  V* r_ = R.data_ptr<V>();
  V* dy = DY.data_ptr<V>();
  const V *g = G.data_ptr<V>(), *c2 = C2.data_ptr<V>(), *s = S.data_ptr<V>();
  const V* hu = HU.data_ptr<V>();
  const V *hm = h_mean.data_ptr<V>(), *hr = h_rstd.data_ptr<V>();
  const V *cm = c_mean.data_ptr<V>(), *cr = c_rstd.data_ptr<V>();
  const V *gh = gain_h.data_ptr<V>(), *gc = gain_c2.data_ptr<V>();
  V *dhp = dh.data_ptr<V>(), *dcp = dc.data_ptr<V>(), *dop = dout.data_ptr<V>();
  const V* given = d_out ? d_out->data_ptr<V>() : nullptr;  // (B, V, H)
  const V* dropout = drop ? drop->data_ptr<V>() : nullptr;
  by_rows(B, [=](int64_t b0, int64_t b1) {
    const int64_t rows = b1 - b0;
    auto back = at::empty({rows, H}, U_t.options());
    const V* bk = back.data_ptr<V>();
    std::vector<V> dcn(H);
    for (int64_t j = n - 1; j >= 0; --j) {
      const int64_t t = t0 + j;
      const bool has_next = j < n - 1 || rec.has_value();
      if (has_next) at::mm_out(back, (j < n - 1 ? R[j + 1] : *rec).narrow(0, b0, rows), U_t);
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = t * B + b;
        V *dhb = dhp + b * H, *dcb = dcp + b * H, *dob = dop + b * H;
        if (has_next) {
          const V* r = bk + (b - b0) * H;
          const V* mk = dropout ? dropout + b * H : nullptr;
#pragma omp simd
          for (int64_t k = 0; k < H; ++k) dhb[k] += mk ? r[k] * mk[k] : r[k];
        }
        if (given) {
#pragma omp simd
          for (int64_t k = 0; k < H; ++k) dob[k] += given[(b * steps + t) * H + k];
        }
        const V* gt = g + row * H4;
        const V* st = s + row * H;
        V* dyr = dy + (j * B + b) * H;
        V* out = dz + (j * B + b) * H4;
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          const V o = gt[3 * H + k], tanh_a = V(2) * st[k] - V(1), dh_new = dhb[k] + dob[k];
          dyr[k] = dh_new * o * (V(1) - tanh_a * tanh_a);
          out[3 * H + k] = dh_new * tanh_a * o * (V(1) - o);
          dhb[k] = V(0);
          dob[k] = V(0);
        }
        norm_backward(dyr, c2 + (row + B) * H, gc, cm[row], cr[row], H, dcn.data());
        const V* cp = c2 + row * H;
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) {
          const V i = gt[k], f = gt[H + k], sg = gt[2 * H + k];
          const V c = dcb[k] + dcn[k];
          out[k] = c * (V(2) * sg - V(1)) * i * (V(1) - i);
          out[H + k] = c * V(0.5) * cp[k] * f * (V(1) - f);
          out[2 * H + k] = c * V(4) * i * sg * (V(1) - sg);
          dcb[k] = c * f;
        }
        norm_backward(out, hu + row * H4, gh, hm[row], hr[row], H4, r_ + (j * B + b) * H4);
      }
    }
  });
}

void backward_steps_ln(const at::Tensor& dZ, const at::Tensor& R, const at::Tensor& DY,
                       const at::Tensor& G, const at::Tensor& C2, const at::Tensor& S,
                       const at::Tensor& HU, const at::Tensor& h_mean, const at::Tensor& h_rstd,
                       const at::Tensor& c_mean, const at::Tensor& c_rstd,
                       const at::Tensor& gain_h, const at::Tensor& gain_c2, const at::Tensor& dh,
                       const at::Tensor& dc, const at::Tensor& dout, const at::Tensor& U_t,
                       const std::optional<at::Tensor>& rec,
                       const std::optional<at::Tensor>& d_out,
                       const std::optional<at::Tensor>& drop, int64_t t0, int64_t n) {
  if (G.scalar_type() == at::kDouble) {
    backward_steps_ln_impl<double>(dZ, R, DY, G, C2, S, HU, h_mean, h_rstd, c_mean, c_rstd,
                                   gain_h, gain_c2, dh, dc, dout, U_t, rec, d_out, drop, t0, n);
  } else {
    backward_steps_ln_impl<float>(dZ, R, DY, G, C2, S, HU, h_mean, h_rstd, c_mean, c_rstd,
                                  gain_h, gain_c2, dh, dc, dout, U_t, rec, d_out, drop, t0, n);
  }
}

}  // namespace

TORCH_LIBRARY(lstmkit_cpu, m) {
  m.def("forward_steps_ln(Tensor(a!) G, Tensor(b!) Hs, Tensor(c!) C2, Tensor(d!) S, Tensor U, "
        "Tensor? drop, Tensor(e!) HU, Tensor gain_h, Tensor gain_c2, Tensor shift_c2, "
        "Tensor(f!) h_mean, Tensor(g!) h_rstd, Tensor(h!) c_mean, Tensor(i!) c_rstd, "
        "float eps) -> ()",
        &forward_steps_ln);
  m.def("backward_steps_ln(Tensor(a!) dZ, Tensor(b!) R, Tensor(c!) DY, Tensor G, Tensor C2, "
        "Tensor S, Tensor HU, Tensor h_mean, Tensor h_rstd, Tensor c_mean, Tensor c_rstd, "
        "Tensor gain_h, Tensor gain_c2, Tensor(d!) dh, Tensor(e!) dc, Tensor(f!) dout, "
        "Tensor U_t, Tensor? rec, Tensor? d_out, Tensor? drop, int t0, int n) -> ()",
        &backward_steps_ln);
  m.def("backward_steps(Tensor(a!) dZ, Tensor G, Tensor C2, Tensor S, Tensor(b!) dh, "
        "Tensor(c!) dc, Tensor(d!) dout, Tensor U_t, Tensor? rec, Tensor? d_out, Tensor? drop, "
        "Tensor? steps, Tensor? keep_c, Tensor? keep_h, float rate_c, float rate_h, "
        "Tensor? peephole, Tensor? Cn, Tensor(e!)? d_bias, Tensor(f!)? d_peephole, "
        "Tensor? projection_t, Tensor(g!)? DHN, int t0, int n) -> ()",
        &backward_steps);
  m.def("forward_steps(Tensor(a!) G, Tensor X, Tensor WU, Tensor? bias, Tensor(b!) Hs, "
        "Tensor(c!) Hg, Tensor(d!) C2, Tensor(e!) S, Tensor? drop, Tensor? steps, "
        "Tensor(f!)? O, Tensor? keep_c, Tensor? keep_h, float rate_c, float rate_h, "
        "Tensor? peephole, Tensor(g!)? Cn, Tensor? projection) -> ()",
        &forward_steps);
}
