/* The normaliser, as SentencePiece's Normalizer::Normalize: user-defined symbols pass through untouched,
 * other characters go through the precompiled charsmap (longest rule wins) or are copied, malformed UTF-8
 * becomes U+FFFD one byte at a time; then the whitespace rules: optional removal of leading, trailing and
 * repeated spaces, a dummy-prefix space, and ' ' -> U+2581. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static const char SPACE_SYMBOL[] = "\xE2\x96\x81"; /* U+2581 */

int tok_buf_put(tok_buf *b, const char *s, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
    return 0;
}

/* Darts-clone's commonPrefixSearch keeping the longest match: returns its length (0: none) and the offset
 * of its replacement in *value. Out-of-range units (a corrupt charsmap) end the search. */
static size_t charsmap_longest(const tok_charsmap *cm, const char *s, size_t len, uint32_t *value)
{
    size_t best = 0;
    if (cm->n_units == 0)
        return 0;
#define OFFSET(u) (((u) >> 10) << (((u) & (1u << 9)) >> 6))
#define LABEL(u) ((u) & ((1u << 31) | 0xFFu))
#define HAS_LEAF(u) (((u) >> 8) & 1u)
    uint32_t id = OFFSET(cm->units[0]);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        id ^= c;
        if (id >= cm->n_units)
            break;
        uint32_t unit = cm->units[id];
        if (LABEL(unit) != c)
            break;
        id ^= OFFSET(unit);
        if (HAS_LEAF(unit)) {
            if (id >= cm->n_units)
                break;
            best = i + 1;
            *value = cm->units[id] & 0x7FFFFFFFu;
        }
    }
#undef OFFSET
#undef LABEL
#undef HAS_LEAF
    return best;
}

/* NormalizePrefix: the normalised text of the first character (or user-defined symbol or charsmap rule) of
 * s, and how many input bytes it consumed. */
static const char *normalize_prefix(const mt_tokenizer *t, const char *s, size_t len, size_t *out_len,
                                    size_t *consumed)
{
    size_t n = tok_match_user_defined(t, s, len);
    if (n) {
        *out_len = *consumed = n;
        return s;
    }
    uint32_t value = 0;
    n = charsmap_longest(&t->charsmap, s, len, &value);
    if (n) {
        const tok_charsmap *cm = &t->charsmap;
        *consumed = n;
        if (value >= cm->strings_len) { /* corrupt: points past the strings; treat as deleting */
            *out_len = 0;
            return "";
        }
        *out_len = strlen(cm->strings + value);
        return cm->strings + value;
    }
    if (!tok_utf8_valid_prefix(s, len, &n)) {
        *out_len = 3;
        *consumed = 1;
        return "\xEF\xBF\xBD";
    }
    *out_len = *consumed = n;
    return s;
}

static int add_space(const mt_tokenizer *t, tok_buf *out)
{
    return t->escape_whitespaces ? tok_buf_put(out, SPACE_SYMBOL, 3) : tok_buf_put(out, " ", 1);
}

/* Appends p, with ' ' -> U+2581 when escaping whitespace. */
static int put_escaped(const mt_tokenizer *t, const char *p, size_t n, tok_buf *out)
{
    size_t start = 0;
    for (size_t i = 0; t->escape_whitespaces && i < n; i++) {
        if (p[i] == ' ') {
            if (tok_buf_put(out, p + start, i - start) || tok_buf_put(out, SPACE_SYMBOL, 3))
                return -1;
            start = i + 1;
        }
    }
    return tok_buf_put(out, p + start, n - start);
}

int tok_normalize(const mt_tokenizer *t, const char *text, size_t len, tok_buf *out)
{
    out->n = 0;
    if (tok_buf_put(out, "", 0))
        return -1;
    size_t pos = 0, plen, consumed;
    if (t->remove_extra_whitespaces) {
        while (pos < len) {
            const char *p = normalize_prefix(t, text + pos, len - pos, &plen, &consumed);
            if (!(plen == 1 && p[0] == ' '))
                break;
            pos += consumed;
        }
    }
    if (pos == len)
        return 0;
    if (!t->treat_whitespace_as_suffix && t->add_dummy_prefix && add_space(t, out))
        return -1;

    bool prev_space = t->remove_extra_whitespaces;
    while (pos < len) {
        const char *p = normalize_prefix(t, text + pos, len - pos, &plen, &consumed);
        while (prev_space && plen > 0 && p[0] == ' ') {
            p++;
            plen--;
        }
        if (plen > 0) {
            if (put_escaped(t, p, plen, out))
                return -1;
            prev_space = p[plen - 1] == ' ';
        }
        pos += consumed;
        if (!t->remove_extra_whitespaces)
            prev_space = false;
    }
    if (t->remove_extra_whitespaces) {
        const char *sp = t->escape_whitespaces ? SPACE_SYMBOL : " ";
        size_t splen = t->escape_whitespaces ? 3 : 1;
        while (out->n >= splen && !memcmp(out->p + out->n - splen, sp, splen))
            out->n -= splen;
        out->p[out->n] = '\0';
    }
    if (t->treat_whitespace_as_suffix && t->add_dummy_prefix && add_space(t, out))
        return -1;
    return 0;
}
