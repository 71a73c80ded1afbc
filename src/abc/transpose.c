/* Transposition by semitones at the syntax level (see melodist/abc_transpose.h for the method).
 *
 * Pitches are handled as diatonic numbers: D = 7 * octave + letter (C = 0 .. B = 6, octave 0 from middle C),
 * whose natural pitch is semis(D) semitones above middle C. A transposition by k semitones within one key
 * moves every note by dt letter steps (the interval between the old and new tonic letters); the accidental
 * that makes the new note sound k higher is then k - (semis(D + dt) - semis(D)) plus the old one. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abc_internal.h"
#include "melodist/abc_transpose.h"

#define OCTAVE_LIMIT 10 /* written octaves a transposed note may reach: -10..+10 */
#define NO_CARRY 127

static const char letters[] = "CDEFGAB";
static const int nat_semi[7] = {0, 2, 4, 5, 7, 9, 11};
/* Diatonic degree of each mode's tonic in its parent major scale, by abc_mode. */
static const int mode_degree[] = {0, 5, 4, 1, 2, 3, 6};

static int floordiv(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int mod(int a, int b) { return a - b * floordiv(a, b); }
static int semis(int d) { return 12 * floordiv(d, 7) + nat_semi[mod(d, 7)]; }
static int letter_index(char c) { return (int)(strchr(letters, toupper((unsigned char)c)) - letters); }
static bool is_letter(char c) { return c && strchr("ABCDEFGabcdefg", c); }

/* How one key moves: new tonic spelling and the diatonic steps every note of the key moves by. */
typedef struct key_move {
    abc_key old, new;
    int dt;
    int tonic_letter, tonic_acc; /* new tonic (meaningful when !old.none) */
} key_move;

/* The transposed tonic of a key with `sharps` in its signature, spelled with the fewest accidentals
 * (6 sharps against 6 flats: the direction of the move decides), and the letter steps from the old tonic. */
static void move_tonic(int old_letter, int old_acc, int sharps, abc_mode mode, int k, key_move *mv)
{
    int t = sharps + 7 * k;
    int r = mod(t, 12), v = r;
    if (r > 6 || (r == 6 && t < 0))
        v = r - 12;
    int major_letter = mod(4 * v, 7), major_pc = mod(7 * v, 12);
    int deg = mode_degree[mode];
    int letter = mod(major_letter + deg, 7);
    int pc = mod(major_pc + nat_semi[deg], 12); /* the major scale's steps are those of C's letters */
    int acc = mod(pc - nat_semi[letter] + 6, 12) - 6;
    int d0 = mod(letter - old_letter, 7);
    int base = semis(old_letter + d0) - semis(old_letter) + acc - old_acc;
    mv->tonic_letter = letter;
    mv->tonic_acc = acc;
    mv->dt = d0 + 7 * floordiv(k - base, 12); /* k - base is a multiple of 12: the tonic pitch classes agree */
}

int abc_interval_steps(int semitones)
{
    key_move mv;
    move_tonic(0, 0, 0, ABC_MODE_MAJOR, semitones, &mv);
    return mv.dt;
}

/* An accidental value -2..2 as ABC text ("=" for 0 when explicit). */
static const char *acc_text(int a)
{
    static const char *t[] = {"__", "_", "=", "^", "^^"};
    return t[a + 2];
}

static abc_accidental acc_enum(int a)
{
    static const abc_accidental t[] = {ABC_ACC_DFLAT, ABC_ACC_FLAT, ABC_ACC_NATURAL, ABC_ACC_SHARP,
                                       ABC_ACC_DSHARP};
    return t[a + 2];
}

/* Rewrite one explicit key accidental token ("^f", "__B") moved by dt steps / k semitones into b.
 * A token that would need a triple accidental is dropped: the notes then get explicit accidentals. */
static void move_key_accidental(abc_buf *b, const char *w, size_t n, const key_move *mv, int k)
{
    int a = w[0] == '=' ? 0 : (w[0] == '^' ? 1 : -1) * (int)(n - 1);
    char l = w[n - 1];
    int d = letter_index(l) + (islower((unsigned char)l) ? 7 : 0), d2 = d + mv->dt;
    int a2 = a + k - (semis(d2) - semis(d));
    if (a2 < -2 || a2 > 2)
        return;
    abc_buf_puts(b, acc_text(a2));
    char nl = letters[mod(d2, 7)];
    abc_buf_putc(b, floordiv(d2, 7) > 0 ? (char)tolower((unsigned char)nl) : nl);
}

/* An explicit key accidental token at s ("^f", "__B", "=c"): its length, or 0. */
static size_t key_accidental_len(const char *s)
{
    size_t i = 0;
    if (s[0] == '=')
        i = 1;
    else
        while (i < 2 && (s[i] == '^' || s[i] == '_') && s[i] == s[0])
            i++;
    return i && is_letter(s[i]) ? i + 1 : 0;
}

/* The K: value with the transposed tonic and explicit accidentals; everything else exactly as written. */
static char *move_key_text(const char *value, const key_move *mv, int k)
{
    abc_buf b = {0};
    const char *s = value;
    while (*s == ' ' || *s == '\t')
        abc_buf_putc(&b, *s++);
    s += 1 + (s[1] == '#' || s[1] == 'b');
    abc_buf_putc(&b, letters[mv->tonic_letter]);
    if (mv->tonic_acc)
        abc_buf_putc(&b, mv->tonic_acc > 0 ? '#' : 'b');
    while (*s) {
        if (*s == ' ' || *s == '\t') {
            abc_buf_putc(&b, *s++);
            continue;
        }
        /* a word: a mode ("phr", "minor") with accidentals glued on, or a property (clef=bass) */
        const char *w = s;
        while (isalpha((unsigned char)*s))
            s++;
        abc_buf_putn(&b, w, (size_t)(s - w));
        if (*s == '=' && s > w) {
            while (*s && *s != ' ' && *s != '\t')
                abc_buf_putc(&b, *s++);
            continue;
        }
        for (size_t n; (n = key_accidental_len(s)) != 0; s += n)
            move_key_accidental(&b, s, n, mv, k);
        while (*s && *s != ' ' && *s != '\t')
            abc_buf_putc(&b, *s++);
    }
    abc_buf_putc(&b, '\0');
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* Decide how the key `value` moves by k; with the new field text in *text (malloc'd; NULL: unchanged). */
static int plan_key(const char *value, int k, key_move *mv, char **text, char *err, size_t errsz)
{
    char kerr[128];
    memset(mv, 0, sizeof *mv);
    *text = NULL;
    if (!value || !abc_parse_key(value, &mv->old, kerr, sizeof kerr)) {
        /* unreadable key: the model reads it as no signature, so transpose pitches only */
        memset(&mv->old, 0, sizeof mv->old);
        mv->old.none = true;
    }
    if (mv->old.none) {
        move_tonic(0, 0, 0, ABC_MODE_MAJOR, k, mv);
        mv->new = mv->old;
        return 0;
    }
    move_tonic(letter_index(mv->old.tonic_letter), mv->old.tonic_acc, mv->old.sharps, mv->old.mode, k, mv);
    *text = move_key_text(value, mv, k);
    if (!*text || !abc_parse_key(*text, &mv->new, kerr, sizeof kerr)) {
        snprintf(err, errsz, "cannot transpose key '%s'%s%s", value, *text ? ": " : " (out of memory)",
                 *text ? kerr : "");
        free(*text);
        *text = NULL;
        return -1;
    }
    return 0;
}

/* What decides the pitch of a note without an accidental, as the model reads it (model.c): an accidental
 * written earlier in the bar on the same letter (in any octave), else the key signature; and a note tied
 * from the previous note or chord on the same letter and octave keeps that note's pitch. Kept for the old
 * text and the new one. */
#define MAX_TIES 16
typedef struct voice_state {
    const char *id;
    key_move mv;
    int8_t carry_old[7], carry_new[7];
    int ties[MAX_TIES], n_ties;           /* diatonic numbers (old text) tied into the next note or chord */
    int next_ties[MAX_TIES], n_next_ties;
    int chord[MAX_TIES], n_chord;         /* notes of the open [chord], for a tie after its ']' */
    bool in_chord, in_grace;
} voice_state;

static void reset_carry(voice_state *v)
{
    memset(v->carry_old, NO_CARRY, sizeof v->carry_old);
    memset(v->carry_new, NO_CARRY, sizeof v->carry_new);
}

/* Accidental a note without one gets: the bar's carry, else the key signature. */
static int implied_acc(const int8_t *carry, const abc_key *key, int d)
{
    return carry[mod(d, 7)] != NO_CARRY ? carry[mod(d, 7)] : key->sig[mod(d, 7)];
}

static bool tied_into(const voice_state *v, int d)
{
    for (int i = 0; i < v->n_ties; i++)
        if (v->ties[i] == d)
            return true;
    return false;
}

/* After a note or chord: its ties become the pending ones. */
static void close_ties(voice_state *v)
{
    memcpy(v->ties, v->next_ties, sizeof v->ties);
    v->n_ties = v->n_next_ties;
    v->n_next_ties = 0;
}

static void add_tie(voice_state *v, int d)
{
    if (v->n_next_ties < MAX_TIES)
        v->next_ties[v->n_next_ties++] = d;
}

/* Returns -1 when the note would leave the written octaves. */
static int move_note(abc_note *n, voice_state *v, int k)
{
    int d = 7 * n->octave + letter_index(n->letter);
    bool keeps_tied_pitch = !v->in_grace && n->acc == ABC_ACC_NONE && tied_into(v, d);
    int a = implied_acc(v->carry_old, &v->mv.old, d);
    if (n->acc != ABC_ACC_NONE) {
        a = abc_accidental_semitones(n->acc);
        v->carry_old[mod(d, 7)] = (int8_t)a;
    }
    int target = semis(d) + a + k;
    int d2 = d + v->mv.dt;
    int want = target - semis(d2);
    while (!keeps_tied_pitch && (want > 2 || want < -2)) { /* respell on the neighbouring letter */
        d2 += want > 0 ? 1 : -1;
        want = target - semis(d2);
    }
    if (floordiv(d2, 7) < -OCTAVE_LIMIT || floordiv(d2, 7) > OCTAVE_LIMIT)
        return -1;
    if (!keeps_tied_pitch && (n->acc != ABC_ACC_NONE || want != implied_acc(v->carry_new, &v->mv.new, d2))) {
        n->acc = acc_enum(want);
        v->carry_new[mod(d2, 7)] = (int8_t)want;
    }
    if (!v->in_grace) {
        if (n->tie)
            add_tie(v, d);
        if (v->in_chord && v->n_chord < MAX_TIES)
            v->chord[v->n_chord++] = d;
        else if (!v->in_chord)
            close_ties(v);
    }
    n->letter = letters[mod(d2, 7)];
    n->octave = (int8_t)floordiv(d2, 7);
    return 0;
}

/* ---------------------------------------------------------------- chord symbols */

/* A chord root or bass: letter (either case) and '#', 'b' or the Nottingham '+' (sharp) after it. */
static size_t read_root(const char *s, int *letter, int *acc, char *sharp_style)
{
    if (!is_letter(s[0]))
        return 0;
    *letter = letter_index(s[0]);
    *acc = 0;
    *sharp_style = '#';
    size_t i = 1;
    while (s[i] == '#' || s[i] == '+' || s[i] == 'b') {
        if (s[i] == '+')
            *sharp_style = '+';
        *acc += s[i] == 'b' ? -1 : 1;
        i++;
    }
    return i;
}

static void put_root(abc_buf *b, char written, int letter, int acc, int k, int dt, char sharp_style)
{
    int d = letter, d2 = d + dt;
    int want = acc + k - (semis(d2) - semis(d));
    while (want > 1 || want < -1) {
        d2 += want > 0 ? 1 : -1;
        want = acc + k - (semis(d2) - semis(d));
    }
    char l = letters[mod(d2, 7)];
    abc_buf_putc(b, islower((unsigned char)written) ? (char)tolower((unsigned char)l) : l);
    if (want)
        abc_buf_putc(b, want > 0 ? sharp_style : 'b');
}

/* Chord qualities are made of these letters (m, maj, min, dim, aug, sus, add, and the Nottingham d/a);
 * a word with others ("From", "Vocal") is text, not a chord. */
static bool is_quality(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isalpha((unsigned char)s[i]) && !strchr("majindusgMAJ", s[i]))
            return false;
    return true;
}

static void move_chord_word(abc_buf *b, const char *w, size_t n, int k, int dt)
{
    size_t i = 0;
    while (i < n && w[i] == '(')
        abc_buf_putc(b, w[i++]);
    int letter, acc;
    char style;
    size_t r = read_root(w + i, &letter, &acc, &style);
    const char *slash = memchr(w + i, '/', n - i);
    size_t qend = slash ? (size_t)(slash - w) : n;
    if (!r || i + r > qend || !is_quality(w + i + r, qend - i - r)) {
        abc_buf_putn(b, w + i, n - i);
        return;
    }
    put_root(b, w[i], letter, acc, k, dt, style);
    abc_buf_putn(b, w + i + r, qend - i - r);
    if (!slash)
        return;
    abc_buf_putc(b, '/');
    size_t j = qend + 1;
    size_t rb = j < n ? read_root(w + j, &letter, &acc, &style) : 0;
    if (rb && j + rb <= n) {
        put_root(b, w[j], letter, acc, k, dt, style);
        j += rb;
    }
    abc_buf_putn(b, w + j, n - j);
}

void abc_transpose_chord_symbol(const char *text, int semitones, int dsteps, char *out, size_t outsz)
{
    abc_buf b = {0};
    const char *s = text;
    while (*s) {
        const char *w = s;
        while (*s && *s != ' ')
            s++;
        move_chord_word(&b, w, (size_t)(s - w), semitones, dsteps);
        while (*s == ' ')
            abc_buf_putc(&b, *s++);
    }
    if (outsz) {
        size_t n = b.oom || !b.s ? 0 : (b.n < outsz - 1 ? b.n : outsz - 1);
        if (n)
            memcpy(out, b.s, n);
        out[n] = '\0';
    }
    free(b.s);
}

/* ---------------------------------------------------------------- whole tune */

typedef struct voices {
    voice_state *v;
    size_t n, cap;
    key_move header;
} voices;

/* The state of voice `id`, created with the header key on first use. */
static voice_state *voice_get(voices *vs, const char *id)
{
    for (size_t i = 0; i < vs->n; i++)
        if (!strcmp(vs->v[i].id, id))
            return &vs->v[i];
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? 2 * vs->cap : 4;
        voice_state *nv = realloc(vs->v, cap * sizeof *nv);
        if (!nv)
            return NULL;
        vs->v = nv;
        vs->cap = cap;
    }
    voice_state *v = &vs->v[vs->n++];
    *v = (voice_state){.id = id, .mv = vs->header};
    reset_carry(v);
    return v;
}

/* V: value -> voice id (first word), in the file's arena. */
static const char *voice_id(abc_file *f, const char *value)
{
    size_t n = strcspn(value, " \t");
    char buf[64];
    snprintf(buf, sizeof buf, "%.*s", (int)(n < 63 ? n : 63), value);
    return abc_file_strdup(f, buf);
}

/* Re-key field `value` (pointer to the field's value) and store the new text in the arena. */
static int move_key_field(abc_file *f, const char **value, int k, key_move *mv, char *err, size_t errsz)
{
    char *text;
    if (plan_key(*value, k, mv, &text, err, errsz))
        return -1;
    if (text) {
        *value = abc_file_strdup(f, text);
        free(text);
        if (!*value) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
    }
    return 0;
}

int abc_transpose_tune(abc_file *f, size_t index, int semitones, char *err, size_t errsz)
{
    if (index >= f->n_tunes) {
        snprintf(err, errsz, "no tune %zu", index);
        return -1;
    }
    abc_tune *t = &f->tunes[index];
    int k = semitones;
    voices vs = {0};
    bool have_key = false;
    for (size_t i = 0; i < t->n_header; i++)
        if (t->header[i].key == 'K') {
            if (move_key_field(f, &t->header[i].value, k, &vs.header, err, errsz))
                return -1;
            have_key = true;
        }
    if (!have_key) {
        char *unchanged;
        plan_key(NULL, k, &vs.header, &unchanged, err, errsz);
    }
    int rc = 0;
    voice_state *cur = voice_get(&vs, "");
    for (size_t i = 0; i < t->n_body && rc == 0 && cur; i++) {
        abc_element *e = &t->body[i];
        switch (e->kind) {
        case ABC_EL_NOTE:
            rc = move_note(&e->u.note, cur, k);
            if (rc)
                snprintf(err, errsz, "line %d:%d: transposed note leaves the range of written octaves", e->line,
                         e->col);
            break;
        case ABC_EL_BAR:
            reset_carry(cur);
            break;
        case ABC_EL_CHORD_BEGIN:
            cur->in_chord = true;
            cur->n_chord = 0;
            break;
        case ABC_EL_CHORD_END:
            cur->in_chord = false;
            for (int c = 0; e->u.chord.tie && c < cur->n_chord; c++)
                add_tie(cur, cur->chord[c]);
            close_ties(cur);
            break;
        case ABC_EL_GRACE_BEGIN:
        case ABC_EL_GRACE_END:
            cur->in_grace = e->kind == ABC_EL_GRACE_BEGIN;
            break;
        case ABC_EL_CHORD_SYMBOL: {
            size_t size = 2 * strlen(e->u.text.text) + 1; /* a note name grows by one character at most */
            char *buf = malloc(size);
            if (buf) {
                abc_transpose_chord_symbol(e->u.text.text, k, cur->mv.dt, buf, size);
                e->u.text.text = abc_file_strdup(f, buf);
                free(buf);
            }
            if (!buf || !e->u.text.text) {
                snprintf(err, errsz, "out of memory");
                rc = -1;
            }
            break;
        }
        case ABC_EL_FIELD:
            if (e->u.field.key == 'K')
                rc = move_key_field(f, &e->u.field.value, k, &cur->mv, err, errsz);
            else if (e->u.field.key == 'V') {
                const char *id = voice_id(f, e->u.field.value);
                cur = id ? voice_get(&vs, id) : NULL;
            }
            break;
        default:
            break;
        }
    }
    if (!cur && rc == 0) {
        snprintf(err, errsz, "out of memory");
        rc = -1;
    }
    free(vs.v);
    return rc;
}

int abc_transpose_interval_to(const abc_tune *t, const char *key, int *semitones, char *err, size_t errsz)
{
    abc_key from, to;
    char kerr[128];
    const char *v = abc_tune_field(t, 'K');
    if (!abc_parse_key(key, &to, kerr, sizeof kerr) || to.none) {
        snprintf(err, errsz, "cannot read target key '%s'%s%s (write it like a K: field: G, Bb, F#m, Ddor)", key,
                 to.none ? "" : ": ", to.none ? "" : kerr);
        return -1;
    }
    if (!v || !abc_parse_key(v, &from, kerr, sizeof kerr) || from.none) {
        snprintf(err, errsz, "the tune has no key with a tonic (K:%s); use -k N", v ? v : "");
        return -1;
    }
    int d = mod(to.tonic_pc - from.tonic_pc, 12);
    *semitones = d >= 6 ? d - 12 : d;
    return 0;
}
