/* SentencePiece-compatible BPE tokenizer (the tokenizer.model that InternLM2 ships).
 *
 * Loads a SentencePiece ModelProto (protobuf) and encodes/decodes exactly as SentencePiece 0.1.97
 * (spm_encode / spm_decode) does for BPE models: the model's normaliser (identity, or a precompiled
 * charsmap such as spm_train's default nmt_nfkc), add_dummy_prefix / remove_extra_whitespaces /
 * escape_whitespaces, user-defined symbols matched first, BPE merges by piece score (ties: leftmost pair),
 * byte fallback (<0xXX> pieces) for characters outside the vocabulary.
 *
 * On top of SentencePiece, the chat special tokens of InternLM2's Hugging Face tokenizer (<s>, </s>, <unk>,
 * <|im_start|>, <|im_end|>, <|action_start|>, <|action_end|>, <|interpreter|>, <|plugin|>) can be recognised
 * in text (TOK_PARSE_SPECIAL) and written back by name when decoding (TOK_SPECIAL_NAMES). A name resolves to
 * the piece of that text when the model has one (models trained with them as user-defined symbols), else to
 * InternLM2's fixed ids (92538..92543) when those hold InternLM2's [UNUSED_TOKEN_141..146] placeholders.
 *
 * Ownership: tok_load* returns a tokenizer freed with tok_free; it is read-only afterwards, so one tokenizer
 * may encode and decode from several threads at once. Nothing here prints or exits. */
#ifndef MELODIST_TOKENIZER_H
#define MELODIST_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mt_tokenizer mt_tokenizer;

/* Piece types, numbered as in sentencepiece_model.proto. */
typedef enum {
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER_DEFINED = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6,
} tok_piece_type;

/* Encode flags. */
enum {
    TOK_ADD_BOS = 1u << 0,       /* prepend the BOS id (as InternLM2's HF tokenizer does by default) */
    TOK_ADD_EOS = 1u << 1,       /* append the EOS id */
    TOK_PARSE_SPECIAL = 1u << 2, /* map the chat special tokens' names in the text to their ids */
};

/* Decode flags (none: exactly spm_decode). */
enum {
    TOK_SPECIAL_NAMES = 1u << 0, /* write the chat special tokens as their names, e.g. "<|im_end|>" */
    TOK_SKIP_SPECIAL = 1u << 1,  /* write nothing for the chat special tokens and control pieces */
};

/* A growable array of token ids; zero-initialise, release with tok_ids_free. */
typedef struct tok_ids {
    int *v;
    size_t n, cap;
} tok_ids;

void tok_ids_free(tok_ids *ids);

/* Load `path`: a tokenizer.model file, or a directory holding one. NULL on failure, with the reason in err. */
mt_tokenizer *tok_load(const char *path, char *err, size_t errlen);
/* The same from a serialised ModelProto in memory (the bytes are copied). */
mt_tokenizer *tok_load_buffer(const void *data, size_t size, char *err, size_t errlen);
void tok_free(mt_tokenizer *tok);

int tok_vocab_size(const mt_tokenizer *tok);
/* Special ids as SentencePiece reports them (the trainer_spec pieces <unk>, <s>, </s>, <pad>); -1 if absent. */
int tok_unk_id(const mt_tokenizer *tok);
int tok_bos_id(const mt_tokenizer *tok);
int tok_eos_id(const mt_tokenizer *tok);
int tok_pad_id(const mt_tokenizer *tok);
/* Normaliser settings, for exporters (e.g. GGUF's add_space_prefix). */
bool tok_add_dummy_prefix(const mt_tokenizer *tok);

/* Piece text of `id` (may contain NUL bytes: its length goes to *len when len is non-NULL); NULL if out of
 * range. Valid until tok_free. */
const char *tok_piece(const mt_tokenizer *tok, int id, size_t *len);
tok_piece_type tok_piece_kind(const mt_tokenizer *tok, int id); /* 0 if out of range */
float tok_piece_score(const mt_tokenizer *tok, int id);         /* 0 if out of range */
/* Id of the piece with exactly this text, or -1 (SentencePiece's PieceToId would answer unk_id). */
int tok_piece_id(const mt_tokenizer *tok, const char *piece, size_t len);

/* Id of a chat special token by name ("<|im_end|>", "<s>", ...), or -1 if this model has none. */
int tok_special_id(const mt_tokenizer *tok, const char *name);
/* Name of the chat special token with this id, or NULL. */
const char *tok_special_name(const mt_tokenizer *tok, int id);

/* Encode `len` bytes of `text` (any bytes: invalid UTF-8 is handled as SentencePiece does) and append the
 * ids to *out. Returns 0, or -1 when out of memory or the normalised text exceeds 2 GiB (*out keeps what it
 * had). */
int tok_encode(const mt_tokenizer *tok, const char *text, size_t len, unsigned flags, tok_ids *out);

/* The same, reporting each token with its piece text as spm_encode --output_format=piece prints it (for a
 * run of unknown characters in a model without byte fallback: the characters). `piece` is valid only during
 * the call. */
typedef void (*tok_emit_fn)(void *ctx, int id, const char *piece, size_t len);
int tok_encode_each(const mt_tokenizer *tok, const char *text, size_t len, unsigned flags, tok_emit_fn emit,
                    void *ctx);

/* Decode ids to text, as spm_decode does (byte pieces reassembled into UTF-8, each invalid byte -> U+FFFD,
 * control pieces -> nothing, U+2581 -> space, the leading space of a dummy prefix removed). Returns a
 * malloc'd NUL-terminated string (its length, which may include NUL bytes, in *len when len is non-NULL),
 * or NULL with the reason in err (an id out of range, out of memory). */
char *tok_decode(const mt_tokenizer *tok, const int *ids, size_t n, unsigned flags, size_t *len, char *err,
                 size_t errlen);

/* Streaming decoder: push ids one at a time and get back only complete UTF-8; the concatenation of all
 * returned text (finish included) equals tok_decode of the same ids. */
typedef struct tok_stream tok_stream;

tok_stream *tok_stream_new(const mt_tokenizer *tok, unsigned decode_flags); /* NULL when out of memory */
/* Push one id; *text and *len receive the text it completes (valid until the next call). Returns 0, or -1 for
 * an id out of range (nothing is consumed) or out of memory. */
int tok_stream_push(tok_stream *s, int id, const char **text, size_t *len);
/* End of the sequence: returns the text held back (an unfinished UTF-8 sequence decodes to U+FFFD per byte)
 * and resets the stream for a new sequence. */
int tok_stream_finish(tok_stream *s, const char **text, size_t *len);
void tok_stream_free(tok_stream *s);

#endif
