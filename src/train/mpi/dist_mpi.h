/* The MPI side of dist.c, built as a module of its own (melodist_mpi.so) that dist.c loads only when a
 * launcher started the process: linking Open MPI into melodist would make every command load it. */
#ifndef MELODIST_DIST_MPI_H
#define MELODIST_DIST_MPI_H

#include <stddef.h>

void dist_mpi_init(int *argc, char ***argv);
void dist_mpi_finalize(void);
int dist_mpi_rank(void);
int dist_mpi_size(void);
void dist_mpi_sum_floats(float *x, size_t n);
void dist_mpi_sum_doubles(double *x, size_t n);
int dist_mpi_all_ok(int ok);

#endif
