/* Chord symbols ("Am7", "D/f#", "Bbmaj7", Nottingham's "Cd"/"Ca") as pitch classes for the accompaniment. */
#include <ctype.h>
#include <string.h>

#include "melodist/midi.h"

/* Qualities by their spelling after the root; the first prefix that matches wins, so longer spellings
 * come before their own prefixes ("maj7" before "m", "m7b5" before "m7"). Extensions (9, 11, 13, b9)
 * are played as the seventh chord they extend. */
static const struct quality {
    const char *spelling;
    int n, intervals[4];
} qualities[] = {
    {"maj7", 4, {0, 4, 7, 11}}, {"maj9", 4, {0, 4, 7, 11}}, {"maj", 3, {0, 4, 7}},  {"M7", 4, {0, 4, 7, 11}},
    {"m7b5", 4, {0, 3, 6, 10}}, {"dim7", 4, {0, 3, 6, 9}},  {"dim", 3, {0, 3, 6}},  {"aug7", 4, {0, 4, 8, 10}},
    {"aug", 3, {0, 4, 8}},      {"add", 3, {0, 4, 7}},      {"sus2", 3, {0, 2, 7}},     {"sus4", 3, {0, 5, 7}}, {"sus", 3, {0, 5, 7}},
    {"min7", 4, {0, 3, 7, 10}}, {"min", 3, {0, 3, 7}},      {"m6", 4, {0, 3, 7, 9}}, {"m7", 4, {0, 3, 7, 10}},
    {"m9", 4, {0, 3, 7, 10}},   {"m11", 4, {0, 3, 7, 10}},  {"m", 3, {0, 3, 7}},    {"-7", 4, {0, 3, 7, 10}},
    {"-", 3, {0, 3, 7}},        {"o7", 4, {0, 3, 6, 9}},    {"o", 3, {0, 3, 6}},    {"+7", 4, {0, 4, 8, 10}},
    {"+", 3, {0, 4, 8}},        {"a7", 4, {0, 4, 8, 10}},   {"a", 3, {0, 4, 8}},    {"d7", 4, {0, 3, 6, 9}},
    {"d", 3, {0, 3, 6}},        {"6", 4, {0, 4, 7, 9}},     {"7", 4, {0, 4, 7, 10}}, {"9", 4, {0, 4, 7, 10}},
    {"11", 4, {0, 4, 7, 10}},   {"13", 4, {0, 4, 7, 10}},   {"", 3, {0, 4, 7}},
};

static const int letter_pc[7] = {9, 11, 0, 2, 4, 5, 7}; /* A B C D E F G */

/* A note name (letter, either case, then # or b; `plus_sharp`: also Nottingham's + for sharp, which after
 * a root would mean augmented); returns the characters read. */
static int read_pitch_class(const char *s, bool plus_sharp, int *pc)
{
    int c = toupper((unsigned char)s[0]);
    if (c < 'A' || c > 'G')
        return 0;
    int n = 1;
    *pc = letter_pc[c - 'A'];
    for (; s[n] == '#' || (plus_sharp && s[n] == '+') || s[n] == 'b'; n++)
        *pc += s[n] == 'b' ? -1 : 1;
    *pc = ((*pc % 12) + 12) % 12;
    return n;
}

bool midi_chord_parse(const char *symbol, struct midi_chord *out)
{
    const char *s = symbol;
    while (*s == '(' || *s == ' ')
        s++;
    if (*s < 'A' || *s > 'G')
        return false;
    int root;
    s += read_pitch_class(s, false, &root);
    const struct quality *q = &qualities[sizeof qualities / sizeof qualities[0] - 1];
    for (size_t i = 0; i < sizeof qualities / sizeof qualities[0]; i++)
        if (!strncmp(s, qualities[i].spelling, strlen(qualities[i].spelling))) {
            q = &qualities[i];
            break;
        }
    out->root = root;
    out->bass = root;
    out->n = q->n;
    memcpy(out->intervals, q->intervals, sizeof out->intervals);
    const char *slash = strchr(s, '/');
    int bass;
    if (slash && read_pitch_class(slash + 1, true, &bass))
        out->bass = bass;
    return true;
}
