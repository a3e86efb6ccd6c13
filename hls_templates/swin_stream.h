// swinfpga HLS templates: io_stream versions of every layer (hls::stream of one token per element; a token
// is a packed array of its C channels, hls4ml's nnet::array<T, C>).  The top is a DATAFLOW region; each
// layer reads its input stream once in raster order and writes its output in raster order.
//  * patch_embed_s:     line buffer of `patch` image rows (cyclic-partitioned by column).
//  * window_attention_s: shift 0: line buffer of `window` token rows (one band of windows); shift > 0:
//                       the cyclic shift needs the map's first rows last, so the buffer holds the whole
//                       map (C banks in BRAM).  Gather / reverse are address arithmetic on the buffers;
//                       one window engine (attention_window) is shared by all windows.
//  * patch_merging_s:   two-row buffer (4 x C banks).
//  * mlp_s / layernorm_s / add_s / dense_s: one token at a time; pool_s accumulates.
// `_rs_s` variants: resource layout (tokens in sequence; shared dense_resource Linear instances).
#ifndef SWIN_STREAM_H_
#define SWIN_STREAM_H_

#include "hls_stream.h"
#include "swin_attention.h"
#include "swin_layernorm.h"
#include "swin_layers.h"

namespace swin {

template <class T, class A> inline void unpack(const A &a, T v[A::size]) {
    #pragma HLS INLINE
    for (unsigned c = 0; c < A::size; c++)
        v[c] = a[c];
}
template <class A, class T> inline A pack(const T v[A::size]) {
    #pragma HLS INLINE
    A a;
    for (unsigned c = 0; c < A::size; c++)
        a[c] = v[c];
    return a;
}

// ----- PatchEmbed -------------------------------------------------------------------------------------
template <class data_T, class res_T, class CFG>
void patch_embed_s_read(hls::stream<data_T> &x, typename data_T::value_type lb[CFG::patch][CFG::width][CFG::cin]) {
    #pragma HLS INLINE
Read:
    for (int i = 0; i < CFG::patch * CFG::width; i++) {
        #pragma HLS PIPELINE II=1
        const data_T v = x.read();
        for (int c = 0; c < CFG::cin; c++)
            lb[i / CFG::width][i % CFG::width][c] = v[c];
    }
}

template <class data_T, class res_T, class CFG>
void patch_embed_s_patch(const typename data_T::value_type lb[CFG::patch][CFG::width][CFG::cin],
                         hls::stream<res_T> &y, int px, const typename CFG::lin::wc_t w[],
                         const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE
    const int P = CFG::patch, CI = CFG::cin;
    typename data_T::value_type v[CFG::lin::n_in];
    typename res_T::value_type o[CFG::lin::n_out];
    #pragma HLS ARRAY_PARTITION variable=v complete
    #pragma HLS ARRAY_PARTITION variable=o complete
    for (int dy = 0; dy < P; dy++)
        for (int dx = 0; dx < P; dx++)
            for (int c = 0; c < CI; c++)
                v[(dy * P + dx) * CI + c] = lb[dy][px * P + dx][c];
    linear<typename data_T::value_type, typename res_T::value_type, typename CFG::lin>(v, o, w, b);
    y.write(pack<res_T>(o));
}

template <class data_T, class res_T, class CFG>
void patch_embed_s(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::lin::wc_t w[],
                   const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE off
    #pragma HLS ARRAY_PARTITION variable=b complete
    typename data_T::value_type lb[CFG::patch][CFG::width][CFG::cin];
    #pragma HLS ARRAY_PARTITION variable=lb complete dim=1
    #pragma HLS ARRAY_PARTITION variable=lb cyclic factor=CFG::patch dim=2
    #pragma HLS ARRAY_PARTITION variable=lb complete dim=3
Bands:
    for (int by = 0; by < CFG::height / CFG::patch; by++) {
        patch_embed_s_read<data_T, res_T, CFG>(x, lb);
    Patches:
        for (int px = 0; px < CFG::width / CFG::patch; px++) {
            #pragma HLS PIPELINE II=CFG::reuse
            #pragma HLS ALLOCATION operation instances=mul limit=CFG::mult_limit
            patch_embed_s_patch<data_T, res_T, CFG>(lb, y, px, w, b);
        }
    }
}

template <class data_T, class res_T, class CFG>
void patch_embed_rs_s(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::lin::wc_t w[],
                      const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE off
    typename data_T::value_type lb[CFG::patch][CFG::width][CFG::cin];
    #pragma HLS ARRAY_PARTITION variable=lb complete dim=1
    #pragma HLS ARRAY_PARTITION variable=lb cyclic factor=CFG::patch dim=2
    #pragma HLS ARRAY_PARTITION variable=lb complete dim=3
Bands:
    for (int by = 0; by < CFG::height / CFG::patch; by++) {
        patch_embed_s_read<data_T, res_T, CFG>(x, lb);
    Patches:
        for (int px = 0; px < CFG::width / CFG::patch; px++) {
            patch_embed_s_patch<data_T, res_T, CFG>(lb, y, px, w, b);
        }
    }
}

// ----- Window attention -------------------------------------------------------------------------------
// Stand-in for the mask stream of an unmasked layer (never read: every token is a real key).
struct no_mask_stream {
    struct token {
        int operator[](int) const { return 1; }
    };
    token read() { return token(); }
};

// CFG as window_attention, plus rows_buf (= window_h if shift == 0, else height): token rows buffered.
// MASKED: the padding-mask stream m (one 1-channel token per map position, 0 = padding) is buffered
// alongside and excludes padded keys.
template <class data_T, class mask_S, class res_T, class CFG, bool MASKED>
void window_attention_s_body(hls::stream<data_T> &x, mask_S &m, hls::stream<res_T> &y,
                             const typename CFG::q_lin::wc_t q_w[], const typename CFG::q_lin::bc_t q_b[],
                             const typename CFG::k_lin::wc_t k_w[], const typename CFG::k_lin::bc_t k_b[],
                             const typename CFG::v_lin::wc_t v_w[], const typename CFG::v_lin::bc_t v_b[],
                             const typename CFG::p_lin::wc_t p_w[], const typename CFG::p_lin::bc_t p_b[],
                             const typename CFG::rel_bias_code_t rel_bias[],
                             const typename CFG::sm::exp_lut::code_t exp_table[],
                             const typename CFG::sm::recip_lut::code_t recip_table[]) {
    #pragma HLS INLINE
    typedef typename data_T::value_type in_t;
    typedef typename res_T::value_type out_t;
    const int WH = CFG::window_h, W = CFG::width, C = CFG::C;
    const int RB = CFG::rows_buf, NWX = W / CFG::window_w;
    in_t xb[RB * W][C];
    bool mb[RB * W];
    out_t yb[RB * W][C];
    #pragma HLS ARRAY_PARTITION variable=xb complete dim=2
    #pragma HLS ARRAY_PARTITION variable=yb complete dim=2
Chunks:
    for (int ch0 = 0; ch0 < CFG::height / RB; ch0++) {
    Read:
        for (int i = 0; i < RB * W; i++) {
            #pragma HLS PIPELINE II=1
            const data_T v = x.read();
            for (int c = 0; c < C; c++)
                xb[i][c] = v[c];
            if (MASKED)
                mb[i] = m.read()[0] != 0;
        }
    Windows:
        for (int lw = 0; lw < (RB / WH) * NWX; lw++) {
            const int wy = ch0 * (RB / WH) + lw / NWX, wx = lw % NWX;
            in_t xw[CFG::N][CFG::C];
            bool keys[CFG::N];
            out_t yw[CFG::N][CFG::C];
            #pragma HLS ARRAY_PARTITION variable=xw complete dim=2
            #pragma HLS ARRAY_PARTITION variable=keys complete
            #pragma HLS ARRAY_PARTITION variable=yw complete dim=2
        Gather:
            for (int t = 0; t < CFG::N; t++) {
                #pragma HLS PIPELINE II=1
                const int r = window_row<CFG>(wy, t) - ch0 * RB, c = window_col<CFG>(wx, t);
                for (int k = 0; k < C; k++)
                    xw[t][k] = xb[r * W + c][k];
                keys[t] = MASKED ? mb[r * W + c] : true;
            }
            attention_window<in_t, out_t, CFG>(xw, keys, yw, wy, wx, q_w, q_b, k_w, k_b, v_w, v_b, p_w, p_b,
                                               rel_bias, exp_table, recip_table);
        Reverse:
            for (int t = 0; t < CFG::N; t++) {
                #pragma HLS PIPELINE II=1
                const int r = window_row<CFG>(wy, t) - ch0 * RB, c = window_col<CFG>(wx, t);
                for (int k = 0; k < C; k++)
                    yb[r * W + c][k] = yw[t][k];
            }
        }
    Write:
        for (int i = 0; i < RB * W; i++) {
            #pragma HLS PIPELINE II=1
            y.write(pack<res_T>(yb[i]));
        }
    }
}

template <class data_T, class res_T, class CFG>
void window_attention_s(hls::stream<data_T> &x, hls::stream<res_T> &y,
                        const typename CFG::q_lin::wc_t q_w[], const typename CFG::q_lin::bc_t q_b[],
                        const typename CFG::k_lin::wc_t k_w[], const typename CFG::k_lin::bc_t k_b[],
                        const typename CFG::v_lin::wc_t v_w[], const typename CFG::v_lin::bc_t v_b[],
                        const typename CFG::p_lin::wc_t p_w[], const typename CFG::p_lin::bc_t p_b[],
                        const typename CFG::rel_bias_code_t rel_bias[],
                        const typename CFG::sm::exp_lut::code_t exp_table[],
                        const typename CFG::sm::recip_lut::code_t recip_table[]) {
    #pragma HLS INLINE off
    no_mask_stream no_mask;
    window_attention_s_body<data_T, no_mask_stream, res_T, CFG, false>(x, no_mask, y, q_w, q_b, k_w, k_b, v_w, v_b,
                                                                       p_w, p_b, rel_bias, exp_table, recip_table);
}

template <class data_T, class mask_T, class res_T, class CFG>
void window_attention_ms(hls::stream<data_T> &x, hls::stream<mask_T> &m, hls::stream<res_T> &y,
                         const typename CFG::q_lin::wc_t q_w[], const typename CFG::q_lin::bc_t q_b[],
                         const typename CFG::k_lin::wc_t k_w[], const typename CFG::k_lin::bc_t k_b[],
                         const typename CFG::v_lin::wc_t v_w[], const typename CFG::v_lin::bc_t v_b[],
                         const typename CFG::p_lin::wc_t p_w[], const typename CFG::p_lin::bc_t p_b[],
                         const typename CFG::rel_bias_code_t rel_bias[],
                         const typename CFG::sm::exp_lut::code_t exp_table[],
                         const typename CFG::sm::recip_lut::code_t recip_table[]) {
    #pragma HLS INLINE off
    window_attention_s_body<data_T, hls::stream<mask_T>, res_T, CFG, true>(x, m, y, q_w, q_b, k_w, k_b, v_w, v_b,
                                                                           p_w, p_b, rel_bias, exp_table, recip_table);
}

// ----- PatchMerging -----------------------------------------------------------------------------------
template <class data_T, class res_T, class CFG>
void patch_merging_s_token(const typename data_T::value_type rb[2][CFG::width][CFG::C], hls::stream<res_T> &y,
                           int j, const typename CFG::lin::wc_t w[], const typename CFG::lin::bc_t b[],
                           const typename CFG::ln::gc_t gamma[], const typename CFG::ln::bc_t beta[],
                           const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE
    typedef typename data_T::value_type in_t;
    const int C = CFG::C;
    in_t cat[4 * CFG::C];
    #pragma HLS ARRAY_PARTITION variable=cat complete
    for (int q = 0; q < 4; q++)
        for (int ch = 0; ch < C; ch++)
            cat[q * C + ch] = rb[q & 1][2 * j + (q >> 1)][ch];
    typename CFG::cat_t n[4 * CFG::C];
    typename res_T::value_type o[CFG::lin::n_out];
    #pragma HLS ARRAY_PARTITION variable=n complete
    #pragma HLS ARRAY_PARTITION variable=o complete
    merge_norm<CFG::has_norm>::template run<in_t, CFG>(cat, n, gamma, beta, rsqrt_table);
    linear<typename CFG::cat_t, typename res_T::value_type, typename CFG::lin>(n, o, w, b);
    y.write(pack<res_T>(o));
}

template <class data_T, class CFG>
void read_two_rows(hls::stream<data_T> &x, typename data_T::value_type rb[2][CFG::width][CFG::C]) {
    #pragma HLS INLINE
Read:
    for (int i = 0; i < 2 * CFG::width; i++) {
        #pragma HLS PIPELINE II=1
        const data_T v = x.read();
        for (int c = 0; c < CFG::C; c++)
            rb[i / CFG::width][i % CFG::width][c] = v[c];
    }
}

template <class data_T, class res_T, class CFG>
void patch_merging_s(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::lin::wc_t w[],
                     const typename CFG::lin::bc_t b[], const typename CFG::ln::gc_t gamma[],
                     const typename CFG::ln::bc_t beta[], const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE off
    #pragma HLS ARRAY_PARTITION variable=b complete
    #pragma HLS ARRAY_PARTITION variable=gamma complete
    #pragma HLS ARRAY_PARTITION variable=beta complete
    #pragma HLS BIND_STORAGE variable=rsqrt_table type=rom_1p
    typename data_T::value_type rb[2][CFG::width][CFG::C];
    #pragma HLS ARRAY_PARTITION variable=rb complete dim=1
    #pragma HLS ARRAY_PARTITION variable=rb cyclic factor=2 dim=2
    #pragma HLS ARRAY_PARTITION variable=rb complete dim=3
Rows:
    for (int i = 0; i < CFG::height / 2; i++) {
        read_two_rows<data_T, CFG>(x, rb);
    Tokens:
        for (int j = 0; j < CFG::width / 2; j++) {
            #pragma HLS PIPELINE II=CFG::reuse
            #pragma HLS ALLOCATION operation instances=mul limit=CFG::mult_limit
            patch_merging_s_token<data_T, res_T, CFG>(rb, y, j, w, b, gamma, beta, rsqrt_table);
        }
    }
}

template <class data_T, class res_T, class CFG>
void patch_merging_rs_s(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::lin::wc_t w[],
                        const typename CFG::lin::bc_t b[], const typename CFG::ln::gc_t gamma[],
                        const typename CFG::ln::bc_t beta[], const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE off
    #pragma HLS BIND_STORAGE variable=gamma type=rom_1p
    #pragma HLS BIND_STORAGE variable=beta type=rom_1p
    #pragma HLS BIND_STORAGE variable=rsqrt_table type=rom_1p
    typename data_T::value_type rb[2][CFG::width][CFG::C];
    #pragma HLS ARRAY_PARTITION variable=rb complete dim=1
    #pragma HLS ARRAY_PARTITION variable=rb cyclic factor=2 dim=2
    #pragma HLS ARRAY_PARTITION variable=rb complete dim=3
Rows:
    for (int i = 0; i < CFG::height / 2; i++) {
        read_two_rows<data_T, CFG>(x, rb);
    Tokens:
        for (int j = 0; j < CFG::width / 2; j++) {
            patch_merging_s_token<data_T, res_T, CFG>(rb, y, j, w, b, gamma, beta, rsqrt_table);
        }
    }
}

// ----- token-wise layers ---------------------------------------------------------------------------------
template <class data_T, class res_T, class CFG>
void mlp_s_token(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::fc1::wc_t w1[],
                 const typename CFG::fc1::bc_t b1[], const typename CFG::fc2::wc_t w2[],
                 const typename CFG::fc2::bc_t b2[], const typename CFG::gelu_lut::code_t gelu_table[]) {
    #pragma HLS INLINE
    typename data_T::value_type xv[CFG::C];
    typename res_T::value_type yv[CFG::C];
    #pragma HLS ARRAY_PARTITION variable=xv complete
    #pragma HLS ARRAY_PARTITION variable=yv complete
    unpack(x.read(), xv);
    mlp_token<typename data_T::value_type, typename res_T::value_type, CFG>(xv, yv, w1, b1, w2, b2, gelu_table);
    y.write(pack<res_T>(yv));
}

template <class data_T, class res_T, class CFG>
void mlp_s(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::fc1::wc_t w1[],
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
        mlp_s_token<data_T, res_T, CFG>(x, y, w1, b1, w2, b2, gelu_table);
    }
}

template <class data_T, class res_T, class CFG>
void mlp_rs_s(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::fc1::wc_t w1[],
              const typename CFG::fc1::bc_t b1[], const typename CFG::fc2::wc_t w2[],
              const typename CFG::fc2::bc_t b2[], const typename CFG::gelu_lut::code_t gelu_table[]) {
    #pragma HLS INLINE off
    #pragma HLS BIND_STORAGE variable=gelu_table type=rom_1p
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        mlp_s_token<data_T, res_T, CFG>(x, y, w1, b1, w2, b2, gelu_table);
    }
}

template <class data_T, class res_T, class CFG>
void layernorm_s_token(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::ln::gc_t gamma[],
                       const typename CFG::ln::bc_t beta[], const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE
    typename data_T::value_type xv[CFG::ln::C];
    typename res_T::value_type yv[CFG::ln::C];
    #pragma HLS ARRAY_PARTITION variable=xv complete
    #pragma HLS ARRAY_PARTITION variable=yv complete
    unpack(x.read(), xv);
    layernorm_token<typename data_T::value_type, typename res_T::value_type, typename CFG::ln>(xv, yv, gamma, beta,
                                                                                             rsqrt_table);
    y.write(pack<res_T>(yv));
}

template <class data_T, class res_T, class CFG>
void layernorm_s(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::ln::gc_t gamma[],
                 const typename CFG::ln::bc_t beta[], const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE off
    #pragma HLS ARRAY_PARTITION variable=gamma complete
    #pragma HLS ARRAY_PARTITION variable=beta complete
    #pragma HLS BIND_STORAGE variable=rsqrt_table type=rom_1p
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        #pragma HLS PIPELINE II=CFG::reuse
        #pragma HLS ALLOCATION operation instances=mul limit=CFG::mult_limit
        layernorm_s_token<data_T, res_T, CFG>(x, y, gamma, beta, rsqrt_table);
    }
}

template <class data_T, class res_T, class CFG>
void layernorm_rs_s(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::ln::gc_t gamma[],
                    const typename CFG::ln::bc_t beta[], const typename CFG::ln::rsqrt_lut::code_t rsqrt_table[]) {
    #pragma HLS INLINE off
    #pragma HLS BIND_STORAGE variable=gamma type=rom_1p
    #pragma HLS BIND_STORAGE variable=beta type=rom_1p
    #pragma HLS BIND_STORAGE variable=rsqrt_table type=rom_1p
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        layernorm_s_token<data_T, res_T, CFG>(x, y, gamma, beta, rsqrt_table);
    }
}

template <class data_T, class res_T, class CFG>
void dense_s_row(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::lin::wc_t w[],
                 const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE
    typename data_T::value_type xv[CFG::lin::n_in];
    typename res_T::value_type yv[CFG::lin::n_out];
    #pragma HLS ARRAY_PARTITION variable=xv complete
    #pragma HLS ARRAY_PARTITION variable=yv complete
    unpack(x.read(), xv);
    dense_row<typename data_T::value_type, typename res_T::value_type, CFG>(xv, yv, w, b);
    y.write(pack<res_T>(yv));
}

template <class data_T, class res_T, class CFG>
void dense_s(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::lin::wc_t w[],
             const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE off
    #pragma HLS ARRAY_PARTITION variable=b complete
Rows:
    for (int r = 0; r < CFG::rows; r++) {
        #pragma HLS PIPELINE II=CFG::reuse
        #pragma HLS ALLOCATION operation instances=mul limit=CFG::mult_limit
        dense_s_row<data_T, res_T, CFG>(x, y, w, b);
    }
}

template <class data_T, class res_T, class CFG>
void dense_rs_s(hls::stream<data_T> &x, hls::stream<res_T> &y, const typename CFG::lin::wc_t w[],
                const typename CFG::lin::bc_t b[]) {
    #pragma HLS INLINE off
Rows:
    for (int r = 0; r < CFG::rows; r++) {
        dense_s_row<data_T, res_T, CFG>(x, y, w, b);
    }
}

// Residual add of two token streams (the skip path arrives through a FIFO sized from the schedule).
template <class a_T, class b_T, class res_T, class CFG>
void add_s(hls::stream<a_T> &a, hls::stream<b_T> &b, hls::stream<res_T> &y) {
    #pragma HLS INLINE off
Tokens:
    for (int t = 0; t < CFG::n / CFG::C; t++) {
        #pragma HLS PIPELINE II=1
        const a_T av = a.read();
        const b_T bv = b.read();
        res_T r;
        for (int c = 0; c < CFG::C; c++) {
            typename CFG::sum_t s = av[c];
            s += bv[c];
            r[c] = requant<typename res_T::value_type, typename out_chan_of<CFG>::type>(s, c);
        }
        y.write(r);
    }
}

template <class data_T, class res_T, class CFG> void pool_s(hls::stream<data_T> &x, hls::stream<res_T> &y) {
    #pragma HLS INLINE off
    const typename CFG::inv_t inv = from_code<typename CFG::inv_t>(CFG::inv_code);
    typename CFG::sum_t s[CFG::C];
    #pragma HLS ARRAY_PARTITION variable=s complete
    for (int c = 0; c < CFG::C; c++) {
        #pragma HLS UNROLL
        s[c] = 0;
    }
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        #pragma HLS PIPELINE II=1
        const data_T v = x.read();
        for (int c = 0; c < CFG::C; c++)
            s[c] += v[c];
    }
    res_T r;
    for (int c = 0; c < CFG::C; c++) {
        #pragma HLS UNROLL
        r[c] = requant<typename res_T::value_type, typename out_chan_of<CFG>::type>(s[c] * inv, c);
    }
    y.write(r);
}

// Masked pool (see pool_m): the mask stream carries one 1-channel token per map position.
template <class data_T, class mask_T, class res_T, class CFG>
void pool_ms(hls::stream<data_T> &x, hls::stream<mask_T> &m, hls::stream<res_T> &y,
             const typename CFG::inv_code_t inv_table[CFG::tokens + 1]) {
    #pragma HLS INLINE off
    typename CFG::sum_t s[CFG::C];
    #pragma HLS ARRAY_PARTITION variable=s complete
    typename CFG::count_t n = 0;
    for (int c = 0; c < CFG::C; c++) {
        #pragma HLS UNROLL
        s[c] = 0;
    }
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        #pragma HLS PIPELINE II=1
        const data_T v = x.read();
        const bool real = m.read()[0] != 0;
        if (real) {
            n++;
            for (int c = 0; c < CFG::C; c++)
                s[c] += v[c];
        }
    }
    const typename CFG::inv_t inv = from_code<typename CFG::inv_t>(inv_table[n]);
    res_T r;
    for (int c = 0; c < CFG::C; c++) {
        #pragma HLS UNROLL
        r[c] = requant<typename res_T::value_type, typename out_chan_of<CFG>::type>(s[c] * inv, c);
    }
    y.write(r);
}

// TokenMask (see token_mask): one token in, one 1-channel mask token out.
template <class data_T, class res_T, class CFG> void token_mask_s(hls::stream<data_T> &x, hls::stream<res_T> &y) {
    #pragma HLS INLINE off
Tokens:
    for (int t = 0; t < CFG::tokens; t++) {
        #pragma HLS PIPELINE II=1
        const data_T v = x.read();
        bool any = false;
        for (int c = 0; c < CFG::C; c++)
            any = any || v[c] != 0;
        res_T r;
        r[0] = from_code<typename res_T::value_type>(any ? 1 : 0);
        y.write(r);
    }
}

} // namespace swin

#endif
