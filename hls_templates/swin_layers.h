// swinfpga HLS templates: PatchEmbed, PatchMerging, Mlp (ReLU or GELU table), Add, Pool, Dense.
// Token maps are (H, W, C) row-major, channels last; each layer requantizes exact accumulators into
// the IR's formats (see swin_common.h).
#ifndef SWIN_LAYERS_H_
#define SWIN_LAYERS_H_

#include "swin_common.h"
#include "swin_layernorm.h"

namespace swin {

// ----- PatchEmbed: non-overlapping P x P patches, vector order (dy, dx, c) -> Linear ------------------
// CFG: height, width, cin, patch, lin (Linear struct), reuse.
template <class data_T, class res_T, class CFG, class WC, class BC>
void patch_embed(const data_T x[CFG::height * CFG::width * CFG::cin],
                 res_T y[(CFG::height / CFG::patch) * (CFG::width / CFG::patch) * CFG::lin::n_out], const WC w[],
                 const BC b[]) {
    const int P = CFG::patch, HP = CFG::height / P, WP = CFG::width / P, CI = CFG::cin;
    const int CO = CFG::lin::n_out;
Patches:
    for (int pi = 0; pi < HP * WP; pi++) {
        #pragma HLS PIPELINE II=CFG::reuse
        const int py = pi / WP, px = pi % WP;
        data_T v[CFG::lin::n_in];
        #pragma HLS ARRAY_PARTITION variable=v complete
        for (int dy = 0; dy < P; dy++)
            for (int dx = 0; dx < P; dx++)
                for (int c = 0; c < CI; c++)
                    v[(dy * P + dx) * CI + c] = x[((py * P + dy) * CFG::width + px * P + dx) * CI + c];
        linear<data_T, res_T, typename CFG::lin>(v, &y[pi * CO], w, b);
    }
}

// Optional LayerNorm of the concatenated vector (cat_t = LayerNorm output type, or the input type).
template <int NORM> struct merge_norm {
    template <class data_T, class CFG, class GC, class BEC, class TC>
    static void run(const data_T cat[], typename CFG::cat_t n[], const GC gamma[], const BEC beta[],
                    const TC rsqrt_table[]) {
        #pragma HLS INLINE
        layernorm_token<data_T, typename CFG::cat_t, typename CFG::ln>(cat, n, gamma, beta, rsqrt_table);
    }
};
template <> struct merge_norm<0> {
    template <class data_T, class CFG, class GC, class BEC, class TC>
    static void run(const data_T cat[], typename CFG::cat_t n[], const GC[], const BEC[], const TC[]) {
        #pragma HLS INLINE
        for (int i = 0; i < 4 * CFG::C; i++)
            n[i] = cat[i];
    }
};

// ----- PatchMerging: concat(x[2i,2j], x[2i+1,2j], x[2i,2j+1], x[2i+1,2j+1]) -> [LayerNorm] -> Linear -----
// CFG: height, width, C, has_norm, ln (LayerNorm struct; cat_t = its output type), lin, reuse.
template <class data_T, class res_T, class CFG, class WC, class BC, class GC, class BEC, class TC>
void patch_merging(const data_T x[CFG::height * CFG::width * CFG::C],
                   res_T y[(CFG::height / 2) * (CFG::width / 2) * CFG::lin::n_out], const WC w[], const BC b[],
                   const GC gamma[], const BEC beta[], const TC rsqrt_table[]) {
    const int C = CFG::C, W = CFG::width, HO = CFG::height / 2, WO = CFG::width / 2, CO = CFG::lin::n_out;
Tokens:
    for (int t = 0; t < HO * WO; t++) {
        #pragma HLS PIPELINE II=CFG::reuse
        const int i = t / WO, j = t % WO;
        data_T cat[4 * CFG::C];
        #pragma HLS ARRAY_PARTITION variable=cat complete
        for (int q = 0; q < 4; q++) {
            const int r = 2 * i + (q & 1), c = 2 * j + (q >> 1);
            for (int ch = 0; ch < C; ch++)
                cat[q * C + ch] = x[(r * W + c) * C + ch];
        }
        typename CFG::cat_t n[4 * CFG::C];
        #pragma HLS ARRAY_PARTITION variable=n complete
        merge_norm<CFG::has_norm>::template run<data_T, CFG>(cat, n, gamma, beta, rsqrt_table);
        linear<typename CFG::cat_t, res_T, typename CFG::lin>(n, &y[t * CO], w, b);
    }
}

// ----- Mlp: fc1 -> ReLU (requant to hidden_t) or GELU table -> fc2, per token -----------------------
// CFG: tokens, C, gelu (0/1), fc1, fc2 (Linear structs), hidden_t, gelu_lut, reuse.
template <class data_T, class res_T, class CFG, class WC, class BC, class W2C, class B2C, class TC>
void mlp(const data_T x[CFG::tokens * CFG::C], res_T y[CFG::tokens * CFG::C], const WC w1[], const BC b1[],
         const W2C w2[], const B2C b2[], const TC gelu_table[]) {
    const int C = CFG::C, HID = CFG::fc1::n_out;
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        #pragma HLS PIPELINE II=CFG::reuse
        typename CFG::fc1::out_t h[CFG::fc1::n_out];
        typename CFG::hidden_t a[CFG::fc1::n_out];
        #pragma HLS ARRAY_PARTITION variable=h complete
        #pragma HLS ARRAY_PARTITION variable=a complete
        linear<data_T, typename CFG::fc1::out_t, typename CFG::fc1>(&x[t * C], h, w1, b1);
    Act:
        for (int o = 0; o < HID; o++) {
            if (CFG::gelu)
                a[o] = lut_lookup<typename CFG::gelu_lut>(code_of(h[o]), gelu_table);
            else
                a[o] = (typename CFG::hidden_t)(h[o] < 0 ? typename CFG::fc1::out_t(0) : h[o]);
        }
        linear<typename CFG::hidden_t, res_T, typename CFG::fc2>(a, &y[t * C], w2, b2);
    }
}

// ----- Add: exact sum of both operands, requant to res_T -----------------------------------------
// CFG: n.
template <class a_T, class b_T, class res_T, class CFG> void add(const a_T a[CFG::n], const b_T b[CFG::n], res_T y[CFG::n]) {
Elems:
    for (int i = 0; i < CFG::n; i++) {
        #pragma HLS UNROLL
        typename CFG::sum_t s = a[i];
        s += b[i];
        y[i] = (res_T)s;
    }
}

// ----- Pool: global average over tokens = requant(sum * inv_n) --------------------------------------
// CFG: tokens, C, sum_t, inv_t, inv_code.
template <class data_T, class res_T, class CFG> void pool(const data_T x[CFG::tokens * CFG::C], res_T y[CFG::C]) {
    const typename CFG::inv_t inv = from_code<typename CFG::inv_t>(CFG::inv_code);
Channels:
    for (int c = 0; c < CFG::C; c++) {
        #pragma HLS UNROLL
        typename CFG::sum_t s = 0;
        for (int t = 0; t < CFG::tokens; t++)
            s += x[t * CFG::C + c];
        y[c] = (res_T)(s * inv);
    }
}

// ----- Dense: Linear on the last axis over `rows` vectors, optional ReLU of the output -------------
// CFG: rows, lin, relu.
template <class data_T, class res_T, class CFG, class WC, class BC>
void dense(const data_T x[CFG::rows * CFG::lin::n_in], res_T y[CFG::rows * CFG::lin::n_out], const WC w[],
           const BC b[]) {
Rows:
    for (int r = 0; r < CFG::rows; r++) {
        #pragma HLS PIPELINE II=CFG::reuse
        linear<data_T, res_T, typename CFG::lin>(&x[r * CFG::lin::n_in], &y[r * CFG::lin::n_out], w, b);
        if (CFG::relu) {
            for (int o = 0; o < CFG::lin::n_out; o++)
                if (y[r * CFG::lin::n_out + o] < 0)
                    y[r * CFG::lin::n_out + o] = 0;
        }
    }
}

} // namespace swin

#endif
