/* SFT rows: packing (every sample appears once, whole and contiguous, in the concatenated rows, which hold
 * exactly floor(total / max_length) rows; only the final remainder is dropped), unpacked rows (sample i in row
 * i, padded with 0 and unscored), the shift to next-token targets, the task filter, the system override and a
 * multi-turn record (both outputs scored, the second turn without BOS), an InternLM2 agent record.
 *   sft_pack_test TOKENIZER WORK_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/finetune.h"
#include "testutil.h"

static int occurrences(const struct sft_rows *r, size_t total, const struct sft_set *s, size_t i)
{
    size_t a = s->start[i], n = s->start[i + 1] - a;
    int count = 0;
    for (size_t at = 0; at + n <= total; at++)
        count += !memcmp(r->ids + at, s->ids + a, sizeof(int32_t) * n) && !memcmp(r->scored + at, s->scored + a, n);
    return count;
}

/* An InternLM2 agent conversation (plugin schema, attached file, question, call, result, answer): every
 * message in the template in its place, only the two assistant replies scored, no user part after the result. */
static void check_agent_record(const mt_tokenizer *tok, const char *dir)
{
    char path[4200], err[512];
    snprintf(path, sizeof path, "%s/sft_agent.jsonl", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"messages\": [{\"role\": \"system name=<|plugin|>\", \"content\": \"P\"}, {\"role\": \"user name=file\", "
          "\"content\": \"F\"}, {\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": "
          "\"<|action_start|><|plugin|>\\nC<|action_end|>\"}, {\"role\": \"environment name=<|plugin|>\", \"content\": "
          "\"R\"}, {\"role\": \"assistant\", \"content\": \"A\"}]}\n", f);
    fclose(f);
    struct sft_set s;
    if (sft_load(path, tok, "", NULL, 512, &s, err, sizeof err)) {
        CHECK(0, "agent record: %s", err);
        return;
    }
    int32_t *scored = malloc(sizeof *scored * s.n);
    size_t n_scored = 0;
    for (size_t t = 0; t < s.n; t++)
        if (s.scored[t])
            scored[n_scored++] = s.ids[t];
    size_t len;
    char *all = tok_decode(tok, s.ids + 1, s.n - 1, TOK_SPECIAL_NAMES, &len, err, sizeof err);
    char *replies = tok_decode(tok, scored, n_scored, TOK_SPECIAL_NAMES, &len, err, sizeof err);
    const char *want = "<|im_start|>system name=<|plugin|>\nP<|im_end|>\n<|im_start|>user name=file\nF<|im_end|>\n"
                       "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<|action_start|><|plugin|>\nC"
                       "<|action_end|><|im_end|>\n<|im_start|>environment name=<|plugin|>\nR<|im_end|>\n"
                       "<|im_start|>assistant\nA<|im_end|>\n";
    CHECK(all && !strcmp(all, want), "agent record decodes to\n%s", all ? all : err);
    CHECK(replies && !strcmp(replies, "<|action_start|><|plugin|>\nC<|action_end|><|im_end|>A<|im_end|>"),
          "scored: %s", replies ? replies : err);
    free(all), free(replies), free(scored);
    sft_free(&s);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sft_pack_test TOKENIZER WORK_DIR\n");
        return 2;
    }
    char err[512], path[4200];
    mt_tokenizer *tok = tok_load(argv[1], err, sizeof err);
    if (!tok) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/sft_pack.jsonl", argv[2]);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 23; i++)
        fprintf(f, "{\"conversation\": [{\"system\": \"S\", \"input\": \"tune %d?\", \"output\": \"X:%d\\nK:%c\\n%.*s\"}], "
                   "\"task\": \"%s\"}\n", i, i, "CDEFGAB"[i % 7], i % 9 + 1, "abcdefgabc", i % 4 ? "a" : "b");
    fprintf(f, "{\"messages\": [{\"role\": \"user\", \"content\": \"one\"}, {\"role\": \"assistant\", \"content\": "
               "\"A1\"}, {\"role\": \"user\", \"content\": \"two\"}, {\"role\": \"assistant\", \"content\": \"B2\"}], "
               "\"task\": \"a\"}\n");
    fclose(f);

    struct sft_set all, a, none;
    struct sft_rows packed, single;
    int bos = tok_bos_id(tok);
    if (sft_load(path, tok, "", NULL, 64, &all, err, sizeof err) || sft_load(path, tok, "a", "", 64, &a, err, sizeof err) ||
        sft_load(path, tok, "", "", 64, &none, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    CHECK(all.n_samples == 24 && a.n_samples == 18, "task filter: %zu and %zu samples", all.n_samples, a.n_samples);
    CHECK(none.n < all.n, "the system override \"\" shortens the samples");
    for (size_t i = 0; i < all.n_samples; i++)
        CHECK(all.ids[all.start[i]] == bos && !all.scored[all.start[i]], "sample %zu starts with an unscored BOS", i);
    size_t last = all.n_samples - 1, bos_count = 0, scored_runs = 0;
    for (size_t t = all.start[last]; t < all.start[last + 1]; t++) {
        bos_count += all.ids[t] == bos;
        scored_runs += all.scored[t] && !all.scored[t - 1];
    }
    CHECK(bos_count == 1 && scored_runs == 2, "multi-turn: %zu BOS, %zu scored answers", bos_count, scored_runs);

    int T = 48;
    if (sft_rows_build(&all, T, 1, 9, &packed) || sft_rows_build(&all, T, 0, 9, &single)) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    size_t total = packed.n_rows * (size_t)T;
    CHECK(packed.n_rows == all.n / (size_t)T, "packed rows %zu, expected %zu", packed.n_rows, all.n / (size_t)T);
    int whole = 0;
    for (size_t i = 0; i < all.n_samples; i++) {
        int c = occurrences(&packed, total, &all, i);
        CHECK(c <= 1, "sample %zu appears %d times", i, c);
        whole += c;
    }
    CHECK(whole >= (int)all.n_samples - 2, "only the samples at the cut may be split: %d of %zu whole", whole,
          all.n_samples);
    CHECK(single.n_rows == all.n_samples, "unpacked: one row per sample");
    for (size_t i = 0; i < all.n_samples; i++) {
        size_t n = all.start[i + 1] - all.start[i];
        n = n > (size_t)T ? (size_t)T : n;
        const int32_t *row = single.ids + i * T;
        CHECK(!memcmp(row, all.ids + all.start[i], sizeof(int32_t) * n), "unpacked row %zu holds sample %zu", i, i);
        for (size_t t = n; t < (size_t)T; t++)
            CHECK(row[t] == 0 && !single.scored[i * T + t], "unpacked row %zu padded with unscored 0", i);
    }
    int32_t tk[64], tg[64], st[64], ps[64];
    for (size_t r = 0; r < packed.n_rows; r++) {
        int n = sft_row(&packed, r, tk, tg, st, ps), count = 0;
        for (int t = 0; t < T; t++) {
            int want = t + 1 < T && packed.scored[r * T + t + 1] ? packed.ids[r * T + t + 1] : -1;
            CHECK(tk[t] == packed.ids[r * T + t] && tg[t] == want && st[t] == 0 && ps[t] == t, "row %zu token %d", r, t);
            count += want >= 0;
        }
        CHECK(n == count, "row %zu: %d targets reported, %d expected", r, n, count);
    }
    printf("%zu samples (%zu tokens) -> %zu packed rows of %d (%d samples whole); %zu unpacked rows\n",
           all.n_samples, all.n, packed.n_rows, T, whole, single.n_rows);
    sft_rows_free(&packed), sft_rows_free(&single);
    sft_free(&all), sft_free(&a), sft_free(&none);
    check_agent_record(tok, argv[2]);
    tok_free(tok);
    puts(tu_failures ? "FAILED" : "ok");
    return tu_failures != 0;
}
