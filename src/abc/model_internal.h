/* Private: the model builder hands over to the playback expansion. */
#ifndef MELODIST_ABC_MODEL_INTERNAL_H
#define MELODIST_ABC_MODEL_INTERNAL_H

#include "melodist/abc.h"

/* Fill bar numbers, play orders, played events and chord symbols of a built model. False when out of memory. */
bool abc_model_expand(abc_model *m);

/* Does the ending list ("1", "1,3", "2-4") include pass n? */
bool abc_ending_has(const char *list, int n);
/* Largest number in an ending list. */
int abc_ending_max(const char *list);

#endif
