/* SFT task families (see sft.h and docs/data.md).
 *
 * Each tune offers the families whose ingredients it has (chords, lyrics, sections, ...); each applicable family is
 * taken with the rate in `families[]` by a random draw seeded with (seed, tune hash), and the language is Chinese
 * with probability 3/4 — so the choice depends on the tune and the seed, not on the order of the inputs.
 * Every fact a question or answer states is computed by the ABC engine (abc_analyze, melody search). */
#include "sft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashset.h"
#include "melodist/abc_analysis.h"
#include "melodist/abc_tools.h"
#include "melodist/data_json.h"

enum { REFERENCE_SLOTS = 256, MIN_CHORD_BARS = 4, MIN_PHRASE_NOTES = 3 };

struct reference {
    uint64_t key;    /* style key hash, 0 when empty */
    char *text;      /* the tune text with its X: line */
};

struct sft_gen {
    uint64_t seed;
    sft_tool_fn on_tool;
    struct reference refs[DATA_SPLIT_COUNT][REFERENCE_SLOTS];
};

struct sft_gen *sft_gen_new(uint64_t seed)
{
    struct sft_gen *g = calloc(1, sizeof *g);
    if (!g)
        abort();
    g->seed = seed;
    return g;
}

void sft_gen_free(struct sft_gen *g)
{
    if (!g)
        return;
    for (int s = 0; s < DATA_SPLIT_COUNT; s++)
        for (int i = 0; i < REFERENCE_SLOTS; i++)
            free(g->refs[s][i].text);
    free(g);
}

void sft_gen_on_tool(struct sft_gen *g, sft_tool_fn fn) { g->on_tool = fn; }

/* ---------------------------------------------------------------- small helpers */

static uint64_t rng_next(uint64_t *state)
{
    *state += 0x9E3779B97F4A7C15ull;
    return hash64_mix(*state);
}

static unsigned rng_below(uint64_t *state, unsigned n) { return n ? (unsigned)(rng_next(state) % n) : 0; }

/* Template expansion: "{1}".."{4}" are replaced by args[0..3]. */
static void fill(struct data_buf *out, const char *tmpl, const char *const *args, int nargs)
{
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '{' && p[1] >= '1' && p[1] <= '4' && p[2] == '}' && p[1] - '1' < nargs) {
            data_buf_puts(out, args[p[1] - '1']);
            p += 2;
        } else {
            data_buf_putc(out, *p);
        }
    }
}

/* A phrasing for the record's language: zh_n Chinese templates, en_n English ones. */
static void phrase(struct data_buf *out, uint64_t *rng, int zh, const char *const *zh_t, size_t zh_n,
                   const char *const *en_t, size_t en_n, const char *const *args, int nargs)
{
    const char *t = zh ? zh_t[rng_below(rng, (unsigned)zh_n)] : en_t[rng_below(rng, (unsigned)en_n)];
    fill(out, t, args, nargs);
}

#define PHRASE(out, rng, zh, zh_t, en_t, args, nargs)                                                              \
    phrase(out, rng, zh, zh_t, sizeof zh_t / sizeof zh_t[0], en_t, sizeof en_t / sizeof en_t[0], args, nargs)

static size_t header_end(const char *text)
{
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        if (p[0] == 'K' && p[1] == ':')
            return eol ? (size_t)(eol - text) + 1 : strlen(text);
        if (!eol)
            break;
        p = eol + 1;
    }
    return 0;
}

/* The text without the header lines of field `key` (e.g. R: removed before asking for the genre). */
static void without_field(struct data_buf *out, const char *text, char key)
{
    size_t hdr = header_end(text);
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) + 1 : strlen(p);
        if (!((size_t)(p - text) < hdr && p[0] == key && p[1] == ':'))
            data_buf_append(out, p, n);
        p += n;
    }
}

static void trim_end(struct data_buf *b)
{
    while (b->len && strchr(" \t\n", b->data[b->len - 1]))
        b->data[--b->len] = '\0';
}

static void join_list(struct data_buf *out, const int *v, size_t n, int zh)
{
    for (size_t i = 0; i < n; i++)
        data_buf_printf(out, "%s%d", i ? (zh ? "、" : ", ") : "", v[i]);
}

static void meter_text(const abc_meter *m, char *buf, size_t size)
{
    if (m->kind == ABC_METER_NONE)
        snprintf(buf, size, "free meter");
    else
        snprintf(buf, size, "%d/%d", m->num, m->den);
}

/* ---------------------------------------------------------------- genre (R: field or collection group) */

struct genre {
    const char *match; /* lower-case substring of R: or of the group name */
    const char *zh, *en;
    const char *mood_zh, *mood_en;
};

/* More specific entries first ("slip jig" before "jig"). */
static const struct genre genres[] = {
    {"slip", "滑步吉格舞曲", "slip jig", "飘逸", "flowing"},
    {"jig", "吉格舞曲", "jig", "欢快跳跃", "merry"},
    {"reel", "里尔舞曲", "reel", "热情奔放", "energetic"},
    {"hornpipe", "号笛舞曲", "hornpipe", "稳健", "sturdy"},
    {"strathspey", "斯特拉斯贝舞曲", "strathspey", "顿挫有致", "snappy"},
    {"slide", "滑步舞曲", "slide", "轻盈", "springy"},
    {"hpps", "号笛舞曲", "hornpipe", "稳健", "sturdy"},
    {"waltz", "华尔兹", "waltz", "优美", "elegant"},
    {"polka", "波尔卡", "polka", "俏皮", "playful"},
    {"mazurka", "玛祖卡", "mazurka", "热烈", "spirited"},
    {"march", "进行曲", "march", "雄壮", "stately"},
    {"morris", "莫里斯舞曲", "morris dance", "热闹", "boisterous"},
    {"playford", "普莱福德乡村舞曲", "Playford country dance", "典雅", "courtly"},
    {"xmas", "圣诞颂歌", "Christmas carol", "温馨", "festive"},
    {"carol", "圣诞颂歌", "Christmas carol", "温馨", "festive"},
    {"xiaodiao", "小调", "xiaodiao (folk ditty)", "婉转", "lyrical"},
    {"shange", "山歌", "shange (mountain song)", "嘹亮", "ringing"},
    {"haozi", "号子", "haozi (work song)", "铿锵有力", "vigorous"},
    {"wiegen", "摇篮曲", "lullaby", "温柔", "tender"},
    {"kinder", "儿歌", "children's song", "天真", "innocent"},
    {"liebes", "情歌", "love song", "深情", "heartfelt"},
    {"hochzeit", "婚礼歌", "wedding song", "喜庆", "joyful"},
    {"soldat", "士兵之歌", "soldiers' song", "豪迈", "bold"},
    {"geistlich", "宗教歌曲", "sacred song", "虔诚", "devout"},
    {"religi", "宗教歌曲", "sacred song", "虔诚", "devout"},
    {"ballade", "叙事歌", "ballad", "深沉", "brooding"},
    {"romanze", "叙事歌", "ballad", "深沉", "brooding"},
    {"scherz", "诙谐歌曲", "humorous song", "诙谐", "humorous"},
    {"taneczna", "舞曲", "dance song", "活泼", "lively"},
    {"tanz", "舞曲", "dance song", "活泼", "lively"},
    {"dumy", "杜马（叙事歌）", "duma (narrative song)", "沉郁", "sombre"},
};

static const struct genre *find_genre(const struct tune *t, const struct tune_meta *meta)
{
    char lower[256];
    const char *sources[2] = {t->model->rhythm, meta->group};
    for (int s = 0; s < 2; s++) {
        if (!sources[s] || !sources[s][0])
            continue;
        size_t i = 0;
        for (; sources[s][i] && i + 1 < sizeof lower; i++)
            lower[i] = (char)(sources[s][i] >= 'A' && sources[s][i] <= 'Z' ? sources[s][i] + 32 : sources[s][i]);
        lower[i] = '\0';
        for (size_t g = 0; g < sizeof genres / sizeof genres[0]; g++)
            if (strstr(lower, genres[g].match))
                return &genres[g];
    }
    return NULL;
}


/* ---------------------------------------------------------------- collections */

struct collection {
    const char *name, *zh, *en;
    int dances; /* a collection of British and Irish dance tunes, whose rhythm types the engine names */
};

static const struct collection collections[] = {
    {"nottingham", "诺丁汉音乐数据库中的英国传统舞曲", "the English traditional dance tunes of the Nottingham Music Database",
     1},
    {"essen_europe", "埃森民歌集中的欧洲民歌", "the European folk songs of the Essen collection", 0},
    {"essen_china", "埃森民歌集中的中国民歌", "the Chinese folk songs of the Essen collection", 0},
    {"shlien_balkan", "巴尔干及各国民间舞曲", "Balkan and international folk dance tunes", 0},
    {"irishman", "爱尔兰及苏格兰传统音乐", "Irish and Scottish traditional music", 1},
};

static const struct collection *collection_of(const struct tune_meta *meta)
{
    for (size_t i = 0; i < sizeof collections / sizeof collections[0]; i++)
        if (!strcmp(meta->collection, collections[i].name))
            return &collections[i];
    return NULL;
}

/* ---------------------------------------------------------------- mood mapping (docs/data.md) */

struct mood_words {
    const char *zh[4], *en[4];
    int n;
};

static void mood_add(struct mood_words *w, const char *zh, const char *en)
{
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->zh[i], zh))
            return;
    if (w->n < 4) {
        w->zh[w->n] = zh;
        w->en[w->n] = en;
        w->n++;
    }
}

static void mood_of(const struct tune *t, const struct tune_meta *meta, const abc_analysis *a, struct mood_words *w)
{
    memset(w, 0, sizeof *w);
    if (a->modal.pentatonic) {
        mood_add(w, "质朴悠扬", "serene");
    } else {
        static const char *const zh[] = {"明朗", "忧伤", "豪爽", "古朴", "神秘", "梦幻", "紧张不安"};
        static const char *const en[] = {"bright", "melancholy", "earthy", "wistful", "mysterious", "dreamy",
                                         "uneasy"};
        mood_add(w, zh[a->modal.mode], en[a->modal.mode]);
    }
    const abc_meter *m = &a->meter;
    if (m->kind == ABC_METER_NONE)
        mood_add(w, "自由舒展", "free-flowing");
    else if (m->num % 3 == 0 && m->num > 3)
        mood_add(w, "轻快摇曳", "lilting");
    else if (m->num == 3)
        mood_add(w, "优雅", "graceful");
    else if (m->num == 2)
        mood_add(w, "明快", "brisk");
    else if (m->num == 4)
        mood_add(w, "平稳", "steady");
    else
        mood_add(w, "灵动不羁", "asymmetric and spirited");
    if (a->tempo_given && a->beats > 0 && a->seconds > 0) {
        double qpm = 60.0 * abc_frac_to_double(a->duration) * 4.0 / a->seconds;
        if (qpm >= 160)
            mood_add(w, "急促", "fast and fiery");
        else if (qpm >= 120)
            mood_add(w, "活泼", "lively");
        else if (qpm >= 80)
            mood_add(w, "从容", "relaxed");
        else
            mood_add(w, "舒缓", "slow and calm");
    }
    const struct genre *g = find_genre(t, meta);
    if (g)
        mood_add(w, g->mood_zh, g->mood_en);
}

/* ---------------------------------------------------------------- text of bars and phrases */

/* Byte offset in the tune's text of each written bar's first element; [n_bars] = end of the text. */
static size_t *bar_offsets(const struct tune *t)
{
    const abc_model *m = t->model;
    size_t *off = malloc((m->n_bars + 1) * sizeof *off);
    size_t n_lines = 1;
    for (size_t i = 0; i < t->len; i++)
        n_lines += t->text[i] == '\n';
    size_t *line_start = malloc((n_lines + 1) * sizeof *line_start);
    if (!off || !line_start)
        abort();
    size_t l = 0;
    line_start[l++] = 0;
    for (size_t i = 0; i < t->len; i++)
        if (t->text[i] == '\n')
            line_start[l++] = i + 1;
    const int base = t->file->tunes[0].first_line;
    for (size_t b = 0; b < m->n_bars; b++) {
        long line = m->bars[b].line - base;
        if (line < 0 || (size_t)line >= n_lines)
            line = 0;
        off[b] = line_start[line] + (size_t)(m->bars[b].col > 0 ? m->bars[b].col - 1 : 0);
        if (off[b] > t->len)
            off[b] = t->len;
    }
    off[m->n_bars] = t->len;
    free(line_start);
    return off;
}

/* The notes of written bar b as an ABC fragment: notes, chords, broken rhythm, tuplets and ties only (no chord
 * symbols, decorations, grace notes or bar lines). Returns the number of notes. */
static int bar_phrase(const struct tune *t, const size_t *off, size_t b, struct data_buf *out)
{
    const abc_tune *tu = &t->file->tunes[0];
    int notes = 0, in_grace = 0;
    for (size_t i = 0; i < tu->n_body; i++) {
        const abc_element *e = &tu->body[i];
        if (e->src_off < off[b] || e->src_off >= off[b + 1])
            continue;
        switch (e->kind) {
        case ABC_EL_GRACE_BEGIN: in_grace = 1; continue;
        case ABC_EL_GRACE_END: in_grace = 0; continue;
        case ABC_EL_NOTE:
            if (in_grace)
                continue;
            notes++;
            break;
        case ABC_EL_CHORD_BEGIN:
        case ABC_EL_CHORD_END:
        case ABC_EL_BROKEN:
        case ABC_EL_TUPLET:
        case ABC_EL_TIE:
        case ABC_EL_SPACE:
            if (in_grace)
                continue;
            break;
        default:
            continue;
        }
        if (e->kind == ABC_EL_SPACE) {
            if (out->len && out->data[out->len - 1] != ' ')
                data_buf_putc(out, ' ');
            continue;
        }
        data_buf_append(out, t->text + e->src_off, e->src_len);
    }
    trim_end(out);
    return notes;
}

/* Offset of the first key change in the body (phrases are read in the header key), or the end of the text. */
static size_t first_key_change(const struct tune *t)
{
    const abc_tune *tu = &t->file->tunes[0];
    for (size_t i = 0; i < tu->n_body; i++)
        if (tu->body[i].kind == ABC_EL_FIELD && tu->body[i].u.field.key == 'K')
            return tu->body[i].src_off;
    return t->len;
}

/* A bar worth quoting: a full bar (not the pickup) with a few notes, from the first half of the tune and before any
 * key change. */
static int pick_phrase_bar(const struct tune *t, const size_t *off, uint64_t *rng, struct data_buf *phrase_out)
{
    const abc_model *m = t->model;
    size_t key_change = first_key_change(t);
    if (m->n_bars < 2)
        return -1;
    size_t first = m->bars[0].number == 0 ? 1 : 0;
    size_t span = (m->n_bars - first + 1) / 2;
    if (!span)
        return -1;
    size_t start = first + rng_below(rng, (unsigned)span);
    for (size_t k = 0; k < span; k++) {
        size_t b = first + (start - first + k) % span;
        data_buf_reset(phrase_out);
        if (off[b + 1] <= key_change && bar_phrase(t, off, b, phrase_out) >= MIN_PHRASE_NOTES && !strchr(phrase_out->data, '('))
            return (int)b;
    }
    return -1;
}

static const char *key_value(const struct tune *t)
{
    const char *k = abc_tune_field(&t->file->tunes[0], 'K');
    return k ? k : "C";
}

static const char *unit_text(const struct tune *t, char *buf, size_t size)
{
    snprintf(buf, size, "%lld/%lld", (long long)t->model->unit.num, (long long)t->model->unit.den);
    return buf;
}

/* ---------------------------------------------------------------- chords */

static size_t chord_bars(const abc_analysis *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n_chord_bars; i++)
        n += a->chords[i].n > 0;
    return n;
}

/* "| G | D7 | G C |": one cell per written bar that holds music, "-" where no symbol is written. */
static void progression_text(const abc_analysis *a, struct data_buf *out)
{
    char *cells = abc_tools_progression(a);
    if (!cells)
        abort();
    data_buf_puts(out, cells);
    free(cells);
}

/* The tune without chord symbols (harmonisation question). A line left empty is dropped: a blank line would end
 * the tune. */
static void strip_chord_symbols(const struct tune *t, struct data_buf *out)
{
    const abc_tune *tu = &t->file->tunes[0];
    struct data_buf all = {0};
    size_t pos = 0;
    for (size_t i = 0; i < tu->n_body; i++) {
        const abc_element *e = &tu->body[i];
        if (e->kind != ABC_EL_CHORD_SYMBOL)
            continue;
        data_buf_append(&all, t->text + pos, e->src_off - pos);
        pos = e->src_off + e->src_len;
    }
    data_buf_append(&all, t->text + pos, t->len - pos);
    for (const char *p = all.data; *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) + 1 : strlen(p);
        if (strspn(p, " \t") + 1 < n || (!eol && strspn(p, " \t") < n))
            data_buf_append(out, p, n);
        p += n;
    }
    data_buf_free(&all);
}

static void put_length(struct data_buf *out, abc_frac len)
{
    if (len.num != 1)
        data_buf_printf(out, "%lld", (long long)len.num);
    if (len.den != 1)
        data_buf_printf(out, "/%lld", (long long)len.den);
}

static void put_rest(struct data_buf *out, abc_frac *acc, abc_frac unit)
{
    if (abc_frac_cmp(*acc, abc_frac_make(0, 1)) <= 0)
        return;
    data_buf_putc(out, 'x');
    put_length(out, abc_frac_div(*acc, unit));
    *acc = abc_frac_make(0, 1);
}

/* The chord skeleton of a single-voice tune: its header, bar lines, endings, fields and chord symbols, with the
 * notes between two chord changes or bar lines replaced by one invisible rest `x` of the same length (the reverse
 * of harmonisation). */
static void chord_skeleton(const struct tune *t, struct data_buf *out)
{
    const abc_tune *tu = &t->file->tunes[0];
    const abc_model *m = t->model;
    const abc_voice *v = &m->voices[0];
    size_t hdr = header_end(t->text);
    data_buf_append(out, t->text, hdr);
    abc_frac *elem_dur = calloc(tu->n_body + 1, sizeof *elem_dur);
    if (!elem_dur)
        abort();
    for (size_t i = 0; i <= tu->n_body; i++)
        elem_dur[i] = abc_frac_make(0, 1);
    int last_chord = -1;
    for (size_t i = 0; i < v->n_events; i++) { /* a chord's length counts once */
        const abc_event *e = &v->events[i];
        if (e->element < 0 || (size_t)e->element >= tu->n_body || (e->chord >= 0 && e->chord == last_chord))
            continue;
        last_chord = e->chord;
        elem_dur[e->element] = abc_frac_add(elem_dur[e->element], e->dur);
    }
    abc_frac acc = abc_frac_make(0, 1), unit = m->unit;
    int at_line_start = 1;
    for (size_t i = 0; i < tu->n_body; i++) {
        const abc_element *e = &tu->body[i];
        acc = abc_frac_add(acc, elem_dur[i]);
        if (e->kind == ABC_EL_BAR || e->kind == ABC_EL_CHORD_SYMBOL || e->kind == ABC_EL_EOL ||
            e->kind == ABC_EL_FIELD)
            put_rest(out, &acc, unit);
        if (e->kind == ABC_EL_FIELD && e->u.field.key == 'L') {
            char err[64];
            abc_parse_unit(e->u.field.value, &unit, err, sizeof err);
        }
        if (e->kind == ABC_EL_EOL) {
            if (!at_line_start) /* a blank line would end the tune */
                data_buf_putc(out, '\n');
            at_line_start = 1;
        } else if (e->kind == ABC_EL_FIELD && (e->u.field.key == 'w' || e->u.field.key == 'W')) {
            continue; /* lyrics would no longer line up with the notes */
        } else if (e->kind == ABC_EL_FIELD && !e->u.field.inline_) {
            if (!at_line_start)
                data_buf_putc(out, '\n');
            data_buf_append(out, t->text + e->src_off, e->src_len);
            data_buf_putc(out, '\n');
            at_line_start = 1;
        } else if (e->kind == ABC_EL_BAR || e->kind == ABC_EL_ENDING || e->kind == ABC_EL_CHORD_SYMBOL ||
                   e->kind == ABC_EL_FIELD) {
            data_buf_append(out, t->text + e->src_off, e->src_len);
            at_line_start = 0;
        }
        if (e->kind != ABC_EL_EOL && acc.num)
            at_line_start = 0; /* the rest will be written on this line */
    }
    put_rest(out, &acc, unit);
    trim_end(out);
    data_buf_putc(out, '\n');
    free(elem_dur);
}

/* ---------------------------------------------------------------- the families */

struct ctx {
    struct sft_gen *g;
    const struct tune *t;
    const struct tune_meta *meta;
    abc_analysis a;
    size_t *off;
    uint64_t rng;
    sft_emit_fn emit;
    void *emit_ctx;
    struct data_buf in, out, tmp;
};

static int pick_zh(struct ctx *c) { return rng_below(&c->rng, 4) != 0; }

static void emit(struct ctx *c, enum data_task task, int zh, const char *output)
{
    c->emit(c->emit_ctx, task, zh, c->in.data, output);
}

/* The record just emitted (question c->in, answer c->out) once more as a tool-use record: the tune of the question
 * as an attached file, the question's words, the assistant's call of `plugin` (with one string parameter when
 * param is not NULL), the plugin's result on the tune, the answer. */
static void tool_record(struct ctx *c, enum data_task task, const char *plugin, const char *param,
                        const char *value)
{
    size_t question_len;
    const char *tune = abc_tools_split(c->in.data, &question_len);
    if (!c->g->on_tool || !tune)
        return;
    char *call = abc_tools_call_text(plugin, param, value), err[256];
    size_t b, e;
    if (!call || !chat_find_call(call, &b, &e))
        abort();
    char *result = abc_tools_run(tune, call + b, e - b, err, sizeof err);
    struct data_buf question = {0};
    data_buf_append(&question, c->in.data, question_len);
    if (result)
        c->g->on_tool(c->emit_ctx, task, tune, question.data, call, result, c->out.data);
    data_buf_free(&question);
    free(result);
    free(call);
}

static void key_names(const abc_analysis *a, char *declared, char *ks, char *modal, size_t size)
{
    if (a->key_declared)
        abc_key_name(a->declared.tonic_pc, a->declared.mode, declared, size);
    else
        snprintf(declared, size, "none");
    abc_key_name(a->ks.tonic_pc, a->ks.mode, ks, size);
    abc_key_name(a->modal.tonic_pc, a->modal.mode, modal, size);
}

static void f_continuation(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "请续写下面这首乐曲。这里给出了前 {1} 小节：\n{2}",
        "以下是一首曲子的开头（{1} 小节），请接着写完整首曲子：\n{2}",
        "帮我把这段旋律续写成完整的乐曲，用 ABC 记谱法输出：\n{2}",
        "根据这 {1} 个小节的开头，发展出一首完整的曲子：\n{2}",
    };
    static const char *const en_t[] = {
        "Continue this tune. Here are its first {1} bars:\n{2}",
        "Here is the opening of a tune ({1} bars). Please complete it in ABC notation:\n{2}",
        "Finish the following melody:\n{2}",
    };
    const abc_model *m = c->t->model;
    size_t first = m->bars[0].number == 0 ? 1 : 0;
    if (m->n_voices != 1 || m->n_bars < first + 8)
        return;
    size_t given = first + 2 + 2 * rng_below(&c->rng, 2); /* 2 or 4 full bars */
    size_t end = c->off[given]; /* through the bar line that closes the last given bar */
    const abc_tune *tu = &c->t->file->tunes[0];
    for (size_t i = 0; i < tu->n_body; i++) {
        const abc_element *e = &tu->body[i];
        if (e->src_off < end || e->kind == ABC_EL_SPACE)
            continue;
        if (e->kind != ABC_EL_BAR)
            break;
        end = e->src_off + e->src_len;
    }
    data_buf_reset(&c->tmp);
    data_buf_append(&c->tmp, c->t->text, end);
    trim_end(&c->tmp);
    char n[16];
    snprintf(n, sizeof n, "%zu", given - first);
    const char *args[] = {n, c->tmp.data};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 2);
    emit(c, DATA_TASK_CONTINUATION, zh, c->t->text);
}

static void f_mood(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "请创作一首{1}的乐曲。",
        "我想要一首听起来{1}的曲子，请用 ABC 谱写出来。",
        "写一段{1}风格的旋律吧。",
        "请以“{1}”为情绪基调作一首曲子。",
    };
    static const char *const en_t[] = {
        "Compose a {1} tune.",
        "Write me a piece of music that feels {1}, in ABC notation.",
        "Could you write a melody with a {1} character?",
    };
    struct mood_words w;
    mood_of(c->t, c->meta, &c->a, &w);
    data_buf_reset(&c->tmp);
    for (int i = 0; i < w.n; i++) {
        if (zh)
            data_buf_printf(&c->tmp, "%s%s", i ? "、" : "", w.zh[i]);
        else
            data_buf_printf(&c->tmp, "%s%s", i ? (i == w.n - 1 ? " and " : ", ") : "", w.en[i]);
    }
    const char *args[] = {c->tmp.data};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 1);
    emit(c, DATA_TASK_COMPOSE_MOOD, zh, c->t->text);
}

static void f_motif(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "请用下面这个动机创作一首乐曲（L:{2}，K:{3}）：「{1}」",
        "以动机「{1}」为素材（单位音长 {2}，调号 {3}），写一首完整的曲子。",
        "这是一个旋律动机：「{1}」（L:{2}，K:{3}）。请围绕它发展成一首曲子。",
    };
    static const char *const en_t[] = {
        "Compose a tune built on this motif (L:{2}, K:{3}): `{1}`",
        "Use the motif `{1}` (unit length {2}, key {3}) in a complete tune.",
    };
    if (c->t->model->n_voices != 1)
        return;
    struct data_buf ph = {0};
    if (pick_phrase_bar(c->t, c->off, &c->rng, &ph) >= 0) {
        char unit[32];
        const char *args[] = {ph.data, unit_text(c->t, unit, sizeof unit), key_value(c->t)};
        PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 3);
        emit(c, DATA_TASK_COMPOSE_MOTIF, zh, c->t->text);
    }
    data_buf_free(&ph);
}

static void f_chords(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "请根据下面的和弦进行创作一首 {2} 拍的曲子（每格一个小节）：\n{1}",
        "和弦进行如下，请为它写一段旋律，拍号 {2}：\n{1}",
        "用这个和弦进行作一首曲子，并在谱中标出和弦：\n{1}\n拍号：{2}",
    };
    static const char *const en_t[] = {
        "Compose a tune in {2} over this chord progression (one cell per bar):\n{1}",
        "Write a melody with chord symbols that follows these chords ({2}):\n{1}",
    };
    char meter[32];
    meter_text(&c->a.meter, meter, sizeof meter);
    data_buf_reset(&c->tmp);
    progression_text(&c->a, &c->tmp);
    const char *args[] = {c->tmp.data, meter};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 2);
    emit(c, DATA_TASK_COMPOSE_CHORDS, zh, c->t->text);
}

static void sections_text(const abc_analysis *a, struct data_buf *out, int zh)
{
    for (size_t i = 0; i < a->n_sections; i++) {
        const abc_section *s = &a->sections[i];
        if (zh)
            data_buf_printf(out, "%s%c 段 %d 小节", i ? "，" : "", s->label, s->bars);
        else
            data_buf_printf(out, "%s%c: %d bars", i ? ", " : "", s->label, s->bars);
    }
}

static void f_form(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "请创作一首「{1}」曲式的曲子（{2}），拍号 {3}。",
        "写一首曲式为「{1}」的乐曲，各段长度：{2}；拍号 {3}。",
        "我需要一首「{1}」结构的曲子，{3} 拍，段落安排为：{2}。",
    };
    static const char *const en_t[] = {
        "Compose a tune in `{1}` form ({2}) in {3}.",
        "Write a piece with the form `{1}`; sections: {2}; meter {3}.",
    };
    char meter[32];
    meter_text(&c->a.meter, meter, sizeof meter);
    data_buf_reset(&c->tmp);
    sections_text(&c->a, &c->tmp, zh);
    const char *args[] = {c->a.form, c->tmp.data, meter};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 3);
    emit(c, DATA_TASK_COMPOSE_FORM, zh, c->t->text);
}

/* Tunes of the same rhythm type, meter and mode share a style key; the last one seen in the same split is the
 * reference for the next. */
static void f_reference(struct ctx *c, int zh, int want)
{
    static const char *const zh_t[] = {
        "参考下面这首曲子的风格（相同的节奏类型、拍号和调式），创作一首新的曲子：\n{1}",
        "请模仿这首乐曲的风格再写一首：\n{1}",
        "这是一首参考曲目，请写一首与它风格相近的新曲子（{2} 拍，{3}调式）：\n{1}",
    };
    static const char *const en_t[] = {
        "Here is a reference tune. Write a new tune in the same style (same rhythm type, meter and mode):\n{1}",
        "Compose something in the style of this tune ({2}, {3} mode):\n{1}",
    };
    static const char *const mode_zh[] = {"大", "小", "混合利底亚", "多利亚", "弗里几亚", "利底亚", "洛克里亚"};
    static const char *const mode_en[] = {"major", "minor", "mixolydian", "dorian", "phrygian", "lydian", "locrian"};
    const struct genre *g = find_genre(c->t, c->meta);
    char key[160];
    snprintf(key, sizeof key, "%d/%d|%d|%s", c->a.meter.num, c->a.meter.den, (int)c->a.modal.mode,
             g ? g->en : c->meta->group);
    uint64_t h = hash64(key, strlen(key), 0x726566ull) | 1;
    struct reference *r = &c->g->refs[c->meta->split][h % REFERENCE_SLOTS];
    if (want && r->key == h && r->text) {
        char meter[32];
        meter_text(&c->a.meter, meter, sizeof meter);
        const char *args[] = {r->text, meter, zh ? mode_zh[c->a.modal.mode] : mode_en[c->a.modal.mode]};
        PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 3);
        emit(c, DATA_TASK_COMPOSE_REFERENCE, zh, c->t->text);
    }
    free(r->text);
    r->key = h;
    r->text = strdup(c->t->text);
}

static void f_style(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "请以{1}的风格创作一首曲子。",
        "模仿{1}的风格，写一首新曲。",
        "写一首具有{1}特点的乐曲，用 ABC 谱表示。",
    };
    static const char *const en_t[] = {
        "Compose a tune in the style of {1}.",
        "Write a new piece that imitates {1}.",
    };
    const struct collection *col = collection_of(c->meta);
    const abc_model *m = c->t->model;
    data_buf_reset(&c->tmp);
    if (m->composer && m->composer[0])
        data_buf_puts(&c->tmp, m->composer);
    else if (m->origin && m->origin[0])
        data_buf_printf(&c->tmp, zh ? "%s（%s）" : "%s (%s)", col ? (zh ? col->zh : col->en) : c->meta->collection,
                        m->origin);
    else
        data_buf_puts(&c->tmp, col ? (zh ? col->zh : col->en) : c->meta->collection);
    const char *args[] = {c->tmp.data};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 1);
    emit(c, DATA_TASK_COMPOSE_STYLE, zh, c->t->text);
}

/* Lyrics as sung text: the w: lines (syllables aligned to notes) with the syllable marks (- _ * ~ |) turned back
 * into words. W: lines are not used: in the shared collections they hold credits and links, not verses. */
/* ABC 2.1 text mnemonics for accented letters (\\vs -> š, \\'e -> é, ...), as lyrics in the collections use them. */
static const char *const accents[][2] = {
    {"\\`a", "à"}, {"\\`e", "è"}, {"\\`i", "ì"}, {"\\`o", "ò"}, {"\\`u", "ù"}, {"\\`y", "ỳ"}, {"\\`A", "À"},
    {"\\`E", "È"}, {"\\`I", "Ì"}, {"\\`O", "Ò"}, {"\\`U", "Ù"}, {"\\`Y", "Ỳ"}, {"\\`n", "ǹ"}, {"\\`N", "Ǹ"},
    {"\\'a", "á"}, {"\\'e", "é"}, {"\\'i", "í"}, {"\\'o", "ó"}, {"\\'u", "ú"}, {"\\'y", "ý"}, {"\\'A", "Á"},
    {"\\'E", "É"}, {"\\'I", "Í"}, {"\\'O", "Ó"}, {"\\'U", "Ú"}, {"\\'Y", "Ý"}, {"\\'c", "ć"}, {"\\'n", "ń"},
    {"\\'s", "ś"}, {"\\'z", "ź"}, {"\\'C", "Ć"}, {"\\'N", "Ń"}, {"\\'S", "Ś"}, {"\\'Z", "Ź"}, {"\\'r", "ŕ"},
    {"\\'R", "Ŕ"}, {"\\'g", "ǵ"}, {"\\'G", "Ǵ"}, {"\\^a", "â"}, {"\\^e", "ê"}, {"\\^i", "î"}, {"\\^o", "ô"},
    {"\\^u", "û"}, {"\\^y", "ŷ"}, {"\\^A", "Â"}, {"\\^E", "Ê"}, {"\\^I", "Î"}, {"\\^O", "Ô"}, {"\\^U", "Û"},
    {"\\^Y", "Ŷ"}, {"\\^c", "ĉ"}, {"\\^s", "ŝ"}, {"\\^z", "ẑ"}, {"\\^C", "Ĉ"}, {"\\^S", "Ŝ"}, {"\\^Z", "Ẑ"},
    {"\\^g", "ĝ"}, {"\\^G", "Ĝ"}, {"\\~a", "ã"}, {"\\~e", "ẽ"}, {"\\~i", "ĩ"}, {"\\~o", "õ"}, {"\\~u", "ũ"},
    {"\\~y", "ỹ"}, {"\\~A", "Ã"}, {"\\~E", "Ẽ"}, {"\\~I", "Ĩ"}, {"\\~O", "Õ"}, {"\\~U", "Ũ"}, {"\\~Y", "Ỹ"},
    {"\\~n", "ñ"}, {"\\~N", "Ñ"}, {"\\\"a", "ä"}, {"\\\"e", "ë"}, {"\\\"i", "ï"}, {"\\\"o", "ö"}, {"\\\"u", "ü"},
    {"\\\"y", "ÿ"}, {"\\\"A", "Ä"}, {"\\\"E", "Ë"}, {"\\\"I", "Ï"}, {"\\\"O", "Ö"}, {"\\\"U", "Ü"}, {"\\\"Y", "Ÿ"},
    {"\\va", "ǎ"}, {"\\ve", "ě"}, {"\\vi", "ǐ"}, {"\\vo", "ǒ"}, {"\\vu", "ǔ"}, {"\\vA", "Ǎ"}, {"\\vE", "Ě"},
    {"\\vI", "Ǐ"}, {"\\vO", "Ǒ"}, {"\\vU", "Ǔ"}, {"\\vc", "č"}, {"\\vn", "ň"}, {"\\vs", "š"}, {"\\vz", "ž"},
    {"\\vC", "Č"}, {"\\vN", "Ň"}, {"\\vS", "Š"}, {"\\vZ", "Ž"}, {"\\vr", "ř"}, {"\\vR", "Ř"}, {"\\vg", "ǧ"},
    {"\\vG", "Ǧ"}, {"\\ce", "ȩ"}, {"\\cE", "Ȩ"}, {"\\cc", "ç"}, {"\\cn", "ņ"}, {"\\cs", "ş"}, {"\\cC", "Ç"},
    {"\\cN", "Ņ"}, {"\\cS", "Ş"}, {"\\cr", "ŗ"}, {"\\cR", "Ŗ"}, {"\\cg", "ģ"}, {"\\cG", "Ģ"},
};

static size_t put_accent(struct data_buf *out, const char *p)
{
    for (size_t i = 0; i < sizeof accents / sizeof accents[0]; i++)
        if (!strncmp(p, accents[i][0], 3)) {
            data_buf_puts(out, accents[i][1]);
            return 3;
        }
    return 0;
}

static int lyrics_text(const struct tune *t, struct data_buf *out)
{
    const abc_tune *tu = &t->file->tunes[0];
    int lines = 0;
    for (size_t i = 0; i < tu->n_body; i++) {
        const abc_element *e = &tu->body[i];
        if (e->kind != ABC_EL_FIELD || e->u.field.key != 'w' || !e->u.field.value[0])
            continue;
        if (lines++)
            data_buf_putc(out, '\n');
        for (const char *p = e->u.field.value; *p; p++) {
            size_t k = *p == '\\' ? put_accent(out, p) : 0;
            if (k) {
                p += k - 1;
            } else if (*p == '\\' && p[1] == '-') {
                data_buf_putc(out, '-');
                p++;
            } else if (*p == '~') {
                data_buf_putc(out, ' ');
            } else if (*p == '-' || *p == '_' || *p == '*' || *p == '|') {
                continue;
            } else if (*p == ' ' && out->len && out->data[out->len - 1] == ' ') {
                continue;
            } else {
                data_buf_putc(out, *p);
            }
        }
        trim_end(out);
    }
    return lines;
}

int sft_lyrics(const struct tune *t, struct data_buf *out) { return lyrics_text(t, out); }

static void f_lyrics(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "请为下面的歌词谱曲，并用 w: 行把歌词对齐到音符上：\n{1}",
        "给这段歌词配上旋律：\n{1}",
        "请把这些词写成一首歌（ABC 谱，附歌词）：\n{1}",
    };
    static const char *const en_t[] = {
        "Set these lyrics to music, aligning them to the notes with w: lines:\n{1}",
        "Write a song for the following words:\n{1}",
    };
    data_buf_reset(&c->tmp);
    if (!lyrics_text(c->t, &c->tmp) || !c->tmp.len)
        return;
    const char *args[] = {c->tmp.data};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 1);
    emit(c, DATA_TASK_LYRICS, zh, c->t->text);
}

static void f_find_melody(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "在下面这首曲子中，旋律片段「{1}」出现在哪些小节？\n{2}",
        "请找出乐句「{1}」在这首曲子里的位置（小节号）：\n{2}",
        "这段旋律「{1}」在曲中从第几小节开始出现？\n{2}",
        "旋律「{1}」在这首曲子的第几小节？\n{2}",
        "帮我在曲中找到乐句「{1}」。\n{2}",
        "动机「{1}」出现在哪几个小节？\n{2}",
        "请搜索旋律片段「{1}」所在的小节。\n{2}",
        "「{1}」这个乐句从哪些小节开始？\n{2}",
    };
    static const char *const en_t[] = {
        "In which bars does the phrase `{1}` occur in this tune?\n{2}",
        "Find the phrase `{1}` in the following tune and give the bar numbers:\n{2}",
        "Where in this tune does `{1}` occur?\n{2}",
        "Locate the melody `{1}` in this tune.\n{2}",
        "Does the phrase `{1}` occur in this tune? In which bars?\n{2}",
        "Search this tune for the motif `{1}`.\n{2}",
        "At which bars does the melody `{1}` start?\n{2}",
    };
    if (c->t->model->n_voices != 1)
        return;
    struct data_buf ph = {0};
    int bars[64];
    size_t n;
    if (pick_phrase_bar(c->t, c->off, &c->rng, &ph) >= 0 && (n = abc_melody_bars(c->t->model, 0, ph.data, key_value(c->t), true, bars, 64)) > 0) {
        const char *args[] = {ph.data, c->t->text};
        PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 2);
        data_buf_reset(&c->out);
        data_buf_puts(&c->out, zh ? "这段旋律（按音程与节奏比对，移调后相同也算）出现 " : "The phrase (matched by its intervals "
                      "and rhythm, so transposed copies count) occurs ");
        data_buf_printf(&c->out, zh ? "%zu 次，起始于第 " : "%zu time%s, starting in bar%s ", n,
                        zh ? "" : (n > 1 ? "s" : ""), zh ? "" : (n > 1 ? "s" : ""));
        join_list(&c->out, bars, n, zh);
        data_buf_puts(&c->out, zh ? " 小节" : "");
        if (c->t->model->bars[0].number == 0)
            data_buf_puts(&c->out, zh ? "（弱起小节记为第 0 小节）。" : " (the pickup bar is bar 0).");
        else
            data_buf_puts(&c->out, zh ? "。" : ".");
        emit(c, DATA_TASK_FIND_MELODY, zh, c->out.data);
        tool_record(c, DATA_TASK_FIND_MELODY, "abc_find_melody", "phrase", ph.data);
    }
    data_buf_free(&ph);
}

static void f_find_chord(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "下面这首曲子中，和弦「{1}」出现在哪些小节？\n{2}",
        "请列出这首曲子里标有「{1}」和弦的小节：\n{2}",
        "「{1}」和弦用在哪几个小节？\n{2}",
        "请找出和弦「{1}」所在的小节。\n{2}",
        "曲中哪些小节有「{1}」和弦？\n{2}",
        "和弦「{1}」出现在第几小节？\n{2}",
        "标出使用和弦「{1}」的小节。\n{2}",
    };
    static const char *const en_t[] = {
        "In which bars of this tune does the chord `{1}` appear?\n{2}",
        "List the bars of the following tune that use the chord `{1}`:\n{2}",
        "Which bars carry the chord `{1}`?\n{2}",
        "Where does the chord `{1}` occur in this tune?\n{2}",
        "Find the chord `{1}`: in which bars is it?\n{2}",
        "In what bars is `{1}` used as a chord?\n{2}",
        "Give the bar numbers of the chord `{1}`.\n{2}",
    };
    const abc_analysis *a = &c->a;
    size_t total = 0;
    for (size_t i = 0; i < a->n_chord_bars; i++)
        total += a->chords[i].n;
    if (!total)
        return;
    size_t pick = rng_below(&c->rng, (unsigned)total);
    const char *chord = NULL;
    for (size_t i = 0; i < a->n_chord_bars && !chord; i++)
        for (size_t k = 0; k < a->chords[i].n; k++)
            if (!pick--) {
                chord = a->chords[i].chords[k];
                break;
            }
    int bars[512];
    size_t n = 0;
    for (size_t i = 0; i < a->n_chord_bars && n < 512; i++)
        for (size_t k = 0; k < a->chords[i].n; k++)
            if (!strcmp(a->chords[i].chords[k], chord)) {
                bars[n++] = a->chords[i].number;
                break;
            }
    const char *args[] = {chord, c->t->text};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 2);
    data_buf_reset(&c->out);
    data_buf_printf(&c->out, zh ? "和弦「%s」出现在 %zu 个小节：第 " : "The chord `%s` appears in %zu bar%s: ", chord, n,
                    zh ? "" : (n > 1 ? "s" : ""));
    join_list(&c->out, bars, n, zh);
    data_buf_puts(&c->out, zh ? " 小节。" : ".");
    emit(c, DATA_TASK_FIND_CHORD, zh, c->out.data);
    tool_record(c, DATA_TASK_FIND_CHORD, "abc_find_chord", "chord", chord);
}

static void f_count(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "这首曲子一共有多少小节？有几个声部？\n{1}",
        "请数一数下面乐谱的小节数和声部数：\n{1}",
        "分析这首曲子的长度：有几个小节，几个声部？\n{1}",
        "这首曲子多长？有多少小节？\n{1}",
        "请告诉我这首曲子的小节数。\n{1}",
        "这份乐谱有几个声部、多少小节？\n{1}",
        "统计一下小节和声部：\n{1}",
        "这首曲子一共几小节？\n{1}",
    };
    static const char *const en_t[] = {
        "How many bars and how many voices does this tune have?\n{1}",
        "Count the bars and voices of the following score:\n{1}",
        "How many bars does this tune have?\n{1}",
        "How many voices and bars are there in this piece?\n{1}",
        "Tell me the length of this tune in bars.\n{1}",
        "Number of bars and voices?\n{1}",
        "How many measures long is this tune?\n{1}",
    };
    const abc_analysis *a = &c->a;
    const char *args[] = {c->t->text};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 1);
    data_buf_reset(&c->out);
    if (zh)
        data_buf_printf(&c->out, "这首曲子按谱面共有 %zu 个小节，按反复记号展开演奏共 %zu 个小节；共有 %zu 个声部。",
                        a->bars_written, a->bars_played, a->n_voices);
    else
        data_buf_printf(&c->out, "As written the tune has %zu bars; played with its repeats, %zu bars. It has %zu voice%s.",
                        a->bars_written, a->bars_played, a->n_voices, a->n_voices > 1 ? "s" : "");
    emit(c, DATA_TASK_COUNT_BARS, zh, c->out.data);
    tool_record(c, DATA_TASK_COUNT_BARS, "abc_count", NULL, NULL);
}

static void f_progression(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "请提取下面这首曲子的和弦进行（逐小节）：\n{1}",
        "这首曲子用了怎样的和弦进行？请按小节列出。\n{1}",
        "这首曲子的和弦进行是怎样的？\n{1}",
        "请逐小节写出和弦。\n{1}",
        "把每个小节的和弦列出来：\n{1}",
        "分析一下这首曲子的和声进行：\n{1}",
        "给出它逐小节的和弦。\n{1}",
    };
    static const char *const en_t[] = {
        "Extract the chord progression of this tune, bar by bar:\n{1}",
        "What chords does this tune use? List them per bar.\n{1}",
        "Give me the chord progression of this tune.\n{1}",
        "Show the chords of each bar.\n{1}",
        "What is the harmonic progression, bar by bar?\n{1}",
        "Write out the chords bar by bar:\n{1}",
        "Which chords does each bar use?\n{1}",
    };
    const char *args[] = {c->t->text};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 1);
    data_buf_reset(&c->out);
    data_buf_puts(&c->out, zh ? "逐小节的和弦进行（“-”表示该小节沿用前面的和弦）：\n"
                              : "The chord progression, one cell per bar (\"-\": the previous chord continues):\n");
    progression_text(&c->a, &c->out);
    emit(c, DATA_TASK_PROGRESSION, zh, c->out.data);
    tool_record(c, DATA_TASK_PROGRESSION, "abc_progression", NULL, NULL);
}

static void f_harmonise(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "请为下面的旋律配上和弦（用和弦记号标在谱中）：\n{1}",
        "给这段旋律配和声，输出带和弦记号的 ABC 谱：\n{1}",
        "这首曲子还没有和弦，请帮它编配和弦：\n{1}",
    };
    static const char *const en_t[] = {
        "Harmonise this melody: add chord symbols to the score.\n{1}",
        "Add chords to the following tune:\n{1}",
    };
    data_buf_reset(&c->tmp);
    strip_chord_symbols(c->t, &c->tmp);
    trim_end(&c->tmp);
    const char *args[] = {c->tmp.data};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 1);
    emit(c, DATA_TASK_HARMONISE, zh, c->t->text);
}

static void f_melodise(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "下面是一首曲子的和弦框架（x 为占位休止），请按照这些和弦填写旋律：\n{1}",
        "请根据这个和弦骨架写出旋律，保持小节结构不变：\n{1}",
    };
    static const char *const en_t[] = {
        "Here is the chord skeleton of a tune (x marks the space to fill). Write the melody over these chords:\n{1}",
        "Fill in a melody for this chord chart, keeping its bars:\n{1}",
    };
    if (c->t->model->n_voices != 1)
        return;
    data_buf_reset(&c->tmp);
    chord_skeleton(c->t, &c->tmp);
    trim_end(&c->tmp);
    const char *args[] = {c->tmp.data};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 1);
    emit(c, DATA_TASK_MELODISE, zh, c->t->text);
}

/* The dance rhythm the engine names (abc_analysis.rhythm_type), asked of the dance tunes only: it follows the
 * conventions of the British and Irish repertoire, and a song's genre (a love song, a ballad) is not in its notes. */
static void f_genre(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "这首曲子属于什么体裁或节奏类型？\n{1}",
        "请判断下面这首乐曲的类型：\n{1}",
        "听（看）这首曲子，它是哪一类的音乐？\n{1}",
        "这是哪一种舞曲？\n{1}",
        "这首曲子是什么节奏型的舞曲？\n{1}",
        "它是吉格、里尔还是别的舞曲？\n{1}",
        "说说这首曲子的体裁：\n{1}",
        "判断一下这首舞曲的类型。\n{1}",
    };
    static const char *const en_t[] = {
        "What genre or rhythm type is this tune?\n{1}",
        "Identify the kind of piece this is:\n{1}",
        "What type of tune is this?\n{1}",
        "Is this a jig, a reel or something else?\n{1}",
        "Which dance rhythm does this tune have?\n{1}",
        "Name the rhythm of this tune:\n{1}",
        "What style of dance tune is this?\n{1}",
    };
    const struct genre *g = NULL;
    for (size_t i = 0; i < sizeof genres / sizeof genres[0] && !g; i++)
        if (!strcmp(genres[i].en, c->a.rhythm_type))
            g = &genres[i];
    if (!g)
        abort(); /* every name abc_rhythm_type_of gives has its row in genres[] */
    data_buf_reset(&c->tmp);
    without_field(&c->tmp, c->t->text, 'R');
    const char *args[] = {c->tmp.data};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 1);
    char meter[32];
    meter_text(&c->a.meter, meter, sizeof meter);
    data_buf_reset(&c->out);
    if (zh)
        data_buf_printf(&c->out, "从拍号（%s）和节奏看，这是一首%s（%s）。", meter, g->zh, g->en);
    else
        data_buf_printf(&c->out, "By its meter (%s) and rhythm, this is a %s.", meter, g->en);
    emit(c, DATA_TASK_GENRE, zh, c->out.data);
    tool_record(c, DATA_TASK_GENRE, "abc_rhythm", NULL, NULL);
}

static void f_key(struct ctx *c, int zh)
{
    static const char *const zh_t[] = {
        "这首曲子是什么调？什么调式？\n{1}",
        "请分析下面这首乐曲的调性与调式：\n{1}",
        "判断这首曲子的主音和调式：\n{1}",
        "请说出这首曲子的调性。\n{1}",
        "这段音乐在什么调上？\n{1}",
        "帮我判断一下这首曲子的调和调式：\n{1}",
        "它的主音是什么？是什么调式？\n{1}",
        "分析一下调性：\n{1}",
        "这首歌是大调还是小调？\n{1}",
    };
    static const char *const en_t[] = {
        "What key and mode is this tune in?\n{1}",
        "Analyse the tonality of the following tune:\n{1}",
        "Tell me the key of this tune.\n{1}",
        "Which key and mode does this piece use?\n{1}",
        "Name the key of the following tune:\n{1}",
        "What is the home key of this melody?\n{1}",
        "Key and mode, please:\n{1}",
        "Determine the tonic and the mode of this tune.\n{1}",
    };
    static const char *const mode_zh[] = {"大调", "小调", "混合利底亚调式", "多利亚调式", "弗里几亚调式", "利底亚调式",
                                          "洛克里亚调式"};
    static const char *const mode_en[] = {"major", "minor", "mixolydian", "dorian", "phrygian", "lydian", "locrian"};
    static const char *const penta_zh[] = {"gong", "宫", "shang", "商", "jue", "角", "zhi", "徵", "yu", "羽"};
    const abc_analysis *a = &c->a;
    char declared[16], ks[16], modal[16];
    key_names(a, declared, ks, modal, sizeof declared);
    const char *args[] = {c->t->text};
    PHRASE(&c->in, &c->rng, zh, zh_t, en_t, args, 1);
    data_buf_reset(&c->out);
    if (zh) {
        if (a->key_declared)
            data_buf_printf(&c->out, "谱中调号为 K:%s（%s）。", declared, key_value(c->t));
        data_buf_printf(&c->out, "按音高分布（Krumhansl-Schmuckler 算法）判断，主调为 %s %s（相关系数 %.2f）；", ks,
                        mode_zh[a->ks.mode], a->ks.score);
        data_buf_printf(&c->out, "结合终止音与音阶判断调式，为 %s %s", modal, mode_zh[a->modal.mode]);
        if (a->modal.pentatonic && a->modal.penta_mode) {
            const char *name = a->modal.penta_mode;
            for (size_t i = 0; i < sizeof penta_zh / sizeof penta_zh[0]; i += 2)
                if (!strcmp(penta_zh[i], a->modal.penta_mode))
                    name = penta_zh[i + 1];
            data_buf_printf(&c->out, "，旋律为五声音阶（%s调式）", name);
        }
        data_buf_puts(&c->out, "。");
    } else {
        if (a->key_declared)
            data_buf_printf(&c->out, "The key signature is K:%s (%s). ", declared, key_value(c->t));
        data_buf_printf(&c->out, "By its pitch distribution (Krumhansl-Schmuckler) the key is %s %s (correlation %.2f); ",
                        ks, mode_en[a->ks.mode], a->ks.score);
        data_buf_printf(&c->out, "from the final note and the scale, the mode is %s %s", modal, mode_en[a->modal.mode]);
        if (a->modal.pentatonic && a->modal.penta_mode)
            data_buf_printf(&c->out, ", on a pentatonic scale (%s mode)", a->modal.penta_mode);
        data_buf_puts(&c->out, ".");
    }
    emit(c, DATA_TASK_KEY_MODE, zh, c->out.data);
    tool_record(c, DATA_TASK_KEY_MODE, "abc_key", NULL, NULL);
}

/* Per-mille rates at which an applicable family is taken for a tune. Families that need chord symbols (a minority
 * of the tunes) are taken more often; lyrics (rarer still) always. */
static const int rate[DATA_TASK_COUNT] = {
    [DATA_TASK_CONTINUATION] = 300, [DATA_TASK_COMPOSE_MOOD] = 250,  [DATA_TASK_COMPOSE_MOTIF] = 200,
    [DATA_TASK_COMPOSE_CHORDS] = 500, [DATA_TASK_COMPOSE_FORM] = 200, [DATA_TASK_COMPOSE_REFERENCE] = 200,
    [DATA_TASK_COMPOSE_STYLE] = 200, [DATA_TASK_LYRICS] = 1000,      [DATA_TASK_FIND_MELODY] = 200,
    [DATA_TASK_FIND_CHORD] = 400,    [DATA_TASK_COUNT_BARS] = 150,   [DATA_TASK_PROGRESSION] = 400,
    [DATA_TASK_HARMONISE] = 500,     [DATA_TASK_MELODISE] = 400,     [DATA_TASK_GENRE] = 1000,
    [DATA_TASK_KEY_MODE] = 250,
};

static int take(struct ctx *c, enum data_task t)
{
    data_buf_reset(&c->in);
    return (int)rng_below(&c->rng, 1000) < rate[t];
}

void sft_tune(struct sft_gen *g, const struct tune *t, const struct tune_meta *meta, sft_emit_fn emit_fn, void *ectx)
{
    struct ctx c = {0};
    c.g = g;
    c.t = t;
    c.meta = meta;
    c.emit = emit_fn;
    c.emit_ctx = ectx;
    c.rng = hash64_mix(g->seed ^ t->exact);
    if (abc_analyze(&t->file->tunes[0], t->model, &c.a))
        abort();
    c.off = bar_offsets(t);
    const abc_analysis *a = &c.a;
    int has_chords = chord_bars(a) >= MIN_CHORD_BARS;
    const struct collection *col = collection_of(meta);
    int dance = col && col->dances && a->rhythm_type;

    /* Each family draws its decision and language whether or not it applies, so that adding a family later does
     * not reshuffle the others. */
    for (int f = 0; f < DATA_TASK_SELF_COGNITION; f++) {
        int yes = take(&c, f), zh = pick_zh(&c);
        if (f == DATA_TASK_COMPOSE_REFERENCE) {
            f_reference(&c, zh, yes);
            continue;
        }
        if (!yes)
            continue;
        switch ((enum data_task)f) {
        case DATA_TASK_CONTINUATION: f_continuation(&c, zh); break;
        case DATA_TASK_COMPOSE_MOOD: f_mood(&c, zh); break;
        case DATA_TASK_COMPOSE_MOTIF: f_motif(&c, zh); break;
        case DATA_TASK_COMPOSE_CHORDS:
            if (has_chords)
                f_chords(&c, zh);
            break;
        case DATA_TASK_COMPOSE_FORM:
            if (a->n_sections >= 2)
                f_form(&c, zh);
            break;
        case DATA_TASK_COMPOSE_STYLE: f_style(&c, zh); break;
        case DATA_TASK_LYRICS: f_lyrics(&c, zh); break;
        case DATA_TASK_FIND_MELODY: f_find_melody(&c, zh); break;
        case DATA_TASK_FIND_CHORD:
            if (has_chords)
                f_find_chord(&c, zh);
            break;
        case DATA_TASK_COUNT_BARS: f_count(&c, zh); break;
        case DATA_TASK_PROGRESSION:
            if (has_chords)
                f_progression(&c, zh);
            break;
        case DATA_TASK_HARMONISE:
            if (has_chords)
                f_harmonise(&c, zh);
            break;
        case DATA_TASK_MELODISE:
            if (has_chords)
                f_melodise(&c, zh);
            break;
        case DATA_TASK_GENRE:
            if (dance)
                f_genre(&c, zh);
            break;
        case DATA_TASK_KEY_MODE:
            if (a->n_notes >= 8)
                f_key(&c, zh);
            break;
        default: break;
        }
    }
    free(c.off);
    abc_analysis_free(&c.a);
    data_buf_free(&c.in);
    data_buf_free(&c.out);
    data_buf_free(&c.tmp);
}

/* ---------------------------------------------------------------- self-cognition */

static const char *const self_q_zh[] = {
    "你是谁？", "请介绍一下你自己。", "你叫什么名字？", "你能做些什么？", "你会作曲吗？", "你擅长哪些风格的音乐？",
    "你用什么方式写出乐谱？", "你是人工智能吗？", "我可以请你帮我写一首曲子吗？", "你对音乐有什么看法？",
    "你能帮我分析一首曲子吗？", "你好！",
};
static const char *const self_a_zh[] = {
    "你好！我是 Melodist，一位专业的作曲家。我熟悉世界各地、各个时代的音乐风格，也了解许多作曲家的生平与创作。"
    "我可以为你作曲、续写旋律、配和弦、填词谱曲，也可以分析乐曲的调式、曲式与和弦进行。我的作品都用 ABC 记谱法写出。"
    "请告诉我你想要什么样的音乐吧！",
    "我是 Melodist，一个热爱音乐的作曲助手。无论是根据情绪、动机、和弦进行或曲式创作，还是模仿某种风格、为歌词谱曲，"
    "我都乐于尝试；我也能帮你找出旋律片段所在的小节、数小节、判断调式和体裁。我用 ABC 记谱法记录音乐，方便你直接播放和修改。",
    "很高兴认识你！我叫 Melodist。音乐是我最大的热爱：我懂得欣赏和分析各种风格的作品，也能按照你的要求创作新的曲子。"
    "你只需描述想要的情绪、风格或结构，我会先分析你的需求，再用 ABC 谱为你写出乐曲。",
};
static const char *const self_q_en[] = {
    "Who are you?", "Introduce yourself, please.", "What can you do?", "Can you compose music?",
};
static const char *const self_a_en[] = {
    "Hello! I am Melodist, a professional composer. I know the musical styles of many regions and eras and the work of "
    "many composers. I can compose tunes, continue a melody, harmonise it, set lyrics to music, and analyse keys, modes, "
    "forms and chord progressions. I write everything I compose in ABC notation. Tell me what you would like to hear!",
    "I'm Melodist, a composer who loves music. Give me a mood, a motif, a chord progression, a form or a style to "
    "imitate, and I will write a tune for you in ABC notation; I can also find phrases and chords in a score, count its "
    "bars and tell you its key and genre.",
};

void sft_self_cognition(int (*select)(void *ctx, unsigned index), sft_emit_fn emit_fn, void *ctx)
{
    unsigned index = 0;
    size_t nq = sizeof self_q_zh / sizeof self_q_zh[0], na = sizeof self_a_zh / sizeof self_a_zh[0];
    for (size_t q = 0; q < nq; q++)
        for (size_t a = 0; a < na; a++, index++)
            if (select(ctx, index))
                emit_fn(ctx, DATA_TASK_SELF_COGNITION, 1, self_q_zh[q], self_a_zh[a]);
    nq = sizeof self_q_en / sizeof self_q_en[0];
    na = sizeof self_a_en / sizeof self_a_en[0];
    for (size_t q = 0; q < nq; q++)
        for (size_t a = 0; a < na; a++, index++)
            if (select(ctx, index))
                emit_fn(ctx, DATA_TASK_SELF_COGNITION, 0, self_q_en[q], self_a_en[a]);
}
