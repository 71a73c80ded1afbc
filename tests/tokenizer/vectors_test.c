/* The reference vectors internlm2-tokenizer-vectors.json (produced by real SentencePiece with InternLM2's
 * tokenizer.model, chat prompts split on the HF special tokens) against our tokenizer: ids, pieces, decode,
 * streaming decode, and the xtuner chat-template encodings.
 *   vectors_test TOKENIZER_MODEL VECTORS_JSON      (exit 77 when either file is absent) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "melodist/tokenizer.h"
#include "testutil.h"

/* ---------------------------------------------------------------- a small JSON reader for the vectors */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
    jtype type;
    double num;
    char *str; /* J_STR (may hold NUL bytes: len) */
    size_t len;
    struct jval *items; /* J_ARR values; J_OBJ alternating key, value */
    size_t n;
} jval;

static const char *jp;

static void jfail(const char *what)
{
    fprintf(stderr, "vectors_test: bad JSON near '%.30s': %s\n", jp, what);
    exit(1);
}

static void skip_ws(void)
{
    while (*jp == ' ' || *jp == '\n' || *jp == '\r' || *jp == '\t')
        jp++;
}

static void put_utf8(char *out, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xC0 | cp >> 6);
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xE0 | cp >> 12);
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*n)++] = (char)(0xF0 | cp >> 18);
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static unsigned hex4(void)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *jp++;
        v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : c >= 'A' && c <= 'F'   ? c - 'A' + 10
                                                         : (jfail("bad \\u escape"), 0));
    }
    return v;
}

static jval parse_value(void);

static jval parse_string(void)
{
    jp++; /* opening quote */
    char *out = malloc(strlen(jp) + 1);
    size_t n = 0;
    while (*jp != '"') {
        if (!*jp)
            jfail("unterminated string");
        if (*jp != '\\') {
            out[n++] = *jp++;
            continue;
        }
        jp++;
        char c = *jp++;
        switch (c) {
        case 'n': out[n++] = '\n'; break;
        case 't': out[n++] = '\t'; break;
        case 'r': out[n++] = '\r'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'u': {
            unsigned cp = hex4();
            if (cp >= 0xD800 && cp < 0xDC00 && jp[0] == '\\' && jp[1] == 'u') {
                jp += 2;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4() - 0xDC00);
            }
            put_utf8(out, &n, cp);
            break;
        }
        default: out[n++] = c; break;
        }
    }
    jp++;
    out[n] = '\0';
    return (jval){.type = J_STR, .str = out, .len = n};
}

static jval parse_list(char close, jtype type)
{
    jval v = {.type = type};
    size_t cap = 0;
    jp++;
    skip_ws();
    while (*jp != close) {
        for (int part = 0; part < (type == J_OBJ ? 2 : 1); part++) {
            if (v.n == cap) {
                cap = cap ? 2 * cap : 8;
                v.items = realloc(v.items, cap * sizeof *v.items);
            }
            v.items[v.n++] = parse_value();
            skip_ws();
            if (type == J_OBJ && part == 0) {
                if (*jp++ != ':')
                    jfail("expected ':'");
            }
        }
        skip_ws();
        if (*jp == ',')
            jp++;
        else if (*jp != close)
            jfail("expected ',' or end of list");
        skip_ws();
    }
    jp++;
    return v;
}

static jval parse_value(void)
{
    skip_ws();
    if (*jp == '"')
        return parse_string();
    if (*jp == '[')
        return parse_list(']', J_ARR);
    if (*jp == '{')
        return parse_list('}', J_OBJ);
    if (!strncmp(jp, "true", 4) || !strncmp(jp, "false", 5)) {
        jval v = {.type = J_BOOL, .num = *jp == 't'};
        jp += *jp == 't' ? 4 : 5;
        return v;
    }
    if (!strncmp(jp, "null", 4)) {
        jp += 4;
        return (jval){.type = J_NULL};
    }
    char *end;
    double d = strtod(jp, &end);
    if (end == jp)
        jfail("unexpected character");
    jp = end;
    return (jval){.type = J_NUM, .num = d};
}

static const jval *get(const jval *obj, const char *key)
{
    for (size_t i = 0; obj->type == J_OBJ && i + 1 < obj->n; i += 2)
        if (!strcmp(obj->items[i].str, key))
            return &obj->items[i + 1];
    return NULL;
}

static void jfree(jval *v)
{
    free(v->str);
    for (size_t i = 0; i < v->n; i++)
        jfree(&v->items[i]);
    free(v->items);
}

/* ---------------------------------------------------------------- checks */

typedef struct pieces {
    char **v;
    size_t *len;
    size_t n;
} pieces;

static void collect_piece(void *ctx, int id, const char *piece, size_t len)
{
    (void)id;
    pieces *p = ctx;
    p->v = realloc(p->v, (p->n + 1) * sizeof *p->v);
    p->len = realloc(p->len, (p->n + 1) * sizeof *p->len);
    p->v[p->n] = malloc(len + 1);
    memcpy(p->v[p->n], piece, len);
    p->len[p->n++] = len;
}

static void check_ids(const mt_tokenizer *tok, const char *text, size_t len, unsigned flags, const jval *want,
                      const char *label)
{
    tok_ids ids = {0};
    CHECK(tok_encode(tok, text, len, flags, &ids) == 0, "%s: encode failed", label);
    int same = ids.n == want->n;
    for (size_t i = 0; same && i < ids.n; i++)
        same = ids.v[i] == (int)want->items[i].num;
    CHECK(same, "%s: ids differ (got %zu ids, want %zu)", label, ids.n, want->n);
    tok_ids_free(&ids);
}

static void check_pieces(const mt_tokenizer *tok, const char *text, size_t len, unsigned flags, const jval *want,
                         const char *label)
{
    pieces p = {0};
    CHECK(tok_encode_each(tok, text, len, flags, collect_piece, &p) == 0, "%s: encode failed", label);
    int same = p.n == want->n;
    for (size_t i = 0; same && i < p.n; i++)
        same = p.len[i] == want->items[i].len && !memcmp(p.v[i], want->items[i].str, p.len[i]);
    CHECK(same, "%s: pieces differ", label);
    for (size_t i = 0; i < p.n; i++)
        free(p.v[i]);
    free(p.v);
    free(p.len);
}

/* One-shot and streaming decode of `want_ids` must both give want (len bytes). */
static void check_decode(const mt_tokenizer *tok, const jval *want_ids, unsigned flags, const char *want,
                         size_t want_len, const char *label)
{
    int *ids = malloc((want_ids->n + 1) * sizeof *ids);
    for (size_t i = 0; i < want_ids->n; i++)
        ids[i] = (int)want_ids->items[i].num;
    char err[256];
    size_t len;
    char *text = tok_decode(tok, ids, want_ids->n, flags, &len, err, sizeof err);
    CHECK(text && len == want_len && !memcmp(text, want, len), "%s: decode gives '%s', want '%s'", label,
          text ? text : err, want);
    free(text);

    tok_stream *s = tok_stream_new(tok, flags);
    char *acc = malloc(want_len * 4 + 64);
    size_t n = 0;
    const char *piece;
    size_t plen;
    for (size_t i = 0; i < want_ids->n; i++) {
        CHECK(tok_stream_push(s, ids[i], &piece, &plen) == 0, "%s: stream push failed", label);
        memcpy(acc + n, piece, plen);
        n += plen;
    }
    tok_stream_finish(s, &piece, &plen);
    memcpy(acc + n, piece, plen);
    n += plen;
    CHECK(n == want_len && !memcmp(acc, want, n), "%s: streaming decode differs", label);
    free(acc);
    tok_stream_free(s);
    free(ids);
}

/* The text with the chat special tokens' names removed. */
static char *without_specials(const char *text)
{
    static const char *names[] = {"<|im_start|>", "<|im_end|>", "<s>", "</s>"};
    char *out = strdup(text);
    for (size_t k = 0; k < 4; k++) {
        char *at;
        while ((at = strstr(out, names[k])))
            memmove(at, at + strlen(names[k]), strlen(at + strlen(names[k])) + 1);
    }
    return out;
}

/* xtuner's internlm2_chat template, one turn (InternLM/xtuner:xtuner/utils/templates.py). */
static char *xtuner_text(const jval *sample)
{
    const jval *sys = get(sample, "system"), *in = get(sample, "input"), *out = get(sample, "output");
    size_t cap = sys->len + in->len + out->len + 256;
    char *s = malloc(cap);
    s[0] = '\0';
    if (sys->len)
        snprintf(s, cap, "<|im_start|>system\n%s<|im_end|>\n", sys->str);
    snprintf(s + strlen(s), cap - strlen(s), "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n%s<|im_end|>\n",
             in->str, out->str);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: vectors_test TOKENIZER_MODEL VECTORS_JSON\n");
        return 2;
    }
    if (access(argv[1], R_OK) || access(argv[2], R_OK)) {
        printf("SKIP: %s or %s is absent\n", argv[1], argv[2]);
        return 77;
    }
    char err[512];
    mt_tokenizer *tok = tok_load(argv[1], err, sizeof err);
    if (!tok) {
        fprintf(stderr, "FAIL: %s\n", err);
        return 1;
    }
    CHECK(tok_vocab_size(tok) == 92544, "vocab size %d", tok_vocab_size(tok));
    CHECK(tok_bos_id(tok) == 1 && tok_eos_id(tok) == 2 && tok_unk_id(tok) == 0 && tok_pad_id(tok) == -1,
          "special ids");
    CHECK(tok_special_id(tok, "<|im_start|>") == 92543 && tok_special_id(tok, "<|im_end|>") == 92542 &&
              tok_special_id(tok, "<|plugin|>") == 92538,
          "chat token ids");

    char *json = tu_read_file(argv[2], NULL);
    if (!json)
        return 1;
    jp = json;
    jval all = parse_value();
    int checked = 0;
    for (size_t i = 0; i < all.n; i++) {
        const jval *v = &all.items[i];
        const jval *text = get(v, "text");
        char label[64];
        snprintf(label, sizeof label, "vector %zu", i);
        if (text && get(v, "ids")) {
            check_ids(tok, text->str, text->len, 0, get(v, "ids"), label);
            check_pieces(tok, text->str, text->len, 0, get(v, "pieces"), label);
            const jval *dec = get(v, "decode");
            check_decode(tok, get(v, "ids"), 0, dec->str, dec->len, label);
            checked++;
        } else if (text && get(v, "ids_hf_style_with_bos")) {
            const jval *want = get(v, "ids_hf_style_with_bos");
            check_ids(tok, text->str, text->len, TOK_ADD_BOS | TOK_PARSE_SPECIAL, want, label);
            check_pieces(tok, text->str, text->len, TOK_ADD_BOS | TOK_PARSE_SPECIAL, get(v, "pieces"), label);
            char *named = malloc(text->len + 4);
            sprintf(named, "<s>%s", text->str);
            check_decode(tok, want, TOK_SPECIAL_NAMES, named, strlen(named), label);
            char *plain = without_specials(text->str);
            check_decode(tok, want, TOK_SKIP_SPECIAL, plain, strlen(plain), label);
            free(plain);
            free(named);
            checked++;
        } else if (get(v, "input_ids")) {
            const jval *sample = get(v, "xtuner_sample") ? get(v, "xtuner_sample") : get(v, "xtuner_increment_sample");
            char *s = xtuner_text(sample);
            check_ids(tok, s, strlen(s), TOK_ADD_BOS | TOK_PARSE_SPECIAL, get(v, "input_ids"), label);
            free(s);
            checked++;
        } else {
            CHECK(0, "%s: unknown vector kind", label);
        }
    }
    CHECK(checked == 18, "checked %d vectors, expected 18", checked);
    printf("%d vectors checked, %d failures\n", checked, tu_failures);
    jfree(&all);
    free(json);
    tok_free(tok);
    return tu_failures ? 1 : 0;
}
