/* Data-parallel processes. With MPI (found at build time) and a launch by mpirun, every process trains on
 * its share of each batch and the gradients are summed with MPI_Allreduce; otherwise there is one process
 * and these are no-ops. An NCCL backend would implement the same calls.
 *
 * The MPI calls live in the module MELODIST_MPI_MODULE next to the executable (mpi/dist_mpi.c), loaded
 * only when a launcher set up a job: Open MPI brings hwloc, libevent and more along, and loading them would
 * slow down the start of every melodist command. */
#include <stdlib.h>

#include "melodist/train.h"

#ifdef MELODIST_MPI_MODULE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mpi/dist_mpi.h"

#define MPI_FUNCTIONS(X)                                                                                            \
    X(dist_mpi_init) X(dist_mpi_finalize) X(dist_mpi_rank) X(dist_mpi_size) X(dist_mpi_sum_floats)                 \
    X(dist_mpi_sum_doubles) X(dist_mpi_all_ok)

static struct {
#define MPI_POINTER(name) __typeof__(&name) name;
    MPI_FUNCTIONS(MPI_POINTER)
#undef MPI_POINTER
} mpi;
static int joined;

/* The module's path: the executable's directory + MELODIST_MPI_MODULE. */
static void *load_module(char *path, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", path, size - 1);
    if (n < 0)
        n = 0;
    path[n] = 0;
    char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    snprintf(path + dir, size - dir, "%s", MELODIST_MPI_MODULE);
    /* global: Open MPI's own plug-ins resolve symbols of libmpi */
    return dlopen(path, RTLD_NOW | RTLD_GLOBAL);
}

/* Only join when a launcher set up a job: a plain run stays a plain process. A process of a job that
 * cannot load MPI must not train alone (it would write the same output as its peers): it stops here, as
 * MPI_Init itself stops the job when it fails. */
void dist_init(int *argc, char ***argv)
{
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK"))
        return;
    char path[PATH_MAX];
    void *module = load_module(path, sizeof path);
    if (!module) {
        fprintf(stderr, "melodist: started by an MPI launcher but cannot load MPI: %s (rebuild with MPI)\n",
                dlerror());
        abort();
    }
#define MPI_LOOKUP(name)                                                                                            \
    if (!(mpi.name = (__typeof__(mpi.name))dlsym(module, #name))) {                                                 \
        fprintf(stderr, "melodist: %s has no %s (rebuild melodist)\n", path, #name);                              \
        abort();                                                                                                    \
    }
    MPI_FUNCTIONS(MPI_LOOKUP)
#undef MPI_LOOKUP
    mpi.dist_mpi_init(argc, argv);
    joined = 1;
}

void dist_finalize(void)
{
    if (joined)
        mpi.dist_mpi_finalize();
    joined = 0;
}

int dist_rank(void) { return joined ? mpi.dist_mpi_rank() : 0; }
int dist_size(void) { return joined ? mpi.dist_mpi_size() : 1; }

void dist_sum_floats(float *x, size_t n)
{
    if (joined)
        mpi.dist_mpi_sum_floats(x, n);
}

void dist_sum_doubles(double *x, size_t n)
{
    if (joined)
        mpi.dist_mpi_sum_doubles(x, n);
}

int dist_all_ok(int ok) { return joined ? mpi.dist_mpi_all_ok(ok) : ok != 0; }

#else

void dist_init(int *argc, char ***argv) { (void)argc, (void)argv; }
void dist_finalize(void) {}
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
void dist_sum_floats(float *x, size_t n) { (void)x, (void)n; }
void dist_sum_doubles(double *x, size_t n) { (void)x, (void)n; }
int dist_all_ok(int ok) { return ok != 0; }

#endif
