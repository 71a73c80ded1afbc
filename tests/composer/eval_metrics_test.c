/* The evaluation measures on hand-made cases: a wrong bar is counted wrong, a copied tune is flagged (whatever its
 * layout and title), the n-gram is a distribution, histogram distances span 0..1. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "melodist/eval.h"
#include "testutil.h"

static const char good[] = "X:1\nT:Good\nR:Jig\nM:6/8\nL:1/8\nK:D\nDFA dAF|GBd cBA|DFA dAF|E3 D3|]\n";
/* bar 2 has seven eighths in 6/8, bar 3 five: both wrong, the last bar may be short */
static const char wrong[] = "X:1\nT:Wrong\nM:6/8\nL:1/8\nK:D\nDFA dAF|GBd cBAG|DFA dA|E3 D2|]\n";

static const char training[] =
    "X:1\nT:One\nM:4/4\nL:1/8\nK:G\nGABc dBGB|c2ec B2dB|cBAG FGAF|G4 G4|]\n\n"
    "X:2\nT:Two\nM:3/4\nL:1/4\nK:C\nCEG|cGE|FAc|B2G|c3|]\n";
/* tune One again: another title, X:, beaming and line breaks, chord symbols */
static const char copy[] = "X:7\nT:Not One\nM:4/4\nL:1/8\nK:G\n\"G\"G A B c d B G B|\nc2 e c B2 d B|"
                           "\"D\"c B A G F G A F|\"G\"G4 G4|]\n";
static const char fresh[] = "X:8\nT:New\nM:4/4\nL:1/8\nK:G\nGABc dBGB|d2B2 A4|BAGF E2D2|G8|]\n";

int main(void)
{
    struct eval_tune t;
    CHECK(!eval_tune_check(good, strlen(good), &t), "check good");
    CHECK(t.valid && t.bars == 4 && t.bars_bad == 0, "good tune: valid %d bars %d bad %d", t.valid, t.bars,
          t.bars_bad);
    CHECK(!strcmp(t.key, "D") && !strcmp(t.meter, "6/8") && !strcmp(t.rhythm, "Jig"), "fields %s %s %s", t.key,
          t.meter, t.rhythm);
    CHECK(!eval_tune_check(wrong, strlen(wrong), &t), "check wrong");
    CHECK(!t.valid && t.bars == 4 && t.bars_bad == 2, "wrong tune: valid %d bars %d bad %d", t.valid, t.bars,
          t.bars_bad);
    CHECK(!eval_tune_check("no tune here\n", 13, &t) && !t.parsed && !t.valid, "text without a tune");

    struct eval_novelty *nv = eval_novelty_new(16);
    CHECK(nv && !eval_novelty_add(nv, training, strlen(training)), "index");
    eval_novelty_seal(nv);
    int bars;
    int run = eval_novelty_longest(nv, copy, strlen(copy), &bars);
    CHECK(run == 4 && bars == 4, "copied tune: longest run %d of %d bars (want the whole tune)", run, bars);
    run = eval_novelty_longest(nv, fresh, strlen(fresh), &bars);
    CHECK(run == 1 && bars == 4, "new tune sharing one bar: longest run %d of %d bars", run, bars);
    eval_novelty_free(nv);

    /* n-gram: a distribution over the vocabulary; a continuation seen in training is likelier than one not seen */
    enum { V = 16 };
    int doc[] = {1, 5, 6, 7, 5, 6, 7, 5, 6, 8, 2};
    struct eval_ngram *g = eval_ngram_new(3, V);
    CHECK(g && !eval_ngram_add(g, doc, sizeof doc / sizeof doc[0]), "ngram add");
    int hist[] = {1, 5, 6};
    for (size_t n = 0; n <= 3; n++) {
        double sum = 0;
        for (int w = 0; w < V; w++)
            sum += eval_ngram_prob(g, hist, n, w);
        CHECK(fabs(sum - 1) < 1e-9, "probabilities after %zu tokens sum to %.12f", n, sum);
    }
    CHECK(eval_ngram_prob(g, hist, 3, 7) > 0.5, "P(7 | 5 6) = %f", eval_ngram_prob(g, hist, 3, 7));
    CHECK(eval_ngram_prob(g, hist, 3, 3) < eval_ngram_prob(g, hist, 3, 8), "unseen below seen");
    eval_ngram_free(g);

    double a[3] = {1, 1, 0}, b[3] = {2, 2, 0}, c[3] = {0, 0, 5};
    CHECK(eval_tv_distance(a, b, 3) < 1e-12, "same shape: %f", eval_tv_distance(a, b, 3));
    CHECK(fabs(eval_tv_distance(a, c, 3) - 1) < 1e-12, "disjoint: %f", eval_tv_distance(a, c, 3));
    double pc[12] = {0}, iv[EVAL_INTERVALS] = {0};
    int notes = eval_histograms(good, strlen(good), pc, iv);
    /* D F# A d A F# | G B d c# B A | D F# A d A F# | E D: tonic D (degree 0); +3 = F#-A twice, B-d once */
    CHECK(notes == 20 && pc[0] == 6 && pc[7] == 5 && iv[12 + 3] == 3, "histograms: %d notes, D %g A %g +3 %g",
          notes, pc[0], pc[7], iv[15]);

    if (tu_failures)
        return 1;
    printf("eval measures: all checks passed\n");
    return 0;
}
