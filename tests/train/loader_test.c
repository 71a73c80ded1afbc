/* Corpus building and the packing loader on small hand-made sources: document splitting (.txt, chat
 * .jsonl, .shard), chat loss masking (only the assistant's reply and its <|im_end|> are targets), rows that
 * never attend or predict across documents, every target seen exactly once per epoch, seeded order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/shard.h"
#include "melodist/train.h"
#include "testutil.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

/* A shard written by hand from its documented layout: two documents of 2-byte ids. */
static void write_shard(const char *path)
{
    uint8_t head[SHARD_HEADER_BYTES] = {0};
    uint16_t ids[5] = {300, 301, 302, 303, 304};
    uint64_t index[3] = {0, 2, 5}, n_tokens = 5, n_docs = 2;
    uint32_t version = SHARD_VERSION, width = 2, vocab = 1024;
    memcpy(head, SHARD_MAGIC, 8), memcpy(head + 8, &version, 4), memcpy(head + 12, &width, 4);
    memcpy(head + 16, &n_tokens, 8), memcpy(head + 24, &n_docs, 8), memcpy(head + 32, &vocab, 4);
    FILE *f = fopen(path, "wb");
    fwrite(head, 1, sizeof head, f);
    fwrite(ids, 2, 5, f);
    fwrite("\0\0\0\0\0\0", 1, 6, f); /* pad 10 bytes of ids to 16 */
    fwrite(index, 8, 3, f);
    fclose(f);
}

/* Every document is BOS ... EOS; counts the shard's documents (ids kept) and the chats, whose scored
 * tokens must decode to exactly the assistant's reply and <|im_end|>. */
static void check_documents(const struct train_corpus *c, const mt_tokenizer *tok, int *shard_docs, int *chat_docs)
{
    int bos = tok_bos_id(tok), eos = tok_eos_id(tok);
    char err[256];
    for (uint64_t d = 0; d < c->n_docs; d++) {
        const int32_t *t = c->tokens + c->doc_start[d];
        const uint8_t *sc = c->scored + c->doc_start[d];
        uint64_t n = c->doc_start[d + 1] - c->doc_start[d];
        CHECK(n >= 2 && t[0] == bos && t[n - 1] == eos, "document %d lacks BOS/EOS", (int)d);
        *shard_docs += (n == 4 && t[1] == 300 && t[2] == 301) || (n == 5 && t[1] == 302 && t[3] == 304);
        int ids[256], k = 0;
        for (uint64_t i = 1; i + 1 < n && k < 256; i++)
            if (sc[i])
                ids[k++] = t[i];
        if (k == (int)n - 2)
            continue; /* every token scored: not a chat */
        char *text = tok_decode(tok, ids, (size_t)k, TOK_SPECIAL_NAMES, NULL, err, sizeof err);
        CHECK(text && (!strcmp(text, "X:1\nK:C\nC4|<|im_end|>") || !strcmp(text, "CDEC|<|im_end|>")),
              "chat targets decode to '%s'", text ? text : err);
        free(text);
        (*chat_docs)++;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: train_loader_test TOKENIZER_MODEL\n");
        return 2;
    }
    char err[512];
    mt_tokenizer *tok = tok_load(argv[1], err, sizeof err);
    if (!tok) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    write_file("loader.txt", "X:1\nK:C\nCDEF|\n<|endofdoc|>\nX:2\nK:G\nGABc|\n<|endofdoc|>\n\nX:3\nK:D\nDEFG|\n");
    write_file("loader.jsonl", "{\"conversation\": [{\"system\": \"You compose.\", \"input\": \"A tune?\", "
                               "\"output\": \"X:1\\nK:C\\nC4|\"}]}\n"
                               "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, "
                               "{\"role\": \"assistant\", \"content\": \"CDEC|\"}]}\n");
    write_shard("loader.shard");
    const char *sources[] = {"loader.txt", "loader.jsonl", "loader.shard"};
    /* valid_fraction 1e-6: no document is drawn, so building must refuse (validation would be empty) */
    CHECK(corpus_build(sources, 3, tok, 1e-6, 1, "l-train.tok", "l-valid.tok", err, sizeof err) != 0 &&
              strstr(err, "validation"), "an empty validation split must be refused: %s", err);
    /* find a seed that puts exactly one document into validation */
    struct train_corpus tc, vc;
    uint64_t seed = 0;
    for (;; seed++) {
        CHECK(corpus_build(sources, 3, tok, 0.2, seed, "l-train.tok", "l-valid.tok", err, sizeof err) == 0 ||
                  strstr(err, "validation"), "%s", err);
        if (corpus_open("l-train.tok", &tc, err, sizeof err) == 0) {
            if (tc.n_docs == 6 && !corpus_open("l-valid.tok", &vc, err, sizeof err))
                break;
            corpus_close(&tc);
        }
        if (seed > 200) {
            fprintf(stderr, "FAIL: no seed splits 7 documents 6/1\n");
            return 1;
        }
    }
    CHECK(vc.n_docs == 1, "7 documents: 3 text, 2 chat, 2 shard");
    int shard_docs = 0, chat_docs = 0;
    check_documents(&tc, tok, &shard_docs, &chat_docs);
    check_documents(&vc, tok, &shard_docs, &chat_docs);
    CHECK(shard_docs == 2 && chat_docs == 2, "documents: %d from the shard, %d chats (want 2, 2)", shard_docs,
          chat_docs);

    /* one epoch of rows, unshuffled: targets stay in their document and cover every scored token once */
    enum { T = 16 };
    struct train_loader l;
    int32_t tokens[T], targets[T], start[T], pos[T];
    uint64_t expected = 0;
    for (uint64_t d = 0; d < tc.n_docs; d++)
        for (uint64_t i = tc.doc_start[d] + 1; i < tc.doc_start[d + 1]; i++)
            expected += tc.scored[i];
    CHECK(loader_init(&l, &tc, 5, T, 0) == 0, "loader");
    uint64_t got = 0;
    while (l.at.epoch == 0) {
        int n = loader_next_row(&l, tokens, targets, start, pos), count = 0;
        for (int k = 0; k < T; k++) {
            CHECK(start[k] <= k && pos[k] == k - start[k], "start/pos at %d", k);
            CHECK(k == 0 || start[k] == start[k - 1] || start[k] == k, "a document starts mid-row at %d", k);
            if (k + 1 < T && targets[k] >= 0)
                CHECK(start[k + 1] == start[k] && targets[k] == tokens[k + 1], "target crosses a document at %d", k);
            count += targets[k] >= 0;
        }
        CHECK(n == count, "returned target count");
        got += (uint64_t)n;
    }
    /* the last row runs on into the next epoch, so up to T - 1 more */
    CHECK(got >= expected && got < expected + T, "one epoch scores %llu targets, the corpus has %llu",
          (unsigned long long)got, (unsigned long long)expected);
    loader_free(&l);

    /* shuffled: the same seed gives the same rows; the order differs from the unshuffled one */
    struct train_loader a, b, u;
    int32_t ta[T], tb[T], tu[T];
    int same = 1, differs = 0;
    loader_init(&a, &tc, 9, T, 1), loader_init(&b, &tc, 9, T, 1), loader_init(&u, &tc, 9, T, 0);
    for (int r = 0; r < 20; r++) {
        loader_next_row(&a, ta, targets, start, pos);
        loader_next_row(&b, tb, targets, start, pos);
        loader_next_row(&u, tu, targets, start, pos);
        same &= !memcmp(ta, tb, sizeof ta);
        differs |= memcmp(ta, tu, sizeof ta) != 0;
    }
    CHECK(same && differs, "seeded shuffling: same %d, differs from file order %d", same, differs);
    loader_free(&a), loader_free(&b), loader_free(&u);

    if (!tu_failures)
        printf("loader: %llu training tokens in %llu documents; one epoch scores %llu of %llu targets\n",
               (unsigned long long)tc.n_tokens, (unsigned long long)tc.n_docs, (unsigned long long)got,
               (unsigned long long)expected);
    corpus_close(&tc);
    corpus_close(&vc);
    tok_free(tok);
    return tu_failures ? 1 : 0;
}
