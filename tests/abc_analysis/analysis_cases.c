/* Hand-made cases for the analysis and the transposer, each with an answer known from music theory or
 * written by hand (never taken from our own output).
 *
 *   analysis_cases DATA_DIR   (DATA_DIR: tests/abc_analysis/data; the shared corpus is used when present) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc_analysis.h"
#include "melodist/abc_transpose.h"
#include "testutil.h"

static abc_file *parse(const char *text)
{
    abc_file *f = abc_parse(text, strlen(text));
    if (!f || f->n_tunes < 1) {
        printf("cannot parse:\n%s\n", text);
        exit(1);
    }
    return f;
}

/* Analyse the first tune of `text`. */
static void analyze(const char *text, abc_analysis *a)
{
    abc_file *f = parse(text);
    abc_model *m = abc_model_new(f, 0, NULL);
    if (!m || abc_analyze(&f->tunes[0], m, a)) {
        printf("out of memory\n");
        exit(1);
    }
    abc_model_free(m);
    abc_file_free(f);
}

static void key_case(const char *text, int ks_pc, abc_mode ks_mode, int modal_pc, abc_mode modal_mode,
                     const char *penta)
{
    abc_analysis a;
    analyze(text, &a);
    char got[16], want[16];
    abc_key_name(a.ks.tonic_pc, a.ks.mode, got, sizeof got);
    abc_key_name(ks_pc, ks_mode, want, sizeof want);
    CHECK(a.ks.tonic_pc == ks_pc && a.ks.mode == ks_mode, "Krumhansl-Schmuckler %s, want %s in\n%s", got, want, text);
    CHECK(a.key.tonic_pc == ks_pc && a.key.mode == ks_mode, "key with the final: %d:%d, want %s", a.key.tonic_pc,
          (int)a.key.mode, want);
    abc_key_name(a.modal.tonic_pc, a.modal.mode, got, sizeof got);
    abc_key_name(modal_pc, modal_mode, want, sizeof want);
    CHECK(a.modal.tonic_pc == modal_pc && a.modal.mode == modal_mode, "mode %s, want %s in\n%s", got, want, text);
    CHECK(penta ? a.modal.pentatonic && !strcmp(a.modal.penta_mode, penta) : !a.modal.pentatonic,
          "pentatonic %s, want %s", a.modal.pentatonic ? a.modal.penta_mode : "no", penta ? penta : "no");
    abc_analysis_free(&a);
}

static void test_keys(void)
{
    /* scales and tunes whose key is known by construction */
    key_case("X:1\nL:1/4\nK:C\nCDEF GABc | cGEC | G,2 C2|]\n", 0, ABC_MODE_MAJOR, 0, ABC_MODE_MAJOR, NULL);
    key_case("X:1\nL:1/4\nK:Am\nABcd efga | aec^G | A4|]\n", 9, ABC_MODE_MINOR, 9, ABC_MODE_MINOR, NULL);
    key_case("X:1\nL:1/4\nK:Bb\nB,CDE FGAB | FDB,2 | F,B,DF | B,4|]\n", 10, ABC_MODE_MAJOR, 10, ABC_MODE_MAJOR,
             NULL);
    /* D dorian: the natural notes ending on D with B natural (the dorian sixth) */
    key_case("X:1\nL:1/4\nK:Ddor\nDEFG ABcd | cBAG | FEDC | DFAB | cAFE | D4|]\n", 2, ABC_MODE_MINOR, 2,
             ABC_MODE_DORIAN, NULL);
    /* E phrygian: the natural notes ending on E */
    key_case("X:1\nL:1/4\nK:Ephr\nEFGA Bcde | dcBA | GFEF | G2F2 | E4|]\n", 4, ABC_MODE_MINOR, 4, ABC_MODE_PHRYGIAN,
             NULL);
    /* Essen habit: G minor written with K:G and explicit flats / naturals */
    key_case("X:1\nL:1/8\nK:G\nG2A2 _B2c2 | d2_B2 G2A2 | _B2A2 G2=F2 | G2_B2 d4 | c2_B2 A2=F2 | G8|]\n", 7,
             ABC_MODE_MINOR, 7, ABC_MODE_MINOR, NULL);
    /* Chinese pentatonic: G gong scale (G A B D E) ending on D: zhi mode, D mixolydian over the gong's scale */
    key_case("X:1\nL:1/8\nK:G\nd2e2 d2B2 | A2G2 A2B2 | d2B2 A2G2 | E2G2 A4 | B2d2 e2d2 | B2A2 d4|]\n", 2,
             ABC_MODE_MAJOR, 2, ABC_MODE_MIXOLYDIAN, "zhi");
    /* the yu mode of the same scale: ending on E */
    key_case("X:1\nL:1/8\nK:G\nE2G2 A2B2 | d2B2 A2G2 | E2D2 E2G2 | A2G2 E4 | G2A2 B2d2 | B2A2 E4|]\n", 4,
             ABC_MODE_MINOR, 4, ABC_MODE_MINOR, "yu");
}

static void test_counts_and_chords(void)
{
    /* pickup + 4 bars repeated, then 4 bars repeated: 9 written bars with music, 17 played */
    abc_analysis a;
    analyze("X:1\nM:4/4\nL:1/4\nQ:1/4=60\nK:G\n"
            "D|:\"G\"GABc|\"D7\"dcBA|\"G\"G\"C\"E \"G\"DG|\"Cd\"F\"D/f+\"A G:|\n"
            "|:\"(E7)\"B2B2|\"Am\"c2c2|\"Gm/bb\"dcBA|\"G\"G4:|\n",
            &a);
    CHECK(a.bars_written == 9, "bars written %zu, want 9", a.bars_written);
    CHECK(a.bars_played == 17, "bars played %zu, want 17 (pickup once, 4 bars twice, 4 bars twice)", a.bars_played);
    CHECK(a.meter.num == 4 && a.meter.den == 4, "meter %d/%d", a.meter.num, a.meter.den);
    CHECK(a.n_voices == 1, "voices %zu", a.n_voices);
    /* played: pickup 1 + A (4+4+4+3) twice less the pickup + B (4 x 4) twice = 1 + 30 + 32 = 63 quarter notes,
     * at 60 per minute */
    CHECK(fabs(a.beats - 63) < 1e-9 && fabs(a.seconds - 63) < 1e-9, "beats %g seconds %g, want 63 and 63", a.beats,
          a.seconds);
    CHECK(a.lowest == 62 && a.highest == 74, "range %d..%d, want 62 (D) .. 74 (d)", a.lowest, a.highest);
    CHECK(a.pitch_count[67] == 5, "G count %d, want 5 (written)", a.pitch_count[67]);
    CHECK(a.form && !strcmp(a.form, "AABB"), "form %s, want AABB", a.form ? a.form : "(null)");
    CHECK(a.n_sections == 4 && a.sections[0].bars == 4 && a.sections[2].bars == 4, "sections %zu, bars %d/%d",
          a.n_sections, a.n_sections ? a.sections[0].bars : -1, a.n_sections > 2 ? a.sections[2].bars : -1);
    /* chords per written bar, normalised: bar 0 is the pickup */
    const char *want[][4] = {{NULL}, {"G"}, {"D7"}, {"G", "C", "G"}, {"Cdim", "D/F#"}, {"E7"}, {"Am"},
                             {"Gm/Bb"}, {"G"}};
    CHECK(a.n_chord_bars >= 9, "chord bars %zu", a.n_chord_bars);
    for (size_t b = 0; b < 9 && b < a.n_chord_bars; b++) {
        size_t n = 0;
        while (n < 4 && want[b][n])
            n++;
        CHECK(a.chords[b].n == n, "bar %zu: %zu chords, want %zu", b, a.chords[b].n, n);
        for (size_t c = 0; c < n && c < a.chords[b].n; c++)
            CHECK(!strcmp(a.chords[b].chords[c], want[b][c]), "bar %zu chord %zu: %s, want %s", b, c,
                  a.chords[b].chords[c], want[b][c]);
    }
    abc_analysis_free(&a);

    /* written out without repeats: 16 bars, the second 8 bars differ -> AB */
    analyze("X:1\nM:2/4\nL:1/8\nK:C\nCDEF|GABc|cBAG|FEDC|CDEF|GABc|cBAG|C4|\n"
            "EEEE|FFFF|GGGG|AAAA|BBBB|cccc|dddd|c4|]\n",
            &a);
    CHECK(a.form && !strcmp(a.form, "AB"), "written-out form %s, want AB", a.form ? a.form : "(null)");
    abc_analysis_free(&a);

    char buf[64];
    const char *norm[][2] = {{"Cd", "Cdim"}, {"Fa7", "Faug7"}, {"D/f+", "D/F#"}, {"Gm/bb", "Gm/Bb"},
                             {"(E7)", "E7"}, {"Bbm7", "Bbm7"}, {"Am/c", "Am/C"}, {"N.C.", "N.C."}};
    for (size_t i = 0; i < sizeof norm / sizeof norm[0]; i++) {
        abc_chord_normalize(norm[i][0], buf, sizeof buf);
        CHECK(!strcmp(buf, norm[i][1]), "normalise %s: %s, want %s", norm[i][0], buf, norm[i][1]);
    }
}

static void test_search(void)
{
    const char *text = "X:1\nT:Search\nM:4/4\nL:1/8\nK:D\n"
                       "DEFG ABAF|GFED E4|\n"      /* bars 1-2 */
                       "A,B,CD EFEC|DEFG ABAF|\n"  /* bars 3-4: the opening phrase a fourth lower, then again */
                       "D2E2 F2G2|ABAF D4|]\n";    /* bars 5-6: same pitches, other rhythm */
    abc_file *f = parse(text);
    abc_model *m = abc_model_new(f, 0, NULL);
    abc_melody mel, phrase;
    char err[256];
    if (!m || abc_melody_of_voice(m, 0, &mel) || abc_melody_parse("CDEF GAGE", NULL, &phrase, err, sizeof err)) {
        printf("FAIL: search setup: %s\n", err);
        exit(1);
    }
    size_t starts[8];
    /* the phrase "DEFG ABAF" of D major, asked for in C major: transposition-invariant */
    size_t n = abc_melody_find(&mel, &phrase, false, starts, 8);
    CHECK(n == 4, "found %zu, want 4 (bars 1, 3, 4, 5)", n);
    int want_bars[4] = {1, 3, 4, 5};
    for (size_t i = 0; i < n && i < 4; i++)
        CHECK(mel.bar[starts[i]] == want_bars[i], "occurrence %zu in bar %d, want %d", i, mel.bar[starts[i]],
              want_bars[i]);
    n = abc_melody_find(&mel, &phrase, true, starts, 8);
    CHECK(n == 3, "with rhythm found %zu, want 3 (bar 5 has other durations)", n);
    abc_melody_free(&phrase);
    /* the same phrase read in another key (C#: c d e f are all sharp) */
    CHECK(abc_melody_parse("cdef gage", "C#", &phrase, err, sizeof err) == 0 &&
              abc_melody_find(&mel, &phrase, false, starts, 8) == 4,
          "phrase in C# not found 4 times");
    abc_melody_free(&phrase);
    CHECK(abc_melody_parse("z2 z", NULL, &phrase, err, sizeof err) != 0, "a phrase of rests is refused");
    CHECK(abc_melody_parse("G A [", NULL, &phrase, err, sizeof err) != 0, "a broken phrase is refused");
    abc_melody_free(&mel);
    abc_model_free(m);
    abc_file_free(f);
}

/* Transpose `text` by k and print it; the printed text must contain `want` and its events must be the
 * original ones moved by k. */
static void transpose_case(const char *text, int k, const char *want)
{
    abc_file *f = parse(text);
    abc_model *m0 = abc_model_new(f, 0, NULL);
    char err[256];
    CHECK(abc_transpose_tune(f, 0, k, err, sizeof err) == 0, "transpose: %s", err);
    size_t len;
    char *out = abc_fmt_tune(f, 0, &len);
    CHECK(out && strstr(out, want), "transposed by %d:\n%s\nwant to see '%s'", k, out ? out : "(null)", want);
    abc_file *g = out ? parse(out) : NULL;
    abc_model *m1 = g ? abc_model_new(g, 0, NULL) : NULL;
    bool same = m0 && m1 && m0->voices[0].n_events == m1->voices[0].n_events;
    for (size_t i = 0; same && i < m0->voices[0].n_events; i++) {
        const abc_event *a = &m0->voices[0].events[i], *b = &m1->voices[0].events[i];
        same = (a->pitch < 0 ? a->pitch : a->pitch + k) == b->pitch;
    }
    CHECK(same, "events of\n%s\nare not those of the original moved by %d", out ? out : "(null)", k);
    abc_model_free(m0);
    abc_model_free(m1);
    abc_file_free(g);
    abc_file_free(f);
    free(out);
}

static void test_transpose(void)
{
    /* diatonic notes stay plain, an explicit accidental stays explicit with the new spelling */
    transpose_case("X:1\nL:1/8\nK:D\nDEF^G A4|]\n", 2, "K:E\nEFG^A B4");
    /* the bar's carry: ^F then F in C, up a semitone to Db: the second note needs no accidental */
    transpose_case("X:1\nL:1/8\nK:C\n^F F F2 G4|F8|]\n", 1, "=G G G2 A4|G8");
    /* modes and explicit key accidentals, inline key change */
    transpose_case("X:1\nL:1/8\nK:D Phr ^f\nDEF^F G4|[K:G] GABc d4|]\n", 2, "K:E Phr ^g");
    transpose_case("X:1\nL:1/8\nK:D Phr ^f\nDEF^F G4|[K:G] GABc d4|]\n", 2, "[K:A]");
    /* K:none: pitches only, explicit accidentals */
    transpose_case("X:1\nL:1/8\nK:none\nC^CDE F^FGA|]\n", 1, "K:none");
    /* double accidentals, grace notes, chords, chord symbols */
    transpose_case("X:1\nL:1/8\nK:C\n^^C __B {^g}a [CEG]2 \"G7/b\"G4|]\n", 3, "\"Bb7/d\"");
    transpose_case("X:1\nL:1/8\nK:Am\n\"Am\"A2 \"E7/g+\"^G2 \"Dm\"d4|]\n", -2, "\"D7/f+\"");
    /* F# major versus Gb major: the direction decides */
    transpose_case("X:1\nL:1/8\nK:C\nCDEF GABc|]\n", 6, "K:F#");
    transpose_case("X:1\nL:1/8\nK:C\nCDEF GABc|]\n", -6, "K:Gb");

    char buf[64];
    abc_transpose_chord_symbol("D/f+", 2, abc_interval_steps(2), buf, sizeof buf);
    CHECK(!strcmp(buf, "E/g+"), "D/f+ +2: %s, want E/g+", buf);
    abc_transpose_chord_symbol("Bbmaj7", 2, abc_interval_steps(2), buf, sizeof buf);
    CHECK(!strcmp(buf, "Cmaj7"), "Bbmaj7 +2: %s, want Cmaj7", buf);
    abc_transpose_chord_symbol("F#m", 1, abc_interval_steps(1), buf, sizeof buf);
    CHECK(!strcmp(buf, "Gm"), "F#m +1: %s, want Gm (no double accidental)", buf);
    abc_transpose_chord_symbol("From", 2, abc_interval_steps(2), buf, sizeof buf);
    CHECK(!strcmp(buf, "From"), "text is not a chord: %s", buf);

    abc_file *f = parse("X:1\nK:Em\nE|]\n");
    int k = 0;
    char err[256];
    CHECK(abc_transpose_interval_to(&f->tunes[0], "Bm", &k, err, sizeof err) == 0 && k == -5, "Em to Bm: %d", k);
    CHECK(abc_transpose_interval_to(&f->tunes[0], "Q", &k, err, sizeof err) != 0, "bad target key accepted");
    abc_file_free(f);
}

static void rhythm_case(const char *text, const char *want)
{
    abc_analysis a;
    analyze(text, &a);
    CHECK(want ? a.rhythm_type && !strcmp(a.rhythm_type, want) : !a.rhythm_type, "rhythm type %s, want %s in\n%s",
          a.rhythm_type ? a.rhythm_type : "none", want ? want : "none", text);
    abc_analysis_free(&a);
}

/* The dance rhythms by their textbook definitions: the meter, and in common time the pairs of notes that share
 * a quarter beat (even: reel; long-short: hornpipe; with Scotch snaps: strathspey). */
static void test_rhythm_types(void)
{
    const char *even = "GABc dBAG|FGAB cAFA|GABc dBAG|FAdc BGG2|GABc dBAG|FGAB cAFA|GABc dBAG|FAdc BGG2|]\n";
    const char *dotted = "G>AB>c d>BA>G|F>GA>B c>AF>A|G>AB>c d>BA>G|F>Ad>c B2G2|]\n";
    const char *snapped = "G<AB>c d<BA>G|F>GA<B c>AF<A|G<AB>c d<BA>G|F>Ad<c B2G2|]\n";
    char tune[512];
    struct {
        const char *meter, *music, *want;
    } cases[] = {
        {"4/4", even, "reel"},           {"C|", even, "reel"},
        {"4/4", dotted, "hornpipe"},     {"4/4", snapped, "strathspey"},
        {"6/8", "GAB cBA|GAB c3|]\n", "jig"},
        {"9/8", "GAB cBA GAB|c3 c3 c3|]\n", "slip jig"},
        {"12/8", "GAB cBA GAB cBA|]\n", "slide"},
        {"3/4", "G2 A2 B2|c6|]\n", "waltz"},
        {"2/4", "GA Bc|d2 d2|]\n", "polka"},
        {"7/8", "GAB cB AG|]\n", NULL},
        {"none", "GABc dBAG|]\n", NULL},
        /* a pickup note puts every beat off the bar line in bar 0 only: the full bars still decide */
        {"4/4", "D|G>AB>c d>BA>G|F>GA>B c>AF>A|G>AB>c d>BA>G|F>Ad>c B2G2|]\n", "hornpipe"},
        /* too few split beats to call it a hornpipe */
        {"4/4", "G>A B2 c4|d8|]\n", "reel"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(tune, sizeof tune, "X:1\nM:%s\nL:1/8\nK:G\n%s", cases[i].meter, cases[i].music);
        rhythm_case(tune, cases[i].want);
    }
}

/* A Nottingham reel from the shared corpus: |: A :|: B :| with a pickup. */
static void test_corpus(const char *shared)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/nottingham/nottingham.abc", shared);
    size_t len;
    char *buf = tu_read_file(path, &len);
    if (!buf) {
        printf("note: %s not found, corpus cases skipped\n", path);
        return;
    }
    abc_file *f = abc_parse(buf, len);
    int idx = f ? abc_file_find_tune(f, 2) : -1; /* Barry's Favourite */
    CHECK(idx >= 0, "X:2 not found");
    if (idx >= 0) {
        abc_model *m = abc_model_new(f, (size_t)idx, NULL);
        abc_analysis a;
        if (m && !abc_analyze(&f->tunes[idx], m, &a)) {
            CHECK(!strcmp(a.form, "AABB"), "Barry's Favourite form %s, want AABB", a.form);
            CHECK(a.n_sections == 4 && a.sections[0].bars == 8 && a.sections[3].bars == 8,
                  "Barry's Favourite sections of 8 bars");
            abc_analysis_free(&a);
        }
        abc_model_free(m);
    }
    abc_file_free(f);
    free(buf);
}

int main(int argc, char **argv)
{
    test_keys();
    test_counts_and_chords();
    test_search();
    test_transpose();
    test_rhythm_types();
    test_corpus(argc > 1 ? argv[1] : "../shared/data");
    printf("%d checks, %d failed\n", tu_checks, tu_failures);
    return tu_failures ? 1 : 0;
}
