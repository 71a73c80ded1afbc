/* Private: the model builder hands over to the playback expansion. */
#ifndef MELODIST_ABC_MODEL_INTERNAL_H
#define MELODIST_ABC_MODEL_INTERNAL_H

#include "melodist/abc.h"

/* abc_model_new() without the playback expansion (played events, play orders, played chord symbols stay
 * empty), into memory kept from one call to the next: what the validator needs. The model returned lives
 * until the next run or abc_modeler_free(); never abc_model_free() it. NULL only when out of memory. */
typedef struct abc_modeler abc_modeler;
abc_modeler *abc_modeler_new(void);
void abc_modeler_free(abc_modeler *w);
const abc_model *abc_modeler_run(abc_modeler *w, const abc_file *f, size_t index, abc_diags *diags);

/* Fill bar numbers, play orders, played events and chord symbols of a built model. False when out of memory. */
bool abc_model_expand(abc_model *m);

/* Written bar numbers of a voice: 0 for a pickup bar, then 1, 2, ... */
void abc_number_bars(const abc_model *m, abc_voice *v);

/* Does the ending list ("1", "1,3", "2-4") include pass n? */
bool abc_ending_has(const char *list, int n);
/* Largest number in an ending list. */
int abc_ending_max(const char *list);

#endif
