/* The training log and loss curve (internal to the training layer). */
#ifndef MELODIST_TRAIN_TRAINLOG_H
#define MELODIST_TRAIN_TRAINLOG_H

#include <stddef.h>
#include <stdint.h>

#include "melodist/train.h"

struct curve_series {
    int64_t *step;
    double *value;
    size_t n, cap;
};

struct curve {
    struct curve_series train, valid;
};

int curve_add(struct curve_series *s, int64_t step, double value);
void curve_free(struct curve *c);
/* The loss curve as an SVG picture at path (atomically). */
int curve_svg(const struct curve *c, const char *path, const char *title, char *err, size_t errlen);

int trainlog_resume(const char *path, int64_t upto, struct curve *c, char *err, size_t errlen);
/* Appends the step's JSON line to the log at path and its losses to the curve. */
int trainlog_step(const char *path, const struct train_progress *p, struct curve *c, char *err, size_t errlen);

/* Monotonic seconds, for the tokens/s and ETA of a step. */
double trainlog_now(void);

#endif
