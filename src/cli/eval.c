/* melodist eval: measures a Melodist model on held-out tunes (docs/eval.md) against a token n-gram baseline. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abc_input.h"
#include "commands.h"
#include "compose_cli.h"
#include "gen_options.h"
#include "melodist/abc.h"
#include "melodist/abc_analysis.h"
#include "melodist/abc_tools.h"
#include "melodist/chat.h"
#include "melodist/eval.h"
#include "melodist/fileio.h"
#include "melodist/generate.h"
#include "melodist/json.h"
#include "melodist/nn.h"
#include "melodist/persona.h"

/* A progress line that rewrites itself on a terminal and is a plain line otherwise (logs, pipes). */
static void progress(const char *fmt, ...)
{
    int tty = isatty(STDERR_FILENO);
    va_list ap;
    va_start(ap, fmt);
    fputs(tty ? "\rmelodist eval: " : "melodist eval: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (!tty)
        fputc('\n', stderr);
}

/* Ends a run of progress lines. */
static void progress_done(void)
{
    if (isatty(STDERR_FILENO))
        fputc('\n', stderr);
}

static const char *const eval_help =
    "usage: melodist eval -m DIR --data FILE.abc [options]\n"
    "Measures the model on the tunes of FILE (held out from training) and prints a Markdown table, or with --json\n"
    "a JSON object (bits_per_char, bits_per_token, validity, bar_correct, control adherence, novelty, ...).\n"
    "  --data FILE       held-out tunes (.abc, or a pretrain.txt with <|endofdoc|> separators)\n"
    "  --train FILE      the training tunes (same formats): the n-gram baseline is trained on them and generated\n"
    "                    tunes are searched in them for copied bars (without it both are left out)\n"
    "  --sft FILE        held-out SFT records (xtuner JSONL): analysis questions answered by the model alone\n"
    "                    and with the ABC plugins (abc_tools.h)\n"
    "  --limit N         tunes of FILE for bits/char (all)\n"
    "  --n-gen N         held-out tunes whose controls are used for generation (20)\n"
    "  --n-analysis N    questions per analysis family (10)\n"
    "  --ngram-order N   order of the n-gram baseline (4)\n"
    "  --markdown FILE   also write the Markdown table to FILE\n"
    "  --answers FILE    also write each analysis question's answers to FILE (JSON lines: task, question,\n"
    "                    reference, alone, with_plugin, plugin_call, plugin_result, and whether each is right)\n"
    "  --copy-bias B     the copy prior's pull in the answers with plugins (4; 0 = off)\n"
    "  --seed S, --threads N, --json\n";

/* ---------------------------------------------------------------- documents */

struct docs {
    char **v;
    size_t n, cap;
};

static int docs_add(struct docs *d, const char *s, size_t len)
{
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    if (!len)
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 256;
        char **v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    char *t = malloc(len + 2);
    if (!t)
        return -1;
    memcpy(t, s, len);
    t[len] = '\n';
    t[len + 1] = 0;
    d->v[d->n++] = t;
    return 0;
}

static void docs_free(struct docs *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i]);
    free(d->v);
}

/* One document per tune: a pretrain.txt is cut at its separator lines, an ABC file into its tunes. */
static int docs_read(const char *path, struct docs *d)
{
    size_t len;
    char *text = compose_read_text("eval", path, &len);
    if (!text)
        return -1;
    int rc = 0;
    const char *sep = "\n<|endofdoc|>\n";
    if (strstr(text, sep)) {
        for (char *p = text; *p && !rc;) {
            char *e = strstr(p, sep);
            size_t n = e ? (size_t)(e - p) : strlen(p);
            rc = docs_add(d, p, n);
            p += n + (e ? strlen(sep) : 0);
        }
    } else {
        abc_file *f = abc_parse(text, len);
        rc = f ? 0 : -1;
        for (size_t t = 0; f && t < f->n_tunes && !rc; t++)
            rc = docs_add(d, f->tunes[t].text, f->tunes[t].text_len);
        abc_file_free(f);
    }
    free(text);
    if (rc)
        fprintf(stderr, "melodist eval: out of memory reading %s\n", path);
    return rc;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* ---------------------------------------------------------------- tallies */

struct rate {
    long ok, n;
};

static void rate_add(struct rate *r, int ok)
{
    r->ok += ok != 0;
    r->n++;
}

static double rate_of(const struct rate *r) { return r->n ? (double)r->ok / r->n : NAN; }

struct gen_stats {
    struct rate valid, bars_fit, key, meter, type, bars, chords, motif, prefix;
    double pc[12], iv[EVAL_INTERVALS];
    int novelty_hist[18]; /* longest copied run: 0..16, [17] = whole tune copied */
    struct rate copied;   /* tunes flagged as copies */
    struct rate repaired; /* composer bars written by the composer, not sampled (no sample fitted) */
};

struct eval_ctx {
    struct compose_model cm;
    struct model_state *state;
    struct eval_ngram *ngram;
    struct eval_novelty *novelty;
    uint64_t seed;
    float copy_bias; /* the copy prior's pull in the answers with plugins (gen_params.copy_bias) */
    int ctx_len;
};

/* A generated tune is a copy when at least 8 consecutive bars, or all of a tune of 4+ bars, occur in training. */
static void judge_tune(struct eval_ctx *e, struct gen_stats *g, const char *abc)
{
    struct eval_tune t;
    if (eval_tune_check(abc, strlen(abc), &t))
        return;
    rate_add(&g->valid, t.valid);
    for (int b = 0; b < t.bars; b++)
        rate_add(&g->bars_fit, b >= t.bars_bad);
    eval_histograms(abc, strlen(abc), g->pc, g->iv);
    if (e->novelty && t.parsed) {
        int bars, run = eval_novelty_longest(e->novelty, abc, strlen(abc), &bars);
        if (run >= 0) {
            int whole = run == bars && bars >= 4;
            g->novelty_hist[whole ? 17 : run > 16 ? 16 : run]++;
            rate_add(&g->copied, whole || run >= 8);
        }
    }
}

/* ---------------------------------------------------------------- free generation (no constraints) */

struct collect {
    int *v;
    int n, cap;
};

static int collect_token(void *ctx, int token)
{
    struct collect *c = ctx;
    if (c->n == c->cap)
        return 1;
    c->v[c->n++] = token;
    return 0;
}

/* The model's reply to a prompt of ids, sampled freely (temperature 0 = greedy), as text. */
static char *reply(struct eval_ctx *e, const tok_ids *prompt, int max_tokens, float temperature, uint64_t seed)
{
    struct gen_params p;
    gen_params_default(&p);
    p.temperature = temperature;
    p.top_p = 0.95f;
    p.seed = seed;
    p.max_tokens = max_tokens;
    if ((int)prompt->n + p.max_tokens >= e->ctx_len)
        p.max_tokens = e->ctx_len - (int)prompt->n - 1;
    if (p.max_tokens <= 0)
        return NULL;
    int stops[2];
    p.n_stop_tokens = chat_stop_tokens(e->cm.tok, e->cm.model->config.eos_token_id, stops);
    p.stop_tokens = stops;
    struct collect c = {malloc((size_t)p.max_tokens * sizeof(int)), 0, p.max_tokens};
    char err[256], *text = NULL;
    e->state->pos = 0;
    if (c.v && gen_run(e->cm.model, e->state, prompt->v, (int)prompt->n, &p, collect_token, &c, err, sizeof err) >= 0)
        text = tok_decode(e->cm.tok, c.v, (size_t)c.n, TOK_SKIP_SPECIAL, NULL, err, sizeof err);
    free(c.v);
    return text;
}

static char *chat_reply(struct eval_ctx *e, const char *system, const char *user, int max_tokens, float temperature,
                        uint64_t seed)
{
    struct chat_message msgs[2] = {{CHAT_SYSTEM, system, strlen(system)}, {CHAT_USER, user, strlen(user)}};
    tok_ids ids = {0};
    char err[256], *text = NULL;
    if (!chat_encode(e->cm.tok, msgs, 2, 1, &ids, err, sizeof err))
        text = reply(e, &ids, max_tokens, temperature, seed);
    tok_ids_free(&ids);
    return text;
}

/* The tune in a reply: from its X: line (or its first header line) on. */
static const char *tune_in(const char *text)
{
    const char *x = strstr(text, "X:");
    return x ? x : text;
}

/* ---------------------------------------------------------------- held-out tunes as requests */

struct held {
    char key[32], meter[16], rhythm[64];
    int bars;
    char chords[1024];   /* first chord of each bar, "-" where none; "" when the tune has (almost) none */
    char motif[256];     /* the notes of the second bar of music, as written */
    char *prefix;        /* header and first 4 bars */
};

static int valid_meter(const char *meter)
{
    abc_meter m;
    char e[64];
    return abc_parse_meter(meter, &m, e, sizeof e) && abc_meter_bar_length(m).num > 0;
}

static int held_of(const char *doc, struct held *h)
{
    memset(h, 0, sizeof *h);
    struct eval_tune t;
    if (eval_tune_check(doc, strlen(doc), &t) || !t.valid || t.bars < 8 || t.bars > 64 || !valid_meter(t.meter) ||
        strlen(t.rhythm) >= sizeof h->rhythm)
        return 0;
    abc_file *f = abc_parse(doc, strlen(doc));
    abc_model *m = f && f->n_tunes ? abc_model_new(f, 0, NULL) : NULL;
    abc_analysis a;
    int ok = m && m->n_voices == 1 && !abc_analyze(&f->tunes[0], m, &a);
    if (!ok) {
        abc_model_free(m);
        abc_file_free(f);
        return 0;
    }
    snprintf(h->key, sizeof h->key, "%s", t.key);
    snprintf(h->meter, sizeof h->meter, "%s", t.meter);
    snprintf(h->rhythm, sizeof h->rhythm, "%s", t.rhythm);
    h->bars = t.bars;
    /* chords: the first symbol of each bar with music */
    int with = 0, cells = 0;
    size_t used = 0;
    for (size_t b = 0; b < a.n_chord_bars && used + 16 < sizeof h->chords; b++) {
        const char *c = a.chords[b].n ? a.chords[b].chords[0] : "-";
        with += a.chords[b].n > 0;
        cells++;
        used += (size_t)snprintf(h->chords + used, sizeof h->chords - used, "%s%s", used ? " | " : "", c);
    }
    if (with * 2 < cells || used + 16 >= sizeof h->chords)
        h->chords[0] = 0;
    /* motif: the notes of the second bar with music (tunes in L:1/8, the composer's motif unit); the prefix:
     * through the fourth such bar */
    const abc_tune *tu = &f->tunes[0];
    int eighths = m->unit.num == 1 && m->unit.den == 8;
    int bar = 0, notes = 0;
    size_t mused = 0, cut = 0;
    for (size_t i = 0; i < tu->n_body && !cut; i++) {
        const abc_element *el = &tu->body[i];
        if (el->kind == ABC_EL_NOTE || el->kind == ABC_EL_REST) {
            notes = 1;
            if (eighths && bar == 1 && el->kind == ABC_EL_NOTE && mused + el->src_len + 1 < sizeof h->motif) {
                memcpy(h->motif + mused, f->text + el->src_off, el->src_len);
                mused += el->src_len;
                h->motif[mused] = 0;
            }
        } else if (el->kind == ABC_EL_BAR && notes) {
            notes = 0;
            if (++bar == 4)
                cut = el->src_off + el->src_len;
        }
    }
    if (cut)
        h->prefix = strndup(f->text, cut);
    abc_analysis_free(&a);
    abc_model_free(m);
    abc_file_free(f);
    return h->prefix != NULL;
}

static int same_key(const char *a, const char *b)
{
    abc_key x, y;
    char e[64];
    if (!abc_parse_key(a, &x, e, sizeof e) || !abc_parse_key(b, &y, e, sizeof e))
        return 0;
    return x.tonic_pc == y.tonic_pc && x.mode == y.mode && x.sharps == y.sharps;
}

/* Share of requested chords found as the first chord symbol of the same bar of the tune. */
static void chord_adherence(const char *abc, const char *cells, struct rate *r)
{
    abc_file *f = abc_parse(abc, strlen(abc));
    abc_model *m = f && f->n_tunes ? abc_model_new(f, 0, NULL) : NULL;
    abc_analysis a;
    if (!m || abc_analyze(&f->tunes[0], m, &a)) {
        abc_model_free(m);
        abc_file_free(f);
        return;
    }
    char want[1024];
    snprintf(want, sizeof want, "%s", cells);
    char *save = NULL;
    size_t b = 0;
    for (char *c = strtok_r(want, "|", &save); c; c = strtok_r(NULL, "|", &save), b++) {
        while (*c == ' ')
            c++;
        c[strcspn(c, " ")] = 0;
        if (!strcmp(c, "-"))
            continue;
        char wn[64], hn[64] = "";
        abc_chord_normalize(c, wn, sizeof wn);
        if (b < a.n_chord_bars && a.chords[b].n)
            abc_chord_normalize(a.chords[b].chords[0], hn, sizeof hn);
        rate_add(r, !strcmp(wn, hn));
    }
    abc_analysis_free(&a);
    abc_model_free(m);
    abc_file_free(f);
}

static void motif_presence(const char *abc, const char *motif, struct rate *r)
{
    abc_file *f = abc_parse(abc, strlen(abc));
    abc_model *m = f && f->n_tunes ? abc_model_new(f, 0, NULL) : NULL;
    abc_melody text = {0}, ph = {0};
    char e[128];
    int found = 0;
    if (m && m->n_voices && !abc_melody_of_voice(m, 0, &text) &&
        !abc_melody_parse(motif, abc_tune_field(&f->tunes[0], 'K'), &ph, e, sizeof e))
        found = abc_melody_find(&text, &ph, true, NULL, 0) > 0;
    rate_add(r, found);
    abc_melody_free(&text);
    abc_melody_free(&ph);
    abc_model_free(m);
    abc_file_free(f);
}

static void controls(const char *abc, const struct held *h, struct gen_stats *g)
{
    struct eval_tune t;
    if (eval_tune_check(abc, strlen(abc), &t))
        return;
    rate_add(&g->key, same_key(t.key, h->key));
    rate_add(&g->meter, !strcmp(t.meter, h->meter));
    if (h->rhythm[0])
        rate_add(&g->type, !strcasecmp(t.rhythm, h->rhythm));
    rate_add(&g->bars, t.bars == h->bars);
}

/* ---------------------------------------------------------------- generation */

static int compose_one(struct eval_ctx *e, struct compose_request *req, struct compose_result *res,
                       struct gen_stats *g)
{
    char err[512];
    if (compose(e->cm.composer, req, NULL, NULL, res, err, sizeof err)) {
        fprintf(stderr, "melodist eval: compose: %s\n", err);
        return -1;
    }
    for (int b = 0; b < res->bars; b++)
        rate_add(&g->repaired, b < res->bars_repaired);
    return 0;
}

/* For each held-out tune: its controls given to the composer (constrained) and to the model alone (free). */
static void generation(struct eval_ctx *e, const struct docs *data, int n_gen, struct gen_stats *con,
                       struct gen_stats *fre, double held_pc[12], double held_iv[EVAL_INTERVALS], int *used)
{
    *used = 0;
    /* spread over the file (collections come one after another): every step-th tune, then the ones between */
    size_t step = n_gen > 0 && data->n > (size_t)n_gen ? data->n / (size_t)n_gen : 1;
    for (size_t k = 0; k < data->n && *used < n_gen; k++) {
        size_t i = (k % (data->n / step)) * step + k / (data->n / step);
        if (i >= data->n)
            continue;
        struct held h;
        if (!held_of(data->v[i], &h))
            continue;
        (*used)++;
        eval_histograms(data->v[i], strlen(data->v[i]), held_pc, held_iv);
        uint64_t seed = e->seed + i;
        struct compose_request req;
        compose_request_default(&req);
        req.seed = seed;
        req.key = h.key;
        req.meter = h.meter;
        req.type = h.rhythm[0] ? h.rhythm : NULL;
        req.bars = h.bars;
        struct compose_result res;
        if (!compose_one(e, &req, &res, con)) {
            judge_tune(e, con, res.abc);
            controls(res.abc, &h, con);
            char err[256];
            char *instr = compose_instruction(&req, err, sizeof err);
            char *free_text = instr ? chat_reply(e, MELODIST_PERSONA_ZH, instr, 800, 0.8f, seed) : NULL;
            if (free_text) {
                judge_tune(e, fre, tune_in(free_text));
                controls(tune_in(free_text), &h, fre);
            }
            free(free_text);
            free(instr);
            compose_result_free(&res);
        }
        if (h.chords[0]) {
            compose_request_default(&req);
            req.seed = seed;
            req.key = h.key;
            req.meter = h.meter;
            req.chords = h.chords;
            if (!compose_one(e, &req, &res, con)) {
                chord_adherence(res.abc, h.chords, &con->chords);
                compose_result_free(&res);
            }
            char err[256];
            char *instr = compose_instruction(&req, err, sizeof err);
            char *free_text = instr ? chat_reply(e, MELODIST_PERSONA_ZH, instr, 800, 0.8f, seed) : NULL;
            if (free_text)
                chord_adherence(tune_in(free_text), h.chords, &fre->chords);
            free(free_text);
            free(instr);
        }
        if (h.motif[0]) {
            compose_request_default(&req);
            req.seed = seed;
            req.key = h.key;
            req.meter = h.meter;
            req.motif = h.motif;
            req.bars = 8;
            if (!compose_one(e, &req, &res, con)) {
                motif_presence(res.abc, h.motif, &con->motif);
                compose_result_free(&res);
            }
            char err[256];
            char *instr = compose_instruction(&req, err, sizeof err);
            char *free_text = instr ? chat_reply(e, MELODIST_PERSONA_ZH, instr, 800, 0.8f, seed) : NULL;
            if (free_text)
                motif_presence(tune_in(free_text), h.motif, &fre->motif);
            free(free_text);
            free(instr);
        }
        compose_request_default(&req);
        req.task = COMPOSE_CONTINUE;
        req.seed = seed;
        req.prefix = h.prefix;
        req.bars = 4;
        if (!compose_one(e, &req, &res, con)) {
            rate_add(&con->prefix, !strncmp(res.abc, h.prefix, strlen(h.prefix) - 1));
            compose_result_free(&res);
        }
        char err[256];
        char *instr = compose_instruction(&req, err, sizeof err);
        char *free_text = instr ? chat_reply(e, MELODIST_PERSONA_ZH, instr, 800, 0.8f, seed) : NULL;
        if (free_text) {
            /* the given bars (after the K: line) must come back verbatim */
            const char *k = strstr(h.prefix, "\nK:");
            const char *bars = k ? strchr(k + 1, '\n') : NULL;
            rate_add(&fre->prefix, bars && strstr(free_text, bars + 1) != NULL);
        }
        free(free_text);
        free(instr);
        free(h.prefix);
        progress("generation %d/%d", *used, n_gen);
    }
    progress_done();
}

static uint64_t mix_seed(uint64_t x)
{
    x = x * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
    x ^= x >> 29;
    return x ? x : 1;
}

/* Unconditioned samples (BOS, then the model or the n-gram alone), as in pre-training. */
static void free_samples(struct eval_ctx *e, int n, struct gen_stats *model_g, struct gen_stats *ngram_g)
{
    int bos = tok_bos_id(e->cm.tok), eos = tok_eos_id(e->cm.tok);
    for (int i = 0; i < n; i++) {
        tok_ids prompt = {&bos, 1, 1};
        char *text = reply(e, &prompt, 700, 0.8f, e->seed + 1000 + (uint64_t)i);
        if (text)
            judge_tune(e, model_g, tune_in(text));
        free(text);
        if (!e->ngram)
            continue;
        int ids[701] = {bos};
        size_t k = 1;
        uint64_t rng = mix_seed(e->seed + 2000 + (uint64_t)i);
        while (k < 701) {
            int w = eval_ngram_sample(e->ngram, ids, k, &rng);
            if (w == eos)
                break;
            ids[k++] = w;
        }
        char err[128];
        text = tok_decode(e->cm.tok, ids + 1, k - 1, TOK_SKIP_SPECIAL, NULL, err, sizeof err);
        if (text)
            judge_tune(e, ngram_g, tune_in(text));
        free(text);
    }
}

/* ---------------------------------------------------------------- bits per character */

struct bits {
    double model, ngram;
    long chars, tokens, docs, skipped;
};

static int tokenize_doc(const mt_tokenizer *tok, const char *doc, tok_ids *ids)
{
    ids->n = 0;
    return tok_encode(tok, doc, strlen(doc), TOK_ADD_BOS | TOK_ADD_EOS, ids);
}

static int measure_bits(struct eval_ctx *e, const struct docs *data, long limit, struct bits *b)
{
    tok_ids ids = {0};
    char err[256];
    for (size_t i = 0; i < data->n && (limit <= 0 || b->docs < limit); i++) {
        if (tokenize_doc(e->cm.tok, data->v[i], &ids))
            goto oom;
        if ((int)ids.n > e->ctx_len) {
            b->skipped++;
            continue;
        }
        double bits;
        if (eval_model_bits(e->cm.model, e->state, ids.v, ids.n, &bits, err, sizeof err)) {
            fprintf(stderr, "melodist eval: %s\n", err);
            tok_ids_free(&ids);
            return -1;
        }
        b->model += bits;
        for (size_t k = 1; e->ngram && k < ids.n; k++)
            b->ngram -= log2(eval_ngram_prob(e->ngram, ids.v, k, ids.v[k]));
        b->chars += (long)utf8_chars(data->v[i]);
        b->tokens += (long)ids.n - 1;
        b->docs++;
        if (b->docs % 50 == 0)
            progress("bits/char over %ld tunes", b->docs);
    }
    progress_done();
    tok_ids_free(&ids);
    return 0;
oom:
    tok_ids_free(&ids);
    fprintf(stderr, "melodist eval: out of memory\n");
    return -1;
}

/* ---------------------------------------------------------------- analysis questions */

static const char *const families[] = {"key_mode", "analysis_count", "genre", "analysis_find_melody",
                                       "analysis_find_chord", "analysis_progression"};
#define N_FAMILIES (sizeof families / sizeof families[0])

/* The plugin that answers each family's question (abc_tools.h). */
static const char *const family_plugins[] = {"abc_key", "abc_count", "abc_rhythm", "abc_find_melody", "abc_find_chord",
                                             "abc_progression"};

struct analysis_rates {
    struct rate alone;  /* the model alone, the question in the persona's chat */
    struct rate plugin; /* the model with the ABC plugins */
    struct rate called; /* ... that made a plugin call the plugin ran */
    struct rate right;  /* ... whose first call names the family's plugin */
};

/* The facts of an answer: its ASCII words and numbers (key names, chords, bar numbers, counts), without the
 * decimals (correlations) that the answers also quote. */
static void facts(const char *s, char *out, size_t size)
{
    size_t used = 0;
    out[0] = 0;
    while (*s) {
        if (!isalnum((unsigned char)*s) && *s != '#') {
            s++;
            continue;
        }
        const char *b = s;
        while (isalnum((unsigned char)*s) || *s == '#' || *s == '.' || *s == '/' || *s == ':')
            s++;
        size_t n = (size_t)(s - b);
        while (n && (b[n - 1] == '.' || b[n - 1] == ':'))
            n--;
        if (memchr(b, '.', n) || used + n + 2 >= size)
            continue;
        used += (size_t)snprintf(out + used, size - used, "%.*s ", (int)n, b);
    }
}

/* The name of the plugin in the first call of the session's history ("" when none). */
static void first_call(const struct chat_session *s, char *name, size_t size)
{
    const struct chat_message *msgs;
    int n = chat_session_messages(s, &msgs);
    size_t b, e;
    name[0] = 0;
    for (int i = 0; i < n; i++)
        if (msgs[i].role == CHAT_ASSISTANT && chat_find_call(msgs[i].text, &b, &e)) {
            struct json *j = json_parse(msgs[i].text + b, e - b, NULL, 0);
            snprintf(name, size, "%s", j ? json_string_or(j, "name", "") : "");
            json_free(j);
            return;
        }
}

/* The model's answer with the ABC plugins (abc_tools.h), greedy: the conversation of the tool-use records
 * (plugin schema as the system prompt, the tune as an attached file, the question, the call, the environment's
 * result, the answer). NULL when
 * it could not answer; *called is set when a plugin ran without refusing the call. */
static char *plugin_reply(const struct eval_ctx *e, struct chat_session *s, const char *user, int *called)
{
    struct gen_params p;
    gen_params_default(&p);
    p.temperature = 0;
    p.seed = e->seed;
    p.copy_bias = e->copy_bias;
    p.max_tokens = 200;
    struct chat_reply r;
    char err[256];
    chat_session_reset(s);
    *called = 0;
    size_t len = strlen(user);
    const char *tune = abc_tools_split(user, &len);
    if ((tune && chat_session_attach(s, tune, strlen(tune))) ||
        chat_session_reply(s, user, len, &p, NULL, 0, NULL, NULL, &r, err, sizeof err))
        return NULL;
    *called = r.n_calls > r.n_call_errors;
    return r.text;
}

/* One JSON line of --answers: the question, the reference, both answers and the plugin's exchange. */
static void answer_line(FILE *out, const char *task, const char *question, const char *reference, const char *alone,
                        const char *with_plugin, struct chat_session *s, int right_alone, int right_plugin)
{
    const struct chat_message *msgs;
    int n = chat_session_messages(s, &msgs);
    const char *call = "", *result = "";
    for (int i = 0; i < n; i++)
        if (msgs[i].role == CHAT_ENVIRONMENT && i > 0 && !*result) {
            call = msgs[i - 1].text;
            result = msgs[i].text;
        }
    const char *keys[] = {"task", "question", "reference", "alone", "with_plugin", "plugin_call", "plugin_result"};
    const char *values[] = {task, question, reference, alone ? alone : "", with_plugin ? with_plugin : "", call, result};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        fprintf(out, "%s\"%s\":", k ? "," : "{", keys[k]);
        json_fput_string(out, values[k]);
    }
    fprintf(out, ",\"alone_right\":%s,\"with_plugin_right\":%s}\n", right_alone ? "true" : "false",
            right_plugin ? "true" : "false");
}

/* answers: NULL, or where each question's answers go (answer_line). */
static int analysis(struct eval_ctx *e, const char *path, int per_family, struct analysis_rates acc[N_FAMILIES],
                    FILE *answers)
{
    char *text = compose_read_text("eval", path, NULL);
    if (!text)
        return -1;
    char err[256];
    struct chat_session *s = chat_session_new(e->cm.model, e->cm.tok, NULL, e->ctx_len, err, sizeof err);
    if (!s || chat_session_set_plugins(s, abc_tools_schema(), abc_tools_plugin, NULL, ABC_TOOLS_MAX_CALLS)) {
        fprintf(stderr, "melodist eval: %s\n", s ? "out of memory" : err);
        chat_session_free(s);
        free(text);
        return -1;
    }
    int counts[N_FAMILIES] = {0};
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        struct json *j = json_parse(line, strlen(line), err, sizeof err);
        const struct json *task = j ? json_get(j, "task") : NULL;
        const struct json *conv = j ? json_get(j, "conversation") : NULL;
        size_t f = 0;
        while (task && task->type == JSON_STRING && f < N_FAMILIES && strcmp(task->string, families[f]))
            f++;
        if (f < N_FAMILIES && counts[f] < per_family && conv && conv->type == JSON_ARRAY && conv->count) {
            const struct json *sys = json_get(&conv->items[0], "system");
            const struct json *in = json_get(&conv->items[0], "input");
            const struct json *out = json_get(&conv->items[0], "output");
            if (sys && in && out && sys->type == JSON_STRING && in->type == JSON_STRING && out->type == JSON_STRING) {
                char want[1024], got[1024];
                facts(out->string, want, sizeof want);
                char *alone = chat_reply(e, sys->string, in->string, 200, 0, e->seed);
                facts(alone ? alone : "", got, sizeof got);
                int right_alone = alone && !strcmp(want, got);
                rate_add(&acc[f].alone, right_alone);
                int called;
                char *answer = plugin_reply(e, s, in->string, &called);
                facts(answer ? answer : "", got, sizeof got);
                int right_plugin = answer && !strcmp(want, got);
                rate_add(&acc[f].plugin, right_plugin);
                rate_add(&acc[f].called, called);
                if (answers)
                    answer_line(answers, families[f], in->string, out->string, alone, answer, s, right_alone,
                                right_plugin);
                free(alone);
                char name[64];
                first_call(s, name, sizeof name);
                rate_add(&acc[f].right, !strcmp(name, family_plugins[f]));
                free(answer);
                counts[f]++;
                progress("analysis question %s %d", families[f], counts[f]);
            }
        }
        json_free(j);
    }
    progress_done();
    chat_session_free(s);
    free(text);
    return 0;
}

/* ---------------------------------------------------------------- report */

static void jnum(const char *name, double v, int comma)
{
    if (isnan(v))
        printf("\"%s\":null%s", name, comma ? "," : "");
    else
        printf("\"%s\":%.4f%s", name, v, comma ? "," : "");
}

static void json_gen(const char *name, const struct gen_stats *g, const double held_pc[12],
                     const double held_iv[EVAL_INTERVALS], int comma)
{
    printf("\"%s\":{", name);
    jnum("validity", rate_of(&g->valid), 1);
    jnum("bar_correct", rate_of(&g->bars_fit), 1);
    jnum("key", rate_of(&g->key), 1);
    jnum("meter", rate_of(&g->meter), 1);
    jnum("type", rate_of(&g->type), 1);
    jnum("bars", rate_of(&g->bars), 1);
    jnum("chords", rate_of(&g->chords), 1);
    jnum("motif", rate_of(&g->motif), 1);
    jnum("continuation_keeps_prefix", rate_of(&g->prefix), 1);
    jnum("pitch_class_distance", g->valid.n ? eval_tv_distance(g->pc, held_pc, 12) : NAN, 1);
    jnum("interval_distance", g->valid.n ? eval_tv_distance(g->iv, held_iv, EVAL_INTERVALS) : NAN, 1);
    jnum("copies", rate_of(&g->copied), 1);
    jnum("bars_written_by_composer", rate_of(&g->repaired), 1);
    printf("\"longest_copied_run\":{");
    for (int i = 0, shown = 0; i < 18; i++)
        if (g->novelty_hist[i])
            printf("%s\"%s%d\":%d", shown++ ? "," : "", i == 17 ? "whole_tune" : "", i == 17 ? 0 : i,
                   g->novelty_hist[i]);
    printf("},\"tunes\":%ld}%s", g->valid.n, comma ? "," : "");
}

/* A table cell: the share as a percentage, or "-". */
static void cell(FILE *out, double v, int percent)
{
    if (isnan(v))
        fprintf(out, " - |");
    else if (percent)
        fprintf(out, " %.1f%% |", 100 * v);
    else
        fprintf(out, " %.3f |", v);
}

/* "met" or by how much the value misses a target share. */
static void target(FILE *out, double v, double want)
{
    if (isnan(v))
        fprintf(out, " ≥ %.0f%% | not measured |\n", 100 * want);
    else if (v >= want)
        fprintf(out, " ≥ %.0f%% | met |\n", 100 * want);
    else
        fprintf(out, " ≥ %.0f%% | missed by %.1f points |\n", 100 * want, 100 * (want - v));
}

struct report {
    struct bits bits;
    struct gen_stats con, fre, unc, ngr;
    double held_pc[12], held_iv[EVAL_INTERVALS];
    struct analysis_rates acc[N_FAMILIES];
    float copy_bias; /* of the answers with plugins */
    int used, order, have_ngram;
};

static void row(FILE *out, const char *name, const struct rate *c, const struct rate *f, const struct rate *n, double want)
{
    fprintf(out, "| %s |", name);
    cell(out, rate_of(c), 1);
    cell(out, f ? rate_of(f) : NAN, 1);
    cell(out, n ? rate_of(n) : NAN, 1);
    if (want > 0)
        target(out, rate_of(c), want);
    else
        fprintf(out, " | |\n");
}

static void markdown(const struct report *r, FILE *out)
{
    double bpc = r->bits.model / (double)r->bits.chars, nbpc = r->bits.ngram / (double)r->bits.chars;
    fprintf(out, "| measure | melodist compose (constrained) | model alone (free decoding) | %d-gram baseline | target | "
           "result |\n|---|---|---|---|---|---|\n", r->order);
    fprintf(out, "| bits per character (%ld held-out tunes) | | %.3f | ", r->bits.docs, bpc);
    if (r->have_ngram && bpc < nbpc)
        fprintf(out, "%.3f | below the n-gram | met |\n", nbpc);
    else if (r->have_ngram)
        fprintf(out, "%.3f | below the n-gram | missed by %.3f bits/char |\n", nbpc, bpc - nbpc);
    else
        fprintf(out, "- | below the n-gram | not measured |\n");
    fprintf(out, "| bits per token | | %.3f | ", r->bits.model / (double)r->bits.tokens);
    if (r->have_ngram)
        fprintf(out, "%.3f | | |\n", r->bits.ngram / (double)r->bits.tokens);
    else
        fprintf(out, "- | | |\n");
    row(out, "ABC validity (controls of held-out tunes)", &r->con.valid, &r->fre.valid, NULL, 0.98);
    row(out, "bars fitting the meter", &r->con.bars_fit, &r->fre.bars_fit, NULL, 0.97);
    row(out, "validity, unconditioned samples", &r->unc.valid, NULL, &r->ngr.valid, 0);
    row(out, "bars fitting the meter, unconditioned", &r->unc.bars_fit, NULL, &r->ngr.bars_fit, 0);
    row(out, "key honoured", &r->con.key, &r->fre.key, NULL, 0.95);
    row(out, "meter honoured", &r->con.meter, &r->fre.meter, NULL, 0.95);
    row(out, "rhythm type honoured", &r->con.type, &r->fre.type, NULL, 0.95);
    row(out, "bar count honoured", &r->con.bars, &r->fre.bars, NULL, 0.95);
    row(out, "chord progression (bars with the chord asked)", &r->con.chords, &r->fre.chords, NULL, 0.95);
    row(out, "motif present", &r->con.motif, &r->fre.motif, NULL, 0.95);
    row(out, "continuation keeps the given bars", &r->con.prefix, &r->fre.prefix, NULL, 0.95);
    row(out, "bars written by the composer (no sample fitted)", &r->con.repaired, NULL, NULL, 0);
    row(out, "copies (≥ 8 bars or a whole tune from training)", &r->con.copied, &r->fre.copied, &r->ngr.copied, 0);
    fprintf(out, "| pitch-class histogram distance to held-out (TV) |");
    cell(out, r->con.valid.n ? eval_tv_distance(r->con.pc, r->held_pc, 12) : NAN, 0);
    cell(out, r->fre.valid.n ? eval_tv_distance(r->fre.pc, r->held_pc, 12) : NAN, 0);
    cell(out, r->ngr.valid.n ? eval_tv_distance(r->ngr.pc, r->held_pc, 12) : NAN, 0);
    fprintf(out, " | |\n| interval histogram distance to held-out (TV) |");
    cell(out, r->con.valid.n ? eval_tv_distance(r->con.iv, r->held_iv, EVAL_INTERVALS) : NAN, 0);
    cell(out, r->fre.valid.n ? eval_tv_distance(r->fre.iv, r->held_iv, EVAL_INTERVALS) : NAN, 0);
    cell(out, r->ngr.valid.n ? eval_tv_distance(r->ngr.iv, r->held_iv, EVAL_INTERVALS) : NAN, 0);
    fprintf(out, " | |\n");
    fprintf(out, "\n| analysis answers (held-out SFT questions) | questions | model alone | model with ABC plugin "
                 "(copy prior %g) | plugin call made | the family's plugin called | target | result |\n"
                 "|---|---|---|---|---|---|---|---|\n", r->copy_bias);
    for (size_t f = 0; f < N_FAMILIES; f++) {
        fprintf(out, "| %s | %ld |", families[f], r->acc[f].alone.n);
        cell(out, rate_of(&r->acc[f].alone), 1);
        cell(out, rate_of(&r->acc[f].plugin), 1);
        cell(out, rate_of(&r->acc[f].called), 1);
        cell(out, rate_of(&r->acc[f].right), 1);
        target(out, rate_of(&r->acc[f].plugin), 0.95);
    }
    fprintf(out, "\nLongest run of bars copied from training (composer tunes): ");
    for (int i = 0; i < 18; i++)
        if (r->con.novelty_hist[i])
            fprintf(out, "%s%d: %d  ", i == 17 ? "whole tune" : "", i == 17 ? 0 : i, r->con.novelty_hist[i]);
    fprintf(out, "\n%d held-out tunes gave the controls; %ld tunes of the data longer than the context were skipped for "
           "bits/char.\n", r->used, r->bits.skipped);
}

static void json(const struct report *r, const char *dir, const char *data)
{
    printf("{\"model\":");
    json_fput_string(stdout, dir);
    printf(",\"data\":");
    json_fput_string(stdout, data);
    printf(",\"tunes\":%ld,\"skipped_too_long\":%ld,", r->bits.docs, r->bits.skipped);
    jnum("bits_per_char", r->bits.model / (double)r->bits.chars, 1);
    jnum("bits_per_token", r->bits.model / (double)r->bits.tokens, 1);
    jnum("validity", rate_of(&r->con.valid), 1);
    jnum("bar_correct", rate_of(&r->con.bars_fit), 1);
    printf("\"generation_requests\":%d,", r->used);
    jnum("copy_bias", r->copy_bias, 1);
    json_gen("composer", &r->con, r->held_pc, r->held_iv, 1);
    json_gen("free", &r->fre, r->held_pc, r->held_iv, 1);
    json_gen("unconditioned", &r->unc, r->held_pc, r->held_iv, 1);
    if (r->have_ngram) {
        printf("\"ngram\":{\"order\":%d,", r->order);
        jnum("bits_per_char", r->bits.ngram / (double)r->bits.chars, 1);
        jnum("bits_per_token", r->bits.ngram / (double)r->bits.tokens, 1);
        json_gen("samples", &r->ngr, r->held_pc, r->held_iv, 0);
        printf("},");
    }
    printf("\"analysis\":{");
    for (size_t f = 0; f < N_FAMILIES; f++) {
        printf("\"%s\":{", families[f]);
        jnum("accuracy", rate_of(&r->acc[f].alone), 1);
        jnum("accuracy_with_plugin", rate_of(&r->acc[f].plugin), 1);
        jnum("plugin_called", rate_of(&r->acc[f].called), 1);
        jnum("family_plugin_called", rate_of(&r->acc[f].right), 1);
        printf("\"questions\":%ld}%s", r->acc[f].alone.n, f + 1 < N_FAMILIES ? "," : "");
    }
    printf("}}\n");
}

int cmd_eval(int argc, char **argv)
{
    const char *dir = NULL, *data_path = NULL, *train_path = NULL, *sft_path = NULL, *table_path = NULL,
               *answers_path = NULL;
    int as_json = 0, n_gen = 20, n_analysis = 10;
    long limit = 0;
    struct report r = {.order = 4};
    uint64_t seed = 1;
    struct gen_params plugin_params; /* only its copy_bias is used: --copy-bias as the model commands read it */
    gen_params_default(&plugin_params);
    int unused_threads;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(eval_help, stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            as_json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "melodist eval: %s needs a value\n%s", a, eval_help);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m"))
            dir = v;
        else if (!strcmp(a, "--data"))
            data_path = v;
        else if (!strcmp(a, "--train"))
            train_path = v;
        else if (!strcmp(a, "--sft"))
            sft_path = v;
        else if (!strcmp(a, "--markdown"))
            table_path = v;
        else if (!strcmp(a, "--answers"))
            answers_path = v;
        else if (!strcmp(a, "--limit"))
            limit = atol(v);
        else if (!strcmp(a, "--n-gen"))
            n_gen = atoi(v);
        else if (!strcmp(a, "--n-analysis"))
            n_analysis = atoi(v);
        else if (!strcmp(a, "--ngram-order") && atoi(v) >= 1 && atoi(v) <= 8)
            r.order = atoi(v);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--copy-bias") && gen_option(a, v, 0, &plugin_params, &unused_threads) == 1)
            continue;
        else if (!strcmp(a, "--threads") && atoi(v) > 0)
            nn_set_threads(atoi(v));
        else {
            fprintf(stderr, "melodist eval: unknown option or bad value: %s %s\n%s", a, v, eval_help);
            return 2;
        }
    }
    if (!data_path) {
        fprintf(stderr, "melodist eval: give the held-out tunes with --data FILE.abc\n%s", eval_help);
        return 2;
    }
    struct eval_ctx e = {.seed = seed, .copy_bias = plugin_params.copy_bias};
    r.copy_bias = e.copy_bias;
    struct docs data = {0}, train = {0};
    int rc = 1;
    if (docs_read(data_path, &data) || (train_path && docs_read(train_path, &train)))
        goto done;
    if (!data.n) {
        fprintf(stderr, "melodist eval: %s holds no tunes\n", data_path);
        goto done;
    }
    if (compose_load("eval", dir, &e.cm))
        goto done;
    e.ctx_len = e.cm.model->config.max_position_embeddings > 0 ? e.cm.model->config.max_position_embeddings : 2048;
    e.state = model_state_new(e.cm.model, e.ctx_len, 64);
    if (!e.state)
        goto oom;
    if (train.n) {
        e.ngram = eval_ngram_new(r.order, e.cm.model->config.vocab_size);
        e.novelty = eval_novelty_new(16);
        if (!e.ngram || !e.novelty)
            goto oom;
        tok_ids ids = {0};
        for (size_t i = 0; i < train.n; i++) {
            if (tokenize_doc(e.cm.tok, train.v[i], &ids) || eval_ngram_add(e.ngram, ids.v, ids.n) ||
                eval_novelty_add(e.novelty, train.v[i], strlen(train.v[i]))) {
                tok_ids_free(&ids);
                goto oom;
            }
        }
        tok_ids_free(&ids);
        eval_novelty_seal(e.novelty);
        r.have_ngram = 1;
        fprintf(stderr, "melodist eval: %d-gram baseline and copy index built from %zu training tunes\n", r.order,
                train.n);
    }
    if (measure_bits(&e, &data, limit, &r.bits))
        goto done;
    generation(&e, &data, n_gen, &r.con, &r.fre, r.held_pc, r.held_iv, &r.used);
    free_samples(&e, n_gen, &r.unc, &r.ngr);
    if (sft_path) {
        char tmp[4200], err[4400];
        FILE *answers = answers_path ? file_create_tmp(answers_path, tmp, sizeof tmp, err, sizeof err) : NULL;
        if (answers_path && !answers) {
            fprintf(stderr, "melodist eval: %s\n", err);
            goto done;
        }
        int failed = analysis(&e, sft_path, n_analysis, r.acc, answers);
        if (answers && file_commit(answers, !failed && !ferror(answers), tmp, answers_path, err, sizeof err) &&
            !failed) {
            fprintf(stderr, "melodist eval: %s\n", err);
            failed = 1;
        }
        if (failed)
            goto done;
    }
    if (as_json)
        json(&r, e.cm.dir, data_path);
    else
        markdown(&r, stdout);
    if (table_path) {
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (!mem)
            goto oom;
        markdown(&r, mem);
        fclose(mem);
        int ok = abc_write_atomic("eval", table_path, text, len);
        free(text);
        if (!ok)
            goto done;
    }
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "melodist eval: out of memory\n");
done:
    eval_ngram_free(e.ngram);
    eval_novelty_free(e.novelty);
    model_state_free(e.state);
    compose_unload(&e.cm);
    docs_free(&data);
    docs_free(&train);
    return rc;
}
