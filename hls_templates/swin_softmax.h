// swinfpga HLS templates: integer softmax by exp and reciprocal lookup tables (swinfpga.lut).
//
//   m = max(s[j], valid j); e[j] = valid ? EXP[min(m - s[j], size-1)] : 0      (codes, frac E)
//   S = sum e; k = #{j in 1..max_k : S >= 2^(E+j)}; r = RECIP[((S >> k) - 2^E) >> (E-B)]  (frac R)
//   p[j] = sat(round_half_up(e[j] * r / 2^(E + R + k - P)))                      (prob_t, frac P)
// The tables are generated headers (codes); nothing is computed here at start-up.
#ifndef SWIN_SOFTMAX_H_
#define SWIN_SOFTMAX_H_

#include "swin_common.h"

namespace swin {

// SM: n, score_t, exp_t, prob_t, E (exp frac), R (recip frac), P (prob frac), max_k, sum_w (bits of
// S codes), prob_rnd (1: AP_RND), prob_sat (1: saturate), exp_lut, recip_lut (lookup structs).
// Inlined into the caller's row pipeline: n exp-table reads and one reciprocal read per row (the caller
// partitions the exp table into registers / LUT-ROM so that all n reads happen in one cycle).
template <class SM>
void softmax_row_swinfpga(const typename SM::score_t s[SM::n], const bool valid[SM::n], typename SM::prob_t p[SM::n],
                          const typename SM::exp_lut::code_t exp_table[SM::exp_lut::size],
                          const typename SM::recip_lut::code_t recip_table[SM::recip_lut::size]) {
    #pragma HLS INLINE
    typedef ap_int<SM::score_t::width + 2> sc_t;
    typedef ap_uint<SM::sum_w> sum_t;
    typedef ap_uint<SM::E + SM::R + 3> prod_t;
    sc_t m = 0;
    bool any = false;
Max:
    for (int j = 0; j < SM::n; j++) {
        sc_t c = code_of(s[j]);
        if (valid[j] && (!any || c > m)) {
            m = c;
            any = true;
        }
    }
    ap_uint<SM::E + 1> e[SM::n];
    #pragma HLS ARRAY_PARTITION variable=e complete
    sum_t total = 0;
Exp:
    for (int j = 0; j < SM::n; j++) {
        sc_t d = m - code_of(s[j]);
        typename SM::exp_lut::out_t ev = lut_lookup<typename SM::exp_lut>(d, exp_table);
        e[j] = valid[j] ? ap_uint<SM::E + 1>(code_of(ev)) : ap_uint<SM::E + 1>(0);
        total += e[j];
    }
    int k = 0;
Norm:
    for (int j = 1; j <= SM::max_k; j++) {
        if (total >= (sum_t(1) << (SM::E + j)))
            k++;
    }
    sum_t sn = total >> k;
    ap_uint<SM::R + 1> r = code_of(lut_lookup<typename SM::recip_lut>(sn, recip_table));
    const int sh = SM::E + SM::R + k - SM::P;
Out:
    for (int j = 0; j < SM::n; j++) {
        prod_t t = prod_t(e[j]) * prod_t(r);
        if (SM::prob_rnd)
            t += prod_t(1) << (sh - 1);
        t >>= sh;
        if (SM::prob_sat && t > SM::prob_max)
            t = SM::prob_max;
        p[j] = from_code<typename SM::prob_t>(t);
    }
}

// HGQ2's table softmax (softmax kind "hgq2"; swinfpga.lut.hgq2_softmax_codes), tables read from the trained
// HGQ2 layer, one entry per input code:
//   m = max(s[j], valid j); e[j] = valid ? EXP[(exp_in_t)(m - s[j])] : 0; S = sum e (exact)
//   r = RECIP[(inv_in_t) S]; p[j] = (prob_t)(e[j] * r)
// Every (T) conversion rounds/overflows as its type says (AP_RND / AP_TRN; AP_SAT / AP_WRAP), as in golden.
// SM: hgq2_tag (void), n, score_t, diff_t (exact m - s), exp_in_t, sum_t (exact S), inv_in_t, prob_t, exp_lut,
// recip_lut.
template <class SM>
void softmax_row_hgq2(const typename SM::score_t s[SM::n], const bool valid[SM::n], typename SM::prob_t p[SM::n],
                      const typename SM::exp_lut::code_t exp_table[SM::exp_lut::size],
                      const typename SM::recip_lut::code_t recip_table[SM::recip_lut::size]) {
    #pragma HLS INLINE
    typedef typename SM::exp_lut::out_t e_t;
    typedef typename SM::recip_lut::out_t r_t;
    typename SM::score_t m = 0;
    bool any = false;
Max:
    for (int j = 0; j < SM::n; j++) {
        if (valid[j] && (!any || s[j] > m)) {
            m = s[j];
            any = true;
        }
    }
    e_t e[SM::n];
    #pragma HLS ARRAY_PARTITION variable=e complete
    typename SM::sum_t total = 0;
Exp:
    for (int j = 0; j < SM::n; j++) {
        typename SM::diff_t d = typename SM::diff_t(m) - typename SM::diff_t(s[j]);
        typename SM::exp_in_t q = d;
        e[j] = valid[j] ? lut_lookup<typename SM::exp_lut>(code_of(q), exp_table) : e_t(0);
        total += e[j];
    }
    typename SM::inv_in_t qs = total;
    r_t r = lut_lookup<typename SM::recip_lut>(code_of(qs), recip_table);
Out:
    for (int j = 0; j < SM::n; j++)
        p[j] = e[j] * r;  // exact product, then one conversion into prob_t
}

// Kind dispatch: an SM struct declaring `typedef void hgq2_tag;` is HGQ2's kind, any other the default kind.
template <class SM, class = void> struct softmax_is_hgq2 { static const bool value = false; };
template <class SM> struct softmax_is_hgq2<SM, typename SM::hgq2_tag> { static const bool value = true; };

template <class SM, bool HGQ2> struct softmax_kind {
    static void row(const typename SM::score_t s[SM::n], const bool valid[SM::n], typename SM::prob_t p[SM::n],
                    const typename SM::exp_lut::code_t exp_table[SM::exp_lut::size],
                    const typename SM::recip_lut::code_t recip_table[SM::recip_lut::size]) {
        #pragma HLS INLINE
        softmax_row_swinfpga<SM>(s, valid, p, exp_table, recip_table);
    }
};
template <class SM> struct softmax_kind<SM, true> {
    static void row(const typename SM::score_t s[SM::n], const bool valid[SM::n], typename SM::prob_t p[SM::n],
                    const typename SM::exp_lut::code_t exp_table[SM::exp_lut::size],
                    const typename SM::recip_lut::code_t recip_table[SM::recip_lut::size]) {
        #pragma HLS INLINE
        softmax_row_hgq2<SM>(s, valid, p, exp_table, recip_table);
    }
};

// One softmax row of either kind (what the attention layers and softmax_lut call).
template <class SM>
void softmax_row(const typename SM::score_t s[SM::n], const bool valid[SM::n], typename SM::prob_t p[SM::n],
                 const typename SM::exp_lut::code_t exp_table[SM::exp_lut::size],
                 const typename SM::recip_lut::code_t recip_table[SM::recip_lut::size]) {
    #pragma HLS INLINE
    softmax_kind<SM, softmax_is_hgq2<SM>::value>::row(s, valid, p, exp_table, recip_table);
}

// Standalone softmax-LUT layer: `rows` independent rows of n scores, all valid; one row per II = reuse.
template <class data_T, class res_T, class CFG>
void softmax_lut(const data_T x[CFG::rows * CFG::n], res_T y[CFG::rows * CFG::n],
                 const typename CFG::sm::exp_lut::code_t exp_table[], const typename CFG::sm::recip_lut::code_t recip_table[]) {
    typedef typename CFG::sm SM;
    #pragma HLS ARRAY_PARTITION variable=exp_table complete
    #pragma HLS BIND_STORAGE variable=recip_table type=rom_1p
    bool valid[SM::n];
    for (int j = 0; j < SM::n; j++)
        valid[j] = true;
Rows:
    for (int r = 0; r < CFG::rows; r++) {
        #pragma HLS PIPELINE II=CFG::reuse
        typename SM::score_t s[SM::n];
        typename SM::prob_t p[SM::n];
        for (int j = 0; j < SM::n; j++)
            s[j] = x[r * SM::n + j];
        softmax_row<SM>(s, valid, p, exp_table, recip_table);
        for (int j = 0; j < SM::n; j++)
            y[r * SM::n + j] = p[j];
    }
}

} // namespace swin

#endif
