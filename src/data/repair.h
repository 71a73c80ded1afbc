/* Safe textual repairs of a tune before it is parsed, each counted by name in `repairs`:
 *   "missing X:"          a tune without an X: line gets one (X: number given by the caller)
 *   "placeholder meter"   a header M: overridden by another M: between K: and the first music line (Nottingham's
 *                         jukedeck edition writes M:4/4 then the real meter after K:) -> the last one moves into
 *                         the header; when L: is absent the unit length that was in force is written out, so no
 *                         note changes length
 *   "stray ] in field"    text fields (T: R: S: O: N: ...) ending in an unmatched ']' (EsAC conversions)
 *   "German key name"     K:H -> K:B, K:Es -> K:Eb, K:As -> K:Ab (EsAC) */
#ifndef MELODIST_DATA_REPAIR_H
#define MELODIST_DATA_REPAIR_H

#include "melodist/data.h"
#include "melodist/data_json.h"

void repair_tune(struct data_buf *text, int missing_x, int x, struct data_counters *repairs);

#endif
