/* melodist abc wav FILE -o OUT.wav: one tune rendered to audio through FluidSynth. */
#include <stdio.h>
#include <stdlib.h>

#include "abc_commands.h"
#include "abc_render.h"
#include "melodist/audio.h"

int abc_cmd_wav(int argc, char **argv)
{
    struct render_request req;
    bool help;
    int rc = render_parse_args(argc, argv, true, &req, &help);
    if (rc)
        return help ? 0 : rc;
    midi_file *mf;
    if ((rc = render_tune_midi(&req, &mf)))
        return rc;
    unsigned char *bytes;
    size_t len;
    char err[512];
    if (midi_file_bytes(mf, &bytes, &len)) {
        fprintf(stderr, "melodist abc wav: out of memory\n");
        midi_file_free(mf);
        return 1;
    }
    struct audio_options opts = {.soundfont = req.soundfont};
    struct audio_result res;
    if (audio_render_midi(bytes, len, req.output, &opts, &res, err, sizeof err)) {
        fprintf(stderr, "melodist abc wav: %s\n", err);
        rc = 1;
    } else {
        fprintf(stderr, "melodist abc wav: wrote %s (%.1f s)\n", req.output, (double)res.frames / AUDIO_DEFAULT_SAMPLE_RATE);
    }
    free(bytes);
    midi_file_free(mf);
    return rc;
}
