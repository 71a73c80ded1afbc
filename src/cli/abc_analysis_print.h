/* The analysis part of 'melodist abc info' (abc_analyze() printed). */
#ifndef MELODIST_CLI_ABC_ANALYSIS_PRINT_H
#define MELODIST_CLI_ABC_ANALYSIS_PRINT_H

#include "melodist/abc_analysis.h"

/* ,"analysis":{...}: to be printed inside a tune's JSON object. */
void abc_print_analysis_json(const abc_analysis *a);
/* Indented text lines: counts, keys and mode, range, duration, form, chords per bar, note histogram. */
void abc_print_analysis_text(const abc_analysis *a);

#endif
