/* Drives the shard writer and reader for test_shard.py:
 *   shard_roundtrip write DTYPE_BYTES VOCAB DOCS.txt OUT.shard   (one document per line: space-separated ids)
 *   shard_roundtrip read SHARD                                    (prints the documents back, one per line)
 * Errors go to stderr with exit status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/shard.h"

static int write_shard(int dtype, unsigned vocab, const char *in, const char *out)
{
    FILE *fp = fopen(in, "r");
    if (!fp) {
        perror(in);
        return 1;
    }
    char err[256];
    struct shard_writer *w = shard_writer_open(out, dtype, vocab, err, sizeof err);
    if (!w) {
        fprintf(stderr, "%s\n", err);
        fclose(fp);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    uint32_t *ids = NULL;
    size_t ids_cap = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, fp) > 0) {
        size_t n = 0;
        for (char *p = line, *end;; p = end) {
            unsigned long v = strtoul(p, &end, 10);
            if (end == p)
                break;
            if (n == ids_cap) {
                ids_cap = ids_cap ? ids_cap * 2 : 256;
                ids = realloc(ids, ids_cap * sizeof *ids);
            }
            ids[n++] = (uint32_t)v;
        }
        if (shard_writer_add(w, ids, n, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            rc = 1;
        }
    }
    if (rc)
        shard_writer_abort(w);
    else if (shard_writer_close(w, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        rc = 1;
    }
    free(line);
    free(ids);
    fclose(fp);
    return rc;
}

static int read_shard(const char *path)
{
    struct shard s;
    char err[256];
    if (shard_open(path, &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (uint64_t d = 0; d < s.n_docs; d++) {
        for (uint64_t i = s.doc_offsets[d]; i < s.doc_offsets[d + 1]; i++)
            printf("%s%u", i > s.doc_offsets[d] ? " " : "", shard_token(&s, i));
        printf("\n");
    }
    shard_close(&s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "write"))
        return write_shard(atoi(argv[2]), (unsigned)strtoul(argv[3], NULL, 10), argv[4], argv[5]);
    if (argc == 3 && !strcmp(argv[1], "read"))
        return read_shard(argv[2]);
    fprintf(stderr, "usage: shard_roundtrip write DTYPE VOCAB DOCS.txt OUT.shard | read SHARD\n");
    return 2;
}
