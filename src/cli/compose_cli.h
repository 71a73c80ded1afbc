/* Shared by the composer commands (compose, continue, harmonize, analyze, eval): finding and loading the model,
 * writing the tune's files. */
#ifndef MELODIST_CLI_COMPOSE_CLI_H
#define MELODIST_CLI_COMPOSE_CLI_H

#include <limits.h>
#include <stddef.h>

#include "melodist/compose.h"
#include "melodist/model.h"
#include "melodist/tokenizer.h"

struct compose_model {
    char dir[PATH_MAX];
    mt_tokenizer *tok;
    struct model *model;
    struct composer *composer;
};

/* The shipped model's directory: $MELODIST_MODEL, else models/melodist-mini beside or above the executable, else
 * in the current directory. -1 when none holds a config.json. */
int compose_default_model(char *out, size_t size);
/* Loads tokenizer, model and composer from dir (NULL: the default). Prints why and returns -1 on failure. */
int compose_load(const char *command, const char *dir, struct compose_model *cm);
void compose_unload(struct compose_model *cm);

/* The whole file (or stdin for "-") as a NUL-terminated string (a NUL inside ends it); *len may be NULL.
 * Prints why and returns NULL on failure. */
char *compose_read_text(const char *command, const char *path, size_t *len);

struct compose_outputs {
    const char *abc_path, *midi_path, *wav_path, *svg_path; /* NULL: not written */
};

/* Writes the requested files of the tune atomically; prints why and returns 1 when one failed. */
int compose_outputs(const char *command, const char *abc, const struct compose_outputs *o);

#endif
