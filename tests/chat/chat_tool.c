/* Test driver for melodist/chat.h.
 *   chat_tool encode TOKENIZER GEN ROLE TEXT [ROLE TEXT...]   BOS + template ids (GEN 1: + generation prompt)
 *   chat_tool fit TOKENIZER MAX ROLE TEXT [ROLE TEXT...]      "dropped N" then the fitted ids, or exit 1
 *   chat_tool stop                                            stop-string filter self-test
 *   chat_tool mkmodel DIR VOCAB                               a tiny random InternLM2 model (f32)
 *   chat_tool plugins                                         the ABC plugins on a hand-made tune, bad calls
 *   chat_tool action_stop TOKENIZER                           with plugins a reply ends at <|action_end|>
 *   chat_tool copy TOKENIZER                                  the copy prior's source, and a reply it steers
 * Roles: system, user, assistant, plugin_system, environment, file. Ids are printed space-separated on one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc_tools.h"
#include "melodist/chat.h"
#include "testutil.h"

static int parse_messages(int argc, char **argv, struct chat_message *msgs)
{
    int n = 0;
    for (int i = 0; i + 1 < argc; i += 2, n++) {
        static const char *const roles[] = {"system", "user", "assistant", "plugin_system", "environment", "file"};
        enum chat_role r = CHAT_ASSISTANT;
        for (int k = 0; k < 6; k++)
            if (!strcmp(argv[i], roles[k]))
                r = (enum chat_role)k;
        msgs[n] = (struct chat_message){r, argv[i + 1], strlen(argv[i + 1])};
    }
    return n;
}

static void print_ids(const tok_ids *ids)
{
    for (size_t i = 0; i < ids->n; i++)
        printf(i ? " %d" : "%d", ids->v[i]);
    printf("\n");
}

/* Feeds text in the given chunks; checks the text shown and whether a stop string ended it. */
static void stop_case(const char *const *stops, int n_stops, const char *const *chunks, const char *want,
                      int want_hit)
{
    struct chat_stop *s = chat_stop_new(stops, n_stops);
    char shown[256] = "";
    int hit = 0;
    const char *out;
    size_t len;
    for (int i = 0; chunks[i] && !hit; i++) {
        hit = chat_stop_push(s, chunks[i], strlen(chunks[i]), &out, &len);
        strncat(shown, out, len);
    }
    if (!hit) {
        chat_stop_finish(s, &out, &len);
        strncat(shown, out, len);
    }
    chat_stop_free(s);
    char what[512];
    snprintf(what, sizeof what, "stop strings: got '%s' hit %d, want '%s' hit %d", shown, hit, want, want_hit);
    CHECK(!strcmp(shown, want) && hit == want_hit, "%s", what);
}

static int stop_tests(void)
{
    const char *ab[] = {"</abc>", "X:"};
    stop_case(ab, 2, (const char *[]){"hello ", "wor", "ld", NULL}, "hello world", 0);
    stop_case(ab, 2, (const char *[]){"tune: ", "X", ":1\nK:G", NULL}, "tune: ", 1);
    stop_case(ab, 2, (const char *[]){"a</a", "b", "d> tail", NULL}, "a</abd> tail", 0);
    stop_case(ab, 2, (const char *[]){"a</a", "bc", "> tail", NULL}, "a", 1);
    stop_case(ab, 2, (const char *[]){"end </ab", NULL}, "end </ab", 0);
    stop_case(ab, 2, (const char *[]){"<", "/abc>X:", NULL}, "", 1);
    const char *zh[] = {"。结束"};
    stop_case(zh, 1, (const char *[]){"好的", "。", "结", "束了", NULL}, "好的", 1);
    stop_case(zh, 1, (const char *[]){"好的", "。", "结", "果", NULL}, "好的。结果", 0);
    stop_case(NULL, 0, (const char *[]){"anything", NULL}, "anything", 0);
    /* Held-back text is released as soon as it cannot start a stop string any more. */
    struct chat_stop *s = chat_stop_new(ab, 2);
    const char *out;
    size_t len;
    chat_stop_push(s, "ok </a", 6, &out, &len);
    CHECK(len == 3 && !memcmp(out, "ok ", 3), "stop strings: '</a' held back");
    chat_stop_push(s, "x", 1, &out, &len);
    CHECK(len == 4 && !memcmp(out, "</ax", 4), "stop strings: '</ax' released");
    chat_stop_free(s);
    if (!tu_failures)
        printf("ok: stop strings\n");
    return tu_failures ? 1 : 0;
}

/* Runs call on the message; checks the result (want != NULL) or that the error mentions `why`. */
static void plugin_case(const char *message, const char *call, const char *want, const char *why)
{
    char err[512] = "";
    char *got = abc_tools_run(message, call, strlen(call), err, sizeof err);
    if (want)
        CHECK(got && !strcmp(got, want), "plugin %s: got %s (%s), want %s", call, got ? got : "NULL", err, want);
    else
        CHECK(!got && strstr(err, why), "plugin %s: got %s, want an error about '%s' (error: '%s')", call,
              got ? got : "a result", why, err);
    free(got);
}

/* Expected values counted by hand: two written bars under a repeat (four played), chords G | D G. */
static int plugin_tests(void)
{
    const char *q = "How many bars?\nX:1\nT:Hand made\nM:4/4\nL:1/8\nK:G\n|:\"G\"GABc d2B2|\"D\"A2F2 \"G\"G4:|\n";
    plugin_case(q, "{\"name\": \"abc_count\", \"parameters\": {}}",
                "{\"bars_written\": 2, \"bars_played\": 4, \"voices\": 1}", NULL);
    plugin_case(q, "{\"name\": \"abc_count\"}", "{\"bars_written\": 2, \"bars_played\": 4, \"voices\": 1}", NULL);
    plugin_case(q, "{\"name\": \"abc_progression\", \"parameters\": {}}", "{\"progression\": \"| G | D G |\"}", NULL);
    plugin_case(q, "{\"name\": \"abc_find_chord\", \"parameters\": {\"chord\": \"G\"}}",
                "{\"chord\": \"G\", \"bars_with_it\": 2, \"bars\": [1, 2]}", NULL);
    plugin_case(q, "{\"name\": \"abc_find_chord\", \"parameters\": {\"chord\": \"Em\"}}",
                "{\"chord\": \"Em\", \"bars_with_it\": 0, \"bars\": []}", NULL);
    plugin_case(q, "{\"name\": \"abc_find_melody\", \"parameters\": {\"phrase\": \"DEFG\"}}",
                "{\"occurrences\": 1, \"bars\": [1], \"pickup_bar_0\": false}", NULL);
    /* 4/4 with every quarter beat split even: a reel; a 7/8 dance names no rhythm type; free meter has no meter */
    plugin_case(q, "{\"name\": \"abc_rhythm\", \"parameters\": {}}", "{\"meter\": \"4/4\", \"rhythm\": \"reel\"}", NULL);
    plugin_case("X:1\nM:7/8\nL:1/8\nK:D\nDEF GA Bc|]\n", "{\"name\": \"abc_rhythm\"}",
                "{\"meter\": \"7/8\", \"rhythm\": null}", NULL);
    plugin_case("X:1\nM:none\nL:1/8\nK:D\nDEF GA Bc|]\n", "{\"name\": \"abc_rhythm\"}",
                "{\"meter\": \"none\", \"rhythm\": null}", NULL);
    plugin_case(q, "{\"name\": \"abc_tempo\", \"parameters\": {}}", NULL, "unknown plugin \"abc_tempo\"");
    plugin_case(q, "{\"parameters\": {}}", NULL, "names no plugin");
    plugin_case(q, "{\"name\": \"abc_count\", \"parameters\": {", NULL, "not a JSON object");
    plugin_case(q, "[1, 2]", NULL, "not a JSON object");
    plugin_case(q, "{\"name\": \"abc_count\", \"parameters\": 3}", NULL, "must be a JSON object");
    plugin_case(q, "{\"name\": \"abc_find_chord\", \"parameters\": {}}", NULL, "needs the string parameter \"chord\"");
    plugin_case(q, "{\"name\": \"abc_find_melody\", \"parameters\": {\"phrase\": \"zz!\"}}", NULL, "not ABC notes");
    plugin_case("How many bars? No tune here.", "{\"name\": \"abc_count\", \"parameters\": {}}", NULL, "holds no ABC tune");
    /* The key plugin's facts (beyond its form) are the engine's; its output must at least name the signature. */
    char err[256];
    const char *key = "{\"name\": \"abc_key\", \"parameters\": {}}";
    char *k = abc_tools_run(q, key, strlen(key), err, sizeof err);
    CHECK(k && !strncmp(k, "{\"signature\": \"G\", \"K\": \"G\", \"key\": \"", 36), "abc_key: %s", k ? k : err);
    free(k);
    /* Calls as the data and the chat write and find them. */
    char *call = abc_tools_call_text("abc_find_chord", "chord", "D7");
    size_t b = 0, e = 0;
    CHECK(call && !strcmp(call, "<|action_start|><|plugin|>\n{\"name\": \"abc_find_chord\", \"parameters\": "
                                "{\"chord\": \"D7\"}}<|action_end|>") && chat_find_call(call, &b, &e) &&
              !strncmp(call + b, "{\"name\"", 7) && call[e] == '<',
          "abc_tools_call_text / find_call: %s", call ? call : "NULL");
    free(call);
    CHECK(!chat_find_call("no call here", &b, &e), "find_call without a call");
    CHECK(abc_tools_tune_in("Q?\nT:x\nK:C\nCDEF|") && !abc_tools_tune_in("Q?\nT:x\nno key"), "tune_in");
    /* Whether an answer states a result: numbers in order, strings present, the pickup remark's 0 allowed. */
    const char *count = "{\"bars_written\": 10, \"bars_played\": 20, \"voices\": 1}";
    CHECK(abc_tools_answer_states(count, "As written the tune has 10 bars; played with its repeats, 20 bars. It has "
                                         "1 voice."), "answer states the count");
    CHECK(!abc_tools_answer_states(count, "共 11 个小节，展开 20 个小节；1 个声部。"), "a misstated count is caught");
    CHECK(!abc_tools_answer_states(count, "共 10 个小节，展开 20 个小节；1 个声部，2 段。"), "an extra number is caught");
    const char *mel = "{\"occurrences\": 2, \"bars\": [3, 11], \"pickup_bar_0\": true}";
    CHECK(abc_tools_answer_states(mel, "出现 2 次，起始于第 3、11 小节（弱起小节记为第 0 小节）。"), "melody with pickup");
    const char *chord = "{\"chord\": \"D7\", \"bars_with_it\": 2, \"bars\": [4, 8]}";
    CHECK(abc_tools_answer_states(chord, "The chord `D7` appears in 2 bars: 4, 8.") &&
              !abc_tools_answer_states(chord, "The chord `G` appears in 2 bars: 4, 8."), "chord named");
    const char *keys = "{\"signature\": \"D\", \"K\": \"D\", \"key\": \"Bm minor\", \"correlation\": 0.66, "
                      "\"mode\": \"Amix mixolydian\", \"pentatonic\": \"zhi\"}";
    CHECK(abc_tools_answer_states(keys, "谱中调号为 K:D（D）。主调为 Bm 小调（相关系数 0.66）；调式为 Amix 混合利底亚调式。") &&
              !abc_tools_answer_states(keys, "谱中调号为 K:D（D）。主调为 D 大调（相关系数 0.66）；调式为 Amix 混合利底亚调式。"),
          "key names");
    CHECK(!abc_tools_answer_states(keys, "谱中调号为 K:D（D）。主调为 Bmix 调（相关系数 0.66）；调式为 Amix 混合利底亚调式。"),
          "a key name only as the start of another (Bm in Bmix) is not stated");
    const char *prog = "{\"progression\": \"| D | G D | Em A7 | D |\"}";
    CHECK(abc_tools_answer_states(prog, "逐小节的和弦进行：\n| D | G D | Em A7 | D |") &&
              abc_tools_answer_states(prog, "The chord progression:\n| D | G D | Em A7 | D |.") &&
              !abc_tools_answer_states(prog, "逐小节的和弦进行：\n| D | G D | Em A7 | D | G E | - |") &&
              !abc_tools_answer_states(prog, "逐小节的和弦进行：\n| D | G D | Em A7 | D |\n- |"),
          "a progression is stated only without cells after it");
    const char *rhythm = "{\"meter\": \"6/8\", \"rhythm\": \"jig\"}";
    CHECK(abc_tools_answer_states(rhythm, "By its meter (6/8) and rhythm, this is a jig.") &&
              abc_tools_answer_states(rhythm, "从拍号（6/8）和节奏看，这是一首吉格舞曲（jig）。") &&
              !abc_tools_answer_states(rhythm, "By its meter (9/8) and rhythm, this is a jig.") &&
              !abc_tools_answer_states(rhythm, "By its meter (6/8) and rhythm, this is a reel.") &&
              !abc_tools_answer_states(rhythm, "By its meter (6/8) and rhythm, this is a jig of 32 bars."),
          "a meter is a fraction, not two whole numbers; the rhythm type is named");
    if (!tu_failures)
        printf("ok: ABC plugins (%d checks)\n", tu_checks);
    return tu_failures ? 1 : 0;
}

/* The tiny InternLM2 shape of the tests here (dim 32, GQA 4/2 heads, untied head), f32. */
static struct model_config tiny_config(int vocab, int n_layers, int max_positions)
{
    return (struct model_config){.dim = 32, .n_layers = n_layers, .n_heads = 4, .n_kv_heads = 2, .head_dim = 8,
                                 .hidden_dim = 64, .vocab_size = vocab, .max_position_embeddings = max_positions,
                                 .rope_theta = 10000, .rms_norm_eps = 1e-5f, .bos_token_id = 1, .eos_token_id = 2,
                                 .pad_token_id = 2};
}

/* A model that always answers `token` (greedy): every embedding row the same, so the last hidden state is the
 * same whatever the input; the output head is zero but for token's row, which points along that state. */
static struct model *constant_model(int vocab, int token)
{
    struct model_config c = tiny_config(vocab, 1, 512);
    struct model *m = model_new_random(&c, NN_F32, 11, 0.5f);
    if (!m)
        return NULL;
    float *embed = (float *)m->tok_embeddings.data, *out = (float *)m->output.data;
    for (int r = 1; r < vocab; r++)
        memcpy(embed + (size_t)r * c.dim, embed, c.dim * sizeof *embed);
    memset(out, 0, (size_t)vocab * c.dim * sizeof *out);
    for (int i = 0; i < c.dim; i++)
        out[(size_t)i * c.dim + i] = 1; /* logits 0..dim: the final state itself */
    struct model_state *st = model_state_new(m, 8, 1);
    char err[256];
    int any = 0;
    const float *logits = st ? model_forward(m, st, &any, 1, NULL, err, sizeof err) : NULL;
    float state[64];
    if (logits)
        memcpy(state, logits, c.dim * sizeof *state);
    model_state_free(st);
    if (!logits) {
        model_free(m);
        return NULL;
    }
    memset(out, 0, (size_t)c.dim * c.dim * sizeof *out);
    for (int i = 0; i < c.dim; i++)
        out[(size_t)token * c.dim + i] = state[i]; /* its logit: |state|^2 > 0, every other logit 0 */
    return m;
}

/* The session's greedy reply to text, at most max_tokens tokens, with the copy prior's pull copy_bias. */
static int greedy_reply(struct chat_session *s, const char *text, int max_tokens, float copy_bias,
                        struct chat_reply *r, char *err, size_t errlen)
{
    struct gen_params p;
    gen_params_default(&p);
    p.temperature = 0;
    p.max_tokens = max_tokens;
    p.copy_bias = copy_bias;
    return chat_session_reply(s, text, strlen(text), &p, NULL, 0, NULL, NULL, r, err, errlen);
}

/* lagent's rule: with plugins, the assistant's turn ends at <|action_end|>; without, the same model goes on. */
static int action_stop_tests(const char *tokenizer)
{
    char err[512];
    mt_tokenizer *tok = tok_load(tokenizer, err, sizeof err);
    CHECK(tok != NULL, "load %s: %s", tokenizer, err);
    int action_end = tok ? tok_special_id(tok, CHAT_ACTION_END) : -1;
    CHECK(action_end >= 0, "the tokenizer has no %s", CHAT_ACTION_END);
    struct model *m = action_end >= 0 ? constant_model(tok_vocab_size(tok), action_end) : NULL;
    CHECK(m != NULL || action_end < 0, "the constant model could not be built");
    for (int plugins = 0; m && plugins <= 1; plugins++) {
        struct chat_session *s = chat_session_new(m, tok, NULL, 512, err, sizeof err);
        CHECK(s && (!plugins || !chat_session_set_plugins(s, abc_tools_schema(), abc_tools_plugin, NULL, 3)),
              "session: %s", err);
        struct chat_reply r;
        int rc = s ? greedy_reply(s, "hi", 12, GEN_COPY_BIAS, &r, err, sizeof err) : -1;
        CHECK(rc == 0, "reply: %s", err);
        if (!rc && plugins)
            CHECK(r.n_generated == 1 && r.stopped && r.n_calls == 0 && !strcmp(r.text, CHAT_ACTION_END),
                  "with plugins the turn ends at the marker: %d tokens, stopped %d, text '%s'", r.n_generated,
                  r.stopped, r.text);
        if (!rc && !plugins)
            CHECK(r.n_generated == 12 && !r.stopped,
                  "without plugins the marker does not end the turn: %d tokens, stopped %d", r.n_generated,
                  r.stopped);
        if (!rc)
            free(r.text);
        chat_session_free(s);
    }
    model_free(m);
    tok_free(tok);
    if (!tu_failures)
        printf("ok: a reply with plugins ends at %s (%d checks)\n", CHAT_ACTION_END, tu_checks);
    return tu_failures ? 1 : 0;
}

/* The copy source's groups as text: the variants of a group joined by "|", the groups by "\n". */
static char *groups_text(const mt_tokenizer *tok, const tok_ids *src)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    for (size_t i = 0; f && i < src->n;) {
        size_t e = i + 1;
        while (e < src->n && src->v[e] >= 0)
            e++;
        char err[128], *v = tok_decode(tok, src->v + i + 1, e - i - 1, 0, NULL, err, sizeof err);
        fprintf(f, "%s%s", i == 0 ? "" : src->v[i] == -1 ? "\n" : "|", v ? v : "?");
        free(v);
        i = e;
    }
    if (f)
        fclose(f);
    return text;
}

/* The model that says nothing of its own: every logit 0, so greedy decoding writes token 0 unless the copy prior
 * pulls another. */
static struct model *indifferent_model(int vocab)
{
    struct model_config c = tiny_config(vocab, 1, 512);
    struct model *m = model_new_random(&c, NN_F32, 5, 0.5f);
    if (m)
        memset((float *)m->output.data, 0, (size_t)vocab * c.dim * sizeof(float));
    return m;
}

static int copy_tests(const char *tokenizer)
{
    char err[512];
    mt_tokenizer *tok = tok_load(tokenizer, err, sizeof err);
    CHECK(tok != NULL, "load %s: %s", tokenizer, err);
    struct model *m = tok ? indifferent_model(tok_vocab_size(tok)) : NULL;
    struct chat_session *s = m ? chat_session_new(m, tok, NULL, 512, err, sizeof err) : NULL;
    CHECK(s && !chat_session_set_plugins(s, abc_tools_schema(), abc_tools_plugin, NULL, 3), "session: %s", err);
    if (!s) {
        model_free(m);
        tok_free(tok);
        return 1;
    }
    tok_ids src = {0};
    chat_session_add(s, CHAT_USER, "How many bars?", 14);
    CHECK(!chat_copy_source(s, &src) && src.n == 0, "a question that quotes nothing: nothing to copy (%zu)", src.n);
    const char *question = "Find \xe3\x80\x8cG A B\xe3\x80\x8d, then `c d`.";
    chat_session_add(s, CHAT_USER, question, strlen(question));
    CHECK(!chat_copy_source(s, &src), "copy source of a question");
    char *text = groups_text(tok, &src);
    CHECK(text && !strcmp(text, " G A B|G A B\n c d|c d"), "the quoted phrases, in order: '%s'", text);
    free(text);

    const char *call = CHAT_ACTION_START "{\"name\": \"abc_find_chord\", \"parameters\": {\"chord\": \"D\"}}"
        CHAT_ACTION_END;
    const char *result = "{\"chord\": \"D\", \"bars_with_it\": 2, \"bars\": [1, 13], \"pickup_bar_0\": false, "
                         "\"mode\": \"Fmix mixolydian\", \"progression\": \"| G | D7 |\"}";
    chat_session_add(s, CHAT_ASSISTANT, call, strlen(call));
    chat_session_add(s, CHAT_ENVIRONMENT, result, strlen(result));
    src.n = 0;
    CHECK(!chat_copy_source(s, &src), "copy source of a result");
    text = groups_text(tok, &src);
    CHECK(text && !strcmp(text, " D|D\n 2|2\n 1, 13|1, 13| 1\xe3\x80\x81" "13|1\xe3\x80\x81" "13\n Fmix|Fmix\n"
                                " mixolydian|mixolydian\n | G | D7 ||| G | D7 |"),
          "the result's values, not its keys: '%s'", text);
    free(text);
    tok_ids_free(&src);

    /* The indifferent model writes only what the prior pulls: the quoted phrase, then token 0. */
    for (int bias = 0; bias <= 4; bias += 4) {
        chat_session_reset(s);
        struct chat_reply r;
        int rc = greedy_reply(s, "Where is \xe3\x80\x8c" "c2 B A\xe3\x80\x8d?", 8, (float)bias, &r, err, sizeof err);
        CHECK(rc == 0, "reply: %s", err);
        const char *at = rc ? NULL : strstr(r.text, "c2 B A");
        CHECK(bias ? at && at - r.text <= 1 : !at, "copy bias %d: the reply '%s'", bias, rc ? "" : r.text);
        free(r.text); /* NULL after a failed reply */
    }
    chat_session_free(s);
    model_free(m);
    tok_free(tok);
    if (!tu_failures)
        printf("ok: the copy prior's source and a reply it steers (%d checks)\n", tu_checks);
    return tu_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    char err[1024];
    if (argc == 2 && !strcmp(argv[1], "stop"))
        return stop_tests();
    if (argc == 2 && !strcmp(argv[1], "plugins"))
        return plugin_tests();
    if (argc == 3 && !strcmp(argv[1], "action_stop"))
        return action_stop_tests(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "copy"))
        return copy_tests(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "mkmodel")) {
        struct model_config c = tiny_config(atoi(argv[3]), 2, 256);
        struct model *m = model_new_random(&c, NN_F32, 7, 0.5f);
        if (!m || model_save(m, argv[2], NN_F32, err, sizeof err)) {
            fprintf(stderr, "mkmodel: %s\n", m ? err : "out of memory");
            return 1;
        }
        model_free(m);
        return 0;
    }
    if (argc < 4 || (strcmp(argv[1], "encode") && strcmp(argv[1], "fit"))) {
        fprintf(stderr, "usage: see the comment at the top of chat_tool.c\n");
        return 2;
    }
    mt_tokenizer *tok = tok_load(argv[2], err, sizeof err);
    if (!tok) {
        fprintf(stderr, "chat_tool: %s\n", err);
        return 1;
    }
    struct chat_message msgs[64];
    int n = parse_messages(argc > 132 ? 128 : argc - 4, argv + 4, msgs), rc = 1;
    tok_ids ids = {0};
    if (!strcmp(argv[1], "encode")) {
        if (!chat_encode(tok, msgs, n, atoi(argv[3]), &ids, err, sizeof err)) {
            print_ids(&ids);
            rc = 0;
        }
    } else {
        int dropped;
        if (!chat_encode_fit(tok, msgs, n, atoi(argv[3]), &ids, &dropped, err, sizeof err)) {
            printf("dropped %d\n", dropped);
            print_ids(&ids);
            rc = 0;
        }
    }
    if (rc)
        fprintf(stderr, "chat_tool: %s\n", err);
    tok_ids_free(&ids);
    tok_free(tok);
    return rc;
}
