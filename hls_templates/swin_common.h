// swinfpga HLS templates: shared helpers (integer codes <-> ap_fixed, lookup tables, Linear).
//
// Conventions (all layers):
//  * A value of type ap_[u]fixed<W,I> is handled through its integer *code* c = value * 2^(W-I).
//  * Weights, biases and tables arrive as plain C integer arrays of codes (generated headers written
//    by swinfpga in Python); from_code<T>() turns a code into a value of T without any rounding.
//  * Every requantization is a conversion into a type whose rounding/overflow modes come from the
//    IR (AP_RND = floor(x + 1/2), AP_TRN = floor; AP_SAT / AP_SAT_SYM / AP_WRAP), applied to an
//    exact accumulator: this reproduces swinfpga.golden bit for bit.
//  * Loops are plain C++; HLS pragmas unroll/pipeline them in synthesis only.
#ifndef SWIN_COMMON_H_
#define SWIN_COMMON_H_

#include "ap_fixed.h"
#include "ap_int.h"

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
// L: struct with out_t, size, offset, shift, calc_w (bits for code - offset).
// addr = clip((code - offset) >> shift, 0, size - 1); result = table[addr] (a code of out_t).
template <class L, class C, class TC> inline typename L::out_t lut_lookup(const C &code, const TC table[L::size]) {
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

// ----- Linear on one token -------------------------------------------------------------------
// L: n_in, n_out, reuse, w_t, b_t, acc_t (exact), out_t.  y = requant(x W + b) with W (n_in, n_out)
// row-major codes.  reuse > 1 shares n_in*n_out/reuse multipliers over `reuse` pipelined steps.
template <class x_T, class y_T, class L, class WC, class BC>
void linear(const x_T x[L::n_in], y_T y[L::n_out], const WC w[L::n_in * L::n_out], const BC b[L::n_out]) {
    #pragma HLS INLINE
    typename L::acc_t acc[L::n_out];
    #pragma HLS ARRAY_PARTITION variable=acc complete
Init:
    for (int o = 0; o < L::n_out; o++) {
        #pragma HLS UNROLL
        acc[o] = from_code<typename L::b_t>(b[o]);
    }
Reuse:
    for (int r = 0; r < L::reuse; r++) {
        #pragma HLS PIPELINE II=1
    In:
        for (int ii = 0; ii < (L::n_in + L::reuse - 1) / L::reuse; ii++) {  // constant trip count
            const int i = ii * L::reuse + r;
            if (i >= L::n_in)
                continue;
        Out:
            for (int o = 0; o < L::n_out; o++) {
                acc[o] += x[i] * from_code<typename L::w_t>(w[i * L::n_out + o]);
            }
        }
    }
Result:
    for (int o = 0; o < L::n_out; o++) {
        #pragma HLS UNROLL
        y[o] = (y_T)acc[o];
    }
}

} // namespace swin

#endif
