/* Re-checks SFT records with the ABC engine: every analysis answer is recomputed from the tune in the question,
 * and every composed answer is checked against the constraint the question states.
 * Input: JSONL of flat {"task","input","output"} objects (written by test_corpus.py after json.loads).
 * Prints the number of records checked per task; exit 1 when any record disagrees. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc.h"
#include "melodist/abc_analysis.h"
#include "melodist/data.h"
#include "melodist/data_json.h"

struct parsed {
    abc_file *f;
    abc_model *m;
    abc_analysis a;
    int ok;
};

static int parse_tune(const char *text, struct parsed *p)
{
    memset(p, 0, sizeof *p);
    p->f = abc_parse(text, strlen(text));
    if (!p->f || p->f->n_tunes != 1)
        return -1;
    abc_diags d;
    abc_diags_init(&d);
    size_t errors = abc_validate_file(p->f, &d);
    abc_diags_free(&d);
    if (errors)
        return -1;
    p->m = abc_model_new(p->f, 0, NULL);
    if (!p->m || abc_analyze(&p->f->tunes[0], p->m, &p->a))
        return -1;
    p->ok = 1;
    return 0;
}

static void parsed_free(struct parsed *p)
{
    if (p->ok)
        abc_analysis_free(&p->a);
    if (p->m)
        abc_model_free(p->m);
    if (p->f)
        abc_file_free(p->f);
}

/* The ABC tune quoted in a question: from its X: line to the end. */
static const char *quoted_tune(const char *input)
{
    if (!strncmp(input, "X:", 2))
        return input;
    const char *p = strstr(input, "\nX:");
    return p ? p + 1 : NULL;
}

/* Text between 「」 or between the first pair of backticks, copied into buf. */
static int delimited(const char *s, char *buf, size_t size)
{
    const char *a = strstr(s, "「"), *b;
    size_t open_len = strlen("「");
    if (a) {
        b = strstr(a + open_len, "」");
    } else {
        a = strchr(s, '`');
        open_len = 1;
        b = a ? strchr(a + 1, '`') : NULL;
    }
    if (!a || !b || (size_t)(b - a - (ptrdiff_t)open_len) >= size)
        return -1;
    size_t n = (size_t)(b - a) - open_len;
    memcpy(buf, a + open_len, n);
    buf[n] = '\0';
    return 0;
}

/* Integers of s in order, skipping parenthesised remarks ("(the pickup bar is bar 0)"). */
static size_t integers(const char *s, int *v, size_t max)
{
    size_t n = 0;
    while (*s && n < max) {
        const char *close = *s == '(' ? ")" : !strncmp(s, "（", strlen("（")) ? "）" : NULL;
        if (close) {
            const char *e = strstr(s, close);
            if (!e)
                break;
            s = e + strlen(close);
            continue;
        }
        if (*s >= '0' && *s <= '9') {
            v[n++] = (int)strtol(s, (char **)&s, 10);
            continue;
        }
        s++;
    }
    return n;
}

static void progression(const abc_analysis *a, struct data_buf *out)
{
    data_buf_puts(out, "|");
    for (size_t i = 0; i < a->n_chord_bars; i++) {
        data_buf_putc(out, ' ');
        if (!a->chords[i].n)
            data_buf_putc(out, '-');
        for (size_t k = 0; k < a->chords[i].n; k++)
            data_buf_printf(out, "%s%s", k ? " " : "", a->chords[i].chords[k]);
        data_buf_puts(out, " |");
    }
}

static int same_melody(const abc_model *x, const abc_model *y)
{
    abc_melody a, b;
    if (abc_melody_of_voice(x, 0, &a) || abc_melody_of_voice(y, 0, &b))
        return 0;
    int same = a.n == b.n;
    for (size_t i = 0; same && i < a.n; i++)
        same = a.pitch[i] == b.pitch[i] && abc_frac_eq(a.dur[i], b.dur[i]);
    abc_melody_free(&a);
    abc_melody_free(&b);
    return same;
}

static const char *key_of(const abc_file *f)
{
    const char *k = abc_tune_field(&f->tunes[0], 'K');
    return k ? k : "C";
}

/* 0 when the record checks out; otherwise a reason. */
static const char *check(const char *task, const char *input, const char *output)
{
    static char why[256];
    struct parsed q = {0}, o = {0};
    struct data_buf buf = {0};
    const char *fail = NULL;
    const char *tune_in = quoted_tune(input);
    int composed = !strncmp(task, "compose_", 8) || !strcmp(task, "continuation") || !strcmp(task, "lyrics") ||
                   !strcmp(task, "harmonise") || !strcmp(task, "melodise");
    if (composed && parse_tune(output, &o)) {
        fail = "the answer is not one valid tune";
        goto out;
    }
    if (!strcmp(task, "analysis_count") || !strcmp(task, "analysis_find_melody") ||
        !strcmp(task, "analysis_find_chord") || !strcmp(task, "analysis_progression") || !strcmp(task, "key_mode") ||
        !strcmp(task, "genre") || !strcmp(task, "harmonise")) {
        if (!tune_in || parse_tune(tune_in, &q)) {
            fail = "the question holds no valid tune";
            goto out;
        }
    }
    if (!strcmp(task, "analysis_count")) {
        int v[8];
        size_t n = integers(output, v, 8);
        if (n < 3 || (size_t)v[0] != q.a.bars_written || (size_t)v[1] != q.a.bars_played ||
            (size_t)v[2] != q.a.n_voices) {
            snprintf(why, sizeof why, "counts differ: engine says %zu/%zu bars, %zu voices", q.a.bars_written,
                     q.a.bars_played, q.a.n_voices);
            fail = why;
        }
    } else if (!strcmp(task, "analysis_find_melody")) {
        char phrase[512];
        int bars[64], v[66];
        if (delimited(input, phrase, sizeof phrase)) {
            fail = "no delimited phrase";
            goto out;
        }
        size_t n = abc_melody_bars(q.m, 0, phrase, key_of(q.f), true, bars, 64);
        size_t k = integers(output, v, 66);
        int same = n > 0 && k == n + 1 && (size_t)v[0] == n;
        for (size_t i = 0; same && i < n; i++)
            same = v[i + 1] == bars[i];
        if (!same)
            fail = "melody search disagrees";
    } else if (!strcmp(task, "analysis_find_chord")) {
        char chord[64];
        int v[520];
        if (delimited(input, chord, sizeof chord)) {
            fail = "no delimited chord";
            goto out;
        }
        const char *after = strstr(output, "」");
        after = after ? after + strlen("」") : strchr(strchr(output, '`') + 1, '`') + 1;
        size_t k = integers(after, v, 520), n = 0;
        int ok = k >= 1;
        for (size_t i = 0; ok && i < q.a.n_chord_bars; i++)
            for (size_t c = 0; c < q.a.chords[i].n; c++)
                if (!strcmp(q.a.chords[i].chords[c], chord)) {
                    ok = n + 1 < k && v[1 + n] == q.a.chords[i].number;
                    n++;
                    break;
                }
        if (!ok || n == 0 || (size_t)v[0] != n || k != n + 1)
            fail = "chord bars disagree";
    } else if (!strcmp(task, "analysis_progression") || !strcmp(task, "compose_chords")) {
        progression(strcmp(task, "compose_chords") ? &q.a : &o.a, &buf);
        if (!strstr(strcmp(task, "compose_chords") ? output : input, buf.data))
            fail = "chord progression differs";
    } else if (!strcmp(task, "key_mode")) {
        char ks[16], modal[16];
        abc_key_name(q.a.ks.tonic_pc, q.a.ks.mode, ks, sizeof ks);
        abc_key_name(q.a.modal.tonic_pc, q.a.modal.mode, modal, sizeof modal);
        char zh1[64], zh2[64], en1[64], en2[64];
        snprintf(zh1, sizeof zh1, "主调为 %s ", ks);
        snprintf(zh2, sizeof zh2, "调式，为 %s ", modal);
        snprintf(en1, sizeof en1, "the key is %s ", ks);
        snprintf(en2, sizeof en2, "the mode is %s ", modal);
        if (!(strstr(output, zh1) && strstr(output, zh2)) && !(strstr(output, en1) && strstr(output, en2)))
            fail = "key names differ";
    } else if (!strcmp(task, "genre")) {
        char zh[64], en[64], meter[32];
        snprintf(zh, sizeof zh, "（%s）。", q.a.rhythm_type ? q.a.rhythm_type : "?");
        snprintf(en, sizeof en, "this is a %s.", q.a.rhythm_type ? q.a.rhythm_type : "?");
        snprintf(meter, sizeof meter, "%d/%d", q.a.meter.num, q.a.meter.den);
        if (q.m->rhythm)
            fail = "the question still names the rhythm (R:)";
        else if (!q.a.rhythm_type || !(strstr(output, zh) || strstr(output, en)))
            fail = "the answer does not name the engine's rhythm type";
        else if (!strstr(output, meter))
            fail = "the answer does not name the meter";
    } else if (!strcmp(task, "continuation")) {
        const char *given = quoted_tune(input);
        if (!given || strncmp(output, given, strlen(given)))
            fail = "the answer does not start with the given bars";
    } else if (!strcmp(task, "compose_motif")) {
        char motif[512];
        int bars[4];
        if (delimited(input, motif, sizeof motif) || !abc_melody_bars(o.m, 0, motif, key_of(o.f), false, bars, 4))
            fail = "the motif is not in the answer";
    } else if (!strcmp(task, "compose_form")) {
        char form[64];
        if (delimited(input, form, sizeof form) || strcmp(form, o.a.form))
            fail = "the answer's form differs";
    } else if (!strcmp(task, "harmonise")) {
        if (!same_melody(q.m, o.m) || !o.a.n_chord_bars)
            fail = "harmonisation changed the melody";
    } else if (!strcmp(task, "melodise")) {
        if (!tune_in || parse_tune(tune_in, &q) || q.a.bars_written != o.a.bars_written) {
            fail = "skeleton and answer have different bars";
            goto out;
        }
        struct data_buf b2 = {0};
        progression(&q.a, &buf);
        progression(&o.a, &b2);
        if (strcmp(buf.data, b2.data))
            fail = "skeleton and answer have different chords";
        data_buf_free(&b2);
    }
out:
    data_buf_free(&buf);
    parsed_free(&q);
    parsed_free(&o);
    return fail;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: check_answers FLAT.jsonl\n");
        return 2;
    }
    FILE *fp = fopen(argv[1], "r");
    if (!fp) {
        perror(argv[1]);
        return 2;
    }
    struct data_counters checked = {0}, failed = {0};
    char *line = NULL;
    size_t cap = 0;
    long n_line = 0, shown = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) > 0) {
        n_line++;
        struct data_json_object obj;
        char err[256];
        if (data_json_parse_object(line, (size_t)len, &obj, err, sizeof err)) {
            fprintf(stderr, "%s:%ld: %s\n", argv[1], n_line, err);
            return 1;
        }
        const struct data_json_member *task = data_json_get(&obj, "task"), *in = data_json_get(&obj, "input"),
                                      *out = data_json_get(&obj, "output");
        if (!task || !in || !out) {
            fprintf(stderr, "%s:%ld: missing task/input/output\n", argv[1], n_line);
            return 1;
        }
        const char *why = check(task->value, in->value, out->value);
        data_counters_add(&checked, task->value, 1);
        if (why) {
            data_counters_add(&failed, task->value, 1);
            if (shown++ < 10)
                fprintf(stderr, "line %ld (%s): %s\n--- input ---\n%.600s\n--- output ---\n%.400s\n", n_line,
                        task->value, why, in->value, out->value);
        }
        data_json_object_free(&obj);
    }
    free(line);
    fclose(fp);
    long total_failed = 0;
    for (size_t i = 0; i < checked.n; i++) {
        long f = data_counters_get(&failed, checked.items[i].name);
        total_failed += f;
        printf("%-24s checked %6ld  failed %ld\n", checked.items[i].name, checked.items[i].count, f);
    }
    free(checked.items);
    free(failed.items);
    return total_failed ? 1 : 0;
}
