/* One pool of worker threads; the caller runs share 0 of every parallel_for and waits for the rest. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "melodist/nn.h"

#define MAX_THREADS 256

static struct {
    int n; /* threads including the caller; 0 = not started */
    pthread_t threads[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    unsigned long generation;
    int pending, quit;
    void (*fn)(void *, int, int, int);
    void *ctx;
    int total;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void run_share(int t)
{
    int begin = (int)((long long)pool.total * t / pool.n), end = (int)((long long)pool.total * (t + 1) / pool.n);
    if (begin < end)
        pool.fn(pool.ctx, begin, end, t);
}

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.generation == seen && !pool.quit)
            pthread_cond_wait(&pool.wake, &pool.mu);
        if (pool.quit)
            break;
        seen = pool.generation;
        pthread_mutex_unlock(&pool.mu);
        run_share(t);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0)
            pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

static void stop_pool(void)
{
    if (pool.n <= 1) {
        pool.n = 0;
        return;
    }
    pthread_mutex_lock(&pool.mu);
    pool.quit = 1;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    for (int t = 1; t < pool.n; t++)
        pthread_join(pool.threads[t], NULL);
    pool.quit = 0;
    pool.n = 0;
}

void nn_set_threads(int n)
{
    stop_pool();
    if (n <= 0) {
        const char *env = getenv("MELODIST_THREADS");
        n = env ? atoi(env) : 0;
        if (n <= 0)
            n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    }
    if (n < 1)
        n = 1;
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    pool.n = 1;
    for (int t = 1; t < n; t++) {
        if (pthread_create(&pool.threads[t], NULL, worker, (void *)(intptr_t)t))
            break; /* run with the threads we got */
        pool.n = t + 1;
    }
}

int nn_threads(void)
{
    if (!pool.n)
        nn_set_threads(0);
    return pool.n;
}

void nn_parallel_for(int n, void (*fn)(void *ctx, int begin, int end, int thread), void *ctx)
{
    int threads = nn_threads();
    if (threads == 1 || n <= 1) {
        if (n > 0)
            fn(ctx, 0, n, 0);
        return;
    }
    pthread_mutex_lock(&pool.mu);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.total = n;
    pool.pending = threads - 1;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    run_share(0);
    pthread_mutex_lock(&pool.mu);
    while (pool.pending)
        pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
}
