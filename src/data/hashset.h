/* 64-bit hashes and an open-addressing map from 64-bit hash to a small value: the pipeline's only per-tune memory. */
#ifndef MELODIST_DATA_HASHSET_H
#define MELODIST_DATA_HASHSET_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash64(const void *data, size_t n, uint64_t seed);
uint64_t hash64_mix(uint64_t x); /* splitmix64 finaliser */

struct hashmap64 {
    uint64_t *keys; /* 0 marks an empty slot; key 0 is stored as 1 */
    uint32_t *values;
    size_t cap, count;
};

/* Returns a pointer to the value of key, inserting it with value `init` if absent; *inserted says which. */
uint32_t *hashmap64_upsert(struct hashmap64 *m, uint64_t key, uint32_t init, int *inserted);
/* The value of key, or NULL. */
uint32_t *hashmap64_get(const struct hashmap64 *m, uint64_t key);
void hashmap64_free(struct hashmap64 *m);

#endif
