/* Prints each sample of an SFT JSONL file as sft_load encodes it: one JSON line {"input_ids": [...],
 * "labels": [...]} per record (labels -100 where not scored), for sft_vectors.py.
 *   sft_encode TOKENIZER JSONL MAX_LENGTH */
#include <stdio.h>
#include <stdlib.h>

#include "melodist/finetune.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: sft_encode TOKENIZER JSONL MAX_LENGTH\n");
        return 2;
    }
    char err[512];
    mt_tokenizer *tok = tok_load(argv[1], err, sizeof err);
    struct sft_set s;
    if (!tok || sft_load(argv[2], tok, "", NULL, atoi(argv[3]), &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (size_t i = 0; i < s.n_samples; i++)
        for (int labels = 0; labels < 2; labels++) {
            printf(labels ? ", \"labels\": [" : "{\"input_ids\": [");
            for (size_t t = s.start[i]; t < s.start[i + 1]; t++)
                printf("%s%d", t > s.start[i] ? ", " : "", !labels || s.scored[t] ? s.ids[t] : -100);
            printf(labels ? "]}\n" : "]");
        }
    sft_free(&s);
    tok_free(tok);
    return 0;
}
