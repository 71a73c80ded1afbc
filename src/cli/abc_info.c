/* melodist abc info: what a tune is (title, key, meter, unit, tempo, bars, voices, duration). */
#include <stdio.h>
#include <string.h>

#include "abc_analysis_print.h"
#include "abc_commands.h"
#include "abc_input.h"
#include "melodist/json.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: melodist abc info [--json] [--tune X] [FILE]   (FILE '-' or none: stdin)\n"
            "\n"
            "For every tune (or the one with X:X): titles, composer, origin, rhythm, key, meter, unit length,\n"
            "tempo, bars written and played (repeats expanded), voices with their note counts, and the\n"
            "duration in whole notes and seconds (at Q:, or 1/4=120 when no tempo is given).\n"
            "\n"
            "exit status: 0 ok, 1 unreadable input or no such tune, 2 usage error\n");
}

static const char *mode_name(abc_mode m)
{
    static const char *names[] = {"major", "minor", "mixolydian", "dorian", "phrygian", "lydian", "locrian"};
    return names[m];
}

static double seconds(const abc_model *m, abc_frac whole)
{
    abc_frac beat = m->tempo.given && m->tempo.bpm ? m->tempo.beat : (abc_frac){1, 4};
    int bpm = m->tempo.given && m->tempo.bpm ? m->tempo.bpm : 120;
    if (beat.num == 0)
        beat = (abc_frac){1, 4};
    return abc_frac_to_double(abc_frac_div(whole, beat)) * 60.0 / bpm;
}

static size_t note_count(const abc_voice *v)
{
    size_t n = 0;
    for (size_t i = 0; i < v->n_events; i++)
        n += !(v->events[i].flags & (ABC_EV_REST | ABC_EV_GRACE | ABC_EV_TIED));
    return n;
}

static void key_text(const abc_key *k, char *buf, size_t size)
{
    if (k->none)
        snprintf(buf, size, "none");
    else
        snprintf(buf, size, "%c%s %s", k->tonic_letter, k->tonic_acc > 0 ? "#" : k->tonic_acc < 0 ? "b" : "",
                 mode_name(k->mode));
}

static void meter_text(const abc_meter *m, char *buf, size_t size)
{
    if (m->kind == ABC_METER_NONE)
        snprintf(buf, size, "none");
    else if (m->kind == ABC_METER_COMMON)
        snprintf(buf, size, "C");
    else if (m->kind == ABC_METER_CUT)
        snprintf(buf, size, "C|");
    else
        snprintf(buf, size, "%d/%d", m->num, m->den);
}

static void json_field(const char *name, const char *value)
{
    printf(",\"%s\":", name);
    if (value)
        json_fput_string(stdout, value);
    else
        printf("null");
}

static void print_json(const abc_file *f, size_t t, const abc_model *m, bool first)
{
    char key[32], meter[32];
    key_text(&m->key, key, sizeof key);
    meter_text(&m->meter, meter, sizeof meter);
    printf("%s{\"x\":%d,\"line\":%d", first ? "" : ",", m->x, f->tunes[t].first_line);
    json_field("title", m->n_titles ? m->titles[0] : NULL);
    printf(",\"titles\":[");
    for (size_t i = 0; i < m->n_titles; i++) {
        printf("%s", i ? "," : "");
        json_fput_string(stdout, m->titles[i]);
    }
    printf("]");
    json_field("composer", m->composer);
    json_field("origin", m->origin);
    json_field("rhythm", m->rhythm);
    json_field("key_field", abc_tune_field(&f->tunes[t], 'K'));
    json_field("key", key);
    printf(",\"key_tonic\":\"%c%s\",\"key_mode\":\"%s\",\"key_sharps\":%d", m->key.none ? 'C' : m->key.tonic_letter,
           m->key.tonic_acc > 0 ? "#" : m->key.tonic_acc < 0 ? "b" : "", m->key.none ? "none" : mode_name(m->key.mode),
           m->key.sharps);
    json_field("meter", meter);
    printf(",\"unit\":\"%lld/%lld\"", (long long)m->unit.num, (long long)m->unit.den);
    if (m->tempo.given && m->tempo.bpm)
        printf(",\"tempo\":{\"beat\":\"%lld/%lld\",\"bpm\":%d}", (long long)m->tempo.beat.num,
               (long long)m->tempo.beat.den, m->tempo.bpm);
    else
        printf(",\"tempo\":null");
    printf(",\"bars_written\":%zu,\"bars_played\":%zu,\"voices\":[", m->n_bars, m->n_play);
    for (size_t v = 0; v < m->n_voices; v++) {
        printf("%s{\"id\":", v ? "," : "");
        json_fput_string(stdout, m->voices[v].id);
        json_field("name", m->voices[v].name);
        printf(",\"notes\":%zu,\"bars\":%zu}", note_count(&m->voices[v]), m->voices[v].n_bars);
    }
    printf("],\"chord_symbols\":%zu", m->n_chords);
    printf(",\"duration_whole_notes\":\"%lld/%lld\",\"duration_played_whole_notes\":\"%lld/%lld\"",
           (long long)m->duration.num, (long long)m->duration.den, (long long)m->duration_played.num,
           (long long)m->duration_played.den);
    printf(",\"seconds\":%.3f,\"seconds_played\":%.3f", seconds(m, m->duration), seconds(m, m->duration_played));
}

static void print_text(const abc_model *m)
{
    char key[32], meter[32];
    key_text(&m->key, key, sizeof key);
    meter_text(&m->meter, meter, sizeof meter);
    printf("X:%d %s\n", m->x, m->n_titles ? m->titles[0] : "(untitled)");
    if (m->composer)
        printf("  composer: %s\n", m->composer);
    if (m->origin)
        printf("  origin:   %s\n", m->origin);
    if (m->rhythm)
        printf("  rhythm:   %s\n", m->rhythm);
    printf("  key %s, meter %s, unit %lld/%lld", key, meter, (long long)m->unit.num, (long long)m->unit.den);
    if (m->tempo.given && m->tempo.bpm)
        printf(", tempo %lld/%lld=%d", (long long)m->tempo.beat.num, (long long)m->tempo.beat.den, m->tempo.bpm);
    printf("\n  bars: %zu written, %zu played; voices: %zu", m->n_bars, m->n_play, m->n_voices);
    for (size_t v = 0; v < m->n_voices; v++)
        printf("%s%s (%zu notes)", v ? ", " : " [", m->voices[v].id[0] ? m->voices[v].id : "default",
               note_count(&m->voices[v]));
    printf("]\n  duration: %.1f s written, %.1f s played\n", seconds(m, m->duration), seconds(m, m->duration_played));
}

int abc_cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    int tune_x = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--tune")) {
            if (!abc_input_tune_arg("info", i + 1 < argc ? argv[++i] : NULL, &tune_x))
                return 2;
        } else if ((argv[i][0] == '-' && argv[i][1]) || path) {
            fprintf(stderr, "melodist abc info: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    abc_file *f = abc_input_parse("info", path);
    if (!f)
        return 1;
    int rc = 0;
    if (tune_x >= 0 && abc_file_find_tune(f, tune_x) < 0) {
        fprintf(stderr, "melodist abc info: %s has no tune X:%d\n", abc_input_name(path), tune_x);
        rc = 1;
    } else if (f->n_tunes == 0) {
        fprintf(stderr, "melodist abc info: %s holds no tune (no X: line)\n", abc_input_name(path));
        rc = 1;
    }
    if (json)
        printf("{\"file\":");
    if (json) {
        json_fput_string(stdout, abc_input_name(path));
        printf(",\"tunes\":[");
    }
    bool first = true;
    for (size_t t = 0; t < f->n_tunes && rc == 0; t++) {
        if (tune_x >= 0 && f->tunes[t].x != tune_x)
            continue;
        abc_model *m = abc_model_new(f, t, NULL);
        if (!m) {
            fprintf(stderr, "melodist abc info: out of memory\n");
            rc = 1;
            break;
        }
        abc_analysis an;
        bool analysed = abc_analyze(&f->tunes[t], m, &an) == 0; /* the analysis fields: abc_analysis_print.c */
        if (json) {
            print_json(f, t, m, first);
            if (analysed)
                abc_print_analysis_json(&an);
            printf("}");
        } else {
            print_text(m);
            if (analysed)
                abc_print_analysis_text(&an);
        }
        if (analysed)
            abc_analysis_free(&an);
        first = false;
        abc_model_free(m);
    }
    if (json)
        printf("]}\n");
    abc_file_free(f);
    return rc;
}
