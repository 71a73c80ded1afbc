/* MIDI to WAV through FluidSynth (see include/melodist/audio.h). */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fluidsynth.h>

#include "melodist/audio.h"

#define BLOCK_FRAMES 1024
#define WAV_HEADER_BYTES 44
#define SILENCE_LEVEL 8          /* |sample| at or below this counts as silence (FluidSynth dithers) */
#define GAIN 0.6                 /* FluidSynth's default 0.2 leaves a single voice near -24 dBFS */
#define SILENCE_SECONDS 0.1

/* FluidSynth is loaded on first use, not linked: it brings PulseAudio, JACK, SDL2 and X11 along, and loading
 * those cost every melodist command (abc check included) milliseconds of start-up. fluidsynth.h still gives
 * the types and the constants; `fl` holds the functions. */
#define FLUIDSYNTH_SONAME "libfluidsynth.so.3" /* FluidSynth 2.2 and later (Debian: libfluidsynth3) */
#define FLUID_FUNCTIONS(X)                                                                                          \
    X(fluid_set_log_function) X(new_fluid_settings) X(delete_fluid_settings) X(fluid_settings_setnum)               \
    X(fluid_settings_setstr) X(fluid_settings_setint) X(new_fluid_synth) X(delete_fluid_synth)                      \
    X(fluid_synth_sfload) X(fluid_synth_write_s16) X(new_fluid_player) X(delete_fluid_player)                       \
    X(fluid_player_add_mem) X(fluid_player_play) X(fluid_player_get_status) X(fluid_player_get_total_ticks)         \
    X(fluid_player_get_current_tick)

static struct {
#define FLUID_POINTER(name) __typeof__(&name) name;
    FLUID_FUNCTIONS(FLUID_POINTER)
#undef FLUID_POINTER
} fl;
static bool fl_loaded;
static char fl_load_error[512];
static pthread_once_t fl_once = PTHREAD_ONCE_INIT;

static void load_fluidsynth(void)
{
    void *lib = dlopen(FLUIDSYNTH_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(fl_load_error, sizeof fl_load_error, "cannot load FluidSynth: %s (install libfluidsynth3)",
                 dlerror());
        return;
    }
#define FLUID_LOOKUP(name)                                                                                          \
    if (!(fl.name = (__typeof__(fl.name))dlsym(lib, #name))) {                                                      \
        snprintf(fl_load_error, sizeof fl_load_error, "%s has no %s (FluidSynth 2.2 or later needed)",             \
                 FLUIDSYNTH_SONAME, #name);                                                                         \
        dlclose(lib);                                                                                               \
        return;                                                                                                     \
    }
    FLUID_FUNCTIONS(FLUID_LOOKUP)
#undef FLUID_LOOKUP
    fl_loaded = true;
}

/* FluidSynth reports through a process-wide log hook; keep its last error for our message. */
static _Thread_local char fluid_last_error[256];

static void keep_fluid_error(int level, const char *message, void *data)
{
    (void)data;
    if (level <= FLUID_ERR)
        snprintf(fluid_last_error, sizeof fluid_last_error, "%s", message);
}

static void silence_fluid_log(void)
{
    fl.fluid_set_log_function(FLUID_PANIC, keep_fluid_error, NULL);
    fl.fluid_set_log_function(FLUID_ERR, keep_fluid_error, NULL);
    fl.fluid_set_log_function(FLUID_WARN, NULL, NULL);
    fl.fluid_set_log_function(FLUID_INFO, NULL, NULL);
    fl.fluid_set_log_function(FLUID_DBG, NULL, NULL);
}

static void put_le(unsigned char *p, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void wav_header(unsigned char *h, uint32_t sample_rate, uint64_t frames)
{
    uint32_t data_bytes = (uint32_t)(frames * 4);
    memcpy(h, "RIFF", 4);
    put_le(h + 4, 36 + data_bytes, 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le(h + 16, 16, 4);              /* fmt chunk size */
    put_le(h + 20, 1, 2);               /* PCM */
    put_le(h + 22, 2, 2);               /* channels */
    put_le(h + 24, sample_rate, 4);
    put_le(h + 28, sample_rate * 4, 4); /* byte rate */
    put_le(h + 32, 4, 2);               /* block align */
    put_le(h + 34, 16, 2);              /* bits per sample */
    memcpy(h + 36, "data", 4);
    put_le(h + 40, data_bytes, 4);
}

/* The synthesiser set up with the soundfont loaded and the MIDI queued; NULLs and an error code on failure. */
struct renderer {
    fluid_settings_t *settings;
    fluid_synth_t *synth;
    fluid_player_t *player;
};

static void renderer_free(struct renderer *r)
{
    if (r->player)
        fl.delete_fluid_player(r->player);
    if (r->synth)
        fl.delete_fluid_synth(r->synth);
    if (r->settings)
        fl.delete_fluid_settings(r->settings);
}

static int renderer_init(struct renderer *r, const unsigned char *midi, size_t len, const char *soundfont,
                         int sample_rate, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    fluid_last_error[0] = 0;
    r->settings = fl.new_fluid_settings();
    if (!r->settings)
        goto synth_failed;
    fl.fluid_settings_setnum(r->settings, "synth.sample-rate", sample_rate);
    /* Offline rendering: the player advances with the samples synthesised, not with the wall clock. */
    fl.fluid_settings_setstr(r->settings, "player.timing-source", "sample");
    fl.fluid_settings_setint(r->settings, "synth.lock-memory", 0);
    fl.fluid_settings_setnum(r->settings, "synth.gain", GAIN);
    r->synth = fl.new_fluid_synth(r->settings);
    if (!r->synth)
        goto synth_failed;
    if (fl.fluid_synth_sfload(r->synth, soundfont, 1) == FLUID_FAILED) {
        snprintf(err, errlen, "cannot load soundfont %s%s%s (install fluid-soundfont-gm or pass another .sf2)",
                 soundfont, fluid_last_error[0] ? ": " : "", fluid_last_error);
        return AUDIO_ESOUNDFONT;
    }
    r->player = fl.new_fluid_player(r->synth);
    if (!r->player)
        goto synth_failed;
    if (fl.fluid_player_add_mem(r->player, midi, len) != FLUID_OK || fl.fluid_player_play(r->player) != FLUID_OK) {
        snprintf(err, errlen, "FluidSynth rejected the MIDI data%s%s", fluid_last_error[0] ? ": " : "",
                 fluid_last_error);
        return AUDIO_EMIDI;
    }
    return AUDIO_OK;
synth_failed:
    snprintf(err, errlen, "cannot set up FluidSynth%s%s", fluid_last_error[0] ? ": " : "", fluid_last_error);
    return AUDIO_ESYNTH;
}

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

/* Synthesises into the open file: the music until the player is done, then the tail until silence. */
static int render_frames(struct renderer *r, FILE *f, int sample_rate, double tail_max, double max_seconds,
                         struct audio_result *res, char *err, size_t errlen)
{
    int16_t block[2 * BLOCK_FRAMES];
    uint64_t max_frames = (uint64_t)(max_seconds * sample_rate);
    uint64_t tail_frames = (uint64_t)(tail_max * sample_rate), silence_needed = (uint64_t)(SILENCE_SECONDS * sample_rate);
    uint64_t tail = 0, silent = 0;
    int playing = 1;
    while (playing || (tail < tail_frames && silent < silence_needed)) {
        if (res->frames >= max_frames) {
            snprintf(err, errlen, "the music lasts more than %.0f s; refusing to render it", max_seconds);
            return AUDIO_ETOOLONG;
        }
        if (fl.fluid_synth_write_s16(r->synth, BLOCK_FRAMES, block, 0, 2, block, 1, 2) != FLUID_OK) {
            snprintf(err, errlen, "FluidSynth failed while rendering");
            return AUDIO_ESYNTH;
        }
        int block_peak = 0;
        for (int i = 0; i < 2 * BLOCK_FRAMES; i++) {
            int a = block[i] < 0 ? -block[i] : block[i];
            if (a > block_peak)
                block_peak = a;
        }
        if (block_peak > res->peak)
            res->peak = block_peak;
        if (write_all(f, block, sizeof block))
            return AUDIO_EIO;
        res->frames += BLOCK_FRAMES;
        if (playing) {
            /* The player reports "playing" until the last voice has faded; the music ends at its last tick. */
            int total = fl.fluid_player_get_total_ticks(r->player);
            playing = fl.fluid_player_get_status(r->player) == FLUID_PLAYER_PLAYING &&
                      (total <= 0 || fl.fluid_player_get_current_tick(r->player) < total);
            res->music_frames = res->frames;
        } else {
            tail += BLOCK_FRAMES;
            silent = block_peak <= SILENCE_LEVEL ? silent + BLOCK_FRAMES : 0;
        }
    }
    return AUDIO_OK;
}

int audio_render_midi(const unsigned char *midi, size_t len, const char *wav_path, const struct audio_options *opts,
                      struct audio_result *result, char *err, size_t errlen)
{
    struct audio_options o = opts ? *opts : (struct audio_options){0};
    const char *soundfont = o.soundfont ? o.soundfont : AUDIO_DEFAULT_SOUNDFONT;
    int sample_rate = o.sample_rate > 0 ? o.sample_rate : AUDIO_DEFAULT_SAMPLE_RATE;
    double tail_max = o.tail_max_seconds > 0 ? o.tail_max_seconds : 2.0;
    double max_seconds = o.max_seconds > 0 ? o.max_seconds : 7200.0;
    struct audio_result res = {0};
    if (access(soundfont, R_OK)) {
        snprintf(err, errlen, "soundfont %s: %s (install fluid-soundfont-gm or pass another .sf2)", soundfont,
                 strerror(errno));
        return AUDIO_ESOUNDFONT;
    }
    pthread_once(&fl_once, load_fluidsynth);
    if (!fl_loaded) {
        snprintf(err, errlen, "%s", fl_load_error);
        return AUDIO_ESYNTH;
    }
    silence_fluid_log();
    struct renderer r;
    int rc = renderer_init(&r, midi, len, soundfont, sample_rate, err, errlen);
    if (rc) {
        renderer_free(&r);
        return rc;
    }

    size_t tmp_len = strlen(wav_path) + sizeof ".tmpXXXXXX";
    char *tmp = malloc(tmp_len);
    if (!tmp) {
        renderer_free(&r);
        snprintf(err, errlen, "out of memory");
        return AUDIO_ENOMEM;
    }
    snprintf(tmp, tmp_len, "%s.tmpXXXXXX", wav_path);
    int fd = mkstemp(tmp);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot create a temporary file next to %s: %s (is the directory writable?)", wav_path,
                 strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        renderer_free(&r);
        return AUDIO_EIO;
    }
    unsigned char header[WAV_HEADER_BYTES] = {0};
    rc = write_all(f, header, sizeof header) ? AUDIO_EIO
                                             : render_frames(&r, f, sample_rate, tail_max, max_seconds, &res, err, errlen);
    renderer_free(&r);
    if (!rc) {
        wav_header(header, (uint32_t)sample_rate, res.frames);
        if (fseek(f, 0, SEEK_SET) || write_all(f, header, sizeof header) || fchmod(fd, 0644))
            rc = AUDIO_EIO;
    }
    if (fclose(f) && !rc)
        rc = AUDIO_EIO;
    if (!rc && rename(tmp, wav_path))
        rc = AUDIO_EIO;
    if (rc == AUDIO_EIO)
        snprintf(err, errlen, "cannot write %s: %s", wav_path, strerror(errno));
    if (rc)
        unlink(tmp);
    free(tmp);
    if (result)
        *result = res;
    return rc;
}
