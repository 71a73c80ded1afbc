/* libFuzzer target for the copy prior: the input, cut at its first NUL, is a user message (whose quotes
 * chat_copy_source reads) and a plugin result (whose values it reads; abc_tools_answer_states judges the input as
 * an answer stating it). The source built must be well formed (generate.h), and the sampler then runs on it, the
 * history drawn from the input's bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc_tools.h"
#include "melodist/chat.h"
#include "../tests/tokenizer/tiny_model.h"

/* Groups after -1, variants after -2, token ids of the vocabulary: anything else is a bug. */
static void check_source(const tok_ids *src, int vocab)
{
    if (src->n && src->v[0] != -1)
        abort();
    for (size_t i = 0; i < src->n; i++)
        if (src->v[i] < -2 || src->v[i] >= vocab)
            abort();
}

static void sample_on(const tok_ids *src, int vocab, const uint8_t *data, size_t size)
{
    struct gen_params p;
    gen_params_default(&p);
    p.temperature = 0;
    p.copy_source = src->v;
    p.n_copy_source = (int)src->n;
    struct gen_sampler *s = gen_sampler_new(&p, vocab);
    float *logits = calloc((size_t)vocab, sizeof *logits);
    int history[64];
    int n = 0;
    for (size_t i = 0; s && logits && i < size && n < 64; i++) {
        /* the history either follows the source (a copy going on) or takes the input's byte */
        int t = data[i] & 1 && src->n ? src->v[(data[i] >> 1) % src->n] : data[i] % vocab;
        history[n++] = t < 0 ? 0 : t;
        int next = gen_sample(s, logits, history, n);
        if (next < 0 || next >= vocab)
            abort();
    }
    free(logits);
    gen_sampler_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mt_tokenizer *tok;
    static struct model *m;
    static struct chat_session *s;
    char err[256];
    if (!s) {
        tm_buf b = tiny_model(1);
        tok = tok_load_buffer(b.p, b.n, err, sizeof err);
        free(b.p);
        struct model_config c = {.dim = 16, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1, .head_dim = 8,
                                 .hidden_dim = 32, .vocab_size = tok ? tok_vocab_size(tok) : 0,
                                 .max_position_embeddings = 64, .rope_theta = 10000, .rms_norm_eps = 1e-5f};
        m = tok ? model_new_random(&c, NN_F32, 1, 0.5f) : NULL;
        s = m ? chat_session_new(m, tok, NULL, 64, err, sizeof err) : NULL;
        if (!s)
            abort();
    }
    int vocab = tok_vocab_size(tok);
    const char *text = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t cut = nul ? (size_t)(nul - data) : size;
    tok_ids src = {0};
    chat_session_reset(s);
    if (chat_session_add(s, CHAT_USER, text, cut) || chat_copy_source(s, &src))
        abort();
    check_source(&src, vocab);
    sample_on(&src, vocab, data, size);
    if (nul) {
        src.n = 0;
        if (chat_session_add(s, CHAT_ENVIRONMENT, text + cut + 1, size - cut - 1) || chat_copy_source(s, &src))
            abort();
        check_source(&src, vocab);
        sample_on(&src, vocab, data, size);
        char *result = strndup(text + cut + 1, size - cut - 1), *question = strndup(text, cut);
        if (!result || !question)
            abort();
        abc_tools_answer_states(result, question);
        abc_tools_answer_states(result, result);
        free(result);
        free(question);
    }
    tok_ids_free(&src);
    return 0;
}
