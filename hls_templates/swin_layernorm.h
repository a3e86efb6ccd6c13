// swinfpga HLS templates: integer LayerNorm with an rsqrt lookup table.
//   mean = requant(sum(x) * inv_c, mean_t);  d = x - mean (exact)
//   var  = requant(sum(d*d) * inv_c, var_t); rs = RSQRT[var]
//   y    = requant(d * rs, norm_t);          out = requant(y * gamma + beta, out_t)
// inv_c = round(2^inv_frac / C) arrives as a code of inv_t.
#ifndef SWIN_LAYERNORM_H_
#define SWIN_LAYERNORM_H_

#include "swin_common.h"

namespace swin {

// LN: C, inv_t, inv_code, sum_t, mean_t, d_t, ss_t, var_t, rsqrt_lut, norm_t, g_t, b_t, gacc_t, out_t,
// gc_t / bc_t (gamma / beta code types).  Inlined: unrolled inside a latency pipeline, or three
// sequential channel loops in the resource layout.
template <class x_T, class y_T, class LN>
void layernorm_token(const x_T x[LN::C], y_T y[LN::C], const typename LN::gc_t gamma[LN::C],
                     const typename LN::bc_t beta[LN::C], const typename LN::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE
    const typename LN::inv_t inv = from_code<typename LN::inv_t>(LN::inv_code);
    typename LN::sum_t sum = 0;
Sum:
    for (int c = 0; c < LN::C; c++)
        sum += x[c];
    typename LN::mean_t mean = sum * inv;
    typename LN::d_t d[LN::C];
    #pragma HLS ARRAY_PARTITION variable=d complete
    typename LN::ss_t ss = 0;
Var:
    for (int c = 0; c < LN::C; c++) {
        d[c] = x[c] - mean;
        ss += d[c] * d[c];
    }
    typename LN::var_t var = ss * inv;
    typename LN::rsqrt_lut::out_t rs = lut_lookup<typename LN::rsqrt_lut>(code_of(var), rsqrt_table);
Out:
    for (int c = 0; c < LN::C; c++) {
        typename LN::norm_t n = d[c] * rs;
        typename LN::gacc_t a = n * from_code<typename LN::g_t>(gamma[c]);
        a += from_code<typename LN::b_t>(beta[c]);
        y[c] = requant<y_T, typename out_chan_of<LN>::type>(a, c);
    }
}

// Latency layout: one token per II = reuse, the token's channels unrolled.
template <class data_T, class res_T, class CFG>
void layernorm(const data_T x[CFG::tokens * CFG::ln::C], res_T y[CFG::tokens * CFG::ln::C],
               const typename CFG::ln::gc_t gamma[], const typename CFG::ln::bc_t beta[],
               const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE off
    #pragma HLS ARRAY_PARTITION variable=gamma complete
    #pragma HLS ARRAY_PARTITION variable=beta complete
    #pragma HLS BIND_STORAGE variable=rsqrt_table type=rom_1p
    const int C = CFG::ln::C;
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        #pragma HLS PIPELINE II=CFG::reuse
        #pragma HLS ALLOCATION operation instances=mul limit=CFG::mult_limit
        layernorm_token<data_T, res_T, typename CFG::ln>(&x[t * C], &y[t * C], gamma, beta, rsqrt_table);
    }
}

// Resource layout: tokens in sequence, each token's channel loops pipelined at II = 1 (C cycles each).
template <class data_T, class res_T, class CFG>
void layernorm_rs(const data_T x[CFG::tokens * CFG::ln::C], res_T y[CFG::tokens * CFG::ln::C],
                  const typename CFG::ln::gc_t gamma[], const typename CFG::ln::bc_t beta[],
                  const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE off
    #pragma HLS BIND_STORAGE variable=gamma type=rom_1p
    #pragma HLS BIND_STORAGE variable=beta type=rom_1p
    #pragma HLS BIND_STORAGE variable=rsqrt_table type=rom_1p
    const int C = CFG::ln::C;
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        layernorm_token<data_T, res_T, typename CFG::ln>(&x[t * C], &y[t * C], gamma, beta, rsqrt_table);
    }
}

} // namespace swin

#endif
