/* melodist analyze FILE [QUESTION]: answers about a tune through the Melodist model with the ABC engine as its
 * plugin (abc_tools.h): the model reads the question, calls a plugin (key and mode, bar and voice counts, where a
 * phrase or a chord occurs, the chord progression), and states the plugin's result. When the model makes no call
 * or a bad one, a question the engine answers (those and the rhythm type) is computed by the engine directly and
 * stderr says so; any other question gets the model's own answer, marked as generated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abc_analysis_print.h"
#include "abc_input.h"
#include "commands.h"
#include "compose_cli.h"
#include "melodist/abc.h"
#include "melodist/abc_analysis.h"
#include "melodist/abc_tools.h"
#include "melodist/chat.h"
#include "melodist/json.h"
#include "melodist/persona.h"

static const char *const analyze_help =
    "usage: melodist analyze FILE [QUESTION...] [-m DIR] [--seed N]\n"
    "Answers a question about the first tune of FILE; without a question prints the whole analysis.\n"
    "The Melodist model (-m DIR, default: the shipped model) answers with the ABC engine as its plugin: key and\n"
    "mode (\"what key is it?\", \"什么调？\"), bar and voice counts, where a phrase occurs (\"where is the phrase\n"
    "`GABc`?\", \"旋律「GABc」在第几小节？\"), which bars carry a chord (\"which bars have the chord `D`?\"), the\n"
    "chord progression per bar, and the meter's dance rhythm (\"what genre or rhythm type is it?\": jig, reel,\n"
    "hornpipe, waltz, ... by the meter and the note pattern); stderr shows the plugin call and its result (the\n"
    "model restates it under the copy prior, docs/chat.md). When the model makes no plugin call or a bad one, or\n"
    "its answer does not state the result, these questions are computed by the engine directly (stderr says so;\n"
    "for the rhythm it also names the tune's R: field); any other\n"
    "question gets the model's own answer, which is generated, not checked, and marked so on stderr.\n";

static int has_any(const char *q, const char *const *words)
{
    for (; *words; words++)
        if (strcasestr(q, *words))
            return 1;
    return 0;
}

/* The text between 「」, `` or "" in the question, copied to out. */
static int quoted(const char *q, char *out, size_t size)
{
    static const char *const pairs[][2] = {{"「", "」"}, {"`", "`"}, {"\"", "\""}, {"“", "”"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const char *a = strstr(q, pairs[i][0]);
        if (!a)
            continue;
        a += strlen(pairs[i][0]);
        const char *b = strstr(a, pairs[i][1]);
        if (b && b > a) {
            snprintf(out, size, "%.*s", (int)(b - a), a);
            return 1;
        }
    }
    return 0;
}

static void print_bars(const int *bars, size_t n, int zh)
{
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? (zh ? "、" : ", ") : "", bars[i]);
}

static void key_answer(const abc_analysis *a, int zh)
{
    char declared[32] = "none", ks[32], modal[32];
    if (a->key_declared)
        abc_key_name(a->declared.tonic_pc, a->declared.mode, declared, sizeof declared);
    abc_key_name(a->key.tonic_pc, a->key.mode, ks, sizeof ks);
    abc_key_name(a->modal.tonic_pc, a->modal.mode, modal, sizeof modal);
    if (zh)
        printf("谱中调号为 K:%s。按音高分布（Krumhansl-Schmuckler，结合终止音）判断为 %s；按音阶与终止音判断调式为 %s%s%s%s。\n",
               declared, ks, modal, a->modal.pentatonic ? "，五声音阶（" : "",
               a->modal.pentatonic ? a->modal.penta_mode : "", a->modal.pentatonic ? " 调式）" : "");
    else
        printf("Written key signature K:%s. By its pitch profile (Krumhansl-Schmuckler with the final) the key is %s; "
               "by scale and final the mode is %s%s%s.\n",
               declared, ks, modal, a->modal.pentatonic ? ", pentatonic, " : "",
               a->modal.pentatonic ? a->modal.penta_mode : "");
}

static int melody_answer(const abc_model *m, const char *phrase, const char *key, int zh)
{
    abc_melody text = {0}, ph = {0};
    char err[256];
    if (abc_melody_parse(phrase, key, &ph, err, sizeof err)) {
        fprintf(stderr, "melodist analyze: the phrase '%s': %s\n", phrase, err);
        return 1;
    }
    int rc = 1;
    size_t starts[64];
    if (!abc_melody_of_voice(m, 0, &text)) {
        size_t n = abc_melody_find(&text, &ph, true, starts, 64);
        int bars[64];
        size_t shown = n < 64 ? n : 64;
        for (size_t i = 0; i < shown; i++)
            bars[i] = text.bar[starts[i]];
        if (zh) {
            printf("这段旋律（按音程与节奏比对，移调后相同也算）出现 %zu 次", n);
            if (n) {
                printf("，起始于第 ");
                print_bars(bars, shown, 1);
                printf(" 小节");
            }
            printf("。\n");
        } else {
            printf("The phrase (matched by its intervals and rhythm, so transposed copies count) occurs %zu time%s",
                   n, n == 1 ? "" : "s");
            if (n) {
                printf(", starting in bar%s ", n == 1 ? "" : "s");
                print_bars(bars, shown, 0);
            }
            printf(".\n");
        }
        rc = 0;
    }
    abc_melody_free(&text);
    abc_melody_free(&ph);
    return rc;
}

static void chord_answer(const abc_analysis *a, const char *chord, int zh)
{
    char want[64], have[64];
    abc_chord_normalize(chord, want, sizeof want);
    int bars[512];
    size_t n = 0;
    for (size_t b = 0; b < a->n_chord_bars && n < 512; b++)
        for (size_t k = 0; k < a->chords[b].n; k++) {
            abc_chord_normalize(a->chords[b].chords[k], have, sizeof have);
            if (!strcmp(have, want)) {
                bars[n++] = a->chords[b].number;
                break;
            }
        }
    if (zh) {
        printf("和弦「%s」出现在 %zu 个小节", want, n);
        if (n) {
            printf("：第 ");
            print_bars(bars, n, 1);
            printf(" 小节");
        }
        printf("。\n");
    } else {
        printf("The chord `%s` appears in %zu bar%s", want, n, n == 1 ? "" : "s");
        if (n) {
            printf(": ");
            print_bars(bars, n, 0);
        }
        printf(".\n");
    }
}

static void progression_answer(const abc_analysis *a, int zh)
{
    printf(zh ? "逐小节的和弦进行（“-”表示该小节沿用前面的和弦）：\n|"
              : "The chord progression, one cell per bar (\"-\": the previous chord continues):\n|");
    for (size_t b = 0; b < a->n_chord_bars; b++) {
        printf(" ");
        if (!a->chords[b].n)
            printf("-");
        for (size_t k = 0; k < a->chords[b].n; k++)
            printf("%s%s", k ? " " : "", a->chords[b].chords[k]);
        printf(" |");
    }
    printf("\n");
}

static void genre_answer(const abc_model *m, const abc_analysis *a, int zh)
{
    char meter[32];
    if (a->meter.kind == ABC_METER_NONE)
        snprintf(meter, sizeof meter, "%s", zh ? "无拍号" : "free meter");
    else
        snprintf(meter, sizeof meter, "%d/%d", a->meter.num, a->meter.den);
    if (m->rhythm)
        printf(zh ? "这首曲子的节奏类型（R:）是 %s，%s 拍。\n" : "The rhythm type (R:) is %s, in %s.\n", m->rhythm,
               meter);
    else
        printf(zh ? "谱中没有写节奏类型（R:）；拍号为 %s。\n" : "The tune names no rhythm type (R:); its meter is %s.\n",
               meter);
    if (a->rhythm_type)
        printf(zh ? "按拍号与节奏（英国与爱尔兰舞曲的惯例），它是 %s。\n"
                  : "By its meter and rhythm (the conventions of British and Irish dance music), it is a %s.\n",
               a->rhythm_type);
}

/* The model's answer with the ABC plugins (greedy). Returns 0 with *answer and *result (the last plugin result,
 * NULL when none; both malloc'd), the first plugin called ("" when none) and the number of plugin calls and
 * refused calls, or 1 after saying why. The calls and results go to stderr. */
static int model_answer(const char *model_dir, const char *question, const char *tune, uint64_t seed,
                        char **answer, char **result, char plugin[64], int *calls, int *refused)
{
    struct compose_model cm;
    if (compose_load("analyze", model_dir, &cm))
        return 1;
    char err[512];
    struct chat_session *s = chat_session_new(cm.model, cm.tok, NULL, 0, err, sizeof err);
    int rc = 1;
    if (!s || chat_session_set_plugins(s, abc_tools_schema(), abc_tools_plugin, NULL, ABC_TOOLS_MAX_CALLS) ||
        chat_session_attach(s, tune, strlen(tune))) {
        fprintf(stderr, "melodist analyze: %s\n", s ? "out of memory" : err);
        goto done;
    }
    struct gen_params p;
    gen_params_default(&p);
    p.seed = seed;
    p.temperature = 0;
    p.max_tokens = 256;
    struct chat_reply reply;
    if (chat_session_reply(s, question, strlen(question), &p, NULL, 0, NULL, NULL, &reply, err, sizeof err)) {
        fprintf(stderr, "melodist analyze: %s\n", err);
        goto done;
    }
    const struct chat_message *msgs;
    int n = chat_session_messages(s, &msgs);
    for (int i = 1; i < n; i++) {
        size_t b, e;
        if (msgs[i].role == CHAT_ENVIRONMENT && chat_find_call(msgs[i - 1].text, &b, &e)) {
            fprintf(stderr, "melodist analyze: plugin call %.*s -> %s\n", (int)(e - b), msgs[i - 1].text + b,
                    msgs[i].text);
            free(*result);
            *result = strdup(msgs[i].text);
            struct json *call = plugin[0] ? NULL : json_parse(msgs[i - 1].text + b, e - b, NULL, 0);
            if (call)
                snprintf(plugin, 64, "%s", json_string_or(call, "name", ""));
            json_free(call);
        }
    }
    *answer = reply.text;
    *calls = reply.n_calls;
    *refused = reply.n_call_errors;
    rc = 0;
done:
    chat_session_free(s);
    compose_unload(&cm);
    return rc;
}

int cmd_analyze(int argc, char **argv)
{
    const char *path = NULL, *model_dir = NULL;
    char question[2048] = "";
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(analyze_help, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--seed")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "melodist analyze: %s needs a value\n", argv[i]);
                return 2;
            }
            if (!strcmp(argv[i], "-m"))
                model_dir = argv[++i];
            else
                seed = strtoull(argv[++i], NULL, 10);
        } else if (!path) {
            path = argv[i];
        } else {
            size_t n = strlen(question);
            snprintf(question + n, sizeof question - n, "%s%s", n ? " " : "", argv[i]);
        }
    }
    if (!path) {
        fputs(analyze_help, stderr);
        return 2;
    }
    size_t len;
    char *text = compose_read_text("analyze", path, &len);
    if (!text)
        return 1;
    abc_file *f = abc_parse(text, len);
    abc_model *m = f && f->n_tunes ? abc_model_new(f, 0, NULL) : NULL;
    abc_analysis a;
    int rc = 1;
    if (!m || abc_analyze(&f->tunes[0], m, &a)) {
        fprintf(stderr, "melodist analyze: %s holds no tune (a tune starts with X: and has a K: line)\n", path);
        abc_model_free(m);
        abc_file_free(f);
        free(text);
        return 1;
    }
    int zh = 0;
    for (const char *q = question; *q && !zh; q++)
        zh = (unsigned char)*q >= 0xe3 && (unsigned char)*q <= 0xe9;
    static const char *const w_melody[] = {"旋律", "乐句", "动机", "片段", "melody", "phrase", "motif", NULL};
    static const char *const w_progression[] = {"和弦进行", "progression", NULL};
    static const char *const w_chord[] = {"和弦", "chord", NULL};
    static const char *const w_count[] = {"小节", "声部", "bars", "voices", "how many", "how long", "长度", NULL};
    static const char *const w_key[] = {"调", "key", "mode", "tonality", NULL};
    static const char *const w_genre[] = {"类型", "体裁", "节奏", "哪一类", "genre", "rhythm", "kind", "type", "dance",
                                          NULL};
    char phrase[512];
    int has_phrase = quoted(question, phrase, sizeof phrase);
    rc = 0;
    if (!question[0]) {
        const char *title = m->n_titles ? m->titles[0] : "";
        printf("%s\n", title);
        abc_print_analysis_text(&a);
        goto done;
    }
    /* The plugin the engine's reading of the question calls for (the branches below, in the same order). */
    const char *expected = has_phrase && has_any(question, w_melody) ? "abc_find_melody"
                           : has_any(question, w_progression)        ? "abc_progression"
                           : has_phrase && has_any(question, w_chord) ? "abc_find_chord"
                           : has_any(question, w_count)              ? "abc_count"
                           : has_any(question, w_key)                ? "abc_key"
                           : has_any(question, w_genre)              ? "abc_rhythm"
                                                                     : NULL;
    char *answer = NULL, *result = NULL, plugin[64] = "", why[160];
    int calls = 0, refused = 0;
    int failed = model_answer(model_dir, question, text, seed, &answer, &result, plugin, &calls, &refused);
    int right_plugin = !expected || !strcmp(plugin, expected);
    if (!failed && calls && !refused && right_plugin && result && abc_tools_answer_states(result, answer)) {
        printf("%s\n", answer);
        fprintf(stderr, "melodist analyze: answered by the model through the ABC plugin (its answer states the "
                        "plugin's result)\n");
        goto done_answer;
    }
    if (failed)
        snprintf(why, sizeof why, "the model could not answer (see above)");
    else if (refused)
        snprintf(why, sizeof why, "the model's plugin call failed");
    else if (calls && !right_plugin)
        snprintf(why, sizeof why, "the model called %s, the question asks for %s", plugin, expected);
    else
        snprintf(why, sizeof why, calls ? "the model's answer does not state the plugin's result"
                                        : "the model made no plugin call");
    if (has_phrase && has_any(question, w_melody)) {
        rc = melody_answer(m, phrase, abc_tune_field(&f->tunes[0], 'K'), zh);
    } else if (has_any(question, w_progression)) {
        progression_answer(&a, zh);
    } else if (has_phrase && has_any(question, w_chord)) {
        chord_answer(&a, phrase, zh);
    } else if (has_any(question, w_count)) {
        printf(zh ? "这首曲子按谱面共有 %zu 个小节，按反复记号展开演奏共 %zu 个小节；共有 %zu 个声部。\n"
                  : "As written the tune has %zu bars; played with its repeats, %zu bars. It has %zu voice(s).\n",
               a.bars_written, a.bars_played, a.n_voices);
    } else if (has_any(question, w_key)) {
        key_answer(&a, zh);
    } else if (has_any(question, w_genre)) {
        genre_answer(m, &a, zh);
    } else {
        rc = !answer;
        if (answer) {
            printf("%s\n", answer);
            fprintf(stderr, "melodist analyze: this answer was generated by the model, not computed; check it\n");
        }
        goto done_answer;
    }
    fprintf(stderr, "melodist analyze: %s; the answer above was computed by the ABC engine directly\n", why);
done_answer:
    free(answer);
    free(result);
done:
    abc_analysis_free(&a);
    abc_model_free(m);
    abc_file_free(f);
    free(text);
    return rc;
}
