/* melodist abc midi FILE -o OUT.mid: one tune as a Standard MIDI File. */
#include <stdio.h>

#include "abc_commands.h"
#include "abc_render.h"

int abc_cmd_midi(int argc, char **argv)
{
    struct render_request req;
    bool help;
    int rc = render_parse_args(argc, argv, false, &req, &help);
    if (rc)
        return help ? 0 : rc;
    midi_file *mf;
    if ((rc = render_tune_midi(&req, &mf)))
        return rc;
    char err[512];
    if (midi_file_write(mf, req.output, err, sizeof err)) {
        fprintf(stderr, "melodist abc midi: %s\n", err);
        rc = 1;
    }
    midi_file_free(mf);
    return rc;
}
