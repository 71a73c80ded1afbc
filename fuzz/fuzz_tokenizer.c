/* libFuzzer target for the tokenizer: the input is loaded as a tokenizer.model (and, when it loads, used to
 * encode and decode a fixed text), then encoded as text with a valid model and its bytes decoded as ids,
 * one-shot and streaming. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/tokenizer.h"
#include "../tests/tokenizer/tiny_model.h"

static void encode_decode(const mt_tokenizer *tok, const char *text, size_t len)
{
    tok_ids ids = {0};
    if (tok_encode(tok, text, len, TOK_ADD_BOS | TOK_PARSE_SPECIAL, &ids) == 0) {
        char err[128];
        free(tok_decode(tok, ids.v, ids.n, 0, NULL, err, sizeof err));
        free(tok_decode(tok, ids.v, ids.n, TOK_SPECIAL_NAMES, NULL, err, sizeof err));
    }
    tok_ids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mt_tokenizer *valid;
    char err[256];
    if (!valid) {
        tm_buf m = tiny_model(1);
        valid = tok_load_buffer(m.p, m.n, err, sizeof err);
        free(m.p);
        if (!valid)
            abort();
    }

    mt_tokenizer *tok = tok_load_buffer(data, size, err, sizeof err);
    if (tok) {
        static const char text[] = "X:1\nK:G\n|: GABc dedB | \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x8E\xB5 <|im_end|>\xFF";
        encode_decode(tok, text, sizeof text - 1);
        tok_free(tok);
    }

    encode_decode(valid, (const char *)data, size);

    int n = tok_vocab_size(valid);
    tok_stream *s = tok_stream_new(valid, size && data[0] & 1 ? TOK_SKIP_SPECIAL : 0);
    const char *piece;
    size_t plen;
    for (size_t i = 0; s && i < size; i++)
        tok_stream_push(s, data[i] * 7 % n, &piece, &plen);
    if (s)
        tok_stream_finish(s, &piece, &plen);
    tok_stream_free(s);
    return 0;
}
