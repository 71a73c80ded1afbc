/* Token shards: token ids of many documents in one file the trainer memory-maps, tokeniser-agnostic.
 *
 * Layout (all integers little-endian):
 *   offset 0   char[8]  magic "MLDSHARD"
 *          8   u32      version (1)
 *          12  u32      bytes per token id: 2 (uint16) or 4 (uint32)
 *          16  u64      n_tokens
 *          24  u64      n_docs
 *          32  u32      vocab_size (every id is below it; 0 when not given)
 *          36  u32[7]   reserved, 0
 *          64           token ids, n_tokens * bytes-per-id
 *          then zero padding to a multiple of 8, and the document index: n_docs + 1 u64 token offsets
 *          (document i is tokens [index[i], index[i+1]); index[0] = 0, index[n_docs] = n_tokens).
 * The writer streams tokens to DIR/.FILE.tmp and renames it to FILE when closed, so a shard is complete or absent. */
#ifndef MELODIST_SHARD_H
#define MELODIST_SHARD_H

#include <stddef.h>
#include <stdint.h>

#define SHARD_MAGIC "MLDSHARD"
#define SHARD_VERSION 1
#define SHARD_HEADER_BYTES 64

struct shard_writer;

/* dtype_bytes: 2 or 4. NULL with a message in err on failure. */
struct shard_writer *shard_writer_open(const char *path, int dtype_bytes, uint32_t vocab_size, char *err,
                                       size_t errlen);
/* Appends one document. -1 (message in err) when an id does not fit the dtype or the vocabulary, or on I/O error. */
int shard_writer_add(struct shard_writer *w, const uint32_t *ids, size_t n, char *err, size_t errlen);
/* Writes the index and header and renames into place; frees w. -1 with a message on failure (nothing left). */
int shard_writer_close(struct shard_writer *w, char *err, size_t errlen);
/* Drops the partial shard; frees w. */
void shard_writer_abort(struct shard_writer *w);

struct shard {
    void *map;
    size_t map_len;
    int dtype_bytes;
    uint32_t vocab_size;
    uint64_t n_tokens, n_docs;
    const void *tokens;            /* n_tokens ids of dtype_bytes each */
    const uint64_t *doc_offsets;   /* n_docs + 1 entries */
};

/* Memory-maps and validates a shard (magic, version, sizes, monotone index). -1 with a message on failure. */
int shard_open(const char *path, struct shard *s, char *err, size_t errlen);
void shard_close(struct shard *s);
static inline uint32_t shard_token(const struct shard *s, uint64_t i)
{
    return s->dtype_bytes == 2 ? ((const uint16_t *)s->tokens)[i] : ((const uint32_t *)s->tokens)[i];
}

#endif
