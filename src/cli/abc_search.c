/* melodist abc search FILE... --melody "PHRASE" [--key K] [--rhythm] [--json]: where a melodic phrase occurs,
 * transposition-invariant (same interval sequence), with tune, voice and bar numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abc_commands.h"
#include "abc_input.h"
#include "melodist/abc_analysis.h"
#include "melodist/json.h"

#define MAX_FILES 4096

static void usage(FILE *out)
{
    fprintf(out, "usage: melodist abc search FILE... --melody \"ABC PHRASE\" [--key K] [--rhythm] [--json]\n"
                 "  --melody P  the phrase in ABC notation (L:1/8), e.g. \"GABc dedB\"; found in any key\n"
                 "  --key K     read the phrase in key K (default C: write accidentals explicitly)\n"
                 "  --rhythm    the durations must match too (up to a common factor)\n"
                 "  --json      one JSON object on stdout\n"
                 "  bar numbers are written bar numbers: a pickup bar is bar 0\n");
}

/* One voice of one tune: print its occurrences; returns how many. */
static size_t search_voice(const char *path, const abc_model *m, size_t v, const abc_melody *phrase, bool rhythm,
                           bool json, size_t found_before)
{
    abc_melody mel;
    if (abc_melody_of_voice(m, v, &mel))
        return 0;
    size_t n = abc_melody_find(&mel, phrase, rhythm, NULL, 0);
    size_t *starts = n ? malloc(n * sizeof *starts) : NULL;
    if (starts)
        abc_melody_find(&mel, phrase, rhythm, starts, n);
    else
        n = 0;
    const char *title = m->n_titles ? m->titles[0] : "";
    const char *voice = m->voices[v].id && *m->voices[v].id ? m->voices[v].id : "1";
    for (size_t i = 0; i < n; i++) {
        size_t s = starts[i], e = s + phrase->n - 1;
        int shift = mel.pitch[s] - phrase->pitch[0];
        if (json) {
            printf("%s\n    {\"file\": ", found_before + i ? "," : "");
            json_fput_string(stdout, abc_input_name(path));
            printf(", \"x\": %d, \"title\": ", m->x);
            json_fput_string(stdout, title);
            printf(", \"voice\": ");
            json_fput_string(stdout, voice);
            printf(", \"bar_start\": %d, \"bar_end\": %d, \"line\": %d, \"col\": %d, \"transposed\": %d}",
                   mel.bar[s], mel.bar[e], mel.line[s], mel.col[s], shift);
        } else {
            printf("%s:%d:%d: X:%d voice %s bars %d-%d (%+d semitones) %s\n", abc_input_name(path), mel.line[s], mel.col[s], m->x,
                   voice, mel.bar[s], mel.bar[e], shift, title);
        }
    }
    free(starts);
    abc_melody_free(&mel);
    return n;
}

int abc_cmd_search(int argc, char **argv)
{
    const char *files[MAX_FILES], *melody = NULL, *key = NULL;
    size_t n_files = 0;
    bool rhythm = false, json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--melody") && i + 1 < argc) {
            melody = argv[++i];
        } else if (!strcmp(a, "--key") && i + 1 < argc) {
            key = argv[++i];
        } else if (!strcmp(a, "--rhythm")) {
            rhythm = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "melodist abc search: unknown option or missing value: '%s'\n\n", a);
            usage(stderr);
            return 2;
        } else if (n_files < MAX_FILES) {
            files[n_files++] = a;
        } else {
            fprintf(stderr, "melodist abc search: more than %d files\n", MAX_FILES);
            return 2;
        }
    }
    if (!melody) {
        fprintf(stderr, "melodist abc search: --melody \"PHRASE\" is required\n\n");
        usage(stderr);
        return 2;
    }
    if (!n_files)
        files[n_files++] = "-";
    abc_melody phrase;
    char err[512];
    if (abc_melody_parse(melody, key, &phrase, err, sizeof err)) {
        fprintf(stderr, "melodist abc search: %s\n", err);
        return 1;
    }
    int rc = 0;
    size_t found = 0, tunes = 0;
    if (json) {
        printf("{\"melody\": ");
        json_fput_string(stdout, melody);
        printf(", \"rhythm\": %s, \"matches\": [", rhythm ? "true" : "false");
    }
    for (size_t fi = 0; fi < n_files; fi++) {
        abc_file *f = abc_input_parse("search", files[fi]);
        if (!f) {
            rc = 1;
            continue;
        }
        for (size_t t = 0; t < f->n_tunes; t++) {
            abc_model *m = abc_model_new(f, t, NULL);
            if (!m) {
                fprintf(stderr, "melodist abc search: out of memory\n");
                rc = 1;
                break;
            }
            tunes++;
            for (size_t v = 0; v < m->n_voices; v++)
                found += search_voice(files[fi], m, v, &phrase, rhythm, json, found);
            abc_model_free(m);
        }
        abc_file_free(f);
    }
    if (json)
        printf("\n  ], \"count\": %zu, \"tunes_searched\": %zu}\n", found, tunes);
    else
        fprintf(stderr, "%zu occurrence%s in %zu tunes\n", found, found == 1 ? "" : "s", tunes);
    abc_melody_free(&phrase);
    return rc;
}
