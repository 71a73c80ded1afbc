/* Hand-worked examples of the ABC 2.1 rules: lengths, broken rhythm, tuplets, accidentals, ties, keys,
 * chords, grace notes, repeats and endings, parts, and the validator's verdicts. Expected values are worked
 * out from the standard, not taken from the program's output. */
#include <stdio.h>
#include <string.h>

#include "melodist/abc.h"
#include "testutil.h"

/* Played notes (rests and grace notes left out) as "pitch@start+dur" in 1/96 whole notes. */
static void played(const char *abc, char *out, size_t size)
{
    abc_file *f = abc_parse(abc, strlen(abc));
    abc_model *m = abc_model_new(f, 0, NULL);
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; m && i < m->voices[0].n_played; i++) {
        const abc_event *e = &m->voices[0].played[i];
        if (e->flags & (ABC_EV_REST | ABC_EV_GRACE))
            continue;
        abc_frac s = abc_frac_mul(e->start, (abc_frac){96, 1}), d = abc_frac_mul(e->dur, (abc_frac){96, 1});
        n += (size_t)snprintf(out + n, size - n, "%s%d@%lld+%lld", n ? " " : "", e->pitch, (long long)s.num,
                              (long long)d.num);
    }
    abc_model_free(m);
    abc_file_free(f);
}

static void expect(const char *body, const char *want)
{
    char abc[512], got[2048];
    snprintf(abc, sizeof abc, "X:1\nT:t\nM:4/4\nL:1/8\nK:C\n%s\n", body);
    played(abc, got, sizeof got);
    CHECK(!strcmp(got, want), "%s\n  got  %s\n  want %s", body, got, want);
}

/* Errors of a category; the whole-file and the tune-at-a-time checks must agree. */
static size_t errors_of(const char *abc, const char *category)
{
    abc_file *f = abc_parse(abc, strlen(abc));
    abc_diags d, d2;
    abc_diags_init(&d);
    abc_diags_init(&d2);
    abc_validate_file(f, &d);
    abc_check_buffer(abc, strlen(abc), &d2, NULL);
    size_t n = 0, n2 = 0;
    for (size_t i = 0; i < d.n; i++)
        n += d.items[i].severity == ABC_ERROR && (!category || !strcmp(d.items[i].category, category));
    for (size_t i = 0; i < d2.n; i++)
        n2 += d2.items[i].severity == ABC_ERROR && (!category || !strcmp(d2.items[i].category, category));
    CHECK(n == n2, "abc_check_buffer finds %zu errors, abc_validate_file %zu", n2, n);
    abc_diags_free(&d);
    abc_diags_free(&d2);
    abc_file_free(f);
    return n;
}

int main(void)
{
    /* lengths: unit 1/8 = 12/96; C=60, c=72, C,=48, c'=84 */
    expect("C2 D/ E// F3/2 G", "60@0+24 62@24+6 64@30+3 65@33+18 67@51+12");
    expect("C, c c' ^c _B =B ^^F __E", "48@0+12 72@12+12 84@24+12 73@36+12 70@48+12 71@60+12 67@72+12 62@84+12");
    /* broken rhythm: > 3/2 + 1/2, >> 7/4 + 1/4, < reversed */
    expect("A>B c<d e>>f", "69@0+18 71@18+6 72@24+6 74@30+18 76@48+21 77@69+3");
    /* tuplets: (3 three in the time of two; (3:2:2 affects two notes */
    expect("(3CDE F", "60@0+8 62@8+8 64@16+8 65@24+12");
    expect("(3:2:2CD E", "60@0+8 62@8+8 64@16+12");
    /* accidentals last to the end of the bar, in every octave; key signature afterwards */
    expect("^F f F | F", "66@0+12 78@12+12 66@24+12 65@36+12");
    /* chords take the first note's length, times the chord's */
    expect("[CEG]2 [C2E]", "60@0+24 64@0+24 67@0+24 60@24+24 64@24+12");
    /* grace notes take no time */
    expect("{g}A B", "69@0+12 71@12+12");
    /* a tie carries the accidental over the bar line */
    expect("^F2- | F2", "66@0+24 66@24+24");
    /* repeats and endings: |: A :| B  and |: A [1 B :| [2 C | */
    expect("|: C D :| E", "60@0+12 62@12+12 60@24+12 62@36+12 64@48+12");
    expect("|: C8 | [1 D8 :| [2 E8 |]", "60@0+96 62@96+96 60@192+96 64@288+96");
    expect("|: C8 |1 D8 :|2 E8 |]", "60@0+96 62@96+96 60@192+96 64@288+96");
    /* after the last ending, a new section starts: its own endings repeat it (standard 2.1 section 4.9) */
    expect("|: C8 | [1 D8 :| [2 E8 || F8 | [1 G8 :| [2 A8 |]",
           "60@0+96 62@96+96 60@192+96 64@288+96 65@384+96 67@480+96 65@576+96 69@672+96");
    /* a :| without |: repeats from the tune start, or from the end of the previous repeat */
    expect("C8 :| D8 :|", "60@0+96 60@96+96 62@192+96 62@288+96");

    /* lyrics: hyphens split syllables, _ holds the previous syllable over a note, | moves to the next bar */
    {
        const char *abc = "X:1\nT:t\nM:4/4\nL:1/4\nK:C\nC D E F|G2 G2|\nw:Hel-lo my dear_ friend\n"
                          "A B z c|d4|\nw:one | two\n";
        const char *want[] = {"Hel", "lo", "my", "dear", "", "friend", "one", NULL, NULL, "two"};
        abc_file *f = abc_parse(abc, strlen(abc));
        abc_model *m = abc_model_new(f, 0, NULL);
        size_t k = 0;
        for (size_t i = 0; m && i < m->voices[0].n_events; i++) {
            const abc_event *e = &m->voices[0].events[i];
            if (e->flags & ABC_EV_REST)
                continue;
            const char *w = k < 10 ? want[k] : NULL;
            CHECK((!w && !e->lyric) || (w && e->lyric && !strcmp(w, e->lyric)), "lyric %zu: got '%s' want '%s'", k,
                  e->lyric ? e->lyric : "(none)", w ? w : "(none)");
            k++;
        }
        CHECK(k == 10, "lyric test saw %zu notes", k);
        abc_model_free(m);
        abc_file_free(f);
    }

    /* voices: each V: has its own time line; inline [V:] switches too; the header V: fixes the order */
    {
        const char *abc = "X:1\nT:t\nM:2/4\nL:1/8\nV:T name=Tenor\nV:B\nK:G\n[V:B] G,4 | D4 |\n[V:T] B2 d2 | [K:D] c4 |\n";
        abc_file *f = abc_parse(abc, strlen(abc));
        abc_model *m = abc_model_new(f, 0, NULL);
        CHECK(m && m->n_voices == 2, "two voices");
        if (m && m->n_voices == 2) {
            CHECK(!strcmp(m->voices[0].id, "T") && m->voices[0].name && !strcmp(m->voices[0].name, "Tenor"), "V:T name");
            CHECK(m->voices[0].n_events == 3 && m->voices[1].n_events == 2, "events per voice");
            /* c under K:D is c#: 73; B's D4 starts at 1/2 */
            CHECK(m->voices[0].n_events == 3 && m->voices[0].events[2].pitch == 73, "inline K:D gives c#");
            CHECK(m->voices[1].n_events == 2 && abc_frac_eq(m->voices[1].events[1].start, (abc_frac){1, 2}),
                  "second voice starts at 0");
        }
        abc_model_free(m);
        abc_file_free(f);
    }

    /* keys: D major has F# and C#; A dorian has F#; Bb mixolydian has three flats; explicit accidentals */
    abc_key k;
    char err[128];
    CHECK(abc_parse_key("D", &k, err, sizeof err) && k.sharps == 2 && k.sig[3] == 1 && k.sig[0] == 1, "K:D");
    CHECK(abc_parse_key("Ador", &k, err, sizeof err) && k.sharps == 1 && k.mode == ABC_MODE_DORIAN, "K:Ador");
    CHECK(abc_parse_key("Bb mix", &k, err, sizeof err) && k.sharps == -3, "K:Bb mix");
    CHECK(abc_parse_key("F#m", &k, err, sizeof err) && k.sharps == 3 && k.tonic_pc == 6, "K:F#m");
    CHECK(abc_parse_key("D ^g _b", &k, err, sizeof err) && k.sig[4] == 1 && k.sig[6] == -1 && k.sig[3] == 1,
          "K:D ^g _b");
    CHECK(abc_parse_key("none", &k, err, sizeof err) && k.none, "K:none");
    CHECK(!abc_parse_key("H", &k, err, sizeof err), "K:H is invalid");
    abc_meter m;
    CHECK(abc_parse_meter("C|", &m, err, sizeof err) && m.num == 2 && m.den == 2, "M:C|");
    CHECK(abc_parse_meter("2+3/8", &m, err, sizeof err) && m.num == 5 && m.den == 8, "M:2+3/8");
    CHECK(abc_frac_eq(abc_default_unit((abc_meter){ABC_METER_FRACTION, 2, 4}), (abc_frac){1, 16}), "L default 2/4");
    CHECK(abc_frac_eq(abc_default_unit((abc_meter){ABC_METER_FRACTION, 3, 4}), (abc_frac){1, 8}), "L default 3/4");

    /* validator */
    const char *ok = "X:1\nT:t\nM:3/4\nL:1/4\nK:G\nD|G2A|B3|]\n";
    CHECK(errors_of(ok, NULL) == 0, "pickup bar + full bars is valid");
    CHECK(errors_of("X:1\nT:t\nM:3/4\nL:1/4\nK:G\nG2A|B2|c3|]\n", "bar-length") == 1, "short middle bar");
    CHECK(errors_of("X:1\nT:t\nM:3/4\nL:1/4\nK:G\nG2A|B4|c3|]\n", "bar-length") == 1, "long bar");
    CHECK(errors_of("X:1\nT:t\nM:3/4\nL:1/4\nK:G\n(G2A|B3|]\n", "slur") == 1, "unclosed slur");
    CHECK(errors_of("X:1\nT:t\nM:3/4\nL:1/4\nK:G\nG2A-|B3|]\n", "tie") == 1, "tie to another pitch");
    CHECK(errors_of("X:1\nT:t\nM:3/4\nL:1/4\nK:G\nA/0B2|]\n", "length") == 1, "A/0");
    CHECK(errors_of("X:1\nT:t\nM:3/4\nL:1/4\nK:G\n(3AB\n", "tuplet") == 1, "incomplete tuplet");
    CHECK(errors_of("X:1\nT:t\nM:3/4\nG2A|]\n", "header") == 1, "missing K:");
    CHECK(errors_of("T:t\nX:1\nM:3/4\nK:C\nG2A|]\n", "header") == 1, "X: not first");
    CHECK(errors_of("M:3/4\n\nX:1\nT:t\nK:C\nG2A|]\n", "header") == 0, "file header then X:");
    CHECK(errors_of("X:1\nT:t\nM:3/4\nL:1/4\nK:G\n{}G3|]\n", "grace") == 1, "empty grace group");

    /* positions: the second line of the body, column 2 */
    const char *pos = "X:1\nT:t\nK:C\nCD\nC#D\n";
    abc_file *f = abc_parse(pos, strlen(pos));
    CHECK(f->diags.n == 1 && f->diags.items[0].line == 5 && f->diags.items[0].col == 2, "position of '#'");
    abc_file_free(f);

    if (tu_failures)
        fprintf(stderr, "%d failure(s)\n", tu_failures);
    else
        printf("all ABC rule examples pass\n");
    return tu_failures ? 1 : 0;
}
