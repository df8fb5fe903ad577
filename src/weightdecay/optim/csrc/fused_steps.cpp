// One pass over memory for the CPU steps torch's fused kernels cannot take (docs/math.md, 'Decay conventions'):
// SGDW with momentum and a decoupled shrink, cautious decay (AdamW and SGDW), and AdamW's `stable` mode, whose
// shrink needs the sum of this step's v̂_t before it. Plain C++ with no torch headers, so it builds in about a
// second; weightdecay/optim/_kernels.py compiles it once per machine, caches the library and calls it through ctypes.
//
// Every function takes a list of tensors (raw pointers and element counts) and splits them into chunks of CHUNK
// elements, shared among the threads by OpenMP in one parallel region for the whole list (torch's fused CPU
// kernels open one per tensor). The arithmetic is the readable single-tensor path's, element by element, in the
// tensor's own precision (float or double), with the scalars rounded to it as torch does.
//
// `stable` reads g twice, not g and v: the Adam step also returns Σ_j v_j of each tensor as it writes v, so the
// next step's Σv_{t+1} = β2·Σv_t + (1-β2)·Σg² needs only g (the caller keeps the sums and says which are stale).
//
// AMP: each gradient is divided by `grad_scale` (1 without AMP), as torch's fused kernels do; a found_inf step is
// skipped by the Python caller before any kernel runs, so a skipped step changes nothing.
//
// bfloat16 and float16 weights (the `_kept_` entry points): every tensor is read in its format, the arithmetic is
// float32's, and the step's full change Δ (the decay's share included) is written back compensated, with a buffer
// c in the weight's format: y = Δ + c, p_new = round(p + y), c ← (p + y) - p_new (docs/math.md, "Low precision").

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr int64_t CHUNK = 1 << 15;  // the grain of torch's at::parallel_for: big enough to amortize a thread
constexpr int64_t BLOCK = 512;      // sums are taken in T over blocks this long, then added in double

// first[i]: the index of tensor i's first chunk; first[n_tensors]: the chunk count. Grows with the tensor count.
std::vector<int64_t> chunk_starts(int64_t n_tensors, const int64_t* numel) {
    std::vector<int64_t> first(n_tensors + 1, 0);
    for (int64_t i = 0; i < n_tensors; ++i) first[i + 1] = first[i] + (numel[i] + CHUNK - 1) / CHUNK;
    return first;
}

int64_t tensor_of(const std::vector<int64_t>& first, int64_t chunk) {
    return std::upper_bound(first.begin(), first.end(), chunk) - first.begin() - 1;
}

// Calls body(tensor, begin, end) over every chunk of every tensor; each thread takes a contiguous run of chunks.
template <class Body>
void for_each_chunk(int64_t n_tensors, const int64_t* numel, int n_threads, Body&& body) {
    const std::vector<int64_t> first = chunk_starts(n_tensors, numel);
    const int64_t n_chunks = first[n_tensors];
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_threads > 1 && n_chunks > 1)
    for (int64_t c = 0; c < n_chunks; ++c) {
        const int64_t i = tensor_of(first, c);
        const int64_t begin = (c - first[i]) * CHUNK;
        body(i, begin, std::min(begin + CHUNK, numel[i]));
    }
}

// As for_each_chunk, with body returning a double: sums[i] becomes the total over tensor i's chunks. Each thread
// adds its contiguous run of chunks in order; a tensor that straddles two runs gets its pieces in thread order.
// The same thread count thus gives the same sums, run after run.
template <class Body>
void sum_each_tensor(int64_t n_tensors, const int64_t* numel, int n_threads, double* sums, Body&& body) {
    const std::vector<int64_t> first = chunk_starts(n_tensors, numel);
    const int64_t n_chunks = first[n_tensors];
    std::fill(sums, sums + n_tensors, 0.0);
    const int slots = std::max(n_threads, 1);
    // Per thread, its pieces of the tensors at the two ends of its run, which a neighbouring run may share.
    std::vector<int64_t> edge_tensor(2 * slots, -1);
    std::vector<double> edge_sum(2 * slots, 0.0);
#pragma omp parallel num_threads(slots) if (slots > 1 && n_chunks > 1)
    {
        int thread = 0, team = 1;
#ifdef _OPENMP
        thread = omp_get_thread_num();
        team = omp_get_num_threads();
#endif
        const int64_t lo = n_chunks * thread / team, hi = n_chunks * (thread + 1) / team;
        int64_t i = -1;
        double run = 0;
        auto flush = [&](int end_of_run) {
            if (i < 0) return;
            if (first[i] < lo || first[i + 1] > hi) {  // shared: only the first or the last tensor of a run
                edge_tensor[2 * thread + end_of_run] = i;
                edge_sum[2 * thread + end_of_run] = run;
            } else {
                sums[i] = run;
            }
        };
        for (int64_t c = lo; c < hi; ++c) {
            const int64_t t = tensor_of(first, c);
            if (t != i) {
                flush(0);
                i = t;
                run = 0;
            }
            const int64_t begin = (c - first[i]) * CHUNK;
            run += body(i, begin, std::min(begin + CHUNK, numel[i]));
        }
        flush(1);
    }
    for (int k = 0; k < 2 * slots; ++k)
        if (edge_tensor[k] >= 0) sums[edge_tensor[k]] += edge_sum[k];
}

// Σ_j term(j) over [begin, end) in T, kept in LANES partial sums: without -ffast-math GCC vectorizes no reduction
// (nor an `omp simd reduction` here), but it does vectorize independent lanes, each added in the order written.
template <class T, class Term>
inline T lane_sum(int64_t begin, int64_t end, Term&& term) {
    constexpr int LANES = 16;
    T lanes[LANES] = {};
    int64_t j = begin;
    for (; j + LANES <= end; j += LANES)
        for (int l = 0; l < LANES; ++l) lanes[l] += term(j + l);
    for (; j < end; ++j) lanes[0] += term(j);
    T total = 0;
    for (int l = 0; l < LANES; ++l) total += lanes[l];
    return total;
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
               int n_threads, double* v_sums, double* v_sum_steps) {
    // Per tensor: its step count advances by one and sets the bias corrections (in double, as torch's kernel).
    std::vector<T> step_size(n_tensors), bc2_sqrt(n_tensors);
    for (int64_t i = 0; i < n_tensors; ++i) {
        const double step = ++*steps[i];
        const double bc1 = bias_correction ? 1 - std::pow(beta1, step) : 1.0;
        const double bc2 = bias_correction ? 1 - std::pow(beta2, step) : 1.0;
        step_size[i] = T(lr / bc1);
        bc2_sqrt[i] = T(std::sqrt(bc2));
    }
    const T one_minus_b1 = T(1 - beta1), b2 = T(beta2), one_minus_b2 = T(1 - beta2), eps_ = T(eps),
            shrink_ = T(shrink), coupled_ = T(coupled), unscale = T((maximize ? -1.0 : 1.0) / grad_scale);
    auto chunk = [&](int64_t i, int64_t begin, int64_t end) {
        T* p = static_cast<T*>(params[i]);
        const T* g = static_cast<const T*>(grads[i]);
        T *m = static_cast<T*>(exp_avgs[i]), *v = static_cast<T*>(exp_avg_sqs[i]);
        T* vmax = AMSGRAD ? static_cast<T*>(max_exp_avg_sqs[i]) : nullptr;
        double v_sum = 0;
        for (int64_t block = begin; block < end; block += BLOCK) {
            const int64_t block_end = std::min(block + BLOCK, end);
            adam_elements<T, AMSGRAD, CAUTIOUS>(p, g, m, v, vmax, block, block_end, step_size[i], bc2_sqrt[i],
                                                one_minus_b1, b2, one_minus_b2, eps_, shrink_, coupled_, unscale);
            if (v_sums != nullptr)  // the block of v just written, read back from the L1 cache
                v_sum += double(lane_sum<T>(block, block_end, [v](int64_t j) { return v[j]; }));
        }
        return v_sum;
    };
    if (v_sums != nullptr) {
        sum_each_tensor(n_tensors, numel, n_threads, v_sums, chunk);
        for (int64_t i = 0; i < n_tensors; ++i) v_sum_steps[i] = *steps[i];  // the step these sums are of
    } else {
        for_each_chunk(n_tensors, numel, n_threads, chunk);
    }
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

// β2·Σ_j v_j + (1-β2)·Σ_j g_j² over [begin, end), g as the step will see it; without READ_V only the g² term
// (the caller has Σv already). Each BLOCK is summed in T, the blocks in double.
template <class T, bool READ_V, bool COUPLED>
inline double v_sum_elements(const T* __restrict g, const T* __restrict v, const T* __restrict p, int64_t begin,
                             int64_t end, double beta2, T coupled, T unscale) {
    double v_sum = 0, g_sq_sum = 0;
    for (int64_t block = begin; block < end; block += BLOCK) {
        const int64_t block_end = std::min(block + BLOCK, end);
        g_sq_sum += double(lane_sum<T>(block, block_end, [=](int64_t j) {
            const T grad = COUPLED ? unscale * g[j] + coupled * p[j] : unscale * g[j];  // effective_grad's
            return grad * grad;
        }));
        if (READ_V) v_sum += double(lane_sum<T>(block, block_end, [v](int64_t j) { return v[j]; }));
    }
    return beta2 * v_sum + (1 - beta2) * g_sq_sum;
}

// Σ over every element of v̂_t = (β2·v + (1-β2)·g²) / (1-β2^(step+1)): what the step will make of v, before it.
// v_sums[i] (both arrays may be null) is Σv of tensor i as the Adam step of step count v_sum_steps[i] left it, or
// NaN where the caller knows it stale; where either says so, or the tensor's count has moved on since (another
// path took a step), v is read.
template <class T>
double v_hat_sum(int64_t n_tensors, void** grads, void** exp_avg_sqs, void** params, float** steps,
                 const int64_t* numel, const double* v_sums, const double* v_sum_steps, double beta2, double coupled,
                 int maximize, int bias_correction, double grad_scale, int n_threads) {
    std::vector<double> tensor_sums(n_tensors);  // grows with the tensor count, not the parameters
    const T coupled_ = T(coupled), unscale = T((maximize ? -1.0 : 1.0) / grad_scale);
    auto known = [&](int64_t i) {
        return v_sums != nullptr && !std::isnan(v_sums[i]) && v_sum_steps[i] == double(*steps[i]);
    };
    sum_each_tensor(n_tensors, numel, n_threads, tensor_sums.data(), [&](int64_t i, int64_t begin, int64_t end) {
        const T* g = static_cast<const T*>(grads[i]);
        const T* v = static_cast<const T*>(exp_avg_sqs[i]);
        const T* p = static_cast<const T*>(params[i]);
        const bool read_v = !known(i);
        if (coupled != 0) {
            return read_v ? v_sum_elements<T, true, true>(g, v, p, begin, end, beta2, coupled_, unscale)
                          : v_sum_elements<T, false, true>(g, v, p, begin, end, beta2, coupled_, unscale);
        }
        return read_v ? v_sum_elements<T, true, false>(g, v, p, begin, end, beta2, coupled_, unscale)
                      : v_sum_elements<T, false, false>(g, v, p, begin, end, beta2, coupled_, unscale);
    });
    double total = 0;
    for (int64_t i = 0; i < n_tensors; ++i) {
        const double inv_bc2 = bias_correction ? 1 / (1 - std::pow(beta2, double(*steps[i]) + 1)) : 1.0;
        total += inv_bc2 * (tensor_sums[i] + (known(i) ? beta2 * v_sums[i] : 0.0));
    }
    return total;
}

// --- bfloat16 and float16 storage, float32 arithmetic -----------------------------------------------------------

// bfloat16 is held as its bits (a plain uint16_t, which GCC vectorizes loads and stores of; a struct it does
// not); float16 as the compiler's _Float16.
using bf16 = uint16_t;

inline float widen(bf16 x) {
    const uint32_t u = uint32_t(x) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline float widen(_Float16 x) { return float(x); }

template <class S>
inline S narrow(float f);

// Round to nearest even, as torch's float → bfloat16 conversion (NaN kept quiet).
template <>
inline bf16 narrow<bf16>(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet = (u >> 16) | 0x40u;
    return bf16((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

template <>
inline _Float16 narrow<_Float16>(float f) {
    return _Float16(f);
}

// p ← round(p + y), c ← (p + y) - p_new with y = Δ + c: the compensated write-back of one element.
template <class S>
inline void write_kept(S* __restrict p, S* __restrict c, int64_t j, float param, float change) {
    const float exact = param + (change + widen(c[j]));
    const S rounded = narrow<S>(exact);
    p[j] = rounded;
    c[j] = narrow<S>(exact - widen(rounded));
}

template <class S, bool AMSGRAD, bool CAUTIOUS>
void adam_elements_kept(S* __restrict p, const S* __restrict g, S* __restrict m, S* __restrict v, S* __restrict vmax,
                        S* __restrict c, int64_t begin, int64_t end, float alpha, float bc2_sqrt, float one_minus_b1,
                        float b2, float one_minus_b2, float eps, float shrink, float coupled, float unscale) {
#pragma omp simd
    for (int64_t j = begin; j < end; ++j) {
        const float param = widen(p[j]);
        const float grad = effective_grad(widen(g[j]), param, unscale, coupled);
        const float m_old = widen(m[j]);
        const float m_j = m_old + one_minus_b1 * (grad - m_old);
        const float v_j = b2 * widen(v[j]) + one_minus_b2 * grad * grad;
        m[j] = narrow<S>(m_j);
        v[j] = narrow<S>(v_j);
        float second = v_j;
        if (AMSGRAD) {
            const float kept_max = widen(vmax[j]);
            second = kept_max > v_j ? kept_max : v_j;
            vmax[j] = narrow<S>(second);
        }
        const float u = m_j / (std::sqrt(second) / bc2_sqrt + eps);
        const float decay = CAUTIOUS ? shrink * agrees(u, param) * param : shrink * param;
        write_kept(p, c, j, param, -decay - alpha * u);
    }
}

template <class S, bool AMSGRAD, bool CAUTIOUS>
void adam_step_kept(int64_t n_tensors, void** params, void** grads, void** exp_avgs, void** exp_avg_sqs,
                    void** max_exp_avg_sqs, void** compensations, float** steps, const int64_t* numel, double lr,
                    double beta1, double beta2, double eps, double shrink, double coupled, int maximize,
                    int bias_correction, double grad_scale, int n_threads) {
    std::vector<float> step_size(n_tensors), bc2_sqrt(n_tensors);
    for (int64_t i = 0; i < n_tensors; ++i) {
        const double step = ++*steps[i];
        const double bc1 = bias_correction ? 1 - std::pow(beta1, step) : 1.0;
        const double bc2 = bias_correction ? 1 - std::pow(beta2, step) : 1.0;
        step_size[i] = float(lr / bc1);
        bc2_sqrt[i] = float(std::sqrt(bc2));
    }
    const float one_minus_b1 = float(1 - beta1), b2 = float(beta2), one_minus_b2 = float(1 - beta2),
                eps_ = float(eps), shrink_ = float(shrink), coupled_ = float(coupled),
                unscale = float((maximize ? -1.0 : 1.0) / grad_scale);
    for_each_chunk(n_tensors, numel, n_threads, [&](int64_t i, int64_t begin, int64_t end) {
        adam_elements_kept<S, AMSGRAD, CAUTIOUS>(
            static_cast<S*>(params[i]), static_cast<const S*>(grads[i]), static_cast<S*>(exp_avgs[i]),
            static_cast<S*>(exp_avg_sqs[i]), AMSGRAD ? static_cast<S*>(max_exp_avg_sqs[i]) : nullptr,
            static_cast<S*>(compensations[i]), begin, end, step_size[i], bc2_sqrt[i], one_minus_b1, b2,
            one_minus_b2, eps_, shrink_, coupled_, unscale);
    });
}

template <class S, bool MOMENTUM, bool NESTEROV, bool CAUTIOUS>
void sgd_elements_kept(S* __restrict p, const S* __restrict g, S* __restrict b, S* __restrict c, bool first,
                       int64_t begin, int64_t end, float lr, float mu, float one_minus_dampening, float shrink,
                       float coupled, float unscale) {
#pragma omp simd
    for (int64_t j = begin; j < end; ++j) {
        const float param = widen(p[j]);
        const float grad = effective_grad(widen(g[j]), param, unscale, coupled);
        float direction = grad;
        if (MOMENTUM) {
            const float old = first ? 0.0f : widen(b[j]);
            const float b_j = first ? grad : mu * old + one_minus_dampening * grad;
            b[j] = narrow<S>(b_j);
            direction = NESTEROV ? grad + mu * b_j : b_j;
        }
        const float decay = CAUTIOUS ? shrink * agrees(direction, param) * param : shrink * param;
        write_kept(p, c, j, param, -decay - lr * direction);
    }
}

template <class S, bool MOMENTUM, bool NESTEROV, bool CAUTIOUS>
void sgd_step_kept(int64_t n_tensors, void** params, void** grads, void** buffers, void** compensations,
                   const uint8_t* first_step, const int64_t* numel, double lr, double momentum, double dampening,
                   double shrink, double coupled, int maximize, double grad_scale, int n_threads) {
    for_each_chunk(n_tensors, numel, n_threads, [&](int64_t i, int64_t begin, int64_t end) {
        sgd_elements_kept<S, MOMENTUM, NESTEROV, CAUTIOUS>(
            static_cast<S*>(params[i]), static_cast<const S*>(grads[i]),
            MOMENTUM ? static_cast<S*>(buffers[i]) : nullptr, static_cast<S*>(compensations[i]),
            MOMENTUM && first_step[i], begin, end, float(lr), float(momentum), float(1 - dampening), float(shrink),
            float(coupled), float((maximize ? -1.0 : 1.0) / grad_scale));
    });
}

}  // namespace

// The C entry points, one set per dtype (wd_adam_step_f32, ..._f64, ...), each choosing the loop's compile-time
// variant from the flags. v_sums, v_sum_steps: null, or where the Adam step writes each tensor's Σv_t and its step
// count, which v_hat_sum reads back. Signatures: weightdecay/optim/_kernels.py, _SIGNATURES.
template <class T>
void adam_entry(int64_t n, void** p, void** g, void** m, void** v, void** vmax, float** steps, const int64_t* numel,
                double lr, double beta1, double beta2, double eps, double shrink, double coupled, int amsgrad,
                int maximize, int bias_correction, double grad_scale, int cautious, int threads, double* v_sums,
                double* v_sum_steps) {
    auto step = amsgrad ? (cautious ? adam_step<T, true, true> : adam_step<T, true, false>)
                        : (cautious ? adam_step<T, false, true> : adam_step<T, false, false>);
    step(n, p, g, m, v, vmax, steps, numel, lr, beta1, beta2, eps, shrink, coupled, maximize, bias_correction,
         grad_scale, threads, v_sums, v_sum_steps);
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

#define WD_ENTRY_POINTS(T, SUFFIX)                                                                                   \
    void wd_adam_step_##SUFFIX(int64_t n, void** p, void** g, void** m, void** v, void** vmax, float** steps,       \
                               const int64_t* numel, double lr, double beta1, double beta2, double eps,             \
                               double shrink, double coupled, int amsgrad, int maximize, int bias_correction,       \
                               double grad_scale, int cautious, int threads, double* v_sums,                        \
                               double* v_sum_steps) {                                                               \
        adam_entry<T>(n, p, g, m, v, vmax, steps, numel, lr, beta1, beta2, eps, shrink, coupled, amsgrad, maximize, \
                      bias_correction, grad_scale, cautious, threads, v_sums, v_sum_steps);                         \
    }                                                                                                                \
    void wd_sgd_step_##SUFFIX(int64_t n, void** p, void** g, void** b, const uint8_t* first, const int64_t* numel,  \
                              double lr, double momentum, double dampening, int nesterov, double shrink,            \
                              double coupled, int maximize, double grad_scale, int cautious, int threads) {         \
        sgd_entry<T>(n, p, g, b, first, numel, lr, momentum, dampening, nesterov, shrink, coupled, maximize,        \
                     grad_scale, cautious, threads);                                                                \
    }                                                                                                                \
    double wd_v_hat_sum_##SUFFIX(int64_t n, void** g, void** v, void** p, float** steps, const int64_t* numel,      \
                                 const double* v_sums, const double* v_sum_steps, double beta2, double coupled,     \
                                 int maximize, int bias_correction, double grad_scale, int threads) {               \
        return v_hat_sum<T>(n, g, v, p, steps, numel, v_sums, v_sum_steps, beta2, coupled, maximize, bias_correction,\
                            grad_scale, threads);                                                                   \
    }

template <class S>
void adam_kept_entry(int64_t n, void** p, void** g, void** m, void** v, void** vmax, void** c, float** steps,
                     const int64_t* numel, double lr, double beta1, double beta2, double eps, double shrink,
                     double coupled, int amsgrad, int maximize, int bias_correction, double grad_scale, int cautious,
                     int threads) {
    auto step = amsgrad ? (cautious ? adam_step_kept<S, true, true> : adam_step_kept<S, true, false>)
                        : (cautious ? adam_step_kept<S, false, true> : adam_step_kept<S, false, false>);
    step(n, p, g, m, v, vmax, c, steps, numel, lr, beta1, beta2, eps, shrink, coupled, maximize, bias_correction,
         grad_scale, threads);
}

template <class S>
void sgd_kept_entry(int64_t n, void** p, void** g, void** b, void** c, const uint8_t* first, const int64_t* numel,
                    double lr, double momentum, double dampening, int nesterov, double shrink, double coupled,
                    int maximize, double grad_scale, int cautious, int threads) {
    auto step = momentum == 0 ? (cautious ? sgd_step_kept<S, false, false, true> : sgd_step_kept<S, false, false, false>)
                : nesterov    ? (cautious ? sgd_step_kept<S, true, true, true> : sgd_step_kept<S, true, true, false>)
                              : (cautious ? sgd_step_kept<S, true, false, true> : sgd_step_kept<S, true, false, false>);
    step(n, p, g, b, c, first, numel, lr, momentum, dampening, shrink, coupled, maximize, grad_scale, threads);
}

#define WD_KEPT_ENTRY_POINTS(S, SUFFIX)                                                                              \
    void wd_adam_step_kept_##SUFFIX(int64_t n, void** p, void** g, void** m, void** v, void** vmax, void** c,        \
                                    float** steps, const int64_t* numel, double lr, double beta1, double beta2,    \
                                    double eps, double shrink, double coupled, int amsgrad, int maximize,          \
                                    int bias_correction, double grad_scale, int cautious, int threads) {           \
        adam_kept_entry<S>(n, p, g, m, v, vmax, c, steps, numel, lr, beta1, beta2, eps, shrink, coupled, amsgrad,  \
                           maximize, bias_correction, grad_scale, cautious, threads);                              \
    }                                                                                                                \
    void wd_sgd_step_kept_##SUFFIX(int64_t n, void** p, void** g, void** b, void** c, const uint8_t* first,         \
                                   const int64_t* numel, double lr, double momentum, double dampening,            \
                                   int nesterov, double shrink, double coupled, int maximize, double grad_scale,  \
                                   int cautious, int threads) {                                                    \
        sgd_kept_entry<S>(n, p, g, b, c, first, numel, lr, momentum, dampening, nesterov, shrink, coupled,         \
                          maximize, grad_scale, cautious, threads);                                                \
    }

extern "C" {
WD_ENTRY_POINTS(float, f32)
WD_ENTRY_POINTS(double, f64)
WD_KEPT_ENTRY_POINTS(bf16, bf16)
WD_KEPT_ENTRY_POINTS(_Float16, f16)
}
