/* Audio rendering: a Standard MIDI File played through FluidSynth with a General MIDI soundfont into a
 * 16-bit stereo PCM WAV file (44.1 kHz by default), written atomically (temporary file + rename).
 *
 * Rendering is offline (no audio device): the file is synthesised as fast as the CPU allows. After the
 * last MIDI event the synthesiser keeps running until its output has been silent for 0.1 s (the release
 * and reverb tail), at most tail_max_seconds. Errors are returned with a message; nothing is printed. */
#ifndef MELODIST_AUDIO_H
#define MELODIST_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#define AUDIO_DEFAULT_SOUNDFONT "/usr/share/sounds/sf2/FluidR3_GM.sf2"
#define AUDIO_DEFAULT_SAMPLE_RATE 44100

enum {
    AUDIO_OK = 0,
    AUDIO_ENOMEM = -1,
    AUDIO_ESOUNDFONT = -2, /* soundfont missing or unreadable */
    AUDIO_EMIDI = -3,      /* the MIDI data was rejected by the player */
    AUDIO_EIO = -4,        /* the WAV file could not be written */
    AUDIO_ESYNTH = -5,     /* FluidSynth could not be set up */
    AUDIO_ETOOLONG = -6,   /* the music lasts longer than max_seconds */
};

struct audio_options {
    const char *soundfont;   /* NULL: AUDIO_DEFAULT_SOUNDFONT */
    int sample_rate;         /* 0: AUDIO_DEFAULT_SAMPLE_RATE */
    double tail_max_seconds; /* 0: 2 s */
    double max_seconds;      /* refuse longer renderings; 0: 2 hours */
};

struct audio_result {
    uint64_t frames;      /* stereo sample frames written */
    uint64_t music_frames; /* of which before the tail, up to the last MIDI event */
    int peak;             /* largest absolute sample value */
};

/* Renders the SMF in `midi` (len bytes) to the WAV file `wav_path`. `opts` and `result` may be NULL. */
int audio_render_midi(const unsigned char *midi, size_t len, const char *wav_path, const struct audio_options *opts,
                      struct audio_result *result, char *err, size_t errlen);

#endif
