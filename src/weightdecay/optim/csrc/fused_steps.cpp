// One pass over memory for the CPU steps torch's fused kernels cannot take (docs/math.md, 'Decay conventions'):
// SGDW with momentum and a decoupled shrink, cautious decay (AdamW and SGDW), and the sum of v̂_t that AdamW's
// `stable` mode needs before its shrink. Plain C++ with no torch headers, so it builds in about a second;
// weightdecay/optim/_kernels.py compiles it once per machine, caches the library and calls it through ctypes.
//
// Every function takes a list of tensors (raw pointers and element counts) and splits them into chunks of CHUNK
// elements, shared among the threads by OpenMP. The arithmetic is the readable single-tensor path's, element by
// element, in the tensor's own precision (float or double), with the scalars rounded to it as torch does.
//
// AMP: each gradient is divided by `grad_scale` (1 without AMP), as torch's fused kernels do; a found_inf step is
// skipped by the Python caller before any kernel runs, so a skipped step changes nothing.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr int64_t CHUNK = 1 << 15;  // the grain of torch's at::parallel_for: big enough to amortize a thread

// Calls body(tensor, begin, end) over every chunk of every tensor; each thread takes a contiguous run of chunks.
template <class Body>
void for_each_chunk(int64_t n_tensors, const int64_t* numel, int n_threads, Body&& body) {
    std::vector<int64_t> first_chunk(n_tensors + 1, 0);  // grows with the tensor count, not the parameters
    for (int64_t i = 0; i < n_tensors; ++i) first_chunk[i + 1] = first_chunk[i] + (numel[i] + CHUNK - 1) / CHUNK;
    const int64_t n_chunks = first_chunk[n_tensors];
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_threads > 1 && n_chunks > 1)
    for (int64_t c = 0; c < n_chunks; ++c) {
        const int64_t i = std::upper_bound(first_chunk.begin(), first_chunk.end(), c) - first_chunk.begin() - 1;
        const int64_t begin = (c - first_chunk[i]) * CHUNK;
        body(i, begin, std::min(begin + CHUNK, numel[i]));
    }
}

// 1[u·p >= 0]: whether the cautious shrink applies to an element (u and p agree in sign, or either is zero).
template <class T>
inline T agrees(T u, T p) {
    return u * p >= 0 ? T(1) : T(0);
}

// g / grad_scale, -g if maximize, + λ·p for l2, with `unscale` = ±1/grad_scale: exactly g / grad_scale for AMP's
// scales, which are powers of two (and 1 without AMP). A select, not a branch: the loop vectorizes.
template <class T>
inline T effective_grad(T g, T p, T unscale, T coupled) {
    g = unscale * g;
    return coupled != 0 ? g + coupled * p : g;
}

// The element loops take every scalar by value: GCC vectorizes a loop whose scalars are locals, not one that reads
// them through a lambda's captures (it cannot prove the stores to p do not change them).
template <class T, bool AMSGRAD, bool CAUTIOUS>
inline void adam_elements(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                          T* __restrict vmax, int64_t begin, int64_t end, T alpha, T bc2_sqrt, T one_minus_b1, T b2,
                          T one_minus_b2, T eps, T shrink, T coupled, T unscale) {
    const T keep = T(1) - shrink;
#pragma omp simd
    for (int64_t j = begin; j < end; ++j) {
        const T param = p[j];
        const T grad = effective_grad(g[j], param, unscale, coupled);
        const T m_j = m[j] + one_minus_b1 * (grad - m[j]);  // lerp(m, g, 1-β1)
        const T v_j = b2 * v[j] + one_minus_b2 * grad * grad;
        m[j] = m_j;
        v[j] = v_j;
        T second = v_j;
        if (AMSGRAD) {
            second = vmax[j] > v_j ? vmax[j] : v_j;
            vmax[j] = second;
        }
        const T u = m_j / (std::sqrt(second) / bc2_sqrt + eps);  // u_t, short of the 1/(1-β1^t) in alpha
        if (CAUTIOUS) {
            p[j] = param - shrink * agrees(u, param) * param - alpha * u;
        } else {
            p[j] = param * keep - alpha * u;
        }
    }
}

template <class T, bool AMSGRAD, bool CAUTIOUS>
void adam_step(int64_t n_tensors, void** params, void** grads, void** exp_avgs, void** exp_avg_sqs,
               void** max_exp_avg_sqs, float** steps, const int64_t* numel, double lr, double beta1, double beta2,
               double eps, double shrink, double coupled, int maximize, int bias_correction, double grad_scale,
               int n_threads) {
    // Per tensor: its step count advances by one and sets the bias corrections (in double, as torch's kernel).
    std::vector<T> step_size(n_tensors), bc2_sqrt(n_tensors);
    for (int64_t i = 0; i < n_tensors; ++i) {
        const double step = ++*steps[i];
        const double bc1 = bias_correction ? 1 - std::pow(beta1, step) : 1.0;
        const double bc2 = bias_correction ? 1 - std::pow(beta2, step) : 1.0;
        step_size[i] = T(lr / bc1);
        bc2_sqrt[i] = T(std::sqrt(bc2));
    }
    for_each_chunk(n_tensors, numel, n_threads, [&](int64_t i, int64_t begin, int64_t end) {
        adam_elements<T, AMSGRAD, CAUTIOUS>(
            static_cast<T*>(params[i]), static_cast<const T*>(grads[i]), static_cast<T*>(exp_avgs[i]),
            static_cast<T*>(exp_avg_sqs[i]), AMSGRAD ? static_cast<T*>(max_exp_avg_sqs[i]) : nullptr, begin, end,
            step_size[i], bc2_sqrt[i], T(1 - beta1), T(beta2), T(1 - beta2), T(eps), T(shrink), T(coupled),
            T((maximize ? -1.0 : 1.0) / grad_scale));
    });
}

template <class T, bool MOMENTUM, bool NESTEROV, bool CAUTIOUS>
inline void sgd_elements(T* __restrict p, const T* __restrict g, T* __restrict b, bool first, int64_t begin,
                         int64_t end, T lr, T mu, T one_minus_dampening, T shrink, T coupled, T unscale) {
    const T keep = T(1) - shrink;
#pragma omp simd
    for (int64_t j = begin; j < end; ++j) {
        const T param = p[j];
        const T grad = effective_grad(g[j], param, unscale, coupled);
        T direction = grad;
        if (MOMENTUM) {
            const T old = b[j];  // read even at the first step (then unused): a select, not a branch
            const T b_j = first ? grad : mu * old + one_minus_dampening * grad;  // b = g at the first step
            b[j] = b_j;
            direction = NESTEROV ? grad + mu * b_j : b_j;
        }
        if (CAUTIOUS) {
            p[j] = param - shrink * agrees(direction, param) * param - lr * direction;
        } else {
            p[j] = param * keep - lr * direction;
        }
    }
}

template <class T, bool MOMENTUM, bool NESTEROV, bool CAUTIOUS>
void sgd_step(int64_t n_tensors, void** params, void** grads, void** buffers, const uint8_t* first_step,
              const int64_t* numel, double lr, double momentum, double dampening, double shrink, double coupled,
              int maximize, double grad_scale, int n_threads) {
    for_each_chunk(n_tensors, numel, n_threads, [&](int64_t i, int64_t begin, int64_t end) {
        sgd_elements<T, MOMENTUM, NESTEROV, CAUTIOUS>(
            static_cast<T*>(params[i]), static_cast<const T*>(grads[i]),
            MOMENTUM ? static_cast<T*>(buffers[i]) : nullptr, MOMENTUM && first_step[i], begin, end, T(lr),
            T(momentum), T(1 - dampening), T(shrink), T(coupled), T((maximize ? -1.0 : 1.0) / grad_scale));
    });
}

// Σ_j of β2·v_j + (1-β2)·g_j² over [begin, end): sixteen lanes of T over blocks of 512, each block added in double.
template <class T>
inline double v_sum_elements(const T* __restrict g, const T* __restrict v, const T* __restrict p, int64_t begin,
                             int64_t end, T b2, T one_minus_b2, T coupled, T unscale) {
    double sum = 0;
    for (int64_t block = begin; block < end; block += 512) {
        const int64_t block_end = std::min(block + 512, end);
        T lanes[16] = {};
        int64_t j = block;
        for (; j + 16 <= block_end; j += 16) {
            for (int l = 0; l < 16; ++l) {
                const T grad = effective_grad(g[j + l], p ? p[j + l] : T(0), unscale, coupled);
                lanes[l] += b2 * v[j + l] + one_minus_b2 * grad * grad;
            }
        }
        for (; j < block_end; ++j) {
            const T grad = effective_grad(g[j], p ? p[j] : T(0), unscale, coupled);
            lanes[0] += b2 * v[j] + one_minus_b2 * grad * grad;
        }
        double block_sum = 0;
        for (int l = 0; l < 16; ++l) block_sum += double(lanes[l]);
        sum += block_sum;
    }
    return sum;
}

// Σ over every element of v̂_t = (β2·v + (1-β2)·g²) / (1-β2^(step+1)): what the step will make of v, before it.
template <class T>
double v_hat_sum(int64_t n_tensors, void** grads, void** exp_avg_sqs, void** params, float** steps,
                 const int64_t* numel, double beta2, double coupled, int maximize, int bias_correction,
                 double grad_scale, int n_threads) {
    std::vector<double> inv_bc2(n_tensors);
    for (int64_t i = 0; i < n_tensors; ++i)
        inv_bc2[i] = bias_correction ? 1 / (1 - std::pow(beta2, double(*steps[i]) + 1)) : 1.0;
    std::vector<int64_t> first_chunk(n_tensors + 1, 0);
    for (int64_t i = 0; i < n_tensors; ++i) first_chunk[i + 1] = first_chunk[i] + (numel[i] + CHUNK - 1) / CHUNK;
    const int64_t n_chunks = first_chunk[n_tensors];
    // One partial sum per thread over a fixed run of chunks, added in thread order: the same thread count gives
    // the same sum, run after run.
    const int slots = std::max(n_threads, 1);
    std::vector<double> partial(static_cast<size_t>(slots) * 8, 0.0);  // 8 doubles apart: no false sharing
#pragma omp parallel num_threads(slots) if (slots > 1 && n_chunks > 1)
    {
        int thread = 0, team = 1;
#ifdef _OPENMP
        thread = omp_get_thread_num();
        team = omp_get_num_threads();
#endif
        double total = 0;
        for (int64_t ch = n_chunks * thread / team; ch < n_chunks * (thread + 1) / team; ++ch) {
            const int64_t i = std::upper_bound(first_chunk.begin(), first_chunk.end(), ch) - first_chunk.begin() - 1;
            const int64_t begin = (ch - first_chunk[i]) * CHUNK;
            total += inv_bc2[i] * v_sum_elements(
                static_cast<const T*>(grads[i]), static_cast<const T*>(exp_avg_sqs[i]),
                coupled != 0 ? static_cast<const T*>(params[i]) : nullptr, begin, std::min(begin + CHUNK, numel[i]),
                T(beta2), T(1 - beta2), T(coupled), T((maximize ? -1.0 : 1.0) / grad_scale));
        }
        partial[static_cast<size_t>(thread) * 8] = total;
    }
    double total = 0;
    for (int t = 0; t < slots; ++t) total += partial[static_cast<size_t>(t) * 8];
    return total;
}

}  // namespace

// The C entry points: one per dtype, choosing the loop's compile-time variant from the flags.
template <class T>
void adam_entry(int64_t n, void** p, void** g, void** m, void** v, void** vmax, float** steps, const int64_t* numel,
                double lr, double beta1, double beta2, double eps, double shrink, double coupled, int amsgrad,
                int maximize, int bias_correction, double grad_scale, int cautious, int threads) {
    auto step = amsgrad ? (cautious ? adam_step<T, true, true> : adam_step<T, true, false>)
                        : (cautious ? adam_step<T, false, true> : adam_step<T, false, false>);
    step(n, p, g, m, v, vmax, steps, numel, lr, beta1, beta2, eps, shrink, coupled, maximize, bias_correction,
         grad_scale, threads);
}

template <class T>
void sgd_entry(int64_t n, void** p, void** g, void** b, const uint8_t* first, const int64_t* numel, double lr,
               double momentum, double dampening, int nesterov, double shrink, double coupled, int maximize,
               double grad_scale, int cautious, int threads) {
    auto step = momentum == 0 ? (cautious ? sgd_step<T, false, false, true> : sgd_step<T, false, false, false>)
                : nesterov    ? (cautious ? sgd_step<T, true, true, true> : sgd_step<T, true, true, false>)
                              : (cautious ? sgd_step<T, true, false, true> : sgd_step<T, true, false, false>);
    step(n, p, g, b, first, numel, lr, momentum, dampening, shrink, coupled, maximize, grad_scale, threads);
}

extern "C" {
void wd_adam_step_f32(int64_t n, void** p, void** g, void** m, void** v, void** vmax, float** steps,
                      const int64_t* numel, double lr, double beta1, double beta2, double eps, double shrink,
                      double coupled, int amsgrad, int maximize, int bias_correction, double grad_scale, int cautious,
                      int threads) {
    adam_entry<float>(n, p, g, m, v, vmax, steps, numel, lr, beta1, beta2, eps, shrink, coupled, amsgrad, maximize,
                      bias_correction, grad_scale, cautious, threads);
}
void wd_adam_step_f64(int64_t n, void** p, void** g, void** m, void** v, void** vmax, float** steps,
                      const int64_t* numel, double lr, double beta1, double beta2, double eps, double shrink,
                      double coupled, int amsgrad, int maximize, int bias_correction, double grad_scale, int cautious,
                      int threads) {
    adam_entry<double>(n, p, g, m, v, vmax, steps, numel, lr, beta1, beta2, eps, shrink, coupled, amsgrad, maximize,
                       bias_correction, grad_scale, cautious, threads);
}
void wd_sgd_step_f32(int64_t n, void** p, void** g, void** b, const uint8_t* first, const int64_t* numel, double lr,
                     double momentum, double dampening, int nesterov, double shrink, double coupled, int maximize,
                     double grad_scale, int cautious, int threads) {
    sgd_entry<float>(n, p, g, b, first, numel, lr, momentum, dampening, nesterov, shrink, coupled, maximize,
                     grad_scale, cautious, threads);
}
void wd_sgd_step_f64(int64_t n, void** p, void** g, void** b, const uint8_t* first, const int64_t* numel, double lr,
                     double momentum, double dampening, int nesterov, double shrink, double coupled, int maximize,
                     double grad_scale, int cautious, int threads) {
    sgd_entry<double>(n, p, g, b, first, numel, lr, momentum, dampening, nesterov, shrink, coupled, maximize,
                      grad_scale, cautious, threads);
}
double wd_v_hat_sum_f32(int64_t n, void** g, void** v, void** p, float** steps, const int64_t* numel, double beta2,
                        double coupled, int maximize, int bias_correction, double grad_scale, int threads) {
    return v_hat_sum<float>(n, g, v, p, steps, numel, beta2, coupled, maximize, bias_correction, grad_scale, threads);
}
double wd_v_hat_sum_f64(int64_t n, void** g, void** v, void** p, float** steps, const int64_t* numel, double beta2,
                        double coupled, int maximize, int bias_correction, double grad_scale, int threads) {
    return v_hat_sum<double>(n, g, v, p, steps, numel, beta2, coupled, maximize, bias_correction, grad_scale,
                             threads);
}
}
