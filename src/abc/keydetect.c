/* Key and mode detection on pitch-class profiles (the method is described in melodist/abc_analysis.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "melodist/abc_analysis.h"

/* Krumhansl & Kessler (1982) probe-tone ratings, tonic first. */
static const double kk_major[12] = {6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
static const double kk_minor[12] = {6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17};

/* Added to the correlation of keys whose tonic is the final note (tunes end on their tonic). On the shared
 * corpus any value from 0.1 to 0.3 raises the agreement with the declared keys; 0.2 is the middle. */
#define FINAL_BONUS 0.2

static const int major_steps[7] = {0, 2, 4, 5, 7, 9, 11};
/* The mode on each degree of the major scale, and the modes in order of preference for ties. */
static const abc_mode degree_mode[7] = {ABC_MODE_MAJOR,  ABC_MODE_DORIAN, ABC_MODE_PHRYGIAN, ABC_MODE_LYDIAN,
                                        ABC_MODE_MIXOLYDIAN, ABC_MODE_MINOR, ABC_MODE_LOCRIAN};
static const int mode_preference[7] = {0, 1, 2, 3, 5, 4, 6}; /* indexed by abc_mode: lower is preferred */
/* Sharps of a mode's key signature relative to the major key on the same tonic, by abc_mode. */
static const int mode_sharps[7] = {0, -3, -1, -2, -4, 1, -5};

static double pearson(const double *x, const double *y, int rot)
{
    double mx = 0, my = 0;
    for (int i = 0; i < 12; i++) {
        mx += x[(i + rot) % 12];
        my += y[i];
    }
    mx /= 12;
    my /= 12;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < 12; i++) {
        double dx = x[(i + rot) % 12] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
}

static double total(const double p[12])
{
    double t = 0;
    for (int i = 0; i < 12; i++)
        t += p[i];
    return t;
}

bool abc_detect_key(const double profile[12], int final_pc, abc_key_estimate *out)
{
    *out = (abc_key_estimate){0};
    if (total(profile) <= 0)
        return false;
    out->score = -2;
    for (int tonic = 0; tonic < 12; tonic++)
        for (int minor = 0; minor < 2; minor++) {
            double r = pearson(profile, minor ? kk_minor : kk_major, tonic) + (tonic == final_pc ? FINAL_BONUS : 0);
            if (r > out->score) {
                out->score = r;
                out->tonic_pc = tonic;
                out->mode = minor ? ABC_MODE_MINOR : ABC_MODE_MAJOR;
            }
        }
    return true;
}

bool abc_detect_key_ks(const double profile[12], abc_key_estimate *out)
{
    return abc_detect_key(profile, -1, out);
}

static double scale_weight(const double p[12], int root, const int *steps, int n)
{
    double w = 0;
    for (int i = 0; i < n; i++)
        w += p[(root + steps[i]) % 12];
    return w;
}

/* Degree (0..6) of pitch class pc in the major scale on root, or -1. */
static int degree_of(int root, int pc)
{
    for (int j = 0; j < 7; j++)
        if ((root + major_steps[j]) % 12 == pc)
            return j;
    return -1;
}

static void detect_pentatonic(const double p[12], double sum, int final_pc, abc_key_estimate *out)
{
    static const int penta[5] = {0, 2, 4, 7, 9};
    static const char *names[5] = {"gong", "shang", "jue", "zhi", "yu"};
    int best = -1;
    double best_w = 0;
    for (int r = 0; r < 12; r++) {
        bool all_present = true;
        for (int i = 0; i < 5; i++)
            all_present &= p[(r + penta[i]) % 12] > 0;
        double w = scale_weight(p, r, penta, 5);
        if (all_present && w >= 0.97 * sum && w > best_w) {
            best = r;
            best_w = w;
        }
    }
    for (int i = 0; best >= 0 && i < 5; i++)
        if ((best + penta[i]) % 12 == final_pc) {
            /* the scale is the pentatonic's own major completion: the mode of the final over the gong */
            out->pentatonic = true;
            out->penta_mode = names[i];
            out->tonic_pc = final_pc;
            out->mode = degree_mode[degree_of(best, final_pc)];
        }
}

bool abc_detect_mode(const double profile[12], int final_pc, abc_key_estimate *out)
{
    *out = (abc_key_estimate){0};
    double sum = total(profile);
    if (sum <= 0)
        return false;
    double fit[12], best = 0;
    for (int root = 0; root < 12; root++) {
        fit[root] = scale_weight(profile, root, major_steps, 7) / sum;
        if (fit[root] > best)
            best = fit[root];
    }
    abc_key_estimate ks;
    abc_detect_key_ks(profile, &ks);
    /* the final decides the tonic; without a usable final, the Krumhansl-Schmuckler tonic does */
    int tonic = ks.tonic_pc;
    for (int root = 0; root < 12; root++)
        if (fit[root] >= best - 0.01 && final_pc >= 0 && degree_of(root, final_pc) >= 0)
            tonic = final_pc;
    int chosen = -1;
    for (int root = 0; root < 12; root++) {
        int deg = degree_of(root, tonic);
        if (fit[root] < best - 0.01 || deg < 0)
            continue;
        if (chosen < 0 || mode_preference[degree_mode[deg]] < mode_preference[out->mode]) {
            chosen = root;
            out->mode = degree_mode[deg];
            out->score = fit[root];
        }
    }
    if (chosen < 0) { /* the tonic lies outside every best-fitting scale: its own major scale */
        out->mode = ABC_MODE_MAJOR;
        out->score = fit[tonic];
    }
    out->tonic_pc = tonic;
    detect_pentatonic(profile, sum, final_pc, out);
    return true;
}

const char *abc_mode_suffix(abc_mode mode)
{
    static const char *s[7] = {"", "m", "mix", "dor", "phr", "lyd", "loc"};
    return (unsigned)mode < 7 ? s[mode] : "";
}

void abc_key_name(int tonic_pc, abc_mode mode, char *buf, size_t size)
{
    static const char letters[] = "CDEFGAB";
    static const int letter_pc[7] = {0, 2, 4, 5, 7, 9, 11};
    static const int letter_fifths[7] = {0, 2, 4, -1, 1, 3, 5};
    int best_letter = 0, best_acc = 0, best_sharps = 99;
    for (int l = 0; l < 7; l++)
        for (int acc = -1; acc <= 1; acc++) {
            if ((letter_pc[l] + acc + 12) % 12 != tonic_pc % 12)
                continue;
            int sharps = letter_fifths[l] + 7 * acc + mode_sharps[(unsigned)mode < 7 ? mode : 0];
            if (abs(sharps) < abs(best_sharps) || (abs(sharps) == abs(best_sharps) && sharps > best_sharps)) {
                best_sharps = sharps;
                best_letter = l;
                best_acc = acc;
            }
        }
    snprintf(buf, size, "%c%s%s", letters[best_letter], best_acc > 0 ? "#" : best_acc < 0 ? "b" : "",
             abc_mode_suffix(mode));
}
