/* Data-parallel processes. With MPI (found at build time) and a launch by mpirun, every process trains on
 * its share of each batch and the gradients are summed with MPI_Allreduce; otherwise there is one process
 * and these are no-ops. An NCCL backend would implement the same calls. */
#include <stdlib.h>

#include "melodist/train.h"

#ifdef MELODIST_MPI
#include <mpi.h>

static int joined;

/* Only join when a launcher set up a job: a plain run stays a plain process. */
void dist_init(int *argc, char ***argv)
{
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK"))
        return;
    MPI_Init(argc, argv);
    joined = 1;
}

void dist_finalize(void)
{
    if (joined)
        MPI_Finalize();
    joined = 0;
}

int dist_rank(void)
{
    int r = 0;
    if (joined)
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int dist_size(void)
{
    int n = 1;
    if (joined)
        MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

/* MPI counts are ints: large buffers go in pieces. */
#define PIECE (1 << 30)

void dist_sum_floats(float *x, size_t n)
{
    for (size_t i = 0; joined && i < n; i += PIECE)
        MPI_Allreduce(MPI_IN_PLACE, x + i, (int)(n - i < PIECE ? n - i : PIECE), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

void dist_sum_doubles(double *x, size_t n)
{
    for (size_t i = 0; joined && i < n; i += PIECE)
        MPI_Allreduce(MPI_IN_PLACE, x + i, (int)(n - i < PIECE ? n - i : PIECE), MPI_DOUBLE, MPI_SUM,
                      MPI_COMM_WORLD);
}

int dist_all_ok(int ok)
{
    int all = ok != 0;
    if (joined)
        MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return all;
}

#else

void dist_init(int *argc, char ***argv) { (void)argc, (void)argv; }
void dist_finalize(void) {}
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
void dist_sum_floats(float *x, size_t n) { (void)x, (void)n; }
void dist_sum_doubles(double *x, size_t n) { (void)x, (void)n; }
int dist_all_ok(int ok) { return ok != 0; }

#endif
