/* Shared by 'melodist abc midi' and 'melodist abc wav': options, reading the ABC input, choosing the tune
 * and rendering it to a MIDI file in memory. */
#ifndef MELODIST_CLI_ABC_RENDER_H
#define MELODIST_CLI_ABC_RENDER_H

#include <stdbool.h>

#include "melodist/midi.h"

struct render_request {
    const char *command;   /* "midi" or "wav", for messages */
    const char *input;     /* path, or "-" for stdin */
    const char *output;
    const char *tune;      /* X: number as given, NULL: the first tune */
    const char *soundfont; /* wav only; NULL: the default */
    struct midi_options midi;
};

/* Parses the options the two commands share, plus --soundfont when `wav`. Returns 0, or 2 after printing
 * a usage message (also for --help, then *help is set). */
int render_parse_args(int argc, char **argv, bool wav, struct render_request *req, bool *help);

/* Reads req->input, picks the tune, builds its MIDI file. Problems in the tune are reported on stderr
 * and the tune is rendered as read (as abc2midi does). Returns 0, or 1 after printing why not. */
int render_tune_midi(const struct render_request *req, midi_file **out);

#endif
