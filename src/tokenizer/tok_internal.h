/* Internals shared by the tokenizer's modules. */
#ifndef MELODIST_TOK_INTERNAL_H
#define MELODIST_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "melodist/tokenizer.h"

/* Writes the message into err (when there is one) for the tokenizer's error returns (load.c). */
void tok_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------- the model as parsed (model_proto.c) */

typedef struct tok_span {
    const uint8_t *p;
    size_t len;
} tok_span;

typedef struct tok_proto_piece {
    tok_span text;
    float score;
    int type;
} tok_proto_piece;

/* The fields of ModelProto that encoding and decoding depend on, pointing into the serialised bytes. */
typedef struct tok_proto {
    tok_proto_piece *pieces;
    size_t n_pieces;
    int model_type; /* 1 unigram, 2 bpe, 3 word, 4 char */
    bool byte_fallback, treat_whitespace_as_suffix;
    tok_span unk_piece, bos_piece, eos_piece, pad_piece, unk_surface;
    tok_span charsmap;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    bool has_denormalizer_rules;
} tok_proto;

/* Parse a serialised ModelProto; 0 or -1 with the reason in err. Free pieces with free(). */
int tok_proto_parse(const uint8_t *data, size_t size, tok_proto *m, char *err, size_t errlen);

/* ---------------------------------------------------------------- the loaded tokenizer (load.c) */

/* Open-addressing table from piece text to id. A slot keeps the text's hash so that probing past other
 * pieces rarely touches their text. */
typedef struct tok_slot {
    uint32_t hash;
    int id; /* -1: empty */
} tok_slot;

typedef struct tok_table {
    tok_slot *slots;
    uint32_t mask;
} tok_table;

/* Byte trie of the user-defined symbols for longest-prefix matching. */
typedef struct tok_trie_node {
    int child, sibling; /* first child, next sibling (-1: none) */
    uint8_t byte;
    bool terminal;
} tok_trie_node;

/* nmt_nfkc-style precompiled charsmap: a Darts-clone double array whose leaf values index NUL-terminated
 * replacement strings. */
typedef struct tok_charsmap {
    uint32_t *units;
    size_t n_units;
    char *strings; /* NUL-terminated copy (one extra NUL at the end) */
    size_t strings_len;
} tok_charsmap;

struct mt_tokenizer {
    int n;
    char *blob;       /* all piece texts, each followed by a NUL */
    size_t *offset;   /* piece i is blob + offset[i], length len[i] */
    uint32_t *len;
    float *score;
    uint8_t *type;
    tok_table normal;   /* NORMAL, USER_DEFINED, UNUSED pieces: what BPE may produce */
    tok_table reserved; /* CONTROL, UNKNOWN, BYTE pieces */
    tok_trie_node *trie;
    int n_trie;
    bool ud_first_byte[256]; /* bytes that start a user-defined symbol */
    int byte_id[256]; /* id of <0xXX>, unk when missing */
    int unk, bos, eos, pad;
    bool byte_fallback, treat_whitespace_as_suffix;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    char *unk_surface;
    size_t unk_surface_len;
    tok_charsmap charsmap; /* n_units == 0: identity */
    int special_id[9];     /* ids of tok_special_names (-1 absent) */
};

extern const char *const tok_special_names[9];

int tok_table_find(const mt_tokenizer *t, const tok_table *tab, const char *s, size_t len);
/* SentencePiece's PieceToId: control/unknown/byte pieces first, then the others, else unk. */
int tok_spm_piece_to_id(const mt_tokenizer *t, const char *s, size_t len);
/* Length of the longest user-defined symbol that prefixes s, 0 if none. */
size_t tok_match_user_defined(const mt_tokenizer *t, const char *s, size_t len);

/* ---------------------------------------------------------------- UTF-8 as SentencePiece reads it (utf8.c) */

/* SentencePiece's IsValidDecodeUTF8: true for a well-formed character (the U+FFFD sequence included);
 * *mblen receives its length, or 1 when malformed. */
bool tok_utf8_valid_prefix(const char *s, size_t len, size_t *mblen);
/* Length of the character from its lead byte alone (SentencePiece's OneCharLen), capped at len. */
size_t tok_utf8_char_len(const char *s, size_t len);

/* ---------------------------------------------------------------- normaliser (normalize.c) */

/* A growable byte buffer. */
typedef struct tok_buf {
    char *p;
    size_t n, cap;
} tok_buf;

int tok_buf_put(tok_buf *b, const char *s, size_t len); /* 0 or -1 (out of memory) */

/* Normalise text as SentencePiece's Normalizer::Normalize; appends to *out (cleared first). */
int tok_normalize(const mt_tokenizer *t, const char *text, size_t len, tok_buf *out);

#endif
