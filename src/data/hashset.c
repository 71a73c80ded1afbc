#include "hashset.h"

#include <stdlib.h>
#include <string.h>

uint64_t hash64_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* FNV-1a over the bytes, then a splitmix finaliser so that nearby inputs spread over the whole table. */
uint64_t hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = 0xCBF29CE484222325ull ^ hash64_mix(seed);
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return hash64_mix(h ^ n);
}

static uint64_t stored_key(uint64_t key) { return key ? key : 1; }

static size_t find_slot(const uint64_t *keys, size_t cap, uint64_t key)
{
    size_t i = (size_t)(key & (cap - 1));
    while (keys[i] && keys[i] != key)
        i = (i + 1) & (cap - 1);
    return i;
}

static void grow(struct hashmap64 *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    uint64_t *keys = calloc(cap, sizeof *keys);
    uint32_t *values = calloc(cap, sizeof *values);
    if (!keys || !values)
        abort();
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = find_slot(keys, cap, m->keys[i]);
        keys[j] = m->keys[i];
        values[j] = m->values[i];
    }
    free(m->keys);
    free(m->values);
    m->keys = keys;
    m->values = values;
    m->cap = cap;
}

uint32_t *hashmap64_upsert(struct hashmap64 *m, uint64_t key, uint32_t init, int *inserted)
{
    key = stored_key(key);
    if ((m->count + 1) * 4 > m->cap * 3)
        grow(m);
    size_t i = find_slot(m->keys, m->cap, key);
    *inserted = !m->keys[i];
    if (*inserted) {
        m->keys[i] = key;
        m->values[i] = init;
        m->count++;
    }
    return &m->values[i];
}

uint32_t *hashmap64_get(const struct hashmap64 *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    key = stored_key(key);
    size_t i = find_slot(m->keys, m->cap, key);
    return m->keys[i] ? &m->values[i] : NULL;
}

void hashmap64_free(struct hashmap64 *m)
{
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}
