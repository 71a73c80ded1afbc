/* Writes a MIDI file from a pseudo-random note list with the SMF builder alone (no parser involved) and
 * prints what the file must contain, in the format mftext_compare.py reads:
 *   header NTRKS DIVISION | name TRACK TEXT | tempo TRACK TICK USEC | timesig TRACK TICK NUM DEN
 *   keysig TRACK TICK SHARPS MINOR | program TRACK TICK CHANNEL PROGRAM | note TRACK CHANNEL PITCH ON OFF
 * Usage: midi_writer_test OUT.mid SEED TICKS_PER_QUARTER > expected.txt */
#include <stdio.h>
#include <stdlib.h>

#include "melodist/midi.h"

static uint32_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (rng_state >> 8) % n;
}

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        if ((x) < 0) {                                                                                                 \
            fprintf(stderr, "midi_writer_test: %s failed\n", #x);                                                      \
            return 1;                                                                                                  \
        }                                                                                                              \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: midi_writer_test OUT.mid SEED TICKS_PER_QUARTER\n");
        return 2;
    }
    rng_state = (uint32_t)strtoul(argv[2], NULL, 10);
    int tpq = atoi(argv[3]);
    midi_file *mf = midi_file_new(tpq);
    if (!mf)
        return 1;
    /* Out-of-range arguments are refused, not written. */
    if (midi_note(mf, 0, 0, 10, 0, 60, 80) != MIDI_EINVAL || midi_file_new(0) || midi_file_new(40000)) {
        fprintf(stderr, "midi_writer_test: an invalid call was accepted\n");
        return 1;
    }
    int ntracks = 4;
    printf("header %d %d\n", ntracks, tpq);
    CHECK(midi_add_track(mf, "Conductor"));
    printf("name 0 Conductor\n");
    uint32_t usec = 300000 + rnd(600000);
    CHECK(midi_tempo(mf, 0, 0, usec));
    printf("tempo 0 0 %u\n", usec);
    CHECK(midi_time_signature(mf, 0, 0, 6, 8, 36));
    printf("timesig 0 0 6 8\n");
    int sharps = (int)rnd(15) - 7;
    CHECK(midi_key_signature(mf, 0, 0, sharps, 1));
    printf("keysig 0 0 %d 1\n", sharps);
    for (int t = 1; t < ntracks; t++) {
        char name[32];
        snprintf(name, sizeof name, "Voice %d", t);
        CHECK(midi_add_track(mf, t == 2 ? NULL : name));
        if (t != 2)
            printf("name %d %s\n", t, name);
        int channel = t == 3 ? 15 : t - 1, program = (int)rnd(128);
        CHECK(midi_program(mf, t, 0, channel, program));
        printf("program %d 0 %d %d\n", t, channel, program);
        /* Notes in random order, with gaps, overlaps across pitches, and same-pitch notes that touch
         * (the off must come before the next on at the shared tick). Large ticks need 4-byte deltas. */
        uint32_t tick = 0;
        for (int i = 0; i < 200; i++) {
            uint32_t dur = 1 + rnd(4 * (uint32_t)tpq);
            int pitch = 30 + (int)rnd(60);
            CHECK(midi_note(mf, t, tick, dur, channel, pitch, 1 + (int)rnd(127)));
            printf("note %d %d %d %u %u\n", t, channel, pitch, tick, tick + dur);
            if (rnd(4) == 0) { /* a third pitch sounding across this note */
                int other = pitch + 1 + (int)rnd(12);
                CHECK(midi_note(mf, t, tick + dur / 2, dur, channel, other, 90));
                printf("note %d %d %d %u %u\n", t, channel, other, tick + dur / 2, tick + dur / 2 + dur);
                dur += dur / 2 + 1;
            }
            tick += dur;
            if (rnd(2)) { /* the same pitch again, touching */
                uint32_t again = 1 + rnd(100);
                CHECK(midi_note(mf, t, tick, again, channel, pitch, 64));
                printf("note %d %d %d %u %u\n", t, channel, pitch, tick, tick + again);
                tick += again;
            }
            if (rnd(10) == 0)
                tick += rnd(2000000);
        }
    }
    char err[256];
    if (midi_file_write(mf, argv[1], err, sizeof err)) {
        fprintf(stderr, "midi_writer_test: %s\n", err);
        return 1;
    }
    midi_file_free(mf);
    return 0;
}
