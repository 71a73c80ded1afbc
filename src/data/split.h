/* Deterministic train/valid/test assignment of a melody group (all tunes sharing a melody fingerprint).
 *   any member suggested "test"  -> test   (never train on test)
 *   else any suggested "valid"   -> valid
 *   else any suggested "train"   -> valid for VALID_PERMILLE of groups (by hash), train otherwise
 *   no suggestion at all         -> test TEST_PERMILLE, valid VALID_PERMILLE, train the rest (by hash)
 * The hash is of the group id and the seed, so the assignment does not depend on input order. */
#ifndef MELODIST_DATA_SPLIT_H
#define MELODIST_DATA_SPLIT_H

#include <stdint.h>

enum { SPLIT_VALID_PERMILLE = 50, SPLIT_TEST_PERMILLE = 50 };

/* Bits of what a group's members suggested. */
enum { SUGGEST_TRAIN = 1, SUGGEST_VALID = 2, SUGGEST_TEST = 4, SUGGEST_NONE = 8 };

int split_suggest_bit(int suggested_split); /* DATA_SPLIT_* or -1 -> SUGGEST_* */
int split_assign(uint32_t suggest_bits, uint64_t group, uint64_t seed);
/* The same rule for an item without group or suggestion (MusicPile records, self-cognition). */
int split_by_hash(uint64_t h, uint64_t seed);

#endif
