// swinfpga HLS templates: shared helpers (integer codes <-> ap_fixed, lookup tables, Linear).
//
// Conventions (all layers):
//  * A value of type ap_[u]fixed<W,I> is handled through its integer *code* c = value * 2^(W-I).
//  * Weights, biases and tables arrive as plain C integer arrays of codes (generated headers written
//    by swinfpga in Python); from_code<T>() turns a code into a value of T without any rounding.
//  * Every requantization is a conversion into a type whose rounding/overflow modes come from the
//    IR (AP_RND = floor(x + 1/2), AP_TRN = floor; AP_SAT / AP_SAT_SYM / AP_WRAP), applied to an
//    exact accumulator: this reproduces swinfpga.golden bit for bit.  Where the IR's format differs
//    per channel (ChanFmt), requant() rounds and saturates each channel at its own format (below).
//  * Loops are plain C++; HLS pragmas unroll/pipeline them in synthesis only.
#ifndef SWIN_COMMON_H_
#define SWIN_COMMON_H_

#include "ap_fixed.h"
#include "ap_int.h"
#include <stdint.h>

#ifndef SWIN_ROM_T
// ROM entry type: ap_int<W> / ap_uint<W> of the codes' exact width in synthesis; in C simulation the smallest
// C integer holding the same codes (g++ -O3 spends ~90 s per 20k statically initialised ap_int entries).
#ifdef __SYNTHESIS__
#define SWIN_ROM_T(AP, C) AP
#else
#define SWIN_ROM_T(AP, C) C
#endif
#endif

namespace swin {

// ----- codes -------------------------------------------------------------------------------
// Integer code of a fixed-point value, sign- or zero-extended to W+1 bits.
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
inline ap_int<W + 1> code_of(const ap_fixed<W, I, Q, O, N> &x) {
    ap_int<W> c;
    c.range(W - 1, 0) = x.range(W - 1, 0);
    return c;
}

template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
inline ap_int<W + 1> code_of(const ap_ufixed<W, I, Q, O, N> &x) {
    ap_uint<W> c;
    c.range(W - 1, 0) = x.range(W - 1, 0);
    return c;
}

// The value of type T whose code is c (c must fit T; higher bits are dropped = wrap).  Formats are at
// most 62 bits wide (swinfpga.fixed), so the raw bits fit one 64-bit word.
template <class T> inline T from_code(long long c) {
    T x;
    x.setBits((ap_ulong)c);
    return x;
}
template <class T, int W, bool S> inline T from_code(const ap_int_base<W, S> &c) {
    return from_code<T>((long long)c.to_int64());
}

// ----- lookup tables -----------------------------------------------------------------------
// L: struct with out_t, code_t (ROM entry type), size, offset, shift, calc_w (bits for code - offset).
// addr = clip((code - offset) >> shift, 0, size - 1); result = table[addr] (a code of out_t).
template <class L, class C>
inline typename L::out_t lut_lookup(const C &code, const typename L::code_t table[L::size]) {
    ap_int<L::calc_w> a = code;
    a -= (ap_int<L::calc_w>)L::offset;
    a >>= L::shift;
    int addr;
    if (a < 0)
        addr = 0;
    else if (a > L::size - 1)
        addr = L::size - 1;
    else
        addr = a.to_int();
    return from_code<typename L::out_t>(table[addr]);
}

// ----- per-channel requantization (swinfpga.fixed.ChanFmt) --------------------------------------------
// A tensor whose format differs per channel (last axis) is stored in one container type y_T; channel c
// holds the codes of its own format <width(c), frac(c)> (same sign, rounding, overflow as the container),
// stored as container codes: requant(acc, c) = sat_c(round_c(acc at frac(c))) << (Fy - frac(c)), exactly
// ChanFmt.requant_count.  width(c) == 0: the channel is pruned (always 0).
// CH (a config struct, emitted only where the IR's format is a ChanFmt): n, sgn (1 signed), rnd (1 RND,
// 0 TRN), ovf (0 WRAP, 1 SAT, 2 SAT_SYM), min_frac (smallest frac of a live channel), width(c), frac(c)
// (tables of n entries indexed by the channel: constants once the channel loop is unrolled, else a ROM).
struct no_chan {}; // marker: the output format is one format for every channel: a plain ap_fixed cast

template <class T> struct swin_void { typedef void type; };
// S::out_chan where the struct S declares it (a per-channel output), else no_chan
template <class S, class = void> struct out_chan_of { typedef no_chan type; };
template <class S> struct out_chan_of<S, typename swin_void<typename S::out_chan>::type> {
    typedef typename S::out_chan type;
};
// S::hidden_chan (the ReLU MLP's hidden requant) where declared, else no_chan
template <class S, class = void> struct hidden_chan_of { typedef no_chan type; };
template <class S> struct hidden_chan_of<S, typename swin_void<typename S::hidden_chan>::type> {
    typedef typename S::hidden_chan type;
};

template <int A, int B> struct imax { static const int v = A > B ? A : B; };

template <class CH> struct requant_impl {
    template <class y_T, int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
    static y_T run(const ap_fixed_base<W, I, S, Q, O, N> &acc, int c) {
        #pragma HLS INLINE
        const int FA = W - I, FY = y_T::width - y_T::iwidth;
        // working width: the accumulator code (+1 sign, +1 rounding carry), the largest rounding half (bit
        // FA - min_frac - 1) and the container code plus a clamp margin
        const int CW = imax<imax<W, FA - CH::min_frac>::v, y_T::width>::v + 3;
        typedef ap_int<CW> w_t;
        const int wc = CH::width(c);
        if (wc == 0)
            return from_code<y_T>(0LL);
        const int f = CH::frac(c), s = FA - f;
        ap_int_base<W, S> raw;
        raw.range(W - 1, 0) = acc.range(W - 1, 0);
        w_t x = raw;
        if (s > 0) {
            if (CH::rnd)
                x += w_t(1) << (s - 1);
            x >>= s;
        }
        const w_t hi = (w_t(1) << (wc - CH::sgn)) - 1;
        const w_t mn = CH::sgn ? w_t(-(w_t(1) << (wc - 1))) : w_t(0);
        const w_t lo = (CH::sgn && CH::ovf == 2) ? w_t(-hi) : mn;
        if (s < 0) {
            const int u = -s;
            if (CH::ovf != 0) { // clamp first (the shift cannot overflow); still outside the channel's range
                const w_t top = (hi >> u) + 1, bot = -((-lo) >> u) - 1;
                if (x > top)
                    x = top;
                if (x < bot)
                    x = bot;
            }
            x <<= u;
        }
        if (CH::ovf == 0)
            x = ((x - mn) & ((w_t(1) << wc) - 1)) + mn;
        else if (x > hi)
            x = hi;
        else if (x < lo)
            x = lo;
        x <<= FY - f;
        return from_code<y_T>(x);
    }
};
template <> struct requant_impl<no_chan> {
    template <class y_T, class A> static y_T run(const A &acc, int) {
        #pragma HLS INLINE
        return (y_T)acc;
    }
};

// acc (an exact accumulator) in y_T: the ap_fixed cast, or per channel c where CH is a ChanFmt table.
template <class y_T, class CH, class A> inline y_T requant(const A &acc, int c) {
    #pragma HLS INLINE
    return requant_impl<CH>::template run<y_T>(acc, c);
}

// ----- Linear on one token -------------------------------------------------------------------
// L: n_in, n_out, reuse, strategy (0 latency, 1 resource), mult_limit, mults, w_t, b_t, acc_t (exact),
// out_t, wc_t / bc_t (code types of the weight / bias ROMs, exactly as wide as their codes).
// y = requant(x W + b).  Accumulation is exact, so the order of the products never changes a bit.
template <int STRATEGY> struct linear_impl {};

// Latency (hls4ml dense_latency): inlined into the caller's pipeline (II = reuse), every product
// unrolled; the caller's pipeline limits its multipliers with ALLOCATION (CFG::mult_limit, the sum of
// ceil(n_in*n_out/reuse) over the Linear layers it holds).  W: (n_in, n_out) row-major.
template <> struct linear_impl<0> {
    template <class x_T, class y_T, class L>
    static void run(const x_T x[L::n_in], y_T y[L::n_out], const typename L::wc_t w[L::n_in * L::n_out],
                    const typename L::bc_t b[L::n_out]) {
        #pragma HLS INLINE
        typename L::acc_t acc[L::n_out];
        #pragma HLS ARRAY_PARTITION variable=acc complete
    Init:
        for (int o = 0; o < L::n_out; o++) {
            #pragma HLS UNROLL
            acc[o] = from_code<typename L::b_t>(b[o]);
        }
    In:
        for (int i = 0; i < L::n_in; i++) {
            #pragma HLS UNROLL
        Out:
            for (int o = 0; o < L::n_out; o++) {
                #pragma HLS UNROLL
                acc[o] += x[i] * from_code<typename L::w_t>(w[i * L::n_out + o]);
            }
        }
    Result:
        for (int o = 0; o < L::n_out; o++) {
            #pragma HLS UNROLL
            y[o] = requant<y_T, typename out_chan_of<L>::type>(acc[o], o);
        }
    }
};

// Resource (hls4ml dense_resource): one instance (INLINE off) whose reuse loop (II = 1) runs `reuse`
// cycles on `mults` shared multipliers.  W arrives reshaped by swinfpga: multiplier m = lane*n_out + o
// reads w[m*reuse + r] = W[lane*reuse + r][o] in cycle r (0 past n_in), so ARRAY_RESHAPE block puts one
// cycle's `mults` weights in one ROM word.
template <> struct linear_impl<1> {
    template <class x_T, class y_T, class L>
    static void run(const x_T x[L::n_in], y_T y[L::n_out], const typename L::wc_t w[L::mults * L::reuse],
                    const typename L::bc_t b[L::n_out]) {
        #pragma HLS INLINE off
        #pragma HLS ARRAY_RESHAPE variable=w block factor=L::mults
        #pragma HLS BIND_STORAGE variable=w type=rom_1p
        #pragma HLS ARRAY_PARTITION variable=b complete
        typename L::acc_t acc[L::n_out];
        #pragma HLS ARRAY_PARTITION variable=acc complete
    Init:
        for (int o = 0; o < L::n_out; o++) {
            #pragma HLS UNROLL
            acc[o] = from_code<typename L::b_t>(b[o]);
        }
    Reuse:
        for (int r = 0; r < L::reuse; r++) {
            #pragma HLS PIPELINE II=1 rewind
        Mult:
            for (int m = 0; m < L::mults; m++) {
                #pragma HLS UNROLL
                const int lane = m / L::n_out, o = m % L::n_out, i = lane * L::reuse + r;
                if (i < L::n_in)
                    acc[o] += x[i] * from_code<typename L::w_t>(w[m * L::reuse + r]);
            }
        }
    Result:
        for (int o = 0; o < L::n_out; o++) {
            #pragma HLS UNROLL
            y[o] = requant<y_T, typename out_chan_of<L>::type>(acc[o], o);
        }
    }
};

// x / y are copied through local, completely partitioned vectors, so that a shared (non-inlined) instance
// never receives a variable-offset slice of a caller's array (free wires in the latency strategy).
template <class x_T, class y_T, class L>
void linear(const x_T x[L::n_in], y_T y[L::n_out], const typename L::wc_t w[], const typename L::bc_t b[]) {
    #pragma HLS INLINE
    x_T xl[L::n_in];
    y_T yl[L::n_out];
    #pragma HLS ARRAY_PARTITION variable=xl complete
    #pragma HLS ARRAY_PARTITION variable=yl complete
    for (int i = 0; i < L::n_in; i++) {
        #pragma HLS UNROLL
        xl[i] = x[i];
    }
    linear_impl<L::strategy>::template run<x_T, y_T, L>(xl, yl, w, b);
    for (int o = 0; o < L::n_out; o++) {
        #pragma HLS UNROLL
        y[o] = yl[o];
    }
}

} // namespace swin

#endif
