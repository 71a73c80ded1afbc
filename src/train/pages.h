/* Releasing the pages of a read-only checkpoint mapping (internal to the training layer). */
#ifndef MELODIST_TRAIN_PAGES_H
#define MELODIST_TRAIN_PAGES_H

#include <stddef.h>

/* Drops the whole pages inside [p, p + n) of a read-only file mapping from this process's memory; the next
 * access reads them back from the page cache or the file. Never for written or anonymous memory. */
void pages_release(const void *p, size_t n);

#endif
