/* Decoding, as SentencePieceProcessor::Decode: control pieces give nothing, <unk> its surface (" ⁇ "),
 * other pieces their text with U+2581 -> ' ' (the first piece loses one leading U+2581 when the model adds a
 * dummy prefix or removes extra whitespace; see put_token for exactly when); runs of byte pieces are reassembled and read one UTF-8
 * character at a time, each malformed byte giving U+FFFD.
 *
 * Everything goes through the streaming decoder, which holds back a byte run only while its first
 * character is still incomplete, so the streamed text and the one-shot text are the same by construction. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static const char REPLACEMENT[] = "\xEF\xBF\xBD";

struct tok_stream {
    const mt_tokenizer *t;
    unsigned flags;
    unsigned char pending[4]; /* bytes of a byte-piece run not yet decoded */
    size_t n_pending;
    /* SentencePiece strips a leading U+2581 (the dummy prefix) from pieces until text has been written or,
     * without remove_extra_whitespaces, until one has been stripped: past_bos then stays set. */
    bool wrote_any, bos_ws_seen, past_bos;
    tok_buf out;
};

tok_stream *tok_stream_new(const mt_tokenizer *t, unsigned decode_flags)
{
    tok_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->t = t;
    s->flags = decode_flags;
    return s;
}

void tok_stream_free(tok_stream *s)
{
    if (!s)
        return;
    free(s->out.p);
    free(s);
}

/* Length a character needs, from its lead byte (1 for bytes that cannot start one). */
static size_t needed_bytes(unsigned char lead)
{
    if (lead < 0x80)
        return 1;
    if ((lead & 0xE0) == 0xC0)
        return 2;
    if ((lead & 0xF0) == 0xE0)
        return 3;
    if ((lead & 0xF8) == 0xF0)
        return 4;
    return 1;
}

/* Decode pending bytes; at the end of a run (`run_ended`) an incomplete character decodes too. */
static int drain_bytes(tok_stream *s, bool run_ended)
{
    while (s->n_pending) {
        if (!run_ended && s->n_pending < needed_bytes(s->pending[0]))
            break;
        size_t mblen;
        bool valid = tok_utf8_valid_prefix((const char *)s->pending, s->n_pending, &mblen);
        int rc = valid ? tok_buf_put(&s->out, (const char *)s->pending, mblen) : tok_buf_put(&s->out, REPLACEMENT, 3);
        if (rc)
            return -1;
        s->wrote_any = true;
        memmove(s->pending, s->pending + mblen, s->n_pending - mblen);
        s->n_pending -= mblen;
    }
    return 0;
}

static int put_piece_text(tok_stream *s, const char *p, size_t len, bool is_bos_ws)
{
    const mt_tokenizer *t = s->t;
    if (is_bos_ws && (t->add_dummy_prefix || t->remove_extra_whitespaces) && len >= 3 &&
        !memcmp(p, "\xE2\x96\x81", 3)) {
        p += 3;
        len -= 3;
        s->bos_ws_seen = !t->remove_extra_whitespaces;
    }
    size_t start = s->out.n;
    for (size_t i = 0; i < len;) {
        if (i + 3 <= len && !memcmp(p + i, "\xE2\x96\x81", 3)) {
            if (tok_buf_put(&s->out, " ", 1))
                return -1;
            i += 3;
        } else {
            size_t j = i + 1;
            while (j < len && !(j + 3 <= len && !memcmp(p + j, "\xE2\x96\x81", 3)))
                j++;
            if (tok_buf_put(&s->out, p + i, j - i))
                return -1;
            i = j;
        }
    }
    if (s->out.n > start)
        s->wrote_any = true;
    return 0;
}

static int hex_digit(char c)
{
    return c <= '9' ? c - '0' : c - 'A' + 10;
}

/* The text of a non-byte token. */
static int put_token(tok_stream *s, int id)
{
    const mt_tokenizer *t = s->t;
    if (s->bos_ws_seen || s->wrote_any)
        s->past_bos = true;
    bool is_bos_ws = !s->past_bos;
    s->bos_ws_seen = false;
    const char *name = tok_special_name(t, id);
    if (name && (s->flags & TOK_SKIP_SPECIAL))
        return 0;
    if (name && (s->flags & TOK_SPECIAL_NAMES)) {
        s->wrote_any = true;
        return tok_buf_put(&s->out, name, strlen(name));
    }
    switch (t->type[id]) {
    case TOK_CONTROL:
        return 0;
    case TOK_UNKNOWN:
        if (t->unk_surface_len)
            s->wrote_any = true;
        return tok_buf_put(&s->out, t->unk_surface, t->unk_surface_len);
    default:
        return put_piece_text(s, t->blob + t->offset[id], t->len[id], is_bos_ws);
    }
}

int tok_stream_push(tok_stream *s, int id, const char **text, size_t *len)
{
    const mt_tokenizer *t = s->t;
    s->out.n = 0;
    *text = "";
    *len = 0;
    if (id < 0 || id >= t->n)
        return -1;
    int rc;
    if (t->type[id] == TOK_BYTE) {
        const char *piece = t->blob + t->offset[id]; /* "<0xXX>" with upper-case hex, checked when loading */
        s->pending[s->n_pending++] = (unsigned char)(hex_digit(piece[3]) * 16 + hex_digit(piece[4]));
        rc = drain_bytes(s, false);
    } else {
        rc = drain_bytes(s, true);
        if (!rc)
            rc = put_token(s, id);
    }
    if (s->out.n) {
        *text = s->out.p;
        *len = s->out.n;
    }
    return rc;
}

int tok_stream_finish(tok_stream *s, const char **text, size_t *len)
{
    s->out.n = 0;
    int rc = drain_bytes(s, true);
    *text = s->out.n ? s->out.p : "";
    *len = s->out.n;
    s->n_pending = 0;
    s->wrote_any = s->bos_ws_seen = s->past_bos = false;
    return rc;
}

char *tok_decode(const mt_tokenizer *t, const int *ids, size_t n, unsigned flags, size_t *len, char *err,
                 size_t errlen)
{
    tok_stream *s = tok_stream_new(t, flags);
    tok_buf all = {0};
    const char *text;
    size_t tlen;
    if (!s || tok_buf_put(&all, "", 0))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n) {
            tok_fail(err, errlen, "token id %d at position %zu is out of range (vocabulary size %d)", ids[i], i, t->n);
            goto fail;
        }
        if (tok_stream_push(s, ids[i], &text, &tlen) || tok_buf_put(&all, text, tlen))
            goto oom;
    }
    if (tok_stream_finish(s, &text, &tlen) || tok_buf_put(&all, text, tlen))
        goto oom;
    tok_stream_free(s);
    if (len)
        *len = all.n;
    return all.p;
oom:
    tok_fail(err, errlen, "out of memory decoding %zu tokens", n);
fail:
    tok_stream_free(s);
    free(all.p);
    return NULL;
}
