/* Private pieces of the tune analysis shared between analysis.c and form.c. */
#ifndef MELODIST_ABC_ANALYSIS_INTERNAL_H
#define MELODIST_ABC_ANALYSIS_INTERNAL_H

#include "melodist/abc_analysis.h"

/* Fill out->form, out->sections, out->n_sections for model m in `meter`. -1 when out of memory. */
int abc_form_detect(const abc_model *m, abc_meter meter, abc_analysis *out);

/* The dance rhythm of model m in `meter` (rhythm.c): a static name, or NULL when the meter names none. */
const char *abc_rhythm_type_of(const abc_model *m, abc_meter meter);

#endif
