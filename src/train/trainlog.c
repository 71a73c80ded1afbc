/* The run's record: DIR/train_log.jsonl (one JSON object per step) and the loss curve DIR/loss.svg. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "melodist/fileio.h"
#include "trainlog.h"

int curve_add(struct curve_series *s, int64_t step, double value)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        int64_t *st = realloc(s->step, cap * sizeof *st);
        if (st)
            s->step = st;
        double *v = realloc(s->value, cap * sizeof *v);
        if (v)
            s->value = v;
        if (!st || !v)
            return -1;
        s->cap = cap;
    }
    s->step[s->n] = step;
    s->value[s->n++] = value;
    return 0;
}

void curve_free(struct curve *c)
{
    free(c->train.step), free(c->train.value), free(c->valid.step), free(c->valid.value);
    memset(c, 0, sizeof *c);
}

static int number_after(const char *line, const char *key, double *out)
{
    const char *p = strstr(line, key);
    if (!p)
        return -1;
    char *end;
    *out = strtod(p + strlen(key), &end);
    return end == p + strlen(key) ? -1 : 0;
}

/* Keeps the log lines of steps <= upto (a killed run may have logged beyond its last checkpoint) and
 * rebuilds the curve from them; rewrites the log atomically. A missing log is an empty one. */
int trainlog_resume(const char *path, int64_t upto, struct curve *c, char *err, size_t errlen)
{
    FILE *in = fopen(path, "rb");
    if (!in)
        return 0;
    char tmp[4096 + 64];
    FILE *out = file_create_tmp(path, tmp, sizeof tmp, err, errlen);
    if (!out) {
        fclose(in);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int ok = 1;
    while (ok && getline(&line, &cap, in) > 0) {
        double step, loss, valid;
        if (number_after(line, "\"step\": ", &step) || step > (double)upto)
            continue;
        if (!number_after(line, "\"loss\": ", &loss))
            ok = !curve_add(&c->train, (int64_t)step, loss);
        if (ok && !number_after(line, "\"valid_loss\": ", &valid))
            ok = !curve_add(&c->valid, (int64_t)step, valid);
        ok = ok && fputs(line, out) >= 0;
    }
    free(line);
    fclose(in);
    return file_commit(out, ok, tmp, path, err, errlen);
}

int trainlog_step(const char *path, const struct train_progress *p, struct curve *c, char *err, size_t errlen)
{
    char line[512];
    int n = snprintf(line, sizeof line, "{\"step\": %" PRId64 ", \"loss\": %.6f, \"lr\": %.6g, \"tokens_per_s\": %.1f, "
                     "\"grad_norm\": %.4f", p->step, p->loss, p->lr, p->tokens_per_s, p->grad_norm);
    if (isfinite(p->valid_loss))
        n += snprintf(line + n, sizeof line - (size_t)n, ", \"valid_loss\": %.6f", p->valid_loss);
    snprintf(line + n, sizeof line - (size_t)n, "}\n");
    FILE *f = fopen(path, "ab");
    int ok = f && fputs(line, f) >= 0;
    ok = f && fclose(f) == 0 && ok;
    if (!ok) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (curve_add(&c->train, p->step, p->loss) ||
        (isfinite(p->valid_loss) && curve_add(&c->valid, p->step, p->valid_loss)))
        return -1;
    return 0;
}

double trainlog_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- SVG ---- */

enum { W = 720, H = 400, LEFT = 60, RIGHT = 20, TOP = 30, BOTTOM = 45 };

struct frame {
    int64_t s0, s1;
    double lo, hi;
};

static double px(const struct frame *f, int64_t step)
{
    return LEFT + (double)(step - f->s0) / (double)(f->s1 > f->s0 ? f->s1 - f->s0 : 1) * (W - LEFT - RIGHT);
}

static double py(const struct frame *f, double v)
{
    return TOP + (f->hi - v) / (f->hi > f->lo ? f->hi - f->lo : 1) * (H - TOP - BOTTOM);
}

static void polyline(FILE *out, const struct frame *f, const struct curve_series *s, const char *color)
{
    if (!s->n)
        return;
    size_t every = s->n / 1500 + 1; /* keep the file small on long runs */
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (size_t i = 0; i < s->n; i += every)
        if (isfinite(s->value[i]))
            fprintf(out, "%.1f,%.1f ", px(f, s->step[i]), py(f, s->value[i]));
    fprintf(out, "\"/>\n");
}

int curve_svg(const struct curve *c, const char *path, const char *title, char *err, size_t errlen)
{
    struct frame f = {INT64_MAX, INT64_MIN, INFINITY, -INFINITY};
    const struct curve_series *all[2] = {&c->train, &c->valid};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < all[k]->n; i++) {
            double v = all[k]->value[i];
            if (!isfinite(v))
                continue;
            f.s0 = all[k]->step[i] < f.s0 ? all[k]->step[i] : f.s0;
            f.s1 = all[k]->step[i] > f.s1 ? all[k]->step[i] : f.s1;
            f.lo = v < f.lo ? v : f.lo;
            f.hi = v > f.hi ? v : f.hi;
        }
    if (f.s0 > f.s1)
        return 0; /* nothing to draw yet */
    f.lo = f.lo > 0 ? 0 : f.lo;
    char tmp[4096 + 64];
    FILE *out = file_create_tmp(path, tmp, sizeof tmp, err, errlen);
    if (!out)
        return -1;
    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
            "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    fprintf(out, "<text x=\"%d\" y=\"18\" font-size=\"14\">%s</text>\n", LEFT, title);
    for (int i = 0; i <= 4; i++) { /* horizontal grid with loss labels */
        double v = f.lo + (f.hi - f.lo) * i / 4;
        fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n",
                LEFT, W - RIGHT, py(&f, v), py(&f, v), LEFT - 6, py(&f, v) + 4, v);
    }
    fprintf(out, "<text x=\"%d\" y=\"%d\">step %" PRId64 "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">step %"
            PRId64 "</text>\n", LEFT, H - BOTTOM + 18, f.s0, W - RIGHT, H - BOTTOM + 18, f.s1);
    polyline(out, &f, &c->train, "#1f77b4");
    polyline(out, &f, &c->valid, "#ff7f0e");
    fprintf(out, "<text x=\"%d\" y=\"%d\" fill=\"#1f77b4\">training loss</text><text x=\"%d\" y=\"%d\" "
            "fill=\"#ff7f0e\">validation loss</text>\n</svg>\n", LEFT + 150, H - 8, LEFT + 300, H - 8);
    return file_commit(out, !ferror(out), tmp, path, err, errlen);
}
