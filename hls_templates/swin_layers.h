// swinfpga HLS templates: PatchEmbed, PatchMerging, Mlp (ReLU or GELU table), Add, Pool, Dense.
// Token maps are (H, W, C) row-major, channels last; each layer requantizes exact accumulators into
// the IR's formats (see swin_common.h).
//
// Every layer is its own function (INLINE off) with its own loop structure, as hls4ml's layers are:
//  * `fn`    (latency layout): one token per II = CFG::reuse; the token's Linear layers are inlined
//            hls4ml dense_latency (all products unrolled, ALLOCATION-limited to n_in*n_out/reuse).
//  * `fn_rs` (resource layout): tokens in sequence; each Linear is one shared hls4ml dense_resource
//            instance (reuse cycles on n_in*n_out/reuse multipliers, reshaped ROM weights).
#ifndef SWIN_LAYERS_H_
#define SWIN_LAYERS_H_

#include "swin_common.h"
#include "swin_layernorm.h"

namespace swin {

// ----- PatchEmbed: non-overlapping P x P patches, vector order (dy, dx, c) -> Linear ------------------
// CFG: height, width, cin, patch, lin (Linear struct), reuse.
template <class data_T, class res_T, class CFG>
void patch_embed_token(const data_T x[], res_T y[], int pi, const typename CFG::lin::wc_t w[],
                       const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE
    const int P = CFG::patch, WP = CFG::width / P, CI = CFG::cin, CO = CFG::lin::n_out;
    const int py = pi / WP, px = pi % WP;
    data_T v[CFG::lin::n_in];
    #pragma HLS ARRAY_PARTITION variable=v complete
Gather:
    for (int dy = 0; dy < P; dy++)
        for (int dx = 0; dx < P; dx++)
            for (int c = 0; c < CI; c++)
                v[(dy * P + dx) * CI + c] = x[((py * P + dy) * CFG::width + px * P + dx) * CI + c];
    linear<data_T, res_T, typename CFG::lin>(v, &y[pi * CO], w, b);
}

template <class data_T, class res_T, class CFG>
void patch_embed(const data_T x[CFG::height * CFG::width * CFG::cin],
                 res_T y[(CFG::height / CFG::patch) * (CFG::width / CFG::patch) * CFG::lin::n_out],
                 const typename CFG::lin::wc_t w[], const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE off
    #pragma HLS ARRAY_PARTITION variable=b complete
Patches:
    for (int pi = 0; pi < (CFG::height / CFG::patch) * (CFG::width / CFG::patch); pi++) {
        #pragma HLS PIPELINE II=CFG::reuse
        #pragma HLS ALLOCATION operation instances=mul limit=CFG::mult_limit
        patch_embed_token<data_T, res_T, CFG>(x, y, pi, w, b);
    }
}

template <class data_T, class res_T, class CFG>
void patch_embed_rs(const data_T x[CFG::height * CFG::width * CFG::cin],
                    res_T y[(CFG::height / CFG::patch) * (CFG::width / CFG::patch) * CFG::lin::n_out],
                    const typename CFG::lin::wc_t w[], const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE off
Patches:
    for (int pi = 0; pi < (CFG::height / CFG::patch) * (CFG::width / CFG::patch); pi++) {
        patch_embed_token<data_T, res_T, CFG>(x, y, pi, w, b);
    }
}

// Optional LayerNorm of the concatenated vector (cat_t = LayerNorm output type, or the input type).
template <int NORM> struct merge_norm {
    template <class data_T, class CFG>
    static void run(const data_T cat[], typename CFG::cat_t n[], const typename CFG::ln::gc_t gamma[],
                    const typename CFG::ln::bc_t beta[], const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
        #pragma HLS INLINE
        layernorm_token<data_T, typename CFG::cat_t, typename CFG::ln>(cat, n, gamma, beta, rsqrt_table);
    }
};
template <> struct merge_norm<0> {
    template <class data_T, class CFG>
    static void run(const data_T cat[], typename CFG::cat_t n[], const typename CFG::ln::gc_t[],
                    const typename CFG::ln::bc_t[], const typename CFG::ln::rsqrt_lut::code_t[]) {
        #pragma HLS INLINE
        for (int i = 0; i < 4 * CFG::C; i++)
            n[i] = cat[i];
    }
};

// ----- PatchMerging: concat(x[2i,2j], x[2i+1,2j], x[2i,2j+1], x[2i+1,2j+1]) -> [LayerNorm] -> Linear -----
// CFG: height, width, C, has_norm, ln (LayerNorm struct, or a stub with code types), cat_t, lin, reuse.
template <class data_T, class res_T, class CFG>
void patch_merging_token(const data_T x[], res_T y[], int t, const typename CFG::lin::wc_t w[],
                         const typename CFG::lin::bc_t b[], const typename CFG::ln::gc_t gamma[],
                         const typename CFG::ln::bc_t beta[], const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE
    const int C = CFG::C, W = CFG::width, WO = CFG::width / 2, CO = CFG::lin::n_out;
    const int i = t / WO, j = t % WO;
    data_T cat[4 * CFG::C];
    #pragma HLS ARRAY_PARTITION variable=cat complete
Gather:
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

template <class data_T, class res_T, class CFG>
void patch_merging(const data_T x[CFG::height * CFG::width * CFG::C],
                   res_T y[(CFG::height / 2) * (CFG::width / 2) * CFG::lin::n_out], const typename CFG::lin::wc_t w[],
                   const typename CFG::lin::bc_t b[], const typename CFG::ln::gc_t gamma[],
                   const typename CFG::ln::bc_t beta[], const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE off
    #pragma HLS ARRAY_PARTITION variable=b complete
    #pragma HLS ARRAY_PARTITION variable=gamma complete
    #pragma HLS ARRAY_PARTITION variable=beta complete
    #pragma HLS BIND_STORAGE variable=rsqrt_table type=rom_1p
Tokens:
    for (int t = 0; t < (CFG::height / 2) * (CFG::width / 2); t++) {
        #pragma HLS PIPELINE II=CFG::reuse
        #pragma HLS ALLOCATION operation instances=mul limit=CFG::mult_limit
        patch_merging_token<data_T, res_T, CFG>(x, y, t, w, b, gamma, beta, rsqrt_table);
    }
}

template <class data_T, class res_T, class CFG>
void patch_merging_rs(const data_T x[CFG::height * CFG::width * CFG::C],
                      res_T y[(CFG::height / 2) * (CFG::width / 2) * CFG::lin::n_out],
                      const typename CFG::lin::wc_t w[], const typename CFG::lin::bc_t b[],
                      const typename CFG::ln::gc_t gamma[], const typename CFG::ln::bc_t beta[],
                      const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE off
    #pragma HLS BIND_STORAGE variable=gamma type=rom_1p
    #pragma HLS BIND_STORAGE variable=beta type=rom_1p
    #pragma HLS BIND_STORAGE variable=rsqrt_table type=rom_1p
Tokens:
    for (int t = 0; t < (CFG::height / 2) * (CFG::width / 2); t++) {
        patch_merging_token<data_T, res_T, CFG>(x, y, t, w, b, gamma, beta, rsqrt_table);
    }
}

// ----- Mlp: fc1 -> ReLU (requant to hidden_t) or GELU table -> fc2, per token -----------------------
// CFG: tokens, C, gelu (0/1), fc1, fc2 (Linear structs), hidden_t, gelu_lut, reuse.
template <class data_T, class res_T, class CFG>
void mlp_token(const data_T x[], res_T y[], const typename CFG::fc1::wc_t w1[], const typename CFG::fc1::bc_t b1[],
               const typename CFG::fc2::wc_t w2[], const typename CFG::fc2::bc_t b2[],
               const typename CFG::gelu_lut::code_t gelu_table[]) {
    #pragma HLS INLINE
    typename CFG::fc1::out_t h[CFG::fc1::n_out];
    typename CFG::hidden_t a[CFG::fc1::n_out];
    #pragma HLS ARRAY_PARTITION variable=h complete
    #pragma HLS ARRAY_PARTITION variable=a complete
    linear<data_T, typename CFG::fc1::out_t, typename CFG::fc1>(x, h, w1, b1);
Act:
    for (int o = 0; o < CFG::fc1::n_out; o++) {
        if (CFG::gelu)
            a[o] = lut_lookup<typename CFG::gelu_lut>(code_of(h[o]), gelu_table);
        else
            a[o] = requant<typename CFG::hidden_t, typename hidden_chan_of<CFG>::type>(
                h[o] < 0 ? typename CFG::fc1::out_t(0) : h[o], o);
    }
    linear<typename CFG::hidden_t, res_T, typename CFG::fc2>(a, y, w2, b2);
}

template <class data_T, class res_T, class CFG>
void mlp(const data_T x[CFG::tokens * CFG::C], res_T y[CFG::tokens * CFG::C], const typename CFG::fc1::wc_t w1[],
         const typename CFG::fc1::bc_t b1[], const typename CFG::fc2::wc_t w2[], const typename CFG::fc2::bc_t b2[],
         const typename CFG::gelu_lut::code_t gelu_table[]) {
    #pragma HLS INLINE off
    #pragma HLS ARRAY_PARTITION variable=b1 complete
    #pragma HLS ARRAY_PARTITION variable=b2 complete
    #pragma HLS ARRAY_PARTITION variable=gelu_table complete
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        #pragma HLS PIPELINE II=CFG::reuse
        #pragma HLS ALLOCATION operation instances=mul limit=CFG::mult_limit
        mlp_token<data_T, res_T, CFG>(&x[t * CFG::C], &y[t * CFG::C], w1, b1, w2, b2, gelu_table);
    }
}

template <class data_T, class res_T, class CFG>
void mlp_rs(const data_T x[CFG::tokens * CFG::C], res_T y[CFG::tokens * CFG::C], const typename CFG::fc1::wc_t w1[],
            const typename CFG::fc1::bc_t b1[], const typename CFG::fc2::wc_t w2[], const typename CFG::fc2::bc_t b2[],
            const typename CFG::gelu_lut::code_t gelu_table[]) {
    #pragma HLS INLINE off
    #pragma HLS BIND_STORAGE variable=gelu_table type=rom_1p
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        mlp_token<data_T, res_T, CFG>(&x[t * CFG::C], &y[t * CFG::C], w1, b1, w2, b2, gelu_table);
    }
}

// ----- Add: exact sum of both operands, requant to res_T; one token (C channels) per cycle ----------
// CFG: n, C.
template <class a_T, class b_T, class res_T, class CFG>
void add(const a_T a[CFG::n], const b_T b[CFG::n], res_T y[CFG::n]) {
    #pragma HLS INLINE off
Tokens:
    for (int t = 0; t < CFG::n / CFG::C; t++) {
        #pragma HLS PIPELINE II=1
    Chans:
        for (int c = 0; c < CFG::C; c++) {
            typename CFG::sum_t s = a[t * CFG::C + c];
            s += b[t * CFG::C + c];
            y[t * CFG::C + c] = requant<res_T, typename out_chan_of<CFG>::type>(s, c);
        }
    }
}

// ----- Pool: global average over tokens = requant(sum * inv_n); one token per cycle -----------------
// CFG: tokens, C, sum_t, inv_t, inv_code.
template <class data_T, class res_T, class CFG> void pool(const data_T x[CFG::tokens * CFG::C], res_T y[CFG::C]) {
    #pragma HLS INLINE off
    const typename CFG::inv_t inv = from_code<typename CFG::inv_t>(CFG::inv_code);
    typename CFG::sum_t s[CFG::C];
    #pragma HLS ARRAY_PARTITION variable=s complete
Init:
    for (int c = 0; c < CFG::C; c++) {
        #pragma HLS UNROLL
        s[c] = 0;
    }
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        #pragma HLS PIPELINE II=1
        for (int c = 0; c < CFG::C; c++)
            s[c] += x[t * CFG::C + c];
    }
Scale:
    for (int c = 0; c < CFG::C; c++) {
        #pragma HLS UNROLL
        y[c] = requant<res_T, typename out_chan_of<CFG>::type>(s[c] * inv, c);
    }
}

// ----- Masked pool: average over real tokens = requant(sum(x where m) * inv_table[count]) -------------
// CFG: tokens, C, sum_t, inv_t, inv_code_t (inv_table ROM entry), count_t.  m: tokens mask codes (0 = padding).
template <class data_T, class mask_T, class res_T, class CFG>
void pool_m(const data_T x[CFG::tokens * CFG::C], const mask_T m[CFG::tokens], res_T y[CFG::C],
            const typename CFG::inv_code_t inv_table[CFG::tokens + 1]) {
    #pragma HLS INLINE off
    typename CFG::sum_t s[CFG::C];
    #pragma HLS ARRAY_PARTITION variable=s complete
    typename CFG::count_t n = 0;
Init:
    for (int c = 0; c < CFG::C; c++) {
        #pragma HLS UNROLL
        s[c] = 0;
    }
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        #pragma HLS PIPELINE II=1
        if (m[t] != 0) {
            n++;
            for (int c = 0; c < CFG::C; c++)
                s[c] += x[t * CFG::C + c];
        }
    }
    const typename CFG::inv_t inv = from_code<typename CFG::inv_t>(inv_table[n]);
Scale:
    for (int c = 0; c < CFG::C; c++) {
        #pragma HLS UNROLL
        y[c] = requant<res_T, typename out_chan_of<CFG>::type>(s[c] * inv, c);
    }
}

// ----- TokenMask: 1 for a real token, 0 for padding (all C input codes 0); one token per cycle -------
// CFG: tokens, C.
template <class data_T, class res_T, class CFG>
void token_mask(const data_T x[CFG::tokens * CFG::C], res_T y[CFG::tokens]) {
    #pragma HLS INLINE off
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        #pragma HLS PIPELINE II=1
        bool any = false;
        for (int c = 0; c < CFG::C; c++)
            any = any || x[t * CFG::C + c] != 0;
        y[t] = from_code<res_T>(any ? 1 : 0);
    }
}

// ----- Dense: Linear on the last axis over `rows` vectors, optional ReLU of the output -------------
// CFG: rows, lin, relu, reuse.
template <class data_T, class res_T, class CFG>
void dense_row(const data_T x[], res_T y[], const typename CFG::lin::wc_t w[], const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE
    linear<data_T, res_T, typename CFG::lin>(x, y, w, b);
    if (CFG::relu) {
        for (int o = 0; o < CFG::lin::n_out; o++)
            if (y[o] < 0)
                y[o] = 0;
    }
}

template <class data_T, class res_T, class CFG>
void dense(const data_T x[CFG::rows * CFG::lin::n_in], res_T y[CFG::rows * CFG::lin::n_out],
           const typename CFG::lin::wc_t w[], const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE off
    #pragma HLS ARRAY_PARTITION variable=b complete
Rows:
    for (int r = 0; r < CFG::rows; r++) {
        #pragma HLS PIPELINE II=CFG::reuse
        #pragma HLS ALLOCATION operation instances=mul limit=CFG::mult_limit
        dense_row<data_T, res_T, CFG>(&x[r * CFG::lin::n_in], &y[r * CFG::lin::n_out], w, b);
    }
}

template <class data_T, class res_T, class CFG>
void dense_rs(const data_T x[CFG::rows * CFG::lin::n_in], res_T y[CFG::rows * CFG::lin::n_out],
              const typename CFG::lin::wc_t w[], const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE off
Rows:
    for (int r = 0; r < CFG::rows; r++) {
        dense_row<data_T, res_T, CFG>(&x[r * CFG::lin::n_in], &y[r * CFG::lin::n_out], w, b);
    }
}

} // namespace swin

#endif
