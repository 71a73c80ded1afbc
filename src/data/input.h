/* Streaming readers for the pipeline's inputs: one item at a time, whatever the file's size.
 *
 *   .abc               tunes (a tune starts at an X: line or, when X: is missing, at a block with a K: line);
 *                      an index.tsv beside the file gives group and suggested split per X.
 *   .jsonl / .json     one JSON object per line: IrishMAN ({"control code", "abc notation"}) gives tunes,
 *                      MusicPile ({"instruction", "input", "output"}) gives ready-made SFT records.
 *   .txt / .md         one knowledge document per file (UTF-8). */
#ifndef MELODIST_DATA_INPUT_H
#define MELODIST_DATA_INPUT_H

#include <stddef.h>

#include "melodist/data.h"
#include "melodist/data_json.h"

enum input_kind { INPUT_TUNE, INPUT_SFT, INPUT_TEXT };

struct input_item {
    enum input_kind kind;
    struct data_buf text;     /* TUNE: the tune's text (file-header fields copied in); TEXT: the document */
    const char *path;
    long line;                /* line of the file where the item starts (1-based) */
    const char *collection;   /* file name without directory and extension */
    char group[64];           /* index.tsv group, "" when unknown */
    int suggested_split;      /* DATA_SPLIT_* or -1 when the input says nothing */
    int x;                    /* X: number as written, -1 when missing */
    int dup_of_x;             /* index.tsv dup_of_X, 0 when empty */
    int missing_x;            /* the tune had no X: line (repaired by the caller) */
    struct data_buf instruction, input, output; /* SFT */
};

struct input_reader;

/* Opens path; kind by extension (see above). NULL with a message in err when the file cannot be read or has an
 * unknown extension. knowledge forces the .txt/.md reading whatever the extension. */
struct input_reader *input_open(const char *path, int knowledge, char *err, size_t errlen);
/* 1: *item holds the next item; 0: end of file; -1: malformed input, message (with file:line) in err. */
int input_next(struct input_reader *r, struct input_item *item, char *err, size_t errlen);
void input_close(struct input_reader *r);
void input_item_free(struct input_item *item);

#endif
