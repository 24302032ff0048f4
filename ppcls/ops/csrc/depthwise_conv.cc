// Fast CPU depthwise 2-D convolution (NCHW, float32, groups == channels, depth multiplier 1, no bias)
// as a Paddle custom operator with forward and backward (grad wrt input and weight).
//
// Layout trick ("flat phase planes"): each zero-padded input plane is split into stride_h x stride_w
// phase planes B[rp][cp][i][j] = xpad[i*sh + rp][j*sw + cp], all with the same row length Wq.
// Every kernel tap (kh, kw) then reads ONE phase plane at a constant flat offset, so with output
// rows laid out at the same row length Wq (columns >= OW are scratch) the three computations are
// contiguous 1-D loops over a whole plane:
//   forward      out[i]  = sum_t w[t] * B_t[o_t + i]                    (taps kernel)
//   weight grad  dw[t]  += sum_i dy[i] * B_t[o_t + i]                   (dot products)
//   input grad   dB_p[m] = sum_{t in phase p} w[t] * dy[m - o_t]        (taps kernel, a gather)
// where dy is zero-padded to row length Wq.  The taps kernel is a template on the tap count
// (1..25: 3x3 and 5x5 with stride 1 and 2 all land on fully unrolled instances that keep the sum
// in a vector register; larger kernels are done in chunks of 25), and the loops are plain
// contiguous float loops that g++ -O3 -march=native vectorises (`omp simd` only waives the
// alias checks).  Planes (batch x channel) are spread over OpenMP threads; the weight gradient
// partial sums of every plane go to their own slot and are reduced over the batch after the parallel
// loop (no atomics on data, bitwise deterministic for any thread count).

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "paddle/extension.h"

namespace {

constexpr int kMaxTaps = 25;

using TapsFn = void (*)(float*, const float* const*, const float*, int64_t);

// out[i] (+)= sum_t w[t] * src[t][i] for i in [0, n); T known at compile time.
template <int T, bool ACC>
void taps_kernel(float* __restrict out, const float* const* __restrict src, const float* __restrict w,
                 int64_t n) {
  const float* s[T];
  float ww[T];
  for (int t = 0; t < T; ++t) {
    s[t] = src[t];
    ww[t] = w[t];
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float acc = ACC ? out[i] : 0.f;
#pragma GCC unroll 32
    for (int t = 0; t < T; ++t) acc += ww[t] * s[t][i];
    out[i] = acc;
  }
}

template <bool ACC, std::size_t... I>
constexpr std::array<TapsFn, sizeof...(I)> taps_table(std::index_sequence<I...>) {
  return {{&taps_kernel<static_cast<int>(I) + 1, ACC>...}};
}

constexpr auto kTapsSet = taps_table<false>(std::make_index_sequence<kMaxTaps>{});
constexpr auto kTapsAdd = taps_table<true>(std::make_index_sequence<kMaxTaps>{});

// out[i] = sum over all `count` taps, in chunks of kMaxTaps.
void taps(float* out, const float* const* src, const float* w, int count, int64_t n) {
  if (count == 0) {
    std::fill(out, out + n, 0.f);
    return;
  }
  bool acc = false;
  while (count > 0) {
    const int c = std::min(count, kMaxTaps);
    (acc ? kTapsAdd : kTapsSet)[c - 1](out, src, w, n);
    src += c;
    w += c;
    count -= c;
    acc = true;
  }
}

// sum_i a[i] * b[i] with 16 independent lanes (vectorises without -ffast-math).
float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float lane[16] = {0.f};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
#pragma omp simd
    for (int l = 0; l < 16; ++l) lane[l] += a[i + l] * b[i + l];
  }
  float s = 0.f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int l = 0; l < 16; ++l) s += lane[l];
  return s;
}

struct Geometry {
  int64_t N, C, H, W, KH, KW, OH, OW;
  int sh, sw, pt, pb, pl, pr, dh, dw;
  int64_t Wq;     // row length of every phase plane and of the flat output / dy buffers
  int64_t PH;     // rows per phase plane
  int64_t P;      // PH * Wq, phase plane size
  int64_t L;      // OH * Wq, flat output length
  int64_t omax;   // largest tap offset
  int64_t Mrows;  // phase-plane rows that hold real input rows (for the input gradient)
  int64_t Mlen;   // Mrows * Wq
  int T;          // KH * KW taps
  std::vector<int> plane;   // tap -> phase plane index
  std::vector<int64_t> off;  // tap -> flat offset inside its phase plane

  Geometry(const std::vector<int64_t>& xs, const std::vector<int64_t>& ws, const std::vector<int>& strides,
           const std::vector<int>& pads, const std::vector<int>& dils) {
    PD_CHECK(xs.size() == 4, "depthwise_conv2d: x must be NCHW");
    PD_CHECK(ws.size() == 4 && ws[1] == 1 && ws[0] == xs[1],
             "depthwise_conv2d: weight must be [C, 1, kh, kw] with C = channels of x");
    PD_CHECK(strides.size() == 2 && pads.size() == 4 && dils.size() == 2,
             "depthwise_conv2d: strides [2], paddings [4] (top, bottom, left, right), dilations [2]");
    N = xs[0];
    C = xs[1];
    H = xs[2];
    W = xs[3];
    KH = ws[2];
    KW = ws[3];
    sh = strides[0];
    sw = strides[1];
    pt = pads[0];
    pb = pads[1];
    pl = pads[2];
    pr = pads[3];
    dh = dils[0];
    dw = dils[1];
    PD_CHECK(sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1 && pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0,
             "depthwise_conv2d: bad stride / padding / dilation");
    const int64_t Hp = H + pt + pb, Wp = W + pl + pr;
    OH = (Hp - (KH - 1) * dh - 1) / sh + 1;
    OW = (Wp - (KW - 1) * dw - 1) / sw + 1;
    PD_CHECK(OH >= 1 && OW >= 1, "depthwise_conv2d: kernel larger than the padded input");
    Wq = (Wp + sw - 1) / sw;
    const int64_t qh = (KH - 1) * dh / sh, qw = (KW - 1) * dw / sw;
    PH = std::max<int64_t>((Hp + sh - 1) / sh, OH + qh + 1);
    P = PH * Wq;
    L = OH * Wq;
    omax = qh * Wq + qw;
    Mrows = (pt + H - 1) / sh + 1;
    Mlen = Mrows * Wq;
    T = static_cast<int>(KH * KW);
    plane.resize(T);
    off.resize(T);
    for (int64_t kh = 0; kh < KH; ++kh) {
      for (int64_t kw = 0; kw < KW; ++kw) {
        const int64_t t = kh * KW + kw;
        plane[t] = static_cast<int>(((kh * dh) % sh) * sw + (kw * dw) % sw);
        off[t] = (kh * dh / sh) * Wq + kw * dw / sw;
      }
    }
  }

  int64_t phases() const { return static_cast<int64_t>(sh) * sw; }

  // Scatter one input plane into the phase planes (borders are zero already and stay zero).
  void fill_phases(float* B, const float* x) const {
    for (int64_t ih = 0; ih < H; ++ih) {
      const int64_t r = ih + pt;
      float* row = B + (r % sh) * sw * P + (r / sh) * Wq;
      const float* src = x + ih * W;
      if (sw == 1) {
        std::memcpy(row + pl, src, sizeof(float) * W);
      } else {
        for (int cp = 0; cp < sw; ++cp) {  // input columns iw = iw0, iw0 + sw, ... land in phase cp
          const int64_t iw0 = ((cp - pl) % sw + sw) % sw;
          float* dst = row + cp * P + (iw0 + pl) / sw;
          for (int64_t iw = iw0, j = 0; iw < W; iw += sw, ++j) dst[j] = src[iw];
        }
      }
    }
  }

  // Gather one input-gradient plane back from the phase planes (stride Mlen between phases).
  void crop_phases(float* dx, const float* dB) const {
    for (int64_t ih = 0; ih < H; ++ih) {
      const int64_t r = ih + pt;
      const float* row = dB + (r % sh) * sw * Mlen + (r / sh) * Wq;
      float* dst = dx + ih * W;
      if (sw == 1) {
        std::memcpy(dst, row + pl, sizeof(float) * W);
      } else {
        for (int cp = 0; cp < sw; ++cp) {
          const int64_t iw0 = ((cp - pl) % sw + sw) % sw;
          const float* from = row + cp * Mlen + (iw0 + pl) / sw;
          for (int64_t iw = iw0, j = 0; iw < W; iw += sw, ++j) dst[iw] = from[j];
        }
      }
    }
  }
};

int thread_count(int requested) { return std::max(1, requested > 0 ? requested : omp_get_max_threads()); }

paddle::Tensor dense(const paddle::Tensor& t) { return t.is_contiguous() ? t : t.contiguous(); }

void check_input(const paddle::Tensor& t, const char* what) {
  PD_CHECK(t.is_cpu(), "depthwise_conv2d: ", what, " must be on the CPU");
  PD_CHECK(t.dtype() == paddle::DataType::FLOAT32, "depthwise_conv2d: ", what, " must be float32");
}

// Runs make_worker() once per thread (thread-local scratch) and feeds the returned callable the plane
// indices [0, planes), claimed in small chunks from a shared counter. Dynamic claiming keeps both cores
// busy when one is shared with another process; only `omp parallel` and omp_get_* are used, which
// every OpenMP runtime (libgomp, Paddle's libiomp5) provides.
template <typename MakeWorker>
void for_each_plane(int64_t planes, int requested_threads, MakeWorker&& make_worker) {
  const int nt = static_cast<int>(std::min<int64_t>(thread_count(requested_threads), planes));
  const int64_t chunk = std::max<int64_t>(1, planes / (8 * static_cast<int64_t>(nt)));
  std::atomic<int64_t> next{0};
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    auto work = make_worker();
    for (int64_t begin; (begin = next.fetch_add(chunk, std::memory_order_relaxed)) < planes;) {
      const int64_t end = std::min(planes, begin + chunk);
      for (int64_t idx = begin; idx < end; ++idx) work(idx);
    }
  }
}

}  // namespace

std::vector<paddle::Tensor> DepthwiseConvForward(const paddle::Tensor& x_in, const paddle::Tensor& w_in,
                                                 const std::vector<int>& strides, const std::vector<int>& paddings,
                                                 const std::vector<int>& dilations, int num_threads) {
  check_input(x_in, "x");
  check_input(w_in, "weight");
  const paddle::Tensor x = dense(x_in), w = dense(w_in);
  const Geometry g(x.shape(), w.shape(), strides, paddings, dilations);
  auto out = paddle::empty({g.N, g.C, g.OH, g.OW}, paddle::DataType::FLOAT32, x.place());
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  float* od = out.data<float>();

  for_each_plane(g.N * g.C, num_threads, [&] {
    // Per-thread scratch: phase planes (zero borders are written once and stay zero), flat output.
    return [&g, xd, wd, od, B = std::vector<float>(g.phases() * g.P, 0.f), ob = std::vector<float>(g.L),
            src = std::vector<const float*>(g.T)](int64_t pc) mutable {
      const int64_t c = pc % g.C;
      g.fill_phases(B.data(), xd + pc * g.H * g.W);
      for (int t = 0; t < g.T; ++t) src[t] = B.data() + g.plane[t] * g.P + g.off[t];
      taps(ob.data(), src.data(), wd + c * g.T, g.T, g.L);
      float* o = od + pc * g.OH * g.OW;
      for (int64_t oh = 0; oh < g.OH; ++oh) std::memcpy(o + oh * g.OW, ob.data() + oh * g.Wq, sizeof(float) * g.OW);
    };
  });
  return {out};
}

std::vector<paddle::Tensor> DepthwiseConvBackward(const paddle::Tensor& x_in, const paddle::Tensor& w_in,
                                                  const paddle::Tensor& dy_in, const std::vector<int>& strides,
                                                  const std::vector<int>& paddings, const std::vector<int>& dilations,
                                                  int num_threads) {
  check_input(x_in, "x");
  check_input(w_in, "weight");
  check_input(dy_in, "output gradient");
  const paddle::Tensor x = dense(x_in), w = dense(w_in), dy = dense(dy_in);
  const Geometry g(x.shape(), w.shape(), strides, paddings, dilations);
  auto dx = paddle::empty(x.shape(), paddle::DataType::FLOAT32, x.place());
  auto dw = paddle::empty(w.shape(), paddle::DataType::FLOAT32, w.place());
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  const float* dyd = dy.data<float>();
  float* dxd = dx.data<float>();
  float* dwd = dw.data<float>();
  const int64_t CT = g.C * g.T;
  // Weight-gradient partial sums: each plane (n, c) writes its own T sums (no two threads share a slot),
  // then they are reduced over the batch in a fixed order, so dw is bitwise reproducible for any thread
  // count and any plane-to-thread assignment.
  std::vector<float> partial(static_cast<size_t>(g.N) * CT);

  // Taps grouped by phase plane, for the input-gradient gather.
  const int64_t nph = g.phases();
  std::vector<int> order(g.T), start(nph + 1, 0);
  for (int t = 0; t < g.T; ++t) ++start[g.plane[t] + 1];
  for (int64_t p = 0; p < nph; ++p) start[p + 1] += start[p];
  {
    std::vector<int> fill(start.begin(), start.end() - 1);
    for (int t = 0; t < g.T; ++t) order[fill[g.plane[t]]++] = t;
  }
  float* partial_d = partial.data();
  const int* order_d = order.data();
  const int* start_d = start.data();

  for_each_plane(g.N * g.C, num_threads, [&] {
    return [&g, xd, wd, dyd, dxd, partial_d, order_d, start_d, nph,
            B = std::vector<float>(nph * g.P, 0.f),
            dyb = std::vector<float>(g.omax + std::max(g.L, g.Mlen), 0.f),  // zero front margin and tail
            dB = std::vector<float>(nph * g.Mlen), src = std::vector<const float*>(g.T),
            wt = std::vector<float>(g.T)](int64_t pc) mutable {
      const int64_t c = pc % g.C;
      float* dy0 = dyb.data() + g.omax;
      g.fill_phases(B.data(), xd + pc * g.H * g.W);
      const float* dyp = dyd + pc * g.OH * g.OW;
      for (int64_t oh = 0; oh < g.OH; ++oh) std::memcpy(dy0 + oh * g.Wq, dyp + oh * g.OW, sizeof(float) * g.OW);
      // weight gradient: one flat dot product per tap
      float* acc = partial_d + pc * g.T;
      for (int t = 0; t < g.T; ++t) acc[t] = dot(dy0, B.data() + g.plane[t] * g.P + g.off[t], g.L);
      // input gradient: per phase plane, gather from the taps that read it
      const float* wc = wd + c * g.T;
      for (int64_t p = 0; p < nph; ++p) {
        const int cnt = start_d[p + 1] - start_d[p];
        for (int k = 0; k < cnt; ++k) {
          const int t = order_d[start_d[p] + k];
          src[k] = dy0 - g.off[t];
          wt[k] = wc[t];
        }
        taps(dB.data() + p * g.Mlen, src.data(), wt.data(), cnt, g.Mlen);
      }
      g.crop_phases(dxd + pc * g.H * g.W, dB.data());
    };
  });
  // dw[c, t] = sum over n of the plane sums, in batch order.
  std::memcpy(dwd, partial_d, sizeof(float) * CT);
  for (int64_t n = 1; n < g.N; ++n) {
    const float* part = partial_d + n * CT;
#pragma omp simd
    for (int64_t i = 0; i < CT; ++i) dwd[i] += part[i];
  }
  return {dx, dw};
}

std::vector<std::vector<int64_t>> DepthwiseConvInferShape(const std::vector<int64_t>& x_shape,
                                                          const std::vector<int64_t>& w_shape,
                                                          const std::vector<int>& strides,
                                                          const std::vector<int>& paddings,
                                                          const std::vector<int>& dilations, int num_threads) {
  const int64_t oh = (x_shape[2] + paddings[0] + paddings[1] - (w_shape[2] - 1) * dilations[0] - 1) / strides[0] + 1;
  const int64_t ow = (x_shape[3] + paddings[2] + paddings[3] - (w_shape[3] - 1) * dilations[1] - 1) / strides[1] + 1;
  return {{x_shape[0], x_shape[1], oh, ow}};
}

std::vector<paddle::DataType> DepthwiseConvInferDtype(const paddle::DataType& x_dtype,
                                                      const paddle::DataType& w_dtype) {
  return {x_dtype};
}

PD_BUILD_OP(ppcls_depthwise_conv2d)
    .Inputs({"X", "W"})
    .Outputs({"Out"})
    .Attrs({"strides: std::vector<int>", "paddings: std::vector<int>", "dilations: std::vector<int>",
            "num_threads: int"})
    .SetKernelFn(PD_KERNEL(DepthwiseConvForward))
    .SetInferShapeFn(PD_INFER_SHAPE(DepthwiseConvInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(DepthwiseConvInferDtype));

PD_BUILD_GRAD_OP(ppcls_depthwise_conv2d)
    .Inputs({"X", "W", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("W")})
    .Attrs({"strides: std::vector<int>", "paddings: std::vector<int>", "dilations: std::vector<int>",
            "num_threads: int"})
    .SetKernelFn(PD_KERNEL(DepthwiseConvBackward));
