/* Data-parallel processes over MPI: the gradients are summed with MPI_Allreduce (see dist_mpi.h). */
#include <mpi.h>

#include "dist_mpi.h"

void dist_mpi_init(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
}

void dist_mpi_finalize(void)
{
    MPI_Finalize();
}

int dist_mpi_rank(void)
{
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int dist_mpi_size(void)
{
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

/* MPI counts are ints: large buffers go in pieces. */
#define PIECE (1 << 30)

void dist_mpi_sum_floats(float *x, size_t n)
{
    for (size_t i = 0; i < n; i += PIECE)
        MPI_Allreduce(MPI_IN_PLACE, x + i, (int)(n - i < PIECE ? n - i : PIECE), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

void dist_mpi_sum_doubles(double *x, size_t n)
{
    for (size_t i = 0; i < n; i += PIECE)
        MPI_Allreduce(MPI_IN_PLACE, x + i, (int)(n - i < PIECE ? n - i : PIECE), MPI_DOUBLE, MPI_SUM,
                      MPI_COMM_WORLD);
}

int dist_mpi_all_ok(int ok)
{
    int all = ok != 0;
    MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return all;
}
