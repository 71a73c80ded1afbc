/* ABC 2.1 parser: file buffer -> file header, tunes, header fields and body elements with positions.
 *
 * One pass over the bytes, line by line. Elements and fields of all tunes go into two growable vectors;
 * the tunes point into them once parsing is done. Every problem becomes a diagnostic and the parser goes on. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abc_internal.h"

#define MAX_LEN_NUMBER 100000 /* biggest length numerator/denominator accepted */
#define MAX_TUPLET 64

typedef struct tune_span {
    size_t start, end;          /* byte range of the tune's text */
    int first_line, x;
    size_t h0, hn, b0, bn;      /* ranges in the field and element vectors */
} tune_span;

typedef struct parser {
    abc_file *f;
    const char *s;
    size_t n;
    int line;                   /* current line number */
    size_t line_start;          /* offset of the current line */
    int tune;                   /* index of the tune being read, -1 in the file header */
    abc_vec fields, els, tunes, file_header;
    bool compound;              /* current meter is compound (for tuplet defaults) */
    bool in_chord, in_grace;
} parser;

static void diag(parser *p, size_t off, const char *category, const char *hint, const char *msg)
{
    abc_diags_add_text(&p->f->diags, ABC_ERROR, p->line, (int)(off - p->line_start) + 1, p->tune, category, hint,
                       msg);
}

static inline abc_element *push_el(parser *p, abc_element_kind kind, size_t off, size_t len)
{
    abc_element *e = abc_vec_next(&p->els);
    if (!e)
        return NULL;
    *e = (abc_element){.kind = kind, .line = p->line, .col = (int)(off - p->line_start) + 1,
                       .src_off = (uint32_t)off, .src_len = (uint32_t)len};
    return e;
}

static const char *arena_str(parser *p, size_t off, size_t len)
{
    const char *s = abc_arena_strndup(p->f->arena, p->s + off, len);
    return s ? s : "";
}

/* Field value: skip leading blanks, cut an unescaped '%' comment, trim trailing blanks. */
static const char *field_value(parser *p, size_t a, size_t b)
{
    while (a < b && (p->s[a] == ' ' || p->s[a] == '\t'))
        a++;
    for (const char *c = memchr(p->s + a, '%', b - a); c; c = memchr(c + 1, '%', (size_t)(p->s + b - c - 1)))
        if (c == p->s + a || c[-1] != '\\') {
            b = (size_t)(c - p->s);
            break;
        }
    while (b > a && (p->s[b - 1] == ' ' || p->s[b - 1] == '\t'))
        b--;
    return arena_str(p, a, b - a);
}

static void note_meter(parser *p, const char *value)
{
    abc_meter m;
    char err[8];
    if (abc_parse_meter(value, &m, err, sizeof err))
        p->compound = abc_meter_is_compound(m);
}

/* ---------------------------------------------------------------- music lines */

/* isdigit() without the locale table lookup: ASCII digits only, as in the C locale */
static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_note_letter(char c)
{
    return (c >= 'A' && c <= 'G') || (c >= 'a' && c <= 'g');
}

static bool is_deco_char(char c)
{
    return strchr(".~HLMOPSTuvJRy", c) != NULL && c;
}

/* A written length: digits, slashes, digits. */
static size_t parse_written_len(parser *p, size_t i, size_t end, abc_len *len)
{
    int64_t num = 1, den = 1;
    bool bad = false;
    size_t start = i;
    if (i < end && is_digit(p->s[i])) {
        num = 0;
        while (i < end && is_digit(p->s[i])) {
            if (num < MAX_LEN_NUMBER * 10)
                num = num * 10 + (p->s[i] - '0');
            i++;
        }
    }
    int slashes = 0;
    while (i < end && p->s[i] == '/') {
        slashes++;
        i++;
    }
    if (slashes) {
        if (i < end && is_digit(p->s[i])) {
            den = 0;
            while (i < end && is_digit(p->s[i])) {
                if (den < MAX_LEN_NUMBER * 10)
                    den = den * 10 + (p->s[i] - '0');
                i++;
            }
            for (int k = 1; k < slashes && den <= MAX_LEN_NUMBER; k++)
                den *= 2;
            if (den == 0) {
                diag(p, start, "length", "write A/2 for half the unit length", "note length with denominator 0");
                bad = true;
            }
        } else {
            den = 1;
            for (int k = 0; k < slashes && den <= MAX_LEN_NUMBER; k++)
                den *= 2;
        }
    }
    if (num == 0 && !bad) {
        diag(p, start, "length", "a note length must be positive; remove the 0", "note length 0");
        num = 1;
    }
    if (num > MAX_LEN_NUMBER || den > MAX_LEN_NUMBER) {
        diag(p, start, "length", "use a smaller number", "note length out of range");
        num = num > MAX_LEN_NUMBER ? MAX_LEN_NUMBER : num;
        den = den > MAX_LEN_NUMBER ? MAX_LEN_NUMBER : den;
    }
    len->num = (int32_t)num;
    len->den = bad ? 0 : (int32_t)den;
    return i;
}

/* Music is read up to `end`, the end of its line; the byte at end is the line's '\n' or '\r', or the NUL
 * after the text. The per-note readers below lean on that: none of the characters they look for is one of
 * those, so they need no `i < end` test. */

static inline bool ends_len(char c)
{
    return !is_digit(c) && c != '/';
}

/* Length after a note, rest or chord: none written (1/1), one digit, '/', '/d' and 'd/e' inline (the common
 * cases), the rest in parse_written_len(). */
static inline size_t parse_len(parser *p, size_t i, size_t end, abc_len *len)
{
    const char *s = p->s;
    if (ends_len(s[i])) {
        *len = (abc_len){1, 1};
        return i;
    }
    size_t k = i;
    int32_t num = 1;
    if (s[k] >= '1' && s[k] <= '9')
        num = s[k++] - '0';
    if (k > i && ends_len(s[k])) {
        *len = (abc_len){num, 1};
        return k;
    }
    if (s[k] == '/') {
        k++;
        if (ends_len(s[k])) {
            *len = (abc_len){num, 2};
            return k;
        }
        if (s[k] >= '1' && s[k] <= '9' && ends_len(s[k + 1])) {
            *len = (abc_len){num, s[k] - '0'};
            return k + 1;
        }
    }
    return parse_written_len(p, i, end, len);
}

static inline __attribute__((always_inline)) size_t parse_note(parser *p, size_t i, size_t end)
{
    const char *s = p->s;
    size_t start = i;
    abc_accidental acc = ABC_ACC_NONE;
    if (s[i] == '^') {
        acc = s[i + 1] == '^' ? ABC_ACC_DSHARP : ABC_ACC_SHARP;
        i += acc == ABC_ACC_DSHARP ? 2 : 1;
    } else if (s[i] == '_') {
        acc = s[i + 1] == '_' ? ABC_ACC_DFLAT : ABC_ACC_FLAT;
        i += acc == ABC_ACC_DFLAT ? 2 : 1;
    } else if (s[i] == '=') {
        acc = ABC_ACC_NATURAL;
        i++;
    }
    if (!is_note_letter(s[i])) {
        diag(p, start, "syntax", "an accidental (^ _ =) must be followed by a note letter A-G or a-g",
             "accidental without a note");
        abc_element *e = push_el(p, ABC_EL_UNKNOWN, start, i - start);
        if (e)
            e->u.text.text = arena_str(p, start, i - start);
        return i;
    }
    char c = s[i++];
    int octave = 0;
    if (c >= 'a') {
        octave = 1;
        c = (char)(c - 'a' + 'A');
    }
    for (; s[i] == '\'' || s[i] == ','; i++)
        octave += s[i] == '\'' ? 1 : -1;
    if (octave > 6 || octave < -6) {
        diag(p, start, "pitch", "use fewer ' or , marks", "note out of range");
        octave = octave > 6 ? 6 : -6;
    }
    abc_len len;
    i = parse_len(p, i, end, &len);
    bool tie = s[i] == '-';
    i += tie;
    abc_element *e = push_el(p, ABC_EL_NOTE, start, i - start);
    if (e)
        e->u.note = (abc_note){.letter = c, .octave = (int8_t)octave, .acc = acc, .len = len, .tie = tie};
    return i;
}

static size_t parse_rest(parser *p, size_t i, size_t end)
{
    size_t start = i;
    char sym = p->s[i++];
    abc_len len;
    i = parse_len(p, i, end, &len);
    if ((sym == 'Z' || sym == 'X') && len.den != 1) {
        diag(p, start, "length", "Z and X take a whole number of bars, e.g. Z4", "fractional multi-bar rest");
        len.den = 1;
    }
    abc_element *e = push_el(p, ABC_EL_REST, start, i - start);
    if (e) {
        e->u.rest.symbol = sym;
        e->u.rest.len = len;
    }
    return i;
}

/* Text up to the closing delimiter on this line; returns the index after it (or end when unterminated). */
static size_t parse_delimited(parser *p, size_t i, size_t end, char close, abc_element_kind kind, char placement,
                              const char *what)
{
    size_t start = i, a = i + 1, b = a;
    while (b < end && p->s[b] != close)
        b++;
    if (b >= end) {
        char msg[96];
        snprintf(msg, sizeof msg, "unterminated %s (missing %c)", what, close);
        diag(p, start, "syntax", "close it on the same line", msg);
    }
    size_t next = b < end ? b + 1 : end;
    abc_element *e = push_el(p, kind, start, next - start);
    if (!e)
        return next;
    if (kind == ABC_EL_CHORD_SYMBOL && a < b && strchr("^_<>@", p->s[a])) {
        e->kind = ABC_EL_ANNOTATION;
        placement = p->s[a++];
    }
    e->u.text.text = arena_str(p, a, b - a);
    e->u.text.placement = placement;
    return next;
}

static size_t parse_tuplet(parser *p, size_t i, size_t end)
{
    size_t start = i++;
    int v[3] = {0, 0, 0};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; k++) {
        if (k > 0) {
            if (i >= end || p->s[i] != ':')
                break;
            i++;
        }
        while (i < end && is_digit(p->s[i])) {
            if (v[k] < 1000)
                v[k] = v[k] * 10 + (p->s[i] - '0');
            given[k] = true;
            i++;
        }
    }
    int pp = v[0];
    if (pp < 2 || pp > MAX_TUPLET) {
        diag(p, start, "tuplet", "tuplets go from (2 to (64", "invalid tuplet number");
        pp = pp < 2 ? 2 : MAX_TUPLET;
    }
    int q = given[1] && v[1] > 0 ? v[1] : abc_tuplet_default_q(pp, p->compound);
    int r = given[2] && v[2] > 0 ? v[2] : pp;
    if (q > MAX_TUPLET * 4 || r > MAX_TUPLET * 4) {
        diag(p, start, "tuplet", "use smaller tuplet numbers", "tuplet numbers out of range");
        q = q > MAX_TUPLET * 4 ? 2 : q;
        r = r > MAX_TUPLET * 4 ? pp : r;
    }
    abc_element *e = push_el(p, ABC_EL_TUPLET, start, i - start);
    if (e)
        e->u.tuplet = (abc_tuplet){pp, q, r, given[1] && v[1] > 0, given[2] && v[2] > 0};
    return i;
}

/* Ending number list after [ or a bar: digits with ',' and '-'. */
static size_t parse_ending(parser *p, size_t start, size_t i, size_t end, bool attached)
{
    size_t a = i;
    while (i < end && (is_digit(p->s[i]) ||
                       ((p->s[i] == ',' || p->s[i] == '-') && i + 1 < end && is_digit(p->s[i + 1]))))
        i++;
    abc_element *e = push_el(p, ABC_EL_ENDING, start, i - start);
    if (e) {
        e->u.ending.text = arena_str(p, a, i - a);
        e->u.ending.attached = attached;
    }
    return i;
}

/* Bar lines: leading colons, a body of | [ ] (or .|), trailing colons, then an attached ending number. */
static size_t parse_bar(parser *p, size_t i, size_t end)
{
    size_t start = i;
    int c1 = 0, c2 = 0;
    while (i < end && p->s[i] == ':') {
        c1++;
        i++;
    }
    size_t body = i;
    if (i < end && p->s[i] == '.' && i + 1 < end && p->s[i + 1] == '|')
        i++;
    while (i < end && (p->s[i] == '|' || (p->s[i] == '[' && i + 1 < end && p->s[i + 1] == '|') ||
                       (p->s[i] == ']' && i > body)))
        i++;
    size_t body_len = i - body;
    while (i < end && p->s[i] == ':') {
        c2++;
        i++;
    }
    abc_bar_style style = ABC_BAR_SINGLE;
    const char *b = p->s + body;
    if (body_len == 0) {
        if (c1 + c2 < 2) {
            diag(p, start, "syntax", "a repeat sign is :| |: or ::", "stray ':'");
            abc_element *e = push_el(p, ABC_EL_UNKNOWN, start, i - start);
            if (e)
                e->u.text.text = arena_str(p, start, i - start);
            return i;
        }
        /* '::' (or ':::') ends one repeat and starts the next */
        c2 = c1 - c1 / 2;
        c1 = c1 / 2;
    } else if (body_len == 1 && b[0] == '|') {
        style = ABC_BAR_SINGLE;
    } else if (body_len == 2 && b[0] == '.') {
        style = ABC_BAR_DOTTED;
    } else if (body_len == 3 && b[0] == '[' && b[2] == ']') {
        style = ABC_BAR_INVISIBLE;
    } else if (b[0] == '[') {
        style = ABC_BAR_THICK_THIN;
    } else if (b[body_len - 1] == ']') {
        style = ABC_BAR_THIN_THICK;
    } else {
        style = ABC_BAR_DOUBLE;
    }
    abc_element *e = push_el(p, ABC_EL_BAR, start, i - start);
    if (e) {
        e->u.bar.style = style;
        e->u.bar.repeat_end = (uint8_t)(c1 > 9 ? 9 : c1);
        e->u.bar.repeat_start = (uint8_t)(c2 > 9 ? 9 : c2);
        e->u.bar.compact = body_len == 0;
    }
    if (i < end && is_digit(p->s[i]))
        i = parse_ending(p, i, i, end, true);
    return i;
}

/* Does a '|' followed by c stand alone, a single bar line? (c may be the line end: see ends_len) */
static inline bool plain_bar(char c)
{
    return c != '|' && c != '[' && c != ']' && c != ':' && !is_digit(c);
}

static size_t parse_inline_field(parser *p, size_t i, size_t end)
{
    size_t start = i, close = i + 3;
    while (close < end && p->s[close] != ']')
        close++;
    if (close >= end)
        diag(p, start, "syntax", "close the inline field with ]", "unterminated inline field");
    size_t next = close < end ? close + 1 : end;
    abc_element *e = push_el(p, ABC_EL_FIELD, start, next - start);
    if (e) {
        e->u.field.key = p->s[i + 1];
        e->u.field.value = field_value(p, i + 3, close < end ? close : end);
        e->u.field.inline_ = true;
        if (e->u.field.key == 'M')
            note_meter(p, e->u.field.value);
    }
    return next;
}

static size_t unknown_char(parser *p, size_t i, const char *hint, const char *msg)
{
    diag(p, i, "syntax", hint, msg);
    size_t n = 1;
    while (i + n < p->n && ((unsigned char)p->s[i + n] & 0xC0) == 0x80) /* whole UTF-8 character */
        n++;
    abc_element *e = push_el(p, ABC_EL_UNKNOWN, i, n);
    if (e)
        e->u.text.text = arena_str(p, i, n);
    return i + n;
}

static void parse_music_line(parser *p, size_t i, size_t end)
{
    bool continued = false;
    while (i < end) {
        char c = p->s[i];
        switch (c) {
        case ' ':
        case '\t': {
            size_t a = i;
            while (i < end && (p->s[i] == ' ' || p->s[i] == '\t'))
                i++;
            if (i < end && p->s[i] != '%' && p->s[i] != '\\')
                push_el(p, ABC_EL_SPACE, a, i - a);
            break;
        }
        case '%': {
            abc_element *e = push_el(p, ABC_EL_COMMENT, i, end - i);
            if (e)
                e->u.text.text = arena_str(p, i + 1, end - i - 1);
            i = end;
            break;
        }
        case '\\': {
            size_t j = i + 1;
            while (j < end && (p->s[j] == ' ' || p->s[j] == '\t'))
                j++;
            if (j < end && p->s[j] != '%') {
                i = unknown_char(p, i, "'\\' continues a line only at its end", "stray backslash");
                break;
            }
            continued = true;
            i = j;
            break;
        }
        case '"':
            i = parse_delimited(p, i, end, '"', ABC_EL_CHORD_SYMBOL, 0, "chord symbol or annotation");
            break;
        case '!': {
            size_t j = i + 1;
            while (j < end && p->s[j] != '!' && p->s[j] != ' ' && p->s[j] != '|')
                j++;
            if (j < end && p->s[j] == '!' && j > i + 1) {
                i = parse_delimited(p, i, end, '!', ABC_EL_DECORATION, '!', "decoration");
            } else {
                push_el(p, ABC_EL_SCORE_BREAK, i, 1);
                i++;
            }
            break;
        }
        case '+': {
            size_t j = i + 1;
            while (j < end && (isalnum((unsigned char)p->s[j]) || strchr(".<>_-", p->s[j])))
                j++;
            if (j < end && p->s[j] == '+' && j > i + 1)
                i = parse_delimited(p, i, end, '+', ABC_EL_DECORATION, '+', "decoration");
            else
                i = unknown_char(p, i, "write decorations as !name!", "stray '+'");
            break;
        }
        case '$':
            push_el(p, ABC_EL_SCORE_BREAK, i, 1);
            i++;
            break;
        case '{':
            if (p->in_grace)
                diag(p, i, "grace", "close the grace group with }", "nested grace group");
            p->in_grace = true;
            {
                bool acc = i + 1 < end && p->s[i + 1] == '/';
                abc_element *e = push_el(p, ABC_EL_GRACE_BEGIN, i, acc ? 2 : 1);
                if (e)
                    e->u.acciaccatura = acc;
                i += acc ? 2 : 1;
            }
            break;
        case '}':
            if (!p->in_grace) {
                i = unknown_char(p, i, "remove it or add the opening {", "'}' without a grace group");
                break;
            }
            p->in_grace = false;
            push_el(p, ABC_EL_GRACE_END, i, 1);
            i++;
            break;
        case '(':
            if (i + 1 < end && is_digit(p->s[i + 1])) {
                i = parse_tuplet(p, i, end);
            } else {
                push_el(p, ABC_EL_SLUR_BEGIN, i, 1);
                i++;
            }
            break;
        case ')':
            push_el(p, ABC_EL_SLUR_END, i, 1);
            i++;
            break;
        case '>':
        case '<': {
            size_t a = i;
            while (i < end && p->s[i] == c)
                i++;
            if (i - a > 3)
                diag(p, a, "syntax", "use at most three > or <", "broken rhythm too long");
            abc_element *e = push_el(p, ABC_EL_BROKEN, a, i - a);
            if (e) {
                e->u.broken.dir = c;
                e->u.broken.count = i - a > 3 ? 3 : (int)(i - a);
            }
            break;
        }
        case '-': {
            abc_element *e = push_el(p, ABC_EL_TIE, i, 1);
            if (e)
                e->u.dotted = false;
            i++;
            break;
        }
        case '[':
            if (i + 2 < end && isalpha((unsigned char)p->s[i + 1]) && p->s[i + 2] == ':') {
                i = parse_inline_field(p, i, end);
            } else if (i + 1 < end && is_digit(p->s[i + 1])) {
                i = parse_ending(p, i, i + 1, end, false);
            } else if (i + 1 < end && p->s[i + 1] == '|') {
                i = parse_bar(p, i, end);
            } else {
                if (p->in_chord)
                    diag(p, i, "chord", "close the chord with ] first", "nested chord");
                p->in_chord = true;
                push_el(p, ABC_EL_CHORD_BEGIN, i, 1);
                i++;
            }
            break;
        case ']':
            if (p->in_chord) {
                size_t a = i;
                abc_len len;
                i = parse_len(p, i + 1, end, &len);
                bool tie = i < end && p->s[i] == '-';
                if (tie)
                    i++;
                abc_element *e = push_el(p, ABC_EL_CHORD_END, a, i - a);
                if (e) {
                    e->u.chord.len = len;
                    e->u.chord.tie = tie;
                }
                p->in_chord = false;
            } else {
                i = unknown_char(p, i, "remove it, or open a chord with [", "']' without a chord");
            }
            break;
        case '|':
            if (plain_bar(p->s[i + 1])) { /* the common case, without parse_bar()'s analysis */
                abc_element *e = push_el(p, ABC_EL_BAR, i, 1);
                if (e)
                    e->u.bar = (abc_bar_line){ABC_BAR_SINGLE, 0, 0, false};
                i++;
                break;
            }
            i = parse_bar(p, i, end);
            break;
        case ':':
            i = parse_bar(p, i, end);
            break;
        case '&':
            push_el(p, ABC_EL_OVERLAY, i, 1);
            i++;
            break;
        case '^':
        case '_':
        case '=':
            i = parse_note(p, i, end);
            break;
        case 'z':
        case 'x':
        case 'Z':
        case 'X':
            i = parse_rest(p, i, end);
            break;
        case '`':
            i++; /* beam hint without meaning */
            break;
        case '.':
            if (i + 1 < end && p->s[i + 1] == '|') {
                i = parse_bar(p, i, end);
                break;
            }
            if (i + 1 < end && p->s[i + 1] == '(') {
                abc_element *e = push_el(p, ABC_EL_SLUR_BEGIN, i, 2);
                if (e)
                    e->u.dotted = true;
                i += 2;
                break;
            }
            if (i + 1 < end && p->s[i + 1] == '-') {
                abc_element *e = push_el(p, ABC_EL_TIE, i, 2);
                if (e)
                    e->u.dotted = true;
                i += 2;
                break;
            }
            /* staccato: a decoration */
            __attribute__((fallthrough));
        default:
            if (is_note_letter(c)) {
                i = parse_note(p, i, end);
            } else if (is_deco_char(c)) {
                abc_element *e = push_el(p, ABC_EL_DECORATION, i, 1);
                if (e) {
                    e->u.text.text = arena_str(p, i, 1);
                    e->u.text.placement = c;
                }
                i++;
            } else {
                i = unknown_char(p, i, "remove it or escape it in a \"text\" annotation",
                                 "unexpected character in music");
            }
        }
    }
    abc_element *e = push_el(p, ABC_EL_EOL, end, 0);
    if (e)
        e->u.continued = continued;
}

/* ---------------------------------------------------------------- lines and tunes */

static bool is_field_line(const char *s, size_t len)
{
    return len >= 2 && s[1] == ':' && (isalpha((unsigned char)s[0]) || s[0] == '+');
}

static void push_field(parser *p, abc_vec *v, char key, size_t key_off, size_t value_off, size_t end)
{
    abc_field *fl = abc_vec_push(v);
    if (!fl)
        return;
    fl->key = key;
    fl->line = p->line;
    fl->col = (int)(key_off - p->line_start) + 1;
    if (key == '%' || key == '#') {
        while (end > value_off && (p->s[end - 1] == ' ' || p->s[end - 1] == '\t'))
            end--;
        fl->value = arena_str(p, value_off, end - value_off);
    } else {
        fl->value = field_value(p, value_off, end);
    }
}

static void end_tune(parser *p, size_t end)
{
    if (p->tune < 0)
        return;
    tune_span *t = (tune_span *)p->tunes.data + p->tune;
    if (p->in_chord)
        diag(p, end, "chord", "close the chord with ]", "chord not closed at the end of the tune");
    if (p->in_grace)
        diag(p, end, "grace", "close the grace group with }", "grace group not closed at the end of the tune");
    p->in_chord = p->in_grace = false;
    t->end = end;
    t->hn = p->fields.n - t->h0;
    t->bn = p->els.n - t->b0;
}

enum section { FILE_HEADER, BETWEEN, HEADER, BODY };

/* The X: reference number (0 to 10^9), -1 when the value is not one. */
static int x_number(const char *v)
{
    long x = 0;
    const char *s = v;
    while (*s >= '0' && *s <= '9' && s - v < 10)
        x = x * 10 + (*s++ - '0');
    if (s == v || *s) { /* a sign, blanks, more digits: strtol's rules */
        char *e;
        x = strtol(v, &e, 10);
        if (e == v || *e)
            return -1;
    }
    return x < 0 || x > 1000000000 ? -1 : (int)x;
}

abc_file *abc_parse(const char *buf, size_t len)
{
    return abc_parse_part(buf, len, 1, false);
}

/* The arrays a parse fills: the tunes point into fields and els. */
typedef struct parse_vecs {
    abc_vec fields, els, tunes, file_header;
} parse_vecs;

static void parse_vecs_init(parse_vecs *v)
{
    *v = (parse_vecs){.fields.item = sizeof(abc_field), .els.item = sizeof(abc_element),
                      .tunes.item = sizeof(tune_span), .file_header.item = sizeof(abc_field)};
}

static void parse_vecs_free(parse_vecs *v)
{
    abc_vec_free(&v->fields);
    abc_vec_free(&v->els);
    abc_vec_free(&v->tunes);
    abc_vec_free(&v->file_header);
}

/* Parse f->text (f->text_len bytes; arena and diagnostics ready) into the empty vectors v. */
static void parse_text(abc_file *f, parse_vecs *v, int first_line, bool compound)
{
    size_t len = f->text_len;
    parser p = {.f = f, .s = f->text, .n = len, .line = first_line - 1, .tune = -1, .fields = v->fields,
                .els = v->els, .tunes = v->tunes, .file_header = v->file_header};
    /* about one element per 3 bytes of music: one allocation instead of a chain of reallocs */
    abc_vec_reserve(&p.els, len / 3 + 64);
    enum section sec = FILE_HEADER;
    bool file_compound = compound;

    bool nul = memchr(p.s, 0, len) != NULL; /* NUL bytes are reported line by line */
    size_t pos = 0;
    if (len >= 3 && !memcmp(p.s, "\xEF\xBB\xBF", 3))
        pos = 3; /* UTF-8 byte order mark */
    while (pos < len) {
        const char *nl = memchr(p.s + pos, '\n', len - pos);
        size_t eol = nl ? (size_t)(nl - p.s) : len;
        size_t next = nl ? eol + 1 : len;
        size_t end = eol;
        if (end > pos && p.s[end - 1] == '\r')
            end--;
        p.line++;
        p.line_start = pos;
        const char *ls = p.s + pos;
        size_t ll = end - pos;
        for (char *z = nul ? memchr(f->text + pos, 0, ll) : NULL; z;
             z = memchr(z + 1, 0, (size_t)(f->text + end - z - 1))) {
            diag(&p, (size_t)(z - f->text), "syntax", "remove it: ABC is text", "NUL byte in the text");
            *z = ' ';
        }
        size_t k = 0;
        while (k < ll && (ls[k] == ' ' || ls[k] == '\t'))
            k++;
        bool blank = k == ll;

        if (ll >= 2 && ls[0] == 'X' && ls[1] == ':') {
            if (sec == HEADER || sec == BODY)
                end_tune(&p, pos);
            if (sec == FILE_HEADER && p.file_header.n) { /* fields right above X: without a blank line */
                const abc_field *first = p.file_header.data;
                abc_diags_add(&f->diags, ABC_ERROR, first->line, first->col, -1, "header",
                              "start the tune with X:, or end the file header with a blank line",
                              "X: must be the first field of a tune");
            }
            tune_span *t = abc_vec_push(&p.tunes);
            if (!t)
                break;
            p.tune = (int)p.tunes.n - 1;
            t->start = pos;
            t->first_line = p.line;
            t->h0 = p.fields.n;
            t->b0 = p.els.n;
            push_field(&p, &p.fields, 'X', pos, pos + 2, end);
            t->x = x_number(((abc_field *)p.fields.data)[p.fields.n - 1].value);
            if (t->x < 0)
                diag(&p, pos, "header", "write a number, e.g. X:1", "X: needs a reference number");
            p.compound = file_compound;
            sec = HEADER;
        } else if (blank) {
            if (sec == HEADER || sec == BODY) {
                if (sec == HEADER)
                    diag(&p, pos, "header", "end the tune header with a K: field", "tune header without K:");
                end_tune(&p, pos);
                p.tune = -1;
                sec = BETWEEN;
            } else if (sec == FILE_HEADER && p.file_header.n) {
                sec = BETWEEN;
            }
        } else if (sec == FILE_HEADER || sec == BETWEEN) {
            if (ls[0] == '%' && ll >= 2 && ls[1] == '%')
                push_field(&p, &p.file_header, '%', pos, pos + 2, end);
            else if (is_field_line(ls, ll) && sec == FILE_HEADER) {
                push_field(&p, &p.file_header, ls[0], pos, pos + 2, end);
                if (ls[0] == 'M')
                    note_meter(&p, ((abc_field *)p.file_header.data)[p.file_header.n - 1].value);
                file_compound = p.compound;
            }
            /* other text between tunes is free text */
        } else if (sec == HEADER && (is_field_line(ls, ll) || ls[0] == '%')) {
            if (ls[0] == '%') {
                bool dir = ll >= 2 && ls[1] == '%';
                push_field(&p, &p.fields, dir ? '%' : '#', pos, pos + (dir ? 2 : 1), end);
            } else {
                push_field(&p, &p.fields, ls[0], pos, pos + 2, end);
                const char *v = ((abc_field *)p.fields.data)[p.fields.n - 1].value;
                if (ls[0] == 'M')
                    note_meter(&p, v);
                if (ls[0] == 'K')
                    sec = BODY;
            }
        } else {
            if (sec == HEADER) {
                diag(&p, pos, "header", "end the tune header with a K: field before the music",
                     "music before the K: field");
                sec = BODY;
            }
            if (ls[0] == '%') {
                bool dir = ll >= 2 && ls[1] == '%';
                size_t off = pos + (dir ? 2 : 1);
                abc_element *e = push_el(&p, dir ? ABC_EL_DIRECTIVE : ABC_EL_COMMENT, pos, ll);
                if (e)
                    e->u.text.text = arena_str(&p, off, end - off);
            } else if (is_field_line(ls, ll) && !is_note_letter(ls[0])) {
                abc_element *e = push_el(&p, ABC_EL_FIELD, pos, ll);
                if (e) {
                    e->u.field.key = ls[0];
                    if (ls[0] == 'w' || ls[0] == 'W') { /* lyrics keep their % escapes; trim only */
                        size_t a = pos + 2, b = end;
                        while (a < b && (p.s[a] == ' ' || p.s[a] == '\t'))
                            a++;
                        while (b > a && (p.s[b - 1] == ' ' || p.s[b - 1] == '\t'))
                            b--;
                        e->u.field.value = arena_str(&p, a, b - a);
                    } else {
                        e->u.field.value = field_value(&p, pos + 2, end);
                    }
                    if (ls[0] == 'M')
                        note_meter(&p, e->u.field.value);
                }
            } else {
                parse_music_line(&p, pos, end);
            }
        }
        pos = next;
    }
    if (sec == HEADER)
        diag(&p, len, "header", "end the tune header with a K: field", "tune header without K:");
    if (sec == HEADER || sec == BODY)
        end_tune(&p, len);

    *v = (parse_vecs){p.fields, p.els, p.tunes, p.file_header};
}

/* Point the file's header and tunes into the parsed arrays. False when out of memory. */
static bool link_tunes(abc_file *f, const parse_vecs *v, abc_field *fields, abc_element *els, abc_field *header)
{
    f->n_header = v->file_header.n;
    f->header = header;
    f->n_tunes = v->tunes.n;
    f->tunes = abc_arena_alloc(f->arena, (v->tunes.n ? v->tunes.n : 1) * sizeof(abc_tune));
    if (!f->tunes)
        return false;
    for (size_t i = 0; i < v->tunes.n; i++) {
        tune_span *s = (tune_span *)v->tunes.data + i;
        abc_tune *t = &f->tunes[i];
        size_t e = s->end;
        while (e > s->start && (f->text[e - 1] == '\n' || f->text[e - 1] == '\r'))
            e--;
        t->text = f->text + s->start;
        t->text_len = e - s->start;
        t->first_line = s->first_line;
        t->x = s->x;
        t->header = fields ? fields + s->h0 : NULL;
        t->n_header = s->hn;
        t->body = els ? els + s->b0 : NULL;
        t->n_body = s->bn;
    }
    return true;
}

abc_file *abc_parse_part(const char *buf, size_t len, int first_line, bool compound)
{
    abc_file *f = malloc(sizeof *f); /* not calloc: glibc's calloc skips its fast cache */
    if (!f)
        return NULL;
    *f = (abc_file){0};
    f->arena = abc_arena_new();
    f->text = malloc(len + 1);
    if (!f->arena || !f->text) {
        abc_file_free(f);
        return NULL;
    }
    if (len)
        memcpy(f->text, buf, len);
    f->text[len] = 0;
    f->text_len = len;
    abc_diags_init(&f->diags);
    parse_vecs v;
    parse_vecs_init(&v);
    parse_text(f, &v, first_line, compound);
    /* the file takes the arrays over */
    abc_field *fields = abc_vec_move(&v.fields, f->arena);
    abc_element *els = abc_vec_move(&v.els, f->arena);
    abc_field *header = abc_vec_move(&v.file_header, f->arena);
    bool ok = link_tunes(f, &v, fields, els, header);
    parse_vecs_free(&v);
    if (!ok) {
        abc_file_free(f);
        return NULL;
    }
    return f;
}

/* A file whose text, arena and arrays are kept from one parse to the next. */
struct abc_parser {
    abc_file file;
    size_t text_cap;
    parse_vecs v;
};

abc_parser *abc_parser_new(void)
{
    abc_parser *ps = malloc(sizeof *ps);
    if (!ps)
        return NULL;
    *ps = (abc_parser){0};
    parse_vecs_init(&ps->v);
    abc_diags_init(&ps->file.diags);
    ps->file.arena = abc_arena_new();
    if (!ps->file.arena) {
        free(ps);
        return NULL;
    }
    return ps;
}

void abc_parser_free(abc_parser *ps)
{
    if (!ps)
        return;
    parse_vecs_free(&ps->v);
    abc_diags_free(&ps->file.diags);
    abc_arena_free(ps->file.arena);
    free(ps->file.text);
    free(ps);
}

abc_file *abc_parser_run(abc_parser *ps, const char *buf, size_t len, int first_line, bool compound)
{
    abc_file *f = &ps->file;
    if (len + 1 > ps->text_cap) {
        char *t = realloc(f->text, len + 1);
        if (!t)
            return NULL;
        f->text = t;
        ps->text_cap = len + 1;
    }
    if (len)
        memcpy(f->text, buf, len);
    f->text[len] = 0;
    f->text_len = len;
    abc_diags_clear(&f->diags);
    abc_arena_reset(f->arena);
    ps->v.fields.n = ps->v.els.n = ps->v.tunes.n = ps->v.file_header.n = 0;
    parse_text(f, &ps->v, first_line, compound);
    return link_tunes(f, &ps->v, ps->v.fields.data, ps->v.els.data, ps->v.file_header.data) ? f : NULL;
}

void abc_file_free(abc_file *f)
{
    if (!f)
        return;
    abc_diags_free(&f->diags);
    abc_arena_free(f->arena);
    free(f->text);
    free(f);
}

const char *abc_file_strdup(abc_file *f, const char *s)
{
    return abc_arena_strndup(f->arena, s, strlen(s));
}

int abc_file_find_tune(const abc_file *f, int x)
{
    for (size_t i = 0; i < f->n_tunes; i++)
        if (f->tunes[i].x == x)
            return (int)i;
    return -1;
}

const char *abc_tune_field(const abc_tune *t, char key)
{
    for (size_t i = 0; i < t->n_header; i++)
        if (t->header[i].key == key)
            return t->header[i].value;
    return NULL;
}
