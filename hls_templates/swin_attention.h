// swinfpga HLS templates: fused (shifted-)window multi-head self-attention (Swin W-MSA / SW-MSA).
//
// On an (H, W, C) token map x (row-major, channels last; a sequence of N tokens is an (N, 1) map), per
// (wh x ww) window (row-major windows, row-major tokens inside a window) of the map rolled by -shift:
//   q, k, v = Linear(x_w)                       (q carries head_dim^-0.5)
//   score[h,i,j] = requant(q_h[i].k_h[j] + B[rel(i,j), h] << align, score_t)   (Swin's rel-pos index over
//                  a (2wh-1) x (2ww-1) table; has_bias = 0: no table, no add)
//   p = softmax_row (tables); excluded keys: pairs of different shift regions (shift mask) and, with a
//       padding mask, padded keys (a window without any real token attends over all its tokens)
//   o[i, h*hd+d] = requant(sum_j p[h,i,j] v[j, h*hd+d], attn_t); y_w = Linear_proj(o)
//   y = window reverse, rolled back by +shift.
// One window engine, shared by all windows; per-token Linear layers in the latency or resource layout.
#ifndef SWIN_ATTENTION_H_
#define SWIN_ATTENTION_H_

#include "swin_common.h"
#include "swin_softmax.h"

namespace swin {

// Region label (0..8) of a position of the rolled map, as Swin's shifted-window img_mask.
template <int H, int W, int WH, int WW, int SHIFT> inline int shift_region(int r, int c) {
    if (SHIFT == 0)
        return 0;
    int rr = r < H - WH ? 0 : (r < H - SHIFT ? 1 : 2);
    int cc = c < W - WW ? 0 : (c < W - SHIFT ? 1 : 2);
    return rr * 3 + cc;
}

// Per-token q/k/v (heads, N, head_dim layout) and projection of one window.  RS = 0: one token per
// II = reuse (inlined dense_latency); RS = 1: tokens in sequence through shared dense_resource instances.
template <class data_T, class CFG>
void qkv_token(const data_T xw[CFG::N][CFG::C],
                      typename CFG::q_lin::out_t q[CFG::heads][CFG::N][CFG::head_dim],
                      typename CFG::k_lin::out_t k[CFG::heads][CFG::N][CFG::head_dim],
                      typename CFG::v_lin::out_t v[CFG::heads][CFG::N][CFG::head_dim], int t,
                      const typename CFG::q_lin::wc_t q_w[], const typename CFG::q_lin::bc_t q_b[],
                      const typename CFG::k_lin::wc_t k_w[], const typename CFG::k_lin::bc_t k_b[],
                      const typename CFG::v_lin::wc_t v_w[], const typename CFG::v_lin::bc_t v_b[]) {
    #pragma HLS INLINE
    typename CFG::q_lin::out_t qt[CFG::C];
    typename CFG::k_lin::out_t kt[CFG::C];
    typename CFG::v_lin::out_t vt[CFG::C];
    #pragma HLS ARRAY_PARTITION variable=qt complete
    #pragma HLS ARRAY_PARTITION variable=kt complete
    #pragma HLS ARRAY_PARTITION variable=vt complete
    linear<data_T, typename CFG::q_lin::out_t, typename CFG::q_lin>(xw[t], qt, q_w, q_b);
    linear<data_T, typename CFG::k_lin::out_t, typename CFG::k_lin>(xw[t], kt, k_w, k_b);
    linear<data_T, typename CFG::v_lin::out_t, typename CFG::v_lin>(xw[t], vt, v_w, v_b);
Split:
    for (int c = 0; c < CFG::C; c++) {
        q[c / CFG::head_dim][t][c % CFG::head_dim] = qt[c];
        k[c / CFG::head_dim][t][c % CFG::head_dim] = kt[c];
        v[c / CFG::head_dim][t][c % CFG::head_dim] = vt[c];
    }
}

template <int RS> struct window_tokens {};
template <> struct window_tokens<0> {
    template <class data_T, class CFG>
    static void qkv(const data_T xw[CFG::N][CFG::C], typename CFG::q_lin::out_t q[CFG::heads][CFG::N][CFG::head_dim],
                    typename CFG::k_lin::out_t k[CFG::heads][CFG::N][CFG::head_dim],
                    typename CFG::v_lin::out_t v[CFG::heads][CFG::N][CFG::head_dim],
                    const typename CFG::q_lin::wc_t q_w[], const typename CFG::q_lin::bc_t q_b[],
                    const typename CFG::k_lin::wc_t k_w[], const typename CFG::k_lin::bc_t k_b[],
                    const typename CFG::v_lin::wc_t v_w[], const typename CFG::v_lin::bc_t v_b[]) {
        #pragma HLS INLINE
    QKV:
        for (int t = 0; t < CFG::N; t++) {
            #pragma HLS PIPELINE II=CFG::reuse
            #pragma HLS ALLOCATION operation instances=mul limit=CFG::qkv_mult_limit
            qkv_token<data_T, CFG>(xw, q, k, v, t, q_w, q_b, k_w, k_b, v_w, v_b);
        }
    }
    template <class res_T, class CFG>
    static void proj(const typename CFG::attn_t o[CFG::N][CFG::C], res_T yw[CFG::N][CFG::C],
                     const typename CFG::p_lin::wc_t p_w[], const typename CFG::p_lin::bc_t p_b[]) {
        #pragma HLS INLINE
    Proj:
        for (int t = 0; t < CFG::N; t++) {
            #pragma HLS PIPELINE II=CFG::reuse
            #pragma HLS ALLOCATION operation instances=mul limit=CFG::p_lin::mult_limit
            linear<typename CFG::attn_t, res_T, typename CFG::p_lin>(o[t], yw[t], p_w, p_b);
        }
    }
};
template <> struct window_tokens<1> {
    template <class data_T, class CFG>
    static void qkv(const data_T xw[CFG::N][CFG::C], typename CFG::q_lin::out_t q[CFG::heads][CFG::N][CFG::head_dim],
                    typename CFG::k_lin::out_t k[CFG::heads][CFG::N][CFG::head_dim],
                    typename CFG::v_lin::out_t v[CFG::heads][CFG::N][CFG::head_dim],
                    const typename CFG::q_lin::wc_t q_w[], const typename CFG::q_lin::bc_t q_b[],
                    const typename CFG::k_lin::wc_t k_w[], const typename CFG::k_lin::bc_t k_b[],
                    const typename CFG::v_lin::wc_t v_w[], const typename CFG::v_lin::bc_t v_b[]) {
        #pragma HLS INLINE
    QKV:
        for (int t = 0; t < CFG::N; t++) {
            qkv_token<data_T, CFG>(xw, q, k, v, t, q_w, q_b, k_w, k_b, v_w, v_b);
        }
    }
    template <class res_T, class CFG>
    static void proj(const typename CFG::attn_t o[CFG::N][CFG::C], res_T yw[CFG::N][CFG::C],
                     const typename CFG::p_lin::wc_t p_w[], const typename CFG::p_lin::bc_t p_b[]) {
        #pragma HLS INLINE
    Proj:
        for (int t = 0; t < CFG::N; t++) {
            linear<typename CFG::attn_t, res_T, typename CFG::p_lin>(o[t], yw[t], p_w, p_b);
        }
    }
};

// One window: gathered tokens xw (N, C) -> projected outputs yw (N, C); keys[j] = 0 excludes token j as a
// key (padding); a window whose keys are all excluded attends over all its tokens (as golden).  One
// instance (INLINE off), called once per window.  The score / softmax / P.V row loop is one pipeline over
// (head, row) with II = reuse: 2*N*head_dim + N products, ALLOCATION-limited to 1/reuse of that; the exp
// table and the relative-position bias are read N times per row, so they sit in registers (complete
// partition).
template <class data_T, class res_T, class CFG>
void attention_window(const data_T xw[CFG::N][CFG::C], const bool keys[CFG::N], res_T yw[CFG::N][CFG::C], int wy,
                      int wx, const typename CFG::q_lin::wc_t q_w[], const typename CFG::q_lin::bc_t q_b[],
                      const typename CFG::k_lin::wc_t k_w[], const typename CFG::k_lin::bc_t k_b[],
                      const typename CFG::v_lin::wc_t v_w[], const typename CFG::v_lin::bc_t v_b[],
                      const typename CFG::p_lin::wc_t p_w[], const typename CFG::p_lin::bc_t p_b[],
                      const typename CFG::rel_bias_code_t rel_bias[],
                      const typename CFG::sm::exp_lut::code_t exp_table[],
                      const typename CFG::sm::recip_lut::code_t recip_table[]) {
    #pragma HLS INLINE off
    #pragma HLS ARRAY_PARTITION variable=rel_bias complete
    #pragma HLS ARRAY_PARTITION variable=exp_table complete
    #pragma HLS BIND_STORAGE variable=recip_table type=rom_1p
    #pragma HLS ARRAY_PARTITION variable=keys complete
    typedef typename CFG::sm SM;
    const int N = CFG::N, HD = CFG::head_dim, WH = CFG::window_h, WW = CFG::window_w;
    typename CFG::q_lin::out_t q[CFG::heads][N][HD];
    typename CFG::k_lin::out_t k[CFG::heads][N][HD];
    typename CFG::v_lin::out_t v[CFG::heads][N][HD];
    typename CFG::attn_t o[N][CFG::C];
    bool kv[N];
    #pragma HLS ARRAY_PARTITION variable=q complete dim=2
    #pragma HLS ARRAY_PARTITION variable=q complete dim=3
    #pragma HLS ARRAY_PARTITION variable=k complete dim=2
    #pragma HLS ARRAY_PARTITION variable=k complete dim=3
    #pragma HLS ARRAY_PARTITION variable=v complete dim=2
    #pragma HLS ARRAY_PARTITION variable=v complete dim=3
    #pragma HLS ARRAY_PARTITION variable=o complete dim=2
    #pragma HLS ARRAY_PARTITION variable=kv complete
    bool any_key = false;
Keys:
    for (int j = 0; j < N; j++) {
        #pragma HLS UNROLL
        any_key = any_key || keys[j];
    }
    for (int j = 0; j < N; j++) {
        #pragma HLS UNROLL
        kv[j] = keys[j] || !any_key;
    }
    window_tokens<CFG::strategy>::template qkv<data_T, CFG>(xw, q, k, v, q_w, q_b, k_w, k_b, v_w, v_b);
Heads:
    for (int h = 0; h < CFG::heads; h++) {
    Rows:
        for (int i = 0; i < N; i++) {
            #pragma HLS PIPELINE II=CFG::reuse
            #pragma HLS ALLOCATION operation instances=mul limit=CFG::row_mult_limit
            const int yi = i / WW, xi = i % WW;
            const int ri =
                shift_region<CFG::height, CFG::width, WH, WW, CFG::shift>(wy * WH + yi, wx * WW + xi);
            typename SM::score_t s[N];
            bool valid[N];
            typename SM::prob_t p[N];
            #pragma HLS ARRAY_PARTITION variable=s complete
            #pragma HLS ARRAY_PARTITION variable=valid complete
            #pragma HLS ARRAY_PARTITION variable=p complete
        Cols:
            for (int j = 0; j < N; j++) {
                const int yj = j / WW, xj = j % WW;
                typename CFG::score_acc_t acc = 0;
                if (CFG::has_bias) {
                    const int rel = (yi - yj + WH - 1) * (2 * WW - 1) + (xi - xj + WW - 1);
                    acc = from_code<typename CFG::rel_bias_t>(rel_bias[rel * CFG::heads + h]);
                }
            Dot:
                for (int d = 0; d < HD; d++) {
                    acc += q[h][i][d] * k[h][j][d];
                }
                s[j] = (typename SM::score_t)acc;
                valid[j] = kv[j] && shift_region<CFG::height, CFG::width, WH, WW, CFG::shift>(
                                        wy * WH + yj, wx * WW + xj) == ri;
            }
            softmax_row<SM>(s, valid, p, exp_table, recip_table);
        PV:
            for (int d = 0; d < HD; d++) {
                typename CFG::pv_acc_t a = 0;
                for (int j = 0; j < N; j++) {
                    a += p[j] * v[h][j][d];
                }
                o[i][h * HD + d] = (typename CFG::attn_t)a;
            }
        }
    }
    window_tokens<CFG::strategy>::template proj<res_T, CFG>(o, yw, p_w, p_b);
}

// Map position (row, column) of token t of window (wy, wx) of the map rolled by -shift.
template <class CFG> inline int window_row(int wy, int t) {
    return (wy * CFG::window_h + t / CFG::window_w + CFG::shift) % CFG::height;
}
template <class CFG> inline int window_col(int wx, int t) {
    return (wx * CFG::window_w + t % CFG::window_w + CFG::shift) % CFG::width;
}

// Window attention layer body: ONE window engine shared by all windows (roll by -shift, gather, attend,
// reverse, roll back by +shift), windows in sequence.  MASKED: m (H*W codes, 0 = padding) excludes keys.
template <class data_T, class mask_T, class res_T, class CFG, bool MASKED>
void window_attention_body(const data_T x[CFG::height * CFG::width * CFG::C], const mask_T m[],
                           res_T y[CFG::height * CFG::width * CFG::C],
                           const typename CFG::q_lin::wc_t q_w[], const typename CFG::q_lin::bc_t q_b[],
                           const typename CFG::k_lin::wc_t k_w[], const typename CFG::k_lin::bc_t k_b[],
                           const typename CFG::v_lin::wc_t v_w[], const typename CFG::v_lin::bc_t v_b[],
                           const typename CFG::p_lin::wc_t p_w[], const typename CFG::p_lin::bc_t p_b[],
                           const typename CFG::rel_bias_code_t rel_bias[],
                           const typename CFG::sm::exp_lut::code_t exp_table[],
                           const typename CFG::sm::recip_lut::code_t recip_table[]) {
    #pragma HLS INLINE
    const int W = CFG::width, C = CFG::C;
Windows:
    for (int wi = 0; wi < CFG::n_windows; wi++) {
        const int wy = wi / (W / CFG::window_w), wx = wi % (W / CFG::window_w);
        data_T xw[CFG::N][CFG::C];
        bool keys[CFG::N];
        res_T yw[CFG::N][CFG::C];
        #pragma HLS ARRAY_PARTITION variable=xw complete dim=2
        #pragma HLS ARRAY_PARTITION variable=keys complete
        #pragma HLS ARRAY_PARTITION variable=yw complete dim=2
    Gather:
        for (int t = 0; t < CFG::N; t++) {
            #pragma HLS PIPELINE II=1
            const int r = window_row<CFG>(wy, t), c = window_col<CFG>(wx, t);
            for (int ch = 0; ch < C; ch++)
                xw[t][ch] = x[(r * W + c) * C + ch];
            keys[t] = MASKED ? m[r * W + c] != 0 : true;
        }
        attention_window<data_T, res_T, CFG>(xw, keys, yw, wy, wx, q_w, q_b, k_w, k_b, v_w, v_b, p_w, p_b,
                                             rel_bias, exp_table, recip_table);
    Scatter:
        for (int t = 0; t < CFG::N; t++) {
            #pragma HLS PIPELINE II=1
            const int r = window_row<CFG>(wy, t), c = window_col<CFG>(wx, t);
            for (int ch = 0; ch < C; ch++)
                y[(r * W + c) * C + ch] = yw[t][ch];
        }
    }
}

// Window attention layer.
// CFG: height, width, C, heads, head_dim, window_h, window_w, shift, N (= window_h * window_w), n_windows,
// reuse, strategy, has_bias, row_mult_limit; q_lin, k_lin, v_lin, p_lin (Linear structs), rel_bias_t,
// rel_bias_code_t (has_bias = 0: a 1-entry placeholder table), score_acc_t, pv_acc_t, attn_t, sm (softmax).
template <class data_T, class res_T, class CFG>
void window_attention(const data_T x[CFG::height * CFG::width * CFG::C], res_T y[CFG::height * CFG::width * CFG::C],
                      const typename CFG::q_lin::wc_t q_w[], const typename CFG::q_lin::bc_t q_b[],
                      const typename CFG::k_lin::wc_t k_w[], const typename CFG::k_lin::bc_t k_b[],
                      const typename CFG::v_lin::wc_t v_w[], const typename CFG::v_lin::bc_t v_b[],
                      const typename CFG::p_lin::wc_t p_w[], const typename CFG::p_lin::bc_t p_b[],
                      const typename CFG::rel_bias_code_t rel_bias[],
                      const typename CFG::sm::exp_lut::code_t exp_table[],
                      const typename CFG::sm::recip_lut::code_t recip_table[]) {
    #pragma HLS INLINE off
    const bool no_mask[1] = {true};
    window_attention_body<data_T, bool, res_T, CFG, false>(x, no_mask, y, q_w, q_b, k_w, k_b, v_w, v_b, p_w, p_b,
                                                           rel_bias, exp_table, recip_table);
}

// Window attention with a padding mask m (H*W codes of the TokenMask layer, 0 = padding): padded keys are
// excluded from every softmax row.
template <class data_T, class mask_T, class res_T, class CFG>
void window_attention_m(const data_T x[CFG::height * CFG::width * CFG::C], const mask_T m[CFG::height * CFG::width],
                        res_T y[CFG::height * CFG::width * CFG::C],
                        const typename CFG::q_lin::wc_t q_w[], const typename CFG::q_lin::bc_t q_b[],
                        const typename CFG::k_lin::wc_t k_w[], const typename CFG::k_lin::bc_t k_b[],
                        const typename CFG::v_lin::wc_t v_w[], const typename CFG::v_lin::bc_t v_b[],
                        const typename CFG::p_lin::wc_t p_w[], const typename CFG::p_lin::bc_t p_b[],
                        const typename CFG::rel_bias_code_t rel_bias[],
                        const typename CFG::sm::exp_lut::code_t exp_table[],
                        const typename CFG::sm::recip_lut::code_t recip_table[]) {
    #pragma HLS INLINE off
    window_attention_body<data_T, mask_T, res_T, CFG, true>(x, m, y, q_w, q_b, k_w, k_b, v_w, v_b, p_w, p_b,
                                                            rel_bias, exp_table, recip_table);
}

} // namespace swin

#endif
