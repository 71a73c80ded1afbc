/* Small SentencePiece models (serialised ModelProto) built in memory, for the tokenizer tests and the fuzz
 * target: a protobuf writer plus one BPE model with byte fallback, two user-defined chat tokens, a few
 * merges over "abc", "中文" and U+2581. Header-only (static functions) so both can include it. */
#ifndef MELODIST_TESTS_TINY_MODEL_H
#define MELODIST_TESTS_TINY_MODEL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tm_buf {
    unsigned char *p;
    size_t n, cap;
} tm_buf;

static void tm_put(tm_buf *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void tm_varint(tm_buf *b, uint64_t v)
{
    do {
        unsigned char c = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v)
            c |= 0x80;
        tm_put(b, &c, 1);
    } while (v);
}

static void tm_key(tm_buf *b, unsigned field, unsigned wire)
{
    tm_varint(b, (uint64_t)field << 3 | wire);
}

static void tm_bytes(tm_buf *b, unsigned field, const void *s, size_t n)
{
    tm_key(b, field, 2);
    tm_varint(b, n);
    tm_put(b, s, n);
}

static void tm_int(tm_buf *b, unsigned field, uint64_t v)
{
    tm_key(b, field, 0);
    tm_varint(b, v);
}

/* Appends ModelProto.pieces entry (field 1): piece text, score, type. */
static void tm_piece(tm_buf *model, const char *text, float score, int type)
{
    tm_buf p = {0};
    tm_bytes(&p, 1, text, strlen(text));
    uint32_t bits;
    memcpy(&bits, &score, 4);
    unsigned char le[4] = {(unsigned char)bits, (unsigned char)(bits >> 8), (unsigned char)(bits >> 16),
                           (unsigned char)(bits >> 24)};
    tm_key(&p, 2, 5);
    tm_put(&p, le, 4);
    tm_int(&p, 3, (uint64_t)type);
    tm_bytes(model, 1, p.p, p.n);
    free(p.p);
}

/* The pieces: <unk> <s> </s> <|im_start|> <|im_end|> <0x00>..<0xFF>, then the merges. */
static void tm_standard_pieces(tm_buf *m)
{
    tm_piece(m, "<unk>", 0, 2);
    tm_piece(m, "<s>", 0, 3);
    tm_piece(m, "</s>", 0, 3);
    tm_piece(m, "<|im_start|>", 0, 4);
    tm_piece(m, "<|im_end|>", 0, 4);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        tm_piece(m, name, 0, 6);
    }
    static const char *normal[] = {"\xE2\x96\x81", "a", "b", "c", "ab", "bc", "abc", "\xE2\x96\x81" "a",
                                   "\xE2\x96\x81" "ab", "\xE4\xB8\xAD", "\xE6\x96\x87", "\xE4\xB8\xAD\xE6\x96\x87"};
    for (int i = 0; i < (int)(sizeof normal / sizeof normal[0]); i++)
        tm_piece(m, normal[i], (float)-i, 1);
}

/* trainer_spec (field 2): model_type, byte_fallback. */
static void tm_trainer_spec(tm_buf *m, int model_type, int byte_fallback)
{
    tm_buf t = {0};
    tm_int(&t, 3, (uint64_t)model_type);
    tm_int(&t, 35, (uint64_t)byte_fallback);
    tm_bytes(m, 2, t.p, t.n);
    free(t.p);
}

/* normalizer_spec (field 3): identity, dummy prefix as given, no whitespace removal. */
static void tm_normalizer_spec(tm_buf *m, int add_dummy_prefix)
{
    tm_buf n = {0};
    tm_bytes(&n, 1, "identity", 8);
    tm_int(&n, 3, (uint64_t)add_dummy_prefix);
    tm_int(&n, 4, 0);
    tm_bytes(m, 3, n.p, n.n);
    free(n.p);
}

/* The valid tiny model; free .p. */
static tm_buf tiny_model(int add_dummy_prefix)
{
    tm_buf m = {0};
    tm_standard_pieces(&m);
    tm_trainer_spec(&m, 2, 1);
    tm_normalizer_spec(&m, add_dummy_prefix);
    return m;
}

#endif
