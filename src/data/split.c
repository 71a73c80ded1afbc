#include "split.h"

#include "hashset.h"
#include "melodist/data.h"

int split_suggest_bit(int suggested_split)
{
    switch (suggested_split) {
    case DATA_SPLIT_TRAIN: return SUGGEST_TRAIN;
    case DATA_SPLIT_VALID: return SUGGEST_VALID;
    case DATA_SPLIT_TEST: return SUGGEST_TEST;
    default: return SUGGEST_NONE;
    }
}

static unsigned permille(uint64_t h, uint64_t seed) { return (unsigned)(hash64_mix(h ^ hash64_mix(seed)) % 1000); }

int split_by_hash(uint64_t h, uint64_t seed)
{
    unsigned r = permille(h, seed);
    if (r < SPLIT_TEST_PERMILLE)
        return DATA_SPLIT_TEST;
    if (r < SPLIT_TEST_PERMILLE + SPLIT_VALID_PERMILLE)
        return DATA_SPLIT_VALID;
    return DATA_SPLIT_TRAIN;
}

int split_assign(uint32_t bits, uint64_t group, uint64_t seed)
{
    if (bits & SUGGEST_TEST)
        return DATA_SPLIT_TEST;
    if (bits & SUGGEST_VALID)
        return DATA_SPLIT_VALID;
    if (bits & SUGGEST_TRAIN)
        return permille(group, seed) < SPLIT_VALID_PERMILLE ? DATA_SPLIT_VALID : DATA_SPLIT_TRAIN;
    return split_by_hash(group, seed);
}
