// swinfpga HLS templates: fused (shifted-)window multi-head self-attention (Swin W-MSA / SW-MSA).
//
// On an (H, W, C) token map x (row-major, channels last), per window (row-major windows, row-major
// tokens inside a window) of the map rolled by -shift:
//   q, k, v = Linear(x_w)                       (q carries head_dim^-0.5)
//   score[h,i,j] = requant(q_h[i].k_h[j] + B[rel(i,j), h] << align, score_t)   (Swin's rel-pos index)
//   p = softmax_row (tables), pairs of different shift regions excluded (shift mask)
//   o[i, h*hd+d] = requant(sum_j p[h,i,j] v[j, h*hd+d], attn_t); y_w = Linear_proj(o)
//   y = window reverse, rolled back by +shift.
// reuse == 1: fully parallel (windows unrolled); reuse > 1: one window engine, windows pipelined with
// II = reuse and each Linear sharing multipliers over `reuse` steps.
#ifndef SWIN_ATTENTION_H_
#define SWIN_ATTENTION_H_

#include "swin_common.h"
#include "swin_softmax.h"

namespace swin {

// Region label (0..8) of a position of the rolled map, as Swin's shifted-window img_mask.
template <int H, int W, int WIN, int SHIFT> inline int shift_region(int r, int c) {
    if (SHIFT == 0)
        return 0;
    int rr = r < H - WIN ? 0 : (r < H - SHIFT ? 1 : 2);
    int cc = c < W - WIN ? 0 : (c < W - SHIFT ? 1 : 2);
    return rr * 3 + cc;
}

// One window: gathered tokens xw (N, C) -> projected outputs yw (N, C).
template <class data_T, class res_T, class CFG, class WC, class BC, class RBC, class EC, class RC>
void attention_window(const data_T xw[CFG::N][CFG::C], res_T yw[CFG::N][CFG::C], int wy, int wx,
                      const WC q_w[], const BC q_b[], const WC k_w[], const BC k_b[], const WC v_w[],
                      const BC v_b[], const WC p_w[], const BC p_b[], const RBC rel_bias[], const EC exp_table[],
                      const RC recip_table[]) {
    typedef typename CFG::sm SM;
    const int N = CFG::N, C = CFG::C, HD = CFG::head_dim, WIN = CFG::window;
    typename CFG::q_lin::out_t q[N][C];
    typename CFG::k_lin::out_t k[N][C];
    typename CFG::v_lin::out_t v[N][C];
    typename CFG::attn_t o[N][C];
    #pragma HLS ARRAY_PARTITION variable=q complete dim=0
    #pragma HLS ARRAY_PARTITION variable=k complete dim=0
    #pragma HLS ARRAY_PARTITION variable=v complete dim=0
    #pragma HLS ARRAY_PARTITION variable=o complete dim=0
QKV:
    for (int t = 0; t < N; t++) {
        linear<data_T, typename CFG::q_lin::out_t, typename CFG::q_lin>(xw[t], q[t], q_w, q_b);
        linear<data_T, typename CFG::k_lin::out_t, typename CFG::k_lin>(xw[t], k[t], k_w, k_b);
        linear<data_T, typename CFG::v_lin::out_t, typename CFG::v_lin>(xw[t], v[t], v_w, v_b);
    }
Heads:
    for (int h = 0; h < CFG::heads; h++) {
    Rows:
        for (int i = 0; i < N; i++) {
            const int yi = i / WIN, xi = i % WIN;
            const int ri = shift_region<CFG::height, CFG::width, WIN, CFG::shift>(wy * WIN + yi, wx * WIN + xi);
            typename SM::score_t s[N];
            bool valid[N];
            typename SM::prob_t p[N];
        Cols:
            for (int j = 0; j < N; j++) {
                const int yj = j / WIN, xj = j % WIN;
                const int rel = (yi - yj + WIN - 1) * (2 * WIN - 1) + (xi - xj + WIN - 1);
                typename CFG::score_acc_t acc = from_code<typename CFG::rel_bias_t>(rel_bias[rel * CFG::heads + h]);
            Dot:
                for (int d = 0; d < HD; d++) {
                    acc += q[i][h * HD + d] * k[j][h * HD + d];
                }
                s[j] = (typename SM::score_t)acc;
                valid[j] = shift_region<CFG::height, CFG::width, WIN, CFG::shift>(wy * WIN + yj, wx * WIN + xj) == ri;
            }
            softmax_row<SM>(s, valid, p, exp_table, recip_table);
        PV:
            for (int d = 0; d < HD; d++) {
                typename CFG::pv_acc_t a = 0;
                for (int j = 0; j < N; j++) {
                    a += p[j] * v[j][h * HD + d];
                }
                o[i][h * HD + d] = (typename CFG::attn_t)a;
            }
        }
    }
Proj:
    for (int t = 0; t < N; t++) {
        linear<typename CFG::attn_t, res_T, typename CFG::p_lin>(o[t], yw[t], p_w, p_b);
    }
}

// Gather window wi of the map rolled by -shift, run it, scatter the result rolled back by +shift.
template <class data_T, class res_T, class CFG, class WC, class BC, class RBC, class EC, class RC>
void attention_one(const data_T x[], res_T y[], int wi, const WC q_w[], const BC q_b[], const WC k_w[],
                   const BC k_b[], const WC v_w[], const BC v_b[], const WC p_w[], const BC p_b[],
                   const RBC rel_bias[], const EC exp_table[], const RC recip_table[]) {
    #pragma HLS INLINE
    const int WIN = CFG::window, S = CFG::shift, H = CFG::height, W = CFG::width, C = CFG::C;
    const int wy = wi / (W / WIN), wx = wi % (W / WIN);
    data_T xw[CFG::N][CFG::C];
    res_T yw[CFG::N][CFG::C];
    #pragma HLS ARRAY_PARTITION variable=xw complete dim=0
    #pragma HLS ARRAY_PARTITION variable=yw complete dim=0
Gather:
    for (int t = 0; t < CFG::N; t++) {
        const int r = (wy * WIN + t / WIN + S) % H, c = (wx * WIN + t % WIN + S) % W;
        for (int ch = 0; ch < C; ch++)
            xw[t][ch] = x[(r * W + c) * C + ch];
    }
    attention_window<data_T, res_T, CFG>(xw, yw, wy, wx, q_w, q_b, k_w, k_b, v_w, v_b, p_w, p_b, rel_bias,
                                         exp_table, recip_table);
Scatter:
    for (int t = 0; t < CFG::N; t++) {
        const int r = (wy * WIN + t / WIN + S) % H, c = (wx * WIN + t % WIN + S) % W;
        for (int ch = 0; ch < C; ch++)
            y[(r * W + c) * C + ch] = yw[t][ch];
    }
}

// Fully parallel: every window has its own engine (reuse factor 1).
// CFG: height, width, C, heads, head_dim, window, shift, N (= window^2), n_windows, reuse; q_lin,
// k_lin, v_lin, p_lin (Linear structs), rel_bias_t, score_acc_t, pv_acc_t, attn_t, sm (softmax struct).
template <class data_T, class res_T, class CFG, class WC, class BC, class RBC, class EC, class RC>
void window_attention(const data_T x[CFG::height * CFG::width * CFG::C], res_T y[CFG::height * CFG::width * CFG::C],
                      const WC q_w[], const BC q_b[], const WC k_w[], const BC k_b[], const WC v_w[], const BC v_b[],
                      const WC p_w[], const BC p_b[], const RBC rel_bias[], const EC exp_table[],
                      const RC recip_table[]) {
Windows:
    for (int wi = 0; wi < CFG::n_windows; wi++) {
        #pragma HLS UNROLL
        attention_one<data_T, res_T, CFG>(x, y, wi, q_w, q_b, k_w, k_b, v_w, v_b, p_w, p_b, rel_bias, exp_table,
                                          recip_table);
    }
}

// Reuse-factor variant: one window engine shared by all windows, pipelined with II = reuse; its Linear
// layers share n_in*n_out/reuse multipliers each.
template <class data_T, class res_T, class CFG, class WC, class BC, class RBC, class EC, class RC>
void window_attention_rf(const data_T x[CFG::height * CFG::width * CFG::C],
                         res_T y[CFG::height * CFG::width * CFG::C], const WC q_w[], const BC q_b[], const WC k_w[],
                         const BC k_b[], const WC v_w[], const BC v_b[], const WC p_w[], const BC p_b[],
                         const RBC rel_bias[], const EC exp_table[], const RC recip_table[]) {
Windows:
    for (int wi = 0; wi < CFG::n_windows; wi++) {
        #pragma HLS PIPELINE II=CFG::reuse
        attention_one<data_T, res_T, CFG>(x, y, wi, q_w, q_b, k_w, k_b, v_w, v_b, p_w, p_b, rel_bias, exp_table,
                                          recip_table);
    }
}

} // namespace swin

#endif
