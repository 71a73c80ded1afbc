/* NF4 4-bit weights as bitsandbytes stores them for QLoRA (docs/finetune.md, notes §4.1-4.2):
 * the 16-value NormalFloat code book, blocks of NF4_BLOCK consecutive values (row-major flattening) each
 * scaled by its absmax, two codes per byte (first value in the high nibble). With double quantisation the
 * f32 block scales are themselves stored as 8-bit codes of bitsandbytes' dynamic map: the scales minus their
 * mean, in blocks of NF4_SCALE_BLOCK with one f32 absmax each. */
#ifndef MELODIST_NF4_H
#define MELODIST_NF4_H

#include <stddef.h>
#include <stdint.h>

#define NF4_BLOCK 64
#define NF4_SCALE_BLOCK 256

/* bitsandbytes get_4bit_type("nf4"), ascending. */
extern const float nf4_code[16];
/* bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), ascending, 256 values;
 * and create_dynamic_map(signed=False), which 8-bit Adam uses for its second moment. */
const float *nf4_dynamic_map(void);
const float *nf4_dynamic_map_unsigned(void);
/* Index of the value of an ascending 256-value map nearest to x (x within the map's range). */
uint8_t nf4_nearest_code(const float *map, float x);

struct nf4_tensor {
    size_t n, n_blocks;
    uint8_t *q;          /* (n + 1) / 2 bytes */
    float *absmax;       /* [n_blocks], without double quantisation */
    uint8_t *qabsmax;    /* [n_blocks] dynamic-map codes of absmax - offset (double quantisation) */
    float *absmax2;      /* [ceil(n_blocks / NF4_SCALE_BLOCK)] */
    float offset;        /* mean of the block absmaxes */
};

/* Quantises x[0..n). Returns 0, or -1 when out of memory. */
int nf4_quantize(struct nf4_tensor *t, const float *x, size_t n, int double_quant);
/* The same for a matrix of any stored type (row-major), converted NF4_BLOCK rows at a time instead of whole. */
struct nn_matrix;
int nf4_quantize_matrix(struct nf4_tensor *t, const struct nn_matrix *w, int double_quant);
void nf4_free(struct nf4_tensor *t);
size_t nf4_bytes(const struct nf4_tensor *t);
/* The f32 scale of block b (de-quantised first when double-quantised). */
float nf4_block_scale(const struct nf4_tensor *t, size_t b);
/* out[0..count) = the values first..first+count-1. */
void nf4_dequantize(const struct nf4_tensor *t, size_t first, size_t count, float *out);

#endif
