/* Renders a small MIDI file (built with the SMF writer) to WAV through FluidSynth, and checks the errors:
 * a missing soundfont and an unwritable output are refused with a message and leave no file behind.
 * Prints the music's length in seconds for wav_check.py. Usage: audio_test OUT.wav */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "melodist/audio.h"
#include "melodist/midi.h"

#define QUARTER_USEC 400000 /* 150 quarter notes per minute */
#define NOTES 10

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: audio_test OUT.wav\n");
        return 2;
    }
    if (access(AUDIO_DEFAULT_SOUNDFONT, R_OK)) {
        fprintf(stderr, "audio_test: SKIP: no soundfont at %s (Debian fluid-soundfont-gm)\n", AUDIO_DEFAULT_SOUNDFONT);
        return 77;
    }
    unlink(argv[1]);
    midi_file *mf = midi_file_new(480);
    int ok = mf && midi_add_track(mf, "Conductor") == 0 && midi_tempo(mf, 0, 0, QUARTER_USEC) == 0 &&
             midi_add_track(mf, "Melody") == 1 && midi_program(mf, 1, 0, 0, 73) == 0;
    for (int i = 0; ok && i < NOTES; i++)
        ok = midi_note(mf, 1, (uint32_t)i * 480, 480, 0, 60 + 2 * i, 100) == 0;
    unsigned char *bytes;
    size_t len;
    if (!ok || midi_file_bytes(mf, &bytes, &len)) {
        fprintf(stderr, "audio_test: building the MIDI file failed\n");
        return 1;
    }
    char err[512];
    struct audio_options bad_font = {.soundfont = "/nonexistent/none.sf2"};
    if (audio_render_midi(bytes, len, argv[1], &bad_font, NULL, err, sizeof err) != AUDIO_ESOUNDFONT ||
        !strstr(err, "none.sf2") || access(argv[1], F_OK) == 0) {
        fprintf(stderr, "audio_test: a missing soundfont was not reported (%s)\n", err);
        return 1;
    }
    if (audio_render_midi(bytes, len, "/nonexistent-dir/out.wav", NULL, NULL, err, sizeof err) != AUDIO_EIO ||
        !strstr(err, "/nonexistent-dir/out.wav")) {
        fprintf(stderr, "audio_test: an unwritable output was not reported (%s)\n", err);
        return 1;
    }
    struct audio_result res;
    if (audio_render_midi(bytes, len, argv[1], NULL, &res, err, sizeof err)) {
        fprintf(stderr, "audio_test: %s\n", err);
        return 1;
    }
    fprintf(stderr, "audio_test: %llu frames (%llu of music), peak %d\n", (unsigned long long)res.frames,
            (unsigned long long)res.music_frames, res.peak);
    printf("%.6f\n", NOTES * QUARTER_USEC / 1e6);
    free(bytes);
    midi_file_free(mf);
    return 0;
}
