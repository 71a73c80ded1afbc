/* Values of the information fields: K: key, M: meter, L: unit length, Q: tempo; pitch arithmetic. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abc_internal.h"

static const int letter_fifths[7] = {3, 5, 0, 2, 4, -1, 1};   /* position on the circle of fifths */
static const char sharp_order[7] = {'F', 'C', 'G', 'D', 'A', 'E', 'B'};

static int sig_index(char letter) /* C D E F G A B -> 0..6 */
{
    return (letter - 'A' + 5) % 7;
}

int abc_accidental_semitones(abc_accidental a)
{
    switch (a) {
    case ABC_ACC_SHARP: return 1;
    case ABC_ACC_FLAT: return -1;
    case ABC_ACC_DSHARP: return 2;
    case ABC_ACC_DFLAT: return -2;
    default: return 0;
    }
}

int abc_midi_pitch(char letter, int octave, int semitones)
{
    return midi_pitch(letter, octave, semitones);
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static bool word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && !strncasecmp(s, w, n);
}

static void set_sharps(abc_key *k, int sharps)
{
    memset(k->sig, 0, sizeof k->sig);
    k->sharps = sharps;
    for (int i = 0; i < sharps && i < 7; i++)
        k->sig[sig_index(sharp_order[i])] = 1;
    for (int i = 0; i < -sharps && i < 7; i++)
        k->sig[sig_index(sharp_order[6 - i])] = -1;
}

/* K: [tonic[#b][mode]] [explicit accidentals] [clef/octave/transpose=...] ; "none", "HP", "Hp". */
bool abc_parse_key(const char *value, abc_key *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    const char *s = skip_ws(value);
    if (!*s || !strncasecmp(s, "none", 4) || !strncmp(s, "HP", 2) || !strncmp(s, "Hp", 2)) {
        out->none = true;
        if (*s)
            s += s[0] == 'n' || s[0] == 'N' ? 4 : 2;
    } else if (*s >= 'A' && *s <= 'G') {
        out->tonic_letter = *s++;
        if (*s == '#' || *s == 'b') {
            out->tonic_acc = *s == '#' ? 1 : -1;
            s++;
        }
        out->tonic_pc = (abc_letter_pc[out->tonic_letter - 'A'] + out->tonic_acc + 12) % 12;
        s = skip_ws(s);
        const char *w = s;
        while (isalpha((unsigned char)*s))
            s++;
        size_t n = (size_t)(s - w);
        static const struct { const char *name; abc_mode mode; int offset; } modes[] = {
            {"maj", ABC_MODE_MAJOR, 0}, {"ion", ABC_MODE_MAJOR, 0}, {"min", ABC_MODE_MINOR, -3},
            {"aeo", ABC_MODE_MINOR, -3}, {"m", ABC_MODE_MINOR, -3}, {"mix", ABC_MODE_MIXOLYDIAN, -1},
            {"dor", ABC_MODE_DORIAN, -2}, {"phr", ABC_MODE_PHRYGIAN, -4}, {"lyd", ABC_MODE_LYDIAN, 1},
            {"loc", ABC_MODE_LOCRIAN, -5},
        };
        int offset = 0;
        if (n) {
            bool found = false;
            for (size_t i = 0; i < sizeof modes / sizeof modes[0] && !found; i++) {
                size_t ml = strlen(modes[i].name);
                if ((ml == 1 && n == 1 && (*w == 'm' || *w == 'M')) ||
                    (ml == 3 && n >= 3 && !strncasecmp(w, modes[i].name, 3))) {
                    out->mode = modes[i].mode;
                    offset = modes[i].offset;
                    found = true;
                }
            }
            if (!found && !strchr(w, '=')) {
                snprintf(err, errsz, "unknown mode '%.*s'", (int)n, w);
                return false;
            }
            if (!found)
                s = w; /* a property like clef=bass follows the tonic */
        }
        int sharps = letter_fifths[out->tonic_letter - 'A'] + 7 * out->tonic_acc + offset;
        if (sharps > 7 || sharps < -7) {
            snprintf(err, errsz, "key signature with more than 7 sharps or flats");
            return false;
        }
        set_sharps(out, sharps);
    } else if (*s != '^' && *s != '_' && *s != '=' && !strchr(s, '=')) {
        snprintf(err, errsz, "invalid key '%s'", value);
        return false;
    } else {
        out->none = true;
    }
    /* explicit accidentals and properties */
    for (;;) {
        s = skip_ws(s);
        if (!*s)
            break;
        const char *w = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        size_t n = (size_t)(s - w);
        if (*w == '^' || *w == '_' || *w == '=') {
            int semis = 0;
            size_t i = 0;
            if (w[0] == '=') {
                i = 1;
            } else {
                while (i < n && i < 2 && w[i] == w[0])
                    i++;
                semis = (w[0] == '^' ? 1 : -1) * (int)i;
            }
            char l = i < n ? (char)toupper((unsigned char)w[i]) : 0;
            if (i + 1 != n || l < 'A' || l > 'G') {
                snprintf(err, errsz, "invalid explicit accidental '%.*s'", (int)n, w);
                return false;
            }
            out->sig[sig_index(l)] = (int8_t)semis;
            out->has_explicit = true;
        } else if (word_is(w, n, "exp")) {
            memset(out->sig, 0, sizeof out->sig);
        } else if (n > 7 && !strncasecmp(w, "octave=", 7)) {
            out->octave = atoi(w + 7);
            if (out->octave < -4 || out->octave > 4) {
                snprintf(err, errsz, "octave= out of range");
                return false;
            }
        } else if (n > 10 && !strncasecmp(w, "transpose=", 10)) {
            out->transpose = atoi(w + 10);
            if (out->transpose < -48 || out->transpose > 48) {
                snprintf(err, errsz, "transpose= out of range");
                return false;
            }
        } else if (memchr(w, '=', n) || word_is(w, n, "treble") || word_is(w, n, "bass") ||
                   word_is(w, n, "alto") || word_is(w, n, "tenor") || word_is(w, n, "perc") ||
                   word_is(w, n, "none") || (n > 1 && (w[n - 1] == '8' || w[n - 2] == '-' || w[n - 2] == '+'))) {
            /* clef, middle=, stafflines= ... : layout only */
        } else {
            snprintf(err, errsz, "unexpected '%.*s' in key", (int)n, w);
            return false;
        }
    }
    return true;
}

/* strtol() without its locale machinery for the common case, a run of ASCII digits. The callers only
 * compare the value with small bounds, so a huge one may saturate. */
static long read_long(const char *s, char **end)
{
    if (!(*s >= '0' && *s <= '9'))
        return strtol(s, end, 10);
    long v = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        if (v < 100000000)
            v = v * 10 + (*s - '0');
    *end = (char *)s;
    return v;
}

/* Numerator: digits joined by '+', optionally in parentheses. */
bool abc_parse_meter(const char *value, abc_meter *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    const char *s = skip_ws(value);
    if (!*s || !strcasecmp(s, "none")) {
        out->kind = ABC_METER_NONE;
        return true;
    }
    if (s[0] == 'C' && s[1] == '|' && !*skip_ws(s + 2)) {
        *out = (abc_meter){ABC_METER_CUT, 2, 2};
        return true;
    }
    if (s[0] == 'C' && !*skip_ws(s + 1)) {
        *out = (abc_meter){ABC_METER_COMMON, 4, 4};
        return true;
    }
    bool paren = *s == '(';
    if (paren)
        s++;
    int num = 0;
    for (;;) {
        s = skip_ws(s);
        if (!isdigit((unsigned char)*s))
            goto bad;
        long v = read_long(s, (char **)&s);
        if (v <= 0 || v > 1000)
            goto bad;
        num += (int)v;
        s = skip_ws(s);
        if (*s != '+')
            break;
        s++;
    }
    if (paren) {
        if (*s != ')')
            goto bad;
        s = skip_ws(s + 1);
    }
    if (*s != '/')
        goto bad;
    s = skip_ws(s + 1);
    if (!isdigit((unsigned char)*s))
        goto bad;
    long den = read_long(s, (char **)&s);
    if (den <= 0 || den > 1000 || *skip_ws(s) || num > 1000)
        goto bad;
    *out = (abc_meter){ABC_METER_FRACTION, num, (int)den};
    return true;
bad:
    snprintf(err, errsz, "invalid meter '%s'", value);
    return false;
}

bool abc_parse_unit(const char *value, abc_frac *out, char *err, size_t errsz)
{
    const char *s = skip_ws(value);
    char *e;
    long num = read_long(s, &e), den = 1;
    if (e == s || num <= 0 || num > 1000)
        goto bad;
    s = skip_ws(e);
    if (*s == '/') {
        s = skip_ws(s + 1);
        den = read_long(s, &e);
        if (e == s || den <= 0 || den > 1000)
            goto bad;
        s = e;
    }
    if (*skip_ws(s))
        goto bad;
    *out = abc_frac_make(num, den);
    return true;
bad:
    snprintf(err, errsz, "invalid unit note length '%s' (write e.g. L:1/8)", value);
    return false;
}

bool abc_parse_tempo(const char *value, abc_frac default_beat, abc_tempo *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    out->given = true;
    out->beat = (abc_frac){0, 1};
    const char *s = value;
    bool have_beat = false;
    while (*(s = skip_ws(s))) {
        if (*s == '"') {
            const char *q = strchr(s + 1, '"');
            if (!q) {
                snprintf(err, errsz, "unterminated text in tempo");
                return false;
            }
            out->text = value;
            s = q + 1;
            continue;
        }
        if (*s == '=') {
            s = skip_ws(s + 1);
            char *e;
            long bpm = strtol(s, &e, 10);
            if (e == s || bpm <= 0 || bpm > 10000)
                goto bad;
            out->bpm = (int)bpm;
            s = e;
            continue;
        }
        if (isdigit((unsigned char)*s)) {
            char *e;
            long num = strtol(s, &e, 10);
            if (*e == '/') {
                char *e2;
                long den = strtol(e + 1, &e2, 10);
                if (e2 == e + 1 || den <= 0 || den > 1000 || num <= 0 || num > 1000)
                    goto bad;
                out->beat = abc_frac_add(out->beat, abc_frac_make(num, den));
                have_beat = true;
                s = e2;
            } else {
                if (num <= 0 || num > 10000)
                    goto bad;
                out->bpm = (int)num; /* legacy Q:120 counts unit notes */
                s = e;
            }
            continue;
        }
        if (*s == 'C' || *s == 'L') { /* legacy C=120 / L=120: the unit note */
            s++;
            continue;
        }
        goto bad;
    }
    if (!have_beat)
        out->beat = default_beat;
    return true;
bad:
    snprintf(err, errsz, "invalid tempo '%s' (write e.g. Q:1/4=120)", value);
    return false;
}

abc_frac abc_meter_bar_length(abc_meter m)
{
    if (m.kind == ABC_METER_NONE || m.den <= 0)
        return (abc_frac){0, 1};
    return abc_frac_make(m.num, m.den);
}

void abc_meter_fraction(abc_meter m, char *buf, size_t size)
{
    if (m.kind == ABC_METER_NONE)
        snprintf(buf, size, "none");
    else
        snprintf(buf, size, "%d/%d", m.num, m.den);
}

abc_frac abc_default_unit(abc_meter m)
{
    if (m.kind == ABC_METER_NONE || m.den <= 0)
        return (abc_frac){1, 8};
    return 4 * m.num < 3 * m.den ? (abc_frac){1, 16} : (abc_frac){1, 8};
}

bool abc_meter_is_compound(abc_meter m)
{
    return m.kind == ABC_METER_FRACTION && m.num % 3 == 0 && m.num > 3;
}

int abc_tuplet_default_q(int p, bool compound)
{
    switch (p) {
    case 2: return 3;
    case 3: return 2;
    case 4: return 3;
    case 6: return 2;
    case 8: return 3;
    default: return compound ? 3 : 2;
    }
}
