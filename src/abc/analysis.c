/* Whole-tune analysis: counts, meter, keys, range, duration, chords per bar, histogram, form. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "abc_internal.h"
#include "analysis_internal.h"

/* ---------------------------------------------------------------- chord symbol spelling */

/* root or bass at s: letter and accidentals ('#', '+' sharp, 'b' flat) in normal spelling. */
static size_t put_note_name(abc_buf *b, const char *s)
{
    if (!s[0] || !strchr("ABCDEFGabcdefg", s[0]))
        return 0;
    abc_buf_putc(b, (char)toupper((unsigned char)s[0]));
    size_t i = 1;
    for (; s[i] == '#' || s[i] == '+' || s[i] == 'b'; i++)
        abc_buf_putc(b, s[i] == 'b' ? 'b' : '#');
    return i;
}

static void normalize_word(abc_buf *b, const char *w, size_t n)
{
    size_t i = 0, end = n;
    while (i < end && w[i] == '(')
        i++;
    while (end > i && w[end - 1] == ')')
        end--;
    size_t r = put_note_name(b, w + i);
    if (!r) {
        abc_buf_putn(b, w, n);
        return;
    }
    i += r;
    /* Nottingham: a lone d or a after the root (before digits or the bass) is dim or aug */
    if (i < end && (w[i] == 'd' || w[i] == 'a') && (i + 1 == end || isdigit((unsigned char)w[i + 1]) ||
                                                    w[i + 1] == '/')) {
        abc_buf_puts(b, w[i] == 'd' ? "dim" : "aug");
        i++;
    }
    const char *slash = memchr(w + i, '/', end - i);
    size_t q = slash ? (size_t)(slash - w) : end;
    abc_buf_putn(b, w + i, q - i);
    if (!slash)
        return;
    abc_buf_putc(b, '/');
    size_t rb = put_note_name(b, w + q + 1);
    abc_buf_putn(b, w + q + 1 + rb, end - q - 1 - rb);
}

void abc_chord_normalize(const char *text, char *buf, size_t size)
{
    abc_buf b = {0};
    const char *s = text;
    while (*s == ' ')
        s++;
    while (*s) {
        const char *w = s;
        while (*s && *s != ' ')
            s++;
        normalize_word(&b, w, (size_t)(s - w));
        while (*s == ' ')
            s++;
        if (*s)
            abc_buf_putc(&b, ' ');
    }
    if (size) {
        size_t n = b.oom || !b.s ? 0 : (b.n < size - 1 ? b.n : size - 1);
        if (n)
            memcpy(buf, b.s, n);
        buf[n] = '\0';
    }
    free(b.s);
}

/* ---------------------------------------------------------------- analysis */

/* The meter in force at the first note: header M: (last one), then body M: fields before the first note. */
static abc_meter first_meter(const abc_tune *t, const abc_model *m)
{
    abc_meter meter = m->meter, v;
    char err[64];
    for (size_t i = 0; i < t->n_header; i++)
        if (t->header[i].key == 'M' && abc_parse_meter(t->header[i].value, &v, err, sizeof err))
            meter = v;
    for (size_t i = 0; i < t->n_body; i++) {
        const abc_element *e = &t->body[i];
        if (e->kind == ABC_EL_NOTE || e->kind == ABC_EL_REST)
            break;
        if (e->kind == ABC_EL_FIELD && e->u.field.key == 'M' && abc_parse_meter(e->u.field.value, &v, err, sizeof err))
            meter = v;
    }
    return meter;
}

static abc_frac default_beat(abc_meter meter)
{
    if (meter.kind == ABC_METER_NONE || meter.den <= 0)
        return abc_frac_make(1, 4);
    if (meter.num > 3 && meter.num % 3 == 0 && meter.den >= 8) /* compound: the dotted beat */
        return abc_frac_make(3, meter.den);
    return abc_frac_make(1, meter.den);
}

static void pitch_stats(const abc_model *m, abc_analysis *a)
{
    a->lowest = a->highest = -1;
    for (size_t v = 0; v < m->n_voices; v++)
        for (size_t i = 0; i < m->voices[v].n_events; i++) {
            const abc_event *e = &m->voices[v].events[i];
            if ((e->flags & ABC_EV_REST) || e->pitch < 0 || e->pitch > 127)
                continue;
            a->pc_weight[e->pitch % 12] += 4 * abc_frac_to_double(e->dur);
            if (e->flags & ABC_EV_TIED)
                continue;
            a->pitch_count[e->pitch]++;
            a->n_notes++;
            if (a->lowest < 0 || e->pitch < a->lowest)
                a->lowest = e->pitch;
            if (e->pitch > a->highest)
                a->highest = e->pitch;
        }
    a->final_pitch = -1;
    if (m->n_voices == 0)
        return;
    const abc_voice *v0 = &m->voices[0];
    const abc_event *ev = v0->n_played ? v0->played : v0->events;
    for (size_t i = v0->n_played ? v0->n_played : v0->n_events; i-- > 0;)
        if (!(ev[i].flags & (ABC_EV_REST | ABC_EV_GRACE)) && ev[i].pitch >= 0) {
            a->final_pitch = ev[i].pitch;
            break;
        }
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

/* Chord symbols of the first voice per written bar that holds music. */
static int chords_per_bar(const abc_model *m, abc_analysis *a)
{
    a->chords = calloc(m->n_bars ? m->n_bars : 1, sizeof *a->chords);
    int *slot = malloc((m->n_bars ? m->n_bars : 1) * sizeof *slot);
    if (!a->chords || !slot) {
        free(slot);
        return -1;
    }
    for (size_t b = 0; b < m->n_bars; b++) {
        slot[b] = m->bars[b].len.num > 0 ? (int)a->n_chord_bars : -1;
        if (slot[b] >= 0)
            a->chords[a->n_chord_bars++].number = m->bars[b].number;
    }
    int rc = 0;
    for (size_t i = 0; i < m->n_chords && rc == 0; i++) {
        const abc_chord_symbol *c = &m->chords[i];
        if (c->voice != 0 || c->bar < 0 || (size_t)c->bar >= m->n_bars || slot[c->bar] < 0)
            continue;
        abc_bar_chords *bc = &a->chords[slot[c->bar]];
        char norm[256];
        abc_chord_normalize(c->text, norm, sizeof norm);
        char **nc = realloc(bc->chords, (bc->n + 1) * sizeof *nc);
        if (nc)
            bc->chords = nc;
        char **nr = realloc(bc->raw, (bc->n + 1) * sizeof *nr);
        if (nr)
            bc->raw = nr;
        if (!nc || !nr) {
            rc = -1;
            break;
        }
        bc->chords[bc->n] = dup_str(norm);
        bc->raw[bc->n] = dup_str(c->text);
        bc->n++;
        if (!bc->chords[bc->n - 1] || !bc->raw[bc->n - 1])
            rc = -1;
    }
    free(slot);
    return rc;
}

int abc_analyze(const abc_tune *t, const abc_model *m, abc_analysis *a)
{
    memset(a, 0, sizeof *a);
    for (size_t b = 0; b < m->n_bars; b++)
        a->bars_written += m->bars[b].len.num > 0;
    for (size_t i = 0; i < m->n_play; i++)
        a->bars_played += m->play_order[i] >= 0 && (size_t)m->play_order[i] < m->n_bars &&
                          m->bars[m->play_order[i]].len.num > 0;
    a->n_voices = m->n_voices;
    a->meter = first_meter(t, m);
    a->rhythm_type = abc_rhythm_type_of(m, a->meter);
    /* the collection's field: the first K: (a second K: before the music is a key change) */
    const char *k = abc_tune_field(t, 'K');
    char err[128];
    if (!k || !abc_parse_key(k, &a->declared, err, sizeof err))
        memset(&a->declared, 0, sizeof a->declared);
    a->key_declared = k && !a->declared.none && a->declared.tonic_letter;

    pitch_stats(m, a);
    int final_pc = a->final_pitch >= 0 ? a->final_pitch % 12 : -1;
    a->keys_detected = abc_detect_key_ks(a->pc_weight, &a->ks);
    abc_detect_key(a->pc_weight, final_pc, &a->key);
    abc_detect_mode(a->pc_weight, final_pc, &a->modal);

    a->duration = m->duration_played.num > 0 ? m->duration_played : m->duration;
    a->tempo_given = m->tempo.given && m->tempo.bpm > 0 && m->tempo.beat.num > 0;
    a->beat = m->tempo.given && m->tempo.beat.num > 0 ? m->tempo.beat : default_beat(a->meter);
    a->beats = abc_frac_to_double(abc_frac_div(a->duration, a->beat));
    abc_frac tempo_beat = a->tempo_given ? m->tempo.beat : abc_frac_make(1, 4);
    int bpm = a->tempo_given ? m->tempo.bpm : 120;
    a->seconds = abc_frac_to_double(abc_frac_div(a->duration, tempo_beat)) * 60.0 / bpm;

    if (chords_per_bar(m, a) || abc_form_detect(m, a->meter, a)) {
        abc_analysis_free(a);
        return -1;
    }
    return 0;
}

void abc_analysis_free(abc_analysis *a)
{
    for (size_t b = 0; b < a->n_chord_bars && a->chords; b++) {
        for (size_t i = 0; i < a->chords[b].n; i++) {
            free(a->chords[b].chords[i]);
            free(a->chords[b].raw[i]);
        }
        free(a->chords[b].chords);
        free(a->chords[b].raw);
    }
    free(a->chords);
    free(a->form);
    free(a->sections);
    memset(a, 0, sizeof *a);
}
