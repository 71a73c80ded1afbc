/* The analysis part of 'melodist abc info': abc_analyze() as JSON fields or text lines. */
#include <stdio.h>

#include "abc_analysis_print.h"
#include "abc_input.h"
#include "melodist/json.h"

static const char *pc_names[12] = {"C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"};

static void pitch_name(int midi, char *buf, size_t size)
{
    if (midi < 0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%s%d", pc_names[midi % 12], midi / 12 - 1);
}

static void json_chords(const abc_analysis *a)
{
    printf(",\"chords_per_bar\":[");
    for (size_t b = 0, shown = 0; b < a->n_chord_bars; b++) {
        if (!a->chords[b].n)
            continue;
        printf("%s{\"bar\":%d,\"chords\":[", shown++ ? "," : "", a->chords[b].number);
        for (size_t c = 0; c < a->chords[b].n; c++) {
            printf("%s", c ? "," : "");
            json_fput_string(stdout, a->chords[b].chords[c]);
        }
        printf("]}");
    }
    printf("]");
}

static void json_histogram(const abc_analysis *a)
{
    int pc_count[12] = {0};
    for (int p = 0; p < 128; p++)
        pc_count[p % 12] += a->pitch_count[p];
    printf(",\"note_histogram\":{\"pitch_classes\":{");
    for (int pc = 0; pc < 12; pc++)
        printf("%s\"%s\":%d", pc ? "," : "", pc_names[pc], pc_count[pc]);
    printf("},\"pitch_class_quarters\":{");
    for (int pc = 0; pc < 12; pc++)
        printf("%s\"%s\":%.4g", pc ? "," : "", pc_names[pc], a->pc_weight[pc]);
    printf("},\"pitches\":{");
    for (int p = 0, shown = 0; p < 128; p++)
        if (a->pitch_count[p])
            printf("%s\"%d\":%d", shown++ ? "," : "", p, a->pitch_count[p]);
    printf("}}");
}

void abc_print_analysis_json(const abc_analysis *a)
{
    char buf[32], low[16], high[16];
    abc_meter_fraction(a->meter, buf, sizeof buf);
    printf(",\"analysis\":{\"bars_written\":%zu,\"bars_played\":%zu,\"voices\":%zu,\"meter\":\"%s\"", a->bars_written,
           a->bars_played, a->n_voices, buf);
    printf(",\"rhythm_type\":");
    if (a->rhythm_type)
        json_fput_string(stdout, a->rhythm_type);
    else
        printf("null");
    if (a->key_declared) {
        abc_key_name(a->declared.tonic_pc, a->declared.mode, buf, sizeof buf);
        printf(",\"key_declared\":\"%s\"", buf);
    } else {
        printf(",\"key_declared\":null");
    }
    if (a->keys_detected) {
        abc_key_name(a->key.tonic_pc, a->key.mode, buf, sizeof buf);
        printf(",\"key_detected\":\"%s\"", buf);
        abc_key_name(a->ks.tonic_pc, a->ks.mode, buf, sizeof buf);
        printf(",\"key_krumhansl_schmuckler\":\"%s\",\"key_correlation\":%.4f", buf, a->ks.score);
        abc_key_name(a->modal.tonic_pc, a->modal.mode, buf, sizeof buf);
        printf(",\"mode_detected\":\"%s\",\"mode_scale_fit\":%.4f", buf, a->modal.score);
    } else {
        printf(",\"key_detected\":null,\"key_krumhansl_schmuckler\":null,\"key_correlation\":null"
               ",\"mode_detected\":null,\"mode_scale_fit\":null");
    }
    if (a->modal.pentatonic)
        printf(",\"pentatonic\":\"%s\"", a->modal.penta_mode);
    else
        printf(",\"pentatonic\":null");
    pitch_name(a->final_pitch, buf, sizeof buf);
    pitch_name(a->lowest, low, sizeof low);
    pitch_name(a->highest, high, sizeof high);
    printf(",\"final\":\"%s\",\"range\":{\"lowest\":%d,\"highest\":%d,\"lowest_name\":\"%s\",\"highest_name\":\"%s\"}",
           buf, a->lowest, a->highest, low, high);
    printf(",\"notes\":%zu,\"beat\":\"%lld/%lld\",\"beats\":%.4g,\"seconds\":%.3f,\"tempo_given\":%s", a->n_notes,
           (long long)a->beat.num, (long long)a->beat.den, a->beats, a->seconds, a->tempo_given ? "true" : "false");
    json_histogram(a);
    json_chords(a);
    printf(",\"form\":");
    json_fput_string(stdout, a->form ? a->form : "");
    printf(",\"sections\":[");
    for (size_t s = 0; s < a->n_sections; s++)
        printf("%s{\"label\":\"%c\",\"first_bar\":%d,\"bars\":%d}", s ? "," : "", a->sections[s].label,
               a->sections[s].first_bar, a->sections[s].bars);
    printf("]}");
}

void abc_print_analysis_text(const abc_analysis *a)
{
    char key[32], low[16], high[16];
    printf("  analysis: %zu bars written, %zu played; ", a->bars_written, a->bars_played);
    if (a->key_declared) {
        abc_key_name(a->declared.tonic_pc, a->declared.mode, key, sizeof key);
        printf("key declared %s, ", key);
    }
    if (a->keys_detected) {
        abc_key_name(a->key.tonic_pc, a->key.mode, key, sizeof key);
        printf("detected %s", key);
        abc_key_name(a->ks.tonic_pc, a->ks.mode, key, sizeof key);
        printf(" (Krumhansl-Schmuckler alone %s, r=%.2f), ", key, a->ks.score);
        abc_key_name(a->modal.tonic_pc, a->modal.mode, key, sizeof key);
        printf("mode %s (%.0f%% in scale)", key, 100 * a->modal.score);
    } else {
        printf("no notes to detect a key from");
    }
    if (a->modal.pentatonic)
        printf(", pentatonic %s", a->modal.penta_mode);
    pitch_name(a->lowest, low, sizeof low);
    pitch_name(a->highest, high, sizeof high);
    printf("\n  range %s..%s, %zu notes, %.2f beats of %lld/%lld, %.1f s%s\n", low, high, a->n_notes, a->beats,
           (long long)a->beat.num, (long long)a->beat.den, a->seconds, a->tempo_given ? "" : " (at 1/4=120)");
    if (a->rhythm_type)
        printf("  rhythm type %s (by its meter and note pattern)\n", a->rhythm_type);
    if (a->n_sections) {
        printf("  form %s:", a->form);
        for (size_t s = 0; s < a->n_sections; s++)
            printf(" %c=%d bars", a->sections[s].label, a->sections[s].bars);
        printf("\n");
    }
    bool any = false;
    for (size_t b = 0; b < a->n_chord_bars && !any; b++)
        any = a->chords[b].n > 0;
    if (any) {
        printf("  chords:");
        for (size_t b = 0; b < a->n_chord_bars; b++) {
            printf(" |");
            for (size_t c = 0; c < a->chords[b].n; c++)
                printf("%s%s", c ? " " : "", a->chords[b].chords[c]);
        }
        printf(" |\n");
    }
    printf("  notes:");
    for (int pc = 0; pc < 12; pc++) {
        int n = 0;
        for (int p = pc; p < 128; p += 12)
            n += a->pitch_count[p];
        if (n)
            printf(" %s %d", pc_names[pc], n);
    }
    printf("\n");
}
