/* melodist convert: export an InternLM2 checkpoint as GGUF for llama.cpp / ollama. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gen_options.h"
#include "melodist/chat.h"
#include "melodist/gguf.h"
#include "melodist/tokenizer.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: melodist convert -m MODEL_DIR --to gguf -o OUT.gguf [options]\n"
            "  -m MODEL_DIR            config.json + safetensors (+ tokenizer.model, or give --tokenizer)\n"
            "  --to gguf               output format (GGUF v3, llama.cpp's internlm2 architecture)\n"
            "  -o OUT.gguf             output file (written atomically)\n"
            "  --type T                f32, f16, bf16, q8_0 or q4_0 (default: the checkpoint's format)\n"
            "  --tokenizer PATH        tokenizer.model to use instead of MODEL_DIR/tokenizer.model\n"
            "The tokenizer, its chat tokens and the InternLM2 chat template go into the file; <|im_end|> is\n"
            "the end-of-sequence token when the tokenizer has it (as llama.cpp's converter does for chat models).\n"
            "llama.cpp has no dynamic NTK RoPE: such models match within max_position_embeddings.\n");
}

static int parse_type(const char *s, enum gguf_ttype *t)
{
    static const enum gguf_ttype types[] = {GGUF_F32, GGUF_F16, GGUF_BF16, GGUF_Q8_0, GGUF_Q4_0};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, gguf_ttype_name(types[i]))) {
            *t = types[i];
            return 0;
        }
    return -1;
}

static enum gguf_ttype type_of(enum nn_dtype d)
{
    switch (d) {
    case NN_F16: return GGUF_F16;
    case NN_BF16: return GGUF_BF16;
    case NN_Q8: return GGUF_Q8_0;
    case NN_Q4: return GGUF_Q4_0;
    default: return GGUF_F32;
    }
}

struct vocab_store {
    const char **tokens;
    size_t *lens;
    float *scores;
    int32_t *types;
    char (*pad_names)[24];
};

static void vocab_free(struct vocab_store *v)
{
    free(v->tokens);
    free(v->lens);
    free(v->scores);
    free(v->types);
    free(v->pad_names);
}

/* The vocabulary as llama.cpp's InternLM2 converter writes it (notes 1.6): "\0" -> U+1F409 (C strings),
 * [UNUSED...] pieces unused, the chat special tokens by name as control tokens with score -1000, and the
 * rows beyond the tokenizer's pieces as unused [PADn] tokens. */
static int build_vocab(const mt_tokenizer *tok, const struct model_config *c, struct vocab_store *s,
                       struct gguf_vocab *v)
{
    int n = c->vocab_size, nt = tok_vocab_size(tok);
    s->tokens = calloc((size_t)n, sizeof *s->tokens);
    s->lens = calloc((size_t)n, sizeof *s->lens);
    s->scores = calloc((size_t)n, sizeof *s->scores);
    s->types = calloc((size_t)n, sizeof *s->types);
    s->pad_names = calloc((size_t)(n - nt + 1), sizeof *s->pad_names);
    if (!s->tokens || !s->lens || !s->scores || !s->types || !s->pad_names)
        return -1;
    for (int i = 0; i < n; i++) {
        const char *name = i < nt ? tok_special_name(tok, i) : NULL;
        if (name) {
            s->tokens[i] = name;
            s->lens[i] = strlen(name);
            s->scores[i] = -1000.0f;
            s->types[i] = TOK_CONTROL;
        } else if (i < nt) {
            s->tokens[i] = tok_piece(tok, i, &s->lens[i]);
            s->scores[i] = tok_piece_score(tok, i);
            s->types[i] = tok_piece_kind(tok, i);
            if (s->lens[i] == 1 && !s->tokens[i][0]) {
                s->tokens[i] = "\xF0\x9F\x90\x89";
                s->lens[i] = 4;
            }
            if (s->lens[i] >= 7 && !memcmp(s->tokens[i], "[UNUSED", 7))
                s->types[i] = TOK_UNUSED;
        } else {
            char *pad = s->pad_names[i - nt];
            s->lens[i] = (size_t)snprintf(pad, sizeof s->pad_names[0], "[PAD%d]", i);
            s->tokens[i] = pad;
            s->scores[i] = -1000.0f;
            s->types[i] = TOK_UNUSED;
        }
    }
    int im_end = tok_special_id(tok, "<|im_end|>");
    *v = (struct gguf_vocab){
        .n = n, .tokens = s->tokens, .lens = s->lens, .scores = s->scores, .types = s->types,
        .bos_id = tok_bos_id(tok), .eos_id = im_end >= 0 ? im_end : tok_eos_id(tok), .unk_id = tok_unk_id(tok),
        .pad_id = c->pad_token_id >= 0 && c->pad_token_id < n ? c->pad_token_id : tok_eos_id(tok),
        .add_space_prefix = tok_add_dummy_prefix(tok),
        .chat_template = im_end >= 0 ? CHAT_TEMPLATE_JINJA : NULL,
    };
    return 0;
}

int cmd_convert(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL, *to = NULL, *tok_path = NULL, *type_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "melodist convert: option %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m"))
            dir = v;
        else if (!strcmp(a, "-o"))
            out = v;
        else if (!strcmp(a, "--to"))
            to = v;
        else if (!strcmp(a, "--type"))
            type_arg = v;
        else if (!strcmp(a, "--tokenizer"))
            tok_path = v;
        else {
            fprintf(stderr, "melodist convert: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!dir || !out || !to) {
        fprintf(stderr, "melodist convert: need -m MODEL_DIR, --to gguf and -o OUT.gguf\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(to, "gguf")) {
        fprintf(stderr, "melodist convert: unknown output format '%s' (only gguf)\n", to);
        return 2;
    }
    enum gguf_ttype type = GGUF_F32;
    if (type_arg && parse_type(type_arg, &type)) {
        fprintf(stderr, "melodist convert: unknown --type '%s' (f32, f16, bf16, q8_0, q4_0)\n", type_arg);
        return 2;
    }
    mt_tokenizer *tok;
    struct model *m;
    if (cli_load_model("convert", dir, tok_path, NULL, &tok, &m, NULL))
        return 1;
    char err[1024];
    if (!type_arg)
        type = type_of(model_dtype(m));
    struct vocab_store store = {0};
    struct gguf_vocab vocab;
    int rc = 1;
    if (tok_vocab_size(tok) > m->config.vocab_size)
        fprintf(stderr, "melodist convert: the tokenizer has %d pieces but the model only %d embeddings: they do "
                        "not belong together\n", tok_vocab_size(tok), m->config.vocab_size);
    else if (build_vocab(tok, &m->config, &store, &vocab))
        fprintf(stderr, "melodist convert: out of memory\n");
    else if (gguf_export_internlm2(m, &vocab, type, out, err, sizeof err))
        fprintf(stderr, "melodist convert: %s\n", err);
    else {
        if (m->config.rope_scaling == ROPE_SCALING_DYNAMIC)
            fprintf(stderr, "melodist convert: note: dynamic NTK RoPE is not in GGUF; llama.cpp matches this "
                            "model up to %d tokens\n", m->config.max_position_embeddings);
        fprintf(stderr, "melodist convert: wrote %s (%s, %d tensors, %d tokens)\n", out, gguf_ttype_name(type),
                m->config.n_layers * 9 + 3, vocab.n);
        rc = 0;
    }
    vocab_free(&store);
    model_free(m);
    tok_free(tok);
    return rc;
}
