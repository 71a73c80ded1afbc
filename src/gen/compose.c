/* The composer: prompt in the SFT wording, header forced from the controls, body sampled bar by bar and checked
 * by the ABC validator, rewinding the KV cache over rejected bars. See melodist/compose.h. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc.h"
#include "melodist/abc_analysis.h"
#include "melodist/chat.h"
#include "melodist/compose.h"
#include "melodist/generate.h"
#include "melodist/midi.h"
#include "melodist/persona.h"

/* ---------------------------------------------------------------- text buffer */

struct sbuf {
    char *s;
    size_t len, cap;
};

static int sb_reserve(struct sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s)
        return -1;
    b->s = s;
    b->cap = cap;
    return 0;
}

static int sb_add(struct sbuf *b, const char *s, size_t len)
{
    if (sb_reserve(b, len))
        return -1;
    memcpy(b->s + b->len, s, len);
    b->len += len;
    b->s[b->len] = 0;
    return 0;
}

static int sb_puts(struct sbuf *b, const char *s) { return sb_add(b, s, strlen(s)); }

static int sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sb_reserve(b, (size_t)n))
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

static void sb_truncate(struct sbuf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->s[len] = 0;
    }
}

/* ---------------------------------------------------------------- rhythm types and free text */

struct rhythm_type {
    const char *name;   /* as written in R: */
    const char *meter;
    const char *zh;     /* Chinese names, '|'-separated */
};

static const struct rhythm_type types[] = {
    {"Jig", "6/8", "吉格|快步舞"},
    {"Slip jig", "9/8", "滑步吉格"},
    {"Slide", "12/8", "滑步舞"},
    {"Reel", "4/4", "里尔|里尔舞"},
    {"Hornpipe", "4/4", "角笛舞|号笛舞|霍恩派普"},
    {"Strathspey", "4/4", "斯特拉斯贝"},
    {"Schottische", "4/4", "肖蒂什"},
    {"Waltz", "3/4", "华尔兹|圆舞曲"},
    {"Mazurka", "3/4", "玛祖卡"},
    {"Minuet", "3/4", "小步舞曲"},
    {"Polka", "2/4", "波尔卡"},
    {"March", "2/4", "进行曲"},
    {"Air", NULL, "抒情曲|咏叹调"},
};

static const struct rhythm_type *find_type(const char *name)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(name, types[i].name))
            return &types[i];
    return NULL;
}

const char *compose_type_meter(const char *type)
{
    const struct rhythm_type *t = type ? find_type(type) : NULL;
    return t ? t->meter : NULL;
}

/* A word of `text` (case-insensitive, not inside a longer ASCII word). */
static const char *find_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; (p = strcasestr(p, word)); p++) {
        int before = p > text && isalpha((unsigned char)p[-1]);
        int after = isalpha((unsigned char)p[n]) && p[n] != 's';
        if (!before && !after)
            return p;
    }
    return NULL;
}

static const struct rhythm_type *type_in_text(const char *text)
{
    /* longer names first: "slip jig" before "jig" */
    const struct rhythm_type *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const struct rhythm_type *t = &types[i];
        size_t n = strlen(t->name);
        if (n > best_len && find_word(text, t->name)) {
            best = t;
            best_len = n;
        }
        for (const char *z = t->zh; *z;) {
            const char *bar = strchr(z, '|');
            size_t zl = bar ? (size_t)(bar - z) : strlen(z);
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)zl, z);
            if (zl > best_len && strstr(text, name)) {
                best = t;
                best_len = zl;
            }
            z += zl + (bar != NULL);
        }
    }
    return best;
}

struct mode_word {
    const char *word, *suffix;
};

static const struct mode_word mode_words[] = {
    {"大调", ""}, {"小调", "m"}, {" major", ""}, {" minor", "m"}, {"major", ""}, {"minor", "m"},
    {" dorian", "dor"}, {" mixolydian", "mix"}, {" lydian", "lyd"}, {" phrygian", "phr"},
    {"多利亚", "dor"}, {"混合利底亚", "mix"}, {"利底亚", "lyd"}, {"弗里几亚", "phr"},
};

/* "D大调", "in E minor", "A dorian", "Bb major", "F#小调" -> K: value. */
static int key_in_text(const char *text, char *key, size_t size)
{
    for (const char *p = text; *p; p++) {
        if (*p < 'A' || *p > 'G' || (p > text && isalpha((unsigned char)p[-1])))
            continue;
        const char *q = p + 1;
        char acc[4] = "";
        if (*q == '#' || *q == 'b') {
            acc[0] = *q == '#' ? '#' : 'b';
            q++;
        } else if (!strncmp(q, "♯", 3) || !strncmp(q, "♭", 3)) {
            acc[0] = !strncmp(q, "♯", 3) ? '#' : 'b';
            q += 3;
        }
        while (*q == ' ' && q[1] == ' ')
            q++;
        for (size_t i = 0; i < sizeof mode_words / sizeof mode_words[0]; i++) {
            size_t n = strlen(mode_words[i].word);
            if (!strncasecmp(q, mode_words[i].word, n)) {
                snprintf(key, size, "%c%s%s", *p, acc, mode_words[i].suffix);
                return 1;
            }
        }
    }
    return 0;
}

/* "6/8", "3/4" in text -> meter. */
static int meter_in_text(const char *text, char *meter, size_t size)
{
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p) || (p > text && isdigit((unsigned char)p[-1])))
            continue;
        int num, den, used;
        if (sscanf(p, "%d/%d%n", &num, &den, &used) == 2 && num > 0 && num <= 16 &&
            (den == 2 || den == 4 || den == 8 || den == 16) && !isdigit((unsigned char)p[used])) {
            snprintf(meter, size, "%d/%d", num, den);
            return 1;
        }
    }
    return 0;
}

/* "16 bars", "16-bar", "16 小节", "16个小节" -> 16. */
static int bars_in_text(const char *text)
{
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p) || (p > text && isdigit((unsigned char)p[-1])))
            continue;
        char *end;
        long n = strtol(p, &end, 10);
        while (*end == ' ' || *end == '-')
            end++;
        if (!strncmp(end, "个", 3))
            end += 3;
        if (n > 0 && n <= 256 && (!strncasecmp(end, "bar", 3) || !strncasecmp(end, "measure", 7) ||
                                   !strncmp(end, "小节", 6)))
            return (int)n;
    }
    return 0;
}

static int has_cjk(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s >= 0xe3 && (unsigned char)*s <= 0xe9)
            return 1;
    return 0;
}

/* A chord symbol as lead sheets write it ("G", "F#m7", "Bb/D", "Edim"): a readable chord, short, no stray text. */
static int chord_ok(const char *sym)
{
    size_t n = strlen(sym);
    struct midi_chord mc;
    if (!n || n > 12 || !midi_chord_parse(sym, &mc))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)sym[i]) && !strchr("#+-/()", sym[i]))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- the resolved plan of a request */

struct plan {
    char key[32], meter[16], unit[16], type[80];
    int have_key, have_meter, have_unit;
    int bars;                 /* target written bars of music (0: open) */
    char **chords;            /* per bar: the first chord to write, "" for none */
    int n_chords;
    int zh;
    struct sbuf prefix;       /* continue/harmonize: header (through K:) and body */
    size_t prefix_header_len;
};

static void plan_free(struct plan *p)
{
    for (int i = 0; i < p->n_chords; i++)
        free(p->chords[i]);
    free(p->chords);
    free(p->prefix.s);
}

/* Chord cells: '|' separates bars when present, else every chord is a bar. "-" keeps the previous chord. */
static int parse_chords(const char *text, struct plan *p, char *err, size_t errlen)
{
    int cells = strchr(text, '|') != NULL;
    const char *s = text;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == ',' || (cells && *s == '|'))
            s++;
        if (!*s)
            break;
        const char *e = s;
        if (cells)
            while (*e && *e != '|')
                e++;
        else
            while (*e && *e != ' ' && *e != '\t' && *e != '\n' && *e != ',')
                e++;
        char cell[128];
        snprintf(cell, sizeof cell, "%.*s", (int)(e - s), s);
        char *first = strtok(cell, " \t\n");
        if (first && strcmp(first, "-") && !chord_ok(first)) {
            snprintf(err, errlen, "--chords: '%s' is not a chord symbol (write chords like G, Em, D7, F#m, Bb/D)",
                     first);
            return -1;
        }
        char **v = realloc(p->chords, (size_t)(p->n_chords + 1) * sizeof *v);
        if (!v)
            return -1;
        p->chords = v;
        p->chords[p->n_chords] = strdup(first && strcmp(first, "-") ? first : "");
        if (!p->chords[p->n_chords])
            return -1;
        p->n_chords++;
        s = e;
    }
    if (!p->n_chords) {
        snprintf(err, errlen, "--chords: no chords given (example: --chords \"G | Em | C | D\")");
        return -1;
    }
    return 0;
}

static int valid_key(const char *k)
{
    abc_key key;
    char e[128];
    return abc_parse_key(k, &key, e, sizeof e) && !key.none;
}

static int valid_meter(const char *m)
{
    abc_meter meter;
    char e[128];
    return abc_parse_meter(m, &meter, e, sizeof e) && abc_meter_bar_length(meter).num > 0;
}

/* Header field of the first tune in `abc`, copied to out. */
static int tune_field(const abc_file *f, char key, char *out, size_t size)
{
    if (!f->n_tunes)
        return 0;
    const char *v = abc_tune_field(&f->tunes[0], key);
    if (!v || !*v)
        return 0;
    snprintf(out, size, "%s", v);
    return 1;
}

/* The tune text of a prefix: header (through the K: line) and body, trailing blank space removed. */
static int load_prefix(const char *abc, struct plan *p, char *err, size_t errlen)
{
    abc_file *f = abc_parse(abc, strlen(abc));
    if (!f)
        return -1;
    int rc = -1;
    if (f->n_tunes < 1) {
        snprintf(err, errlen, "the input holds no tune (a tune starts with an X: line and has a K: line)");
        goto done;
    }
    const abc_tune *t = &f->tunes[0];
    const abc_field *k = NULL;
    for (size_t i = 0; i < t->n_header; i++)
        if (t->header[i].key == 'K')
            k = &t->header[i];
    if (!k || !t->n_body) {
        snprintf(err, errlen, "the tune has no K: line or no music after it");
        goto done;
    }
    size_t len = t->text_len;
    while (len && isspace((unsigned char)t->text[len - 1]))
        len--;
    const char *kline = t->text;
    for (int line = t->first_line; line < k->line && kline; line++) {
        kline = memchr(kline, '\n', (size_t)(t->text + t->text_len - kline));
        if (kline)
            kline++;
    }
    const char *eol = kline ? memchr(kline, '\n', (size_t)(t->text + len - kline)) : NULL;
    if (!eol) {
        snprintf(err, errlen, "the tune has no music after its K: line");
        goto done;
    }
    p->prefix_header_len = (size_t)(eol + 1 - t->text);
    if (!p->have_meter)
        p->have_meter = tune_field(f, 'M', p->meter, sizeof p->meter);
    if (!p->have_unit)
        p->have_unit = tune_field(f, 'L', p->unit, sizeof p->unit);
    if (!p->have_key)
        p->have_key = tune_field(f, 'K', p->key, sizeof p->key);
    if (sb_add(&p->prefix, t->text, len) || sb_puts(&p->prefix, ""))
        goto done;
    rc = 0;
done:
    abc_file_free(f);
    return rc;
}

static int plan_make(const struct compose_request *r, struct plan *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->bars = r->bars;
    if (r->text) {
        const struct rhythm_type *t = type_in_text(r->text);
        if (t)
            snprintf(p->type, sizeof p->type, "%s", t->name);
        p->have_key = key_in_text(r->text, p->key, sizeof p->key);
        p->have_meter = meter_in_text(r->text, p->meter, sizeof p->meter);
        if (!p->bars)
            p->bars = bars_in_text(r->text);
    }
    if (r->like) {
        abc_file *f = abc_parse(r->like, strlen(r->like));
        if (!f)
            return -1;
        int ok = f->n_tunes > 0;
        if (ok) {
            if (!p->have_key)
                p->have_key = tune_field(f, 'K', p->key, sizeof p->key) && valid_key(p->key);
            if (!p->have_meter)
                p->have_meter = tune_field(f, 'M', p->meter, sizeof p->meter) && valid_meter(p->meter);
            p->have_unit = tune_field(f, 'L', p->unit, sizeof p->unit);
            if (!p->type[0])
                tune_field(f, 'R', p->type, sizeof p->type);
        }
        abc_file_free(f);
        if (!ok) {
            snprintf(err, errlen, "--like: the reference holds no tune (it needs an X: line and a K: line)");
            return -1;
        }
    }
    if (r->type) {
        const struct rhythm_type *t = find_type(r->type);
        snprintf(p->type, sizeof p->type, "%s", t ? t->name : r->type);
    }
    if (r->key) {
        if (!valid_key(r->key)) {
            snprintf(err, errlen, "--key '%s' is not an ABC key (examples: D, Am, Bb, F#m, Edor, Gmix)", r->key);
            return -1;
        }
        snprintf(p->key, sizeof p->key, "%s", r->key);
        p->have_key = 1;
    }
    if (r->meter) {
        if (!valid_meter(r->meter)) {
            snprintf(err, errlen, "--meter '%s' is not a meter (examples: 4/4, 6/8, 3/4, C, C|)", r->meter);
            return -1;
        }
        snprintf(p->meter, sizeof p->meter, "%s", r->meter);
        p->have_meter = 1;
    }
    if (!p->have_meter && p->type[0] && compose_type_meter(p->type)) {
        snprintf(p->meter, sizeof p->meter, "%s", compose_type_meter(p->type));
        p->have_meter = 1;
    }
    if (r->chords) {
        if (parse_chords(r->chords, p, err, errlen))
            return -1;
        if (!p->have_meter) {
            snprintf(p->meter, sizeof p->meter, "4/4");
            p->have_meter = 1;
        }
        if (!p->bars)
            p->bars = p->n_chords;
    }
    if (r->motif) {
        abc_melody mel;
        char e[256];
        if (abc_melody_parse(r->motif, p->have_key ? p->key : NULL, &mel, e, sizeof e)) {
            snprintf(err, errlen, "--motif '%s': %s (write notes in ABC, e.g. \"GABc dBGB\")", r->motif, e);
            return -1;
        }
        abc_melody_free(&mel);
        snprintf(p->unit, sizeof p->unit, "1/8");
        p->have_unit = 1;
    }
    if (r->form) {
        size_t n = strlen(r->form);
        for (size_t i = 0; i < n; i++)
            if (r->form[i] < 'A' || r->form[i] > 'Z') {
                snprintf(err, errlen, "--form '%s': write the sections as capital letters, e.g. AABB or ABA",
                         r->form);
                return -1;
            }
        if (!n || n > 16) {
            snprintf(err, errlen, "--form needs 1 to 16 section letters, e.g. AABB");
            return -1;
        }
        if (!p->bars)
            p->bars = 8 * (int)n;
        if (!p->have_meter) {
            snprintf(p->meter, sizeof p->meter, "4/4");
            p->have_meter = 1;
        }
    }
    if (p->bars < 0 || p->bars > 256) {
        snprintf(err, errlen, "--bars must be between 1 and 256");
        return -1;
    }
    if (r->task != COMPOSE_NEW) {
        if (!r->prefix) {
            snprintf(err, errlen, "no tune given to %s", r->task == COMPOSE_CONTINUE ? "continue" : "harmonize");
            return -1;
        }
        if (load_prefix(r->prefix, p, err, errlen))
            return -1;
        /* a final bar line would end the tune before the continuation */
        if (r->task == COMPOSE_CONTINUE && p->prefix.len >= 2 && p->prefix.s[p->prefix.len - 1] == ']' &&
            p->prefix.s[p->prefix.len - 2] == '|')
            sb_truncate(&p->prefix, p->prefix.len - 1);
    }
    const char *said = r->text ? r->text : r->mood ? r->mood : r->lyrics;
    p->zh = said ? has_cjk(said) : 1;
    return 0;
}

/* ---------------------------------------------------------------- the instruction, in the SFT data's wording */

static const char *mode_name_zh(const char *key)
{
    abc_key k;
    char e[64];
    if (!abc_parse_key(key, &k, e, sizeof e))
        return "";
    static const char *const zh[] = {"大调", "小调", "混合利底亚调式", "多利亚调式", "弗里几亚调式", "利底亚调式",
                                     "洛克里亚调式"};
    return (size_t)k.mode < sizeof zh / sizeof zh[0] ? zh[k.mode] : "";
}

static int add_chord_cells(struct sbuf *b, const struct plan *p)
{
    int rc = sb_puts(b, "|");
    for (int i = 0; i < p->n_chords; i++)
        rc |= sb_printf(b, " %s |", p->chords[i][0] ? p->chords[i] : "-");
    return rc;
}

static int add_sections(struct sbuf *b, const char *form, int bars, int zh)
{
    size_t n = strlen(form);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int len = bars / (int)n + ((int)i < bars % (int)n);
        rc |= zh ? sb_printf(b, "%s%c 段 %d 小节", i ? "，" : "", form[i], len)
                 : sb_printf(b, "%s%c: %d bars", i ? ", " : "", form[i], len);
    }
    return rc;
}

/* What the request asks for, as a Chinese or English noun phrase: "D 大调、6/8 拍的吉格" / "jig in D, 6/8". */
static int add_description(struct sbuf *b, const struct plan *p)
{
    const struct rhythm_type *t = p->type[0] ? find_type(p->type) : NULL;
    int rc = 0;
    if (p->zh) {
        if (p->have_key)
            rc |= sb_printf(b, "%s %s、", p->key, mode_name_zh(p->key));
        if (p->have_meter)
            rc |= sb_printf(b, "%s 拍、", p->meter);
        if (p->bars)
            rc |= sb_printf(b, "%d 小节、", p->bars);
        if (b->len >= 3 && !strcmp(b->s + b->len - 3, "、"))
            sb_truncate(b, b->len - 3);
        if (t) {
            char zh[64];
            snprintf(zh, sizeof zh, "%s", t->zh);
            *strchrnul(zh, '|') = 0;
            rc |= sb_printf(b, "%s%s", b->len ? "的" : "", zh);
        } else if (p->type[0]) {
            rc |= sb_printf(b, "%s%s", b->len ? "的" : "", p->type);
        }
        return rc;
    }
    rc |= sb_printf(b, "%s", p->type[0] ? p->type : "tune");
    if (p->have_key)
        rc |= sb_printf(b, " in %s", p->key);
    if (p->have_meter)
        rc |= sb_printf(b, "%s%s", p->have_key ? ", " : " in ", p->meter);
    if (p->bars)
        rc |= sb_printf(b, ", %d bars long", p->bars);
    return rc;
}

static int instruction(const struct compose_request *r, const struct plan *p, struct sbuf *b)
{
    int zh = p->zh;
    if (r->task == COMPOSE_CONTINUE) {
        int given = 0;
        abc_file *f = abc_parse(p->prefix.s, p->prefix.len);
        if (!f)
            return -1;
        abc_diags d;
        abc_diags_init(&d);
        abc_model *m = f->n_tunes ? abc_model_new(f, 0, &d) : NULL;
        for (size_t i = 0; m && i < m->n_bars; i++)
            given += m->bars[i].n_events > 0 && m->bars[i].number > 0;
        abc_model_free(m);
        abc_diags_free(&d);
        abc_file_free(f);
        return zh ? sb_printf(b, "请续写下面这首乐曲。这里给出了前 %d 小节：\n%s", given, p->prefix.s)
                  : sb_printf(b, "Continue this tune. Here are its first %d bars:\n%s", given, p->prefix.s);
    }
    if (r->task == COMPOSE_HARMONIZE)
        return zh ? sb_printf(b, "请为下面的旋律配上和弦（用和弦记号标在谱中）：\n%s", p->prefix.s)
                  : sb_printf(b, "Harmonise this melody: write chord symbols into the tune:\n%s", p->prefix.s);
    if (r->text)
        return sb_puts(b, r->text);
    if (r->like)
        return zh ? sb_printf(b, "参考下面这首曲子的风格（相同的节奏类型、拍号和调式），创作一首新的曲子：\n%s", r->like)
                  : sb_printf(b, "Here is a reference tune. Write a new tune in the same style (same rhythm type, "
                                 "meter and mode):\n%s", r->like);
    if (r->chords) {
        int rc = zh ? sb_puts(b, "请根据下面的和弦进行创作一首 ") || sb_puts(b, p->meter) ||
                          sb_puts(b, " 拍的曲子（每格一个小节）：\n")
                    : sb_printf(b, "Compose a tune in %s over this chord progression (one cell per bar):\n", p->meter);
        return rc || add_chord_cells(b, p);
    }
    if (r->motif)
        return zh ? sb_printf(b, "以动机「%s」为素材（单位音长 1/8，调号 %s），写一首完整的曲子。", r->motif,
                              p->have_key ? p->key : "C")
                  : sb_printf(b, "Use the motif `%s` (unit length 1/8, key %s) in a complete tune.", r->motif,
                              p->have_key ? p->key : "C");
    if (r->form) {
        int rc = zh ? sb_printf(b, "请创作一首「%s」曲式的曲子（", r->form) : sb_printf(b, "Compose a tune in `%s` form (", r->form);
        rc |= add_sections(b, r->form, p->bars, zh);
        return rc | (zh ? sb_printf(b, "），拍号 %s。", p->meter) : sb_printf(b, ") in %s.", p->meter));
    }
    if (r->lyrics)
        return zh ? sb_printf(b, "请为下面的歌词谱曲，并用 w: 行把歌词对齐到音符上：\n%s", r->lyrics)
                  : sb_printf(b, "Set these lyrics to music, aligning them to the notes with w: lines:\n%s", r->lyrics);
    if (r->mood)
        return zh ? sb_printf(b, "请创作一首%s的乐曲。", r->mood) : sb_printf(b, "Compose a %s tune.", r->mood);
    struct sbuf d = {0};
    int rc = add_description(&d, p);
    if (!rc)
        rc = zh ? sb_printf(b, "请创作一首%s%s乐曲。", d.s ? d.s : "", d.len ? "的" : "")
                : sb_printf(b, "Compose a %s.", d.s ? d.s : "tune");
    free(d.s);
    return rc;
}

void compose_request_default(struct compose_request *r)
{
    memset(r, 0, sizeof *r);
    r->temperature = 0.8f;
    r->top_p = 0.95f;
}

char *compose_instruction(const struct compose_request *req, char *err, size_t errlen)
{
    struct plan p;
    struct sbuf b = {0};
    if (errlen)
        err[0] = 0;
    if (plan_make(req, &p, err, errlen) || instruction(req, &p, &b)) {
        if (!err[0])
            snprintf(err, errlen, "out of memory");
        free(b.s);
        b.s = NULL;
    }
    plan_free(&p);
    return b.s;
}

/* ---------------------------------------------------------------- decoding with forced text and rewinding */

struct composer {
    const struct model *m;
    const mt_tokenizer *tok;
    struct model_state *state;
    int ctx_len;
    int stops[2], n_stops;
    float *logits;           /* a copy of the last logits, for masking */
    int *breaks, n_breaks;   /* the tokens whose text has a line break before any bar line (they break a bar) */
    const float *last;       /* the model's logits after the last token */
    tok_stream *stream;
    /* the reply so far */
    int *ids;                /* all tokens in the context (prompt + reply) */
    size_t *text_end;        /* per token: length of the reply text after it */
    int n_ids, n_prompt;
    struct sbuf text;
    struct gen_sampler *sampler;
    compose_text_fn on_text;
    void *cb_ctx;
    size_t shown;            /* bytes of text given to on_text */
    int n_sampled;
};

struct composer *composer_new(const struct model *m, const mt_tokenizer *tok, char *err, size_t errlen)
{
    struct composer *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->m = m;
    c->tok = tok;
    c->ctx_len = m->config.max_position_embeddings > 0 ? m->config.max_position_embeddings : 2048;
    c->n_stops = chat_stop_tokens(tok, m->config.eos_token_id, c->stops);
    c->state = model_state_new(m, c->ctx_len, 64);
    c->logits = malloc((size_t)m->config.vocab_size * sizeof *c->logits);
    c->ids = malloc((size_t)c->ctx_len * sizeof *c->ids);
    c->text_end = malloc((size_t)c->ctx_len * sizeof *c->text_end);
    c->stream = tok_stream_new(tok, TOK_SKIP_SPECIAL);
    c->breaks = malloc((size_t)m->config.vocab_size * sizeof *c->breaks);
    for (int id = 0; c->breaks && id < m->config.vocab_size && id < tok_vocab_size(tok); id++) {
        size_t len;
        char *piece = tok_decode(tok, &id, 1, 0, &len, err, errlen);
        if (!piece)
            continue;
        const char *nl = memchr(piece, '\n', len);
        if (nl && !memchr(piece, '|', (size_t)(nl - piece)))
            c->breaks[c->n_breaks++] = id;
        free(piece);
    }
    if (!c->state || !c->logits || !c->ids || !c->text_end || !c->stream || !c->breaks) {
        snprintf(err, errlen, "out of memory for a %d-token context", c->ctx_len);
        composer_free(c);
        return NULL;
    }
    if (tok_special_id(tok, "<|im_start|>") < 0) {
        snprintf(err, errlen, "the tokenizer has no chat tokens (<|im_start|>): not a Melodist/InternLM2-chat model");
        composer_free(c);
        return NULL;
    }
    return c;
}

void composer_free(struct composer *c)
{
    if (!c)
        return;
    model_state_free(c->state);
    free(c->logits);
    free(c->breaks);
    free(c->ids);
    free(c->text_end);
    tok_stream_free(c->stream);
    gen_sampler_free(c->sampler);
    free(c->text.s);
    free(c);
}

static int show(struct composer *c, char *err, size_t errlen)
{
    if (!c->on_text || c->shown == c->text.len)
        return 0;
    size_t rewind = 0;
    if (c->shown > c->text.len) {
        rewind = c->shown - c->text.len;
        c->shown = c->text.len;
    }
    if (c->on_text(c->cb_ctx, c->text.s + c->shown, c->text.len - c->shown, rewind)) {
        snprintf(err, errlen, "cancelled");
        return -1;
    }
    c->shown = c->text.len;
    return 0;
}

/* Runs tokens through the model; each one's reply text ends at `end` (forced text is one unit). */
static int feed(struct composer *c, const int *ids, int n, size_t end, char *err, size_t errlen)
{
    if (c->n_ids + n > c->ctx_len) {
        snprintf(err, errlen, "the context (%d tokens) is full", c->ctx_len);
        return -1;
    }
    c->last = model_forward(c->m, c->state, ids, n, NULL, err, errlen);
    if (!c->last)
        return -1;
    for (int i = 0; i < n; i++) {
        c->ids[c->n_ids] = ids[i];
        c->text_end[c->n_ids++] = end;
    }
    return 0;
}

static int force(struct composer *c, const char *text, char *err, size_t errlen)
{
    tok_ids ids = {0};
    if (tok_encode(c->tok, text, strlen(text), 0, &ids) || sb_puts(&c->text, text)) {
        tok_ids_free(&ids);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = ids.n ? feed(c, ids.v, (int)ids.n, c->text.len, err, errlen) : 0;
    tok_ids_free(&ids);
    return rc ? rc : show(c, err, errlen);
}

/* Samples the next token; stop tokens only when `may_stop`, and no line break inside a bar when `in_bar` (ABC
 * allows one, but a bar split over two lines reads badly and the canonical layout never has it). Returns the id,
 * or -1 at a stop token. */
static int sample(struct composer *c, int may_stop, int in_bar)
{
    int vocab = c->m->config.vocab_size;
    memcpy(c->logits, c->last, (size_t)vocab * sizeof *c->logits);
    if (!may_stop)
        for (int i = 0; i < c->n_stops; i++)
            c->logits[c->stops[i]] = -INFINITY;
    for (int i = 0; in_bar && i < c->n_breaks; i++)
        c->logits[c->breaks[i]] = -INFINITY;
    int id = gen_sample(c->sampler, c->logits, c->ids, c->n_ids);
    c->n_sampled++;
    for (int i = 0; i < c->n_stops; i++)
        if (id == c->stops[i])
            return -1;
    return id;
}

static int accept(struct composer *c, int id, char *err, size_t errlen)
{
    const char *piece;
    size_t len;
    if (tok_stream_push(c->stream, id, &piece, &len) || sb_add(&c->text, piece, len)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return feed(c, &id, 1, c->text.len, err, errlen) ? -1 : show(c, err, errlen);
}

/* Back to the first n_ids tokens: the cache is rewound and the last token run again for its logits. */
static int rewind_to(struct composer *c, int n_ids, char *err, size_t errlen)
{
    const char *rest;
    size_t len;
    tok_stream_finish(c->stream, &rest, &len);
    sb_truncate(&c->text, c->text_end[n_ids - 1]);
    c->state->pos = n_ids - 1;
    c->n_ids = n_ids - 1;
    int id = c->ids[n_ids - 1];
    return feed(c, &id, 1, c->text.len, err, errlen) ? -1 : show(c, err, errlen);
}

/* Samples one line after forced text `field` ("M:"); keeps it when `ok` accepts it (tries a few times). */
static int sample_field(struct composer *c, const char *field, int (*ok)(const char *), const char *fallback,
                        char *out, size_t size, char *err, size_t errlen)
{
    if (force(c, field, err, errlen))
        return -1;
    int mark = c->n_ids;
    size_t start = c->text.len;
    for (int attempt = 0; attempt < 6; attempt++) {
        if (attempt && rewind_to(c, mark, err, errlen))
            return -1;
        int done = 0;
        for (int i = 0; i < 48 && !done; i++) {
            int id = sample(c, 0, 0);
            if (accept(c, id, err, errlen))
                return -1;
            done = strchr(c->text.s + start, '\n') != NULL;
        }
        if (!done)
            continue;
        char *nl = strchr(c->text.s + start, '\n');
        snprintf(out, size, "%.*s", (int)(nl - (c->text.s + start)), c->text.s + start);
        size_t n = strlen(out);
        while (n && isspace((unsigned char)out[n - 1]))
            out[--n] = 0;
        if (nl[1] == 0 && n && ok(out))
            return 0;
    }
    if (rewind_to(c, mark, err, errlen))
        return -1;
    snprintf(out, size, "%s", fallback);
    return force(c, fallback, err, errlen) || force(c, "\n", err, errlen) ? -1 : 0;
}

/* A title: text without bar lines that does not start like another field ("N:...", a small model's slip). */
static int title_text(const char *s)
{
    return s[0] != 0 && strchr(s, '|') == NULL && !(isalpha((unsigned char)s[0]) && s[1] == ':');
}

static int valid_unit(const char *u)
{
    abc_frac f;
    char e[64];
    return abc_parse_unit(u, &f, e, sizeof e) && f.num == 1 && (f.den == 4 || f.den == 8 || f.den == 16);
}

/* ---------------------------------------------------------------- checking a tune */

struct check {
    size_t errors;           /* errors that count now (see transient) */
    int bars;                /* closed or final bars of music in the first voice */
    int before_last_full;    /* the bar of music before the last one fills its meter exactly */
};

/* Errors that the next bars may still mend while the tune grows: an open slur, tie, tuplet or grace group. */
static int transient(const char *category)
{
    return !strcmp(category, "slur") || !strcmp(category, "tie") || !strcmp(category, "tuplet") ||
           !strcmp(category, "grace");
}

static int check_tune(const char *abc, size_t len, int final, struct check *out)
{
    memset(out, 0, sizeof *out);
    abc_file *f = abc_parse(abc, len);
    if (!f)
        return -1;
    abc_diags d;
    abc_diags_init(&d);
    abc_validate_file(f, &d);
    for (size_t i = 0; i < d.n; i++)
        if (d.items[i].severity == ABC_ERROR && (final || !transient(d.items[i].category)))
            out->errors++;
    if (f->n_tunes != 1)
        out->errors++;
    for (size_t i = 0; f->n_tunes && i < f->tunes[0].n_body; i++) {
        const abc_element *e = &f->tunes[0].body[i];
        out->errors += e->kind == ABC_EL_CHORD_SYMBOL && !chord_ok(e->u.text.text);
    }
    abc_model *m = f->n_tunes ? abc_model_new(f, 0, NULL) : NULL;
    const abc_bar *last = NULL, *before = NULL;
    for (size_t i = 0; m && i < m->n_bars; i++)
        if (m->bars[i].n_events > 0) {
            out->bars++;
            before = last;
            last = &m->bars[i];
        }
    out->before_last_full = before && abc_frac_eq(before->len, abc_meter_bar_length(before->meter));
    abc_model_free(m);
    abc_diags_free(&d);
    abc_file_free(f);
    return 0;
}

/* End of the bar line that starts at s[i] == '|' or ':' ("|", "||", "|]", ":|", "|:", "::", "|1", ":|2"). */
static size_t bar_line_end(const char *s, size_t i)
{
    while (s[i] == '|' || s[i] == ':' || s[i] == ']')
        i++;
    while (isdigit((unsigned char)s[i]))
        i++;
    return i;
}

/* Where the first bar line in s[from..] ends, if something follows it (so the bar line is complete);
 * 0 when none yet. Quoted text and !decorations! are skipped. */
static size_t closed_bar(const char *s, size_t from)
{
    int quote = 0, deco = 0;
    for (size_t i = from; s[i]; i++) {
        if (s[i] == '"' && !deco)
            quote = !quote;
        else if (s[i] == '!' && !quote)
            deco = !deco;
        else if (!quote && !deco && (s[i] == '|' || (s[i] == ':' && s[i + 1] == '|'))) {
            size_t e = bar_line_end(s, i);
            return s[e] ? e : 0;
        }
    }
    return 0;
}

/* Whether s[from..len) ends inside a bar: music written after its last bar line (or from `from` when it has none). */
static int inside_bar(const char *s, size_t from, size_t len)
{
    size_t after = from;
    for (size_t i = from; i < len; i++)
        if (s[i] == '|')
            after = i + 1;
    return strspn(s + after, " \t\r\n:]") < len - after;
}

/* A rest filling one bar of `meter` in `unit`, so that the bar before it is not the tune's last ("z6|"). */
static void full_bar_rest(const char *meter, const char *unit, char *out, size_t size)
{
    abc_meter m;
    abc_frac u = abc_frac_make(1, 8), len;
    char e[64];
    if (!abc_parse_meter(meter, &m, e, sizeof e) || abc_meter_bar_length(m).num == 0) {
        snprintf(out, size, "z8|");
        return;
    }
    if (!unit || !abc_parse_unit(unit, &u, e, sizeof e))
        u = abc_default_unit(m);
    len = abc_frac_div(abc_meter_bar_length(m), u);
    if (len.den == 1)
        snprintf(out, size, "z%lld|", (long long)len.num);
    else
        snprintf(out, size, "z%lld/%lld|", (long long)len.num, (long long)len.den);
}

/* ---------------------------------------------------------------- composing */

struct run {
    struct composer *c;
    const struct compose_request *r;
    const struct plan *p;
    struct compose_result *res;
    char meter[16], unit[16], key[32];
    char *err;
    size_t errlen;
};

/* Forces the text that opens bar `bar`: its chord symbol from --chords and, in the first bar, the motif. */
static int open_bar(struct run *u, int bar)
{
    char chord[160];
    if (bar < u->p->n_chords && u->p->chords[bar][0]) {
        snprintf(chord, sizeof chord, "\"%s\"", u->p->chords[bar]);
        if (force(u->c, chord, u->err, u->errlen))
            return -1;
    }
    if (bar == 0 && u->r->motif && u->r->task == COMPOSE_NEW)
        return force(u->c, u->r->motif, u->err, u->errlen);
    return 0;
}

/* A bar longer than this many tokens is taken back (the model has lost its way). */
#define MAX_BAR_TOKENS 64

/* Does a line of the body from s[from..] start a field or a comment (K:, N:, %...)? Generated music stays music:
 * a new field in the body would change the controls or is noise. ("A:|" is a note before a repeat sign.) */
static int field_line(const char *s, size_t from)
{
    for (size_t i = from ? from - 1 : 0; s[i]; i++) {
        if (s[i] != '\n' || !s[i + 1])
            continue;
        const char *l = s + i + 1;
        if (l[0] == '%' || (isalpha((unsigned char)l[0]) && l[1] == ':' && l[2] != '|' && l[2] != ':'))
            return 1;
    }
    return 0;
}

/* Forces `text` when the tune with it (and a rest bar after it) passes the validator; 1 if so, 0 if not. */
static int try_bar(struct run *u, const char *text, const char *rest, struct check *ck)
{
    struct composer *c = u->c;
    struct sbuf cand = {0};
    int rc = -1;
    if (!sb_add(&cand, c->text.s, c->text.len) && !sb_printf(&cand, "%s\n%s\n", text, rest) &&
        !check_tune(cand.s, cand.len, 0, ck))
        rc = ck->errors || !ck->before_last_full ? 0 : force(c, text, u->err, u->errlen) ? -1 : 1;
    else
        snprintf(u->err, u->errlen, "out of memory");
    free(cand.s);
    return rc;
}

/* A bar written instead of sampled when no sample fits. In the first bar, the motif completed by the tonic held
 * (the control is kept); else the last accepted bar (text[prev..good)) again without its chord symbols, else the
 * tonic held for the whole bar. 1 when one was written, 0 when none fits. */
static int repair_bar(struct run *u, int index, size_t prev, size_t good, const char *rest, struct check *ck)
{
    struct composer *c = u->c;
    /* the token that closed the last good bar may have begun this one: back to a token boundary at or before
     * the bar line, then the rest of the bar line written again */
    int k = c->n_ids;
    while (k > c->n_prompt + 1 && c->text_end[k - 1] > good)
        k--;
    if (k < c->n_ids) {
        char *tail = strndup(c->text.s + c->text_end[k - 1], good - c->text_end[k - 1]);
        int rc = !tail || rewind_to(c, k, u->err, u->errlen) || force(c, tail, u->err, u->errlen);
        free(tail);
        if (rc)
            return -1;
    }
    abc_key key;
    abc_meter meter;
    abc_frac unit;
    char e[64];
    long long units = 0; /* the bar's length in unit notes, 0 when it is not a whole number of them */
    if (abc_parse_key(u->key, &key, e, sizeof e) && !key.none && abc_parse_meter(u->meter, &meter, e, sizeof e) &&
        abc_parse_unit(u->unit, &unit, e, sizeof e)) {
        abc_frac len = abc_frac_div(abc_meter_bar_length(meter), unit);
        units = len.den == 1 && len.num > 0 ? len.num : 0;
    }
    char bar[512];
    size_t n = 0;
    int quote = 0;
    if (index < u->p->n_chords && u->p->chords[index][0])
        n = (size_t)snprintf(bar, 64, "\"%.40s\"", u->p->chords[index]);
    size_t chord = n;
    for (long long held = 0; index == 0 && u->r->motif && u->r->task == COMPOSE_NEW && held < units; held++) {
        if (held)
            snprintf(bar + chord, sizeof bar - chord, "%.400s %c%lld|", u->r->motif, key.tonic_letter, held);
        else
            snprintf(bar + chord, sizeof bar - chord, "%.400s|", u->r->motif);
        int r = try_bar(u, bar, rest, ck);
        if (r)
            return r;
    }
    for (size_t i = prev; i < good && n + 1 < sizeof bar; i++) {
        char ch = c->text.s[i];
        if (ch == '"')
            quote = !quote;
        else if (!quote && ch != '\n')
            bar[n++] = ch;
    }
    bar[n] = 0;
    size_t lead = strspn(bar + chord, " |:");
    memmove(bar + chord, bar + chord + lead, strlen(bar + chord + lead) + 1);
    if (bar[chord]) {
        int r = try_bar(u, bar, rest, ck);
        if (r)
            return r;
    }
    if (!units)
        return 0;
    snprintf(bar + chord, sizeof bar - chord, "%c%lld|", key.tonic_letter, units);
    return try_bar(u, bar, rest, ck);
}

/* Whether s[a0..a1) and s[b0..b1) hold the same music: the same text once chord symbols, blanks and bar lines are
 * left out. */
static int same_bar(const char *s, size_t a0, size_t a1, size_t b0, size_t b1)
{
    for (;;) {
        int qa = 0, qb = 0;
        while (a0 < a1 && (qa || s[a0] == '"' || strchr(" \t\n|:", s[a0])))
            qa ^= s[a0++] == '"';
        while (b0 < b1 && (qb || s[b0] == '"' || strchr(" \t\n|:", s[b0])))
            qb ^= s[b0++] == '"';
        if (a0 == a1 || b0 == b1)
            return a0 == a1 && b0 == b1;
        if (s[a0++] != s[b0++])
            return 0;
    }
}

/* Samples bars after the header (and prefix) until the target count or the model's end of the reply. */
static int body(struct run *u)
{
    struct composer *c = u->c;
    const struct compose_request *r = u->r;
    int max_tokens = r->max_tokens > 0 ? r->max_tokens : 1536;
    int retries = r->bar_retries > 0 ? r->bar_retries : 16;
    char rest[40];
    full_bar_rest(u->meter, u->unit, rest, sizeof rest);
    struct check ck;
    if (check_tune(c->text.s, c->text.len, 0, &ck))
        return -1;
    int bars = ck.bars;
    int target = u->p->bars ? (r->task == COMPOSE_CONTINUE ? bars + u->p->bars : u->p->bars) : 0;
    size_t seg = c->text.len, good = c->text.len, prev = c->text.len, before_prev = c->text.len;
    int opened = -1, ended = 0, forced = 0;
    struct sbuf cand = {0};
    while (!ended && (!target || bars < target)) {
        if (opened != bars) {
            size_t before = c->text.len;
            if (open_bar(u, bars))
                goto fail;
            forced = c->text.len > before;
            opened = bars;
        }
        int mark = c->n_ids, tries = 0;
        for (;;) {
            if (c->n_ids - c->n_prompt >= max_tokens || c->n_ids + 2 >= c->ctx_len) {
                u->res->truncated = 1;
                ended = 1;
                break;
            }
            int id = sample(c, !target, inside_bar(c->text.s, seg, c->text.len));
            if (id < 0) {
                ended = 1;
                break;
            }
            if (accept(c, id, u->err, u->errlen))
                goto fail;
            size_t cut = closed_bar(c->text.s, seg);
            int bad = field_line(c->text.s, seg) || c->n_ids - mark > MAX_BAR_TOKENS;
            if (!cut && !bad)
                continue;
            if (!bad) {
                cand.len = 0;
                if (sb_add(&cand, c->text.s, cut) || sb_printf(&cand, "\n%s\n", rest) ||
                    check_tune(cand.s, cand.len, 0, &ck))
                    goto oom;
                /* Stricter than the validator, which lets a bar be short next to a repeat or a double bar: a
                 * sampled bar adds one bar that fills the meter (a pickup may open the tune), and a bar line
                 * that adds no bar is taken only before the music starts and when nothing was forced. */
                int added = ck.bars - 1 - bars;
                int fits = added == 1 && (ck.before_last_full || bars == 0);
                int empty = added == 0 && bars == 0 && !forced;
                /* A third bar in a row with the same music is sampled again: 0.2% of the training tunes' bars
                 * are, and a small model falls into that loop (docs/eval.md). */
                int third = fits && bars >= 2 && same_bar(c->text.s, good, cut, prev, good) &&
                            same_bar(c->text.s, prev, good, before_prev, prev);
                if (!ck.errors && (fits || empty) && !third) {
                    bars = ck.bars - 1; /* less the rest bar */
                    before_prev = prev;
                    prev = good;
                    seg = good = cut;
                    break;
                }
            }
            u->res->bars_resampled++;
            if (rewind_to(c, mark, u->err, u->errlen))
                goto fail;
            if (++tries > retries) {
                /* no sampled bar fits: a written one does (repair_bar) */
                int r = repair_bar(u, bars, prev, good, rest, &ck);
                if (r < 0)
                    goto fail;
                if (!r) {
                    u->res->truncated = 1;
                    ended = 1;
                    break;
                }
                u->res->bars_repaired++;
                bars = ck.bars - 1;
                before_prev = prev;
                prev = good;
                seg = good = c->text.len;
                break;
            }
        }
    }
    /* The model's last bar may stay when it ends the tune cleanly (a last bar may be short); else cut at the
     * last bar that passed. */
    if (!(ended && !u->res->truncated && !target && !check_tune(c->text.s, c->text.len, 1, &ck) && !ck.errors &&
          ck.bars > bars))
        sb_truncate(&c->text, good);
    else
        bars = ck.bars;
    u->res->bars = bars;
    free(cand.s);
    return 0;
oom:
    snprintf(u->err, u->errlen, "out of memory");
fail:
    free(cand.s);
    return -1;
}

/* Index of the first note of a bar's text (where its chord symbol goes), or -1. */
static long first_note(const char *s, size_t len)
{
    int quote = 0, deco = 0, field = 0, grace = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (quote) {
            quote = ch != '"';
        } else if (deco) {
            deco = ch != '!';
        } else if (field) {
            field = ch != ']';
        } else if (grace) {
            grace = ch != '}';
        } else if (ch == '"') {
            quote = 1;
        } else if (ch == '!') {
            deco = 1;
        } else if (ch == '{') {
            grace = 1;
        } else if (ch == '[' && i + 2 < len && isalpha((unsigned char)s[i + 1]) && s[i + 2] == ':') {
            field = 1;
        } else if (strchr("^_=[ABCDEFGabcdefg", ch)) {
            return (long)i;
        }
    }
    return -1;
}

/* Samples a chord symbol after a forced '"'; 0 when one was written, 1 when none could be. */
static int sample_chord(struct run *u)
{
    struct composer *c = u->c;
    int mark = c->n_ids;
    size_t start = c->text.len;
    if (force(c, "\"", u->err, u->errlen))
        return -1;
    int inner = c->n_ids;
    for (int attempt = 0; attempt < 6; attempt++) {
        if (attempt && rewind_to(c, inner, u->err, u->errlen))
            return -1;
        char *close = NULL;
        for (int i = 0; i < 8 && !close; i++) {
            int id = sample(c, 0, 0);
            if (accept(c, id, u->err, u->errlen))
                return -1;
            close = strchr(c->text.s + start + 1, '"');
        }
        char sym[64];
        if (close && close[1] == 0 && close - (c->text.s + start + 1) < (long)sizeof sym) {
            snprintf(sym, sizeof sym, "%.*s", (int)(close - (c->text.s + start + 1)), c->text.s + start + 1);
            if (chord_ok(sym))
                return 0;
        }
        u->res->bars_resampled++;
    }
    return rewind_to(c, mark, u->err, u->errlen) ? -1 : 1;
}

/* The melody of the prefix, bar by bar, with a sampled chord symbol before each bar's first note; chord symbols
 * already in the melody are dropped. */
static int harmonize_body(struct run *u)
{
    const char *s = u->p->prefix.s + u->p->prefix_header_len;
    struct sbuf melody = {0}, bar = {0};
    int rc = -1;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '"' && !strchr("^_<>@", s[i + 1])) {
            const char *close = strchr(s + i + 1, '"');
            if (close) {
                i = (size_t)(close - s);
                continue;
            }
        }
        if (sb_add(&melody, s + i, 1))
            goto done;
    }
    for (size_t i = 0; melody.s && i < melody.len;) {
        size_t end = closed_bar(melody.s, i);
        if (!end)
            end = melody.len;
        bar.len = 0;
        if (sb_add(&bar, melody.s + i, end - i))
            goto done;
        long note = first_note(bar.s, bar.len);
        if (note >= 0) {
            char keep = bar.s[note];
            bar.s[note] = 0;
            if (force(u->c, bar.s, u->err, u->errlen) || sample_chord(u) < 0)
                goto done;
            bar.s[note] = keep;
        }
        if (force(u->c, bar.s + (note > 0 ? note : 0), u->err, u->errlen))
            goto done;
        i = end;
    }
    rc = 0;
done:
    free(melody.s);
    free(bar.s);
    return rc;
}

static int key_field(struct run *u);

/* The header: forced from the plan, sampled where the request leaves it open. */
static int header(struct run *u)
{
    struct composer *c = u->c;
    const struct plan *p = u->p;
    char line[256], value[128];
    if (force(c, "X:1\n", u->err, u->errlen))
        return -1;
    if (u->r->title) {
        snprintf(line, sizeof line, "T:%s\n", u->r->title);
        if (force(c, line, u->err, u->errlen))
            return -1;
    } else if (sample_field(c, "T:", title_text, "Untitled", value, sizeof value, u->err, u->errlen)) {
        return -1;
    }
    if (p->type[0]) {
        snprintf(line, sizeof line, "R:%s\n", p->type);
        if (force(c, line, u->err, u->errlen))
            return -1;
    }
    if (p->have_meter) {
        snprintf(u->meter, sizeof u->meter, "%s", p->meter);
        snprintf(line, sizeof line, "M:%s\n", p->meter);
        if (force(c, line, u->err, u->errlen))
            return -1;
    } else if (sample_field(c, "M:", valid_meter, "4/4", u->meter, sizeof u->meter, u->err, u->errlen)) {
        return -1;
    }
    if (!p->have_unit && p->have_meter) {
        /* with the meter given, its standard unit (1/8, or 1/16 below 3/4): the model's own choice of a finer
         * unit makes its bars much harder to fill */
        abc_meter m;
        char e[64];
        if (abc_parse_meter(p->meter, &m, e, sizeof e)) {
            abc_frac d = abc_default_unit(m);
            snprintf(u->unit, sizeof u->unit, "%lld/%lld", (long long)d.num, (long long)d.den);
            snprintf(line, sizeof line, "L:%s\n", u->unit);
            return force(c, line, u->err, u->errlen) ? -1 : key_field(u);
        }
    }
    if (p->have_unit) {
        snprintf(u->unit, sizeof u->unit, "%s", p->unit);
        snprintf(line, sizeof line, "L:%s\n", p->unit);
        if (force(c, line, u->err, u->errlen))
            return -1;
    } else if (sample_field(c, "L:", valid_unit, "1/8", u->unit, sizeof u->unit, u->err, u->errlen)) {
        return -1;
    }
    return key_field(u);
}

static int key_field(struct run *u)
{
    struct composer *c = u->c;
    const struct plan *p = u->p;
    char line[256];
    if (p->have_key) {
        snprintf(u->key, sizeof u->key, "%s", p->key);
        snprintf(line, sizeof line, "K:%s\n", p->key);
        return force(c, line, u->err, u->errlen);
    }
    return sample_field(c, "K:", valid_key, "C", u->key, sizeof u->key, u->err, u->errlen);
}

static int attempt(struct run *u, const tok_ids *prompt, uint64_t seed)
{
    struct composer *c = u->c;
    struct gen_params gp;
    gen_params_default(&gp);
    gp.temperature = u->r->temperature;
    gp.top_p = u->r->top_p > 0 ? u->r->top_p : 1.0f;
    gp.seed = seed;
    gen_sampler_free(c->sampler);
    c->sampler = gen_sampler_new(&gp, c->m->config.vocab_size);
    if (!c->sampler) {
        snprintf(u->err, u->errlen, "out of memory");
        return -1;
    }
    const char *rest;
    size_t len;
    tok_stream_finish(c->stream, &rest, &len);
    c->state->pos = 0;
    c->n_ids = 0;
    c->n_sampled = 0;
    sb_truncate(&c->text, 0);
    if (show(c, u->err, u->errlen) || feed(c, prompt->v, (int)prompt->n, 0, u->err, u->errlen))
        return -1;
    c->n_prompt = c->n_ids;
    if (u->r->task == COMPOSE_NEW)
        return header(u) || body(u) ? -1 : 0;
    const struct plan *p = u->p;
    if (u->r->task == COMPOSE_CONTINUE)
        return force(c, p->prefix.s, u->err, u->errlen) || body(u) ? -1 : 0;
    char *head = strndup(p->prefix.s, p->prefix_header_len);
    int rc = !head || force(c, head, u->err, u->errlen) || harmonize_body(u) ? -1 : 0;
    free(head);
    if (!rc) {
        struct check ck;
        rc = check_tune(c->text.s, c->text.len, 1, &ck);
        u->res->bars = ck.bars;
    }
    return rc;
}

int compose(struct composer *c, const struct compose_request *req, compose_text_fn on_text, void *ctx,
            struct compose_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (errlen)
        err[0] = 0;
    struct plan p;
    struct sbuf instr = {0};
    tok_ids ids = {0};
    int rc = -1;
    if (plan_make(req, &p, err, errlen))
        goto done;
    if (instruction(req, &p, &instr))
        goto oom;
    struct chat_message msgs[2] = {
        {CHAT_SYSTEM, p.zh ? MELODIST_PERSONA_ZH : MELODIST_PERSONA_EN, 0},
        {CHAT_USER, instr.s, instr.len},
    };
    msgs[0].len = strlen(msgs[0].text);
    if (chat_encode(c->tok, msgs, 2, 1, &ids, err, errlen))
        goto done;
    if ((int)ids.n + 128 > c->ctx_len) {
        snprintf(err, errlen, "the request is %zu tokens long; the model's context is %d (shorten the reference "
                 "tune or the text)", ids.n, c->ctx_len);
        goto done;
    }
    c->on_text = on_text;
    c->cb_ctx = ctx;
    c->shown = 0;
    struct run u = {.c = c, .r = req, .p = &p, .res = res, .err = err, .errlen = errlen};
    snprintf(u.meter, sizeof u.meter, "%s", p.meter);
    snprintf(u.unit, sizeof u.unit, "%s", p.unit);
    snprintf(u.key, sizeof u.key, "%s", p.key);
    int tries = req->tune_retries > 0 ? req->tune_retries : 3;
    for (int t = 0;; t++) {
        int keep_resampled = res->bars_resampled;
        res->truncated = 0;
        res->bars_repaired = 0;
        if (attempt(&u, &ids, req->seed + (uint64_t)t))
            goto done;
        res->bars_resampled = keep_resampled;
        res->n_tokens += c->n_sampled;
        if (c->text.len && c->text.s[c->text.len - 1] != '\n' && sb_puts(&c->text, "\n"))
            goto oom;
        struct check ck;
        if (check_tune(c->text.s, c->text.len, 1, &ck))
            goto oom;
        res->valid = !ck.errors && ck.bars > 0;
        if (res->valid || t + 1 >= tries)
            break;
        res->tunes_resampled++;
    }
    if (show(c, err, errlen))
        goto done;
    res->abc = strdup(c->text.s);
    res->len = c->text.len;
    res->prompt = instr.s;
    instr.s = NULL;
    if (!res->abc)
        goto oom;
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory");
done:
    if (rc)
        compose_result_free(res);
    plan_free(&p);
    free(instr.s);
    tok_ids_free(&ids);
    return rc;
}

void compose_result_free(struct compose_result *r)
{
    free(r->abc);
    free(r->prompt);
    r->abc = r->prompt = NULL;
}
