/* The ABC engine as InternLM2 plugins (see abc_tools.h). */
#include "melodist/abc_tools.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc.h"
#include "melodist/json.h"

enum { MAX_BARS = 512 };

/* Terse on purpose: with a tune, the question and the answer, the schema must fit a 1,024-token context (this
 * tokenizer spends about one token per two characters of English JSON). */
static const char schema[] =
    "[{\"name\":\"abc_key\",\"description\":\"key and mode\",\"parameters\":{}},\n"
    "{\"name\":\"abc_count\",\"description\":\"bars and voices\",\"parameters\":{}},\n"
    "{\"name\":\"abc_find_melody\",\"description\":\"bars where a phrase starts\","
    "\"parameters\":{\"phrase\":{\"type\":\"string\"}}},\n"
    "{\"name\":\"abc_find_chord\",\"description\":\"bars with a chord\",\"parameters\":{\"chord\":{\"type\":\"string\"}}},\n"
    "{\"name\":\"abc_progression\",\"description\":\"chords bar by bar\",\"parameters\":{}},\n"
    "{\"name\":\"abc_rhythm\",\"description\":\"meter and dance rhythm\",\"parameters\":{}}]";

const char *abc_tools_schema(void) { return schema; }

static int is_field_line(const char *p) { return ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) && p[1] == ':'; }

const char *abc_tools_tune_in(const char *text)
{
    const char *first_field = NULL;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (p[0] == 'X' && p[1] == ':')
            return p;
        if (!first_field && is_field_line(p))
            first_field = p;
    }
    if (!first_field)
        return NULL;
    for (const char *p = first_field; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (p[0] == 'K' && p[1] == ':')
            return first_field;
    return NULL;
}

const char *abc_tools_split(const char *message, size_t *question_len)
{
    const char *tune = abc_tools_tune_in(message);
    if (!tune)
        return NULL;
    size_t n = (size_t)(tune - message);
    while (n && strchr(" \t\r\n", message[n - 1]))
        n--;
    *question_len = n;
    return tune;
}

char *abc_tools_call_text(const char *name, const char *param, const char *value)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fputs(CHAT_ACTION_START "{\"name\": ", f);
    json_fput_string(f, name);
    fputs(", \"parameters\": {", f);
    if (param) {
        json_fput_string(f, param);
        fputs(": ", f);
        json_fput_string(f, value);
    }
    fputs("}}" CHAT_ACTION_END, f);
    if (fclose(f)) {
        free(text);
        return NULL;
    }
    return text;
}

char *abc_tools_progression(const abc_analysis *a)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fputs("|", f);
    for (size_t i = 0; i < a->n_chord_bars; i++) {
        const abc_bar_chords *c = &a->chords[i];
        fputc(' ', f);
        if (!c->n)
            fputc('-', f);
        for (size_t k = 0; k < c->n; k++)
            fprintf(f, "%s%s", k ? " " : "", c->chords[k]);
        fputs(" |", f);
    }
    if (fclose(f)) {
        free(text);
        return NULL;
    }
    return text;
}

/* ---------------------------------------------------------------- the plugins */

struct plugin_tune {
    abc_file *file;
    abc_model *model;
    abc_analysis a;
    const char *key_field; /* K: as written ("C" when absent, as the melody search reads it) */
};

static void bar_list(FILE *f, const int *bars, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? ", " : "", bars[i]);
    fputc(']', f);
}

static int plugin_key(const struct plugin_tune *t, const struct json *params, FILE *f, char *err, size_t errlen)
{
    static const char *const mode_en[] = {"major", "minor", "mixolydian", "dorian", "phrygian", "lydian", "locrian"};
    const abc_analysis *a = &t->a;
    (void)params;
    if (!a->keys_detected) {
        snprintf(err, errlen, "the tune has no notes, so it has no key to detect");
        return -1;
    }
    char name[16];
    fputc('{', f);
    if (a->key_declared) {
        abc_key_name(a->declared.tonic_pc, a->declared.mode, name, sizeof name);
        fputs("\"signature\": ", f);
        json_fput_string(f, name);
        fputs(", \"K\": ", f);
        json_fput_string(f, t->key_field);
        fputs(", ", f);
    }
    abc_key_name(a->ks.tonic_pc, a->ks.mode, name, sizeof name);
    fprintf(f, "\"key\": \"%s %s\", \"correlation\": %.2f, ", name, mode_en[a->ks.mode], a->ks.score);
    abc_key_name(a->modal.tonic_pc, a->modal.mode, name, sizeof name);
    fprintf(f, "\"mode\": \"%s %s\"", name, mode_en[a->modal.mode]);
    if (a->modal.pentatonic && a->modal.penta_mode)
        fprintf(f, ", \"pentatonic\": \"%s\"", a->modal.penta_mode);
    fputc('}', f);
    return 0;
}

static int plugin_count(const struct plugin_tune *t, const struct json *params, FILE *f, char *err, size_t errlen)
{
    (void)params, (void)err, (void)errlen;
    fprintf(f, "{\"bars_written\": %zu, \"bars_played\": %zu, \"voices\": %zu}", t->a.bars_written,
            t->a.bars_played, t->a.n_voices);
    return 0;
}

static int plugin_rhythm(const struct plugin_tune *t, const struct json *params, FILE *f, char *err, size_t errlen)
{
    (void)params, (void)err, (void)errlen;
    char meter[32];
    abc_meter_fraction(t->a.meter, meter, sizeof meter);
    fprintf(f, "{\"meter\": \"%s\", \"rhythm\": ", meter);
    if (t->a.rhythm_type)
        json_fput_string(f, t->a.rhythm_type);
    else
        fputs("null", f);
    fputc('}', f);
    return 0;
}

static const char *string_param(const struct json *params, const char *plugin, const char *name, char *err,
                                size_t errlen)
{
    const struct json *v = params ? json_get(params, name) : NULL;
    if (!v || v->type != JSON_STRING || !*v->string) {
        snprintf(err, errlen, "%s needs the string parameter \"%s\": {\"name\": \"%s\", \"parameters\": {\"%s\": "
                              "\"...\"}}", plugin, name, plugin, name);
        return NULL;
    }
    return v->string;
}

static int plugin_find_melody(const struct plugin_tune *t, const struct json *params, FILE *f, char *err, size_t errlen)
{
    const char *phrase = string_param(params, "abc_find_melody", "phrase", err, errlen);
    if (!phrase)
        return -1;
    abc_melody check;
    char why[200];
    if (abc_melody_parse(phrase, t->key_field, &check, why, sizeof why)) {
        snprintf(err, errlen, "the phrase \"%s\" is not ABC notes: %s", phrase, why);
        return -1;
    }
    abc_melody_free(&check);
    int bars[64];
    size_t n = abc_melody_bars(t->model, 0, phrase, t->key_field, true, bars, 64);
    fprintf(f, "{\"occurrences\": %zu, \"bars\": ", n);
    bar_list(f, bars, n);
    fprintf(f, ", \"pickup_bar_0\": %s}", t->model->n_bars && t->model->bars[0].number == 0 ? "true" : "false");
    return 0;
}

static int plugin_find_chord(const struct plugin_tune *t, const struct json *params, FILE *f, char *err, size_t errlen)
{
    const char *chord = string_param(params, "abc_find_chord", "chord", err, errlen);
    if (!chord)
        return -1;
    char want[64];
    abc_chord_normalize(chord, want, sizeof want);
    int bars[MAX_BARS];
    size_t n = 0;
    for (size_t i = 0; i < t->a.n_chord_bars && n < MAX_BARS; i++)
        for (size_t k = 0; k < t->a.chords[i].n; k++)
            if (!strcmp(t->a.chords[i].chords[k], want)) {
                bars[n++] = t->a.chords[i].number;
                break;
            }
    fputs("{\"chord\": ", f);
    json_fput_string(f, want);
    fprintf(f, ", \"bars_with_it\": %zu, \"bars\": ", n);
    bar_list(f, bars, n);
    fputc('}', f);
    return 0;
}

static int plugin_progression(const struct plugin_tune *t, const struct json *params, FILE *f, char *err, size_t errlen)
{
    (void)params;
    char *cells = abc_tools_progression(&t->a);
    if (!cells) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fputs("{\"progression\": ", f);
    json_fput_string(f, cells);
    fputc('}', f);
    free(cells);
    return 0;
}

static const struct plugin {
    const char *name;
    int (*run)(const struct plugin_tune *t, const struct json *params, FILE *f, char *err, size_t errlen);
} plugins[] = {
    {"abc_key", plugin_key},
    {"abc_count", plugin_count},
    {"abc_find_melody", plugin_find_melody},
    {"abc_find_chord", plugin_find_chord},
    {"abc_progression", plugin_progression},
    {"abc_rhythm", plugin_rhythm},
};

static const struct plugin *plugin_named(const struct json *call, char *err, size_t errlen)
{
    const char *name = json_string_or(call, "name", NULL);
    for (size_t i = 0; name && i < sizeof plugins / sizeof plugins[0]; i++)
        if (!strcmp(plugins[i].name, name))
            return &plugins[i];
    int n = snprintf(err, errlen, "%s%s%s: the plugins are", name ? "unknown plugin \"" : "the call names no plugin",
                     name ? name : "", name ? "\"" : "");
    for (size_t i = 0; i < sizeof plugins / sizeof plugins[0] && n > 0 && (size_t)n < errlen; i++)
        n += snprintf(err + n, errlen - (size_t)n, " %s", plugins[i].name);
    return NULL;
}

char *abc_tools_run(const char *message, const char *call, size_t call_len, char *err, size_t errlen)
{
    char jerr[160];
    struct json *j = json_parse(call, call_len, jerr, sizeof jerr);
    if (!j || j->type != JSON_OBJECT) {
        snprintf(err, errlen, "the call is not a JSON object {\"name\": ..., \"parameters\": {...}}%s%s",
                 j ? "" : ": ", j ? "" : jerr);
        json_free(j);
        return NULL;
    }
    const struct plugin *pl = plugin_named(j, err, errlen);
    const struct json *params = json_get(j, "parameters");
    if (pl && params && params->type != JSON_OBJECT) {
        snprintf(err, errlen, "\"parameters\" must be a JSON object");
        pl = NULL;
    }
    const char *abc = pl ? abc_tools_tune_in(message) : NULL;
    if (pl && !abc)
        snprintf(err, errlen, "the user's message holds no ABC tune (one starting with X: and with a K: line)");
    struct plugin_tune t = {0};
    char *text = NULL;
    size_t len = 0;
    if (!abc)
        goto done;
    t.file = abc_parse(abc, strlen(abc));
    t.model = t.file && t.file->n_tunes ? abc_model_new(t.file, 0, NULL) : NULL;
    if (!t.model || abc_analyze(&t.file->tunes[0], t.model, &t.a)) {
        snprintf(err, errlen, "the tune in the user's message does not parse as ABC");
        abc_model_free(t.model);
        t.model = NULL;
        goto done;
    }
    t.key_field = abc_tune_field(&t.file->tunes[0], 'K');
    if (!t.key_field)
        t.key_field = "C";
    FILE *f = open_memstream(&text, &len);
    int rc = -1;
    if (!f) {
        snprintf(err, errlen, "out of memory");
    } else {
        rc = pl->run(&t, params, f, err, errlen);
        if (fclose(f) && !rc) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    if (rc) {
        free(text);
        text = NULL;
    }
    abc_analysis_free(&t.a);
done:
    abc_model_free(t.model);
    abc_file_free(t.file);
    json_free(j);
    return text;
}

char *abc_tools_plugin(void *ctx, const char *user, const char *call, size_t call_len, char *err, size_t errlen)
{
    (void)ctx;
    return abc_tools_run(user, call, call_len, err, errlen);
}

/* The next whole number in text[*p...] (digits inside a word such as "D7", numbers with a decimal point and
 * fractions such as a meter's "6/8" are skipped); -1 when there is none. */
static long next_whole(const char *text, const char **p)
{
    while (**p) {
        const char *s = *p;
        if (!isdigit((unsigned char)*s) || (s > text && isalnum((unsigned char)s[-1]))) {
            (*p)++;
            continue;
        }
        char *end;
        long v = strtol(s, &end, 10);
        *p = end;
        if (*end == '/' && isdigit((unsigned char)end[1])) {
            while (isdigit((unsigned char)**p) || **p == '/')
                (*p)++;
            continue;
        }
        if (*end == '.' && isdigit((unsigned char)end[1])) {
            while (isdigit((unsigned char)**p) || **p == '.')
                (*p)++;
            continue;
        }
        return v;
    }
    return -1;
}

/* Whether answer holds s[0..n) as a whole: not the start of a longer name ("Bm" in "Bmix", "C" in "C#m"), and a
 * progression not followed by more cells. */
static int states_whole(const char *answer, const char *s, size_t n)
{
    size_t len = strlen(answer);
    int progression = n && s[n - 1] == '|';
    for (const char *at = answer; n && (at = memmem(at, len - (size_t)(at - answer), s, n)); at++) {
        const char *after = at + n;
        while (progression && (*after == ' ' || *after == '\n'))
            after++;
        if (!isalnum((unsigned char)*after) && *after != '#' && !(progression && (*after == '-' || *after == '|')))
            return 1;
    }
    return 0;
}

int abc_tools_answer_states(const char *result, const char *answer)
{
    struct json *r = json_parse(result, strlen(result), NULL, 0);
    if (!r || r->type != JSON_OBJECT) {
        json_free(r);
        return 0;
    }
    int ok = 1, pickup = 0;
    const char *a = answer;
    for (size_t i = 0; ok && i < r->count; i++) {
        const struct json *v = &r->items[i];
        const char *key = r->keys[i];
        if (v->type == JSON_BOOL)
            pickup |= !strcmp(key, "pickup_bar_0") && v->boolean;
        if (v->type == JSON_NUMBER && v->number == (long)v->number)
            ok = next_whole(answer, &a) == (long)v->number;
        for (size_t k = 0; ok && v->type == JSON_ARRAY && k < v->count; k++)
            ok = next_whole(answer, &a) == (long)v->items[k].number;
        if (v->type == JSON_STRING && strcmp(key, "pentatonic")) {
            size_t n = strcmp(key, "key") && strcmp(key, "mode") ? strlen(v->string) : strcspn(v->string, " ");
            ok = states_whole(answer, v->string, n);
        }
    }
    long rest = next_whole(answer, &a);
    json_free(r);
    return ok && (rest < 0 || (pickup && rest == 0 && next_whole(answer, &a) < 0));
}
