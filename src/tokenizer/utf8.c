/* UTF-8 exactly as SentencePiece's string_util reads it (DecodeUTF8, IsValidDecodeUTF8, OneCharLen). */
#include "tok_internal.h"

static bool is_trail(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

static bool is_valid_codepoint(uint32_t c)
{
    return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF);
}

bool tok_utf8_valid_prefix(const char *str, size_t len, size_t *mblen)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t c = 0xFFFD; /* SentencePiece's kUnicodeError */
    *mblen = 1;
    if (s[0] < 0x80) {
        c = s[0];
    } else if (len >= 2 && (s[0] & 0xE0) == 0xC0) {
        uint32_t cp = ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        if (is_trail(s[1]) && cp >= 0x80 && is_valid_codepoint(cp)) {
            c = cp;
            *mblen = 2;
        }
    } else if (len >= 3 && (s[0] & 0xF0) == 0xE0) {
        uint32_t cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        if (is_trail(s[1]) && is_trail(s[2]) && cp >= 0x800 && is_valid_codepoint(cp)) {
            c = cp;
            *mblen = 3;
        }
    } else if (len >= 4 && (s[0] & 0xF8) == 0xF0) {
        uint32_t cp = ((s[0] & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
        if (is_trail(s[1]) && is_trail(s[2]) && is_trail(s[3]) && cp >= 0x10000 && is_valid_codepoint(cp)) {
            c = cp;
            *mblen = 4;
        }
    }
    /* U+FFFD itself is the error value, but spelled out in three bytes it is valid. */
    return c != 0xFFFD || *mblen == 3;
}

size_t tok_utf8_char_len(const char *s, size_t len)
{
    static const unsigned char by_high_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    size_t n = by_high_nibble[(unsigned char)s[0] >> 4];
    return n < len ? n : len;
}
