/* melodist abc SUBCOMMAND: the ABC engine on the command line. */
#include <stdio.h>
#include <string.h>

#include "abc_commands.h"
#include "commands.h"

struct abc_subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct abc_subcommand subcommands[] = {
    {"check", abc_cmd_check, "validate tunes: syntax, header, bar lengths, repeats, slurs/ties/tuplets (--json)"},
    {"fmt", abc_cmd_fmt, "print tunes in the canonical layout (-o OUT, --tune X)"},
    {"info", abc_cmd_info, "title, key, meter, tempo, bars, voices, duration of each tune (--json)"},
    {"midi", abc_cmd_midi, "write a tune as a Standard MIDI File (-o OUT.mid, --tune X, --chords)"},
    {"wav", abc_cmd_wav, "render a tune to WAV audio through FluidSynth (-o OUT.wav, --tune X)"},
    {"transpose", abc_cmd_transpose, "move tunes by N semitones or to a key (-k N | --to KEY, --tune X)"},
    {"search", abc_cmd_search, "find a melodic phrase in any key (--melody \"ABC\", --rhythm, --json)"},
    {NULL, NULL, NULL}, /* subcommands are added above this line */
};

static void usage(FILE *out)
{
    fprintf(out, "usage: melodist abc SUBCOMMAND [OPTIONS] FILE...   (FILE '-' or none: stdin)\n\nsubcommands:\n");
    for (size_t i = 0; subcommands[i].name; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\nexit status: 0 ok, 1 invalid input, 2 usage error\n");
}

int cmd_abc(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; subcommands[i].name; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "melodist abc: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
